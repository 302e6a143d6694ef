// SPDX-License-Identifier: Apache-2.0

package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/droptrace/droptrace/internal/assemble"
	"github.com/droptrace/droptrace/internal/enrich"
	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/interval"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sample"
)

func (s *Session) run(ctx context.Context) (*record.Interval, error) {
	start := s.start
	first, err := s.read()
	if err != nil {
		return nil, err
	}
	if first.SoftnetErr == nil {
		start.SoftnetColumns = first.Softnet.Columns
	} else {
		s.log.Warn("softnet_stat unreadable: backlog and squeeze checks are unavailable", "err", first.SoftnetErr)
	}
	start.Time = record.Time(s.now())
	s.emit(func(k Sink) error { return k.Start(start) })
	// A start record that cannot be written is held and written by the next flush that can.
	if err := s.flush(); err != nil {
		if fatal := (FatalError{}); errors.As(err, &fatal) {
			return nil, err
		}
		s.noteWrite(err)
	}
	var wg sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(context.Background())
	if s.tr != nil && s.tr.HasEvents() {
		wg.Go(func() { s.events.run(bgCtx, s.tr, s.log, first.TracerReadNs) })
	}
	wg.Go(func() { s.sysctl.run(bgCtx) })

	var deadline <-chan time.Time
	if s.cfg.Duration > 0 {
		timer := time.NewTimer(s.cfg.Duration)
		defer timer.Stop()
		deadline = timer.C
	}
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()

	var total totals
	prev := first
	seq := 0
	var runErr error
	step := func() {
		cur, err := s.step(prev, seq+1, &total)
		if err != nil {
			runErr = err
			return
		}
		prev = cur
		seq++
		s.noteWrite(s.flush())
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-ticker.C:
			step()
			if runErr != nil {
				break loop
			}
		}
	}
	// Drain events already in the ring buffer before the last interval, so that the summary's
	// event counts cover what was written.
	stopBackground()
	wg.Wait()
	if runErr == nil {
		// The programs stop inside the last read: a drop then either counts everywhere (by
		// reason, and as an event sent or lost) or nowhere, even mid-storm.
		if s.tr != nil {
			s.src.QuiesceNext(s.tr.Detach)
		}
		// Every namespace is read at the end, so the summary's deltas span the session.
		s.src.ReadAllNext()
		step() // the partial last interval
	}
	// Counts shifted between intervals by a read cancel out over the session, except at its
	// first and last reads: those are all the summary may differ by.
	summary := total.summary(s.now(), interval.AddSlack(first.Moved, prev.Moved), s.availability())
	s.finish(summary, &total.ev)
	// The drop records the last flush wrote or lost: no interval record counted them.
	if written, failed := s.events.writeCounts(); written+failed > 0 {
		t := &summary.Tracer
		t.EventsWritten = record.AddSat(t.EventsWritten, written)
		t.EventsWriteFailed = record.AddSat(t.EventsWriteFailed, failed)
		summary.LostEvents = record.AddSat(summary.LostEvents, failed)
	}
	// Only over the whole session do sent and written line up: whatever BPF sent that was not
	// written by the end (the drain is bounded) is lost too, and said so.
	if t := &summary.Tracer; t.EventsSent > t.EventsWritten+t.EventsWriteFailed {
		t.EventsUnread = t.EventsSent - t.EventsWritten - t.EventsWriteFailed
		summary.LostEvents += t.EventsUnread
	}
	s.emit(func(k Sink) error { return k.Summary(summary) })
	s.noteWrite(s.flushSummary())
	return summary, runErr
}

// summaryRetry is how long the end of a session waits for the output to take the summary
// (a full disk freed meanwhile): long enough for a cleanup to run, short enough for a stop.
const summaryRetry = 5 * time.Second

