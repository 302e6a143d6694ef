// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/rank"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/textfmt"
)

// The text report is read by someone woken up by a page: what was lost, where, why and what
// to change come before the tables that back them, the rows that carry numbers are aligned
// so they can be scanned, and long sentences wrap at textWidth.
const (
	textWidth = 100
	// timelineRows bounds the timeline: longer recordings are shown in buckets of
	// consecutive intervals (with the peak), and quiet stretches fold into one line.
	timelineRows = 24
	// tableCPUs bounds the per-CPU tables: the busiest CPUs are listed, the rest summed.
	tableCPUs  = 16
	topReasons = 6
	topWhere   = 5
)

// WriteText writes the document as the report a person reads: the comparison first when
// there are several recordings, then each recording. Every string from the recordings (and
// their file names) is shown escaped (see textfmt.Terminal): a process, interface or cgroup
// name is the recorded host's, not droptrace's.
func WriteText(w io.Writer, d *Document) error {
	d = textfmt.Safe(d)
	bw := bufio.NewWriter(w)
	t := &textOut{w: bw}
	if d.Comparison != nil {
		t.comparison(d)
	}
	for i, r := range d.Recordings {
		if i > 0 || d.Comparison != nil {
			t.line("")
		}
		t.report(r, d.Warnings, i, len(d.Recordings))
	}
	if len(d.Recordings) == 0 {
		for _, wn := range d.Warnings {
			t.line(textfmt.Label("warning") + wn.String())
		}
	}
	return bw.Flush()
}

type textOut struct{ w *bufio.Writer }

func (t *textOut) line(s string) { t.w.WriteString(strings.TrimRight(s, " ") + "\n") }

func (t *textOut) f(format string, args ...any) { t.line(fmt.Sprintf(format, args...)) }

// para writes label and text wrapped at textWidth, continuation lines indented under the text.
func (t *textOut) para(label, s string) { t.lines(textfmt.Words(label, s, textWidth)) }

// items writes label and items separated by two spaces, wrapping between items only.
func (t *textOut) items(label string, items []string) {
	t.lines(textfmt.Pack(label, items, "  ", textWidth))
}

func (t *textOut) lines(ls []string) {
	for _, l := range ls {
		t.line(l)
	}
}

func (t *textOut) table(tb *textfmt.Table) { t.lines(tb.Lines()) }

func sysctlLine(s record.Sysctl) string {
	return fmt.Sprintf("netdev_budget=%d netdev_budget_usecs=%d netdev_max_backlog=%d dev_weight=%d",
		s.NetdevBudget, s.NetdevBudgetUsecs, s.NetdevMaxBacklog, s.DevWeight)
}

func (t *textOut) report(r *Report, warnings []Warning, i, n int) {
	st := r.Start
	s := r.Summary
	title := "droptrace analyze  " + r.File
	if n > 1 {
		title = fmt.Sprintf("[%d] %s", i+1, r.File)
	}
	t.line(title)
	t.line(strings.Repeat("=", len(title)))
	began := time.Time(st.Time).UTC()
	cpus := textfmt.CPUList(st.CPUs)
	if cpus == "" {
		cpus = "none"
	}
	t.para(textfmt.Label("recorded"), fmt.Sprintf("%s UTC for %s in %d intervals of %s; host %s, kernel %s, %d CPUs (%s), HZ %s",
		began.Format("2006-01-02 15:04:05"), textfmt.DurationShort(s.DurationMs), r.Intervals, textfmt.DurationShort(st.IntervalMs),
		textfmt.OrDash(st.Hostname), textfmt.OrDash(st.Kernel), len(st.CPUs), cpus, hz(st)))
	events := "drop events off"
	if st.Events {
		events = fmt.Sprintf("%d drop events", r.DropEvents)
	}
	t.para(textfmt.Label(""), fmt.Sprintf("droptrace %s, mode %s, %s", textfmt.OrDash(st.Version), textfmt.OrDash(st.Mode), events))
	if st.Mode == record.ModeCountersOnly {
		t.para(textfmt.Label(""), "counters-only: no BPF, so no drop reasons, locations, per-CPU traced drops or NET_RX accounting")
	}
	t.para(textfmt.Label("sysctl"), sysctlLine(st.Sysctl)+" at start")
	if len(s.SysctlChanges) > 0 {
		t.para(textfmt.Label(""), "changed: "+strings.Join(s.SysctlChanges, "; "))
	}
	for _, wn := range warnings {
		if wn.File == r.File {
			msg := wn.Message
			if wn.Line > 0 {
				msg = fmt.Sprintf("line %d: %s", wn.Line, msg)
			}
			t.para(textfmt.Label("warning"), msg)
		}
	}

	t.line("")
	t.totals(r)
	t.reasons(r)
	t.where(r)
	t.line("")
	t.cpus(r)
	t.line("")
	t.timeline(r)
	t.line("")
	t.checks(r)
	t.line("")
	t.verdicts(r)
}

