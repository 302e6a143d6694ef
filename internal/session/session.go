// SPDX-License-Identifier: Apache-2.0

// Package session runs a tracing session: it attaches the tracer (or falls back to counters
// only), samples the kernel every interval (internal/sample), takes the deltas
// (internal/interval), assembles and names the records (internal/assemble, internal/enrich),
// and hands them to sinks (JSON lines, the live view, metrics).
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/assemble"
	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/enrich"
	"github.com/droptrace/droptrace/internal/filter"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/kallsyms"
	"github.com/droptrace/droptrace/internal/locreason"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/pods"
	"github.com/droptrace/droptrace/internal/probe"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sample"
	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Sink receives a session's records. Drop is called from the events goroutine while the
// others run on the session's; a sink must not keep a *record.Drop after Drop returns: the
// events loop reuses it for the next drop. Flush pushes buffered records out; the session
// calls it after the start record and after every interval. A write that fails (a full disk)
// does not end the session: it logs the failure once and goes on; the sink counts what it
// lost, and a sink with Counts (record.Writer) is the count of drop records written. Only a
// FatalError from the first Flush, after the start record, ends the session.
type Sink interface {
	Start(*record.Start) error
	Interval(*record.Interval) error
	Drop(*record.Drop) error
	Summary(*record.Interval) error
	Flush() error
}

// FatalError is a sink's error that must end the session, not be counted as records lost: a
// ready file that cannot be written, say.
type FatalError struct{ Err error }

func (e FatalError) Error() string { return e.Err.Error() }
func (e FatalError) Unwrap() error { return e.Err }

// Config of a session.
type Config struct {
	Interval        time.Duration
	Duration        time.Duration // 0: until ctx is cancelled
	Events          bool
	MaxEventRate    uint32
	RingBufferBytes uint32
	ForceTracepoint bool
	CountersOnly    bool
	// Filter selects the drops streamed as events (it needs Events); everything else counts
	// every drop.
	Filter  filter.Filter
	Version string
	// FS is the filesystem /proc and /sys are read under; the zero FS is the host's.
	FS hostfs.FS
	// RuntimeStateDirs are where container runtimes keep their containers' config.json,
	// under FS, to name pods and containers; nil: pods.DefaultStateDirs.
	RuntimeStateDirs []pods.StateDir
	// Records get every record; Live only start, interval and summary records.
	Records Sink
	Live    Sink
	// Packets, with Events and a Snaplen, gets each dropped packet with its drop record
	// (--pcap); Snaplen is how many of its bytes BPF copies.
	Packets PacketSink
	Snaplen uint32
	Log     *slog.Logger
}

// Session is one tracing session.
type Session struct {
	cfg    Config
	log    *slog.Logger
	tr     *tracer.Tracer // nil in counters-only mode
	src    *sample.Reader
	static assemble.Input // what every record shares: online CPUs, network IRQs
	avail  assemble.Availability
	now    func() time.Time

	start   *record.Start // the settings verdicts are explained against
	names   assemble.Names
	reasons *dropreason.Table
	// locs names drops by location when the kernel passes no reasons (before 5.17).
	locs    *locreason.Namer
	syms    *kallsyms.Symbols
	ifnames *enrich.Ifnames
	owners  *enrich.Owners
	sysctl  *sysctlWatch
	events  *eventWriter
	hz      int

	writeFailing bool          // the latest write of records failed
	summaryRetry time.Duration // how long the summary waits for a failing output
}

