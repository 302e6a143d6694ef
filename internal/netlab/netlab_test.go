// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/flood"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/sysctl"
)

const testPrefix = "dtlabtest-"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: NOT RUN AS ROOT: netlab's scenario needs root (netns, veth, sysctls); run `sudo make test` to cover it")
	}
}

// newLab builds a lab that is closed when the test ends, pass or fail.
func newLab(t *testing.T) *Lab {
	t.Helper()
	if err := CleanupStale(testPrefix); err != nil {
		t.Logf("cleaning up earlier runs: %v", err)
	}
	lab, err := New(testPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	return lab
}

type softnetCPU struct{ processed, dropped, squeeze uint64 }

// readSoftnet is deliberately minimal and independent of internal/softnet: this test checks
// the scenario, not the parser. Kernels since 5.10 print the CPU id in column 13; before, the
// line index is the CPU only when no CPU is offline.
func readSoftnet(t *testing.T) map[int]softnetCPU {
	t.Helper()
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]softnetCPU{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for i := 0; sc.Scan(); i++ {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			t.Fatalf("softnet_stat line %d: %q", i, sc.Text())
		}
		hex := func(s string) uint64 {
			v, err := strconv.ParseUint(s, 16, 64)
			if err != nil {
				t.Fatalf("softnet_stat line %d: %q: %v", i, sc.Text(), err)
			}
			return v
		}
		cpu := i
		if len(f) >= 13 {
			cpu = int(hex(f[12]))
		}
		out[cpu] = softnetCPU{hex(f[0]), hex(f[1]), hex(f[2])}
	}
	return out
}

// counter reads one SNMP counter ("Udp", "NoPorts") from a /proc/net/snmp or netstat text.
func counter(t *testing.T, b []byte, proto, name string) uint64 {
	t.Helper()
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		h, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(h) == 0 || h[0] != proto+":" || len(v) != len(h) || v[0] != h[0] {
			continue
		}
		for j := range h {
			if h[j] == name {
				n, err := strconv.ParseUint(v[j], 10, 64)
				if err != nil {
					t.Fatalf("%s %s = %q", proto, name, v[j])
				}
				return n
			}
		}
	}
	t.Fatalf("no %s %s in:\n%s", proto, name, b)
	return 0
}

