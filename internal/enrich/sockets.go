// SPDX-License-Identifier: Apache-2.0

package enrich

import (
	"bytes"
	"net/netip"
	"slices"
	"time"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/pods"
	"github.com/droptrace/droptrace/internal/record"
)

// MaxOwners bounds the sockets whose holders are kept; past it the cache starts again.
const MaxOwners = 1024

// MaxListeners bounds the full listeners listed per interval.
const MaxListeners = 10

// WalkShare bounds the time spent walking /proc for holders: a walk reads every process's
// descriptors (a fifth of a second on a host of 5000 processes, docs/victims.md), and sockets
// that take drops for the first time every interval must not make that the session's cost.
// After a walk that took d, the next waits WalkShare*d; sockets met in between wait for it.
const WalkShare = 10

// Owners names the sockets behind a record's socket-level drops: each port's socket from its
// namespace's /proc/net tables (its own drop counter and queue), the processes holding it, and
// for UDP its effective receive buffer; and the TCP listeners whose accept queue is full where
// listen overflows were counted. Holders are found by one walk of /proc/*/fd for all the
// sockets of an interval not seen before, and cached by socket inode. It is not safe for
// concurrent use.
type Owners struct {
	fs      hostfs.FS
	holders map[uint64][]hostctx.Owner
	// find is hostctx.FindOwners and inspect hostctx.Inspect; tests replace them.
	find    func(hostfs.FS, map[uint64]bool) map[uint64][]hostctx.Owner
	inspect func(hostctx.Owner, uint64) (hostctx.SocketState, error)
	now     func() time.Time
	next    time.Time // no walk before
	// named is each found socket's holder as records show it, pod included: resolved once.
	named map[uint64]record.Holder
	// Pods names a holder's pod and container; nil names none.
	Pods *pods.Resolver
}

// NewOwners returns an empty cache of the holders of fsys's sockets. Sockets are inspected
// only on the host's own /proc: a test's fixture tree has no processes to ask.
func NewOwners(fsys hostfs.FS) *Owners {
	o := &Owners{fs: fsys, holders: map[uint64][]hostctx.Owner{}, named: map[uint64]record.Holder{},
		find: hostctx.FindOwners, now: time.Now}
	if fsys.IsHost() {
		o.inspect = hostctx.Inspect
	}
	return o
}

// Annotate fills in rec's ports with their sockets and holders, and lists the full listeners
// of the namespaces in listenNS (those whose ListenOverflows moved). A summary arrives with the
// listeners of its intervals: those still listening get current figures and holders.
func (o *Owners) Annotate(rec *record.Interval, listenNS []uint32, read ReadNet) {
	tabs := tables{read: read, got: map[tableKey][]hostctx.InetSocket{}}
	type portSocket struct {
		port int
		sock hostctx.InetSocket
	}
	var ports []portSocket
	for i := range rec.Ports {
		p := &rec.Ports[i]
		if p.Reason == "NO_SOCKET" {
			continue // no socket to name: the port is the answer
		}
		var s *hostctx.InetSocket
		switch p.L4 {
		case "udp", "udplite":
			s = findSocket(tabs.get(p.Netns, "udp"), p.Addr, p.Port, false)
		case "tcp":
			s = findSocket(tabs.get(p.Netns, "tcp"), p.Addr, p.Port, true)
		}
		if s == nil {
			continue
		}
		if s.State != hostctx.StateListen {
			p.SocketDrops, p.Queue = s.Drops, s.RxQueue
		}
		ports = append(ports, portSocket{i, *s})
	}
	type listenSocket struct {
		netns uint32
		sock  hostctx.InetSocket
	}
	var listeners []listenSocket
	for _, ino := range listenNS {
		for _, s := range tabs.get(ino, "tcp") {
			if s.State == hostctx.StateListen && (s.RxQueue > 0 || listed(rec, ino, s.Local) >= 0) {
				listeners = append(listeners, listenSocket{ino, s})
			}
		}
	}
	inodes := make([]uint64, 0, len(ports)+len(listeners))
	for _, p := range ports {
		inodes = append(inodes, p.sock.Inode)
	}
	for _, l := range listeners {
		inodes = append(inodes, l.sock.Inode)
	}
	o.lookup(inodes)

	for _, ps := range ports {
		p := &rec.Ports[ps.port]
		hs := o.holders[ps.sock.Inode]
		if len(hs) == 0 {
			continue
		}
		p.Holder = o.holder(ps.sock.Inode, hs)
		if st, ok := o.state(hs[0], ps.sock.Inode); ok && p.L4 != "tcp" && st.RcvBuf > 0 {
			p.RcvBuf = uint64(st.RcvBuf)
		}
	}
	for _, ls := range listeners {
		hs := o.holders[ls.sock.Inode]
		// /proc/net/tcp shows a listener's queue but not its limit: the socket tells both.
		queue, backlog := ls.sock.RxQueue, (*uint64)(nil)
		if len(hs) > 0 {
			if st, ok := o.state(hs[0], ls.sock.Inode); ok && st.Listening {
				b := uint64(st.AcceptBacklog)
				queue, backlog = uint64(st.AcceptQueue), &b
			}
		}
		j := listed(rec, ls.netns, ls.sock.Local)
		if j < 0 {
			// The kernel's test (sk_acceptq_is_full): more waiting than the limit allows.
			// With the limit unknown, a listener with connections waiting is shown.
			full := backlog == nil && queue > 0 || backlog != nil && queue > *backlog
			if !full || len(rec.Listeners) >= MaxListeners {
				continue
			}
			j = len(rec.Listeners)
			rec.Listeners = append(rec.Listeners, record.Listener{Netns: ls.netns, Addr: ls.sock.Local.Addr().String(), Port: ls.sock.Local.Port()})
		}
		l := &rec.Listeners[j]
		l.AcceptQueue, l.AcceptBacklog = queue, backlog
		if len(hs) > 0 {
			l.Holder = o.holder(ls.sock.Inode, hs)
		}
	}
}

