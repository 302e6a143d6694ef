// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/record"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustRead(t *testing.T, name string, data []byte) (*Recording, []Warning) {
	t.Helper()
	rec, ws, err := Read(name, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	return rec, ws
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

func render(t *testing.T, recs []*Recording, ws []Warning) (text, js []byte) {
	t.Helper()
	doc := NewDocument(recs, ws)
	var tb, jb bytes.Buffer
	if err := WriteText(&tb, doc); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&jb, doc); err != nil {
		t.Fatal(err)
	}
	return tb.Bytes(), jb.Bytes()
}

func TestGolden(t *testing.T) {
	rec, ws := mustRead(t, "incident.jsonl", readFixture(t, "incident.jsonl"))
	if len(ws) != 0 {
		t.Errorf("warnings on a clean recording: %v", ws)
	}
	if rec.DropEvents != 4 || rec.Intervals != 8 || rec.Summary == nil {
		t.Errorf("read %d drop events, %d intervals, summary %v; want 4, 8, a summary", rec.DropEvents, rec.Intervals, rec.Summary != nil)
	}
	text, js := render(t, []*Recording{rec}, ws)
	golden(t, "incident.txt", text)
	golden(t, "incident.json", js)

	// The fixture's verdicts were made by the same rules: nothing to show twice.
	r := Analyze(rec)
	if r.RecordedDiffer || len(r.Verdicts) == 0 {
		t.Errorf("re-derived verdicts differ from the recorded ones (%v) or none: %+v", r.RecordedDiffer, r.Verdicts)
	}
	for _, want := range []string{"WARNING   backlog_overflow  CPU 2", "CRITICAL  budget_squeeze  CPU 2", "CRITICAL  socket_rcvbuf",
		"netdev_max_backlog 1000->4096", "time_squeeze CPU 2: mismatch, explained by net_rx_coverage"} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("text report lacks %q", want)
		}
	}
}

// The JSON document is what docs/analyze.md describes: these paths are the contract.
func TestJSONShape(t *testing.T) {
	rec, _ := mustRead(t, "incident.jsonl", readFixture(t, "incident.jsonl"))
	_, js := render(t, []*Recording{rec}, nil)
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var cur any = doc
		for _, k := range strings.Split(path, ".") {
			switch c := cur.(type) {
			case map[string]any:
				cur = c[k]
			case []any:
				var i int
				fmt.Sscan(k, &i)
				if i >= len(c) {
					return nil
				}
				cur = c[i]
			default:
				return nil
			}
		}
		return cur
	}
	for _, path := range []string{
		"analyze_version", "warnings", "recordings.0.file", "recordings.0.start.hostname",
		"recordings.0.summary_source", "recordings.0.summary.drops", "recordings.0.summary.checks",
		"recordings.0.end", "recordings.0.intervals", "recordings.0.drop_events", "recordings.0.truncated",
		"recordings.0.bad_lines", "recordings.0.totals.drops_per_sec", "recordings.0.totals.backlog_dropped",
		"recordings.0.totals.squeezes", "recordings.0.reasons.0.reason", "recordings.0.reasons.0.per_sec",
		"recordings.0.cpus.0.cpu", "recordings.0.cpus.2.softnet.dropped", "recordings.0.cpus.2.drops_per_sec",
		"recordings.0.cpus.2.busy_pct", "recordings.0.timeline.0.seq", "recordings.0.timeline.0.offset_ms",
		"recordings.0.timeline.3.cpus.2.backlog_dropped", "recordings.0.timeline.4.sysctl_changes",
		"recordings.0.verdicts.0.id", "recordings.0.recorded_verdicts", "recordings.0.recorded_verdicts_differ",
	} {
		if get(path) == nil {
			t.Errorf("JSON document has no %s", path)
		}
	}
	if get("comparison") != nil {
		t.Error("a single recording has a comparison")
	}
	if get("recordings.0.summary.verdicts") != nil {
		t.Error("summary keeps its verdicts: they belong in verdicts and recorded_verdicts")
	}
}

