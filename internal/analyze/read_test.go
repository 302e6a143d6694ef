// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func cut(t *testing.T, data []byte) []byte {
	t.Helper()
	lines := bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	last := lines[len(lines)-2] // the last interval; the summary is lines[len-1]
	if !bytes.Contains(last, []byte(`"type":"interval"`)) {
		t.Fatalf("fixture's next-to-last line is not an interval: %.80s", last)
	}
	out := bytes.Join(lines[:len(lines)-2], nil)
	return append(out, last[:len(last)/2]...)
}

func TestTruncated(t *testing.T) {
	data := cut(t, readFixture(t, "incident.jsonl"))
	rec, ws := mustRead(t, "killed.jsonl", data)
	if !rec.Truncated || rec.Summary != nil || rec.Intervals != 7 {
		t.Fatalf("truncated %v, summary %v, %d intervals; want true, none, 7", rec.Truncated, rec.Summary != nil, rec.Intervals)
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	var cutMsg, killedMsg bool
	for _, w := range ws {
		cutMsg = cutMsg || w.Line == lines && strings.Contains(w.Message, "cut off") && w.File == "killed.jsonl"
		killedMsg = killedMsg || strings.Contains(w.Message, "no summary record")
	}
	if !cutMsg || !killedMsg {
		t.Errorf("warnings %v: want line %d cut off and no summary", ws, lines)
	}
	r := Analyze(rec)
	if r.Source != SourceIntervals || r.Totals.DurationMs != 7003 {
		t.Errorf("source %s, %d ms; want the sum of 7 intervals, 7003 ms", r.Source, r.Totals.DurationMs)
	}
	text, _ := render(t, []*Recording{rec}, ws)
	golden(t, "killed.txt", text)
	if !bytes.Contains(text, []byte("re-derived from the sum of 7 intervals")) {
		t.Error("the report does not say where its verdicts come from")
	}
}

func TestCorrupted(t *testing.T) {
	clean := readFixture(t, "incident.jsonl")
	lines := bytes.SplitAfter(clean, []byte("\n"))
	var data []byte
	for i, l := range lines {
		if i == 4 {
			data = append(data, "\x00\x13garbage from a disk error\n"...)
		}
		data = append(data, l...)
	}
	rec, ws := mustRead(t, "corrupt.jsonl", data)
	if len(ws) != 1 || ws[0].Line != 5 || ws[0].File != "corrupt.jsonl" || !strings.Contains(ws[0].Message, "not JSON") {
		t.Fatalf("warnings %v; want one: corrupt.jsonl:5 not JSON", ws)
	}
	if got := ws[0].String(); !strings.HasPrefix(got, "corrupt.jsonl:5: not JSON") {
		t.Errorf("warning reads %q", got)
	}
	if rec.Intervals != 8 || rec.Summary == nil || rec.BadLines != 1 {
		t.Errorf("%d intervals, summary %v, %d bad lines; want the rest used", rec.Intervals, rec.Summary != nil, rec.BadLines)
	}
	want, _ := mustRead(t, "incident.jsonl", clean)
	if !reflect.DeepEqual(Analyze(rec).Verdicts, Analyze(want).Verdicts) {
		t.Error("a garbage line changed the verdicts")
	}
	text, _ := render(t, []*Recording{rec}, ws)
	if !bytes.Contains(text, []byte("warning   line 5: not JSON")) {
		t.Errorf("the report does not show the bad line:\n%s", text)
	}
}

// Each kind of bad line is skipped with its line number, and reading goes on.
func TestBadLines(t *testing.T) {
	start := `{"type":"start","time":"2025-11-23T03:13:25.500000000Z","schema_version":1,"cpus":[0],"sysctl":{"netdev_budget":300}}`
	iv := func(seq int) string {
		return fmt.Sprintf(`{"type":"interval","time":"2025-11-23T03:13:2%d.500000000Z","seq":%d,"duration_ms":1000,"drops":{"NO_SOCKET":1},"cpus":[{"cpu":0,"drops":{"NO_SOCKET":1}}]}`, 5+seq, seq)
	}
	tests := []struct {
		line string
		want string
	}{
		{`{"type":"interval","seq":"two"}`, `interval record: field "seq" is string, want an integer`},
		{`{"type":"interval","cpus":[{"cpu":0,"drops":{"NO_SOCKET":"many"}}]}`, `field "cpus.drops" is string, want an integer`},
		{`{"type":"summary","drops":[1,2]}`, `summary record: field "drops" is array, want an object`},
		{`{"type":"telemetry","x":1}`, `unknown record type "telemetry"`},
		{`{"seq":3}`, `no "type" field`},
		{`{"type":7}`, `"type" is number, not a string`},
		{`[1,2,3]`, `JSON array, not an object`},
		{`{"type":"interval",`, `not JSON`},
		{`{"type":"drop","cpu":-1}`, `drop record: field "cpu" is number -1, want an integer`},
		{`{"type":"start","time":"yesterday"}`, `start record: time "yesterday" is not RFC 3339`},
	}
	for _, tc := range tests {
		sum := `{"type":"summary","time":"2025-11-23T03:13:27.500000000Z","duration_ms":2000,"drops":{"NO_SOCKET":2}}`
		data := strings.Join([]string{start, iv(1), tc.line, iv(2), sum, ""}, "\n")
		rec, ws, err := Read("bad.jsonl", strings.NewReader(data))
		if err != nil {
			t.Errorf("%s: fatal %v", tc.line, err)
			continue
		}
		if len(ws) != 1 || ws[0].Line != 3 || !strings.Contains(ws[0].Message, tc.want) || !strings.Contains(ws[0].Message, "skipped") {
			t.Errorf("%s: warnings %v; want line 3: %s ... skipped", tc.line, ws, tc.want)
		}
		if rec.Intervals != 2 || rec.BadLines != 1 {
			t.Errorf("%s: %d intervals, %d bad lines; want 2 and 1", tc.line, rec.Intervals, rec.BadLines)
		}
	}
}

func TestOutOfPlace(t *testing.T) {
	start := `{"type":"start","time":"2025-11-23T03:13:25.500000000Z","schema_version":1,"cpus":[0]}`
	iv := func(seq int) string {
		return fmt.Sprintf(`{"type":"interval","time":"2025-11-23T03:13:%02d.500000000Z","seq":%d,"duration_ms":1000}`, 25+seq, seq)
	}
	sum := `{"type":"summary","time":"2025-11-23T03:13:35.500000000Z","duration_ms":4000}`
	data := strings.Join([]string{iv(0), start, iv(1), iv(2), iv(5), iv(4), sum, iv(6), sum}, "\n")
	rec, ws, err := Read("odd.jsonl", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		got = append(got, w.String())
	}
	want := []string{
		"odd.jsonl:1: interval record before the start record: line skipped",
		"odd.jsonl:8: interval record after the summary (line 7): ignored",
		"odd.jsonl:9: a second summary record (the first is on line 7): ignored",
		"odd.jsonl:5: intervals 3 to 4 are missing (before this line): the timeline has a gap",
		"odd.jsonl:6: interval 4 follows interval 5: out of order or repeated",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rec.Intervals != 4 {
		t.Errorf("%d intervals kept, want 4", rec.Intervals)
	}
}

func TestFatal(t *testing.T) {
	start := `{"type":"start","time":"2025-11-23T03:13:25.500000000Z","schema_version":1,"version":"v0.3.0","cpus":[0]}`
	iv := `{"type":"interval","time":"2025-11-23T03:13:26.500000000Z","seq":1,"duration_ms":1000}`
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "f.jsonl: no start record in 0 lines"},
		{"not a recording", "hello\nworld\n", "f.jsonl: no start record in 2 lines"},
		{"start only", start + "\n", "f.jsonl: no interval or summary record: nothing to analyze"},
		{"start cut", start[:40], "f.jsonl: no start record in 1 lines"},
		{"two recordings", start + "\n" + iv + "\n" + start + "\n" + iv + "\n", "f.jsonl:3: a second start record"},
		{"newer schema", strings.Replace(start, `"schema_version":1`, `"schema_version":2`, 1) + "\n" + iv,
			"f.jsonl:1: schema_version 2 is newer than this droptrace reads (1)"},
	}
	for _, tc := range tests {
		_, _, err := Read("f.jsonl", strings.NewReader(tc.data))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		r.n = 0
		return copy(p, `{"type":"start","time":"2025-11-23T03:13:25Z"}`+"\n"), nil
	}
	return 0, errors.New("input/output error")
}

