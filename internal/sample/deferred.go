// SPDX-License-Identifier: Apache-2.0

package sample

import (
	"slices"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Reading a namespace's counters (entering it, and the kernel summing per-CPU counters into
// three files) is most of what an idle session costs per namespace, so a sample reads only the
// namespaces whose counters can have moved with drops to check, and a rotating share of the
// others; the rest keep their last read. A deferred namespace's next read closes a span of
// several intervals, checked against the drops traced in it over the same span (interval.Diff
// carries them), so nothing is lost, only checked later.
//
// A namespace with drops in this interval is read in the next one, not this one: each read is
// two, just before and just after the BPF maps, so that a check allows exactly how far the
// counters moved during the map read, and which namespaces had drops is known only once the
// maps are read. Its drops are carried to that read.

// plan splits the namespaces listed into those this sample reads and those it defers.
func (r *Reader) plan() (read, deferred []netns.NS) {
	every := r.cfg.NetnsReadEvery
	all := r.readAll || every <= 1
	r.readAll = false
	r.seq++
	for _, ns := range r.nsCache {
		ino := uint32(ns.Inode)
		l := r.last[ino]
		switch {
		case all, l == nil, l.SNMP == nil, l.Err != nil, l.NS.Gen != ns.Gen, r.hot[ino],
			r.seq-r.lastRead[ino] >= every, turn(ino, r.seq, every):
			read = append(read, ns)
		default:
			deferred = append(deferred, ns)
		}
	}
	return read, deferred
}

// turn says whether a namespace's periodic read falls on this sample: every namespace once in
// every samples, at a phase from its inode, so that namespaces created together are not all
// read in the same sample.
func turn(ino uint32, seq, every int) bool {
	phase := int((uint64(ino) * 0x9E3779B97F4A7C15 >> 32) % uint64(every))
	return (seq+phase)%every == 0
}

// keep adds the deferred namespaces to sm, each as its last read left it, and remembers sm's.
func (r *Reader) keep(sm *Sample, deferred []netns.NS) {
	if r.lastRead == nil {
		r.lastRead = map[uint32]int{}
	}
	for ino := range sm.Netns {
		r.lastRead[ino] = r.seq
	}
	for _, ns := range deferred {
		ino := uint32(ns.Inode)
		n := *r.last[ino]
		n.NS, n.Deferred = ns, true
		sm.Netns[ino] = &n
	}
	for ino := range r.lastRead {
		if sm.Netns[ino] == nil {
			delete(r.lastRead, ino)
		}
	}
	r.last = sm.Netns
}

// moving lists the namespaces whose traced drops changed between two reads of the BPF maps.
func moving(prev, cur map[tracer.DropKey][]uint64) map[uint32]bool {
	hot := map[uint32]bool{}
	for k, v := range cur {
		if !slices.Equal(v, prev[k]) {
			hot[k.Netns] = true
		}
	}
	return hot
}
