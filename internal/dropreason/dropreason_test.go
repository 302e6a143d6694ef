// SPDX-License-Identifier: Apache-2.0

package dropreason

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/btf"
)

type val struct {
	name  string
	value int64
}

func enum(name string, signed bool, vals ...val) *btf.Enum {
	e := &btf.Enum{Name: name, Size: 4, Signed: signed}
	for _, v := range vals {
		e.Values = append(e.Values, btf.EnumValue{Name: v.name, Value: uint64(v.value)})
	}
	return e
}

// spec encodes types to BTF wire format and parses them back, as the kernel's BTF is read.
func spec(t testing.TB, types ...btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func core(prefix string, names ...string) []val {
	var vals []val
	for i, n := range names {
		if n != "" {
			vals = append(vals, val{prefix + n, int64(i)})
		}
	}
	return vals
}

// Excerpts of the enum as three kernels define it.
var (
	// 5.17: the first kernel with the enum; NOT_SPECIFIED is 0.
	k517 = enum("skb_drop_reason", false, core("SKB_DROP_REASON_",
		"NOT_SPECIFIED", "NO_SOCKET", "PKT_TOO_SMALL", "TCP_CSUM", "SOCKET_FILTER", "UDP_CSUM", "MAX")...)
	// 5.18 to 6.1: SKB_NOT_DROPPED_YET = 0 moves every reason up by one.
	k61 = enum("skb_drop_reason", false, append([]val{{"SKB_NOT_DROPPED_YET", 0}}, core("SKB_DROP_REASON_",
		"", "NOT_SPECIFIED", "NO_SOCKET", "PKT_TOO_SMALL", "TCP_CSUM", "SOCKET_FILTER", "UDP_CSUM",
		"NETFILTER_DROP", "OTHERHOST", "IP_CSUM", "IP_INHDR", "IP_RPFILTER", "UNICAST_IN_L2_MULTICAST",
		"XFRM_POLICY", "IP_NOPROTO", "SOCKET_RCVBUFF", "PROTO_MEM", "CPU_BACKLOG", "MAX")...)...)
	// 6.18: SKB_CONSUMED = 1 (since 6.2), the subsystem mask (since 6.4), and values as 6.18's
	// tracepoint prints them.
	k618 = enum("skb_drop_reason", true,
		val{"SKB_NOT_DROPPED_YET", 0}, val{"SKB_CONSUMED", 1},
		val{"SKB_DROP_REASON_NOT_SPECIFIED", 2}, val{"SKB_DROP_REASON_NO_SOCKET", 3},
		val{"SKB_DROP_REASON_SOCKET_RCVBUFF", 6}, val{"SKB_DROP_REASON_PKT_TOO_SMALL", 9},
		val{"SKB_DROP_REASON_TCP_LISTEN_OVERFLOW", 40}, val{"SKB_DROP_REASON_CPU_BACKLOG", 71},
		val{"SKB_DROP_REASON_SKB_CSUM", 75}, val{"SKB_DROP_REASON_MAX", 128},
		val{"SKB_DROP_REASON_SUBSYS_MASK", -65536})
	subsys618 = enum("skb_drop_reason_subsys", false,
		val{"SKB_DROP_REASON_SUBSYS_CORE", 0}, val{"SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", 1},
		val{"SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 2}, val{"SKB_DROP_REASON_SUBSYS_NUM", 3})
)

// openvswitch's enum (net/openvswitch/drop.h), in subsystem ovs.
func ovsEnum(ovs int64) *btf.Enum {
	return enum("ovs_drop_reason", false,
		val{"__OVS_DROP_REASON", ovs << 16}, val{"OVS_DROP_LAST_ACTION", ovs<<16 | 1},
		val{"OVS_DROP_ACTION_ERROR", ovs<<16 | 2}, val{"OVS_DROP_EXPLICIT", ovs<<16 | 3},
		val{"OVS_DROP_IP_TTL", ovs<<16 | 11}, val{"OVS_DROP_MAX", ovs<<16 | 12})
}

// mac80211's two enums (net/mac80211/drop.h): the ___ twin and the public one, with core
// values mixed in.
func mac80211Enums(unusable, monitor int64) []btf.Type {
	twin := enum("___mac80211_drop_reason", false,
		val{"___RX_CONTINUE", 1}, val{"___RX_QUEUED", 0},
		val{"___RX_DROP_UNUSABLE", unusable << 16}, val{"___RX_DROP_U_MIC_FAIL", unusable<<16 | 1},
		val{"___RX_DROP_U_REPLAY", unusable<<16 | 2}, val{"___RX_DROP_U_SHORT_GMAC", unusable<<16 | 0x29})
	public := enum("mac80211_drop_reason", false,
		val{"RX_CONTINUE", 1}, val{"RX_QUEUED", 0},
		val{"RX_DROP_U_MIC_FAIL", unusable<<16 | 1}, val{"RX_DROP_U_REPLAY", unusable<<16 | 2},
		val{"RX_DROP_U_SHORT_GMAC", unusable<<16 | 0x29})
	if monitor != 0 {
		twin.Values = append(twin.Values, btf.EnumValue{Name: "___RX_DROP_MONITOR", Value: uint64(monitor << 16)})
		public.Values = append(public.Values,
			btf.EnumValue{Name: "RX_DROP_MONITOR", Value: uint64(monitor << 16)},
			btf.EnumValue{Name: "RX_DROP_M_UNEXPECTED_4ADDR_FRAME", Value: uint64(monitor<<16 | 1)},
			btf.EnumValue{Name: "RX_DROP_M_BAD_BCN_KEYIDX", Value: uint64(monitor<<16 | 2)},
			btf.EnumValue{Name: "RX_DROP_M_BAD_MGMT_KEYIDX", Value: uint64(monitor<<16 | 3)})
	}
	return []btf.Type{twin, public}
}

func fromSpec(t testing.TB, vmlinux *btf.Spec, modules ...*btf.Spec) *Table {
	t.Helper()
	tab, err := FromSpec(vmlinux, modules...)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestSameNameDifferentCodes(t *testing.T) {
	kernels := []struct {
		name  string
		enum  *btf.Enum
		codes map[string]uint32
		names map[uint32]string // what codes mean here, unknown ones included
		len   int
	}{
		{"5.17", k517,
			map[string]uint32{"NOT_SPECIFIED": 0, "NO_SOCKET": 1, "UDP_CSUM": 5},
			map[uint32]string{0: "NOT_SPECIFIED", 1: "NO_SOCKET", 2: "PKT_TOO_SMALL", 6: "UNKNOWN_6", 71: "UNKNOWN_71"},
			6},
		{"6.1", k61,
			map[string]uint32{"NOT_SPECIFIED": 1, "NO_SOCKET": 2, "SOCKET_RCVBUFF": 15, "CPU_BACKLOG": 17},
			map[uint32]string{0: "UNKNOWN_0", 1: "NOT_SPECIFIED", 2: "NO_SOCKET", 18: "UNKNOWN_18", 71: "UNKNOWN_71"},
			17},
		{"6.18", k618,
			map[string]uint32{"NOT_SPECIFIED": 2, "NO_SOCKET": 3, "SOCKET_RCVBUFF": 6, "CPU_BACKLOG": 71,
				"TCP_LISTEN_OVERFLOW": 40, "SKB_CSUM": 75},
			map[uint32]string{0: "UNKNOWN_0", 1: "UNKNOWN_1", 2: "NOT_SPECIFIED", 17: "UNKNOWN_17", 128: "UNKNOWN_128",
				0xffff0000: "UNKNOWN_4294901760"},
			7},
	}
	for _, k := range kernels {
		tab := fromSpec(t, spec(t, k.enum))
		for name, code := range k.codes {
			if got, ok := tab.Code(name); !ok || got != code {
				t.Errorf("%s: Code(%q) = %d, %v; want %d", k.name, name, got, ok, code)
			}
			if got := tab.Name(code); got != name {
				t.Errorf("%s: Name(%d) = %q, want %q", k.name, code, got, name)
			}
		}
		for code, name := range k.names {
			if got := tab.Name(code); got != name {
				t.Errorf("%s: Name(%d) = %q, want %q", k.name, code, got, name)
			}
		}
		for _, notReason := range []string{"MAX", "NOT_DROPPED_YET", "CONSUMED", "SUBSYS_MASK", "UNKNOWN_0"} {
			if c, ok := tab.Code(notReason); ok {
				t.Errorf("%s: Code(%q) = %d: not a reason", k.name, notReason, c)
			}
		}
		if tab.Len() != k.len {
			t.Errorf("%s: Len() = %d, want %d", k.name, tab.Len(), k.len)
		}
	}
}

// A kernel that exists nowhere: names and numbers no compiled-in table could know.
func TestNamesComeOnlyFromTheSpec(t *testing.T) {
	fake := enum("skb_drop_reason", false,
		val{"SKB_DROP_REASON_FROBNICATED", 7}, val{"SKB_DROP_REASON_NO_SOCKET", 42},
		val{"SKB_DROP_REASON_NOT_SPECIFIED", 1000}, val{"SKB_DROP_REASON_ALIAS_OF_42", 42},
		val{"SKB_DROP_REASON_MAX", 1001})
	tab := fromSpec(t, spec(t, fake))
	want := map[uint32]string{7: "FROBNICATED", 42: "NO_SOCKET", 1000: "NOT_SPECIFIED"}
	for code := range uint32(2000) {
		got := tab.Name(code)
		if w, ok := want[code]; ok {
			if got != w {
				t.Errorf("Name(%d) = %q, want %q", code, got, w)
			}
		} else if got != "UNKNOWN_"+strconv.Itoa(int(code)) {
			t.Errorf("Name(%d) = %q: not in this kernel's BTF", code, got)
		}
	}
	if c, ok := tab.Code("ALIAS_OF_42"); ok {
		t.Errorf("an alias of a named value got code %d", c)
	}
	if tab.Len() != 3 {
		t.Errorf("Len() = %d, want 3", tab.Len())
	}
}

func TestSubsystemReasons(t *testing.T) {
	vm := spec(t, k618, subsys618)
	ovs := spec(t, ovsEnum(2))
	mac := spec(t, mac80211Enums(1, 0)...)
	tab := fromSpec(t, vm, ovs, mac)
	for code, want := range map[uint32]string{
		2<<16 | 1:    "OPENVSWITCH:LAST_ACTION",
		2<<16 | 3:    "OPENVSWITCH:EXPLICIT",
		2<<16 | 11:   "OPENVSWITCH:IP_TTL",
		2<<16 | 5:    "OPENVSWITCH_5",  // the module's BTF does not name it
		2 << 16:      "OPENVSWITCH_0",  // __OVS_DROP_REASON marks the subsystem's base
		2<<16 | 12:   "OPENVSWITCH_12", // OVS_DROP_MAX counts, it names nothing
		1<<16 | 1:    "MAC80211_UNUSABLE:MIC_FAIL",
		1<<16 | 0x29: "MAC80211_UNUSABLE:SHORT_GMAC",
		1 << 16:      "MAC80211_UNUSABLE_0",
		3<<16 | 1:    "UNKNOWN_196609", // no subsystem 3 on this kernel
		1:            "UNKNOWN_1",      // RX_CONTINUE is SKB_CONSUMED, a core value
		71:           "CPU_BACKLOG",
	} {
		if got := tab.Name(code); got != want {
			t.Errorf("Name(%#x) = %q, want %q", code, got, want)
		}
	}
	// 7 core reasons, 4 of openvswitch, 3 of mac80211.
	if tab.Len() != 14 {
		t.Errorf("Len() = %d, want 14", tab.Len())
	}
	for _, name := range []string{"OPENVSWITCH:LAST_ACTION", "MAC80211_UNUSABLE:REPLAY", "NO_SOCKET"} {
		code, ok := tab.Code(name)
		if !ok || tab.Name(code) != name {
			t.Errorf("Code(%q) = %#x, %v: does not round-trip", name, code, ok)
		}
	}
	if c, ok := tab.Code("OPENVSWITCH_5"); ok {
		t.Errorf("a fallback form is not a name, got code %#x", c)
	}

	// Without the modules, the subsystem is known but not its reasons.
	bare := fromSpec(t, vm)
	if got := bare.Name(2<<16 | 1); got != "OPENVSWITCH_1" {
		t.Errorf("without the module's BTF: %q", got)
	}
	if bare.Len() != 7 {
		t.Errorf("without modules Len() = %d, want 7", bare.Len())
	}
}

// Kernels 6.5 to 6.17 also had a subsystem for frames mac80211 drops to monitor interfaces,
// whose base value RX_DROP_MONITOR is itself passed as a reason.
func TestMonitorSubsystem(t *testing.T) {
	vm := spec(t, k618, enum("skb_drop_reason_subsys", false,
		val{"SKB_DROP_REASON_SUBSYS_CORE", 0}, val{"SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", 1},
		val{"SKB_DROP_REASON_SUBSYS_MAC80211_MONITOR", 2}, val{"SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 3},
		val{"SKB_DROP_REASON_SUBSYS_NUM", 4}))
	tab := fromSpec(t, vm, spec(t, mac80211Enums(1, 2)...), spec(t, ovsEnum(3)))
	for code, want := range map[uint32]string{
		2 << 16:   "MAC80211_MONITOR:RX_DROP_MONITOR",
		2<<16 | 1: "MAC80211_MONITOR:UNEXPECTED_4ADDR_FRAME",
		2<<16 | 3: "MAC80211_MONITOR:BAD_MGMT_KEYIDX",
		1<<16 | 2: "MAC80211_UNUSABLE:REPLAY",
		3<<16 | 1: "OPENVSWITCH:LAST_ACTION",
	} {
		if got := tab.Name(code); got != want {
			t.Errorf("Name(%#x) = %q, want %q", code, got, want)
		}
	}
}

func TestLazyModuleBTF(t *testing.T) {
	tab := fromSpec(t, spec(t, k618, subsys618))
	var mu sync.Mutex
	calls := map[string]int{}
	ovs := spec(t, ovsEnum(2))
	tab.loadModule = func(mod string) (*btf.Spec, error) {
		mu.Lock()
		calls[mod]++
		mu.Unlock()
		if mod == "openvswitch" {
			return ovs, nil
		}
		return nil, fmt.Errorf("open /sys/kernel/btf/%s: %w", mod, fs.ErrNotExist)
	}
	if tab.Len() != 7 {
		t.Fatalf("Len() = %d before any subsystem code, want 7", tab.Len())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got := tab.Name(2<<16 | 1); got != "OPENVSWITCH:LAST_ACTION" {
					t.Errorf("Name = %q", got)
					return
				}
				if got := tab.Name(1<<16 | 1); got != "MAC80211_UNUSABLE_1" {
					t.Errorf("Name = %q", got)
					return
				}
				_ = tab.Name(71)
			}
		})
	}
	wg.Wait()
	// MAC80211_UNUSABLE is looked for as mac80211, then mac80211_unusable; each once.
	want := map[string]int{"openvswitch": 1, "mac80211": 1, "mac80211_unusable": 1}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("module BTF reads %v, want %v", calls, want)
	}
	if tab.Len() != 11 {
		t.Errorf("Len() = %d after reading openvswitch, want 11", tab.Len())
	}

	// Code finds a subsystem name before any code of it was seen.
	fresh := fromSpec(t, spec(t, k618, subsys618))
	fresh.loadModule = tab.loadModule
	if c, ok := fresh.Code("OPENVSWITCH:IP_TTL"); !ok || c != 2<<16|11 {
		t.Errorf("Code(OPENVSWITCH:IP_TTL) = %#x, %v", c, ok)
	}
}

func TestNoEnum(t *testing.T) {
	for name, s := range map[string]*btf.Spec{
		"other enums only": spec(t, enum("something_else", false, val{"A", 1}), subsys618),
		"declaration only": spec(t, enum("skb_drop_reason", false)),
	} {
		_, err := FromSpec(s)
		if !errors.Is(err, ErrNoEnum) {
			t.Errorf("%s: err %v, want ErrNoEnum", name, err)
		}
	}
}

func TestSharedPrefix(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{"OVS_DROP_LAST_ACTION"}, ""},
		{[]string{"OVS_DROP_LAST_ACTION", "OVS_DROP_LAST_ERROR"}, "OVS_DROP_LAST_"},
		{[]string{"OVS_DROP_EXPLICIT", "OVS_DROP_EXPLICIT_WITH_ERROR"}, "OVS_DROP_"},
		{[]string{"RX_DROP_U_MIC_FAIL", "RX_DROP_U_REPLAY", "RX_DROP_M_X"}, "RX_DROP_"},
		{[]string{"ABC", "ABD"}, ""},
	} {
		if got := sharedPrefix(tc.names); got != tc.want {
			t.Errorf("sharedPrefix(%q) = %q, want %q", tc.names, got, tc.want)
		}
	}
}

