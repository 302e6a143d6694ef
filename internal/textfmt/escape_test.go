// SPDX-License-Identifier: Apache-2.0

package textfmt

import (
	"encoding/xml"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTerminal(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"collector", "collector"},
		{"déjà vu 日本 ü", "déjà vu 日本 ü"},
		{`system-systemd\x2dfsck.slice`, `system-systemd\x2dfsck.slice`},
		{"<a href='x'>&amp;</a>", "<a href='x'>&amp;</a>"}, // markup is the SVG writer's to escape
		{"\x1b]0;PWN\x07\x1b[2J", `\x1b]0;PWN\x07\x1b[2J`},
		{"a\nb\tc\rd\x00", `a\x0ab\x09c\x0dd\x00`},
		{"del\x7f", `del\x7f`},
		{"c1 \u0085 \u009b[2J", `c1 \u0085 \u009b[2J`},
		{"raw c1 \x9b\x85", `raw c1 \x9b\x85`},     // bytes that are not UTF-8
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`}, // the same
		{"cut \xe6\x97", `cut \xe6\x97`},           // a character cut short
		{"surrogate \xed\xa0\x80", `surrogate \xed\xa0\x80`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"sep \u2028\u2029", `sep \u2028\u2029`},
		{"nonchar \ufffe\uffff", `nonchar \ufffe\uffff`},
		{"private \U000f0000", `private \U000f0000`},
		{"zero width \u200b", `zero width \u200b`},
		{"nbsp\u00a0ok", "nbsp\u00a0ok"},
		{"replacement \ufffd stays", "replacement \ufffd stays"},
	} {
		got := Terminal(tc.in)
		if got != tc.want {
			t.Errorf("Terminal(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got != Terminal(got) {
			t.Errorf("Terminal(%q) is not stable: %q then %q", tc.in, got, Terminal(got))
		}
		assertPrintable(t, got)
	}
}

// assertPrintable fails when s holds anything a terminal or an XML parser would act on.
func assertPrintable(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%q is not UTF-8", s)
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			t.Errorf("%q holds control character %U", s, r)
		}
	}
	if err := xml.Unmarshal([]byte("<t>"+xmlEscape(s)+"</t>"), new(string)); err != nil {
		t.Errorf("%q is not valid in XML: %v", s, err)
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // never fails on a strings.Builder
	return b.String()
}

// Widths are those of the escaped text: a table of escaped names stays aligned.
func TestTerminalWidth(t *testing.T) {
	for _, in := range []string{"\x1b[31mred", "a\x00b", "\u0085", "\xff", "日本\u202e"} {
		got := Terminal(in)
		if w := Width(got); w != utf8.RuneCountInString(got) {
			t.Errorf("Width(Terminal(%q)) = %d, want %d (its characters)", in, w, utf8.RuneCountInString(got))
		}
	}
	if got := Width(Terminal("\x1b[1;31mX")); got != len(`\x1b[1;31mX`) {
		t.Errorf("an escaped ANSI sequence is %d columns, want %d", got, len(`\x1b[1;31mX`))
	}
}

func FuzzTerminal(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b]0;PWN\x07", "\xc2\x9b", "\xff", "\u202e\ufffe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Terminal(s)
		assertPrintable(t, got)
		if got != Terminal(got) {
			t.Errorf("Terminal(%q) = %q is escaped again", s, got)
		}
	})
}

type safeInner struct {
	Name string
	Tags []string
}

type safeOuter struct {
	Title    string
	When     time.Time
	Inner    *safeInner
	Values   []safeInner
	Counts   map[string]uint64
	ByCPU    map[int]string
	Evidence map[string]any
	Arr      [2]string
	Nil      *safeInner
	private  string
}

func TestSafe(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	in := &safeOuter{
		Title:    "host\x1b[2J",
		When:     when,
		Inner:    &safeInner{Name: "eth\x1b0", Tags: []string{"\x07"}},
		Values:   []safeInner{{Name: "\x9b"}},
		Counts:   map[string]uint64{"SOCKET\x1b": 1, `SOCKET\x1b`: 2, "NO_SOCKET": 3},
		ByCPU:    map[int]string{1: "\x00"},
		Evidence: map[string]any{"comm\x1b": "\x1b]0;x\x07", "n": 1.5, "list": []any{"\x7f"}},
		Arr:      [2]string{"\u0085", "ok"},
		private:  "\x1b kept",
	}
	orig := *in
	origInner := *in.Inner
	got := Safe(in)
	want := &safeOuter{
		Title:    `host\x1b[2J`,
		When:     when,
		Inner:    &safeInner{Name: `eth\x1b0`, Tags: []string{`\x07`}},
		Values:   []safeInner{{Name: `\x9b`}},
		Counts:   map[string]uint64{`SOCKET\x1b`: 2, `SOCKET\x1b#2`: 1, "NO_SOCKET": 3},
		ByCPU:    map[int]string{1: `\x00`},
		Evidence: map[string]any{`comm\x1b`: `\x1b]0;x\x07`, "n": 1.5, "list": []any{`\x7f`}},
		Arr:      [2]string{`\u0085`, "ok"},
		private:  "\x1b kept",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Safe:\n got  %#v\n want %#v", got, want)
	}
	if got == in || got.Inner == in.Inner {
		t.Error("Safe shares pointers with its argument")
	}
	if !reflect.DeepEqual(*in, orig) || !reflect.DeepEqual(*in.Inner, origInner) || in.Counts["SOCKET\x1b"] != 1 {
		t.Error("Safe changed its argument")
	}
	if Safe[*safeOuter](nil) != nil {
		t.Error("Safe(nil) is not nil")
	}
}
