// SPDX-License-Identifier: Apache-2.0

// Package snmp parses the per-network-namespace protocol counters: /proc/net/snmp and
// /proc/net/netstat (pairs of a header line and a value line with the same prefix) and
// /proc/net/snmp6 (one "name value" per line).
//
// The header line names the fields and the value line holds their numbers, so a line-based
// grep for a counter name finds the header, never the number: values are only ever taken
// from the value line, by the position of their name in the header.
package snmp

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/droptrace/droptrace/internal/fieldscan"
)

// Counters maps group ("Udp", "TcpExt", "Udp6") to field to raw value. Negative values (Tcp
// MaxConn is -1) are kept as their two's complement so that deltas stay uint64 arithmetic.
type Counters map[string]map[string]uint64

// parseValue reads a decimal counter. Only Tcp MaxConn is printed signed ("%ld"); every
// other value is "%lu", which a signed parse would reject above 1<<63.
func parseValue(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseInt(s, 10, 64)
		return uint64(v), err
	}
	return strconv.ParseUint(s, 10, 64)
}

func valueProblem(err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return "out of 64-bit range"
	}
	return "not a decimal number"
}

// fileKind names the file in errors. Parse cannot know which file it reads, but every group
// of /proc/net/netstat ends in "Ext" (TcpExt, IpExt, MPTcpExt) and none of /proc/net/snmp
// does, so the first group tells.
func fileKind(firstGroup string) string {
	if strings.HasSuffix(firstGroup, "Ext") {
		return "netstat"
	}
	return "snmp"
}

// Parse reads /proc/net/snmp or /proc/net/netstat. The header line of a pair names the fields;
// the next line, with the same prefix, holds their values. A group may come in several pairs
// (IcmpMsg prints at most 16 types per pair); their fields are combined.
func Parse(r io.Reader) (Counters, error) { return ParseGroups(r, nil) }

// ParseGroups is Parse keeping only the named groups (every group when groups is nil), which
// costs a fraction as much per namespace and interval. The other groups' header and value
// lines are still paired, but their names and values are not checked.
func ParseGroups(r io.Reader, groups []string) (Counters, error) {
	c := Counters{}
	pairs := 0
	sc := fieldscan.New(r)
	// TcpExt and MPTcpExt headers are a few KiB and grow with every kernel release. The
	// buffer is reused: namespaces' files are parsed every interval, and a new buffer each
	// time was most of droptrace's allocation (and GC) on hosts with many.
	buf := lineBufs.Get().(*[]byte)
	defer lineBufs.Put(buf)
	sc.Buffer(*buf, 1<<20)
	kind := "snmp/netstat"
	var header []string // group, then field names; nil when a header line is expected
	var headerLine int
	for sc.Scan() {
		line, text := sc.Line(), sc.Text()
		prefix, rest, ok := strings.Cut(text, ":")
		if !ok || prefix == "" || strings.ContainsAny(prefix, " \t") {
			return nil, fmt.Errorf("%s line %d: want \"Group: fields...\", got %q", kind, line, fieldscan.Clip(text))
		}
		if header == nil && headerLine == 0 {
			kind = fileKind(prefix)
		}
		if !keeps(groups, prefix) || header != nil && header[0] != prefix && !keeps(groups, header[0]) {
			if header == nil {
				header, headerLine = []string{prefix}, line
				continue
			}
			if prefix != header[0] {
				return nil, fmt.Errorf("%s line %d: values for %q follow the header of %q on line %d", kind, line, prefix, header[0], headerLine)
			}
			header = nil
			pairs++
			continue
		}
		fields := strings.Fields(rest)
		if header == nil {
			if len(fields) == 0 {
				return nil, fmt.Errorf("%s line %d: header of %q names no fields", kind, line, prefix)
			}
			// Every kernel field name starts with a letter. A number where a name belongs
			// means the pairs are out of step (a header line is missing), and pairing on
			// would read values as names.
			for i, f := range fields {
				if !isLetter(f[0]) {
					hint := ""
					if i == 0 {
						hint = " (header line missing?)"
					}
					return nil, fmt.Errorf("%s line %d: %s header field %d is %q, want a name%s", kind, line, prefix, i+1, fieldscan.Clip(f), hint)
				}
			}
			header = append([]string{prefix}, fields...)
			headerLine = line
			continue
		}
		if prefix != header[0] {
			return nil, fmt.Errorf("%s line %d: values for %q follow the header of %q on line %d", kind, line, prefix, header[0], headerLine)
		}
		if len(fields) != len(header)-1 {
			return nil, fmt.Errorf("%s lines %d and %d: %s has %d names but %d values", kind, headerLine, line, prefix, len(header)-1, len(fields))
		}
		g := c[prefix]
		if g == nil {
			g = make(map[string]uint64, len(fields))
			c[prefix] = g
		}
		for i, f := range fields {
			v, err := parseValue(f)
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %s %s = %q: %s", kind, line, prefix, header[i+1], fieldscan.Clip(f), valueProblem(err))
			}
			g[header[i+1]] = v
		}
		header = nil
		pairs++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s after line %d: %w", kind, sc.Line(), err)
	}
	if header != nil {
		return nil, fmt.Errorf("%s line %d: header of %q has no value line", kind, headerLine, header[0])
	}
	if pairs == 0 {
		return nil, fmt.Errorf("%s: no counters, want \"Group: fields...\" and \"Group: values...\" line pairs", kind)
	}
	return c, nil
}