const tracefs = "/sys/kernel/tracing"

// tracepointReasons parses the __print_symbolic table of skb:kfree_skb: the kernel's own
// code-to-name table, generated from the same enum.
func tracepointReasons(t *testing.T) map[uint32]string {
	t.Helper()
	format := tracefs + "/events/skb/kfree_skb/format"
	if _, err := os.Stat(tracefs + "/events"); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("SKIPPED: cannot compare with the kernel's own table: %s is not mounted and mounting it needs root", tracefs)
		}
		// Left mounted: it is where tracefs belongs, and unmounting could pull it from
		// under another process that started using it meanwhile.
		if err := syscall.Mount("nodev", tracefs, "tracefs", 0, ""); err != nil {
			t.Fatalf("mount -t tracefs nodev %s: %v", tracefs, err)
		}
	}
	f, err := os.Open(format)
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("SKIPPED: cannot compare with the kernel's own table: %v (needs root)", err)
		}
		t.Fatal(err)
	}
	defer f.Close()
	entry := regexp.MustCompile(`\{ (\d+), "(\w+)" \}`)
	got := map[uint32]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "print fmt:") {
			continue
		}
		for _, m := range entry.FindAllStringSubmatch(sc.Text(), -1) {
			code, err := strconv.ParseUint(m[1], 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			got[uint32(code)] = m[2]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Fatalf("no __print_symbolic table in %s", format)
	}
	return got
}

