// SPDX-License-Identifier: Apache-2.0

package session

import (
	"time"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/snmp"
	"github.com/droptrace/droptrace/internal/softirqs"
	"github.com/droptrace/droptrace/internal/softnet"
	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

// delta is what happened between two samples. Intervals are deltas of consecutive samples;
// the summary is the sum of the intervals' deltas, never a first-to-last difference, because
// 32-bit softnet counters can wrap more than once over a long session.
type delta struct {
	duration time.Duration
	// slack is how far each checked kernel counter moved while the opening and closing
	// samples read the BPF maps (see sample.moved).
	slack   map[reconcile.Key]uint64
	drops   map[tracer.DropKey][]uint64
	dstats  dropStats
	netrx   map[int]tracer.NetRx
	softnet map[int]softnet.CPUDelta // CPUs with a baseline only
	snErr   error
	netrxK  map[int]uint64 // /proc/softirqs NET_RX
	siErr   error
	netns   map[uint32]*nsDelta
	// cpus is every CPU seen in any source, for a stable per-CPU table.
	cpus      map[int]bool
	irqs      map[int]map[int]uint64 // network IRQ -> CPU -> interrupts
	rxDropped map[string]uint64
	ports     map[portKey]uint64 // socket-level drop events by port
	mcastDrop uint64             // drop events to multicast destinations
	// sockstat is the socket usage at the end (for the summary: the peak of each field);
	// mcast lists multicast memberships that came or went.
	sockstat map[string]map[string]int64
	mcast    []string
	// sysctl holds the values at the end; sysctlChanges says when they changed.
	sysctl        sysctl.NetCore
	sysctlChanges []string
}

type dropStats struct {
	seen, aggFull, sent, rateLimited, ringFull, recursion, netrxRecursion, writeFailed, written uint64
}

type nsDelta struct {
	name string
	// traced counts drops by reason and protocol while the namespace's counters were readable;
	// unwatched while they were not.
	traced    map[reconcile.ReasonL4]uint64
	unwatched map[reconcile.ReasonL4]uint64
	snmp      map[string]map[string]int64
	why       string
}

// snmpGroups are the SNMP groups kept in records: the socket-level drop counters.
var snmpGroups = []string{"Udp", "Udp6", "UdpLite", "UdpLite6", "TcpExt"}

func sum(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}

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

// diff computes the delta between two samples; reasonOf names a reason code.
func diff(prev, cur *sample, reasonOf func(uint32) string) *delta {
	d := &delta{
		duration: cur.at.Sub(prev.at),
		slack:    addMoved(prev.moved, cur.moved),
		drops:    map[tracer.DropKey][]uint64{},
		netrx:    map[int]tracer.NetRx{},
		softnet:  map[int]softnet.CPUDelta{},
		netrxK:   map[int]uint64{},
		netns:    map[uint32]*nsDelta{},
		cpus:     map[int]bool{},
	}
	d.irqs = map[int]map[int]uint64{}
	for irq, c := range cur.irqs {
		if p, ok := prev.irqs[irq]; ok {
			d.irqs[irq] = hostctx.SubCounts(p, c)
		}
	}
	d.sockstat = cur.sockstat
	if prev.mcastOK && cur.mcastOK {
		d.mcast = hostctx.McastChanges(prev.mcast, cur.mcast)
	}
	d.rxDropped = map[string]uint64{}
	for name, v := range cur.rxDropped {
		if p, ok := prev.rxDropped[name]; ok && v > p {
			d.rxDropped[name] = v - p
		}
	}
	for k, v := range cur.drops {
		dv := sub(v, prev.drops[k])
		if sum(dv) > 0 {
			d.drops[k] = dv
		}
	}
	p, c := prev.dstats, cur.dstats
	d.dstats = dropStats{
		seen:        sum(c.Seen) - sum(p.Seen),
		aggFull:     sum(c.AggFull) - sum(p.AggFull),
		sent:        sum(c.EventsSent) - sum(p.EventsSent),
		rateLimited: sum(c.RateLimited) - sum(p.RateLimited),
		ringFull:    sum(c.RingFull) - sum(p.RingFull),
		recursion:   c.RecursionMisses - p.RecursionMisses,
	}
	for i, n := range cur.netrx {
		var o tracer.NetRx
		if i < len(prev.netrx) {
			o = prev.netrx[i]
		}
		raw := tracer.NetRx{BusyNs: n.BusyNs - o.BusyNs, TimedRuns: n.TimedRuns - o.TimedRuns,
			SampleBusyNs: n.SampleBusyNs - o.SampleBusyNs, SampleRuns: n.SampleRuns - o.SampleRuns,
			SampledFrom: n.SampledFrom - o.SampledFrom}
		// Busy time is estimated per interval and the estimates summed, so that the summary's
		// busy time is the sum of the intervals'; TimedRuns becomes every run that was timed.
		d.netrx[i] = tracer.NetRx{
			Runs: n.Runs - o.Runs, Exits: n.Exits - o.Exits, BusyNs: raw.EstBusyNs(),
			Polls: n.Polls - o.Polls, Packets: n.Packets - o.Packets,
			BudgetSqueezes: n.BudgetSqueezes - o.BudgetSqueezes, TimeSqueezes: n.TimeSqueezes - o.TimeSqueezes,
			OtherPolls: n.OtherPolls - o.OtherPolls, OtherPackets: n.OtherPackets - o.OtherPackets,
			MaxRunNs:      n.MaxRunNs, // a high-water mark, not a counter
			TimedRuns:     raw.TimedRuns + raw.SampleRuns,
			TimeUncertain: n.TimeUncertain - o.TimeUncertain,
		}
		d.dstats.netrxRecursion = n.RecursionMisses - o.RecursionMisses
	}
	d.snErr = firstErr(cur.snErr, prev.snErr)
	if d.snErr == nil {
		for _, cd := range softnet.Sub(prev.softnet, cur.softnet) {
			d.cpus[cd.CPU] = true
			if cd.Valid {
				d.softnet[cd.CPU] = cd
			}
		}
	}
	d.siErr = firstErr(cur.siErr, prev.siErr)
	if d.siErr == nil {
		for cpu, v := range softirqs.Sub(prev.softirqs, cur.softirqs, "NET_RX") {
			d.netrxK[cpu] = v
			d.cpus[cpu] = true
		}
	}

	// Per-namespace traced drops, split by whether that namespace's counters are readable in
	// both samples.
	for k, v := range d.drops {
		ns := d.nsd(k.Netns, cur)
		rl := reconcile.ReasonL4{Reason: reasonOf(k.Reason), L4: k.L4}
		ps, cs := prev.netns[k.Netns], cur.netns[k.Netns]
		if ps != nil && cs != nil && ps.snmp != nil && cs.snmp != nil {
			ns.traced[rl] += sum(v)
		} else {
			ns.unwatched[rl] += sum(v)
		}
		for cpu, x := range v {
			if x > 0 {
				d.cpus[cpu] = true
			}
		}
	}
	for ino, cs := range cur.netns {
		ps := prev.netns[ino]
		ns := d.nsd(ino, cur)
		switch {
		case cs.err != nil:
			ns.why = cs.err.Error()
		case ps == nil:
			ns.why = "namespace appeared during the interval: counters have no baseline yet"
		case ps.err != nil:
			ns.why = ps.err.Error()
		default:
			ns.snmp = snmp.Sub(ps.snmp, cs.snmp, snmpGroups...)
		}
	}
	for ino := range d.netns {
		if cur.netns[ino] == nil {
			d.netns[ino].why = "namespace not found (it vanished, or its processes are hidden)"
		}
	}
	return d
}

func (d *delta) nsd(ino uint32, cur *sample) *nsDelta {
	ns := d.netns[ino]
	if ns == nil {
		ns = &nsDelta{traced: map[reconcile.ReasonL4]uint64{}, unwatched: map[reconcile.ReasonL4]uint64{}}
		if s := cur.netns[ino]; s != nil {
			ns.name = s.ns.Name
		}
		d.netns[ino] = ns
	}
	return ns
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// add accumulates o into d (for the session summary).
func (d *delta) add(o *delta) {
	d.duration += o.duration
	for irq, m := range o.irqs {
		if d.irqs[irq] == nil {
			d.irqs[irq] = map[int]uint64{}
		}
		for cpu, v := range m {
			d.irqs[irq][cpu] += v
		}
	}
	for name, v := range o.rxDropped {
		d.rxDropped[name] += v
	}
	if len(o.ports) > 0 && d.ports == nil {
		d.ports = map[portKey]uint64{}
	}
	for k, v := range o.ports {
		d.ports[k] += v
	}
	d.mcastDrop += o.mcastDrop
	d.mcast = append(d.mcast, o.mcast...)
	for g, m := range o.sockstat {
		if d.sockstat == nil {
			d.sockstat = map[string]map[string]int64{}
		}
		if d.sockstat[g] == nil {
			d.sockstat[g] = map[string]int64{}
		}
		for f, v := range m {
			d.sockstat[g][f] = max(d.sockstat[g][f], v)
		}
	}
	d.sysctl = o.sysctl
	d.sysctlChanges = append(d.sysctlChanges, o.sysctlChanges...)
	for k, v := range o.drops {
		cur := d.drops[k]
		if cur == nil {
			cur = make([]uint64, len(v))
		}
		for i, x := range v {
			if i < len(cur) {
				cur[i] += x
			}
		}
		d.drops[k] = cur
	}
	d.dstats.seen += o.dstats.seen
	d.dstats.aggFull += o.dstats.aggFull
	d.dstats.sent += o.dstats.sent
	d.dstats.rateLimited += o.dstats.rateLimited
	d.dstats.ringFull += o.dstats.ringFull
	d.dstats.recursion += o.dstats.recursion
	d.dstats.netrxRecursion += o.dstats.netrxRecursion
	d.dstats.writeFailed += o.dstats.writeFailed
	d.dstats.written += o.dstats.written
	for cpu, n := range o.netrx {
		a := d.netrx[cpu]
		a.Runs += n.Runs
		a.Exits += n.Exits
		a.BusyNs += n.BusyNs
		a.TimedRuns += n.TimedRuns
		a.TimeUncertain += n.TimeUncertain
		a.Polls += n.Polls
		a.Packets += n.Packets
		a.BudgetSqueezes += n.BudgetSqueezes
		a.TimeSqueezes += n.TimeSqueezes
		a.OtherPolls += n.OtherPolls
		a.OtherPackets += n.OtherPackets
		a.MaxRunNs = n.MaxRunNs
		d.netrx[cpu] = a
	}
	if o.snErr != nil {
		d.snErr = o.snErr
	}
	for cpu, s := range o.softnet {
		a := d.softnet[cpu]
		a.CPU, a.Valid = cpu, true
		a.Processed += s.Processed
		a.Dropped += s.Dropped
		a.TimeSqueeze += s.TimeSqueeze
		a.ReceivedRPS += s.ReceivedRPS
		a.FlowLimit += s.FlowLimit
		a.BacklogLen = max(a.BacklogLen, s.BacklogLen)
		d.softnet[cpu] = a
	}
	if o.siErr != nil {
		d.siErr = o.siErr
	}
	for cpu, v := range o.netrxK {
		d.netrxK[cpu] += v
	}
	for cpu := range o.cpus {
		d.cpus[cpu] = true
	}
	for ino, ns := range o.netns {
		a := d.netns[ino]
		if a == nil {
			a = &nsDelta{name: ns.name, traced: map[reconcile.ReasonL4]uint64{}, unwatched: map[reconcile.ReasonL4]uint64{}}
			d.netns[ino] = a
		}
		if ns.snmp == nil {
			// Drops traced while the counters were unreadable cannot be reconciled later.
			for k, v := range ns.traced {
				a.unwatched[k] += v
			}
			if ns.why != "" {
				a.why = ns.why
			}
		} else {
			for k, v := range ns.traced {
				a.traced[k] += v
			}
			if a.snmp == nil {
				a.snmp = map[string]map[string]int64{}
			}
			for g, fs := range ns.snmp {
				if a.snmp[g] == nil {
					a.snmp[g] = map[string]int64{}
				}
				for f, v := range fs {
					a.snmp[g][f] += v
				}
			}
		}
		for k, v := range ns.unwatched {
			a.unwatched[k] += v
		}
	}
}

func newDelta() *delta {
	return &delta{
		drops: map[tracer.DropKey][]uint64{}, netrx: map[int]tracer.NetRx{},
		softnet: map[int]softnet.CPUDelta{}, netrxK: map[int]uint64{},
		netns: map[uint32]*nsDelta{}, cpus: map[int]bool{},
		irqs: map[int]map[int]uint64{}, rxDropped: map[string]uint64{},
	}
}
