// SPDX-License-Identifier: Apache-2.0

// Package sysctl reads and writes /proc/sys values and knows the net.core settings that decide
// backlog drops and NET_RX squeezes, and the kernel's HZ.
package sysctl

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// Tree is the sysctls under a filesystem root's /proc/sys.
type Tree struct{ fs hostfs.FS }

// On returns the sysctls of fsys.
func On(fsys hostfs.FS) Tree { return Tree{fs: fsys} }

// path maps a dotted name to its file. Only the characters the kernel uses in net.* names are
// allowed, so a name taken from a flag or a config file can never reach outside /proc/sys.
func path(name string) (string, error) {
	if name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, "/") ||
		strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return "", fmt.Errorf("sysctl name %q: want dotted form like net.core.netdev_budget", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return "", fmt.Errorf("sysctl name %q: character %q not allowed (only a-z 0-9 _ . -)", name, r)
		}
	}
	return "/proc/sys/" + strings.ReplaceAll(name, ".", "/"), nil
}

// Read returns a sysctl's value, trimmed.
func (t Tree) Read(name string) (string, error) {
	p, err := path(name)
	if err != nil {
		return "", err
	}
	b, err := t.fs.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadInt returns a numeric sysctl.
func (t Tree) ReadInt(name string) (int64, error) {
	s, err := t.Read(name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sysctl %s = %q: %w", name, s, err)
	}
	return v, nil
}

// Write sets a sysctl (needs root).
func (t Tree) Write(name, value string) error {
	p, err := path(name)
	if err != nil {
		return err
	}
	if err := t.fs.WriteFile(p, []byte(value)); err != nil {
		return fmt.Errorf("write sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// Read, ReadInt, Write and ReadNetCore act on the running host's sysctls.
func Read(name string) (string, error)   { return On(hostfs.Host()).Read(name) }
func ReadInt(name string) (int64, error) { return On(hostfs.Host()).ReadInt(name) }
func Write(name, value string) error     { return On(hostfs.Host()).Write(name, value) }
func ReadNetCore() (NetCore, error)      { return On(hostfs.Host()).ReadNetCore() }

// NetCore is what net_rx_action and enqueue_to_backlog read (net/core/dev.c).
type NetCore struct {
	Budget, BudgetUsecs, MaxBacklog, DevWeight int64
}

// ReadNetCore reads the four settings.
func (t Tree) ReadNetCore() (NetCore, error) {
	var nc NetCore
	for _, f := range []struct {
		name string
		dst  *int64
	}{
		{"net.core.netdev_budget", &nc.Budget},
		{"net.core.netdev_budget_usecs", &nc.BudgetUsecs},
		{"net.core.netdev_max_backlog", &nc.MaxBacklog},
		{"net.core.dev_weight", &nc.DevWeight},
	} {
		v, err := t.ReadInt(f.name)
		if err != nil {
			return nc, err
		}
		*f.dst = v
	}
	return nc, nil
}

// ErrHZUnknown means no kernel config says what CONFIG_HZ is.
var ErrHZUnknown = errors.New("CONFIG_HZ unknown")

// HZ reads CONFIG_HZ from fsys's /proc/config.gz, else /boot/config-<release> (release is
// uname -r). When neither exists the error wraps ErrHZUnknown, and the caller is expected to
// measure HZ instead.
func HZ(fsys hostfs.FS, release string) (int, error) {
	const procConfig = "/proc/config.gz"
	f, err := fsys.Open(procConfig)
	switch {
	case err == nil:
		defer f.Close()
		z, err := gzip.NewReader(f)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", procConfig, err)
		}
		hz, err := ParseKconfigHZ(z)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", procConfig, err)
		}
		return hz, nil
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("open %s: %w", procConfig, err)
	}
	boot := "/boot/config-" + release
	b, err := fsys.ReadFile(boot)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("no %s and no %s: %w", procConfig, boot, ErrHZUnknown)
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", boot, err)
	}
	hz, err := ParseKconfigHZ(bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", boot, err)
	}
	return hz, nil
}

// ParseKconfigHZ finds CONFIG_HZ=<n> in a kernel config.
func ParseKconfigHZ(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
			hz, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || hz <= 0 {
				return 0, fmt.Errorf("CONFIG_HZ=%q: not a positive number", v)
			}
			return hz, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read kernel config: %w", err)
	}
	return 0, fmt.Errorf("kernel config has no CONFIG_HZ: %w", ErrHZUnknown)
}

// UsecPerJiffy is the length of a jiffy in microseconds when HZ divides a second in whole
// microseconds (every common HZ: 100, 250, 1000), else 0. bpf/netrx.c rounds with it as
// UsecsToJiffies does.
func UsecPerJiffy(hz int) int64 {
	if hz <= 0 || 1_000_000%hz != 0 {
		return 0
	}
	return int64(1_000_000 / hz)
}

// UsecsToJiffies is the kernel's usecs_to_jiffies (include/linux/jiffies.h). It rounds up, so
// at HZ=250 netdev_budget_usecs=2000 still gives net_rx_action a whole jiffy, and 8000 gives
// two: the time limit a poll loop really has is this many jiffies, not the microseconds set.
// Zero or negative input (the sysctl is never negative) and a non-positive HZ give 0.
func UsecsToJiffies(usecs int64, hz int) int64 {
	if hz <= 0 || usecs <= 0 {
		return 0
	}
	const usecPerSec = 1_000_000
	if per := UsecPerJiffy(hz); per > 0 {
		return (usecs + per - 1) / per
	}
	// HZ=300 and the like: the kernel's multiply-and-shift constants (kernel/time/timeconst.bc)
	// are chosen to give ceil(u*HZ/1e6); split u so the product cannot overflow.
	q, r := usecs/usecPerSec, usecs%usecPerSec
	return q*int64(hz) + (r*int64(hz)+usecPerSec-1)/usecPerSec
}