func TestRunningKernel(t *testing.T) {
	tab, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	kernel := tracepointReasons(t)
	var reasons int
	for code, name := range kernel {
		if name == "MAX" {
			if got := tab.Name(code); got != "UNKNOWN_"+strconv.Itoa(int(code)) {
				t.Errorf("MAX (%d) named %q", code, got)
			}
			continue
		}
		reasons++
		if got := tab.Name(code); got != name {
			t.Errorf("code %d: BTF says %q, the tracepoint %q", code, got, name)
		}
	}
	if tab.Len() != reasons {
		t.Errorf("BTF names %d reasons, the tracepoint %d", tab.Len(), reasons)
	}
	for _, name := range []string{"CPU_BACKLOG", "NO_SOCKET", "SOCKET_RCVBUFF", "NOT_SPECIFIED", "TCP_LISTEN_OVERFLOW"} {
		code, ok := tab.Code(name)
		if !ok {
			t.Errorf("this kernel has no %s", name)
			continue
		}
		if kernel[code] != name {
			t.Errorf("BTF gives %s code %d, the tracepoint calls %d %q", name, code, code, kernel[code])
		}
	}
	t.Logf("%d drop reasons on this kernel", tab.Len())
}

func BenchmarkName(b *testing.B) {
	tab, err := Load()
	if err != nil {
		b.Fatal(err)
	}
	backlog, ok := tab.Code("CPU_BACKLOG")
	if !ok {
		b.Fatal("no CPU_BACKLOG")
	}
	sub := fromSpec(b, spec(b, k618, subsys618), spec(b, ovsEnum(2)))
	for _, bc := range []struct {
		name string
		tab  *Table
		code uint32
	}{
		{"core", tab, backlog},
		{"subsystem", sub, 2<<16 | 1},
		{"subsystem-unnamed", sub, 2<<16 | 7},
		{"unknown", tab, 60000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = bc.tab.Name(bc.code)
			}
		})
	}
}

