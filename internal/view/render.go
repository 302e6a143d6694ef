// SPDX-License-Identifier: Apache-2.0

package view

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/rank"
	"github.com/droptrace/droptrace/internal/record"
)

// Render is the full screen for one interval or for the session summary, without the screen
// clear: a pure function of its arguments, so the screen can be tested line by line. start may
// be nil (the header then says only what the interval knows). No line is wider than the
// width in opts (at least 80).
func Render(start *record.Start, iv *record.Interval, opts Options) string {
	if iv == nil {
		return ""
	}
	r := newRenderer(start, iv, opts)
	r.header()
	r.table()
	r.reasons()
	r.verdicts()
	r.checks()
	r.health()
	var b strings.Builder
	for _, l := range r.lines {
		// Trailing blanks would make goldens and copy-pasted screens differ invisibly.
		b.WriteString(strings.TrimRight(l, " "))
		b.WriteByte('\n')
	}
	return b.String()
}

type renderer struct {
	start   *record.Start
	iv      *record.Interval
	width   int
	nTop    int
	p       painter
	dur     time.Duration
	summary bool
	// traced is false when no drop program ran: per-CPU drops are then unknown, not zero.
	traced bool
	lines  []string
}

func newRenderer(start *record.Start, iv *record.Interval, opts Options) *renderer {
	r := &renderer{
		start:   start,
		iv:      iv,
		width:   opts.Width,
		nTop:    opts.TopReasons,
		p:       painter{opts.Color},
		dur:     time.Duration(iv.DurationMs) * time.Millisecond,
		summary: iv.Type == record.TypeSummary,
		traced:  true,
	}
	if r.width == 0 {
		r.width = defaultWidth
	}
	r.width = max(r.width, minWidth)
	if r.nTop <= 0 {
		r.nTop = defaultTopReasons
	}
	if start != nil {
		r.traced = start.Mode != record.ModeCountersOnly && probeOK(start.Probes, "skb:kfree_skb")
	}
	return r
}

// probeOK says whether a probe ran; a probe the start record does not mention is assumed to,
// as older recordings listed fewer.
func probeOK(probes map[string]string, name string) bool {
	st, ok := probes[name]
	return !ok || !(st == "off" || strings.HasPrefix(st, "unavailable"))
}

func (r *renderer) add(lines ...string) { r.lines = append(r.lines, lines...) }

// labelWidth aligns the sections under the table.
const labelWidth = 10

func label(s string) string { return fmt.Sprintf("%-*s", labelWidth, s) }

func (r *renderer) header() {
	var parts []string
	if r.summary {
		parts = append(parts, fmt.Sprintf("Session summary (%s)", duration(r.dur)))
	} else {
		parts = append(parts, "droptrace")
	}
	s := r.start
	if s != nil {
		mode := "mode " + s.Mode
		if s.Mode == record.ModeCountersOnly {
			mode = "mode COUNTERS-ONLY"
		}
		parts = append(parts, "host "+s.Hostname, "kernel "+s.Kernel, mode)
	}
	var when string
	if t := time.Time(r.iv.Time); !t.IsZero() {
		when = t.UTC().Format("15:04:05") + " UTC"
	}
	switch {
	case !r.summary:
		iv := fmt.Sprintf("interval %d (%s)", r.iv.Seq, duration(r.dur))
		if when != "" {
			iv += " at " + when
		}
		parts = append(parts, iv)
	case when != "":
		parts = append(parts, "ended "+when)
	}
	r.add(pack("", parts, "  ", r.width)...)
	r.sysctls()
	if s == nil {
		r.add("")
		return
	}
	if s.Mode == record.ModeCountersOnly {
		// The table looks complete at a glance; say plainly what it cannot show.
		r.add(words("!! ", "COUNTERS-ONLY: no BPF program is attached. MISSING: drop reasons and "+
			"locations, traced drops per CPU, NET_RX busy time, polls and squeeze causes, and "+
			"most checks. Shown: softnet_stat backlog drops and time squeezes only. "+
			"`droptrace doctor` says why.", r.width)...)
	} else if off := r.missingProbes(); len(off) > 0 {
		r.add(pack("!! NOT ATTACHED: ", off, ", ", r.width)...)
	}
	r.add("")
}

// maxSysctlChanges bounds the changes listed in a summary of a long session of tuning.
const maxSysctlChanges = 3

