// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/droptrace/droptrace/internal/record"
)

var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func startRecord() *record.Start {
	return &record.Start{
		Header: record.Header{Type: record.TypeStart, Time: record.Time(t0)},
		Kernel: "6.18.44-test", HZ: 250, Mode: record.ModeFull, IntervalMs: 1000, Version: "v1.2.3",
		Probes: map[string]string{"skb:kfree_skb": "tp_btf", "napi:napi_poll": "unavailable: no BTF for napi_poll",
			"irq:softirq_entry": "tracepoint", "irq:softirq_exit": "off"},
	}
}

// interval is one interval of a backlog overflow on CPU 1 with RPS from CPU 0.
func interval(seq int, checkStatus string) *record.Interval {
	return &record.Interval{
		Header:     record.Header{Type: record.TypeInterval, Time: record.Time(t0.Add(time.Duration(seq) * time.Second))},
		Seq:        seq,
		DurationMs: 1000,
		Drops:      map[string]uint64{"CPU_BACKLOG": 100, "NO_SOCKET": 3, "NEIGH_FAILED": 1},
		CPUs: []record.CPU{
			{CPU: 0, Drops: map[string]uint64{"CPU_BACKLOG": 100, "NEIGH_FAILED": 1},
				DropsL4: map[string]map[string]uint64{"CPU_BACKLOG": {"udp": 90, "tcp": 10}, "NEIGH_FAILED": {"none": 1}},
				NetRx:   &record.NetRx{Runs: 10, KernelRuns: 11, BusyUs: 1500, MaxRunUs: 40, Polls: 12, Packets: 300},
				Softnet: &record.Softnet{Processed: 300}},
			{CPU: 1, Drops: map[string]uint64{"NO_SOCKET": 3},
				DropsL4: map[string]map[string]uint64{"NO_SOCKET": {"udp": 3}},
				NetRx: &record.NetRx{Runs: 50, KernelRuns: 50, BusyUs: 250000, MaxRunUs: 900 * uint64(seq), Polls: 70, Packets: 4000,
					BudgetSqueezes: 7, TimeSqueezes: 2, OtherPolls: 1, OtherPackets: 5},
				Softnet: &record.Softnet{Processed: 4000, Dropped: 100, TimeSqueeze: 9, ReceivedRPS: 40, FlowLimit: 1, BacklogLen: uint32(seq)}},
		},
		SNMP: map[string]map[string]int64{"Udp": {"NoPorts": 3, "RcvbufErrors": 0}, "Udp6": {"InDatagrams": -5}},
		Checks: []record.Check{
			{Check: "backlog_drops", Traced: ptr[int64](100), Kernel: ptr[int64](100), Status: record.StatusMatch},
			{Check: "time_squeeze", CPU: ptr(1), Traced: ptr[int64](9), Kernel: ptr[int64](9), Status: checkStatus,
				ExplainedBy: map[bool]string{true: "net_rx_coverage"}[checkStatus == record.StatusMismatch]},
			{Check: "udp_no_port", Traced: ptr[int64](3), Kernel: ptr[int64](4), Status: record.StatusMismatch},
		},
		LostEvents: 6,
		Tracer: record.Tracer{EventsSent: 20, EventsRateLimited: 4, EventsRingbufFull: 2, EventsWritten: 20,
			AggMapFull: 1, DropRecursionMisses: 2, NetRxRecursionMisses: 3},
		Sysctl:   &record.Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 2000, NetdevMaxBacklog: 1000 * int64(seq), DevWeight: 64},
		Verdicts: []record.Verdict{{ID: "backlog_overflow", Severity: record.SeverityCritical, CPU: ptr(1)}},
	}
}

func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.Bytes()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse the exposition: %v\n%s", err, body)
	}
	return mfs, body
}

// value is the sample of name with exactly these labels; -1 when there is none.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k := range want {
			if _, ok := got[k]; !ok && want[k] != "" {
				continue next
			}
		}
		for k, v := range got {
			if want[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
		return m.GetUntyped().GetValue()
	}
	return -1
}

