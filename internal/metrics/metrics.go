// SPDX-License-Identifier: Apache-2.0

// Package metrics turns a session's records into Prometheus metrics. Sink is a session sink:
// it adds every interval record's deltas to counters and keeps the levels (check statuses,
// sysctls, backlog lengths) of the latest one. A scrape always shows a whole number of
// intervals — never half of one — and droptrace_intervals_total says how many, so a scrape can
// be compared exactly with the JSON lines of the same session.
//
// Labels are bounded: drop reason (the kernel's enum), CPU, L4 protocol, check, status, SNMP
// group and field, verdict id and severity. Addresses, ports, interfaces and namespaces are
// left to the JSON lines: they would make a series per container, flow or scanner.
package metrics

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/droptrace/droptrace/internal/record"
)

const namespace = "droptrace"

// allDescs and allNames are every metric this package serves, in the order defined below.
var (
	allDescs []*prometheus.Desc
	allNames []string
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	allDescs = append(allDescs, d)
	allNames = append(allNames, namespace+"_"+name)
	return d
}

// The metrics. Counters are sums of interval records' deltas since droptrace started.
var (
	dBuildInfo  = desc("build_info", "droptrace's version, the Go version it was built with and its JSON schema version; always 1.", "version", "goversion", "schema_version")
	dKernelInfo = desc("kernel_info", "The traced kernel's release (uname -r); always 1.", "release")
	dKernelHZ   = desc("kernel_hz", "CONFIG_HZ, which net_rx_action's time limit is counted in; 0 when unknown (time squeezes are then not predicted).")
	dModeInfo   = desc("mode_info", "How droptrace traces: mode is full (BPF attached) or counters-only (no BPF: no drop reasons, no NET_RX accounting); always 1.", "mode")
	dProbeInfo  = desc("probe_info", "How each tracepoint is attached: attach is tp_btf, tracepoint, off or unavailable; always 1.", "tracepoint", "attach")
	dStartTime  = desc("start_time_seconds", "When the tracing session began, in seconds since the epoch.")
	dIntervals  = desc("intervals_total", "Interval records included in these metrics.")
	dLastTime   = desc("last_interval_timestamp_seconds", "End of the latest interval, in seconds since the epoch; stale when droptrace is stuck.")

	dDrops = desc("drops_total", "Packets the kernel dropped (skb:kfree_skb), by drop reason, the CPU that freed them and their L4 protocol (none when not IP).", "reason", "cpu", "l4")

	dNetRxRuns       = desc("net_rx_runs_total", "NET_RX softirq runs BPF saw.", "cpu")
	dNetRxKernelRuns = desc("net_rx_kernel_runs_total", "NET_RX softirq runs the kernel counted (/proc/softirqs); above net_rx_runs_total when BPF missed runs.", "cpu")
	dNetRxBusy       = desc("net_rx_busy_seconds_total", "Time spent in NET_RX softirq runs.", "cpu")
	dNetRxPolls      = desc("net_rx_polls_total", "NAPI polls inside NET_RX runs.", "cpu")
	dNetRxPackets    = desc("net_rx_packets_total", "Packets processed by NAPI polls inside NET_RX runs.", "cpu")
	dNetRxSqueezes   = desc("net_rx_squeezes_total", "NET_RX runs that stopped with work left, by predicted cause: budget (netdev_budget packets polled) or time (netdev_budget_usecs elapsed).", "cpu", "cause")
	dNetRxOtherPolls = desc("net_rx_other_polls_total", "NAPI polls outside NET_RX (busy polling, threaded NAPI).", "cpu")
	dNetRxOtherPkts  = desc("net_rx_other_packets_total", "Packets processed by NAPI polls outside NET_RX.", "cpu")
	dNetRxMaxRun     = desc("net_rx_max_run_seconds", "Longest single NET_RX run since droptrace started.", "cpu")

	dSoftnetProcessed = desc("softnet_processed_total", "Packets received by the CPU's network stack (/proc/net/softnet_stat column 1).", "cpu")
	dSoftnetDropped   = desc("softnet_dropped_total", "Packets dropped because the CPU's input backlog was full (netdev_max_backlog) or by flow limit (softnet_stat column 2), counted on the backlog's CPU.", "cpu")
	dSoftnetSqueeze   = desc("softnet_time_squeezes_total", "NET_RX runs that stopped with work left, budget or time (softnet_stat column 3).", "cpu")
	dSoftnetRPS       = desc("softnet_received_rps_total", "RPS/RFS inter-processor interrupts received (softnet_stat column 10).", "cpu")
	dSoftnetFlowLimit = desc("softnet_flow_limit_total", "Packets dropped by the per-flow backlog limit, included in softnet_dropped_total (softnet_stat column 11).", "cpu")
	dSoftnetBacklog   = desc("softnet_backlog_len", "Input backlog queue length at the end of the latest interval (softnet_stat column 12).", "cpu")

	dCheckStatus     = desc("check_status", "Status of each reconciliation check in the latest interval: 1 for its status (match, mismatch or unavailable), 0 for the others. cpu is empty for host-wide checks.", "check", "cpu", "status")
	dCheckMismatches = desc("check_mismatches_total", "Intervals in which a check was a mismatch, by its measured cause (explained_by; none when droptrace knows no cause).", "check", "cpu", "explained_by")

	dLostEvents     = desc("lost_events_total", "Drop events not written (the drops themselves are counted): rate_limited (--max-event-rate), ringbuf_full, write_failed, unread (still queued at exit).", "cause")
	dEventsSent     = desc("events_sent_total", "Drop events BPF put in the ring buffer.")
	dEventsWritten  = desc("events_written_total", "Drop records written.")
	dEventsFiltered = desc("events_filtered_total", "Drops not sent as events because they were outside the event filters (--reason, --port, ...); the drop counts include them.")
	dLostRecords    = desc("lost_records_total", "Records that could not be written to the output (a full disk, an I/O error), by record type: start, interval, drop or summary. Tracing goes on; droptrace exits with status 3 at the end.", "type")
	dUncounted      = desc("uncounted_drops_total", "Drops not counted anywhere: the BPF aggregation map was full (agg_map_full) or the kernel skipped the drop program (recursion).", "cause")
	dNetRxRecurse   = desc("net_rx_recursion_misses_total", "Times the kernel skipped a NET_RX program (runs, polls or squeezes missed).")

	dSNMP     = desc("snmp_total", "Socket-level drop counters (Udp, Udp6, UdpLite, UdpLite6 and TcpExt drop fields of /proc/net/snmp, netstat, snmp6), summed over every readable network namespace.", "group", "field")
	dVerdicts = desc("verdicts_total", "Intervals in which a verdict fired, by id and severity.", "id", "severity")
	dSysctl   = desc("sysctl", "net.core settings in force at the end of the latest interval.", "name")
)

