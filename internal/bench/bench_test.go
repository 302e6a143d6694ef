// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// comm with spaces and a ')' of its own; utime 250 and stime 50 ticks.
	line := "1234 (drop trace) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 100 1000 200\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("CPU %s, want %s", got, want)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1 2")); err == nil {
		t.Error("short stat line parsed")
	}
}

func TestParseStatus(t *testing.T) {
	st := "Name:\tdroptrace\nVmPeak:\t 1000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n"
	m, err := parseStatus([]byte(st))
	if err != nil {
		t.Fatal(err)
	}
	if m.HWM != 40<<20 || m.RSS != 20<<20 {
		t.Errorf("%+v", m)
	}
	// A zombie's status has no memory lines.
	if _, err := parseStatus([]byte("Name:\tx\nState:\tZ (zombie)\n")); err == nil {
		t.Error("status without VmHWM parsed")
	}
}

func TestRowsRatiosPerRound(t *testing.T) {
	// Round 2's host is slower for every mode alike: per-round ratios stay 0.9, while a ratio
	// of the medians would not.
	rep := &Report{}
	for r, base := range []float64{100, 50, 100} {
		for m, f := range map[Mode]float64{ModeNone: 1, ModeAggregate: 0.9} {
			rep.Trials = append(rep.Trials, Trial{Workload: WorkloadDrop, Mode: m, Round: r,
				Sent: uint64(base * f * 1000), Elapsed: time.Second, FloodCPU: time.Second})
		}
	}
	rows := rep.Rows()
	if len(rows) != 2 || rows[0].Mode != ModeNone || rows[1].Mode != ModeAggregate {
		t.Fatalf("rows %+v", rows)
	}
	a := rows[1]
	if a.Ratio < 0.8999 || a.Ratio > 0.9001 || a.RatioMin < 0.8999 || a.RatioMax > 0.9001 {
		t.Errorf("aggregate ratio %.4f [%.4f-%.4f], want 0.9", a.Ratio, a.RatioMin, a.RatioMax)
	}
	var out bytes.Buffer
	rep.Print(&out)
	if !strings.Contains(out.String(), "MISSED drop: aggregate ratio 0.900 >= 0.97") {
		t.Errorf("verdicts:\n%s", out.String())
	}
}

func TestAccounted(t *testing.T) {
	ok := SummaryCounts{Drops: 10, DropRecords: 4, Written: 4, Lost: 6}
	if err := ok.Accounted(true); err != nil {
		t.Error(err)
	}
	short := SummaryCounts{Drops: 10, DropRecords: 4, Written: 4, Lost: 5}
	if short.Accounted(true) == nil {
		t.Error("a drop neither written nor lost passed")
	}
	file := SummaryCounts{Drops: 10, DropRecords: 3, Written: 4, Lost: 6}
	if file.Accounted(true) == nil {
		t.Error("a written drop missing from the file passed")
	}
}

func TestReadRecordingRejectsCutLines(t *testing.T) {
	dir := t.TempDir()
	interval := func(seq int) string {
		return fmt.Sprintf(`{"type":"interval","time":"2026-01-01T00:00:0%d.000000000Z","seq":%d}`+"\n", seq, seq)
	}
	start := `{"type":"start","time":"2026-01-01T00:00:00.000000000Z","schema_version":1}` + "\n"
	drop := `{"type":"drop","time":"2026-01-01T00:00:00.500000000Z","reason":"NO_SOCKET"}` + "\n"
	summary := `{"type":"summary","time":"2026-01-01T00:00:03.000000000Z","drops":{"NO_SOCKET":1},"lost_events":0,"tracer":{"events_written":1}}` + "\n"
	good := start + drop + interval(1) + summary
	p := filepath.Join(dir, "good.jsonl")
	os.WriteFile(p, []byte(good), 0o644)
	rec, err := ReadRecording(p)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Drops != 1 || rec.Lines != 4 || rec.Intervals != 1 || TotalDrops(rec.Summary) != 1 {
		t.Errorf("%+v", rec)
	}
	// want is what the error must say: the file, and the line when one is at fault.
	for name, tc := range map[string]struct{ body, want string }{
		"cut":          {good[:len(good)-20], "bad.jsonl:4: last line cut off"},
		"no summary":   {start + drop + interval(1), "bad.jsonl: no summary record"},
		"not JSON":     {start + `{"type":"drop",` + "\n" + interval(1) + summary, "bad.jsonl:2: not JSON"},
		"unknown":      {good + `{"type":"bogus","time":"2026-01-01T00:00:01Z"}` + "\n", "bad.jsonl:5: unknown record type"},
		"interval gap": {start + interval(1) + interval(3) + summary, "bad.jsonl:3: interval 2 is missing"},
		"no start":     {drop + interval(1) + summary, "bad.jsonl: no start record"},
		"nothing":      {start + drop, "bad.jsonl: no interval or summary record"},
	} {
		p := filepath.Join(dir, "bad.jsonl")
		os.WriteFile(p, []byte(tc.body), 0o644)
		_, err := ReadRecording(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
	if _, err := ReadRecording(filepath.Join(dir, "missing.jsonl")); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("missing file: error %v", err)
	}
}

// The floods send only to 127.0.0.1 and stop at their bound.
func TestPrivFloodBounded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: pinning and SO_RCVBUFFORCE need root")
	}
	port, err := ClosedPort()
	if err != nil {
		t.Fatal(err)
	}
	before, err := ReadUDP()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Flood(context.Background(), FloodConfig{CPU: 0, Port: port, Duration: 10 * time.Second, Max: 1000, Batch: 64})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 1000 {
		t.Errorf("sent %d, want exactly the bound of 1000", r.Sent)
	}
	if r.CPU <= 0 {
		t.Errorf("flood thread CPU time %s", r.CPU)
	}
	after, err := ReadUDP()
	if err != nil {
		t.Fatal(err)
	}
	// Other traffic on the host may add to NoPorts; it cannot take away from it.
	if d := after.Sub(before); d.NoPorts < 1000 {
		t.Errorf("Udp NoPorts moved by %d for 1000 datagrams to a closed port", d.NoPorts)
	}

	sink, err := NewSink(1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if _, err := Flood(context.Background(), FloodConfig{CPU: 0, Port: sink.Port, Duration: 10 * time.Second, Max: 500}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); sink.Received() < 500 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if sink.Received() != 500 {
		t.Errorf("sink read %d of 500 datagrams", sink.Received())
	}
	if _, err := Flood(context.Background(), FloodConfig{Port: port}); err == nil {
		t.Error("a flood without a duration was accepted")
	}
}

// Every mode of a default run has a row label, and the --pcap row sits next to the --events
// rows, its account checked as theirs is.
func TestPcapModeIsARowNextToEvents(t *testing.T) {
	for _, m := range AllModes {
		if modeLabel[m] == "" {
			t.Errorf("mode %q has no row label", m)
		}
	}
	i := slices.Index(AllModes, ModePcap)
	if i < 0 || AllModes[i-1] != ModeEventsLimited || !ModePcap.streams() {
		t.Errorf("modes %v: want pcap after events-limited, its events accounted", AllModes)
	}
}
