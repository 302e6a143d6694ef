// SPDX-License-Identifier: Apache-2.0

// Package session runs a tracing session: it attaches the tracer (or falls back to counters
// only), samples BPF maps and /proc counters every interval, reconciles them, and hands the
// records to sinks (JSON lines, the live view).
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/kallsyms"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Sink receives a session's records. Drop is called from the events goroutine while the
// others run on the session's; a sink must not keep a *record.Drop after Drop returns: the
// events loop reuses it for the next drop. Flush pushes buffered records out; the session
// calls it after the start record and after every interval.
type Sink interface {
	Start(*record.Start) error
	Interval(*record.Interval) error
	Drop(*record.Drop) error
	Summary(*record.Interval) error
	Flush() error
}

// Config of a session.
type Config struct {
	Interval        time.Duration
	Duration        time.Duration // 0: until ctx is cancelled
	Events          bool
	MaxEventRate    uint32
	RingBufferBytes uint32
	ForceTracepoint bool
	CountersOnly    bool
	ReadyFile       string
	Version         string
	// FS is the filesystem /proc and /sys are read under; the zero FS is the host's.
	FS hostfs.FS
	// Records get every record; Live only start, interval and summary records.
	Records Sink
	Live    Sink
	Log     *slog.Logger
}

// Session is one tracing session.
type Session struct {
	cfg    Config
	log    *slog.Logger
	tr     *tracer.Tracer
	src    *sources
	names  namer
	avail  availability
	online map[int]bool
	now    func() time.Time

	startRec *record.Start // the settings verdicts are explained against
	irqInfo  map[int]record.NetIRQ
	owners   map[ownerKey]ownerEntry // overflowing sockets' owners, found once

	reasons *dropreason.Table
	syms    *kallsyms.Symbols
	selfNS  uint32
	ifnames sync.Map // ifKey -> string, learned from events and the host's interfaces

	mu      sync.Mutex // guards sysctl, changes and avail.predict
	changes []string

	portsMu   sync.Mutex
	ports     map[portKey]uint64 // socket-level drops by destination port, from events
	mcastDrop uint64             // drop events to multicast destinations

	writeFailed atomic.Uint64
	written     atomic.Uint64
	sysctl      sysctl.NetCore
	hz          int
}

type ifKey struct{ netns, ifindex uint32 }

const reasonCPUBacklog = "CPU_BACKLOG"

