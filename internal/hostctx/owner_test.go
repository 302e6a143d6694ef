// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/droptrace/droptrace/internal/hostfs"
)

const udpSample = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  263: 0200FB0A:2328 00000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 48213 2 0000000000000000 196661
  512: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17730 2 0000000000000000 0
`

// /proc/net/tcp6 with a listener on [::1]:8080 whose accept queue (2) is over its backlog (1),
// and an established connection.
const tcp6Sample = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000001:00000002 00:00000000 00000000  1000        0 91234 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:A1B2 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
`

func TestParseProcNetInet(t *testing.T) {
	s, err := ParseProcNetInet(strings.NewReader(udpSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0].Local != netip.MustParseAddrPort("10.251.0.2:9000") || s[0].Inode != 48213 || s[0].Drops != 196661 ||
		s[0].RxQueue != 0x900 || s[0].State != 7 || s[1].Local != netip.MustParseAddrPort("0.0.0.0:68") {
		t.Errorf("udp: %+v", s)
	}
	s, err = ParseProcNetInet(strings.NewReader(tcp6Sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0].Local != netip.MustParseAddrPort("[::1]:8080") || s[0].State != StateListen || s[0].UID != 1000 ||
		s[0].RxQueue != 2 || s[0].TxQueue != 1 || !s[0].AcceptQueueFull() || s[0].Drops != 0 ||
		s[1].Local != netip.MustParseAddrPort("[::ffff:127.0.0.1]:41394") || s[1].AcceptQueueFull() {
		t.Errorf("tcp6: %+v", s)
	}
	for _, bad := range []string{"h\n 1: x\n", "h\n 1: 0100007F:ZZ 0:0 0A 0:0 0 0 0 0 1\n", "h\n 1: 0100007F:0050 0:0 0A 0:0 0 0 x 0 1\n"} {
		if _, err := ParseProcNetInet(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v, want an error naming line 2", bad, err)
		}
	}
}

// A socket this test opens is found as its own.
func TestFindOwnerOfOwnSocket(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	socks := parse(t, "/proc/net/udp", ParseProcNetInet)
	var inode uint64
	for _, s := range socks {
		if s.Local.Port() == port {
			inode = s.Inode
		}
	}
	if inode == 0 {
		t.Fatalf("port %d not in /proc/net/udp", port)
	}
	f, err := c.File() // a second descriptor: one holder, listed once
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := FindOwners(hostfs.Host(), map[uint64]bool{inode: true})[inode]
	if len(got) != 1 || got[0].PID != syscall.Getpid() {
		t.Fatalf("holders %+v; want this process (pid %d) once", got, syscall.Getpid())
	}
	// Its receive buffer, read through a duplicate of the descriptor FindOwners found, is
	// what the socket itself reports (the kernel doubles what setsockopt asked for).
	if err := c.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	st, err := Inspect(got[0], inode)
	if err != nil || st.RcvBuf != 8192 || st.Listening {
		t.Errorf("Inspect = %+v, %v; want an 8192-byte receive buffer, not listening", st, err)
	}
	if _, err := Inspect(got[0], inode+1); !errors.Is(err, ErrNotThatSocket) {
		t.Errorf("Inspect of another inode: %v, want ErrNotThatSocket", err)
	}
}

// A listener with one connection waiting: its queue and limit come from the socket itself
// (/proc/net/tcp shows no limit). Go listens with net.core.somaxconn as the backlog.
func TestInspectListener(t *testing.T) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	somaxconn, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.Atoi(strings.TrimSpace(string(somaxconn)))
	st, err := Inspect(Owner{PID: os.Getpid(), FD: int(f.Fd())}, fi.Sys().(*syscall.Stat_t).Ino)
	if err != nil || !st.Listening || st.AcceptQueue != 1 || int(st.AcceptBacklog) != want {
		t.Errorf("Inspect = %+v, %v; want a listener with 1 of %d waiting", st, err, want)
	}
}
