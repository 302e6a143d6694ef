// SPDX-License-Identifier: Apache-2.0

package explain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/record"
)

// limitShare is the part of one CPU's count that happened under one value of a limit: lo when
// the limit stayed at it, somewhere in lo..hi when it changed within the intervals counted.
type limitShare struct {
	lo, hi   int64
	n        uint64
	from, to time.Time // the first and last span with any of it (or of the value, when none)
}

func (s limitShare) value() string {
	if s.lo == s.hi {
		return fmt.Sprint(s.lo)
	}
	return fmt.Sprintf("%d..%d (it changed within an interval)", s.lo, s.hi)
}

// limitSplit is one CPU's count over a summary's limit spans, by the value of one limit.
type limitSplit struct {
	name   string
	what   string // what is counted: "squeezes", "overflows"
	shares []limitShare
	// failed is the highest value under which the count moved: a fix must go past it.
	failed int64
	// end is the value at the end of the spans, in force throughout from endFrom.
	end     int64
	endFrom time.Time
}

// split splits one CPU's count over the record's limit spans by the value of one limit. ok is
// false when there is nothing to split: no spans, or the limit kept one value throughout.
func (e *explainer) split(cpu int, name, what string, limit func(record.Sysctl) int64, count func(record.SpanCPU) uint64) (limitSplit, bool) {
	sp := limitSplit{name: name, what: what, failed: -1}
	if n := len(e.iv.LimitSpans); n > 0 {
		sp.end = limit(e.iv.LimitSpans[n-1].Sysctl)
	}
	for i := range e.iv.LimitSpans {
		p := &e.iv.LimitSpans[i]
		lo, hi := limit(p.Low()), limit(p.High())
		if lo != sp.end || hi != sp.end {
			sp.endFrom = time.Time(p.To)
		}
		n := count(p.CPU(cpu))
		j := 0
		for j < len(sp.shares) && (sp.shares[j].lo != lo || sp.shares[j].hi != hi) {
			j++
		}
		if j == len(sp.shares) {
			sp.shares = append(sp.shares, limitShare{lo: lo, hi: hi, from: time.Time(p.From), to: time.Time(p.To)})
		}
		s := &sp.shares[j]
		if n > 0 {
			if s.n == 0 {
				s.from = time.Time(p.From)
			}
			s.to = time.Time(p.To)
			s.n = record.AddSat(s.n, n)
			// Under a value that changed within a span, only its lowest is certain to have
			// been in force.
			sp.failed = max(sp.failed, lo)
		} else if s.n == 0 {
			s.to = time.Time(p.To)
		}
	}
	if len(sp.shares) < 2 && (len(sp.shares) == 0 || sp.shares[0].lo == sp.shares[0].hi) {
		return limitSplit{}, false
	}
	return sp, sp.failed >= 0
}

// String says each value's share, the largest first: "4812 squeezes under netdev_budget=4
// (13:25:39-13:25:47); none under 300". A value the limit only passed through within an
// interval is named only when it has a share.
func (sp limitSplit) String() string {
	shares := slices.Clone(sp.shares)
	slices.SortStableFunc(shares, func(a, b limitShare) int { return cmp.Compare(b.n, a.n) })
	parts := make([]string, 0, len(shares))
	for _, s := range shares {
		name := ""
		if len(parts) == 0 {
			name = sp.name + "="
		}
		switch {
		case s.n > 0:
			parts = append(parts, fmt.Sprintf("%d %s under %s%s (%s-%s)", s.n, sp.what, name, s.value(),
				s.from.UTC().Format("15:04:05"), s.to.UTC().Format("15:04:05")))
		case s.lo == s.hi:
			parts = append(parts, fmt.Sprintf("none under %s%d", name, s.lo))
		}
	}
	return strings.Join(parts, "; ")
}

// raised says, when the limit at the end is above the one that failed, since when it was and
// how much it was hit since; "" when it was not raised.
func (sp limitSplit) raised() string {
	if sp.end <= sp.failed {
		return ""
	}
	tail := "none since"
	if n := sp.under(sp.end); n > 0 {
		tail = fmt.Sprintf("%d %s since", n, sp.what)
	}
	return fmt.Sprintf("%s was already raised from %d to %d during the session (by %s; %s)",
		sp.name, sp.failed, sp.end, sp.endFrom.UTC().Format("15:04:05"), tail)
}

// fix prefixes a fix that raises the limit to suggest with what the session already did: when
// the limit in force at the end is already that high and was not hit, keeping it is the fix.
func (sp limitSplit) fix(suggest int64, fix string) string {
	r := sp.raised()
	switch {
	case r == "":
		return fix
	case sp.end >= suggest && sp.under(sp.end) == 0:
		return fmt.Sprintf("%s: keep net.core.%s at %d or above (it was %d when it failed)", r, sp.name, sp.end, sp.failed)
	}
	return r + "; " + fix
}

// under is the count under one value of the limit, held throughout a span.
func (sp limitSplit) under(v int64) uint64 {
	var n uint64
	for _, s := range sp.shares {
		if s.lo == v && s.hi == v {
			n = record.AddSat(n, s.n)
		}
	}
	return n
}
