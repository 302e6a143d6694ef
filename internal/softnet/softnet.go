// SPDX-License-Identifier: Apache-2.0

// Package softnet parses /proc/net/softnet_stat.
//
// The layout is net/core/net-procfs.c softnet_seq_show: one line per online CPU, every field
// "%08x" (32-bit counters that wrap). Columns: 1 processed, 2 dropped (backlog or flow-limit
// overflow), 3 time_squeeze, 4-9 always zero (were fastroute and cpu_collision), 10
// received_rps (2.6.35), 11 flow_limit_count (3.11), 12 backlog length (5.10), 13 CPU id
// (5.10), 14 input_pkt_queue and 15 process_queue lengths (6.4). Older and vendor kernels print
// 9 to 11 columns; future ones may append more.
package softnet

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// CPU is one line of softnet_stat.
type CPU struct {
	// CPU is column 13 when present. Without it, it is the line index, which is wrong when
	// CPUs are offline (they have no line): CPUFromKernel says which.
	CPU           int
	CPUFromKernel bool
	Processed     uint32
	Dropped       uint32
	TimeSqueeze   uint32
	ReceivedRPS   uint32
	FlowLimit     uint32
	BacklogLen    uint32 // 0 when the column is absent (Columns < 12)
}

// Table is a parsed softnet_stat.
type Table struct {
	Columns int
	CPUs    []CPU
}

const minColumns = 9

// Parse reads softnet_stat. Every line must have the same number of columns (9 or more).
func Parse(r io.Reader) (Table, error) {
	var t Table
	sc := bufio.NewScanner(r)
	seen := map[int]int{}
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) < minColumns {
			return Table{}, fmt.Errorf("softnet_stat line %d: %d fields, want at least %d", line, len(fields), minColumns)
		}
		if t.Columns == 0 {
			t.Columns = len(fields)
		} else if len(fields) != t.Columns {
			return Table{}, fmt.Errorf("softnet_stat line %d: %d fields, earlier lines have %d", line, len(fields), t.Columns)
		}
		v := make([]uint32, len(fields))
		for i, f := range fields {
			n, err := strconv.ParseUint(f, 16, 32)
			if err != nil {
				return Table{}, fmt.Errorf("softnet_stat line %d: field %d %q: not a 32-bit hexadecimal number", line, i+1, f)
			}
			v[i] = uint32(n)
		}
		c := CPU{CPU: len(t.CPUs), Processed: v[0], Dropped: v[1], TimeSqueeze: v[2]}
		if len(v) >= 10 {
			c.ReceivedRPS = v[9]
		}
		if len(v) >= 11 {
			c.FlowLimit = v[10]
		}
		if len(v) >= 12 {
			c.BacklogLen = v[11]
		}
		if len(v) >= 13 {
			c.CPU, c.CPUFromKernel = int(v[12]), true
		}
		if prev, dup := seen[c.CPU]; dup {
			return Table{}, fmt.Errorf("softnet_stat line %d: CPU %d already on line %d", line, c.CPU, prev)
		}
		seen[c.CPU] = line
		t.CPUs = append(t.CPUs, c)
	}
	if err := sc.Err(); err != nil {
		return Table{}, fmt.Errorf("read softnet_stat: %w", err)
	}
	if len(t.CPUs) == 0 {
		return Table{}, fmt.Errorf("softnet_stat: no CPU lines")
	}
	return t, nil
}

// Delta32 is cur-prev for a 32-bit kernel counter that may have wrapped (once) in between.
func Delta32(prev, cur uint32) uint64 {
	return uint64(cur - prev)
}

// CPUDelta is one CPU's change between two samples.
type CPUDelta struct {
	CPU int
	// Valid is false for a CPU with no line in the earlier sample (it came online): there is
	// no baseline, and inventing one would report its whole history as one interval.
	Valid                                                   bool
	Processed, Dropped, TimeSqueeze, ReceivedRPS, FlowLimit uint64
	BacklogLen                                              uint32 // current queue length, not a delta
}

// Sub matches CPUs by id and returns their deltas sorted by CPU. CPUs that went offline are
// left out.
func Sub(prev, cur Table) []CPUDelta {
	byID := make(map[int]CPU, len(prev.CPUs))
	for _, c := range prev.CPUs {
		byID[c.CPU] = c
	}
	out := make([]CPUDelta, 0, len(cur.CPUs))
	for _, c := range cur.CPUs {
		p, ok := byID[c.CPU]
		d := CPUDelta{CPU: c.CPU, Valid: ok, BacklogLen: c.BacklogLen}
		if ok {
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
