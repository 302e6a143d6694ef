// SPDX-License-Identifier: Apache-2.0

package record

import (
	"encoding/json"
	"math"
	"testing"
)

func TestAddSat(t *testing.T) {
	for _, c := range []struct{ a, b, want uint64 }{
		{1, 2, 3},
		{math.MaxUint64, 0, math.MaxUint64},
		{math.MaxUint64, 1, math.MaxUint64},
		{math.MaxUint64 - 1, math.MaxUint64 - 1, math.MaxUint64},
	} {
		if got := AddSat(c.a, c.b); got != c.want {
			t.Errorf("AddSat(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	for _, c := range []struct{ a, b, want int64 }{
		{1, -2, -1},
		{math.MaxInt64, 1, math.MaxInt64},
		{math.MinInt64, -1, math.MinInt64},
		{math.MaxInt64, math.MinInt64, -1},
	} {
		if got := AddSatInt(c.a, c.b); got != c.want {
			t.Errorf("AddSatInt(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestIntervalAdd(t *testing.T) {
	sc1, sc2 := Sysctl{NetdevBudget: 300}, Sysctl{NetdevBudget: 600}
	for _, c := range []struct {
		name string
		in   []Interval
		want string
	}{
		{
			name: "counts sum, levels peak, settings are the latest",
			in: []Interval{
				{DurationMs: 1000, Drops: map[string]uint64{"A": 1},
					CPUs: []CPU{{CPU: 1, Drops: map[string]uint64{"A": 1}, DropsL4: map[string]map[string]uint64{"A": {"udp": 1}},
						NetRx:   &NetRx{Runs: 2, BusyUs: 5, MaxRunUs: 9},
						Softnet: &Softnet{Processed: 3, BacklogLen: 7}}},
					SNMP: map[string]map[string]int64{"Udp": {"InErrors": 2}}, Sysctl: &sc1,
					Tracer: Tracer{EventsSent: 4}, LostEvents: 1,
					Locations: []Location{{Location: "f", Reason: "A", Count: 1}},
					Devices:   []Device{{Netns: 2, Ifindex: 1, Ifname: "lo", Drops: map[string]uint64{"A": 1}}},
					NetIRQs:   []IRQCount{{IRQ: 30, Ifname: "eth0", Queue: 1, Count: 3, ByCPU: map[int]uint64{0: 3}}},
					Sockstat:  map[string]map[string]int64{"UDP": {"mem": 10}},
					Ports:     []PortDrops{{Reason: "R", L4: "udp", Port: 53, Events: 1, Holder: Holder{PID: 9}, SocketDrops: 5}},
					RxDropped: map[string]uint64{"eth0": 1}, SysctlChanges: []string{"a"}},
				{DurationMs: 500, Drops: map[string]uint64{"A": 2, "B": 1},
					CPUs: []CPU{{CPU: 0, Drops: map[string]uint64{"B": 1}},
						{CPU: 1, Drops: map[string]uint64{"A": 2}, DropsL4: map[string]map[string]uint64{"A": {"udp": 2}},
							NetRx:   &NetRx{Runs: 1, BusyUs: 1, MaxRunUs: 3},
							Softnet: &Softnet{Processed: 1, BacklogLen: 2}}},
					SNMP: map[string]map[string]int64{"Udp": {"InErrors": -1}}, Sysctl: &sc2,
					Locations:     []Location{{Location: "g", Reason: "B", Count: 5}, {Location: "f", Reason: "A", Count: 1}},
					Devices:       []Device{{Netns: 1, Ifindex: 3, Drops: map[string]uint64{"B": 1}}, {Netns: 2, Ifindex: 1, Ifname: "lo", Drops: map[string]uint64{"A": 2}}},
					NetIRQs:       []IRQCount{{IRQ: 30, Ifname: "eth0", Queue: 1, Count: 1, ByCPU: map[int]uint64{1: 1}}},
					Sockstat:      map[string]map[string]int64{"UDP": {"mem": 4, "inuse": 1}},
					Ports:         []PortDrops{{Reason: "R", L4: "udp", Port: 53, Events: 2, SocketDrops: 3}, {Reason: "R", L4: "udp", Port: 9, Events: 7}},
					SysctlChanges: []string{"b"}, MulticastDropEvents: 2},
			},
			want: `{"type":"","time":"0001-01-01T00:00:00.000000000Z","duration_ms":1500,"drops":{"A":3,"B":1},` +
				`"cpus":[{"cpu":0,"drops":{"B":1}},{"cpu":1,"drops":{"A":3},` +
				`"net_rx":{"runs":3,"kernel_runs":0,"busy_us":6,"max_run_us":9,"timed_runs":0,"polls":0,"packets":0,"budget_squeezes":0,"time_squeezes":0,"time_uncertain":0,"other_polls":0,"other_packets":0},` +
				`"softnet":{"processed":4,"dropped":0,"time_squeeze":0,"received_rps":0,"flow_limit":0,"backlog_len":7},"drops_l4":{"A":{"udp":3}}}],` +
				`"snmp":{"Udp":{"InErrors":1}},"checks":null,"lost_events":1,` +
				`"tracer":{"events_sent":4,"events_rate_limited":0,"events_ringbuf_full":0,"events_write_failed":0,"events_written":0,"events_unread":0,"agg_map_full":0,"drop_recursion_misses":0,"net_rx_recursion_misses":0},` +
				`"locations":[{"location":"g","reason":"B","count":5},{"location":"f","reason":"A","count":2}],` +
				`"devices":[{"netns":1,"ifindex":3,"drops":{"B":1}},{"netns":2,"ifindex":1,"ifname":"lo","drops":{"A":3}}],` +
				`"sysctl":{"netdev_budget":600,"netdev_budget_usecs":0,"netdev_max_backlog":0,"dev_weight":0},"sysctl_changes":["a","b"],` +
				// Each interval changed its limits: a span of its own, mixed.
				`"limit_spans":[{"from":"0000-12-31T23:59:59.000000000Z","to":"0001-01-01T00:00:00.000000000Z",` +
				`"sysctl":{"netdev_budget":300,"netdev_budget_usecs":0,"netdev_max_backlog":0,"dev_weight":0},` +
				`"lowest":{"netdev_budget":300,"netdev_budget_usecs":0,"netdev_max_backlog":0,"dev_weight":0},` +
				`"highest":{"netdev_budget":300,"netdev_budget_usecs":0,"netdev_max_backlog":0,"dev_weight":0},"cpus":[]},` +
				`{"from":"0000-12-31T23:59:59.500000000Z","to":"0001-01-01T00:00:00.000000000Z",` +
				`"sysctl":{"netdev_budget":600,"netdev_budget_usecs":0,"netdev_max_backlog":0,"dev_weight":0},` +
				`"lowest":{"netdev_budget":600,"netdev_budget_usecs":0,"netdev_max_backlog":0,"dev_weight":0},` +
				`"highest":{"netdev_budget":600,"netdev_budget_usecs":0,"netdev_max_backlog":0,"dev_weight":0},"cpus":[]}],` +
				`"net_irqs":[{"irq":30,"ifname":"eth0","queue":1,"count":4,"by_cpu":{"0":3,"1":1}}],` +
				`"sockstat":{"UDP":{"inuse":1,"mem":10}},"multicast_drop_events":2,` +
				`"ports":[{"reason":"R","l4":"udp","port":9,"netns":0,"events":7},{"reason":"R","l4":"udp","port":53,"netns":0,"events":3,"pid":9,"socket_drops":5}],` +
				`"rx_dropped":{"eth0":1}}`,
		},
		{
			name: "a hostile recording saturates instead of wrapping",
			in: []Interval{
				{DurationMs: math.MaxInt64, Drops: map[string]uint64{"A": math.MaxUint64}, LostEvents: math.MaxUint64,
					CPUs: []CPU{{CPU: 0, NetRx: &NetRx{Runs: math.MaxUint64}}},
					SNMP: map[string]map[string]int64{"Udp": {"InErrors": math.MinInt64}}},
				{DurationMs: 1, Drops: map[string]uint64{"A": 2}, LostEvents: 1,
					CPUs: []CPU{{CPU: 0, NetRx: &NetRx{Runs: 1}}},
					SNMP: map[string]map[string]int64{"Udp": {"InErrors": -1}}},
			},
			want: `{"type":"","time":"0001-01-01T00:00:00.000000000Z","duration_ms":9223372036854775807,"drops":{"A":18446744073709551615},` +
				`"cpus":[{"cpu":0,"drops":{},"net_rx":{"runs":18446744073709551615,"kernel_runs":0,"busy_us":0,"max_run_us":0,"timed_runs":0,"polls":0,"packets":0,"budget_squeezes":0,"time_squeezes":0,"time_uncertain":0,"other_polls":0,"other_packets":0}}],` +
				`"snmp":{"Udp":{"InErrors":-9223372036854775808}},"checks":null,"lost_events":18446744073709551615,` +
				`"tracer":{"events_sent":0,"events_rate_limited":0,"events_ringbuf_full":0,"events_write_failed":0,"events_written":0,"events_unread":0,"agg_map_full":0,"drop_recursion_misses":0,"net_rx_recursion_misses":0},` +
				`"locations":[],"devices":[]}`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sum Interval
			for i := range c.in {
				sum.Add(&c.in[i])
			}
			b, err := json.Marshal(&sum)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Errorf("sum:\n got %s\nwant %s", b, c.want)
			}
		})
	}
}

// TestIntervalAddCopies guards the session's running total: adding a record must not let
// later additions change the record already written.
func TestIntervalAddCopies(t *testing.T) {
	a := Interval{CPUs: []CPU{{CPU: 0, Drops: map[string]uint64{"A": 1}, NetRx: &NetRx{Runs: 1}}},
		Devices: []Device{{Drops: map[string]uint64{"A": 1}}}, Drops: map[string]uint64{"A": 1}}
	var sum Interval
	sum.Add(&a)
	sum.Add(&a)
	if a.CPUs[0].Drops["A"] != 1 || a.CPUs[0].NetRx.Runs != 1 || a.Devices[0].Drops["A"] != 1 || a.Drops["A"] != 1 {
		t.Fatalf("Add changed its argument: %+v", a)
	}
	if sum.CPUs[0].Drops["A"] != 2 || sum.CPUs[0].NetRx.Runs != 2 {
		t.Fatalf("sum %+v", sum.CPUs[0])
	}
}

func TestTrim(t *testing.T) {
	var s Interval
	for i := 0; i < TopLocations+5; i++ {
		s.Locations = append(s.Locations, Location{Count: uint64(i)})
	}
	for i := 0; i < TopPorts+1; i++ {
		s.Ports = append(s.Ports, PortDrops{Port: uint16(i)})
	}
	s.Trim()
	if len(s.Locations) != TopLocations || len(s.Ports) != TopPorts {
		t.Fatalf("trimmed to %d locations, %d ports", len(s.Locations), len(s.Ports))
	}
}
