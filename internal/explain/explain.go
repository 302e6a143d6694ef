// SPDX-License-Identifier: Apache-2.0

// Package explain turns the evidence of one interval (or a whole session) into verdicts: which
// loss happened where, why, and what to change, with the numbers each rests on.
//
// It works only from records (start + interval/summary), so a recording can be re-explained
// offline on any machine by `droptrace analyze` with the same rules as the live session.
//
// Severity is relative to the traffic, not an absolute count: a handful of squeezes in a
// million packets is not an incident, 1% of a CPU's packets dropped is. Confidence says how
// well the traced evidence agrees with the kernel's own counters.
package explain

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/record"
)

// Thresholds of loss relative to traffic.
const (
	criticalRatio = 0.01  // 1% of packets lost: users notice
	warningRatio  = 0.001 // 0.1%: worth fixing before it grows
	// A squeeze ends a NET_RX run with work left; it delays packets but loses none by itself.
	squeezeWarningRatio = 0.05 // of NET_RX runs
)

// IDs of the verdicts.
const (
	BacklogOverflow  = "backlog_overflow"
	BudgetSqueeze    = "budget_squeeze"
	TimeSqueeze      = "time_squeeze"
	SocketRcvbuf     = "socket_rcvbuf"
	ListenOverflow   = "listen_overflow"
	NetfilterDrop    = "netfilter_drop"
	NoSocket         = "no_socket"
	IRQConcentration = "irq_concentration"
	MulticastChange  = "multicast_change"
	Unexplained      = "unexplained"
)

// Explain derives the verdicts of one interval or summary record. start gives the settings in
// force (the record's own sysctl, when present, wins: it is what was in force at its end).
func Explain(start *record.Start, iv *record.Interval) []record.Verdict {
	e := &explainer{iv: iv, start: start, dur: time.Duration(iv.DurationMs) * time.Millisecond}
	if start != nil {
		e.sysctl = start.Sysctl
		e.hz = start.HZ
	}
	if iv.Sysctl != nil {
		e.sysctl = *iv.Sysctl
	}
	e.checks = map[string]record.Check{}
	for _, c := range iv.Checks {
		k := c.Check
		if c.CPU != nil {
			k = fmt.Sprintf("%s/%d", c.Check, *c.CPU)
		}
		e.checks[k] = c
	}
	e.backlog()
	e.squeezes()
	e.irqConcentration()
	e.socketRcvbuf()
	e.listenOverflow()
	e.simple(NetfilterDrop, "NETFILTER_DROP", "netfilter (iptables/nftables) rules dropped packets",
		"review the rules that match this traffic: `nft list ruleset` or `iptables-save -c` shows per-rule counters; the drop location names the hook")
	e.simple(NoSocket, "NO_SOCKET", "packets arrived for ports nothing listens on (UDP answered with ICMP port unreachable, TCP with RST)",
		"usually a client or scanner problem, not this host's; if a service should be listening, check it is up and bound to the right address and port")
	e.multicast()
	e.unexplained()
	sort.SliceStable(e.out, func(i, j int) bool { return SeverityRank(e.out[i].Severity) > SeverityRank(e.out[j].Severity) })
	return e.out
}

type explainer struct {
	iv     *record.Interval
	start  *record.Start
	dur    time.Duration
	sysctl record.Sysctl
	hz     int
	checks map[string]record.Check
	out    []record.Verdict
}

// SeverityRank orders severities: critical above warning above info.
func SeverityRank(sev string) int {
	switch sev {
	case record.SeverityCritical:
		return 2
	case record.SeverityWarning:
		return 1
	}
	return 0
}

func severity(ratio float64) string {
	switch {
	case ratio >= criticalRatio:
		return record.SeverityCritical
	case ratio >= warningRatio:
		return record.SeverityWarning
	}
	return record.SeverityInfo
}

func (e *explainer) perSec(n uint64) float64 {
	if e.dur <= 0 {
		return 0
	}
	return math.Round(float64(n)/e.dur.Seconds()*10) / 10
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(10000*float64(a)/float64(b)) / 100
}

func cpuPtr(c int) *int { return &c }

// confidence grades a verdict by its check: high when traced and kernel counts agree.
func (e *explainer) confidence(check string) string {
	c, ok := e.checks[check]
	switch {
	case !ok || c.Status == record.StatusUnavailable:
		return record.ConfidenceMedium
	case c.Status == record.StatusMatch:
		return record.ConfidenceHigh
	}
	return record.ConfidenceMedium
}

