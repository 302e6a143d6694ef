// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/rank"
	"github.com/droptrace/droptrace/internal/record"
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
// there are several recordings, then each recording.
func WriteText(w io.Writer, d *Document) error {
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
			t.line("warning   " + wn.String())
		}
	}
	return bw.Flush()
}

type textOut struct{ w *bufio.Writer }

func (t *textOut) line(s string) { t.w.WriteString(strings.TrimRight(s, " ") + "\n") }

func (t *textOut) f(format string, args ...any) { t.line(fmt.Sprintf(format, args...)) }

// para writes label and text wrapped at textWidth, continuation lines indented under the text.
func (t *textOut) para(label, s string) {
	for _, l := range wrap(label, s, textWidth) {
		t.line(l)
	}
}

// items writes label and items separated by two spaces, wrapping between items only.
func (t *textOut) items(label string, items []string) {
	indent := strings.Repeat(" ", len(label))
	cur := label
	for i, it := range items {
		if i > 0 && len(cur)+2+len(it) > textWidth {
			t.line(cur)
			cur = indent
		} else if i > 0 {
			cur += "  "
		}
		cur += it
	}
	t.line(cur)
}

const labelW = 10

func label(s string) string { return fmt.Sprintf("%-*s", labelW, s) }

func wrap(prefix, s string, width int) []string {
	indent := strings.Repeat(" ", len(prefix))
	var out []string
	cur, empty := prefix, true
	for _, word := range strings.Fields(s) {
		if !empty && len(cur)+1+len(word) > width {
			out = append(out, cur)
			cur, empty = indent, true
		}
		if !empty {
			cur += " "
		}
		cur += word
		empty = false
	}
	return append(out, cur)
}

