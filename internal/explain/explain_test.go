// SPDX-License-Identifier: Apache-2.0

package explain

import (
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/record"
)

func i64(v int64) *int64 { return &v }

var start = &record.Start{HZ: 250, Sysctl: record.Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 8000, NetdevMaxBacklog: 1000, DevWeight: 64}}

func interval(cpus ...record.CPU) *record.Interval {
	iv := &record.Interval{Header: record.Header{Type: record.TypeInterval}, DurationMs: 1000, CPUs: cpus,
		Drops: map[string]uint64{}, SNMP: map[string]map[string]int64{}}
	for _, c := range cpus {
		for r, n := range c.Drops {
			iv.Drops[r] += n
		}
	}
	return iv
}

func find(vs []record.Verdict, id string, cpu int) *record.Verdict {
	for i, v := range vs {
		if v.ID == id && (cpu < 0 && v.CPU == nil || v.CPU != nil && *v.CPU == cpu) {
			return &vs[i]
		}
	}
	return nil
}

func TestBacklogOverflowSeverityIsRelative(t *testing.T) {
	tests := []struct {
		name               string
		processed, dropped uint64
		want               string
	}{
		{"1.5% of the CPU's packets", 98_500, 1_500, record.SeverityCritical},
		{"0.2%", 99_800, 200, record.SeverityWarning},
		{"3 in a million", 999_997, 3, record.SeverityInfo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iv := interval(
				record.CPU{CPU: 0, Drops: map[string]uint64{"CPU_BACKLOG": tc.dropped}, Softnet: &record.Softnet{}},
				record.CPU{CPU: 1, Drops: map[string]uint64{}, Softnet: &record.Softnet{Processed: tc.processed, Dropped: tc.dropped, ReceivedRPS: 900}},
			)
			iv.Checks = []record.Check{{Check: "backlog_drops", Status: record.StatusMatch}}
			v := find(Explain(start, iv), BacklogOverflow, 1)
			if v == nil {
				t.Fatal("no backlog_overflow on CPU 1")
			}
			if v.Severity != tc.want || v.Confidence != record.ConfidenceHigh {
				t.Errorf("severity %s confidence %s, want %s high", v.Severity, v.Confidence, tc.want)
			}
			for _, s := range []string{"CPU 1's input backlog (netdev_max_backlog=1000) overflowed", "RPS steered work here", "enqueued by CPU 0"} {
				if !strings.Contains(v.Cause, s) {
					t.Errorf("cause %q lacks %q", v.Cause, s)
				}
			}
			if !strings.Contains(v.Fix, "sysctl -w net.core.netdev_max_backlog=") {
				t.Errorf("fix %q", v.Fix)
			}
			if find(Explain(start, iv), BacklogOverflow, 0) != nil {
				t.Error("verdict on the enqueuing CPU, whose backlog did not overflow")
			}
		})
	}
}

func TestBacklogFixHoldsTheOverflow(t *testing.T) {
	iv := interval(record.CPU{CPU: 3, Softnet: &record.Softnet{Processed: 10_000, Dropped: 3_000}})
	v := find(Explain(start, iv), BacklogOverflow, 3)
	// 1000 + 3000 rounded up to a power of two.
	if v == nil || !strings.Contains(v.Fix, "netdev_max_backlog=4096 (from 1000") {
		t.Errorf("%+v", v)
	}
}

func TestSqueezesAreSplitByCause(t *testing.T) {
	iv := interval(record.CPU{CPU: 1,
		NetRx:   &record.NetRx{Runs: 1000, Packets: 50_000, BudgetSqueezes: 200, TimeSqueezes: 3, MaxRunUs: 9000},
		Softnet: &record.Softnet{Processed: 50_000, Dropped: 10}})
	vs := Explain(start, iv)
	b, tm := find(vs, BudgetSqueeze, 1), find(vs, TimeSqueeze, 1)
	if b == nil || tm == nil {
		t.Fatalf("verdicts %+v", vs)
	}
	// 20% of runs squeezed with drops on the CPU: critical. 0.3% of runs: informational.
	if b.Severity != record.SeverityCritical || tm.Severity != record.SeverityInfo {
		t.Errorf("budget %s, time %s", b.Severity, tm.Severity)
	}
	if !strings.Contains(b.Fix, "netdev_budget=600 (from 300)") || !strings.Contains(tm.Cause, "longest run took 9000 µs") {
		t.Errorf("budget fix %q / time cause %q", b.Fix, tm.Cause)
	}
	if b.Evidence["budget_squeezes"] != uint64(200) {
		t.Errorf("evidence %v", b.Evidence)
	}
}