// nextPow2 rounds up, so suggested limits are the round numbers people set.
func nextPow2(v uint64) uint64 {
	p := uint64(1)
	for p < v {
		p <<= 1
	}
	return p
}

func (e *explainer) backlog() {
	maxBacklog := uint64(max(e.sysctl.NetdevMaxBacklog, 0))
	// If the limit changed during the span, overflows may have happened under the old value:
	// reason from the smaller one (the start's), and say that it changed.
	changed := ""
	if e.start != nil && len(e.iv.SysctlChanges) > 0 && e.start.Sysctl.NetdevMaxBacklog != e.sysctl.NetdevMaxBacklog {
		changed = fmt.Sprintf(" (%d at the start, %d at the end: it changed during this span)", e.start.Sysctl.NetdevMaxBacklog, e.sysctl.NetdevMaxBacklog)
		maxBacklog = uint64(max(min(e.start.Sysctl.NetdevMaxBacklog, e.sysctl.NetdevMaxBacklog), 0))
	}
	// Who fed the backlog: kfree_skb fires on the enqueuing CPU (enqueue_to_backlog).
	var feeders []string
	for _, c := range e.iv.CPUs {
		if n := c.Drops["CPU_BACKLOG"]; n > 0 {
			feeders = append(feeders, fmt.Sprintf("CPU %d (%d)", c.CPU, n))
		}
	}
	for _, c := range e.iv.CPUs {
		sn := c.Softnet
		if sn == nil || sn.Dropped == 0 {
			continue
		}
		total := sn.Processed + sn.Dropped
		ratio := float64(sn.Dropped) / float64(max(total, 1))
		// A queue that could have held the interval's overflow on top of today's limit: an
		// upper bound, since the CPU drained it meanwhile, rounded up to a power of two.
		suggest := nextPow2(maxBacklog + sn.Dropped)
		if suggest > 1<<17 {
			suggest = 1 << 17
		}
		ev := map[string]any{
			"dropped": sn.Dropped, "processed": sn.Processed, "dropped_pct": pct(sn.Dropped, total),
			"dropped_per_sec": e.perSec(sn.Dropped), "netdev_max_backlog": maxBacklog,
			"received_rps": sn.ReceivedRPS, "flow_limit": sn.FlowLimit,
		}
		cause := fmt.Sprintf("CPU %d's input backlog (netdev_max_backlog=%d%s) overflowed: %d of %d packets (%.2f%%) were dropped before the stack saw them",
			c.CPU, maxBacklog, changed, sn.Dropped, total, 100*ratio)
		if sn.ReceivedRPS > 0 {
			cause += fmt.Sprintf("; RPS steered work here from other CPUs (%d IPIs received)", sn.ReceivedRPS)
		}
		if len(feeders) > 0 {
			cause += "; enqueued by " + strings.Join(feeders, ", ")
			ev["enqueued_by"] = strings.Join(feeders, ", ")
		}
		if sn.FlowLimit > 0 {
			cause += fmt.Sprintf("; %d of them by the per-flow limit (flow_limit_cpu_bitmap)", sn.FlowLimit)
		}
		// The device's core rx_dropped includes backlog drops (enqueue_to_backlog): say whether
		// `ip -s link` showed anything, since that is where people look first.
		if len(e.iv.RxDropped) > 0 {
			var shown []string
			for _, name := range sortedKeys(e.iv.RxDropped) {
				shown = append(shown, fmt.Sprintf("%s %d", name, e.iv.RxDropped[name]))
			}
			cause += "; `ip -s link` shows them as rx_dropped on " + strings.Join(shown, ", ")
			ev["ip_link_rx_dropped"] = strings.Join(shown, ", ")
		} else {
			cause += "; no interface of droptrace's namespace counted them in rx_dropped (the device is in another namespace, or its driver keeps no core stats)"
		}
		span := "this interval's"
		if e.iv.Type == record.TypeSummary {
			span = "the session's"
		}
		fix := fmt.Sprintf("sysctl -w net.core.netdev_max_backlog=%d (from %d: would have held %s overflow); "+
			"and spread the load: RPS/RSS across more CPUs (/sys/class/net/<dev>/queues/rx-*/rps_cpus, ethtool -L <dev> combined <n>) so one CPU's backlog is not the funnel",
			suggest, maxBacklog, span)
		e.out = append(e.out, record.Verdict{
			ID: BacklogOverflow, Severity: severity(ratio), CPU: cpuPtr(c.CPU), Evidence: ev,
			Cause: cause, Fix: fix, Confidence: e.confidence("backlog_drops"),
		})
	}
}

