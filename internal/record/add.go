// SPDX-License-Identifier: Apache-2.0

package record

import (
	"math"
	"sort"
)

// Top-N bounds of a written interval or summary record: the long tail of call sites and ports
// is rarely useful and would make every line long.
const (
	TopLocations = 20
	TopPorts     = 10
)

// AddSat returns a+b, or math.MaxUint64 when the sum overflows: a hostile or corrupt
// recording must not wrap a total round to a small number.
func AddSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// AddSatInt returns a+b clamped to the int64 range (SNMP deltas can be negative).
func AddSatInt(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// AddCounts adds src into dst, allocating dst when it is nil and src is not.
func AddCounts[K comparable](dst, src map[K]uint64) map[K]uint64 {
	if dst == nil && len(src) > 0 {
		dst = make(map[K]uint64, len(src))
	}
	for k, v := range src {
		dst[k] = AddSat(dst[k], v)
	}
	return dst
}

// Add adds o's counts; MaxRunUs is a high-water mark and takes the larger.
func (a *NetRx) Add(o *NetRx) {
	a.Runs = AddSat(a.Runs, o.Runs)
	a.KernelRuns = AddSat(a.KernelRuns, o.KernelRuns)
	a.BusyUs = AddSat(a.BusyUs, o.BusyUs)
	a.MaxRunUs = max(a.MaxRunUs, o.MaxRunUs)
	a.TimedRuns = AddSat(a.TimedRuns, o.TimedRuns)
	a.Polls = AddSat(a.Polls, o.Polls)
	a.Packets = AddSat(a.Packets, o.Packets)
	a.BudgetSqueezes = AddSat(a.BudgetSqueezes, o.BudgetSqueezes)
	a.TimeSqueezes = AddSat(a.TimeSqueezes, o.TimeSqueezes)
	a.TimeUncertain = AddSat(a.TimeUncertain, o.TimeUncertain)
	a.OtherPolls = AddSat(a.OtherPolls, o.OtherPolls)
	a.OtherPackets = AddSat(a.OtherPackets, o.OtherPackets)
}

// Add adds o's counts; BacklogLen is a level and takes the peak.
func (a *Softnet) Add(o *Softnet) {
	a.Processed = AddSat(a.Processed, o.Processed)
	a.Dropped = AddSat(a.Dropped, o.Dropped)
	a.TimeSqueeze = AddSat(a.TimeSqueeze, o.TimeSqueeze)
	a.ReceivedRPS = AddSat(a.ReceivedRPS, o.ReceivedRPS)
	a.FlowLimit = AddSat(a.FlowLimit, o.FlowLimit)
	a.BacklogLen = max(a.BacklogLen, o.BacklogLen)
}

// Add adds o (the same CPU) into a, copying what it keeps: a never shares maps with o.
func (a *CPU) Add(o *CPU) {
	if a.Drops == nil {
		a.Drops = map[string]uint64{}
	}
	AddCounts(a.Drops, o.Drops)
	for reason, m := range o.DropsL4 {
		if a.DropsL4 == nil {
			a.DropsL4 = map[string]map[string]uint64{}
		}
		a.DropsL4[reason] = AddCounts(a.DropsL4[reason], m)
	}
	if o.NetRx != nil {
		if a.NetRx == nil {
			a.NetRx = &NetRx{}
		}
		a.NetRx.Add(o.NetRx)
	}
	if o.Softnet != nil {
		if a.Softnet == nil {
			a.Softnet = &Softnet{}
		}
		a.Softnet.Add(o.Softnet)
	}
}

// Add adds o's counters.
func (a *Tracer) Add(o *Tracer) {
	a.EventsSent = AddSat(a.EventsSent, o.EventsSent)
	a.EventsRateLimited = AddSat(a.EventsRateLimited, o.EventsRateLimited)
	a.EventsRingbufFull = AddSat(a.EventsRingbufFull, o.EventsRingbufFull)
	a.EventsWriteFailed = AddSat(a.EventsWriteFailed, o.EventsWriteFailed)
	a.EventsWritten = AddSat(a.EventsWritten, o.EventsWritten)
	a.EventsUnread = AddSat(a.EventsUnread, o.EventsUnread)
	a.AggMapFull = AddSat(a.AggMapFull, o.AggMapFull)
	a.DropRecursionMisses = AddSat(a.DropRecursionMisses, o.DropRecursionMisses)
	a.NetRxRecursionMisses = AddSat(a.NetRxRecursionMisses, o.NetRxRecursionMisses)
}

// Add adds o (the same IRQ); the interface and queue are the first seen.
func (a *IRQCount) Add(o *IRQCount) {
	a.Count = AddSat(a.Count, o.Count)
	if a.ByCPU == nil {
		a.ByCPU = map[int]uint64{}
	}
	AddCounts(a.ByCPU, o.ByCPU)
}

// Add adds o (the same port): events are summed, the owner is the latest found and the
// socket's own drop counter, cumulative, takes the larger.
func (a *PortDrops) Add(o *PortDrops) {
	a.Events = AddSat(a.Events, o.Events)
	if o.PID > 0 {
		a.PID, a.Comm, a.Cgroup = o.PID, o.Comm, o.Cgroup
	}
	a.SocketDrops = max(a.SocketDrops, o.SocketDrops)
}

// Add adds interval o into s: counts are summed (saturating), levels (max_run_us,
// backlog_len, sockstat) take their peak, settings (sysctl, time) are o's, and lists of
// events (sysctl and multicast changes) are appended. Checks, verdicts and Seq are judgements
// or positions, not sums: Add leaves them to the caller. s never shares maps or slices with
// o. Lists stay sorted as the record writes them; Trim bounds them.
func (s *Interval) Add(o *Interval) {
	s.Time = o.Time
	s.DurationMs = AddSatInt(s.DurationMs, o.DurationMs)
	if s.Drops == nil {
		s.Drops = map[string]uint64{}
	}
	AddCounts(s.Drops, o.Drops)
	s.addCPUs(o.CPUs)
	if s.SNMP == nil {
		s.SNMP = map[string]map[string]int64{}
	}
	addGroups(s.SNMP, o.SNMP, AddSatInt)
	s.LostEvents = AddSat(s.LostEvents, o.LostEvents)
	s.Tracer.Add(&o.Tracer)
	s.addLocations(o.Locations)
	s.addDevices(o.Devices)
	if o.Sysctl != nil {
		sc := *o.Sysctl
		s.Sysctl = &sc
	}
	s.SysctlChanges = append(s.SysctlChanges, o.SysctlChanges...)
	s.addIRQs(o.NetIRQs)
	if len(o.Sockstat) > 0 && s.Sockstat == nil {
		s.Sockstat = map[string]map[string]int64{}
	}
	addGroups(s.Sockstat, o.Sockstat, func(a, b int64) int64 { return max(a, b) })
	s.McastChanges = append(s.McastChanges, o.McastChanges...)
	s.MulticastDropEvents = AddSat(s.MulticastDropEvents, o.MulticastDropEvents)
	s.addPorts(o.Ports)
	s.RxDropped = AddCounts(s.RxDropped, o.RxDropped)
}

// Trim bounds the lists of call sites and ports to the top-N a record carries.
func (s *Interval) Trim() {
	if len(s.Locations) > TopLocations {
		s.Locations = s.Locations[:TopLocations:TopLocations]
	}
	if len(s.Ports) > TopPorts {
		s.Ports = s.Ports[:TopPorts:TopPorts]
	}
}

// addGroups merges group -> field -> value maps with op; a group seen in src exists in dst
// even when empty, as it does in the records added.
func addGroups(dst, src map[string]map[string]int64, op func(a, b int64) int64) {
	for g, fs := range src {
		if dst[g] == nil {
			dst[g] = make(map[string]int64, len(fs))
		}
		for f, v := range fs {
			dst[g][f] = op(dst[g][f], v)
		}
	}
}

func (s *Interval) addCPUs(cpus []CPU) {
	for i := range cpus {
		c := &cpus[i]
		j := sort.Search(len(s.CPUs), func(j int) bool { return s.CPUs[j].CPU >= c.CPU })
		if j == len(s.CPUs) || s.CPUs[j].CPU != c.CPU {
			s.CPUs = append(s.CPUs, CPU{})
			copy(s.CPUs[j+1:], s.CPUs[j:])
			s.CPUs[j] = CPU{CPU: c.CPU, Drops: map[string]uint64{}}
		}
		s.CPUs[j].Add(c)
	}
}

func (s *Interval) addLocations(locs []Location) {
	if s.Locations == nil {
		s.Locations = []Location{}
	}
	if len(locs) == 0 {
		return
	}
	type key struct{ loc, reason string }
	at := make(map[key]int, len(s.Locations))
	for i, l := range s.Locations {
		at[key{l.Location, l.Reason}] = i
	}
	for _, l := range locs {
		if i, ok := at[key{l.Location, l.Reason}]; ok {
			s.Locations[i].Count = AddSat(s.Locations[i].Count, l.Count)
			continue
		}
		at[key{l.Location, l.Reason}] = len(s.Locations)
		s.Locations = append(s.Locations, l)
	}
	SortLocations(s.Locations)
}

// SortLocations orders call sites as records list them: most drops first.
func SortLocations(l []Location) {
	sort.Slice(l, func(i, j int) bool {
		if l[i].Count != l[j].Count {
			return l[i].Count > l[j].Count
		}
		return l[i].Location < l[j].Location
	})
}

func (s *Interval) addDevices(devs []Device) {
	if s.Devices == nil {
		s.Devices = []Device{}
	}
	for _, d := range devs {
		j := sort.Search(len(s.Devices), func(j int) bool {
			a := s.Devices[j]
			return a.Netns > d.Netns || a.Netns == d.Netns && a.Ifindex >= d.Ifindex
		})
		if j == len(s.Devices) || s.Devices[j].Netns != d.Netns || s.Devices[j].Ifindex != d.Ifindex {
			s.Devices = append(s.Devices, Device{})
			copy(s.Devices[j+1:], s.Devices[j:])
			s.Devices[j] = Device{Netns: d.Netns, Ifindex: d.Ifindex, Ifname: d.Ifname, Drops: map[string]uint64{}}
		}
		AddCounts(s.Devices[j].Drops, d.Drops)
	}
}

func (s *Interval) addIRQs(irqs []IRQCount) {
	for i := range irqs {
		q := &irqs[i]
		j := sort.Search(len(s.NetIRQs), func(j int) bool { return s.NetIRQs[j].IRQ >= q.IRQ })
		if j == len(s.NetIRQs) || s.NetIRQs[j].IRQ != q.IRQ {
			s.NetIRQs = append(s.NetIRQs, IRQCount{})
			copy(s.NetIRQs[j+1:], s.NetIRQs[j:])
			s.NetIRQs[j] = IRQCount{IRQ: q.IRQ, Ifname: q.Ifname, Queue: q.Queue, ByCPU: map[int]uint64{}}
		}
		s.NetIRQs[j].Add(q)
	}
}

func (s *Interval) addPorts(ports []PortDrops) {
	if len(ports) == 0 {
		return
	}
	type key struct {
		reason, l4 string
		port       uint16
		netns      uint32
	}
	at := make(map[key]int, len(s.Ports))
	for i, p := range s.Ports {
		at[key{p.Reason, p.L4, p.Port, p.Netns}] = i
	}
	for i := range ports {
		p := &ports[i]
		k := key{p.Reason, p.L4, p.Port, p.Netns}
		j, ok := at[k]
		if !ok {
			j = len(s.Ports)
			at[k] = j
			s.Ports = append(s.Ports, PortDrops{Reason: p.Reason, L4: p.L4, Port: p.Port, Netns: p.Netns})
		}
		s.Ports[j].Add(p)
	}
	SortPorts(s.Ports)
}

// SortPorts orders ports as records list them: most drop events first.
func SortPorts(p []PortDrops) {
	sort.Slice(p, func(i, j int) bool {
		if p[i].Events != p[j].Events {
			return p[i].Events > p[j].Events
		}
		return p[i].Port < p[j].Port
	})
}