// compact writes a rate with three significant digits at most, as the live view does.
func compact(f float64) string {
	a := math.Abs(f)
	switch {
	case f == 0:
		return "0"
	case a >= 999_950:
		return trimZero(fmt.Sprintf("%.1f", f/1e6)) + "M"
	case a >= 999.95:
		return trimZero(fmt.Sprintf("%.1f", f/1e3)) + "k"
	case a >= 99.95:
		return fmt.Sprintf("%.0f", f)
	case a >= 0.05:
		return trimZero(fmt.Sprintf("%.1f", f))
	}
	return "<0.1"
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

func percent(f float64) string {
	switch {
	case f == 0:
		return "0%"
	case f < 0.01:
		return "<0.01%"
	case f < 10:
		return fmt.Sprintf("%.2f%%", f)
	}
	return fmt.Sprintf("%.1f%%", f)
}

// coverage never rounds a miss up to 100%: a few unseen runs are why checks mismatch.
func coverage(f float64) string {
	if f < 100 && f >= 99.95 {
		return ">99.9%"
	}
	return fmt.Sprintf("%.1f%%", f)
}

func dur(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Minute:
		return trimZero(fmt.Sprintf("%.1fs", d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func u(p *uint64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func cpuList(cpus []int) string {
	if len(cpus) == 0 {
		return "none"
	}
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		} else {
			parts = append(parts, fmt.Sprint(cpus[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

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
	t.para(label("recorded"), fmt.Sprintf("%s UTC for %s in %d intervals of %s; host %s, kernel %s, %d CPUs (%s), HZ %s",
		began.Format("2006-01-02 15:04:05"), dur(s.DurationMs), r.Intervals, dur(st.IntervalMs),
		orDash(st.Hostname), orDash(st.Kernel), len(st.CPUs), cpuList(st.CPUs), hz(st)))
	events := "drop events off"
	if st.Events {
		events = fmt.Sprintf("%d drop events", r.DropEvents)
	}
	t.para(label(""), fmt.Sprintf("droptrace %s, mode %s, %s", orDash(st.Version), orDash(st.Mode), events))
	if st.Mode == record.ModeCountersOnly {
		t.para(label(""), "counters-only: no BPF, so no drop reasons, locations, per-CPU traced drops or NET_RX accounting")
	}
	t.para(label("sysctl"), sysctlLine(st.Sysctl)+" at start")
	if len(s.SysctlChanges) > 0 {
		t.para(label(""), "changed: "+strings.Join(s.SysctlChanges, "; "))
	}
	for _, wn := range warnings {
		if wn.File == r.File {
			msg := wn.Message
			if wn.Line > 0 {
				msg = fmt.Sprintf("line %d: %s", wn.Line, msg)
			}
			t.para(label("warning"), msg)
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
		d := fmt.Sprintf("%d drops (%s/s", tt.Drops, compact(tt.DropsPerSec))
		if tt.DropsPct != nil {
			d += ", " + percent(*tt.DropsPct) + " of packets received"
		}
		parts = append(parts, d+")")
	}
	if tt.Processed != nil {
		parts = append(parts, fmt.Sprintf("%d packets received by the stack (%s/s)", *tt.Processed, compact(perSec(*tt.Processed, tt.DurationMs))))
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
	t.para(label("totals"), strings.Join(parts, "; "))
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
				rest += x.Drops
			}
			items = append(items, fmt.Sprintf("%d more reasons %d", len(r.Reasons)-i, rest))
			break
		}
		items = append(items, fmt.Sprintf("%s %d (%s/s, %s)", rs.Reason, rs.Drops, compact(rs.PerSec), percent(rs.SharePct)))
	}
	t.items(label("reasons"), items)
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
		t.f("%s%*d  %-*s  %s", label(lb), cw, l.Count, rw, l.Reason, l.Location)
	}
	if r.Source == SourceIntervals {
		t.para(label(""), "(summed from each interval's top 20 locations)")
	}
}

func topReason(m map[string]uint64) string {
	best, n := "", uint64(0)
	for k, v := range m {
		if v > n || v == n && k < best {
			best, n = k, v
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%s %d", best, n)
}

// cpus is the per-CPU table. Traced drops are by the CPU that freed the packet, softnet_stat
// by the CPU whose backlog it is: with RPS they differ by design, so the header says which.
func (t *textOut) cpus(r *Report) {
	cpus := append([]CPUSum(nil), r.CPUs...)
	activity := func(c CPUSum) uint64 {
		a := c.DropsTotal
		if c.Softnet != nil {
			a += c.Softnet.Dropped + c.Softnet.TimeSqueeze
		}
		return a
	}
	var rest []CPUSum
	if len(cpus) > tableCPUs {
		sort.SliceStable(cpus, func(i, j int) bool { return activity(cpus[i]) > activity(cpus[j]) })
		rest = cpus[tableCPUs:]
		cpus = cpus[:tableCPUs]
		sort.Slice(cpus, func(i, j int) bool { return cpus[i].CPU.CPU < cpus[j].CPU.CPU })
	}
	reasonW := len("top reason")
	for _, c := range cpus {
		reasonW = max(reasonW, len(topReason(c.Drops)))
	}
	tb := &table{}
	tb.row("CPU", "drops", "/s", "top reason", "processed", "backlog", "squeeze", "runs", "busy", "budget/time", "seen")
	var all struct {
		drops                         uint64
		proc, drop, sq, runs, bud, tm *uint64
	}
	for _, c := range cpus {
		cells := []string{fmt.Sprint(c.CPU.CPU), fmt.Sprint(c.DropsTotal), compact(c.DropsPerSec), topReason(c.Drops)}
		all.drops += c.DropsTotal
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
				busy = percent(*c.BusyPct)
			}
			if c.CoveragePct != nil {
				seen = coverage(*c.CoveragePct)
			}
			cells = append(cells, fmt.Sprint(n.Runs), busy, fmt.Sprintf("%d/%d", n.BudgetSqueezes, n.TimeSqueezes), seen)
			addTo(&all.runs, n.Runs)
			addTo(&all.bud, n.BudgetSqueezes)
			addTo(&all.tm, n.TimeSqueezes)
		} else {
			cells = append(cells, "-", "-", "-", "-")
		}
		tb.row(cells...)
	}
	if len(rest) > 0 {
		var drops uint64
		for _, c := range rest {
			drops += c.DropsTotal
		}
		tb.row(fmt.Sprintf("+%d", len(rest)), fmt.Sprint(drops), compact(perSec(drops, r.Totals.DurationMs)), "(quieter CPUs)")
	}
	split := "-"
	if all.bud != nil {
		split = fmt.Sprintf("%d/%d", *all.bud, *all.tm)
	}
	tt := r.Totals
	tb.row("all", fmt.Sprint(tt.Drops), compact(tt.DropsPerSec), "", u(tt.Processed), u(tt.BacklogDropped), u(tt.Squeezes), u(tt.NetRxRuns), "", split, "")
	tb.groups = []group{{1, 3, "traced drops"}, {4, 6, "softnet_stat"}, {7, 10, "NET_RX softirq"}}
	t.para(label("per CPU"), "traced drops are counted on the CPU that freed the packet, softnet_stat on the CPU whose backlog it is (with RPS they differ by design); backlog: overflows; budget/time: squeezes predicted by cause; seen: share of NET_RX runs BPF saw")
	tb.write(t, "  ", map[int]bool{3: true})
}

// table aligns cells: numbers right, the columns in left left. groups name runs of columns
// in a ruled line above the first row.
type table struct {
	rows   [][]string
	groups []group
	// raw are lines printed after the row of their index as they are, outside the columns.
	raw map[int][]string
}

// note adds a line under the last row that does not widen any column.
func (tb *table) note(s string) {
	if tb.raw == nil {
		tb.raw = map[int][]string{}
	}
	i := len(tb.rows) - 1
	tb.raw[i] = append(tb.raw[i], s)
}

type group struct {
	from, to int // columns, inclusive
	name     string
}

func (tb *table) row(cells ...string) { tb.rows = append(tb.rows, cells) }

func (tb *table) write(t *textOut, indent string, left map[int]bool) {
	var widths []int
	for _, r := range tb.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len(c))
		}
	}
	if len(tb.groups) > 0 {
		b := []byte(indent)
		col := func(i int) int { // where column i starts
			x := len(indent)
			for k := 0; k < i; k++ {
				x += widths[k] + 2
			}
			return x
		}
		for _, g := range tb.groups {
			from, to := col(g.from), col(g.to)+widths[g.to]
			for len(b) < from {
				b = append(b, ' ')
			}
			name := " " + g.name + " "
			dashes := max(to-from-len(name), 2)
			b = append(b, strings.Repeat("-", dashes/2)+name+strings.Repeat("-", dashes-dashes/2)...)
		}
		t.line(string(b))
	}
	for ri, r := range tb.rows {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			if left[i] {
				fmt.Fprintf(&b, "%-*s", widths[i], c)
			} else {
				fmt.Fprintf(&b, "%*s", widths[i], c)
			}
		}
		t.line(b.String())
		for _, raw := range tb.raw[ri] {
			t.line(indent + raw)
		}
	}
}

// bucket is one timeline row: one interval, or consecutive ones summed.
type bucket struct {
	first, last          int // seq
	endMs, durMs         int64
	drops                map[string]uint64
	total                uint64
	backlog, squeeze     uint64
	hasSoftnet           bool
	peak                 float64 // drops/s of the worst interval in it
	changes, verdictsBad []string
}

func (b *bucket) quiet() bool {
	return b.total == 0 && b.backlog == 0 && b.squeeze == 0 && len(b.changes) == 0
}

func (t *textOut) timeline(r *Report) {
	if len(r.Timeline) == 0 {
		t.line(label("timeline") + "no interval records")
		return
	}
	per := (len(r.Timeline) + timelineRows - 1) / timelineRows
	var bs []*bucket
	for i, p := range r.Timeline {
		if i%per == 0 {
			bs = append(bs, &bucket{first: p.Seq, drops: map[string]uint64{}})
		}
		b := bs[len(bs)-1]
		b.last, b.endMs = p.Seq, p.OffsetMs
		b.durMs += p.DurationMs
		addCounts(b.drops, p.Drops)
		b.total += p.DropsTotal
		b.peak = max(b.peak, perSec(p.DropsTotal, p.DurationMs))
		for _, c := range p.CPUs {
			if c.BacklogDropped != nil {
				b.hasSoftnet = true
				b.backlog += *c.BacklogDropped
				b.squeeze += *c.Squeezes
			}
		}
		b.changes = append(b.changes, p.SysctlChanges...)
		for _, v := range p.Verdicts {
			if !strings.HasPrefix(v, record.SeverityInfo+" ") && !contains(b.verdictsBad, v) {
				b.verdictsBad = append(b.verdictsBad, v)
			}
		}
	}
	head := "per interval; t: seconds since the start, at the interval's end"
	if per > 1 {
		head = fmt.Sprintf("%d intervals per row, rates are the row's mean, peak/s its worst interval's drops/s; t: seconds since the start, at the row's end", per)
	}
	t.para(label("timeline"), head+"; backlog/s: backlog overflows (softnet dropped); verdicts: warnings and criticals re-derived for the row (! is critical)")
	tb := &table{}
	hdr := []string{"seq", "t", "drops/s"}
	if per > 1 {
		hdr = append(hdr, "peak/s")
	}
	hdr = append(hdr, "backlog/s", "squeeze/s", "top reasons", "verdicts")
	tb.row(hdr...)
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
				tb.note(fmt.Sprintf("%d-%d  until %ss: quiet, no drops, overflows or squeezes", b.first, bs[j].last, secs(bs[j].endMs)))
				i = j
				continue
			}
		}
		seq := fmt.Sprint(b.first)
		if b.last != b.first {
			seq = fmt.Sprintf("%d-%d", b.first, b.last)
		}
		cells := []string{seq, secs(b.endMs), compact(perSec(b.total, b.durMs))}
		if per > 1 {
			cells = append(cells, compact(b.peak))
		}
		if b.hasSoftnet {
			cells = append(cells, compact(perSec(b.backlog, b.durMs)), compact(perSec(b.squeeze, b.durMs)))
		} else {
			cells = append(cells, "-", "-")
		}
		var rs []string
		for _, e := range rank.ByCount(b.drops, 2) {
			rs = append(rs, fmt.Sprintf("%s %s", e.Key, compact(perSec(e.Count, b.durMs))))
		}
		short := shortVerdicts(b.verdictsBad)
		if len(short) > 3 {
			short = append(short[:3:3], fmt.Sprintf("+%d more", len(short)-3))
		}
		vs := strings.Join(short, ", ")
		if vs != "" && vs == prevVerdicts {
			vs = "same"
		} else {
			prevVerdicts = vs
		}
		cells = append(cells, strings.Join(rs, "  "), vs)
		tb.row(cells...)
		if len(b.changes) > 0 {
			tb.note("^ sysctl changed: " + strings.Join(b.changes, "; "))
		}
	}
	tb.write(t, "  ", map[int]bool{len(hdr) - 2: true, len(hdr) - 1: true})
}