func (e *explainer) squeezes() {
	for _, c := range e.iv.CPUs {
		n := c.NetRx
		if n == nil || (n.BudgetSqueezes == 0 && n.TimeSqueezes == 0) {
			continue
		}
		// Drops on the same CPU make squeezes matter: the backlog fills while NET_RX yields.
		var dropped uint64
		if c.Softnet != nil {
			dropped = c.Softnet.Dropped
		}
		runs := max(n.Runs, 1)
		conf := e.confidence(fmt.Sprintf("time_squeeze/%d", c.CPU))
		sev := func(squeezes uint64) string {
			r := float64(squeezes) / float64(runs)
			switch {
			case dropped > 0 && r >= squeezeWarningRatio:
				return record.SeverityCritical
			case r >= squeezeWarningRatio:
				return record.SeverityWarning
			}
			return record.SeverityInfo
		}
		if n.BudgetSqueezes > 0 {
			budget := max(e.sysctl.NetdevBudget, 1)
			e.out = append(e.out, record.Verdict{
				ID: BudgetSqueeze, Severity: sev(n.BudgetSqueezes), CPU: cpuPtr(c.CPU), Confidence: conf,
				Evidence: map[string]any{
					"budget_squeezes": n.BudgetSqueezes, "net_rx_runs": n.Runs, "squeezed_runs_pct": pct(n.BudgetSqueezes, runs),
					"packets": n.Packets, "packets_per_run": math.Round(float64(n.Packets)/float64(runs)*10) / 10,
					"netdev_budget": e.sysctl.NetdevBudget, "backlog_dropped": dropped,
				},
				Cause: fmt.Sprintf("NET_RX on CPU %d stopped %d times (%.1f%% of runs) with packets left because it had polled netdev_budget=%d packets%s; the rest waited for the next run or ksoftirqd",
					c.CPU, n.BudgetSqueezes, pct(n.BudgetSqueezes, runs), budget, e.budgetChange()),
				Fix: fmt.Sprintf("sysctl -w net.core.netdev_budget=%d (from %d) and keep netdev_budget_usecs (%d) large enough for it; if the CPU is saturated, spread RX over more CPUs instead (RSS/RPS/IRQ affinity)",
					max(budget*2, 300), budget, e.sysctl.NetdevBudgetUsecs),
			})
		}
		if n.TimeSqueezes > 0 {
			limit := e.sysctl.NetdevBudgetUsecs
			suggest := max(limit*2, int64(n.MaxRunUs))
			e.out = append(e.out, record.Verdict{
				ID: TimeSqueeze, Severity: sev(n.TimeSqueezes), CPU: cpuPtr(c.CPU), Confidence: conf,
				Evidence: map[string]any{
					"time_squeezes": n.TimeSqueezes, "net_rx_runs": n.Runs, "squeezed_runs_pct": pct(n.TimeSqueezes, runs),
					"netdev_budget_usecs": limit, "hz": e.hz, "max_run_us": n.MaxRunUs,
					"busy_pct": pct(n.BusyUs, uint64(max(e.dur.Microseconds(), 1))), "backlog_dropped": dropped,
				},
				Cause: fmt.Sprintf("NET_RX on CPU %d ran out of time %d times (%.1f%% of runs): polls outlasted netdev_budget_usecs=%d (counted in jiffies at HZ=%d), the longest run took %d µs",
					c.CPU, n.TimeSqueezes, pct(n.TimeSqueezes, runs), limit, e.hz, n.MaxRunUs),
				Fix: fmt.Sprintf("find what makes polls slow (XDP/tc programs, netfilter, GRO) and spread RX over more CPUs; raising net.core.netdev_budget_usecs (e.g. to %d) only lets one CPU keep the softirq longer",
					suggest),
			})
		}
	}
}

