// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/droptrace/droptrace/internal/textfmt"
	"github.com/droptrace/droptrace/internal/textfmt/texttest"
)

// withComm is a fixture recording whose overflowing socket is owned by a process named comm,
// as the session would write it.
func withComm(t *testing.T, name, comm string) *Recording {
	t.Helper()
	q, err := json.Marshal(comm)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.ReplaceAll(readFixture(t, name), []byte(`"comm":"collector"`), append([]byte(`"comm":`), q...))
	rec, _ := mustRead(t, name, data)
	return rec
}

// A process may name itself anything: its name must not set the terminal's title or clear
// the screen of whoever reads the report, nor break the chart.
func TestHostileProcessName(t *testing.T) {
	doc := NewDocument([]*Recording{withComm(t, "incident.jsonl", texttest.Hostile)}, nil)
	text, js := render(t, []*Recording{withComm(t, "incident.jsonl", texttest.Hostile)}, nil)
	if err := texttest.Printable(string(text)); err != nil {
		t.Errorf("text report: %v", err)
	}
	if want := `socket of pid 4242 (\x1b]0;PWN\x07\x1b[2J)`; !bytes.Contains(text, []byte(want)) {
		t.Errorf("text report does not show %s, escaped; got:\n%s", want, text)
	}
	// The JSON document keeps the exact name, as JSON escapes it.
	if !bytes.Contains(js, []byte(`"comm": "\u001b]0;PWN\u0007\u001b[2J"`)) {
		t.Errorf("JSON document lost the exact name:\n%.2000s", js)
	}
	if got := doc.Recordings[0].Summary.Ports[0].Comm; got != texttest.Hostile {
		t.Errorf("the document's record was changed: comm %q", got)
	}
}

var (
	fixturesOnce sync.Once
	fixtureRecs  map[string]*Recording
)

// hostileDocument is the incident recording, alone or compared with the tuned one, with s
// appended to every string a host or a recording decides (the socket owner's name too).
func hostileDocument(t *testing.T, s string, compare bool) *Document {
	fixturesOnce.Do(func() {
		fixtureRecs = map[string]*Recording{}
		for _, n := range []string{"incident.jsonl", "tuned.jsonl"} {
			fixtureRecs[n], _ = mustRead(t, n, readFixture(t, n))
		}
	})
	names := []string{"incident.jsonl"}
	if compare {
		names = append(names, "tuned.jsonl")
	}
	var recs []*Recording
	for _, n := range names {
		// A deep copy, read once: the fixtures' strings need no escape, so Safe only copies.
		rec := textfmt.Safe(fixtureRecs[n])
		texttest.Taint(rec, s)
		// The socket verdict, which quotes the owner's name, needs its reason's own name.
		if sum := rec.Summary; sum != nil && s != "" {
			sum.Drops["SOCKET_RCVBUFF"] = sum.Drops["SOCKET_RCVBUFF"+s]
			for i := range sum.Ports {
				sum.Ports[i].Reason = strings.TrimSuffix(sum.Ports[i].Reason, s)
			}
		}
		recs = append(recs, rec)
	}
	return NewDocument(recs, []Warning{{File: names[0] + s, Line: 3, Message: "bad " + s}})
}

func TestHostileDocumentQuotesOwner(t *testing.T) {
	doc := hostileDocument(t, "~x", true)
	for _, r := range doc.Recordings {
		var causes []string
		for _, v := range r.Verdicts {
			causes = append(causes, v.Cause)
		}
		if !strings.Contains(strings.Join(causes, "\n"), "(collector~x)") {
			t.Errorf("%s: no verdict names the socket's owner:\n%s", r.File, strings.Join(causes, "\n"))
		}
	}
}

// FuzzRenderHostile renders the text report, or the chart (SVG and HTML), of hostile
// recordings: one of them an input, so that each input costs one renderer's time.
func FuzzRenderHostile(f *testing.F) {
	for _, s := range []string{texttest.Hostile, "\u009b2J\x7f", "\xff\xfe", "\u202e", "日本\t\r\n", "</title><script>&", ""} {
		for _, compare := range []bool{false, true} {
			f.Add(s, compare, false)
			f.Add(s, compare, true)
		}
	}
	f.Fuzz(func(t *testing.T, s string, compare, chart bool) {
		doc := hostileDocument(t, s, compare)
		if chart {
			checkChart(t, doc)
			return
		}
		var text bytes.Buffer
		if err := WriteText(&text, doc); err != nil {
			t.Fatal(err)
		}
		if err := texttest.Printable(text.String()); err != nil {
			t.Fatalf("text report: %v", err)
		}
	})
}

// checkChart fails unless the SVG chart is valid XML whose text holds no control character,
// and the HTML page holds no markup but its own. The SVG writer indents with tabs: layout,
// not text.
func checkChart(t *testing.T, doc *Document) {
	t.Helper()
	var svg, page bytes.Buffer
	if err := WriteChart(&svg, doc, false); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, "SVG", svg.Bytes())
	if err := WriteChart(&page, doc, true); err != nil {
		t.Fatal(err)
	}
	p := page.String()
	if err := texttest.Printable(strings.ReplaceAll(p, "\t", " ")); err != nil {
		t.Errorf("HTML: %v", err)
	}
	if strings.Count(p, "<title>") != 1 || strings.Count(p, "</title>") != 1 || strings.Contains(p, "<script") {
		t.Errorf("HTML page holds markup from the recording: %.300s", p)
	}
	start, end := strings.Index(p, "<svg"), strings.LastIndex(p, "</svg>")
	if start < 0 || end < start {
		t.Fatalf("HTML page holds no SVG")
	}
	checkSVG(t, "HTML's SVG", []byte(p[start:end+len("</svg>")]))
}

func checkSVG(t *testing.T, what string, svg []byte) {
	t.Helper()
	for _, text := range svgText(t, svg) { // fails on XML that does not parse
		if err := texttest.Printable(text); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
}

// A warning quotes the recording (a time that does not parse), and the command prints
// warnings to the terminal beside the JSON document: String escapes them.
func TestWarningEscaped(t *testing.T) {
	data := append(readFixture(t, "incident.jsonl"),
		"{\"type\":\"interval\",\"time\":\"\u009b2J\x7f\xff\",\"seq\":99,\"duration_ms\":1}\n"...)
	_, ws := mustRead(t, "incident.jsonl", data)
	if len(ws) == 0 {
		t.Fatal("no warning for a time that does not parse")
	}
	for _, w := range ws {
		if err := texttest.Printable(w.String()); err != nil {
			t.Errorf("warning %q: %v", w.Message, err)
		}
	}
	if !strings.Contains(ws[0].String(), `\u009b2J\x7f\xff`) {
		t.Errorf("warning does not show the time escaped: %s", ws[0])
	}
}

// The one fatal error that quotes a recording escapes what it quotes.
func TestFatalErrorEscaped(t *testing.T) {
	_, _, err := Read("x.jsonl", strings.NewReader("{\"type\":\"start\",\"schema_version\":99,\"version\":\"v9\u009b2J\"}\n"))
	if err == nil {
		t.Fatal("no error for a newer schema")
	}
	if perr := texttest.Printable(err.Error()); perr != nil || !strings.Contains(err.Error(), `v9\u009b2J`) {
		t.Errorf("error %q: %v", err, perr)
	}
}
