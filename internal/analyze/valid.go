// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"fmt"
	"maps"
	"time"

	"github.com/droptrace/droptrace/internal/record"
)

// Bounds of a record's fields that no session writes past: a value beyond them is damage, and
// the line is skipped rather than let it poison a sum or a rate.
const (
	// maxCPUs is the kernel's largest NR_CPUS (CONFIG_NR_CPUS_RANGE_END on x86_64).
	maxCPUs = 8192
	// maxDurationMs is ten years, beyond any session.
	maxDurationMs = int64(10 * 365 * 24 * time.Hour / time.Millisecond)
	// maxNames bounds the distinct drop reasons, L4 protocols, SNMP and sockstat counters a
	// recording may name: a kernel has a few hundred, and every timeline point and sum keeps
	// one count per name, so a file inventing a name per line must not grow them.
	maxNames = 2048
)

// names are the distinct names a recording's counts are keyed by (see maxNames).
type names map[string]struct{}

// admit adds iv's names, or, when they would pass maxNames, adds none and says so. The summary
// record is not folded, so only intervals are admitted.
func (ns names) admit(iv *record.Interval) error {
	fresh := names{}
	see := func(kind, name string) {
		if _, ok := ns[kind+name]; !ok && len(ns)+len(fresh) <= maxNames {
			fresh[kind+name] = struct{}{}
		}
	}
	for r := range iv.Drops {
		see("", r)
	}
	for _, c := range iv.CPUs {
		for r := range c.Drops {
			see("", r)
		}
		for r, l4 := range c.DropsL4 {
			see("", r)
			for p := range l4 {
				see("l4:", p)
			}
		}
	}
	for _, d := range iv.Devices {
		for r := range d.Drops {
			see("", r)
		}
	}
	for g, fs := range iv.SNMP {
		for f := range fs {
			see("snmp:"+g+".", f)
		}
	}
	for g, fs := range iv.Sockstat {
		for f := range fs {
			see("sockstat:"+g+".", f)
		}
	}
	if len(ns)+len(fresh) > maxNames {
		return fmt.Errorf("more than %d distinct drop reasons and counters in the recording (a kernel has a few hundred)", maxNames)
	}
	maps.Copy(ns, fresh)
	return nil
}

func validCPUs(cpus []int) error {
	for _, c := range cpus {
		if c < 0 || c >= maxCPUs {
			return fmt.Errorf("cpu %d is out of range (0 to %d)", c, maxCPUs-1)
		}
	}
	return nil
}

// validInterval checks an interval or summary record's fields that the reports divide by or
// index with; counts that do not fit their type are refused by unmarshal already.
func validInterval(iv *record.Interval) error {
	switch {
	case iv.DurationMs < 0:
		return fmt.Errorf("duration_ms %d is negative", iv.DurationMs)
	case iv.DurationMs > maxDurationMs:
		return fmt.Errorf("duration_ms %d is more than ten years", iv.DurationMs)
	}
	for _, c := range iv.CPUs {
		if err := validCPUs([]int{c.CPU}); err != nil {
			return err
		}
	}
	return nil
}
