// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/droptrace/droptrace/internal/record"
)

// A usage error leaves an existing recording byte for byte as it was: every flag is checked
// before any output is opened.
func TestUsageErrorLeavesOutputUntouched(t *testing.T) {
	for _, extra := range [][]string{
		{"--live", "maybe"},
		{"--output-max-size", "1M", "--output-keep", "-1"},
		{"--daemon", "--live", "on"},
		{"--interval", "1ns"},
		{"--output-max-size", "1M", "--output-keep", "1000000"},
		{"--metrics-addr", "9000"},
	} {
		path := filepath.Join(t.TempDir(), "existing.jsonl")
		content := []byte(`{"type":"start"}` + "\n")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--output", path}, extra...)
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		got, err := os.ReadFile(path)
		if code != 2 || err != nil || !bytes.Equal(got, content) {
			t.Errorf("droptrace %v: exit %d (%q), file %q %v; want exit 2 and the file unchanged", args, code, errb.String(), got, err)
		}
		if _, err := os.Lstat(path + ".1"); err == nil {
			t.Errorf("droptrace %v: the file was rotated", args)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root (files owned by root and by nobody, a session); run make test as root")
	}
}

// plantedDir is a directory the user nobody can write, and a root-owned file elsewhere that
// nobody would like root to overwrite.
func plantedDir(t *testing.T) (dir, victim string, content []byte) {
	t.Helper()
	dir = t.TempDir()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	victim = filepath.Join(t.TempDir(), "victim")
	content = []byte("root's file\n")
	if err := os.WriteFile(victim, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, victim, content
}

// A link planted at --output, --pcap or --ready-file, or a file of another user there, is refused with
// exit 2 and a message naming the path and what was expected; the link's target is unchanged.
func TestPrivOutputRefusesPlantedFiles(t *testing.T) {
	needRoot(t)
	session := []string{"--counters-only", "--live", "off", "--duration", "100ms"}
	for _, tc := range []struct {
		name, flag, want string
		extra            []string
		nobodysFile      bool
	}{
		{"link at --output", "--output", "is a symbolic link", nil, false},
		{"link at rotated --output", "--output", "is a symbolic link", []string{"--output-max-size", "1M"}, false},
		{"nobody's file at --output", "--output", "is owned by uid 65534", nil, true},
		{"link at --pcap", "--pcap", "is a symbolic link", []string{"--output", "/dev/null"}, false},
		{"link at rotated --pcap", "--pcap", "is a symbolic link", []string{"--output-max-size", "1M"}, false},
		{"nobody's file at --pcap", "--pcap", "is owned by uid 65534", nil, true},
		{"link at --ready-file", "--ready-file", "is a symbolic link", []string{"--output", "/dev/null"}, false},
		{"nobody's file at --ready-file", "--ready-file", "is owned by uid 65534", []string{"--output", "/dev/null"}, true},
	} {
		dir, victim, content := plantedDir(t)
		path := filepath.Join(dir, "planted")
		if tc.nobodysFile {
			victim = path
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Symlink(victim, path); err != nil {
			t.Fatal(err)
		}
		args := append(append(append([]string{}, session...), tc.flag, path), tc.extra...)
		if tc.flag == "--pcap" {
			// --pcap needs BPF; the file is refused before anything is loaded.
			args = slices.DeleteFunc(args, func(a string) bool { return a == "--counters-only" })
		}
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		msg := errb.String()
		if code != 2 || !strings.Contains(msg, path) || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "want a regular file owned by root") {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 naming %s, %q and what is expected", tc.name, code, msg, path, tc.want)
		}
		if got, err := os.ReadFile(victim); err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s: %s now %q, %v; want it unchanged", tc.name, victim, got, err)
		}
	}
}

// A new --output is 0600; a stale ready file is removed at start, written (our pid) once the
// session is ready and removed at exit.
func TestPrivOutputModeAndReadyFile(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out, ready := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "ready")
	if err := os.WriteFile(ready, []byte("stale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var saw []byte
	readyHook = func() { saw, _ = os.ReadFile(ready) }
	defer func() { readyHook = nil }()
	var stdout, errb bytes.Buffer
	code := run([]string{"--counters-only", "--live", "off", "--duration", "100ms", "--output", out, "--ready-file", ready}, &stdout, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := fmt.Sprintf("%d\n", os.Getpid()); string(saw) != want {
		t.Errorf("ready file once ready: %q; want our pid %q, not the stale file", saw, want)
	}
	if _, err := os.Lstat(ready); !os.IsNotExist(err) {
		t.Errorf("ready file after exit: %v; want it removed", err)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() == 0 {
		t.Errorf("%s: %v %v; want a recording of mode 0600", out, st, err)
	}
}

// fullDisk fails every write, as a full filesystem.
type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// Records lost to a failed write make the session's end exit 3, not 0 (it ran to its end)
// nor 1 (nothing failed but the output), with a message that counts them by type.
func TestLostRecordsExitStatus(t *testing.T) {
	w := record.NewWriter(fullDisk{})
	if err := lostError(w, "out.jsonl"); err != nil || exitCode(err) == exitLost {
		t.Fatalf("nothing lost: %v", err)
	}
	w.Drop(&record.Drop{Header: record.Header{Type: record.TypeDrop}})
	w.Summary(&record.Interval{Header: record.Header{Type: record.TypeSummary}})
	closeRecords(w, slog.New(slog.NewTextHandler(io.Discard, nil)))
	err := lostError(w, "out.jsonl")
	if !errors.Is(err, errRecordsLost) || exitCode(err) != 3 {
		t.Fatalf("lostError = %v (exit %d), want errRecordsLost and 3", err, exitCode(err))
	}
	if want := "2 records could not be written to out.jsonl (1 drop, 1 summary)"; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q, want it to say %q", err, want)
	}
	if exitCode(usagef("x")) != 2 || exitCode(errors.New("x")) != 1 {
		t.Error("usage and failure exit statuses changed")
	}
}
