// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// mapBatch is how many keys one batch lookup copies: few syscalls per interval, and a buffer
// of at most mapBatch values per possible CPU.
const mapBatch = 256

// flip ends the generation BPF counts into and returns it. BPF counts into the maps map_gen
// names (drop_counts_*, sock_drops_*, a memo of sock_memos); once map_gen names the other
// generation and every program run that could have read the old value has ended
// (waitForPrograms), the old generation's maps are still and can be read and emptied with
// nothing lost.
func (t *Tracer) flip() (uint32, error) {
	gen := uint32(t.active)
	if err := t.mapGen.Set(1 - gen); err != nil {
		return 0, fmt.Errorf("swap map generation: %w", err)
	}
	t.active = 1 - t.active
	if err := t.waitForPrograms(); err != nil {
		return 0, fmt.Errorf("swap map generation: %w", err)
	}
	return gen, nil
}

// dropMaps are the drop_counts maps of generations 0 and 1.
func (t *Tracer) dropMaps() [2]*ebpf.Map {
	return [2]*ebpf.Map{t.dropsM.DropCountsA, t.dropsM.DropCountsB}
}

// drainDrops moves the counts of generation gen's drop_counts map, which no program counts into
// any more, into dropTotal, and empties the map.
func (t *Tracer) drainDrops(gen uint32) error {
	if t.dropTotal == nil {
		t.dropTotal = map[DropKey][]uint64{}
	}
	err := readMap(t.dropMaps()[gen], true, t.ncpu, &t.dropBuf, func(k dropsDropKey, v []uint64) {
		key := dropKey(k)
		tot := t.dropTotal[key]
		if tot == nil {
			tot = make([]uint64, t.ncpu)
			t.dropTotal[key] = tot
		}
		for cpu, n := range v {
			tot[cpu] += n
		}
	})
	if err != nil {
		return fmt.Errorf("drain drop_counts map: %w", err)
	}
	return nil
}

// perCPU says whether a map of this type holds a value per possible CPU.
func perCPU(typ ebpf.MapType) bool {
	switch typ {
	case ebpf.PerCPUHash, ebpf.PerCPUArray, ebpf.LRUCPUHash, ebpf.PerCPUCGroupStorage:
		return true
	}
	return false
}

// batchBuf holds what one batch lookup copies out; a Tracer keeps one for drop_counts, whose
// values, one per possible CPU, make it large on hosts with many CPUs.
type batchBuf[K, V any] struct {
	keys []K
	vals []V
}

// readMap calls fn with every entry of the hash m, in batches of mapBatch keys copied into buf
// (allocated on first use), and with del deletes each batch as it is read. fn's values are one
// per possible CPU (ncpu) for a per-CPU map, else one; the slice is reused after fn returns.
func readMap[K, V any](m *ebpf.Map, del bool, ncpu int, buf *batchBuf[K, V], fn func(K, []V)) error {
	per := 1
	if perCPU(m.Type()) {
		per = ncpu
	}
	if len(buf.keys) != mapBatch || len(buf.vals) != mapBatch*per {
		buf.keys, buf.vals = make([]K, mapBatch), make([]V, mapBatch*per)
	}
	var (
		keys, vals = buf.keys, buf.vals
		c          ebpf.MapBatchCursor
		op         = m.BatchLookup
	)
	if del {
		op = m.BatchLookupAndDelete
	}
	for first := true; ; first = false {
		n, err := op(&c, keys, vals, nil)
		for i := range n {
			fn(keys[i], vals[i*per:(i+1)*per])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if errors.Is(err, ebpf.ErrNotSupported) && first {
			return readMapOneByOne(m, del, per > 1, fn)
		}
		if err != nil {
			return err
		}
	}
}

// readMapOneByOne is readMap for kernels without batch operations on hash maps (before 5.6).
func readMapOneByOne[K, V any](m *ebpf.Map, del, percpu bool, fn func(K, []V)) error {
	var (
		k    K
		one  V
		many []V
		seen []K
		it   = m.Iterate()
	)
	for {
		if percpu {
			if !it.Next(&k, &many) {
				break
			}
		} else {
			if !it.Next(&k, &one) {
				break
			}
			many = []V{one}
		}
		fn(k, many)
		if del {
			seen = append(seen, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range seen {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete: %w", err)
		}
	}
	return nil
}
