// SPDX-License-Identifier: Apache-2.0

package softnet

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func parseFile(t *testing.T, name string) Table {
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
		{"2.6.32-10col.txt", 10, []int{0, 1}, false, func(t *testing.T, tab Table) {
			c := tab.CPUs[1]
			if c.Processed != 0x0a11ce55 || c.Dropped != 0x1b || c.ReceivedRPS != 0xf00d || c.FlowLimit != 0 {
				t.Errorf("%+v", c)
			}
		}},
		{"5.4-11col.txt", 11, []int{0, 1, 2, 3}, false, func(t *testing.T, tab Table) {
			c := tab.CPUs[1]
			if c.Dropped != 0x12 || c.TimeSqueeze != 7 || c.ReceivedRPS != 0x1a2b3 || tab.CPUs[2].FlowLimit != 3 || c.BacklogLen != 0 {
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
		{"6.18-8cpu.txt", 15, []int{0, 1, 2, 3, 4, 5, 6, 7}, true, func(t *testing.T, tab Table) {
			c := tab.CPUs[2]
			if c.Processed != 0xfffe3b21 || c.Dropped != 0x1f4a || c.FlowLimit != 0x121 || c.BacklogLen != 0x428 {
				t.Errorf("%+v", c)
			}
		}},
		// Read on a 2-CPU 6.18 VM.
		{"6.18-2cpu.txt", 15, []int{0, 1}, true, nil},
		{"future-16col.txt", 16, []int{0, 1}, true, func(t *testing.T, tab Table) {
			if tab.CPUs[1].Dropped != 2 || tab.CPUs[1].TimeSqueeze != 3 {
				t.Errorf("%+v", tab.CPUs[1])
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			tab := parseFile(t, tc.file)
			if tab.Columns != tc.columns {
				t.Errorf("columns %d, want %d", tab.Columns, tc.columns)
			}
			if tab.IDsFromKernel() != tc.fromK {
				t.Errorf("IDsFromKernel %v, want %v", tab.IDsFromKernel(), tc.fromK)
			}
			var ids []int
			for _, c := range tab.CPUs {
				ids = append(ids, c.CPU)
				if c.CPUFromKernel != tc.fromK {
					t.Errorf("CPU %d CPUFromKernel %v", c.CPU, c.CPUFromKernel)
				}
			}
			if !slices.Equal(ids, tc.cpus) {
				t.Fatalf("cpus %v, want %v", ids, tc.cpus)
			}
			if tc.check != nil {
				tc.check(t, tab)
			}
		})
	}
}

// Since 6.4 column 12 is the sum of columns 14 and 15; a parser that took the wrong column
// for BacklogLen would break this on the fixtures with queued packets.
func TestBacklogIsSumOfQueues(t *testing.T) {
	for _, name := range []string{"6.18-offline.txt", "6.18-8cpu.txt", "6.18-2cpu.txt"} {
		tab := parseFile(t, name)
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(l)
			in, _ := strconv.ParseUint(f[13], 16, 32)
			proc, _ := strconv.ParseUint(f[14], 16, 32)
			if got := uint64(tab.CPUs[i].BacklogLen); got != in+proc {
				t.Errorf("%s line %d: BacklogLen %d, want input %d + process %d", name, i+1, got, in, proc)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ file, want string }{
		{"empty.txt", "softnet_stat: no CPU lines"},
		{"blank.txt", "softnet_stat: no CPU lines"},
		{"short.txt", "softnet_stat line 1: 8 fields, want at least 9"},
		{"header.txt", "softnet_stat line 1: 3 fields, want at least 9"},
		{"ragged.txt", "softnet_stat line 3: 10 fields, earlier lines have 11"},
		{"nothex.txt", `softnet_stat line 3: field 1 "0876zz01": not a hexadecimal number`},
		{"wide.txt", `softnet_stat line 2: field 1 "1093d2e11": wider than the kernel's 32-bit %08x`},
		{"dupcpu.txt", "softnet_stat line 2: CPU 0 already on line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "bad", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = Parse(f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// A field past column 13 is not kept but must still be the kernel's format.
	row := "00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 -0000001\n"
	if _, err := Parse(strings.NewReader(row)); err == nil || !strings.Contains(err.Error(), `line 1: field 15 "-0000001": not a hexadecimal number`) {
		t.Errorf("malformed column 15: %v", err)
	}
}

func TestDelta32(t *testing.T) {
	tests := []struct {
		prev, cur uint32
		want      uint64
	}{
		{5, 9, 4},
		{7, 7, 0},
		{0xfffffff0, 0x10, 0x20},
		{0xffffffff, 0, 1},
		{1, 0, 0xffffffff}, // indistinguishable from a wrap: the only reading a counter allows
	}
	for _, tc := range tests {
		if got := Delta32(tc.prev, tc.cur); got != tc.want {
			t.Errorf("Delta32(%#x, %#x) = %#x, want %#x", tc.prev, tc.cur, got, tc.want)
		}
	}
}

func TestSubMatchesByCPUID(t *testing.T) {
	// CPU 5 went offline, CPU 3 came online; the order of lines differs too.
	prev := Table{Columns: 15, CPUs: []CPU{
		{CPU: 0, CPUFromKernel: true, Dropped: 10},
		{CPU: 2, CPUFromKernel: true, Dropped: 0xfffffffe, TimeSqueeze: 1},
		{CPU: 5, CPUFromKernel: true, Dropped: 1},
	}}
	cur := Table{Columns: 15, CPUs: []CPU{
		{CPU: 3, CPUFromKernel: true, Dropped: 7},
		{CPU: 2, CPUFromKernel: true, Dropped: 3, TimeSqueeze: 4, BacklogLen: 9},
		{CPU: 0, CPUFromKernel: true, Dropped: 10},
	}}
	want := []CPUDelta{
		{CPU: 0, Valid: true},
		{CPU: 2, Valid: true, Dropped: 5, TimeSqueeze: 3, BacklogLen: 9},
		{CPU: 3, Valid: false},
	}
	if got := Sub(prev, cur); !slices.Equal(got, want) {
		t.Errorf("Sub\n got %+v\nwant %+v", got, want)
	}
}

func TestSubOfflineFixture(t *testing.T) {
	// All four CPUs online first, then CPU 2 goes offline: the third line is now CPU 3 and must
	// be matched with CPU 3's old line, not with CPU 2's.
	before := "00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n" +
		"00000020 00000060 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000\n" +
		"00000030 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000002 00000000 00000000\n" +
		"000493d0 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000003 00000000 00000000\n"
	prev, err := Parse(strings.NewReader(before))
	if err != nil {
		t.Fatal(err)
	}
	got := Sub(prev, parseFile(t, "6.18-offline.txt"))
	if len(got) != 3 || got[2].CPU != 3 || !got[2].Valid || got[2].Processed != 0x10 {
		t.Errorf("CPU 3 must be matched by id: %+v", got)
	}
	if got[1].Dropped != 4 {
		t.Errorf("CPU 1 dropped delta %d, want 100-96", got[1].Dropped)
	}
}

func TestSubGuessedIDs(t *testing.T) {
	five := parseFile(t, "5.4-11col.txt")
	same := Sub(five, five)
	for _, d := range same {
		if !d.Valid {
			t.Errorf("same line count: CPU %d should have a baseline", d.CPU)
		}
	}
	// One line fewer without column 13: which CPU went offline is unknown, so no line can be
	// matched with confidence.
	fewer := Table{Columns: five.Columns, CPUs: five.CPUs[:3]}
	for _, d := range Sub(five, fewer) {
		if d.Valid {
			t.Errorf("line count changed without CPU ids: CPU %d got a baseline: %+v", d.CPU, d)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"2.6-9col.txt", "2.6.32-10col.txt", "5.4-11col.txt", "6.1-13col.txt", "6.18-offline.txt", "6.18-8cpu.txt", "6.18-2cpu.txt", "future-16col.txt", "bad/dupcpu.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
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
		if tab.Columns < MinColumns || len(tab.CPUs) == 0 {
			t.Fatalf("accepted %d columns, %d CPUs", tab.Columns, len(tab.CPUs))
		}
		ids := map[int]bool{}
		for _, c := range tab.CPUs {
			if ids[c.CPU] {
				t.Fatalf("CPU %d twice", c.CPU)
			}
			ids[c.CPU] = true
			if c.CPUFromKernel != (tab.Columns >= 13) {
				t.Fatalf("CPU %d: CPUFromKernel %v with %d columns", c.CPU, c.CPUFromKernel, tab.Columns)
			}
		}
		d := Sub(tab, tab)
		if len(d) != len(tab.CPUs) {
			t.Fatal("Sub of a table with itself lost CPUs")
		}
		for i, x := range d {
			if !x.Valid || x.Processed|x.Dropped|x.TimeSqueeze|x.ReceivedRPS|x.FlowLimit != 0 {
				t.Fatalf("Sub of a table with itself: %+v", x)
			}
			if i > 0 && d[i-1].CPU >= x.CPU {
				t.Fatalf("Sub not sorted by CPU: %+v", d)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/6.18-8cpu.txt")
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
