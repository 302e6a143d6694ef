// SPDX-License-Identifier: Apache-2.0

package sysctl

import (
	"compress/gzip"
	"errors"
	"os"
	"strings"
	"testing"
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
		{8000, 250, 2}, {2000, 250, 1}, {4000, 250, 1}, {4001, 250, 2},
		{2000, 1000, 2}, {8000, 100, 1}, {10001, 100, 2}, {2000, 300, 1}, {6667, 300, 3},
	}
	for _, tc := range tests {
		if got := UsecsToJiffies(tc.usecs, tc.hz); got != tc.want {
			t.Errorf("UsecsToJiffies(%d, HZ=%d) = %d, want %d", tc.usecs, tc.hz, got, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, bad := range []string{"", "../etc/passwd", "/net/core", "net.core.x y", ".net"} {
		if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), "sysctl name") {
			t.Errorf("Read(%q): %v", bad, err)
		}
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

func TestPrivWriteRestores(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: writing sysctls needs root")
	}
	const name = "net.core.netdev_max_backlog"
	orig, err := Read(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Write(name, orig); err != nil {
			t.Errorf("restore %s: %v", name, err)
		}
	})
	if err := Write(name, "1234"); err != nil {
		t.Fatal(err)
	}
	if v, err := ReadInt(name); err != nil || v != 1234 {
		t.Errorf("read back %d, %v", v, err)
	}
}
