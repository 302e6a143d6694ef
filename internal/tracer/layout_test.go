// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
	"unsafe"
)

// The decoder reads struct drop_event by hand-written offsets; the generated Go type mirrors
// the C layout. If either side changes, this fails before a single event is misread.
func TestEventLayoutMatchesC(t *testing.T) {
	var e dropsDropEvent
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"ts_ns", unsafe.Offsetof(e.TsNs), offTs},
		{"location", unsafe.Offsetof(e.Location), offLocation},
		{"reason", unsafe.Offsetof(e.Reason), offReason},
		{"netns", unsafe.Offsetof(e.Netns), offNetns},
		{"ifindex", unsafe.Offsetof(e.Ifindex), offIfindex},
		{"len", unsafe.Offsetof(e.Len), offLen},
		{"cpu", unsafe.Offsetof(e.Cpu), offCPU},
		{"l3", unsafe.Offsetof(e.L3), offL3},
		{"l4", unsafe.Offsetof(e.L4), offL4},
		{"sport", unsafe.Offsetof(e.Sport), offSport},
		{"dport", unsafe.Offsetof(e.Dport), offDport},
		{"saddr", unsafe.Offsetof(e.Saddr), offSaddr},
		{"daddr", unsafe.Offsetof(e.Daddr), offDaddr},
		{"ifname", unsafe.Offsetof(e.Ifname), offIfname},
		{"sizeof", unsafe.Sizeof(e), eventSize},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("struct drop_event %s at %d, decoder expects %d", c.name, c.got, c.want)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	b := make([]byte, eventSize)
	le := binary.LittleEndian
	le.PutUint64(b[offTs:], 42)
	le.PutUint64(b[offLocation:], 0xffffffff81234567)
	le.PutUint32(b[offReason:], 0x00020003) // a subsystem reason keeps its high bits
	le.PutUint32(b[offNetns:], 4026531840)
	le.PutUint32(b[offIfindex:], 7)
	le.PutUint32(b[offLen:], 1500)
	le.PutUint32(b[offCPU:], 1)
	le.PutUint16(b[offL3:], EthIPv4)
	b[offL4] = 17
	le.PutUint16(b[offSport:], 40000)
	le.PutUint16(b[offDport:], 53)
	copy(b[offSaddr:], []byte{10, 0, 0, 1})
	copy(b[offDaddr:], []byte{10, 0, 0, 2})
	copy(b[offIfname:], "veth0\x00junk")
	var e Event
	if err := DecodeEvent(b, &e); err != nil {
		t.Fatal(err)
	}
	want := Event{MonoNs: 42, Location: 0xffffffff81234567, Reason: 0x00020003, Netns: 4026531840,
		Ifindex: 7, Len: 1500, CPU: 1, L3: EthIPv4, L4: 17, Sport: 40000, Dport: 53,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Ifname: "veth0"}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", e, want)
	}
	if err := DecodeEvent(b[:10], &e); err == nil {
		t.Error("short record decoded without error")
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	buf := make([]byte, eventSize)
	binary.LittleEndian.PutUint16(buf[offL3:], EthIPv6)
	copy(buf[offIfname:], "eth0")
	var e Event
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeEvent(buf, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// The packet that follows the event with a snaplen (struct drop_packet).
func TestPacketLayoutMatchesC(t *testing.T) {
	var p dropsDropPacket
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"orig_len", unsafe.Offsetof(p.OrigLen), offOrigLen},
		{"caplen", unsafe.Offsetof(p.Caplen), offCaplen},
		{"link", unsafe.Offsetof(p.Link), offLink},
		{"data", unsafe.Offsetof(p.Data), offData},
	} {
		if c.got != c.want {
			t.Errorf("struct drop_packet %s at %d, decoder expects %d", c.name, c.got, c.want)
		}
	}
}

func TestDecodePacket(t *testing.T) {
	b := make([]byte, offData+64)
	le := binary.LittleEndian
	le.PutUint32(b[offOrigLen:], 1514)
	le.PutUint16(b[offCaplen:], 60)
	b[offLink] = byte(LinkIP)
	b[offData] = 0x45
	var e Event
	if err := DecodeEvent(b, &e); err != nil {
		t.Fatal(err)
	}
	if e.Link != LinkIP || e.OrigLen != 1514 || len(e.Packet) != 60 || e.Packet[0] != 0x45 {
		t.Errorf("decoded link %d, %d of %d bytes, want IP, 60 of 1514", e.Link, len(e.Packet), e.OrigLen)
	}
	le.PutUint16(b[offCaplen:], 65)
	if err := DecodeEvent(b, &e); err == nil {
		t.Error("a caplen past the record decoded without error")
	}
	if err := DecodeEvent(b[:eventSize], &e); err != nil || e.Packet != nil {
		t.Errorf("bare event: %v, packet %v", err, e.Packet)
	}
}
