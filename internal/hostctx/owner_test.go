// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/droptrace/droptrace/internal/hostfs"
)

const udpSample = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  263: 0200FB0A:2328 00000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 48213 2 0000000000000000 196661
  512: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17730 2 0000000000000000 0
`

func TestParseProcNetUDP(t *testing.T) {
	s, err := ParseProcNetUDP(strings.NewReader(udpSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0].LocalPort != 9000 || s[0].Inode != 48213 || s[0].Drops != 196661 || s[0].RxQueue != 0x900 || s[1].LocalPort != 68 {
		t.Errorf("%+v", s)
	}
	if _, err := ParseProcNetUDP(strings.NewReader("h\n 1: x\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("%v", err)
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
	socks := parse(t, "/proc/net/udp", ParseProcNetUDP)
	var inode uint64
	for _, s := range socks {
		if s.LocalPort == port {
			inode = s.Inode
		}
	}
	if inode == 0 {
		t.Fatalf("port %d not in /proc/net/udp", port)
	}
	o, ok := FindOwner(hostfs.Host(), inode)
	if !ok || o.PID != syscall.Getpid() {
		t.Errorf("owner %+v, %v; want pid %d", o, ok, syscall.Getpid())
	}
}
