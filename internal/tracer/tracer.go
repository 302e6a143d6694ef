// SPDX-License-Identifier: Apache-2.0

// Package tracer loads and attaches droptrace's BPF programs and reads what they count.
//
// Two program families are attached independently, each with a preferred tp_btf variant and a
// classic-tracepoint fallback: drops (skb:kfree_skb) and NET_RX accounting
// (irq:softirq_entry/exit, napi:napi_poll). A family that cannot attach is reported in the
// probe results and the other still runs.
package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// Options configure a tracing session.
type Options struct {
	// Events streams one record per drop through a ring buffer.
	Events bool
	// MaxEventRate caps events per second per CPU in BPF; 0 is unlimited.
	MaxEventRate uint32
	// HZ, when known, lets the rate limit count time in jiffies, which is cheaper to read than
	// nanoseconds; 0 keeps nanoseconds.
	HZ int
	// RingBufferBytes sizes the event ring buffer (a power of two, at least one page).
	RingBufferBytes uint32
	// ForceTracepoint skips tp_btf and attaches the classic tracepoints (tests the fallback).
	ForceTracepoint bool
	// NoDrops and NoNetRx leave a family unattached.
	NoDrops, NoNetRx bool
	// SockReasons are the drop reason codes also counted by receiving socket
	// (ReadSockDrops).
	SockReasons []uint32
	// Snaplen, with Events, has each event carry up to this many bytes of its packet
	// (Event.Packet), at most MaxSnaplen; 0: none, and the event path does not copy.
	Snaplen uint32
	// Filter selects the drops streamed as events (with Events); Open refuses one that does
	// not fit in BPF (ErrFilterTooLarge).
	Filter Filter
	// SockFuncs are, on kernels without drop reasons, the functions whose drops are counted by
	// receiving socket, keyed by call site (SockKey.Location); at most MaxSockFuncs.
	SockFuncs []FuncRange
}

// FuncRange is a kernel function's text, [Start, End).
type FuncRange struct{ Start, End uint64 }

// MaxSockFuncs is DT_SOCK_FNS: the most Options.SockFuncs BPF takes.
const MaxSockFuncs = len(dropsDropConfig{}.SockFns)

// Probe is the outcome of attaching one tracepoint.
type Probe struct {
	Name   string // e.g. "skb:kfree_skb"
	Status string // "tp_btf", "tracepoint" (fallback), "off" or "unavailable: <why>"
	OK     bool
}

// Tracer holds the loaded programs, maps and links.
type Tracer struct {
	opts    Options
	ncpu    int
	dropsM  dropsMaps
	netrxM  netrxMaps
	progs   map[string]*ebpf.Program // attached programs by tracepoint name
	links   []link.Link
	closers []func() error
	probes  []Probe
	drops   bool
	netrx   bool
	limits  bool // the NET_RX programs can learn where the kernel keeps their limits
	reader  *ringbuf.Reader
	// active is the generation BPF counts into, as mapGen (map_gen in BPF) says: 0 the
	// drop_counts_a and sock_drops_a maps, 1 the *_b maps (see flip).
	active int
	mapGen *ebpf.Variable
	// dropTotal is, per key and possible CPU, what the drained generations' drop_counts maps
	// held.
	dropTotal map[DropKey][]uint64
	dropBuf   batchBuf[dropsDropKey, uint64] // drop_counts' batch lookups
	sockBuf   batchBuf[dropsSockKey, uint64] // sock_drops' batch lookups
	rec       ringbuf.Record                 // NextEvent's buffer
}

// ErrNoTracing means no program could be attached: the caller runs counters-only.
var ErrNoTracing = errors.New("no BPF program could be attached")