// keeps says whether group is one of groups, or groups is nil (keep all).
func keeps(groups []string, group string) bool {
	return groups == nil || slices.Contains(groups, group)
}

// lineBufs are Parse's scanner buffers; a scanner never keeps its buffer past the parse,
// since every value taken from a line is copied (strings.Fields, parseValue) before the next.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func isLetter(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// ParseSNMP6 reads /proc/net/snmp6. Names split into group and field at the first '6':
// "Udp6RcvbufErrors" is Udp6 RcvbufErrors, "Icmp6InType1" is Icmp6 InType1.
func ParseSNMP6(r io.Reader) (Counters, error) { return ParseSNMP6Groups(r, nil) }

// ParseSNMP6Groups is ParseSNMP6 keeping only the named groups (every group when groups is
// nil): the other lines are still split into group and field, but not checked further.
func ParseSNMP6Groups(r io.Reader, groups []string) (Counters, error) {
	c := Counters{}
	lines := 0
	sc := fieldscan.New(r)
	seen := map[string]int{}
	for sc.Scan() {
		line, fields := sc.Line(), sc.Fields()
		if len(fields) != 2 {
			return nil, fmt.Errorf("snmp6 line %d: want \"name value\", got %d fields", line, len(fields))
		}
		name := fields[0]
		i := strings.IndexByte(name, '6')
		if i <= 0 || i == len(name)-1 {
			return nil, fmt.Errorf("snmp6 line %d: name %q is not <group>6<field>", line, fieldscan.Clip(name))
		}
		lines++
		group, field := name[:i+1], name[i+1:]
		if !keeps(groups, group) {
			continue
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("snmp6 line %d: %s already on line %d", line, name, prev)
		}
		seen[name] = line
		v, err := parseValue(fields[1])
		if err != nil {
			return nil, fmt.Errorf("snmp6 line %d: %s = %q: %s", line, name, fieldscan.Clip(fields[1]), valueProblem(err))
		}
		if c[group] == nil {
			c[group] = map[string]uint64{}
		}
		c[group][field] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read snmp6 after line %d: %w", sc.Line(), err)
	}
	if lines == 0 {
		return nil, errors.New("snmp6: no counters, want \"name value\" lines")
	}
	return c, nil
}

// Merge adds o's groups to c; o's value wins where both have a field. snmp, netstat and
// snmp6 have distinct group names, so merging the three loses nothing. A group c lacks is
// taken over, not copied (TcpExt's hundred-odd fields, per namespace and read): o is not to
// be changed after.
func (c Counters) Merge(o Counters) {
	for g, fs := range o {
		if c[g] == nil {
			c[g] = fs
			continue
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

// Sub returns cur-prev for the given groups (all when none are given); a group absent from
// cur is left out. Kernel counters are unsigned longs, so uint64 subtraction gives the right
// delta across a wrap, and the int64 result lets gauges (Tcp CurrEstab) go down. A field
// missing from prev has no baseline and is left out, except the per-type ICMP counters (see
// absentMeansZero).
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
			} else if absentMeansZero(prev, g, f) {
				d[f] = int64(v)
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

// absentMeansZero says whether a field missing from prev was zero then rather than unknown.
// The kernel prints IcmpMsg InType<n>/OutType<n> (icmpmsg_put) and Icmp6 InType<n>/OutType<n>
// (snmp6_seq_show_icmpv6msg) only once they are non-zero, so the first ICMP message of a type
// adds a field. That holds only if prev read the same file: its always-printed groups (Icmp
// for snmp, Icmp6's named counters for snmp6) are there.
func absentMeansZero(prev Counters, group, field string) bool {
	switch group {
	case "IcmpMsg":
		if _, ok := prev["Icmp"]; !ok {
			return false
		}
	case "Icmp6":
		if _, ok := prev["Icmp6"]; !ok {
			return false
		}
	default:
		return false
	}
	rest, ok := strings.CutPrefix(field, "In")
	if !ok {
		rest, ok = strings.CutPrefix(field, "Out")
	}
	if !ok {
		return false
	}
	n, ok := strings.CutPrefix(rest, "Type")
	if !ok || n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}
