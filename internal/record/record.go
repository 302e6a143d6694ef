// SPDX-License-Identifier: Apache-2.0

// Package record defines droptrace's JSON lines: one Go type per record type, whose json tags
// are the schema documented in docs/jsonl.md (a test keeps the two equal). Field names are a
// contract with users' jq, DuckDB and pandas scripts: add fields, never rename or retype them
// without bumping SchemaVersion.
package record

import "time"

// SchemaVersion is written in every start record.
const SchemaVersion = 1

// Record types.
const (
	TypeStart    = "start"
	TypeDrop     = "drop"
	TypeInterval = "interval"
	TypeSummary  = "summary"
)

// Modes of a session.
const (
	ModeFull         = "full"
	ModeCountersOnly = "counters-only"
)

// Time is a UTC timestamp written as RFC 3339 with exactly nine fractional digits, so that
// lines sort as text and every tool parses them the same way.
type Time time.Time

const timeLayout = "2006-01-02T15:04:05.000000000Z"

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(timeLayout)+2)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler; any RFC 3339 time is accepted.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	v, err := time.Parse(`"`+time.RFC3339Nano+`"`, string(b))
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// Header is common to every record.
type Header struct {
	Type string `json:"type"`
	Time Time   `json:"time"`
}

// Sysctl holds the net.core settings that decide backlog drops and squeezes.
type Sysctl struct {
	NetdevBudget      int64 `json:"netdev_budget"`
	NetdevBudgetUsecs int64 `json:"netdev_budget_usecs"`
	NetdevMaxBacklog  int64 `json:"netdev_max_backlog"`
	DevWeight         int64 `json:"dev_weight"`
}

// How the drops of a session are named (Start.ReasonSource).
const (
	// ReasonSourceKernel: the reason the kernel passed kfree_skb_reason, decoded from BTF.
	ReasonSourceKernel = "kernel"
	// ReasonSourceLocation: inferred from the drop's location (kernels before 5.17).
	ReasonSourceLocation = "location"
	// ReasonSourceKernelLocation: the kernel's reason, and for drops it frees as
	// NOT_SPECIFIED the reason their location gives, where it gives one (kernels whose enum
	// skb_drop_reason lacks reasons a location names: 5.17, and the 5.15 stable series).
	ReasonSourceKernelLocation = "kernel+location"
)

// Start opens a recording.
type Start struct {
	Header
	SchemaVersion  int               `json:"schema_version"`
	Version        string            `json:"version"`
	Hostname       string            `json:"hostname"`
	Kernel         string            `json:"kernel"`
	CPUs           []int             `json:"cpus"`
	HZ             int               `json:"hz"`
	HZSource       string            `json:"hz_source"`
	Sysctl         Sysctl            `json:"sysctl"`
	Mode           string            `json:"mode"`
	Probes         map[string]string `json:"probes"`
	IntervalMs     int64             `json:"interval_ms"`
	SoftnetColumns int               `json:"softnet_columns"`
	DropReasons    int               `json:"drop_reasons"`
	// ReasonSource says how drops are named: ReasonSourceKernel, ReasonSourceLocation or
	// ReasonSourceKernelLocation; ""
	// when they are not named (counters-only, or neither way works).
	ReasonSource string `json:"reason_source,omitempty"`
	Events       bool   `json:"events"`
	MaxEventRate uint32 `json:"max_event_rate"`
	Netns        uint32 `json:"netns"`
	// Context is how the host is set up to receive, read at start.
	Context *HostContext `json:"context,omitempty"`
	// Filters are the event filters in force; nil without any.
	Filters *Filters `json:"filters,omitempty"`
}

// Filters select the drops streamed as events (--reason, --netns, --iface, --port, --proto).
// Every other figure counts all drops.
type Filters struct {
	Reasons []string      `json:"reasons,omitempty"`
	Netns   []uint32      `json:"netns,omitempty"`
	Ifaces  []FilterIface `json:"ifaces,omitempty"`
	Ports   []uint16      `json:"ports,omitempty"`
	Protos  []string      `json:"protos,omitempty"`
}

// FilterIface is a device an event filter selects, resolved at start.
type FilterIface struct {
	Name    string `json:"name"`
	Netns   uint32 `json:"netns"`
	Ifindex uint32 `json:"ifindex"`
}

// HostContext is the receive-side setup of the host (droptrace's network namespace).
type HostContext struct {
	Irqbalance bool              `json:"irqbalance"`
	NetIRQs    []NetIRQ          `json:"net_irqs"`
	Interfaces []Interface       `json:"interfaces"`
	Sysctls    map[string]string `json:"sysctls"`
}

