// SPDX-License-Identifier: Apache-2.0

package reconcile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/record"
)

var ok = Availability{OK: true}

func base() Input {
	return Input{
		Duration: time.Second,
		Drops:    ok, NetRx: ok, Predict: ok, Softnet: ok, Softirqs: ok,
	}
}

func find(t *testing.T, cs []record.Check, name string, cpu int) record.Check {
	t.Helper()
	for _, c := range cs {
		if c.Check == name && (c.CPU == nil && cpu < 0 || c.CPU != nil && *c.CPU == cpu) {
			return c
		}
	}
	t.Fatalf("no check %s cpu %d in %+v", name, cpu, cs)
	return record.Check{}
}

func TestBacklog(t *testing.T) {
	tests := []struct {
		name      string
		fired     map[int]uint64
		counted   map[int]uint64
		slack     uint64
		misses    uint64
		status    string
		noteHas   []string
		noteLacks []string
	}{
		{
			name:    "RPS: freed on CPU 0, counted on CPU 1, totals equal",
			fired:   map[int]uint64{0: 500},
			counted: map[int]uint64{0: 0, 1: 500},
			status:  record.StatusMatch,
			noteHas: []string{"freed on (enqueuing CPU) CPU 0: 500", "counted on (backlog CPU) CPU 1: 500"},
		},
		{
			name:    "nothing dropped",
			fired:   map[int]uint64{},
			counted: map[int]uint64{0: 0, 1: 0},
			status:  record.StatusMatch,
		},
		{
			name:    "kernel counted more, drop program skipped",
			fired:   map[int]uint64{0: 90},
			counted: map[int]uint64{1: 100},
			misses:  10,
			status:  record.StatusMismatch,
			noteHas: []string{"10 backlog drops counted by the kernel were not traced", "skipped the drop program 10 times"},
		},
		{
			name:    "difference within what moved during the reads",
			fired:   map[int]uint64{0: 99_999},
			counted: map[int]uint64{1: 100_000},
			slack:   2,
			status:  record.StatusMatch,
			noteHas: []string{"within the 2 the kernel counted while the traced counts were read"},
		},
		{
			name:    "difference beyond what moved during the reads",
			fired:   map[int]uint64{0: 99_990},
			counted: map[int]uint64{1: 100_000},
			slack:   2,
			status:  record.StatusMismatch,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			in.Slack = map[Key]uint64{{CheckBacklog, -1}: tc.slack}
			in.BacklogByCPU = tc.fired
			in.DropRecursionMisses = tc.misses
			for _, cpu := range []int{0, 1} {
				in.CPUs = append(in.CPUs, CPU{CPU: cpu, Softnet: &Softnet{Dropped: tc.counted[cpu]}})
			}
			c := find(t, Checks(in), CheckBacklog, -1)
			if c.Status != tc.status {
				t.Errorf("status %s, want %s (note %q)", c.Status, tc.status, c.Note)
			}
			for _, s := range tc.noteHas {
				if !strings.Contains(c.Note, s) {
					t.Errorf("note %q lacks %q", c.Note, s)
				}
			}
		})
	}
}

func TestBacklogUnavailable(t *testing.T) {
	in := base()
	in.Drops = Availability{Why: "skb:kfree_skb not attached: permission denied"}
	c := find(t, Checks(in), CheckBacklog, -1)
	if c.Status != record.StatusUnavailable || !strings.Contains(c.Note, "permission denied") || c.Traced != nil {
		t.Errorf("got %+v", c)
	}
}

