// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"fmt"
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
)

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
