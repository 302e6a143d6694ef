// SPDX-License-Identifier: Apache-2.0

package session

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"

	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// namer turns kernel numbers into names for records.
type namer struct {
	reason   func(uint32) string
	location func(uint64) string
	ifname   func(netns, ifindex uint32) string
}

// availability is what the session knows about each source.
type availability struct {
	drops, netrx, predict reconcile.Availability
}

func (s *Session) buildRecord(d *delta, typ string, seq int) *record.Interval {
	rec := &record.Interval{
		Header:     record.Header{Type: typ, Time: record.Time(s.now())},
		Seq:        seq,
		DurationMs: d.duration.Milliseconds(),
		Drops:      map[string]uint64{},
		SNMP:       map[string]map[string]int64{},
		Checks:     []record.Check{},
		Locations:  []record.Location{},
		Devices:    []record.Device{},
	}
	perCPU := map[int]map[string]uint64{}
	perCPUL4 := map[int]map[string]map[string]uint64{} // cpu -> reason -> l4 -> packets
	type locKey struct {
		loc    uint64
		reason string
	}
	locs := map[locKey]uint64{}
	type devKey struct{ netns, ifindex uint32 }
	devs := map[devKey]map[string]uint64{}
	backlog := map[int]uint64{}
	for k, v := range d.drops {
		name := s.names.reason(k.Reason)
		l4 := l4Name(k.L3, uint16(k.L4))
		if l4 == "" {
			l4 = l4None
		}
		total := sum(v)
		rec.Drops[name] += total
		for cpu, x := range v {
			if x == 0 {
				continue
			}
			if perCPU[cpu] == nil {
				perCPU[cpu] = map[string]uint64{}
			}
			perCPU[cpu][name] += x
			if perCPUL4[cpu] == nil {
				perCPUL4[cpu] = map[string]map[string]uint64{}
			}
			if perCPUL4[cpu][name] == nil {
				perCPUL4[cpu][name] = map[string]uint64{}
			}
			perCPUL4[cpu][name][l4] += x
			if name == reasonCPUBacklog {
				backlog[cpu] += x
			}
		}
		locs[locKey{k.Location, name}] += total
		dk := devKey{k.Netns, k.Ifindex}
		if devs[dk] == nil {
			devs[dk] = map[string]uint64{}
		}
		devs[dk][name] += total
	}
	for k, n := range locs {
		rec.Locations = append(rec.Locations, record.Location{Location: s.names.location(k.loc), Reason: k.reason, Count: n})
	}
	record.SortLocations(rec.Locations)
	if len(rec.Locations) > record.TopLocations {
		rec.Locations = rec.Locations[:record.TopLocations]
	}
	for k, m := range devs {
		rec.Devices = append(rec.Devices, record.Device{Netns: k.netns, Ifindex: k.ifindex, Ifname: s.names.ifname(k.netns, k.ifindex), Drops: m})
	}
	sort.Slice(rec.Devices, func(i, j int) bool {
		a, b := rec.Devices[i], rec.Devices[j]
		if a.Netns != b.Netns {
			return a.Netns < b.Netns
		}
		return a.Ifindex < b.Ifindex
	})

	cpus := make([]int, 0, len(d.cpus))
	for c := range d.cpus {
		cpus = append(cpus, c)
	}
	for c := range d.netrx {
		if !d.cpus[c] && s.online[c] {
			cpus = append(cpus, c)
		}
	}
	sort.Ints(cpus)
	in := reconcile.Input{
		Duration: d.duration,
		Drops:    s.avail.drops, NetRx: s.avail.netrx, Predict: s.predictAvail(),
		SysctlChanges:       d.sysctlChanges,
		Slack:               d.slack,
		Softnet:             avail(d.snErr, "/proc/net/softnet_stat"),
		Softirqs:            avail(d.siErr, "/proc/softirqs"),
		BacklogByCPU:        backlog,
		DropRecursionMisses: d.dstats.recursion,
		AggMapFull:          d.dstats.aggFull,
	}
	for _, c := range cpus {
		rc := record.CPU{CPU: c, Drops: perCPU[c], DropsL4: perCPUL4[c]}
		if rc.Drops == nil {
			rc.Drops = map[string]uint64{}
		}
		ic := reconcile.CPU{CPU: c}
		if n, ok := d.netrx[c]; ok && s.avail.netrx.OK {
			rc.NetRx = &record.NetRx{
				Runs: n.Runs, KernelRuns: d.netrxK[c], BusyUs: n.BusyNs / 1000, MaxRunUs: n.MaxRunNs / 1000,
				TimedRuns: n.TimedRuns, TimeUncertain: n.TimeUncertain,
				Polls: n.Polls, Packets: n.Packets, BudgetSqueezes: n.BudgetSqueezes, TimeSqueezes: n.TimeSqueezes,
				OtherPolls: n.OtherPolls, OtherPackets: n.OtherPackets,
			}
			ic.Runs, ic.BudgetSqueezes, ic.TimeSqueezes = n.Runs, n.BudgetSqueezes, n.TimeSqueezes
			ic.TimeUncertain = n.TimeUncertain
		}
		if k, ok := d.netrxK[c]; ok {
			ic.KernelRuns, ic.HasKernelRuns = k, true
		}
		if sn, ok := d.softnet[c]; ok {
			rc.Softnet = &record.Softnet{Processed: sn.Processed, Dropped: sn.Dropped, TimeSqueeze: sn.TimeSqueeze,
				ReceivedRPS: sn.ReceivedRPS, FlowLimit: sn.FlowLimit, BacklogLen: sn.BacklogLen}
			ic.Softnet = &reconcile.Softnet{Dropped: sn.Dropped, TimeSqueeze: sn.TimeSqueeze}
		}
		rec.CPUs = append(rec.CPUs, rc)
		in.CPUs = append(in.CPUs, ic)
	}

	inos := make([]uint32, 0, len(d.netns))
	for ino := range d.netns {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		ns := d.netns[ino]
		if ns.snmp != nil {
			in.Netns = append(in.Netns, reconcile.Netns{Inode: ino, Name: ns.name, Traced: ns.traced, SNMP: ns.snmp})
			for g, fs := range ns.snmp {
				if rec.SNMP[g] == nil {
					rec.SNMP[g] = map[string]int64{}
				}
				for f, v := range fs {
					if g == "TcpExt" && !tcpExtKept[f] {
						continue
					}
					rec.SNMP[g][f] += v
				}
			}
		}
		if len(ns.unwatched) > 0 {
			why := ns.why
			if why == "" {
				why = "counters unreadable for part of the session"
			}
			in.Netns = append(in.Netns, reconcile.Netns{Inode: ino, Name: ns.name, Traced: ns.unwatched, Why: why})
		}
	}
	rec.Checks = reconcile.Checks(in)
	sc := sysctlRecord(d.sysctl)
	rec.Sysctl = &sc
	rec.SysctlChanges = d.sysctlChanges
	rec.Tracer = record.Tracer{
		EventsSent: d.dstats.sent, EventsRateLimited: d.dstats.rateLimited, EventsRingbufFull: d.dstats.ringFull,
		EventsWriteFailed: d.dstats.writeFailed, EventsWritten: d.dstats.written, AggMapFull: d.dstats.aggFull,
		DropRecursionMisses: d.dstats.recursion, NetRxRecursionMisses: d.dstats.netrxRecursion,
	}
	rec.LostEvents = d.dstats.rateLimited + d.dstats.ringFull + d.dstats.writeFailed
	rec.NetIRQs = s.irqCounts(d)
	rec.Ports = topPorts(d.ports)
	s.annotateOwners(rec.Ports)
	rec.Sockstat = d.sockstat
	rec.McastChanges = d.mcast
	rec.MulticastDropEvents = d.mcastDrop
	if len(d.rxDropped) > 0 {
		rec.RxDropped = d.rxDropped
	}
	rec.Verdicts = explain.Explain(s.startRec, rec)
	return rec
}