// Run traces until the duration elapses or ctx is cancelled, then writes the summary. The
// summary is returned too, for callers that print it.
func Run(ctx context.Context, cfg Config) (*record.Interval, error) {
	s, err := open(cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.run(ctx)
}

func open(cfg Config) (*Session, error) {
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("interval %s: must be positive", cfg.Interval)
	}
	if cfg.Filter.Record != nil && !cfg.Events {
		return nil, errors.New("event filters select drop events: they need Events")
	}
	if cfg.Packets != nil && (!cfg.Events || cfg.Snaplen == 0) {
		return nil, errors.New("a packet sink needs Events and a Snaplen")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Session{cfg: cfg, log: log, now: time.Now, ifnames: &enrich.Ifnames{}, owners: enrich.NewOwners(cfg.FS),
		summaryRetry: summaryRetry}
	podNames := pods.New(cfg.FS, cfg.RuntimeStateDirs, log)
	s.owners.Pods = podNames
	start := &record.Start{
		Header:        record.Header{Type: record.TypeStart},
		SchemaVersion: record.SchemaVersion,
		Version:       cfg.Version,
		Probes:        map[string]string{},
		IntervalMs:    cfg.Interval.Milliseconds(),
		Events:        cfg.Events,
		MaxEventRate:  cfg.MaxEventRate,
		Filters:       cfg.Filter.Record,
	}
	s.start = start
	start.Hostname, _ = os.Hostname()
	start.Kernel = probe.KernelRelease()
	cpus, err := onlineCPUs(cfg.FS)
	if err != nil {
		log.Warn("cannot list online CPUs", "err", err)
	}
	start.CPUs = cpus
	s.static.Online = map[int]bool{}
	for _, c := range cpus {
		s.static.Online[c] = true
	}
	selfNS, err := netns.Self()
	if err == nil {
		start.Netns = uint32(selfNS)
	}

	nc, ncErr := sysctl.On(cfg.FS).ReadNetCore()
	if ncErr != nil {
		log.Warn("cannot read net.core sysctls: squeeze prediction is off", "err", ncErr)
	}
	start.Sysctl = assemble.Sysctl(nc)

	host := s.openTracer(start)
	// Drop reasons come from this kernel's BTF: numbering differs between kernels.
	s.reasons, err = host.Reasons, host.ReasonsErr
	reasonsOK := reconcile.Availability{OK: true}
	noEnum := errors.Is(err, dropreason.ErrNoEnum)
	switch {
	case noEnum:
		reasonsOK = reconcile.Availability{Why: "this kernel has no enum skb_drop_reason (before 5.17): drops are counted without reasons"}
	case err != nil:
		reasonsOK = reconcile.Availability{Why: fmt.Sprintf("cannot decode drop reasons from BTF: %v", err)}
		log.Warn("drop reasons are shown as numbers", "err", err)
	default:
		start.DropReasons = s.reasons.Len()
		start.ReasonSource = record.ReasonSourceKernel
	}
	s.syms, err = host.Syms, host.SymsErr
	if err != nil {
		log.Warn("drop locations are shown as addresses", "err", err)
	}
	locatable := s.syms != nil && s.tr != nil && s.tr.HasDrops()
	switch {
	case noEnum && locatable:
		s.locate(start, record.ReasonSourceLocation, func(n *locreason.Namer) { calibrate(s.tr, n, false, log) })
		reasonsOK = reconcile.Availability{OK: true}
	case noEnum:
		log.Warn(reasonsOK.Why)
	case len(host.Inferred) > 0 && locatable:
		s.locate(start, record.ReasonSourceKernelLocation, func(n *locreason.Namer) { calibrate(s.tr, n, true, log) })
	case len(host.Inferred) > 0:
		log.Warn("this kernel's drop reasons lack some the checks rest on, and drops cannot be named from their location (no kallsyms or no kfree_skb program)",
			"lacking", host.Inferred)
	}

	s.avail.Drops, s.avail.NetRx, s.avail.Predict = s.sources(start, reasonsOK)
	s.checkNames()
	var apply func(sysctl.NetCore) reconcile.Availability
	if s.tr != nil && s.tr.HasNetRx() {
		apply = func(nc sysctl.NetCore) reconcile.Availability { return s.configureNetRx(nc, true, nil) }
		s.avail.Predict = s.configureNetRx(nc, ncErr == nil, host.HZErr)
		s.avail.LimitsExact = s.kernelLimits(start)
	}
	s.sysctl = newSysctlWatch(cfg.FS, log, nc, s.avail.Predict, apply)
	if apply != nil && !s.avail.LimitsExact {
		s.sysctl.followRuns(s.netRxRuns)
	}

	var netIRQs map[int]bool
	start.Context, s.static.IRQs, netIRQs = hostContext(cfg.FS, log)
	s.src = sample.NewReader(sample.Config{
		Tracer:    s.tr,
		FS:        cfg.FS,
		ListNetns: podNamed(netns.List, podNames),
		// Listing walks /proc; once per interval keeps new containers' counters close to
		// their first drops without making a short --interval expensive.
		NetnsEvery:     max(cfg.Interval, time.Second),
		NetnsReadEvery: NetnsReadEvery(cfg.Interval),
		NetIRQs:        netIRQs,
	})
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			s.ifnames.Learn(start.Netns, uint32(i.Index), i.Name)
		}
	}
	s.names = assemble.Names{Reason: s.reasonName, Location: s.locationName, Ifname: s.ifnames.Name}
	s.events = newEventWriter(cfg.Records, s.names, s.ifnames)
	s.events.packets = cfg.Packets
	return s, nil
}

// NetnsSpan bounds how long a namespace with no traced drops goes unread (docs/checks.md): its
// counters are read at least once per NetnsSpan, or per interval when that is longer. Reading
// namespaces is an idle session's main cost per pod, so this is the idle cost's lever: a
// namespace read once per NetnsSpan costs the same whatever the interval.
const NetnsSpan = 10 * time.Second

