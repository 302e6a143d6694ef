// SPDX-License-Identifier: Apache-2.0

package enrich

import (
	"errors"
	"fmt"
	"testing"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/record"
)

func TestIfnames(t *testing.T) {
	var n Ifnames
	n.Learn(1, 2, "eth0")
	n.Learn(1, 2, "renamed")
	n.Learn(1, 3, "")
	if got := n.Name(1, 2); got != "eth0" {
		t.Errorf("first name learned is kept: %q", got)
	}
	if got := n.Name(1, 3); got != "" {
		t.Errorf("empty names are not learned: %q", got)
	}
	for i := range MaxIfnames + 10 {
		n.Learn(2, uint32(i), fmt.Sprint("veth", i))
	}
	if len(n.names) != MaxIfnames {
		t.Errorf("%d names kept, bound %d", len(n.names), MaxIfnames)
	}
}

// Port 9000 in netns 7 is the socket with inode 48213 and 196661 drops of its own.
const udpTable = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  263: 0200FB0A:2328 00000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 48213 2 0000000000000000 196661
`

func TestOwners(t *testing.T) {
	o := NewOwners(hostfs.FS{})
	walks := 0
	o.find = func(_ hostfs.FS, inode uint64) (hostctx.Owner, bool) {
		walks++
		return hostctx.Owner{PID: 42, Comm: "collector", Cgroup: "/pod"}, inode == 48213
	}
	read := func(ino uint32, name string) ([]byte, error) {
		if ino == 7 && name == "udp" {
			return []byte(udpTable), nil
		}
		return nil, errors.New("no such table")
	}
	ports := []record.PortDrops{
		{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9000, Netns: 7},
		{Reason: "NO_SOCKET", L4: "udp", Port: 9000, Netns: 7},
		{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9001, Netns: 7},
		{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9000, Netns: 8},
	}
	o.Annotate(ports, read)
	o.Annotate(ports, read)
	if p := ports[0]; p.PID != 42 || p.Comm != "collector" || p.Cgroup != "/pod" || p.SocketDrops != 196661 {
		t.Errorf("owner of port 9000: %+v", p)
	}
	for _, p := range ports[1:] {
		if p.PID != 0 || p.SocketDrops != 0 {
			t.Errorf("no owner to find: %+v", p)
		}
	}
	if walks != 1 {
		t.Errorf("%d walks of /proc for one socket, want 1 (cached)", walks)
	}
}
