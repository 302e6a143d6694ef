// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/droptrace/droptrace/internal/dropreason"
)

func reasonCode(t *testing.T, name string) uint32 {
	t.Helper()
	tab, err := dropreason.Load()
	if err != nil {
		t.Fatalf("drop reasons: %v", err)
	}
	c, ok := tab.Code(name)
	if !ok {
		t.Fatalf("this kernel has no drop reason %s", name)
	}
	return c
}

// sockDrops sums what ReadSockDrops returned for one key.
func sockDrops(counts []SockCount, want SockKey) uint64 {
	var n uint64
	for _, c := range counts {
		if c.Key == want {
			n += c.Count
		}
	}
	return n
}

// Datagrams to two closed ports, sent at once so that each CPU's memo of the socket counted
// last keeps changing hands, are counted under their destinations; every read drains a
// generation, and no count is lost while BPF counts during the swaps.
func TestPrivSockDropsNoSocketExact(t *testing.T) {
	requireRoot(t)
	noSocket := reasonCode(t, "NO_SOCKET")
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("tracepoint=%v", force), func(t *testing.T) {
			tr, err := Open(Options{ForceTracepoint: force, NoNetRx: true, SockReasons: []uint32{noSocket}})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			ports := [2]int{closedUDPPort(t), closedUDPPort(t)}
			var want [2]SockKey
			for i, p := range ports {
				want[i] = SockKey{Netns: selfNetns(t), Reason: noSocket, L3: EthIPv4, L4: 17,
					Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(p)}
			}
			const senders, each = 4, 5000
			var wg sync.WaitGroup
			for i := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sendUDP(t, ports[i%2], each)
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			var got [2]uint64
			add := func() {
				counts, err := tr.ReadSockDrops()
				if err != nil {
					t.Fatal(err)
				}
				for i := range want {
					got[i] += sockDrops(counts, want[i])
				}
			}
			reads := 0
			for running := true; running; reads++ {
				select {
				case <-done:
					running = false
				default:
				}
				add()
			}
			add() // the generation the last read switched to
			for i := range want {
				if got[i] != senders/2*each {
					t.Errorf("counted %d drops at %v over %d reads, sent %d datagrams to that closed port", got[i], want[i], reads, senders/2*each)
				}
			}
			t.Logf("%v drops counted over %d reads of the maps", got, reads)
			again, err := tr.ReadSockDrops()
			if err != nil || sockDrops(again, want[0])+sockDrops(again, want[1]) != 0 {
				t.Errorf("a read after the drain found more: %v (err %v)", again, err)
			}
		})
	}
}

// A never-read UDP socket with a small buffer: its receive-buffer drops are counted under its
// address and port, as many as the socket's own drop counter.
func TestPrivSockDropsRcvbufMatchesSocketCounter(t *testing.T) {
	requireRoot(t)
	rcvbuf := reasonCode(t, "SOCKET_RCVBUFF")
	tr, err := Open(Options{NoNetRx: true, SockReasons: []uint32{rcvbuf}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(2048); err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	sendUDP(t, port, 300)
	counts, err := tr.ReadSockDrops()
	if err != nil {
		t.Fatal(err)
	}
	want := SockKey{Netns: selfNetns(t), Reason: rcvbuf, L3: EthIPv4, L4: 17,
		Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(port)}
	got := sockDrops(counts, want)
	kernel := udpSocketDrops(t, port)
	if got == 0 || got != kernel {
		t.Errorf("counted %d receive-buffer drops at %v; the socket's own counter says %d", got, want, kernel)
	}
}

// udpSocketDrops is the drops column of the socket bound to 127.0.0.1:port in /proc/net/udp.
func udpSocketDrops(t *testing.T, port int) uint64 {
	t.Helper()
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	local := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 13 && fs[1] == local {
			n, err := strconv.ParseUint(fs[12], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no socket %s in /proc/net/udp (err %v)", local, sc.Err())
	return 0
}
