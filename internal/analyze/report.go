// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"encoding/json"
	"math"
	"reflect"
	"sort"

	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/rank"
	"github.com/droptrace/droptrace/internal/record"
)

// Version is the version of the JSON document's shape (docs/analyze.md): fields are added,
// never renamed or retyped, without raising it.
const Version = 1

// Summary sources: where a report's totals, checks and verdicts come from.
const (
	SourceSummary   = "summary"   // the recording's own summary record
	SourceIntervals = "intervals" // no summary (a killed session): the sum of its intervals
)

// Document is everything analyze says about its inputs: the JSON output as is, and what the
// text and the chart are drawn from.
type Document struct {
	Version    int         `json:"analyze_version"`
	Warnings   []Warning   `json:"warnings"`
	Recordings []*Report   `json:"recordings"`
	Comparison *Comparison `json:"comparison,omitempty"`
}

// Report is one recording, analyzed.
type Report struct {
	File  string        `json:"file"`
	Start *record.Start `json:"start"`
	// Source says where Summary comes from, SourceSummary or SourceIntervals.
	Source string `json:"summary_source"`
	// Summary is the session's record: the recorded summary, or the sum of the intervals
	// (see intervalSum), without its verdicts (they are in Verdicts and RecordedVerdicts).
	Summary    *record.Interval `json:"summary"`
	End        record.Time      `json:"end"`
	Intervals  int              `json:"intervals"`
	DropEvents int              `json:"drop_events"`
	Truncated  bool             `json:"truncated"`
	BadLines   int              `json:"bad_lines"`

	Totals  Totals      `json:"totals"`
	Reasons []ReasonSum `json:"reasons"`
	CPUs    []CPUSum    `json:"cpus"`
	// Timeline has one point per interval record, in order; past maxPoints, neighbours are
	// merged (see timelineFold).
	Timeline []Point `json:"timeline"`

	// Verdicts are re-derived from Summary with internal/explain: what this droptrace's rules
	// say. RecordedVerdicts are those the summary record carried (none without a summary);
	// RecordedDiffer is set when the two disagree, e.g. the recording was made by a droptrace
	// with other rules.
	Verdicts         []record.Verdict `json:"verdicts"`
	RecordedVerdicts []record.Verdict `json:"recorded_verdicts"`
	RecordedDiffer   bool             `json:"recorded_verdicts_differ"`
}

// Totals are the session's counts over all CPUs. Pointers are nil when the recording has no
// such source (counters-only mode, softnet_stat unreadable): absent is not zero.
type Totals struct {
	DurationMs     int64   `json:"duration_ms"`
	Drops          uint64  `json:"drops"`
	DropsPerSec    float64 `json:"drops_per_sec"`
	Processed      *uint64 `json:"processed,omitempty"`
	BacklogDropped *uint64 `json:"backlog_dropped,omitempty"`
	// DropsPct is traced drops per packet received (processed + backlog dropped), in %.
	DropsPct       *float64 `json:"drops_pct,omitempty"`
	Squeezes       *uint64  `json:"squeezes,omitempty"`
	NetRxRuns      *uint64  `json:"net_rx_runs,omitempty"`
	BudgetSqueezes *uint64  `json:"budget_squeezes,omitempty"`
	TimeSqueezes   *uint64  `json:"time_squeezes,omitempty"`
	LostEvents     uint64   `json:"lost_events"`
}

// ReasonSum is one drop reason over the session.
type ReasonSum struct {
	Reason   string  `json:"reason"`
	Drops    uint64  `json:"drops"`
	PerSec   float64 `json:"per_sec"`
	SharePct float64 `json:"share_pct"`
}

// CPUSum is one CPU over the session: the summary's CPU entry and rates derived from it.
type CPUSum struct {
	record.CPU
	DropsTotal  uint64  `json:"drops_total"`
	DropsPerSec float64 `json:"drops_per_sec"`
	// BusyPct is the CPU's time in NET_RX; CoveragePct the share of its NET_RX runs BPF saw.
	BusyPct     *float64 `json:"busy_pct,omitempty"`
	CoveragePct *float64 `json:"coverage_pct,omitempty"`
}