// cut drops the summary and cuts the last interval in the middle of its line, the way a
// killed session leaves its file (the writer flushes 64 KiB at a time).
// A killed session's report rests on the sum of its intervals: on a real recording that sum
// is what the session itself wrote as its summary, and gives the same verdicts.
func TestSumOfIntervalsIsTheSummary(t *testing.T) {
	rec, _ := mustRead(t, "dtlab.jsonl", readFixture(t, "dtlab.jsonl"))
	s := rec.Sum
	want := rec.Summary
	if !reflect.DeepEqual(s.Drops, want.Drops) {
		t.Errorf("drops %v, summary %v", s.Drops, want.Drops)
	}
	if d := s.DurationMs - want.DurationMs; d < -int64(rec.Intervals) || d > int64(rec.Intervals) {
		t.Errorf("duration %d ms, summary %d ms: more than the intervals' rounding apart", s.DurationMs, want.DurationMs)
	}
	for i, c := range s.CPUs {
		w := want.CPUs[i]
		if c.CPU != w.CPU || !reflect.DeepEqual(c.Drops, w.Drops) || !reflect.DeepEqual(c.Softnet, w.Softnet) {
			t.Errorf("CPU %d: %+v %+v, summary %+v %+v", c.CPU, c.Drops, c.Softnet, w.Drops, w.Softnet)
		}
		n, wn := *c.NetRx, *w.NetRx
		n.BusyUs, wn.BusyUs = 0, 0 // the session sums nanoseconds and rounds once
		if n != wn {
			t.Errorf("CPU %d net_rx %+v, summary %+v", c.CPU, n, wn)
		}
	}
	if !reflect.DeepEqual(s.SNMP, want.SNMP) || !reflect.DeepEqual(s.Locations, want.Locations) {
		t.Errorf("snmp or locations differ:\n%v\n%v\n%v\n%v", s.SNMP, want.SNMP, s.Locations, want.Locations)
	}
	label := func(vs []record.Verdict) []PointVerdict {
		var out []PointVerdict
		for _, v := range vs {
			out = append(out, pointVerdict(v))
		}
		return out
	}
	killed := *rec
	killed.Summary = nil
	got, full := Analyze(&killed), Analyze(rec)
	if !reflect.DeepEqual(label(got.Verdicts), label(full.Verdicts)) {
		t.Errorf("verdicts from the intervals %v, from the summary %v", label(got.Verdicts), label(full.Verdicts))
	}
	for i, c := range got.Summary.Checks {
		w := full.Summary.Checks[i]
		if c.Check != w.Check || c.Status != w.Status || *c.Traced != *w.Traced || *c.Kernel != *w.Kernel {
			t.Errorf("check %s: %s %d/%d, summary %s %s %d/%d", checkName(c), c.Status, *c.Traced, *c.Kernel,
				checkName(w), w.Status, *w.Traced, *w.Kernel)
		}
	}
}

func TestSumChecks(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	ivs := []*record.Interval{
		{Seq: 1, Checks: []record.Check{
			{Check: "backlog_drops", Traced: i(5), Kernel: i(5), Status: record.StatusMatch},
			{Check: "udp_rcvbuf", Status: record.StatusUnavailable, Note: "no network namespace's counters could be read"},
			{Check: "time_squeeze", CPU: ptr(1), Traced: i(3), Kernel: i(5), Status: record.StatusMismatch, ExplainedBy: "net_rx_coverage", Note: "a"},
		}},
		{Seq: 2, Checks: []record.Check{
			{Check: "backlog_drops", Traced: i(7), Kernel: i(9), Status: record.StatusMismatch, Note: "2 backlog drops not traced"},
			{Check: "udp_rcvbuf", Status: record.StatusUnavailable, Note: "still unreadable"},
			{Check: "time_squeeze", CPU: ptr(1), Traced: i(4), Kernel: i(4), Status: record.StatusMatch},
		}},
		{Seq: 3, Checks: []record.Check{
			{Check: "backlog_drops", Traced: i(1), Kernel: i(1), Status: record.StatusMatch},
			{Check: "time_squeeze", CPU: ptr(1), Traced: i(1), Kernel: i(2), Status: record.StatusMismatch, ExplainedBy: "net_rx_coverage", Note: "b"},
		}},
	}
	got := sumIntervals(ivs).Checks
	want := []record.Check{
		{Check: "backlog_drops", Traced: i(13), Kernel: i(15), Status: record.StatusMismatch,
			Note: "mismatch in 1 of 3 intervals (2); the last said: 2 backlog drops not traced"},
		{Check: "udp_rcvbuf", Status: record.StatusUnavailable, Note: "still unreadable"},
		{Check: "time_squeeze", CPU: ptr(1), Traced: i(8), Kernel: i(11), Status: record.StatusMismatch, ExplainedBy: "net_rx_coverage",
			Note: "mismatch in 2 of 3 intervals (1, 3); the last said: b"},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("sumChecks\n%s\nwant\n%s", g, w)
	}
}

