// SPDX-License-Identifier: Apache-2.0

// Package probe finds out what droptrace can do on this host: which tracepoints attach and
// how, the kernel's HZ, whether drop reasons can be named, and so the mode a session runs in.
// A session starts from it and `droptrace doctor` reports it, so the two cannot disagree.
package probe

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/kallsyms"
	"github.com/droptrace/droptrace/internal/locreason"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Where HZ came from.
const (
	HZKconfig  = "kconfig"  // CONFIG_HZ in /proc/config.gz or /boot/config-$(uname -r)
	HZMeasured = "measured" // jiffies read twice with BPF (tracer.MeasureHZ)
)

// Host is what this kernel and these privileges allow.
type Host struct {
	// HZ is CONFIG_HZ, 0 when unknown (HZErr says why): net_rx_action's time limit is in
	// jiffies, so time squeezes are predicted only when it is known.
	HZ       int
	HZSource string // HZKconfig or HZMeasured; "" when unknown
	HZErr    error
	// Reasons names drop reasons from this kernel's BTF; ReasonsErr wraps
	// dropreason.ErrNoEnum on kernels without them (before 5.17).
	Reasons    *dropreason.Table
	ReasonsErr error
	// Inferred are, on a kernel whose enum lacks reasons a location names (5.17's enum, and
	// the 5.15 stable series that carries it), those reasons: drops the kernel passes as
	// NOT_SPECIFIED are named from their location (locreason.Inferred). Nil elsewhere.
	Inferred []string
	// Syms are the kernel's text symbols (drop locations, the functions named by location),
	// read once for the probe and its caller; nil with SymsErr when /proc/kallsyms hides them.
	Syms    *kallsyms.Symbols
	SymsErr error
	// Probes says how each tracepoint attached, or why not; none when no tracer was opened.
	Probes []tracer.Probe
	// TraceErr says why no program attached (it wraps tracer.ErrNoTracing); nil when some did
	// or when no tracer was asked for.
	TraceErr error
	// Mode is record.ModeFull when a tracer is open, else record.ModeCountersOnly.
	Mode string
}

// Open probes the host whose /proc and /sys are fsys and, unless countersOnly, opens a tracer
// with opts and the HZ found (opts.HZ is ignored). The tracer is nil exactly when Host.Mode is
// record.ModeCountersOnly; the caller closes it.
func Open(fsys hostfs.FS, opts tracer.Options, countersOnly bool) (Host, *tracer.Tracer) {
	var h Host
	h.HZ, h.HZSource, h.HZErr = HZ(fsys)
	h.Reasons, h.ReasonsErr = dropreason.Load()
	h.Inferred = locreason.Inferred(h.Reasons)
	// Read once, and after the tracer is open unless the socket functions' ranges are needed
	// for it: loading the programs parses the kernel's BTF, and parsing /proc/kallsyms beside
	// that raises the peak memory of start-up.
	loaded := false
	loadSyms := func() {
		if !loaded {
			loaded = true
			h.Syms, h.SymsErr = kallsyms.Load(fsys)
		}
	}
	var tr *tracer.Tracer
	if !countersOnly {
		opts.HZ = h.HZ
		opts.SockReasons, opts.SockFuncs = h.sockCounting(func() []tracer.FuncRange { loadSyms(); return sockFuncs(h.Syms) })
		var err error
		if tr, err = tracer.Open(opts); err != nil {
			h.TraceErr, tr = err, nil
		} else {
			h.Probes = tr.Probes()
		}
	}
	loadSyms()
	h.Mode = mode(tr != nil)
	return h, tr
}

// sockCounting is what BPF counts by socket: the kernel's socket-level reasons, and where drops
// are named from their location (no enum, or one that lacks reasons a location names: there
// its NOT_SPECIFIED, 0, is named so) the call sites in the socket-level functions, for reason 0.
func (h Host) sockCounting(funcs func() []tracer.FuncRange) ([]uint32, []tracer.FuncRange) {
	var codes []uint32
	if h.Reasons != nil {
		codes = h.Reasons.Codes(dropreason.SocketLevel)
	}
	if h.Inferred != nil || errors.Is(h.ReasonsErr, dropreason.ErrNoEnum) {
		return codes, funcs()
	}
	return codes, nil
}

// sockFuncs are the text of the functions whose drops are socket-level, on a kernel without
// drop reasons: BPF counts their drops by socket and call site. None without kallsyms.
func sockFuncs(syms *kallsyms.Symbols) []tracer.FuncRange {
	if syms == nil {
		return nil
	}
	var out []tracer.FuncRange
	for _, fn := range locreason.SocketFunctions() {
		if start, end, ok := syms.Func(fn); ok && len(out) < tracer.MaxSockFuncs {
			out = append(out, tracer.FuncRange{Start: start, End: end})
		}
	}
	return out
}

func mode(tracing bool) string {
	if tracing {
		return record.ModeFull
	}
	return record.ModeCountersOnly
}

// HZ finds CONFIG_HZ from the running kernel's config under fsys, else, when no config says,
// measures jiffies against the clock with a BPF program.
func HZ(fsys hostfs.FS) (int, string, error) {
	return detectHZ(func() (int, error) { return sysctl.HZ(fsys, KernelRelease()) },
		func() (int, error) { return tracer.MeasureHZ(100 * time.Millisecond) })
}

// KernelRelease is the running kernel's release (uname -r); "" when uname fails.
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func detectHZ(kconfig, measure func() (int, error)) (int, string, error) {
	hz, err := kconfig()
	if err == nil {
		return hz, HZKconfig, nil
	}
	if !errors.Is(err, sysctl.ErrHZUnknown) {
		return 0, "", err
	}
	hz, merr := measure()
	if merr != nil {
		return 0, "", fmt.Errorf("%w; measuring it with BPF failed: %w", err, merr)
	}
	return hz, HZMeasured, nil
}