func (e *explainer) socketRcvbuf() {
	n := e.iv.Drops["SOCKET_RCVBUFF"]
	if n == 0 {
		return
	}
	// Relative to everything the host received: Udp InDatagrams counts only datagrams an
	// application has read (udp_recvmsg), so it is no denominator for a socket nobody reads.
	var received uint64
	for _, c := range e.iv.CPUs {
		if c.Softnet != nil {
			received += c.Softnet.Processed
		}
	}
	ev := map[string]any{"drops": n, "drops_per_sec": e.perSec(n), "packets_received": received,
		"dropped_pct": pct(n, received), "udp_in_datagrams": e.iv.SNMP["Udp"]["InDatagrams"] + e.iv.SNMP["Udp6"]["InDatagrams"]}
	share := ""
	if received > 0 {
		share = fmt.Sprintf(" (%.2f%% of the packets this host received)", pct(n, received))
	}
	var ports []string
	for _, p := range e.iv.Ports {
		if p.Reason == "SOCKET_RCVBUFF" && len(ports) < 3 {
			desc := fmt.Sprintf("%s port %d in netns %d (%d events", p.L4, p.Port, p.Netns, p.Events)
			if p.PID > 0 {
				desc += fmt.Sprintf("; socket of pid %d (%s)", p.PID, p.Comm)
				if p.Cgroup != "" {
					desc += " in cgroup " + p.Cgroup
				}
			}
			ports = append(ports, desc+")")
		}
	}
	if len(ports) > 0 {
		share += ", mostly to " + strings.Join(ports, ", ")
		ev["ports"] = strings.Join(ports, ", ")
	}
	fix := "make the receiving application read faster (more threads, recvmmsg, SO_REUSEPORT); give the socket a larger buffer with setsockopt SO_RCVBUF, allowed up to net.core.rmem_max" + e.rmemNow() +
		" (`ss -lump` shows each socket's buffer and drops)"
	// Past udp_mem's pressure threshold the kernel refuses to grow any UDP socket's memory:
	// then the host, not one application, is the limit (net/ipv4/udp.c __udp_enqueue_schedule_skb).
	if mem, pressure, ok := e.udpMemPressure(); ok {
		ev["udp_mem_pages"], ev["udp_mem_pressure_pages"] = mem, pressure
		if mem >= pressure {
			share += fmt.Sprintf("; UDP memory is under pressure host-wide (%d pages in use, udp_mem pressure at %d)", mem, pressure)
			fix = fmt.Sprintf("raise net.ipv4.udp_mem (pressure threshold %d pages now) or find the sockets holding memory (`ss -uam`); then ", pressure) + fix
		}
	}
	e.out = append(e.out, record.Verdict{
		ID: SocketRcvbuf, Severity: severity(float64(n) / float64(max(received, n))), Evidence: ev,
		Cause:      fmt.Sprintf("%d datagrams%s found their socket's receive buffer full: the application reads more slowly than they arrive", n, share),
		Fix:        fix,
		Confidence: e.confidence("udp_rcvbuf"),
	})
}

func (e *explainer) listenOverflow() {
	traced := e.iv.Drops["TCP_LISTEN_OVERFLOW"]
	counted := e.iv.SNMP["TcpExt"]["ListenOverflows"]
	if traced == 0 && counted <= 0 {
		return
	}
	e.out = append(e.out, record.Verdict{
		ID: ListenOverflow, Severity: record.SeverityWarning,
		Evidence: map[string]any{"traced": traced, "listen_overflows": counted, "listen_drops": e.iv.SNMP["TcpExt"]["ListenDrops"]},
		Cause:    "a listening socket's accept queue was full: connections were refused or their handshakes dropped while the application did not accept them fast enough",
		Fix: "accept faster in the application; raise its listen() backlog and net.core.somaxconn (which caps it); " +
			"`ss -ltn` shows Recv-Q (queued) against Send-Q (backlog) per listener",
		Confidence: e.confidence("tcp_listen_overflow"),
	})
}

// simple is a verdict that only reports a reason's count and rate.
func (e *explainer) simple(id, reason, cause, fix string) {
	n := e.iv.Drops[reason]
	if n == 0 {
		return
	}
	var where []string
	for _, l := range e.iv.Locations {
		if l.Reason == reason && len(where) < 3 {
			where = append(where, l.Location)
		}
	}
	ev := map[string]any{"drops": n, "drops_per_sec": e.perSec(n)}
	if len(where) > 0 {
		ev["locations"] = strings.Join(where, ", ")
	}
	e.out = append(e.out, record.Verdict{
		ID: id, Severity: record.SeverityInfo, Evidence: ev,
		Cause: fmt.Sprintf("%d drops: %s", n, cause), Fix: fix, Confidence: record.ConfidenceHigh,
	})
}

