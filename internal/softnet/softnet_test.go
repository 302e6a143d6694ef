// SPDX-License-Identifier: Apache-2.0

package softnet

import (
	"os"
	"strings"
	"testing"
)

func parseFile(t *testing.T, name string) Table {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tab
}

func TestParseLayouts(t *testing.T) {
	tests := []struct {
		file    string
		columns int
		cpus    []int
		fromK   bool
		check   func(t *testing.T, tab Table)
	}{
		{"2.6-9col.txt", 9, []int{0, 1}, false, func(t *testing.T, tab Table) {
			if tab.CPUs[1].Dropped != 1 || tab.CPUs[0].TimeSqueeze != 3 || tab.CPUs[0].ReceivedRPS != 0 {
				t.Errorf("%+v", tab.CPUs)
			}
		}},
		{"5.4-11col.txt", 11, []int{0, 1, 2, 3}, false, func(t *testing.T, tab Table) {
			c := tab.CPUs[1]
			if c.Dropped != 0x12 || c.TimeSqueeze != 7 || c.ReceivedRPS != 0x1a2b3 || tab.CPUs[2].FlowLimit != 3 {
				t.Errorf("%+v", tab.CPUs)
			}
		}},
		{"6.1-13col.txt", 13, []int{0, 1}, true, func(t *testing.T, tab Table) {
			c := tab.CPUs[1]
			if c.Dropped != 1000 || c.TimeSqueeze != 0x450 || c.ReceivedRPS != 50000 || c.BacklogLen != 2 {
				t.Errorf("%+v", c)
			}
		}},
		{"6.18-offline.txt", 15, []int{0, 1, 3}, true, func(t *testing.T, tab Table) {
			// Line 3 is CPU 3: CPU 2 is offline and has no line.
			if tab.CPUs[2].CPU != 3 || tab.CPUs[2].Processed != 300000 || tab.CPUs[1].Dropped != 100 || tab.CPUs[1].BacklogLen != 3 {
				t.Errorf("%+v", tab.CPUs)
			}
		}},
		{"6.18-2cpu.txt", 15, []int{0, 1}, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			tab := parseFile(t, tc.file)
			if tab.Columns != tc.columns {
				t.Errorf("columns %d, want %d", tab.Columns, tc.columns)
			}
			var ids []int
			for _, c := range tab.CPUs {
				ids = append(ids, c.CPU)
				if c.CPUFromKernel != tc.fromK {
					t.Errorf("CPU %d CPUFromKernel %v", c.CPU, c.CPUFromKernel)
				}
			}
			if len(ids) != len(tc.cpus) {
				t.Fatalf("cpus %v, want %v", ids, tc.cpus)
			}
			for i := range ids {
				if ids[i] != tc.cpus[i] {
					t.Fatalf("cpus %v, want %v", ids, tc.cpus)
				}
			}
			if tc.check != nil {
				tc.check(t, tab)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	row := "00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n"
	tests := []struct{ name, in, want string }{
		{"empty", "", "no CPU lines"},
		{"too few", "00000001 00000002 00000003\n", "line 1: 3 fields, want at least 9"},
		{"not hex", row + strings.Replace(row, "00000001", "zz000001", 1), `line 2: field 1 "zz000001": not a 32-bit hexadecimal number`},
		{"too wide", row + strings.Replace(row, "00000001", "100000001", 1), "line 2: field 1"},
		{"ragged", row + row[:len(row)-10] + "\n", "line 2: 10 fields, earlier lines have 11"},
		{"duplicate cpu", strings.Repeat("00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001\n", 2), "line 2: CPU 1 already on line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDelta32Wraps(t *testing.T) {
	if d := Delta32(0xfffffff0, 0x10); d != 0x20 {
		t.Errorf("wrap delta %#x, want 0x20", d)
	}
	if d := Delta32(5, 9); d != 4 {
		t.Errorf("delta %d", d)
	}
}

func TestSubMatchesByCPUID(t *testing.T) {
	prev := Table{CPUs: []CPU{{CPU: 0, Dropped: 10}, {CPU: 2, Dropped: 0xfffffffe, TimeSqueeze: 1}, {CPU: 5, Dropped: 1}}}
	// CPU 5 went offline, CPU 3 came online; order differs.
	cur := Table{CPUs: []CPU{{CPU: 3, Dropped: 7}, {CPU: 2, Dropped: 3, TimeSqueeze: 4, BacklogLen: 9}, {CPU: 0, Dropped: 10}}}
	got := Sub(prev, cur)
	if len(got) != 3 {
		t.Fatalf("%+v", got)
	}
	if got[0].CPU != 0 || !got[0].Valid || got[0].Dropped != 0 {
		t.Errorf("cpu0 %+v", got[0])
	}
	if got[1].CPU != 2 || got[1].Dropped != 5 || got[1].TimeSqueeze != 3 || got[1].BacklogLen != 9 {
		t.Errorf("cpu2 %+v", got[1])
	}
	if got[2].CPU != 3 || got[2].Valid || got[2].Dropped != 0 {
		t.Errorf("cpu3 must have no baseline: %+v", got[2])
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"2.6-9col.txt", "5.4-11col.txt", "6.1-13col.txt", "6.18-offline.txt", "6.18-2cpu.txt"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, in string) {
		tab, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		if tab.Columns < minColumns || len(tab.CPUs) == 0 {
			t.Fatalf("accepted %d columns, %d CPUs", tab.Columns, len(tab.CPUs))
		}
		ids := map[int]bool{}
		for _, c := range tab.CPUs {
			if ids[c.CPU] {
				t.Fatalf("CPU %d twice", c.CPU)
			}
			ids[c.CPU] = true
		}
		if d := Sub(tab, tab); len(d) != len(tab.CPUs) {
			t.Fatal("Sub of a table with itself lost CPUs")
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/6.18-offline.txt")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}
