// SPDX-License-Identifier: Apache-2.0

package view

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/rank"
	"github.com/droptrace/droptrace/internal/record"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

type screen struct {
	name  string
	start *record.Start
	iv    *record.Interval
}

func screens() []screen {
	return []screen{
		{"full", fullStart(), fullInterval()},
		{"counters-only", countersOnlyStart(), countersOnlyInterval()},
		{"summary", fullStart(), summary()},
	}
}

func TestRenderGolden(t *testing.T) {
	for _, s := range screens() {
		for _, width := range []int{0, 80} {
			name := s.name
			if width != 0 {
				name += "-80"
			}
			t.Run(name, func(t *testing.T) {
				got := Render(s.start, s.iv, Options{Width: width})
				golden(t, filepath.Join("testdata", name+".golden"), got)
			})
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

func TestRenderFitsWidth(t *testing.T) {
	for _, s := range screens() {
		for _, width := range []int{0, 40, 80, 96, 120, 200} {
			for _, color := range []bool{false, true} {
				out := Render(s.start, s.iv, Options{Width: width, Color: color, TopReasons: 5})
				limit := max(width, minWidth)
				if width == 0 {
					limit = defaultWidth
				}
				for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
					if n := len([]rune(ansi.ReplaceAllString(line, ""))); n > limit {
						t.Errorf("%s width %d color %v: line %d has %d columns: %q", s.name, width, color, i+1, n, line)
					}
					if strings.HasSuffix(line, " ") {
						t.Errorf("%s width %d: line %d has trailing blanks: %q", s.name, width, i+1, line)
					}
				}
			}
		}
	}
}

func TestColor(t *testing.T) {
	for _, s := range screens() {
		if out := Render(s.start, s.iv, Options{}); strings.Contains(out, "\x1b") {
			t.Errorf("%s: escape code without Color: %q", s.name, out)
		}
	}
	out := Render(fullStart(), fullInterval(), Options{Color: true})
	for _, want := range []string{
		ansiRed + "812" + ansiReset,      // CPU 1's traced and softnet drops
		ansiYellow + "14" + ansiReset,    // CPU 1's time_squeeze
		ansiYellow + "9/3" + ansiReset,   // predicted squeezes
		ansiRed + "mismatch" + ansiReset, // the failed check
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Color: missing %q in\n%s", want, out)
		}
	}
	// A quiet CPU is not highlighted: color means "look here".
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "  0 ") && strings.Contains(line, ansiYellow) {
			t.Errorf("CPU 0 has no squeeze but is highlighted: %q", line)
		}
	}
}

// cpuRow returns the fields of the table row of cpu.
func cpuRow(t *testing.T, out, cpu string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == cpu {
			return f
		}
	}
	t.Fatalf("no row for CPU %s in\n%s", cpu, out)
	return nil
}

func TestAbsentIsDash(t *testing.T) {
	out := Render(countersOnlyStart(), countersOnlyInterval(), Options{})
	// CPU 0: traced drops unknown (3 dashes), softnet known, NET_RX unknown (4 dashes).
	if got, want := strings.Join(cpuRow(t, out, "0"), " "), "0 - - - 0 0 - - - -"; got != want {
		t.Errorf("CPU 0 row = %q, want %q", got, want)
	}
	// CPU 3 has no softnet delta either.
	if got, want := strings.Join(cpuRow(t, out, "3"), " "), "3 - - - - - - - - -"; got != want {
		t.Errorf("CPU 3 row = %q, want %q", got, want)
	}
	if !strings.Contains(out, "COUNTERS-ONLY") || !strings.Contains(out, "MISSING") {
		t.Errorf("counters-only mode is not said loudly:\n%s", out)
	}
}

func TestFullRow(t *testing.T) {
	out := Render(fullStart(), fullInterval(), Options{})
	want := "1 855 855 CPU_BACKLOG 812 SOCKET_RCVBUFF 40 NOT_SPECIFIED 2 +1 812 14 38.0% 205112 9/3 99.9%"
	if got := strings.Join(cpuRow(t, out, "1"), " "); got != want {
		t.Errorf("CPU 1 row =\n %q, want\n %q", got, want)
	}
	// Full coverage is not shown.
	if f := cpuRow(t, out, "0"); f[len(f)-1] != "0/0" {
		t.Errorf("CPU 0 row ends with %q, want the squeeze split and no coverage", f[len(f)-1])
	}
	if !strings.Contains(out, "time_squeeze CPU 1 (traced 12, kernel 14): predicted 9 budget") {
		t.Errorf("mismatch check not named with its CPU:\n%s", out)
	}
	if !strings.Contains(out, "7 checks match, 1 mismatch") {
		t.Errorf("no check count:\n%s", out)
	}
}