func secs(ms int64) string { return fmt.Sprintf("%.1f", float64(ms)/1000) }

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// shortVerdicts folds "critical backlog_overflow cpu 1" into "backlog_overflow cpu 1!" so that
// a row stays on one line; "!" is critical.
func shortVerdicts(vs []string) []string {
	var out []string
	for _, v := range vs {
		sev, rest, _ := strings.Cut(v, " ")
		if sev == record.SeverityCritical {
			rest += "!"
		}
		out = append(out, rest)
	}
	return out
}

func checkName(c record.Check) string {
	if c.CPU != nil {
		return fmt.Sprintf("%s CPU %d", c.Check, *c.CPU)
	}
	return c.Check
}

func i64s(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
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
		t.line(label("checks") + "none recorded")
		return
	case len(bad) == 0:
		t.f("%sall %d checks match: what BPF traced agrees with the kernel's counters", label("checks"), n)
		return
	}
	t.f("%s%d of %d checks match; the others:", label("checks"), n-len(bad), n)
	if r.Source == SourceIntervals {
		t.para(label(""), "(combined from the intervals' checks: a mismatch in any interval is one here)")
	}
	for _, c := range bad {
		status := c.Status
		if c.ExplainedBy != "" {
			status += ", explained by " + c.ExplainedBy
		}
		head := fmt.Sprintf("  %s: %s", checkName(c), status)
		if c.Status != record.StatusUnavailable {
			head += fmt.Sprintf(" (traced %s, kernel %s)", i64s(c.Traced), i64s(c.Kernel))
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
		t.para(label("verdicts"), "none: "+from+", nothing crossed a rule's threshold")
	} else {
		t.para(label("verdicts"), from+", most severe first:")
		t.verdictList(r.Verdicts, true)
	}
	if r.RecordedDiffer {
		if len(r.RecordedVerdicts) == 0 {
			t.para(label(""), fmt.Sprintf("the recording itself carried no verdicts (written by droptrace %s)", orDash(r.Start.Version)))
			return
		}
		t.line("")
		t.para(label(""), fmt.Sprintf("the recording itself carried different verdicts (written by droptrace %s):", orDash(r.Start.Version)))
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

// comparison sets the recordings side by side, the last against the first.
func (t *textOut) comparison(d *Document) {
	c := d.Comparison
	n := len(c.Files)
	title := fmt.Sprintf("droptrace analyze: comparing %d recordings", n)
	t.line(title)
	t.line(strings.Repeat("=", len(title)))
	for i, r := range d.Recordings {
		t.f("  [%d] %s  %s UTC, %s, host %s, kernel %s%s", i+1, filepath.Base(r.File),
			time.Time(r.Start.Time).UTC().Format("2006-01-02 15:04:05"), dur(r.Totals.DurationMs),
			orDash(r.Start.Hostname), orDash(r.Start.Kernel), killedNote(r))
	}
	t.line("")
	changeHdr := fmt.Sprintf("[%d] vs [1]", n)
	tb := &table{}
	hdr := []string{""}
	for i := range n {
		hdr = append(hdr, fmt.Sprintf("[%d]", i+1))
	}
	tb.row(append(hdr, changeHdr)...)
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
		tb.row(append(cells, ch)...)
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
		tb.row(append(cells, ch)...)
	}
	tb.row("")
	names := map[string]string{
		"drops_per_sec": "drops/s", "drops_pct": "drops % of received", "processed_per_sec": "received/s (softnet processed)",
		"backlog_dropped_per_sec": "backlog overflows/s", "squeezes_per_sec": "squeezes/s",
		"budget_squeezes_per_sec": "  predicted budget/s", "time_squeezes_per_sec": "  predicted time/s",
		"lost_events_per_sec": "drop events lost/s",
	}
	for _, row := range c.Rates {
		format := compact
		if row.Name == "drops_pct" {
			format = percent
		}
		addRow(names[row.Name], row.Values, format, row.Name == "drops_pct")
	}
	if len(c.Reasons) > 0 {
		tb.row("")
		for i, row := range c.Reasons {
			if i == topReasons*2 {
				tb.row(fmt.Sprintf("(%d more reasons)", len(c.Reasons)-i))
				break
			}
			addRow(row.Name+"/s", row.Values, compact, false)
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
		tb.row("")
		addRow(fmt.Sprintf("CPU %d drops/s", cr.CPU), cr.DropsPerSec, compact, false)
		addRow(fmt.Sprintf("CPU %d backlog overflows/s", cr.CPU), cr.BacklogDroppedPerSec, compact, false)
		addRow(fmt.Sprintf("CPU %d squeezes/s", cr.CPU), cr.SqueezesPerSec, compact, false)
	}
	if quiet := len(c.CPUs) - len(busy); quiet > 0 {
		tb.row("")
		tb.row(fmt.Sprintf("(%d CPUs without drops or squeezes)", quiet))
	}
	if len(c.Verdicts) > 0 {
		tb.row("")
		tb.row("verdicts")
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
			tb.row(append(cells, ch)...)
		}
	}
	tb.write(t, "  ", map[int]bool{0: true})
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
