// SPDX-License-Identifier: Apache-2.0

package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/enrich"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sample"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// recordSink keeps interval records and the summary, and ends the session after n intervals.
type recordSink struct {
	n         int
	cancel    context.CancelFunc
	intervals []*record.Interval
	summary   *record.Interval
}

func (r *recordSink) Start(*record.Start) error { return nil }
func (r *recordSink) Drop(*record.Drop) error   { return nil }
func (r *recordSink) Flush() error              { return nil }
func (r *recordSink) Summary(s *record.Interval) error {
	r.summary = s
	return nil
}
func (r *recordSink) Interval(rec *record.Interval) error {
	r.intervals = append(r.intervals, rec)
	if len(r.intervals) == r.n {
		r.cancel()
	}
	return nil
}

// procFixture is a root with a /proc that has softnet_stat and softirqs, of 2 CPUs.
func procFixture(t *testing.T) (root, softnetPath string) {
	t.Helper()
	root = t.TempDir()
	softnetPath = filepath.Join(root, "proc/net/softnet_stat")
	for dst, src := range map[string]string{
		softnetPath:                          "../softnet/testdata/6.18-2cpu.txt",
		filepath.Join(root, "proc/softirqs"): "../softirqs/testdata/6.18-2cpu.txt",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, softnetPath
}

// A namespace listing that fails with "too many open files" and a /proc file that vanishes for
// one read cost the intervals that read them, which say why; the session goes on, the
// intervals after recover, and the summary is written.
func TestTransientReadErrorsCostOneInterval(t *testing.T) {
	root, softnetPath := procFixture(t)
	// Reads: 1 is the session's first, 2 ends interval 1, and so on. Read 2 finds neither
	// the namespaces nor softnet_stat; read 3 finds both again.
	reads := 0
	list := func() ([]netns.NS, error) {
		reads++
		switch reads {
		case 2:
			if err := os.Rename(softnetPath, softnetPath+".away"); err != nil {
				t.Error(err)
			}
			return nil, syscall.EMFILE
		case 3:
			if err := os.Rename(softnetPath+".away", softnetPath); err != nil {
				t.Error(err)
			}
		}
		return []netns.NS{}, nil
	}
	fsys := hostfs.New(root)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sink := &recordSink{n: 4, cancel: cancel}
	var logs bytes.Buffer
	s := testSession()
	s.cfg = Config{Interval: time.Millisecond, Records: sink}
	s.log = slog.New(slog.NewTextHandler(&logs, nil))
	s.start = &record.Start{}
	s.sysctl = newSysctlWatch(fsys, slog.New(slog.NewTextHandler(io.Discard, nil)), sysctl.NetCore{}, reconcile.Availability{OK: true}, nil)
	s.events = newEventWriter(sink, s.names, &enrich.Ifnames{})
	s.src = sample.NewReader(sample.Config{FS: fsys, ListNetns: list})

	summary, err := s.run(ctx)
	if err != nil {
		t.Fatalf("session ended with %v; log:\n%s", err, &logs)
	}
	if summary == nil || sink.summary == nil {
		t.Fatal("no summary written")
	}
	if len(sink.intervals) < 4 {
		t.Fatalf("%d intervals", len(sink.intervals))
	}
	// Interval 1 read no softnet_stat at its end, interval 2 none at its start.
	for i, rec := range sink.intervals[:2] {
		c := checkOf(t, rec, reconcile.CheckBacklog, -1)
		if c.Status != record.StatusUnavailable || !strings.Contains(c.Note, "softnet_stat unreadable") {
			t.Errorf("interval %d backlog check: %+v, want unavailable saying softnet_stat was unreadable", i+1, c)
		}
	}
	for i, rec := range sink.intervals[2:] {
		if c := checkOf(t, rec, reconcile.CheckBacklog, -1); c.Status == record.StatusUnavailable {
			t.Errorf("interval %d backlog check: %+v, want it back", i+3, c)
		}
	}
	if !strings.Contains(logs.String(), "too many open files") {
		t.Errorf("the failed listing is not logged:\n%s", &logs)
	}
}

// fullOutput fails every write with ENOSPC while full is set.
type fullOutput struct {
	bytes.Buffer
	full bool
}

func (o *fullOutput) Write(p []byte) (int, error) {
	if o.full {
		return 0, syscall.ENOSPC
	}
	return o.Buffer.Write(p)
}

// fillingSink writes records with a record.Writer to out, makes out full for intervals
// from..to-1, and ends the session after n intervals.
type fillingSink struct {
	*record.Writer
	out         *fullOutput
	from, to, n int
	seen        int
	cancel      context.CancelFunc
}

func (f *fillingSink) Interval(r *record.Interval) error {
	f.seen++
	f.out.full = f.seen >= f.from && f.seen < f.to
	if f.seen == f.n {
		f.cancel()
	}
	return f.Writer.Interval(r)
}

// An output that cannot be written (a full disk) costs the records it could not take,
// counted, not the session: it goes on, writes again when space returns, and ends with a
// summary that says what was lost.
func TestFailedWritesDoNotEndSession(t *testing.T) {
	root, _ := procFixture(t)
	fsys := hostfs.New(root)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &fullOutput{}
	sink := &fillingSink{Writer: record.NewWriter(out), out: out, from: 2, to: 4, n: 6, cancel: cancel}
	var logs bytes.Buffer
	s := testSession()
	s.cfg = Config{Interval: time.Millisecond, Records: sink}
	s.log = slog.New(slog.NewTextHandler(&logs, nil))
	s.start = &record.Start{Header: record.Header{Type: record.TypeStart}}
	s.sysctl = newSysctlWatch(fsys, slog.New(slog.NewTextHandler(io.Discard, nil)), sysctl.NetCore{}, reconcile.Availability{OK: true}, nil)
	s.events = newEventWriter(sink, s.names, &enrich.Ifnames{})
	s.src = sample.NewReader(sample.Config{FS: fsys, ListNetns: func() ([]netns.NS, error) { return []netns.NS{}, nil }})

	if _, err := s.run(ctx); err != nil {
		t.Fatalf("session ended with %v; log:\n%s", err, &logs)
	}
	var seqs []int
	var last map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if m["type"] == record.TypeInterval {
			seqs = append(seqs, int(m["seq"].(float64)))
		}
		last = m
	}
	// Intervals 2 and 3 were lost; 4 says so.
	if len(seqs) < 4 || seqs[0] != 1 || seqs[1] != 4 {
		t.Fatalf("intervals written %v, want 1, then 4 on", seqs)
	}
	if last["type"] != record.TypeSummary {
		t.Fatalf("last record is %v, want the summary", last["type"])
	}
	if lost, _ := last["lost_records"].(map[string]any); lost["interval"] != float64(2) {
		t.Errorf("summary lost_records %v, want 2 intervals", last["lost_records"])
	}
	if n := strings.Count(logs.String(), "cannot write records"); n != 1 {
		t.Errorf("the failure is logged %d times, want once:\n%s", n, &logs)
	}
	if !strings.Contains(logs.String(), "writing records again") {
		t.Errorf("the recovery is not logged:\n%s", &logs)
	}
}

// fatalSink fails its first Flush with a FatalError.
type fatalSink struct{ recordSink }

func (fatalSink) Flush() error { return FatalError{Err: errors.New("cannot write ready file")} }

// A sink's FatalError after the start record (a ready file that cannot be written) ends the
// session, unlike a write of records that fails.
func TestFatalSinkErrorEndsSession(t *testing.T) {
	root, _ := procFixture(t)
	fsys := hostfs.New(root)
	s := testSession()
	sink := &fatalSink{}
	s.cfg = Config{Interval: time.Millisecond, Records: sink}
	s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	s.start = &record.Start{}
	s.src = sample.NewReader(sample.Config{FS: fsys, ListNetns: func() ([]netns.NS, error) { return []netns.NS{}, nil }})
	if _, err := s.run(t.Context()); !errors.As(err, &FatalError{}) {
		t.Fatalf("run = %v, want the sink's FatalError", err)
	}
}
