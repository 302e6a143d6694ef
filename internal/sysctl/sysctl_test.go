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

	"github.com/droptrace/droptrace/internal/hostfs"
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
	root := t.TempDir()
	if err := os.MkdirAll(root+"/proc/sys/net/ipv4", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+"/proc/sys/net/ipv4/tcp_rmem", []byte("4096\t131072\t6291456\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := On(hostfs.New(root))
	if v, err := tree.Read("net.ipv4.tcp_rmem"); err != nil || v != "4096\t131072\t6291456" {
		t.Errorf("Read = %q, %v", v, err)
	}
	if _, err := tree.ReadInt("net.ipv4.tcp_rmem"); err == nil || !strings.Contains(err.Error(), "net.ipv4.tcp_rmem") {
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

// HZ comes from /proc/config.gz first, else /boot/config-<release>; with neither, the error
// wraps ErrHZUnknown so that the caller measures it.
func TestHZUnderRoot(t *testing.T) {
	put := func(root, name, src string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	both := t.TempDir()
	put(both, "proc/config.gz", "testdata/config-1000.gz")
	put(both, "boot/config-6.1.0-test", "testdata/config-250")
	if hz, err := HZ(hostfs.New(both), "6.1.0-test"); err != nil || hz != 1000 {
		t.Errorf("config.gz and boot config: %d, %v; want 1000 from /proc/config.gz", hz, err)
	}
	boot := t.TempDir()
	put(boot, "boot/config-6.1.0-test", "testdata/config-250")
	if hz, err := HZ(hostfs.New(boot), "6.1.0-test"); err != nil || hz != 250 {
		t.Errorf("boot config only: %d, %v; want 250", hz, err)
	}
	if _, err := HZ(hostfs.New(boot), "6.12.0-other"); !errors.Is(err, ErrHZUnknown) {
		t.Errorf("another release's boot config: %v, want ErrHZUnknown", err)
	}
	bad := t.TempDir()
	put(bad, "proc/config.gz", "testdata/config-250")
	if _, err := HZ(hostfs.New(bad), "x"); err == nil || errors.Is(err, ErrHZUnknown) {
		t.Errorf("config.gz that is not gzip: %v, want an error that is not ErrHZUnknown", err)
	}
}

// The running kernel's HZ, when it says; otherwise the error must let the caller measure it.
func TestHZ(t *testing.T) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	hz, err := HZ(hostfs.Host(), unix.ByteSliceToString(u.Release[:]))
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

// lockAgainstLabs takes the sysctl lock the labs hold while they have changed global sysctls:
// this test then never saves a lab's temporary value as "original" when the packages' tests run
// at the same time, nor changes netdev_max_backlog under a running flood.
func lockAgainstLabs(t *testing.T) *Journal {
	t.Helper()
	j, err := Lock(5 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := j.Close(); err != nil {
			t.Error(err)
		}
	})
	return j
}

// changeBacklog is the sysctl the root tests change, under the labs' lock (see lockAgainstLabs)
// and put back when the test ends. It returns the lock, the original value and a different one.
func changeBacklog(t *testing.T) (j *Journal, orig, want string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: writing sysctls needs root; run as root to cover Write and Journal")
	}
	j = lockAgainstLabs(t)
	orig, err := Read(backlogName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Write(backlogName, orig); err != nil {
			t.Errorf("restore %s: %v", backlogName, err)
		}
		if v, _ := Read(backlogName); v != orig {
			t.Errorf("%s is %s after restore, was %s", backlogName, v, orig)
		}
	})
	want = "1234"
	if orig == want {
		want = "1235"
	}
	return j, orig, want
}

const backlogName = "net.core.netdev_max_backlog"

func TestPrivWriteRestores(t *testing.T) {
	_, _, want := changeBacklog(t)
	const name = backlogName
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

// A journaled change is undone by its restore function, and, when its holder died before
// restoring it, by the next holder of the lock.
func TestPrivJournal(t *testing.T) {
	j, orig, want := changeBacklog(t)
	const name = backlogName
	check := func(when, want string) {
		t.Helper()
		if v, err := Read(name); err != nil || v != want {
			t.Errorf("%s: %s = %q (%v), want %s", when, name, v, err, want)
		}
	}
	restore, err := j.Set(name, want)
	if err != nil {
		t.Fatal(err)
	}
	check("after Set", want)
	if b, err := os.ReadFile(LockPath); err != nil || string(b) != name+" "+orig+"\n" {
		t.Errorf("journal %q (%v), want the original value", b, err)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	check("after restore", orig)

	// A holder that dies leaves its journal and its value; the next Lock restores both.
	if _, err := j.Set(name, want); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Set(name, want+"0"); err != nil {
		t.Fatal(err)
	}
	j.f.Close() // dies: releases the lock without restoring or clearing the journal
	j2, err := Lock(0)
	if err != nil {
		t.Fatal(err)
	}
	*j = *j2 // the cleanup closes the new holder
	check("after the next Lock", orig)
	if b, err := os.ReadFile(LockPath); err != nil || len(b) != 0 {
		t.Errorf("journal %q (%v) after it was restored, want it empty", b, err)
	}
	if err := RestoreStale(); err != nil {
		t.Errorf("RestoreStale under a live holder: %v", err)
	}

	if _, err := j.Set(name, "not-a-number"); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("writing garbage: %v", err)
	}
}
