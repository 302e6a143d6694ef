// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// With a snaplen, each event carries its packet from the Ethernet header loopback gives it,
// although the UDP stack dropped it with skb->data past the IP header; the copy is cut at the
// snaplen and OrigLen keeps the length.
func TestPrivEventsCarryPacket(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name    string
		force   bool
		snaplen uint32
		payload int
	}{
		{"tp_btf", false, 128, 9},
		{"tracepoint", true, 128, 9},
		{"cut", false, 64, 200},
		{"max", false, uint32(MaxSnaplen) + 100, 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, err := Open(Options{Events: true, NoNetRx: true, ForceTracepoint: c.force, Snaplen: c.snaplen})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			// The copy must load in the variant asked for, not only in the fallback.
			want := map[bool]string{false: "tp_btf", true: "tracepoint"}[c.force]
			for _, p := range tr.Probes() {
				if p.Name == dropTracepoint.name && p.Status != want {
					t.Fatalf("%s attached as %q, want %q", p.Name, p.Status, want)
				}
			}
			port := closedUDPPort(t)
			conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(make([]byte, c.payload)); err != nil {
				t.Fatal(err)
			}
			var e Event
			for {
				if err := tr.NextEvent(&e, time.Now().Add(5*time.Second)); err != nil {
					t.Fatalf("no event for port %d: %v", port, err)
				}
				if int(e.Dport) == port {
					break
				}
			}
			wantOrig := 14 + 20 + 8 + c.payload
			wantCap := min(wantOrig, int(min(c.snaplen, uint32(MaxSnaplen))))
			if e.Link != LinkEthernet || int(e.OrigLen) != wantOrig || len(e.Packet) != wantCap {
				t.Fatalf("link %d, %d of %d bytes; want Ethernet, %d of %d", e.Link, len(e.Packet), e.OrigLen, wantCap, wantOrig)
			}
			p := e.Packet
			if binary.BigEndian.Uint16(p[12:]) != EthIPv4 || p[14]>>4 != 4 || p[14+9] != 17 ||
				int(binary.BigEndian.Uint16(p[14+20+2:])) != port {
				t.Errorf("packet % x: want IPv4 UDP to port %d after an Ethernet header", p, port)
			}
		})
	}
}

// Without a snaplen, events carry no packet: the record is a bare drop_event.
func TestPrivEventsWithoutPacket(t *testing.T) {
	requireRoot(t)
	tr, err := Open(Options{Events: true, NoNetRx: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	port := closedUDPPort(t)
	sendUDP(t, port, 1)
	var e Event
	for {
		if err := tr.NextEvent(&e, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if int(e.Dport) == port {
			break
		}
	}
	if len(tr.rec.RawSample) != eventSize || e.Packet != nil || e.Link != LinkNone {
		t.Errorf("record of %d bytes, packet %v: want %d bytes and no packet", len(tr.rec.RawSample), e.Packet, eventSize)
	}
}