// flushSummary flushes the summary, trying again for up to s.summaryRetry while writes fail.
func (s *Session) flushSummary() error {
	deadline := time.Now().Add(s.summaryRetry)
	for {
		err := s.flush()
		if err == nil || !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// noteWrite logs when writing records starts and stops failing: a full disk shows in the log
// once, not once per record. What is not written is counted by the records sink
// (lost_records); the session goes on tracing and serving metrics.
func (s *Session) noteWrite(err error) {
	switch {
	case err != nil && !s.writeFailing:
		s.writeFailing = true
		s.log.Error("cannot write records: counting them as lost (lost_records) until a write succeeds; tracing goes on", "err", err)
	case err == nil && s.writeFailing:
		s.writeFailing = false
		s.log.Info("writing records again")
	}
}

// step reads the kernel, writes the interval record since prev and adds it to total.
func (s *Session) step(prev *sample.Sample, seq int, total *totals) (*sample.Sample, error) {
	s.sysctl.refresh()
	changes, nc, stale := s.sysctl.take()
	cur, err := s.read()
	if err != nil {
		return nil, err
	}
	d := interval.Diff(prev, cur, s.names.Reason)
	d.Evidence.StaleRuns = stale
	in := s.static
	in.Type, in.Seq, in.Time = record.TypeInterval, seq, s.now()
	in.Events = s.events.take()
	in.Sysctl, in.SysctlChanges = nc, changes
	rec := assemble.Record(d, in, s.names, s.avail.NetRx.OK)
	rec.Checks = assemble.Checks(rec, &d.Evidence, s.availability())
	total.add(rec, &d.Evidence)
	s.finish(rec, &d.Evidence)
	s.emit(func(k Sink) error { return k.Interval(rec) })
	return cur, nil
}

// read samples every source. Unreadable /proc files and namespaces are that interval's loss,
// said in its checks (see sample.Reader.Read); the session goes on. A failed listing is
// logged too, since it can hide a namespace's drops without a check to say so.
func (s *Session) read() (*sample.Sample, error) {
	sm, err := s.src.Read()
	if err != nil {
		return nil, err
	}
	if sm.NetnsErr != nil {
		s.log.Warn("network namespaces not listed this interval; reading those listed before", "err", sm.NetnsErr)
	}
	return sm, nil
}

// finish trims a record to what is written, names the sockets behind its socket-level drops
// and the listeners of the namespaces that counted listen overflows, and explains it.
func (s *Session) finish(rec *record.Interval, ev *interval.Evidence) {
	rec.Trim()
	var listenNS []uint32
	for ino, ns := range ev.Netns {
		if ns.SNMP["TcpExt"]["ListenOverflows"] > 0 {
			listenNS = append(listenNS, ino)
		}
	}
	slices.Sort(listenNS)
	s.owners.Annotate(rec, listenNS, enrich.NetnsFiles(s.src.Namespaces()))
	if s.cfg.Packets != nil {
		s.events.learn(rec.Ports, s.src.Namespaces())
	}
	rec.Verdicts = explain.Explain(s.start, rec)
}

// availability is what each source can tell now: squeeze prediction follows the sysctls.
func (s *Session) availability() assemble.Availability {
	a := s.avail
	a.Predict = s.sysctl.predictable()
	return a
}

// totals is the session so far: the sum of its interval records, before trimming, and the
// evidence their checks rested on.
type totals struct {
	rec record.Interval
	ev  interval.Evidence
}

func (t *totals) add(rec *record.Interval, ev *interval.Evidence) {
	t.rec.Add(rec)
	t.ev.Add(ev)
}

// summary is the session's record: the sum of the intervals, checked again on the sums with
// the slack of the session's first and last reads.
func (t *totals) summary(now time.Time, slack map[reconcile.Key]uint64, avail assemble.Availability) *record.Interval {
	sum := &record.Interval{Header: record.Header{Type: record.TypeSummary}}
	sum.Add(&t.rec)
	sum.Time = record.Time(now)
	ev := t.ev
	ev.Slack = slack
	sum.Checks = assemble.Checks(sum, &ev, avail)
	return sum
}

// emit hands one record to the records sink and the live sink with write, logging failures.
func (s *Session) emit(write func(Sink) error) {
	if s.cfg.Records != nil {
		if err := write(s.cfg.Records); err != nil {
			s.noteWrite(err)
		}
	}
	if s.cfg.Live != nil {
		if err := write(s.cfg.Live); err != nil {
			s.log.Error("cannot draw live view", "err", err)
		}
	}
}

func (s *Session) flush() error {
	var errs []error
	if s.cfg.Packets != nil {
		if err := s.cfg.Packets.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flush packets: %w", err))
		}
	}
	if s.cfg.Records != nil {
		if err := s.cfg.Records.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flush output: %w", err))
		}
	}
	return errors.Join(errs...)
}
