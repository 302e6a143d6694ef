// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/rotate"
)

// syncBuffer collects a child's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitServing waits until droptrace has written its ready file and logged the address of its
// metrics endpoint, and returns the address.
func waitServing(t *testing.T, stderr *syncBuffer, ready string) string {
	t.Helper()
	addrRe := regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)
	var addr string
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := addrRe.FindStringSubmatch(stderr.String()); m != nil && addr == "" {
			addr = m[1]
		}
		if _, err := os.Stat(ready); err == nil && addr != "" {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("droptrace not ready after 60s; stderr:\n%s", stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// series is one scrape, or what the JSON lines say it must be: "name{k=v,...}" -> value.
type series map[string]float64

func seriesKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k, v := range labels {
		if v != "" {
			keys = append(keys, k+"="+v)
		}
	}
	sort.Strings(keys)
	return name + "{" + strings.Join(keys, ",") + "}"
}

// compared are the metric families checked against the recording.
var compared = []string{
	"droptrace_intervals_total", "droptrace_drops_total",
	"droptrace_net_rx_runs_total", "droptrace_net_rx_kernel_runs_total", "droptrace_net_rx_busy_seconds_total",
	"droptrace_net_rx_packets_total", "droptrace_net_rx_squeezes_total",
	"droptrace_softnet_processed_total", "droptrace_softnet_dropped_total", "droptrace_softnet_time_squeezes_total",
	"droptrace_check_status", "droptrace_lost_events_total", "droptrace_events_written_total", "droptrace_verdicts_total",
}

func scrapeMetrics(t *testing.T, addr string) series {
	t.Helper()
	return scrapeFamilies(t, addr, compared...)
}

// scrapeFamilies scrapes the metric families names; a scrape that fails fails the test.
func scrapeFamilies(t *testing.T, addr string, names ...string) series {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v\n%s", resp.StatusCode, err, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	out := series{}
	for _, name := range names {
		for _, m := range mfs[name].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out[seriesKey(name, labels)] = v
		}
	}
	return out
}

// expected is what a scrape showing the first n intervals of the recording must say, derived
// from the JSON lines alone.
func expected(ivs []record.Interval) series {
	out := series{}
	add := func(name string, v float64, kv ...string) {
		labels := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			labels[kv[i]] = kv[i+1]
		}
		out[seriesKey(name, labels)] += v
	}
	add("droptrace_intervals_total", float64(len(ivs)))
	busyUs := map[int]uint64{}
	for _, iv := range ivs {
		for _, c := range iv.CPUs {
			cpu := strconv.Itoa(c.CPU)
			for reason, l4s := range c.DropsL4 {
				for l4, n := range l4s {
					add("droptrace_drops_total", float64(n), "reason", reason, "cpu", cpu, "l4", l4)
				}
			}
			if n := c.NetRx; n != nil {
				add("droptrace_net_rx_runs_total", float64(n.Runs), "cpu", cpu)
				add("droptrace_net_rx_kernel_runs_total", float64(n.KernelRuns), "cpu", cpu)
				add("droptrace_net_rx_packets_total", float64(n.Packets), "cpu", cpu)
				add("droptrace_net_rx_squeezes_total", float64(n.BudgetSqueezes), "cpu", cpu, "cause", "budget")
				add("droptrace_net_rx_squeezes_total", float64(n.TimeSqueezes), "cpu", cpu, "cause", "time")
				busyUs[c.CPU] += n.BusyUs
			}
			if sn := c.Softnet; sn != nil {
				add("droptrace_softnet_processed_total", float64(sn.Processed), "cpu", cpu)
				add("droptrace_softnet_dropped_total", float64(sn.Dropped), "cpu", cpu)
				add("droptrace_softnet_time_squeezes_total", float64(sn.TimeSqueeze), "cpu", cpu)
			}
		}
		add("droptrace_lost_events_total", float64(iv.Tracer.EventsRateLimited), "cause", "rate_limited")
		add("droptrace_lost_events_total", float64(iv.Tracer.EventsRingbufFull), "cause", "ringbuf_full")
		add("droptrace_lost_events_total", float64(iv.Tracer.EventsWriteFailed), "cause", "write_failed")
		add("droptrace_lost_events_total", 0, "cause", "unread")
		add("droptrace_events_written_total", float64(iv.Tracer.EventsWritten))
		for _, v := range iv.Verdicts {
			add("droptrace_verdicts_total", 1, "id", v.ID, "severity", v.Severity)
		}
	}
	for cpu, us := range busyUs {
		add("droptrace_net_rx_busy_seconds_total", float64(us)/1e6, "cpu", strconv.Itoa(cpu))
	}
	if len(ivs) > 0 {
		for _, c := range ivs[len(ivs)-1].Checks {
			cpu := ""
			if c.CPU != nil {
				cpu = strconv.Itoa(*c.CPU)
			}
			for _, st := range []string{record.StatusMatch, record.StatusMismatch, record.StatusUnavailable} {
				v := 0.0
				if st == c.Status {
					v = 1
				}
				add("droptrace_check_status", v, "check", c.Check, "cpu", cpu, "status", st)
			}
		}
	}
	return out
}

// closedUDPPort is a loopback UDP port nothing listens on (it was free a moment ago).
func closedUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return port
}

