// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/textfmt/texttest"
)

const fixtures = "../../internal/analyze/testdata/"

func TestAnalyze(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	chart := filepath.Join(dir, "incident.svg")
	code := run([]string{"analyze", "--chart", chart, fixtures + "incident.jsonl"}, &out, &errb)
	if code != 0 || errb.Len() > 0 || !strings.Contains(out.String(), "CRITICAL  budget_squeeze  CPU 2") {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errb.String(), out.String())
	}
	svg, err := os.ReadFile(chart)
	if err != nil || !bytes.HasPrefix(svg, []byte("<?xml")) {
		t.Errorf("chart: %v %.40q", err, svg)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	out.Reset()
	code = run([]string{"analyze", "--format", "json", "--chart", filepath.Join(dir, "cmp.html"), fixtures + "incident.jsonl", fixtures + "tuned.jsonl"}, &out, &errb)
	var doc struct {
		Recordings []json.RawMessage `json:"recordings"`
		Comparison *json.RawMessage  `json:"comparison"`
	}
	if code != 0 || json.Unmarshal(out.Bytes(), &doc) != nil || len(doc.Recordings) != 2 || doc.Comparison == nil {
		t.Errorf("json compare: exit %d, stderr %q, %d recordings", code, errb.String(), len(doc.Recordings))
	}
	if page, err := os.ReadFile(filepath.Join(dir, "cmp.html")); err != nil || !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) {
		t.Errorf("html chart: %v", err)
	}
}

// A killed session's recording is analyzed with a warning: in the report for text, on stderr
// (and in the document) for JSON, whose reader is a program.
func TestAnalyzeTruncated(t *testing.T) {
	data, err := os.ReadFile(fixtures + "incident.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "killed.jsonl")
	if err := os.WriteFile(path, data[:len(data)-500], 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"analyze", path}, &out, &errb); code != 0 || !strings.Contains(out.String(), "cut off") || errb.Len() > 0 {
		t.Errorf("text: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"analyze", "--format", "json", path}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "killed.jsonl:14: last line cut off") {
		t.Errorf("json: exit %d, stderr %q", code, errb.String())
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"analyze"}, 2, "give at least one recording"},
		{[]string{"analyze", "--format", "yaml", "x.jsonl"}, 2, `--format "yaml": want text or json`},
		{[]string{"analyze", "--chart", "x.png", "x.jsonl"}, 2, `--chart "x.png": want a .svg or .html file name`},
		{[]string{"analyze", "--frobnicate"}, 2, "unknown flag: --frobnicate"},
		{[]string{"analyze", "/nonexistent/x.jsonl"}, 1, "open /nonexistent/x.jsonl: no such file or directory"},
		{[]string{"analyze", empty}, 1, "empty.jsonl: no start record in 0 lines"},
		{[]string{"analyze", "--chart", "/nonexistent/c.svg", fixtures + "incident.jsonl"}, 1, "--chart: open /nonexistent/"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("droptrace %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"analyze", "--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "droptrace analyze --chart burst.svg before.jsonl after.jsonl") {
		t.Errorf("analyze --help: %d %q", code, errb.String())
	}
}

// A file name is anyone's, and an I/O error quotes it: what analyze says on stderr is
// escaped, so a name cannot drive the terminal of whoever runs it.
func TestAnalyzeEscapesNames(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, texttest.Hostile+".jsonl")
	empty := filepath.Join(dir, "e"+texttest.Hostile+".jsonl")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{missing, empty} {
		var out, errb bytes.Buffer
		if code := run([]string{"analyze", name}, &out, &errb); code != 1 {
			t.Errorf("%q: exit %d, want 1", name, code)
		}
		if err := texttest.Printable(errb.String()); err != nil || !strings.Contains(errb.String(), `\x1b]0;PWN\x07`) {
			t.Errorf("stderr %q not escaped: %v", errb.String(), err)
		}
	}
}
