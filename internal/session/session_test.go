// SPDX-License-Identifier: Apache-2.0

package session

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/snmp"
	"github.com/droptrace/droptrace/internal/softirqs"
	"github.com/droptrace/droptrace/internal/softnet"
	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Reason codes of a pretend kernel: the session only ever sees names through the namer.
var testReasons = map[uint32]string{3: "NO_SOCKET", 6: "SOCKET_RCVBUFF", 71: "CPU_BACKLOG"}

var t0 = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

func testSession() *Session {
	ok := reconcile.Availability{OK: true}
	s := &Session{
		online: map[int]bool{0: true, 1: true},
		avail:  availability{drops: ok, netrx: ok, predict: ok},
		now:    func() time.Time { return t0.Add(5 * time.Second) },
	}
	s.names = namer{
		reason:   func(c uint32) string { return testReasons[c] },
		location: func(a uint64) string { return fmt.Sprintf("fn_%x+0x10", a) },
		ifname:   func(ns, idx uint32) string { return fmt.Sprintf("veth%d", idx) },
	}
	return s
}

type sampleSpec struct {
	at        time.Duration
	backlog   [2]uint64 // CPU_BACKLOG freed on CPU 0/1 (cumulative)
	rcvbuf    uint64    // SOCKET_RCVBUFF in netns 200 on CPU 1
	dropped   [2]uint32 // softnet dropped per CPU (32-bit, may wrap)
	squeeze   [2]uint32
	runs      [2]uint64 // NET_RX runs seen by BPF
	kernRuns  [2]uint64 // /proc/softirqs
	budgetSqz [2]uint64
	rcvErrs   uint64 // Udp RcvbufErrors in netns 200
	ns200     bool   // netns 200 readable
}

func mkSample(sp sampleSpec) *sample {
	sm := &sample{
		at:     t0.Add(sp.at),
		drops:  map[tracer.DropKey][]uint64{},
		netns:  map[uint32]*nsSample{},
		dstats: tracer.DropStats{Seen: []uint64{0, 0}},
	}
	sm.drops[tracer.DropKey{Reason: 71, Netns: 200, Ifindex: 2, L3: tracer.EthIPv4, L4: 17, Location: 0xa}] = []uint64{sp.backlog[0], sp.backlog[1]}
	sm.drops[tracer.DropKey{Reason: 6, Netns: 200, Ifindex: 2, L3: tracer.EthIPv4, L4: 17, Location: 0xb}] = []uint64{0, sp.rcvbuf}
	for cpu := 0; cpu < 2; cpu++ {
		sm.softnet.CPUs = append(sm.softnet.CPUs, softnet.CPU{CPU: cpu, CPUFromKernel: true, Dropped: sp.dropped[cpu], TimeSqueeze: sp.squeeze[cpu]})
		sm.netrx = append(sm.netrx, tracer.NetRx{Runs: sp.runs[cpu], BudgetSqueezes: sp.budgetSqz[cpu]})
	}
	sm.softnet.Columns = 15
	sm.softirqs = softirqs.Table{"NET_RX": {0: sp.kernRuns[0], 1: sp.kernRuns[1]}}
	sm.netns[100] = &nsSample{ns: netns.NS{Inode: 100, Name: "host"}, snmp: snmp.Counters{"Udp": {"RcvbufErrors": 0, "NoPorts": 0}}}
	if sp.ns200 {
		sm.netns[200] = &nsSample{ns: netns.NS{Inode: 200, Name: "rx"}, snmp: snmp.Counters{"Udp": {"RcvbufErrors": sp.rcvErrs, "NoPorts": 0}}}
	}
	return sm
}

func checkOf(t *testing.T, iv *record.Interval, name string, cpu int) record.Check {
	t.Helper()
	for _, c := range iv.Checks {
		if c.Check == name && (cpu < 0 && c.CPU == nil || c.CPU != nil && *c.CPU == cpu) {
			return c
		}
	}
	t.Fatalf("no check %s/%d", name, cpu)
	return record.Check{}
}

// softnet_stat's 32-bit dropped counter wraps twice during this session. Each interval sees
// one wrap at most, so the summary, summed from intervals, is right where a first-to-last
// difference would be off by 2^33.
func TestSummaryIsTheSumOfIntervalsAcrossWraps(t *testing.T) {
	s := testSession()
	const g = 3_000_000_000 // drops per interval: more than half of 2^32
	var samples []*sample
	for i := 0; i <= 3; i++ {
		c := uint64(i) * g
		samples = append(samples, mkSample(sampleSpec{
			at: time.Duration(i) * time.Second, backlog: [2]uint64{c, 0}, dropped: [2]uint32{0, uint32(c)},
			runs: [2]uint64{uint64(i), uint64(i)}, kernRuns: [2]uint64{uint64(i), uint64(i)}, ns200: true,
		}))
	}
	total := newDelta()
	for i := 1; i < len(samples); i++ {
		d := diff(samples[i-1], samples[i], s.names.reason)
		iv := s.buildRecord(d, record.TypeInterval, i)
		if c := checkOf(t, iv, "backlog_drops", -1); c.Status != record.StatusMatch || *c.Kernel != g {
			t.Fatalf("interval %d: %+v", i, c)
		}
		total.add(d)
	}
	sum := s.buildRecord(total, record.TypeSummary, 0)
	c := checkOf(t, sum, "backlog_drops", -1)
	if c.Status != record.StatusMatch || *c.Kernel != 3*g || *c.Traced != 3*g {
		t.Errorf("summary backlog_drops %s traced %d kernel %d, want 3*%d both", c.Status, *c.Traced, *c.Kernel, g)
	}
	if sum.Drops["CPU_BACKLOG"] != 3*g || sum.DurationMs != 3000 {
		t.Errorf("summary drops %v duration %d", sum.Drops, sum.DurationMs)
	}
	if sum.CPUs[1].Softnet.Dropped != 3*g {
		t.Errorf("summary CPU 1 softnet dropped %d", sum.CPUs[1].Softnet.Dropped)
	}
}