// Run traces until the duration elapses or ctx is cancelled, then writes the summary. The
// summary is returned too, for callers that print it.
func Run(ctx context.Context, cfg Config) (*record.Interval, error) {
	s, start, err := open(cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.run(ctx, start)
}

func open(cfg Config) (*Session, *record.Start, error) {
	if cfg.Interval <= 0 {
		return nil, nil, fmt.Errorf("interval %s: must be positive", cfg.Interval)
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Session{cfg: cfg, log: log, now: time.Now, online: map[int]bool{}}
	start := &record.Start{
		Header:        record.Header{Type: record.TypeStart},
		SchemaVersion: record.SchemaVersion,
		Version:       cfg.Version,
		Probes:        map[string]string{},
		IntervalMs:    cfg.Interval.Milliseconds(),
		Events:        cfg.Events,
		MaxEventRate:  cfg.MaxEventRate,
	}
	start.Hostname, _ = os.Hostname()
	start.Kernel = kernelRelease()
	cpus, err := onlineCPUs(cfg.FS)
	if err != nil {
		log.Warn("cannot list online CPUs", "err", err)
	}
	start.CPUs = cpus
	for _, c := range cpus {
		s.online[c] = true
	}
	if ino, err := netns.Self(); err == nil {
		s.selfNS = uint32(ino)
		start.Netns = s.selfNS
	}

	nc, err := sysctl.On(cfg.FS).ReadNetCore()
	if err != nil {
		log.Warn("cannot read net.core sysctls: squeeze prediction is off", "err", err)
	}
	s.sysctl = nc
	start.Sysctl = sysctlRecord(nc)
	hz, hzSrc, hzErr := detectHZ()
	s.hz, start.HZ, start.HZSource = hz, hz, hzSrc

	// Drop reasons come from this kernel's BTF: numbering differs between kernels.
	s.reasons, err = dropreason.Load()
	reasonsOK := reconcile.Availability{OK: true}
	switch {
	case errors.Is(err, dropreason.ErrNoEnum):
		reasonsOK = reconcile.Availability{Why: "this kernel has no enum skb_drop_reason (before 5.17): drops are counted without reasons"}
		log.Warn(reasonsOK.Why)
	case err != nil:
		reasonsOK = reconcile.Availability{Why: fmt.Sprintf("cannot decode drop reasons from BTF: %v", err)}
		log.Warn("drop reasons are shown as numbers", "err", err)
	default:
		start.DropReasons = s.reasons.Len()
	}
	s.syms, err = kallsyms.Load()
	if err != nil {
		log.Warn("drop locations are shown as addresses", "err", err)
	}
	s.names = namer{reason: s.reasonName, location: s.locationName, ifname: s.ifname}

	if !cfg.CountersOnly {
		s.tr, err = tracer.Open(tracer.Options{
			Events: cfg.Events, MaxEventRate: cfg.MaxEventRate, HZ: hz,
			RingBufferBytes: cfg.RingBufferBytes, ForceTracepoint: cfg.ForceTracepoint,
		})
		if err != nil {
			log.Warn("tracing is not possible, running counters-only (softnet_stat, softirqs, snmp)", "err", err,
				"fix", "run as root (or with CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE); `droptrace doctor` shows every probe")
			s.tr = nil
		}
	}
	start.Mode = record.ModeCountersOnly
	why := "counters-only mode: no BPF program attached"
	if cfg.CountersOnly {
		why = "counters-only mode requested (--counters-only)"
	}
	s.avail = availability{
		drops:   reconcile.Availability{Why: why},
		netrx:   reconcile.Availability{Why: why},
		predict: reconcile.Availability{Why: why},
	}
	if s.tr != nil {
		start.Mode = record.ModeFull
		for _, p := range s.tr.Probes() {
			start.Probes[p.Name] = p.Status
			if !p.OK && p.Status != "off" {
				log.Warn("tracepoint not attached", "tracepoint", p.Name, "status", p.Status)
			}
		}
		if s.tr.HasDrops() {
			s.avail.drops = reasonsOK
		} else {
			s.avail.drops = reconcile.Availability{Why: "skb:kfree_skb not attached: " + start.Probes["skb:kfree_skb"]}
		}
		if s.tr.HasNetRx() {
			s.avail.netrx = reconcile.Availability{OK: true}
			s.avail.predict = s.configureNetRx(nc, err == nil, hzErr)
		} else {
			s.avail.netrx = reconcile.Availability{Why: "NET_RX tracepoints not attached: " + start.Probes["napi:napi_poll"]}
			s.avail.predict = s.avail.netrx
		}
	} else {
		start.Probes["skb:kfree_skb"] = "unavailable: counters-only"
	}

	s.src = &sources{
		tr:        s.tr,
		fs:        cfg.FS,
		listNetns: netns.List,
		// Listing walks /proc; once per interval keeps new containers' counters close to
		// their first drops without making a short --interval expensive.
		nsEvery: max(cfg.Interval, time.Second),
		netIRQs: map[int]bool{},
	}
	start.Context = s.hostContext()
	for _, q := range start.Context.NetIRQs {
		s.src.netIRQs[q.IRQ] = true
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			s.ifnames.Store(ifKey{s.selfNS, uint32(i.Index)}, i.Name)
		}
	}
	return s, start, nil
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
	if err := s.tr.SetNetRx(uint32(nc.Budget), uint32(j)); err != nil {
		return reconcile.Availability{Why: err.Error()}
	}
	return reconcile.Availability{OK: true}
}

// sysctlPoll is how often the net.core sysctls are re-read. A user tunes netdev_budget during
// an incident; until the NET_RX programs know the new value their predictions are wrong, so
// the window is kept short (two small file reads per poll).
const sysctlPoll = 100 * time.Millisecond

// watchSysctl re-reads the sysctls until ctx ends, hands changes to the NET_RX programs at
// once, and queues a note for the interval in which they happened.
func (s *Session) watchSysctl(ctx context.Context) {
	t := time.NewTicker(sysctlPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.refreshSysctl()
		}
	}
}

