// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/droptrace/droptrace/internal/record"
)

func TestPointVerdictJSON(t *testing.T) {
	cpu := 1
	for _, tc := range []struct {
		v    PointVerdict
		json string
	}{
		{PointVerdict{Severity: record.SeverityCritical, ID: "backlog_overflow", CPU: &cpu}, `"critical backlog_overflow cpu 1"`},
		{PointVerdict{Severity: record.SeverityWarning, ID: "socket_rcvbuf"}, `"warning socket_rcvbuf"`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.json {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tc.v, b, err, tc.json)
		}
		var back PointVerdict
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(tc.v) {
			t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", b, back, err, tc.v)
		}
	}
	for _, bad := range []string{`""`, `"critical"`, `"critical x cpu"`, `"critical x cpu one"`, `"critical x gpu 1"`} {
		var v PointVerdict
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want an error", bad, v)
		}
	}
}

func TestBuckets(t *testing.T) {
	cpu0, cpu1 := 0, 1
	crit := PointVerdict{Severity: record.SeverityCritical, ID: "backlog_overflow", CPU: &cpu1}
	info := PointVerdict{Severity: record.SeverityInfo, ID: "busy_poll"}
	warn0 := PointVerdict{Severity: record.SeverityWarning, ID: "budget_squeeze", CPU: &cpu0}
	points := []Point{
		{Seq: 1, OffsetMs: 1000, DurationMs: 1000, Drops: map[string]uint64{"A": 10}, DropsTotal: 10,
			CPUs: []PointCPU{{CPU: 0, BacklogDropped: ptr(uint64(2)), Squeezes: ptr(uint64(3))}}, Verdicts: []PointVerdict{crit, info}},
		{Seq: 2, OffsetMs: 2000, DurationMs: 1000, Drops: map[string]uint64{"A": 30, "B": 5}, DropsTotal: 35,
			CPUs: []PointCPU{{CPU: 0}}, Verdicts: []PointVerdict{{Severity: crit.Severity, ID: crit.ID, CPU: &cpu1}, warn0}},
		{Seq: 3, OffsetMs: 3000, DurationMs: 1000, SysctlChanges: []string{"netdev_budget 300->600 at 00:00:02.500"}},
	}
	per, bs := buckets(points, 2)
	if per != 2 || len(bs) != 2 {
		t.Fatalf("per %d, %d buckets; want 2 and 2", per, len(bs))
	}
	want := &bucket{first: 1, last: 2, endMs: 2000, durMs: 2000, drops: map[string]uint64{"A": 40, "B": 5}, total: 45,
		backlog: 2, squeeze: 3, hasSoftnet: true, peak: 35, bad: []PointVerdict{crit, warn0}}
	if !reflect.DeepEqual(bs[0], want) {
		t.Errorf("first bucket %+v, want %+v", bs[0], want)
	}
	if b := bs[1]; b.first != 3 || b.quiet() || b.hasSoftnet || len(b.bad) != 0 {
		t.Errorf("second bucket %+v: want seq 3, not quiet (a sysctl changed), no softnet, no verdicts", b)
	}
	if got := shortVerdicts(bs[0].bad); got != "backlog_overflow cpu 1!, budget_squeeze cpu 0" {
		t.Errorf("shortVerdicts = %q", got)
	}
	four := []PointVerdict{crit, warn0, crit, warn0}
	if got := shortVerdicts(four); got != "backlog_overflow cpu 1!, budget_squeeze cpu 0, backlog_overflow cpu 1!, +1 more" {
		t.Errorf("shortVerdicts of four = %q", got)
	}
}