// sysctls shows the values in force at the end of the interval, since a user may have tuned
// them during the session, and every change: squeeze predictions before it used the old ones.
func (r *renderer) sysctls() {
	var sc *record.Sysctl
	if r.start != nil {
		sc = &r.start.Sysctl
	}
	if r.iv.Sysctl != nil {
		sc = r.iv.Sysctl
	}
	if sc != nil {
		items := []string{
			fmt.Sprintf("netdev_budget=%d", sc.NetdevBudget),
			fmt.Sprintf("netdev_budget_usecs=%d", sc.NetdevBudgetUsecs),
			fmt.Sprintf("netdev_max_backlog=%d", sc.NetdevMaxBacklog),
		}
		if s := r.start; s != nil {
			hz := "HZ=" + strconv.Itoa(s.HZ)
			switch {
			case s.HZ == 0:
				hz = "HZ=unknown"
			case s.HZSource != "" && s.HZSource != "kconfig":
				// A measured HZ is an estimate; say so, as time squeeze predictions rest on it.
				hz += " (" + s.HZSource + ")"
			}
			items = append(items, hz)
		}
		r.add(pack("", items, "  ", r.width)...)
	}
	changes := r.iv.SysctlChanges
	if n := len(changes) - maxSysctlChanges; n > 0 {
		r.add(fmt.Sprintf("sysctl changed %d more times before:", n))
		changes = changes[n:]
	}
	for _, c := range changes {
		r.add(words("sysctl changed: ", c, r.width)...)
	}
}

func (r *renderer) missingProbes() []string {
	var out []string
	for name := range r.start.Probes {
		if !probeOK(r.start.Probes, name) {
			out = append(out, name+" ("+r.start.Probes[name]+")")
		}
	}
	sort.Strings(out)
	return out
}

// column is one column of the per-CPU table.
type column struct {
	head  string
	width int
	left  bool
	gap   int // blanks before the column
}

const (
	colCPU = iota
	colDrops
	colRate
	colReasons
	colDropped
	colSqueeze
	colBusy
	colPolled
	colSplit
	colSeen
	nCols
)

// group labels a run of columns with a rule, so the reader knows which numbers BPF traced and
// which the kernel counted.
type group struct {
	name       string
	first, end int
}

var groups = []group{
	{"traced drops", colDrops, colReasons + 1},
	{"softnet", colDropped, colSqueeze + 1},
	{"NET_RX softirq", colBusy, colSeen + 1},
}

// maxReasonsWidth keeps rows readable on very wide terminals.
const maxReasonsWidth = 64

func (r *renderer) columns() []column {
	cpuW := 3
	for _, c := range r.iv.CPUs {
		cpuW = max(cpuW, len(strconv.Itoa(c.CPU)))
	}
	cols := []column{
		colCPU:     {head: "CPU", width: cpuW},
		colDrops:   {head: "drops", width: 6, gap: 1},
		colRate:    {head: "/s", width: 5, gap: 1},
		colReasons: {head: "top reasons", left: true, gap: 2},
		colDropped: {head: "dropped", width: 7, gap: 2},
		colSqueeze: {head: "squeeze", width: 7, gap: 1},
		colBusy:    {head: "busy", width: 5, gap: 2},
		colPolled:  {head: "polled", width: 6, gap: 1},
		colSplit:   {head: "bud/time", width: 9, gap: 1},
		colSeen:    {head: "seen", width: 5, gap: 1},
	}
	fixed := 0
	for _, c := range cols {
		fixed += c.gap + c.width
	}
	cols[colReasons].width = min(max(r.width-fixed, len(cols[colReasons].head)), maxReasonsWidth)
	return cols
}

type cell struct {
	text string
	heat heat
}

func (r *renderer) row(cols []column, cells []cell) string {
	var b strings.Builder
	for i, c := range cols {
		b.WriteString(strings.Repeat(" ", c.gap))
		text := clip(cells[i].text, c.width)
		if c.left {
			text = fmt.Sprintf("%-*s", c.width, text)
		} else {
			text = fmt.Sprintf("%*s", c.width, text)
		}
		b.WriteString(r.p.paint(cells[i].heat, text))
	}
	return b.String()
}

func hot(n uint64, h heat) heat {
	if n == 0 {
		return cold
	}
	return h
}

// totals accumulates the "all" row.
type totals struct {
	drops                    uint64
	dropped, squeeze         uint64
	softnet, netRx           bool
	packets, budget, timeSqz uint64
	kernelRuns, covered      uint64
}