// NetnsReadEvery is how many intervals a namespace may go unread: NetnsSpan in intervals.
func NetnsReadEvery(interval time.Duration) int {
	if interval <= 0 {
		return 1
	}
	return max(1, int((NetnsSpan+interval-1)/interval))
}

// locate names drops from their location (locreason): every drop on a kernel without drop
// reasons (source ReasonSourceLocation), or those the kernel frees as NOT_SPECIFIED on one
// whose reasons lack some a location names (ReasonSourceKernelLocation). calib learns the
// call sites of functions that free for several causes.
func (s *Session) locate(start *record.Start, source string, calib func(*locreason.Namer)) {
	s.locs = locreason.New(s.syms)
	calib(s.locs)
	start.ReasonSource = source
	learned := map[string][]string{}
	for r, ls := range s.locs.Learned() {
		for _, l := range ls {
			learned[r] = append(learned[r], s.syms.Format(l))
		}
	}
	if source == record.ReasonSourceLocation {
		s.log.Info("this kernel has no drop reasons (before 5.17): drops are named from their location", "learned", learned)
		return
	}
	s.log.Info("this kernel's drop reasons lack some the checks rest on: its NOT_SPECIFIED drops are named from their location where it gives a reason",
		"inferred", locreason.Inferred(s.reasons), "learned", learned)
}

// checkNames says which reasons the checks rest on this kernel cannot name, and for those
// named from their location what that cannot separate.
func (s *Session) checkNames() {
	if s.reasons == nil && s.locs == nil {
		return
	}
	s.avail.Unnamed = map[string]bool{}
	var located []string
	for _, sc := range reconcile.SNMPChecks {
		r := sc.Traced.Reason
		if !s.named(r) {
			s.avail.Unnamed[r] = true
		}
		if s.locs != nil && (s.reasons == nil || !s.kernelNames(r)) {
			located = append(located, r)
		}
	}
	if s.locs != nil {
		s.avail.Located = s.locs.Located(located)
	}
}

// openTracer probes the host and decides the mode, as doctor reports it: the tracer attached,
// or counters only. It fills in the start record's HZ, mode and probes.
func (s *Session) openTracer(start *record.Start) probe.Host {
	host, tr := probe.Open(s.cfg.FS, tracer.Options{
		Events: s.cfg.Events, MaxEventRate: s.cfg.MaxEventRate, Snaplen: s.cfg.Snaplen,
		RingBufferBytes: s.cfg.RingBufferBytes, ForceTracepoint: s.cfg.ForceTracepoint,
		Filter: s.cfg.Filter.BPF,
	}, s.cfg.CountersOnly)
	s.tr = tr
	s.hz, start.HZ, start.HZSource = host.HZ, host.HZ, host.HZSource
	start.Mode = host.Mode
	if host.TraceErr != nil {
		s.log.Warn("tracing is not possible, running counters-only (softnet_stat, softirqs, snmp)", "err", host.TraceErr,
			"fix", "run as root (or with CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE); `droptrace doctor` shows every probe")
	}
	if tr == nil {
		start.Probes["skb:kfree_skb"] = "unavailable: counters-only"
		return host
	}
	for _, p := range host.Probes {
		start.Probes[p.Name] = p.Status
		// The limits probe has a working fallback, said by kernelLimits.
		if !p.OK && p.Status != "off" && p.Name != tracer.LimitsProbe {
			s.log.Warn("tracepoint not attached", "tracepoint", p.Name, "status", p.Status)
		}
	}
	return host
}

// sources says what each source can tell, from the mode and the probes attached.
func (s *Session) sources(start *record.Start, reasonsOK reconcile.Availability) (drops, netrx, predict reconcile.Availability) {
	if s.tr == nil {
		why := "counters-only mode: no BPF program attached"
		if s.cfg.CountersOnly {
			why = "counters-only mode requested (--counters-only)"
		}
		off := reconcile.Availability{Why: why}
		return off, off, off
	}
	drops = reasonsOK
	if !s.tr.HasDrops() {
		drops = reconcile.Availability{Why: "skb:kfree_skb not attached: " + start.Probes["skb:kfree_skb"]}
	}
	if !s.tr.HasNetRx() {
		netrx = reconcile.Availability{Why: "NET_RX tracepoints not attached: " + start.Probes["napi:napi_poll"]}
		return drops, netrx, netrx
	}
	return drops, reconcile.Availability{OK: true}, reconcile.Availability{OK: true}
}

