// SPDX-License-Identifier: Apache-2.0

// Package softnet parses /proc/net/softnet_stat.
//
// The layout is net/core/net-procfs.c softnet_seq_show: one line per online CPU, every field
// "%08x" (32-bit counters that wrap). Columns: 1 processed, 2 dropped (backlog or flow-limit
// overflow), 3 time_squeeze, 4-9 always zero (were fastroute and cpu_collision), 10
// received_rps (2.6.35), 11 flow_limit_count (3.11), 12 backlog length (5.10), 13 CPU id
// (5.10), 14 input_pkt_queue and 15 process_queue lengths (6.4). Older and vendor kernels print
// 9 to 11 columns; future ones may append more, which are ignored.
//
// The file shows the per-CPU softnet_data of the whole host, whichever network namespace's
// /proc/net it is read from.
package softnet

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/droptrace/droptrace/internal/fieldscan"
)

// CPU is one line of softnet_stat.
type CPU struct {
	// CPU is column 13 when present. Without it, it is the line index: the kernel prints no
	// line for an offline CPU, so that guess is wrong from the first offline CPU on.
	// CPUFromKernel says which of the two it is.
	CPU           int
	CPUFromKernel bool
	Processed     uint32
	Dropped       uint32
	TimeSqueeze   uint32
	ReceivedRPS   uint32 // 0 when the column is absent (Columns < 10)
	FlowLimit     uint32 // 0 when the column is absent (Columns < 11)
	BacklogLen    uint32 // 0 when the column is absent (Columns < 12)
}

// Table is a parsed softnet_stat.
type Table struct {
	// Columns is the number of fields on every line: it tells which of the zero-valued
	// CPU fields mean "zero" and which mean "this kernel does not report it".
	Columns int
	CPUs    []CPU
}

// MinColumns is the narrowest layout accepted: processed, dropped, time_squeeze and the six
// fields that were fastroute and cpu_collision, printed by every kernel since 2.6.
const MinColumns = 9

// Column numbers (1-based, as in the kernel's seq_printf) of the fields Parse keeps.
const (
	colProcessed   = 1
	colDropped     = 2
	colTimeSqueeze = 3
	colReceivedRPS = 10
	colFlowLimit   = 11
	colBacklogLen  = 12
	colCPU         = 13
)

// Parse reads softnet_stat. Every line must have the same number of columns, at least
// MinColumns; blank lines are skipped.
func Parse(r io.Reader) (Table, error) {
	var t Table
	sc := fieldscan.New(r)
	seen := map[int]int{}
	for sc.Scan() {
		line, fields := sc.Line(), sc.Fields()
		if len(fields) < MinColumns {
			return Table{}, fmt.Errorf("softnet_stat line %d: %d fields, want at least %d", line, len(fields), MinColumns)
		}
		if t.Columns == 0 {
			t.Columns = len(fields)
		} else if len(fields) != t.Columns {
			return Table{}, fmt.Errorf("softnet_stat line %d: %d fields, earlier lines have %d", line, len(fields), t.Columns)
		}
		// Columns past colCPU are not kept, but a malformed one still means the line is not
		// what the kernel printed, so every field is checked.
		var v [colCPU]uint32
		for i, f := range fields {
			n, err := strconv.ParseUint(f, 16, 32)
			if err != nil {
				what := "not a hexadecimal number"
				if errors.Is(err, strconv.ErrRange) {
					what = "wider than the kernel's 32-bit %08x"
				}
				return Table{}, fmt.Errorf("softnet_stat line %d: field %d %q: %s", line, i+1, f, what)
			}
			if i < len(v) {
				v[i] = uint32(n)
			}
		}
		c := CPU{
			CPU:         len(t.CPUs),
			Processed:   v[colProcessed-1],
			Dropped:     v[colDropped-1],
			TimeSqueeze: v[colTimeSqueeze-1],
			ReceivedRPS: v[colReceivedRPS-1],
			FlowLimit:   v[colFlowLimit-1],
			BacklogLen:  v[colBacklogLen-1],
		}
		if t.Columns >= colCPU {
			c.CPU, c.CPUFromKernel = int(v[colCPU-1]), true
		}
		if prev, dup := seen[c.CPU]; dup {
			return Table{}, fmt.Errorf("softnet_stat line %d: CPU %d already on line %d", line, c.CPU, prev)
		}
		seen[c.CPU] = line
		t.CPUs = append(t.CPUs, c)
	}
	if err := sc.Err(); err != nil {
		return Table{}, fmt.Errorf("read softnet_stat after line %d: %w", sc.Line(), err)
	}
	if len(t.CPUs) == 0 {
		return Table{}, errors.New("softnet_stat: no CPU lines, want one per online CPU")
	}
	return t, nil
}

// IDsFromKernel says whether the CPU ids are the kernel's (column 13) rather than line
// indexes.
func (t Table) IDsFromKernel() bool {
	return len(t.CPUs) > 0 && t.CPUs[0].CPUFromKernel
}

// Delta32 is cur-prev for a 32-bit kernel counter that may have wrapped (once) in between.
// Two wraps are indistinguishable from none; sampling often enough is the caller's part.
func Delta32(prev, cur uint32) uint64 {
	return uint64(cur - prev)
}

// CPUDelta is one CPU's change between two samples.
type CPUDelta struct {
	CPU int
	// Valid is false when there is no trustworthy baseline: the CPU had no line in the
	// earlier sample (it came online), or the ids are line indexes and the number of lines
	// changed (a CPU went on- or offline, so lines no longer map to the same CPUs). Inventing
	// a baseline would report a CPU's whole history, or another CPU's, as one interval.
	Valid                                                   bool
	Processed, Dropped, TimeSqueeze, ReceivedRPS, FlowLimit uint64
	BacklogLen                                              uint32 // current queue length, not a delta
}

// Sub matches CPUs by id and returns their deltas sorted by CPU. CPUs that went offline are
// left out: they have no current value.
func Sub(prev, cur Table) []CPUDelta {
	byID := make(map[int]CPU, len(prev.CPUs))
	for _, c := range prev.CPUs {
		byID[c.CPU] = c
	}
	guessed := !prev.IDsFromKernel() || !cur.IDsFromKernel()
	shifted := guessed && len(prev.CPUs) != len(cur.CPUs)
	out := make([]CPUDelta, 0, len(cur.CPUs))
	for _, c := range cur.CPUs {
		p, ok := byID[c.CPU]
		d := CPUDelta{CPU: c.CPU, Valid: ok && !shifted, BacklogLen: c.BacklogLen}
		if d.Valid {
			d.Processed = Delta32(p.Processed, c.Processed)
			d.Dropped = Delta32(p.Dropped, c.Dropped)
			d.TimeSqueeze = Delta32(p.TimeSqueeze, c.TimeSqueeze)
			d.ReceivedRPS = Delta32(p.ReceivedRPS, c.ReceivedRPS)
			d.FlowLimit = Delta32(p.FlowLimit, c.FlowLimit)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CPU < out[j].CPU })
	return out
}
