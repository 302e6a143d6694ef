// SPDX-License-Identifier: Apache-2.0

package tracer

import "testing"

// All maps fit 16 MiB of kernel memory up to 256 possible CPUs with the default ring buffer, and
// hosts with few CPUs keep the aggregation map's full size.
func TestKernelMemoryFits(t *testing.T) {
	for _, c := range []struct {
		ncpu       int
		dropCounts uint32
	}{{1, 32768}, {2, 32768}, {16, 32768}, {64, 16384}, {128, 8192}, {256, 4096}} {
		m, err := KernelMemory(Options{Events: true}, c.ncpu)
		if err != nil {
			t.Fatal(err)
		}
		var total uint64
		for _, x := range m {
			total += x.Bytes
			if x.Name == dropsMapDropCounts && x.MaxEntries != c.dropCounts {
				t.Errorf("%d CPUs: drop_counts has %d entries, want %d", c.ncpu, x.MaxEntries, c.dropCounts)
			}
		}
		if total > 16<<20 {
			t.Errorf("%d CPUs: maps take %d bytes of kernel memory, over 16 MiB", c.ncpu, total)
		}
	}
}

// drop_counts is never made smaller than minDropCounts, however many CPUs.
func TestDropCountsFloor(t *testing.T) {
	spec, err := loadDrops()
	if err != nil {
		t.Fatal(err)
	}
	if n := dropCountsEntries(spec.Maps[dropsMapDropCounts], 1<<14); n != minDropCounts {
		t.Errorf("16384 CPUs: %d entries, want %d", n, minDropCounts)
	}
}