func TestCompare(t *testing.T) {
	a, wa := mustRead(t, "testdata/incident.jsonl", readFixture(t, "incident.jsonl"))
	b, wb := mustRead(t, "testdata/tuned.jsonl", readFixture(t, "tuned.jsonl"))
	text, js := render(t, []*Recording{a, b}, append(wa, wb...))
	golden(t, "compare.txt", text)
	var doc Document
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Comparison
	if c == nil || !reflect.DeepEqual(c.Files, []string{"incident.jsonl", "tuned.jsonl"}) {
		t.Fatalf("comparison %+v", c)
	}
	rows := map[string][]*float64{}
	for _, r := range c.Rates {
		rows[r.Name] = r.Values
	}
	settings := map[string]Setting{}
	for _, s := range c.Settings {
		settings[s.Name] = s
	}
	if s := settings["netdev_max_backlog"]; !reflect.DeepEqual(s.Start, []int64{1000, 4096}) || !reflect.DeepEqual(s.End, []int64{4096, 4096}) {
		t.Errorf("netdev_max_backlog %+v: want raised during the incident, from 1000 to 4096", s)
	}
	if s := settings["netdev_budget"]; !reflect.DeepEqual(s.End, []int64{300, 600}) {
		t.Errorf("netdev_budget %+v", s)
	}
	check := func(name string, a, b float64) {
		t.Helper()
		v := rows[name]
		if len(v) != 2 || v[0] == nil || v[1] == nil || *v[0] != a || *v[1] != b {
			t.Errorf("%s: %v, want [%v %v]", name, v, a, b)
		}
	}
	check("backlog_dropped_per_sec", 629.76, 0)
	var gone bool
	for _, v := range c.Verdicts {
		if v.ID == "backlog_overflow" && v.Severity[0] != nil && v.Severity[1] == nil {
			gone = true
		}
	}
	if !gone {
		t.Errorf("backlog_overflow not shown gone after tuning: %+v", c.Verdicts)
	}
	// tuned.jsonl was written by an older droptrace whose verdicts differ: both are shown.
	if r := doc.Recordings[1]; !r.RecordedDiffer || len(r.RecordedVerdicts) != 1 {
		t.Errorf("recorded verdicts differ %v: %+v", r.RecordedDiffer, r.RecordedVerdicts)
	}
	if !bytes.Contains(text, []byte("the recording itself carried different verdicts (written by droptrace v0.2.0)")) {
		t.Error("the text report does not show the recorded verdicts that differ")
	}
}

// svgText collects the text of every <text> element, checking on the way that the chart is
// well-formed XML.
func svgText(t *testing.T, data []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var out []string
	var inText bool
	var root string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not valid XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
			}
			inText = el.Name.Local == "text"
		case xml.EndElement:
			inText = false
		case xml.CharData:
			if inText {
				out = append(out, string(el))
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return out
}

func TestChart(t *testing.T) {
	a, _ := mustRead(t, "incident.jsonl", readFixture(t, "incident.jsonl"))
	b, _ := mustRead(t, "tuned.jsonl", readFixture(t, "tuned.jsonl"))
	for _, recs := range [][]*Recording{{a}, {a, b}} {
		doc := NewDocument(recs, nil)
		var buf bytes.Buffer
		if err := WriteChart(&buf, doc, false); err != nil {
			t.Fatal(err)
		}
		texts := strings.Join(svgText(t, buf.Bytes()), "\n")
		for _, want := range []string{rowDrops, rowSoftnet, rowReasons, xLabel, "CPU 0", "CPU 2", "squeezes",
			"backlog overflows", "SOCKET_RCVBUFF", "CPU_BACKLOG", "NO_SOCKET", "netdev_max_backlog 1000->4096", "incident.jsonl"} {
			if !strings.Contains(texts, want) {
				t.Errorf("%d recordings: chart has no text %q", len(recs), want)
			}
		}
		// Self-contained: nothing to fetch, no script.
		for _, bad := range []string{"<script", "<link", "href=\"http", "@import", "url("} {
			if bytes.Contains(buf.Bytes(), []byte(bad)) {
				t.Errorf("chart contains %q", bad)
			}
		}
	}
	var page bytes.Buffer
	if err := WriteChart(&page, NewDocument([]*Recording{a}, nil), true); err != nil {
		t.Fatal(err)
	}
	p := page.String()
	if !strings.HasPrefix(p, "<!DOCTYPE html>") || !strings.Contains(p, "<svg") || strings.Contains(p, "<?xml") || strings.Contains(p, "<script") {
		t.Errorf("HTML chart: %.200s", p)
	}
}

