// SPDX-License-Identifier: Apache-2.0

// Package interval is the arithmetic between two samples: Diff turns the cumulative values of
// two consecutive samples into what happened between them. It does no I/O.
package interval

import (
	"fmt"
	"slices"
	"time"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sample"
	"github.com/droptrace/droptrace/internal/snmp"
	"github.com/droptrace/droptrace/internal/softirqs"
	"github.com/droptrace/droptrace/internal/softnet"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Delta is what happened between two samples. A session's summary is the sum of its
// intervals, never a first-to-last difference, because 32-bit softnet counters can wrap more
// than once over a long session.
type Delta struct {
	// Evidence is what the checks need beyond what a record carries.
	Evidence
	Drops map[tracer.DropKey][]uint64
	// Sockets are the socket-level drops by receiving socket over the interval.
	Sockets []tracer.SockCount
	Stats   DropStats
	NetRx   map[int]tracer.NetRx
	Softnet map[int]softnet.CPUDelta // CPUs with a baseline only
	// CPUs is every CPU seen in any source, for a stable per-CPU table.
	CPUs      map[int]bool
	IRQs      map[int]map[int]uint64 // network IRQ -> CPU -> interrupts
	RxDropped map[string]uint64
	// Sockstat is the socket usage at the end; Mcast lists multicast memberships that came
	// or went.
	Sockstat map[string]map[string]int64
	Mcast    []string
	// Coverage says which namespaces were read, when some were deferred; nil otherwise.
	Coverage *record.NetnsCoverage
}

// DropStats are the drop program's own counters over the interval.
type DropStats struct {
	Seen, AggFull, SockFull, Sent, RateLimited, RingFull, Filtered, Recursion, NetRxRecursion uint64
}

// Evidence is what reconciliation needs that interval records do not carry. A session sums it
// next to its records (Add) to check the summary.
type Evidence struct {
	Duration time.Duration
	// Slack is how far each checked kernel counter moved while the opening and closing
	// samples read the BPF maps (see sample.Sample.Moved).
	Slack       map[reconcile.Key]uint64
	SoftnetErr  error
	SoftirqsErr error
	KernelRuns  map[int]uint64 // /proc/softirqs NET_RX, per CPU
	Netns       map[uint32]*Netns
	// StaleRuns are NET_RX runs per CPU that may have been predicted with limits that had
	// just changed: those between the sysctl poll before a change and the one that saw it.
	StaleRuns map[int]uint64
}

// Netns is one namespace's traced drops and SNMP deltas.
type Netns struct {
	Name string
	// Traced counts drops by reason and protocol while the namespace's counters were
	// readable; Unwatched while they were not.
	Traced    map[reconcile.ReasonL4]uint64
	Unwatched map[reconcile.ReasonL4]uint64
	SNMP      map[string]map[string]int64
	Why       string
}

// SNMPGroups are the SNMP groups kept in records: the socket-level drop counters, the only
// groups a sample reads.
var SNMPGroups = sample.SNMPGroups

// Sum adds per-CPU counts.
func Sum(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}

// sub subtracts per-CPU counts; a CPU missing from prev counts from zero.
func sub(cur, prev []uint64) []uint64 {
	out := make([]uint64, len(cur))
	for i := range cur {
		var p uint64
		if i < len(prev) {
			p = prev[i]
		}
		out[i] = cur[i] - p
	}
	return out
}

// AddSlack sums the read windows of two samples: an interval's slack is the counter's
// movement during the read that opened it plus the one that closed it.
func AddSlack(a, b map[reconcile.Key]uint64) map[reconcile.Key]uint64 {
	out := make(map[reconcile.Key]uint64, len(a)+len(b))
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}

// Diff computes the delta between two samples; reasonOf names a drop by its reason code and
// location (kernels without drop reasons are named by location).
func Diff(prev, cur *sample.Sample, reasonOf func(code uint32, loc uint64) string) *Delta {
	d := &Delta{
		Evidence: Evidence{
			Duration:   cur.At.Sub(prev.At),
			Slack:      AddSlack(prev.Moved, cur.Moved),
			KernelRuns: map[int]uint64{},
			Netns:      map[uint32]*Netns{},
		},
		Drops:   map[tracer.DropKey][]uint64{},
		NetRx:   map[int]tracer.NetRx{},
		Softnet: map[int]softnet.CPUDelta{},
		CPUs:    map[int]bool{},
	}
	d.diffHost(prev, cur)
	for k, v := range cur.Drops {
		dv := sub(v, prev.Drops[k])
		if Sum(dv) > 0 {
			d.Drops[k] = dv
		}
	}
	d.Sockets = cur.Sockets
	d.diffTracer(prev, cur)
	d.SoftnetErr = firstErr(cur.SoftnetErr, prev.SoftnetErr)
	if d.SoftnetErr == nil {
		for _, cd := range softnet.Sub(prev.Softnet, cur.Softnet) {
			d.CPUs[cd.CPU] = true
			if cd.Valid {
				d.Softnet[cd.CPU] = cd
			}
		}
	}
	d.SoftirqsErr = firstErr(cur.SoftirqsErr, prev.SoftirqsErr)
	if d.SoftirqsErr == nil {
		for cpu, v := range softirqs.Sub(prev.Softirqs, cur.Softirqs, "NET_RX") {
			d.KernelRuns[cpu] = v
			d.CPUs[cpu] = true
		}
	}
	d.diffNetns(prev, cur, reasonOf)
	return d
}

// diffHost takes the host context's deltas: IRQs, rx_dropped, sockstat and multicast.
func (d *Delta) diffHost(prev, cur *sample.Sample) {
	d.IRQs = map[int]map[int]uint64{}
	for irq, c := range cur.IRQs {
		if p, ok := prev.IRQs[irq]; ok {
			d.IRQs[irq] = hostctx.SubCounts(p, c)
		}
	}
	d.Sockstat = cur.Sockstat
	if prev.McastOK && cur.McastOK {
		d.Mcast = hostctx.McastChanges(prev.Mcast, cur.Mcast)
	}
	d.RxDropped = map[string]uint64{}
	for name, v := range cur.RxDropped {
		if p, ok := prev.RxDropped[name]; ok && v > p {
			d.RxDropped[name] = v - p
		}
	}
}

// diffTracer takes the deltas of the tracer's own counters and NET_RX accounting.
func (d *Delta) diffTracer(prev, cur *sample.Sample) {
	p, c := prev.DropStats, cur.DropStats
	d.Stats = DropStats{
		Seen:        Sum(c.Seen) - Sum(p.Seen),
		AggFull:     Sum(c.AggFull) - Sum(p.AggFull),
		SockFull:    Sum(c.SockFull) - Sum(p.SockFull),
		Sent:        Sum(c.EventsSent) - Sum(p.EventsSent),
		RateLimited: Sum(c.RateLimited) - Sum(p.RateLimited),
		RingFull:    Sum(c.RingFull) - Sum(p.RingFull),
		Filtered:    Sum(c.Filtered) - Sum(p.Filtered),
		Recursion:   c.RecursionMisses - p.RecursionMisses,
	}
	if len(cur.NetRx) > 0 {
		d.Stats.NetRxRecursion = cur.NetRxRecursionMisses - prev.NetRxRecursionMisses
	}
	for i, n := range cur.NetRx {
		var o tracer.NetRx
		if i < len(prev.NetRx) {
			o = prev.NetRx[i]
		}
		raw := tracer.NetRx{BusyNs: n.BusyNs - o.BusyNs, TimedRuns: n.TimedRuns - o.TimedRuns,
			SampleBusyNs: n.SampleBusyNs - o.SampleBusyNs, SampleRuns: n.SampleRuns - o.SampleRuns,
			SampledFrom: n.SampledFrom - o.SampledFrom}
		// Busy time is estimated per interval and the estimates summed, so that the summary's
		// busy time is the sum of the intervals'; TimedRuns becomes every run that was timed.
		d.NetRx[i] = tracer.NetRx{
			Runs: n.Runs - o.Runs, Exits: n.Exits - o.Exits, BusyNs: raw.EstBusyNs(),
			Polls: n.Polls - o.Polls, Packets: n.Packets - o.Packets,
			BudgetSqueezes: n.BudgetSqueezes - o.BudgetSqueezes, TimeSqueezes: n.TimeSqueezes - o.TimeSqueezes,
			OtherPolls: n.OtherPolls - o.OtherPolls, OtherPackets: n.OtherPackets - o.OtherPackets,
			MaxRunNs:      n.MaxRunNs, // a high-water mark, not a counter
			TimedRuns:     raw.TimedRuns + raw.SampleRuns,
			TimeUncertain: n.TimeUncertain - o.TimeUncertain,
			TimeUnproven:  n.TimeUnproven - o.TimeUnproven,
		}
	}
}

// diffNetns takes the SNMP deltas of the namespaces readable in both samples, and splits
// traced drops by namespace and by whether its delta could be taken. BPF names a namespace by
// inode only, which the kernel reuses: a namespace replaced between the samples (another
// generation, or counters that went backwards) has no delta, and its drops are unwatched.
//
// A namespace cur deferred (see sample.Config.NetnsReadEvery) has no delta in this interval:
// its drops are carried in cur, and the interval that reads it checks them, with those carried
// before, against its counters' delta since its last read, which prev holds.
func (d *Delta) diffNetns(prev, cur *sample.Sample, reasonOf func(uint32, uint64) string) {
	var cov record.NetnsCoverage
	for ino, cs := range cur.Netns {
		if cs.Deferred {
			cov.Deferred++
			continue
		}
		cov.Read = append(cov.Read, ino)
		ps := prev.Netns[ino]
		ns := d.nsd(ino, cur)
		switch {
		case cs.Err != nil:
			ns.Why = cs.Err.Error()
		case ps == nil:
			ns.Why = "namespace appeared during the interval: counters have no baseline yet"
		case ps.NS.Gen != cs.NS.Gen:
			ns.Why = replaced(ino, ps.NS.Name, cs.NS.Name, "")
		case ps.Err != nil:
			ns.Why = ps.Err.Error()
		default:
			ns.SNMP = snmp.Sub(ps.SNMP, cs.SNMP, SNMPGroups...)
			if g, f, ok := backwards(ns.SNMP); ok {
				ns.SNMP = nil
				ns.Why = replaced(ino, ps.NS.Name, cs.NS.Name, fmt.Sprintf(" (%s %s went backwards)", g, f))
			} else if ps.Deferred {
				// prev's slack holds the namespaces prev read; this one's span opened earlier.
				for check, v := range ps.Moved {
					d.Slack[reconcile.Key{Check: check, CPU: -1}] += v
				}
			}
		}
	}
	carry := map[uint32]map[reconcile.ReasonL4]uint64{}
	for k, v := range d.Drops {
		for cpu, x := range v {
			if x > 0 {
				d.CPUs[cpu] = true
			}
		}
		rl := reconcile.ReasonL4{Reason: reasonOf(k.Reason, k.Location), L4: k.L4}
		if cs := cur.Netns[k.Netns]; cs != nil && cs.Deferred {
			if carry[k.Netns] == nil {
				carry[k.Netns] = map[reconcile.ReasonL4]uint64{}
			}
			carry[k.Netns][rl] += Sum(v)
			continue
		}
		d.nsd(k.Netns, cur).count(rl, Sum(v))
	}
	for ino, ps := range prev.Netns {
		if len(ps.Carried) == 0 {
			continue
		}
		if cs := cur.Netns[ino]; cs != nil && cs.Deferred {
			carry[ino] = record.AddCounts(carry[ino], ps.Carried)
			continue
		}
		ns := d.nsd(ino, cur)
		if ns.Name == "" {
			ns.Name = ps.NS.Name
		}
		for rl, n := range ps.Carried {
			ns.count(rl, n)
		}
	}
	for ino, cs := range cur.Netns {
		if cs.Deferred {
			cs.Carried = carry[ino]
			if len(cs.Carried) > 0 {
				cov.Carried = append(cov.Carried, ino)
			}
		}
	}
	for ino := range d.Netns {
		switch {
		case cur.Netns[ino] != nil:
		case cur.NetnsErr != nil:
			d.Netns[ino].Why = "namespace not listed: " + cur.NetnsErr.Error()
		default:
			d.Netns[ino].Why = "namespace not found (it vanished, or its processes are hidden)"
		}
	}
	if cov.Deferred > 0 {
		slices.Sort(cov.Read)
		slices.Sort(cov.Carried)
		if cov.Read == nil {
			cov.Read = []uint32{}
		}
		d.Coverage = &cov
	}
}

// count adds traced drops: checked when the namespace's counters have a delta, else unwatched.
func (ns *Netns) count(rl reconcile.ReasonL4, n uint64) {
	if ns.SNMP != nil {
		ns.Traced[rl] += n
	} else {
		ns.Unwatched[rl] += n
	}
}

// replaced says why a namespace has no delta when its inode was reused.
func replaced(ino uint32, was, now, how string) string {
	return fmt.Sprintf("namespace %d [%s] was replaced (inode reused) by [%s]%s: its counters start from a new baseline", ino, was, now, how)
}

// backwards finds a counter that decreased: per-namespace SNMP counters only grow, so that is
// another namespace's counter under a reused inode, one List did not catch.
func backwards(delta map[string]map[string]int64) (group, field string, ok bool) {
	for _, g := range SNMPGroups {
		fs := delta[g]
		names := make([]string, 0, len(fs))
		for f, v := range fs {
			if v < 0 {
				names = append(names, f)
			}
		}
		if len(names) > 0 {
			slices.Sort(names)
			return g, names[0], true
		}
	}
	return "", "", false
}

func (d *Delta) nsd(ino uint32, cur *sample.Sample) *Netns {
	ns := d.Netns[ino]
	if ns == nil {
		ns = newNetns("")
		if s := cur.Netns[ino]; s != nil {
			ns.Name = s.NS.Name
		}
		d.Netns[ino] = ns
	}
	return ns
}

func newNetns(name string) *Netns {
	return &Netns{Name: name, Traced: map[reconcile.ReasonL4]uint64{}, Unwatched: map[reconcile.ReasonL4]uint64{}}
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Add accumulates o into e, for a session's summary. Slack is not summed: shifts between
// intervals cancel out, so the session's slack is that of its first and last reads.
func (e *Evidence) Add(o *Evidence) {
	e.Duration += o.Duration
	if o.SoftnetErr != nil {
		e.SoftnetErr = o.SoftnetErr
	}
	if o.SoftirqsErr != nil {
		e.SoftirqsErr = o.SoftirqsErr
	}
	if e.KernelRuns == nil {
		e.KernelRuns = map[int]uint64{}
	}
	for cpu, v := range o.KernelRuns {
		e.KernelRuns[cpu] += v
	}
	e.StaleRuns = record.AddCounts(e.StaleRuns, o.StaleRuns)
	if e.Netns == nil {
		e.Netns = map[uint32]*Netns{}
	}
	for ino, ns := range o.Netns {
		a := e.Netns[ino]
		if a == nil {
			a = newNetns(ns.Name)
			e.Netns[ino] = a
		}
		a.add(ns)
	}
}

func (a *Netns) add(ns *Netns) {
	if ns.SNMP == nil {
		// Drops traced while the counters were unreadable cannot be reconciled later.
		for k, v := range ns.Traced {
			a.Unwatched[k] += v
		}
		if ns.Why != "" {
			a.Why = ns.Why
		}
	} else {
		for k, v := range ns.Traced {
			a.Traced[k] += v
		}
		if a.SNMP == nil {
			a.SNMP = map[string]map[string]int64{}
		}
		for g, fs := range ns.SNMP {
			if a.SNMP[g] == nil {
				a.SNMP[g] = map[string]int64{}
			}
			for f, v := range fs {
				a.SNMP[g][f] += v
			}
		}
	}
	for k, v := range ns.Unwatched {
		a.Unwatched[k] += v
	}
}
