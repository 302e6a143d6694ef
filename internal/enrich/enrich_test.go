// SPDX-License-Identifier: Apache-2.0

package enrich

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/pods"
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

// Netns 7: port 9000 is bound twice, on 10.251.0.2 (inode 48213, 196661 drops of its own, 0x900
// bytes queued) and on the wildcard address (inode 48214); a TCP listener on 127.0.0.1:8080
// (inode 777) has 2 connections waiting against a backlog of 1, one on :8081 is not full.
const (
	udpTable = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  263: 0200FB0A:2328 00000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 48213 2 0000000000000000 196661
  264: 00000000:2328 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 48214 2 0000000000000000 5
`
	tcpTable = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000001:00000002 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F91 00000000:0000 0A 00000080:00000003 00:00000000 00000000     0        0 778 1 0000000000000000 100 0 0 10 0
`
)

func TestOwners(t *testing.T) {
	o := NewOwners(hostfs.New(t.TempDir()))
	now := time.Unix(1e9, 0)
	o.now = func() time.Time { return now }
	var walks []map[uint64]bool
	o.find = func(_ hostfs.FS, inodes map[uint64]bool) map[uint64][]hostctx.Owner {
		walks = append(walks, inodes)
		now = now.Add(time.Second) // a walk of a big host
		return map[uint64][]hostctx.Owner{
			48213: {{PID: 42, Comm: "collector", Cgroup: "/pod", FD: 3}, {PID: 43, FD: 3}, {PID: 44, FD: 5}},
			777:   {{PID: 50, Comm: "server", FD: 4}},
		}
	}
	o.inspect = func(h hostctx.Owner, inode uint64) (hostctx.SocketState, error) {
		switch {
		case h.PID == 42 && inode == 48213:
			return hostctx.SocketState{RcvBuf: 8192}, nil
		case h.PID == 50 && inode == 777:
			return hostctx.SocketState{RcvBuf: 1 << 16, Listening: true, AcceptQueue: 2, AcceptBacklog: 1}, nil
		}
		return hostctx.SocketState{}, errors.New("not that socket")
	}
	reads := map[string]int{}
	read := func(ino uint32, name string) ([]byte, error) {
		reads[fmt.Sprint(ino, name)]++
		switch {
		case ino == 7 && name == "udp":
			return []byte(udpTable), nil
		case ino == 7 && name == "tcp":
			return []byte(tcpTable), nil
		}
		return nil, errors.New("no such table")
	}
	rec := &record.Interval{Ports: []record.PortDrops{
		{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9000, Netns: 7, Addr: "10.251.0.2"},
		{Reason: "NO_SOCKET", L4: "udp", Port: 9000, Netns: 7},
		{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9001, Netns: 7},
		{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9000, Netns: 8},
	}}
	o.Annotate(rec, []uint32{7}, read)
	// Each table is read once per record, however many of its ports and listeners are named.
	for k, n := range reads {
		if n != 1 {
			t.Errorf("read %s %d times for one record, want once", k, n)
		}
	}
	o.Annotate(rec, []uint32{7}, read)
	p := rec.Ports[0]
	if p.PID != 42 || p.Comm != "collector" || p.Cgroup != "/pod" || !slices.Equal(p.SharedWith, []int{43, 44}) ||
		p.SocketDrops != 196661 || p.Queue != 0x900 || p.RcvBuf != 8192 {
		t.Errorf("port 9000 on 10.251.0.2: %+v", p)
	}
	for _, p := range rec.Ports[1:] {
		if p.PID != 0 || p.SocketDrops != 0 || p.RcvBuf != 0 {
			t.Errorf("no socket to name: %+v", p)
		}
	}
	// 8080 is full (2 waiting, limit 1, as the socket says); 8081 has 3 waiting but no holder
	// to ask for its limit, so it is listed with the limit unknown.
	one := uint64(1)
	want := []record.Listener{
		{Netns: 7, Addr: "127.0.0.1", Port: 8080, AcceptQueue: 2, AcceptBacklog: &one, Holder: record.Holder{PID: 50, Comm: "server"}},
		{Netns: 7, Addr: "127.0.0.1", Port: 8081, AcceptQueue: 3},
	}
	if !reflect.DeepEqual(rec.Listeners, want) {
		t.Errorf("listeners %+v, want %+v", rec.Listeners, want)
	}
	if len(walks) != 1 || len(walks[0]) != 3 || !walks[0][48213] || !walks[0][777] || !walks[0][778] {
		t.Errorf("walks of /proc %v: want one, for inodes 48213, 777 and 778 together (then cached)", walks)
	}

	// Sent to another address, the drops went to the wildcard socket: named from the table at
	// once, its holder looked for at the next walk, WalkShare times the last walk's time later.
	rec = &record.Interval{Ports: []record.PortDrops{{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9000, Netns: 7, Addr: "10.251.0.9"}}}
	o.Annotate(rec, nil, read)
	if p := rec.Ports[0]; p.SocketDrops != 5 || p.PID != 0 || len(rec.Listeners) != 0 || len(walks) != 1 {
		t.Errorf("port 9000 on 10.251.0.9: %+v, listeners %+v, %d walks; want the wildcard socket (5 drops), no walk yet", p, rec.Listeners, len(walks))
	}
	now = now.Add(WalkShare * time.Second)
	o.Annotate(rec, nil, read)
	if len(walks) != 2 || !walks[1][48214] {
		t.Errorf("walks %v: want a second one for inode 48214 once WalkShare times the first walk passed", walks)
	}
}

// The owner's pod and container come from its cgroup and the runtime's config.json.
func TestOwnersPod(t *testing.T) {
	const (
		uid = "7f3c2a4e-9b1d-4c8e-a6f2-3d5e8b9c1a20"
		id  = "d0f631ca1ddba8db3bcfcb9e057cdc98d0379f1bee00e75a545147a27dadd982"
	)
	root := t.TempDir()
	dir := filepath.Join(root, "run/containerd/io.containerd.runtime.v2.task/k8s.io", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"annotations":{"io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"default",` +
		`"io.kubernetes.cri.container-name":"app","io.kubernetes.cri.sandbox-uid":"` + uid + `"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	o := NewOwners(hostfs.New(root))
	o.Pods = pods.New(hostfs.New(root), nil, nil)
	o.find = func(_ hostfs.FS, inodes map[uint64]bool) map[uint64][]hostctx.Owner {
		return map[uint64][]hostctx.Owner{48213: {{PID: 4121, Comm: "python3", FD: 3,
			Cgroup: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-" + id + ".scope"}}}
	}
	rec := &record.Interval{Ports: []record.PortDrops{{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9000, Netns: 7, Addr: "10.251.0.2"}}}
	o.Annotate(rec, nil, func(uint32, string) ([]byte, error) { return []byte(udpTable), nil })
	if p := rec.Ports[0]; p.Pod != "default/web-0" || p.Container != "app" || p.PodUID != uid {
		t.Errorf("port 9000: %+v; want pod default/web-0 container app", p)
	}
}