func hz(st *record.Start) string {
	if st.HZ == 0 {
		return "unknown"
	}
	if st.HZSource != "" {
		return fmt.Sprintf("%d (%s)", st.HZ, st.HZSource)
	}
	return fmt.Sprint(st.HZ)
}

func (t *textOut) totals(r *Report) {
	tt := r.Totals
	var parts []string
	if r.Start.Mode == record.ModeCountersOnly {
		parts = append(parts, "traced drops unavailable (counters-only)")
	} else {
		d := fmt.Sprintf("%d drops (%s/s", tt.Drops, textfmt.Rate(tt.DropsPerSec))
		if tt.DropsPct != nil {
			d += ", " + textfmt.Percent(*tt.DropsPct) + " of packets received"
		}
		parts = append(parts, d+")")
	}
	if tt.Processed != nil {
		parts = append(parts, fmt.Sprintf("%d packets received by the stack (%s/s)", *tt.Processed, textfmt.Rate(perSec(*tt.Processed, tt.DurationMs))))
		parts = append(parts, fmt.Sprintf("%d backlog overflows (softnet dropped)", *tt.BacklogDropped))
		sq := fmt.Sprintf("%d squeezes", *tt.Squeezes)
		if tt.BudgetSqueezes != nil {
			sq += fmt.Sprintf(" (predicted %d budget + %d time in %d NET_RX runs)", *tt.BudgetSqueezes, *tt.TimeSqueezes, *tt.NetRxRuns)
		}
		parts = append(parts, sq)
	} else {
		parts = append(parts, "softnet_stat unavailable")
	}
	if tt.LostEvents > 0 {
		parts = append(parts, fmt.Sprintf("%d drop events lost (the counts include them)", tt.LostEvents))
	}
	if tr := r.Summary.Tracer; tr.AggMapFull > 0 || tr.DropRecursionMisses > 0 {
		parts = append(parts, fmt.Sprintf("NOT COUNTED: %d drops (aggregation map full) + %d (BPF recursion)", tr.AggMapFull, tr.DropRecursionMisses))
	}
	t.para(textfmt.Label("totals"), strings.Join(parts, "; "))
}

func (t *textOut) reasons(r *Report) {
	if len(r.Reasons) == 0 {
		return
	}
	var items []string
	for i, rs := range r.Reasons {
		if i == topReasons {
			var rest uint64
			for _, x := range r.Reasons[i:] {
				rest = record.AddSat(rest, x.Drops)
			}
			items = append(items, fmt.Sprintf("%d more reasons %d", len(r.Reasons)-i, rest))
			break
		}
		items = append(items, fmt.Sprintf("%s %d (%s/s, %s)", rs.Reason, rs.Drops, textfmt.Rate(rs.PerSec), textfmt.Percent(rs.SharePct)))
	}
	t.items(textfmt.Label("reasons"), items)
}

