// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/record"
)

// daemon is a droptrace running in the background for a test.
type daemon struct {
	cmd    *exec.Cmd
	out    string
	addr   string // the metrics endpoint, when asked for
	stderr *syncBuffer
}

// startDaemon runs droptrace with args until ready (and, with --metrics-addr, serving).
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return startWrapped(t, nil, args...)
}

// startWrapped is startDaemon with droptrace run by a wrapper command (wrapper... binary args...),
// such as setpriv.
func startWrapped(t *testing.T, wrapper []string, args ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{out: filepath.Join(dir, "out.jsonl"), stderr: &syncBuffer{}}
	ready := filepath.Join(dir, "ready")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	argv := append(append(slices.Clone(wrapper), binary, "--output", d.out, "--ready-file", ready, "--live", "off"), args...)
	d.cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cmd.Process.Kill() })
	addrRe := regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)
	wantAddr := slices.Contains(args, "--metrics-addr")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := addrRe.FindStringSubmatch(d.stderr.String()); m != nil {
			d.addr = m[1]
		}
		if _, err := os.Stat(ready); err == nil && (d.addr != "" || !wantAddr) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("droptrace not ready after 60s; stderr:\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the session with SIGTERM and returns its recording; it must exit 0.
func (d *daemon) stop(t *testing.T) recording {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("droptrace exited with %v; stderr:\n%s", err, d.stderr)
	}
	b, err := os.ReadFile(d.out)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, b)
}

// cpuSeconds is the user and system CPU time pid has used.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on every architecture Linux exposes it as
}

// lowestFreeFD is the lowest descriptor number pid has not open: the next one it would get.
func lowestFreeFD(t *testing.T, pid int) uint64 {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	open := map[uint64]bool{}
	for _, e := range ents {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			open[n] = true
		}
	}
	var fd uint64
	for open[fd] {
		fd++
	}
	return fd
}

// Descriptor exhaustion (as a flood of connections causes) makes the /proc reads of the
// intervals it lasts fail: those intervals' checks are unavailable with the reason, the
// session goes on, the intervals after recover, and the summary is written.
func TestPrivDescriptorExhaustionCostsIntervals(t *testing.T) {
	requireRoot(t)
	d := startDaemon(t, "--interval", "200ms")
	pid := d.cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	// A soft limit at the lowest free descriptor: every new open fails with EMFILE, while
	// the descriptors droptrace holds (BPF maps, the output) stay usable. A read in flight
	// can hold a descriptor while it is counted: take the lowest of a few looks.
	lim := lowestFreeFD(t, pid)
	for range 5 {
		lim = min(lim, lowestFreeFD(t, pid))
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: old.Max}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // several intervals
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1000 * time.Millisecond) // and several after
	rec := d.stop(t)
	t.Logf("droptrace stderr:\n%s", d.stderr)

	firstBad, lastBad := -1, -1
	for i, iv := range rec.intervals {
		c := check(t, &iv, "backlog_drops", -1)
		if c.Status == record.StatusUnavailable && strings.Contains(c.Note, "too many open files") {
			if firstBad < 0 {
				firstBad = i
			}
			lastBad = i
		}
	}
	if firstBad < 0 {
		t.Fatalf("no interval's backlog check says the reads failed, in %d intervals", len(rec.intervals))
	}
	if lastBad == len(rec.intervals)-1 {
		t.Errorf("the last interval (%d) still has unreadable counters: no recovery", lastBad+1)
	}
	if !strings.Contains(d.stderr.String(), "too many open files") {
		t.Errorf("the failed reads are not logged")
	}
	t.Logf("intervals %d to %d of %d were unavailable", firstBad+1, lastBad+1, len(rec.intervals))
}

// A flood of 200 concurrent clients scraping as fast as they can does not keep a scraper out:
// every one of its scrapes (one a second, as Prometheus would at a shorter interval) is
// answered 200. How long they took and droptrace's CPU are logged, not asserted.
func TestPrivScrapeFloodStillServesPrometheus(t *testing.T) {
	requireRoot(t)
	d := startDaemon(t, "--interval", "1s", "--metrics-addr", ":0")
	pid := d.cmd.Process.Pid
	url := "http://" + d.addr + "/metrics"
	const clients, flood = 200, 5 * time.Second

	ctx, cancel := context.WithTimeout(t.Context(), flood)
	defer cancel()
	var answered, failed atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				resp, err := c.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					answered.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}

	cpu0, t0 := cpuSeconds(t, pid), time.Now()
	prom := &http.Client{Timeout: 30 * time.Second} // a bound for a hung endpoint, not a measure
	var slowest time.Duration
	scrapes := 0
	tick := time.NewTicker(time.Second)
	for ctx.Err() == nil {
		start := time.Now()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
		resp, err := prom.Do(req)
		if err != nil {
			t.Errorf("scrape %d during the flood: %v", scrapes+1, err)
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("scrape %d during the flood: %s", scrapes+1, resp.Status)
			}
		}
		scrapes++
		slowest = max(slowest, time.Since(start))
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	tick.Stop()
	wg.Wait()
	cpu := (cpuSeconds(t, pid) - cpu0) / time.Since(t0).Seconds()
	rec := d.stop(t)
	t.Logf("%d clients for %s: %d flood requests answered 200, %d refused or failed; %d scrapes, slowest %s; droptrace used %.2f CPUs; %d intervals",
		clients, flood, answered.Load(), failed.Load(), scrapes, slowest.Round(time.Millisecond), cpu, len(rec.intervals))
}