func (s *Session) refreshSysctl() {
	nc, err := sysctl.On(s.cfg.FS).ReadNetCore()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || nc == s.sysctl {
		return
	}
	old := s.sysctl
	s.log.Info("net.core sysctls changed", "netdev_budget", nc.Budget, "netdev_budget_usecs", nc.BudgetUsecs,
		"netdev_max_backlog", nc.MaxBacklog, "dev_weight", nc.DevWeight)
	s.changes = append(s.changes, describeChange(old, nc, s.now()))
	s.sysctl = nc
	if s.tr != nil && s.tr.HasNetRx() && s.avail.predict.OK {
		s.avail.predict = s.configureNetRx(nc, true, nil)
	}
}

func describeChange(old, cur sysctl.NetCore, at time.Time) string {
	var parts []string
	add := func(name string, a, b int64) {
		if a != b {
			parts = append(parts, fmt.Sprintf("%s %d->%d", name, a, b))
		}
	}
	add("netdev_budget", old.Budget, cur.Budget)
	add("netdev_budget_usecs", old.BudgetUsecs, cur.BudgetUsecs)
	add("netdev_max_backlog", old.MaxBacklog, cur.MaxBacklog)
	add("dev_weight", old.DevWeight, cur.DevWeight)
	return fmt.Sprintf("%s at %s", strings.Join(parts, ", "), at.UTC().Format("15:04:05.000"))
}

// takeChanges returns the sysctl changes since the last call and the current values.
func (s *Session) takeChanges() ([]string, sysctl.NetCore) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.changes
	s.changes = nil
	return c, s.sysctl
}

func (s *Session) run(ctx context.Context, start *record.Start) (*record.Interval, error) {
	first, err := s.src.read()
	if err != nil {
		return nil, err
	}
	if first.snErr == nil {
		start.SoftnetColumns = first.softnet.Columns
	} else {
		s.log.Warn("softnet_stat unreadable: backlog and squeeze checks are unavailable", "err", first.snErr)
	}
	start.Time = record.Time(s.now())
	s.startRec = start
	s.emit(func(k Sink) error { return k.Start(start) })
	if err := s.flush(); err != nil {
		return nil, err
	}
	if s.cfg.ReadyFile != "" {
		if err := os.WriteFile(s.cfg.ReadyFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return nil, fmt.Errorf("write ready file %s: %w", s.cfg.ReadyFile, err)
		}
	}

	var wg sync.WaitGroup
	evCtx, stopEvents := context.WithCancel(context.Background())
	if s.tr != nil && s.tr.HasEvents() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.events(evCtx)
		}()
	}

	var deadline <-chan time.Time
	if s.cfg.Duration > 0 {
		timer := time.NewTimer(s.cfg.Duration)
		defer timer.Stop()
		deadline = timer.C
	}
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()

	total := newDelta()
	prev := first
	seq := 0
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.watchSysctl(evCtx)
	}()
	step := func() {
		s.refreshSysctl()
		changes, nc := s.takeChanges()
		cur, err := s.src.read()
		if err != nil {
			runErr = err
			return
		}
		d := diff(prev, cur, s.reasonName)
		d.dstats.writeFailed = s.writeFailed.Swap(0)
		d.dstats.written = s.written.Swap(0)
		d.ports, d.mcastDrop = s.takePorts()
		d.sysctlChanges = changes
		d.sysctl = nc
		prev = cur
		seq++
		total.add(d)
		rec := s.buildRecord(d, record.TypeInterval, seq)
		s.emit(func(k Sink) error { return k.Interval(rec) })
		if err := s.flush(); err != nil && runErr == nil {
			runErr = err
		}
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-ticker.C:
			step()
			if runErr != nil {
				break loop
			}
		}
	}
	// Drain events already in the ring buffer before the last interval, so that the summary's
	// event counts cover what was written.
	stopEvents()
	wg.Wait()
	if runErr == nil {
		// The programs stop inside the last read: a drop then either counts everywhere (by
		// reason, and as an event sent or lost) or nowhere, even mid-storm.
		if s.tr != nil {
			s.src.quiesce = s.tr.Detach
		}
		step() // the partial last interval
	}
	// Counts shifted between intervals by a read cancel out over the session, except at its
	// first and last reads: those are all the summary may differ by.
	total.slack = addMoved(first.moved, prev.moved)
	summary := s.buildRecord(total, record.TypeSummary, 0)
	// Only over the whole session do sent and written line up: whatever BPF sent that was not
	// written by the end (the drain is bounded) is lost too, and said so.
	if t := &summary.Tracer; t.EventsSent > t.EventsWritten+t.EventsWriteFailed {
		t.EventsUnread = t.EventsSent - t.EventsWritten - t.EventsWriteFailed
		summary.LostEvents += t.EventsUnread
	}
	s.emit(func(k Sink) error { return k.Summary(summary) })
	if err := s.flush(); err != nil && runErr == nil {
		runErr = err
	}
	return summary, runErr
}