// statuses are the values of droptrace_check_status's status label.
var statuses = []string{record.StatusMatch, record.StatusMismatch, record.StatusUnavailable}

type checkKey struct {
	check string
	cpu   string
}

type mismatchKey struct {
	check, cpu, explainedBy string
}

// Sink keeps the metrics of one session. It is a session.Sink and a prometheus.Collector.
type Sink struct {
	version string

	mu        sync.Mutex
	gen       uint64 // counts the records taken; the endpoint caches a rendering per generation
	start     *record.Start
	intervals uint64
	last      time.Time
	// total is the sum of the interval records' per-CPU, tracer and SNMP parts (the others
	// are left to the JSON lines), with record.Interval.Add as the session sums its summary.
	total    record.Interval
	backlog  map[int]uint32 // latest softnet backlog length per CPU: a level
	checks   map[checkKey]string
	mismatch map[mismatchKey]uint64
	verdicts map[[2]string]uint64
	sysctl   *record.Sysctl
	// lostRecords reads the output's lost records; lost is what it said at the latest record.
	lostRecords func() record.Counts
	lost        *record.Counts
}

// CountLostRecords has the metrics report the records lost by the output, as lost returns
// them, read at each record the Sink takes.
func (s *Sink) CountLostRecords(lost func() record.Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lostRecords = lost
}

// readLost takes the output's lost records; s.mu is held.
func (s *Sink) readLost() {
	if s.lostRecords != nil {
		l := s.lostRecords()
		s.lost = &l
	}
}

