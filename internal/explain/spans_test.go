// SPDX-License-Identifier: Apache-2.0

package explain

import (
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/record"
)

var spanT0 = time.Date(2026, 1, 2, 13, 25, 30, 0, time.UTC)

// limitsSession is the session of the issue: netdev_budget 300 and netdev_max_backlog 1000,
// a burst while they are 4 and 16, then restored; its summary is built the way the session
// and analyze build it, by adding the interval records.
func limitsSession(lateSqueezes uint64) *record.Interval {
	base := record.Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 8000, NetdevMaxBacklog: 1000, DevWeight: 64}
	low := base
	low.NetdevBudget, low.NetdevMaxBacklog = 4, 16
	iv := func(sec int, sc record.Sysctl, changes []string, squeezes, dropped uint64) *record.Interval {
		return &record.Interval{
			Header: record.Header{Type: record.TypeInterval, Time: record.Time(spanT0.Add(time.Duration(sec) * time.Second))}, DurationMs: 1000,
			Sysctl: &sc, SysctlChanges: changes,
			CPUs: []record.CPU{{CPU: 1, NetRx: &record.NetRx{Runs: 1000, Packets: 50_000, BudgetSqueezes: squeezes},
				Softnet: &record.Softnet{Processed: 50_000, Dropped: dropped}}},
		}
	}
	ivs := []*record.Interval{
		iv(9, base, nil, 0, 0),
		iv(10, low, []string{"netdev_budget 300->4, netdev_max_backlog 1000->16 at 13:25:39.900"}, 0, 0),
	}
	for sec := 11; sec <= 17; sec++ {
		ivs = append(ivs, iv(sec, low, nil, 600, 400))
	}
	ivs = append(ivs, iv(18, base, []string{"netdev_budget 4->300, netdev_max_backlog 16->1000 at 13:25:47.500"}, 0, 0),
		iv(19, base, nil, lateSqueezes, 0))
	var sum record.Interval
	for _, i := range ivs {
		sum.Add(i)
	}
	out := &record.Interval{Header: record.Header{Type: record.TypeSummary}}
	out.Add(&sum)
	out.Trim()
	return out
}

func says(t *testing.T, what, text, want string) {
	t.Helper()
	if !strings.Contains(text, want) {
		t.Errorf("%s %q lacks %q", what, text, want)
	}
}

func TestSummaryNamesTheLimitInForce(t *testing.T) {
	sum := limitsSession(0)
	vs := Explain(start, sum)
	b := find(vs, BudgetSqueeze, 1)
	if b == nil {
		t.Fatalf("no budget_squeeze: %+v", vs)
	}
	says(t, "cause", b.Cause, "polled its netdev_budget of packets: 4200 squeezes under netdev_budget=4 (13:25:40-13:25:47); none under 300;")
	says(t, "fix", b.Fix, "netdev_budget was already raised from 4 to 300 during the session (by 13:25:48; none since): "+
		"keep net.core.netdev_budget at 300 or above (it was 4 when it failed)")
	if strings.Contains(b.Fix, "(from 300") || strings.Contains(b.Cause, "polled netdev_budget=300") {
		t.Errorf("verdict reasons from the limit at the end: %+v", b)
	}
	if b.Evidence["netdev_budget"] != int64(4) {
		t.Errorf("evidence %v", b.Evidence)
	}

	o := find(vs, BacklogOverflow, 1)
	if o == nil {
		t.Fatalf("no backlog_overflow: %+v", vs)
	}
	says(t, "cause", o.Cause, "CPU 1's input backlog (2800 overflows under netdev_max_backlog=16 (13:25:40-13:25:47); none under 1000) overflowed")
	// 16 + 2800 rounded up, not 1000 + 2800.
	if !strings.Contains(o.Fix, "netdev_max_backlog was already raised from 16 to 1000 during the session (by 13:25:48; none since); "+
		"sysctl -w net.core.netdev_max_backlog=4096 (from 16, in force when it overflowed") {
		t.Errorf("fix %q", o.Fix)
	}

	// The interval verdicts are unchanged: an interval record has no spans.
	iv := interval(record.CPU{CPU: 1, NetRx: &record.NetRx{Runs: 1000, Packets: 50_000, BudgetSqueezes: 600}})
	iv.Sysctl = &record.Sysctl{NetdevBudget: 4, NetdevBudgetUsecs: 8000, NetdevMaxBacklog: 16}
	if v := find(Explain(start, iv), BudgetSqueeze, 1); v == nil || !strings.Contains(v.Cause, "polled netdev_budget=4 packets") {
		t.Errorf("interval verdict %+v", v)
	}
}

