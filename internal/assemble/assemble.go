// SPDX-License-Identifier: Apache-2.0

// Package assemble turns an interval's delta into the record users read: drops by CPU, L4
// protocol, call site and device, per-CPU NET_RX and softnet accounting, SNMP counters,
// the tracer's health, and the reconciliation checks. It is pure: names come in as functions,
// and nothing is read from the host.
package assemble

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/droptrace/droptrace/internal/interval"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Names turns kernel numbers into names for records.
type Names struct {
	// Reason names a drop by its reason code and its location: on kernels without drop
	// reasons the code is always 0 and the location tells the reason.
	Reason   func(code uint32, loc uint64) string
	Location func(uint64) string
	Ifname   func(netns, ifindex uint32) string
}

// Availability is what the session knows about each source.
type Availability struct {
	Drops, NetRx, Predict reconcile.Availability
	// LimitsExact: the NET_RX programs read the kernel's own limits at each run, so a sysctl
	// change does not explain a squeeze residual.
	LimitsExact bool
	// Unnamed are the drop reasons the checks rest on that this kernel does not have.
	Unnamed map[string]bool
	// Located says, where drops are named from their location, what that cannot separate.
	Located map[string]string
}

// Input is what a record is made of besides the delta of the kernel counters.
type Input struct {
	Type string
	Seq  int
	Time time.Time
	// Online are the CPUs online at start: NET_RX entries of other CPUs are not listed.
	Online map[int]bool
	// IRQs are the network IRQs found at start, by number.
	IRQs   map[int]record.NetIRQ
	Events Events
	// Sysctl holds the values at the end; SysctlChanges says when they changed.
	Sysctl        sysctl.NetCore
	SysctlChanges []string
}

// Events is what the drop event stream counted over the interval.
type Events struct {
	Written, WriteFailed uint64
	// MulticastDrops counts drop events to multicast destinations.
	MulticastDrops uint64
	// Ports are socket-level drop events by destination port, any order.
	Ports []record.PortDrops
}

// ReasonCPUBacklog is the drop reason of a full input backlog (enqueue_to_backlog).
const ReasonCPUBacklog = "CPU_BACKLOG"

// Record builds the record of delta d: every call site and port, sorted but not trimmed to
// the top-N (record.Interval.Trim does that once the record is added to the session's sum),
// without checks (Checks) and verdicts. netrx says whether NET_RX accounting is attached.
func Record(d *interval.Delta, in Input, names Names, netrx bool) *record.Interval {
	rec := &record.Interval{
		Header:     record.Header{Type: in.Type, Time: record.Time(in.Time)},
		Seq:        in.Seq,
		DurationMs: d.Duration.Milliseconds(),
		Drops:      map[string]uint64{},
		SNMP:       map[string]map[string]int64{},
		Checks:     []record.Check{},
	}
	byCPU := drops(rec, d, names)
	cpus(rec, d, byCPU, in.Online, netrx)
	rec.SNMP = snmpCounters(d.Netns)
	rec.NetnsCoverage = d.Coverage
	sc := Sysctl(in.Sysctl)
	rec.Sysctl = &sc
	rec.SysctlChanges = in.SysctlChanges
	rec.Tracer = tracerStats(d.Stats, in.Events)
	rec.LostEvents = rec.Tracer.EventsRateLimited + rec.Tracer.EventsRingbufFull + rec.Tracer.EventsWriteFailed
	rec.NetIRQs = irqCounts(d.IRQs, in.IRQs)
	rec.Ports = ports(d.Sockets, in.Events.Ports, names)
	rec.Sockstat = d.Sockstat
	rec.McastChanges = d.Mcast
	rec.MulticastDropEvents = in.Events.MulticastDrops
	if len(d.RxDropped) > 0 {
		rec.RxDropped = d.RxDropped
	}
	return rec
}

