// SPDX-License-Identifier: Apache-2.0

package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const docPath = "../../docs/jsonl.md"

// documented are the structs with a table in docs/jsonl.md, by the heading naming them.
// Header has none of its own: its fields are rows of every record type's table.
var documented = map[string]reflect.Type{
	"Start":       reflect.TypeFor[Start](),
	"Drop":        reflect.TypeFor[Drop](),
	"Interval":    reflect.TypeFor[Interval](),
	"CPU":         reflect.TypeFor[CPU](),
	"NetRx":       reflect.TypeFor[NetRx](),
	"Softnet":     reflect.TypeFor[Softnet](),
	"Check":       reflect.TypeFor[Check](),
	"Location":    reflect.TypeFor[Location](),
	"Device":      reflect.TypeFor[Device](),
	"Tracer":      reflect.TypeFor[Tracer](),
	"Filters":     reflect.TypeFor[Filters](),
	"FilterIface": reflect.TypeFor[FilterIface](),
	"Sysctl":      reflect.TypeFor[Sysctl](),
	"Verdict":     reflect.TypeFor[Verdict](),

	"HostContext": reflect.TypeFor[HostContext](),
	"NetIRQ":      reflect.TypeFor[NetIRQ](),
	"Interface":   reflect.TypeFor[Interface](),
	"IRQCount":    reflect.TypeFor[IRQCount](),
	"PortDrops":   reflect.TypeFor[PortDrops](),
	"Listener":    reflect.TypeFor[Listener](),
	"LimitSpan":   reflect.TypeFor[LimitSpan](),
	"SpanCPU":     reflect.TypeFor[SpanCPU](),

	"NetnsCoverage": reflect.TypeFor[NetnsCoverage](),
}

// jsonField is one field as it appears in JSON.
type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields follows encoding/json: embedded structs without a tag contribute their fields.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name, f.Type})
	}
	return out
}