// Open loads the BPF objects and attaches every program family it can. It returns ErrNoTracing
// (wrapped, with the reasons) when nothing attached; the probes say what failed either way.
func Open(opts Options) (*Tracer, error) {
	if err := opts.Filter.Check(); err != nil {
		return nil, fmt.Errorf("event filter: %w", err)
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones ignore it. Failing
	// to raise it is not fatal by itself: if it mattered, loading says so below, and the
	// loader's error (no CAP_BPF, ...) is the one worth reporting.
	memlockErr := rlimit.RemoveMemlock()
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("count possible CPUs: %w", err)
	}
	t := &Tracer{opts: opts, ncpu: ncpu, progs: map[string]*ebpf.Program{}}

	var errs []error
	if opts.NoDrops {
		t.probes = append(t.probes, Probe{Name: dropTracepoint.name, Status: "off"})
	} else if err := t.openDrops(); err != nil {
		errs = append(errs, err)
	}
	if opts.NoNetRx {
		for _, n := range netrxTracepoints {
			t.probes = append(t.probes, Probe{Name: n.name, Status: "off"})
		}
	} else if err := t.openNetRx(); err != nil {
		errs = append(errs, err)
	}
	if !t.drops && !t.netrx {
		t.Close()
		if len(errs) == 0 {
			errs = append(errs, errors.New("every program family is off"))
		}
		return nil, noTracing(errs, memlockErr, mayLoadBPF())
	}
	return t, nil
}

// tracepoint is one tracepoint and the programs that can serve it, in order of preference:
// tp_btf (raw, BTF-typed arguments), then the classic tracepoint.
type tracepoint struct {
	name         string // "group:event", as probes report it
	group, event string
	btf, classic string // program names in the object
}

var dropTracepoint = tracepoint{"skb:kfree_skb", "skb", "kfree_skb", dropsProgTpBtfKfreeSkb, dropsProgTpKfreeSkb}

var netrxTracepoints = []tracepoint{
	{"irq:softirq_entry", "irq", "softirq_entry", netrxProgTpBtfSoftirqEntry, netrxProgTpSoftirqEntry},
	{"irq:softirq_exit", "irq", "softirq_exit", netrxProgTpBtfSoftirqExit, netrxProgTpSoftirqExit},
	{"napi:napi_poll", "napi", "napi_poll", netrxProgTpBtfNapiPoll, netrxProgTpNapiPoll},
}

// dropConfig is what the drop programs are loaded with.
func (o Options) dropConfig() dropsDropConfig {
	cfg := dropsDropConfig{MaxEventRate: o.MaxEventRate, SockReasons: sockReasonBits(o.SockReasons)}
	for i, f := range o.SockFuncs[:min(len(o.SockFuncs), MaxSockFuncs)] {
		cfg.SockFns[i].Start, cfg.SockFns[i].End = f.Start, f.End
	}
	if o.HZ > 0 && 1_000_000_000%o.HZ == 0 {
		cfg.Hz = uint32(o.HZ)
	}
	if o.Events {
		cfg.Events = 1
		cfg.Snaplen = min(o.Snaplen, uint32(MaxSnaplen))
	}
	cfg.setFilter(o.Filter)
	return cfg
}

func (t *Tracer) openDrops() error {
	spec, err := loadDrops()
	if err != nil {
		return fmt.Errorf("load drops BPF spec: %w", err)
	}
	t.opts.sizeDropMaps(spec, t.ncpu)
	// A constant, not a map: the verifier then removes the code that configuration turns off.
	if err := spec.Variables[dropsVarDropCfg].Set(t.opts.dropConfig()); err != nil {
		return fmt.Errorf("configure drop programs: %w", err)
	}
	coll, err := loadMaps(spec)
	if err != nil {
		t.probes = append(t.probes, Probe{Name: dropTracepoint.name, Status: "unavailable: " + hint(err)})
		return fmt.Errorf("%s: %w", dropTracepoint.name, err)
	}
	t.closers = append(t.closers, func() error { coll.Close(); return nil })
	p, status, err := t.attachFirst(spec, coll.Maps, dropTracepoint)
	t.probes = append(t.probes, Probe{Name: dropTracepoint.name, Status: status, OK: err == nil})
	if err != nil {
		return fmt.Errorf("%s: %w", dropTracepoint.name, err)
	}
	t.progs[dropTracepoint.name] = p
	if err := coll.Assign(&t.dropsM); err != nil {
		return fmt.Errorf("drops object: %w: regenerate with make generate", err)
	}
	if t.mapGen = coll.Variables[dropsVarMapGen]; t.mapGen == nil {
		return fmt.Errorf("drops object: no variable %s: regenerate with make generate", dropsVarMapGen)
	}
	t.closers = append(t.closers, t.dropsM.Close)
	t.drops = true
	if t.opts.Events {
		r, err := ringbuf.NewReader(t.dropsM.Events)
		if err != nil {
			return fmt.Errorf("open drop event ring buffer: %w", err)
		}
		t.reader = r
	}
	return nil
}

