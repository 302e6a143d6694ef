// SPDX-License-Identifier: Apache-2.0

package session

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
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
