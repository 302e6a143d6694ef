// SPDX-License-Identifier: Apache-2.0

package record

import (
	"testing"
	"time"
)

func spanInterval(at time.Time, budget int64, changes []string, cpu int, budgetSq, dropped uint64) *Interval {
	return &Interval{
		Header: Header{Type: TypeInterval, Time: Time(at)}, DurationMs: 1000,
		Sysctl:        &Sysctl{NetdevBudget: budget, NetdevMaxBacklog: 1000},
		SysctlChanges: changes,
		CPUs: []CPU{
			{CPU: cpu, NetRx: &NetRx{Runs: 10, Packets: 100, BudgetSqueezes: budgetSq}, Softnet: &Softnet{Processed: 100, Dropped: dropped}},
			{CPU: cpu + 1, NetRx: &NetRx{Runs: 5}, Softnet: &Softnet{Processed: 50}},
		},
	}
}

// TestLimitSpans: intervals under the same limits merge; an interval that changed them is a
// span of its own with the lowest values it saw, also between its own changes.
func TestLimitSpans(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 13, 25, 38, 0, time.UTC)
	var s Interval
	s.Add(spanInterval(t0, 300, nil, 1, 0, 0))
	s.Add(spanInterval(t0.Add(time.Second), 4, []string{"netdev_budget 300->4, netdev_max_backlog 1000->16 at 13:25:38.500",
		"netdev_max_backlog 16->1000 at 13:25:38.900"}, 1, 7, 3))
	s.Add(spanInterval(t0.Add(2*time.Second), 4, nil, 1, 100, 50))
	s.Add(spanInterval(t0.Add(3*time.Second), 4, nil, 2, 20, 0))
	s.Add(spanInterval(t0.Add(4*time.Second), 300, []string{"netdev_budget 4->300 at 13:25:41.200"}, 1, 0, 0))
	if len(s.LimitSpans) != 4 {
		t.Fatalf("spans = %+v, want 4", s.LimitSpans)
	}
	mixed := s.LimitSpans[1]
	if !mixed.Mixed() || mixed.Lowest.NetdevBudget != 4 || mixed.Lowest.NetdevMaxBacklog != 16 || mixed.Sysctl.NetdevMaxBacklog != 1000 {
		t.Errorf("mixed span = %+v, lowest %+v", mixed, mixed.Lowest)
	}
	under4 := s.LimitSpans[2]
	if under4.Mixed() || under4.Sysctl.NetdevBudget != 4 || time.Time(under4.From) != t0.Add(time.Second) || time.Time(under4.To) != t0.Add(3*time.Second) {
		t.Errorf("span under 4 = %+v", under4)
	}
	if c := under4.CPU(1); c.BudgetSqueezes != 100 || c.Dropped != 50 || c.Runs != 10 || c.Processed != 100 {
		t.Errorf("CPU 1 under 4 = %+v", c)
	}
	if c := under4.CPU(2); c.BudgetSqueezes != 20 {
		t.Errorf("CPU 2 under 4 = %+v", c)
	}
	// CPUs that neither squeezed nor overflowed are not listed.
	if len(s.LimitSpans[0].CPUs) != 0 || len(under4.CPUs) != 2 {
		t.Errorf("listed CPUs: %+v, %+v", s.LimitSpans[0].CPUs, under4.CPUs)
	}

	// The summary adds the session's sum: the spans are kept as they are.
	var sum Interval
	sum.Add(&s)
	if len(sum.LimitSpans) != 4 || sum.LimitSpans[2].CPU(1).BudgetSqueezes != 100 {
		t.Fatalf("summary spans = %+v", sum.LimitSpans)
	}
	sum.LimitSpans[2].CPUs[0].BudgetSqueezes = 0
	if s.LimitSpans[2].CPU(1).BudgetSqueezes != 100 {
		t.Error("the sum shares its spans with what was added")
	}
}

// TestLimitSpansBounded: a session of constant tuning keeps MaxLimitSpans spans; the rest fold
// into the last, which then says the lowest limits it saw.
func TestLimitSpansBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 13, 0, 0, 0, time.UTC)
	var s Interval
	for i := range 3 * MaxLimitSpans {
		s.Add(spanInterval(t0.Add(time.Duration(i)*time.Second), int64(100+i), nil, 0, 1, 0))
	}
	if len(s.LimitSpans) != MaxLimitSpans {
		t.Fatalf("%d spans, want %d", len(s.LimitSpans), MaxLimitSpans)
	}
	last := s.LimitSpans[MaxLimitSpans-1]
	if !last.Mixed() || last.Lowest.NetdevBudget != 100+MaxLimitSpans-1 || last.Sysctl.NetdevBudget != 100+3*MaxLimitSpans-1 {
		t.Errorf("last span = %+v lowest %+v", last, last.Lowest)
	}
	var total uint64
	for _, p := range s.LimitSpans {
		total += p.CPU(0).BudgetSqueezes
	}
	if total != 3*MaxLimitSpans {
		t.Errorf("squeezes over the spans = %d, want %d", total, 3*MaxLimitSpans)
	}
}

// TestTrimDropsConstantSpan: limits that never changed need no breakdown.
func TestTrimDropsConstantSpan(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 13, 0, 0, 0, time.UTC)
	var s Interval
	s.Add(spanInterval(t0, 300, nil, 0, 1, 0))
	s.Add(spanInterval(t0.Add(time.Second), 300, nil, 0, 1, 0))
	s.Trim()
	if s.LimitSpans != nil {
		t.Errorf("spans = %+v, want none", s.LimitSpans)
	}
	s.Add(spanInterval(t0.Add(2*time.Second), 300, []string{"dev_weight 64->32 at 13:00:02.500"}, 0, 1, 0))
	s.Trim()
	if len(s.LimitSpans) != 1 {
		t.Errorf("spans = %+v, want one mixed", s.LimitSpans)
	}
}
