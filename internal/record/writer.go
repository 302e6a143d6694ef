// SPDX-License-Identifier: Apache-2.0

package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// bufSize is how many bytes of records the Writer holds before it writes them out.
const bufSize = 64 << 10

// The record types a Writer counts, as indices of its counters.
const (
	kindStart = iota
	kindInterval
	kindDrop
	kindSummary
	nKinds
)

var kindNames = [nKinds]string{TypeStart, TypeInterval, TypeDrop, TypeSummary}

// Counts are records by type: those written, or those that could not be.
type Counts [nKinds]uint64

// Map is the non-zero counts by record type, as lost_records writes them; nil when none.
func (l *Counts) Map() map[string]uint64 {
	var m map[string]uint64
	for k, n := range l {
		if n > 0 {
			if m == nil {
				m = map[string]uint64{}
			}
			m[kindNames[k]] = n
		}
	}
	return m
}

// Each calls f with every record type and its count, zero or not, in a fixed order.
func (l *Counts) Each(f func(typ string, n uint64)) {
	for k, n := range l {
		f(kindNames[k], n)
	}
}

// Drops is the drop records of l.
func (l *Counts) Drops() uint64 { return l[kindDrop] }

// Total is the records of every type.
func (l *Counts) Total() uint64 {
	var t uint64
	for _, n := range l {
		t = AddSat(t, n)
	}
	return t
}

// Writer writes records as JSON lines. It is safe for concurrent use: interval records and
// drop events come from different goroutines.
//
// A write that fails (a full disk) costs records, never the file's shape or the session: the
// records not written are counted lost by type (Counts, and lost_records in the next interval
// record written and in the summary) and dropped, so memory stays bounded while the disk is
// full; only the start and summary records, one line each, are held and written again by
// the next write. Bytes of a record cut by a short write are taken back (truncated) when the
// output is a regular file, so that the file holds whole lines only; when they cannot be
// taken back, the rest of that record is written first at the next try, which completes the
// line. Writing resumes at the next record that fills the buffer, or the next Flush.
//
// While writes fail, drop records are counted lost without being buffered, until a write
// succeeds again: space that comes back goes first to the interval and summary records, which
// are what a reader needs, not to a backlog of drop events that would fill it again.
type Writer struct {
	mu      sync.Mutex
	out     io.Writer
	buf     []byte    // whole lines not yet written
	pend    []pending // the records in buf, in order
	enc     *json.Encoder
	scratch bytes.Buffer // a record being encoded
	tc      timeCache
	n       uint64

	written, lost Counts
	reported      Counts // lost counts carried by interval records written
	failing       bool   // the latest write failed
}

// pending is one record in the buffer: its type, length and, for an interval record, the
// lost counts it reports.
type pending struct {
	size   int32
	kind   uint8
	report *Counts
	// cut says that the record's first bytes are already in the file, so that it must be
	// written whatever its type: only its rest is in the buffer.
	cut bool
}

// NewWriter buffers output to w; call Flush to push it out.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{out: w, buf: make([]byte, 0, bufSize+4<<10)}
	wr.enc = json.NewEncoder(&wr.scratch)
	wr.enc.SetEscapeHTML(false)
	return wr
}

// Write appends one record of any type and its newline; drops take the Drop fast path. The
// error is that of a write of buffered records that failed: its records are counted lost
// (Counts).
func (w *Writer) Write(v any) error {
	switch r := v.(type) {
	case *Drop:
		return w.Drop(r)
	case *Interval:
		if r.Type == TypeSummary {
			return w.Summary(r)
		}
		return w.Interval(r)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.encode(kindStart, v, nil) // the only other type: held like the start record
}

// encode appends v, of kind k, to the buffer; w.mu is held.
func (w *Writer) encode(k int, v any, report *Counts) error {
	w.scratch.Reset()
	if err := w.enc.Encode(v); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	return w.add(k, w.scratch.Bytes(), report)
}

// add appends one line of kind k; w.mu is held.
func (w *Writer) add(k int, line []byte, report *Counts) error {
	w.buf = append(w.buf, line...)
	return w.added(k, len(line), report)
}

// added records the line of size bytes just appended to the buffer, and writes the buffer out
// once it is full; w.mu is held. The buffer holds at most bufSize bytes and one line.
func (w *Writer) added(k, size int, report *Counts) error {
	w.pend = append(w.pend, pending{kind: uint8(k), size: int32(size), report: report})
	if len(w.buf) >= bufSize {
		return w.flush()
	}
	return nil
}

// Drop appends one drop record. One line per dropped packet under a flood: encoding/json's
// reflection would be most of droptrace's CPU time, so drops are encoded by hand, byte for
// byte the same.
func (w *Writer) Drop(d *Drop) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing {
		w.lost[kindDrop]++
		return nil
	}
	start := len(w.buf)
	w.buf = append(d.appendJSON(w.buf, &w.tc), '\n')
	return w.added(kindDrop, len(w.buf)-start, nil)
}

