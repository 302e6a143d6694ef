// SPDX-License-Identifier: Apache-2.0

// Package reconcile compares what the BPF programs traced with what the kernel counted, check
// by check, and says in words why they differ when they do.
//
// The BPF maps are read between two reads of the kernel counters, so a drop that happens while
// they are read can land in different intervals on the two sides. Each check allows exactly how
// far its kernel counter moved during the reads that open and close the interval (Input.Slack),
// no estimate: with traffic stopped at both ends that is zero. Anything beyond it is a mismatch,
// with the NET_RX runs BPF did not see offered as the explanation where they can account for
// it — never silently folded into a match.
package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/record"
)

// Availability says whether a source could be read, and if not why.
type Availability struct {
	OK  bool
	Why string
}

// Input is one interval (or the whole session) of traced and kernel counts.
type Input struct {
	Duration time.Duration

	Drops    Availability // kfree_skb program attached and reasons decodable
	NetRx    Availability // NET_RX programs attached
	Predict  Availability // squeeze prediction possible (HZ and sysctls known)
	Softnet  Availability // /proc/net/softnet_stat
	Softirqs Availability // /proc/softirqs

	// BacklogByCPU is traced CPU_BACKLOG drops by the CPU kfree_skb fired on (the enqueuing
	// CPU), all namespaces.
	BacklogByCPU map[int]uint64
	CPUs         []CPU
	Netns        []Netns

	DropRecursionMisses uint64
	AggMapFull          uint64
	// SysctlChanges lists net.core changes during the interval: until the NET_RX programs
	// learn a new netdev_budget, their predictions follow the old one.
	SysctlChanges []string
	// LimitsExact: the NET_RX programs read netdev_budget and netdev_budget_usecs from the
	// kernel at each run, so a change is followed from the next run and explains nothing.
	LimitsExact bool
	// Slack is how far each check's kernel counter moved while the traced counts were being
	// read, at the start and at the end of the interval (for a session summary: of the
	// session; in between, such shifts cancel out). Missing keys allow nothing.
	Slack map[Key]uint64
	// Unnamed are the drop reasons this kernel does not have: a check on one cannot be traced.
	Unnamed map[string]bool
	// Located are, on a kernel whose drops are named from their location, what that cannot
	// separate for each reason (or, for an unnamed one, why no location names it).
	Located map[string]string
}

// Key names one check row: CPU is -1 for checks that are not per CPU.
type Key struct {
	Check string
	CPU   int
}

// CPU is one CPU's counts.
type CPU struct {
	CPU int
	// Softnet is nil when the CPU has no softnet_stat line (offline) or no baseline.
	Softnet *Softnet
	// Runs is NET_RX softirq entries BPF saw; KernelRuns is /proc/softirqs' NET_RX delta.
	Runs, KernelRuns             uint64
	HasKernelRuns                bool
	BudgetSqueezes, TimeSqueezes uint64
	// TimeUncertain is runs whose time squeeze BPF could not decide: the clock tick fell
	// between the last poll's tracepoint and the end of the run.
	TimeUncertain uint64
	// TimeUnproven is the time squeezes in TimeSqueezes that may not have happened: predicted
	// at a run's last poll while jiffies was short of the latest limit net_rx_action can have
	// taken (a tick between softirq_entry and its read of jiffies makes it a jiffy later).
	TimeUnproven uint64
	// StaleRuns is runs that may have been predicted with limits that had just changed (see
	// Input.SysctlChanges): each can be off by one squeeze, as net_rx_action counts at most
	// one per run.
	StaleRuns uint64
}

// Softnet is a CPU's softnet_stat deltas that the checks use.
type Softnet struct{ Dropped, TimeSqueeze uint64 }

// ReasonL4 selects traced drops by reason name and IP protocol.
type ReasonL4 struct {
	Reason string
	L4     uint8
}

// Netns is one network namespace's traced drops and SNMP counter deltas.
type Netns struct {
	Inode  uint32
	Name   string
	Traced map[ReasonL4]uint64
	// SNMP is nil when the namespace's counters could not be read (or have no baseline yet).
	SNMP map[string]map[string]int64
	Why  string // why SNMP is nil
}