// Sysctl is the record form of the net.core settings.
func Sysctl(nc sysctl.NetCore) record.Sysctl {
	return record.Sysctl{NetdevBudget: nc.Budget, NetdevBudgetUsecs: nc.BudgetUsecs,
		NetdevMaxBacklog: nc.MaxBacklog, DevWeight: nc.DevWeight}
}

// cpuDrops is one CPU's drops by reason, and by reason and L4 protocol.
type cpuDrops struct {
	reasons map[string]uint64
	l4      map[string]map[string]uint64
}

// drops fills in the drops by reason, call site and device, and returns them by CPU.
func drops(rec *record.Interval, d *interval.Delta, names Names) map[int]*cpuDrops {
	byCPU := map[int]*cpuDrops{}
	type locKey struct {
		loc    uint64
		reason string
	}
	locs := map[locKey]uint64{}
	type devKey struct{ netns, ifindex uint32 }
	devs := map[devKey]map[string]uint64{}
	for k, v := range d.Drops {
		name := names.Reason(k.Reason, k.Location)
		l4 := L4Name(k.L3, uint16(k.L4))
		if l4 == "" {
			l4 = L4None
		}
		total := interval.Sum(v)
		rec.Drops[name] += total
		for cpu, x := range v {
			if x == 0 {
				continue
			}
			c := byCPU[cpu]
			if c == nil {
				c = &cpuDrops{reasons: map[string]uint64{}, l4: map[string]map[string]uint64{}}
				byCPU[cpu] = c
			}
			c.reasons[name] += x
			if c.l4[name] == nil {
				c.l4[name] = map[string]uint64{}
			}
			c.l4[name][l4] += x
		}
		locs[locKey{k.Location, name}] += total
		dk := devKey{k.Netns, k.Ifindex}
		if devs[dk] == nil {
			devs[dk] = map[string]uint64{}
		}
		devs[dk][name] += total
	}
	rec.Locations = make([]record.Location, 0, len(locs))
	for k, n := range locs {
		rec.Locations = append(rec.Locations, record.Location{Location: names.Location(k.loc), Reason: k.reason, Count: n})
	}
	record.SortLocations(rec.Locations)
	rec.Devices = make([]record.Device, 0, len(devs))
	for k, m := range devs {
		rec.Devices = append(rec.Devices, record.Device{Netns: k.netns, Ifindex: k.ifindex, Ifname: names.Ifname(k.netns, k.ifindex), Drops: m})
	}
	sort.Slice(rec.Devices, func(i, j int) bool {
		a, b := rec.Devices[i], rec.Devices[j]
		if a.Netns != b.Netns {
			return a.Netns < b.Netns
		}
		return a.Ifindex < b.Ifindex
	})
	return byCPU
}

// cpus lists every CPU seen in any source, and the online ones NET_RX accounting covers.
func cpus(rec *record.Interval, d *interval.Delta, byCPU map[int]*cpuDrops, online map[int]bool, netrx bool) {
	ids := make([]int, 0, len(d.CPUs))
	for c := range d.CPUs {
		ids = append(ids, c)
	}
	for c := range d.NetRx {
		if !d.CPUs[c] && online[c] {
			ids = append(ids, c)
		}
	}
	sort.Ints(ids)
	for _, c := range ids {
		rc := record.CPU{CPU: c, Drops: map[string]uint64{}}
		if cd := byCPU[c]; cd != nil {
			rc.Drops, rc.DropsL4 = cd.reasons, cd.l4
		}
		if n, ok := d.NetRx[c]; ok && netrx {
			rc.NetRx = &record.NetRx{
				Runs: n.Runs, KernelRuns: d.KernelRuns[c], BusyUs: n.BusyNs / 1000, MaxRunUs: n.MaxRunNs / 1000,
				TimedRuns: n.TimedRuns, TimeUncertain: n.TimeUncertain, TimeUnproven: n.TimeUnproven,
				Polls: n.Polls, Packets: n.Packets, BudgetSqueezes: n.BudgetSqueezes, TimeSqueezes: n.TimeSqueezes,
				OtherPolls: n.OtherPolls, OtherPackets: n.OtherPackets,
			}
		}
		if sn, ok := d.Softnet[c]; ok {
			rc.Softnet = &record.Softnet{Processed: sn.Processed, Dropped: sn.Dropped, TimeSqueeze: sn.TimeSqueeze,
				ReceivedRPS: sn.ReceivedRPS, FlowLimit: sn.FlowLimit, BacklogLen: sn.BacklogLen}
		}
		rec.CPUs = append(rec.CPUs, rc)
	}
}