func TestCountersAreSumsOfIntervals(t *testing.T) {
	s := New("v1.2.3")
	h := Handler(s, nil)
	for _, err := range []error{s.Start(startRecord()), s.Interval(interval(1, record.StatusMismatch)),
		s.Drop(&record.Drop{Header: record.Header{Type: record.TypeDrop}}), s.Interval(interval(2, record.StatusMatch))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	mfs, body := scrape(t, h)

	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"droptrace_intervals_total", nil, 2},
		{"droptrace_drops_total", []string{"reason", "CPU_BACKLOG", "cpu", "0", "l4", "udp"}, 180},
		{"droptrace_drops_total", []string{"reason", "CPU_BACKLOG", "cpu", "0", "l4", "tcp"}, 20},
		{"droptrace_drops_total", []string{"reason", "NEIGH_FAILED", "cpu", "0", "l4", "none"}, 2},
		{"droptrace_drops_total", []string{"reason", "NO_SOCKET", "cpu", "1", "l4", "udp"}, 6},
		{"droptrace_net_rx_runs_total", []string{"cpu", "1"}, 100},
		{"droptrace_net_rx_kernel_runs_total", []string{"cpu", "0"}, 22},
		{"droptrace_net_rx_busy_seconds_total", []string{"cpu", "1"}, 0.5},
		{"droptrace_net_rx_busy_seconds_total", []string{"cpu", "0"}, 0.003},
		{"droptrace_net_rx_polls_total", []string{"cpu", "1"}, 140},
		{"droptrace_net_rx_packets_total", []string{"cpu", "1"}, 8000},
		{"droptrace_net_rx_squeezes_total", []string{"cpu", "1", "cause", "budget"}, 14},
		{"droptrace_net_rx_squeezes_total", []string{"cpu", "1", "cause", "time"}, 4},
		{"droptrace_net_rx_squeezes_total", []string{"cpu", "0", "cause", "time"}, 0},
		{"droptrace_net_rx_other_polls_total", []string{"cpu", "1"}, 2},
		{"droptrace_net_rx_other_packets_total", []string{"cpu", "1"}, 10},
		{"droptrace_net_rx_max_run_seconds", []string{"cpu", "1"}, 0.0018}, // a high-water mark
		{"droptrace_softnet_processed_total", []string{"cpu", "1"}, 8000},
		{"droptrace_softnet_dropped_total", []string{"cpu", "1"}, 200},
		{"droptrace_softnet_dropped_total", []string{"cpu", "0"}, 0},
		{"droptrace_softnet_time_squeezes_total", []string{"cpu", "1"}, 18},
		{"droptrace_softnet_received_rps_total", []string{"cpu", "1"}, 80},
		{"droptrace_softnet_flow_limit_total", []string{"cpu", "1"}, 2},
		{"droptrace_softnet_backlog_len", []string{"cpu", "1"}, 2}, // a level: the latest
		// Check status: the latest interval's, one 1 and two 0s per check.
		{"droptrace_check_status", []string{"check", "time_squeeze", "cpu", "1", "status", "match"}, 1},
		{"droptrace_check_status", []string{"check", "time_squeeze", "cpu", "1", "status", "mismatch"}, 0},
		{"droptrace_check_status", []string{"check", "time_squeeze", "cpu", "1", "status", "unavailable"}, 0},
		{"droptrace_check_status", []string{"check", "backlog_drops", "cpu", "", "status", "match"}, 1},
		{"droptrace_check_status", []string{"check", "udp_no_port", "cpu", "", "status", "mismatch"}, 1},
		// Mismatches are counted per interval, with their cause.
		{"droptrace_check_mismatches_total", []string{"check", "time_squeeze", "cpu", "1", "explained_by", "net_rx_coverage"}, 1},
		{"droptrace_check_mismatches_total", []string{"check", "udp_no_port", "cpu", "", "explained_by", "none"}, 2},
		{"droptrace_lost_events_total", []string{"cause", "rate_limited"}, 8},
		{"droptrace_lost_events_total", []string{"cause", "ringbuf_full"}, 4},
		{"droptrace_lost_events_total", []string{"cause", "write_failed"}, 0},
		{"droptrace_lost_events_total", []string{"cause", "unread"}, 0},
		{"droptrace_events_sent_total", nil, 40},
		{"droptrace_events_written_total", nil, 40},
		{"droptrace_uncounted_drops_total", []string{"cause", "agg_map_full"}, 2},
		{"droptrace_uncounted_drops_total", []string{"cause", "recursion"}, 4},
		{"droptrace_net_rx_recursion_misses_total", nil, 6},
		{"droptrace_snmp_total", []string{"group", "Udp", "field", "NoPorts"}, 6},
		{"droptrace_snmp_total", []string{"group", "Udp", "field", "RcvbufErrors"}, 0},
		{"droptrace_snmp_total", []string{"group", "Udp6", "field", "InDatagrams"}, 0}, // negative deltas are not subtracted
		{"droptrace_verdicts_total", []string{"id", "backlog_overflow", "severity", "critical"}, 2},
		{"droptrace_sysctl", []string{"name", "netdev_max_backlog"}, 2000},
		{"droptrace_sysctl", []string{"name", "netdev_budget"}, 300},
		{"droptrace_build_info", []string{"version", "v1.2.3", "goversion", "*", "schema_version", "1"}, -2},
		{"droptrace_kernel_info", []string{"release", "6.18.44-test"}, 1},
		{"droptrace_kernel_hz", nil, 250},
		{"droptrace_mode_info", []string{"mode", "full"}, 1},
		{"droptrace_probe_info", []string{"tracepoint", "napi:napi_poll", "attach", "unavailable"}, 1},
		{"droptrace_probe_info", []string{"tracepoint", "irq:softirq_entry", "attach", "tracepoint"}, 1},
		{"droptrace_start_time_seconds", nil, float64(t0.Unix())},
		{"droptrace_last_interval_timestamp_seconds", nil, float64(t0.Unix() + 2)},
	}
	for _, tc := range tests {
		if tc.want == -2 {
			continue // checked below
		}
		if got := value(mfs, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if bi := mfs["droptrace_build_info"]; bi == nil || len(bi.Metric) != 1 || !strings.Contains(bi.Metric[0].String(), "v1.2.3") {
		t.Errorf("build_info %v", bi)
	}
	if n := len(mfs["droptrace_check_status"].GetMetric()); n != 9 {
		t.Errorf("%d check_status series for 3 checks, want 9", n)
	}

	// The summary adds only what no interval carries: events unread at exit.
	sum := interval(0, record.StatusMatch)
	sum.Type, sum.Seq = record.TypeSummary, 0
	sum.Tracer.EventsUnread = 7
	if err := s.Summary(sum); err != nil {
		t.Fatal(err)
	}
	mfs2, _ := scrape(t, h)
	if got := value(mfs2, "droptrace_lost_events_total", "cause", "unread"); got != 7 {
		t.Errorf("unread lost events after the summary: %v", got)
	}
	if got := value(mfs2, "droptrace_drops_total", "reason", "CPU_BACKLOG", "cpu", "0", "l4", "udp"); got != 180 {
		t.Errorf("the summary was added to the drops: %v", got)
	}

	// Prometheus' own linter: names, units, help texts, counter suffixes.
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "droptrace_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

// Labels are bounded: nothing that grows with addresses, flows, interfaces or containers.
func TestLabelsAreBounded(t *testing.T) {
	s := New("dev")
	s.CountLostRecords(func() record.Counts { return record.Counts{} })
	s.Start(startRecord())
	s.Interval(interval(1, record.StatusMatch))
	mfs, _ := scrape(t, Handler(s, nil))
	forbidden := []string{"src", "dst", "addr", "address", "port", "sport", "dport", "ifname", "ifindex", "device", "netns", "pid", "comm", "cgroup", "location"}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "droptrace_") {
			continue
		}
		if (mf.GetType() == dto.MetricType_COUNTER) != strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a %s: counters and only counters end in _total", name, mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, f := range forbidden {
					if l.GetName() == f {
						t.Errorf("%s has an unbounded label %s", name, f)
					}
				}
			}
		}
	}
	for _, n := range Names() {
		if _, ok := mfs[n]; !ok {
			t.Errorf("%s is described but not exposed after an interval", n)
		}
	}
}