// FuzzFromSpec builds kernels from text: "enum NAME" starts an enum, "NAME VALUE" adds a
// value; enums other than skb_drop_reason and skb_drop_reason_subsys go to a module.
func FuzzFromSpec(f *testing.F) {
	f.Add("enum skb_drop_reason\nSKB_NOT_DROPPED_YET 0\nSKB_DROP_REASON_NOT_SPECIFIED 1\nSKB_DROP_REASON_MAX 2\n")
	f.Add("enum skb_drop_reason\nSKB_DROP_REASON_A 5\nSKB_DROP_REASON_B 5\nSKB_DROP_REASON_MAX 5\nSKB_DROP_REASON_SUBSYS_MASK -65536\n" +
		"enum skb_drop_reason_subsys\nSKB_DROP_REASON_SUBSYS_CORE 0\nSKB_DROP_REASON_SUBSYS_OPENVSWITCH 2\n" +
		"enum ovs_drop_reason\n__OVS_DROP_REASON 131072\nOVS_DROP_LAST_ACTION 131073\nOVS_DROP_X 131074\nOVS_DROP_MAX 131075\n")
	f.Add("enum skb_drop_reason_subsys\nSKB_DROP_REASON_SUBSYS_X 1\n")
	f.Fuzz(func(t *testing.T, text string) {
		var vm, mod []btf.Type
		var cur *btf.Enum
		var values []uint32
		for _, line := range strings.Split(text, "\n") {
			w := strings.Fields(line)
			if len(w) != 2 {
				continue
			}
			if w[0] == "enum" {
				cur = &btf.Enum{Name: w[1], Size: 4, Signed: true}
				if w[1] == "skb_drop_reason" || w[1] == "skb_drop_reason_subsys" {
					vm = append(vm, cur)
				} else {
					mod = append(mod, cur)
				}
				continue
			}
			v, err := strconv.ParseInt(w[1], 0, 32)
			if err != nil || cur == nil {
				continue
			}
			cur.Values = append(cur.Values, btf.EnumValue{Name: w[0], Value: uint64(v)})
			values = append(values, uint32(v), uint32(v)+1)
		}
		if len(vm) == 0 {
			return
		}
		build := func(types []btf.Type) *btf.Spec {
			b, err := btf.NewBuilder(types, nil)
			if err != nil {
				return nil
			}
			raw, err := b.Marshal(nil, nil)
			if err != nil {
				return nil
			}
			s, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
			if err != nil {
				return nil
			}
			return s
		}
		vs := build(vm)
		if vs == nil {
			return
		}
		var mods []*btf.Spec
		if ms := build(mod); len(mod) > 0 && ms != nil {
			mods = append(mods, ms)
		}
		tab, err := FromSpec(vs, mods...)
		if err != nil {
			return
		}
		named := 0
		for _, code := range append(values, 0, 1<<16, 1<<32-1) {
			name := tab.Name(code)
			if name == "" || name == "MAX" || strings.ContainsAny(name, " \t\n") {
				t.Fatalf("Name(%#x) = %q", code, name)
			}
			if c, ok := tab.Code(name); ok {
				named++
				if c != code {
					t.Fatalf("Name(%#x) = %q, but Code(%q) = %#x", code, name, name, c)
				}
			} else if !strings.HasSuffix(name, "_"+strconv.FormatUint(uint64(code&lowMask), 10)) &&
				name != "UNKNOWN_"+strconv.FormatUint(uint64(code), 10) {
				t.Fatalf("Name(%#x) = %q is neither a name nor a fallback form", code, name)
			}
		}
		if tab.Len() < 0 || (named > 0 && tab.Len() == 0) {
			t.Fatalf("Len() = %d with %d names seen", tab.Len(), named)
		}
	})
}

// Names lists what Code finds, for suggestions when a name is not found.
func TestNames(t *testing.T) {
	tab := fromSpec(t, spec(t, k618, subsys618))
	names := tab.Names()
	if len(names) != tab.Len() || !slices.IsSorted(names) || !slices.Contains(names, "NO_SOCKET") {
		t.Errorf("Names() = %v: want the %d names, sorted", names, tab.Len())
	}
	for _, n := range names {
		if _, ok := tab.Code(n); !ok {
			t.Errorf("Names() lists %q, which Code does not find", n)
		}
	}
}
