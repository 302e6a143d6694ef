// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/textfmt"
)

// comparison sets the recordings side by side, the last against the first.
func (t *textOut) comparison(d *Document) {
	c := d.Comparison
	n := len(c.Files)
	title := fmt.Sprintf("droptrace analyze: comparing %d recordings", n)
	t.line(title)
	t.line(strings.Repeat("=", len(title)))
	for i, r := range d.Recordings {
		t.f("  [%d] %s  %s UTC, %s, host %s, kernel %s%s", i+1, filepath.Base(r.File),
			time.Time(r.Start.Time).UTC().Format("2006-01-02 15:04:05"), textfmt.DurationShort(r.Totals.DurationMs),
			textfmt.OrDash(r.Start.Hostname), textfmt.OrDash(r.Start.Kernel), killedNote(r))
	}
	t.line("")
	changeHdr := fmt.Sprintf("[%d] vs [1]", n)
	tb := &textfmt.Table{Columns: textfmt.Columns(n+2, 2, 0)}
	hdr := []string{""}
	for i := range n {
		hdr = append(hdr, fmt.Sprintf("[%d]", i+1))
	}
	tb.Row(append(hdr, changeHdr)...)
	addRow := func(name string, vals []*float64, format func(float64) string, points bool) {
		cells := []string{name}
		for _, v := range vals {
			if v == nil {
				cells = append(cells, "-")
			} else {
				cells = append(cells, format(*v))
			}
		}
		ch := change(vals[0], vals[n-1])
		if points {
			ch = pointChange(vals[0], vals[n-1])
		}
		tb.Row(append(cells, ch)...)
	}
	for _, st := range c.Settings {
		ch := ""
		cells := []string{st.Name}
		for i := range st.Start {
			if st.Start[i] != st.Start[0] || st.End[i] != st.Start[0] {
				ch = "changed"
			}
			if st.Start[i] == st.End[i] {
				cells = append(cells, fmt.Sprint(st.End[i]))
			} else {
				// Tuned during the session: the rates mix both values.
				cells = append(cells, fmt.Sprintf("%d->%d", st.Start[i], st.End[i]))
			}
		}
		tb.Row(append(cells, ch)...)
	}
	tb.Row("")
	names := map[string]string{
		"drops_per_sec": "drops/s", "drops_pct": "drops % of received", "processed_per_sec": "received/s (softnet processed)",
		"backlog_dropped_per_sec": "backlog overflows/s", "squeezes_per_sec": "squeezes/s",
		"budget_squeezes_per_sec": "  predicted budget/s", "time_squeezes_per_sec": "  predicted time/s",
		"lost_events_per_sec": "drop events lost/s",
	}
	for _, row := range c.Rates {
		format := textfmt.Rate
		if row.Name == "drops_pct" {
			format = textfmt.Percent
		}
		addRow(names[row.Name], row.Values, format, row.Name == "drops_pct")
	}
	if len(c.Reasons) > 0 {
		tb.Row("")
		for i, row := range c.Reasons {
			if i == topReasons*2 {
				tb.Row(fmt.Sprintf("(%d more reasons)", len(c.Reasons)-i))
				break
			}
			addRow(row.Name+"/s", row.Values, textfmt.Rate, false)
		}
	}
	var busy []CPURow
	for _, cr := range c.CPUs {
		if anyNonZero(cr.DropsPerSec) || anyNonZero(cr.BacklogDroppedPerSec) || anyNonZero(cr.SqueezesPerSec) {
			busy = append(busy, cr)
		}
	}
	if len(busy) > tableCPUs {
		busy = busy[:tableCPUs]
	}
	for _, cr := range busy {
		tb.Row("")
		addRow(fmt.Sprintf("CPU %d drops/s", cr.CPU), cr.DropsPerSec, textfmt.Rate, false)
		addRow(fmt.Sprintf("CPU %d backlog overflows/s", cr.CPU), cr.BacklogDroppedPerSec, textfmt.Rate, false)
		addRow(fmt.Sprintf("CPU %d squeezes/s", cr.CPU), cr.SqueezesPerSec, textfmt.Rate, false)
	}
	if quiet := len(c.CPUs) - len(busy); quiet > 0 {
		tb.Row("")
		tb.Row(fmt.Sprintf("(%d CPUs without drops or squeezes)", quiet))
	}
	if len(c.Verdicts) > 0 {
		tb.Row("")
		tb.Row("verdicts")
		for _, v := range c.Verdicts {
			name := "  " + v.ID
			if v.CPU != nil {
				name += fmt.Sprintf(" CPU %d", *v.CPU)
			}
			cells := []string{name}
			for _, s := range v.Severity {
				if s == nil {
					cells = append(cells, "-")
				} else {
					cells = append(cells, *s)
				}
			}
			ch := ""
			switch a, b := v.Severity[0], v.Severity[n-1]; {
			case a != nil && b == nil:
				ch = "gone"
			case a == nil && b != nil:
				ch = "new"
			case a != nil && explain.SeverityRank(*b) < explain.SeverityRank(*a):
				ch = "better"
			case a != nil && explain.SeverityRank(*b) > explain.SeverityRank(*a):
				ch = "worse"
			}
			tb.Row(append(cells, ch)...)
		}
	}
	t.table(tb)
	t.line("")
	t.para("", fmt.Sprintf("Rates are per second over each whole session, - where not measured; [%d] vs [1] is the relative change (percentage points for shares). Each recording's report follows.", n))
}

func killedNote(r *Report) string {
	if r.Source == SourceIntervals {
		return " (no summary: sum of intervals)"
	}
	return ""
}

func anyNonZero(vs []*float64) bool {
	for _, v := range vs {
		if v != nil && *v != 0 {
			return true
		}
	}
	return false
}

// change words how the last value differs from the first.
func change(a, b *float64) string {
	switch {
	case a == nil || b == nil:
		return ""
	case *a == *b:
		return ""
	case *a == 0:
		return "new"
	case *b == 0:
		return "-100%"
	}
	p := 100 * (*b - *a) / *a
	switch {
	case math.Abs(p) < 0.5:
		return "~0%"
	case math.Abs(p) >= 1000:
		return fmt.Sprintf("x%.0f", *b / *a)
	case p < -99:
		// Not -100%: something is left, and at 3 a.m. that matters.
		return fmt.Sprintf("%+.1f%%", p)
	}
	return fmt.Sprintf("%+.0f%%", p)
}

// pointChange is the difference of two percentages, in percentage points.
func pointChange(a, b *float64) string {
	if a == nil || b == nil || *a == *b {
		return ""
	}
	return fmt.Sprintf("%+.2f pt", *b-*a)
}