// A scrape shows whole intervals only: racing writers and scrapers never see one counter of
// an interval added without the others.
func TestScrapeSeesWholeIntervals(t *testing.T) {
	s := New("dev")
	s.Start(startRecord())
	h := Handler(s, nil)
	const n = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= n; i++ {
			s.Interval(interval(i, record.StatusMatch))
		}
	}()
	for range 50 {
		mfs, _ := scrape(t, h)
		k := value(mfs, "droptrace_intervals_total")
		if d := value(mfs, "droptrace_softnet_dropped_total", "cpu", "1"); k > 0 && d != 100*k {
			t.Fatalf("%v intervals but softnet dropped %v", k, d)
		}
		if d := value(mfs, "droptrace_drops_total", "reason", "NO_SOCKET", "cpu", "1", "l4", "udp"); k > 0 && d != 3*k {
			t.Fatalf("%v intervals but NO_SOCKET drops %v", k, d)
		}
	}
	wg.Wait()
}

func TestHealthz(t *testing.T) {
	s := New("dev")
	h := Handler(s, nil)
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != 503 || !strings.Contains(body, "starting") {
		t.Errorf("before the start record: %d %q", code, body)
	}
	st := startRecord()
	st.Time = record.Time(time.Now())
	s.Start(st)
	if code, body := get(); code != 200 {
		t.Errorf("just started: %d %q", code, body)
	}
	if ok, why := s.health(time.Now().Add(time.Minute)); ok || !strings.Contains(why, "stalled") {
		t.Errorf("a minute without an interval at 1s: %v %q", ok, why)
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		":9000":          "127.0.0.1:9000",
		":0":             "127.0.0.1:0",
		"0.0.0.0:9000":   "0.0.0.0:9000",
		"[::]:9000":      "[::]:9000",
		"[::1]:9000":     "[::1]:9000",
		"10.1.2.3:9000":  "10.1.2.3:9000",
		"localhost:9100": "localhost:9100",
		"9000":           "error",
		"host:":          "error",
		"":               "error",
	} {
		got, err := ListenAddr(in)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ListenAddr(%q) = %q (%v), want %q", in, got, err, want)
		}
	}
}

