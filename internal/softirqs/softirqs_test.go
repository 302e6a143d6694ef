// SPDX-License-Identifier: Apache-2.0

package softirqs

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func load(t testing.TB, name string) Table {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
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

func TestParse(t *testing.T) {
	tests := []struct {
		file  string
		names []string
		cpus  []int
		want  map[string]map[int]uint64 // a subset of the rows
	}{
		{"6.18-2cpu.txt", // read on a 2-CPU 6.18 VM
			[]string{"BLOCK", "HI", "HRTIMER", "IRQ_POLL", "NET_RX", "NET_TX", "RCU", "SCHED", "TASKLET", "TIMER"},
			[]int{0, 1}, map[string]map[int]uint64{"HI": {0: 0, 1: 0}}},
		{"4cpu-sparse.txt",
			[]string{"BLOCK", "HI", "HRTIMER", "IRQ_POLL", "NET_RX", "NET_TX", "RCU", "SCHED", "TASKLET", "TIMER"},
			[]int{0, 1, 4, 5}, map[string]map[int]uint64{"NET_RX": {0: 1000000, 1: 2000000, 4: 17, 5: 4294967290}, "NET_TX": {1: 20}}},
		// BLOCK_IOPOLL fills the whole "%12s" width: the row has no leading blank.
		{"3.10-4cpu.txt",
			[]string{"BLOCK", "BLOCK_IOPOLL", "HI", "HRTIMER", "NET_RX", "NET_TX", "RCU", "SCHED", "TASKLET", "TIMER"},
			[]int{0, 1, 2, 3}, map[string]map[int]uint64{"NET_RX": {0: 4012331120, 3: 10999312}, "BLOCK_IOPOLL": {2: 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			tab := load(t, tc.file)
			if got := slices.Sorted(maps.Keys(tab)); !slices.Equal(got, tc.names) {
				t.Errorf("rows %v, want %v", got, tc.names)
			}
			for name, row := range tab {
				if got := slices.Sorted(maps.Keys(row)); !slices.Equal(got, tc.cpus) {
					t.Errorf("%s CPUs %v, want %v", name, got, tc.cpus)
				}
			}
			for name, want := range tc.want {
				for cpu, v := range want {
					if got, ok := tab[name][cpu]; !ok || got != v {
						t.Errorf("%s CPU%d = %d, %v; want %d", name, cpu, got, ok, v)
					}
				}
			}
		})
	}
}

func TestSub(t *testing.T) {
	prev := load(t, "4cpu-sparse.txt")
	// CPU 5 wrapped from 4294967290; CPU 7 has no column in prev (it became possible, e.g.
	// after a CPU hotplug of a new socket), so no baseline.
	cur := Table{"NET_RX": {0: 1000010, 1: 2000000, 4: 17, 5: 6, 7: 1}}
	want := map[int]uint64{0: 10, 1: 0, 4: 0, 5: 12}
	if got := Sub(prev, cur, "NET_RX"); !maps.Equal(got, want) {
		t.Errorf("Sub NET_RX = %v, want %v", got, want)
	}
	if got := Sub(prev, cur, "NET_TX"); len(got) != 0 {
		t.Errorf("NET_TX absent from cur: %v", got)
	}
	if got := Sub(Table{}, cur, "NET_RX"); len(got) != 0 {
		t.Errorf("no baseline at all: %v", got)
	}
	// Same machine, later read: deltas are never negative and equal the plain difference.
	real := load(t, "6.18-2cpu.txt")
	later := Table{"NET_RX": {0: real["NET_RX"][0] + 5, 1: real["NET_RX"][1]}}
	if got := Sub(real, later, "NET_RX"); got[0] != 5 || got[1] != 0 {
		t.Errorf("6.18 NET_RX deltas %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ file, want string }{
		{"empty.txt", "softirqs: no header line"},
		{"header-only.txt", "softirqs: header but no rows"},
		{"no-header.txt", `softirqs line 1: header column "HI:" is not CPU<n>`},
		{"bad-header.txt", `softirqs line 1: header column "CPUs" is not CPU<n>`},
		{"dup-cpu.txt", "softirqs line 1: header names CPU 4 twice"},
		{"short-row.txt", "softirqs line 5: NET_RX has 3 counts for the header's 4 CPUs"},
		{"not-a-number.txt", `softirqs line 3: TIMER CPU0 = "12e456": not a decimal count`},
		{"wide.txt", `softirqs line 5: NET_RX CPU5 = "4294967296": wider than the kernel's 32-bit %u`},
		{"dup-row.txt", "softirqs line 12: NET_RX already on line 5"},
		{"no-colon.txt", `softirqs line 4: want "NAME: counts...", got "NET_TX"`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "bad", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := Parse(f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ in, want string }{
		{"  CPU0 CPU+1\n", `header column "CPU+1" is not CPU<n>`},
		{"  CPU0 CPU\n", `header column "CPU" is not CPU<n>`},
		{"  CPU0 CPU99999999999999999999\n", "CPU id out of range"},
		{"  CPU0\n NET_RX: -1\n", `line 2: NET_RX CPU0 = "-1": not a decimal count`},
		{"  CPU0\n :\n", `line 2: want "NAME: counts...", got ":"`},
	} {
		if _, err := Parse(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want %q", tc.in, err, tc.want)
		}
	}
}

// format writes t in the kernel's layout.
func format(t Table) string {
	var cpus []int
	for _, row := range t {
		cpus = slices.Sorted(maps.Keys(row))
		break
	}
	var b strings.Builder
	b.WriteString("                    ")
	for _, c := range cpus {
		fmt.Fprintf(&b, "CPU%-8d", c)
	}
	b.WriteString("\n")
	for _, name := range slices.Sorted(maps.Keys(t)) {
		fmt.Fprintf(&b, "%12s:", name)
		for _, c := range cpus {
			fmt.Fprintf(&b, " %10d", t[name][c])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"4cpu-sparse.txt", "6.18-2cpu.txt", "3.10-4cpu.txt", "bad/dup-row.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
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
		if len(tab) == 0 {
			t.Fatal("accepted input without rows")
		}
		var cpus []int
		for name, row := range tab {
			if name == "" || strings.ContainsAny(name, " \t") {
				t.Fatalf("softirq name %q", name)
			}
			ids := slices.Sorted(maps.Keys(row))
			if cpus == nil {
				cpus = ids
			} else if !slices.Equal(ids, cpus) {
				t.Fatalf("rows cover different CPUs: %v and %v", cpus, ids)
			}
			for cpu, v := range row {
				if cpu < 0 || v > 1<<32-1 {
					t.Fatalf("%s CPU%d = %d", name, cpu, v)
				}
			}
			if d := Sub(tab, tab, name); len(d) != len(row) {
				t.Fatalf("Sub of %s against itself: %v", name, d)
			}
		}
		again, err := Parse(strings.NewReader(format(tab)))
		if err != nil || !maps.EqualFunc(tab, again, func(a, b map[int]uint64) bool { return maps.Equal(a, b) }) {
			t.Fatalf("reparse of own output: %v\n%v\n%v", err, tab, again)
		}
	})
}
