// SPDX-License-Identifier: Apache-2.0

// Package analyze reads droptrace recordings (JSON lines, docs/jsonl.md) and reports on them
// offline: totals and rates, reasons, locations, per-CPU tables, a per-interval timeline, the
// checks that did not match and verdicts re-derived with the live session's own rules
// (internal/explain). Several recordings can be compared, e.g. before and after a tuning
// change, as text, as one JSON document (docs/analyze.md) or as an SVG chart.
//
// A recording is evidence from an incident, often from a session that was killed: it is read
// as far as it can be, and every line that cannot be used is reported with its line number
// rather than failing the whole file. Only what leaves nothing to analyze is fatal (see Read).
package analyze

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/textfmt"
)

// Warning is a problem that did not stop the analysis: a line that could not be used, or
// something about the recording the reader should know before trusting the numbers.
type Warning struct {
	File string `json:"file"`
	// Line is the 1-based line number; 0 when the warning is about the whole file.
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// String is the warning for a person, escaped (textfmt.Terminal): a message may quote the
// recording, and the file name is anyone's.
func (w Warning) String() string {
	if w.Line > 0 {
		return textfmt.Terminal(fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Message))
	}
	return textfmt.Terminal(fmt.Sprintf("%s: %s", w.File, w.Message))
}

// Recording is what could be read of one file.
type Recording struct {
	File      string
	Start     *record.Start
	Intervals []*record.Interval
	// Summary is nil when the session did not end cleanly (killed, crashed, disk full).
	Summary *record.Interval
	// DropEvents counts drop records (written with --events); they are not kept.
	DropEvents int
	// Lines is how many lines were read, BadLines how many of them could not be used.
	Lines, BadLines int
	// Truncated is set when the last line was cut off mid-record.
	Truncated bool
}

// Limits that keep a damaged or wrong file from exhausting memory or burying the report.
var (
	// maxLine is far beyond any record droptrace writes (a summary of a 512-CPU host is well
	// under a megabyte), so a longer "line" is a binary or concatenated file. A variable for
	// tests.
	maxLine = 64 << 20
)

// maxLineWarnings is how many bad lines are listed one by one per file; the rest are counted
// in one more warning.
const maxLineWarnings = 20

// Read reads one recording from r; name is the file name used in messages.
//
// Fatal, returned as the error (there is nothing to analyze, or the file cannot be read
// correctly): an I/O error, no start record, a second start record (two recordings
// concatenated: split them), a schema_version newer than this reader, and no interval or
// summary record at all.
//
// Warnings, returned with the recording (the line is skipped, reading continues): a line that
// is not JSON, has no or an unknown type, has fields of the wrong type or is too long; a last
// line cut off mid-record; records before the start record or intervals after the summary;
// a second summary; gaps in the interval sequence.
func Read(name string, r io.Reader) (*Recording, []Warning, error) {
	rd := &reader{rec: &Recording{File: name}, br: bufio.NewReaderSize(r, 1<<20)}
	if err := rd.read(); err != nil {
		return nil, nil, err
	}
	rec := rd.rec
	if rd.suppressed > 0 {
		rd.warnFile("%d more bad lines not listed (%d of %d lines could not be used)", rd.suppressed, rec.BadLines, rec.Lines)
	}
	if rec.Start == nil {
		return nil, nil, fmt.Errorf("%s: no start record in %d lines: not a droptrace recording, or its first line is damaged", name, rec.Lines)
	}
	if len(rec.Intervals) == 0 && rec.Summary == nil {
		return nil, nil, fmt.Errorf("%s: no interval or summary record: nothing to analyze (the session ended before its first interval)", name)
	}
	rd.checkSequence()
	if rec.Summary == nil {
		rd.warnFile("no summary record: the session did not end cleanly (killed?); totals, checks and verdicts are the sum of its %d intervals", len(rec.Intervals))
	}
	return rec, rd.warnings, nil
}

type reader struct {
	rec        *Recording
	br         *bufio.Reader
	warnings   []Warning
	suppressed int
	// lines of the intervals, for messages about the sequence.
	ivLines []int
	sumLine int
}

func (rd *reader) warnFile(format string, args ...any) {
	rd.warnings = append(rd.warnings, Warning{File: rd.rec.File, Message: fmt.Sprintf(format, args...)})
}

// bad reports an unusable line, listing the first maxLineWarnings.
func (rd *reader) bad(line int, format string, args ...any) {
	rd.rec.BadLines++
	if rd.rec.BadLines > maxLineWarnings {
		rd.suppressed++
		return
	}
	rd.warnings = append(rd.warnings, Warning{File: rd.rec.File, Line: line, Message: fmt.Sprintf(format, args...)})
}

