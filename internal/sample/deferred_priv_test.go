// SPDX-License-Identifier: Apache-2.0

package sample_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/assemble"
	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/interval"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sample"
	"github.com/droptrace/droptrace/internal/tracer"
)

// overflowListen makes TcpExt ListenOverflows move once inside the namespace with no drop
// any tracer sees: a listener with backlog 0 holds one connection in its accept queue, and a
// second connection's SYN finds the queue full, is counted, and is consumed, not freed as a
// drop (tcp_conn_request, tcp_rcv_state_process). The connecting socket is closed before it
// would send the SYN again; the listener and the first connection stay open until the test
// ends, so that nothing else moves.
func overflowListen(t *testing.T, name string) {
	t.Helper()
	var keep []int
	t.Cleanup(func() {
		for _, fd := range keep {
			unix.Close(fd)
		}
	})
	err := netns.Do(netns.RunDir+"/"+name, func() error {
		l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		keep = append(keep, l)
		lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
		if err := unix.Bind(l, lo); err != nil {
			return err
		}
		if err := unix.Listen(l, 0); err != nil {
			return err
		}
		sa, err := unix.Getsockname(l)
		if err != nil {
			return err
		}
		for i := range 2 {
			c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if err := unix.Connect(c, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
				unix.Close(c)
				return fmt.Errorf("connect %d: %w", i, err)
			}
			if i == 0 {
				keep = append(keep, c)
				continue
			}
			time.Sleep(20 * time.Millisecond)
			unix.Close(c) // in SYN_SENT: closing sends nothing
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// 300 idle namespaces, three of them dropping datagrams to a closed port every interval (one
// only from the middle on), and one where a drop counter moves with no traced drop. Each
// namespace is read at least every NetnsReadEvery = 5 samples: the three are checked, and
// match, in every interval after their first drops; the counter that moved in the untouched
// one is reported within 5 intervals.
func TestPrivDeferredNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: creating network namespaces and tracing need root; run as root to cover this")
	}
	const count, every, intervals = 300, 5, 3 * 5
	prefix := fmt.Sprintf("dtdefer%d-", os.Getpid())
	names := make([]string, count)
	inos := map[string]uint32{}
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", prefix, i)
		inos[names[i]] = uint32(netnsAdd(t, names[i]))
	}
	steady := []string{names[10], names[150]}
	late := names[290] // drops from interval `every` on
	quiet := names[200]
	reasons, err := dropreason.Load()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tracer.Open(tracer.Options{NoNetRx: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	reasonOf := func(code uint32, _ uint64) string { return reasons.Name(code) }
	r := sample.NewReader(sample.Config{Tracer: tr, FS: hostfs.Host(), NetnsReadEvery: every,
		// Only this test's namespaces: traffic elsewhere on the host moves other counters.
		ListNetns: listNamed(prefix)})
	prev, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(prev.Netns) != count {
		t.Fatalf("first sample has %d namespaces, want all %d", len(prev.Netns), count)
	}
	noSocket := reconcile.ReasonL4{Reason: "NO_SOCKET", L4: 17}
	sent := map[string]int64{} // datagrams sent since the namespace's last read
	movedAt, found := 2, 0
	for i := 1; i <= intervals; i++ {
		for j, name := range append(steady, late) {
			if name == late && i < every {
				continue
			}
			n := 2 + (i+j)%3
			sendNoPort(t, name, n)
			sent[name] += int64(n)
		}
		if i == movedAt {
			overflowListen(t, quiet)
		}
		cur, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		d := interval.Diff(prev, cur, reasonOf)
		rec := assemble.Record(d, assemble.Input{Type: record.TypeInterval}, assemble.Names{Reason: reasonOf,
			Location: func(uint64) string { return "" }, Ifname: func(uint32, uint32) string { return "" }}, false)
		ok := reconcile.Availability{OK: true}
		rec.Checks = assemble.Checks(rec, &d.Evidence, assemble.Availability{Drops: ok, NetRx: ok, Predict: ok})
		if rec.NetnsCoverage == nil || rec.NetnsCoverage.Deferred == 0 {
			t.Errorf("interval %d: coverage %+v, want namespaces deferred", i, rec.NetnsCoverage)
		}
		read := map[uint32]bool{}
		if rec.NetnsCoverage != nil {
			for _, ino := range rec.NetnsCoverage.Read {
				read[ino] = true
			}
		}
		for _, c := range rec.Checks {
			if c.Check == "udp_no_port" && c.Status != record.StatusMatch {
				t.Errorf("interval %d: %+v", i, c)
			}
		}
		for _, name := range append(steady, late) {
			ino := inos[name]
			if !read[ino] {
				// Deferred: its drops are carried to its next read, which must be the next
				// interval once it has drops.
				if (name != late || i > every) && i > 1 {
					t.Errorf("interval %d: %s, with drops in the previous interval, was not read", i, name)
				}
				if got := cur.Netns[ino].Carried[noSocket]; int64(got) != sent[name] {
					t.Errorf("interval %d: %s deferred carries %d drops, want %d", i, name, got, sent[name])
				}
				continue
			}
			ns := d.Netns[ino]
			if ns == nil || ns.SNMP == nil || int64(ns.Traced[noSocket]) != sent[name] || ns.SNMP["Udp"]["NoPorts"] != sent[name] {
				t.Errorf("interval %d: %s read: %+v, want %d traced and counted", i, name, ns, sent[name])
			}
			sent[name] = 0
		}
		if q := inos[quiet]; i >= movedAt && found == 0 && read[q] {
			found = i
			ns := d.Netns[q]
			if ns == nil || ns.SNMP["TcpExt"]["ListenOverflows"] < 1 || len(ns.Traced)+len(ns.Unwatched) != 0 {
				t.Errorf("interval %d: the untouched namespace read: %+v; want ListenOverflows moved and no traced drop", i, ns)
			}
			for _, c := range rec.Checks {
				if c.Check == "tcp_listen_overflow" && (c.Kernel == nil || *c.Kernel < 1 || !strings.Contains(c.Note, "counted")) {
					t.Errorf("interval %d: %+v, want the overflow counted", i, c)
				}
			}
		}
		prev = cur
	}
	t.Logf("ListenOverflows moved in interval %d of %d; read and reported in interval %d", movedAt, intervals, found)
	if found == 0 || found-movedAt >= every {
		t.Errorf("the counter moved in interval %d was reported in interval %d, want within %d intervals", movedAt, found, every)
	}
}
