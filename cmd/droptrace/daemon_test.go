// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/rotate"
)

// The fleet flags are checked before anything is loaded or bound.
func TestBadFleetFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--daemon"}, 2, "--daemon needs somewhere to put what it sees"},
		{[]string{"--daemon", "--live", "on", "--output", "/dev/null"}, 2, "--daemon has no live view"},
		{[]string{"--output-max-size", "64M"}, 2, "--output-max-size 64M: give --output FILE"},
		// 1K is below --output-max-size's range: the bound is checked before the flags' combination.
		{[]string{"--output-max-size", "1k", "--output", "-"}, 2, "--output-max-size 1K: want 0 (never rotate) or 64K to 1024G"},
		{[]string{"--output-max-size", "1M", "--output", "-"}, 2, "--output-max-size 1M: give --output FILE"},
		{[]string{"--output-max-size", "lots", "--output", "x"}, 2, "want a size such as 64M"},
		{[]string{"--output-keep", "-1", "--output-max-size", "1M", "--output", "x"}, 2, "--output-keep -1: want 0 to 1000"},
		{[]string{"--metrics-addr", "9000", "--output", "/dev/null"}, 2, `--metrics-addr "9000": want host:port`},
		{[]string{"--daemon", "--metrics-addr", ":0", "--events"}, 2, "--events writes drop records"},
		// A well-formed address that cannot be bound is a failure, not a usage error.
		{[]string{"--metrics-addr", "192.0.2.1:9", "--output", "/dev/null"}, 1, "--metrics-addr"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("droptrace %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "64M": 64 << 20, "64m": 64 << 20, "64MiB": 64 << 20, "64MB": 64 << 20,
		"1G": 1 << 30, "500k": 500 << 10, "1KiB": 1024,
	} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "1T", "1.5G", "lots", "99999999999G"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, b)
		}
	}
	for in, want := range map[byteSize]string{0: "0", 64 << 20: "64M", 1 << 30: "1G", 1536: "1536", 3 << 10: "3K"} {
		if got := in.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(in), got, want)
		}
	}
}

// Every rotated file starts with the session's start record and holds whole records only, so
// each file can be read on its own.
func TestRotatedFilesStartWithTheStartRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	rw, err := rotate.Open(path, 4000, 100)
	if err != nil {
		t.Fatal(err)
	}
	w := record.NewWriter(rw)
	sink := rotatingRecords{Writer: w, rot: rw}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	start := &record.Start{Header: record.Header{Type: record.TypeStart, Time: record.Time(t0)}, Kernel: "6.18", Mode: record.ModeFull}
	if err := sink.Start(start); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := 1; i <= n; i++ {
		iv := &record.Interval{Header: record.Header{Type: record.TypeInterval, Time: record.Time(t0.Add(time.Duration(i) * time.Second))},
			Seq: i, Drops: map[string]uint64{"NO_SOCKET": uint64(i)}}
		if err := sink.Interval(iv); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			sink.Flush()
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := rotate.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for line := 0; sc.Scan(); line++ {
			var h record.Interval
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
				t.Fatalf("%s line %d: %v", name, line+1, err)
			}
			switch {
			case line == 0 && h.Type != record.TypeStart:
				t.Errorf("%s starts with a %s record", name, h.Type)
			case line > 0 && h.Type == record.TypeStart:
				t.Errorf("%s has a start record at line %d", name, line+1)
			case h.Type == record.TypeInterval:
				if h.Seq != seq+1 {
					t.Errorf("%s: seq %d after %d", name, h.Seq, seq)
				}
				seq = h.Seq
			}
		}
		if len(b) > 4000 {
			t.Errorf("%s: %d bytes", name, len(b))
		}
	}
	if seq != n || len(names) < 3 {
		t.Errorf("%d intervals in %d files, want %d in several", seq, len(names), n)
	}
}