// Check names.
const (
	CheckBacklog  = "backlog_drops"
	CheckSqueeze  = "time_squeeze"
	CheckCoverage = "net_rx_coverage"
)

// Checks runs every check on in.
func Checks(in Input) []record.Check {
	var out []record.Check
	out = append(out, backlog(in))
	for _, c := range in.CPUs {
		out = append(out, coverage(in, c))
	}
	for _, c := range in.CPUs {
		out = append(out, squeeze(in, c))
	}
	for _, sc := range SNMPChecks {
		out = append(out, snmpCheck(in, sc))
	}
	return out
}

func i64(v uint64) *int64 {
	x := int64(v)
	return &x
}

func cpuPtr(c int) *int {
	return &c
}

func unavailable(name string, cpu *int, why string) record.Check {
	return record.Check{Check: name, CPU: cpu, Status: record.StatusUnavailable, Note: why}
}

// missing says why a check cannot run: the reason of the first of its sources, in the order
// given, that is not available.
func missing(sources ...Availability) (why string, ok bool) {
	for _, s := range sources {
		if !s.OK {
			return s.Why, true
		}
	}
	return "", false
}

// gap is how far a check's traced and kernel counts are apart, and how far they may be: the
// tolerance is what its kernel counter moved while the traced counts were read.
type gap struct{ d, tol uint64 }

func compare(in Input, k Key, traced, kernel uint64) gap {
	d := traced - kernel
	if kernel > traced {
		d = kernel - traced
	}
	return gap{d: d, tol: in.Slack[k]}
}

// match says the counts agree, exactly or within the tolerance.
func (g gap) match() bool { return g.d <= g.tol }

func (g gap) status() string {
	if g.match() {
		return record.StatusMatch
	}
	return record.StatusMismatch
}

// within is the note of a match within tolerance ("" for an exact one); moved says what the
// kernel counted meanwhile.
func (g gap) within(moved string) string {
	if g.d == 0 {
		return ""
	}
	return fmt.Sprintf("differs by %d, within the %d %s while the traced counts were read", g.d, g.tol, moved)
}

func backlog(in Input) record.Check {
	if why, ok := missing(in.Drops, in.Softnet); ok {
		return unavailable(CheckBacklog, nil, why)
	}
	var traced, kernel uint64
	for _, v := range in.BacklogByCPU {
		traced += v
	}
	var counted []string
	for _, c := range in.CPUs {
		if c.Softnet == nil {
			continue
		}
		kernel += c.Softnet.Dropped
		if c.Softnet.Dropped > 0 {
			counted = append(counted, fmt.Sprintf("CPU %d: %d", c.CPU, c.Softnet.Dropped))
		}
	}
	var fired []string
	for _, cpu := range slices.Sorted(maps.Keys(in.BacklogByCPU)) {
		if v := in.BacklogByCPU[cpu]; v > 0 {
			fired = append(fired, fmt.Sprintf("CPU %d: %d", cpu, v))
		}
	}
	chk := record.Check{Check: CheckBacklog, Traced: i64(traced), Kernel: i64(kernel)}
	var notes []string
	if len(fired) > 0 || len(counted) > 0 {
		// enqueue_to_backlog (net/core/dev.c) bumps the target CPU's dropped but frees the skb
		// on the CPU that was enqueueing: with RPS the two differ by design.
		notes = append(notes, fmt.Sprintf("freed on (enqueuing CPU) %s; counted on (backlog CPU) %s",
			orNone(fired), orNone(counted)))
	}
	g := compare(in, Key{CheckBacklog, -1}, traced, kernel)
	chk.Status = g.status()
	switch {
	case g.match():
		if n := g.within("the kernel counted"); n != "" {
			notes = append(notes, n)
		}
	default:
		if kernel > traced {
			notes = append(notes, fmt.Sprintf("%d backlog drops counted by the kernel were not traced as CPU_BACKLOG%s", kernel-traced, missHint(in)))
			chk.ExplainedBy = missCause(in)
		} else {
			notes = append(notes, fmt.Sprintf("%d CPU_BACKLOG drops traced beyond softnet dropped: drops on a CPU that went offline, or counters read across an interval boundary", traced-kernel))
		}
	}
	chk.Note = strings.Join(notes, "; ")
	return chk
}

