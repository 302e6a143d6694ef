// SPDX-License-Identifier: Apache-2.0

package explain

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/droptrace/droptrace/internal/record"
)

// nextPow2 rounds up, so suggested limits are the round numbers people set; it stops at
// 1<<63, so a count read from a corrupt recording cannot make it loop.
func nextPow2(v uint64) uint64 {
	p := uint64(1)
	for p < v && p < 1<<63 {
		p <<= 1
	}
	return p
}

// backlog reports every CPU whose input backlog overflowed (softnet_stat dropped).
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
		total := record.AddSat(sn.Processed, sn.Dropped)
		ratio := float64(sn.Dropped) / float64(max(total, 1))
		// Over a span whose limit changed, the limit that failed is the one in force when
		// the backlog overflowed, and the overflow to hold is the one under it.
		limit, overflow, note := maxBacklog, sn.Dropped, fmt.Sprintf("netdev_max_backlog=%d%s", maxBacklog, changed)
		sp, bySpan := e.split(c.CPU, "netdev_max_backlog", "overflows",
			func(s record.Sysctl) int64 { return s.NetdevMaxBacklog }, func(s record.SpanCPU) uint64 { return s.Dropped })
		if bySpan {
			limit, overflow = uint64(max(sp.failed, 0)), sp.under(sp.failed)
			note = sp.String()
		}
		// A queue that could have held the interval's overflow on top of the current limit: an
		// upper bound, since the CPU drained it meanwhile, rounded up to a power of two.
		suggest := nextPow2(record.AddSat(limit, overflow))
		if suggest > 1<<17 {
			suggest = 1 << 17
		}
		ev := map[string]any{
			"dropped": sn.Dropped, "processed": sn.Processed, "dropped_pct": pct(sn.Dropped, total),
			"dropped_per_sec": e.perSec(sn.Dropped), "netdev_max_backlog": limit,
			"received_rps": sn.ReceivedRPS, "flow_limit": sn.FlowLimit,
		}
		cause := fmt.Sprintf("CPU %d's input backlog (%s) overflowed: %d of %d packets (%.2f%%) were dropped before the stack saw them",
			c.CPU, note, sn.Dropped, total, 100*ratio)
		if bySpan {
			ev["overflows_by_limit"] = sp.String()
		}
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
			for _, name := range slices.Sorted(maps.Keys(e.iv.RxDropped)) {
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
		from := fmt.Sprintf("from %d: would have held %s overflow", limit, span)
		if bySpan {
			from = fmt.Sprintf("from %d, in force when it overflowed: would have held the overflow under it", limit)
		}
		fix := fmt.Sprintf("sysctl -w net.core.netdev_max_backlog=%d (%s); "+
			"and spread the load: RPS/RSS across more CPUs (/sys/class/net/<dev>/queues/rx-*/rps_cpus, ethtool -L <dev> combined <n>) so one CPU's backlog is not the funnel",
			suggest, from)
		if bySpan {
			fix = sp.fix(int64(suggest), fix)
		}
		e.out = append(e.out, record.Verdict{
			ID: BacklogOverflow, Severity: severity(ratio), CPU: cpuPtr(c.CPU), Evidence: ev,
			Cause: cause, Fix: fix, Confidence: e.confidence("backlog_drops"),
		})
	}
}

