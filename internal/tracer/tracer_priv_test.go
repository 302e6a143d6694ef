// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to load BPF programs; run `sudo make test`")
	}
}

// closedUDPPort returns a loopback port with no socket bound to it.
func closedUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return port
}

func sendUDP(t *testing.T, port, n int) {
	t.Helper()
	// Unconnected, so the ICMP port-unreachable of one datagram does not fail the next send.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	for i := 0; i < n; i++ {
		if _, err := c.WriteToUDP([]byte("droptrace"), to); err != nil {
			t.Fatal(err)
		}
	}
}

func selfNetns(t *testing.T) uint32 {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

// Datagrams to a closed loopback port are dropped by the UDP stack (NO_SOCKET): each must be
// counted once in the aggregate for this netns and appear as an event with its port.
func TestPrivDropsCountedAndStreamed(t *testing.T) {
	requireRoot(t)
	for _, force := range []bool{false, true} {
		name := "tp_btf"
		if force {
			name = "tracepoint"
		}
		t.Run(name, func(t *testing.T) {
			tr, err := Open(Options{Events: true, ForceTracepoint: force})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			for _, p := range tr.Probes() {
				if p.Name == LimitsProbe { // TestPrivNetRxReadsKernelLimits
					continue
				}
				if !p.OK || p.Status != name {
					t.Errorf("probe %s: %s, want %s", p.Name, p.Status, name)
				}
			}
			port := closedUDPPort(t)
			const n = 50
			sendUDP(t, port, n)

			var got int
			var e Event
			for got < n {
				err := tr.NextEvent(&e, time.Now().Add(5*time.Second))
				if err != nil {
					t.Fatalf("after %d of %d events: %v", got, n, err)
				}
				if e.L4 == 17 && int(e.Dport) == port && e.Src.String() == "127.0.0.1" {
					got++
					if e.Ifname != "lo" || e.Netns != selfNetns(t) || e.Len == 0 || e.Location == 0 {
						t.Errorf("event %+v: want ifname lo, netns %d, a length and a location", e, selfNetns(t))
					}
				}
			}
			if udp := udpDropsHere(t, tr); udp < n {
				t.Errorf("aggregate counted %d UDP drops in this netns, sent %d to a closed port", udp, n)
			}
			st, err := tr.ReadDropStats()
			if err != nil {
				t.Fatal(err)
			}
			var sent uint64
			for _, v := range st.EventsSent {
				sent += v
			}
			if sent < n {
				t.Errorf("drop stats: events sent %d < %d", sent, n)
			}
		})
	}
}

func TestPrivNetRxCountsRuns(t *testing.T) {
	requireRoot(t)
	tr, err := Open(Options{NoDrops: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.SetNetRx(300, 2, 0); err != nil {
		t.Fatal(err)
	}
	// Loopback delivery goes through the backlog NAPI in NET_RX.
	sendUDP(t, closedUDPPort(t), 200)
	time.Sleep(100 * time.Millisecond)
	nr, err := tr.ReadNetRx()
	if err != nil {
		t.Fatal(err)
	}
	var runs, polls, pkts uint64
	for _, c := range nr {
		runs += c.Runs
		polls += c.Polls
		pkts += c.Packets
	}
	if runs == 0 || polls == 0 || pkts < 200 {
		t.Errorf("NET_RX runs %d, polls %d, packets %d after 200 loopback datagrams", runs, polls, pkts)
	}
	// Every closed run is either timed one by one or counted among those sampling stands for.
	for cpu, c := range nr {
		if c.TimedRuns+c.SampledFrom != c.Exits || c.SampleRuns > c.SampledFrom {
			t.Errorf("CPU %d: timed %d + sampled-from %d != exits %d (samples %d)", cpu, c.TimedRuns,
				c.SampledFrom, c.Exits, c.SampleRuns)
		}
		if c.Exits > 0 && c.EstBusyNs() == 0 {
			t.Errorf("CPU %d: %d NET_RX runs and no busy time: %+v", cpu, c.Exits, c)
		}
	}
}

// MeasureHZ must agree with the CONFIG_HZ of the running kernel's config.
func TestPrivMeasureHZ(t *testing.T) {
	requireRoot(t)
	hz, err := MeasureHZ(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	want := kconfigHZ(t)
	if hz != want {
		t.Errorf("measured HZ %d, kernel config says %d", hz, want)
	}
}

// The per-CPU token bucket lets a burst of MaxEventRate events through, then MaxEventRate per
// second, counting every refused event; with HZ known it counts time in jiffies.
func TestPrivEventRateLimit(t *testing.T) {
	requireRoot(t)
	for _, hz := range []int{0, 250, 1000} {
		t.Run(map[int]string{0: "ns", 250: "jiffies", 1000: "jiffies-hz1000"}[hz], func(t *testing.T) {
			const rate, n = 10, 300
			tr, err := Open(Options{Events: true, MaxEventRate: rate, HZ: hz, NoNetRx: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			start := time.Now()
			sendUDP(t, closedUDPPort(t), n)
			elapsed := time.Since(start)
			st, err := tr.ReadDropStats()
			if err != nil {
				t.Fatal(err)
			}
			var seen, sent, limited uint64
			for c := range st.Seen {
				seen += st.Seen[c]
				sent += st.EventsSent[c]
				limited += st.RateLimited[c]
			}
			// The burst on each CPU that dropped, plus what the elapsed time refilled (a tick's
			// worth more, since the jiffies clock refills in whole ticks).
			refill := uint64(float64(rate)*(elapsed.Seconds()+0.01)) + 1
			cpus := uint64(tr.PossibleCPUs())
			if sent < rate || sent > cpus*(rate+refill) {
				t.Errorf("%d events sent of %d drops in %v at %d/s per CPU: want a burst of %d, at most %d", sent, seen, elapsed,
					rate, rate, cpus*(rate+refill))
			}
			if sent+limited != seen {
				t.Errorf("sent %d + rate-limited %d != seen %d: refused events must be counted", sent, limited, seen)
			}
			if seen < n {
				t.Errorf("seen %d drops, sent %d to a closed port", seen, n)
			}
		})
	}
}

// IPv6 drops carry addresses and ports in events too (the header is read differently from
// IPv4's, with no options to skip).
func TestPrivIPv6DropEvents(t *testing.T) {
	requireRoot(t)
	for _, force := range []bool{false, true} {
		name := map[bool]string{false: "tp_btf", true: "tracepoint"}[force]
		t.Run(name, func(t *testing.T) {
			tr, err := Open(Options{Events: true, NoNetRx: true, ForceTracepoint: force})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			l, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
			if err != nil {
				t.Skipf("SKIPPED: no IPv6 loopback here: %v", err)
			}
			port := l.LocalAddr().(*net.UDPAddr).Port
			l.Close()
			c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sport := c.LocalAddr().(*net.UDPAddr).Port
			const n = 5
			for i := 0; i < n; i++ {
				if _, err := c.WriteToUDP([]byte("droptrace"), &net.UDPAddr{IP: net.IPv6loopback, Port: port}); err != nil {
					t.Fatal(err)
				}
			}
			var got int
			var e Event
			for got < n {
				if err := tr.NextEvent(&e, time.Now().Add(5*time.Second)); err != nil {
					t.Fatalf("after %d of %d IPv6 events: %v", got, n, err)
				}
				if e.L3 == EthIPv6 && int(e.Dport) == port {
					got++
					if e.L4 != 17 || e.Src.String() != "::1" || e.Dst.String() != "::1" || int(e.Sport) != sport {
						t.Errorf("IPv6 event %+v: want udp ::1 port %d -> ::1 port %d", e, sport, port)
					}
				}
			}
		})
	}
}