// unseenRuns is how many NET_RX runs the kernel made that the BPF programs did not see, per
// CPU. On some machines whole softirq runs are invisible to BPF while the kernel still counts
// them in /proc/softirqs (and reports no recursion miss): every tracepoint inside such a run,
// kfree_skb included, is missed with it.
func unseenRuns(in Input) (total uint64, where []string) {
	if !in.NetRx.OK || !in.Softirqs.OK {
		return 0, nil
	}
	for _, c := range in.CPUs {
		if c.HasKernelRuns && c.KernelRuns > c.Runs {
			total += c.KernelRuns - c.Runs
			where = append(where, fmt.Sprintf("CPU %d: %d", c.CPU, c.KernelRuns-c.Runs))
		}
	}
	return total, where
}

// What explains a mismatch, in Check.ExplainedBy.
const (
	ExplainedByCoverage  = "net_rx_coverage"  // NET_RX runs BPF did not see
	ExplainedByRecursion = "bpf_recursion"    // the kernel skipped a drop program
	ExplainedByMapFull   = "aggregation_full" // the aggregation map was full
	ExplainedBySysctl    = "sysctl_change"    // predictions used old settings
	ExplainedByTick      = "clock_tick"       // runs ended as the time limit passed
)

// missCause names the measured reason traced counts fall short, or "" when there is none.
func missCause(in Input) string {
	if n, _ := unseenRuns(in); n > 0 {
		return ExplainedByCoverage
	}
	if in.DropRecursionMisses > 0 {
		return ExplainedByRecursion
	}
	if in.AggMapFull > 0 {
		return ExplainedByMapFull
	}
	return ""
}

