// SPDX-License-Identifier: Apache-2.0

package session

import (
	"bytes"
	"fmt"
	"time"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/snmp"
	"github.com/droptrace/droptrace/internal/softirqs"
	"github.com/droptrace/droptrace/internal/softnet"
	"github.com/droptrace/droptrace/internal/tracer"
)

// sample is every source read at one instant: cumulative values, turned into deltas later.
type sample struct {
	at        time.Time
	drops     map[tracer.DropKey][]uint64
	dstats    tracer.DropStats
	netrx     []tracer.NetRx
	softnet   softnet.Table
	snErr     error
	softirqs  softirqs.Table
	siErr     error
	netns     map[uint32]*nsSample
	irqs      map[int]map[int]uint64 // network IRQ -> CPU -> interrupts (cumulative)
	rxDropped map[string]uint64      // interface -> core rx_dropped (cumulative)
	sockstat  map[string]map[string]int64
	mcast     []hostctx.McastAddr
	mcastOK   bool
	// moved is how far each checked kernel counter advanced while the BPF maps were read:
	// the kernel counters are read just before and just after them. A traced count read in
	// between can differ from the kernel's by at most that much, in either direction; this
	// bounds every check exactly, with no rate estimate.
	moved map[reconcile.Key]uint64
}

type nsSample struct {
	ns   netns.NS
	snmp snmp.Counters // nil when unreadable
	err  error
}

// sources reads the kernel, under fs.
type sources struct {
	tr         *tracer.Tracer // nil in counters-only mode
	fs         hostfs.FS
	listNetns  func() ([]netns.NS, error)
	nsCache    []netns.NS
	nsListedAt time.Time
	nsEvery    time.Duration
	lastDrops  map[tracer.DropKey][]uint64
	// netIRQs are the IRQs of network interfaces found at start: only these are followed.
	netIRQs map[int]bool
	// quiesce, when set, is called once between the two reads of the kernel counters, before
	// the BPF maps are read: the session's last read detaches the programs there, so that its
	// counts stop moving and the kernel counters' movement around it is still the slack.
	quiesce func()
}

// procCounters is one read of the /proc side.
type procCounters struct {
	softnet  softnet.Table
	snErr    error
	softirqs softirqs.Table
	siErr    error
	netns    map[uint32]*nsSample
}

func (s *sources) readProc() procCounters {
	var p procCounters
	p.softnet, p.snErr = hostfs.ReadParse(s.fs, "/proc/net/softnet_stat", softnet.Parse)
	p.softirqs, p.siErr = hostfs.ReadParse(s.fs, "/proc/softirqs", softirqs.Parse)
	p.netns = make(map[uint32]*nsSample, len(s.nsCache))
	for _, ns := range s.nsCache {
		c, err := readSNMP(ns)
		p.netns[uint32(ns.Inode)] = &nsSample{ns: ns, snmp: c, err: err}
	}
	return p
}

func (s *sources) read() (*sample, error) {
	sm := &sample{at: time.Now()}
	// Namespaces come and go with containers; listing them walks /proc, so it is done at
	// most every nsEvery (and when drops name one not listed yet), before the reads.
	if s.nsCache == nil || time.Since(s.nsListedAt) >= s.nsEvery || s.unknownNetns(s.lastDrops) {
		list, err := s.listNetns()
		if err != nil && len(list) == 0 {
			return nil, fmt.Errorf("list network namespaces: %w", err)
		}
		s.nsCache, s.nsListedAt = list, time.Now()
	}
	before := s.readProc()
	if s.quiesce != nil {
		s.quiesce()
		s.quiesce = nil
	}
	if s.tr != nil {
		counts, err := s.tr.ReadDrops()
		if err != nil {
			return nil, err
		}
		sm.drops = make(map[tracer.DropKey][]uint64, len(counts))
		for _, c := range counts {
			sm.drops[c.Key] = c.PerCPU
		}
		if sm.dstats, err = s.tr.ReadDropStats(); err != nil {
			return nil, err
		}
		if sm.netrx, err = s.tr.ReadNetRx(); err != nil {
			return nil, err
		}
	}
	s.lastDrops = sm.drops
	after := s.readProc()
	sm.softnet, sm.snErr = after.softnet, firstErr(after.snErr, before.snErr)
	sm.softirqs, sm.siErr = after.softirqs, firstErr(after.siErr, before.siErr)
	sm.netns = after.netns
	sm.moved = moved(before, after)
	if len(s.netIRQs) > 0 {
		if irqs, err := hostfs.ReadParse(s.fs, "/proc/interrupts", hostctx.ParseInterrupts); err == nil {
			sm.irqs = map[int]map[int]uint64{}
			for _, q := range irqs {
				if s.netIRQs[q.Num] {
					sm.irqs[q.Num] = q.Counts
				}
			}
		}
	}
	sm.rxDropped = hostctx.RxDropped(s.fs)
	if st, err := hostfs.ReadParse(s.fs, "/proc/net/sockstat", hostctx.ParseSockstat); err == nil {
		if st6, err := hostfs.ReadParse(s.fs, "/proc/net/sockstat6", hostctx.ParseSockstat); err == nil {
			for g, m := range st6 {
				st[g] = m
			}
		}
		sm.sockstat = st
	}
	sm.mcast, sm.mcastOK = nil, false
	if m, err := hostfs.ReadParse(s.fs, "/proc/net/dev_mcast", hostctx.ParseDevMcast); err == nil {
		sm.mcast, sm.mcastOK = m, true
	}
	return sm, nil
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
		if an == nil || an.snmp == nil || bn.snmp == nil {
			continue
		}
		for _, sc := range reconcile.SNMPChecks {
			for _, c := range sc.Counters {
				x, ok1 := an.snmp.Get(c.Group, c.Field)
				y, ok2 := bn.snmp.Get(c.Group, c.Field)
				if ok1 && ok2 && y > x {
					m[reconcile.Key{Check: sc.Name, CPU: -1}] += y - x
				}
			}
		}
	}
	return m
}

// addMoved sums the read windows of two samples: an interval's slack is the counter's
// movement during the read that opened it plus the one that closed it.
func addMoved(a, b map[reconcile.Key]uint64) map[reconcile.Key]uint64 {
	out := make(map[reconcile.Key]uint64, len(a)+len(b))
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}

// readSNMP merges snmp, snmp6 and netstat of one namespace. snmp6 is absent without IPv6.
func readSNMP(ns netns.NS) (snmp.Counters, error) {
	b, err := ns.ReadFile("snmp")
	if err != nil {
		return nil, err
	}
	c, err := snmp.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("netns %d snmp: %w", ns.Inode, err)
	}
	if b, err := ns.ReadFile("netstat"); err == nil {
		n, err := snmp.Parse(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("netns %d netstat: %w", ns.Inode, err)
		}
		c.Merge(n)
	}
	if b, err := ns.ReadFile("snmp6"); err == nil {
		n, err := snmp.ParseSNMP6(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("netns %d snmp6: %w", ns.Inode, err)
		}
		c.Merge(n)
	}
	return c, nil
}

// unknownNetns says whether drops came from a namespace not listed yet: a container that just
// started. Listing again now gives its counters a baseline one interval sooner.
func (s *sources) unknownNetns(drops map[tracer.DropKey][]uint64) bool {
	if len(drops) == 0 {
		return false
	}
	known := make(map[uint32]bool, len(s.nsCache))
	for _, ns := range s.nsCache {
		known[uint32(ns.Inode)] = true
	}
	for k := range drops {
		if k.Netns != 0 && !known[k.Netns] {
			return true
		}
	}
	return false
}
