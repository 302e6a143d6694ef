// SPDX-License-Identifier: Apache-2.0

// Package softirqs parses /proc/softirqs: the kernel's own count of softirq runs per CPU
// (kernel/softirq.c increments it right before trace_softirq_entry), which tells how many
// NET_RX runs the BPF programs did not see.
package softirqs

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Table maps a softirq name ("NET_RX") to CPU id to runs. The header has one column per
// possible CPU, named CPU<id>.
type Table map[string]map[int]uint64

// Parse reads /proc/softirqs.
func Parse(r io.Reader) (Table, error) {
	sc := bufio.NewScanner(r)
	line := 0
	var cpus []int
	t := Table{}
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if cpus == nil {
			for _, f := range fields {
				id, err := strconv.Atoi(strings.TrimPrefix(f, "CPU"))
				if err != nil || !strings.HasPrefix(f, "CPU") || id < 0 {
					return nil, fmt.Errorf("softirqs line %d: header column %q is not CPU<n>", line, f)
				}
				cpus = append(cpus, id)
			}
			continue
		}
		name, ok := strings.CutSuffix(fields[0], ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("softirqs line %d: want \"NAME: counts...\", got %q", line, fields[0])
		}
		if len(fields)-1 != len(cpus) {
			return nil, fmt.Errorf("softirqs line %d: %s has %d counts for %d CPUs", line, name, len(fields)-1, len(cpus))
		}
		row := make(map[int]uint64, len(cpus))
		for i, f := range fields[1:] {
			v, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("softirqs line %d: %s CPU%d = %q: not a 32-bit count", line, name, cpus[i], f)
			}
			row[cpus[i]] = v
		}
		t[name] = row
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read softirqs: %w", err)
	}
	if cpus == nil {
		return nil, fmt.Errorf("softirqs: no header line")
	}
	return t, nil
}

// Sub returns one softirq's per-CPU deltas. The counts are printed as unsigned int (%10u),
// so they wrap at 32 bits; CPUs missing from prev are left out.
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
