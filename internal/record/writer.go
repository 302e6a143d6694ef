// SPDX-License-Identifier: Apache-2.0

package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// Writer writes records as JSON lines. It is safe for concurrent use: interval records and
// drop events come from different goroutines.
type Writer struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	enc *json.Encoder
	buf []byte // a drop line being built
	tc  timeCache
	n   uint64
}

// NewWriter buffers output to w; call Flush to push it out.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &Writer{bw: bw, enc: enc}
}

// Write appends one record of any type and its newline; drops take the Drop fast path.
func (w *Writer) Write(v any) error {
	if d, ok := v.(*Drop); ok {
		return w.Drop(d)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enc.Encode(v); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	w.n++
	return nil
}

// Drop appends one drop record. One line per dropped packet under a flood: encoding/json's
// reflection would be most of droptrace's CPU time, so drops are encoded by hand, byte for
// byte the same.
func (w *Writer) Drop(d *Drop) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(d.appendJSON(w.buf[:0], &w.tc), '\n')
	if _, err := w.bw.Write(w.buf); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	w.n++
	return nil
}

// Start appends the start record.
func (w *Writer) Start(r *Start) error { return w.Write(r) }

// Interval appends an interval record.
func (w *Writer) Interval(r *Interval) error { return w.Write(r) }

// Summary appends the summary record.
func (w *Writer) Summary(r *Interval) error { return w.Write(r) }

// Flush writes buffered records to the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bw.Flush()
}

// Records is how many records were written.
func (w *Writer) Records() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
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
