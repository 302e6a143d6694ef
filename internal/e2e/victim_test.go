// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/droptrace/droptrace/internal/hostctx"
)

// With no flags (no --events), a never-read UDP socket's receive-buffer drops are counted by
// socket in BPF: the record names its port and address, counts every drop as the socket's own
// counter does, and the verdict names the socket and its owner, this test process.
func TestPrivSocketDropsNamedWithoutEvents(t *testing.T) {
	requireRoot(t)
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if err := sock.SetReadBuffer(2048); err != nil {
		t.Fatal(err)
	}
	port := uint16(sock.LocalAddr().(*net.UDPAddr).Port)
	rec := session(t, func() {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range 3000 {
			if _, err := c.Write([]byte("droptrace victim test")); err != nil {
				t.Fatal(err)
			}
		}
	})
	kernel := socketDrops(t, port)
	sum := rec.summary
	var got *struct{ drops, events uint64 }
	for _, p := range sum.Ports {
		if p.Reason != "SOCKET_RCVBUFF" || p.Port != port {
			continue
		}
		got = &struct{ drops, events uint64 }{p.Drops, p.Events}
		if p.Addr != "127.0.0.1" || p.L4 != "udp" || p.PID != os.Getpid() || p.SocketDrops != kernel {
			t.Errorf("port entry %+v: want addr 127.0.0.1, udp, pid %d, socket_drops %d", p, os.Getpid(), kernel)
		}
	}
	if got == nil {
		t.Fatalf("summary ports %+v do not list SOCKET_RCVBUFF on port %d", sum.Ports, port)
	}
	if kernel == 0 || got.drops != kernel || got.events != 0 {
		t.Errorf("counted %d drops (%d events) at port %d; the socket's own counter says %d", got.drops, got.events, port, kernel)
	}
	var cause string
	for _, v := range sum.Verdicts {
		if v.ID == "socket_rcvbuf" {
			cause = v.Cause
		}
	}
	want := fmt.Sprintf("udp port %d on 127.0.0.1 in netns %d (%d drops; socket of pid %d (", port, selfNetns(t), kernel, os.Getpid())
	if !strings.Contains(cause, want) {
		t.Errorf("socket_rcvbuf verdict %q does not say %q", cause, want)
	}
}

// socketDrops is the drop counter of the socket bound to port in /proc/net/udp.
func socketDrops(t *testing.T, port uint16) uint64 {
	t.Helper()
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	socks, err := hostctx.ParseProcNetUDP(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range socks {
		if s.LocalPort == port {
			return s.Drops
		}
	}
	t.Fatalf("no UDP socket on port %d", port)
	return 0
}

func selfNetns(t *testing.T) uint32 {
	t.Helper()
	fi, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return uint32(fi.Sys().(*syscall.Stat_t).Ino)
}
