// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/rank"
	"github.com/droptrace/droptrace/internal/record"
)

// A recording is read as a stream: each interval is folded into what the reports keep (the
// sum of the intervals, the checks combined over them, the timeline) and dropped, so that
// memory follows the report, not the length of the file. The bounds below are far above
// what a real session writes; past them analyze merges or keeps the largest, as documented in
// docs/analyze.md. Variables for tests.
var (
	// maxPoints is how many timeline points are kept: an hour of one-second intervals one
	// by one. Past it, neighbours are merged in pairs (Point.Intervals says how many).
	maxPoints = 3600
	// maxSumEntries bounds the lists a sum of intervals grows with new names (call sites,
	// ports, checks, devices, IRQs, interfaces' rx_dropped) and the sysctl and multicast changes
	// it appends.
	maxSumEntries = 1024
)

// maxMismatchSeqs is how many mismatching intervals a combined check names.
const maxMismatchSeqs = 8

// intervalSum folds intervals, as Read reads them, into what stands in for the summary record
// of a session that was killed before writing it, summed the way the session sums its own
// (record.Interval.Add). Two things differ from a real summary and are said where they show:
// locations are summed from each interval's top record.TopLocations, and checks are combined
// from the intervals' (see checkSum) instead of being recomputed on the sums, since a record
// does not carry everything they need (per-namespace protocol splits, read skew).
type intervalSum struct {
	s      *record.Interval
	checks checkSum
	// trimmed is set when a bound dropped entries, which the report must say.
	trimmed bool
}

func newIntervalSum() *intervalSum {
	return &intervalSum{s: &record.Interval{
		Header: record.Header{Type: record.TypeSummary}, Drops: map[string]uint64{},
		SNMP: map[string]map[string]int64{}, Checks: []record.Check{}, Locations: []record.Location{},
		Devices: []record.Device{},
	}, checks: checkSum{accs: map[string]*checkAcc{}}}
}

func (a *intervalSum) add(iv *record.Interval) {
	a.s.Add(iv)
	a.trimmed = a.checks.add(iv) || a.trimmed
	a.trimmed = bound(&a.s.Locations) || a.trimmed
	a.trimmed = bound(&a.s.Ports) || a.trimmed
	a.trimmed = bound(&a.s.SysctlChanges) || a.trimmed
	a.trimmed = bound(&a.s.McastChanges) || a.trimmed
	a.trimmed = bound(&a.s.Devices) || a.trimmed
	a.trimmed = bound(&a.s.NetIRQs) || a.trimmed
	if len(a.s.RxDropped) > 2*maxSumEntries {
		// Keyed by interface, which churns on a container host; the largest are kept.
		for _, e := range rank.ByCount(a.s.RxDropped, -1)[maxSumEntries:] {
			delete(a.s.RxDropped, e.Key)
		}
		a.trimmed = true
	}
}

// bound keeps the first maxSumEntries of a list: the largest, for the lists Add keeps sorted
// by count, the earliest for changes, and the lowest keys for devices and IRQs.
func bound[T any](l *[]T) bool {
	if len(*l) <= maxSumEntries {
		return false
	}
	*l = (*l)[:maxSumEntries:maxSumEntries]
	return true
}

func (a *intervalSum) result() *record.Interval {
	s := a.s
	s.Trim()
	s.Checks = a.checks.result()
	return s
}

// checkSum combines each check over the intervals: the counts are summed where the check
// could be made; it is a mismatch when it was one in any interval (a mismatch is never hidden
// in a sum where it might cancel out), explained when every mismatching interval named the
// same measured cause, and unavailable only when it was in every interval.
type checkSum struct {
	order []string
	accs  map[string]*checkAcc
}

type checkAcc struct {
	chk                       record.Check
	traced, kernel            int64
	made, unavailable         int
	mismatches                int
	mismatchSeqs              []string // the first maxMismatchSeqs
	explained                 string
	explainedAll              bool
	lastUnavailable, lastNote string
}

