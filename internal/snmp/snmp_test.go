// SPDX-License-Identifier: Apache-2.0

package snmp

import (
	"os"
	"strings"
	"testing"
)

func open(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestParseSNMP(t *testing.T) {
	c, err := Parse(open(t, "5.4-snmp.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// `grep RcvbufErrors /proc/net/snmp | awk '{print $6}'` prints the header word; the value
	// comes from the line after the header.
	if v, ok := c.Get("Udp", "RcvbufErrors"); !ok || v != 4021 {
		t.Errorf("Udp RcvbufErrors = %d, %v; want 4021", v, ok)
	}
	if v, _ := c.Get("Udp", "NoPorts"); v != 115 {
		t.Errorf("Udp NoPorts = %d", v)
	}
	if v, _ := c.Get("Tcp", "MaxConn"); int64(v) != -1 {
		t.Errorf("Tcp MaxConn = %d, want -1", int64(v))
	}
	if v, _ := c.Get("IcmpMsg", "OutType3"); v != 115 {
		t.Errorf("IcmpMsg OutType3 = %d", v)
	}
}

func TestParseRealFiles(t *testing.T) {
	c, err := Parse(open(t, "6.18-snmp.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Parse(open(t, "6.18-netstat.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s6, err := ParseSNMP6(open(t, "6.18-snmp6.txt"))
	if err != nil {
		t.Fatal(err)
	}
	c.Merge(n)
	c.Merge(s6)
	for _, want := range [][2]string{{"Udp", "RcvbufErrors"}, {"TcpExt", "ListenOverflows"}, {"Udp6", "NoPorts"}, {"Udp6", "RcvbufErrors"}, {"IpExt", "InOctets"}, {"Icmp6", "InMsgs"}, {"UdpLite6", "InDatagrams"}} {
		if _, ok := c.Get(want[0], want[1]); !ok {
			t.Errorf("no %s %s", want[0], want[1])
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"header without values", "Udp: InDatagrams NoPorts\n", "line 1: header of \"Udp\" has no value line"},
		{"prefix mismatch", "Udp: InDatagrams NoPorts\nTcp: 1 2\n", "line 2: values for \"Tcp\" follow the header of \"Udp\" on line 1"},
		{"count mismatch", "Udp: InDatagrams NoPorts\nUdp: 1\n", "lines 1 and 2: Udp has 2 names but 1 values"},
		{"not a number", "Udp: InDatagrams NoPorts\nUdp: 1 x2\n", "line 2: Udp NoPorts = \"x2\": not a number"},
		{"no colon", "garbage\n", "line 1: want \"Group: ...\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ in, want string }{
		{"Udp6NoPorts 1 2\n", "snmp6 line 1: want \"name value\", got 3 fields"},
		{"UdpNoPorts 1\n", "snmp6 line 1: name \"UdpNoPorts\" has no group ending in 6"},
		{"Udp6NoPorts x\n", "snmp6 line 1: Udp6NoPorts = \"x\": not a number"},
	} {
		if _, err := ParseSNMP6(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSNMP6(%q) error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseSNMP6Groups(t *testing.T) {
	c, err := ParseSNMP6(strings.NewReader("Udp6RcvbufErrors \t 7\nIcmp6InType1 3\nUdpLite6NoPorts 0\nIp6InReceives 99\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		g, f string
		v    uint64
	}{{"Udp6", "RcvbufErrors", 7}, {"Icmp6", "InType1", 3}, {"UdpLite6", "NoPorts", 0}, {"Ip6", "InReceives", 99}} {
		if v, ok := c.Get(w.g, w.f); !ok || v != w.v {
			t.Errorf("%s %s = %d, %v", w.g, w.f, v, ok)
		}
	}
}

func TestSub(t *testing.T) {
	prev := Counters{"Udp": {"NoPorts": 10, "RcvbufErrors": ^uint64(0)}, "Tcp": {"InSegs": 1}}
	cur := Counters{"Udp": {"NoPorts": 15, "RcvbufErrors": 2, "New": 5}, "Tcp": {"InSegs": 3}}
	d := Sub(prev, cur, "Udp", "Udp6")
	if d["Udp"]["NoPorts"] != 5 || d["Udp"]["RcvbufErrors"] != 3 {
		t.Errorf("deltas %v (a wrapped 64-bit counter must give 3)", d)
	}
	if _, ok := d["Udp"]["New"]; ok {
		t.Error("a field without baseline got a delta")
	}
	if _, ok := d["Tcp"]; ok {
		t.Error("unrequested group included")
	}
	if _, ok := d["Udp6"]; ok {
		t.Error("missing group invented")
	}
	if all := Sub(prev, cur); all["Tcp"]["InSegs"] != 2 {
		t.Errorf("all groups: %v", all)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"5.4-snmp.txt", "6.18-snmp.txt", "6.18-netstat.txt"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for g := range c {
			if g == "" || strings.ContainsAny(g, " \t:") {
				t.Fatalf("bad group name %q", g)
			}
		}
	})
}

func FuzzParseSNMP6(f *testing.F) {
	b, _ := os.ReadFile("testdata/6.18-snmp6.txt")
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseSNMP6(strings.NewReader(in))
		if err != nil {
			return
		}
		for g := range c {
			if !strings.HasSuffix(g, "6") {
				t.Fatalf("group %q does not end in 6", g)
			}
		}
	})
}

func BenchmarkParseSNMP(b *testing.B) {
	data, _ := os.ReadFile("testdata/6.18-snmp.txt")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}
