// SPDX-License-Identifier: Apache-2.0

package snmp

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func open(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fixture is the content of testdata/name.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func load(t testing.TB, name string) Counters {
	t.Helper()
	parse := Parse
	if strings.Contains(name, "snmp6") {
		parse = ParseSNMP6
	}
	c, err := parse(open(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

type gf struct{ group, field string }

func TestParseFixtures(t *testing.T) {
	minus1 := ^uint64(0)
	tests := []struct {
		file   string
		groups []string
		want   map[gf]uint64
		absent []gf // fields that kernel does not print
	}{
		{"5.4-snmp.txt", []string{"Icmp", "IcmpMsg", "Ip", "Tcp", "Udp", "UdpLite"},
			map[gf]uint64{{"Udp", "RcvbufErrors"}: 4021, {"Udp", "NoPorts"}: 115, {"Tcp", "MaxConn"}: minus1, {"IcmpMsg", "OutType3"}: 115, {"Ip", "InReceives"}: 2345678},
			[]gf{{"Udp", "MemErrors"}, {"Ip", "OutTransmits"}}},
		{"5.4-netstat.txt", []string{"IpExt", "TcpExt"},
			map[gf]uint64{{"TcpExt", "ListenOverflows"}: 37, {"TcpExt", "ListenDrops"}: 37, {"TcpExt", "TCPBacklogDrop"}: 3, {"IpExt", "InOctets"}: 918273645512},
			[]gf{{"TcpExt", "TCPDSACKRecvSegs"}, {"MPTcpExt", "MPCapableSYNRX"}}},
		{"5.4-snmp6.txt", []string{"Icmp6", "Ip6", "Udp6", "UdpLite6"},
			map[gf]uint64{{"Udp6", "RcvbufErrors"}: 2210, {"Udp6", "IgnoredMulti"}: 312, {"Icmp6", "OutType143"}: 9, {"Icmp6", "InType1"}: 4, {"Ip6", "InReceives"}: 20112331},
			[]gf{{"Udp6", "MemErrors"}, {"Icmp6", "InType2"}}},
		{"6.1-snmp.txt", []string{"Icmp", "IcmpMsg", "Ip", "Tcp", "Udp", "UdpLite"},
			map[gf]uint64{
				{"Udp", "RcvbufErrors"}: 91234, {"Udp", "InErrors"}: 91300, {"Udp", "MemErrors"}: 0, {"Tcp", "MaxConn"}: minus1,
				{"Ip", "ForwDatagrams"}: 7712093112, // wider than 32 bits
				// IcmpMsg comes in two pairs: 16 types, then the rest.
				{"IcmpMsg", "InType128"}: 6, {"IcmpMsg", "InType253"}: 1, {"IcmpMsg", "OutType11"}: 71044,
			},
			[]gf{{"Icmp", "OutRateLimitHost"}, {"IcmpMsg", "InType1"}}},
		{"6.1-netstat.txt", []string{"IpExt", "MPTcpExt", "TcpExt"},
			map[gf]uint64{{"TcpExt", "ListenDrops"}: 1519, {"TcpExt", "TCPRcvQDrop"}: 2, {"MPTcpExt", "MPCapableSYNRX"}: 0},
			[]gf{{"TcpExt", "TCPAOGood"}}},
		{"6.1-snmp6.txt", []string{"Icmp6", "Ip6", "Udp6", "UdpLite6"},
			map[gf]uint64{{"Udp6", "MemErrors"}: 0, {"UdpLite6", "MemErrors"}: 0, {"Udp6", "InErrors"}: 2210},
			[]gf{{"Ip6", "OutTransmits"}}},
		// Read on a 6.18 host as they were, not curated: only the groups' presence is checked.
		{"6.18-snmp.txt", []string{"Icmp", "IcmpMsg", "Ip", "Tcp", "Udp", "UdpLite"},
			map[gf]uint64{{"Tcp", "MaxConn"}: minus1}, nil},
		{"6.18-netstat.txt", []string{"IpExt", "MPTcpExt", "TcpExt"}, nil, nil},
		{"6.18-snmp6.txt", []string{"Icmp6", "Ip6", "Udp6", "UdpLite6"}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			c := load(t, tc.file)
			if got := slices.Sorted(maps.Keys(c)); !slices.Equal(got, tc.groups) {
				t.Errorf("groups %v, want %v", got, tc.groups)
			}
			for k, want := range tc.want {
				if v, ok := c.Get(k.group, k.field); !ok || v != want {
					t.Errorf("%s %s = %d, %v; want %d", k.group, k.field, v, ok, want)
				}
			}
			for _, k := range tc.absent {
				if v, ok := c.Get(k.group, k.field); ok {
					t.Errorf("%s %s = %d, want absent", k.group, k.field, v)
				}
			}
		})
	}
}

func TestIcmpMsgPairsCombine(t *testing.T) {
	c := load(t, "6.1-snmp.txt")
	if n := len(c["IcmpMsg"]); n != 21 {
		t.Errorf("IcmpMsg has %d types, want 16 from the first pair and 5 from the second", n)
	}
}

// `grep RcvbufErrors /proc/net/snmp | awk '{print $6}'`, as articles on UDP drops suggest,
// prints the word RcvbufErrors: the name is on the header line, its number on the next one.
func TestRcvbufErrorsComesFromValueLine(t *testing.T) {
	sc := bufio.NewScanner(open(t, "6.1-snmp.txt"))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); strings.Contains(sc.Text(), "RcvbufErrors") && f[5] != "RcvbufErrors" {
			t.Fatalf("fixture changed: grep now finds %q", sc.Text())
		}
	}
	c := load(t, "6.1-snmp.txt")
	if v, ok := c.Get("Udp", "RcvbufErrors"); !ok || v != 91234 {
		t.Errorf("Udp RcvbufErrors = %d, %v; want 91234 from the value line", v, ok)
	}
	if v, _ := c.Get("UdpLite", "RcvbufErrors"); v != 0 {
		t.Errorf("UdpLite RcvbufErrors = %d: a grep would also have matched UdpLite", v)
	}
}

func TestMergeAll(t *testing.T) {
	all := Counters{}
	fields := 0
	for _, name := range []string{"6.18-snmp.txt", "6.18-netstat.txt", "6.18-snmp6.txt"} {
		c := load(t, name)
		for g, fs := range c {
			if _, dup := all[g]; dup {
				t.Errorf("group %s in two files", g)
			}
			fields += len(fs)
		}
		all.Merge(c)
	}
	n := 0
	for _, fs := range all {
		n += len(fs)
	}
	if n != fields {
		t.Errorf("merged %d fields, the files have %d", n, fields)
	}
	for _, k := range []gf{{"Udp", "RcvbufErrors"}, {"TcpExt", "ListenOverflows"}, {"Udp6", "NoPorts"}, {"Udp6", "RcvbufErrors"}, {"IpExt", "InOctets"}, {"Icmp6", "InMsgs"}, {"UdpLite6", "InDatagrams"}, {"Ip", "OutTransmits"}, {"TcpExt", "TCPAOGood"}} {
		if _, ok := all.Get(k.group, k.field); !ok {
			t.Errorf("no %s %s", k.group, k.field)
		}
	}
	// o wins where both have a field.
	c := Counters{"Udp": {"NoPorts": 1}}
	c.Merge(Counters{"Udp": {"NoPorts": 2, "InErrors": 3}})
	if c["Udp"]["NoPorts"] != 2 || c["Udp"]["InErrors"] != 3 {
		t.Errorf("merge: %v", c)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		file  string
		parse func(io.Reader) (Counters, error)
		want  string
	}{
		{"header-without-values.txt", Parse, `snmp line 11: header of "UdpLite" has no value line`},
		{"mismatched-prefix.txt", Parse, `snmp line 8: values for "Udp" follow the header of "Tcp" on line 7`},
		{"count-mismatch.txt", Parse, "netstat lines 3 and 4: IpExt has 18 names but 17 values"},
		{"not-a-number.txt", Parse, `snmp line 12: Udp RcvbufErrors = "9l234": not a decimal number`},
		{"missing-header.txt", Parse, `snmp line 1: Ip header field 1 is "1", want a name (header line missing?)`},
		{"empty.txt", Parse, "snmp/netstat: no counters"},
		{"empty.txt", ParseSNMP6, "snmp6: no counters"},
		{"snmp6-not-a-number.txt", ParseSNMP6, `snmp6 line 80: Udp6RcvbufErrors = "-": not a decimal number`},
		{"snmp6-concatenated.txt", ParseSNMP6, "snmp6 line 93: Ip6InReceives already on line 1"},
		{"snmp6-dev.txt", ParseSNMP6, `snmp6 line 1: name "ifIndex" is not <group>6<field>`},
		{"snmp6-three-fields.txt", ParseSNMP6, `snmp6 line 3: want "name value", got 3 fields`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := tc.parse(open(t, filepath.Join("bad", tc.file)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	inline := []struct {
		in, want string
		parse    func(io.Reader) (Counters, error)
	}{
		{"garbage\n", `snmp/netstat line 1: want "Group: fields...", got "garbage"`, Parse},
		{"Udp:\nUdp:\n", `snmp line 1: header of "Udp" names no fields`, Parse},
		{"Udp: InDatagrams 2x\nUdp: 1 2\n", `snmp line 1: Udp header field 2 is "2x", want a name`, Parse},
		{"TcpExt: A B\nTcpExt: 1\n", "netstat lines 1 and 2: TcpExt has 2 names but 1 values", Parse},
		{"Udp: InDatagrams\nUdp: 18446744073709551616\n", `snmp line 2: Udp InDatagrams = "18446744073709551616": out of 64-bit range`, Parse},
		{"Udp6NoPorts 1 2\n", `snmp6 line 1: want "name value", got 3 fields`, ParseSNMP6},
		{"UdpNoPorts 1\n", `snmp6 line 1: name "UdpNoPorts" is not <group>6<field>`, ParseSNMP6},
		{"Udp6 1\n", `snmp6 line 1: name "Udp6" is not <group>6<field>`, ParseSNMP6},
		{"Udp6NoPorts x\n", `snmp6 line 1: Udp6NoPorts = "x": not a decimal number`, ParseSNMP6},
	}
	for _, tc := range inline {
		if _, err := tc.parse(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseSNMP6Groups(t *testing.T) {
	c, err := ParseSNMP6(strings.NewReader("Udp6RcvbufErrors \t 7\nIcmp6InType1 3\nUdpLite6NoPorts 0\nIp6InReceives 99\nIcmp6OutType143 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		g, f string
		v    uint64
	}{{"Udp6", "RcvbufErrors", 7}, {"Icmp6", "InType1", 3}, {"UdpLite6", "NoPorts", 0}, {"Ip6", "InReceives", 99}, {"Icmp6", "OutType143", 2}} {
		if v, ok := c.Get(w.g, w.f); !ok || v != w.v {
			t.Errorf("%s %s = %d, %v", w.g, w.f, v, ok)
		}
	}
}

func TestSub(t *testing.T) {
	prev := Counters{"Udp": {"NoPorts": 10, "RcvbufErrors": ^uint64(0)}, "Tcp": {"InSegs": 1, "CurrEstab": 9, "MaxConn": ^uint64(0)}}
	cur := Counters{"Udp": {"NoPorts": 15, "RcvbufErrors": 2, "New": 5}, "Tcp": {"InSegs": 3, "CurrEstab": 4, "MaxConn": ^uint64(0)}}
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
	all := Sub(prev, cur)
	if all["Tcp"]["InSegs"] != 2 || all["Tcp"]["CurrEstab"] != -5 || all["Tcp"]["MaxConn"] != 0 {
		t.Errorf("all groups: %v (CurrEstab is a gauge and may fall)", all)
	}
}

// The kernel prints per-type ICMP counters only once they are non-zero, so the first echo
// request of an interval adds a field that the earlier read did not have.
func TestSubICMPTypesAppear(t *testing.T) {
	prev := load(t, "5.4-snmp.txt")
	cur := load(t, "5.4-snmp.txt")
	cur["IcmpMsg"]["InType11"] = 3
	cur["IcmpMsg"]["InType3"] += 2
	d := Sub(prev, cur, "IcmpMsg")
	if d["IcmpMsg"]["InType11"] != 3 || d["IcmpMsg"]["InType3"] != 2 || d["IcmpMsg"]["OutType0"] != 0 {
		t.Errorf("IcmpMsg deltas %v", d)
	}
	// Without the always-printed Icmp group, prev is not a read of /proc/net/snmp: the
	// missing type is unknown, not zero.
	delete(prev, "Icmp")
	if _, ok := Sub(prev, cur, "IcmpMsg")["IcmpMsg"]["InType11"]; ok {
		t.Error("IcmpMsg type given a zero baseline though prev never read snmp")
	}

	p6, c6 := load(t, "6.1-snmp6.txt"), load(t, "6.1-snmp6.txt")
	c6["Icmp6"]["InType128"] = 40       // echo requests
	c6["Icmp6"]["InEchos"] = 40         // always printed, so present in prev
	c6["Icmp6"]["InTypeNew"] = 1        // not a type number
	c6["Icmp6"]["OutRateLimitHost"] = 7 // a newer kernel's named counter: no baseline
	d6 := Sub(p6, c6, "Icmp6")["Icmp6"]
	if d6["InType128"] != 40 || d6["InEchos"] != 40 {
		t.Errorf("Icmp6 deltas %v", d6)
	}
	for _, f := range []string{"InTypeNew", "OutRateLimitHost"} {
		if _, ok := d6[f]; ok {
			t.Errorf("Icmp6 %s got a delta without a baseline", f)
		}
	}
}

// format writes c back in the two layouts, one pair or line per field group.
func format(c Counters, snmp6 bool) string {
	var b strings.Builder
	for _, g := range slices.Sorted(maps.Keys(c)) {
		names := slices.Sorted(maps.Keys(c[g]))
		if snmp6 {
			for _, f := range names {
				fmt.Fprintf(&b, "%-32s\t%d\n", g+f, c[g][f])
			}
			continue
		}
		b.WriteString(g + ":")
		for _, f := range names {
			b.WriteString(" " + f)
		}
		b.WriteString("\n" + g + ":")
		for _, f := range names {
			fmt.Fprintf(&b, " %d", c[g][f])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func equal(a, b Counters) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]uint64) bool { return maps.Equal(x, y) })
}

// Seeds are kept small: the fuzzer minimizes every new interesting input, and minimizing the
// multi-KiB netstat files eats the whole fuzzing time.
func FuzzParse(f *testing.F) {
	for _, n := range []string{"5.4-snmp.txt", "6.1-snmp.txt"} {
		f.Add(string(fixture(f, n)))
	}
	f.Add("IpExt: InNoRoutes InTruncatedPkts InOctets\nIpExt: 0 0 918273645512\n\nMPTcpExt: MPCapableSYNRX\nMPTcpExt: 0\n")
	f.Add("Tcp: RtoAlgorithm MaxConn\nTcp: 1 -1\nUdp: InDatagrams\n")
	f.Add("TcpExt: A B\nTcpExt: 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(c) == 0 {
			t.Fatal("accepted input without counters")
		}
		self := Sub(c, c)
		for g, fs := range c {
			if g == "" || strings.ContainsAny(g, " \t:") || len(fs) == 0 {
				t.Fatalf("group %q with %d fields", g, len(fs))
			}
			if len(self[g]) != len(fs) {
				t.Fatalf("%s: %d deltas against itself for %d fields", g, len(self[g]), len(fs))
			}
			for name, d := range self[g] {
				if d != 0 {
					t.Fatalf("%s %s: delta %d against itself", g, name, d)
				}
			}
		}
		again, err := Parse(strings.NewReader(format(c, false)))
		if err != nil || !equal(c, again) {
			t.Fatalf("reparse of own output: %v\n%v\n%v", err, c, again)
		}
	})
}

func FuzzParseSNMP6(f *testing.F) {
	lines := strings.SplitAfter(string(fixture(f, "6.1-snmp6.txt")), "\n")
	f.Add(strings.Join(lines[:3], "") + strings.Join(lines[66:80], ""))
	f.Add("ifIndex                         \t2\nUdp6InErrors\t-1\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseSNMP6(strings.NewReader(in))
		if err != nil {
			return
		}
		for g, fs := range c {
			if !strings.HasSuffix(g, "6") || strings.Count(g, "6") != 1 {
				t.Fatalf("group %q is not split at the first 6", g)
			}
			for name := range fs {
				if name == "" {
					t.Fatalf("group %q has an empty field name", g)
				}
			}
		}
		again, err := ParseSNMP6(strings.NewReader(format(c, true)))
		if err != nil || !equal(c, again) {
			t.Fatalf("reparse of own output: %v\n%v\n%v", err, c, again)
		}
	})
}