// add folds iv's checks in; it reports whether a new check was left out by maxSumEntries.
func (cs *checkSum) add(iv *record.Interval) (trimmed bool) {
	for _, c := range iv.Checks {
		k := c.Check
		if c.CPU != nil {
			k = fmt.Sprintf("%s/%d", c.Check, *c.CPU)
		}
		a := cs.accs[k]
		if a == nil {
			if len(cs.order) >= maxSumEntries {
				trimmed = true
				continue
			}
			a = &checkAcc{chk: record.Check{Check: c.Check, CPU: c.CPU}, explainedAll: true}
			cs.accs[k] = a
			cs.order = append(cs.order, k)
		}
		if c.Status == record.StatusUnavailable {
			a.unavailable++
			a.lastUnavailable = c.Note
			continue
		}
		a.made++
		if c.Traced != nil {
			a.traced = record.AddSatInt(a.traced, *c.Traced)
		}
		if c.Kernel != nil {
			a.kernel = record.AddSatInt(a.kernel, *c.Kernel)
		}
		if c.Status == record.StatusMismatch {
			a.mismatches++
			if len(a.mismatchSeqs) < maxMismatchSeqs {
				a.mismatchSeqs = append(a.mismatchSeqs, fmt.Sprint(iv.Seq))
			}
			a.lastNote = c.Note
			switch {
			case c.ExplainedBy == "":
				a.explainedAll = false
			case a.explained == "":
				a.explained = c.ExplainedBy
			case a.explained != c.ExplainedBy:
				a.explainedAll = false
			}
		}
	}
	return trimmed
}

func (cs *checkSum) result() []record.Check {
	out := []record.Check{}
	for _, k := range cs.order {
		a := cs.accs[k]
		c := a.chk
		if a.made == 0 {
			c.Status, c.Note = record.StatusUnavailable, a.lastUnavailable
			out = append(out, c)
			continue
		}
		c.Traced, c.Kernel = ptr(a.traced), ptr(a.kernel)
		var notes []string
		if a.mismatches > 0 {
			c.Status = record.StatusMismatch
			if a.explainedAll {
				c.ExplainedBy = a.explained
			}
			seqs := a.mismatchSeqs
			if a.mismatches > maxMismatchSeqs {
				seqs = append(seqs[:maxMismatchSeqs:maxMismatchSeqs], "...")
			}
			notes = append(notes, fmt.Sprintf("mismatch in %d of %d intervals (%s); the last said: %s",
				a.mismatches, a.made, strings.Join(seqs, ", "), a.lastNote))
		} else {
			c.Status = record.StatusMatch
		}
		if a.unavailable > 0 {
			notes = append(notes, fmt.Sprintf("unavailable in %d intervals (%s): the counts are of the other %d", a.unavailable, a.lastUnavailable, a.made))
		}
		c.Note = strings.Join(notes, "; ")
		out = append(out, c)
	}
	return out
}

// timelineFold keeps at most maxPoints points: when there would be more, neighbours are
// merged in pairs and every later point holds twice as many intervals.
type timelineFold struct {
	points []Point
	per    int // intervals per point
}

func (tf *timelineFold) add(start *record.Start, iv *record.Interval) {
	p := newPoint(start, iv)
	if tf.per == 0 {
		tf.per = 1
	}
	if n := len(tf.points); n > 0 && tf.points[n-1].count() < tf.per {
		tf.points[n-1].merge(&p)
		return
	}
	tf.points = append(tf.points, p)
	if len(tf.points) <= maxPoints {
		return
	}
	half := tf.points[:0]
	for i := 0; i < len(tf.points); i += 2 {
		m := tf.points[i]
		if i+1 < len(tf.points) {
			m.merge(&tf.points[i+1])
		}
		half = append(half, m)
	}
	clear(tf.points[len(half):])
	tf.points = half
	tf.per *= 2
}

