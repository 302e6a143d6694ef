// SPDX-License-Identifier: Apache-2.0

package sample

import (
	"slices"
	"testing"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/snmp"
	"github.com/droptrace/droptrace/internal/tracer"
)

// plan reads what can have moved with drops (new, replaced, unreadable, hot) every sample, and
// each other namespace at least once every NetnsReadEvery samples, a share at a time.
func TestPlanReadsEachNamespaceWithinTheBound(t *testing.T) {
	const every, count = 10, 300
	r := NewReader(Config{NetnsReadEvery: every})
	for i := range count {
		r.nsCache = append(r.nsCache, netns.NS{Inode: uint64(4026532000 + i), Gen: 1})
	}
	hot := uint32(4026532007)
	lastRead := map[uint32]int{}
	// sample simulates a read: every namespace read gets counters, as readProc gives them.
	sample := func(seq int) (read, deferred []netns.NS) {
		p := r.plan()
		counters := func(nss []netns.NS) procCounters {
			pc := procCounters{netns: map[uint32]*Netns{}}
			for _, ns := range nss {
				pc.netns[uint32(ns.Inode)] = &Netns{NS: ns, SNMP: snmp.Counters{}}
			}
			return pc
		}
		before := counters(slices.Concat(p.around, p.turn))
		sm := &Sample{Netns: counters(p.around).netns}
		r.keep(sm, before, p)
		for ino, n := range sm.Netns {
			if n.Deferred {
				deferred = append(deferred, n.NS)
			} else {
				read = append(read, n.NS)
				lastRead[ino] = seq
			}
		}
		return read, deferred
	}
	if read, _ := sample(0); len(read) != count {
		t.Fatalf("first sample read %d of %d namespaces", len(read), count)
	}
	for seq := 1; seq <= 5*every; seq++ {
		r.hot = map[uint32]bool{hot: true}
		read, deferred := sample(seq)
		if len(read)+len(deferred) != count {
			t.Fatalf("sample %d: %d read + %d deferred of %d", seq, len(read), len(deferred), count)
		}
		// Each sample reads about count/every, and the hot one.
		if len(read) < count/every-5 || len(read) > count/every+6 {
			t.Errorf("sample %d read %d namespaces, want about %d", seq, len(read), count/every)
		}
		if lastRead[hot] != seq {
			t.Errorf("sample %d: the namespace with drops was not read", seq)
		}
		for _, ns := range deferred {
			if n := r.last[uint32(ns.Inode)]; !n.Deferred || n.SNMP == nil {
				t.Fatalf("deferred namespace %d kept as %+v", ns.Inode, n)
			}
		}
		for ino, at := range lastRead {
			if seq-at >= every {
				t.Fatalf("sample %d: namespace %d last read in sample %d", seq, ino, at)
			}
		}
	}

	// A namespace replaced under its inode, a new one and one unreadable at its last read are
	// read at once.
	r.hot = nil
	r.nsCache[3].Gen = 2
	r.nsCache = append(r.nsCache, netns.NS{Inode: 4026539999, Gen: 1})
	r.last[uint32(r.nsCache[5].Inode)].Err = netns.ErrGone
	want := map[uint64]bool{r.nsCache[3].Inode: true, 4026539999: true, r.nsCache[5].Inode: true}
	for _, ns := range r.plan().around {
		delete(want, ns.Inode)
	}
	if len(want) != 0 {
		t.Errorf("not read: %v", want)
	}

	// The session's last sample reads every namespace.
	r.ReadAllNext()
	if p := r.plan(); len(p.around) != count+1 {
		t.Errorf("ReadAllNext: %+v", p)
	}
}

// A namespace read for its turn is read once, before the maps, and kept only if the maps show
// no drop in it since: one with drops is deferred, with its last read, to be read around the
// maps next time.
func TestTurnReadKeptOnlyWithoutDrops(t *testing.T) {
	r := NewReader(Config{NetnsReadEvery: 4})
	a, b := netns.NS{Inode: 1, Gen: 1}, netns.NS{Inode: 2, Gen: 1}
	old := snmp.Counters{"Udp": {"NoPorts": 1}}
	r.last = map[uint32]*Netns{1: {NS: a, SNMP: old, Moved: map[string]uint64{"udp_no_port": 2}}, 2: {NS: b, SNMP: old}}
	r.lastRead = map[uint32]int{1: 0, 2: 0}
	r.seq = 3 // both overdue at the next sample
	r.nsCache = []netns.NS{a, b}
	p := r.plan()
	if len(p.turn) != 2 || len(p.around)+len(p.deferred) != 0 {
		t.Fatalf("plan %+v, want both read for their turn", p)
	}
	fresh := snmp.Counters{"Udp": {"NoPorts": 5}}
	before := procCounters{netns: map[uint32]*Netns{1: {NS: a, SNMP: fresh}, 2: {NS: b, SNMP: fresh}}}
	r.hot = map[uint32]bool{1: true} // the maps show drops in a since the last sample
	sm := &Sample{Netns: map[uint32]*Netns{}}
	r.keep(sm, before, p)
	if n := sm.Netns[1]; !n.Deferred || n.SNMP["Udp"]["NoPorts"] != 1 || n.Moved["udp_no_port"] != 2 {
		t.Errorf("a, with drops: %+v, want deferred with its last read", n)
	}
	if n := sm.Netns[2]; n.Deferred || n.SNMP["Udp"]["NoPorts"] != 5 || n.Moved != nil {
		t.Errorf("b, without: %+v, want its read kept, with no slack", n)
	}
	if p := r.plan(); len(p.around) != 1 || p.around[0] != a {
		t.Errorf("next plan %+v, want a read around the maps", p)
	}
}

func TestMovingNamespaces(t *testing.T) {
	a := tracer.DropKey{Reason: 2, Netns: 1}
	b := tracer.DropKey{Reason: 2, Netns: 2}
	c := tracer.DropKey{Reason: 2, Netns: 3}
	got := moving(map[tracer.DropKey][]uint64{a: {1, 2}, b: {3}}, map[tracer.DropKey][]uint64{a: {1, 2}, b: {3, 1}, c: {0, 1}})
	if len(got) != 2 || !got[2] || !got[3] {
		t.Errorf("moving: %v, want namespaces 2 and 3", got)
	}
}
