// SPDX-License-Identifier: Apache-2.0

package sysctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Journal holds the host-wide sysctl lock and records the original value of every sysctl set
// through it before the write, so that processes changing sysctls at the same time never save
// each other's temporary values as originals, and a holder killed before it restored its
// changes (a test timeout) is undone by the next one to take the lock, or by RestoreStale.
type Journal struct {
	f      *os.File // holds the lock; the journal, one "name value" line per change
	failed bool     // a value could not be restored: keep its line for the next holder to retry
}

// Lock takes the host-wide sysctl lock, waiting up to wait for another holder to finish (the
// error then wraps ErrBusy), and first restores what a holder that died journaled.
func Lock(wait time.Duration) (*Journal, error) {
	if err := os.MkdirAll(LockDir, 0o755); err != nil {
		return nil, fmt.Errorf("sysctl lock directory: %w", err)
	}
	f, err := lockFile(LockPath, wait)
	if err != nil {
		return nil, err
	}
	if err := restoreJournal(f); err != nil {
		f.Close()
		return nil, err
	}
	return &Journal{f: f}, nil
}

// RestoreStale restores what a holder that died journaled and did not restore, unless a live
// holder has the lock.
func RestoreStale() error {
	if _, err := os.Stat(LockPath); err != nil {
		return nil // no one ever took the lock since boot
	}
	j, err := Lock(0)
	if errors.Is(err, ErrBusy) {
		return nil
	}
	if err != nil {
		return err
	}
	return j.Close()
}

// Set journals the sysctl's value, then writes value. The returned function writes the
// original back; a holder calls them newest first, then Close.
func (j *Journal) Set(name, value string) (restore func() error, err error) {
	orig, err := Read(name)
	if err != nil {
		return nil, err
	}
	if strings.Contains(orig, "\n") {
		return nil, fmt.Errorf("sysctl %s: a multi-line value cannot be journaled", name)
	}
	if _, err := fmt.Fprintf(j.f, "%s %s\n", name, orig); err != nil {
		return nil, fmt.Errorf("journal sysctl %s: %w", name, err)
	}
	if err := Write(name, value); err != nil {
		return nil, err
	}
	return func() error {
		if err := Write(name, orig); err != nil {
			j.failed = true
			return fmt.Errorf("restore: %w", err)
		}
		return nil
	}, nil
}

// Close empties the journal, unless a value could not be restored (its line stays for the
// next holder to retry), and releases the lock.
func (j *Journal) Close() error {
	if !j.failed {
		if err := j.f.Truncate(0); err != nil {
			j.f.Close()
			return fmt.Errorf("clear sysctl journal: %w", err)
		}
	}
	return j.f.Close()
}

// restoreJournal undoes a dead holder's changes, newest first, and empties the journal. A
// value that cannot be written back is reported but not retried forever.
func restoreJournal(f *os.File) error {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		return fmt.Errorf("read sysctl journal: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var errs []error
	for i := len(lines) - 1; i >= 0; i-- {
		name, value, ok := strings.Cut(lines[i], " ")
		if !ok {
			continue // empty journal, or a line cut short by a crash: its write never happened
		}
		if err := Write(name, value); err != nil {
			errs = append(errs, fmt.Errorf("restore a killed holder's change: %w", err))
		}
	}
	if err := f.Truncate(0); err != nil {
		errs = append(errs, fmt.Errorf("clear sysctl journal: %w", err))
	}
	return errors.Join(errs...)
}