func newPoint(start *record.Start, iv *record.Interval) Point {
	p := Point{
		Seq: iv.Seq, Time: iv.Time, OffsetMs: time.Time(iv.Time).Sub(time.Time(start.Time)).Milliseconds(), DurationMs: iv.DurationMs,
		Drops: iv.Drops, DropsTotal: rank.Total(iv.Drops), CPUs: []PointCPU{}, SysctlChanges: iv.SysctlChanges,
	}
	if p.Drops == nil {
		p.Drops = map[string]uint64{}
	}
	for _, c := range iv.CPUs {
		pc := PointCPU{CPU: c.CPU, Drops: rank.Total(c.Drops)}
		if sn := c.Softnet; sn != nil {
			pc.BacklogDropped, pc.Squeezes = ptr(sn.Dropped), ptr(sn.TimeSqueeze)
		}
		if n := c.NetRx; n != nil {
			pc.BudgetSqueezes, pc.TimeSqueezes = ptr(n.BudgetSqueezes), ptr(n.TimeSqueezes)
		}
		p.CPUs = append(p.CPUs, pc)
	}
	for _, v := range explain.Explain(start, iv) {
		p.Verdicts = append(p.Verdicts, pointVerdict(v))
	}
	return p
}

// count is how many intervals the point holds.
func (p *Point) count() int { return max(p.Intervals, 1) }

// last is the seq of the point's last interval.
func (p *Point) last() int {
	if p.LastSeq != 0 {
		return p.LastSeq
	}
	return p.Seq
}

// peak is the drops/s of the point's worst interval.
func (p *Point) peak() float64 {
	if p.Intervals > 1 {
		return p.PeakDropsPerSec
	}
	return perSec(p.DropsTotal, p.DurationMs)
}

// merge adds o, the intervals that follow p's, into p: counts summed (saturating), the time
// and offset o's, verdicts and sysctl changes of both, each verdict once.
func (p *Point) merge(o *Point) {
	if p.Intervals <= 1 {
		p.Drops = maps.Clone(p.Drops) // a point of one interval shares its record's map
	}
	p.PeakDropsPerSec = max(p.peak(), o.peak())
	p.Intervals = p.count() + o.count()
	p.LastSeq = o.last()
	p.Time, p.OffsetMs = o.Time, o.OffsetMs
	p.DurationMs = record.AddSatInt(p.DurationMs, o.DurationMs)
	p.Drops = record.AddCounts(p.Drops, o.Drops)
	p.DropsTotal = record.AddSat(p.DropsTotal, o.DropsTotal)
	for _, oc := range o.CPUs {
		i := 0
		for i < len(p.CPUs) && p.CPUs[i].CPU != oc.CPU {
			i++
		}
		if i == len(p.CPUs) {
			p.CPUs = append(p.CPUs, PointCPU{CPU: oc.CPU})
		}
		pc := &p.CPUs[i]
		pc.Drops = record.AddSat(pc.Drops, oc.Drops)
		addOpt(&pc.BacklogDropped, oc.BacklogDropped)
		addOpt(&pc.Squeezes, oc.Squeezes)
		addOpt(&pc.BudgetSqueezes, oc.BudgetSqueezes)
		addOpt(&pc.TimeSqueezes, oc.TimeSqueezes)
	}
	if room := maxSumEntries - len(p.SysctlChanges); room > 0 {
		p.SysctlChanges = append(p.SysctlChanges[:len(p.SysctlChanges):len(p.SysctlChanges)], o.SysctlChanges[:min(room, len(o.SysctlChanges))]...)
	}
	for _, v := range o.Verdicts {
		if !containsVerdict(p.Verdicts, v) {
			p.Verdicts = append(p.Verdicts, v)
		}
	}
}

// addOpt adds an optional count: absent stays absent only when both are.
func addOpt(dst **uint64, v *uint64) {
	if v != nil {
		addTo(dst, *v)
	}
}
