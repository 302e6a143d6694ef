// SPDX-License-Identifier: Apache-2.0

package session

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// onlineCPUs reads /sys/devices/system/cpu/online ("0-3,5,7-8").
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return ParseCPUList(strings.TrimSpace(string(b)))
}

// ParseCPUList parses the kernel's CPU list format ("0-3,5").
func ParseCPUList(s string) ([]int, error) {
	var out []int
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %q is not a number", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// detectHZ finds CONFIG_HZ from the kernel config, else measures jiffies against the clock
// with a BPF program; net_rx_action's time limit is in jiffies, so predictions need it.
func detectHZ() (int, string, error) {
	hz, err := sysctl.HZ()
	if err == nil {
		return hz, "kconfig", nil
	}
	if !errors.Is(err, sysctl.ErrHZUnknown) {
		return 0, "", err
	}
	hz, merr := tracer.MeasureHZ(100 * time.Millisecond)
	if merr != nil {
		return 0, "", fmt.Errorf("%v; measuring it with BPF failed: %w", err, merr)
	}
	return hz, "measured", nil
}

// monoToWall converts CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) to wall time.
func monoToWall() func(uint64) time.Time {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	wall := time.Now()
	mono := uint64(ts.Nano())
	return func(ns uint64) time.Time {
		return wall.Add(time.Duration(int64(ns) - int64(mono)))
	}
}
