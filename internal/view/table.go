// SPDX-License-Identifier: Apache-2.0

package view

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/rank"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/textfmt"
)

// The per-CPU table: one row per CPU and a total, in columns of fixed width so that a redraw
// every interval does not shift them; only the reasons column takes what the screen has left.
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

// heads are the per-CPU table's column headings.
var heads = [nCols]string{"CPU", "drops", "/s", "top reasons", "dropped", "squeeze", "busy", "polled", "bud/time", "seen"}

// groups label runs of columns with a rule, so the reader knows which numbers BPF traced and
// which the kernel counted.
var groups = []textfmt.Group{
	{Name: "traced drops", First: colDrops, Last: colReasons},
	{Name: "softnet", First: colDropped, Last: colSqueeze},
	{Name: "NET_RX softirq", First: colBusy, Last: colSeen},
}

// maxReasonsWidth keeps rows readable on very wide terminals.
const maxReasonsWidth = 64

func (r *renderer) columns() []textfmt.Column {
	cpuW := 3
	for _, c := range r.iv.CPUs {
		cpuW = max(cpuW, len(strconv.Itoa(c.CPU)))
	}
	cols := []textfmt.Column{
		colCPU:     {Width: cpuW},
		colDrops:   {Width: 6, Gap: 1},
		colRate:    {Width: 5, Gap: 1},
		colReasons: {Left: true, Gap: 2},
		colDropped: {Width: 7, Gap: 2},
		colSqueeze: {Width: 7, Gap: 1},
		colBusy:    {Width: 5, Gap: 2},
		colPolled:  {Width: 6, Gap: 1},
		colSplit:   {Width: 9, Gap: 1},
		colSeen:    {Width: 5, Gap: 1},
	}
	fixed := 0
	for _, c := range cols {
		fixed += c.Gap + c.Width
	}
	cols[colReasons].Width = min(max(r.width-fixed, len(heads[colReasons])), maxReasonsWidth)
	return cols
}

type cell struct {
	text string
	heat heat
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
	tb := &textfmt.Table{Columns: r.columns(), Groups: groups}
	// Cells are painted after they are padded, so that escape codes never shift columns.
	heats := [][]heat{make([]heat, nCols)} // the headings' row
	tb.Style = func(row, col int, s string) string { return r.p.paint(heats[row][col], s) }
	add := func(cells []cell) {
		texts := make([]string, len(cells))
		hs := make([]heat, len(cells))
		for i, c := range cells {
			texts[i], hs[i] = c.text, c.heat
		}
		tb.Row(texts...)
		heats = append(heats, hs)
	}
	tb.Row(heads[:]...)
	var t totals
	for _, c := range r.iv.CPUs {
		add(r.cpuCells(c, tb.Columns[colReasons].Width, &t))
	}
	add(r.totalCells(&t))
	r.add(tb.Lines()...)
	if t.netRx {
		r.addClipped(textfmt.Words("", "bud/time: predicted squeezes, netdev_budget hit / netdev_budget_usecs hit; "+
			"seen: NET_RX runs traced, if under 100%", r.width))
	}
	r.add("")
}

func (r *renderer) cpuCells(c record.CPU, reasonsW int, t *totals) []cell {
	cells := make([]cell, nCols)
	cells[colCPU] = cell{text: strconv.Itoa(c.CPU)}
	if r.traced {
		d := rank.Total(c.Drops)
		t.drops += d
		cells[colDrops] = cell{textfmt.Count(d, 6), hot(d, red)}
		cells[colRate] = cell{text: textfmt.PerSecond(d, r.dur, 5)}
		cells[colReasons] = cell{text: reasonsCell(rank.ByCount(c.Drops, -1), r.nTop, reasonsW)}
	} else {
		cells[colDrops], cells[colRate], cells[colReasons] = cell{text: "-"}, cell{text: "-"}, cell{text: "-"}
	}
	if sn := c.Softnet; sn != nil {
		t.softnet = true
		t.dropped += sn.Dropped
		t.squeeze += sn.TimeSqueeze
		cells[colDropped] = cell{textfmt.Count(sn.Dropped, 7), hot(sn.Dropped, red)}
		cells[colSqueeze] = cell{textfmt.Count(sn.TimeSqueeze, 7), hot(sn.TimeSqueeze, yellow)}
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
		cells[colBusy] = cell{text: textfmt.PercentFloor(float64(n.BusyUs), float64(r.dur.Microseconds()))}
	} else {
		cells[colBusy] = cell{text: "-"}
	}
	cells[colPolled] = cell{text: textfmt.Count(n.Packets, 6)}
	cells[colSplit] = squeezeSplit(n.BudgetSqueezes, n.TimeSqueezes)
	cells[colSeen] = cell{text: seen(n.Runs, n.KernelRuns)}
	return cells
}