// state inspects a socket through its holder, when this host's processes can be asked.
func (o *Owners) state(h hostctx.Owner, inode uint64) (hostctx.SocketState, bool) {
	if o.inspect == nil {
		return hostctx.SocketState{}, false
	}
	st, err := o.inspect(h, inode)
	return st, err == nil
}

// listed is the index of rec's listener at addr in namespace ino, -1 when not listed.
func listed(rec *record.Interval, ino uint32, addr netip.AddrPort) int {
	return slices.IndexFunc(rec.Listeners, func(l record.Listener) bool {
		return l.Netns == ino && l.Port == addr.Port() && l.Addr == addr.Addr().String()
	})
}

// lookup finds the holders of the sockets not seen before, in one walk (see WalkShare).
func (o *Owners) lookup(inodes []uint64) {
	want := map[uint64]bool{}
	for _, ino := range inodes {
		if _, ok := o.holders[ino]; !ok {
			want[ino] = true
		}
	}
	start := o.now()
	if len(want) == 0 || start.Before(o.next) {
		return
	}
	if len(o.holders)+len(want) > MaxOwners {
		clear(o.holders)
		clear(o.named)
	}
	got := o.find(o.fs, want)
	end := o.now()
	o.next = end.Add(WalkShare * end.Sub(start))
	for ino := range want {
		o.holders[ino] = got[ino] // nil: none found, not looked for again
	}
}

// holder is the socket's holders as a record shows them, the first one's pod resolved the first
// time the socket is shown.
func (o *Owners) holder(inode uint64, hs []hostctx.Owner) record.Holder {
	if h, ok := o.named[inode]; ok {
		return h
	}
	h := record.Holder{PID: hs[0].PID, Comm: hs[0].Comm, Cgroup: hs[0].Cgroup}
	for _, o := range hs[1:] {
		h.SharedWith = append(h.SharedWith, o.PID)
	}
	if c, ok := o.Pods.Process(hs[0].PID, hs[0].Cgroup); ok {
		h.Pod, h.Container, h.PodUID = c.Pod(), c.Name, c.PodUID
	}
	o.named[inode] = h
	return h
}

// tables holds the socket tables Annotate read: the ports of an interval are mostly in one
// namespace, and each read of a namespace's file enters it.
type tables struct {
	read ReadNet
	got  map[tableKey][]hostctx.InetSocket
}

type tableKey struct {
	netns uint32
	proto string // "udp" or "tcp"; the IPv6 table is read with it
}

// get reads and parses a namespace's proto and proto6 tables, once; unreadable ones are
// skipped.
func (t *tables) get(ino uint32, proto string) []hostctx.InetSocket {
	k := tableKey{ino, proto}
	if socks, ok := t.got[k]; ok {
		return socks
	}
	var out []hostctx.InetSocket
	for _, f := range []string{proto, proto + "6"} {
		b, err := t.read(ino, f)
		if err != nil {
			continue
		}
		if socks, err := hostctx.ParseProcNetInet(bytes.NewReader(b)); err == nil {
			out = append(out, socks...)
		}
	}
	t.got[k] = out
	return out
}

// findSocket picks the socket a port's drops went to: bound to the address the packets were
// sent to, else to a wildcard address, else any on the port; for TCP only listeners.
func findSocket(socks []hostctx.InetSocket, addr string, port uint16, listener bool) *hostctx.InetSocket {
	want, _ := netip.ParseAddr(addr)
	rank := func(s hostctx.InetSocket) int {
		a := s.Local.Addr().Unmap()
		switch {
		case want.IsValid() && a == want.Unmap():
			return 0
		case a.IsUnspecified():
			return 1
		}
		return 2
	}
	var best *hostctx.InetSocket
	for i := range socks {
		s := &socks[i]
		if s.Local.Port() != port || listener && s.State != hostctx.StateListen {
			continue
		}
		if best == nil || rank(*s) < rank(*best) {
			best = s
		}
	}
	return best
}
