// SPDX-License-Identifier: Apache-2.0

// Package sample reads every counter source at one instant: the tracer's BPF maps, softnet_stat,
// softirqs, each network namespace's SNMP counters, network IRQs, interfaces' rx_dropped,
// sockstat and multicast memberships. A Sample holds cumulative values; internal/interval turns
// two of them into a delta.
package sample

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/snmp"
	"github.com/droptrace/droptrace/internal/softirqs"
	"github.com/droptrace/droptrace/internal/softnet"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Sample is every source read at one instant: cumulative values, turned into deltas later.
type Sample struct {
	At        time.Time
	Drops     map[tracer.DropKey][]uint64
	DropStats tracer.DropStats
	NetRx     []tracer.NetRx
	// Sockets are the socket-level drops counted since the previous sample (not cumulative:
	// reading them drains the tracer's map).
	Sockets []tracer.SockCount
	// TracerReadNs is CLOCK_MONOTONIC (the clock of drop events' timestamps) just before the
	// BPF maps were read: a drop event stamped earlier was counted before this sample.
	TracerReadNs uint64
	// NetRxRecursionMisses is the host-wide count of NET_RX tracepoint hits the kernel ran no
	// program for.
	NetRxRecursionMisses uint64
	Softnet              softnet.Table
	SoftnetErr           error
	Softirqs             softirqs.Table
	SoftirqsErr          error
	Netns                map[uint32]*Netns
	// NetnsErr says why the namespaces could not be listed for this sample: Netns holds
	// those listed before.
	NetnsErr  error
	IRQs      map[int]map[int]uint64 // network IRQ -> CPU -> interrupts (cumulative)
	RxDropped map[string]uint64      // interface -> core rx_dropped (cumulative)
	Sockstat  map[string]map[string]int64
	Mcast     []hostctx.McastAddr
	McastOK   bool
	// Moved is how far each checked kernel counter advanced while the BPF maps were read:
	// the kernel counters are read just before and just after them. A traced count read in
	// between can differ from the kernel's by at most that much, in either direction; this
	// bounds every check exactly, with no rate estimate.
	Moved map[reconcile.Key]uint64
}

// Netns is one network namespace's counters.
type Netns struct {
	NS   netns.NS
	SNMP snmp.Counters // nil when unreadable
	Err  error
	// Deferred means the namespace was not read in this sample (see Config.NetnsReadEvery):
	// SNMP and Moved are those of its last read, carried as the baseline of its next one.
	Deferred bool
	// Moved is how far each SNMP check's counters moved in this namespace while the BPF
	// maps were read at its last read: the opening slack of the span its next read closes.
	Moved map[string]uint64
	// Carried are the drops traced in the namespace since its last read, for a deferred one:
	// its next read checks them against the counters' delta over the same span.
	// internal/interval fills it in, since it names the drops.
	Carried map[reconcile.ReasonL4]uint64
}

// Config says what a Reader reads.
type Config struct {
	Tracer *tracer.Tracer // nil in counters-only mode
	FS     hostfs.FS
	// ListNetns lists the network namespaces; NetnsEvery bounds how often (see Reader.Read).
	ListNetns  func() ([]netns.NS, error)
	NetnsEvery time.Duration
	// NetnsReadEvery is N: each sample reads the namespaces that are new, were replaced,
	// were unreadable at their last read or had traced drops in the previous interval, and
	// a share of the others, so that each is read at least every N samples; the others keep
	// their last read. 0 or 1: every namespace in every sample.
	NetnsReadEvery int
	// NetIRQs are the IRQs of network interfaces found at start: only these are followed.
	NetIRQs map[int]bool
}

// Reader reads samples. It is not safe for concurrent use.
type Reader struct {
	cfg        Config
	nsCache    []netns.NS
	nsListedAt time.Time
	lastDrops  map[tracer.DropKey][]uint64
	quiesce    func()
	readAll    bool
	scratch    [3][]byte         // readSNMP's buffers, one per file of snmpFiles
	seq        int               // samples read
	last       map[uint32]*Netns // each namespace as the latest sample left it
	lastRead   map[uint32]int    // the sample that last read each namespace
	hot        map[uint32]bool   // namespaces whose traced drops moved in the latest interval
}

// NewReader returns a Reader of cfg's sources.
func NewReader(cfg Config) *Reader { return &Reader{cfg: cfg} }

// QuiesceNext has the next Read call f once between the two reads of the kernel counters,
// before the BPF maps are read: the session's last read detaches the programs there, so that
// its counts stop moving and the kernel counters' movement around it is still the slack.
func (r *Reader) QuiesceNext(f func()) { r.quiesce = f }

// ReadAllNext has the next Read read every namespace: a session's last, so that its summary
// covers each namespace up to its end.
func (r *Reader) ReadAllNext() { r.readAll = true }

