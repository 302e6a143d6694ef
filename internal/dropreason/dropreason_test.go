// SPDX-License-Identifier: Apache-2.0

package dropreason

import (
	"bufio"
	"errors"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf/btf"
)

func enum(name string, vals ...any) *btf.Enum {
	e := &btf.Enum{Name: name, Size: 4}
	for i := 0; i < len(vals); i += 2 {
		e.Values = append(e.Values, btf.EnumValue{Name: vals[i].(string), Value: uint64(vals[i+1].(int))})
	}
	return e
}

func spec(t *testing.T, types ...btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Simulated kernels: the same reason has a different number on each, as it has upstream.
func TestNamesComeFromTheKernelsBTF(t *testing.T) {
	k517 := spec(t, enum("skb_drop_reason",
		"SKB_DROP_REASON_NOT_SPECIFIED", 0, "SKB_DROP_REASON_NO_SOCKET", 1, "SKB_DROP_REASON_PKT_TOO_SMALL", 2,
		"SKB_DROP_REASON_MAX", 3))
	k61 := spec(t, enum("skb_drop_reason",
		"SKB_NOT_DROPPED_YET", 0, "SKB_DROP_REASON_NOT_SPECIFIED", 1, "SKB_DROP_REASON_NO_SOCKET", 2,
		"SKB_DROP_REASON_CPU_BACKLOG", 59, "SKB_DROP_REASON_MAX", 70))
	k618 := spec(t,
		enum("skb_drop_reason", "SKB_NOT_DROPPED_YET", 0, "SKB_CONSUMED", 1, "SKB_DROP_REASON_NOT_SPECIFIED", 2,
			"SKB_DROP_REASON_NO_SOCKET", 3, "SKB_DROP_REASON_CPU_BACKLOG", 71, "SKB_DROP_REASON_MAX", 128,
			"SKB_DROP_REASON_SUBSYS_MASK", -65536&0xffffffff),
		enum("skb_drop_reason_subsys", "SKB_DROP_REASON_SUBSYS_CORE", 0, "SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", 1,
			"SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 2, "SKB_DROP_REASON_SUBSYS_NUM", 3))

	tests := []struct {
		spec  *btf.Spec
		codes map[string]uint32
	}{
		{k517, map[string]uint32{"NOT_SPECIFIED": 0, "NO_SOCKET": 1}},
		{k61, map[string]uint32{"NOT_SPECIFIED": 1, "NO_SOCKET": 2, "CPU_BACKLOG": 59}},
		{k618, map[string]uint32{"NOT_SPECIFIED": 2, "NO_SOCKET": 3, "CPU_BACKLOG": 71, "CONSUMED": 1}},
	}
	for i, tc := range tests {
		tab, err := FromSpec(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		for name, code := range tc.codes {
			if got := tab.Name(code); got != name {
				t.Errorf("kernel %d: Name(%d) = %q, want %q", i, code, got, name)
			}
			if got, ok := tab.Code(name); !ok || got != code {
				t.Errorf("kernel %d: Code(%q) = %d, %v; want %d", i, name, got, ok, code)
			}
		}
	}
	tab, _ := FromSpec(k618)
	if got := tab.Name(128); got != "UNKNOWN_128" {
		t.Errorf("MAX must not be a reason: %q", got)
	}
	if got := tab.Name(2<<16 | 3); got != "OPENVSWITCH:3" {
		t.Errorf("subsystem reason without its module: %q", got)
	}
	if got := tab.Name(9<<16 | 3); got != "UNKNOWN_589827" {
		t.Errorf("unregistered subsystem: %q", got)
	}
	old, _ := FromSpec(k517)
	if got := old.Name(71); got != "UNKNOWN_71" {
		t.Errorf("a 6.18 code on a 5.17 kernel: %q", got)
	}
}

func TestModuleSubsystemReasons(t *testing.T) {
	vm := spec(t,
		enum("skb_drop_reason", "SKB_DROP_REASON_NOT_SPECIFIED", 2, "SKB_DROP_REASON_MAX", 10),
		enum("skb_drop_reason_subsys", "SKB_DROP_REASON_SUBSYS_CORE", 0, "SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 2))
	ovs := spec(t, enum("ovs_drop_reason", "__OVS_DROP_REASON", 2<<16, "OVS_DROP_LAST_ACTION", 2<<16|1, "OVS_DROP_ACTION_ERROR", 2<<16|2))
	tab, err := FromSpec(vm, ovs)
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Name(2<<16 | 1); got != "OPENVSWITCH:OVS_DROP_LAST_ACTION" {
		t.Errorf("got %q", got)
	}
	if got := tab.Name(2 << 16); got != "OPENVSWITCH:0" {
		t.Errorf("the subsystem marker is not a reason: %q", got)
	}
}

func TestNoEnum(t *testing.T) {
	_, err := FromSpec(spec(t, enum("something_else", "A", 1)))
	if !errors.Is(err, ErrNoEnum) {
		t.Errorf("err %v, want ErrNoEnum", err)
	}
}

// The running kernel's BTF and its tracepoint format print the same table.
func TestRunningKernelMatchesTracepointFormat(t *testing.T) {
	tab, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"CPU_BACKLOG", "NO_SOCKET", "SOCKET_RCVBUFF", "NOT_SPECIFIED", "TCP_LISTEN_OVERFLOW"} {
		if _, ok := tab.Code(n); !ok {
			t.Errorf("this kernel has no %s", n)
		}
	}
	f, err := os.Open("/sys/kernel/tracing/events/skb/kfree_skb/format")
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skip("SKIPPED: the tracepoint format needs root and tracefs")
		}
		t.Fatalf("%v (mount tracefs: mount -t tracefs nodev /sys/kernel/tracing)", err)
	}
	defer f.Close()
	re := regexp.MustCompile(`\{ (\d+), "([A-Z0-9_]+)" \}`)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var n int
	for sc.Scan() {
		for _, m := range re.FindAllStringSubmatch(sc.Text(), -1) {
			code, _ := strconv.Atoi(m[1])
			if m[2] == "MAX" {
				continue
			}
			n++
			if got := tab.Name(uint32(code)); got != m[2] {
				t.Errorf("code %d: BTF says %q, tracepoint format says %q", code, got, m[2])
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d reasons in the tracepoint format", n)
	}
}

func BenchmarkName(b *testing.B) {
	tab, err := Load()
	if err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = tab.Name(3)
	}
}