// unexplained reports every check whose counts disagree: a kernel counter moved with no traced
// cause, or the reverse. The check's note says what could explain it.
func (e *explainer) unexplained() {
	for _, c := range e.iv.Checks {
		if c.Status != record.StatusMismatch || c.Check == "net_rx_coverage" {
			continue
		}
		ev := map[string]any{"check": c.Check}
		if c.Traced != nil {
			ev["traced"] = *c.Traced
		}
		if c.Kernel != nil {
			ev["kernel"] = *c.Kernel
		}
		which := "a kernel counter moved with no traced cause"
		if c.Traced != nil && c.Kernel != nil && *c.Traced > *c.Kernel {
			which = "drops were traced that the kernel counter did not count"
		}
		// A residual with a measured cause (runs BPF could not see, a sysctl change) is
		// reported, but it is not an alarm.
		sev := record.SeverityWarning
		if c.ExplainedBy != "" {
			sev = record.SeverityInfo
			ev["explained_by"] = c.ExplainedBy
		}
		e.out = append(e.out, record.Verdict{
			ID: Unexplained, Severity: sev, CPU: c.CPU, Evidence: ev,
			Cause:      fmt.Sprintf("%s: %s: %s", c.Check, which, c.Note),
			Fix:        "no fix is implied; compare with `droptrace doctor` (what is traced) and the net_rx_coverage checks (what BPF did not see)",
			Confidence: record.ConfidenceLow,
		})
	}
}