// note reports a usable line that is out of place.
func (rd *reader) note(line int, format string, args ...any) {
	rd.warnings = append(rd.warnings, Warning{File: rd.rec.File, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (rd *reader) read() error {
	for n := 1; ; n++ {
		line, complete, tooLong, err := rd.nextLine()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: line %d: %w", rd.rec.File, n, err)
		}
		if len(line) == 0 && !tooLong && errors.Is(err, io.EOF) {
			return nil
		}
		rd.rec.Lines = n
		switch {
		case tooLong:
			rd.bad(n, "line longer than %d bytes skipped: not a droptrace record", maxLine)
		default:
			if fatal := rd.parse(n, line, complete); fatal != nil {
				return fatal
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// nextLine returns the next line without its newline. complete is false for a last line that
// has no newline; tooLong is set (and the line discarded) past maxLine.
func (rd *reader) nextLine() (line []byte, complete, tooLong bool, err error) {
	var buf []byte
	for {
		frag, err := rd.br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(frag) > maxLine {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, frag...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return buf, false, tooLong, err
		case tooLong:
			return nil, true, true, nil
		}
		return bytes.TrimSuffix(buf[:len(buf)-1], []byte{'\r'}), true, false, nil
	}
}

func (rd *reader) parse(n int, line []byte, complete bool) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil // blank lines carry nothing; not worth a warning
	}
	var hdr struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(line, &hdr); err != nil {
		var syn *json.SyntaxError
		if !complete && errors.As(err, &syn) && syn.Offset >= int64(len(line)) {
			// The writer buffers 64 KiB at a time: a killed session leaves a record cut
			// anywhere, and everything before it is whole.
			rd.rec.Truncated = true
			rd.rec.BadLines++
			rd.note(n, "last line cut off after %d bytes (the session was killed?): read up to line %d", len(line), n-1)
			return nil
		}
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			if typ.Field == "" {
				rd.bad(n, "JSON %s, not an object: line skipped", typ.Value)
			} else {
				rd.bad(n, "\"type\" is %s, not a string: line skipped", typ.Value)
			}
			return nil
		}
		rd.bad(n, "not JSON (%v): line skipped", err)
		return nil
	}
	if hdr.Type == nil {
		rd.bad(n, "no \"type\" field: line skipped")
		return nil
	}
	switch *hdr.Type {
	case record.TypeStart:
		var s record.Start
		if err := unmarshal(line, &s); err != nil {
			rd.bad(n, "start record: %v: line skipped", err)
			return nil
		}
		if rd.rec.Start != nil {
			return fmt.Errorf("%s:%d: a second start record: the file holds more than one recording (concatenated?); split it at this line and give each part to analyze", rd.rec.File, n)
		}
		if s.SchemaVersion > record.SchemaVersion {
			return fmt.Errorf("%s:%d: schema_version %d is newer than this droptrace reads (%d): analyze it with the droptrace that wrote it (%s) or a newer one", rd.rec.File, n, s.SchemaVersion, record.SchemaVersion,
				textfmt.Terminal(s.Version)) // the recording's words, in an error said to a person
		}
		if s.SchemaVersion < 1 {
			rd.note(n, "start record has no schema_version: read as version %d", record.SchemaVersion)
		}
		rd.rec.Start = &s
	case record.TypeInterval, record.TypeSummary:
		var iv record.Interval
		if err := unmarshal(line, &iv); err != nil {
			rd.bad(n, "%s record: %v: line skipped", *hdr.Type, err)
			return nil
		}
		switch {
		case rd.rec.Start == nil:
			rd.bad(n, "%s record before the start record: line skipped", *hdr.Type)
		case *hdr.Type == record.TypeSummary && rd.rec.Summary != nil:
			rd.note(n, "a second summary record (the first is on line %d): ignored", rd.sumLine)
		case *hdr.Type == record.TypeSummary:
			rd.rec.Summary, rd.sumLine = &iv, n
		case rd.rec.Summary != nil:
			rd.note(n, "interval record after the summary (line %d): ignored", rd.sumLine)
		default:
			rd.rec.Intervals = append(rd.rec.Intervals, &iv)
			rd.ivLines = append(rd.ivLines, n)
		}
	case record.TypeDrop:
		// Only counted: the interval records already hold every drop (events are sampled),
		// and a long --events recording would not fit in memory.
		var d record.Drop
		if err := unmarshal(line, &d); err != nil {
			rd.bad(n, "drop record: %v: line skipped", err)
			return nil
		}
		rd.rec.DropEvents++
	default:
		rd.bad(n, "unknown record type %q (written by a newer droptrace?): line skipped", *hdr.Type)
	}
	return nil
}

// unmarshal decodes a record and words type errors by field, which is what a person fixing
// or reporting the file needs.
func unmarshal(line []byte, v any) error {
	err := json.Unmarshal(line, v)
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return fmt.Errorf("field %q is %s, want %s", typ.Field, typ.Value, typeName(typ.Type.String()))
	}
	var tm *time.ParseError
	if errors.As(err, &tm) {
		return fmt.Errorf("time %s is not RFC 3339", tm.Value)
	}
	return err
}

func typeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "int"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "record."):
		return "an object"
	}
	return goType
}

// checkSequence reports intervals that are missing or out of order: the timeline then has a
// hole, and a sum of intervals undercounts.
func (rd *reader) checkSequence() {
	prev := 0
	for i, iv := range rd.rec.Intervals {
		switch {
		case iv.Seq == prev+1:
		case iv.Seq > prev+1 && iv.Seq == prev+2:
			rd.note(rd.ivLines[i], "interval %d is missing (before this line): the timeline has a gap", prev+1)
		case iv.Seq > prev+1:
			rd.note(rd.ivLines[i], "intervals %d to %d are missing (before this line): the timeline has a gap", prev+1, iv.Seq-1)
		default:
			rd.note(rd.ivLines[i], "interval %d follows interval %d: out of order or repeated", iv.Seq, prev)
		}
		prev = iv.Seq
	}
}
