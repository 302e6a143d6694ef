// SPDX-License-Identifier: Apache-2.0

package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
)

// diskFile is a regular file on a disk with room for space more bytes: a write past it is
// short and fails with ENOSPC, as write(2) on a full filesystem.
type diskFile struct {
	data  []byte
	off   int64
	space int
}

func (f *diskFile) Write(p []byte) (int, error) {
	n := min(len(p), f.space)
	f.data = append(f.data[:f.off], p[:n]...)
	f.off += int64(n)
	f.space -= n
	if n < len(p) {
		return n, syscall.ENOSPC
	}
	return n, nil
}

func (f *diskFile) Truncate(size int64) error {
	f.space += len(f.data) - int(size)
	f.data = f.data[:size]
	return nil
}

func (f *diskFile) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekStart {
		f.off = off
	}
	return f.off, nil
}

// pipe is an output that cannot be truncated: a short write leaves a cut line until the
// Writer completes it.
type pipe struct {
	bytes.Buffer
	space int
}

func (p *pipe) Write(b []byte) (int, error) {
	n := min(len(b), p.space)
	p.Buffer.Write(b[:n])
	p.space -= n
	if n < len(b) {
		return n, syscall.ENOSPC
	}
	return n, nil
}

// lines parses every line of out, failing on a line that is not whole JSON.
func lines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	if len(out) > 0 && out[len(out)-1] != '\n' {
		t.Fatalf("output ends inside a line: %q", out[max(0, len(out)-60):])
	}
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		recs = append(recs, m)
	}
	return recs
}