func (t *Tracer) openNetRx() error {
	spec, err := loadNetrx()
	if err != nil {
		return fmt.Errorf("load netrx BPF spec: %w", err)
	}
	coll, err := loadMaps(spec)
	if err != nil {
		for _, n := range netrxTracepoints {
			t.probes = append(t.probes, Probe{Name: n.name, Status: "unavailable: " + hint(err)})
		}
		return fmt.Errorf("NET_RX accounting: %w", err)
	}
	t.closers = append(t.closers, func() error { coll.Close(); return nil })
	// All three or nothing: entry without exit, or polls without the bracket, would count
	// nonsense rather than less.
	var attached []link.Link
	var failed error
	for _, n := range netrxTracepoints {
		p, status, err := t.attachFirst(spec, coll.Maps, n)
		t.probes = append(t.probes, Probe{Name: n.name, Status: status, OK: err == nil})
		if err != nil {
			failed = fmt.Errorf("%s: %w", n.name, err)
			break
		}
		t.progs[n.name] = p
		attached = append(attached, t.links[len(t.links)-1])
	}
	if failed != nil {
		for _, l := range attached {
			l.Close()
		}
		t.links = t.links[:len(t.links)-len(attached)]
		return failed
	}
	// Before Assign, which takes the maps out of coll: the learning programs must share them.
	t.openLimits(spec, coll.Maps)
	if err := coll.Assign(&t.netrxM); err != nil {
		return fmt.Errorf("netrx object: %w: regenerate with make generate", err)
	}
	t.closers = append(t.closers, t.netrxM.Close)
	t.netrx = true
	return nil
}

// attachFirst loads and attaches the first program of tp that loads and attaches. The status
// is what probes report: the variant, or each variant's failure in short.
func (t *Tracer) attachFirst(spec *ebpf.CollectionSpec, maps map[string]*ebpf.Map, tp tracepoint) (*ebpf.Program, string, error) {
	var errs []error
	var why []string
	for _, btf := range []bool{true, false} {
		if btf && t.opts.ForceTracepoint {
			continue
		}
		kind, prog := "tracepoint", tp.classic
		if btf {
			kind, prog = "tp_btf", tp.btf
		}
		p, err := loadProgram(spec, prog, maps)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", kind, err))
			why = append(why, kind+": "+hint(err))
			continue
		}
		var l link.Link
		if btf {
			l, err = link.AttachTracing(link.TracingOptions{Program: p})
		} else {
			l, err = link.Tracepoint(tp.group, tp.event, p, nil)
		}
		if err != nil {
			p.Close()
			errs = append(errs, fmt.Errorf("%s attach: %w", kind, err))
			why = append(why, kind+" attach: "+hint(err))
			continue
		}
		t.links = append(t.links, l)
		t.closers = append(t.closers, p.Close)
		return p, kind, nil
	}
	return nil, "unavailable: " + strings.Join(why, "; "), errors.Join(errs...)
}

// hint turns the common failures into what to do about them.
func hint(err error) string {
	msg := withoutLibraryAdvice(err.Error())
	switch {
	case isPermission(err):
		return msg + " (needs root, or CAP_BPF and CAP_PERFMON; run with sudo; check kernel.unprivileged_bpf_disabled and lockdown)"
	case errors.Is(err, os.ErrNotExist) && strings.Contains(msg, "tracing"):
		return msg + " (tracefs not mounted: mount -t tracefs nodev /sys/kernel/tracing)"
	}
	// Verifier logs are long; the first lines say enough for a probe result.
	if i := strings.Index(msg, "\n"); i > 0 {
		msg = msg[:i]
	}
	return msg
}