func (r *renderer) table() {
	cols := r.columns()
	var b strings.Builder
	pos := 0
	starts := make([]int, nCols)
	for i, c := range cols {
		pos += c.gap
		starts[i] = pos
		pos += c.width
	}
	for _, g := range groups {
		from := starts[g.first]
		to := starts[g.end-1] + cols[g.end-1].width
		for b.Len() < from {
			b.WriteByte(' ')
		}
		b.WriteString(ruled(g.name, to-from))
	}
	heads := make([]cell, nCols)
	for i, c := range cols {
		heads[i] = cell{text: c.head}
	}
	r.add(b.String(), r.row(cols, heads))

	var t totals
	for _, c := range r.iv.CPUs {
		r.add(r.row(cols, r.cpuCells(c, cols[colReasons].width, &t)))
	}
	r.add(r.row(cols, r.totalCells(&t)))
	if t.netRx {
		r.add(words("", "bud/time: predicted squeezes, netdev_budget hit / netdev_budget_usecs hit; "+
			"seen: NET_RX runs traced, if under 100%", r.width)...)
	}
	r.add("")
}

// ruled centers name in a dashed rule of width w.
func ruled(name string, w int) string {
	name = " " + name + " "
	if len(name) > w {
		return clip(strings.TrimSpace(name), w)
	}
	left := (w - len(name)) / 2
	return strings.Repeat("-", left) + name + strings.Repeat("-", w-left-len(name))
}

func (r *renderer) cpuCells(c record.CPU, reasonsW int, t *totals) []cell {
	cells := make([]cell, nCols)
	cells[colCPU] = cell{text: strconv.Itoa(c.CPU)}
	if r.traced {
		d := sum(c.Drops)
		t.drops += d
		cells[colDrops] = cell{count(d, 6), hot(d, red)}
		cells[colRate] = cell{text: perSecond(d, r.dur, 5)}
		cells[colReasons] = cell{text: reasonsCell(ranked(c.Drops), r.nTop, reasonsW)}
	} else {
		cells[colDrops], cells[colRate], cells[colReasons] = cell{text: "-"}, cell{text: "-"}, cell{text: "-"}
	}
	if sn := c.Softnet; sn != nil {
		t.softnet = true
		t.dropped += sn.Dropped
		t.squeeze += sn.TimeSqueeze
		cells[colDropped] = cell{count(sn.Dropped, 7), hot(sn.Dropped, red)}
		cells[colSqueeze] = cell{count(sn.TimeSqueeze, 7), hot(sn.TimeSqueeze, yellow)}
	} else {
		cells[colDropped], cells[colSqueeze] = cell{text: "-"}, cell{text: "-"}
	}
	n := c.NetRx
	if n == nil {
		for _, i := range []int{colBusy, colPolled, colSplit, colSeen} {
			cells[i] = cell{text: "-"}
		}
		return cells
	}
	t.netRx = true
	t.packets += n.Packets
	t.budget += n.BudgetSqueezes
	t.timeSqz += n.TimeSqueezes
	t.kernelRuns += n.KernelRuns
	t.covered += min(n.Runs, n.KernelRuns)
	if r.dur > 0 {
		cells[colBusy] = cell{text: percent(float64(n.BusyUs), float64(r.dur.Microseconds()))}
	} else {
		cells[colBusy] = cell{text: "-"}
	}
	cells[colPolled] = cell{text: count(n.Packets, 6)}
	cells[colSplit] = squeezeSplit(n.BudgetSqueezes, n.TimeSqueezes)
	cells[colSeen] = cell{text: coverage(n.Runs, n.KernelRuns)}
	return cells
}

func squeezeSplit(budget, tm uint64) cell {
	return cell{count(budget, 4) + "/" + count(tm, 4), hot(budget+tm, yellow)}
}

// coverage is shown only when BPF saw fewer NET_RX runs than the kernel counted: those runs'
// squeezes cannot be predicted. More runs than counted is a check's business, not a column's.
func coverage(runs, kernel uint64) string {
	if kernel == 0 || runs >= kernel {
		return ""
	}
	return percent(float64(runs), float64(kernel))
}

