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
// A namespace that may have drops to check is read around the BPF maps, just before and just
// after, so that a check allows exactly how far its counters moved during the map read. One
// read for its turn had no drops in the previous interval, and so none carried: it is read
// once, just before the maps, and that read is kept only if the maps then show no drop in it
// this interval, so that no traced drop fell between the read and the maps and its span needs
// no slack at either end. Otherwise it is deferred, and read around the maps in the next
// interval (it has drops now). Which namespaces had drops is known only once the maps are
// read, so one with drops this interval is always read in the next one, not this one.

// plan is which namespaces a sample reads, and how.
type plan struct {
	around   []netns.NS // read just before and just after the maps
	turn     []netns.NS // read just before the maps, kept if they show no drop in it
	deferred []netns.NS
}

// plan splits the namespaces listed by how this sample reads them.
func (r *Reader) plan() plan {
	var p plan
	every := r.cfg.NetnsReadEvery
	all := r.readAll || every <= 1
	r.readAll = false
	r.seq++
	for _, ns := range r.nsCache {
		ino := uint32(ns.Inode)
		l := r.last[ino]
		switch {
		case all, l == nil, l.SNMP == nil, l.Err != nil, l.NS.Gen != ns.Gen, r.hot[ino]:
			p.around = append(p.around, ns)
		case r.seq-r.lastRead[ino] >= every, turn(ino, r.seq, every):
			p.turn = append(p.turn, ns)
		default:
			p.deferred = append(p.deferred, ns)
		}
	}
	return p
}

// turn says whether a namespace's periodic read falls on this sample: every namespace once in
// every samples, at a phase from its inode, so that namespaces created together are not all
// read in the same sample.
func turn(ino uint32, seq, every int) bool {
	phase := int((uint64(ino) * 0x9E3779B97F4A7C15 >> 32) % uint64(every))
	return (seq+phase)%every == 0
}

// keep completes sm's namespaces: those read for their turn without drops since, as read
// before the maps, and the deferred ones (with those read for their turn that had drops) as
// their last read left them. It remembers sm's for the next sample.
func (r *Reader) keep(sm *Sample, before procCounters, p plan) {
	if r.lastRead == nil {
		r.lastRead = map[uint32]int{}
	}
	deferred := p.deferred
	for _, ns := range p.turn {
		ino := uint32(ns.Inode)
		if r.hot[ino] {
			deferred = append(deferred, ns)
			continue
		}
		sm.Netns[ino] = before.netns[ino]
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