// emit hands one record to the records sink and the live sink with write, logging failures.
func (s *Session) emit(write func(Sink) error) {
	if s.cfg.Records != nil {
		if err := write(s.cfg.Records); err != nil {
			s.log.Error("cannot write record", "err", err)
		}
	}
	if s.cfg.Live != nil {
		if err := write(s.cfg.Live); err != nil {
			s.log.Error("cannot draw live view", "err", err)
		}
	}
}

func (s *Session) flush() error {
	if s.cfg.Records == nil {
		return nil
	}
	if err := s.cfg.Records.Flush(); err != nil {
		return fmt.Errorf("flush output: %w", err)
	}
	return nil
}

func (s *Session) close() {
	if s.tr != nil {
		s.tr.Close()
	}
}

// events streams drop events to the record sink until ctx is cancelled and the ring is empty.
func (s *Session) events(ctx context.Context) {
	var rec ringbuf.Record
	var e tracer.Event
	w := newEventWriter(s)
	var drainUntil time.Time
	for {
		deadline := time.Now().Add(200 * time.Millisecond)
		if ctx.Err() != nil {
			// Drain what is queued without waiting for more, but not for ever: a flood can
			// refill the ring as fast as it is read. What is left is counted as lost below.
			if drainUntil.IsZero() {
				drainUntil = time.Now().Add(time.Second)
			}
			if time.Now().After(drainUntil) {
				return
			}
			deadline = time.Now()
		}
		err := s.tr.ReadEvent(&rec, &e, deadline)
		switch {
		case err == nil:
		case errors.Is(err, tracer.ErrTimeout):
			if ctx.Err() != nil {
				return
			}
			continue
		case errors.Is(err, tracer.ErrClosed):
			return
		default:
			s.log.Error("drop event stream", "err", err)
			return
		}
		w.write(&e)
	}
}

// eventWriter turns drop events into drop records. It runs once per streamed drop, so what
// repeats from one event to the next under a flood (interface names, addresses, the record
// itself) is kept rather than stored, formatted or allocated again.
type eventWriter struct {
	s        *Session
	mono     func(uint64) time.Time
	d        record.Drop
	ifnames  map[ifKey]string
	src, dst netip.Addr
	srcS     string
	dstS     string
}

func newEventWriter(s *Session) *eventWriter {
	return &eventWriter{s: s, mono: monoToWall(), ifnames: map[ifKey]string{}}
}

func (w *eventWriter) write(e *tracer.Event) {
	s := w.s
	if e.Ifname != "" {
		k := ifKey{e.Netns, e.Ifindex}
		if w.ifnames[k] != e.Ifname {
			s.ifnames.LoadOrStore(k, e.Ifname)
			if len(w.ifnames) < 4096 { // interfaces come and go; the shared map keeps them all
				w.ifnames[k] = e.Ifname
			}
		}
	}
	w.d = record.Drop{
		Header:     record.Header{Type: record.TypeDrop, Time: record.Time(w.mono(e.MonoNs))},
		CPU:        e.CPU,
		Reason:     s.reasonName(e.Reason),
		ReasonCode: e.Reason,
		Location:   s.locationName(e.Location),
		Ifindex:    e.Ifindex,
		Ifname:     e.Ifname,
		Netns:      e.Netns,
		Len:        e.Len,
		L3:         l3Name(e.L3),
		L4:         l4Name(e.L3, uint16(e.L4)),
		Sport:      e.Sport,
		Dport:      e.Dport,
	}
	if e.Src.IsValid() {
		if e.Src != w.src || w.srcS == "" {
			w.src, w.srcS = e.Src, e.Src.String()
		}
		if e.Dst != w.dst || w.dstS == "" {
			w.dst, w.dstS = e.Dst, e.Dst.String()
		}
		w.d.Src, w.d.Dst = w.srcS, w.dstS
	}
	s.countPort(&w.d, e.Dst.IsMulticast())
	if s.cfg.Records == nil {
		return
	}
	if err := s.cfg.Records.Drop(&w.d); err != nil {
		s.writeFailed.Add(1)
	} else {
		s.written.Add(1)
	}
}

