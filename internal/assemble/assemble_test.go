// SPDX-License-Identifier: Apache-2.0

package assemble

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/interval"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/softnet"
	"github.com/droptrace/droptrace/internal/tracer"
)

var testNames = Names{
	Reason:   func(c uint32, _ uint64) string { return map[uint32]string{3: "NO_SOCKET", 71: "CPU_BACKLOG"}[c] },
	Location: func(a uint64) string { return fmt.Sprintf("fn_%x", a) },
	Ifname:   func(ns, idx uint32) string { return fmt.Sprintf("veth%d", idx) },
}

func delta() *interval.Delta {
	return &interval.Delta{
		Evidence: interval.Evidence{Duration: 1500 * time.Millisecond, KernelRuns: map[int]uint64{0: 9}},
		Drops: map[tracer.DropKey][]uint64{
			{Reason: 71, Netns: 1, Ifindex: 2, L3: tracer.EthIPv4, L4: 17, Location: 0xa}: {5, 0},
			{Reason: 71, Netns: 1, Ifindex: 2, L3: 0x0806, Location: 0xa}:                 {1, 0},
			{Reason: 3, Netns: 1, Ifindex: 3, L3: tracer.EthIPv6, L4: 6, Location: 0xb}:   {0, 2},
		},
		NetRx:   map[int]tracer.NetRx{0: {Runs: 9, BusyNs: 2999}, 1: {Runs: 1}, 7: {Runs: 3}},
		Softnet: map[int]softnet.CPUDelta{0: {CPU: 0, Valid: true, Dropped: 6, BacklogLen: 2}},
		CPUs:    map[int]bool{0: true, 1: true},
	}
}

func TestRecord(t *testing.T) {
	in := Input{Type: record.TypeInterval, Seq: 3, Online: map[int]bool{0: true, 1: true},
		Events: Events{Written: 4, WriteFailed: 1, Ports: []record.PortDrops{{Port: 9, Events: 1}, {Port: 53, Events: 8}}}}
	for _, c := range []struct {
		name  string
		netrx bool
		check func(t *testing.T, r *record.Interval)
	}{
		{"drops by reason, CPU, L4, call site and device", true, func(t *testing.T, r *record.Interval) {
			if !reflect.DeepEqual(r.Drops, map[string]uint64{"CPU_BACKLOG": 6, "NO_SOCKET": 2}) || r.DurationMs != 1500 || r.Seq != 3 {
				t.Errorf("drops %v duration %d seq %d", r.Drops, r.DurationMs, r.Seq)
			}
			if want := map[string]map[string]uint64{"CPU_BACKLOG": {"udp": 5, L4None: 1}}; !reflect.DeepEqual(r.CPUs[0].DropsL4, want) {
				t.Errorf("CPU 0 drops_l4 %v", r.CPUs[0].DropsL4)
			}
			if want := []record.Location{{Location: "fn_a", Reason: "CPU_BACKLOG", Count: 6}, {Location: "fn_b", Reason: "NO_SOCKET", Count: 2}}; !reflect.DeepEqual(r.Locations, want) {
				t.Errorf("locations %v", r.Locations)
			}
			if len(r.Devices) != 2 || r.Devices[0].Ifname != "veth2" || r.Devices[1].Drops["NO_SOCKET"] != 2 {
				t.Errorf("devices %+v", r.Devices)
			}
		}},
		{"CPUs: every one seen, and online ones NET_RX covers", true, func(t *testing.T, r *record.Interval) {
			if len(r.CPUs) != 2 || r.CPUs[1].CPU != 1 || len(r.CPUs[1].Drops) != 1 {
				t.Fatalf("CPUs %+v", r.CPUs)
			}
			if n := r.CPUs[0].NetRx; n == nil || n.Runs != 9 || n.KernelRuns != 9 || n.BusyUs != 2 {
				t.Errorf("CPU 0 NET_RX %+v", n)
			}
			if s := r.CPUs[0].Softnet; s == nil || s.Dropped != 6 || s.BacklogLen != 2 {
				t.Errorf("CPU 0 softnet %+v", s)
			}
		}},
		{"no NET_RX accounting when it is not attached", false, func(t *testing.T, r *record.Interval) {
			for _, c := range r.CPUs {
				if c.NetRx != nil {
					t.Errorf("CPU %d NET_RX %+v", c.CPU, c.NetRx)
				}
			}
		}},
		{"tracer health and ports, most events first", true, func(t *testing.T, r *record.Interval) {
			if r.Tracer.EventsWritten != 4 || r.LostEvents != 1 {
				t.Errorf("tracer %+v lost %d", r.Tracer, r.LostEvents)
			}
			if len(r.Ports) != 2 || r.Ports[0].Port != 53 {
				t.Errorf("ports %+v", r.Ports)
			}
			if r.RxDropped != nil || r.NetIRQs != nil {
				t.Errorf("empty host context shows: %v %v", r.RxDropped, r.NetIRQs)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) { c.check(t, Record(delta(), in, testNames, c.netrx)) })
	}
}

func TestChecks(t *testing.T) {
	ok := reconcile.Availability{OK: true}
	avail := Availability{Drops: ok, NetRx: ok, Predict: ok}
	d := delta()
	r := Record(d, Input{Type: record.TypeInterval, Online: map[int]bool{0: true}}, testNames, true)
	in := Reconcile(r, &d.Evidence, avail)
	if !reflect.DeepEqual(in.BacklogByCPU, map[int]uint64{0: 6}) || len(in.CPUs) != 2 || !in.CPUs[0].HasKernelRuns || in.CPUs[1].HasKernelRuns {
		t.Errorf("reconcile input %+v", in)
	}
	if in.CPUs[0].Softnet == nil || in.CPUs[0].Softnet.Dropped != 6 {
		t.Errorf("CPU 0 softnet %+v", in.CPUs[0].Softnet)
	}
	for _, c := range Checks(r, &d.Evidence, avail) {
		if c.Check == reconcile.CheckBacklog && c.Status != record.StatusMatch {
			t.Errorf("6 traced backlog drops, 6 counted: %+v", c)
		}
	}
	d.SoftnetErr = errors.New("gone")
	if in := Reconcile(r, &d.Evidence, avail); in.Softnet.OK || in.Softnet.Why != "/proc/net/softnet_stat unreadable: gone" {
		t.Errorf("softnet availability %+v", in.Softnet)
	}
}

func TestProtocolNames(t *testing.T) {
	for _, c := range []struct {
		l3, l4 uint16
		n3, n4 string
	}{
		{tracer.EthIPv4, 17, "ipv4", "udp"}, {tracer.EthIPv6, 58, "ipv6", "icmpv6"},
		{0x0806, 0, "arp", ""}, {0, 0, "", ""}, {tracer.EthIPv4, 253, "ipv4", "253"}, {0x1234, 6, "0x1234", ""},
	} {
		if n3, n4 := L3Name(c.l3), L4Name(c.l3, c.l4); n3 != c.n3 || n4 != c.n4 {
			t.Errorf("%#x/%d: %q %q, want %q %q", c.l3, c.l4, n3, n4, c.n3, c.n4)
		}
	}
}
