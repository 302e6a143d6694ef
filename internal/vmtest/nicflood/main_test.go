// SPDX-License-Identifier: Apache-2.0

package main

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// The flood stops at its count, in bursts at its rate, and sends only where it is told.
func TestRunStopsAtItsCount(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := pc.(*net.UDPConn).SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort(pc.LocalAddr().String())
	r, err := run(dst, 250, 10_000, time.Minute, 32, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 250 {
		t.Fatalf("sent %d, want the count, 250", r.Sent)
	}
	got := 0
	buf := make([]byte, 64)
	for {
		pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		if n != 32 {
			t.Fatalf("a %d-byte datagram, want 32", n)
		}
		got++
	}
	if got != 250 {
		t.Errorf("received %d of 250 datagrams", got)
	}
}

// The duration bounds a flood whose count it would not reach.
func TestRunStopsAtItsDuration(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r, err := run(netip.MustParseAddrPort(pc.LocalAddr().String()), 1<<40, 1000, 50*time.Millisecond, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent == 0 || r.Sent >= 1<<40 {
		t.Errorf("sent %d", r.Sent)
	}
}
