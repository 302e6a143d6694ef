// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/record"
)

// With no flags (no --events), a never-read UDP socket's receive-buffer drops are counted by
// socket in BPF: the record names its port and address, counts every drop as the socket's own
// counter does, and the verdict names the socket and its owner, this test process.
func TestPrivSocketDropsNamedWithoutEvents(t *testing.T) {
	requireRoot(t)
	port := smallUDPSocket(t)
	rec := session(t, func() { sendUDP(t, port, 3000) })
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
	// SetReadBuffer(2048): the kernel doubles it for its overhead.
	want := fmt.Sprintf("udp port %d on 127.0.0.1 in netns %d (%d drops; receive buffer 4096 bytes effective, ", port, selfNetns(t), kernel)
	if !strings.Contains(cause, want) || !strings.Contains(cause, fmt.Sprintf("; socket of pid %d (", os.Getpid())) {
		t.Errorf("socket_rcvbuf verdict %q does not say %q and name pid %d", cause, want, os.Getpid())
	}
}

// smallUDPSocket opens a never-read UDP socket on 127.0.0.1 with a 2048-byte receive buffer,
// which a few thousand datagrams overflow, closed when the test ends; it returns its port.
func smallUDPSocket(t *testing.T) uint16 {
	t.Helper()
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	if err := sock.SetReadBuffer(2048); err != nil {
		t.Fatal(err)
	}
	return uint16(sock.LocalAddr().(*net.UDPAddr).Port)
}

// sendUDP sends n datagrams to port on 127.0.0.1.
func sendUDP(t *testing.T, port uint16, n int) {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range n {
		if _, err := c.Write([]byte("droptrace victim test")); err != nil {
			t.Fatal(err)
		}
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
	socks, err := hostctx.ParseProcNetInet(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range socks {
		if s.Local.Port() == port {
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

// A TCP listener with backlog 1 that never accepts, hit by 64 connects: the kernel counts
// ListenOverflows for the SYNs it refuses, which it consumes rather than drops. The check must
// say so and match, no "unexplained" verdict may fire, and the listen_overflow verdict must
// name the listener, its accept queue and its holder.
func TestPrivListenOverflowNamesTheListener(t *testing.T) {
	requireRoot(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(sa.(*unix.SockaddrInet4).Port)
	rec := session(t, func() {
		var wg sync.WaitGroup
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 300*time.Millisecond)
				if err == nil {
					defer c.Close()
				}
			}()
		}
		wg.Wait()
	})
	sum := rec.summary
	var l *record.Listener
	for i := range sum.Listeners {
		if sum.Listeners[i].Port == port && sum.Listeners[i].Addr == "127.0.0.1" {
			l = &sum.Listeners[i]
		}
	}
	if l == nil {
		t.Fatalf("summary listeners %+v do not name 127.0.0.1:%d", sum.Listeners, port)
	}
	if l.AcceptBacklog == nil || *l.AcceptBacklog != 1 || l.AcceptQueue <= 1 || l.PID != os.Getpid() || l.Netns != selfNetns(t) {
		t.Errorf("listener %+v: want backlog 1, a full queue, held by pid %d in netns %d", *l, os.Getpid(), selfNetns(t))
	}
	c := check(t, sum, "tcp_listen_overflow", -1)
	// A check that cannot be traced has no counts: the counter is then in the record's snmp.
	if counted := max(val(c.Kernel), sum.SNMP["TcpExt"]["ListenOverflows"]); counted <= 0 {
		t.Fatalf("ListenOverflows did not move: %+v", c)
	}
	untraceable := strings.Contains(c.Note, "frees no packet as TCP_LISTEN_OVERFLOW") ||
		strings.Contains(c.Note, "no call site frees only for TCP_LISTEN_OVERFLOW") // before 5.17
	if c.Status != record.StatusMatch && !(c.Status == record.StatusUnavailable && untraceable) {
		t.Errorf("tcp_listen_overflow %s traced %d kernel %d: %s; want a match (the refused SYNs are consumed, not dropped)", c.Status, val(c.Traced), val(c.Kernel), c.Note)
	}
	if val(c.Traced) < val(c.Kernel) && c.Status == record.StatusMatch && !strings.Contains(c.Note, "consumes rather than drops") {
		t.Errorf("tcp_listen_overflow note does not say why fewer were traced: %s", c.Note)
	}
	var cause string
	for _, v := range sum.Verdicts {
		if v.ID == "unexplained" && strings.Contains(v.Cause, "tcp_listen_overflow") {
			t.Errorf("unexplained verdict for a counter the tracer cannot see by design: %s", v.Cause)
		}
		if v.ID == "listen_overflow" {
			cause = v.Cause
		}
	}
	t.Logf("tcp_listen_overflow: %s, traced %d, kernel %d: %s", c.Status, val(c.Traced), val(c.Kernel), c.Note)
	t.Logf("listen_overflow: %s", cause)
	want := fmt.Sprintf("tcp 127.0.0.1:%d in netns %d, accept queue %d/1, held by pid %d (", port, selfNetns(t), l.AcceptQueue, os.Getpid())
	if !strings.Contains(cause, want) {
		t.Errorf("listen_overflow verdict %q does not say %q", cause, want)
	}
}
