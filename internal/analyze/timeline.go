// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/record"
)

// Point is one interval of the timeline, or, in a recording of more than maxPoints intervals,
// consecutive intervals summed (Intervals, LastSeq and PeakDropsPerSec are then set).
type Point struct {
	Seq int `json:"seq"`
	// LastSeq is the seq of the last interval of a merged point.
	LastSeq int `json:"last_seq,omitempty"`
	// Intervals is how many intervals a merged point holds.
	Intervals int `json:"intervals,omitempty"`
	// PeakDropsPerSec is the drops/s of a merged point's worst interval.
	PeakDropsPerSec float64           `json:"peak_drops_per_sec,omitempty"`
	Time            record.Time       `json:"time"`
	OffsetMs        int64             `json:"offset_ms"`
	DurationMs      int64             `json:"duration_ms"`
	Drops           map[string]uint64 `json:"drops"`
	DropsTotal      uint64            `json:"drops_total"`
	CPUs            []PointCPU        `json:"cpus"`
	// SysctlChanges and Verdicts (re-derived) say what happened in the interval.
	SysctlChanges []string       `json:"sysctl_changes,omitempty"`
	Verdicts      []PointVerdict `json:"verdicts,omitempty"`
}

// PointVerdict is a verdict of one interval, named but without its cause and fix. In JSON it
// is one short phrase, "severity id" or "severity id cpu N", e.g. "critical backlog_overflow
// cpu 1".
type PointVerdict struct {
	Severity, ID string
	CPU          *int
}

func pointVerdict(v record.Verdict) PointVerdict {
	return PointVerdict{Severity: v.Severity, ID: v.ID, CPU: v.CPU}
}

// Name is the verdict without its severity: "id" or "id cpu N".
func (v PointVerdict) Name() string {
	if v.CPU != nil {
		return fmt.Sprintf("%s cpu %d", v.ID, *v.CPU)
	}
	return v.ID
}

// Equal says whether two verdicts have the same severity, id and CPU.
func (v PointVerdict) Equal(o PointVerdict) bool {
	return v.Severity == o.Severity && v.ID == o.ID && (v.CPU == nil) == (o.CPU == nil) && (v.CPU == nil || *v.CPU == *o.CPU)
}

// MarshalText writes the JSON form.
func (v PointVerdict) MarshalText() ([]byte, error) {
	return []byte(v.Severity + " " + v.Name()), nil
}

// UnmarshalText reads the JSON form, for programs that read analyze's document.
func (v *PointVerdict) UnmarshalText(b []byte) error {
	f := strings.Fields(string(b))
	*v = PointVerdict{}
	switch {
	case len(f) == 2:
	case len(f) == 4 && f[2] == "cpu":
		cpu, err := strconv.Atoi(f[3])
		if err != nil {
			return fmt.Errorf("timeline verdict %q: %w", b, err)
		}
		v.CPU = &cpu
	default:
		return fmt.Errorf("timeline verdict %q: want \"severity id\" or \"severity id cpu N\"", b)
	}
	v.Severity, v.ID = f[0], f[1]
	return nil
}

// PointCPU is one CPU in one interval; pointers are nil when the source was absent.
type PointCPU struct {
	CPU            int     `json:"cpu"`
	Drops          uint64  `json:"drops_total"`
	BacklogDropped *uint64 `json:"backlog_dropped,omitempty"`
	Squeezes       *uint64 `json:"squeezes,omitempty"`
	BudgetSqueezes *uint64 `json:"budget_squeezes,omitempty"`
	TimeSqueezes   *uint64 `json:"time_squeezes,omitempty"`
}

// bucket is one row of the text timeline: one interval, or consecutive ones summed.
type bucket struct {
	first, last      int // seq
	endMs, durMs     int64
	drops            map[string]uint64
	total            uint64
	backlog, squeeze uint64
	hasSoftnet       bool
	peak             float64 // drops/s of the worst interval in it
	changes          []string
	// bad are the warnings and criticals of its intervals, each once, in order of appearance.
	bad []PointVerdict
}

// quiet says nothing happened in the bucket: such rows fold into one line.
func (b *bucket) quiet() bool {
	return b.total == 0 && b.backlog == 0 && b.squeeze == 0 && len(b.changes) == 0
}

// buckets groups the timeline into at most rows buckets of consecutive points, so that a
// long recording stays a table a person reads; per is how many intervals a bucket holds.
func buckets(timeline []Point, rows int) (per int, bs []*bucket) {
	perPoints := max(1, (len(timeline)+rows-1)/rows)
	if len(timeline) > 0 {
		per = perPoints * timeline[0].count()
	}
	for i, p := range timeline {
		if i%perPoints == 0 {
			bs = append(bs, &bucket{first: p.Seq, drops: map[string]uint64{}})
		}
		b := bs[len(bs)-1]
		b.last, b.endMs = p.last(), p.OffsetMs
		b.durMs = record.AddSatInt(b.durMs, p.DurationMs)
		addCounts(b.drops, p.Drops)
		b.total = record.AddSat(b.total, p.DropsTotal)
		b.peak = max(b.peak, p.peak())
		for _, c := range p.CPUs {
			if c.BacklogDropped != nil {
				b.hasSoftnet = true
				b.backlog = record.AddSat(b.backlog, *c.BacklogDropped)
				b.squeeze = record.AddSat(b.squeeze, *c.Squeezes)
			}
		}
		b.changes = append(b.changes, p.SysctlChanges...)
		for _, v := range p.Verdicts {
			if v.Severity != record.SeverityInfo && !containsVerdict(b.bad, v) {
				b.bad = append(b.bad, v)
			}
		}
	}
	return per, bs
}

func containsVerdict(vs []PointVerdict, v PointVerdict) bool {
	for _, x := range vs {
		if x.Equal(v) {
			return true
		}
	}
	return false
}