func TestSqueeze(t *testing.T) {
	tests := []struct {
		name           string
		budget, time_  uint64
		kernel         uint64
		runs, kernRuns uint64
		uncertain      uint64
		unproven       uint64
		status         string
		noteHas        string
		explainedBy    string
	}{
		{"exact, split by cause", 7, 3, 10, 100, 100, 0, 0, record.StatusMatch, "predicted 7 budget + 3 time", ""},
		{"exact despite runs ending on the tick", 7, 3, 10, 100, 100, 2, 0, record.StatusMatch, "predicted 7 budget + 3 time", ""},
		{"residual explained by unseen runs", 7, 0, 9, 95, 100, 0, 0, record.StatusMismatch, "explained by the 5 NET_RX runs BPF did not see", ExplainedByCoverage},
		{"residual within runs ending on the tick", 0, 25, 26, 100, 100, 1, 0, record.StatusMismatch, "1 squeezes not predicted, within the 1 runs that ended past the time limit", ExplainedByTick},
		{"residual within ticks and unseen runs", 0, 25, 28, 98, 100, 1, 0, record.StatusMismatch, "and the 2 NET_RX runs BPF did not see", ExplainedByTick},
		{"residual larger than unseen runs and ticks", 1, 0, 9, 99, 100, 2, 0, record.StatusMismatch, "only 1 unseen runs and 2 runs ending on the tick", ""},
		{"over-prediction", 5, 5, 4, 100, 100, 0, 0, record.StatusMismatch, "6 more predicted than counted, only 0 of them at a last poll", ""},
		{"over-prediction within last polls short of the latest limit", 0, 30, 27, 100, 100, 0, 3, record.StatusMismatch, "3 more predicted than counted, within the 3 time squeezes predicted at a run's last poll", ExplainedByTick},
		{"over-prediction beyond last polls short of the latest limit", 0, 30, 26, 100, 100, 0, 3, record.StatusMismatch, "4 more predicted than counted, only 3 of them", ""},
		{"exact despite unproven predictions", 0, 30, 30, 100, 100, 0, 3, record.StatusMatch, "predicted 0 budget + 30 time", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			in.CPUs = []CPU{{CPU: 1, Softnet: &Softnet{TimeSqueeze: tc.kernel}, Runs: tc.runs,
				KernelRuns: tc.kernRuns, HasKernelRuns: true, BudgetSqueezes: tc.budget, TimeSqueezes: tc.time_,
				TimeUncertain: tc.uncertain, TimeUnproven: tc.unproven}}
			c := find(t, Checks(in), CheckSqueeze, 1)
			if c.Status != tc.status || !strings.Contains(c.Note, tc.noteHas) || c.ExplainedBy != tc.explainedBy {
				t.Errorf("got %s %q explained by %q, want %s containing %q explained by %q", c.Status, c.Note,
					c.ExplainedBy, tc.status, tc.noteHas, tc.explainedBy)
			}
			if *c.Traced != int64(tc.budget+tc.time_) || *c.Kernel != int64(tc.kernel) {
				t.Errorf("traced %d kernel %d", *c.Traced, *c.Kernel)
			}
		})
	}
}

func TestSqueezeUnavailableWithoutHZ(t *testing.T) {
	in := base()
	in.Predict = Availability{Why: "HZ unknown"}
	in.CPUs = []CPU{{CPU: 0, Softnet: &Softnet{}}}
	if c := find(t, Checks(in), CheckSqueeze, 0); c.Status != record.StatusUnavailable || c.Note != "HZ unknown" {
		t.Errorf("got %+v", c)
	}
}

// A check whose sources are missing says why the first of them, in the check's order, is.
func TestUnavailableNamesTheFirstMissingSource(t *testing.T) {
	no := func(why string) Availability { return Availability{Why: why} }
	full := CPU{CPU: 0, Softnet: &Softnet{}, HasKernelRuns: true}
	tests := []struct {
		name  string
		edit  func(*Input)
		check string
		cpu   int
		want  string
	}{
		{"backlog: drops before softnet", func(in *Input) { in.Drops, in.Softnet = no("drops"), no("softnet") }, CheckBacklog, -1, "drops"},
		{"backlog: softnet", func(in *Input) { in.Softnet = no("softnet") }, CheckBacklog, -1, "softnet"},
		{"coverage: netrx before softirqs", func(in *Input) { in.NetRx, in.Softirqs = no("netrx"), no("softirqs") }, CheckCoverage, 0, "netrx"},
		{"coverage: softirqs before the column", func(in *Input) { in.Softirqs, in.CPUs[0].HasKernelRuns = no("softirqs"), false }, CheckCoverage, 0, "softirqs"},
		{"coverage: the column", func(in *Input) { in.CPUs[0].HasKernelRuns = false }, CheckCoverage, 0, "CPU has no /proc/softirqs column"},
		{"squeeze: netrx first", func(in *Input) { in.NetRx, in.Predict, in.Softnet = no("netrx"), no("hz"), no("softnet") }, CheckSqueeze, 0, "netrx"},
		{"squeeze: predict before softnet", func(in *Input) { in.Predict, in.Softnet = no("hz"), no("softnet") }, CheckSqueeze, 0, "hz"},
		{"squeeze: softnet before the line", func(in *Input) { in.Softnet, in.CPUs[0].Softnet = no("softnet"), nil }, CheckSqueeze, 0, "softnet"},
		{"squeeze: the line", func(in *Input) { in.CPUs[0].Softnet = nil }, CheckSqueeze, 0, "CPU has no softnet_stat line in both samples (offline?)"},
		{"snmp: drops", func(in *Input) { in.Drops = no("drops") }, SNMPChecks[0].Name, -1, "drops"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			in.CPUs = []CPU{full}
			tc.edit(&in)
			c := find(t, Checks(in), tc.check, tc.cpu)
			if c.Status != record.StatusUnavailable || c.Note != tc.want {
				t.Errorf("got %s %q, want %s %q", c.Status, c.Note, record.StatusUnavailable, tc.want)
			}
		})
	}
}

