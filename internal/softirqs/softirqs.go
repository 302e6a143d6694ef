// SPDX-License-Identifier: Apache-2.0

// Package softirqs parses /proc/softirqs: the kernel's own count of softirq runs per CPU
// (kernel/softirq.c increments it right before trace_softirq_entry), which tells how many
// NET_RX runs the BPF programs did not see.
//
// The layout is fs/proc/softirqs.c show_softirqs: a header of "CPU%-8d" for every possible
// CPU, then one "%12s:" row per softirq with a " %10u" count per CPU. Possible CPUs include
// offline ones, so the CPU set differs from /proc/net/softnet_stat, which lists online CPUs
// only: match the two by CPU id.
package softirqs

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/fieldscan"
)

// Table maps a softirq name ("NET_RX") to CPU id to runs.
type Table map[string]map[int]uint64

// Parse reads /proc/softirqs. Blank lines are skipped.
func Parse(r io.Reader) (Table, error) {
	sc := fieldscan.New(r)
	// One header column per possible CPU: 11 bytes each, so a few thousand CPUs pass 64 KiB.
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var cpus []int
	rowLine := map[string]int{}
	t := Table{}
	for sc.Scan() {
		line, fields := sc.Line(), sc.Fields()
		if cpus == nil {
			var err error
			if cpus, err = parseHeader(fields); err != nil {
				return nil, fmt.Errorf("softirqs line %d: %w", line, err)
			}
			continue
		}
		name, ok := strings.CutSuffix(fields[0], ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("softirqs line %d: want \"NAME: counts...\", got %q", line, fieldscan.Clip(fields[0]))
		}
		if prev, dup := rowLine[name]; dup {
			return nil, fmt.Errorf("softirqs line %d: %s already on line %d", line, name, prev)
		}
		rowLine[name] = line
		if len(fields)-1 != len(cpus) {
			return nil, fmt.Errorf("softirqs line %d: %s has %d counts for the header's %d CPUs", line, name, len(fields)-1, len(cpus))
		}
		row := make(map[int]uint64, len(cpus))
		for i, f := range fields[1:] {
			v, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				what := "not a decimal count"
				if errors.Is(err, strconv.ErrRange) {
					what = "wider than the kernel's 32-bit %u"
				}
				return nil, fmt.Errorf("softirqs line %d: %s CPU%d = %q: %s", line, name, cpus[i], fieldscan.Clip(f), what)
			}
			row[cpus[i]] = v
		}
		t[name] = row
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read softirqs after line %d: %w", sc.Line(), err)
	}
	if cpus == nil {
		return nil, errors.New(`softirqs: no header line, want "CPU0 CPU1 ..."`)
	}
	if len(t) == 0 {
		return nil, errors.New(`softirqs: header but no rows, want "NAME: counts..." lines`)
	}
	return t, nil
}

// parseHeader reads the CPU ids from "CPU0 CPU1 ...". The ids are taken from the names, not
// the positions: with a sparse cpu_possible_mask the columns skip ids.
func parseHeader(fields []string) ([]int, error) {
	cpus := make([]int, 0, len(fields))
	seen := make(map[int]bool, len(fields))
	for _, f := range fields {
		digits, ok := strings.CutPrefix(f, "CPU")
		if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
			return nil, fmt.Errorf("header column %q is not CPU<n>", fieldscan.Clip(f))
		}
		id, err := strconv.Atoi(digits)
		if err != nil {
			return nil, fmt.Errorf("header column %q: CPU id out of range", fieldscan.Clip(f))
		}
		if seen[id] {
			return nil, fmt.Errorf("header names CPU %d twice", id)
		}
		seen[id] = true
		cpus = append(cpus, id)
	}
	return cpus, nil
}

// Sub returns one softirq's per-CPU deltas. The counts are printed as unsigned int (%10u),
// so they wrap at 32 bits and are subtracted as such (once at most between samples; values
// above 32 bits, which Parse never returns, are truncated). CPUs missing from prev have no
// baseline and are left out.
func Sub(prev, cur Table, name string) map[int]uint64 {
	out := map[int]uint64{}
	for cpu, v := range cur[name] {
		p, ok := prev[name][cpu]
		if !ok {
			continue
		}
		out[cpu] = uint64(uint32(v) - uint32(p))
	}
	return out
}