func (t *textOut) where(r *Report) {
	locs := r.Summary.Locations
	if len(locs) == 0 {
		return
	}
	if len(locs) > topWhere {
		locs = locs[:topWhere]
	}
	cw, rw := 0, 0
	for _, l := range locs {
		cw = max(cw, len(fmt.Sprint(l.Count)))
		rw = max(rw, len(l.Reason))
	}
	for i, l := range locs {
		lb := ""
		if i == 0 {
			lb = "where"
		}
		t.f("%s%*d  %-*s  %s", textfmt.Label(lb), cw, l.Count, rw, l.Reason, l.Location)
	}
	if r.Source == SourceIntervals {
		t.para(textfmt.Label(""), "(summed from each interval's top 20 locations)")
	}
}

// activity is what makes a CPU worth a row of its own, in the text and in the chart: drops,
// backlog overflows and squeezes.
func (c CPUSum) activity() uint64 {
	a := c.DropsTotal
	if c.Softnet != nil {
		a = record.AddSat(record.AddSat(a, c.Softnet.Dropped), c.Softnet.TimeSqueeze)
	}
	return a
}

// topReason is the CPU's most frequent drop reason and its count.
func topReason(m map[string]uint64) string {
	top := rank.ByCount(m, 1)
	if len(top) == 0 {
		return ""
	}
	return fmt.Sprintf("%s %d", top[0].Key, top[0].Count)
}

// cpus is the per-CPU table. Traced drops are by the CPU that freed the packet, softnet_stat
// by the CPU whose backlog it is: with RPS they differ by design, so the header says which.
func (t *textOut) cpus(r *Report) {
	cpus := append([]CPUSum(nil), r.CPUs...)
	var rest []CPUSum
	if len(cpus) > tableCPUs {
		sort.SliceStable(cpus, func(i, j int) bool { return cpus[i].activity() > cpus[j].activity() })
		rest = cpus[tableCPUs:]
		cpus = cpus[:tableCPUs]
		sort.Slice(cpus, func(i, j int) bool { return cpus[i].CPU.CPU < cpus[j].CPU.CPU })
	}
	tb := &textfmt.Table{Columns: textfmt.Columns(11, 2, 3), Groups: []textfmt.Group{
		{Name: "traced drops", First: 1, Last: 3}, {Name: "softnet_stat", First: 4, Last: 6}, {Name: "NET_RX softirq", First: 7, Last: 10},
	}}
	tb.Row("CPU", "drops", "/s", "top reason", "processed", "backlog", "squeeze", "runs", "busy", "budget/time", "seen")
	var all struct {
		drops                         uint64
		proc, drop, sq, runs, bud, tm *uint64
	}
	for _, c := range cpus {
		cells := []string{fmt.Sprint(c.CPU.CPU), fmt.Sprint(c.DropsTotal), textfmt.Rate(c.DropsPerSec), topReason(c.Drops)}
		all.drops = record.AddSat(all.drops, c.DropsTotal)
		if sn := c.Softnet; sn != nil {
			cells = append(cells, fmt.Sprint(sn.Processed), fmt.Sprint(sn.Dropped), fmt.Sprint(sn.TimeSqueeze))
			addTo(&all.proc, sn.Processed)
			addTo(&all.drop, sn.Dropped)
			addTo(&all.sq, sn.TimeSqueeze)
		} else {
			cells = append(cells, "-", "-", "-")
		}
		if n := c.NetRx; n != nil {
			busy, seen := "-", "-"
			if c.BusyPct != nil {
				busy = textfmt.Percent(*c.BusyPct)
			}
			if c.CoveragePct != nil {
				seen = textfmt.Coverage(*c.CoveragePct)
			}
			cells = append(cells, fmt.Sprint(n.Runs), busy, fmt.Sprintf("%d/%d", n.BudgetSqueezes, n.TimeSqueezes), seen)
			addTo(&all.runs, n.Runs)
			addTo(&all.bud, n.BudgetSqueezes)
			addTo(&all.tm, n.TimeSqueezes)
		} else {
			cells = append(cells, "-", "-", "-", "-")
		}
		tb.Row(cells...)
	}
	if len(rest) > 0 {
		var drops uint64
		for _, c := range rest {
			drops = record.AddSat(drops, c.DropsTotal)
		}
		tb.Row(fmt.Sprintf("+%d", len(rest)), fmt.Sprint(drops), textfmt.Rate(perSec(drops, r.Totals.DurationMs)), "(quieter CPUs)")
	}
	split := "-"
	if all.bud != nil {
		split = fmt.Sprintf("%d/%d", *all.bud, *all.tm)
	}
	tt := r.Totals
	tb.Row("all", fmt.Sprint(tt.Drops), textfmt.Rate(tt.DropsPerSec), "", textfmt.Optional(tt.Processed), textfmt.Optional(tt.BacklogDropped), textfmt.Optional(tt.Squeezes), textfmt.Optional(tt.NetRxRuns), "", split, "")
	t.para(textfmt.Label("per CPU"), "traced drops are counted on the CPU that freed the packet, softnet_stat on the CPU whose backlog it is (with RPS they differ by design); backlog: overflows; budget/time: squeezes predicted by cause; seen: share of NET_RX runs BPF saw")
	t.table(tb)
}