func (r *renderer) totalCells(t *totals) []cell {
	cells := make([]cell, nCols)
	cells[colCPU] = cell{text: "all"}
	if r.traced {
		cells[colDrops] = cell{count(t.drops, 6), hot(t.drops, red)}
		cells[colRate] = cell{text: perSecond(t.drops, r.dur, 5)}
	} else {
		cells[colDrops], cells[colRate] = cell{text: "-"}, cell{text: "-"}
	}
	if t.softnet {
		cells[colDropped] = cell{count(t.dropped, 7), hot(t.dropped, red)}
		cells[colSqueeze] = cell{count(t.squeeze, 7), hot(t.squeeze, yellow)}
	} else {
		cells[colDropped], cells[colSqueeze] = cell{text: "-"}, cell{text: "-"}
	}
	if t.netRx {
		cells[colPolled] = cell{text: count(t.packets, 6)}
		cells[colSplit] = squeezeSplit(t.budget, t.timeSqz)
		cells[colSeen] = cell{text: coverage(t.covered, t.kernelRuns)}
	} else {
		cells[colPolled], cells[colSplit], cells[colSeen] = cell{text: "-"}, cell{text: "-"}, cell{text: "-"}
	}
	return cells
}

// reasonsCell names up to n reasons that fit in w columns, and how many more there are. Counts
// are never cut: a name is shortened first, since the count is what changes.
func reasonsCell(rs []rank.Entry, n, w int) string {
	var b strings.Builder
	shown := 0
	for _, e := range rs {
		if shown == n {
			break
		}
		cnt := count(e.Count, 6)
		item := e.Key + " " + cnt
		if shown > 0 {
			item = " " + item
		}
		if b.Len()+len(item) > w {
			if shown > 0 {
				break
			}
			cnt = count(e.Count, 4)
			item = clipName(e.Key, w-len(cnt)-1) + " " + cnt
		}
		b.WriteString(item)
		shown++
	}
	if more := len(rs) - shown; more > 0 {
		if tail := fmt.Sprintf(" +%d", more); b.Len()+len(tail) <= w {
			b.WriteString(tail)
		}
	}
	return b.String()
}

// clipName shortens a reason name with a "~", which reason names never contain.
func clipName(s string, w int) string {
	if len(s) <= w {
		return s
	}
	if w <= 1 {
		return "~"
	}
	return s[:w-1] + "~"
}

func (r *renderer) reasons() {
	if !r.traced {
		r.add(label("reasons") + "not traced (no drop program attached)")
		return
	}
	rs := ranked(r.iv.Drops)
	if len(rs) == 0 {
		r.add(label("reasons") + "no drops traced")
		return
	}
	var items []string
	for i, e := range rs {
		if i == max(r.nTop, 5) {
			items = append(items, fmt.Sprintf("+%d more", len(rs)-i))
			break
		}
		items = append(items, fmt.Sprintf("%s %d (%s/s)", e.Key, e.Count, perSecond(e.Count, r.dur, 7)))
	}
	r.add(pack(label("reasons"), items, "  ", r.width)...)

	locs := r.iv.Locations
	if len(locs) > 3 {
		locs = locs[:3]
	}
	cntW, reasonW := 0, 0
	for _, l := range locs {
		cntW = max(cntW, len(strconv.FormatUint(l.Count, 10)))
		reasonW = max(reasonW, len(l.Reason))
	}
	for i, l := range locs {
		lbl := label("")
		if i == 0 {
			lbl = label("where")
		}
		r.add(clip(fmt.Sprintf("%s%*d  %-*s  %s", lbl, cntW, l.Count, reasonW, l.Reason, l.Location), r.width))
	}
}

// checkLine is one or more failed checks said once: the same check failing the same way on
// many CPUs (as in counters-only mode) would otherwise push the table off the screen.
type checkLine struct {
	check, status, note string
	cpus                []int
	traced, kernel      *int64
}

// maxVerdicts bounds the verdicts shown; they come most severe first.
const maxVerdicts = 4

// verdicts come before the checks: at 3 a.m. the reader wants the cause and the fix first.
func (r *renderer) verdicts() {
	shown := 0
	for _, v := range r.iv.Verdicts {
		if v.Severity == record.SeverityInfo && v.ID != "backlog_overflow" {
			continue // informational ones stay in the records
		}
		if shown == maxVerdicts {
			r.add(label("") + "... more in the JSON records")
			break
		}
		sev := fmt.Sprintf("%-9s", v.Severity)
		if v.Severity == record.SeverityCritical {
			sev = r.p.paint(red, sev)
		}
		head := v.ID
		if v.CPU != nil {
			head += fmt.Sprintf(" CPU %d", *v.CPU)
		}
		name := "verdicts"
		if shown > 0 {
			name = ""
		}
		prefix := label(name) + sev + " "
		r.add(prefix + clip(head+": "+v.Cause, r.width-visibleLen(prefix)))
		fixPrefix := label("") + strings.Repeat(" ", 10) + "fix: "
		r.add(fixPrefix + clip(v.Fix, r.width-visibleLen(fixPrefix)))
		shown++
	}
}

