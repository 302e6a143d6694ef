// SPDX-License-Identifier: Apache-2.0

package softirqs

import (
	"os"
	"strings"
	"testing"
)

func load(t testing.TB, name string) Table {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestParse(t *testing.T) {
	tab := load(t, "4cpu-sparse.txt")
	if tab["NET_RX"][4] != 17 || tab["NET_RX"][5] != 4294967290 || tab["NET_TX"][1] != 20 {
		t.Errorf("NET_RX %v NET_TX %v", tab["NET_RX"], tab["NET_TX"])
	}
	if _, ok := tab["NET_RX"][2]; ok {
		t.Error("CPU 2 has no column but got a count")
	}
	real := load(t, "6.18-2cpu.txt")
	if len(real["NET_RX"]) != 2 {
		t.Errorf("NET_RX on this machine: %v", real["NET_RX"])
	}
}

func TestSubWraps(t *testing.T) {
	prev := load(t, "4cpu-sparse.txt")
	cur := Table{"NET_RX": {0: 1000010, 1: 2000000, 5: 6, 7: 1}}
	d := Sub(prev, cur, "NET_RX")
	if d[0] != 10 || d[1] != 0 || d[5] != 12 {
		t.Errorf("deltas %v; CPU 5 wrapped from 4294967290 to 6: want 12", d)
	}
	if _, ok := d[7]; ok {
		t.Error("CPU 7 has no baseline")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "no header line"},
		{"   CPU0 XPU1\n", "line 1: header column \"XPU1\" is not CPU<n>"},
		{"  CPU0 CPU1\n NET_RX: 1\n", "line 2: NET_RX has 1 counts for 2 CPUs"},
		{"  CPU0\n NET_RX 1\n", "line 2: want \"NAME: counts...\""},
		{"  CPU0\n NET_RX: -1\n", "line 2: NET_RX CPU0 = \"-1\": not a 32-bit count"},
	}
	for _, tc := range tests {
		if _, err := Parse(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"4cpu-sparse.txt", "6.18-2cpu.txt"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, in string) {
		tab, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for name, row := range tab {
			if name == "" {
				t.Fatal("empty softirq name")
			}
			_ = Sub(tab, tab, name)
			_ = row
		}
	})
}
