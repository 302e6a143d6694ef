// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/droptrace/droptrace/internal/analyze"
	"github.com/droptrace/droptrace/internal/textfmt"
)

const analyzeUsage = `droptrace analyze: report on recordings made with --output, on any machine, no root.

Usage:
  droptrace analyze [--format text|json] [--chart FILE.svg|FILE.html] FILE.jsonl [MORE.jsonl...]

Totals and rates, top reasons and locations, a per-CPU table, a per-interval timeline, the
checks that did not match, and verdicts re-derived with this droptrace's rules. With several
files, they are compared side by side first (before/after a tuning change). Lines that cannot
be used are reported with their line number and skipped; a recording cut off mid-line (a
killed session) is read up to its last whole line.

Examples:
  droptrace analyze burst.jsonl
  droptrace analyze --chart burst.svg before.jsonl after.jsonl
  droptrace analyze --format json burst.jsonl | jq '.recordings[0].verdicts'

Flags:
`

func runAnalyze(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("droptrace analyze", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, analyzeUsage)
		fs.PrintDefaults()
	}
	format := fs.String("format", "text", "text (a report to read) or json (one document, see docs/analyze.md)")
	chart := fs.String("chart", "", "also draw per-CPU drops and squeezes and the drop reasons over time into this .svg or .html file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "droptrace analyze: %s (see droptrace analyze --help)\n", textfmt.Terminal(err.Error()))
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "droptrace analyze: --format %q: want text or json\n", *format)
		return 2
	}
	var html bool
	if *chart != "" {
		switch strings.ToLower(filepath.Ext(*chart)) {
		case ".svg":
		case ".html", ".htm":
			html = true
		default:
			fmt.Fprintf(stderr, "droptrace analyze: --chart %q: want a .svg or .html file name\n", *chart)
			return 2
		}
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "droptrace analyze: give at least one recording (FILE.jsonl, as written by droptrace --output)")
		return 2
	}

	var recs []*analyze.Recording
	var warnings []analyze.Warning
	for _, name := range fs.Args() {
		rec, ws, err := readRecording(name)
		if err != nil {
			analyzeError(stderr, err)
			return 1
		}
		recs = append(recs, rec)
		warnings = append(warnings, ws...)
	}
	doc := analyze.NewDocument(recs, warnings)

	if *chart != "" {
		if err := writeChart(*chart, doc, html); err != nil {
			analyzeError(stderr, err)
			return 1
		}
	}
	var err error
	if *format == "json" {
		// The document carries the warnings, but a program reads it: say them to the person.
		for _, w := range warnings {
			fmt.Fprintln(stderr, "droptrace analyze: warning:", w)
		}
		err = analyze.WriteJSON(stdout, doc)
	} else {
		err = analyze.WriteText(stdout, doc)
	}
	if err != nil {
		analyzeError(stderr, err)
		return 1
	}
	return 0
}

// analyzeError says err on stderr, escaped (textfmt.Terminal): it quotes file names, which
// are anyone's, and may quote a recording.
func analyzeError(stderr io.Writer, err error) {
	fmt.Fprintln(stderr, "droptrace analyze:", textfmt.Terminal(err.Error()))
}

func readRecording(name string) (*analyze.Recording, []analyze.Warning, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return analyze.Read(name, f)
}

// writeChart writes to a temporary file renamed into place, so a failed run never leaves a
// half-written chart where the previous one was.
func writeChart(name string, doc *analyze.Document, html bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("--chart: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := analyze.WriteChart(tmp, doc, html); err != nil {
		tmp.Close()
		return fmt.Errorf("--chart %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("--chart: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--chart: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("--chart: %w", err)
	}
	return nil
}