func TestReadError(t *testing.T) {
	_, _, err := Read("disk.jsonl", &failingReader{n: 1})
	if err == nil || err.Error() != "disk.jsonl: line 2: input/output error" {
		t.Errorf("error %v", err)
	}
}

// Lines longer than any buffer are read whole: a summary of a large host is long.
func TestLongLine(t *testing.T) {
	start := `{"type":"start","time":"2025-11-23T03:13:25.500000000Z","schema_version":1,"cpus":[0]}`
	var b strings.Builder
	b.WriteString(`{"type":"summary","time":"2025-11-23T03:13:26.500000000Z","duration_ms":1000,"drops":{`)
	for i := range 200000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"SUBSYS_%d:REASON":1`, i)
	}
	b.WriteString("}}\n")
	rec, ws, err := Read("long.jsonl", strings.NewReader(start+"\n"+b.String()))
	if err != nil || len(ws) != 0 {
		t.Fatalf("err %v, warnings %v", err, ws)
	}
	if b.Len() < 4<<20 || len(rec.Summary.Drops) != 200000 {
		t.Errorf("line of %d bytes read with %d reasons", b.Len(), len(rec.Summary.Drops))
	}
}

// A "line" beyond maxLine (a binary file, a missing newline over megabytes) is skipped whole
// without being held in memory, and the lines after it are read.
func TestTooLongLine(t *testing.T) {
	defer func(n int) { maxLine = n }(maxLine)
	maxLine = 3 << 20
	start := `{"type":"start","time":"2025-11-23T03:13:25.500000000Z","schema_version":1,"cpus":[0]}`
	iv := `{"type":"interval","time":"2025-11-23T03:13:26.500000000Z","seq":1,"duration_ms":1000}`
	junk := strings.Repeat("x", 5<<20)
	for _, tail := range []string{"\n" + iv + "\n", ""} {
		data := start + "\n" + junk + tail
		rec, ws, err := Read("big.jsonl", strings.NewReader(data))
		if tail == "" {
			// The junk was the last line: nothing left to analyze.
			if err == nil || !strings.Contains(err.Error(), "no interval or summary record") {
				t.Errorf("junk at the end: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) < 1 || ws[0].Line != 2 || !strings.Contains(ws[0].Message, "line longer than 3145728 bytes skipped") || rec.Intervals != 1 {
			t.Errorf("warnings %v, %d intervals", ws, rec.Intervals)
		}
	}
}

// A file that is mostly damage lists the first bad lines and counts the rest, so the report
// stays readable.
func TestManyBadLines(t *testing.T) {
	lines := []string{`{"type":"start","time":"2025-11-23T03:13:25.500000000Z","schema_version":1,"cpus":[0]}`}
	for range 25 {
		lines = append(lines, "garbage")
	}
	lines = append(lines, `{"type":"summary","time":"2025-11-23T03:13:26.500000000Z","duration_ms":1000}`)
	rec, ws, err := Read("bad.jsonl", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	last := ws[len(ws)-1].String()
	if len(ws) != maxLineWarnings+1 || rec.BadLines != 25 || last != "bad.jsonl: 5 more bad lines not listed (25 of 27 lines could not be used)" {
		t.Errorf("%d warnings, %d bad lines, last %q", len(ws), rec.BadLines, last)
	}
}

// A session that lost records on a full disk says so in its summary's lost_records, and in the
// intervals' when the summary itself was lost: analyze warns that its totals are short.
func TestLostRecordsWarned(t *testing.T) {
	clean := readFixture(t, "incident.jsonl")
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"summary", bytes.Replace(clean, []byte(`{"type":"summary",`), []byte(`{"type":"summary","lost_records":{"drop":7120,"interval":3},`), 1)},
		{"intervals", bytes.Replace(cut(t, clean), []byte(`{"type":"interval",`), []byte(`{"type":"interval","lost_records":{"drop":7123,"interval":3},`), 1)},
	} {
		_, ws := mustRead(t, c.name+".jsonl", c.data)
		var found bool
		for _, w := range ws {
			found = found || strings.Contains(w.Message, "could not write 7123 records (lost_records 7120 drop, 3 interval)") ||
				strings.Contains(w.Message, "could not write 7126 records (lost_records 7123 drop, 3 interval)")
		}
		if !found {
			t.Errorf("%s: warnings %v do not say records were lost", c.name, ws)
		}
	}
	if _, ws := mustRead(t, "clean.jsonl", clean); strings.Contains(fmt.Sprint(ws), "could not write") {
		t.Errorf("a clean recording warned of lost records: %v", ws)
	}
}