// Analyze builds the report of one recording.
func Analyze(rec *Recording) *Report {
	r := &Report{
		File: rec.File, Start: rec.Start, Intervals: rec.Intervals, DropEvents: rec.DropEvents,
		Truncated: rec.Truncated, BadLines: rec.BadLines, Timeline: rec.Timeline,
	}
	if rec.Summary != nil {
		s := *rec.Summary
		r.Source, r.RecordedVerdicts = SourceSummary, s.Verdicts
		s.Verdicts = nil
		r.Summary = &s
	} else {
		r.Source, r.Summary = SourceIntervals, rec.Sum
	}
	r.End = r.Summary.Time
	r.Verdicts = explain.Explain(rec.Start, r.Summary)
	if r.Verdicts == nil {
		r.Verdicts = []record.Verdict{}
	}
	if r.RecordedVerdicts == nil {
		r.RecordedVerdicts = []record.Verdict{}
	}
	r.RecordedDiffer = r.Source == SourceSummary && !sameVerdicts(r.Verdicts, r.RecordedVerdicts)
	r.totals()
	if r.Timeline == nil {
		r.Timeline = []Point{}
	}
	return r
}

func perSec(n uint64, ms int64) float64 {
	if ms <= 0 {
		return 0
	}
	return round2(float64(n) * 1000 / float64(ms))
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// pct keeps four decimals: a share of a millionth is small, but it is not zero.
func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(1e6*float64(a)/float64(b)) / 1e4
}

func ptr[T any](v T) *T { return &v }

// addTo adds v to *p, creating it: a total stays nil until some CPU has the source.
func addTo(p **uint64, v uint64) {
	if *p == nil {
		*p = new(uint64)
	}
	**p = record.AddSat(**p, v)
}

func (r *Report) totals() {
	s := r.Summary
	t := Totals{DurationMs: s.DurationMs, Drops: rank.Total(s.Drops), LostEvents: s.LostEvents}
	t.DropsPerSec = perSec(t.Drops, s.DurationMs)
	for _, c := range s.CPUs {
		cs := CPUSum{CPU: c, DropsTotal: rank.Total(c.Drops)}
		cs.DropsPerSec = perSec(cs.DropsTotal, s.DurationMs)
		if sn := c.Softnet; sn != nil {
			addTo(&t.Processed, sn.Processed)
			addTo(&t.BacklogDropped, sn.Dropped)
			addTo(&t.Squeezes, sn.TimeSqueeze)
		}
		if n := c.NetRx; n != nil {
			addTo(&t.NetRxRuns, n.Runs)
			addTo(&t.BudgetSqueezes, n.BudgetSqueezes)
			addTo(&t.TimeSqueezes, n.TimeSqueezes)
			if s.DurationMs > 0 {
				cs.BusyPct = ptr(round2(float64(n.BusyUs) / float64(s.DurationMs) / 10))
			}
			if n.KernelRuns > 0 {
				cs.CoveragePct = ptr(pct(n.Runs, n.KernelRuns))
			}
		}
		r.CPUs = append(r.CPUs, cs)
	}
	// Processed and BacklogDropped are set together, from the same softnet row.
	if t.Processed != nil {
		if rx := record.AddSat(*t.Processed, *t.BacklogDropped); rx > 0 {
			t.DropsPct = ptr(pct(t.Drops, rx))
		}
	}
	r.Totals = t
	for reason, n := range s.Drops {
		r.Reasons = append(r.Reasons, ReasonSum{Reason: reason, Drops: n, PerSec: perSec(n, s.DurationMs), SharePct: pct(n, t.Drops)})
	}
	sort.Slice(r.Reasons, func(i, j int) bool {
		a, b := r.Reasons[i], r.Reasons[j]
		if a.Drops != b.Drops {
			return a.Drops > b.Drops
		}
		return a.Reason < b.Reason
	})
	if r.Reasons == nil {
		r.Reasons = []ReasonSum{}
	}
	if r.CPUs == nil {
		r.CPUs = []CPUSum{}
	}
}

// sameVerdicts compares what a reader acts on: which verdicts, how severe, how sure, and the
// words. Evidence is compared after a JSON round trip, since recorded numbers come back as
// float64.
func sameVerdicts(a, b []record.Verdict) bool {
	if len(a) != len(b) {
		return false
	}
	norm := func(vs []record.Verdict) any {
		raw, _ := json.Marshal(vs)
		var out any
		json.Unmarshal(raw, &out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func addCounts(dst, src map[string]uint64) { record.AddCounts(dst, src) }