func checkName(c record.Check) string {
	if c.CPU != nil {
		return fmt.Sprintf("%s CPU %d", c.Check, *c.CPU)
	}
	return c.Check
}

func (t *textOut) checks(r *Report) {
	var bad []record.Check
	for _, c := range r.Summary.Checks {
		if c.Status != record.StatusMatch {
			bad = append(bad, c)
		}
	}
	n := len(r.Summary.Checks)
	switch {
	case n == 0:
		t.line(textfmt.Label("checks") + "none recorded")
		return
	case len(bad) == 0:
		t.f("%sall %d checks match: what BPF traced agrees with the kernel's counters", textfmt.Label("checks"), n)
		return
	}
	t.f("%s%d of %d checks match; the others:", textfmt.Label("checks"), n-len(bad), n)
	if r.Source == SourceIntervals {
		t.para(textfmt.Label(""), "(combined from the intervals' checks: a mismatch in any interval is one here)")
	}
	for _, c := range bad {
		status := c.Status
		if c.ExplainedBy != "" {
			status += ", explained by " + c.ExplainedBy
		}
		head := fmt.Sprintf("  %s: %s", checkName(c), status)
		if c.Status != record.StatusUnavailable {
			head += fmt.Sprintf(" (traced %s, kernel %s)", textfmt.Optional(c.Traced), textfmt.Optional(c.Kernel))
		}
		t.line(head)
		if c.Note != "" {
			t.para("      ", c.Note)
		}
	}
}

func (t *textOut) verdicts(r *Report) {
	from := "re-derived from the summary record"
	if r.Source == SourceIntervals {
		from = fmt.Sprintf("re-derived from the sum of %d intervals (no summary record)", r.Intervals)
	}
	if len(r.Verdicts) == 0 {
		t.para(textfmt.Label("verdicts"), "none: "+from+", nothing crossed a rule's threshold")
	} else {
		t.para(textfmt.Label("verdicts"), from+", most severe first:")
		t.verdictList(r.Verdicts, true)
	}
	if r.RecordedDiffer {
		if len(r.RecordedVerdicts) == 0 {
			t.para(textfmt.Label(""), fmt.Sprintf("the recording itself carried no verdicts (written by droptrace %s)", textfmt.OrDash(r.Start.Version)))
			return
		}
		t.line("")
		t.para(textfmt.Label(""), fmt.Sprintf("the recording itself carried different verdicts (written by droptrace %s):", textfmt.OrDash(r.Start.Version)))
		t.verdictList(r.RecordedVerdicts, false)
	}
}

func (t *textOut) verdictList(vs []record.Verdict, full bool) {
	for _, v := range vs {
		head := fmt.Sprintf("  %-8s  %s", strings.ToUpper(v.Severity), v.ID)
		if v.CPU != nil {
			head += fmt.Sprintf("  CPU %d", *v.CPU)
		}
		head += "  (confidence " + v.Confidence + ")"
		t.line(head)
		t.para("     cause  ", v.Cause)
		if full {
			t.para("     fix    ", v.Fix)
		}
	}
}
