// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"errors"
	"fmt"
	"io"
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

// Past maxPoints, the timeline merges neighbours: fewer points, the same sums, and the text
// says how many intervals a row holds.
func TestTimelineMerges(t *testing.T) {
	defer func(n int) { maxPoints = n }(maxPoints)
	maxPoints = 4
	lines := []string{limitStart}
	for seq := 1; seq <= 11; seq++ {
		lines = append(lines, fmt.Sprintf(`{"type":"interval","time":"2025-11-23T03:13:%02d.500000000Z","seq":%d,"duration_ms":1000,`+
			`"drops":{"A":%d},"cpus":[{"cpu":%d,"drops":{"A":%d},"softnet":{"processed":10,"dropped":1}}],"sysctl_changes":["c%d"]}`,
			25+seq, seq, seq, seq%2, seq, seq))
	}
	rec, _, err := Read("merge.jsonl", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	tl := rec.Timeline
	if len(tl) > maxPoints || rec.Intervals != 11 {
		t.Fatalf("%d points for %d intervals, want at most %d", len(tl), rec.Intervals, maxPoints)
	}
	var n, drops, backlog uint64
	var changes []string
	for i, p := range tl {
		n += uint64(p.count())
		drops += p.DropsTotal
		for _, c := range p.CPUs {
			backlog += *c.BacklogDropped
		}
		changes = append(changes, p.SysctlChanges...)
		if i > 0 && p.Seq != tl[i-1].last()+1 {
			t.Errorf("point %d starts at %d after %d", i, p.Seq, tl[i-1].last())
		}
	}
	if n != 11 || drops != 66 || backlog != 11 || len(changes) != 11 || tl[len(tl)-1].last() != 11 {
		t.Errorf("merged points hold %d intervals, %d drops, %d backlog, %d changes, last %d; want 11, 66, 11, 11, 11", n, drops, backlog, len(changes), tl[len(tl)-1].last())
	}
	if p := tl[0]; p.Intervals != 4 || p.PeakDropsPerSec != 4 || p.DurationMs != 4000 {
		t.Errorf("first point %+v: want 4 intervals, peak 4/s, 4000 ms", p)
	}
	if _, bs := buckets(tl, 2); len(bs) != 2 || bs[0].first != 1 || bs[1].last != 11 {
		t.Errorf("buckets %+v", bs)
	}
	text, _ := render(t, []*Recording{rec}, nil)
	if !strings.Contains(string(text), "4 intervals per row") {
		t.Errorf("text timeline does not say 4 intervals per row:\n%s", text)
	}
}

// Each record's fields are checked: a value no session writes skips the line with a warning
// naming it, and the rest of the file is used.
func TestValidateFields(t *testing.T) {
	iv := func(seq int, rest string) string {
		return fmt.Sprintf(`{"type":"interval","time":"2025-11-23T03:13:%02d.500000000Z","seq":%d,"duration_ms":1000%s}`, 25+seq, seq, rest)
	}
	tests := []struct{ line, want string }{
		{`{"type":"interval","time":"2025-11-23T03:13:27.500000000Z","seq":2,"duration_ms":-5}`, "interval record: duration_ms -5 is negative: line skipped"},
		{`{"type":"interval","time":"2025-11-23T03:13:27.500000000Z","seq":2,"duration_ms":9223372036854775807}`, "duration_ms 9223372036854775807 is more than ten years"},
		{iv(2, `,"cpus":[{"cpu":-1}]`), "cpu -1 is out of range (0 to 8191)"},
		{iv(2, `,"cpus":[{"cpu":100000}]`), "cpu 100000 is out of range"},
		{iv(2, `,"drops":{"A":18446744073709551616}`), `field "drops" is number 18446744073709551616, want an integer`},
		{iv(2, `,"drops":{"A":-1}`), `field "drops" is number -1, want an integer`},
		{`{"type":"summary","time":"2025-11-23T03:13:27.500000000Z","duration_ms":-1}`, "summary record: duration_ms -1 is negative"},
	}
	for _, tc := range tests {
		data := strings.Join([]string{limitStart, iv(1, ""), tc.line, iv(3, ""), ""}, "\n")
		rec, ws, err := Read("bad.jsonl", strings.NewReader(data))
		if err != nil {
			t.Errorf("%s: fatal %v", tc.line, err)
			continue
		}
		if len(ws) < 1 || ws[0].Line != 3 || !strings.Contains(ws[0].Message, tc.want) {
			t.Errorf("%s: warnings %v; want line 3: %s", tc.line, ws, tc.want)
		}
		if rec.BadLines != 1 || rec.Summary != nil {
			t.Errorf("%s: %d bad lines, summary %v; want the line skipped", tc.line, rec.BadLines, rec.Summary != nil)
		}
	}
	badStart := `{"type":"start","time":"2025-11-23T03:13:25.500000000Z","schema_version":1,"cpus":[0,9000]}`
	_, ws, err := Read("start.jsonl", strings.NewReader(strings.Join([]string{badStart, limitStart, iv(1, "")}, "\n")))
	if err != nil || len(ws) < 1 || ws[0].Line != 1 || !strings.Contains(ws[0].Message, "start record: cpu 9000 is out of range (0 to 8191): line skipped") {
		t.Errorf("bad start: %v %v", ws, err)
	}
}

// Time going back between intervals in order is said, with the line.
func TestTimeBackwards(t *testing.T) {
	data := strings.Join([]string{limitStart,
		`{"type":"interval","time":"2025-11-23T03:13:27.500000000Z","seq":1,"duration_ms":1000}`,
		`{"type":"interval","time":"2025-11-23T03:13:26.500000000Z","seq":2,"duration_ms":1000}`}, "\n")
	_, ws, err := Read("back.jsonl", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) < 1 || ws[0].String() != "back.jsonl:3: interval 2 ends at 2025-11-23T03:13:26.5Z, before the interval before it (2025-11-23T03:13:27.5Z): the clock went back, or the lines are out of order" {
		t.Errorf("warnings %v", ws)
	}
}

// endless is /dev/zero, or any input that never has a newline.
type endless struct {
	b    byte
	read int64
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.b
	}
	e.read += int64(len(p))
	return len(p), nil
}

