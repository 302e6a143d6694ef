// SPDX-License-Identifier: Apache-2.0

package tracer

import (
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
	// SockFull counts socket-level drops that found the socket drop map full: counted by
	// reason, not by socket.
	SockFull []uint64
	// Filtered counts events not sent because the drop was outside Options.Filter.
	Filtered []uint64
	// RecursionMisses counts kfree_skb hits the kernel did not run the program for (a drop
	// inside a drop program's run on the same CPU, e.g. from a hard interrupt).
	RecursionMisses uint64
}

// NetRx is cumulative NET_RX softirq accounting of one CPU.
type NetRx struct {
	Runs, Exits, Polls, Packets        uint64
	BudgetSqueezes, TimeSqueezes       uint64
	OtherPolls, OtherPackets, MaxRunNs uint64
	// Busy time: BusyNs over the TimedRuns timed one by one, and SampleBusyNs over SampleRuns
	// runs timed in place of SampledFrom runs (see struct netrx_stats in bpf/droptrace.h).
	BusyNs, TimedRuns                     uint64
	SampleBusyNs, SampleRuns, SampledFrom uint64
	// TimeUncertain counts runs whose time squeeze BPF could not decide (a tick at the end of
	// the run; see struct netrx_stats).
	TimeUncertain uint64
	// TimeUnproven counts the time squeezes in TimeSqueezes that may be wrong: predicted at a
	// run's last poll before the latest limit net_rx_action can have used (see struct
	// netrx_stats).
	TimeUnproven uint64
}

// EstBusyNs is the NET_RX busy time of the runs counted in n (a delta), exact when no run was
// sampled: the sampled runs' mean duration stands for the runs that were not timed.
func (n NetRx) EstBusyNs() uint64 {
	if n.SampleRuns == 0 {
		if n.SampledFrom > 0 && n.TimedRuns > 0 {
			return n.BusyNs + n.BusyNs/n.TimedRuns*n.SampledFrom
		}
		return n.BusyNs
	}
	return n.BusyNs + uint64(float64(n.SampleBusyNs)*float64(n.SampledFrom)/float64(n.SampleRuns)+0.5)
}

// ReadDrops returns every aggregation key with its per-CPU cumulative counts.
func (t *Tracer) ReadDrops() ([]DropCount, error) {
	counts, _, err := t.ReadDropsAndStats()
	return counts, err
}

// ReadDropsAndStats returns every aggregation key with its per-CPU cumulative counts, and the
// drop programs' own counters, from one copy of each CPU's drop_cpu value: its cache slots and
// its counters then agree, where two reads would let a drop between them be counted in one
// and not the other. A key's count adds the generations drained so far (dropTotal), what the
// drop_counts maps hold now, and its cache slots.
func (t *Tracer) ReadDropsAndStats() ([]DropCount, DropStats, error) {
	if !t.drops {
		return nil, DropStats{}, nil
	}
	s := newDropSet(t.ncpu, len(t.dropTotal))
	for k, v := range t.dropTotal {
		copy(s.counts(k), v)
	}
	// Both maps: the one BPF counts into, and the other, empty unless a drain failed.
	for _, m := range t.dropMaps() {
		err := readMap(m, false, t.ncpu, &t.dropBuf, func(k dropsDropKey, v []uint64) {
			c := s.counts(dropKey(k))
			for cpu, n := range v {
				c[cpu] += n
			}
		})
		if err != nil {
			return nil, DropStats{}, fmt.Errorf("read drop_counts map: %w", err)
		}
	}
	pcs, err := t.readDropCPU()
	if err != nil {
		return nil, DropStats{}, err
	}
	s.addSlots(pcs)
	return s.out, t.dropStats(pcs), nil
}

func dropKey(k dropsDropKey) DropKey {
	return DropKey{Reason: k.Reason, Netns: k.Netns, Ifindex: k.Ifindex, L3: k.L3, L4: k.L4,
		Location: k.Location}
}

// dropSet builds ReadDrops' answer: one DropCount per key, its per-CPU counts cut from shared
// blocks rather than allocated one by one.
type dropSet struct {
	out  []DropCount
	at   map[DropKey]int
	ncpu int
	free []uint64
}

func newDropSet(ncpu, keys int) *dropSet {
	return &dropSet{out: make([]DropCount, 0, keys), at: make(map[DropKey]int, keys), ncpu: ncpu}
}

// counts returns key's per-CPU counts, to add to.
func (s *dropSet) counts(key DropKey) []uint64 {
	if i, ok := s.at[key]; ok {
		return s.out[i].PerCPU
	}
	if len(s.free) < s.ncpu {
		s.free = make([]uint64, s.ncpu*max(64, len(s.out)/2))
	}
	c := s.free[:s.ncpu:s.ncpu]
	s.free = s.free[s.ncpu:]
	s.at[key] = len(s.out)
	s.out = append(s.out, DropCount{Key: key, PerCPU: c})
	return c
}

// addSlots adds the counts in the per-CPU cache slots (drop_cpu.slots). On one CPU a key is
// counted in its slot if it was the first key there (slots are never given up), else in the
// drop_counts maps.
func (s *dropSet) addSlots(pcs []dropsDropCpu) {
	for i := range dtDropCacheSlots {
		// A key has the same slot on every CPU, so a slot's CPUs mostly hold one key: looked
		// up once, not once per CPU.
		var (
			last   dropsDropKey
			counts []uint64
		)
		for cpu := range pcs {
			sl := &pcs[cpu].Slots[i]
			if !sealed(*sl) {
				continue // free, or claimed while it was read: its count is read next time
			}
			if counts == nil || sl.Key != last {
				last, counts = sl.Key, s.counts(dropKey(sl.Key))
			}
			counts[cpu] += sl.Count
		}
	}
}