// NetIRQ is one IRQ of a network interface and where it may run.
type NetIRQ struct {
	IRQ       int    `json:"irq"`
	Name      string `json:"name"`
	Ifname    string `json:"ifname"`
	Queue     int    `json:"queue"`
	RX        bool   `json:"rx"`
	Affinity  []int  `json:"affinity"`
	Effective []int  `json:"effective_affinity"`
}

// Interface is how one interface steers received packets.
type Interface struct {
	Name       string  `json:"name"`
	RxQueues   int     `json:"rx_queues"`
	RPSCPUs    [][]int `json:"rps_cpus"`
	RPSFlowCnt []int   `json:"rps_flow_cnt"`
	Threaded   string  `json:"threaded,omitempty"`
}

// Holder is who holds a socket: the process with the lowest pid among those that have it open,
// its cgroup (which container or service), and the other processes sharing the socket.
type Holder struct {
	PID        int    `json:"pid,omitempty"`
	Comm       string `json:"comm,omitempty"`
	Cgroup     string `json:"cgroup,omitempty"`
	SharedWith []int  `json:"shared_with,omitempty"`
	// On Kubernetes, the holder's pod ("namespace/name") and container, from its cgroup and
	// the container runtime's state on the node (internal/pods).
	Pod       string `json:"pod,omitempty"`
	Container string `json:"container,omitempty"`
	PodUID    string `json:"pod_uid,omitempty"`
}

// Where says where a holder runs: "pod default/web-0 container app", "pod default/web-0",
// "cgroup /system.slice/x.service", or "" when none of them is known.
func (h Holder) Where() string {
	switch {
	case h.Pod != "" && h.Container != "":
		return "pod " + h.Pod + " container " + h.Container
	case h.Pod != "":
		return "pod " + h.Pod
	case h.Cgroup != "":
		return "cgroup " + h.Cgroup
	}
	return ""
}

// Listener is a TCP listening socket whose accept queue was full at the end of an interval in
// which its namespace counted listen overflows.
type Listener struct {
	Netns uint32 `json:"netns"`
	Addr  string `json:"addr"`
	Port  uint16 `json:"port"`
	// AcceptQueue is the connections waiting for accept(); AcceptBacklog its limit, nil when
	// the socket could not be asked.
	AcceptQueue   uint64  `json:"accept_queue"`
	AcceptBacklog *uint64 `json:"accept_backlog,omitempty"`
	Holder
}

// PortDrops counts socket-level drops to one port.
type PortDrops struct {
	Reason string `json:"reason"`
	L4     string `json:"l4"`
	Port   uint16 `json:"port"`
	Netns  uint32 `json:"netns"`
	Events uint64 `json:"events"`
	// Drops counts every drop to the port (the tracer counts socket-level drops by socket,
	// with or without events); Addr is the destination address that took the most of them.
	Drops uint64 `json:"drops,omitempty"`
	Addr  string `json:"addr,omitempty"`
	// For a UDP socket that overflowed: who holds it, its own cumulative drop counter
	// (/proc/net/udp), the bytes waiting to be read at the end of the interval and its
	// effective receive buffer (SO_RCVBUF).
	Holder
	SocketDrops uint64 `json:"socket_drops,omitempty"`
	Queue       uint64 `json:"queue,omitempty"`
	RcvBuf      uint64 `json:"rcvbuf,omitempty"`
}

// IRQCount is one network IRQ's interrupts over an interval.
type IRQCount struct {
	IRQ    int            `json:"irq"`
	Ifname string         `json:"ifname"`
	Queue  int            `json:"queue"`
	Count  uint64         `json:"count"`
	ByCPU  map[int]uint64 `json:"by_cpu"`
}

// Drop is one dropped packet (only with --events).
type Drop struct {
	Header
	CPU        uint32 `json:"cpu"`
	Reason     string `json:"reason"`
	ReasonCode uint32 `json:"reason_code"`
	Location   string `json:"location"`
	Ifindex    uint32 `json:"ifindex"`
	Ifname     string `json:"ifname,omitempty"`
	Netns      uint32 `json:"netns"`
	Len        uint32 `json:"len"`
	L3         string `json:"l3,omitempty"`
	L4         string `json:"l4,omitempty"`
	Src        string `json:"src,omitempty"`
	Dst        string `json:"dst,omitempty"`
	Sport      uint16 `json:"sport,omitempty"`
	Dport      uint16 `json:"dport,omitempty"`
}

