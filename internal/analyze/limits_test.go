// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

const limitStart = `{"type":"start","time":"2025-11-23T03:13:25.500000000Z","schema_version":1,"cpus":[0,1],"mode":"full"}`

// hugeInterval is an interval whose counts are near the top of uint64: two of them overflow
// any sum that is not saturating.
func hugeInterval(seq int) string {
	const big = uint64(math.MaxUint64 - 5)
	return fmt.Sprintf(`{"type":"interval","time":"2025-11-23T03:13:%02d.500000000Z","seq":%d,"duration_ms":1000,`+
		`"drops":{"A":%d,"B":%d},"cpus":[{"cpu":0,"drops":{"A":%d,"B":%d},"softnet":{"processed":%d,"dropped":%d,"time_squeeze":%d}}]}`,
		25+seq, seq, big, big, big, big, big, big, big)
}

// A corrupt or hostile recording must not wrap a total round to a small number: every sum
// analyze makes saturates at the largest count.
func TestSumsSaturate(t *testing.T) {
	data := strings.Join([]string{limitStart, hugeInterval(1), hugeInterval(2), ""}, "\n")
	rec, _, err := Read("huge.jsonl", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	doc := NewDocument([]*Recording{rec}, nil)
	r := doc.Recordings[0]
	tot := r.Totals
	if tot.Drops != math.MaxUint64 || *tot.Processed != math.MaxUint64 || *tot.BacklogDropped != math.MaxUint64 || *tot.Squeezes != math.MaxUint64 {
		t.Errorf("totals wrapped: %+v processed %d backlog %d squeezes %d", tot, *tot.Processed, *tot.BacklogDropped, *tot.Squeezes)
	}
	if tot.DropsPct == nil || *tot.DropsPct != 100 {
		t.Errorf("drops_pct %v, want 100 (saturated over saturated)", tot.DropsPct)
	}
	for _, p := range r.Timeline {
		if p.DropsTotal != math.MaxUint64 {
			t.Errorf("interval %d: drops_total %d, want saturated", p.Seq, p.DropsTotal)
		}
	}
	_, bs := buckets(r.Timeline, 1)
	if b := bs[0]; b.total != math.MaxUint64 || b.backlog != math.MaxUint64 || b.squeeze != math.MaxUint64 {
		t.Errorf("timeline row wrapped: total %d backlog %d squeeze %d", b.total, b.backlog, b.squeeze)
	}
	if a := r.CPUs[0].activity(); a != math.MaxUint64 {
		t.Errorf("CPU activity wrapped: %d", a)
	}
}