// New returns an empty Sink for droptrace version.
func New(version string) *Sink {
	return &Sink{
		version:  version,
		backlog:  map[int]uint32{},
		checks:   map[checkKey]string{},
		mismatch: map[mismatchKey]uint64{},
		verdicts: map[[2]string]uint64{},
	}
}

// Start takes the session's start record.
func (s *Sink) Start(r *record.Start) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start = r
	s.last = time.Time(r.Time)
	s.readLost()
	s.gen++
	return nil
}

// Interval adds one interval record's deltas.
func (s *Sink) Interval(r *record.Interval) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(r)
	s.readLost()
	s.gen++
	return nil
}

// Summary takes the summary, the sum of the intervals already added: only the events still
// unread at exit, which no interval carries, are added.
func (s *Sink) Summary(r *record.Interval) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total.Tracer.EventsUnread = record.AddSat(s.total.Tracer.EventsUnread, r.Tracer.EventsUnread)
	s.readLost()
	s.gen++
	return nil
}

// Drop ignores drop records: every drop is already in the interval records' counts.
func (s *Sink) Drop(*record.Drop) error { return nil }

// Flush does nothing: a scrape reads the sums under the lock.
func (s *Sink) Flush() error { return nil }

// add adds one interval's deltas; s.mu is held.
func (s *Sink) add(r *record.Interval) {
	s.intervals++
	s.last = time.Time(r.Time)
	part := record.Interval{Header: record.Header{Time: r.Time}, CPUs: r.CPUs, Tracer: r.Tracer, SNMP: counterSNMP(r.SNMP)}
	s.total.Add(&part)
	for _, c := range r.CPUs {
		if c.Softnet != nil {
			s.backlog[c.CPU] = c.Softnet.BacklogLen
		}
	}
	// Check statuses are levels: the latest interval's set replaces the previous one.
	clear(s.checks)
	for _, c := range r.Checks {
		k := checkKey{check: c.Check}
		if c.CPU != nil {
			k.cpu = strconv.Itoa(*c.CPU)
		}
		s.checks[k] = c.Status
		if c.Status == record.StatusMismatch {
			by := c.ExplainedBy
			if by == "" {
				by = "none"
			}
			s.mismatch[mismatchKey{c.Check, k.cpu, by}]++
		}
	}
	for _, v := range r.Verdicts {
		s.verdicts[[2]string{v.ID, v.Severity}]++
	}
	if r.Sysctl != nil {
		sc := *r.Sysctl
		s.sysctl = &sc
	}
}

// counterSNMP drops negative SNMP deltas: one is a namespace recreated, and a Prometheus
// counter cannot go down. The field is kept at zero so that its series exists.
func counterSNMP(m map[string]map[string]int64) map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(m))
	for g, fs := range m {
		out[g] = make(map[string]int64, len(fs))
		for f, v := range fs {
			out[g][f] = max(v, 0)
		}
	}
	return out
}

// Describe implements prometheus.Collector.
func (s *Sink) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It holds the lock for the whole scrape, so that a
// scrape never shows part of an interval.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(dBuildInfo, 1, s.version, runtime.Version(), strconv.Itoa(record.SchemaVersion))
	counter(dIntervals, s.intervals)
	if st := s.start; st != nil {
		gauge(dKernelInfo, 1, st.Kernel)
		gauge(dKernelHZ, float64(st.HZ))
		gauge(dModeInfo, 1, st.Mode)
		for tp, how := range st.Probes {
			gauge(dProbeInfo, 1, tp, attachOf(how))
		}
		gauge(dStartTime, seconds(time.Time(st.Time)))
		gauge(dLastTime, seconds(s.last))
	}
	for i := range s.total.CPUs {
		s.collectCPU(ch, &s.total.CPUs[i])
	}
	for k, st := range s.checks {
		for _, x := range statuses {
			v := 0.0
			if x == st {
				v = 1
			}
			gauge(dCheckStatus, v, k.check, k.cpu, x)
		}
	}
	for k, v := range s.mismatch {
		counter(dCheckMismatches, v, k.check, k.cpu, k.explainedBy)
	}
	t := &s.total.Tracer
	counter(dLostEvents, t.EventsRateLimited, "rate_limited")
	counter(dLostEvents, t.EventsRingbufFull, "ringbuf_full")
	counter(dLostEvents, t.EventsWriteFailed, "write_failed")
	counter(dLostEvents, t.EventsUnread, "unread")
	counter(dEventsSent, t.EventsSent)
	counter(dEventsWritten, t.EventsWritten)
	if s.lost != nil {
		s.lost.Each(func(typ string, n uint64) { counter(dLostRecords, n, typ) })
	}
	counter(dEventsFiltered, t.EventsFiltered)
	counter(dUncounted, t.AggMapFull, "agg_map_full")
	counter(dUncounted, t.DropRecursionMisses, "recursion")
	counter(dNetRxRecurse, t.NetRxRecursionMisses)
	for g, fs := range s.total.SNMP {
		for f, v := range fs {
			counter(dSNMP, uint64(v), g, f)
		}
	}
	for k, v := range s.verdicts {
		counter(dVerdicts, v, k[0], k[1])
	}
	if sc := s.sysctl; sc != nil {
		gauge(dSysctl, float64(sc.NetdevBudget), "netdev_budget")
		gauge(dSysctl, float64(sc.NetdevBudgetUsecs), "netdev_budget_usecs")
		gauge(dSysctl, float64(sc.NetdevMaxBacklog), "netdev_max_backlog")
		gauge(dSysctl, float64(sc.DevWeight), "dev_weight")
	}
}

