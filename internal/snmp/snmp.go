// SPDX-License-Identifier: Apache-2.0

// Package snmp parses the per-network-namespace protocol counters: /proc/net/snmp and
// /proc/net/netstat (pairs of a header line and a value line with the same prefix) and
// /proc/net/snmp6 (one "name value" per line).
package snmp

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Counters maps group ("Udp", "TcpExt", "Udp6") to field to raw value. Negative values (Tcp
// MaxConn is -1) are kept as their two's complement so that deltas stay uint64 arithmetic.
type Counters map[string]map[string]uint64

func parseValue(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseInt(s, 10, 64)
		return uint64(v), err
	}
	return strconv.ParseUint(s, 10, 64)
}

// Parse reads /proc/net/snmp or /proc/net/netstat. The header line of a pair names the fields;
// the next line with the same prefix holds their values.
func Parse(r io.Reader) (Counters, error) {
	c := Counters{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	var header []string
	var headerLine int
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		prefix, rest, ok := strings.Cut(text, ":")
		if !ok || prefix == "" || strings.ContainsAny(prefix, " \t") {
			return nil, fmt.Errorf("snmp line %d: want \"Group: ...\", got %q", line, clip(text))
		}
		fields := strings.Fields(rest)
		if header == nil {
			header = append([]string{prefix}, fields...)
			headerLine = line
			continue
		}
		if prefix != header[0] {
			return nil, fmt.Errorf("snmp line %d: values for %q follow the header of %q on line %d", line, prefix, header[0], headerLine)
		}
		if len(fields) != len(header)-1 {
			return nil, fmt.Errorf("snmp lines %d and %d: %s has %d names but %d values", headerLine, line, prefix, len(header)-1, len(fields))
		}
		g := c[prefix]
		if g == nil {
			g = make(map[string]uint64, len(fields))
			c[prefix] = g
		}
		for i, f := range fields {
			v, err := parseValue(f)
			if err != nil {
				return nil, fmt.Errorf("snmp line %d: %s %s = %q: not a number", line, prefix, header[i+1], f)
			}
			g[header[i+1]] = v
		}
		header = nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read snmp: %w", err)
	}
	if header != nil {
		return nil, fmt.Errorf("snmp line %d: header of %q has no value line", headerLine, header[0])
	}
	return c, nil
}

// ParseSNMP6 reads /proc/net/snmp6. Names split into group and field at the first '6':
// "Udp6RcvbufErrors" is Udp6 RcvbufErrors, "Icmp6InType1" is Icmp6 InType1.
func ParseSNMP6(r io.Reader) (Counters, error) {
	c := Counters{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("snmp6 line %d: want \"name value\", got %d fields", line, len(fields))
		}
		i := strings.IndexByte(fields[0], '6')
		if i <= 0 || i == len(fields[0])-1 {
			return nil, fmt.Errorf("snmp6 line %d: name %q has no group ending in 6", line, clip(fields[0]))
		}
		v, err := parseValue(fields[1])
		if err != nil {
			return nil, fmt.Errorf("snmp6 line %d: %s = %q: not a number", line, fields[0], clip(fields[1]))
		}
		group, field := fields[0][:i+1], fields[0][i+1:]
		if c[group] == nil {
			c[group] = map[string]uint64{}
		}
		c[group][field] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read snmp6: %w", err)
	}
	return c, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Merge adds o's groups to c (snmp, netstat and snmp6 have distinct group names).
func (c Counters) Merge(o Counters) {
	for g, fs := range o {
		if c[g] == nil {
			c[g] = make(map[string]uint64, len(fs))
		}
		for f, v := range fs {
			c[g][f] = v
		}
	}
}

// Get returns one counter.
func (c Counters) Get(group, field string) (uint64, bool) {
	v, ok := c[group][field]
	return v, ok
}

// Sub returns cur-prev for the given groups (all when none are given). Kernel counters are
// unsigned longs, so uint64 subtraction gives the right delta across a wrap; fields missing
// from prev have no baseline and are left out.
func Sub(prev, cur Counters, groups ...string) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	pick := func(g string) {
		fs, ok := cur[g]
		if !ok {
			return
		}
		d := make(map[string]int64, len(fs))
		for f, v := range fs {
			if p, ok := prev[g][f]; ok {
				d[f] = int64(v - p)
			}
		}
		out[g] = d
	}
	if len(groups) == 0 {
		for g := range cur {
			pick(g)
		}
	}
	for _, g := range groups {
		pick(g)
	}
	return out
}
