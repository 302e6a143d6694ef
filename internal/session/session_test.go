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

	"github.com/droptrace/droptrace/internal/assemble"
	"github.com/droptrace/droptrace/internal/enrich"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/interval"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sample"
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
		static: assemble.Input{Online: map[int]bool{0: true, 1: true}},
		avail:  assemble.Availability{Drops: ok, NetRx: ok, Predict: ok},
		sysctl: &sysctlWatch{predict: ok},
		now:    func() time.Time { return t0.Add(5 * time.Second) },
		owners: enrich.NewOwners(hostfs.FS{}),
		src:    sample.NewReader(sample.Config{}),
	}
	s.names = assemble.Names{
		Reason:   func(c uint32, _ uint64) string { return testReasons[c] },
		Location: func(a uint64) string { return fmt.Sprintf("fn_%x+0x10", a) },
		Ifname:   func(ns, idx uint32) string { return fmt.Sprintf("veth%d", idx) },
	}
	return s
}

// diff is the delta between two samples, with the test kernel's reason names.
func (s *Session) diff(prev, cur *sample.Sample) *interval.Delta {
	return interval.Diff(prev, cur, s.names.Reason)
}

// record builds, checks and finishes an interval record as step does.
func (s *Session) record(d *interval.Delta, seq int, nc sysctl.NetCore) *record.Interval {
	in := s.static
	in.Type, in.Seq, in.Time, in.Sysctl = record.TypeInterval, seq, s.now(), nc
	rec := assemble.Record(d, in, s.names, s.avail.NetRx.OK)
	rec.Checks = assemble.Checks(rec, &d.Evidence, s.availability())
	s.finish(rec, &d.Evidence)
	return rec
}

// summary sums interval records as run does.
func (s *Session) summary(t *testing.T, ds ...*interval.Delta) *record.Interval {
	t.Helper()
	var total totals
	for i, d := range ds {
		in := s.static
		in.Type, in.Seq, in.Time = record.TypeInterval, i+1, s.now()
		rec := assemble.Record(d, in, s.names, s.avail.NetRx.OK)
		rec.Checks = assemble.Checks(rec, &d.Evidence, s.availability())
		total.add(rec, &d.Evidence)
	}
	sum := total.summary(s.now(), nil, s.availability())
	s.finish(sum, &total.ev)
	return sum
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

func mkSample(sp sampleSpec) *sample.Sample {
	sm := &sample.Sample{
		At:        t0.Add(sp.at),
		Drops:     map[tracer.DropKey][]uint64{},
		Netns:     map[uint32]*sample.Netns{},
		DropStats: tracer.DropStats{Seen: []uint64{0, 0}},
	}
	sm.Drops[tracer.DropKey{Reason: 71, Netns: 200, Ifindex: 2, L3: tracer.EthIPv4, L4: 17, Location: 0xa}] = []uint64{sp.backlog[0], sp.backlog[1]}
	sm.Drops[tracer.DropKey{Reason: 6, Netns: 200, Ifindex: 2, L3: tracer.EthIPv4, L4: 17, Location: 0xb}] = []uint64{0, sp.rcvbuf}
	for cpu := 0; cpu < 2; cpu++ {
		sm.Softnet.CPUs = append(sm.Softnet.CPUs, softnet.CPU{CPU: cpu, CPUFromKernel: true, Dropped: sp.dropped[cpu], TimeSqueeze: sp.squeeze[cpu]})
		sm.NetRx = append(sm.NetRx, tracer.NetRx{Runs: sp.runs[cpu], BudgetSqueezes: sp.budgetSqz[cpu]})
	}
	sm.Softnet.Columns = 15
	sm.Softirqs = softirqs.Table{"NET_RX": {0: sp.kernRuns[0], 1: sp.kernRuns[1]}}
	sm.Netns[100] = &sample.Netns{NS: netns.NS{Inode: 100, Name: "host"}, SNMP: snmp.Counters{"Udp": {"RcvbufErrors": 0, "NoPorts": 0}}}
	if sp.ns200 {
		sm.Netns[200] = &sample.Netns{NS: netns.NS{Inode: 200, Name: "rx"}, SNMP: snmp.Counters{"Udp": {"RcvbufErrors": sp.rcvErrs, "NoPorts": 0}}}
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
	var samples []*sample.Sample
	for i := 0; i <= 3; i++ {
		c := uint64(i) * g
		samples = append(samples, mkSample(sampleSpec{
			at: time.Duration(i) * time.Second, backlog: [2]uint64{c, 0}, dropped: [2]uint32{0, uint32(c)},
			runs: [2]uint64{uint64(i), uint64(i)}, kernRuns: [2]uint64{uint64(i), uint64(i)}, ns200: true,
		}))
	}
	var ds []*interval.Delta
	for i := 1; i < len(samples); i++ {
		d := s.diff(samples[i-1], samples[i])
		iv := s.record(d, i, sysctl.NetCore{})
		if c := checkOf(t, iv, "backlog_drops", -1); c.Status != record.StatusMatch || *c.Kernel != g {
			t.Fatalf("interval %d: %+v", i, c)
		}
		ds = append(ds, d)
	}
	sum := s.summary(t, ds...)
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
	d1 := s.diff(a, b)
	iv1 := s.record(d1, 1, sysctl.NetCore{})
	chk := checkOf(t, iv1, "udp_rcvbuf", -1)
	if chk.Status != record.StatusMatch || *chk.Traced != 0 {
		t.Errorf("interval 1 (no baseline for netns 200): %+v", chk)
	}
	if want := "10 more traced in namespaces whose counters could not be read: netns 200 [rx] (namespace appeared during the interval"; !bytes.Contains([]byte(chk.Note), []byte(want)) {
		t.Errorf("note %q lacks %q", chk.Note, want)
	}
	d2 := s.diff(b, c)
	iv2 := s.record(d2, 2, sysctl.NetCore{})
	if chk := checkOf(t, iv2, "udp_rcvbuf", -1); chk.Status != record.StatusMatch || *chk.Traced != 5 || *chk.Kernel != 5 {
		t.Errorf("interval 2: %+v", chk)
	}
	sum := s.summary(t, d1, d2)
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
	d := s.diff(a, b)
	iv := s.record(d, 7, sysctl.NetCore{Budget: 4, BudgetUsecs: 8000, MaxBacklog: 10, DevWeight: 64})
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
	b.Moved = map[reconcile.Key]uint64{{Check: "udp_rcvbuf", CPU: -1}: 1}
	if c := checkOf(t, s.record(s.diff(a, b), 1, sysctl.NetCore{}), "udp_rcvbuf", -1); c.Status != record.StatusMatch {
		t.Errorf("one datagram counted while the maps were read: %+v", c)
	}
	b.Moved = nil
	if c := checkOf(t, s.record(s.diff(a, b), 1, sysctl.NetCore{}), "udp_rcvbuf", -1); c.Status != record.StatusMismatch {
		t.Errorf("nothing moved during the reads, yet a difference was excused: %+v", c)
	}
}
