// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"fmt"
	"maps"
	"math/bits"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// MapMemory is one map's kernel memory on a host of a given number of possible CPUs.
type MapMemory struct {
	Object                                string // "drops" or "netrx": both have a .bss map
	Name                                  string
	Type                                  ebpf.MapType
	KeySize, ValueSize, MaxEntries, Flags uint32
	Bytes                                 uint64
}

// The kernel's fixed per-map headers (struct bpf_htab, bpf_array, bpf_ringbuf_map) depend on
// its configuration; these are the sizes of a 6.x x86-64 build, and a few hundred bytes either
// way do not matter next to the per-entry terms.
const (
	htabHeader    = 832
	arrayHeader   = 312
	ringbufHeader = 304
	pageSize      = 4096
	// Flags of bpf(2) map creation (include/uapi/linux/bpf.h).
	flagNoPrealloc = 1 << 0
	flagMmapable   = 1 << 10
)

// kernelBytes is what the kernel charges for a map (fdinfo memlock since 6.4: the map's
// map_mem_usage), for ncpu possible CPUs: kernel/bpf/hashtab.c htab_map_mem_usage,
// arraymap.c array_map_mem_usage, ringbuf.c ringbuf_map_mem_usage. Per-CPU values are
// allocated on every possible CPU, rounded up to 8 bytes. A hash without BPF_F_NO_PREALLOC
// allocates every element up front, plus one spare per CPU when its values are not per CPU;
// one with it is counted at full capacity, the most it can take.
func kernelBytes(typ ebpf.MapType, key, value, entries, flags uint32, ncpu int) uint64 {
	n, cpus := uint64(entries), uint64(ncpu)
	v := roundUp8(uint64(value))
	switch typ {
	case ebpf.Hash, ebpf.PerCPUHash, ebpf.LRUHash, ebpf.LRUCPUHash:
		percpu := typ == ebpf.PerCPUHash || typ == ebpf.LRUCPUHash
		lru := typ == ebpf.LRUHash || typ == ebpf.LRUCPUHash
		const elemHeader, bucket, locks = 48, 16, 8
		elem := elemHeader + roundUp8(uint64(key))
		if percpu {
			elem += 8 // pointer to the per-CPU value
		} else {
			elem += v
		}
		b := htabHeader + bucket*nextPow2(n) + 4*cpus*locks
		elems := n
		if flags&flagNoPrealloc != 0 {
			elem += 8 // llist_node of the allocator
			if percpu {
				elem += 16
			}
		} else if !percpu && !lru {
			elems += cpus
			b += 8 * cpus
		}
		b += elem * elems
		if percpu {
			b += v * cpus * elems
		}
		return b
	case ebpf.PerCPUArray:
		return arrayHeader + 8*n + v*n*cpus
	case ebpf.Array, ebpf.ArrayOfMaps, ebpf.ProgramArray, ebpf.PerfEventArray:
		if flags&flagMmapable != 0 {
			return pageAlign(arrayHeader) + pageAlign(v*n)
		}
		return arrayHeader + v*n
	case ebpf.RingBuf:
		const metaPages = 3 // the struct bpf_ringbuf page and the consumer and producer pages
		data := n / pageSize
		return ringbufHeader + (metaPages+data)*pageSize + (metaPages+2*data)*8
	}
	return 0
}

func roundUp8(n uint64) uint64  { return (n + 7) &^ 7 }
func pageAlign(n uint64) uint64 { return (n + pageSize - 1) &^ (pageSize - 1) }
func nextPow2(n uint64) uint64 {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len64(n-1)
}

// dropCountsBudget bounds the kernel memory of the two drop_counts maps together. Their per-CPU
// values make them the maps that grow with the CPUs; with them at most this, all maps stay under
// 16 MiB up to 256 possible CPUs with the default ring buffer (docs/performance.md).
const dropCountsBudget = 10 << 20

// minDropCounts is the fewest entries a drop_counts map is created with, however many CPUs.
const minDropCounts = 1024

// dropCountsEntries is the max_entries of each drop_counts map on a host of ncpu possible CPUs:
// the object's size, halved until the map fits half of dropCountsBudget.
func dropCountsEntries(ms *ebpf.MapSpec, ncpu int) uint32 {
	n := ms.MaxEntries
	for n > minDropCounts && kernelBytes(ms.Type, ms.KeySize, ms.ValueSize, n, ms.Flags, ncpu) > dropCountsBudget/2 {
		n /= 2
	}
	return n
}

// dropCountsMaps are the names of the drop_counts maps of generations 0 and 1.
var dropCountsMaps = [2]string{dropsMapDropCountsA, dropsMapDropCountsB}

// sizeDropMaps sets the sizes of the maps openDrops creates on a host of ncpu possible CPUs.
func (o Options) sizeDropMaps(spec *ebpf.CollectionSpec, ncpu int) {
	ring := o.RingBufferBytes
	if ring == 0 {
		ring = 4 << 20
	}
	if !o.Events {
		// The ring buffer is created either way (the program references it); keep it tiny.
		ring = uint32(os.Getpagesize())
	}
	spec.Maps[dropsMapEvents].MaxEntries = ring
	for _, name := range dropCountsMaps {
		dc := spec.Maps[name]
		dc.MaxEntries = dropCountsEntries(dc, ncpu)
	}
}

// KernelMemory is the kernel memory of every map a session with these options creates on a host
// of ncpu possible CPUs, computed from each map's type and sizes.
func KernelMemory(o Options, ncpu int) ([]MapMemory, error) {
	var out []MapMemory
	for _, f := range []struct {
		on   bool
		obj  string
		load func() (*ebpf.CollectionSpec, error)
	}{{!o.NoDrops, "drops", loadDrops}, {!o.NoNetRx, "netrx", loadNetrx}} {
		if !f.on {
			continue
		}
		spec, err := f.load()
		if err != nil {
			return nil, fmt.Errorf("load BPF spec: %w", err)
		}
		if _, ok := spec.Maps[dropsMapDropCountsA]; ok {
			o.sizeDropMaps(spec, ncpu)
		}
		out = append(out, specMemory(f.obj, spec, ncpu)...)
	}
	return out, nil
}

func specMemory(obj string, spec *ebpf.CollectionSpec, ncpu int) []MapMemory {
	var out []MapMemory
	for _, name := range slices.Sorted(maps.Keys(spec.Maps)) {
		m := spec.Maps[name]
		flags := m.Flags
		if strings.HasPrefix(name, ".") {
			// cilium/ebpf creates global data (.bss, .rodata) mmapable where the kernel can.
			flags |= flagMmapable
		}
		out = append(out, MapMemory{Object: obj, Name: name, Type: m.Type, KeySize: m.KeySize,
			ValueSize: m.ValueSize, MaxEntries: m.MaxEntries, Flags: flags,
			Bytes: kernelBytes(m.Type, m.KeySize, m.ValueSize, m.MaxEntries, flags, ncpu)})
	}
	return out
}
