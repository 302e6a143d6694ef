// SPDX-License-Identifier: Apache-2.0

package view

import (
	"time"

	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/record"
)

// The records below are written by hand, shaped like what internal/session and
// internal/reconcile produce on a real host, so that the goldens read like real screens.

func ptr[T any](v T) *T { return &v }

var at = time.Date(2025, 11, 23, 3, 14, 7, 123456789, time.UTC)

var allProbes = map[string]string{
	"skb:kfree_skb":     "tp_btf",
	"irq:softirq_entry": "tp_btf",
	"irq:softirq_exit":  "tp_btf",
	"napi:napi_poll":    "tp_btf",
}

func fullStart() *record.Start {
	return &record.Start{
		Header:         record.Header{Type: record.TypeStart, Time: record.Time(at.Add(-42 * time.Second))},
		SchemaVersion:  record.SchemaVersion,
		Version:        "v0.3.0",
		Hostname:       "edge-lb-07",
		Kernel:         "6.8.0-45-generic",
		CPUs:           []int{0, 1},
		HZ:             250,
		HZSource:       "kconfig",
		Sysctl:         record.Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 2000, NetdevMaxBacklog: 1000, DevWeight: 64},
		Mode:           record.ModeFull,
		Probes:         allProbes,
		IntervalMs:     1000,
		SoftnetColumns: 13,
		DropReasons:    118,
		Netns:          4026531840,
	}
}

// fullInterval: a 1 s interval in which CPU 1, the one the NIC's only queue interrupts, drops
// 812 packets at its backlog and squeezes 14 times, 12 of which BPF predicted (9 on budget, 3
// on time) while it missed 4 NET_RX runs, so the squeeze check fails on CPU 1.
func fullInterval() *record.Interval {
	iv := &record.Interval{
		Header:     record.Header{Type: record.TypeInterval, Time: record.Time(at)},
		Seq:        42,
		DurationMs: 1000,
		Drops: map[string]uint64{
			"CPU_BACKLOG": 812, "SOCKET_RCVBUFF": 40, "NO_SOCKET": 5, "NOT_SPECIFIED": 2, "TCP_LISTEN_OVERFLOW": 1,
		},
		CPUs: []record.CPU{
			{
				CPU:     0,
				Drops:   map[string]uint64{"NO_SOCKET": 5},
				NetRx:   &record.NetRx{Runs: 1180, KernelRuns: 1180, BusyUs: 12034, MaxRunUs: 310, Polls: 1502, Packets: 15210},
				Softnet: &record.Softnet{Processed: 15210},
			},
			{
				CPU:   1,
				Drops: map[string]uint64{"CPU_BACKLOG": 812, "SOCKET_RCVBUFF": 40, "NOT_SPECIFIED": 2, "TCP_LISTEN_OVERFLOW": 1},
				NetRx: &record.NetRx{Runs: 3996, KernelRuns: 4000, BusyUs: 380412, MaxRunUs: 2210, Polls: 9120,
					Packets: 205112, BudgetSqueezes: 9, TimeSqueezes: 3},
				Softnet: &record.Softnet{Processed: 205112, Dropped: 812, TimeSqueeze: 14, BacklogLen: 1000},
			},
		},
		SNMP: map[string]map[string]int64{
			"Udp":    {"InDatagrams": 180000, "NoPorts": 5, "InErrors": 40, "RcvbufErrors": 40},
			"TcpExt": {"ListenOverflows": 1, "ListenDrops": 1},
		},
		Checks: []record.Check{
			{Check: "backlog_drops", Traced: ptr[int64](812), Kernel: ptr[int64](812), Status: record.StatusMatch,
				Note: "freed on (enqueuing CPU) CPU 1: 812; counted on (backlog CPU) CPU 1: 812"},
			{Check: "net_rx_coverage", CPU: ptr(0), Traced: ptr[int64](1180), Kernel: ptr[int64](1180), Status: record.StatusMatch},
			{Check: "net_rx_coverage", CPU: ptr(1), Traced: ptr[int64](3996), Kernel: ptr[int64](4000), Status: record.StatusMatch,
				Note: "differs by 4, within the 4 runs that can fall between the two reads"},
			{Check: "time_squeeze", CPU: ptr(0), Traced: ptr[int64](0), Kernel: ptr[int64](0), Status: record.StatusMatch},
			{Check: "time_squeeze", CPU: ptr(1), Traced: ptr[int64](12), Kernel: ptr[int64](14), Status: record.StatusMismatch,
				Note: "predicted 9 budget + 3 time; 2 squeezes not predicted, explained by the 4 NET_RX runs BPF did not see on this CPU"},
			{Check: "udp_rcvbuf", Traced: ptr[int64](40), Kernel: ptr[int64](40), Status: record.StatusMatch},
			{Check: "udp_no_port", Traced: ptr[int64](5), Kernel: ptr[int64](5), Status: record.StatusMatch},
			{Check: "tcp_listen_overflow", Traced: ptr[int64](1), Kernel: ptr[int64](1), Status: record.StatusMatch},
		},
		Tracer: record.Tracer{EventsFiltered: 815, SockMapFull: 3},
		Locations: []record.Location{
			{Location: "enqueue_to_backlog+0x2f4", Reason: "CPU_BACKLOG", Count: 812},
			{Location: "__udp_enqueue_schedule_skb+0x1a8", Reason: "SOCKET_RCVBUFF", Count: 40},
			{Location: "__udp4_lib_rcv+0x9e1", Reason: "NO_SOCKET", Count: 5},
			{Location: "tcp_v4_rcv+0x12c", Reason: "NOT_SPECIFIED", Count: 2},
		},
		Devices: []record.Device{
			{Netns: 4026531840, Ifindex: 2, Ifname: "eth0", Drops: map[string]uint64{"CPU_BACKLOG": 812, "SOCKET_RCVBUFF": 40, "NO_SOCKET": 5}},
		},
		Ports: []record.PortDrops{
			{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 5514, Netns: 4026531840, Drops: 40, Addr: "10.0.0.5",
				Holder:      record.Holder{PID: 4242, Comm: "collector", Cgroup: "/system.slice/collector.service", SharedWith: []int{4243}},
				SocketDrops: 91234, Queue: 4352, RcvBuf: 4608},
			{Reason: "NO_SOCKET", L4: "udp", Port: 5353, Netns: 4026531840, Drops: 5, Addr: "fe80::1"},
		},
		Listeners: []record.Listener{{Netns: 4026531840, Addr: "127.0.0.1", Port: 8080, AcceptQueue: 129, AcceptBacklog: ptr[uint64](128),
			Holder: record.Holder{PID: 4300, Comm: "api", Pod: "shop/api-7d9f", Container: "api"}}},
	}
	// The verdicts droptrace's explain package derives from the numbers above.
	iv.Verdicts = explain.Explain(fullStart(), iv)
	return iv
}

