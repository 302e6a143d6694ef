// SPDX-License-Identifier: Apache-2.0

// Package view draws the live per-CPU table on a terminal: one screen per interval, and the
// session summary left on screen at the end.
package view

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/record"
)

// Options shape the screen.
type Options struct {
	Color      bool // highlight drops, squeezes and mismatches
	Width      int  // terminal columns; 0 means 120
	TopReasons int  // reasons shown per CPU; 0 means 3
}

// View receives records and redraws the screen.
type View struct {
	w     io.Writer
	opts  Options
	start *record.Start
}

// New returns a View writing to w.
func New(w io.Writer, opts Options) *View {
	return &View{w: w, opts: opts}
}

const clear = "\x1b[H\x1b[2J"

// Write implements the session's sink: start is remembered, intervals redraw the screen, the
// summary is printed below without clearing so it stays after exit.
func (v *View) Write(rec any) error {
	switch r := rec.(type) {
	case *record.Start:
		v.start = r
	case *record.Interval:
		s := Render(v.start, r, v.opts)
		if r.Type == record.TypeInterval {
			s = clear + s
		}
		_, err := io.WriteString(v.w, s)
		return err
	}
	return nil
}

type kv struct {
	k string
	v uint64
}

func top(m map[string]uint64, n int) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		if v > 0 {
			out = append(out, kv{k, v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].v != out[j].v {
			return out[i].v > out[j].v
		}
		return out[i].k < out[j].k
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

func total(m map[string]uint64) uint64 {
	var s uint64
	for _, v := range m {
		s += v
	}
	return s
}

type painter struct{ on bool }

func (p painter) red(s string) string {
	if !p.on {
		return s
	}
	return "\x1b[31;1m" + s + "\x1b[0m"
}

func (p painter) yellow(s string) string {
	if !p.on {
		return s
	}
	return "\x1b[33m" + s + "\x1b[0m"
}

func (p painter) bold(s string) string {
	if !p.on {
		return s
	}
	return "\x1b[1m" + s + "\x1b[0m"
}

// hot pads s to width and paints it when n is non-zero, so columns stay aligned.
func (p painter) hot(n uint64, width int, s string) string {
	pad := fmt.Sprintf("%*s", width, s)
	if n == 0 {
		return pad
	}
	return p.red(pad)
}

func rate(n uint64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	r := float64(n) / d.Seconds()
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM/s", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk/s", r/1e3)
	}
	return fmt.Sprintf("%.0f/s", r)
}

func clip(s string, w int) string {
	if w > 3 && len(s) > w {
		return s[:w-3] + "..."
	}
	return s
}

