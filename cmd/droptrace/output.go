// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/rotate"
	"github.com/droptrace/droptrace/internal/session"
)

// usageError is a flag the user must change: droptrace exits 2 without touching any file.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef is a usageError with a formatted message: what the user reads.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// Exit statuses of a session (docs/security.md#exit-codes).
const (
	exitFailure = 1
	exitUsage   = 2
	// exitLost: the session ran to its end, but records could not all be written.
	exitLost = 3
)

// errRecordsLost is a session that ran to its end but could not write every record (a full
// disk): its recording is incomplete, and its summary says what is missing.
var errRecordsLost = errors.New("records were lost")

// exitCode is the exit status for an error of a session: 2 for what the user must change
// (a bad flag, an output path droptrace refuses to write as root), 3 for records lost, 1 for
// a failure.
func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue) || errors.Is(err, rotate.ErrUnsafe):
		return exitUsage
	case errors.Is(err, errRecordsLost):
		return exitLost
	}
	return exitFailure
}

// lostError says which records w could not write to output, or is nil when it wrote them all.
func lostError(w *record.Writer, output string) error {
	_, lost := w.Counts()
	if lost.Total() == 0 {
		return nil
	}
	var parts []string
	for typ, n := range lost.Map() {
		parts = append(parts, fmt.Sprintf("%d %s", n, typ))
	}
	slices.Sort(parts)
	return fmt.Errorf("%d records could not be written to %s (%s); the recording is incomplete: %w",
		lost.Total(), output, strings.Join(parts, ", "), errRecordsLost)
}

// closeRecords flushes w at exit; records it still cannot write are counted lost (the summary,
// held after the session's own retries), not an error of their own: lostError reports them.
func closeRecords(w *record.Writer, log *slog.Logger) {
	if err := w.Flush(); err != nil {
		w.Abandon()
		log.Error("records not written at exit", "err", err)
	}
}

// checkOutputs checks every flag that says where output goes, before any file is created,
// emptied or written: a usage error must leave an existing recording as it was. tty says
// whether stdout is a terminal.
func checkOutputs(f *flags, tty bool) error {
	if err := f.fleet.check(f); err != nil {
		return usageError{err}
	}
	switch f.live {
	case "auto", "on", "off":
	default:
		return usagef("--live %q: want auto, on or off", f.live)
	}
	if err := f.pcap.check(f, tty); err != nil {
		return err
	}
	// The same decisions trace makes when it opens the sinks.
	records := f.output != "" || (!tty && f.fleet.stdoutRecords() && !f.pcap.stdout())
	live := f.live == "on" || (f.live == "auto" && tty && f.output != "-") || f.fleet.metricsAddr != ""
	if !records && !live && f.pcap.path == "" {
		return usagef("nothing to write: give --output FILE or --live on")
	}
	if f.events && !records && f.pcap.path == "" {
		// Streaming events the view never shows would cost the traced host for nothing.
		what := "--events writes"
		if f.filters.spec.Active() {
			what = "event filters (--reason, --netns, --iface, --port, --proto) select"
		}
		return usagef("%s drop records: give --output FILE (or --output - when stdout is not a terminal)", what)
	}
	return nil
}

// openOutput opens --output FILE without following a link, refusing a file droptrace must
// not write as root (rotate.Create).
func openOutput(path string) (*os.File, error) {
	file, err := rotate.Create(path)
	if err != nil {
		return nil, fmt.Errorf("open --output: %w", err)
	}
	return file, nil
}

// syncClose fsyncs a regular file so a recording survives a crash right after (devices and
// pipes cannot), and closes it.
func syncClose(file *os.File, name string) error {
	if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
		if err := file.Sync(); err != nil {
			file.Close()
			return fmt.Errorf("sync %s: %w", name, err)
		}
	}
	return file.Close()
}

// outputFile says whether --output names a file (not stdout).
func (f *flags) outputFile() bool { return f.output != "" && f.output != "-" }

// readyFile is --ready-file: written (our pid) once the session has read its first counters
// and flushed its start record, removed at exit. It is written as the output is, never
// through a link, in a directory held open from the start.
type readyFile struct {
	dir  *rotate.Dir
	name string
	path string
}

// prepareReadyFile refuses a ready file droptrace must not write and removes a stale one, so
// that whoever waits for it does not take a previous run's file for this one.
func prepareReadyFile(path string) (*readyFile, error) {
	dir, err := rotate.OpenDir(path)
	if err != nil {
		return nil, fmt.Errorf("--ready-file: %w", err)
	}
	r := &readyFile{dir: dir, name: filepath.Base(path), path: path}
	if err := dir.Check(r.name); err != nil {
		dir.Close()
		return nil, fmt.Errorf("--ready-file: %w", err)
	}
	if err := dir.Remove(r.name); err != nil {
		dir.Close()
		return nil, fmt.Errorf("remove stale ready file: %w", err)
	}
	return r, nil
}

func (r *readyFile) write() error {
	f, err := r.dir.Create(r.name)
	if err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d\n", os.Getpid())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write ready file %s: %w", r.path, err)
	}
	if readyHook != nil {
		readyHook()
	}
	return nil
}

// readyHook, when set by a test, runs once the ready file is written: the one moment a test
// can see it without waiting on a session in another process.
var readyHook func()

// remove removes the ready file at exit: a later reader must not take it for a live session.
func (r *readyFile) remove() error {
	err := r.dir.Remove(r.name)
	r.dir.Close()
	return err
}

// readySink writes the ready file when the session first flushes after its start record:
// the moment the session is attached and has read its first counters, with the start record
// already out. A session without records is never flushed, so its live sink writes the file
// at the start record (atStart). The session calls Start and Flush from one goroutine.
type readySink struct {
	session.Sink
	ready   *readyFile
	atStart bool
	started bool
	done    bool
}

func (s *readySink) Start(r *record.Start) error {
	err := s.Sink.Start(r)
	s.started = true
	if s.atStart {
		s.done = true
		if rerr := s.ready.write(); err == nil {
			err = rerr
		}
	}
	return err
}

// Flush writes the ready file also when the records could not be written: the session is
// attached and goes on, and holds its start record until the output takes it. A ready file
// that cannot be written ends the session: whoever waits for it would wait for ever.
func (s *readySink) Flush() error {
	err := s.Sink.Flush()
	if s.started && !s.done {
		s.done = true
		if rerr := s.ready.write(); rerr != nil {
			return errors.Join(err, session.FatalError{Err: rerr})
		}
	}
	return err
}

// Counts are the records sink's (session.Sink does not carry it through the embedding).
func (s *readySink) Counts() (written, lost record.Counts) {
	if c, ok := s.Sink.(interface {
		Counts() (written, lost record.Counts)
	}); ok {
		return c.Counts()
	}
	return written, lost
}