func missHint(in Input) string {
	var parts []string
	if n, where := unseenRuns(in); n > 0 {
		parts = append(parts, fmt.Sprintf("BPF did not see %d NET_RX runs (%s), so drops freed inside them were not traced", n, strings.Join(where, ", ")))
	}
	if in.DropRecursionMisses > 0 {
		parts = append(parts, fmt.Sprintf("the kernel skipped the drop program %d times (recursion)", in.DropRecursionMisses))
	}
	if in.AggMapFull > 0 {
		parts = append(parts, fmt.Sprintf("%d drops found the aggregation map full", in.AggMapFull))
	}
	if len(parts) == 0 {
		return " (BPF saw every NET_RX run and reported no misses: the kernel freed them with another reason)"
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func coverage(in Input, c CPU) record.Check {
	cpu := cpuPtr(c.CPU)
	column := Availability{c.HasKernelRuns, "CPU has no /proc/softirqs column"}
	if why, ok := missing(in.NetRx, in.Softirqs, column); ok {
		return unavailable(CheckCoverage, cpu, why)
	}
	chk := record.Check{Check: CheckCoverage, CPU: cpu, Traced: i64(c.Runs), Kernel: i64(c.KernelRuns)}
	g := compare(in, Key{CheckCoverage, c.CPU}, c.Runs, c.KernelRuns)
	chk.Status = g.status()
	switch {
	case g.match():
		chk.Note = g.within("runs made")
	case c.Runs < c.KernelRuns:
		chk.Note = fmt.Sprintf("BPF saw %d of %d NET_RX runs (%s): %d runs were not traced, and any squeeze in them is not predicted",
			c.Runs, c.KernelRuns, coveragePct(c.Runs, c.KernelRuns), c.KernelRuns-c.Runs)
	default:
		chk.Note = fmt.Sprintf("BPF saw %d more NET_RX entries than /proc/softirqs counted", c.Runs-c.KernelRuns)
	}
	return chk
}

// coveragePct is a of b, a < b, as a percentage that never rounds the shortfall up to "100.0%".
func coveragePct(a, b uint64) string {
	p := 100 * float64(a) / float64(b)
	if p >= 99.95 {
		return ">99.9%"
	}
	return fmt.Sprintf("%.1f%%", p)
}

func squeeze(in Input, c CPU) record.Check {
	cpu := cpuPtr(c.CPU)
	line := Availability{c.Softnet != nil, "CPU has no softnet_stat line in both samples (offline?)"}
	if why, ok := missing(in.NetRx, in.Predict, in.Softnet, line); ok {
		return unavailable(CheckSqueeze, cpu, why)
	}
	pred := c.BudgetSqueezes + c.TimeSqueezes
	kern := c.Softnet.TimeSqueeze
	chk := record.Check{Check: CheckSqueeze, CPU: cpu, Traced: i64(pred), Kernel: i64(kern)}
	split := fmt.Sprintf("predicted %d budget + %d time", c.BudgetSqueezes, c.TimeSqueezes)
	g := compare(in, Key{CheckSqueeze, c.CPU}, pred, kern)
	chk.Status = g.status()
	var missed uint64
	if c.HasKernelRuns && c.KernelRuns > c.Runs {
		missed = c.KernelRuns - c.Runs
	}
	switch {
	case g.d == 0:
		if pred > 0 {
			chk.Note = split
		}
	case g.match():
		chk.Note = split + "; " + g.within("counted")
	case len(in.SysctlChanges) > 0 && !in.LimitsExact && g.d <= c.StaleRuns+missed+c.TimeUncertain+g.tol:
		chk.Note = fmt.Sprintf("%s; off by %d: net.core sysctls changed (%s) and up to %d NET_RX runs on this CPU, between the sysctl poll before a change and the one that saw it, were predicted with the old values (each off by at most one squeeze)%s",
			split, g.d, strings.Join(in.SysctlChanges, "; "), c.StaleRuns, unseenNote(missed))
		chk.ExplainedBy = ExplainedBySysctl
	case len(in.SysctlChanges) > 0 && !in.LimitsExact:
		chk.Note = fmt.Sprintf("%s; off by %d: net.core sysctls changed (%s), but only %d NET_RX runs on this CPU were predicted with the old values, %d were not seen and %d ended on the tick",
			split, g.d, strings.Join(in.SysctlChanges, "; "), c.StaleRuns, missed, c.TimeUncertain)
	case pred < kern && g.d <= missed+g.tol:
		// Each run BPF did not see can hide at most one squeeze (net_rx_action counts at
		// most one per run), so this residual is explained, but it is still not a match.
		chk.Note = fmt.Sprintf("%s; %d squeezes not predicted, explained by the %d NET_RX runs BPF did not see on this CPU", split, g.d, missed)
		chk.ExplainedBy = ExplainedByCoverage
	case pred < kern && g.d <= missed+c.TimeUncertain+g.tol:
		// BPF tests the time limit at the napi_poll tracepoint, net_rx_action a few
		// instructions later: a tick in between is a squeeze BPF cannot predict. Each such
		// run is counted, so this residual is measured, not guessed.
		chk.Note = fmt.Sprintf("%s; %d squeezes not predicted, within the %d runs that ended past the time limit with none predicted (a tick between the tracepoint and net_rx_action's own test, or a poll BPF did not see)%s",
			split, g.d, c.TimeUncertain, unseenNote(missed))
		chk.ExplainedBy = ExplainedByTick
	case pred < kern:
		chk.Note = fmt.Sprintf("%s; %d squeezes not predicted (only %d unseen runs and %d runs ending on the tick): a squeeze came from a path that is not net_rx_action", split, g.d, missed, c.TimeUncertain)
	case g.d <= c.TimeUnproven+g.tol:
		// The opposite race: net_rx_action reads jiffies after softirq_entry, so its limit
		// can be a tick later than BPF's, and a squeeze predicted at a run's last poll is
		// disproved by nothing. Each prediction that could be wrong is counted.
		chk.Note = fmt.Sprintf("%s; %d more predicted than counted, within the %d time squeezes predicted at a run's last poll before the latest limit net_rx_action can have taken (a tick between softirq_entry and its read of jiffies makes its limit later; nothing after a last poll disproves it)",
			split, g.d, c.TimeUnproven)
		chk.ExplainedBy = ExplainedByTick
	default:
		chk.Note = fmt.Sprintf("%s; %d more predicted than counted, only %d of them at a last poll before the latest limit: a NET_RX exit was not seen, so polls of two runs were added up", split, g.d, c.TimeUnproven)
	}
	return chk
}

func unseenNote(missed uint64) string {
	if missed == 0 {
		return ""
	}
	return fmt.Sprintf(" and the %d NET_RX runs BPF did not see", missed)
}