// configureNetRx hands net_rx_action's budget and time limit to the NET_RX programs.
func (s *Session) configureNetRx(nc sysctl.NetCore, sysctlOK bool, hzErr error) reconcile.Availability {
	if !sysctlOK || nc.Budget <= 0 {
		return reconcile.Availability{Why: "net.core.netdev_budget unreadable: squeezes are not predicted"}
	}
	if hzErr != nil {
		return reconcile.Availability{Why: fmt.Sprintf("HZ unknown (%v): squeezes are not predicted", hzErr)}
	}
	j := sysctl.UsecsToJiffies(nc.BudgetUsecs, s.hz)
	if err := s.tr.SetNetRx(uint32(nc.Budget), uint32(j), uint32(sysctl.UsecPerJiffy(s.hz))); err != nil {
		return reconcile.Availability{Why: err.Error()}
	}
	return reconcile.Availability{OK: true}
}

// kernelLimits has the NET_RX programs learn where the kernel keeps netdev_budget and
// netdev_budget_usecs (reading the sysctls runs the handlers they watch), and says in the
// start record's probes which limits each run reads from the kernel and which follow the
// sysctl poll. It returns whether both are read from the kernel.
func (s *Session) kernelLimits(start *record.Start) bool {
	status, ok := start.Probes[tracer.LimitsProbe]
	if !ok {
		return false
	}
	if status != "fentry" {
		// Not "unavailable": the poll is a working fallback, and views alarm at that word.
		start.Probes[tracer.LimitsProbe] = fmt.Sprintf("limits polled every %s (fentry %s)", sysctlPoll, strings.TrimPrefix(status, "unavailable: "))
		s.log.Info("NET_RX limits follow the sysctl poll: runs just after a change are predicted with the old values", "status", start.Probes[tracer.LimitsProbe])
		return false
	}
	_, _ = sysctl.On(s.cfg.FS).ReadNetCore()
	budget, usecs, err := s.tr.KernelLimits()
	usecs = usecs && sysctl.UsecPerJiffy(s.hz) > 0
	switch {
	case err != nil:
		start.Probes[tracer.LimitsProbe] = "unavailable: " + err.Error()
	case budget && usecs:
		start.Probes[tracer.LimitsProbe] = "fentry: netdev_budget and netdev_budget_usecs read from the kernel at each NET_RX run"
	case budget:
		start.Probes[tracer.LimitsProbe] = fmt.Sprintf("fentry: netdev_budget read from the kernel at each NET_RX run, not netdev_budget_usecs (HZ does not divide a second in microseconds); limits polled every %s", sysctlPoll)
	default:
		start.Probes[tracer.LimitsProbe] = fmt.Sprintf("fentry attached, but the sysctl handlers never named the limits; limits polled every %s", sysctlPoll)
	}
	if !(budget && usecs) {
		s.log.Warn("NET_RX limits follow the sysctl poll: runs just after a change are predicted with the old values", "status", start.Probes[tracer.LimitsProbe])
	}
	return err == nil && budget && usecs
}

// netRxRuns is the NET_RX runs per CPU so far; nil when they cannot be read.
func (s *Session) netRxRuns() []uint64 {
	nr, err := s.tr.ReadNetRx()
	if err != nil {
		return nil
	}
	runs := make([]uint64, len(nr))
	for cpu, c := range nr {
		runs[cpu] = c.Runs
	}
	return runs
}

func (s *Session) close() {
	if s.tr != nil {
		s.tr.Close()
	}
}

func (s *Session) reasonName(code uint32, loc uint64) string {
	switch {
	case s.reasons != nil:
		// With both, the kernel's reasons lack some a location names: its NOT_SPECIFIED,
		// which is 0 on those kernels (locreason.Inferred), is named from the location
		// where that gives a reason.
		if s.locs != nil && code == 0 {
			if r, ok := s.locs.Reason(loc); ok {
				return r
			}
		}
		return s.reasons.Name(code)
	case s.locs != nil:
		return s.locs.Name(loc)
	}
	return fmt.Sprintf("UNKNOWN_%d", code)
}

// named says whether the kernel's drops can carry the reason's name.
func (s *Session) named(reason string) bool {
	if s.reasons != nil && s.kernelNames(reason) {
		return true
	}
	return s.locs != nil && s.locs.Named(reason)
}

// kernelNames says whether the kernel's own reasons have this one.
func (s *Session) kernelNames(reason string) bool {
	_, ok := s.reasons.Code(reason)
	return ok
}

func (s *Session) locationName(addr uint64) string {
	if s.syms == nil {
		return fmt.Sprintf("0x%x", addr)
	}
	return s.syms.Format(addr)
}
