// SPDX-License-Identifier: Apache-2.0

package textfmt

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Width is the number of terminal columns s takes: ANSI escape sequences take none.
func Width(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == '\x1b' {
			i = skipEscape(s, i)
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return n
}

// skipEscape returns the index after the CSI sequence starting at s[i].
func skipEscape(s string, i int) int {
	i++
	if i < len(s) && s[i] == '[' {
		i++
		for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
			i++
		}
	}
	return i + 1
}

// Clip shortens plain text to w columns, marking the cut with "..." so nobody reads a
// truncated note as the whole of it.
func Clip(s string, w int) string {
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	if w <= 3 {
		return string([]rune(s)[:max(w, 0)])
	}
	return string([]rune(s)[:w-3]) + "..."
}

// LabelWidth is the width of the labels in front of sections ("reasons", "checks"), so that
// what follows them lines up.
const LabelWidth = 10

// Label pads s to LabelWidth.
func Label(s string) string { return fmt.Sprintf("%-*s", LabelWidth, s) }

// Pack puts items on lines of at most width columns, separated by sep; the first line starts
// with label and the others are indented under it. Lines break between items only: an item
// too long for a line is left whole, for the caller to clip or not.
func Pack(label string, items []string, sep string, width int) []string {
	indent := strings.Repeat(" ", Width(label))
	var lines []string
	cur := label
	for i, it := range items {
		switch {
		case i == 0:
			cur += it
		case Width(cur)+len(sep)+Width(it) <= width:
			cur += sep + it
		default:
			lines = append(lines, cur)
			cur = indent + it
		}
	}
	return append(lines, cur)
}

// Words wraps prose to width, the first line starting with prefix and the others indented
// under it.
func Words(prefix, text string, width int) []string {
	return Pack(prefix, strings.Fields(text), " ", width)
}
