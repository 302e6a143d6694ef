// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// DropKey is what drops are aggregated by in BPF.
type DropKey struct {
	Reason   uint32 // raw enum skb_drop_reason, 32 bits (subsystem in the high 16)
	Netns    uint32 // netns inode
	Ifindex  uint32
	L3       uint16 // ethertype
	L4       uint8  // IP protocol
	Location uint64 // kernel text address of the caller of kfree_skb_reason
}

// DropCount is a cumulative count since the programs were loaded, per possible CPU.
type DropCount struct {
	Key    DropKey
	PerCPU []uint64
}

// DropStats are the drop programs' own counters, cumulative, per possible CPU.
type DropStats struct {
	Seen, AggFull, EventsSent, RateLimited, RingFull []uint64
	// RecursionMisses counts kfree_skb hits the kernel did not run the program for (a drop
	// inside a drop program's run on the same CPU, e.g. from a hard interrupt).
	RecursionMisses uint64
}

// NetRx is cumulative NET_RX softirq accounting of one CPU.
type NetRx struct {
	Runs, Exits, BusyNs, Polls, Packets uint64
	BudgetSqueezes, TimeSqueezes        uint64
	OtherPolls, OtherPackets, MaxRunNs  uint64
	RecursionMisses                     uint64 // summed over the three programs, all CPUs
}

// ReadDrops returns every aggregation key with its per-CPU cumulative counts.
func (t *Tracer) ReadDrops() ([]DropCount, error) {
	if !t.drops {
		return nil, nil
	}
	var (
		k   dropsDropKey
		v   []uint64
		out []DropCount
	)
	it := t.dropsM.DropCounts.Iterate()
	for it.Next(&k, &v) {
		out = append(out, DropCount{
			Key: DropKey{Reason: k.Reason, Netns: k.Netns, Ifindex: k.Ifindex, L3: k.L3, L4: k.L4,
				Location: k.Location},
			PerCPU: append([]uint64(nil), v...),
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read drop_counts map: %w", err)
	}
	return out, nil
}

// ReadDropStats returns the drop programs' own counters.
func (t *Tracer) ReadDropStats() (DropStats, error) {
	var s DropStats
	if !t.drops {
		return s, nil
	}
	dst := []*[]uint64{&s.Seen, &s.AggFull, &s.EventsSent, &s.RateLimited, &s.RingFull}
	for i, d := range dst {
		var v []uint64
		if err := t.dropsM.DropStats.Lookup(uint32(i), &v); err != nil {
			return s, fmt.Errorf("read drop_stats[%d]: %w", i, err)
		}
		*d = v
	}
	s.RecursionMisses = recursionMisses(t.progs["skb:kfree_skb"])
	return s, nil
}

// ReadNetRx returns NET_RX accounting per possible CPU (index = CPU id).
func (t *Tracer) ReadNetRx() ([]NetRx, error) {
	if !t.netrx {
		return nil, nil
	}
	var v []netrxNetrxStats
	if err := t.netrxM.NetrxPercpu.Lookup(uint32(0), &v); err != nil {
		return nil, fmt.Errorf("read netrx_percpu: %w", err)
	}
	var misses uint64
	for _, n := range netrxTracepoints {
		misses += recursionMisses(t.progs[n.name])
	}
	out := make([]NetRx, len(v))
	for i, s := range v {
		out[i] = NetRx{Runs: s.Runs, Exits: s.Exits, BusyNs: s.BusyNs, Polls: s.Polls,
			Packets: s.Packets, BudgetSqueezes: s.BudgetSqueezes, TimeSqueezes: s.TimeSqueezes,
			OtherPolls: s.OtherPolls, OtherPackets: s.OtherPackets, MaxRunNs: s.MaxRunNs,
			RecursionMisses: misses}
	}
	return out, nil
}

func recursionMisses(p *ebpf.Program) uint64 {
	if p == nil {
		return 0
	}
	st, err := p.Stats()
	if err != nil {
		return 0
	}
	return st.RecursionMisses
}

// errClosed is returned by NextEvent once the tracer is closed.
var errClosed = errors.New("tracer closed")