// Start appends the start record.
func (w *Writer) Start(r *Start) error { return w.Write(r) }

// Interval appends an interval record; its lost_records adds the records lost since the last
// interval record that was written (r itself is not changed).
func (w *Writer) Interval(r *Interval) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	rep := w.lost
	var since Counts
	for k := range since {
		since[k] = rep[k] - w.reported[k]
	}
	c := *r
	c.LostRecords = withLost(r.LostRecords, &since)
	return w.encode(kindInterval, &c, &rep)
}

// withLost is the counts a record carries plus those of l, in a new map.
func withLost(carried map[string]uint64, l *Counts) map[string]uint64 {
	return AddCounts(AddCounts(nil, carried), l.Map())
}

// Summary appends the summary record; its lost_records adds the records lost over the
// session. Records still buffered are written first, so that the count covers them.
func (w *Writer) Summary(r *Interval) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.flush()
	c := *r
	c.LostRecords = withLost(r.LostRecords, &w.lost)
	if eerr := w.encode(kindSummary, &c, nil); err == nil {
		err = eerr
	}
	return err
}

// Flush writes buffered records to the underlying writer. Its error says records were lost
// (or, for a start or summary record, are held for the next try).
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flush()
}

// Abandon counts the records still held as lost and lets them go: the output is closing and
// a write will not be tried again.
func (w *Writer) Abandon() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.pend {
		w.lost[p.kind]++
	}
	w.buf, w.pend = w.buf[:0], w.pend[:0]
}

// ErrPartialLine is returned when a record cut by a short write could not be taken back:
// its rest is held and written first by the next write, to complete the line.
var ErrPartialLine = errors.New("a record was cut by a short write and could not be truncated back")

// flush writes the buffer; w.mu is held. What is not written is counted and dropped, except
// the start and summary records and the rest of a record already cut in the file.
func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.out.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err == nil {
		w.commit(len(w.pend))
		w.buf, w.pend = w.buf[:0], w.pend[:0]
		w.failing = false
		return nil
	}
	w.failing = true
	err = fmt.Errorf("write records: %w", err)
	// Records wholly before byte n are in the file.
	done, off := 0, 0
	for done < len(w.pend) && off+int(w.pend[done].size) <= n {
		off += int(w.pend[done].size)
		done++
	}
	w.commit(done)
	rest := w.pend[done:]
	cutRest := -1 // bytes of a cut record left to write, when it cannot be taken back
	if n > off {
		if terr := w.takeBack(int64(n - off)); terr != nil {
			cutRest = int(rest[0].size) - (n - off)
			err = errors.Join(err, fmt.Errorf("%w: %w", ErrPartialLine, terr))
		}
	}
	// Keep what must be written still, in order, in place.
	keepBuf, keepPend := w.buf[:0], w.pend[:0]
	for i, p := range rest {
		line := w.buf[off : off+int(p.size)]
		off += int(p.size)
		switch {
		case i == 0 && cutRest >= 0:
			line = line[len(line)-cutRest:]
			p.size, p.cut = int32(cutRest), true
		case p.cut || p.kind == kindStart || p.kind == kindSummary:
		default:
			w.lost[p.kind]++
			continue
		}
		keepBuf = append(keepBuf, line...) // never ahead of line: memmove is safe
		keepPend = append(keepPend, p)
	}
	w.buf, w.pend = keepBuf, keepPend
	return err
}