// Render is the screen for one interval or summary.
func Render(start *record.Start, iv *record.Interval, opts Options) string {
	width := opts.Width
	if width <= 0 {
		width = 120
	}
	nTop := opts.TopReasons
	if nTop <= 0 {
		nTop = 3
	}
	p := painter{opts.Color}
	dur := time.Duration(iv.DurationMs) * time.Millisecond
	var b strings.Builder
	line := func(format string, a ...any) {
		b.WriteString(clip(fmt.Sprintf(format, a...), width+40)) // escape codes do not take columns
		b.WriteByte('\n')
	}

	if start != nil {
		mode := start.Mode
		if mode == record.ModeCountersOnly {
			mode = p.red("COUNTERS-ONLY: no BPF (drop reasons, NET_RX runs and squeeze causes unavailable; see droptrace doctor)")
		}
		line("droptrace %s  kernel %s  mode %s", start.Hostname, start.Kernel, mode)
		line("netdev_budget=%d netdev_budget_usecs=%d netdev_max_backlog=%d dev_weight=%d HZ=%d",
			start.Sysctl.NetdevBudget, start.Sysctl.NetdevBudgetUsecs, start.Sysctl.NetdevMaxBacklog, start.Sysctl.DevWeight, start.HZ)
	}
	if iv.Type == record.TypeSummary {
		line("%s", p.bold("Session summary ("+dur.Round(time.Millisecond).String()+")"))
	} else {
		line("interval %d (%s) at %s", iv.Seq, dur.Round(time.Millisecond), time.Time(iv.Time).Local().Format("15:04:05"))
	}
	b.WriteByte('\n')

	line("%-4s %9s %8s  %-34s %9s %9s %6s %9s %13s %8s", "CPU", "drops", "rate", "top reasons", "backlog", "squeeze",
		"busy", "polled", "sqz bud/time", "seen")
	var sumDrops, sumDropped, sumSqueeze uint64
	for _, c := range iv.CPUs {
		d := total(c.Drops)
		sumDrops += d
		var reasons []string
		for _, r := range top(c.Drops, nTop) {
			reasons = append(reasons, fmt.Sprintf("%s %d", r.k, r.v))
		}
		dropped, squeeze := "-", "-"
		var nd, nq uint64
		if c.Softnet != nil {
			nd, nq = c.Softnet.Dropped, c.Softnet.TimeSqueeze
			dropped, squeeze = fmt.Sprint(nd), fmt.Sprint(nq)
			sumDropped += nd
			sumSqueeze += nq
		}
		busy, polled, sqz, seen := "-", "-", "-", "-"
		if n := c.NetRx; n != nil {
			if dur > 0 {
				busy = fmt.Sprintf("%.1f%%", 100*float64(n.BusyUs)/float64(dur.Microseconds()))
			}
			polled = fmt.Sprint(n.Packets)
			sqz = fmt.Sprintf("%d/%d", n.BudgetSqueezes, n.TimeSqueezes)
			seen = "100%"
			if n.KernelRuns > n.Runs {
				seen = p.yellow(fmt.Sprintf("%7.1f%%", 100*float64(n.Runs)/float64(n.KernelRuns)))
			}
		}
		line("%-4d %s %8s  %-34s %s %s %6s %9s %13s %8s", c.CPU, p.hot(d, 9, fmt.Sprint(d)), rate(d, dur),
			clip(strings.Join(reasons, " "), 34), p.hot(nd, 9, dropped), p.hot(nq, 9, squeeze), busy, polled, sqz, seen)
	}
	line("%-4s %9d %8s  %-34s %9d %9d", "all", sumDrops, rate(sumDrops, dur), "", sumDropped, sumSqueeze)
	b.WriteByte('\n')

	if reasons := top(iv.Drops, 6); len(reasons) > 0 {
		var parts []string
		for _, r := range reasons {
			parts = append(parts, fmt.Sprintf("%s %d (%s)", r.k, r.v, rate(r.v, dur)))
		}
		line("drops by reason: %s", strings.Join(parts, ", "))
	} else if start == nil || start.Mode == record.ModeFull {
		line("drops by reason: none")
	}
	for i, l := range iv.Locations {
		if i == 3 {
			break
		}
		line("  at %s  %s %d", l.Location, l.Reason, l.Count)
	}

	matched := 0
	var bad []string
	for _, c := range iv.Checks {
		if c.Status == record.StatusMatch {
			matched++
			continue
		}
		name := c.Check
		if c.CPU != nil {
			name = fmt.Sprintf("%s cpu%d", c.Check, *c.CPU)
		}
		status := c.Status
		if status == record.StatusMismatch {
			status = p.red(status)
		}
		counts := ""
		if c.Traced != nil && c.Kernel != nil {
			counts = fmt.Sprintf(" traced %d kernel %d", *c.Traced, *c.Kernel)
		}
		bad = append(bad, clip(fmt.Sprintf("  %s %s%s: %s", name, status, counts, c.Note), width+12))
	}
	line("checks: %d match, %d not", matched, len(bad))
	for _, s := range bad {
		line("%s", s)
	}
	t := iv.Tracer
	if iv.LostEvents > 0 || t.DropRecursionMisses > 0 || t.NetRxRecursionMisses > 0 || t.AggMapFull > 0 {
		line("%s", p.yellow(fmt.Sprintf("tracer: lost_events %d (rate-limited %d, ring full %d, write failed %d), recursion misses drop %d net_rx %d, agg map full %d",
			iv.LostEvents, t.EventsRateLimited, t.EventsRingbufFull, t.EventsWriteFailed, t.DropRecursionMisses, t.NetRxRecursionMisses, t.AggMapFull)))
	}
	return b.String()
}