func testDrop(i int) *Drop {
	return &Drop{Header: Header{Type: TypeDrop}, CPU: uint32(i % 4), Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x9e1", Len: uint32(i)}
}

func TestWriterShortWriteTruncatesBackAndCountsLost(t *testing.T) {
	f := &diskFile{space: 700} // the start record and a few drops, then a cut one
	w := NewWriter(f)
	if err := w.Start(&Start{Header: Header{Type: TypeStart}, Version: "t"}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		w.Drop(testDrop(i))
	}
	err := w.Flush()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush = %v, want ENOSPC", err)
	}
	recs := lines(t, f.data)
	written, lost := w.Counts()
	if written[kindStart] != 1 || written[kindDrop]+lost[kindDrop] != 20 || lost[kindDrop] == 0 {
		t.Fatalf("written %v lost %v", written, lost)
	}
	if uint64(len(recs)) != written.Total() {
		t.Errorf("file has %d lines, Writer counts %d written", len(recs), written.Total())
	}
	if !w.Failing() {
		t.Error("Failing() = false after a failed write")
	}

	// Records written while the disk is full are lost; none is held but the summary.
	if err := w.Interval(&Interval{Header: Header{Type: TypeInterval}, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush on a full disk succeeded")
	}
	if err := w.Summary(&Interval{Header: Header{Type: TypeSummary}}); err == nil {
		w.Flush()
	}
	if len(w.pend) != 1 || w.pend[0].kind != kindSummary {
		t.Fatalf("held %+v, want the summary alone", w.pend)
	}

	// Space returns: the held summary is written, and says what was lost.
	f.space = 1 << 20
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	recs = lines(t, f.data)
	last := recs[len(recs)-1]
	_, lost = w.Counts()
	if last["type"] != TypeSummary {
		t.Fatalf("last record %v, want the summary", last["type"])
	}
	got := last["lost_records"].(map[string]any)
	if got["drop"] != float64(lost[kindDrop]) || got["interval"] != float64(1) {
		t.Errorf("summary lost_records %v, lost %v", got, lost)
	}
	if w.Failing() {
		t.Error("Failing() = true after a write succeeded")
	}
}

// The next interval record written carries what was lost since the last one written,
// including a lost interval record, and the drop that came after space returned but before a
// write succeeded (shed); the one after carries nothing more.
func TestWriterIntervalCarriesLostSinceLastWritten(t *testing.T) {
	f := &diskFile{space: 1 << 20}
	w := NewWriter(f)
	interval := func(seq int) {
		t.Helper()
		w.Interval(&Interval{Header: Header{Type: TypeInterval}, Seq: seq})
		w.Flush()
	}
	interval(1)
	f.space = 0
	for i := range 5 {
		w.Drop(testDrop(i))
	}
	interval(2) // lost, with the 5 drops
	f.space = 1 << 20
	w.Drop(testDrop(9))
	interval(3)
	interval(4)
	recs := lines(t, f.data)
	var seqs []float64
	var carried []any
	for _, r := range recs {
		if r["type"] == TypeInterval {
			seqs = append(seqs, r["seq"].(float64))
			carried = append(carried, r["lost_records"])
		}
	}
	if len(seqs) != 3 || seqs[1] != 3 {
		t.Fatalf("intervals written %v, want 1, 3, 4", seqs)
	}
	want := map[string]any{"drop": float64(6), "interval": float64(1)}
	if c, _ := carried[1].(map[string]any); len(c) != 2 || c["drop"] != want["drop"] || c["interval"] != want["interval"] {
		t.Errorf("interval 3 lost_records %v, want %v", carried[1], want)
	}
	if carried[0] != nil || carried[2] != nil {
		t.Errorf("intervals 1 and 4 lost_records %v %v, want none", carried[0], carried[2])
	}
}

// An output that cannot be truncated keeps a cut line until the rest of its record is
// written, first, when space returns: no line is split and none is written twice.
func TestWriterCompletesCutLineWhenItCannotTruncate(t *testing.T) {
	p := &pipe{space: 300}
	w := NewWriter(p)
	for i := range 10 {
		w.Drop(testDrop(i))
	}
	err := w.Flush()
	if !errors.Is(err, ErrPartialLine) {
		t.Fatalf("Flush = %v, want ErrPartialLine", err)
	}
	if len(w.pend) != 1 || !w.pend[0].cut {
		t.Fatalf("held %+v, want the cut record's rest", w.pend)
	}
	p.space = 1 << 20
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Drop(testDrop(10))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	recs := lines(t, p.Bytes())
	written, lost := w.Counts()
	if uint64(len(recs)) != written[kindDrop] || written[kindDrop]+lost[kindDrop] != 11 {
		t.Errorf("%d lines, written %v lost %v", len(recs), written, lost)
	}
	if recs[len(recs)-1]["len"] != float64(10) {
		t.Errorf("last line %v, want the drop written after space returned", recs[len(recs)-1])
	}
}

// While the disk is full the Writer holds at most one buffer of records, however many come.
func TestWriterMemoryBoundedWhileFull(t *testing.T) {
	f := &diskFile{}
	w := NewWriter(f)
	for i := range 100000 {
		w.Drop(testDrop(i))
		if len(w.buf) > bufSize {
			t.Fatalf("after %d drops the Writer holds %d bytes", i+1, len(w.buf))
		}
	}
	w.Flush()
	if _, lost := w.Counts(); lost[kindDrop] != 100000 {
		t.Errorf("lost %v, want every drop", lost)
	}
	w.Abandon()
	if len(w.pend) != 0 {
		t.Errorf("Abandon left %d records", len(w.pend))
	}
}

// Space that returns goes to the summary, not to drop events that keep coming: while writes
// fail, drops are counted lost without being buffered.
func TestWriterSummaryBeforeDropsWhenSpaceReturns(t *testing.T) {
	f := &diskFile{}
	w := NewWriter(f)
	for i := range 2000 {
		w.Drop(testDrop(i))
	}
	w.Flush()
	if !w.Failing() {
		t.Fatal("writes on a full disk did not fail")
	}
	f.space = 4096 // room for the summary, not for a buffer of drops
	for i := range 2000 {
		w.Drop(testDrop(i))
	}
	if err := w.Summary(&Interval{Header: Header{Type: TypeSummary}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("the summary did not fit the space that returned: %v", err)
	}
	recs := lines(t, f.data)
	if len(recs) != 1 || recs[0]["type"] != TypeSummary {
		t.Fatalf("file holds %d records, want the summary alone", len(recs))
	}
	lost, _ := recs[0]["lost_records"].(map[string]any)
	if lost["drop"] != float64(4000) {
		t.Errorf("summary lost_records %v, want every one of the 4000 drops", lost)
	}
}