// tcpExtKept are the TcpExt counters about dropped segments; the other hundred are noise here.
var tcpExtKept = map[string]bool{
	"ListenOverflows": true, "ListenDrops": true, "TCPBacklogDrop": true, "PFMemallocDrop": true,
	"TCPMinTTLDrop": true, "TCPDeferAcceptDrop": true, "TCPReqQFullDrop": true, "TCPReqQFullDoCookies": true,
	"TCPRcvQDrop": true, "TCPZeroWindowDrop": true, "TCPOFODrop": true, "TCPAbortOnMemory": true,
	"PruneCalled": true, "RcvPruned": true, "OfoPruned": true, "TCPMemoryPressures": true,
}

func avail(err error, what string) reconcile.Availability {
	if err != nil {
		return reconcile.Availability{Why: fmt.Sprintf("%s unreadable: %v", what, err)}
	}
	return reconcile.Availability{OK: true}
}

// l4None is the drops_l4 key of packets without an L4 protocol (not IP, or L3 unknown).
const l4None = "none"

// l3Name and l4Name give protocol names for drop events; unknown values keep their number.
func l3Name(v uint16) string {
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

func l4Name(l3, v uint16) string {
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

// irqCounts lists the network IRQs that fired in the interval, with their interface and queue.
func (s *Session) irqCounts(d *delta) []record.IRQCount {
	var out []record.IRQCount
	for irq, m := range d.irqs {
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
		if q, ok := s.irqInfo[irq]; ok {
			c.Ifname, c.Queue = q.Ifname, q.Queue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IRQ < out[j].IRQ })
	return out
}

// topPorts keeps the ports with the most socket-level drop events.
func topPorts(m map[portKey]uint64) []record.PortDrops {
	out := make([]record.PortDrops, 0, len(m))
	for k, n := range m {
		out = append(out, record.PortDrops{Reason: k.reason, L4: k.l4, Port: k.port, Netns: k.netns, Events: n})
	}
	record.SortPorts(out)
	if len(out) > record.TopPorts {
		out = out[:record.TopPorts]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

type ownerKey struct {
	netns uint32
	port  uint16
}

// annotateOwners finds who holds each overflowing UDP socket: its inode from the namespace's
// /proc/net/udp(6), then the process with that socket open. The /proc walk is done once per
// socket and cached.
func (s *Session) annotateOwners(ports []record.PortDrops) {
	for i := range ports {
		p := &ports[i]
		if p.Reason != "SOCKET_RCVBUFF" || p.L4 != "udp" || s.src == nil {
			continue
		}
		var ns *netns.NS
		for j := range s.src.nsCache {
			if uint32(s.src.nsCache[j].Inode) == p.Netns {
				ns = &s.src.nsCache[j]
			}
		}
		if ns == nil {
			continue
		}
		var sock *hostctx.UDPSocket
		for _, file := range []string{"udp", "udp6"} {
			b, err := ns.ReadFile(file)
			if err != nil {
				continue
			}
			socks, err := hostctx.ParseProcNetUDP(bytes.NewReader(b))
			if err != nil {
				continue
			}
			for k := range socks {
				if socks[k].LocalPort == p.Port {
					sock = &socks[k]
					break
				}
			}
			if sock != nil {
				break
			}
		}
		if sock == nil {
			continue
		}
		p.SocketDrops = sock.Drops
		if s.owners == nil {
			s.owners = map[ownerKey]ownerEntry{}
		}
		k := ownerKey{p.Netns, p.Port}
		o, ok := s.owners[k]
		if !ok || o.inode != sock.Inode {
			own, found := hostctx.FindOwner(s.cfg.FS, sock.Inode)
			o = ownerEntry{inode: sock.Inode, owner: own, found: found}
			s.owners[k] = o
		}
		if o.found {
			p.PID, p.Comm, p.Cgroup = o.owner.PID, o.owner.Comm, o.owner.Cgroup
		}
	}
}

type ownerEntry struct {
	inode uint64
	owner hostctx.Owner
	found bool
}
