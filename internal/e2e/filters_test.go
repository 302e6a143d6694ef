// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/bench"
	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/record"
)

// filterLab is two namespaces of the test's own joined by a veth pair, a (veth0, 10.231.0.1)
// and b (veth1, 10.231.0.2), removed when the test ends.
func filterLab(t *testing.T) (a, b string) {
	t.Helper()
	a, b = "dtflt-a-"+strconv.Itoa(os.Getpid()), "dtflt-b-"+strconv.Itoa(os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	for _, ns := range []string{a, b} {
		exec.Command("ip", "netns", "del", ns).Run() // a stale one from a killed run
		ip("netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
		ip("-n", ns, "link", "set", "lo", "up")
	}
	ip("link", "add", "veth0", "netns", a, "type", "veth", "peer", "name", "veth1", "netns", b)
	ip("-n", a, "addr", "add", "10.231.0.1/24", "dev", "veth0")
	ip("-n", b, "addr", "add", "10.231.0.2/24", "dev", "veth1")
	ip("-n", a, "link", "set", "veth0", "up")
	ip("-n", b, "link", "set", "veth1", "up")
	return a, b
}

// sendUDPTo sends n datagrams to addr:port from a socket made in the namespace bound at
// nsPath ("" for the test's own).
func sendUDPTo(t *testing.T, nsPath, addr string, port, n int) {
	t.Helper()
	send := func() error {
		c, err := net.ListenUDP("udp", nil) // IPv4 and IPv6 destinations
		if err != nil {
			return err
		}
		defer c.Close()
		to := &net.UDPAddr{IP: net.ParseIP(addr), Port: port}
		for range n {
			if _, err := c.WriteToUDP([]byte("droptrace filter test"), to); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if nsPath == "" {
		err = send()
	} else {
		err = netns.Do(nsPath, send)
	}
	if err != nil {
		t.Fatalf("send to %s:%d: %v", addr, port, err)
	}
}

// Each filter keeps the drop events outside it out of the recording, BPF counts them as
// filtered, and every other figure still counts every drop: the drops by reason, the
// accounting of events, the checks. The start record lists the filter.
func TestPrivFilters(t *testing.T) {
	requireRoot(t)
	a, b := filterLab(t)
	pathA, pathB := "/run/netns/"+a, "/run/netns/"+b
	inoB := netnsInode(t, b)
	hostPort, tcpPort, vethPort, loPort := closedUDPPort(t), closedUDPPort(t), closedUDPPort(t), closedUDPPort(t)
	const n = 20
	// A socket that is never read, with a small buffer: SOCKET_RCVBUFF drops on the host.
	victim, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	if err := victim.SetReadBuffer(2048); err != nil {
		t.Fatal(err)
	}
	victimPort := victim.LocalAddr().(*net.UDPAddr).Port
	// Every case sends the same traffic: on the host, n datagrams to a closed port, one TCP
	// SYN to another (both NO_SOCKET), 300 to the victim (SOCKET_RCVBUFF); in b, n to a closed
	// port through the veth from a and n on b's loopback.
	traffic := func() {
		sendUDPTo(t, "", "127.0.0.1", hostPort, n)
		if c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", tcpPort), time.Second); err == nil {
			c.Close()
			t.Errorf("connected to port %d, meant to be closed", tcpPort)
		}
		sendUDPTo(t, "", "127.0.0.1", victimPort, 300)
		// One datagram resolves the neighbour first: those queued meanwhile may be dropped in a.
		sendUDPTo(t, pathA, "10.231.0.2", vethPort, 1)
		time.Sleep(200 * time.Millisecond)
		sendUDPTo(t, pathA, "10.231.0.2", vethPort, n)
		sendUDPTo(t, pathB, "127.0.0.1", loPort, n)
	}
	// Before 5.17 the kernel passes no reason: --reason is refused, and a TCP drop's name
	// comes from a location that frees for many causes (internal/locreason).
	_, reasonsErr := dropreason.Load()
	noReasons := errors.Is(reasonsErr, dropreason.ErrNoEnum)
	for _, c := range []struct {
		name string
		args []string
		want record.Filters
		keep func(d record.Drop) bool
		// kept: events the filter keeps that the traffic makes for sure; out: drops of the
		// traffic it does not keep, not counting the victim's (how many overflow its buffer
		// depends on how fast the kernel drains it).
		kept func(d record.Drop) bool
		min  int
		out  uint64
	}{
		{
			name: "reason", args: []string{"--reason", "socket_rcvbuff"},
			want: record.Filters{Reasons: []string{"SOCKET_RCVBUFF"}},
			keep: func(d record.Drop) bool { return d.Reason == "SOCKET_RCVBUFF" },
			kept: func(d record.Drop) bool { return d.Dport == uint16(victimPort) }, min: 1,
			out: 3*n + 2,
		},
		{
			name: "port", args: []string{"--port", strconv.Itoa(hostPort)},
			want: record.Filters{Ports: []uint16{uint16(hostPort)}},
			keep: func(d record.Drop) bool { return d.Sport == uint16(hostPort) || d.Dport == uint16(hostPort) },
			kept: func(d record.Drop) bool { return d.Reason == "NO_SOCKET" }, min: n,
			out: 2*n + 2,
		},
		{
			name: "proto", args: []string{"--proto", "tcp"},
			want: record.Filters{Protos: []string{"tcp"}},
			keep: func(d record.Drop) bool { return d.L4 == "tcp" },
			kept: func(d record.Drop) bool { return d.Dport == uint16(tcpPort) && (noReasons || d.Reason == "NO_SOCKET") }, min: 1,
			out: 3*n + 1,
		},
		{
			name: "netns", args: []string{"--netns", pathB},
			want: record.Filters{Netns: []uint32{inoB}},
			keep: func(d record.Drop) bool { return d.Netns == inoB },
			kept: func(d record.Drop) bool { return d.Reason == "NO_SOCKET" }, min: 2 * n,
			out: n + 1,
		},
		{
			name: "iface", args: []string{"--netns", b, "--iface", "veth1"},
			want: record.Filters{Netns: []uint32{inoB}, Ifaces: []record.FilterIface{{Name: "veth1", Netns: inoB, Ifindex: ifindexIn(t, pathB, "veth1")}}},
			keep: func(d record.Drop) bool { return d.Netns == inoB && d.Ifname == "veth1" },
			kept: func(d record.Drop) bool { return d.Dport == uint16(vethPort) && d.Reason == "NO_SOCKET" }, min: n,
			out: 2*n + 1,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "reason" && noReasons {
				out, err := exec.Command(binary, append([]string{"--duration", "1s", "--live", "off", "--output", filepath.Join(t.TempDir(), "out.jsonl")}, c.args...)...).CombinedOutput()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "drop reasons are not available on this kernel") {
					t.Errorf("--reason on a kernel without drop reasons: %v, %s; want exit 2 saying why", err, out)
				}
				return
			}
			rec := session(t, traffic, append([]string{"--max-event-rate", "0"}, c.args...)...)
			if rec.start.Filters == nil || !reflect.DeepEqual(*rec.start.Filters, c.want) || !rec.start.Events {
				t.Errorf("start record: events %v, filters %+v; want events on and %+v", rec.start.Events, rec.start.Filters, c.want)
			}
			kept := 0
			for _, d := range rec.drops {
				if !c.keep(d) {
					t.Errorf("drop record outside the filter: %+v", d)
					continue
				}
				if c.kept(d) {
					kept++
				}
			}
			sum := rec.summary
			tr := sum.Tracer
			if kept < c.min {
				t.Errorf("%d drop records of the traffic the filter keeps, want at least %d", kept, c.min)
			}
			if tr.EventsFiltered < c.out {
				t.Errorf("events_filtered %d, want at least the %d drops of the traffic outside the filter", tr.EventsFiltered, c.out)
			}
			// The counts are whole: filtered drops are counted by reason, and accounted for.
			if sum.Drops["NO_SOCKET"] < 3*n+1 || sum.Drops["SOCKET_RCVBUFF"] == 0 {
				t.Errorf("drops %v: want every NO_SOCKET (at least %d) and SOCKET_RCVBUFF, filtered or not", sum.Drops, 3*n+1)
			}
			drops := bench.TotalDrops(sum)
			if got := tr.EventsSent + tr.EventsFiltered + tr.EventsRateLimited + tr.EventsRingbufFull; got != drops {
				t.Errorf("events sent %d + filtered %d + rate-limited %d + ring full %d = %d, want every drop counted: %d",
					tr.EventsSent, tr.EventsFiltered, tr.EventsRateLimited, tr.EventsRingbufFull, got, drops)
			}
			if want := tr.EventsRateLimited + tr.EventsRingbufFull + tr.EventsWriteFailed + tr.EventsUnread; sum.LostEvents != want {
				t.Errorf("lost_events %d, want %d: filtered events are not lost", sum.LostEvents, want)
			}
			if uint64(len(rec.drops)) != tr.EventsWritten {
				t.Errorf("%d drop records, summary says %d written", len(rec.drops), tr.EventsWritten)
			}
			if np := check(t, sum, "udp_no_port", -1); np.Status != record.StatusMatch {
				t.Errorf("udp_no_port %s: traced %d, kernel %d: %s", np.Status, val(np.Traced), val(np.Kernel), np.Note)
			}
		})
	}
}

// ifindexIn is the ifindex of a device in the namespace bound at path.
func ifindexIn(t *testing.T, path, name string) uint32 {
	t.Helper()
	var idx int
	if err := netns.Do(path, func() error {
		ifc, err := net.InterfaceByName(name)
		if err == nil {
			idx = ifc.Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return uint32(idx)
}
