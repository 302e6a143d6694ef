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

	"github.com/droptrace/droptrace/internal/rank"
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

// Recording is what could be read of one file. Its interval records are not kept: each is
// folded, as it is read, into Timeline and Sum (fold.go).
type Recording struct {
	File  string
	Start *record.Start
	// Intervals is how many interval records were used.
	Intervals int
	// Timeline has a point per interval, merged past maxPoints (timelineFold).
	Timeline []Point
	// Summary is nil when the session did not end cleanly (killed, crashed, disk full); Sum,
	// the sum of the intervals (intervalSum; nil without intervals), then stands in for it.
	Summary, Sum *record.Interval
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

// Read reads one recording from r as a stream; name is the file name used in messages. What
// is kept does not grow with the length of r (fold.go, docs/analyze.md "Limits").
//
// Fatal, returned as the error (there is nothing to analyze, or the file cannot be read
// correctly): an I/O error, no start record (ErrNotRecording; also when maxGap bytes pass
// before one, e.g. /dev/zero), a second start record (two recordings concatenated: split
// them), a schema_version newer than this reader, and no interval or summary record at all.
//
// Warnings, returned with the recording (the line is skipped, reading continues): a line that
// is not JSON, has no or an unknown type, has fields of the wrong type, values no session
// writes (validInterval, maxNames) or is too long; a last line cut off mid-record; records
// before the start record or intervals after the summary; a second summary; gaps in the
// interval sequence or time going back. After the start record, maxGap bytes without a record
// stop the read with a warning.
func Read(name string, r io.Reader) (*Recording, []Warning, error) {
	rd := &reader{rec: &Recording{File: name}, br: bufio.NewReaderSize(r, 1<<20)}
	if err := rd.read(); err != nil {
		return nil, nil, err
	}
	rec := rd.rec
	if rd.suppressed > 0 {
		rd.warnFile("%d more bad lines not listed (%d of %d lines could not be used)", rd.suppressed, rec.BadLines, rec.Lines)
	}
	if rd.notes > maxLineWarnings {
		rd.warnFile("%d more warnings about records out of place not listed", rd.notes-maxLineWarnings)
	}
	if rec.Start == nil {
		return nil, nil, fmt.Errorf("%s: no start record in %d lines: %w, or its first line is damaged", name, rec.Lines, ErrNotRecording)
	}
	if rec.Intervals == 0 && rec.Summary == nil {
		return nil, nil, fmt.Errorf("%s: no interval or summary record: nothing to analyze (the session ended before its first interval)", name)
	}
	rd.warnings = append(rd.warnings, rd.seqNotes.ws...)
	if rd.seqNotes.more > 0 {
		rd.warnFile("%d more warnings about the interval sequence not listed", rd.seqNotes.more)
	}
	rec.Timeline = rd.timeline.points
	if rd.sum != nil {
		rec.Sum = rd.sum.result()
	}
	if rec.Summary == nil {
		rd.warnFile("no summary record: the session did not end cleanly (killed?); totals, checks and verdicts are the sum of its %d intervals", rec.Intervals)
		if rd.sum.trimmed {
			rd.warnFile("the sum of the intervals keeps %d of each list (the largest call sites, ports and rx_dropped counts, the first checks, devices, IRQs, sysctl and multicast changes): the rest are left out", maxSumEntries)
		}
	}
	lost := map[string]uint64(nil)
	switch {
	case rec.Summary != nil:
		lost = rec.Summary.LostRecords
	case rec.Sum != nil:
		lost = rec.Sum.LostRecords
	}
	if n := rank.Total(lost); n > 0 {
		rd.warnFile("the session could not write %d records (lost_records %s): drop events, intervals or its summary are missing, and every total here is short of what droptrace traced", n, countList(lost))
	}
	return rec, rd.warnings, nil
}

// countList is {"drop": 7120, "interval": 3} as "7120 drop, 3 interval", largest first.
func countList(m map[string]uint64) string {
	var parts []string
	for _, e := range rank.ByCount(m, -1) {
		parts = append(parts, fmt.Sprintf("%d %s", e.Count, e.Key))
	}
	return strings.Join(parts, ", ")
}

// ErrNotRecording is wrapped by the errors for input that is not a droptrace recording.
var ErrNotRecording = errors.New("not a droptrace recording")

// warnList keeps the first maxLineWarnings warnings of a kind and counts the rest, so that
// a long damaged file cannot grow memory with warnings.
type warnList struct {
	ws   []Warning
	more int
}

func (l *warnList) add(w Warning) {
	if len(l.ws) >= maxLineWarnings {
		l.more++
		return
	}
	l.ws = append(l.ws, w)
}

type reader struct {
	rec        *Recording
	br         *bufio.Reader
	warnings   []Warning
	suppressed int
	// notes counts records out of place; seqNotes are the interval sequence's gaps and
	// disorder, listed after the other warnings.
	notes    int
	seqNotes warnList
	sumLine  int
	sum      *intervalSum
	timeline timelineFold
	// prevSeq and prevTime are the last interval's, for the sequence checks.
	prevSeq  int
	prevTime time.Time
	names    names
	// sinceRecord is how many bytes were read since the last record that decoded, used
	// whether parse decoded one from the current line.
	sinceRecord int64
	used        bool
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
	if rd.notes++; rd.notes > maxLineWarnings {
		return
	}
	rd.warnings = append(rd.warnings, Warning{File: rd.rec.File, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (rd *reader) read() error {
	for n := 1; ; n++ {
		line, size, complete, tooLong, err := rd.nextLine()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: line %d: %w", rd.rec.File, n, err)
		}
		if len(line) == 0 && !tooLong && errors.Is(err, io.EOF) {
			return nil
		}
		rd.rec.Lines = n
		rd.used = false
		switch {
		case tooLong:
			rd.bad(n, "line longer than %d bytes skipped: not a droptrace record", maxLine)
		default:
			if fatal := rd.parse(n, line, complete); fatal != nil {
				return fatal
			}
		}
		rd.sinceRecord += size
		if rd.used {
			rd.sinceRecord = 0
		}
		if rd.sinceRecord > maxGap() {
			// /dev/zero, a binary, or a recording followed by something else: reading on
			// would only burn time, and a pipe would never end.
			if rd.rec.Start == nil {
				return fmt.Errorf("%s: no start record in the first %d bytes (%d lines): %w", rd.rec.File, rd.sinceRecord, n, ErrNotRecording)
			}
			rd.warnFile("stopped reading at line %d: %d bytes without a droptrace record since the last one; the rest of the file is not a recording", n, rd.sinceRecord)
			return nil
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// maxGap is how many bytes may pass without a usable record before reading stops: room for
// one line over maxLine, but not two.
func maxGap() int64 { return 2 * int64(maxLine) }

// nextLine returns the next line without its newline. complete is false for a last line that
// has no newline; tooLong is set (and the line discarded) past maxLine.
// size is the bytes consumed, newline included.
func (rd *reader) nextLine() (line []byte, size int64, complete, tooLong bool, err error) {
	var buf []byte
	for {
		frag, err := rd.br.ReadSlice('\n')
		size += int64(len(frag))
		if !tooLong {
			if len(buf)+len(frag) > maxLine {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, frag...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull) && tooLong && size > maxGap():
			// A line without end (/dev/zero): read stops on it, see maxGap.
			return nil, size, true, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return buf, size, false, tooLong, err
		case tooLong:
			return nil, size, true, true, nil
		}
		return bytes.TrimSuffix(buf[:len(buf)-1], []byte{'\r'}), size, true, false, nil
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
			rd.warnings = append(rd.warnings, Warning{File: rd.rec.File, Line: n,
				Message: fmt.Sprintf("last line cut off after %d bytes (the session was killed?): read up to line %d", len(line), n-1)})
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
		rd.used = true
		if err := validCPUs(s.CPUs); err != nil {
			rd.bad(n, "start record: %v: line skipped", err)
			return nil
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
		rd.used = true
		if err := validInterval(&iv); err != nil {
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
			rd.fold(n, &iv)
		}
	case record.TypeDrop:
		// Only counted: the interval records already hold every drop (events are sampled),
		// and a long --events recording would not fit in memory.
		var d record.Drop
		if err := unmarshal(line, &d); err != nil {
			rd.bad(n, "drop record: %v: line skipped", err)
			return nil
		}
		rd.used = true
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

// fold adds an interval to what the reports keep of it, and drops it.
func (rd *reader) fold(n int, iv *record.Interval) {
	if rd.names == nil {
		rd.names = names{}
	}
	if err := rd.names.admit(iv); err != nil {
		rd.bad(n, "interval record: %v: line skipped", err)
		return
	}
	rd.checkSequence(n, iv)
	rd.rec.Intervals++
	if rd.sum == nil {
		rd.sum = newIntervalSum()
	}
	rd.sum.add(iv)
	rd.timeline.add(rd.rec.Start, iv)
}

func (rd *reader) seqNote(line int, format string, args ...any) {
	rd.seqNotes.add(Warning{File: rd.rec.File, Line: line, Message: fmt.Sprintf(format, args...)})
}

// checkSequence reports intervals that are missing or out of order, or whose time goes back:
// the timeline then has a hole, and a sum of intervals undercounts.
func (rd *reader) checkSequence(n int, iv *record.Interval) {
	prev := rd.prevSeq
	switch {
	case iv.Seq == prev+1:
	case iv.Seq > prev+1 && iv.Seq == prev+2:
		rd.seqNote(n, "interval %d is missing (before this line): the timeline has a gap", prev+1)
	case iv.Seq > prev+1:
		rd.seqNote(n, "intervals %d to %d are missing (before this line): the timeline has a gap", prev+1, iv.Seq-1)
	default:
		rd.seqNote(n, "interval %d follows interval %d: out of order or repeated", iv.Seq, prev)
	}
	inOrder := iv.Seq > prev
	rd.prevSeq = iv.Seq
	t := time.Time(iv.Time)
	if inOrder && !rd.prevTime.IsZero() && t.Before(rd.prevTime) {
		rd.seqNote(n, "interval %d ends at %s, before the interval before it (%s): the clock went back, or the lines are out of order",
			iv.Seq, t.UTC().Format(time.RFC3339Nano), rd.prevTime.UTC().Format(time.RFC3339Nano))
	}
	rd.prevTime = t
}
