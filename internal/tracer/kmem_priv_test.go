// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// kmemTolerance is how far the computed memory of a map may be from what the kernel charges
// (fdinfo memlock): the fixed headers, whose size depends on the kernel's configuration.
const kmemTolerance = 1024

// Every map a session creates, with and without events, is charged by the kernel what
// KernelMemory computes for this host's possible CPUs.
func TestPrivKernelMemoryMatchesFdinfo(t *testing.T) {
	requireRoot(t)
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(rel), "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	if major < 6 || major == 6 && minor < 4 {
		// Before map_mem_usage, memlock was an estimate from key and value sizes only.
		t.Skipf("SKIPPED: kernel %s: fdinfo memlock is the map's memory only since 6.4", strings.TrimSpace(string(rel)))
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{}, {Events: true}, {Events: true, RingBufferBytes: 1 << 20}} {
		want, err := KernelMemory(o, ncpu)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for obj, load := range map[string]func() (*ebpf.CollectionSpec, error){"drops": loadDrops, "netrx": loadNetrx} {
			spec, err := load()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := spec.Maps[dropsMapDropCountsA]; ok {
				o.sizeDropMaps(spec, ncpu)
			}
			coll, err := loadMaps(spec)
			if err != nil {
				t.Fatal(err)
			}
			for name, m := range coll.Maps {
				info, err := m.Info()
				if err != nil {
					t.Fatal(err)
				}
				ml, ok := info.Memlock()
				if !ok {
					t.Fatalf("%s: no memlock in fdinfo", name)
				}
				got[obj+"/"+name] = ml
			}
			coll.Close()
		}
		if len(got) != len(want) {
			t.Errorf("events %v: %d maps created, %d computed", o.Events, len(got), len(want))
		}
		for _, w := range want {
			g, ok := got[w.Object+"/"+w.Name]
			if !ok {
				t.Errorf("%s: computed, not created", w.Name)
				continue
			}
			t.Logf("events %v ring %d: %s %-14s %-12v memlock %9d computed %9d diff %+d", o.Events, o.RingBufferBytes, w.Object, w.Name, w.Type, g, w.Bytes, int64(w.Bytes)-int64(g))
			if d := int64(w.Bytes) - int64(g); d > kmemTolerance || d < -kmemTolerance {
				t.Errorf("%s (%v, key %d value %d entries %d flags %#x): computed %d bytes, kernel charges %d",
					w.Name, w.Type, w.KeySize, w.ValueSize, w.MaxEntries, w.Flags, w.Bytes, g)
			}
		}
	}
}

// A session creates both drop_counts maps with the entries KernelMemory accounts for on this
// host.
func TestPrivDropCountsSized(t *testing.T) {
	requireRoot(t)
	tr, err := Open(Options{NoNetRx: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	spec, err := loadDrops()
	if err != nil {
		t.Fatal(err)
	}
	want := dropCountsEntries(spec.Maps[dropsMapDropCountsA], tr.PossibleCPUs())
	for gen, m := range tr.dropMaps() {
		if got := m.MaxEntries(); got != want {
			t.Errorf("%s has %d entries, want %d for %d possible CPUs", dropCountsMaps[gen], got, want, tr.PossibleCPUs())
		}
	}
}