// collectCPU sends one CPU's series from the running total; s.mu is held.
func (s *Sink) collectCPU(ch chan<- prometheus.Metric, c *record.CPU) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	cpu := strconv.Itoa(c.CPU)
	for reason, n := range c.Drops {
		var split uint64
		for l4, m := range c.DropsL4[reason] {
			counter(dDrops, m, reason, cpu, l4)
			split += m
		}
		// Without a split (never from this droptrace), the drops still count.
		if n > split {
			counter(dDrops, n-split, reason, cpu, "unknown")
		}
	}
	if n := c.NetRx; n != nil {
		counter(dNetRxRuns, n.Runs, cpu)
		counter(dNetRxKernelRuns, n.KernelRuns, cpu)
		ch <- prometheus.MustNewConstMetric(dNetRxBusy, prometheus.CounterValue, float64(n.BusyUs)/1e6, cpu)
		counter(dNetRxPolls, n.Polls, cpu)
		counter(dNetRxPackets, n.Packets, cpu)
		counter(dNetRxSqueezes, n.BudgetSqueezes, cpu, "budget")
		counter(dNetRxSqueezes, n.TimeSqueezes, cpu, "time")
		counter(dNetRxOtherPolls, n.OtherPolls, cpu)
		counter(dNetRxOtherPkts, n.OtherPackets, cpu)
		gauge(dNetRxMaxRun, float64(n.MaxRunUs)/1e6, cpu)
	}
	if n := c.Softnet; n != nil {
		counter(dSoftnetProcessed, n.Processed, cpu)
		counter(dSoftnetDropped, n.Dropped, cpu)
		counter(dSoftnetSqueeze, n.TimeSqueeze, cpu)
		counter(dSoftnetRPS, n.ReceivedRPS, cpu)
		counter(dSoftnetFlowLimit, n.FlowLimit, cpu)
		gauge(dSoftnetBacklog, float64(s.backlog[c.CPU]), cpu)
	}
}

// attachOf bounds a probe status ("unavailable: <why>") to its kind.
func attachOf(status string) string {
	kind, _, _ := strings.Cut(status, ":")
	switch kind {
	case "tp_btf", "tracepoint", "off", "unavailable":
		return kind
	}
	return "other"
}

func seconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// Names lists every metric name, sorted, for documentation and tests.
func Names() []string {
	out := slices.Clone(allNames)
	slices.Sort(out)
	return out
}

// generation changes with every record taken.
func (s *Sink) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// health says whether the session is alive: started, and an interval ended recently.
func (s *Sink) health(now time.Time) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start == nil {
		return false, "starting: no start record yet"
	}
	every := time.Duration(s.start.IntervalMs) * time.Millisecond
	limit := 3*every + 10*time.Second
	if age := now.Sub(s.last); age > limit {
		return false, fmt.Sprintf("stalled: no interval for %s (interval %s)", age.Round(time.Second), every)
	}
	return true, fmt.Sprintf("ok: %d intervals", s.intervals)
}