// Namespaces are the network namespaces listed last.
func (r *Reader) Namespaces() []netns.NS { return r.nsCache }

// procCounters is one read of the /proc side.
type procCounters struct {
	softnet  softnet.Table
	snErr    error
	softirqs softirqs.Table
	siErr    error
	netns    map[uint32]*Netns
}

func (r *Reader) readProc(nss []netns.NS) procCounters {
	var p procCounters
	p.softnet, p.snErr = hostfs.ReadParse(r.cfg.FS, "/proc/net/softnet_stat", softnet.Parse)
	p.softirqs, p.siErr = hostfs.ReadParse(r.cfg.FS, "/proc/softirqs", softirqs.Parse)
	p.netns = make(map[uint32]*Netns, len(nss))
	for _, ns := range nss {
		c, err := readSNMP(ns, r.scratch[:])
		p.netns[uint32(ns.Inode)] = &Netns{NS: ns, SNMP: c, Err: err}
	}
	return p
}

// Read reads every source. A /proc file or namespace that cannot be read is reported in the
// Sample (SoftnetErr, SoftirqsErr, NetnsErr, Netns[…].Err, absent host context), never as an
// error: that is one interval's loss, and the next read may succeed. Only a BPF map that cannot
// be read is an error: the tracer's maps are read through descriptors opened at start, so a
// failure is not a passing shortage but maps gone or refused, which the next read would meet
// too.
func (r *Reader) Read() (*Sample, error) {
	sm := &Sample{At: time.Now()}
	// Namespaces come and go with containers; listing them walks /proc, so it is done at
	// most every NetnsEvery (and when drops name one not listed yet), before the reads.
	if r.nsCache == nil || time.Since(r.nsListedAt) >= r.cfg.NetnsEvery || r.unknownNetns(r.lastDrops) {
		list, err := r.cfg.ListNetns()
		if err != nil && len(list) == 0 {
			// Transient (descriptors exhausted by another process, /proc busy): the
			// namespaces listed last are read again, and the listing is retried next
			// time; drops in a namespace created since are reported unwatched, with this
			// error as the reason.
			sm.NetnsErr = fmt.Errorf("list network namespaces (kept the %d listed before): %w", len(r.nsCache), err)
		} else {
			r.nsCache, r.nsListedAt = list, time.Now()
		}
	}
	// Before the bracket: the generation flip waits for the kernel's RCU grace period, which
	// inside it would widen every check's slack. It drains the closed generation of
	// drop_counts too, so the bracket's read of the maps finds the new one nearly empty and
	// copies each key's per-CPU values once per interval, not twice. The socket counts name
	// sockets; no check rests on them.
	if tr := r.cfg.Tracer; tr != nil {
		var err error
		if sm.Sockets, err = tr.ReadSockDrops(); err != nil {
			return nil, err
		}
	}
	p := r.plan()
	before := r.readProc(slices.Concat(p.around, p.turn))
	if r.quiesce != nil {
		r.quiesce()
		r.quiesce = nil
	}
	if err := r.readTracer(sm); err != nil {
		return nil, err
	}
	r.hot = moving(r.lastDrops, sm.Drops)
	r.lastDrops = sm.Drops
	after := r.readProc(p.around)
	sm.Softnet, sm.SoftnetErr = after.softnet, after.snErr
	if sm.SoftnetErr == nil {
		sm.SoftnetErr = before.snErr
	}
	sm.Softirqs, sm.SoftirqsErr = after.softirqs, after.siErr
	if sm.SoftirqsErr == nil {
		sm.SoftirqsErr = before.siErr
	}
	sm.Netns = after.netns
	sm.Moved = moved(before, after)
	r.keep(sm, before, p)
	r.readHost(sm)
	return sm, nil
}

// readTracer reads the BPF maps: the only reads of the tracer's counters.
func (r *Reader) readTracer(sm *Sample) error {
	tr := r.cfg.Tracer
	if tr == nil {
		return nil
	}
	sm.TracerReadNs = monotonicNs()
	counts, stats, err := tr.ReadDropsAndStats()
	if err != nil {
		return err
	}
	sm.DropStats = stats
	sm.Drops = make(map[tracer.DropKey][]uint64, len(counts))
	for _, c := range counts {
		sm.Drops[c.Key] = c.PerCPU
	}
	if sm.NetRx, err = tr.ReadNetRx(); err != nil {
		return err
	}
	sm.NetRxRecursionMisses = tr.NetRxRecursionMisses()
	return nil
}