// /dev/zero, or a recording followed by one, ends: one over-long line is skipped, but past
// maxGap bytes without a record analyze stops, with an error when no recording began.
func TestEndlessInput(t *testing.T) {
	defer func(n int) { maxLine = n }(maxLine)
	maxLine = 1 << 20
	for _, b := range []byte{0, '\n', 'x'} {
		zero := &endless{b: b}
		_, _, err := Read("/dev/zero", zero)
		if !errors.Is(err, ErrNotRecording) || !strings.Contains(err.Error(), "/dev/zero: no start record in the first") {
			t.Errorf("byte %q: error %v, want %v", b, err, ErrNotRecording)
		}
		if zero.read > 4*int64(maxLine) {
			t.Errorf("byte %q: read %d bytes before stopping", b, zero.read)
		}
	}
	head := strings.Join([]string{limitStart, hugeInterval(1), ""}, "\n")
	rec, ws, err := Read("tail.jsonl", io.MultiReader(strings.NewReader(head), &endless{b: 0}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		got = append(got, w.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"tail.jsonl:3: line longer than 1048576 bytes skipped", "tail.jsonl: stopped reading at line 3:"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if rec.Intervals != 1 {
		t.Errorf("%d intervals, want the one before the zeros", rec.Intervals)
	}
}

// A file that invents a drop reason per line cannot grow the sums and the timeline: past
// maxNames distinct names, such lines are skipped.
func TestNamesBounded(t *testing.T) {
	lines := []string{limitStart}
	for seq := 1; seq <= maxNames+10; seq++ {
		lines = append(lines, fmt.Sprintf(`{"type":"interval","time":"2025-11-23T03:13:26.500000000Z","seq":%d,"duration_ms":1000,"drops":{"R%d":1}}`, seq, seq))
	}
	rec, ws, err := Read("names.jsonl", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Intervals != maxNames || rec.BadLines != 10 || len(rec.Sum.Drops) != maxNames {
		t.Errorf("%d intervals, %d bad lines, %d reasons summed; want %d, 10, %d", rec.Intervals, rec.BadLines, len(rec.Sum.Drops), maxNames, maxNames)
	}
	if len(ws) == 0 || ws[0].Line != maxNames+2 || !strings.Contains(ws[0].Message, "more than 2048 distinct drop reasons") {
		t.Errorf("first warning %v", ws[:min(len(ws), 1)])
	}
}
