// SPDX-License-Identifier: Apache-2.0

package interval

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/sample"
	"github.com/droptrace/droptrace/internal/softnet"
	"github.com/droptrace/droptrace/internal/tracer"
)

var t0 = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

func reasonName(c uint32, _ uint64) string {
	return map[uint32]string{3: "NO_SOCKET", 6: "SOCKET_RCVBUFF"}[c]
}

var (
	udpDrop  = tracer.DropKey{Reason: 6, Netns: 200, L3: tracer.EthIPv4, L4: 17}
	goneDrop = tracer.DropKey{Reason: 3, Netns: 300, L3: tracer.EthIPv4, L4: 6}
	rcvbuf   = reconcile.ReasonL4{Reason: "SOCKET_RCVBUFF", L4: 17}
	noSocket = reconcile.ReasonL4{Reason: "NO_SOCKET", L4: 6}
)

func ns(ino uint64, errs uint64) *sample.Netns {
	return &sample.Netns{NS: netns.NS{Inode: ino, Name: "rx"}, SNMP: map[string]map[string]uint64{"Udp": {"RcvbufErrors": errs}}}
}

func gen(n *sample.Netns, g uint64, name string) *sample.Netns {
	n.NS.Gen, n.NS.Name = g, name
	return n
}

func TestDiff(t *testing.T) {
	for _, c := range []struct {
		name      string
		prev, cur sample.Sample
		check     func(t *testing.T, d *Delta)
	}{
		{
			name: "per-CPU drops subtract, and a key new in cur counts from zero",
			prev: sample.Sample{At: t0, Drops: map[tracer.DropKey][]uint64{udpDrop: {1, 2}}},
			cur: sample.Sample{At: t0.Add(time.Second), Drops: map[tracer.DropKey][]uint64{udpDrop: {1, 7}, goneDrop: {0, 0, 4}},
				Moved: map[reconcile.Key]uint64{{Check: "udp_rcvbuf", CPU: -1}: 2}},
			check: func(t *testing.T, d *Delta) {
				want := map[tracer.DropKey][]uint64{udpDrop: {0, 5}, goneDrop: {0, 0, 4}}
				if !reflect.DeepEqual(d.Drops, want) || d.Duration != time.Second {
					t.Errorf("drops %v duration %s", d.Drops, d.Duration)
				}
				if !d.CPUs[1] || !d.CPUs[2] || d.CPUs[0] {
					t.Errorf("CPUs with drops: %v", d.CPUs)
				}
				if d.Slack[reconcile.Key{Check: "udp_rcvbuf", CPU: -1}] != 2 {
					t.Errorf("slack %v", d.Slack)
				}
			},
		},
		{
			name: "unchanged drop keys are left out",
			prev: sample.Sample{Drops: map[tracer.DropKey][]uint64{udpDrop: {3}}},
			cur:  sample.Sample{Drops: map[tracer.DropKey][]uint64{udpDrop: {3}}},
			check: func(t *testing.T, d *Delta) {
				if len(d.Drops) != 0 {
					t.Errorf("drops %v", d.Drops)
				}
			},
		},
		{
			name: "drops split by whether their namespace's counters are readable in both samples",
			prev: sample.Sample{Netns: map[uint32]*sample.Netns{200: ns(200, 10)}},
			cur: sample.Sample{Drops: map[tracer.DropKey][]uint64{udpDrop: {4}, goneDrop: {1}},
				Netns: map[uint32]*sample.Netns{200: ns(200, 13), 400: ns(400, 1)}},
			check: func(t *testing.T, d *Delta) {
				if n := d.Netns[200]; n.Traced[rcvbuf] != 4 || n.SNMP["Udp"]["RcvbufErrors"] != 3 || n.Why != "" {
					t.Errorf("netns 200: %+v", n)
				}
				if n := d.Netns[300]; n.Unwatched[noSocket] != 1 || n.Why == "" || n.SNMP != nil {
					t.Errorf("vanished netns 300: %+v", n)
				}
				if n := d.Netns[400]; n.SNMP != nil || n.Why != "namespace appeared during the interval: counters have no baseline yet" {
					t.Errorf("new netns 400: %+v", n)
				}
			},
		},
		{
			name: "drops in a namespace missed because the listing failed say why",
			prev: sample.Sample{Netns: map[uint32]*sample.Netns{200: ns(200, 10)}},
			cur: sample.Sample{Drops: map[tracer.DropKey][]uint64{udpDrop: {4}, goneDrop: {1}},
				Netns:    map[uint32]*sample.Netns{200: ns(200, 13)},
				NetnsErr: fmt.Errorf("list network namespaces (kept the 1 listed before): %w", syscall.EMFILE)},
			check: func(t *testing.T, d *Delta) {
				if n := d.Netns[200]; n.Traced[rcvbuf] != 4 || n.Why != "" {
					t.Errorf("netns 200, still listed and read: %+v", n)
				}
				if n := d.Netns[300]; n.Unwatched[noSocket] != 1 || !strings.Contains(n.Why, "not listed") || !strings.Contains(n.Why, "too many open files") {
					t.Errorf("netns 300, not listed: %+v", n)
				}
			},
		},
		{
			name: "a namespace replaced under the same inode (another generation) has no delta; its drops are unwatched",
			prev: sample.Sample{Netns: map[uint32]*sample.Netns{200: gen(ns(200, 10), 1, "a")}},
			cur: sample.Sample{Drops: map[tracer.DropKey][]uint64{udpDrop: {4}},
				Netns: map[uint32]*sample.Netns{200: gen(ns(200, 4), 2, "b")}},
			check: func(t *testing.T, d *Delta) {
				n := d.Netns[200]
				want := "namespace 200 [a] was replaced (inode reused) by [b]: its counters start from a new baseline"
				if n.SNMP != nil || n.Traced[rcvbuf] != 0 || n.Unwatched[rcvbuf] != 4 || n.Why != want || n.Name != "b" {
					t.Errorf("netns 200: %+v", n)
				}
			},
		},
		{
			name: "counters that went backwards are another namespace's: no delta, drops unwatched",
			prev: sample.Sample{Netns: map[uint32]*sample.Netns{200: ns(200, 10)}},
			cur: sample.Sample{Drops: map[tracer.DropKey][]uint64{udpDrop: {4}},
				Netns: map[uint32]*sample.Netns{200: ns(200, 4)}},
			check: func(t *testing.T, d *Delta) {
				n := d.Netns[200]
				if n.SNMP != nil || n.Unwatched[rcvbuf] != 4 || !strings.Contains(n.Why, "replaced (inode reused) by [rx] (Udp RcvbufErrors went backwards)") {
					t.Errorf("netns 200: %+v", n)
				}
			},
		},
		{
			name: "32-bit softnet counters wrap; a CPU without a baseline has none",
			prev: sample.Sample{Softnet: softnet.Table{Columns: 13, CPUs: []softnet.CPU{{CPU: 0, CPUFromKernel: true, Dropped: 0xfffffff0}}},
				Softirqs: map[string]map[int]uint64{"NET_RX": {0: 5}}},
			cur: sample.Sample{Softnet: softnet.Table{Columns: 13, CPUs: []softnet.CPU{{CPU: 0, CPUFromKernel: true, Dropped: 0x10}, {CPU: 1, CPUFromKernel: true}}},
				Softirqs: map[string]map[int]uint64{"NET_RX": {0: 9, 1: 3}}},
			check: func(t *testing.T, d *Delta) {
				if d.Softnet[0].Dropped != 0x20 || !d.CPUs[1] {
					t.Errorf("softnet %+v CPUs %v", d.Softnet, d.CPUs)
				}
				if _, ok := d.Softnet[1]; ok {
					t.Errorf("CPU 1 has no baseline: %+v", d.Softnet[1])
				}
				if !reflect.DeepEqual(d.KernelRuns, map[int]uint64{0: 4}) {
					t.Errorf("kernel runs %v", d.KernelRuns)
				}
			},
		},
		{
			name: "an unreadable source in either sample leaves its deltas out and says why",
			prev: sample.Sample{SoftnetErr: errors.New("gone")},
			cur:  sample.Sample{Softnet: softnet.Table{Columns: 13, CPUs: []softnet.CPU{{CPU: 0, CPUFromKernel: true}}}},
			check: func(t *testing.T, d *Delta) {
				if d.SoftnetErr == nil || len(d.Softnet) != 0 || d.CPUs[0] {
					t.Errorf("err %v softnet %v", d.SoftnetErr, d.Softnet)
				}
			},
		},
		{
			name: "tracer counters subtract; max_run is a level",
			prev: sample.Sample{DropStats: tracer.DropStats{EventsSent: []uint64{1, 1}, RecursionMisses: 2},
				NetRx: []tracer.NetRx{{Runs: 10, MaxRunNs: 900}}, NetRxRecursionMisses: 7},
			cur: sample.Sample{DropStats: tracer.DropStats{EventsSent: []uint64{3, 4}, RecursionMisses: 5},
				NetRx: []tracer.NetRx{{Runs: 15, MaxRunNs: 800, BudgetSqueezes: 2}, {Runs: 1}}, NetRxRecursionMisses: 9},
			check: func(t *testing.T, d *Delta) {
				if d.Stats.Sent != 5 || d.Stats.Recursion != 3 || d.Stats.NetRxRecursion != 2 {
					t.Errorf("stats %+v", d.Stats)
				}
				if n := d.NetRx[0]; n.Runs != 5 || n.MaxRunNs != 800 || n.BudgetSqueezes != 2 {
					t.Errorf("CPU 0 NET_RX %+v", n)
				}
				if n := d.NetRx[1]; n.Runs != 1 {
					t.Errorf("CPU 1 NET_RX %+v", n)
				}
			},
		},
		{
			name: "host context: IRQs and rx_dropped need a baseline, multicast changes need both lists",
			prev: sample.Sample{IRQs: map[int]map[int]uint64{30: {0: 5}}, RxDropped: map[string]uint64{"eth0": 7, "eth1": 1},
				McastOK: true},
			cur: sample.Sample{IRQs: map[int]map[int]uint64{30: {0: 9}, 31: {0: 1}}, RxDropped: map[string]uint64{"eth0": 9, "eth1": 1, "eth2": 4},
				Mcast: []hostctx.McastAddr{{Ifname: "eth0", Addr: "01005e000001"}}, McastOK: true,
				Sockstat: map[string]map[string]int64{"UDP": {"mem": 3}}},
			check: func(t *testing.T, d *Delta) {
				if !reflect.DeepEqual(d.IRQs, map[int]map[int]uint64{30: {0: 4}}) {
					t.Errorf("IRQs %v", d.IRQs)
				}
				if !reflect.DeepEqual(d.RxDropped, map[string]uint64{"eth0": 2}) {
					t.Errorf("rx_dropped %v", d.RxDropped)
				}
				if len(d.Mcast) != 1 || d.Sockstat["UDP"]["mem"] != 3 {
					t.Errorf("mcast %v sockstat %v", d.Mcast, d.Sockstat)
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) { c.check(t, Diff(&c.prev, &c.cur, reasonName)) })
	}
}

// Drops traced in a namespace while its counters were unreadable stay unreconcilable in the
// session's evidence, even once the counters can be read.
func TestEvidenceAdd(t *testing.T) {
	var e Evidence
	e.Add(&Evidence{Duration: time.Second, KernelRuns: map[int]uint64{0: 2},
		Netns: map[uint32]*Netns{200: {Name: "rx", Traced: map[reconcile.ReasonL4]uint64{rcvbuf: 3}, Why: "no baseline"}}})
	e.Add(&Evidence{Duration: time.Second, KernelRuns: map[int]uint64{0: 1}, SoftnetErr: errors.New("x"),
		Netns: map[uint32]*Netns{200: {Traced: map[reconcile.ReasonL4]uint64{rcvbuf: 5}, SNMP: map[string]map[string]int64{"Udp": {"RcvbufErrors": 5}}}}})
	n := e.Netns[200]
	if e.Duration != 2*time.Second || e.KernelRuns[0] != 3 || e.SoftnetErr == nil {
		t.Errorf("evidence %+v", e)
	}
	if n.Name != "rx" || n.Traced[rcvbuf] != 5 || n.Unwatched[rcvbuf] != 3 || n.SNMP["Udp"]["RcvbufErrors"] != 5 || n.Why != "no baseline" {
		t.Errorf("netns %+v", n)
	}
}