func squeezeSplit(budget, tm uint64) cell {
	return cell{textfmt.Count(budget, 4) + "/" + textfmt.Count(tm, 4), hot(budget+tm, yellow)}
}

// seen is shown only when BPF saw fewer NET_RX runs than the kernel counted: those runs'
// squeezes cannot be predicted. More runs than counted is a check's business, not a column's.
func seen(runs, kernel uint64) string {
	if kernel == 0 || runs >= kernel {
		return ""
	}
	return textfmt.PercentFloor(float64(runs), float64(kernel))
}

func (r *renderer) totalCells(t *totals) []cell {
	cells := make([]cell, nCols)
	cells[colCPU] = cell{text: "all"}
	if r.traced {
		cells[colDrops] = cell{textfmt.Count(t.drops, 6), hot(t.drops, red)}
		cells[colRate] = cell{text: textfmt.PerSecond(t.drops, r.dur, 5)}
	} else {
		cells[colDrops], cells[colRate] = cell{text: "-"}, cell{text: "-"}
	}
	if t.softnet {
		cells[colDropped] = cell{textfmt.Count(t.dropped, 7), hot(t.dropped, red)}
		cells[colSqueeze] = cell{textfmt.Count(t.squeeze, 7), hot(t.squeeze, yellow)}
	} else {
		cells[colDropped], cells[colSqueeze] = cell{text: "-"}, cell{text: "-"}
	}
	if t.netRx {
		cells[colPolled] = cell{text: textfmt.Count(t.packets, 6)}
		cells[colSplit] = squeezeSplit(t.budget, t.timeSqz)
		cells[colSeen] = cell{text: seen(t.covered, t.kernelRuns)}
	} else {
		cells[colPolled], cells[colSplit], cells[colSeen] = cell{text: "-"}, cell{text: "-"}, cell{text: "-"}
	}
	return cells
}

// reasonsCell names up to n reasons that fit in w columns, and how many more there are. Counts
// are never cut: a name is shortened first, since the count is what changes.
func reasonsCell(rs []rank.Entry, n, w int) string {
	// Widths in columns, not bytes: a reason name from a recording may hold any character.
	var b strings.Builder
	used, shown := 0, 0
	for _, e := range rs {
		if shown == n {
			break
		}
		cnt := textfmt.Count(e.Count, 6)
		item := e.Key + " " + cnt
		if shown > 0 {
			item = " " + item
		}
		if used+textfmt.Width(item) > w {
			if shown > 0 {
				break
			}
			cnt = textfmt.Count(e.Count, 4)
			item = clipName(e.Key, w-len(cnt)-1) + " " + cnt
		}
		b.WriteString(item)
		used += textfmt.Width(item)
		shown++
	}
	if more := len(rs) - shown; more > 0 {
		if tail := fmt.Sprintf(" +%d", more); used+len(tail) <= w {
			b.WriteString(tail)
		}
	}
	return b.String()
}

// clipName shortens a reason name with a "~", which reason names never contain; it cuts
// between characters, never inside one.
func clipName(s string, w int) string {
	if textfmt.Width(s) <= w {
		return s
	}
	if w <= 1 {
		return "~"
	}
	return string([]rune(s)[:w-1]) + "~"
}