func countersOnlyStart() *record.Start {
	s := fullStart()
	s.Hostname = "db-replica-3"
	s.Kernel = "5.4.0-216-generic"
	s.CPUs = []int{0, 1, 2, 3}
	s.Mode = record.ModeCountersOnly
	s.Probes = map[string]string{"skb:kfree_skb": "unavailable: counters-only"}
	s.DropReasons = 0
	s.HZSource = "kconfig"
	return s
}

// countersOnlyInterval: no BPF, so per-CPU drops and NET_RX are unknown; CPU 2 overflows its
// backlog and CPU 3 has no softnet baseline (it came online during the interval).
func countersOnlyInterval() *record.Interval {
	const why = "counters-only mode: no BPF program attached"
	iv := &record.Interval{
		Header:     record.Header{Type: record.TypeInterval, Time: record.Time(at)},
		Seq:        7,
		DurationMs: 2000,
		Drops:      map[string]uint64{},
		CPUs: []record.CPU{
			{CPU: 0, Drops: map[string]uint64{}, Softnet: &record.Softnet{Processed: 40210}},
			{CPU: 1, Drops: map[string]uint64{}, Softnet: &record.Softnet{Processed: 38877, TimeSqueeze: 2}},
			{CPU: 2, Drops: map[string]uint64{}, Softnet: &record.Softnet{Processed: 912004, Dropped: 1530, TimeSqueeze: 220, BacklogLen: 1000}},
			{CPU: 3, Drops: map[string]uint64{}},
		},
		SNMP:      map[string]map[string]int64{"Udp": {"InDatagrams": 990000, "RcvbufErrors": 0}},
		Locations: []record.Location{},
		Devices:   []record.Device{},
	}
	iv.Checks = append(iv.Checks, record.Check{Check: "backlog_drops", Status: record.StatusUnavailable, Note: why})
	for _, name := range []string{"net_rx_coverage", "time_squeeze"} {
		for cpu := range 4 {
			iv.Checks = append(iv.Checks, record.Check{Check: name, CPU: ptr(cpu), Status: record.StatusUnavailable, Note: why})
		}
	}
	for _, name := range []string{"udp_rcvbuf", "udp_no_port", "tcp_listen_overflow"} {
		iv.Checks = append(iv.Checks, record.Check{Check: name, Status: record.StatusUnavailable, Note: why})
	}
	return iv
}

