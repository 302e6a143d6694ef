// SPDX-License-Identifier: Apache-2.0

package snmp

import (
	"strings"
	"testing"
)

// keptGroups are the groups droptrace keeps (interval.SNMPGroups, which imports this package)
// and one it does not, Tcp, with the signed MaxConn.
var keptGroups = []string{"Udp", "Udp6", "UdpLite", "UdpLite6", "TcpExt", "Tcp"}

// only is c with the groups of keep alone.
func only(c Counters, keep []string) Counters {
	o := Counters{}
	for g, fs := range c {
		if keeps(keep, g) {
			o[g] = fs
		}
	}
	return o
}

// The filtered parse reads the kept groups exactly as the full parse does, on every kernel's
// files.
func TestParseGroupsEqualsParse(t *testing.T) {
	for _, k := range []string{"5.4", "6.1", "6.18"} {
		for _, f := range []string{"snmp", "netstat", "snmp6"} {
			name := k + "-" + f + ".txt"
			full, sub := Parse, ParseGroups
			if f == "snmp6" {
				full, sub = ParseSNMP6, ParseSNMP6Groups
			}
			all, err := full(strings.NewReader(string(fixture(t, name))))
			if err != nil {
				t.Fatal(err)
			}
			for _, keep := range [][]string{keptGroups, {"Udp"}, {"NoSuchGroup"}, nil} {
				got, err := sub(strings.NewReader(string(fixture(t, name))), keep)
				if err != nil {
					t.Fatalf("%s keeping %q: %v", name, keep, err)
				}
				if want := only(all, keep); !equal(got, want) {
					t.Errorf("%s keeping %q:\n got %v\nwant %v", name, keep, got, want)
				}
			}
		}
	}
}

// A kept group's errors are found as before; pairs of other groups must still pair.
func TestParseGroupsErrors(t *testing.T) {
	for _, in := range []string{
		"Ip: A B\nIcmp: C\nIcmp: 1\n",        // Ip values missing
		"Ip: A B\nIp: 1 2\nUdp: X\n",         // kept header without values
		"Udp: A B\nUdp: 1\n",                 // kept group, count mismatch
		"Udp: A\nIp: 1\n",                    // kept header, other values
		"Ip: A\nUdp: 1\n",                    // other header, kept values
		"Udp: A\nUdp: x\n",                   // kept value not a number
		"",                                   // nothing
		"Ip: A B\nIp: 1 2\nUdp: 1\nUdp: 2\n", // kept header field not a name
	} {
		if _, err := ParseGroups(strings.NewReader(in), keptGroups); err == nil {
			t.Errorf("accepted %q", in)
		}
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("full parse accepted %q", in)
		}
	}
	for _, in := range []string{"Udp6InErrors 1\nUdp6InErrors 2\n", "Udp6InErrors x\n", "Ip6InReceives\n", ""} {
		if _, err := ParseSNMP6Groups(strings.NewReader(in), keptGroups); err == nil {
			t.Errorf("snmp6: accepted %q", in)
		}
	}
}

// Wherever the full parse accepts an input, the filtered one does and agrees on kept groups.
func FuzzParseGroups(f *testing.F) {
	f.Add(string(fixture(f, "6.1-snmp.txt")))
	f.Add("IpExt: InNoRoutes\nIpExt: 0\nTcpExt: A B\nTcpExt: 1 2\n")
	f.Add("Tcp: RtoAlgorithm MaxConn\nTcp: 1 -1\nUdp: InDatagrams\nUdp: 5\n")
	f.Add("Udp6InErrors\t1\nIp6InReceives 4\n")
	f.Fuzz(func(t *testing.T, in string) {
		for _, p := range []struct {
			full func(string) (Counters, error)
			sub  func(string, []string) (Counters, error)
		}{
			{func(s string) (Counters, error) { return Parse(strings.NewReader(s)) },
				func(s string, g []string) (Counters, error) { return ParseGroups(strings.NewReader(s), g) }},
			{func(s string) (Counters, error) { return ParseSNMP6(strings.NewReader(s)) },
				func(s string, g []string) (Counters, error) { return ParseSNMP6Groups(strings.NewReader(s), g) }},
		} {
			all, err := p.full(in)
			if err != nil {
				continue
			}
			got, err := p.sub(in, keptGroups)
			if err != nil || !equal(got, only(all, keptGroups)) {
				t.Fatalf("filtered parse: %v\n got %v\nwant %v", err, got, only(all, keptGroups))
			}
		}
	})
}