// readRotated reads the rotated set of path oldest first; every file must open with the
// session's start record, which is kept once.
func readRotated(t *testing.T, path string, keep int) ([]byte, int) {
	t.Helper()
	names, err := rotate.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > keep+1 {
		t.Errorf("%d rotated files: more than %d old files kept", len(names), keep)
	}
	var all []byte
	var first []byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		var h record.Header
		if err := json.Unmarshal(line, &h); err != nil || h.Type != record.TypeStart {
			t.Errorf("%s does not open with a start record: %.80s", name, line)
		}
		if first == nil {
			first = line
			all = append(all, b...)
			continue
		}
		if !bytes.Equal(line, first) {
			t.Errorf("%s opens with a different start record", name)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s ends inside a line", name)
		}
		all = append(all, rest...)
	}
	return all, len(names)
}

// A daemon with the metrics endpoint, traced while UDP datagrams go to a closed loopback
// port: every scrape, taken while traffic flows and after it stopped, equals the sums of the
// first droptrace_intervals_total interval records of the same session's (rotated) JSON lines.
// A scrape reflects a whole number of intervals, so the comparison is exact whatever the
// timing.
func TestPrivMetricsMatchTheRecording(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	ready := filepath.Join(dir, "ready")
	const keep = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--daemon", "--metrics-addr", ":0", "--interval", "300ms",
		"--output", out, "--output-max-size", "64K", "--output-keep", strconv.Itoa(keep),
		"--events", "--max-event-rate", "200", "--ready-file", ready)
	var stdout bytes.Buffer
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// The endpoint's address is logged; without a host it must be loopback.
	addr := waitServing(t, stderr, ready)
	host, port, _ := net.SplitHostPort(addr)
	if host != "127.0.0.1" {
		t.Fatalf("--metrics-addr :0 listens on %s, want 127.0.0.1", addr)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.2:"+port, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("the endpoint answers on 127.0.0.2:%s: it is not bound to 127.0.0.1 only", port)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Traffic: datagrams to a closed loopback port, each a NO_SOCKET drop in the host's
	// namespace. Scrape while it flows.
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: closedUDPPort(t)}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var scrapes []series
	const sent = 3000
	for i := 0; i < sent; i++ {
		if _, err := conn.WriteTo([]byte("droptrace metrics test"), dst); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i%100 == 99 {
			time.Sleep(50 * time.Millisecond)
		}
		if i == sent/2 {
			scrapes = append(scrapes, scrapeMetrics(t, addr))
		}
	}
	// Then quiet: a few intervals later the counters have stopped moving from our traffic.
	time.Sleep(1200 * time.Millisecond)
	scrapes = append(scrapes, scrapeMetrics(t, addr))

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("droptrace exited with %v after SIGTERM; stderr:\n%s", err, stderr)
	}
	t.Logf("droptrace stderr:\n%s", stderr)
	if stdout.Len() > 0 {
		t.Errorf("the daemon wrote %d bytes to stdout: %.200s", stdout.Len(), stdout.String())
	}
	b, files := readRotated(t, out, keep)
	rec := parse(t, b)
	if files < 2 {
		t.Errorf("%d output files at --output-max-size 64K with %d drop events", files, len(rec.drops))
	}
	t.Logf("%d intervals, %d drop records in %d files", len(rec.intervals), len(rec.drops), files)
	for i, iv := range rec.intervals {
		if iv.Seq != i+1 {
			t.Fatalf("interval %d has seq %d: the rotated files lost or repeated records", i+1, iv.Seq)
		}
	}

	for i, got := range scrapes {
		n := int(got["droptrace_intervals_total{}"])
		if n < 1 || n > len(rec.intervals) {
			t.Fatalf("scrape %d shows %d intervals; the recording has %d", i, n, len(rec.intervals))
		}
		want := expected(rec.intervals[:n])
		for k, v := range want {
			if g, ok := got[k]; !ok && v != 0 || g != v {
				t.Errorf("scrape %d (after %d intervals): %s = %v, the recording says %v", i, n, k, g, v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok && v != 0 {
				t.Errorf("scrape %d (after %d intervals): %s = %v, not in the recording", i, n, k, v)
			}
		}
		var noSocket float64
		for k, v := range got {
			if strings.HasPrefix(k, "droptrace_drops_total{") && strings.Contains(k, "l4=udp") && strings.Contains(k, "reason=NO_SOCKET") {
				noSocket += v
			}
		}
		t.Logf("scrape %d: %d intervals, %v NO_SOCKET udp drops of %d sent, %v lost events (rate-limited)",
			i, n, noSocket, sent, got[`droptrace_lost_events_total{cause=rate_limited}`])
		if i == len(scrapes)-1 {
			// Every datagram is a drop the kernel counted; BPF may miss a few inside NET_RX
			// runs it does not see (net_rx_coverage), never add any.
			if noSocket < sent*9/10 {
				t.Errorf("%v NO_SOCKET udp drops for %d datagrams to a closed port", noSocket, sent)
			}
			if got[`droptrace_lost_events_total{cause=rate_limited}`] == 0 {
				t.Errorf("no rate-limited events at --max-event-rate 200 with %d drops", sent)
			}
		}
	}
}
