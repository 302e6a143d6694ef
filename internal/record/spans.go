// SPDX-License-Identifier: Apache-2.0

package record

import (
	"strconv"
	"strings"
	"time"
)

// MaxLimitSpans bounds a summary's limit spans: a session of constant tuning folds its latest
// changes into the last span (marked as mixed) rather than growing without end.
const MaxLimitSpans = 16

// Mixed says whether the limits changed within the span.
func (p *LimitSpan) Mixed() bool { return p.Lowest != nil }

// Low is each limit's smallest value in force during the span.
func (p *LimitSpan) Low() Sysctl {
	if p.Lowest != nil {
		return *p.Lowest
	}
	return p.Sysctl
}

// High is each limit's largest value in force during the span.
func (p *LimitSpan) High() Sysctl {
	if p.Highest != nil {
		return *p.Highest
	}
	return p.Sysctl
}

// CPU returns the span's counts of one CPU; zero when it neither squeezed nor overflowed.
func (p *LimitSpan) CPU(cpu int) SpanCPU {
	for _, c := range p.CPUs {
		if c.CPU == cpu {
			return c
		}
	}
	return SpanCPU{CPU: cpu}
}

// intervalSpan is the span of one interval record: nil when it has no settings.
func intervalSpan(o *Interval) *LimitSpan {
	if o.Sysctl == nil {
		return nil
	}
	to := time.Time(o.Time)
	p := &LimitSpan{From: Time(to.Add(-time.Duration(o.DurationMs) * time.Millisecond)), To: o.Time, Sysctl: *o.Sysctl, CPUs: []SpanCPU{}}
	if len(o.SysctlChanges) > 0 {
		low, high := rangeIn(*o.Sysctl, o.SysctlChanges)
		p.Lowest, p.Highest = &low, &high
	}
	for _, c := range o.CPUs {
		var sc SpanCPU
		if n := c.NetRx; n != nil {
			sc.Runs, sc.Packets, sc.BudgetSqueezes, sc.TimeSqueezes = n.Runs, n.Packets, n.BudgetSqueezes, n.TimeSqueezes
		}
		if sn := c.Softnet; sn != nil {
			sc.Processed, sc.Dropped = sn.Processed, sn.Dropped
		}
		if sc.BudgetSqueezes+sc.TimeSqueezes > 0 || sc.Dropped > 0 {
			sc.CPU = c.CPU
			p.CPUs = append(p.CPUs, sc)
		}
	}
	return p
}

// rangeIn is each limit's smallest and largest value among end and both sides of every
// change, as the session writes them ("netdev_budget 300->4, netdev_max_backlog 1000->16 at
// 13:25:39.123").
func rangeIn(end Sysctl, changes []string) (low, high Sysctl) {
	low, high = end, end
	fields := func(s *Sysctl) map[string]*int64 {
		return map[string]*int64{
			"netdev_budget": &s.NetdevBudget, "netdev_budget_usecs": &s.NetdevBudgetUsecs,
			"netdev_max_backlog": &s.NetdevMaxBacklog, "dev_weight": &s.DevWeight,
		}
	}
	lows, highs := fields(&low), fields(&high)
	for _, ch := range changes {
		ch, _, _ = strings.Cut(ch, " at ")
		for _, part := range strings.Split(ch, ", ") {
			name, vals, ok := strings.Cut(part, " ")
			if !ok || lows[name] == nil {
				continue
			}
			for _, s := range strings.Split(vals, "->") {
				if v, err := strconv.ParseInt(s, 10, 64); err == nil {
					*lows[name] = min(*lows[name], v)
					*highs[name] = max(*highs[name], v)
				}
			}
		}
	}
	return low, high
}

// each applies op to every limit of a and b.
func each(a, b Sysctl, op func(x, y int64) int64) Sysctl {
	return Sysctl{
		NetdevBudget: op(a.NetdevBudget, b.NetdevBudget), NetdevBudgetUsecs: op(a.NetdevBudgetUsecs, b.NetdevBudgetUsecs),
		NetdevMaxBacklog: op(a.NetdevMaxBacklog, b.NetdevMaxBacklog), DevWeight: op(a.DevWeight, b.DevWeight),
	}
}

// merge adds o, which follows p, into p: p then ends where o ends, under o's limits.
func (p *LimitSpan) merge(o *LimitSpan) {
	if p.Mixed() || o.Mixed() || p.Sysctl != o.Sysctl {
		low := each(p.Low(), o.Low(), func(x, y int64) int64 { return min(x, y) })
		high := each(p.High(), o.High(), func(x, y int64) int64 { return max(x, y) })
		p.Lowest, p.Highest = &low, &high
	}
	p.To, p.Sysctl = o.To, o.Sysctl
	for i := range o.CPUs {
		c := &o.CPUs[i]
		j := 0
		for j < len(p.CPUs) && p.CPUs[j].CPU < c.CPU {
			j++
		}
		if j == len(p.CPUs) || p.CPUs[j].CPU != c.CPU {
			p.CPUs = append(p.CPUs[:j], append([]SpanCPU{{CPU: c.CPU}}, p.CPUs[j:]...)...)
		}
		addCounters(&p.CPUs[j], c) // CPU is an int: not summed
	}
}

// addSpan appends o to the spans: into the last one when both are under the same limits
// throughout, or when the list is full.
func (s *Interval) addSpan(o *LimitSpan) {
	if n := len(s.LimitSpans); n > 0 {
		last := &s.LimitSpans[n-1]
		if (!last.Mixed() && !o.Mixed() && last.Sysctl == o.Sysctl) || n >= MaxLimitSpans {
			last.merge(o)
			return
		}
	}
	// merge keeps nothing of o; a span appended is copied, so that s shares no memory with it.
	s.LimitSpans = append(s.LimitSpans, *o.clone())
}

func (p *LimitSpan) clone() *LimitSpan {
	c := *p
	if p.Lowest != nil {
		low, high := *p.Lowest, p.High()
		c.Lowest, c.Highest = &low, &high
	}
	c.CPUs = append([]SpanCPU{}, p.CPUs...)
	return &c
}

// addSpans extends s's limit spans with o's: o's own when it is a sum, else o as one span.
func (s *Interval) addSpans(o *Interval) {
	if len(o.LimitSpans) > 0 {
		for i := range o.LimitSpans {
			s.addSpan(&o.LimitSpans[i])
		}
		return
	}
	if p := intervalSpan(o); p != nil {
		s.addSpan(p)
	}
}
