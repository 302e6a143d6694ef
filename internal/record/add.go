// SPDX-License-Identifier: Apache-2.0

package record

import (
	"cmp"
	"math"
	"reflect"
	"slices"
	"strings"
)

// Top-N bounds of a written interval or summary record: the long tail of call sites and ports
// is rarely useful and would make every line long.
const (
	TopLocations = 20
	TopPorts     = 10
	TopListeners = 10
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

// addCounters adds every uint64 field of *o to *a, saturating: a counter added to a record
// type is summed without touching Add. Fields that are levels, not counts, are the caller's
// to set afterwards.
func addCounters[T any](a, o *T) {
	av, ov := reflect.ValueOf(a).Elem(), reflect.ValueOf(o).Elem()
	for i := range av.NumField() {
		if f := av.Field(i); f.Kind() == reflect.Uint64 {
			f.SetUint(AddSat(f.Uint(), ov.Field(i).Uint()))
		}
	}
}

// Add adds o's counts; MaxRunUs is a high-water mark and takes the larger.
func (a *NetRx) Add(o *NetRx) {
	peak := max(a.MaxRunUs, o.MaxRunUs)
	addCounters(a, o)
	a.MaxRunUs = peak
}

// Add adds o's counts; BacklogLen is a level and takes the peak.
func (a *Softnet) Add(o *Softnet) {
	addCounters(a, o)
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
func (a *Tracer) Add(o *Tracer) { addCounters(a, o) }

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
	a.Drops = AddSat(a.Drops, o.Drops)
	if a.Addr == "" {
		a.Addr = o.Addr
	}
	if o.PID > 0 {
		a.Holder = o.Holder
		a.Holder.SharedWith = slices.Clone(o.SharedWith)
	}
	a.SocketDrops = max(a.SocketDrops, o.SocketDrops)
	if o.RcvBuf > 0 {
		a.Queue, a.RcvBuf = o.Queue, o.RcvBuf
	}
}

// Add adds interval o into s: counts are summed (saturating), levels (max_run_us,
// backlog_len, sockstat) take their peak, settings (sysctl, time) are o's, and lists of
// events (sysctl and multicast changes) are appended; the squeezes and overflows are also
// kept by the limits in force (LimitSpans). Checks, verdicts and Seq are judgements
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
	s.LostRecords = AddCounts(s.LostRecords, o.LostRecords)
	s.Tracer.Add(&o.Tracer)
	s.addLocations(o.Locations)
	s.addDevices(o.Devices)
	if o.Sysctl != nil {
		sc := *o.Sysctl
		s.Sysctl = &sc
	}
	s.SysctlChanges = append(s.SysctlChanges, o.SysctlChanges...)
	s.addSpans(o)
	s.addIRQs(o.NetIRQs)
	if len(o.Sockstat) > 0 && s.Sockstat == nil {
		s.Sockstat = map[string]map[string]int64{}
	}
	addGroups(s.Sockstat, o.Sockstat, func(a, b int64) int64 { return max(a, b) })
	s.McastChanges = append(s.McastChanges, o.McastChanges...)
	s.MulticastDropEvents = AddSat(s.MulticastDropEvents, o.MulticastDropEvents)
	s.addPorts(o.Ports)
	s.addListeners(o.Listeners)
	s.RxDropped = AddCounts(s.RxDropped, o.RxDropped)
}

// Trim bounds the lists of call sites and ports to the top-N a record carries, and leaves out
// limit spans that say no more than sysctl: one span under limits that never changed.
func (s *Interval) Trim() {
	if len(s.LimitSpans) == 1 && !s.LimitSpans[0].Mixed() {
		s.LimitSpans = nil
	}
	if len(s.Locations) > TopLocations {
		s.Locations = s.Locations[:TopLocations:TopLocations]
	}
	if len(s.Ports) > TopPorts {
		s.Ports = s.Ports[:TopPorts:TopPorts]
	}
	if len(s.Listeners) > TopListeners {
		s.Listeners = s.Listeners[:TopListeners:TopListeners]
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

// entry finds the element of the sorted list that order (negative before, zero at, positive
// after the wanted element) points at, inserting a new one made by mk when there is none.
func entry[T any](list *[]T, order func(T) int, mk func() T) *T {
	j, found := slices.BinarySearchFunc(*list, struct{}{}, func(e T, _ struct{}) int { return order(e) })
	if !found {
		*list = slices.Insert(*list, j, mk())
	}
	return &(*list)[j]
}

func (s *Interval) addCPUs(cpus []CPU) {
	for i := range cpus {
		c := &cpus[i]
		entry(&s.CPUs, func(e CPU) int { return cmp.Compare(e.CPU, c.CPU) },
			func() CPU { return CPU{CPU: c.CPU, Drops: map[string]uint64{}} }).Add(c)
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
	slices.SortFunc(l, func(a, b Location) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Location, b.Location), strings.Compare(a.Reason, b.Reason))
	})
}

func (s *Interval) addDevices(devs []Device) {
	if s.Devices == nil {
		s.Devices = []Device{}
	}
	for _, d := range devs {
		e := entry(&s.Devices, func(e Device) int { return cmp.Or(cmp.Compare(e.Netns, d.Netns), cmp.Compare(e.Ifindex, d.Ifindex)) },
			func() Device {
				return Device{Netns: d.Netns, Ifindex: d.Ifindex, Ifname: d.Ifname, Drops: map[string]uint64{}}
			})
		if e.Ifname == "" {
			e.Ifname = d.Ifname
		}
		AddCounts(e.Drops, d.Drops)
	}
}

func (s *Interval) addIRQs(irqs []IRQCount) {
	for i := range irqs {
		q := &irqs[i]
		entry(&s.NetIRQs, func(e IRQCount) int { return cmp.Compare(e.IRQ, q.IRQ) },
			func() IRQCount {
				return IRQCount{IRQ: q.IRQ, Ifname: q.Ifname, Queue: q.Queue, ByCPU: map[int]uint64{}}
			}).Add(q)
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

// maxListenersKept bounds a session's sum of listeners before Trim.
const maxListenersKept = 8 * TopListeners

// addListeners keeps one entry per listener, with the figures and holder seen last. A listener
// once full stays listed: the summary names every listener that refused connections.
func (s *Interval) addListeners(ls []Listener) {
	for _, l := range ls {
		i := slices.IndexFunc(s.Listeners, func(m Listener) bool {
			return m.Netns == l.Netns && m.Port == l.Port && m.Addr == l.Addr
		})
		l.SharedWith = slices.Clone(l.SharedWith)
		if i < 0 {
			if len(s.Listeners) < maxListenersKept {
				s.Listeners = append(s.Listeners, l)
			}
		} else {
			s.Listeners[i] = l
		}
	}
}

// SortPorts orders ports as records list them: most drops first, then most drop events.
func SortPorts(p []PortDrops) {
	slices.SortFunc(p, func(a, b PortDrops) int {
		return cmp.Or(cmp.Compare(b.Drops, a.Drops), cmp.Compare(b.Events, a.Events), cmp.Compare(a.Port, b.Port),
			cmp.Compare(a.Netns, b.Netns), strings.Compare(a.Reason, b.Reason), strings.Compare(a.L4, b.L4))
	})
}