// A namespace whose counters cannot be read for an interval: its drops in that interval are
// reported as unreconcilable, and are not compared later against counters that never saw them.
func TestNamespaceWithoutBaseline(t *testing.T) {
	s := testSession()
	a := mkSample(sampleSpec{at: 0, ns200: false})
	b := mkSample(sampleSpec{at: time.Second, rcvbuf: 10, rcvErrs: 10, ns200: true})
	c := mkSample(sampleSpec{at: 2 * time.Second, rcvbuf: 15, rcvErrs: 15, ns200: true})
	d1 := diff(a, b, s.names.reason)
	iv1 := s.buildRecord(d1, record.TypeInterval, 1)
	chk := checkOf(t, iv1, "udp_rcvbuf", -1)
	if chk.Status != record.StatusMatch || *chk.Traced != 0 {
		t.Errorf("interval 1 (no baseline for netns 200): %+v", chk)
	}
	if want := "10 more traced in namespaces whose counters could not be read: netns 200 [rx] (namespace appeared during the interval"; !bytes.Contains([]byte(chk.Note), []byte(want)) {
		t.Errorf("note %q lacks %q", chk.Note, want)
	}
	d2 := diff(b, c, s.names.reason)
	iv2 := s.buildRecord(d2, record.TypeInterval, 2)
	if chk := checkOf(t, iv2, "udp_rcvbuf", -1); chk.Status != record.StatusMatch || *chk.Traced != 5 || *chk.Kernel != 5 {
		t.Errorf("interval 2: %+v", chk)
	}
	total := newDelta()
	total.add(d1)
	total.add(d2)
	sum := s.buildRecord(total, record.TypeSummary, 0)
	if chk := checkOf(t, sum, "udp_rcvbuf", -1); chk.Status != record.StatusMatch || *chk.Traced != 5 || *chk.Kernel != 5 {
		t.Errorf("summary: %+v", chk)
	}
}

// The interval record as users read it, golden-tested: field names and shapes are a contract.
func TestIntervalRecordGolden(t *testing.T) {
	s := testSession()
	a := mkSample(sampleSpec{at: 0, ns200: true, runs: [2]uint64{10, 20}, kernRuns: [2]uint64{10, 20}})
	b := mkSample(sampleSpec{
		at: 1000 * time.Millisecond, backlog: [2]uint64{812, 0}, rcvbuf: 40, dropped: [2]uint32{0, 812},
		squeeze: [2]uint32{0, 57}, runs: [2]uint64{110, 1020}, kernRuns: [2]uint64{110, 1024},
		budgetSqz: [2]uint64{0, 55}, rcvErrs: 41, ns200: true,
	})
	d := diff(a, b, s.names.reason)
	d.sysctl = sysctl.NetCore{Budget: 4, BudgetUsecs: 8000, MaxBacklog: 10, DevWeight: 64}
	iv := s.buildRecord(d, record.TypeInterval, 7)
	var buf bytes.Buffer
	w := record.NewWriter(&buf)
	if err := w.Write(iv); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	var pretty bytes.Buffer
	json.Indent(&pretty, buf.Bytes(), "", "  ")
	golden := "testdata/interval.golden.json"
	if *update {
		os.WriteFile(golden, pretty.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("interval record differs from %s (go test -update to accept):\n%s", golden, pretty.String())
	}
}

// An interval may differ by what its counters moved during the reads that opened and closed
// it, and by nothing more.
func TestSlackComesFromTheReadWindows(t *testing.T) {
	s := testSession()
	a := mkSample(sampleSpec{at: 0, ns200: true})
	b := mkSample(sampleSpec{at: time.Second, rcvbuf: 99, rcvErrs: 100, ns200: true})
	b.moved = map[reconcile.Key]uint64{{Check: "udp_rcvbuf", CPU: -1}: 1}
	if c := checkOf(t, s.buildRecord(diff(a, b, s.names.reason), record.TypeInterval, 1), "udp_rcvbuf", -1); c.Status != record.StatusMatch {
		t.Errorf("one datagram counted while the maps were read: %+v", c)
	}
	b.moved = nil
	if c := checkOf(t, s.buildRecord(diff(a, b, s.names.reason), record.TypeInterval, 1), "udp_rcvbuf", -1); c.Status != record.StatusMismatch {
		t.Errorf("nothing moved during the reads, yet a difference was excused: %+v", c)
	}
}