func TestWrite(t *testing.T) {
	var buf bytes.Buffer
	v := New(&buf, Options{})
	for _, err := range []error{
		v.Start(fullStart()),
		v.Interval(fullInterval()),
		v.Drop(&record.Drop{Header: record.Header{Type: record.TypeDrop}, Reason: "NO_SOCKET"}),
		v.Interval(fullInterval()),
		v.Summary(summary()),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if n := strings.Count(out, clearScreen); n != 2 {
		t.Errorf("%d screen clears, want one per interval (2)", n)
	}
	if !strings.HasPrefix(out, clearScreen+"droptrace  host edge-lb-07") {
		t.Errorf("an interval does not start with the clear and the header: %q", out[:min(len(out), 60)])
	}
	last := out[strings.LastIndex(out, clearScreen)+len(clearScreen):]
	sum := Render(fullStart(), summary(), Options{})
	if want := Render(fullStart(), fullInterval(), Options{}) + "\n" + sum; last != want {
		t.Errorf("after the last clear:\n%s\nwant the last interval, a blank line and the summary:\n%s", last, want)
	}
	if strings.Count(out, "Session summary") != 1 || strings.Count(out, "NO_SOCKET 5 (5.0/s)") != 2 {
		t.Errorf("drop records must be ignored and each record drawn once:\n%s", out)
	}
}

func TestWriteWithoutStart(t *testing.T) {
	var buf bytes.Buffer
	if err := New(&buf, Options{}).Interval(fullInterval()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "interval 42 (1s)") {
		t.Errorf("no interval header without a start record:\n%s", buf.String())
	}
}

func TestReasonsCell(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{reasonsCell(rank.ByCount(map[string]uint64{"CPU_BACKLOG": 812, "NO_SOCKET": 5}, -1), 3, 15), "CPU_BACKLOG 812"},
		{reasonsCell(rank.ByCount(map[string]uint64{"SOCKET_RCVBUFF": 81234}, -1), 3, 15), "SOCKET_RCV~ 81k"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestPartialAttach(t *testing.T) {
	start := fullStart()
	start.Probes = map[string]string{
		"skb:kfree_skb":     "unavailable: attach tp_btf/kfree_skb: permission denied",
		"irq:softirq_entry": "tp_btf", "irq:softirq_exit": "tp_btf", "napi:napi_poll": "tp_btf",
	}
	out := Render(start, fullInterval(), Options{})
	if !strings.Contains(out, "!! NOT ATTACHED: skb:kfree_skb (unavailable: attach tp_btf/kfree_skb: permission denied)") {
		t.Errorf("a probe that did not attach is not said:\n%s", out)
	}
	// Without the drop program, traced drops are unknown rather than zero.
	if f := cpuRow(t, out, "1"); f[1] != "-" || f[4] != "812" {
		t.Errorf("CPU 1 row = %q, want traced drops unknown and softnet shown", f)
	}
}

func TestSysctlChanges(t *testing.T) {
	iv := fullInterval()
	iv.Sysctl = &record.Sysctl{NetdevBudget: 900, NetdevBudgetUsecs: 8000, NetdevMaxBacklog: 5000}
	for i := range 5 {
		iv.SysctlChanges = append(iv.SysctlChanges, fmt.Sprintf("netdev_budget %d->%d at 03:14:0%d.000", 300+100*i, 400+100*i, i))
	}
	out := Render(nil, iv, Options{})
	for _, want := range []string{
		"netdev_budget=900  netdev_budget_usecs=8000  netdev_max_backlog=5000\n",
		"sysctl changed 2 more times before:\n" +
			"sysctl changed: netdev_budget 500->600 at 03:14:02.000\n" +
			"sysctl changed: netdev_budget 600->700 at 03:14:03.000\n" +
			"sysctl changed: netdev_budget 700->800 at 03:14:04.000\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
