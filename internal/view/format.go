// SPDX-License-Identifier: Apache-2.0

package view

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/droptrace/droptrace/internal/rank"
)

// painter colors text only when asked; callers pad before painting so that escape codes never
// shift columns.
type painter struct{ on bool }

const (
	ansiRed    = "\x1b[1;31m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

type heat int

const (
	cold heat = iota
	yellow
	red
)

func (p painter) paint(h heat, s string) string {
	if !p.on || h == cold || strings.TrimSpace(s) == "" {
		return s
	}
	code := ansiRed
	if h == yellow {
		code = ansiYellow
	}
	// Only the text is painted, not its padding, so a highlighted cell reads as a word.
	lead := len(s) - len(strings.TrimLeft(s, " "))
	trail := len(s) - len(strings.TrimRight(s, " "))
	return s[:lead] + code + s[lead:len(s)-trail] + ansiReset + s[len(s)-trail:]
}

// visibleLen is the number of terminal columns s takes: escape sequences take none.
func visibleLen(s string) int {
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

// clip shortens plain text to w columns, marking the cut so nobody reads a truncated note
// as the whole of it.
func clip(s string, w int) string {
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	if w <= 3 {
		return string([]rune(s)[:max(w, 0)])
	}
	return string([]rune(s)[:w-3]) + "..."
}

// count writes n exactly when it fits in w columns, else with a k/M/G/T suffix: a 3 a.m.
// reader needs the magnitude, and a column that overflows misaligns the whole table.
func count(n uint64, w int) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= w {
		return s
	}
	return compact(float64(n), w)
}

func compact(f float64, w int) string {
	units := []string{"", "k", "M", "G", "T", "P", "E"}
	u := 0
	for f >= 999.95 && u < len(units)-1 {
		f /= 1000
		u++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64) + units[u]
	if len(s) > w || f >= 100 {
		s = strconv.FormatFloat(math.Round(f), 'f', 0, 64) + units[u]
	}
	return s
}

// perSecond is n over d as a rate, "-" when the duration is unknown.
func perSecond(n uint64, d time.Duration, w int) string {
	if d <= 0 {
		return "-"
	}
	if n == 0 {
		return "0"
	}
	r := float64(n) / d.Seconds()
	switch {
	case r < 0.05:
		return "<0.1"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r < 1000:
		return strconv.FormatFloat(math.Round(r), 'f', 0, 64)
	}
	return compact(r, w)
}

// percent floors to one decimal, so that 99.97% of runs seen never reads as 100%.
func percent(part, whole float64) string {
	if whole <= 0 {
		return "-"
	}
	p := 100 * part / whole
	if p >= 100 {
		return strconv.FormatFloat(math.Floor(p), 'f', 0, 64) + "%"
	}
	return strconv.FormatFloat(math.Floor(p*10)/10, 'f', 1, 64) + "%"
}

// duration is short and exact to the millisecond: "1s", "2.5s", "1m30s".
func duration(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

// ranked keeps every entry: how many fit is decided later, by the width of the cell or line.
func ranked(m map[string]uint64) []rank.Entry { return rank.ByCount(m, -1) }

func sum(m map[string]uint64) uint64 {
	var s uint64
	for _, v := range m {
		s += v
	}
	return s
}

// cpuList writes CPU ids the way the kernel does ("0-3,8").
func cpuList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", cpus[i], cpus[j])
		} else {
			fmt.Fprintf(&b, "%d", cpus[i])
		}
		i = j + 1
	}
	return b.String()
}

// pack puts items on lines of at most width columns, separated by sep; the first line starts
// with label and the others are indented under it. An item too long for a line is clipped.
func pack(label string, items []string, sep string, width int) []string {
	indent := strings.Repeat(" ", utf8.RuneCountInString(label))
	var lines []string
	cur := label
	empty := true
	for _, it := range items {
		switch {
		case empty:
			cur += it
		case visibleLen(cur)+len(sep)+visibleLen(it) <= width:
			cur += sep + it
		default:
			lines = append(lines, cur)
			cur = indent + it
		}
		empty = false
		if visibleLen(cur) > width {
			cur = clip(cur, width)
		}
	}
	return append(lines, cur)
}

// words wraps prose to width with every line starting with prefix.
func words(prefix, text string, width int) []string {
	return pack(prefix, strings.Fields(text), " ", width)
}