func TestCoverage(t *testing.T) {
	in := base()
	in.CPUs = []CPU{
		{CPU: 0, Runs: 1000, KernelRuns: 1000, HasKernelRuns: true},
		{CPU: 1, Runs: 950, KernelRuns: 1000, HasKernelRuns: true},
	}
	cs := Checks(in)
	if c := find(t, cs, CheckCoverage, 0); c.Status != record.StatusMatch {
		t.Errorf("cpu0 %+v", c)
	}
	c := find(t, cs, CheckCoverage, 1)
	if c.Status != record.StatusMismatch || !strings.Contains(c.Note, "BPF saw 950 of 1000 NET_RX runs (95.0%)") {
		t.Errorf("cpu1 %+v", c)
	}
}

func TestSNMPChecksPerNamespace(t *testing.T) {
	udp := ReasonL4{"NO_SOCKET", 17}
	rcv := ReasonL4{"SOCKET_RCVBUFF", 17}
	in := base()
	in.Netns = []Netns{
		{Inode: 1, Name: "host", Traced: map[ReasonL4]uint64{udp: 10, rcv: 4},
			SNMP: map[string]map[string]int64{"Udp": {"NoPorts": 7, "RcvbufErrors": 4}, "Udp6": {"NoPorts": 3}}},
		{Inode: 2, Name: "dtlab-rx", Traced: map[ReasonL4]uint64{udp: 5},
			SNMP: map[string]map[string]int64{"Udp": {"NoPorts": 5}}},
		// NO_SOCKET for TCP must not be counted against Udp NoPorts.
		{Inode: 3, Traced: map[ReasonL4]uint64{{"NO_SOCKET", 6}: 50}, SNMP: map[string]map[string]int64{}},
		{Inode: 4, Name: "gone", Traced: map[ReasonL4]uint64{udp: 2}, Why: "namespace vanished"},
	}
	cs := Checks(in)
	c := find(t, cs, "udp_no_port", -1)
	if c.Status != record.StatusMatch || *c.Traced != 15 || *c.Kernel != 15 {
		t.Errorf("udp_no_port %+v traced %d kernel %d", c, *c.Traced, *c.Kernel)
	}
	if !strings.Contains(c.Note, "2 more traced in namespaces whose counters could not be read: netns 4 [gone] (namespace vanished)") {
		t.Errorf("note %q", c.Note)
	}
	if c := find(t, cs, "udp_rcvbuf", -1); c.Status != record.StatusMatch || *c.Kernel != 4 {
		t.Errorf("udp_rcvbuf %+v", c)
	}

	in.Netns[1].SNMP["Udp"]["NoPorts"] = 9
	c = find(t, Checks(in), "udp_no_port", -1)
	if c.Status != record.StatusMismatch || !strings.Contains(c.Note, "4 counted but not traced as NO_SOCKET") ||
		!strings.Contains(c.Note, "netns 2 [dtlab-rx] traced 5, counted 9") {
		t.Errorf("mismatch %+v", c)
	}
}