// NetRx is NET_RX softirq (net_rx_action) accounting of one CPU from the tracepoints.
type NetRx struct {
	Runs           uint64 `json:"runs"`
	KernelRuns     uint64 `json:"kernel_runs"`
	BusyUs         uint64 `json:"busy_us"`
	MaxRunUs       uint64 `json:"max_run_us"`
	TimedRuns      uint64 `json:"timed_runs"`
	Polls          uint64 `json:"polls"`
	Packets        uint64 `json:"packets"`
	BudgetSqueezes uint64 `json:"budget_squeezes"`
	TimeSqueezes   uint64 `json:"time_squeezes"`
	TimeUncertain  uint64 `json:"time_uncertain"`
	TimeUnproven   uint64 `json:"time_unproven,omitempty"`
	OtherPolls     uint64 `json:"other_polls"`
	OtherPackets   uint64 `json:"other_packets"`
}

// Softnet is one CPU's /proc/net/softnet_stat deltas.
type Softnet struct {
	Processed   uint64 `json:"processed"`
	Dropped     uint64 `json:"dropped"`
	TimeSqueeze uint64 `json:"time_squeeze"`
	ReceivedRPS uint64 `json:"received_rps"`
	FlowLimit   uint64 `json:"flow_limit"`
	BacklogLen  uint32 `json:"backlog_len"`
}

// CPU is one CPU's view of an interval.
type CPU struct {
	CPU     int               `json:"cpu"`
	Drops   map[string]uint64 `json:"drops"`
	NetRx   *NetRx            `json:"net_rx,omitempty"`
	Softnet *Softnet          `json:"softnet,omitempty"`
	// DropsL4 splits Drops by the packets' L4 protocol: reason -> l4 -> packets, with l4
	// named as in Drop, or "none" for packets that are not IP.
	DropsL4 map[string]map[string]uint64 `json:"drops_l4,omitempty"`
}

// Check is one reconciliation of a traced count with a kernel counter.
type Check struct {
	Check  string `json:"check"`
	CPU    *int   `json:"cpu,omitempty"`
	Traced *int64 `json:"traced"`
	Kernel *int64 `json:"kernel"`
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
	// ExplainedBy names the measured cause of a mismatch, when there is one:
	// "net_rx_coverage", "bpf_recursion", "aggregation_full" or "sysctl_change".
	ExplainedBy string `json:"explained_by,omitempty"`
}

// NetnsCoverage is which network namespaces an interval's SNMP deltas and checks cover. A
// namespace read closes a span since its previous read, which may be several intervals; one
// deferred is read within the session's bound (docs/checks.md).
type NetnsCoverage struct {
	// Read are the namespaces read at the end of the interval, by inode.
	Read []uint32 `json:"read"`
	// Deferred counts the namespaces listed but not read: every one not in Read.
	Deferred int `json:"deferred"`
	// Carried are the deferred namespaces with traced drops since their last read, by
	// inode: those drops are checked at their next read. Omitted when none.
	Carried []uint32 `json:"carried,omitempty"`
}

// Check statuses.
const (
	StatusMatch       = "match"
	StatusMismatch    = "mismatch"
	StatusUnavailable = "unavailable"
)

// Location is a kernel call site that dropped packets.
type Location struct {
	Location string `json:"location"`
	Reason   string `json:"reason"`
	Count    uint64 `json:"count"`
}

// Device is drops by device and namespace.
type Device struct {
	Netns   uint32            `json:"netns"`
	Ifindex uint32            `json:"ifindex"`
	Ifname  string            `json:"ifname,omitempty"`
	Drops   map[string]uint64 `json:"drops"`
}

// Tracer is the tracer's own health over the interval: what it could not see or send.
type Tracer struct {
	EventsSent uint64 `json:"events_sent"`
	// EventsFiltered are drops not sent as events because they were outside the filters
	// (Start.Filters); they are counted everywhere else.
	EventsFiltered       uint64 `json:"events_filtered,omitempty"`
	EventsRateLimited    uint64 `json:"events_rate_limited"`
	EventsRingbufFull    uint64 `json:"events_ringbuf_full"`
	EventsWriteFailed    uint64 `json:"events_write_failed"`
	EventsWritten        uint64 `json:"events_written"`
	EventsUnread         uint64 `json:"events_unread"`
	AggMapFull           uint64 `json:"agg_map_full"`
	SockMapFull          uint64 `json:"sock_map_full,omitempty"`
	DropRecursionMisses  uint64 `json:"drop_recursion_misses"`
	NetRxRecursionMisses uint64 `json:"net_rx_recursion_misses"`
}