// maxCheckLines bounds the checks section on hosts with many CPUs; the records have them all.
const maxCheckLines = 8

func (r *renderer) checks() {
	var match, mismatch, unavail int
	var lines []*checkLine
	seen := map[string]*checkLine{}
	for _, c := range r.iv.Checks {
		switch c.Status {
		case record.StatusMatch:
			match++
			continue
		case record.StatusMismatch:
			mismatch++
		default:
			unavail++
		}
		key := c.Check + "\x00" + c.Status + "\x00" + c.Note
		if l, ok := seen[key]; ok && c.Status != record.StatusMismatch && c.CPU != nil && l.cpus != nil {
			l.cpus = append(l.cpus, *c.CPU)
			continue
		}
		l := &checkLine{check: c.Check, status: c.Status, note: c.Note, traced: c.Traced, kernel: c.Kernel}
		if c.CPU != nil {
			l.cpus = []int{*c.CPU}
		}
		seen[key] = l
		lines = append(lines, l)
	}
	if match+mismatch+unavail == 0 {
		r.add(label("checks") + "none")
		return
	}
	summary := []string{fmt.Sprintf("%d checks match", match)}
	if match == 1 {
		summary[0] = "1 check matches"
	}
	if mismatch > 0 {
		summary = append(summary, r.p.paint(red, fmt.Sprintf("%d mismatch", mismatch)))
	}
	if unavail > 0 {
		summary = append(summary, fmt.Sprintf("%d unavailable", unavail))
	}
	r.add(label("checks") + strings.Join(summary, ", "))

	// Mismatches first: they are what the reader must act on.
	sort.SliceStable(lines, func(i, j int) bool {
		return lines[i].status == record.StatusMismatch && lines[j].status != record.StatusMismatch
	})
	for i, l := range lines {
		if i == maxCheckLines {
			r.add(label("") + fmt.Sprintf("... %d more not shown (see the JSON records)", len(lines)-i))
			break
		}
		r.add(r.checkText(l))
	}
}

func (r *renderer) checkText(l *checkLine) string {
	status := fmt.Sprintf("%-11s", l.status)
	if l.status == record.StatusMismatch {
		status = r.p.paint(red, status)
	}
	head := l.check
	if len(l.cpus) > 0 {
		sort.Ints(l.cpus)
		head += " CPU " + cpuList(l.cpus)
	}
	if l.traced != nil && l.kernel != nil && l.status == record.StatusMismatch {
		head += fmt.Sprintf(" (traced %d, kernel %d)", *l.traced, *l.kernel)
	}
	if l.note != "" {
		head += ": " + l.note
	}
	prefix := label("") + status + " "
	return prefix + clip(head, r.width-visibleLen(prefix))
}

// health says what the tracer could not see or send; silent when all is well.
func (r *renderer) health() {
	t := r.iv.Tracer
	var items []string
	if r.iv.LostEvents > 0 {
		var parts []string
		for _, p := range []struct {
			name string
			n    uint64
		}{
			{"rate-limited", t.EventsRateLimited},
			{"ring buffer full", t.EventsRingbufFull},
			{"write failed", t.EventsWriteFailed},
			{"unread at exit", t.EventsUnread},
		} {
			if p.n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", p.name, p.n))
			}
		}
		it := fmt.Sprintf("lost_events %d", r.iv.LostEvents)
		if len(parts) > 0 {
			it += " (" + strings.Join(parts, ", ") + ")"
		}
		// Events are sent after the drop is counted, so losing them loses no count.
		items = append(items, it, "drop events only: counts are unaffected")
	}
	if n := t.DropRecursionMisses; n > 0 {
		items = append(items, fmt.Sprintf("kfree_skb skipped %d times (recursion): drops not counted", n))
	}
	if n := t.NetRxRecursionMisses; n > 0 {
		items = append(items, fmt.Sprintf("NET_RX programs skipped %d times (recursion)", n))
	}
	if t.AggMapFull > 0 {
		items = append(items, fmt.Sprintf("%d drops NOT COUNTED (aggregation map full)", t.AggMapFull))
	}
	if len(items) == 0 {
		return
	}
	r.add("")
	r.add(pack(label("tracer"), items, "; ", r.width)...)
}
