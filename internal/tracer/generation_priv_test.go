// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/snmp"
)

// testNetns is a network namespace of its own, with lo up, kept alive by a UDP socket in it and
// its /proc/net/snmp open, both usable from any thread.
type testNetns struct {
	ino  uint32
	sock int
	snmp *os.File
}

// newTestNetns creates a namespace from a locked thread, which returns to its own namespace
// before it is unlocked (or dies with it: the main thread's namespace is what /proc/self shows).
func newTestNetns(t *testing.T) *testNetns {
	t.Helper()
	type result struct {
		ns  *testNetns
		err error
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer home.Close()
		ns, err := func() (*testNetns, error) {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return nil, fmt.Errorf("unshare: %w", err)
			}
			var st unix.Stat_t
			if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
				return nil, err
			}
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return nil, err
			}
			ns := &testNetns{ino: uint32(st.Ino), sock: fd}
			ifr, err := unix.NewIfreq("lo")
			if err != nil {
				return ns, err
			}
			ifr.SetUint16(unix.IFF_UP)
			if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
				return ns, fmt.Errorf("bring lo up: %w", err)
			}
			ns.snmp, err = os.Open("/proc/thread-self/net/snmp")
			return ns, err
		}()
		if serr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); serr != nil {
			ch <- result{ns, fmt.Errorf("return to the test's namespace: %w", serr)}
			return // the thread stays locked, and dies with the goroutine
		}
		runtime.UnlockOSThread()
		ch <- result{ns, err}
	}()
	r := <-ch
	if r.ns != nil {
		t.Cleanup(func() {
			unix.Close(r.ns.sock)
			if r.ns.snmp != nil {
				r.ns.snmp.Close()
			}
		})
	}
	if r.err != nil {
		t.Fatalf("create a network namespace: %v", r.err)
	}
	return r.ns
}

// send sends n datagrams to a closed loopback port in the namespace: each one a NO_SOCKET drop
// and one more Udp NoPorts.
func (ns *testNetns) send(n int) error {
	to := &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}
	for range n {
		if err := unix.Sendto(ns.sock, []byte("droptrace"), 0, to); err != nil {
			return fmt.Errorf("send in netns %d: %w", ns.ino, err)
		}
	}
	return nil
}

// noPorts is the namespace's Udp NoPorts counter.
func (ns *testNetns) noPorts(t *testing.T) uint64 {
	t.Helper()
	if _, err := ns.snmp.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	c, err := snmp.ParseGroups(ns.snmp, []string{"Udp"})
	if err != nil {
		t.Fatal(err)
	}
	v, ok := c.Get("Udp", "NoPorts")
	if !ok {
		t.Fatal("no Udp NoPorts in /proc/net/snmp")
	}
	return v
}

// mapNetns is the set of namespaces that have a key in either drop_counts map.
func mapNetns(t *testing.T, tr *Tracer) map[uint32]bool {
	t.Helper()
	out := map[uint32]bool{}
	for _, m := range tr.dropMaps() {
		if err := readMap(m, false, tr.ncpu, &tr.dropBuf, func(k dropsDropKey, _ []uint64) { out[k.Netns] = true }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Drops in many namespaces, counted while the generations flip under them, are all counted,
// each namespace's exactly as its Udp NoPorts; and once a namespace stops dropping, its keys
// leave the kernel's maps with their generation while its counts stay in ReadDrops. Every cache
// slot is given to a made-up key first, so that every drop goes through the maps.
func TestPrivDropGenerationsExact(t *testing.T) {
	requireRoot(t)
	noSocket := reasonCode(t, "NO_SOCKET")
	tr, err := Open(Options{NoNetRx: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	takeSlots(t, tr)

	const nns = 48
	nss := make([]*testNetns, nns)
	for i := range nss {
		nss[i] = newTestNetns(t)
	}
	first, second := nss[:nns/2], nss[nns/2:]

	// flood sends from every namespace of group, round after round, while the generations
	// flip flips times.
	flood := func(group []*testNetns, flips int) {
		t.Helper()
		var (
			stop atomic.Bool
			wg   sync.WaitGroup
			serr error
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rounds := 0; !stop.Load() || rounds < 2; rounds++ {
				for _, ns := range group {
					if err := ns.send(5); err != nil {
						serr = err
						return
					}
				}
			}
		}()
		for range flips {
			time.Sleep(20 * time.Millisecond)
			if _, err := tr.ReadSockDrops(); err != nil {
				t.Error(err)
			}
		}
		stop.Store(true)
		wg.Wait()
		if serr != nil {
			t.Fatal(serr)
		}
	}
	check := func(when string) {
		t.Helper()
		counts, stats, err := tr.ReadDropsAndStats()
		if err != nil {
			t.Fatal(err)
		}
		if full := sum(stats.AggFull); full != 0 {
			t.Fatalf("%s: %d drops found drop_counts full; the test needs them by key", when, full)
		}
		got := map[uint32]uint64{}
		for _, c := range counts {
			if c.Key.Reason == noSocket && c.Key.L4 == 17 {
				got[c.Key.Netns] += sum(c.PerCPU)
			}
		}
		for i, ns := range nss {
			if want := ns.noPorts(t); got[ns.ino] != want || (i < nns/2 && want == 0) {
				t.Errorf("%s: namespace %d: counted %d NO_SOCKET drops, its Udp NoPorts is %d", when, i, got[ns.ino], want)
			}
		}
	}

	flood(first, 6)
	check("after the first group's drops")
	// Two flips: the generation that counted the first group's last drops is drained.
	for range 2 {
		if _, err := tr.ReadSockDrops(); err != nil {
			t.Fatal(err)
		}
	}
	in := mapNetns(t, tr)
	for i, ns := range first {
		if in[ns.ino] {
			t.Errorf("namespace %d, idle for two generations, still has keys in drop_counts", i)
		}
	}
	flood(second, 4)
	in = mapNetns(t, tr)
	for i, ns := range first {
		if in[ns.ino] {
			t.Errorf("namespace %d, idle since, has keys in drop_counts again", i)
		}
	}
	check("after the second group's drops")
	if _, err := tr.ReadSockDrops(); err != nil {
		t.Fatal(err)
	}
	check("after a last flip")
}