// Without a host the endpoint listens on 127.0.0.1 only: it answers there, and not on another
// loopback address, which a wildcard bind would answer on too.
func TestDefaultBindIsLoopbackOnly(t *testing.T) {
	srv, err := Serve(":0", New("dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	addr := srv.Addr().(*net.TCPAddr)
	if !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("listening on %s, want 127.0.0.1", addr)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", addr))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("droptrace_build_info")) {
		t.Errorf("GET /metrics: %d\n%s", resp.StatusCode, b)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.2:%d", addr.Port), 2*time.Second)
	if err == nil {
		c.Close()
		t.Errorf("127.0.0.2:%d accepted a connection: the endpoint is not bound to 127.0.0.1 only", addr.Port)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("127.0.0.2:%d: %v, want connection refused", addr.Port, err)
	}
}

// OpenMetrics is served when the scraper asks for it, as Prometheus does.
func TestOpenMetrics(t *testing.T) {
	s := New("dev")
	s.Start(startRecord())
	s.Interval(interval(1, record.StatusMatch))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	Handler(s, nil).ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{"# TYPE droptrace_drops counter", `droptrace_drops_total{cpu="1",l4="udp",reason="NO_SOCKET"} 3.0`, "# EOF"} {
		if !strings.Contains(body, want) {
			t.Errorf("OpenMetrics output lacks %q", want)
		}
	}
}

// failingOutput fails every write, as a full disk.
type failingOutput struct{}

func (failingOutput) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// Records the output could not take are counted by type, as the Writer counts them, from
// the next record the metrics take: a full disk shows while the session goes on.
func TestLostRecordsCounted(t *testing.T) {
	w := record.NewWriter(failingOutput{})
	s := New("dev")
	s.CountLostRecords(func() record.Counts { _, lost := w.Counts(); return lost })
	s.Start(startRecord())
	for range 7 {
		w.Drop(&record.Drop{Header: record.Header{Type: record.TypeDrop}})
	}
	w.Interval(interval(1, record.StatusMatch))
	w.Flush()
	mfs, _ := scrape(t, Handler(s, nil))
	if got := value(mfs, "droptrace_lost_records_total", "type", "drop"); got != 0 {
		t.Errorf("lost drops before an interval was taken: %v", got)
	}
	s.Interval(interval(1, record.StatusMatch))
	mfs, _ = scrape(t, Handler(s, nil))
	for typ, want := range map[string]float64{"drop": 7, "interval": 1, "start": 0, "summary": 0} {
		if got := value(mfs, "droptrace_lost_records_total", "type", typ); got != want {
			t.Errorf("droptrace_lost_records_total{type=%q} = %v, want %v", typ, got, want)
		}
	}
}
