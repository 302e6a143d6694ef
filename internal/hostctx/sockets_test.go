// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseSockstat(t *testing.T) {
	s, err := ParseSockstat(strings.NewReader("sockets: used 17\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 182\nUDP: inuse 3 mem 12\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s["UDP"]["mem"] != 12 || s["TCP"]["alloc"] != 1 || s["sockets"]["used"] != 17 {
		t.Errorf("%v", s)
	}
	for _, bad := range []struct{ in, want string }{
		{"UDP: inuse\n", "line 1: UDP has an odd number of fields"},
		{"UDP: inuse x\n", "line 1: UDP inuse = \"x\""},
		{"garbage\n", "line 1: want"},
	} {
		if _, err := ParseSockstat(strings.NewReader(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v", bad.in, err)
		}
	}
	parse(t, "testdata/sockstat.txt", ParseSockstat)
}

func TestDevMcast(t *testing.T) {
	prev := parse(t, "testdata/dev_mcast.txt", ParseDevMcast)
	if len(prev) == 0 {
		t.Fatal("no memberships in testdata/dev_mcast.txt")
	}
	cur := append([]McastAddr(nil), prev[1:]...)
	cur = append(cur, McastAddr{Ifindex: 4, Ifname: "eth0", Users: 1, Addr: "01005e0000fb"})
	got := McastChanges(prev, cur)
	want := []string{"eth0 joined 01005e0000fb", prev[0].Ifname + " left " + prev[0].Addr}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
	if _, err := ParseDevMcast(strings.NewReader("4 eth0 1 0\n")); err == nil || !strings.Contains(err.Error(), "line 1: 4 fields") {
		t.Errorf("%v", err)
	}
}

func FuzzParseDevMcast(f *testing.F) {
	b, _ := os.ReadFile("testdata/dev_mcast.txt")
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, in string) {
		a, err := ParseDevMcast(strings.NewReader(in))
		if err == nil && len(McastChanges(a, a)) != 0 {
			t.Fatal("a set changed against itself")
		}
	})
}
