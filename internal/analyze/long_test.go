// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
	"time"
)

// writeLong writes a recording of about size bytes: the incident fixture's start record, then
// its intervals over and over with increasing seq and time, and no summary (the heavier case:
// the report is the sum of the intervals). It stands for a daemon's recording of days.
func writeLong(fixture []byte, w io.Writer, size int64) {
	lines := bytes.Split(fixture, []byte("\n"))
	var tails [][]byte
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte(`{"type":"interval"`)) {
			i := bytes.Index(l, []byte(`,"duration_ms"`))
			tails = append(tails, l[i:])
		}
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	n, _ := bw.Write(append(lines[0], '\n'))
	written := int64(n)
	at := incidentStart
	for seq := 1; written < size; seq++ {
		at = at.Add(time.Second)
		m, err := fmt.Fprintf(bw, `{"type":"interval","time":"%s","seq":%d%s`+"\n", at.Format(time.RFC3339Nano), seq, tails[seq%len(tails)])
		if err != nil {
			return // the reader stopped
		}
		written += int64(m)
	}
	bw.Flush()
}

// heapAfterReading reads a generated recording of size bytes and returns the live heap it
// leaves, with the recording still referenced.
func heapAfterReading(t *testing.T, size int64) (uint64, *Recording) {
	pr, pw := io.Pipe()
	fixture := readFixture(t, "incident.jsonl")
	go func() {
		writeLong(fixture, pw, size)
		pw.Close()
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec, _, err := Read("long.jsonl", pr)
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return max(after.HeapAlloc, before.HeapAlloc) - before.HeapAlloc, rec
}

// What analyze keeps of a recording does not grow with its length: six times the input
// leaves about the same heap, bounded by the timeline's points, not the file.
func TestMemoryBoundedByReport(t *testing.T) {
	small, rs := heapAfterReading(t, 16<<20)
	big, rb := heapAfterReading(t, 96<<20)
	t.Logf("heap kept: %d KiB after 16 MiB (%d lines), %d KiB after 96 MiB (%d lines)", small>>10, rs.Lines, big>>10, rb.Lines)
	if big > small+8<<20 {
		t.Errorf("heap kept after 96 MiB is %d KiB, after 16 MiB %d KiB: it grows with the file", big>>10, small>>10)
	}
	runtime.KeepAlive(rs)
	runtime.KeepAlive(rb)
}

var longRecording = flag.String("long-recording", "", "write a generated recording of -long-size bytes to this file (for measuring analyze)")
var longSize = flag.Int64("long-size", 600<<20, "size of the -long-recording file")

// TestWriteLongRecording writes a long recording for measuring analyze's memory and speed
// (docs/analyze.md): go test -run TestWriteLongRecording -long-recording /tmp/long.jsonl.
func TestWriteLongRecording(t *testing.T) {
	if *longRecording == "" {
		t.Skip("only with -long-recording FILE")
	}
	f, err := os.Create(*longRecording)
	if err != nil {
		t.Fatal(err)
	}
	writeLong(readFixture(t, "incident.jsonl"), f, *longSize)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
