// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// Ethertypes and IP protocols the decoder names.
const (
	EthIPv4 = 0x0800
	EthIPv6 = 0x86dd
)

// Event is one dropped packet from the ring buffer.
type Event struct {
	MonoNs   uint64 // CLOCK_MONOTONIC
	Location uint64
	Reason   uint32
	Netns    uint32
	Ifindex  uint32
	Len      uint32
	CPU      uint32
	L3       uint16
	L4       uint8
	Sport    uint16
	Dport    uint16
	Src, Dst netip.Addr // invalid when the packet is not IPv4/IPv6
	Ifname   string
	// With Options.Snaplen: the start of the packet, where it starts (Link) and how long it
	// was from there (OrigLen). Packet aliases the reader's buffer: it is valid until the
	// next NextEvent.
	Link    Link
	OrigLen uint32
	Packet  []byte
}

// Link says where an event's packet bytes start (enum drop_link in bpf/droptrace.h).
type Link uint8

const (
	LinkNone     Link = 0 // no bytes: neither an IP header nor an Ethernet header was found
	LinkEthernet Link = 1 // the Ethernet header
	LinkIP       Link = 2 // the IPv4 or IPv6 header: the skb had no Ethernet header before it
)

// MaxSnaplen is DT_SNAPLEN_MAX: the most packet bytes an event carries.
const MaxSnaplen = len(dropsDropPacket{}.Data)

// Offsets of struct drop_event (bpf/droptrace.h); a test keeps them equal to the generated type.
const (
	offTs       = 0
	offLocation = 8
	offReason   = 16
	offNetns    = 20
	offIfindex  = 24
	offLen      = 28
	offCPU      = 32
	offL3       = 36
	offL4       = 38
	offSport    = 40
	offDport    = 42
	offSaddr    = 44
	offDaddr    = 60
	offIfname   = 76
	eventSize   = 96
	// struct drop_packet: the event, then these.
	offOrigLen = eventSize
	offCaplen  = eventSize + 4
	offLink    = eventSize + 6
	offData    = eventSize + 8
)

// DecodeEvent decodes a ring buffer record. It reads the fixed layout field by field rather
// than through reflection: this runs once per streamed drop.
func DecodeEvent(b []byte, e *Event) error {
	if len(b) < eventSize {
		return fmt.Errorf("drop event: %d bytes, want %d", len(b), eventSize)
	}
	le := binary.LittleEndian
	e.MonoNs = le.Uint64(b[offTs:])
	e.Location = le.Uint64(b[offLocation:])
	e.Reason = le.Uint32(b[offReason:])
	e.Netns = le.Uint32(b[offNetns:])
	e.Ifindex = le.Uint32(b[offIfindex:])
	e.Len = le.Uint32(b[offLen:])
	e.CPU = le.Uint32(b[offCPU:])
	e.L3 = le.Uint16(b[offL3:])
	e.L4 = b[offL4]
	e.Sport = le.Uint16(b[offSport:])
	e.Dport = le.Uint16(b[offDport:])
	e.Src = ipAddr(e.L3, [16]byte(b[offSaddr:offSaddr+16]))
	e.Dst = ipAddr(e.L3, [16]byte(b[offDaddr:offDaddr+16]))
	name := b[offIfname : offIfname+16]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	if len(e.Ifname) != len(name) || e.Ifname != string(name) {
		e.Ifname = string(name)
	}
	e.Link, e.OrigLen, e.Packet = LinkNone, 0, nil
	if len(b) >= offData {
		n := int(le.Uint16(b[offCaplen:]))
		if n > len(b)-offData {
			return fmt.Errorf("drop packet: %d bytes captured, record holds %d", n, len(b)-offData)
		}
		e.Link, e.OrigLen, e.Packet = Link(b[offLink]), le.Uint32(b[offOrigLen:]), b[offData:offData+n]
	}
	return nil
}

// ipAddr is an address as BPF stores it: IPv4 in the first 4 of 16 bytes; invalid for
// another ethertype.
func ipAddr(l3 uint16, b [16]byte) netip.Addr {
	switch l3 {
	case EthIPv4:
		return netip.AddrFrom4([4]byte(b[:4]))
	case EthIPv6:
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}

// ErrClosed is returned by NextEvent once the tracer is closed.
var ErrClosed = errors.New("tracer closed")

// ErrTimeout is returned by NextEvent when the deadline passed with no event.
var ErrTimeout = os.ErrDeadlineExceeded

// NextEvent blocks until the next drop event, the deadline (zero: none) or Close, and decodes
// it into e. It reuses one record buffer, so it allocates nothing per event, and must be
// called from one goroutine at a time.
func (t *Tracer) NextEvent(e *Event, deadline time.Time) error {
	if t.reader == nil {
		return ErrClosed
	}
	t.reader.SetDeadline(deadline)
	if err := t.reader.ReadInto(&t.rec); err != nil {
		if errors.Is(err, ringbuf.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	return DecodeEvent(t.rec.RawSample, e)
}

// HasEvents says whether the event stream is on.
func (t *Tracer) HasEvents() bool { return t.reader != nil }