// snmpCounters sums the socket-level drop counters of every namespace whose counters were read.
func snmpCounters(nss map[uint32]*interval.Netns) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, ns := range nss {
		for g, fs := range ns.SNMP {
			if out[g] == nil {
				out[g] = map[string]int64{}
			}
			for f, v := range fs {
				if g == "TcpExt" && !tcpExtKept[f] {
					continue
				}
				out[g][f] += v
			}
		}
	}
	return out
}

// tcpExtKept are the TcpExt counters about dropped segments; the other hundred are noise here.
var tcpExtKept = map[string]bool{
	"ListenOverflows": true, "ListenDrops": true, "TCPBacklogDrop": true, "PFMemallocDrop": true,
	"TCPMinTTLDrop": true, "TCPDeferAcceptDrop": true, "TCPReqQFullDrop": true, "TCPReqQFullDoCookies": true,
	"TCPRcvQDrop": true, "TCPZeroWindowDrop": true, "TCPOFODrop": true, "TCPAbortOnMemory": true,
	"PruneCalled": true, "RcvPruned": true, "OfoPruned": true, "TCPMemoryPressures": true,
}

func tracerStats(st interval.DropStats, ev Events) record.Tracer {
	return record.Tracer{
		EventsSent: st.Sent, EventsRateLimited: st.RateLimited, EventsRingbufFull: st.RingFull,
		EventsWriteFailed: ev.WriteFailed, EventsWritten: ev.Written, AggMapFull: st.AggFull, SockMapFull: st.SockFull,
		EventsFiltered:      st.Filtered,
		DropRecursionMisses: st.Recursion, NetRxRecursionMisses: st.NetRxRecursion,
	}
}

// irqCounts lists the network IRQs that fired in the interval, with their interface and queue.
func irqCounts(irqs map[int]map[int]uint64, info map[int]record.NetIRQ) []record.IRQCount {
	var out []record.IRQCount
	for irq, m := range irqs {
		c := record.IRQCount{IRQ: irq, Queue: -1, ByCPU: map[int]uint64{}}
		for cpu, v := range m {
			if v > 0 {
				c.ByCPU[cpu] = v
				c.Count += v
			}
		}
		if c.Count == 0 {
			continue
		}
		if q, ok := info[irq]; ok {
			c.Ifname, c.Queue = q.Ifname, q.Queue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IRQ < out[j].IRQ })
	return out
}

// L4None is the drops_l4 key of packets without an L4 protocol (not IP, or L3 unknown).
const L4None = "none"

// L3Name and L4Name give protocol names for records; unknown values keep their number.
func L3Name(v uint16) string {
	switch v {
	case 0:
		return ""
	case tracer.EthIPv4:
		return "ipv4"
	case tracer.EthIPv6:
		return "ipv6"
	case 0x0806:
		return "arp"
	case 0x8100:
		return "vlan"
	case 0x88cc:
		return "lldp"
	}
	return fmt.Sprintf("0x%04x", v)
}

// L4Name names an IP protocol number; "" when the packet is not IP.
func L4Name(l3, v uint16) string {
	if l3 != tracer.EthIPv4 && l3 != tracer.EthIPv6 {
		return ""
	}
	switch v {
	case 1:
		return "icmp"
	case 2:
		return "igmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	case 136:
		return "udplite"
	case 47:
		return "gre"
	case 50:
		return "esp"
	}
	return strconv.Itoa(int(v))
}