func (s *Session) reasonName(code uint32) string {
	if s.reasons == nil {
		return fmt.Sprintf("UNKNOWN_%d", code)
	}
	return s.reasons.Name(code)
}

func (s *Session) locationName(addr uint64) string {
	if s.syms == nil {
		return fmt.Sprintf("0x%x", addr)
	}
	return s.syms.Format(addr)
}

func (s *Session) ifname(ns, idx uint32) string {
	if v, ok := s.ifnames.Load(ifKey{ns, idx}); ok {
		return v.(string)
	}
	return ""
}

func sysctlRecord(nc sysctl.NetCore) record.Sysctl {
	return record.Sysctl{NetdevBudget: nc.Budget, NetdevBudgetUsecs: nc.BudgetUsecs,
		NetdevMaxBacklog: nc.MaxBacklog, DevWeight: nc.DevWeight}
}

func (s *Session) predictAvail() reconcile.Availability {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.avail.predict
}

// hostContext reads how the host is set up to receive: network IRQs and their affinity,
// irqbalance, RPS and threaded NAPI per interface, and the socket buffer limits.
func (s *Session) hostContext() *record.HostContext {
	fsys := s.cfg.FS
	hc := &record.HostContext{Irqbalance: hostctx.IrqbalanceRunning(fsys), Sysctls: map[string]string{}}
	s.irqInfo = map[int]record.NetIRQ{}
	if irqs, err := hostfs.ReadParse(fsys, "/proc/interrupts", hostctx.ParseInterrupts); err == nil {
		for _, q := range hostctx.NetworkIRQs(fsys, irqs) {
			r := record.NetIRQ{IRQ: q.IRQ, Name: q.Name, Ifname: q.Ifname, Queue: q.Queue, RX: q.RX,
				Affinity: q.Affinity, Effective: q.Effective}
			hc.NetIRQs = append(hc.NetIRQs, r)
			s.irqInfo[q.IRQ] = r
		}
	} else {
		s.log.Warn("cannot read /proc/interrupts: IRQ layout verdicts are off", "err", err)
	}
	for _, f := range hostctx.Interfaces(fsys) {
		hc.Interfaces = append(hc.Interfaces, record.Interface{Name: f.Name, RxQueues: f.RxQueues,
			RPSCPUs: f.RPSCPUs, RPSFlowCnt: f.RPSFlowCnt, Threaded: f.Threaded})
	}
	for _, name := range []string{"net.core.rmem_default", "net.core.rmem_max", "net.core.somaxconn",
		"net.core.flow_limit_cpu_bitmap", "net.ipv4.udp_mem", "net.ipv4.tcp_mem"} {
		if v, err := sysctl.On(fsys).Read(name); err == nil {
			hc.Sysctls[strings.TrimPrefix(strings.TrimPrefix(name, "net.core."), "net.ipv4.")] = strings.Join(strings.Fields(v), " ")
		}
	}
	return hc
}

type portKey struct {
	reason, l4 string
	port       uint16
	netns      uint32
}

// portReasons are the drops whose destination port names the socket (or the missing one).
var portReasons = map[string]bool{"SOCKET_RCVBUFF": true, "NO_SOCKET": true, "TCP_LISTEN_OVERFLOW": true, "SOCKET_BACKLOG": true}

// countPort tallies socket-level drop events by port: which socket overflows is the first
// question a socket_rcvbuf verdict must answer.
func (s *Session) countPort(d *record.Drop, multicast bool) {
	if !multicast && (!portReasons[d.Reason] || d.Dport == 0) {
		return
	}
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	if multicast {
		s.mcastDrop++
	}
	if !portReasons[d.Reason] || d.Dport == 0 {
		return
	}
	if s.ports == nil {
		s.ports = map[portKey]uint64{}
	}
	if len(s.ports) < 4096 { // a port scan must not grow memory without bound
		s.ports[portKey{d.Reason, d.L4, d.Dport, d.Netns}]++
	}
}

func (s *Session) takePorts() (map[portKey]uint64, uint64) {
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	p, m := s.ports, s.mcastDrop
	s.ports, s.mcastDrop = nil, 0
	return p, m
}