// On a kernel whose drops are named from their location, a check says what the location
// cannot separate, and a reason no location names is unavailable with why.
func TestSNMPChecksSayWhatALocationCannotSeparate(t *testing.T) {
	in := base()
	in.Netns = []Netns{{Inode: 1, Traced: map[ReasonL4]uint64{{"SOCKET_RCVBUFF", 17}: 4},
		SNMP: map[string]map[string]int64{"Udp": {"RcvbufErrors": 4}}}}
	in.Unnamed = map[string]bool{"TCP_LISTEN_OVERFLOW": true}
	in.Located = map[string]string{"SOCKET_RCVBUFF": "udp_mem refusals share the call site",
		"TCP_LISTEN_OVERFLOW": "no call site frees only for TCP_LISTEN_OVERFLOW"}
	cs := Checks(in)
	if c := find(t, cs, "udp_rcvbuf", -1); c.Status != record.StatusMatch ||
		!strings.Contains(c.Note, "traced SOCKET_RCVBUFF is named from the drop location: udp_mem refusals share the call site") {
		t.Errorf("udp_rcvbuf %+v", c)
	}
	if c := find(t, cs, "tcp_listen_overflow", -1); c.Status != record.StatusUnavailable ||
		!strings.Contains(c.Note, "drops are named from their location on this kernel, and no call site frees only for TCP_LISTEN_OVERFLOW") {
		t.Errorf("tcp_listen_overflow %+v", c)
	}
	if c := find(t, cs, "udp_no_port", -1); strings.Contains(c.Note, "location") {
		t.Errorf("udp_no_port, not located, says %q", c.Note)
	}
}

func TestSNMPUnavailableWhenNoNamespaceRead(t *testing.T) {
	in := base()
	in.Netns = []Netns{{Inode: 9, Traced: map[ReasonL4]uint64{{"NO_SOCKET", 17}: 1}, Why: "permission denied"}}
	c := find(t, Checks(in), "udp_no_port", -1)
	if c.Status != record.StatusUnavailable || !strings.Contains(c.Note, "permission denied") {
		t.Errorf("got %+v", c)
	}
	// With nothing traced, each namespace's own error is still the reason, at most five named.
	in.Netns = nil
	for i := range 7 {
		in.Netns = append(in.Netns, Netns{Inode: uint32(10 + i), Why: fmt.Sprintf("open /proc/%d/net/snmp: too many open files", 100+i)})
	}
	c = find(t, Checks(in), "udp_rcvbuf", -1)
	if c.Status != record.StatusUnavailable || !strings.Contains(c.Note, "netns 10 (open /proc/100/net/snmp: too many open files)") ||
		!strings.Contains(c.Note, "netns 14 (") || strings.Contains(c.Note, "netns 15 (") || !strings.HasSuffix(c.Note, ", 2 more") {
		t.Errorf("no namespace readable: %+v", c)
	}
}

// Drops inside NET_RX runs BPF never saw are missing from the traced count: the check stays a
// mismatch, and its note names the unseen runs as the explanation.
func TestSNMPResidualExplainedByUnseenRuns(t *testing.T) {
	in := base()
	in.CPUs = []CPU{{CPU: 1, Runs: 958, KernelRuns: 1000, HasKernelRuns: true, Softnet: &Softnet{}}}
	in.Netns = []Netns{{Inode: 7, Traced: map[ReasonL4]uint64{{"SOCKET_RCVBUFF", 17}: 900},
		SNMP: map[string]map[string]int64{"Udp": {"RcvbufErrors": 1011}}}}
	c := find(t, Checks(in), "udp_rcvbuf", -1)
	if c.Status != record.StatusMismatch || !strings.Contains(c.Note, "BPF did not see 42 NET_RX runs (CPU 1: 42)") {
		t.Errorf("got %s: %s", c.Status, c.Note)
	}
	in.CPUs[0].Runs = 1000
	c = find(t, Checks(in), "udp_rcvbuf", -1)
	if !strings.Contains(c.Note, "BPF saw every NET_RX run") {
		t.Errorf("with full coverage: %s", c.Note)
	}
}

// The slack is per check row: what the backlog counter moved excuses nothing elsewhere.
func TestSlackIsPerCheck(t *testing.T) {
	in := base()
	in.Netns = []Netns{{Inode: 1, Traced: map[ReasonL4]uint64{{"NO_SOCKET", 17}: 199},
		SNMP: map[string]map[string]int64{"Udp": {"NoPorts": 200}}}}
	in.Slack = map[Key]uint64{{CheckBacklog, -1}: 50}
	if c := find(t, Checks(in), "udp_no_port", -1); c.Status != record.StatusMismatch {
		t.Errorf("slack of another check was applied: %+v", c)
	}
	in.Slack[Key{"udp_no_port", -1}] = 1
	if c := find(t, Checks(in), "udp_no_port", -1); c.Status != record.StatusMatch {
		t.Errorf("%+v", c)
	}
}

