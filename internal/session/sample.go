// SPDX-License-Identifier: Apache-2.0

package session

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/snmp"
	"github.com/droptrace/droptrace/internal/softirqs"
	"github.com/droptrace/droptrace/internal/softnet"
	"github.com/droptrace/droptrace/internal/tracer"
)

// sample is every source read at one instant: cumulative values, turned into deltas later.
type sample struct {
	at       time.Time
	skew     time.Duration // from the first BPF read to the last /proc read
	drops    map[tracer.DropKey][]uint64
	dstats   tracer.DropStats
	netrx    []tracer.NetRx
	softnet  softnet.Table
	snErr    error
	softirqs softirqs.Table
	siErr    error
	netns    map[uint32]*nsSample
}

type nsSample struct {
	ns   netns.NS
	snmp snmp.Counters // nil when unreadable
	err  error
}

// sources reads the kernel. Paths are fields so tests can point them at fixtures.
type sources struct {
	tr          *tracer.Tracer // nil in counters-only mode
	softnetPath string
	softirqPath string
	listNetns   func() ([]netns.NS, error)
	nsCache     []netns.NS
	nsListedAt  time.Time
	nsEvery     time.Duration
}

func (s *sources) read() (*sample, error) {
	sm := &sample{at: time.Now(), netns: map[uint32]*nsSample{}}
	t0 := time.Now()
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
	sm.softnet, sm.snErr = readParse(s.softnetPath, softnet.Parse)
	sm.softirqs, sm.siErr = readParse(s.softirqPath, softirqs.Parse)

	// Namespaces come and go with containers; listing them walks /proc, so it is done at
	// most every nsEvery while their counters are read every time.
	if s.nsCache == nil || time.Since(s.nsListedAt) >= s.nsEvery || s.unknownNetns(sm.drops) {
		list, err := s.listNetns()
		if err != nil && len(list) == 0 {
			return nil, fmt.Errorf("list network namespaces: %w", err)
		}
		s.nsCache, s.nsListedAt = list, time.Now()
	}
	for _, ns := range s.nsCache {
		c, err := readSNMP(ns)
		sm.netns[uint32(ns.Inode)] = &nsSample{ns: ns, snmp: c, err: err}
	}
	sm.skew = time.Since(t0)
	return sm, nil
}

func readParse[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	b, err := os.ReadFile(path)
	if err != nil {
		return zero, err
	}
	v, err := parse(bytes.NewReader(b))
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
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
