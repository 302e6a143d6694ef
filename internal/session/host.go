// SPDX-License-Identifier: Apache-2.0

package session

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/hostfs"
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
func onlineCPUs(fsys hostfs.FS) ([]int, error) {
	b, err := fsys.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return hostctx.ParseCPUList(strings.TrimSpace(string(b)))
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