// summary: a 90.5 s session with drop events on and one sysctl change, where the event rate limit and a full ring
// buffer lost events (not counts), and one namespace's counters could not be read.
func summary() *record.Interval {
	iv := fullInterval()
	iv.Type = record.TypeSummary
	iv.Seq = 0
	iv.Time = record.Time(at.Add(48 * time.Second))
	iv.DurationMs = 90500
	iv.Drops = map[string]uint64{"CPU_BACKLOG": 61022, "SOCKET_RCVBUFF": 3120, "NO_SOCKET": 388, "NOT_SPECIFIED": 97, "TCP_LISTEN_OVERFLOW": 12}
	iv.CPUs[0].Drops = map[string]uint64{"NO_SOCKET": 388, "NOT_SPECIFIED": 40}
	iv.CPUs[0].NetRx = &record.NetRx{Runs: 106201, KernelRuns: 106201, BusyUs: 1090330, MaxRunUs: 402, Polls: 135020, Packets: 1369002}
	iv.CPUs[0].Softnet = &record.Softnet{Processed: 1369002}
	iv.CPUs[1].Drops = map[string]uint64{"CPU_BACKLOG": 61022, "SOCKET_RCVBUFF": 3120, "NOT_SPECIFIED": 57, "TCP_LISTEN_OVERFLOW": 12}
	iv.CPUs[1].NetRx = &record.NetRx{Runs: 359640, KernelRuns: 359640, BusyUs: 34421870, MaxRunUs: 2390, Polls: 820801,
		Packets: 18460100, BudgetSqueezes: 802, TimeSqueezes: 311, OtherPolls: 12, OtherPackets: 40}
	iv.CPUs[1].Softnet = &record.Softnet{Processed: 18460100, Dropped: 61022, TimeSqueeze: 1113, BacklogLen: 1000}
	iv.Checks = []record.Check{
		{Check: "backlog_drops", Traced: ptr[int64](61022), Kernel: ptr[int64](61022), Status: record.StatusMatch},
		{Check: "net_rx_coverage", CPU: ptr(0), Traced: ptr[int64](106201), Kernel: ptr[int64](106201), Status: record.StatusMatch},
		{Check: "net_rx_coverage", CPU: ptr(1), Traced: ptr[int64](359640), Kernel: ptr[int64](359640), Status: record.StatusMatch},
		{Check: "time_squeeze", CPU: ptr(0), Traced: ptr[int64](0), Kernel: ptr[int64](0), Status: record.StatusMatch},
		{Check: "time_squeeze", CPU: ptr(1), Traced: ptr[int64](1113), Kernel: ptr[int64](1113), Status: record.StatusMatch,
			Note: "predicted 802 budget + 311 time"},
		{Check: "udp_rcvbuf", Traced: ptr[int64](3120), Kernel: ptr[int64](3120), Status: record.StatusMatch},
		{Check: "udp_no_port", Traced: ptr[int64](388), Kernel: ptr[int64](388), Status: record.StatusMatch},
		{Check: "tcp_listen_overflow", Status: record.StatusUnavailable,
			Note: "no network namespace's counters could be read: netns 4026532890 [web] (open /proc/81234/net/netstat: permission denied)"},
	}
	// The user doubled netdev_budget mid-session: the header shows the value in force.
	iv.Sysctl = &record.Sysctl{NetdevBudget: 600, NetdevBudgetUsecs: 2000, NetdevMaxBacklog: 1000, DevWeight: 64}
	iv.SysctlChanges = []string{"netdev_budget 300->600 at 03:14:31.402"}
	iv.LostEvents = 1234 + 34
	iv.Tracer = record.Tracer{EventsSent: 20000, EventsRateLimited: 1234, EventsRingbufFull: 34, EventsWritten: 20000,
		DropRecursionMisses: 2}
	iv.Locations = []record.Location{
		{Location: "enqueue_to_backlog+0x2f4", Reason: "CPU_BACKLOG", Count: 61022},
		{Location: "__udp_enqueue_schedule_skb+0x1a8", Reason: "SOCKET_RCVBUFF", Count: 3120},
		{Location: "__udp4_lib_rcv+0x9e1", Reason: "NO_SOCKET", Count: 388},
	}
	return iv
}