// commit counts the first n pending records as written; w.mu is held.
func (w *Writer) commit(n int) {
	for _, p := range w.pend[:n] {
		w.written[p.kind]++
		w.n++
		if p.report != nil {
			w.reported = *p.report
		}
	}
}

// takeBack truncates the last n bytes written, a cut record, off a regular file and moves
// the offset back to where they began, so that the next write starts a line.
func (w *Writer) takeBack(n int64) error {
	f, ok := w.out.(interface {
		Truncate(int64) error
		Seek(int64, int) (int64, error)
	})
	if !ok {
		return errors.New("output cannot be truncated")
	}
	end, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if err := f.Truncate(end - n); err != nil {
		return err
	}
	_, err = f.Seek(end-n, io.SeekStart)
	return err
}

// Records is how many records were written.
func (w *Writer) Records() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Counts returns the records written and lost so far, by type.
func (w *Writer) Counts() (written, lost Counts) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written, w.lost
}

// Failing says whether the latest write failed.
func (w *Writer) Failing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failing
}

// timeCache holds the formatted date and time of one second: the drops of a flood share it.
type timeCache struct {
	sec    int64
	prefix []byte // "2006-01-02T15:04:05."
}

// appendTime appends t as Time.MarshalJSON does, without the quotes.
func (c *timeCache) appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if sec := t.Unix(); sec != c.sec || c.prefix == nil {
		c.sec = sec
		c.prefix = t.Truncate(time.Second).AppendFormat(c.prefix[:0], "2006-01-02T15:04:05.")
	}
	b = append(b, c.prefix...)
	ns := t.Nanosecond()
	var digits [9]byte
	for i := 8; i >= 0; i-- {
		digits[i] = byte('0' + ns%10)
		ns /= 10
	}
	b = append(b, digits[:]...)
	return append(b, 'Z')
}

// appendJSON appends d as encoding/json (with HTML escaping off, as the Writer sets it) would
// encode it, without the newline. A test holds the two equal for every field of Drop.
func (d *Drop) appendJSON(b []byte, tc *timeCache) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, d.Type)
	b = append(b, `,"time":"`...)
	b = tc.appendTime(b, time.Time(d.Time))
	b = append(b, `","cpu":`...)
	b = strconv.AppendUint(b, uint64(d.CPU), 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, d.Reason)
	b = append(b, `,"reason_code":`...)
	b = strconv.AppendUint(b, uint64(d.ReasonCode), 10)
	b = append(b, `,"location":`...)
	b = appendString(b, d.Location)
	b = append(b, `,"ifindex":`...)
	b = strconv.AppendUint(b, uint64(d.Ifindex), 10)
	if d.Ifname != "" {
		b = append(b, `,"ifname":`...)
		b = appendString(b, d.Ifname)
	}
	b = append(b, `,"netns":`...)
	b = strconv.AppendUint(b, uint64(d.Netns), 10)
	b = append(b, `,"len":`...)
	b = strconv.AppendUint(b, uint64(d.Len), 10)
	for _, f := range [...]struct{ key, v string }{{`,"l3":`, d.L3}, {`,"l4":`, d.L4}, {`,"src":`, d.Src}, {`,"dst":`, d.Dst}} {
		if f.v != "" {
			b = append(b, f.key...)
			b = appendString(b, f.v)
		}
	}
	if d.Sport != 0 {
		b = append(b, `,"sport":`...)
		b = strconv.AppendUint(b, uint64(d.Sport), 10)
	}
	if d.Dport != 0 {
		b = append(b, `,"dport":`...)
		b = strconv.AppendUint(b, uint64(d.Dport), 10)
	}
	return append(b, '}')
}

// appendString quotes s as JSON. Names from BTF, kallsyms and interfaces are plain ASCII; any
// other string takes encoding/json's own escaping, so the output never differs from it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			var q bytes.Buffer
			enc := json.NewEncoder(&q)
			enc.SetEscapeHTML(false)
			enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(q.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
