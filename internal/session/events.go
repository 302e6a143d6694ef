// SPDX-License-Identifier: Apache-2.0

package session

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/droptrace/droptrace/internal/assemble"
	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/enrich"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// eventWriter turns drop events into drop records, and tallies what the interval records say
// of them: records written or not, socket-level drops by port, drops to multicast groups. It
// runs once per streamed drop, so what repeats from one event to the next under a flood
// (interface names, addresses, the record itself) is kept rather than stored, formatted or
// allocated again.
type eventWriter struct {
	records Sink // nil: events are only tallied
	names   assemble.Names
	ifnames *enrich.Ifnames

	// Used by the events goroutine only.
	mono     func(uint64) time.Time
	d        record.Drop
	known    map[ifKey]string // names already handed to ifnames
	src, dst netip.Addr
	srcS     string
	dstS     string

	// counted is the records sink's own count of the drop records written and lost, when it
	// has one: a buffered sink knows a record's fate only when its buffer is written.
	// Otherwise written and writeFailed count what Drop returned.
	counted              countedSink
	took                 [2]uint64   // written and lost at the last take
	packets              PacketSink  // gets each event's packet too (--pcap); nil: none
	pk                   packetState // what names the packets (packets.go)
	written, writeFailed atomic.Uint64
	mu                   sync.Mutex
	ports                map[portKey]uint64 // socket-level drops by destination port
	mcastDrop            uint64             // drop events to multicast destinations
}

type ifKey struct{ netns, ifindex uint32 }

type portKey struct {
	reason, l4 string
	port       uint16
	netns      uint32
}

// maxPorts bounds the ports tallied per interval: a port scan must not grow memory without
// bound.
const maxPorts = 4096

func newEventWriter(records Sink, names assemble.Names, ifnames *enrich.Ifnames) *eventWriter {
	w := &eventWriter{records: records, names: names, ifnames: ifnames,
		mono: monoToWall(), known: map[ifKey]string{}}
	w.counted, _ = records.(countedSink)
	return w
}

// countedSink is a records sink that counts the records that reached its output and those
// it lost (record.Writer).
type countedSink interface {
	Counts() (written, lost record.Counts)
}

// writeCounts is the drop events written and lost since the last call; the session's
// goroutine calls it. With both drop records and packets, each event goes to both: it counts
// written once both outputs took it and lost when either lost it, so that the session's totals
// are those of the output that lost the most (cumulative counts, each never decreasing).
func (w *eventWriter) writeCounts() (written, failed uint64) {
	var now [2]uint64
	first := true
	add := func(wr, lost uint64) {
		if first {
			now, first = [2]uint64{wr, lost}, false
			return
		}
		now = [2]uint64{min(now[0], wr), max(now[1], lost)}
	}
	switch {
	case w.records == nil:
	case w.counted != nil:
		wr, lost := w.counted.Counts()
		add(wr.Drops(), lost.Drops())
	default:
		add(w.written.Load(), w.writeFailed.Load())
	}
	if w.packets != nil {
		add(w.packets.Counts())
	}
	written, failed = now[0]-w.took[0], now[1]-w.took[1]
	w.took = now
	return written, failed
}

// run streams drop events from tr until ctx is cancelled and the ring is empty. Events stamped
// before since (CLOCK_MONOTONIC ns) are skipped: the programs attach before the session's first
// read of their counters, and a drop counted before that read is no drop of the session's, so
// its event is no record of it either. A drop during the read itself can still land on either
// side of it.
func (w *eventWriter) run(ctx context.Context, tr *tracer.Tracer, log *slog.Logger, since uint64) {
	var e tracer.Event
	var drainUntil time.Time
	for {
		deadline := time.Now().Add(200 * time.Millisecond)
		if ctx.Err() != nil {
			// Drain what is queued without waiting for more, but not for ever: a flood can
			// refill the ring as fast as it is read. What is left is counted as lost below.
			if drainUntil.IsZero() {
				drainUntil = time.Now().Add(time.Second)
			}
			if time.Now().After(drainUntil) {
				return
			}
			deadline = time.Now()
		}
		err := tr.NextEvent(&e, deadline)
		switch {
		case err == nil:
		case errors.Is(err, tracer.ErrTimeout):
			if ctx.Err() != nil {
				return
			}
			continue
		case errors.Is(err, tracer.ErrClosed):
			return
		default:
			log.Error("drop event stream", "err", err)
			return
		}
		if e.MonoNs < since {
			continue
		}
		w.write(&e)
	}
}

func (w *eventWriter) write(e *tracer.Event) {
	if e.Ifname != "" {
		k := ifKey{e.Netns, e.Ifindex}
		if w.known[k] != e.Ifname {
			w.ifnames.Learn(e.Netns, e.Ifindex, e.Ifname)
			if len(w.known) < enrich.MaxIfnames {
				w.known[k] = e.Ifname
			}
		}
	}
	w.d = record.Drop{
		Header:     record.Header{Type: record.TypeDrop, Time: record.Time(w.mono(e.MonoNs))},
		CPU:        e.CPU,
		Reason:     w.names.Reason(e.Reason, e.Location),
		ReasonCode: e.Reason,
		Location:   w.names.Location(e.Location),
		Ifindex:    e.Ifindex,
		Ifname:     e.Ifname,
		Netns:      e.Netns,
		Len:        e.Len,
		L3:         assemble.L3Name(e.L3),
		L4:         assemble.L4Name(e.L3, uint16(e.L4)),
		Sport:      e.Sport,
		Dport:      e.Dport,
	}
	if e.Src.IsValid() {
		if e.Src != w.src || w.srcS == "" {
			w.src, w.srcS = e.Src, e.Src.String()
		}
		if e.Dst != w.dst || w.dstS == "" {
			w.dst, w.dstS = e.Dst, e.Dst.String()
		}
		w.d.Src, w.d.Dst = w.srcS, w.dstS
	}
	w.countPort(&w.d, e.Dst.IsMulticast())
	if w.packets != nil {
		w.writePacket(e)
	}
	if w.records == nil {
		return
	}
	err := w.records.Drop(&w.d)
	if w.counted != nil {
		return // the sink counts what reaches its output; a failed write is its to count
	}
	if err != nil {
		w.writeFailed.Add(1)
	} else {
		w.written.Add(1)
	}
}

// countPort tallies socket-level drop events by port: which socket overflows is the first
// question a socket_rcvbuf verdict must answer.
func (w *eventWriter) countPort(d *record.Drop, multicast bool) {
	byPort := dropreason.IsSocketLevel(d.Reason) && d.Dport != 0
	if !multicast && !byPort {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if multicast {
		w.mcastDrop++
	}
	if !byPort {
		return
	}
	if w.ports == nil {
		w.ports = map[portKey]uint64{}
	}
	if len(w.ports) < maxPorts {
		w.ports[portKey{d.Reason, d.L4, d.Dport, d.Netns}]++
	}
}

// take returns what was tallied since the last call.
func (w *eventWriter) take() assemble.Events {
	var ev assemble.Events
	ev.Written, ev.WriteFailed = w.writeCounts()
	w.mu.Lock()
	ports, mcast := w.ports, w.mcastDrop
	w.ports, w.mcastDrop = nil, 0
	w.mu.Unlock()
	ev.MulticastDrops = mcast
	for k, n := range ports {
		ev.Ports = append(ev.Ports, record.PortDrops{Reason: k.reason, L4: k.l4, Port: k.port, Netns: k.netns, Events: n})
	}
	return ev
}