// Squeezes under the raised limit too: the fix must go past the highest limit that failed.
func TestSummaryFixPassesEveryLimitThatFailed(t *testing.T) {
	b := find(Explain(start, limitsSession(30)), BudgetSqueeze, 1)
	if b == nil {
		t.Fatal("no budget_squeeze")
	}
	if !strings.Contains(b.Cause, "4200 squeezes under netdev_budget=4 (13:25:40-13:25:47); 30 squeezes under 300 (13:25:48-13:25:49)") ||
		!strings.Contains(b.Fix, "netdev_budget=600 (from 300, in force when it squeezed)") || strings.Contains(b.Fix, "already raised") {
		t.Errorf("%+v", b)
	}
}

// A limit that never changed needs no split: the summary reads as before.
func TestSummaryConstantLimit(t *testing.T) {
	sum := limitsSession(0)
	for i := range sum.LimitSpans {
		sum.LimitSpans[i].Sysctl.NetdevMaxBacklog = 1000
		if sum.LimitSpans[i].Lowest != nil {
			sum.LimitSpans[i].Lowest.NetdevMaxBacklog = 1000
		}
	}
	o := find(Explain(start, sum), BacklogOverflow, 1)
	if o == nil || !strings.Contains(o.Cause, "(netdev_max_backlog=1000) overflowed") || strings.Contains(o.Cause, "under") {
		t.Errorf("%+v", o)
	}
}

// Squeezes in the interval that changed the limit may have been under either value: the
// cause says so and the fix starts from the smaller.
func TestSummaryMixedInterval(t *testing.T) {
	sum := limitsSession(0)
	for i := range sum.LimitSpans {
		if p := &sum.LimitSpans[i]; p.Mixed() && p.Sysctl.NetdevBudget == 4 {
			p.CPUs = []record.SpanCPU{{CPU: 1, Runs: 1000, BudgetSqueezes: 50}}
		}
	}
	b := find(Explain(start, sum), BudgetSqueeze, 1)
	if b == nil || !strings.Contains(b.Cause, "; 50 squeezes under 4..300 (it changed within an interval) (13:25:39-13:25:40)") ||
		!strings.Contains(b.Fix, "keep net.core.netdev_budget at 300 or above (it was 4 when it failed)") {
		t.Errorf("%+v", b)
	}
	t.Log(b.Cause, "\n", b.Fix)
}

// Time squeezes split by netdev_budget_usecs the same way, and the fix says it was raised.
func TestSummaryTimeSqueezeByLimit(t *testing.T) {
	base := record.Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 2000, NetdevMaxBacklog: 1000}
	raised := base
	raised.NetdevBudgetUsecs = 8000
	iv := func(sec int, sc record.Sysctl, changes []string, squeezes uint64) *record.Interval {
		return &record.Interval{
			Header: record.Header{Type: record.TypeInterval, Time: record.Time(spanT0.Add(time.Duration(sec) * time.Second))}, DurationMs: 1000,
			Sysctl: &sc, SysctlChanges: changes,
			CPUs: []record.CPU{{CPU: 0, NetRx: &record.NetRx{Runs: 100, TimeSqueezes: squeezes, MaxRunUs: 9000}}},
		}
	}
	var sum record.Interval
	for _, i := range []*record.Interval{iv(1, base, nil, 30), iv(2, base, nil, 30),
		iv(3, raised, []string{"netdev_budget_usecs 2000->8000 at 13:25:32.500"}, 0), iv(4, raised, nil, 0)} {
		sum.Add(i)
	}
	sum.Type = record.TypeSummary
	v := find(Explain(start, &sum), TimeSqueeze, 0)
	if v == nil {
		t.Fatal("no time_squeeze")
	}
	says(t, "cause", v.Cause, "polls outlasted netdev_budget_usecs (60 squeezes under netdev_budget_usecs=2000 (13:25:30-13:25:32); none under 8000)")
	says(t, "fix", v.Fix, "netdev_budget_usecs was already raised from 2000 to 8000 during the session (by 13:25:33; none since); ")
	says(t, "fix", v.Fix, "(e.g. to 9000)")
	if v.Evidence["netdev_budget_usecs"] != int64(2000) {
		t.Errorf("evidence %v", v.Evidence)
	}
}
