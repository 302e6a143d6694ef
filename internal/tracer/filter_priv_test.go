// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"errors"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/dropreason"
)

func sum(v []uint64) (s uint64) {
	for _, x := range v {
		s += x
	}
	return s
}

// udpDropsHere is what the aggregate counted of IPv4 UDP drops in this test's namespace.
func udpDropsHere(t *testing.T, tr *Tracer) uint64 {
	t.Helper()
	counts, err := tr.ReadDrops()
	if err != nil {
		t.Fatal(err)
	}
	var udp uint64
	for _, c := range counts {
		if c.Key.L4 == 17 && c.Key.Netns == selfNetns(t) && c.Key.L3 == EthIPv4 {
			udp += sum(c.PerCPU)
		}
	}
	return udp
}

// With a filter set, drops outside it never reach the ring buffer: BPF counts them as
// filtered, before the token bucket, while the aggregate still counts every drop. Datagrams go
// to two closed loopback ports; each case's filter keeps those to the first (want) or none.
func TestPrivFilterKeepsEventsOutOfTheRing(t *testing.T) {
	requireRoot(t)
	reasons, err := dropreason.Load()
	if err != nil {
		t.Skipf("SKIPPED: no drop reasons in this kernel's BTF: %v", err)
	}
	noSocket, _ := reasons.Code("NO_SOCKET")
	socketFilter, _ := reasons.Code("SOCKET_FILTER")
	in, out := closedUDPPort(t), closedUDPPort(t)
	for _, c := range []struct {
		name     string
		filter   Filter
		force    bool
		keepsOut bool // the filter keeps the datagrams to out too
		keepsIn  bool
	}{
		{name: "port", filter: Filter{Ports: []uint16{uint16(in), 1}}, keepsIn: true},
		{name: "port-tracepoint", filter: Filter{Ports: []uint16{uint16(in)}}, force: true, keepsIn: true},
		{name: "port-and-reason", filter: Filter{Ports: []uint16{uint16(in)}, Reasons: []uint32{socketFilter, noSocket}}, keepsIn: true},
		{name: "other-reason", filter: Filter{Reasons: []uint32{socketFilter}}},
		{name: "udp", filter: Filter{Protos: []uint8{17}}, keepsIn: true, keepsOut: true},
		{name: "tcp", filter: Filter{Protos: []uint8{6}}},
		{name: "netns", filter: Filter{Netns: []uint32{selfNetns(t)}, Ports: []uint16{uint16(in)}}, keepsIn: true},
		{name: "other-netns", filter: Filter{Netns: []uint32{1}}},
		{name: "iface-lo", filter: Filter{Ifaces: []Iface{{selfNetns(t), 1}}, Ports: []uint16{uint16(in)}}, keepsIn: true},
		{name: "other-iface", filter: Filter{Ifaces: []Iface{{selfNetns(t), 1 << 30}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, err := Open(Options{Events: true, NoNetRx: true, ForceTracepoint: c.force, MaxEventRate: 1, Filter: c.filter})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			// A rate of one event per second per CPU: if filtered drops took tokens, the
			// datagrams to out would leave none for those to in.
			const n = 20
			sendUDP(t, out, n)
			sendUDP(t, in, 1)
			tr.Detach()

			var ins, outs int
			var e Event
			for {
				err := tr.NextEvent(&e, time.Now().Add(200*time.Millisecond))
				if errors.Is(err, ErrTimeout) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case e.L4 == 17 && int(e.Dport) == in:
					ins++
				case e.L4 == 17 && int(e.Dport) == out:
					outs++
				}
			}
			// When the filter keeps both, the datagrams to out spend the one token first.
			if want := map[bool]int{true: 1}[c.keepsIn]; !c.keepsOut && ins != want {
				t.Errorf("%d events to the port in the filter, want %d", ins, want)
			}
			if c.keepsOut && outs == 0 {
				t.Errorf("no events to port %d, which the filter keeps", out)
			}
			if !c.keepsOut && outs > 0 {
				t.Errorf("%d events to port %d reached userspace through filter %+v", outs, out, c.filter)
			}

			st, err := tr.ReadDropStats()
			if err != nil {
				t.Fatal(err)
			}
			seen, sent, filtered := sum(st.Seen), sum(st.EventsSent), sum(st.Filtered)
			if got := sent + filtered + sum(st.RateLimited) + sum(st.RingFull); got != seen {
				t.Errorf("sent %d + filtered %d + rate-limited + ring full = %d, want every drop seen: %d", sent, filtered, got, seen)
			}
			if !c.keepsOut && filtered < n {
				t.Errorf("filtered %d, want at least the %d datagrams to port %d", filtered, n, out)
			}
			if udp := udpDropsHere(t, tr); udp < n+1 {
				t.Errorf("aggregate counted %d UDP drops, want all %d, filtered or not", udp, n+1)
			}
		})
	}
}

func TestFilterCheck(t *testing.T) {
	if err := (Filter{Ports: make([]uint16, MaxFilterPorts)}).Check(); err != nil {
		t.Errorf("%d ports: %v", MaxFilterPorts, err)
	}
	for _, f := range []Filter{{Ports: make([]uint16, MaxFilterPorts+1)}, {Reasons: make([]uint32, MaxFilterReasons+1)},
		{Netns: make([]uint32, MaxFilterNetns+1)}, {Ifaces: make([]Iface, MaxFilterIfaces+1)}} {
		if err := f.Check(); !errors.Is(err, ErrFilterTooLarge) {
			t.Errorf("Check(%+v) = %v, want ErrFilterTooLarge", f, err)
		}
		if _, err := Open(Options{Filter: f}); !errors.Is(err, ErrFilterTooLarge) {
			t.Errorf("Open with %+v = %v, want ErrFilterTooLarge", f, err)
		}
	}
}