func TestSocketAndSimpleVerdicts(t *testing.T) {
	iv := interval(record.CPU{CPU: 0, Drops: map[string]uint64{"SOCKET_RCVBUFF": 500, "NETFILTER_DROP": 7, "NO_SOCKET": 2},
		Softnet: &record.Softnet{Processed: 10_000}})
	iv.SNMP["Udp"] = map[string]int64{"InDatagrams": 9_500}
	iv.Locations = []record.Location{{Location: "nf_hook_slow+0x9e", Reason: "NETFILTER_DROP", Count: 7}}
	iv.Ports = []record.PortDrops{{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9000, Netns: 7, Events: 480}}
	vs := Explain(start, iv)
	s := find(vs, SocketRcvbuf, -1)
	if s == nil || s.Severity != record.SeverityCritical || !strings.Contains(s.Cause, "(5.00% of the packets this host received), mostly to udp port 9000 in netns 7 (480 events)") {
		t.Errorf("socket_rcvbuf %+v", s)
	}
	if nf := find(vs, NetfilterDrop, -1); nf == nil || nf.Evidence["locations"] != "nf_hook_slow+0x9e" {
		t.Errorf("netfilter %+v", nf)
	}
	if ns := find(vs, NoSocket, -1); ns == nil || ns.Severity != record.SeverityInfo {
		t.Errorf("no_socket %+v", ns)
	}
	if vs[0].Severity != record.SeverityCritical {
		t.Errorf("verdicts not sorted by severity: %s first", vs[0].Severity)
	}
}

func TestUnexplainedComesFromMismatches(t *testing.T) {
	iv := interval()
	cpu := 1
	iv.Checks = []record.Check{
		{Check: "udp_rcvbuf", Traced: i64(90), Kernel: i64(100), Status: record.StatusMismatch, Note: "BPF did not see 3 NET_RX runs"},
		{Check: "net_rx_coverage", CPU: &cpu, Traced: i64(97), Kernel: i64(100), Status: record.StatusMismatch},
		{Check: "backlog_drops", Traced: i64(0), Kernel: i64(0), Status: record.StatusMatch},
	}
	vs := Explain(start, iv)
	if len(vs) != 1 || vs[0].ID != Unexplained || vs[0].Confidence != record.ConfidenceLow ||
		!strings.Contains(vs[0].Cause, "a kernel counter moved with no traced cause: BPF did not see 3 NET_RX runs") {
		t.Errorf("%+v", vs)
	}
}

func TestQuietIntervalHasNoVerdicts(t *testing.T) {
	iv := interval(record.CPU{CPU: 0, NetRx: &record.NetRx{Runs: 10}, Softnet: &record.Softnet{Processed: 100}})
	if vs := Explain(start, iv); len(vs) != 0 {
		t.Errorf("verdicts without evidence: %+v", vs)
	}
}

// The classic all-on-CPU0 layout: every eth0 interrupt on CPU 0, busy in NET_RX and dropping,
// CPUs 1-3 idle, irqbalance off.
func TestIRQConcentration(t *testing.T) {
	cpus := []record.CPU{
		{CPU: 0, NetRx: &record.NetRx{Runs: 5000, BusyUs: 700_000}, Softnet: &record.Softnet{Processed: 900_000, Dropped: 20_000}},
		{CPU: 1, NetRx: &record.NetRx{Runs: 10, BusyUs: 1_000}, Softnet: &record.Softnet{}},
		{CPU: 2, NetRx: &record.NetRx{Runs: 10, BusyUs: 1_000}, Softnet: &record.Softnet{}},
		{CPU: 3, NetRx: &record.NetRx{Runs: 10, BusyUs: 1_000}, Softnet: &record.Softnet{}},
	}
	iv := interval(cpus...)
	for q := 0; q < 4; q++ {
		iv.NetIRQs = append(iv.NetIRQs, record.IRQCount{IRQ: 45 + q, Ifname: "eth0", Queue: q, Count: 5000, ByCPU: map[int]uint64{0: 5000}})
	}
	st := *start
	st.Context = &record.HostContext{Irqbalance: false}
	v := find(Explain(&st, iv), IRQConcentration, 0)
	if v == nil {
		t.Fatal("no irq_concentration verdict")
	}
	if v.Severity != record.SeverityCritical || !strings.Contains(v.Cause, "100% of network interrupts (20000 of 20000) landed on CPU 0, busy 70% in NET_RX, while CPUs [1 2 3] were nearly idle") {
		t.Errorf("%s: %s", v.Severity, v.Cause)
	}
	for _, want := range []string{"systemctl enable --now irqbalance", "echo 1 > /proc/irq/46/smp_affinity_list", "echo 3 > /proc/irq/48/smp_affinity_list"} {
		if !strings.Contains(v.Fix, want) {
			t.Errorf("fix %q lacks %q", v.Fix, want)
		}
	}

	// One queue: RPS to the idle CPUs (mask e = CPUs 1-3).
	iv.NetIRQs = iv.NetIRQs[:1]
	iv.NetIRQs[0].Count, iv.NetIRQs[0].ByCPU = 20000, map[int]uint64{0: 20000}
	v = find(Explain(&st, iv), IRQConcentration, 0)
	if v == nil || !strings.Contains(v.Fix, "echo e > /sys/class/net/eth0/queues/rx-0/rps_cpus") {
		t.Errorf("single queue: %+v", v)
	}

	// Spread interrupts: no verdict.
	iv.NetIRQs[0].ByCPU = map[int]uint64{0: 5000, 1: 5000, 2: 5000, 3: 5000}
	if v := find(Explain(&st, iv), IRQConcentration, 0); v != nil {
		t.Errorf("verdict for spread interrupts: %+v", v)
	}
}

