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
	"time"

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
