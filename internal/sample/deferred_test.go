// SPDX-License-Identifier: Apache-2.0

package sample

import (
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
		read, deferred = r.plan()
		sm := &Sample{Netns: map[uint32]*Netns{}}
		for _, ns := range read {
			sm.Netns[uint32(ns.Inode)] = &Netns{NS: ns, SNMP: snmp.Counters{}}
			lastRead[uint32(ns.Inode)] = seq
		}
		r.keep(sm, deferred)
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
	read, _ := r.plan()
	want := map[uint64]bool{r.nsCache[3].Inode: true, 4026539999: true, r.nsCache[5].Inode: true}
	for _, ns := range read {
		delete(want, ns.Inode)
	}
	if len(want) != 0 {
		t.Errorf("not read: %v", want)
	}

	// The session's last sample reads every namespace.
	r.ReadAllNext()
	if read, deferred := r.plan(); len(deferred) != 0 || len(read) != count+1 {
		t.Errorf("ReadAllNext: %d read, %d deferred", len(read), len(deferred))
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