// jsonType is the JSON type a documented row must start its type column with.
func jsonType(t reflect.Type) string {
	if t == reflect.TypeFor[Time]() {
		return "string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonType(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}

// docRow is one table row: the field's name and the cells after it.
type docRow struct {
	line  int
	cells []string
}

var (
	headingRe = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*$`)
	rowRe     = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|(.*)\\|\\s*$")
)

// docTables reads the tables of the doc: for every "### Name" heading, the field rows of the
// first table under it, up to the next heading.
func docTables(t *testing.T) map[string]map[string]docRow {
	t.Helper()
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]map[string]docRow{}
	var cur map[string]docRow
	var curName string
	inFence := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if m := headingRe.FindStringSubmatch(line); m != nil {
			cur, curName = nil, ""
			if len(m[1]) == 3 {
				curName = m[2]
				if _, dup := tables[curName]; dup {
					t.Errorf("%s:%d: a second table heading %q", docPath, n, line)
				}
				cur = map[string]docRow{}
				tables[curName] = cur
			}
			continue
		}
		m := rowRe.FindStringSubmatch(line)
		if m == nil || cur == nil {
			continue
		}
		if _, dup := cur[m[1]]; dup {
			t.Errorf("%s:%d: field %q documented twice under %q", docPath, n, m[1], curName)
		}
		var cells []string
		for c := range strings.SplitSeq(m[2], "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		cur[m[1]] = docRow{n, cells}
	}
	return tables
}

func TestDocTablesMatchStructs(t *testing.T) {
	tables := docTables(t)
	for name, typ := range documented {
		rows, ok := tables[name]
		if !ok {
			t.Errorf("%s has no \"### %s\" table", docPath, name)
			continue
		}
		var names []string
		for _, f := range jsonFields(typ) {
			names = append(names, f.name)
			row, ok := rows[f.name]
			if !ok {
				t.Errorf("%s.%s (json %q) is not documented under ### %s", name, f.name, f.name, name)
				continue
			}
			// Columns: type, unit, meaning.
			if len(row.cells) != 3 {
				t.Errorf("%s:%d: want 4 columns (field, type, unit, meaning), got %d", docPath, row.line, len(row.cells)+1)
				continue
			}
			if want := jsonType(f.typ); !strings.HasPrefix(row.cells[0], want) {
				t.Errorf("%s:%d: %s.%s is documented as %q, but it is a JSON %s", docPath, row.line, name, f.name, row.cells[0], want)
			}
			if row.cells[2] == "" {
				t.Errorf("%s:%d: %s.%s has no meaning", docPath, row.line, name, f.name)
			}
		}
		for field, row := range rows {
			if !slices.Contains(names, field) {
				t.Errorf("%s:%d: %q is documented under ### %s but %s has no such JSON field", docPath, row.line, field, name, name)
			}
		}
	}
}

// TestEveryStructDocumented keeps the list above complete: a struct added to record.go with
// json tags must get a table. Header and Holder are only embedded: their fields are in the
// tables of the structs that embed them.
func TestEveryStructDocumented(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "record.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, s := range g.Specs {
			ts := s.(*ast.TypeSpec)
			if _, isStruct := ts.Type.(*ast.StructType); !isStruct || ts.Name.Name == "Header" || ts.Name.Name == "Holder" {
				continue
			}
			if _, ok := documented[ts.Name.Name]; !ok {
				t.Errorf("struct %s is not in the documented list (and probably not in %s)", ts.Name.Name, docPath)
			}
		}
	}
}

// TestDocNamesChecksAndReasons keeps the prose honest about the names users filter on.
func TestDocNamesChecksAndReasons(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, s := range []string{
		TypeStart, TypeDrop, TypeInterval, TypeSummary, ModeFull, ModeCountersOnly,
		StatusMatch, StatusMismatch, StatusUnavailable,
		// internal/reconcile's check names; record cannot import it (it imports record).
		"backlog_drops", "net_rx_coverage", "time_squeeze", "udp_rcvbuf", "udp_no_port", "tcp_listen_overflow",
	} {
		if !strings.Contains(doc, "`"+s+"`") {
			t.Errorf("%s does not mention `%s`", docPath, s)
		}
	}
}

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2025, 11, 23, 3, 13, 25, 500000000, time.UTC)

// goldenRecords are one record of each type, filled so that every field is written.
func goldenRecords() map[string]any {
	return map[string]any{
		TypeStart: &Start{
			Header:        Header{Type: TypeStart, Time: Time(t0)},
			SchemaVersion: SchemaVersion, Version: "v0.3.0", Hostname: "edge-lb-07", Kernel: "6.8.0-45-generic",
			CPUs: []int{0, 1}, HZ: 250, HZSource: "kconfig",
			Sysctl: Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 2000, NetdevMaxBacklog: 1000, DevWeight: 64},
			Mode:   ModeFull,
			Probes: map[string]string{"skb:kfree_skb": "tp_btf", "irq:softirq_entry": "tp_btf",
				"irq:softirq_exit": "tp_btf", "napi:napi_poll": "tp_btf"},
			IntervalMs: 1000, SoftnetColumns: 13, DropReasons: 118, ReasonSource: ReasonSourceKernel, Events: true, MaxEventRate: 10000,
			Netns: 4026531840,
			Context: &HostContext{
				Irqbalance: false,
				NetIRQs: []NetIRQ{{IRQ: 45, Name: "eth0-TxRx-0", Ifname: "eth0", Queue: 0, RX: true,
					Affinity: []int{0, 1}, Effective: []int{0}}},
				Interfaces: []Interface{{Name: "eth0", RxQueues: 1, RPSCPUs: [][]int{{1}}, RPSFlowCnt: []int{0}, Threaded: "0"}},
				Sysctls:    map[string]string{"rmem_default": "212992", "rmem_max": "212992", "somaxconn": "4096", "flow_limit_cpu_bitmap": "0"},
			},
			Filters: &Filters{Reasons: []string{"NO_SOCKET", "SOCKET_RCVBUFF"}, Netns: []uint32{4026532291},
				Ifaces: []FilterIface{{Name: "eth0", Netns: 4026532291, Ifindex: 2}}, Ports: []uint16{53, 9999},
				Protos: []string{"udp"}},
		},
		TypeDrop: &Drop{
			// A time in another zone with a short fraction: still UTC with nine digits.
			Header: Header{Type: TypeDrop, Time: Time(t0.Add(1234567 * time.Microsecond).In(time.FixedZone("IST", 19800)))},
			CPU:    1, Reason: "NO_SOCKET", ReasonCode: 3, Location: "__udp4_lib_rcv+0x9e1", Ifindex: 2, Ifname: "eth0",
			Netns: 4026531840, Len: 128, L3: "ipv4", L4: "udp", Src: "192.0.2.10", Dst: "198.51.100.7",
			Sport: 40123, Dport: 9999,
		},
		TypeInterval: goldenInterval(TypeInterval, 1),
		TypeSummary:  goldenSummary(),
	}
}

// goldenSummary is the session of the interval above, ended 90.5 s later with 3 events still
// in the ring buffer: lost_events adds them to its three usual parts.
func goldenSummary() *Interval {
	s := goldenInterval(TypeSummary, 0)
	s.Time = Time(t0.Add(91 * time.Second))
	s.DurationMs = 90500
	s.Tracer.EventsSent = 780
	s.Tracer.EventsUnread = 3
	s.LostEvents = 30 + 10 + 12 + 3
	s.LostRecords = map[string]uint64{"drop": 12, "interval": 1}
	s.NetnsCoverage = nil
	// The budget was 300 until the interval that raised it to 600: squeezes under each.
	s.LimitSpans = []LimitSpan{
		{From: Time(t0.Add(500 * time.Millisecond)), To: Time(t0.Add(90 * time.Second)), Sysctl: Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 2000, NetdevMaxBacklog: 1000, DevWeight: 64},
			CPUs: []SpanCPU{{CPU: 1, Runs: 3000, Packets: 150000, BudgetSqueezes: 40, TimeSqueezes: 1, Processed: 150000, Dropped: 0}}},
		{From: Time(t0.Add(90 * time.Second)), To: s.Time, Sysctl: *s.Sysctl, Lowest: &Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 2000, NetdevMaxBacklog: 1000, DevWeight: 64},
			Highest: s.Sysctl,
			CPUs:    []SpanCPU{{CPU: 1, Runs: 3996, Packets: 205112, BudgetSqueezes: 9, TimeSqueezes: 3, Processed: 205112, Dropped: 812}}},
	}
	return s
}

func goldenInterval(typ string, seq int) *Interval {
	return &Interval{
		Header:     Header{Type: typ, Time: Time(t0.Add(time.Second))},
		Seq:        seq,
		DurationMs: 1000,
		Drops:      map[string]uint64{"CPU_BACKLOG": 812, "NO_SOCKET": 5},
		CPUs: []CPU{
			{CPU: 0, Drops: map[string]uint64{},
				NetRx:   &NetRx{Runs: 1180, KernelRuns: 1180, BusyUs: 12034, MaxRunUs: 310, TimedRuns: 1180, Polls: 1502, Packets: 15210},
				Softnet: &Softnet{Processed: 15210}},
			{CPU: 1, Drops: map[string]uint64{"CPU_BACKLOG": 812, "NO_SOCKET": 5},
				DropsL4: map[string]map[string]uint64{"CPU_BACKLOG": {"udp": 800, "tcp": 10, "none": 2}, "NO_SOCKET": {"udp": 5}},
				NetRx: &NetRx{Runs: 3996, KernelRuns: 4000, BusyUs: 380412, MaxRunUs: 2210, TimedRuns: 1464, Polls: 9120, Packets: 205112,
					BudgetSqueezes: 9, TimeSqueezes: 3, TimeUnproven: 1, OtherPolls: 2, OtherPackets: 7},
				Softnet: &Softnet{Processed: 205112, Dropped: 812, TimeSqueeze: 14, ReceivedRPS: 0, FlowLimit: 0, BacklogLen: 1000}},
		},
		SNMP: map[string]map[string]int64{"Udp": {"NoPorts": 5, "RcvbufErrors": 0}, "TcpExt": {"ListenOverflows": 0}},
		Checks: []Check{
			{Check: "backlog_drops", Traced: ptr[int64](812), Kernel: ptr[int64](812), Status: StatusMatch,
				Note: "freed on (enqueuing CPU) CPU 1: 812; counted on (backlog CPU) CPU 1: 812"},
			{Check: "time_squeeze", CPU: ptr(1), Traced: ptr[int64](12), Kernel: ptr[int64](14), Status: StatusMismatch,
				Note:        "predicted 9 budget + 3 time; 2 squeezes not predicted, explained by the 4 NET_RX runs BPF did not see on this CPU",
				ExplainedBy: "net_rx_coverage"},
			{Check: "tcp_listen_overflow", Status: StatusUnavailable, Note: "no network namespace's counters could be read"},
		},
		NetnsCoverage: &NetnsCoverage{Read: []uint32{4026531840, 4026532311}, Deferred: 27, Carried: []uint32{4026532290}},
		LostEvents:    52,
		LostRecords:   map[string]uint64{"drop": 12},
		Tracer: Tracer{EventsSent: 777, EventsFiltered: 4120, EventsRateLimited: 30, EventsRingbufFull: 10, EventsWriteFailed: 12,
			EventsWritten: 765, EventsUnread: 0, AggMapFull: 0, SockMapFull: 3, DropRecursionMisses: 0, NetRxRecursionMisses: 0},
		Locations:     []Location{{Location: "enqueue_to_backlog+0x2f4", Reason: "CPU_BACKLOG", Count: 812}},
		Devices:       []Device{{Netns: 4026531840, Ifindex: 2, Ifname: "eth0", Drops: map[string]uint64{"CPU_BACKLOG": 812}}},
		Sysctl:        &Sysctl{NetdevBudget: 600, NetdevBudgetUsecs: 2000, NetdevMaxBacklog: 1000, DevWeight: 64},
		SysctlChanges: []string{"netdev_budget 300->600 at 03:13:26.100"},
		NetIRQs:       []IRQCount{{IRQ: 45, Ifname: "eth0", Queue: 0, Count: 15210, ByCPU: map[int]uint64{0: 15210}}},
		RxDropped:     map[string]uint64{"eth0": 812},
		Ports: []PortDrops{{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9999, Netns: 4026531840, Events: 5,
			Drops: 2996, Addr: "127.0.0.1",
			Holder: Holder{PID: 4242, Comm: "collector", SharedWith: []int{4243},
				Cgroup: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7f3c2a4e_9b1d_4c8e_a6f2_3d5e8b9c1a20.slice/cri-containerd-d0f631ca1ddba8db3bcfcb9e057cdc98d0379f1bee00e75a545147a27dadd982.scope",
				Pod:    "default/collector-0", Container: "collector", PodUID: "7f3c2a4e-9b1d-4c8e-a6f2-3d5e8b9c1a20"},
			SocketDrops: 1234, Queue: 4352, RcvBuf: 4608}},
		Listeners: []Listener{{Netns: 4026531840, Addr: "127.0.0.1", Port: 8080, AcceptQueue: 129, AcceptBacklog: ptr[uint64](128),
			Holder: Holder{PID: 4300, Comm: "api", Cgroup: "/system.slice/api.service", SharedWith: []int{4301, 4302},
				Pod: "default/api-0", Container: "api", PodUID: "0b9d6c2e-1f3a-4e5b-8c7d-9a0b1c2d3e4f"}}},
		Sockstat:            map[string]map[string]int64{"UDP": {"inuse": 3, "mem": 12}},
		McastChanges:        []string{"eth0 joined 01005e0000fb"},
		MulticastDropEvents: 2,
		Verdicts: []Verdict{{
			ID: "backlog_overflow", Severity: SeverityCritical, CPU: ptr(1),
			Evidence:   map[string]any{"dropped": 812, "processed": 205112, "dropped_pct": 0.39, "netdev_max_backlog": 1000},
			Cause:      "CPU 1's input backlog (netdev_max_backlog=1000) overflowed: 812 of 205924 packets (0.39%) were dropped before the stack saw them",
			Fix:        "sysctl -w net.core.netdev_max_backlog=2048 (from 1000: would have held this interval's overflow)",
			Confidence: ConfidenceHigh,
		}},
	}
}

func TestGoldenRecords(t *testing.T) {
	recs := goldenRecords()
	types := make([]string, 0, len(recs))
	for typ := range recs {
		types = append(types, typ)
	}
	sort.Strings(types)
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			rec := recs[typ]
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", typ+".jsonl")
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("the Writer's line differs from %s (an incompatible schema change?):\ngot  %s\nwant %s", path, buf.Bytes(), want)
			}

			// Reading the golden back and writing it again gives the same line: what users
			// parse is what droptrace writes, times included.
			back := reflect.New(reflect.TypeOf(rec).Elem()).Interface()
			if err := json.Unmarshal(want, back); err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			w = NewWriter(&again)
			if err := w.Write(back); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := again.String(); got != string(want) {
				t.Errorf("round trip of %s:\ngot  %s\nwant %s", path, got, want)
			}

			var obj map[string]any
			if err := json.Unmarshal(want, &obj); err != nil {
				t.Fatal(err)
			}
			// The goldens show every field, so a field added to the schema shows up here.
			for _, k := range missingKeys(reflect.TypeOf(rec).Elem(), obj, typ) {
				// The summary has no sequence number, an interval no limit spans, by design.
				// Nor coverage: the summary covers every namespace to the session's end.
				if k != "summary.seq" && k != "interval.limit_spans" && k != "summary.netns_coverage" {
					t.Errorf("%s does not show %s: fill it in goldenRecords", path, k)
				}
			}
			if obj["type"] != typ {
				t.Errorf("type = %v, want %q", obj["type"], typ)
			}
			if !timeRe.MatchString(`"` + obj["time"].(string) + `"`) {
				t.Errorf("time %q is not RFC 3339 UTC with nine fractional digits", obj["time"])
			}
		})
	}
}

// missingKeys lists the JSON fields of t, and of the structs inside it, that v lacks. In an
// array a field counts as shown when any element has it (cpu is only in per-CPU checks).
func missingKeys(t reflect.Type, v any, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	switch t.Kind() {
	case reflect.Slice:
		a, _ := v.([]any)
		if len(a) == 0 {
			if t.Elem().Kind() == reflect.Struct {
				out = append(out, path+"[]")
			}
			break
		}
		seen := map[string]int{}
		for _, e := range a {
			for _, k := range missingKeys(t.Elem(), e, path+"[]") {
				seen[k]++
			}
		}
		for k, n := range seen {
			if n == len(a) {
				out = append(out, k)
			}
		}
		sort.Strings(out)
	case reflect.Struct:
		if t == reflect.TypeFor[Time]() {
			break
		}
		obj, _ := v.(map[string]any)
		for _, f := range jsonFields(t) {
			fv, ok := obj[f.name]
			if !ok {
				out = append(out, path+"."+f.name)
				continue
			}
			out = append(out, missingKeys(f.typ, fv, path+"."+f.name)...)
		}
	}
	return out
}

var timeRe = regexp.MustCompile(`^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"$`)

func TestTimeNineDigitsUTC(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2025, 11, 23, 3, 14, 7, 0, time.UTC), `"2025-11-23T03:14:07.000000000Z"`},
		{time.Date(2025, 11, 23, 3, 14, 7, 120000000, time.UTC), `"2025-11-23T03:14:07.120000000Z"`},
		{time.Date(2025, 11, 23, 3, 14, 7, 123456789, time.UTC), `"2025-11-23T03:14:07.123456789Z"`},
		{time.Date(2025, 11, 23, 8, 44, 7, 1, ist), `"2025-11-23T03:14:07.000000001Z"`},
		{time.Date(2026, 1, 1, 0, 0, 0, 5, ist), `"2025-12-31T18:30:00.000000005Z"`},
	} {
		b, err := json.Marshal(Time(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want || !timeRe.Match(b) {
			t.Errorf("Time(%v) = %s, want %s", tc.in, b, tc.want)
		}
		var back Time
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !time.Time(back).Equal(tc.in) {
			t.Errorf("round trip of %s: %v, want %v", b, time.Time(back), tc.in)
		}
	}
	// Nine digits make lines sort as text in time order.
	a, _ := json.Marshal(Time(time.Date(2025, 1, 1, 0, 0, 0, 900000000, time.UTC)))
	b, _ := json.Marshal(Time(time.Date(2025, 1, 1, 0, 0, 0, 999999999, time.UTC)))
	if string(a) >= string(b) {
		t.Errorf("%s does not sort before %s", a, b)
	}
}