// Every check matches within what its kernel counter moved during the reads, says so, and
// mismatches one past it.
func TestWithinTolerance(t *testing.T) {
	const cpu = 1
	for _, tc := range []struct {
		check string
		cpu   int
		set   func(in *Input, traced, kernel uint64)
		note  string
	}{
		{CheckBacklog, -1, func(in *Input, traced, kernel uint64) {
			in.BacklogByCPU = map[int]uint64{cpu: traced}
			in.CPUs = []CPU{{CPU: cpu, Softnet: &Softnet{Dropped: kernel}}}
		}, "differs by 3, within the 3 the kernel counted while the traced counts were read"},
		{CheckCoverage, cpu, func(in *Input, traced, kernel uint64) {
			in.CPUs = []CPU{{CPU: cpu, Runs: traced, KernelRuns: kernel, HasKernelRuns: true}}
		}, "differs by 3, within the 3 runs made while the traced counts were read"},
		{CheckSqueeze, cpu, func(in *Input, traced, kernel uint64) {
			in.CPUs = []CPU{{CPU: cpu, Softnet: &Softnet{TimeSqueeze: kernel}, BudgetSqueezes: traced}}
		}, "predicted 7 budget + 0 time; differs by 3, within the 3 counted while the traced counts were read"},
		{"udp_no_port", -1, func(in *Input, traced, kernel uint64) {
			in.Netns = []Netns{{Inode: 1, Traced: map[ReasonL4]uint64{{"NO_SOCKET", protoUDP}: traced},
				SNMP: map[string]map[string]int64{"Udp": {"NoPorts": int64(kernel)}}}}
		}, "differs by 3, within the 3 counted while the traced counts were read"},
	} {
		t.Run(tc.check, func(t *testing.T) {
			for _, slack := range []uint64{3, 2} {
				in := base()
				in.Slack = map[Key]uint64{{tc.check, tc.cpu}: slack}
				tc.set(&in, 7, 10)
				c := find(t, Checks(in), tc.check, tc.cpu)
				switch {
				case slack == 3 && (c.Status != record.StatusMatch || !strings.HasSuffix(c.Note, tc.note)):
					t.Errorf("slack 3: %s %q, want a match whose note ends %q", c.Status, c.Note, tc.note)
				case slack == 2 && c.Status != record.StatusMismatch:
					t.Errorf("slack 2: %s %q, want a mismatch", c.Status, c.Note)
				}
			}
		})
	}
}

// After a sysctl change, the runs predicted with the old limits bound the residual: one
// squeeze each; beyond them the change explains nothing, and with the kernel's own limits
// read at each run it explains nothing at all.
func TestSqueezeAfterSysctlChange(t *testing.T) {
	tests := []struct {
		name        string
		stale       uint64
		exact       bool
		noteHas     string
		explainedBy string
	}{
		{"within the runs predicted with the old values", 40, false, "up to 40 NET_RX runs on this CPU, between the sysctl poll before a change and the one that saw it", ExplainedBySysctl},
		{"beyond them", 10, false, "but only 10 NET_RX runs on this CPU were predicted with the old values", ""},
		{"limits read from the kernel", 40, true, "squeezes not predicted (only 0 unseen runs", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			in.SysctlChanges, in.LimitsExact = []string{"netdev_budget 300->4 at 13:25:39.100"}, tc.exact
			in.CPUs = []CPU{{CPU: 1, Softnet: &Softnet{TimeSqueeze: 500}, Runs: 1000, KernelRuns: 1000, HasKernelRuns: true,
				BudgetSqueezes: 470, StaleRuns: tc.stale}}
			c := find(t, Checks(in), CheckSqueeze, 1)
			if c.Status != record.StatusMismatch || !strings.Contains(c.Note, tc.noteHas) || c.ExplainedBy != tc.explainedBy {
				t.Errorf("got %+v", c)
			}
		})
	}
}
