// SPDX-License-Identifier: Apache-2.0

package tracer

import "testing"

// All maps fit 16 MiB of kernel memory up to 256 possible CPUs with the default ring buffer; the
// two drop_counts generations have the same size, halved with the CPUs, and together fit
// dropCountsBudget.
func TestKernelMemoryFits(t *testing.T) {
	for _, c := range []struct {
		ncpu       int
		dropCounts uint32
	}{{1, 16384}, {2, 16384}, {16, 16384}, {32, 8192}, {64, 8192}, {128, 4096}, {256, 2048}} {
		m, err := KernelMemory(Options{Events: true}, c.ncpu)
		if err != nil {
			t.Fatal(err)
		}
		var total, counts uint64
		gens := 0
		for _, x := range m {
			total += x.Bytes
			if x.Name == dropsMapDropCountsA || x.Name == dropsMapDropCountsB {
				counts += x.Bytes
				gens++
			}
			if (x.Name == dropsMapDropCountsA || x.Name == dropsMapDropCountsB) && x.MaxEntries != c.dropCounts {
				t.Errorf("%d CPUs: drop_counts has %d entries, want %d", c.ncpu, x.MaxEntries, c.dropCounts)
			}
		}
		if gens != 2 || counts > dropCountsBudget {
			t.Errorf("%d CPUs: %d drop_counts maps take %d bytes, want 2 within %d", c.ncpu, gens, counts, dropCountsBudget)
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
	if n := dropCountsEntries(spec.Maps[dropsMapDropCountsA], 1<<14); n != minDropCounts {
		t.Errorf("16384 CPUs: %d entries, want %d", n, minDropCounts)
	}
}

// One drop_counts map at 256 possible CPUs, by hand from htab_map_mem_usage: 2048 buckets of 16
// bytes and 4 lock words per CPU, and per element a 48-byte header, the 24-byte key, the per-CPU
// value pointer and an 8-byte value on each CPU.
func TestDropCountsBytesAt256(t *testing.T) {
	spec, err := loadDrops()
	if err != nil {
		t.Fatal(err)
	}
	ms := spec.Maps[dropsMapDropCountsB]
	const n, cpus = 2048, 256
	want := uint64(htabHeader + 16*n + 4*cpus*8 + n*(48+24+8) + n*8*cpus)
	if got := kernelBytes(ms.Type, ms.KeySize, ms.ValueSize, n, ms.Flags, cpus); got != want {
		t.Errorf("computed %d bytes, want %d", got, want)
	}
}
