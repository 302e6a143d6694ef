// SPDX-License-Identifier: Apache-2.0

package sysctl

import (
	"compress/gzip"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseKconfigHZ(t *testing.T) {
	f, err := os.Open("testdata/config-250")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if hz, err := ParseKconfigHZ(f); err != nil || hz != 250 {
		t.Errorf("plain: %d, %v", hz, err)
	}
	g, err := os.Open("testdata/config-1000.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	z, err := gzip.NewReader(g)
	if err != nil {
		t.Fatal(err)
	}
	if hz, err := ParseKconfigHZ(z); err != nil || hz != 1000 {
		t.Errorf("gzip: %d, %v", hz, err)
	}
	if _, err := ParseKconfigHZ(strings.NewReader("CONFIG_X=y\n")); !errors.Is(err, ErrHZUnknown) {
		t.Errorf("no CONFIG_HZ: %v", err)
	}
	if _, err := ParseKconfigHZ(strings.NewReader("CONFIG_HZ=fast\n")); err == nil {
		t.Error("CONFIG_HZ=fast accepted")
	}
}

// Values from include/linux/jiffies.h's rounding up.
func TestUsecsToJiffies(t *testing.T) {
	tests := []struct {
		usecs int64
		hz    int
		want  int64
	}{
		{8000, 250, 2}, {2000, 250, 1}, {4000, 250, 1}, {4001, 250, 2}, {1, 250, 1},
		{2000, 1000, 2}, {8000, 100, 1}, {10001, 100, 2}, {2000, 300, 1}, {6667, 300, 3},
		{3333, 300, 1}, {3334, 300, 2}, {1_000_000, 300, 300}, {1_000_001, 300, 301},
		{0, 250, 0}, {-5, 250, 0}, {8000, 0, 0},
		{math.MaxInt32, 250, (math.MaxInt32 + 3999) / 4000},
	}
	for _, tc := range tests {
		if got := UsecsToJiffies(tc.usecs, tc.hz); got != tc.want {
			t.Errorf("UsecsToJiffies(%d, HZ=%d) = %d, want %d", tc.usecs, tc.hz, got, tc.want)
		}
	}
	// Every HZ the kernel offers, against ceil(u*HZ/1e6) computed without rounding error.
	for _, hz := range []int{100, 250, 300, 1000} {
		for u := int64(1); u < 30_000; u += 7 {
			want := (u*int64(hz) + 999_999) / 1_000_000
			if got := UsecsToJiffies(u, hz); got != want {
				t.Fatalf("UsecsToJiffies(%d, HZ=%d) = %d, want %d", u, hz, got, want)
			}
		}
	}
}

func TestNames(t *testing.T) {
	for _, bad := range []string{"", "../etc/passwd", "/net/core", "net.core.x y", ".net", "net.core.", "net..core",
		"Net.core.netdev_budget", "net/core/netdev_budget", "net.core.*"} {
		if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), "sysctl name") {
			t.Errorf("Read(%q): %v", bad, err)
		}
		if err := Write(bad, "1"); err == nil || !strings.Contains(err.Error(), "sysctl name") ||
			!strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("Write(%q): %v", bad, err)
		}
	}
	if _, err := Read("net.core.no_such_setting"); err == nil || !strings.Contains(err.Error(), "net.core.no_such_setting") {
		t.Errorf("missing sysctl: %v", err)
	}
}

func TestReadInt(t *testing.T) {
	Root = t.TempDir()
	t.Cleanup(func() { Root = "/proc/sys" })
	if err := os.MkdirAll(Root+"/net/ipv4", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(Root+"/net/ipv4/tcp_rmem", []byte("4096\t131072\t6291456\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := Read("net.ipv4.tcp_rmem"); err != nil || v != "4096\t131072\t6291456" {
		t.Errorf("Read = %q, %v", v, err)
	}
	if _, err := ReadInt("net.ipv4.tcp_rmem"); err == nil || !strings.Contains(err.Error(), "net.ipv4.tcp_rmem") {
		t.Errorf("ReadInt of a vector: %v", err)
	}
}

func TestReadNetCore(t *testing.T) {
	nc, err := ReadNetCore()
	if err != nil {
		t.Fatal(err)
	}
	if nc.Budget <= 0 || nc.BudgetUsecs <= 0 || nc.MaxBacklog <= 0 || nc.DevWeight <= 0 {
		t.Errorf("%+v", nc)
	}
}

// The running kernel's HZ, when it says; otherwise the error must let the caller measure it.
func TestHZ(t *testing.T) {
	hz, err := HZ()
	if errors.Is(err, ErrHZUnknown) {
		t.Skipf("SKIPPED: this kernel exposes no config: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	switch hz {
	case 100, 250, 300, 1000:
	default:
		t.Errorf("HZ = %d, not one the kernel offers", hz)
	}
	t.Logf("HZ=%d", hz)
}

// labLock is the file internal/netlab holds while it has changed global sysctls: taking it here
// keeps this test from saving a lab's temporary value as "original" when the packages' tests run
// at the same time, and from changing netdev_max_backlog under a running flood.
const labLock = "/run/droptrace-netlab/sysctl.lock"

func lockAgainstLabs(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(labLock), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(labLock, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	deadline := time.Now().Add(5 * time.Minute)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			t.Fatalf("lock %s: %v", labLock, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPrivWriteRestores(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: writing sysctls needs root; run as root to cover Write")
	}
	lockAgainstLabs(t)
	const name = "net.core.netdev_max_backlog"
	orig, err := Read(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Write(name, orig); err != nil {
			t.Errorf("restore %s: %v", name, err)
		}
		if v, _ := Read(name); v != orig {
			t.Errorf("%s is %s after restore, was %s", name, v, orig)
		}
	})
	want := "1234"
	if orig == want {
		want = "1235"
	}
	if err := Write(name, want); err != nil {
		t.Fatal(err)
	}
	if v, err := ReadInt(name); err != nil || strconv.FormatInt(v, 10) != want {
		t.Errorf("read back %d, %v; wrote %s", v, err, want)
	}
	if err := Write(name, "not-a-number"); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("writing garbage: %v", err)
	}
}