// squeezes reports every CPU whose NET_RX runs ended with work left, by budget or by time.
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
			limitText := fmt.Sprintf("netdev_budget=%d packets%s", budget, e.budgetChange())
			from := fmt.Sprintf("from %d", budget)
			ev := map[string]any{
				"budget_squeezes": n.BudgetSqueezes, "net_rx_runs": n.Runs, "squeezed_runs_pct": pct(n.BudgetSqueezes, runs),
				"packets": n.Packets, "packets_per_run": math.Round(float64(n.Packets)/float64(runs)*10) / 10,
				"netdev_budget": e.sysctl.NetdevBudget, "backlog_dropped": dropped,
			}
			sp, bySpan := e.split(c.CPU, "netdev_budget", "squeezes",
				func(s record.Sysctl) int64 { return s.NetdevBudget }, func(s record.SpanCPU) uint64 { return s.BudgetSqueezes })
			if bySpan {
				budget = max(sp.failed, 1)
				limitText = "its netdev_budget of packets: " + sp.String()
				from = fmt.Sprintf("from %d, in force when it squeezed", budget)
				ev["netdev_budget"], ev["squeezes_by_limit"] = sp.failed, sp.String()
			}
			fix := fmt.Sprintf("sysctl -w net.core.netdev_budget=%d (%s) and keep netdev_budget_usecs (%d) large enough for it; if the CPU is saturated, spread RX over more CPUs instead (RSS/RPS/IRQ affinity)",
				max(budget*2, 300), from, e.sysctl.NetdevBudgetUsecs)
			if bySpan {
				fix = sp.fix(max(budget*2, 300), fix)
			}
			e.out = append(e.out, record.Verdict{
				ID: BudgetSqueeze, Severity: sev(n.BudgetSqueezes), CPU: cpuPtr(c.CPU), Confidence: conf, Evidence: ev,
				Cause: fmt.Sprintf("NET_RX on CPU %d stopped %d times (%.1f%% of runs) with packets left because it had polled %s; the rest waited for the next run or ksoftirqd",
					c.CPU, n.BudgetSqueezes, pct(n.BudgetSqueezes, runs), limitText),
				Fix: fix,
			})
		}
		if n.TimeSqueezes > 0 {
			limit := e.sysctl.NetdevBudgetUsecs
			limitText := fmt.Sprintf("netdev_budget_usecs=%d", limit)
			ev := map[string]any{
				"time_squeezes": n.TimeSqueezes, "net_rx_runs": n.Runs, "squeezed_runs_pct": pct(n.TimeSqueezes, runs),
				"netdev_budget_usecs": limit, "hz": e.hz, "max_run_us": n.MaxRunUs,
				"busy_pct": pct(n.BusyUs, uint64(max(e.dur.Microseconds(), 1))), "backlog_dropped": dropped,
			}
			sp, bySpan := e.split(c.CPU, "netdev_budget_usecs", "squeezes",
				func(s record.Sysctl) int64 { return s.NetdevBudgetUsecs }, func(s record.SpanCPU) uint64 { return s.TimeSqueezes })
			raised := ""
			if bySpan {
				limit = sp.failed
				limitText = "netdev_budget_usecs (" + sp.String() + ")"
				ev["netdev_budget_usecs"], ev["squeezes_by_limit"] = sp.failed, sp.String()
				if r := sp.raised(); r != "" {
					raised = r + "; "
				}
			}
			suggest := max(limit*2, int64(n.MaxRunUs))
			e.out = append(e.out, record.Verdict{
				ID: TimeSqueeze, Severity: sev(n.TimeSqueezes), CPU: cpuPtr(c.CPU), Confidence: conf, Evidence: ev,
				Cause: fmt.Sprintf("NET_RX on CPU %d ran out of time %d times (%.1f%% of runs): polls outlasted %s (counted in jiffies at HZ=%d), the longest run took %d µs",
					c.CPU, n.TimeSqueezes, pct(n.TimeSqueezes, runs), limitText, e.hz, n.MaxRunUs),
				Fix: fmt.Sprintf("%sfind what makes polls slow (XDP/tc programs, netfilter, GRO) and spread RX over more CPUs; raising net.core.netdev_budget_usecs (e.g. to %d) only lets one CPU keep the softirq longer",
					raised, suggest),
			})
		}
	}
}

// budgetChange says when netdev_budget changed during the span, so a summary verdict is not
// read as if the end value had been in force throughout.
func (e *explainer) budgetChange() string {
	if e.start == nil || len(e.iv.SysctlChanges) == 0 || e.start.Sysctl.NetdevBudget == e.sysctl.NetdevBudget {
		return ""
	}
	return fmt.Sprintf(" (%d at the start: it changed during this span)", e.start.Sysctl.NetdevBudget)
}