func sortedKeys(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// irqConcentration finds the classic layout problem: (nearly) every network interrupt lands on
// one CPU that is busy in NET_RX while others idle.
func (e *explainer) irqConcentration() {
	if len(e.iv.NetIRQs) == 0 || len(e.iv.CPUs) < 2 {
		return
	}
	var total uint64
	byCPU := map[int]uint64{}
	for _, q := range e.iv.NetIRQs {
		total += q.Count
		for cpu, v := range q.ByCPU {
			byCPU[cpu] += v
		}
	}
	if total < 100 {
		return // too few interrupts to call a layout
	}
	top, topN := -1, uint64(0)
	for cpu, v := range byCPU {
		if v > topN || v == topN && cpu < top {
			top, topN = cpu, v
		}
	}
	share := float64(topN) / float64(total)
	if share < 0.9 {
		return
	}
	busy := map[int]float64{}
	var hotDropped, hotSqueezes uint64
	for _, c := range e.iv.CPUs {
		if c.NetRx != nil && e.dur > 0 {
			busy[c.CPU] = 100 * float64(c.NetRx.BusyUs) / float64(e.dur.Microseconds())
		}
		if c.CPU == top && c.Softnet != nil {
			hotDropped, hotSqueezes = c.Softnet.Dropped, c.Softnet.TimeSqueeze
		}
	}
	var idle []int
	for _, c := range e.iv.CPUs {
		if c.CPU != top && busy[c.CPU] < 10 {
			idle = append(idle, c.CPU)
		}
	}
	if len(idle) == 0 || (busy[top] < 25 && hotDropped == 0 && hotSqueezes == 0) {
		return // the other CPUs are busy too, or the hot one is not struggling
	}
	sev := record.SeverityWarning
	if hotDropped > 0 {
		sev = record.SeverityCritical
	}
	var irqs []string
	queues := map[string][]record.IRQCount{}
	for _, q := range e.iv.NetIRQs {
		irqs = append(irqs, fmt.Sprintf("%d (%s q%d)", q.IRQ, q.Ifname, q.Queue))
		if q.Ifname != "" && q.Queue >= 0 {
			queues[q.Ifname] = append(queues[q.Ifname], q)
		}
	}
	irqbalance := e.start != nil && e.start.Context != nil && e.start.Context.Irqbalance
	ev := map[string]any{
		"cpu_interrupts": topN, "net_interrupts": total, "share_pct": math.Round(share*1000) / 10,
		"busy_pct": math.Round(busy[top]*10) / 10, "idle_cpus": fmt.Sprint(idle), "irqbalance": irqbalance,
		"irqs": strings.Join(irqs, ", "), "backlog_dropped": hotDropped, "time_squeeze": hotSqueezes,
	}
	var fixes []string
	if !irqbalance {
		fixes = append(fixes, "irqbalance is not running: systemctl enable --now irqbalance")
	}
	// Concrete commands: spread multi-queue interfaces' IRQs round robin over all CPUs, and
	// steer single-queue ones to the idle CPUs with RPS.
	cpus := make([]int, 0, len(e.iv.CPUs))
	for _, c := range e.iv.CPUs {
		cpus = append(cpus, c.CPU)
	}
	for _, name := range sortedQueueNames(queues) {
		qs := queues[name]
		if len(qs) > 1 {
			var cmds []string
			for i, q := range qs {
				cmds = append(cmds, fmt.Sprintf("echo %d > /proc/irq/%d/smp_affinity_list", cpus[i%len(cpus)], q.IRQ))
			}
			fixes = append(fixes, strings.Join(cmds, "; "))
		} else {
			fixes = append(fixes, fmt.Sprintf("%s has one RX queue: steer its packets to the idle CPUs with RPS: echo %s > /sys/class/net/%s/queues/rx-%d/rps_cpus",
				name, hostctx.FormatCPUMask(idle), name, max(qs[0].Queue, 0)))
		}
	}
	e.out = append(e.out, record.Verdict{
		ID: IRQConcentration, Severity: sev, CPU: cpuPtr(top), Evidence: ev, Confidence: record.ConfidenceHigh,
		Cause: fmt.Sprintf("%.0f%% of network interrupts (%d of %d) landed on CPU %d, busy %.0f%% in NET_RX, while CPUs %v were nearly idle",
			100*share, topN, total, top, busy[top], idle),
		Fix: strings.Join(fixes, "; "),
	})
}

func sortedQueueNames(m map[string][]record.IRQCount) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// rmemNow says the current socket buffer limits, from the start record's context.
func (e *explainer) rmemNow() string {
	const ask = " (`sysctl net.core.rmem_max net.core.rmem_default` shows the limits)"
	if e.start == nil || e.start.Context == nil {
		return ask
	}
	sc := e.start.Context.Sysctls
	if sc["rmem_max"] == "" {
		return ask
	}
	return fmt.Sprintf(" (now rmem_max=%s, rmem_default=%s)", sc["rmem_max"], sc["rmem_default"])
}

// udpMemPressure compares UDP's pages in use with udp_mem's pressure threshold (its second
// value).
func (e *explainer) udpMemPressure() (mem, pressure int64, ok bool) {
	if e.start == nil || e.start.Context == nil || e.iv.Sockstat == nil {
		return 0, 0, false
	}
	f := strings.Fields(e.start.Context.Sysctls["udp_mem"])
	if len(f) != 3 {
		return 0, 0, false
	}
	if _, err := fmt.Sscan(f[1], &pressure); err != nil {
		return 0, 0, false
	}
	m, ok := e.iv.Sockstat["UDP"]["mem"]
	return m, pressure, ok
}

// multicast ties drops to multicast groups to membership changes in the same interval: a
// group left (or joined late) makes its datagrams find no socket.
func (e *explainer) multicast() {
	if len(e.iv.McastChanges) == 0 || e.iv.MulticastDropEvents == 0 {
		return
	}
	e.out = append(e.out, record.Verdict{
		ID: MulticastChange, Severity: record.SeverityInfo, Confidence: record.ConfidenceMedium,
		Evidence: map[string]any{"multicast_drop_events": e.iv.MulticastDropEvents, "changes": strings.Join(e.iv.McastChanges, ", ")},
		Cause: fmt.Sprintf("%d drop events to multicast groups coincide with membership changes: %s",
			e.iv.MulticastDropEvents, strings.Join(e.iv.McastChanges, ", ")),
		Fix: "check the receivers' group joins (`ip maddr show`, the application's IP_ADD_MEMBERSHIP) and IGMP/MLD snooping on the switch; drops to a group nobody joined are expected",
	})
}

// budgetChange says when netdev_budget changed during the span, so a summary verdict is not
// read as if the end value had been in force throughout.
func (e *explainer) budgetChange() string {
	if e.start == nil || len(e.iv.SysctlChanges) == 0 || e.start.Sysctl.NetdevBudget == e.sysctl.NetdevBudget {
		return ""
	}
	return fmt.Sprintf(" (%d at the start: it changed during this span)", e.start.Sysctl.NetdevBudget)
}
