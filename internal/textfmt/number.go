// SPDX-License-Identifier: Apache-2.0

// Package textfmt writes what droptrace shows people as text, in the live view and in
// analyze's report: numbers (counts, rates, percentages, durations), CPU lists, labels,
// wrapped lines and ruled tables. Where the two outputs want a number written differently,
// each way has its own name: the live view's columns have a fixed width and are redrawn
// every second, the report's columns grow to fit and are read once, closely.
package textfmt

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Count writes n exactly when it fits in w columns, else as Fit does: a 3 a.m. reader needs
// the magnitude, and a column that overflows misaligns the whole table.
func Count(n uint64, w int) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= w {
		return s
	}
	return Fit(float64(n), w)
}

// Fit writes f with a k/M/G/T/P/E suffix in at most w columns where it can: one decimal
// below 100 of its unit when that fits, none otherwise. It is for fixed-width columns.
func Fit(f float64, w int) string {
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

// PerSecond is n over d as a rate in at most w columns (see Fit), "-" when the duration is
// unknown.
func PerSecond(n uint64, d time.Duration, w int) string {
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
	return Fit(r, w)
}

// Rate writes a rate with three significant digits at most and a k or M suffix, without a
// trailing ".0" ("1.5k", "2M", "<0.1"). It is for columns that grow to fit.
func Rate(f float64) string {
	a := math.Abs(f)
	switch {
	case f == 0:
		return "0"
	case a >= 999_950:
		return trimZero(fmt.Sprintf("%.1f", f/1e6)) + "M"
	case a >= 999.95:
		return trimZero(fmt.Sprintf("%.1f", f/1e3)) + "k"
	case a >= 99.95:
		return fmt.Sprintf("%.0f", f)
	case a >= 0.05:
		return trimZero(fmt.Sprintf("%.1f", f))
	}
	return "<0.1"
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// PercentFloor is part of whole in %, floored to one decimal so that 99.97% of runs seen
// never reads as 100%; "-" when whole is not positive. It fits a five-column cell.
func PercentFloor(part, whole float64) string {
	if whole <= 0 {
		return "-"
	}
	p := 100 * part / whole
	if p >= 100 {
		return strconv.FormatFloat(math.Floor(p), 'f', 0, 64) + "%"
	}
	return strconv.FormatFloat(math.Floor(p*10)/10, 'f', 1, 64) + "%"
}

// Percent writes a share given in %: two decimals under 10%, one above, and a share too small
// to show as "<0.01%", never as 0.
func Percent(p float64) string {
	switch {
	case p == 0:
		return "0%"
	case p < 0.01:
		return "<0.01%"
	case p < 10:
		return fmt.Sprintf("%.2f%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}

// Coverage writes a share of things seen, in %, to one decimal; it never rounds a miss up to
// 100%, since a few unseen runs are why checks mismatch.
func Coverage(p float64) string {
	if p < 100 && p >= 99.95 {
		return ">99.9%"
	}
	return fmt.Sprintf("%.1f%%", p)
}

// DurationExact is exact to the millisecond: "1s", "2.5s", "1m30s".
func DurationExact(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

// DurationShort is a length in milliseconds in at most two units: "1.0s", "2m05s", "1h02m".
func DurationShort(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// Seconds writes milliseconds as seconds with one decimal.
func Seconds(ms int64) string { return fmt.Sprintf("%.1f", float64(ms)/1000) }

// Optional writes *p, or "-" when p is nil: absent is not zero.
func Optional[T any](p *T) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

// OrDash writes s, or "-" when it is empty.
func OrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// CPUList writes CPU ids the way the kernel does ("0-3,8"); ids must be sorted.
func CPUList(cpus []int) string {
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
