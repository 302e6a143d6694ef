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
	"github.com/droptrace/droptrace/internal/textfmt"
)

// Render is the full screen for one interval or for the session summary, without the screen
// clear: a pure function of its arguments, so the screen can be tested line by line. start may
// be nil (the header then says only what the interval knows). No line is wider than the
// width in opts (at least 80). Every string of the records is shown escaped (see
// textfmt.Terminal): a process, interface or cgroup name is the host's, not droptrace's.
func Render(start *record.Start, iv *record.Interval, opts Options) string {
	if iv == nil {
		return ""
	}
	start, iv = textfmt.Safe(start), textfmt.Safe(iv)
	r := newRenderer(start, iv, opts)
	r.header()
	r.table()
	r.reasons()
	r.sockets()
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

// addClipped adds lines, clipping those wider than the screen: the terminal would wrap them
// and shift every line below.
func (r *renderer) addClipped(lines []string) {
	for _, l := range lines {
		if textfmt.Width(l) > r.width {
			l = textfmt.Clip(l, r.width)
		}
		r.lines = append(r.lines, l)
	}
}

func (r *renderer) header() {
	var parts []string
	if r.summary {
		parts = append(parts, fmt.Sprintf("Session summary (%s)", textfmt.DurationExact(r.dur)))
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
		iv := fmt.Sprintf("interval %d (%s)", r.iv.Seq, textfmt.DurationExact(r.dur))
		if when != "" {
			iv += " at " + when
		}
		parts = append(parts, iv)
	case when != "":
		parts = append(parts, "ended "+when)
	}
	r.addClipped(textfmt.Pack("", parts, "  ", r.width))
	r.sysctls()
	if s == nil {
		r.add("")
		return
	}
	if s.Mode == record.ModeCountersOnly {
		// The table looks complete at a glance; say plainly what it cannot show.
		r.addClipped(textfmt.Words("!! ", "COUNTERS-ONLY: no BPF program is attached. MISSING: drop reasons and "+
			"locations, traced drops per CPU, NET_RX busy time, polls and squeeze causes, and "+
			"most checks. Shown: softnet_stat backlog drops and time squeezes only. "+
			"`droptrace doctor` says why.", r.width))
	} else if off := r.missingProbes(); len(off) > 0 {
		r.addClipped(textfmt.Pack("!! NOT ATTACHED: ", off, ", ", r.width))
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
		r.addClipped(textfmt.Pack("", items, "  ", r.width))
	}
	changes := r.iv.SysctlChanges
	if n := len(changes) - maxSysctlChanges; n > 0 {
		r.add(fmt.Sprintf("sysctl changed %d more times before:", n))
		changes = changes[n:]
	}
	for _, c := range changes {
		r.addClipped(textfmt.Words("sysctl changed: ", c, r.width))
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

func (r *renderer) reasons() {
	if !r.traced {
		r.add(textfmt.Label("reasons") + "not traced (no drop program attached)")
		return
	}
	rs := rank.ByCount(r.iv.Drops, -1)
	if len(rs) == 0 {
		r.add(textfmt.Label("reasons") + "no drops traced")
		return
	}
	var items []string
	for i, e := range rs {
		if i == max(r.nTop, 5) {
			items = append(items, fmt.Sprintf("+%d more", len(rs)-i))
			break
		}
		items = append(items, fmt.Sprintf("%s %d (%s/s)", e.Key, e.Count, textfmt.PerSecond(e.Count, r.dur, 7)))
	}
	r.addClipped(textfmt.Pack(textfmt.Label("reasons"), items, "  ", r.width))

	locs := r.iv.Locations
	if len(locs) > 3 {
		locs = locs[:3]
	}
	cntW, reasonW := 0, 0
	for _, l := range locs {
		cntW = max(cntW, len(strconv.FormatUint(l.Count, 10)))
		reasonW = max(reasonW, textfmt.Width(l.Reason))
	}
	for i, l := range locs {
		lbl := textfmt.Label("")
		if i == 0 {
			lbl = textfmt.Label("where")
		}
		r.add(textfmt.Clip(fmt.Sprintf("%s%*d  %-*s  %s", lbl, cntW, l.Count, reasonW, l.Reason, l.Location), r.width))
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
			r.add(textfmt.Label("") + "... more in the JSON records")
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
		prefix := textfmt.Label(name) + sev + " "
		r.add(prefix + textfmt.Clip(head+": "+v.Cause, r.width-textfmt.Width(prefix)))
		fixPrefix := textfmt.Label("") + strings.Repeat(" ", 10) + "fix: "
		r.add(fixPrefix + textfmt.Clip(v.Fix, r.width-textfmt.Width(fixPrefix)))
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
		r.add(textfmt.Label("checks") + "none")
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
	r.add(textfmt.Label("checks") + strings.Join(summary, ", "))

	// Mismatches first: they are what the reader must act on.
	sort.SliceStable(lines, func(i, j int) bool {
		return lines[i].status == record.StatusMismatch && lines[j].status != record.StatusMismatch
	})
	for i, l := range lines {
		if i == maxCheckLines {
			r.add(textfmt.Label("") + fmt.Sprintf("... %d more not shown (see the JSON records)", len(lines)-i))
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
		head += " CPU " + textfmt.CPUList(l.cpus)
	}
	if l.traced != nil && l.kernel != nil && l.status == record.StatusMismatch {
		head += fmt.Sprintf(" (traced %d, kernel %d)", *l.traced, *l.kernel)
	}
	if l.note != "" {
		head += ": " + l.note
	}
	prefix := textfmt.Label("") + status + " "
	return prefix + textfmt.Clip(head, r.width-textfmt.Width(prefix))
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
	if t.SockMapFull > 0 {
		items = append(items, fmt.Sprintf("%d socket-level drops not named by socket (socket map full)", t.SockMapFull))
	}
	if n := t.EventsFiltered; n > 0 {
		items = append(items, fmt.Sprintf("%d drop events outside the filters (counted, not streamed)", n))
	}
	if len(items) == 0 {
		return
	}
	r.add("")
	r.addClipped(textfmt.Pack(textfmt.Label("tracer"), items, "; ", r.width))
}
