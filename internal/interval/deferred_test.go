// SPDX-License-Identifier: Apache-2.0

package interval

import (
	"reflect"
	"testing"

	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/sample"
	"github.com/droptrace/droptrace/internal/tracer"
)

// deferred is n as a sample that did not read it carries it.
func deferred(n *sample.Netns) *sample.Netns {
	c := *n
	c.Deferred = true
	return &c
}

// A namespace deferred for two intervals: its drops are carried, not checked, until the read
// that closes its span checks them all against the counters' delta over the span, with the
// slack of the read that opened it. Every interval says what it read and what it deferred.
func TestDiffCarriesDeferredNamespace(t *testing.T) {
	slackKey := reconcile.Key{Check: "udp_rcvbuf", CPU: -1}
	open := ns(200, 10)
	open.Moved = map[string]uint64{"udp_rcvbuf": 1}
	s0 := &sample.Sample{Netns: map[uint32]*sample.Netns{200: open, 400: ns(400, 0)},
		Drops: map[tracer.DropKey][]uint64{udpDrop: {5}}}
	s1 := &sample.Sample{Netns: map[uint32]*sample.Netns{200: deferred(open), 400: ns(400, 0)},
		Drops: map[tracer.DropKey][]uint64{udpDrop: {7}}}
	s2 := &sample.Sample{Netns: map[uint32]*sample.Netns{200: deferred(open), 400: deferred(ns(400, 0))},
		Drops: map[tracer.DropKey][]uint64{udpDrop: {8}}}
	s3 := &sample.Sample{Netns: map[uint32]*sample.Netns{200: ns(200, 14), 400: ns(400, 0)},
		Drops: map[tracer.DropKey][]uint64{udpDrop: {9}}}

	d := Diff(s0, s1, reasonName)
	if d.Netns[200] != nil || !reflect.DeepEqual(s1.Netns[200].Carried, map[reconcile.ReasonL4]uint64{rcvbuf: 2}) {
		t.Errorf("interval 1: evidence %+v, carried %v; want none, and 2 carried", d.Netns[200], s1.Netns[200].Carried)
	}
	if c := d.Coverage; c == nil || !reflect.DeepEqual(c.Read, []uint32{400}) || c.Deferred != 1 || !reflect.DeepEqual(c.Carried, []uint32{200}) {
		t.Errorf("interval 1 coverage %+v", d.Coverage)
	}
	d = Diff(s1, s2, reasonName)
	if c := d.Coverage; c == nil || len(c.Read) != 0 || c.Read == nil || c.Deferred != 2 || !reflect.DeepEqual(c.Carried, []uint32{200}) {
		t.Errorf("interval 2 coverage %+v", d.Coverage)
	}
	if s2.Netns[200].Carried[rcvbuf] != 3 || len(s1.Netns[200].Carried) != 1 || s1.Netns[200].Carried[rcvbuf] != 2 {
		t.Errorf("interval 2 carries %v (the previous sample's %v must stay as it was)", s2.Netns[200].Carried, s1.Netns[200].Carried)
	}
	d = Diff(s2, s3, reasonName)
	n := d.Netns[200]
	if n == nil || n.Traced[rcvbuf] != 4 || n.SNMP["Udp"]["RcvbufErrors"] != 4 || len(n.Unwatched) != 0 {
		t.Fatalf("interval 3 (read): %+v, want 4 traced over the span and a delta of 4", n)
	}
	if d.Slack[slackKey] != 1 {
		t.Errorf("slack %v: want the movement at the read that opened the span", d.Slack)
	}
	if d.Coverage != nil {
		t.Errorf("every namespace read: coverage %+v, want none", d.Coverage)
	}
}

// Drops carried by a namespace that is gone by its next read are reported unwatched, never
// lost; one replaced under its inode likewise.
func TestDiffCarriedDropsOfAGoneNamespace(t *testing.T) {
	a := gen(ns(200, 10), 1, "a")
	s0 := &sample.Sample{Netns: map[uint32]*sample.Netns{200: a}}
	s1 := &sample.Sample{Netns: map[uint32]*sample.Netns{200: deferred(a)}, Drops: map[tracer.DropKey][]uint64{udpDrop: {3}}}
	Diff(s0, s1, reasonName)
	gone := &sample.Sample{Netns: map[uint32]*sample.Netns{}, Drops: s1.Drops}
	if n := Diff(s1, gone, reasonName).Netns[200]; n == nil || n.Unwatched[rcvbuf] != 3 || n.Name != "a" || n.Why == "" {
		t.Errorf("gone: %+v, want 3 unwatched with a reason", n)
	}
	replacedBy := &sample.Sample{Netns: map[uint32]*sample.Netns{200: gen(ns(200, 0), 2, "b")}, Drops: s1.Drops}
	if n := Diff(s1, replacedBy, reasonName).Netns[200]; n == nil || n.Unwatched[rcvbuf] != 3 || n.SNMP != nil {
		t.Errorf("replaced: %+v, want 3 unwatched and no delta", n)
	}
}