func TestUDPMemoryPressureAndMulticast(t *testing.T) {
	iv := interval(record.CPU{CPU: 0, Drops: map[string]uint64{"SOCKET_RCVBUFF": 100}, Softnet: &record.Softnet{Processed: 1000}})
	iv.Sockstat = map[string]map[string]int64{"UDP": {"inuse": 3, "mem": 800000}}
	iv.McastChanges = []string{"eth0 left 01005e0000fb"}
	iv.MulticastDropEvents = 42
	st := *start
	st.Context = &record.HostContext{Sysctls: map[string]string{"udp_mem": "575799 767734 1151598", "rmem_max": "212992", "rmem_default": "212992"}}
	vs := Explain(&st, iv)
	v := find(vs, SocketRcvbuf, -1)
	if v == nil || !strings.Contains(v.Cause, "UDP memory is under pressure host-wide (800000 pages in use, udp_mem pressure at 767734)") ||
		!strings.HasPrefix(v.Fix, "raise net.ipv4.udp_mem") || !strings.Contains(v.Fix, "(now rmem_max=212992, rmem_default=212992)") {
		t.Errorf("%+v", v)
	}
	m := find(vs, MulticastChange, -1)
	if m == nil || !strings.Contains(m.Cause, "42 drop events to multicast groups coincide with membership changes: eth0 left 01005e0000fb") {
		t.Errorf("%+v", m)
	}
	iv.Sockstat["UDP"]["mem"] = 10
	if v := find(Explain(&st, iv), SocketRcvbuf, -1); strings.Contains(v.Cause, "pressure") {
		t.Errorf("pressure claimed below the threshold: %s", v.Cause)
	}
}

// A summary over a session in which netdev_max_backlog was raised: the overflows may have
// happened under the old limit, so the verdict reasons from it and says it changed.
func TestBacklogLimitChangedDuringSession(t *testing.T) {
	iv := interval(record.CPU{CPU: 1, Softnet: &record.Softnet{Processed: 100_000, Dropped: 3_000}})
	iv.Type = record.TypeSummary
	iv.Sysctl = &record.Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 8000, NetdevMaxBacklog: 4096}
	iv.SysctlChanges = []string{"netdev_max_backlog 1000->4096 at 03:14:07.000"}
	v := find(Explain(start, iv), BacklogOverflow, 1)
	if v == nil || !strings.Contains(v.Cause, "netdev_max_backlog=1000 (1000 at the start, 4096 at the end") ||
		!strings.Contains(v.Fix, "netdev_max_backlog=4096 (from 1000: would have held the session's overflow)") {
		t.Errorf("%+v", v)
	}
}

// The socket's owner is named by its pod and container when known, else by its cgroup.
func TestSocketRcvbufNamesThePod(t *testing.T) {
	iv := interval(record.CPU{CPU: 0, Drops: map[string]uint64{"SOCKET_RCVBUFF": 500}, Softnet: &record.Softnet{Processed: 10_000}})
	pod := record.PortDrops{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9000, Netns: 7, Drops: 500, Holder: record.Holder{PID: 4121, Comm: "python3",
		Cgroup: "/kubepods.slice/kubepods-pod1.slice/cri-containerd-1.scope", Pod: "default/web-0", Container: "app", PodUID: "1"}}
	sandbox := pod
	sandbox.Port, sandbox.Container = 9001, ""
	service := record.PortDrops{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9002, Netns: 7, Drops: 5, Holder: record.Holder{PID: 42, Comm: "collector",
		Cgroup: "/system.slice/collector.service"}}
	iv.Ports = []record.PortDrops{pod, sandbox, service}
	s := find(Explain(start, iv), SocketRcvbuf, -1)
	for _, want := range []string{
		"udp port 9000 in netns 7 (500 drops; socket of pid 4121 (python3) in pod default/web-0 container app)",
		"udp port 9001 in netns 7 (500 drops; socket of pid 4121 (python3) in pod default/web-0)",
		"udp port 9002 in netns 7 (5 drops; socket of pid 42 (collector) in cgroup /system.slice/collector.service)",
	} {
		if s == nil || !strings.Contains(s.Cause, want) {
			t.Errorf("socket_rcvbuf %+v does not say %q", s, want)
		}
	}
}
