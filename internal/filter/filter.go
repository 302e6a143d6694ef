// SPDX-License-Identifier: Apache-2.0

// Package filter turns the event filter flags (--reason, --netns, --iface, --port, --proto)
// into what BPF matches (tracer.Filter) and what the start record says (record.Filters),
// resolving names once, at start: reasons through this kernel's BTF, namespaces and devices
// through the running system. Every value that cannot be resolved is an *Error naming its
// flag and what was expected.
package filter

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/assemble"
	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/locreason"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Spec is the filter flags as given, each repeatable.
type Spec struct {
	Reasons, Netns, Ifaces, Ports, Protos []string
}

// Active says whether any filter flag was given.
func (s Spec) Active() bool {
	return len(s.Reasons)+len(s.Netns)+len(s.Ifaces)+len(s.Ports)+len(s.Protos) > 0
}

// Filter is a resolved Spec.
type Filter struct {
	BPF    tracer.Filter
	Record *record.Filters // nil when no filter is set
}

// Env is what resolving needs of the system; the zero Env resolves against the host.
type Env struct {
	// Reasons loads this kernel's drop reasons (dropreason.Load when nil); called only when
	// --reason is given.
	Reasons func() (*dropreason.Table, error)
	// Namespaces finds network namespaces (Host when nil).
	Namespaces Namespaces
}

// Error is a filter value that cannot be used: what the user must change.
type Error struct {
	Flag, Value string
	Want        string // what was expected, and what to do
}

func (e *Error) Error() string { return fmt.Sprintf("%s %q: %s", e.Flag, e.Value, e.Want) }

func bad(flag, value, format string, a ...any) error {
	return &Error{Flag: flag, Value: value, Want: fmt.Sprintf(format, a...)}
}

// Resolve checks and resolves every value of s. The error joins one *Error per bad value.
func Resolve(s Spec, env Env) (Filter, error) {
	if !s.Active() {
		return Filter{}, nil
	}
	if env.Reasons == nil {
		env.Reasons = dropreason.Load
	}
	if env.Namespaces == nil {
		env.Namespaces = Host{}
	}
	var f Filter
	rec := &record.Filters{}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(resolveReasons(s.Reasons, env.Reasons, &f.BPF, rec))
	add(resolvePlaces(s.Netns, s.Ifaces, env.Namespaces, &f.BPF, rec))
	add(resolvePorts(s.Ports, &f.BPF, rec))
	add(resolveProtos(s.Protos, &f.BPF, rec))
	if len(errs) > 0 {
		return Filter{}, errors.Join(errs...)
	}
	f.Record = rec
	return f, nil
}

// tooMany is the error of a flag given more distinct values than BPF holds.
func tooMany(flag string, values []string, max int) error {
	if len(values) <= max {
		return nil
	}
	return bad(flag, strings.Join(values, ","), "at most %d values (BPF matches a bounded list)", max)
}

const reasonPrefix = "SKB_DROP_REASON_"

func resolveReasons(names []string, load func() (*dropreason.Table, error), f *tracer.Filter, rec *record.Filters) error {
	if len(names) == 0 {
		return nil
	}
	names = dedupe(names)
	if err := tooMany("--reason", names, tracer.MaxFilterReasons); err != nil {
		return err
	}
	t, err := load()
	if err != nil {
		return bad("--reason", strings.Join(names, ","), "drop reasons are not available on this kernel (%v); filter with --port, --proto, --netns or --iface", err)
	}
	// Where the enum is short, some names are the drop's location's, not the kernel's: BPF,
	// which filters on the kernel's code, cannot select them, as it cannot on kernels
	// without the enum.
	inferred := locreason.Inferred(t)
	var errs []error
	for _, n := range names {
		// As droptrace prints them (NO_SOCKET), or as the kernel spells them.
		name := strings.TrimPrefix(strings.ToUpper(n), reasonPrefix)
		if slices.Contains(inferred, name) {
			errs = append(errs, bad("--reason", n, "this kernel passes no %s (its enum skb_drop_reason is 5.17's): droptrace names those drops from their location, which the filter cannot select; filter with --port, --proto, --netns or --iface", name))
			continue
		}
		if inferred != nil && name == "NOT_SPECIFIED" {
			errs = append(errs, bad("--reason", n, "on this kernel droptrace names NOT_SPECIFIED drops from their location where it gives a reason (%s), so the filter would select drops recorded under other names; filter with --port, --proto, --netns or --iface", strings.Join(inferred, ", ")))
			continue
		}
		code, ok := t.Code(name)
		if !ok {
			want := "want a drop reason as droptrace prints it (e.g. NO_SOCKET, SOCKET_RCVBUFF)"
			if c := closest(name, t.Names(), 5); len(c) > 0 {
				want += "; close: " + strings.Join(c, ", ")
			}
			errs = append(errs, bad("--reason", n, "%s", want))
			continue
		}
		f.Reasons = append(f.Reasons, code)
		rec.Reasons = append(rec.Reasons, t.Name(code))
	}
	return errors.Join(errs...)
}

func resolvePorts(values []string, f *tracer.Filter, rec *record.Filters) error {
	values = dedupe(values)
	if err := tooMany("--port", values, tracer.MaxFilterPorts); err != nil {
		return err
	}
	var errs []error
	for _, v := range values {
		p, err := strconv.ParseUint(v, 10, 16)
		if err != nil || p == 0 {
			errs = append(errs, bad("--port", v, "want a TCP, UDP or UDP-Lite port from 1 to 65535"))
			continue
		}
		f.Ports = append(f.Ports, uint16(p))
		rec.Ports = append(rec.Ports, uint16(p))
	}
	return errors.Join(errs...)
}

// protoNames are the protocols --proto takes by name, as drop records name them.
var protoNames = []string{"tcp", "udp", "icmp", "icmpv6", "sctp", "udplite"}

func resolveProtos(values []string, f *tracer.Filter, rec *record.Filters) error {
	var errs []error
	seen := map[uint8]bool{}
	for _, v := range values {
		n, ok := protoNumber(strings.ToLower(v))
		if !ok {
			errs = append(errs, bad("--proto", v, "want %s, or an IP protocol number from 0 to 255", strings.Join(protoNames, ", ")))
			continue
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		f.Protos = append(f.Protos, n)
		rec.Protos = append(rec.Protos, assemble.L4Name(tracer.EthIPv4, uint16(n))) // a number when unnamed
	}
	return errors.Join(errs...)
}

// protoNumber is the IP protocol number of a name in protoNames (as drop records spell it) or
// of a number.
func protoNumber(v string) (uint8, bool) {
	if n, err := strconv.ParseUint(v, 10, 8); err == nil {
		return uint8(n), true
	}
	if !slices.Contains(protoNames, v) {
		return 0, false
	}
	for n := range 256 {
		if assemble.L4Name(tracer.EthIPv4, uint16(n)) == v {
			return uint8(n), true
		}
	}
	return 0, false
}

func dedupe(values []string) []string {
	var out []string
	for _, v := range values {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// closest are up to n names nearest to name by edit distance, nearest first; names sharing a
// word with it count as near.
func closest(name string, names []string, n int) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, c := range names {
		d := editDistance(name, c)
		if strings.Contains(c, name) || strings.Contains(name, c) {
			d = min(d, 2)
		}
		if d <= max(3, len(name)/3) {
			cs = append(cs, cand{c, d})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var out []string
	for _, c := range cs[:min(n, len(cs))] {
		out = append(out, c.name)
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
