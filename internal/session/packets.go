// SPDX-License-Identifier: Apache-2.0

package session

import (
	"strconv"
	"strings"
	"sync"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/pcapng"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// PacketSink receives each dropped packet with its drop record (pcapng.Writer). Write is
// called from the events goroutine, Flush and Counts from the session's; Counts are the
// packets written and lost so far, lost ones included in lost_events.
type PacketSink interface {
	Write(*pcapng.Packet) error
	Flush() error
	Counts() (written, lost uint64)
}

// packetState is what packets are named with that the session learns each interval: the pod
// of each network namespace, and who holds the sockets that socket-level drops went to.
type packetState struct {
	mu     sync.Mutex
	pods   map[uint32]string
	owners map[portKey]string
	p      pcapng.Packet // reused: the sink keeps nothing after Write
}

// learn takes, at the end of an interval, the pods of the namespaces listed and the holders
// of the sockets the interval's records named. The pods are those of the listing, which holds
// every namespace alive; the holders are kept across intervals, and forgotten all at once when
// they reach the bound, so that a long session goes on naming new ones.
func (w *eventWriter) learn(ports []record.PortDrops, nss []netns.NS) {
	st := &w.pk
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pods = make(map[uint32]string, len(st.pods))
	if st.owners == nil || len(st.owners) >= maxPorts {
		st.owners = map[portKey]string{}
	}
	for _, ns := range nss {
		if pod, ok := strings.CutPrefix(ns.Name, "pod "); ok && len(st.pods) < maxPorts {
			st.pods[uint32(ns.Inode)] = pod
		}
	}
	for _, p := range ports {
		if p.PID == 0 || len(st.owners) >= maxPorts {
			continue
		}
		st.owners[portKey{p.Reason, p.L4, p.Port, p.Netns}] = p.Comm + "[" + strconv.Itoa(p.PID) + "]"
	}
}

// writePacket hands e's packet to the packet sink, with w.d, the drop record just made of it.
// A failed write is the sink's to count.
func (w *eventWriter) writePacket(e *tracer.Event) {
	st := &w.pk
	p := &st.p
	*p = pcapng.Packet{Time: w.mono(e.MonoNs), Drop: &w.d, Link: pcapng.Ethernet, Data: e.Packet, OrigLen: e.OrigLen}
	if e.Link == tracer.LinkIP {
		p.Link = pcapng.RawIP
	}
	st.mu.Lock()
	p.Pod = st.pods[e.Netns]
	if e.Dport != 0 {
		p.Owner = st.owners[portKey{w.d.Reason, w.d.L4, e.Dport, e.Netns}]
	}
	st.mu.Unlock()
	_ = w.packets.Write(p)
}
