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
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Root is where sysctls live; tests may point it elsewhere.
var Root = "/proc/sys"

func path(name string) (string, error) {
	if name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, "/") || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("sysctl name %q: want dotted form like net.core.netdev_budget", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return "", fmt.Errorf("sysctl name %q: character %q not allowed", name, r)
		}
	}
	return filepath.Join(Root, strings.ReplaceAll(name, ".", "/")), nil
}

// Read returns a sysctl's value, trimmed.
func Read(name string) (string, error) {
	p, err := path(name)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadInt returns a numeric sysctl.
func ReadInt(name string) (int64, error) {
	s, err := Read(name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sysctl %s = %q: not an integer", name, s)
	}
	return v, nil
}

// Write sets a sysctl (needs root).
func Write(name, value string) error {
	p, err := path(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// NetCore is what net_rx_action and enqueue_to_backlog read (net/core/dev.c).
type NetCore struct {
	Budget, BudgetUsecs, MaxBacklog, DevWeight int64
}

// ReadNetCore reads the four settings.
func ReadNetCore() (NetCore, error) {
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
		v, err := ReadInt(f.name)
		if err != nil {
			return nc, err
		}
		*f.dst = v
	}
	return nc, nil
}

// ErrHZUnknown means no kernel config says what CONFIG_HZ is.
var ErrHZUnknown = errors.New("no /proc/config.gz or /boot/config-<release> to read CONFIG_HZ from")

// HZ reads CONFIG_HZ from /proc/config.gz, else /boot/config-$(uname -r).
func HZ() (int, error) {
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		z, err := gzip.NewReader(f)
		if err != nil {
			return 0, fmt.Errorf("/proc/config.gz: %w", err)
		}
		return ParseKconfigHZ(z)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		p := "/boot/config-" + unix.ByteSliceToString(u.Release[:])
		if b, err := os.ReadFile(p); err == nil {
			hz, err := ParseKconfigHZ(bytes.NewReader(b))
			if err != nil {
				return 0, fmt.Errorf("%s: %w", p, err)
			}
			return hz, nil
		}
	}
	return 0, ErrHZUnknown
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
		return 0, err
	}
	return 0, fmt.Errorf("kernel config has no CONFIG_HZ: %w", ErrHZUnknown)
}

// UsecsToJiffies is the kernel's usecs_to_jiffies (include/linux/jiffies.h): it rounds up, so
// netdev_budget_usecs=2000 at HZ=250 is one jiffy, and 8000 is two.
func UsecsToJiffies(usecs int64, hz int) int64 {
	if hz <= 0 || usecs <= 0 {
		return 0
	}
	// (u * HZ + 999999) / 1e6 is exact for every HZ the kernel offers (100, 250, 300, 1000).
	return (usecs*int64(hz) + 999_999) / 1_000_000
}
