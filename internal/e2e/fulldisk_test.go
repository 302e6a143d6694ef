// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/flood"
	"github.com/droptrace/droptrace/internal/fulldisk"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/rotate"
)

// A full disk under a flood of drop events costs records, counted, never the session: the
// metrics endpoint keeps answering and counts the lost records, the file holds only whole
// lines, writing resumes when space returns, the summary ends the file and says what was
// lost, and the exit status is 3. Plain --output and rotated output alike.
func TestPrivFullDiskKeepsTracing(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"plain", nil},
		{"rotated", []string{"--output-max-size", "64K", "--output-keep", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) { fullDiskSession(t, tc.args...) })
	}
}

func fullDiskSession(t *testing.T, extra ...string) {
	disk := fulldisk.Mount(t, 256<<10)
	// 72 KiB are left for droptrace; the filler's 184 KiB come back later.
	if err := disk.Take(184 << 10); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(disk.Dir, "out.jsonl")
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"--daemon", "--metrics-addr", ":0", "--interval", "100ms", "--events",
		"--output", out, "--ready-file", ready}, extra...)
	cmd := exec.CommandContext(ctx, binary, args...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addr := waitServing(t, stderr, ready)

	// Datagrams to a closed loopback port: a NO_SOCKET drop, and a drop record, each. The
	// flood is bounded by its count, a minute, and stopFlood.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		t.Fatal(err)
	}
	cpu := 0
	for !cpus.IsSet(cpu) {
		cpu++
	}
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(closedUDPPort(t)))
	floodCtx, stopFlood := context.WithCancel(ctx)
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		if _, err := flood.Run(floodCtx, fd, dst, flood.Config{CPU: cpu, Size: 64, Count: 50_000_000, Duration: time.Minute}); err != nil {
			t.Errorf("flood: %v", err)
		}
	}()
	defer func() { stopFlood(); <-flooded }()

	// The disk fills; the endpoint answers every scrape meanwhile and counts what is lost,
	// drops and interval records, over several intervals.
	var lost map[string]float64
	waitUntil(t, stderr, "lost drop and interval records in /metrics", func() bool {
		lost = scrapeLost(t, addr)
		return lost["drop"] > 0 && lost["interval"] >= 3
	})
	stopFlood()
	<-flooded
	// The events queued in the ring buffer are read and lost too; once they are, space can
	// return without a backlog of drops taking it all again.
	waitUntil(t, stderr, "the queued drop events drained", func() bool {
		before := scrapeLost(t, addr)["drop"]
		time.Sleep(500 * time.Millisecond)
		return scrapeLost(t, addr)["drop"] == before
	})

	// Space returns: writing resumes (more than the partial page a full tmpfs still takes).
	size := filesSize(t, out)
	if err := disk.Free(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, stderr, "records written after space returned", func() bool {
		return filesSize(t, out) > size+8<<10
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("droptrace ended with %v, want exit status 3 (records lost); stderr:\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "could not be written to "+out) {
		t.Errorf("the exit message does not say records were lost; stderr:\n%s", stderr)
	}

	recs := wholeLines(t, out)
	sum := recs[len(recs)-1]
	if sum.Type != record.TypeSummary {
		t.Fatalf("the last record is a %q, want the summary; stderr:\n%s", sum.Type, stderr)
	}
	tr := sum.Tracer
	if sum.LostRecords["drop"] == 0 || sum.LostRecords["drop"] != tr.EventsWriteFailed {
		t.Errorf("summary lost_records %v, events_write_failed %d: want drops lost, the same count", sum.LostRecords, tr.EventsWriteFailed)
	}
	if sum.LostRecords["interval"] < 3 {
		t.Errorf("summary lost_records %v, want the interval records lost while the disk was full", sum.LostRecords)
	}
	// (Not compared with events_sent: a drop anywhere on the host during the session's first
	// read can land on either side of it, and other tests' floods may be running.)
	// What the interval records written say was lost is in the summary's count.
	carried := map[string]uint64{}
	drops := uint64(0)
	for _, r := range recs {
		switch r.Type {
		case record.TypeInterval:
			record.AddCounts(carried, r.LostRecords)
		case record.TypeDrop:
			drops++
		}
	}
	if carried["drop"] == 0 || carried["interval"] == 0 {
		t.Errorf("the interval records written after the loss carry lost_records %v, want drops and intervals", carried)
	}
	for typ, n := range carried {
		if n == 0 || n > sum.LostRecords[typ] {
			t.Errorf("interval records carry %d lost %s records, the summary %d", n, typ, sum.LostRecords[typ])
		}
	}
	if len(extra) == 0 && drops != tr.EventsWritten {
		t.Errorf("%d drop lines, events_written %d", drops, tr.EventsWritten)
	}
	// Logged when writes start failing and when they succeed again, not per record. (A full
	// tmpfs still takes writes that fit the file's last page, so there may be a few of each.)
	if n := strings.Count(stderr.String(), "cannot write records"); n == 0 || n > 100 || !strings.Contains(stderr.String(), "writing records again") {
		t.Errorf("the failure is logged %d times, want a few, and the recovery; stderr:\n%s", n, stderr)
	}
}

// filesSize is the bytes in path and its rotated files.
func filesSize(t *testing.T, path string) int64 {
	t.Helper()
	names, err := rotate.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, name := range names {
		if st, err := os.Stat(name); err == nil {
			n += st.Size()
		}
	}
	return n
}

// lostRecord is the part of a record this test reads.
type lostRecord struct {
	Type        string            `json:"type"`
	LostRecords map[string]uint64 `json:"lost_records"`
	Tracer      record.Tracer     `json:"tracer"`
}

// wholeLines reads the records of path and of its rotated files, oldest first, failing on a
// line that is not a whole JSON record.
func wholeLines(t *testing.T, path string) []lostRecord {
	t.Helper()
	names, err := rotate.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []lostRecord
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s ends inside a line: %q", name, b[max(0, len(b)-80):])
		}
		for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var r lostRecord
			if err := json.Unmarshal([]byte(l), &r); err != nil || r.Type == "" {
				t.Fatalf("%s line %d is not a whole record (%v): %.200q", name, i+1, err, l)
			}
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	return recs
}

// scrapeLost is droptrace_lost_records_total by type.
func scrapeLost(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for k, v := range scrapeFamilies(t, addr, "droptrace_lost_records_total") {
		out[strings.TrimSuffix(strings.TrimPrefix(k, "droptrace_lost_records_total{type="), "}")] = v
	}
	return out
}

// waitUntil polls cond; the deadline only ends a hung test.
func waitUntil(t *testing.T, stderr *syncBuffer, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 60s; stderr:\n%s", what, stderr)
		}
	}
}