// loadMaps creates every map of a spec (programs excluded) so that each program variant can be
// loaded later against the same maps. The maps the Go side reads are moved into the generated
// struct with Collection.Assign once a program is attached; the collection keeps the rest (the
// .rodata of volatile const configuration).
func loadMaps(spec *ebpf.CollectionSpec) (*ebpf.Collection, error) {
	s := spec.Copy()
	s.Programs = map[string]*ebpf.ProgramSpec{}
	coll, err := ebpf.NewCollection(s)
	if err != nil {
		return nil, fmt.Errorf("create BPF maps: %w", err)
	}
	return coll, nil
}

// loadProgram loads one program of spec against already created maps.
func loadProgram(spec *ebpf.CollectionSpec, name string, maps map[string]*ebpf.Map) (*ebpf.Program, error) {
	ps, ok := spec.Programs[name]
	if !ok {
		return nil, fmt.Errorf("program %s not in the object: regenerate with make generate", name)
	}
	s := spec.Copy()
	s.Programs = map[string]*ebpf.ProgramSpec{name: ps.Copy()}
	coll, err := ebpf.NewCollectionWithOptions(s, ebpf.CollectionOptions{MapReplacements: maps})
	if err != nil {
		return nil, err
	}
	p := coll.DetachProgram(name)
	coll.Close()
	return p, nil
}

// Probes reports how each tracepoint was attached, or why not.
func (t *Tracer) Probes() []Probe { return append([]Probe(nil), t.probes...) }

// HasDrops and HasNetRx say which families are attached.
func (t *Tracer) HasDrops() bool { return t.drops }
func (t *Tracer) HasNetRx() bool { return t.netrx }

// PossibleCPUs is the length of every per-CPU slice the tracer returns.
func (t *Tracer) PossibleCPUs() int { return t.ncpu }

// SetNetRx updates what the NET_RX programs replay of net_rx_action: the packet budget and
// the time limit in jiffies, used until the programs know where the kernel keeps them (see
// KernelLimits), and the microseconds per jiffy that turn the kernel's netdev_budget_usecs
// into jiffies (0 when HZ does not divide a second in whole microseconds: then the time
// limit stays timeJiffies). A budget of 0 disables squeeze prediction.
func (t *Tracer) SetNetRx(budget, timeJiffies, usecPerJiffy uint32) error {
	if !t.netrx {
		return nil
	}
	cfg := netrxNetrxConfig{Budget: budget, TimeJiffies: timeJiffies, UsecPerJiffy: usecPerJiffy}
	if err := t.netrxM.NetrxCfg.Put(uint32(0), cfg); err != nil {
		return fmt.Errorf("update NET_RX configuration map: %w", err)
	}
	return nil
}

// Detach stops every program while keeping the maps and the event ring readable, so that a
// last read sees counts that no longer move: every drop counted by reason is then also counted
// as sent, rate-limited or ring-full, even in the middle of a storm. Closing a link does not
// wait for the runs already under way on other CPUs, so Detach then waits for them (see
// waitForPrograms). It is safe to call more than once; Close detaches too.
func (t *Tracer) Detach() {
	if len(t.links) == 0 {
		return
	}
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
	_ = t.waitForPrograms() // at worst, a run under way is counted after the last read
}

// waitForPrograms returns once every BPF program run that began before it has ended. Programs
// on tracepoints run inside RCU read-side sections, and the kernel answers an update of a
// map-in-map only after an RCU grace period, with a full barrier on either side
// (maybe_wait_bpf_programs in kernel/bpf/syscall.c), so an update of sync_maps, which no
// program reads, is the wait; a store before it is seen by every run that begins after it.
func (t *Tracer) waitForPrograms() error {
	if !t.drops {
		return nil
	}
	return t.dropsM.SyncMaps.Update(uint32(0), t.dropsM.SyncInner, ebpf.UpdateAny)
}

// Close detaches everything and releases the maps. It is safe to call more than once.
func (t *Tracer) Close() error {
	if t.reader != nil {
		t.reader.Close()
		t.reader = nil
	}
	t.Detach()
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i]()
	}
	t.closers = nil
	return nil
}