// Interval is one --interval's deltas; Summary has the same shape over the whole session.
type Interval struct {
	Header
	Seq        int                         `json:"seq,omitempty"`
	DurationMs int64                       `json:"duration_ms"`
	Drops      map[string]uint64           `json:"drops"`
	CPUs       []CPU                       `json:"cpus"`
	SNMP       map[string]map[string]int64 `json:"snmp"`
	Checks     []Check                     `json:"checks"`
	// NetnsCoverage says which namespaces' counters the interval read, when it deferred
	// some; omitted when it read them all, and in the summary.
	NetnsCoverage *NetnsCoverage `json:"netns_coverage,omitempty"`
	LostEvents    uint64         `json:"lost_events"`
	// LostRecords are records that could not be written to the output (a full disk), by
	// record type: in an interval record those lost since the last interval record that was
	// written, in the summary those of the whole session. Omitted when none.
	LostRecords map[string]uint64 `json:"lost_records,omitempty"`
	Tracer      Tracer            `json:"tracer"`
	Locations   []Location        `json:"locations"`
	Devices     []Device          `json:"devices"`
	// Sysctl is the values at the end of the interval; SysctlChanges says what changed when.
	Sysctl        *Sysctl  `json:"sysctl,omitempty"`
	SysctlChanges []string `json:"sysctl_changes,omitempty"`
	// LimitSpans (summary only) split the session's squeezes and overflows by the limits in
	// force when they happened; omitted when the limits never changed.
	LimitSpans []LimitSpan `json:"limit_spans,omitempty"`
	// NetIRQs are the network IRQs' interrupts per CPU; RxDropped the interfaces' own
	// rx_dropped deltas (non-zero only): what `ip -s link` showed of the loss.
	NetIRQs []IRQCount `json:"net_irqs,omitempty"`
	// Sockstat is socket usage from /proc/net/sockstat(6): at the end of an interval, the
	// peak of each field in the summary. McastChanges are multicast memberships that came or
	// went (/proc/net/dev_mcast); MulticastDropEvents counts drop events to multicast groups.
	Sockstat            map[string]map[string]int64 `json:"sockstat,omitempty"`
	McastChanges        []string                    `json:"mcast_changes,omitempty"`
	MulticastDropEvents uint64                      `json:"multicast_drop_events,omitempty"`
	// Ports are the destination ports with the most socket-level drop events (with --events).
	Ports []PortDrops `json:"ports,omitempty"`
	// Listeners are the TCP listeners found with a full accept queue in namespaces that
	// counted listen overflows.
	Listeners []Listener        `json:"listeners,omitempty"`
	RxDropped map[string]uint64 `json:"rx_dropped,omitempty"`
	// Verdicts say why packets were lost and what to change: in an interval record only
	// those that fired in it, in the summary those over the whole session.
	Verdicts []Verdict `json:"verdicts,omitempty"`
}

// LimitSpan is a stretch of a session under the same net.core limits, with the NET_RX
// squeezes and backlog overflows counted in it: the summary's verdicts attribute each to the
// limit in force when it happened. Interval records are the unit: an interval in which the
// limits changed is a span of its own, with Lowest and Highest saying the values it saw.
type LimitSpan struct {
	From   Time   `json:"from"`
	To     Time   `json:"to"`
	Sysctl Sysctl `json:"sysctl"`
	// Lowest and Highest are set when the limits changed within the span: each limit's
	// smallest and largest value in force during it. Omitted when they did not.
	Lowest  *Sysctl `json:"lowest,omitempty"`
	Highest *Sysctl `json:"highest,omitempty"`
	// CPUs are the CPUs that squeezed or overflowed in the span, by CPU id.
	CPUs []SpanCPU `json:"cpus"`
}

// SpanCPU is one CPU's squeezes and overflows in a limit span, with the work they were part of.
type SpanCPU struct {
	CPU            int    `json:"cpu"`
	Runs           uint64 `json:"net_rx_runs"`
	Packets        uint64 `json:"packets"`
	BudgetSqueezes uint64 `json:"budget_squeezes"`
	TimeSqueezes   uint64 `json:"time_squeezes"`
	Processed      uint64 `json:"processed"`
	Dropped        uint64 `json:"dropped"`
}

// Verdict severities and confidences.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"

	ConfidenceHigh   = "high"
	ConfidenceMedium = "medium"
	ConfidenceLow    = "low"
)

// Verdict is one diagnosis: what the evidence shows, why, and what to change.
type Verdict struct {
	ID         string         `json:"id"`
	Severity   string         `json:"severity"`
	CPU        *int           `json:"cpu,omitempty"`
	Evidence   map[string]any `json:"evidence"`
	Cause      string         `json:"cause"`
	Fix        string         `json:"fix"`
	Confidence string         `json:"confidence"`
}