func (l *Lab) mustRead(t *testing.T, ns, file string) []byte {
	t.Helper()
	b, err := l.ReadFile(ns, file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (l *Lab) mustStats(t *testing.T, ns, ifname string) LinkStats {
	t.Helper()
	s, err := l.LinkStats(ns, ifname)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// journaled returns the originals of the sysctls this process's lab changed, as recorded
// under the sysctl lock (so no other lab's temporary values).
func journaled(t *testing.T) map[string]string {
	t.Helper()
	j, err := os.ReadFile(sysctl.LockPath)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(j)), "\n") {
		if name, v, ok := strings.Cut(line, " "); ok {
			if _, seen := m[name]; !seen {
				m[name] = v
			}
		}
	}
	return m
}

// assertRestored checks under the sysctl lock, so that a lab in another process cannot be
// holding its own values at that moment, that the sysctls have their original values.
func assertRestored(t *testing.T, want map[string]string) {
	t.Helper()
	j, err := sysctl.Lock(SysctlLockWait)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for name, orig := range want {
		if v, err := sysctl.Read(name); err != nil || v != orig {
			t.Errorf("%s = %s (%v) after cleanup, was %s", name, v, err, orig)
		}
	}
}

// What CleanupStale and Close must leave: nothing of labs with prefix.
func assertNoLeftovers(t *testing.T, prefix string, names ...string) {
	t.Helper()
	for _, ns := range names {
		if _, err := os.Stat(filepath.Join(netns.RunDir, ns)); err == nil {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	locks, _ := filepath.Glob(filepath.Join(StateDir, "lab-"+prefix+"*"))
	for _, l := range locks {
		// Another live process's lab with this prefix would be legitimate; ours are gone.
		for _, ns := range names {
			if strings.Contains(l, strings.TrimPrefix(strings.TrimPrefix(ns, prefix+"tx-"), prefix+"rx-")) {
				t.Errorf("lock file %s left behind", l)
			}
		}
	}
}

// The hidden-loss scenario: RPS steers the receiving veth to the CPU the sender is not on,
// netdev_max_backlog=10 and netdev_budget=4, and a UDP flood. The RPS CPU's backlog overflows
// (softnet_stat dropped) and its NET_RX polls run out of budget (time_squeeze).
func TestPrivScenarioReproduces(t *testing.T) {
	requireRoot(t)
	if runtime.NumCPU() < 2 {
		t.Skip("SKIPPED: RPS to another CPU needs two CPUs")
	}
	const floodCPU, rpsCPU, port = 0, 1, 9
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab := newLab(t)
	if err := lab.SetRPS(rpsCPU); err != nil {
		t.Fatal(err)
	}
	if err := lab.SetSysctl("net.core.netdev_max_backlog", "10"); err != nil {
		t.Fatal(err)
	}
	if err := lab.SetSysctl("net.core.netdev_budget", "4"); err != nil {
		t.Fatal(err)
	}
	orig := journaled(t)
	t.Logf("host net.core before: netdev_max_backlog=%s netdev_budget=%s", orig["net.core.netdev_max_backlog"], orig["net.core.netdev_budget"])

	rxBefore, txBefore := lab.mustStats(t, lab.Receiver, lab.ReceiverIf), lab.mustStats(t, lab.Sender, lab.SenderIf)
	sndBefore, rcvBefore := lab.mustRead(t, lab.Sender, "snmp"), lab.mustRead(t, lab.Receiver, "snmp")
	before := readSoftnet(t)
	floodCtx, floodCancel := context.WithTimeout(ctx, 20*time.Second)
	defer floodCancel()
	start := time.Now()
	sent, err := lab.Flood(floodCtx, floodCPU, port, 200_000, 64)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the RPS CPU drain its backlog
	after := readSoftnet(t)
	rxAfter, txAfter := lab.mustStats(t, lab.Receiver, lab.ReceiverIf), lab.mustStats(t, lab.Sender, lab.SenderIf)
	sndAfter, rcvAfter := lab.mustRead(t, lab.Sender, "snmp"), lab.mustRead(t, lab.Receiver, "snmp")

	t.Logf("sent %d datagrams of 64 bytes from CPU %d in %s (%.0f/s)", sent, floodCPU, took.Round(time.Millisecond), float64(sent)/took.Seconds())
	for cpu := 0; cpu < len(after); cpu++ {
		a, b := after[cpu], before[cpu]
		t.Logf("softnet CPU %d: processed +%d, dropped +%d, time_squeeze +%d", cpu, a.processed-b.processed, a.dropped-b.dropped, a.squeeze-b.squeeze)
	}
	dropped := after[rpsCPU].dropped - before[rpsCPU].dropped
	squeezed := after[rpsCPU].squeeze - before[rpsCPU].squeeze
	rxDropped := rxAfter.RxDropped - rxBefore.RxDropped
	t.Logf("receiver %s (ip -s link): RX packets +%d, RX dropped +%d; sender %s: TX packets +%d, TX dropped +%d",
		lab.ReceiverIf, rxAfter.RxPackets-rxBefore.RxPackets, rxDropped, lab.SenderIf, txAfter.TxPackets-txBefore.TxPackets, txAfter.TxDropped-txBefore.TxDropped)
	t.Logf("sender Udp OutDatagrams +%d SndbufErrors +%d; receiver Udp NoPorts +%d InErrors +%d",
		counter(t, sndAfter, "Udp", "OutDatagrams")-counter(t, sndBefore, "Udp", "OutDatagrams"),
		counter(t, sndAfter, "Udp", "SndbufErrors")-counter(t, sndBefore, "Udp", "SndbufErrors"),
		counter(t, rcvAfter, "Udp", "NoPorts")-counter(t, rcvBefore, "Udp", "NoPorts"),
		counter(t, rcvAfter, "Udp", "InErrors")-counter(t, rcvBefore, "Udp", "InErrors"))

	if sent == 0 {
		t.Fatal("nothing sent")
	}
	if dropped == 0 || squeezed == 0 {
		t.Errorf("the scenario did not reproduce on the RPS CPU %d: dropped +%d, time_squeeze +%d", rpsCPU, dropped, squeezed)
	}
	// enqueue_to_backlog counts its drops against the device too (dev_core_stats), so ip -s
	// link shows them as RX dropped of the receiving veth: never more than the CPU's backlog
	// dropped, which may also hold other traffic's drops.
	if rxDropped == 0 || rxDropped > dropped {
		t.Errorf("receiving veth RX dropped +%d, softnet dropped +%d on CPU %d", rxDropped, dropped, rpsCPU)
	}

	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	assertRestored(t, orig)
	assertNoLeftovers(t, testPrefix, lab.Sender, lab.Receiver)
}

// Close restores exactly the values found, even across two settings of the same name.
func TestPrivSysctlsRestored(t *testing.T) {
	requireRoot(t)
	lab := newLab(t)
	const name = "net.core.netdev_budget"
	if err := lab.SetSysctl(name, "7"); err != nil {
		t.Fatal(err)
	}
	orig := journaled(t)
	if orig[name] == "" {
		t.Fatalf("journal does not record %s: %v", name, orig)
	}
	if err := lab.SetSysctl(name, "8"); err != nil {
		t.Fatal(err)
	}
	if v, _ := sysctl.Read(name); v != "8" {
		t.Errorf("%s = %s, want 8", name, v)
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	assertRestored(t, orig)
	if err := lab.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// RPS is set on the receiving veth and put back on Close.
func TestPrivRPS(t *testing.T) {
	requireRoot(t)
	lab := newLab(t)
	path := "/sys/class/net/" + lab.ReceiverIf + "/queues/rx-0/rps_cpus"
	orig, err := lab.sysfs(lab.Receiver, "cat", path)
	if err != nil {
		t.Fatal(err)
	}
	cpu := runtime.NumCPU() - 1
	if err := lab.SetRPS(cpu); err != nil {
		t.Fatal(err)
	}
	got, err := lab.sysfs(lab.Receiver, "cat", path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := strconv.ParseUint(strings.ReplaceAll(got, ",", ""), 16, 64); err != nil || v != 1<<cpu {
		t.Errorf("rps_cpus = %q after SetRPS(%d)", got, cpu)
	}
	if err := lab.SetRPS(-1); err == nil {
		t.Error("SetRPS(-1) accepted")
	}
	if err := lab.SetRPS(flood.MaxCPU - 1); err == nil {
		t.Errorf("SetRPS(%d) accepted on a %d-CPU machine", flood.MaxCPU-1, runtime.NumCPU())
	}
	// Undo steps run newest first; the namespace is still there when RPS is restored.
	lab.mu.Lock()
	restore := lab.undo[len(lab.undo)-1]
	lab.mu.Unlock()
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if got, _ := lab.sysfs(lab.Receiver, "cat", path); got != orig {
		t.Errorf("rps_cpus = %q after restore, want %q", got, orig)
	}
}

// A socket that is never read overflows its receive buffer: Udp RcvbufErrors in the receiver
// namespace, not in the sender's.
func TestPrivListenUnread(t *testing.T) {
	requireRoot(t)
	lab := newLab(t)
	const port = 9100
	sink, err := lab.ListenUnread(port)
	if err != nil {
		t.Fatal(err)
	}
	before := counter(t, lab.mustRead(t, lab.Receiver, "snmp"), "Udp", "RcvbufErrors")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent, err := lab.Flood(ctx, 0, port, 2000, 200)
	if err != nil {
		t.Fatal(err)
	}
	var rcvbuf uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if rcvbuf = counter(t, lab.mustRead(t, lab.Receiver, "snmp"), "Udp", "RcvbufErrors") - before; rcvbuf > 0 {
			break
		}
	}
	t.Logf("sent %d, receiver Udp RcvbufErrors +%d", sent, rcvbuf)
	if rcvbuf == 0 {
		t.Error("no RcvbufErrors from a socket that is never read")
	}
	if n := counter(t, lab.mustRead(t, lab.Sender, "snmp"), "Udp", "RcvbufErrors"); n != 0 {
		t.Errorf("sender namespace RcvbufErrors = %d", n)
	}
	if err := sink.Close(); err != nil {
		t.Error(err)
	}
	if err := sink.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// A listener that never accepts, with a backlog of 1, overflows on the third connection.
func TestPrivListenOverflows(t *testing.T) {
	requireRoot(t)
	lab := newLab(t)
	const port = 9200
	if _, err := lab.ListenNoAccept(port); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Connect(port, 8); err != nil {
		t.Fatal(err)
	}
	var overflows uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if overflows = counter(t, lab.mustRead(t, lab.Receiver, "netstat"), "TcpExt", "ListenOverflows"); overflows > 0 {
			break
		}
	}
	t.Logf("receiver TcpExt ListenOverflows %d", overflows)
	if overflows == 0 {
		t.Error("no ListenOverflows from 8 connections to a backlog-1 listener that never accepts")
	}
}

func TestParseLinkStats(t *testing.T) {
	out := []byte(`[{"ifindex":5,"ifname":"dt0r","stats64":{"rx":{"bytes":20936208,"packets":197512,"errors":0,"dropped":2489,"over_errors":0,"multicast":0},"tx":{"bytes":846,"packets":7,"errors":0,"dropped":1,"carrier_errors":0,"collisions":0}}}]`)
	s, err := parseLinkStats(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := (LinkStats{RxPackets: 197512, RxDropped: 2489, TxPackets: 7, TxDropped: 1}); s != want {
		t.Errorf("%+v, want %+v", s, want)
	}
	for _, bad := range []string{`[]`, `[{"ifname":"x"}]`, `not json`} {
		if _, err := parseLinkStats([]byte(bad)); err == nil {
			t.Errorf("parsed %s", bad)
		}
	}
}
