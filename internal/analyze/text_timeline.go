// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"fmt"
	"strings"

	"github.com/droptrace/droptrace/internal/rank"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/textfmt"
)

func (t *textOut) timeline(r *Report) {
	if len(r.Timeline) == 0 {
		t.line(textfmt.Label("timeline") + "no interval records")
		return
	}
	per, bs := buckets(r.Timeline, timelineRows)
	head := "per interval; t: seconds since the start, at the interval's end"
	if per > 1 {
		head = fmt.Sprintf("%d intervals per row, rates are the row's mean, peak/s its worst interval's drops/s; t: seconds since the start, at the row's end", per)
	}
	t.para(textfmt.Label("timeline"), head+"; backlog/s: backlog overflows (softnet dropped); verdicts: warnings and criticals re-derived for the row (! is critical)")
	hdr := []string{"seq", "t", "drops/s"}
	if per > 1 {
		hdr = append(hdr, "peak/s")
	}
	hdr = append(hdr, "backlog/s", "squeeze/s", "top reasons", "verdicts")
	tb := &textfmt.Table{Columns: textfmt.Columns(len(hdr), 2, len(hdr)-2, len(hdr)-1)}
	tb.Row(hdr...)
	// A verdict that fires in every interval is said once, then "same" until it changes.
	prevVerdicts := ""
	for i := 0; i < len(bs); i++ {
		b := bs[i]
		if b.quiet() {
			j := i
			for j+1 < len(bs) && bs[j+1].quiet() {
				j++
			}
			if j > i {
				tb.Note(fmt.Sprintf("%d-%d  until %ss: quiet, no drops, overflows or squeezes", b.first, bs[j].last, textfmt.Seconds(bs[j].endMs)))
				i = j
				continue
			}
		}
		seq := fmt.Sprint(b.first)
		if b.last != b.first {
			seq = fmt.Sprintf("%d-%d", b.first, b.last)
		}
		cells := []string{seq, textfmt.Seconds(b.endMs), textfmt.Rate(perSec(b.total, b.durMs))}
		if per > 1 {
			cells = append(cells, textfmt.Rate(b.peak))
		}
		if b.hasSoftnet {
			cells = append(cells, textfmt.Rate(perSec(b.backlog, b.durMs)), textfmt.Rate(perSec(b.squeeze, b.durMs)))
		} else {
			cells = append(cells, "-", "-")
		}
		var rs []string
		for _, e := range rank.ByCount(b.drops, 2) {
			rs = append(rs, fmt.Sprintf("%s %s", e.Key, textfmt.Rate(perSec(e.Count, b.durMs))))
		}
		vs := shortVerdicts(b.bad)
		if vs != "" && vs == prevVerdicts {
			vs = "same"
		} else {
			prevVerdicts = vs
		}
		cells = append(cells, strings.Join(rs, "  "), vs)
		tb.Row(cells...)
		if len(b.changes) > 0 {
			tb.Note("^ sysctl changed: " + strings.Join(b.changes, "; "))
		}
	}
	t.table(tb)
}

// shortVerdicts names up to three verdicts without their severity, so that a row stays on
// one line: "backlog_overflow cpu 1!, socket_rcvbuf"; "!" is critical.
func shortVerdicts(vs []PointVerdict) string {
	var out []string
	for i, v := range vs {
		if i == 3 {
			out = append(out, fmt.Sprintf("+%d more", len(vs)-3))
			break
		}
		name := v.Name()
		if v.Severity == record.SeverityCritical {
			name += "!"
		}
		out = append(out, name)
	}
	return strings.Join(out, ", ")
}
