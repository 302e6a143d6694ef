// SPDX-License-Identifier: Apache-2.0

package textfmt

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{Count(999999, 6), "999999"},
		{Count(1234567, 6), "1.2M"},
		{Count(123456789, 6), "123M"},
		{Count(18460100, 7), "18.5M"},
		{Count(^uint64(0), 6), "18.4E"},
		{Fit(99.94, 5), "99.9"},
		{Fit(999.94, 5), "1000"},
		{Fit(999.95, 5), "1.0k"},
		{Fit(99_500, 4), "100k"},
		{PerSecond(5, time.Second, 5), "5.0"},
		{PerSecond(61022, 90500*time.Millisecond, 5), "674"},
		{PerSecond(1, 90500*time.Millisecond, 5), "<0.1"},
		{PerSecond(2000000, time.Second, 5), "2.0M"},
		{PerSecond(0, time.Second, 5), "0"},
		{PerSecond(3, 0, 5), "-"},
		{Rate(0), "0"},
		{Rate(0.04), "<0.1"},
		{Rate(5), "5"},
		{Rate(5.25), "5.2"},
		{Rate(99.96), "100"},
		{Rate(1500), "1.5k"},
		{Rate(2000), "2k"},
		{Rate(999_950), "1M"},
		{Rate(-1500), "-1.5k"},
		{PercentFloor(3996, 4000), "99.9%"},
		{PercentFloor(39999, 40000), "99.9%"},
		{PercentFloor(1, 3), "33.3%"},
		{PercentFloor(1020, 1000), "102%"},
		{PercentFloor(1, 0), "-"},
		{Percent(0), "0%"},
		{Percent(0.004), "<0.01%"},
		{Percent(3.14159), "3.14%"},
		{Percent(42.25), "42.2%"},
		{Coverage(99.97), ">99.9%"},
		{Coverage(100), "100.0%"},
		{Coverage(50), "50.0%"},
		{DurationExact(2500 * time.Millisecond), "2.5s"},
		{DurationExact(90*time.Second + 400*time.Microsecond), "1m30s"},
		{DurationShort(1000), "1.0s"},
		{DurationShort(1500), "1.5s"},
		{DurationShort(125_000), "2m05s"},
		{DurationShort(3_720_000), "1h02m"},
		{Seconds(2500), "2.5"},
		{Optional[uint64](nil), "-"},
		{Optional(new(int64)), "0"},
		{OrDash(""), "-"},
		{OrDash("web-1"), "web-1"},
		{CPUList(nil), ""},
		{CPUList([]int{0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11"},
		{CPUList([]int{5}), "5"},
		{Label("checks") + "|", "checks    |"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestWidthAndClip(t *testing.T) {
	for _, tc := range []struct {
		s     string
		width int
	}{
		{"", 0}, {"abc", 3}, {"\x1b[1;31mred\x1b[0m", 3}, {"déjà", 4},
	} {
		if got := Width(tc.s); got != tc.width {
			t.Errorf("Width(%q) = %d, want %d", tc.s, got, tc.width)
		}
	}
	for _, tc := range []struct {
		s    string
		w    int
		want string
	}{
		{"backlog_drops: freed on", 10, "backlog..."},
		{"short", 10, "short"},
		{"abcdef", 2, "ab"},
		{"abcdef", -1, ""},
	} {
		if got := Clip(tc.s, tc.w); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.s, tc.w, got, tc.want)
		}
	}
}

func TestPack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		label string
		items []string
		sep   string
		width int
		want  []string
	}{
		{"nothing", "reasons   ", nil, "  ", 20, []string{"reasons   "}},
		{"fits", "x: ", []string{"a", "b"}, ", ", 20, []string{"x: a, b"}},
		{"wraps under the label", "x: ", []string{"aaaa", "bbbb", "cccc"}, ", ", 12, []string{"x: aaaa", "   bbbb", "   cccc"}},
		{"exactly full", "", []string{"aaaa", "bbbb"}, " ", 9, []string{"aaaa bbbb"}},
		{"a long item is left whole", "x ", []string{"a", "0123456789"}, " ", 6, []string{"x a", "  0123456789"}},
		{"escapes take no room", "", []string{"\x1b[33maa\x1b[0m", "bb"}, " ", 5, []string{"\x1b[33maa\x1b[0m bb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Pack(tc.label, tc.items, tc.sep, tc.width); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	got := Words("sysctl  ", "netdev_budget 300->600   at  03:14:07", 24)
	want := []string{"sysctl  netdev_budget", "        300->600 at", "        03:14:07"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Words = %q, want %q", got, want)
	}
}

func TestRule(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    int
		want string
	}{
		{"softnet", 15, "--- softnet ---"},
		{"softnet", 16, "--- softnet ----"},
		{"softnet", 9, " softnet "},
		{"softnet", 8, "softnet"},
		{"softnet", 5, "so..."},
	} {
		if got := Rule(tc.name, tc.w); got != tc.want {
			t.Errorf("Rule(%q, %d) = %q, want %q", tc.name, tc.w, got, tc.want)
		}
	}
}

func TestTable(t *testing.T) {
	t.Run("columns as wide as their cells", func(t *testing.T) {
		tb := &Table{Columns: Columns(3, 2, 0), Groups: []Group{{"counts", 1, 2}}}
		tb.Row("", "drops", "/s")
		tb.Row("CPU 1", "812", "1.5k")
		tb.Note("^ a note widens nothing at all")
		tb.Row("all") // a short row
		want := []string{
			"         - counts --",
			"         drops    /s",
			"  CPU 1    812  1.5k",
			"  ^ a note widens nothing at all",
			"  all",
		}
		if got := trim(tb.Lines()); !reflect.DeepEqual(got, want) {
			t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("fixed widths clip, style after padding", func(t *testing.T) {
		tb := &Table{Columns: []Column{{Width: 3}, {Width: 6, Gap: 1, Left: true}, {Width: 4, Gap: 1}}}
		tb.Style = func(row, col int, s string) string {
			if row == 1 && col == 2 {
				return "<" + s + ">"
			}
			return s
		}
		tb.Row("CPU", "reasons", "n")
		tb.Row("0", "NO_SOCKET", "12")
		want := []string{
			"CPU rea...    n",
			"  0 NO_... <  12>",
		}
		if got := tb.Lines(); !reflect.DeepEqual(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func trim(lines []string) []string {
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return lines
}