// dtDropCacheSlots is DT_DROP_CACHE_SLOTS in bpf/droptrace.h.
const dtDropCacheSlots = len(dropsDropCpu{}.Slots)

// readDropCPU copies every CPU's drop_cpu value.
func (t *Tracer) readDropCPU() ([]dropsDropCpu, error) {
	var pcs []dropsDropCpu
	if err := t.dropsM.DropPercpu.Lookup(uint32(0), &pcs); err != nil {
		return nil, fmt.Errorf("read drop_percpu: %w", err)
	}
	return pcs, nil
}

// sealed says whether a copy of a slot holds a count and the whole key it counts: the seal is
// set, and every key word it says is nonzero was read as nonzero (struct drop_slot).
func sealed(s dropsDropSlot) bool {
	if s.Count == 0 || s.Seal&dtSlotSealed == 0 {
		return false
	}
	k := s.Key
	nonzero := [3]bool{k.Location != 0, k.Reason != 0 || k.Netns != 0,
		k.Ifindex != 0 || k.L3 != 0 || k.L4 != 0 || k.Pad != 0}
	for i, nz := range nonzero {
		if s.Seal&dtSlotWord(i) != 0 && !nz {
			return false
		}
	}
	return true
}

// The seal's bits, DT_SLOT_SEALED and DT_SLOT_WORD in bpf/droptrace.h.
const dtSlotSealed = 1

func dtSlotWord(i int) uint64 { return 2 << i }

// ReadDropStats returns the drop programs' own counters.
func (t *Tracer) ReadDropStats() (DropStats, error) {
	if !t.drops {
		return DropStats{}, nil
	}
	pcs, err := t.readDropCPU()
	if err != nil {
		return DropStats{}, err
	}
	return t.dropStats(pcs), nil
}

// dropStats takes the counters out of a copy of drop_percpu.
func (t *Tracer) dropStats(pcs []dropsDropCpu) DropStats {
	var s DropStats
	for _, c := range []struct {
		stat dropsDropStat
		dst  *[]uint64
	}{
		{dropsDropStatDROP_STAT_SEEN, &s.Seen},
		{dropsDropStatDROP_STAT_AGG_FULL, &s.AggFull},
		{dropsDropStatDROP_STAT_EVENTS_SENT, &s.EventsSent},
		{dropsDropStatDROP_STAT_EVENTS_RATELIMITED, &s.RateLimited},
		{dropsDropStatDROP_STAT_EVENTS_RINGBUF_FULL, &s.RingFull},
		{dropsDropStatDROP_STAT_SOCK_FULL, &s.SockFull},
		{dropsDropStatDROP_STAT_EVENTS_FILTERED, &s.Filtered},
	} {
		*c.dst = make([]uint64, len(pcs))
		for cpu := range pcs {
			(*c.dst)[cpu] = pcs[cpu].Stats[c.stat]
		}
	}
	s.RecursionMisses = recursionMisses(t.progs[dropTracepoint.name])
	return s
}

// ReadNetRx returns NET_RX accounting per possible CPU (index = CPU id).
func (t *Tracer) ReadNetRx() ([]NetRx, error) {
	if !t.netrx {
		return nil, nil
	}
	var v []netrxNetrxCpu
	if err := t.netrxM.NetrxPercpu.Lookup(uint32(0), &v); err != nil {
		return nil, fmt.Errorf("read netrx_percpu: %w", err)
	}
	out := make([]NetRx, len(v))
	for i, c := range v {
		s := c.Stats
		out[i] = NetRx{Runs: s.Runs, Exits: s.Exits, BusyNs: s.BusyNs, Polls: s.Polls,
			Packets: s.Packets, BudgetSqueezes: s.BudgetSqueezes, TimeSqueezes: s.TimeSqueezes,
			OtherPolls: s.OtherPolls, OtherPackets: s.OtherPackets, MaxRunNs: s.MaxRunNs,
			TimedRuns: s.TimedRuns, SampleBusyNs: s.SampleBusyNs, SampleRuns: s.SampleRuns,
			SampledFrom: s.SampledFrom, TimeUncertain: s.TimeUncertain, TimeUnproven: s.TimeUnproven}
		// A time squeeze is counted at its run's exit (bpf/netrx.c). Once the programs are
		// detached, a run caught between its squeeze and its exit will not be seen to exit:
		// its squeeze counts now.
		if len(t.links) == 0 && c.Run.Active != 0 && c.Run.TimePending != 0 {
			out[i].TimeSqueezes++
			if int64(c.Run.PredJiffy-c.Run.LimitHi) < 0 {
				out[i].TimeUnproven++
			}
		}
	}
	return out, nil
}

// NetRxRecursionMisses counts, over all CPUs and the three NET_RX programs, the tracepoint hits
// the kernel did not run a program for because one was already running on that CPU.
func (t *Tracer) NetRxRecursionMisses() uint64 {
	var misses uint64
	for _, n := range netrxTracepoints {
		misses += recursionMisses(t.progs[n.name])
	}
	return misses
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