// readHost reads the host context that changes: IRQ counts, rx_dropped, sockets, multicast.
func (r *Reader) readHost(sm *Sample) {
	fsys := r.cfg.FS
	if len(r.cfg.NetIRQs) > 0 {
		if irqs, err := hostfs.ReadParse(fsys, "/proc/interrupts", hostctx.ParseInterrupts); err == nil {
			sm.IRQs = map[int]map[int]uint64{}
			for _, q := range irqs {
				if r.cfg.NetIRQs[q.Num] {
					sm.IRQs[q.Num] = q.Counts
				}
			}
		}
	}
	sm.RxDropped = hostctx.RxDropped(fsys)
	if st, err := hostfs.ReadParse(fsys, "/proc/net/sockstat", hostctx.ParseSockstat); err == nil {
		if st6, err := hostfs.ReadParse(fsys, "/proc/net/sockstat6", hostctx.ParseSockstat); err == nil {
			for g, m := range st6 {
				st[g] = m
			}
		}
		sm.Sockstat = st
	}
	if m, err := hostfs.ReadParse(fsys, "/proc/net/dev_mcast", hostctx.ParseDevMcast); err == nil {
		sm.Mcast, sm.McastOK = m, true
	}
}

// moved measures each checked counter's advance between two reads of the /proc side.
func moved(a, b procCounters) map[reconcile.Key]uint64 {
	m := map[reconcile.Key]uint64{}
	if a.snErr == nil && b.snErr == nil {
		for _, d := range softnet.Sub(a.softnet, b.softnet) {
			if !d.Valid {
				continue
			}
			m[reconcile.Key{Check: reconcile.CheckBacklog, CPU: -1}] += d.Dropped
			m[reconcile.Key{Check: reconcile.CheckSqueeze, CPU: d.CPU}] = d.TimeSqueeze
		}
	}
	if a.siErr == nil && b.siErr == nil {
		for cpu, v := range softirqs.Sub(a.softirqs, b.softirqs, "NET_RX") {
			m[reconcile.Key{Check: reconcile.CheckCoverage, CPU: cpu}] = v
		}
	}
	for ino, bn := range b.netns {
		an := a.netns[ino]
		if an == nil || an.SNMP == nil || bn.SNMP == nil {
			continue
		}
		for _, sc := range reconcile.SNMPChecks {
			for _, c := range sc.Counters {
				x, ok1 := an.SNMP.Get(c.Group, c.Field)
				y, ok2 := bn.SNMP.Get(c.Group, c.Field)
				if ok1 && ok2 && y > x {
					m[reconcile.Key{Check: sc.Name, CPU: -1}] += y - x
					if bn.Moved == nil {
						bn.Moved = map[string]uint64{}
					}
					bn.Moved[sc.Name] += y - x
				}
			}
		}
	}
	return m
}

// SNMPGroups are the SNMP groups read in each namespace: the socket-level drop counters that
// records keep and checks compare. Only these are parsed: namespaces are read every
// interval, and the others (TcpExt aside) are most of each file.
var SNMPGroups = []string{"Udp", "Udp6", "UdpLite", "UdpLite6", "TcpExt"}

// snmpFiles are the files readSNMP reads, entering the namespace once for all three.
var snmpFiles = []string{"snmp", "netstat", "snmp6"}

// readSNMP merges snmp, snmp6 and netstat of one namespace. snmp6 is absent without IPv6.
func readSNMP(ns netns.NS, scratch [][]byte) (snmp.Counters, error) {
	bufs, errs := ns.ReadFilesInto(scratch, snmpFiles...)
	for i, b := range bufs {
		if b != nil {
			scratch[i] = b // grown: the next namespace reads into it
		}
	}
	if errs[0] != nil {
		return nil, errs[0]
	}
	c, err := snmp.ParseGroups(bytes.NewReader(bufs[0]), SNMPGroups)
	if err != nil {
		return nil, fmt.Errorf("netns %d snmp: %w", ns.Inode, err)
	}
	if errs[1] == nil {
		n, err := snmp.ParseGroups(bytes.NewReader(bufs[1]), SNMPGroups)
		if err != nil {
			return nil, fmt.Errorf("netns %d netstat: %w", ns.Inode, err)
		}
		c.Merge(n)
	}
	if errs[2] == nil {
		n, err := snmp.ParseSNMP6Groups(bytes.NewReader(bufs[2]), SNMPGroups)
		if err != nil {
			return nil, fmt.Errorf("netns %d snmp6: %w", ns.Inode, err)
		}
		c.Merge(n)
	}
	return c, nil
}

// unknownNetns says whether drops came from a namespace not listed yet: a container that just
// started. Listing again now gives its counters a baseline one interval sooner.
func (r *Reader) unknownNetns(drops map[tracer.DropKey][]uint64) bool {
	if len(drops) == 0 {
		return false
	}
	known := make(map[uint32]bool, len(r.nsCache))
	for _, ns := range r.nsCache {
		known[uint32(ns.Inode)] = true
	}
	for k := range drops {
		if k.Netns != 0 && !known[k.Netns] {
			return true
		}
	}
	return false
}

// monotonicNs reads CLOCK_MONOTONIC, the clock bpf_ktime_get_ns stamps drop events with.
func monotonicNs() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}