// A counters-only recording has no traced drops: the report says so instead of showing zeros
// as if BPF had counted none.
func TestCountersOnly(t *testing.T) {
	start := `{"type":"start","time":"2025-11-23T03:13:25.500000000Z","schema_version":1,"cpus":[0,1],"mode":"counters-only","sysctl":{"netdev_budget":300,"netdev_budget_usecs":2000,"netdev_max_backlog":1000,"dev_weight":64}}`
	iv := `{"type":"interval","time":"2025-11-23T03:13:26.500000000Z","seq":1,"duration_ms":1000,"drops":{},"cpus":[{"cpu":0,"drops":{},"softnet":{"processed":1000,"dropped":20,"time_squeeze":3}},{"cpu":1,"drops":{},"softnet":{"processed":10}}],"checks":[{"check":"backlog_drops","traced":null,"kernel":null,"status":"unavailable","note":"counters-only"}]}`
	rec, _, err := Read("co.jsonl", strings.NewReader(start+"\n"+iv+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	doc := NewDocument([]*Recording{rec}, nil)
	var tb, cb bytes.Buffer
	if err := WriteText(&tb, doc); err != nil {
		t.Fatal(err)
	}
	if err := WriteChart(&cb, doc, false); err != nil {
		t.Fatal(err)
	}
	report := strings.Join(strings.Fields(tb.String()), " ")
	for _, want := range []string{"traced drops unavailable (counters-only)", "20 backlog overflows", "backlog_drops: unavailable",
		"backlog_overflow CPU 0"} {
		if !strings.Contains(report, want) {
			t.Errorf("counters-only report lacks %q:\n%s", want, tb.String())
		}
	}
	if !strings.Contains(strings.Join(svgText(t, cb.Bytes()), "\n"), "counters-only") {
		t.Error("counters-only chart does not say why it has no drops")
	}
}

// A long recording's timeline is bucketed into at most timelineRows rows, with each row's
// peak, and quiet stretches fold into one line.
func TestLongTimeline(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"type":"start","time":"2025-11-23T03:00:00.000000000Z","schema_version":1,"cpus":[0,1],"mode":"full","sysctl":{"netdev_budget":300,"netdev_budget_usecs":2000,"netdev_max_backlog":1000,"dev_weight":64}}` + "\n")
	for seq := 1; seq <= 120; seq++ {
		var drops, dropped uint64
		if seq >= 50 && seq <= 60 {
			drops, dropped = uint64(seq)*100, 40
		}
		fmt.Fprintf(&b, `{"type":"interval","time":"2025-11-23T03:%02d:%02d.000000000Z","seq":%d,"duration_ms":1000,"drops":{"CPU_BACKLOG":%d},`+
			`"cpus":[{"cpu":0,"drops":{"CPU_BACKLOG":%d},"softnet":{"processed":1000}},{"cpu":1,"drops":{},"softnet":{"processed":5000,"dropped":%d}}]}`+"\n",
			seq/60, seq%60, seq, drops, drops, dropped)
	}
	rec, _, err := Read("long.jsonl", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := render(t, []*Recording{rec}, nil)
	s := string(text)
	i := strings.Index(s, "\ntimeline")
	j := strings.Index(s, "\nchecks")
	timeline := s[i:j]
	for _, want := range []string{"5 intervals per row", "peak/s", "1-45  until 45.0s: quiet", "  46-50  50.0       1k      5k          8",
		"  51-55  55.0     5.3k    5.5k         40          0  CPU_BACKLOG 5.3k  same", "backlog_overflow cpu 1", "61-120  until 120.0s: quiet"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("timeline lacks %q:\n%s", want, timeline)
		}
	}
	if rows := strings.Count(timeline, "\n"); rows > timelineRows+5 {
		t.Errorf("timeline has %d lines", rows)
	}
}

// sumIntervals folds a slice of intervals as Read folds those it reads.
func sumIntervals(ivs []*record.Interval) *record.Interval {
	s := newIntervalSum()
	for _, iv := range ivs {
		s.add(iv)
	}
	return s.result()
}
