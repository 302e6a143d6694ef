// SPDX-License-Identifier: Apache-2.0

package hostfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func fixture(t *testing.T, files map[string]string) FS {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return New(root)
}

func TestReads(t *testing.T) {
	f := fixture(t, map[string]string{
		"proc/sys/net/core/netdev_budget":         "300\n",
		"sys/class/net/eth0/queues/rx-0/rps_cpus": "0\n",
		"sys/class/net/eth0/queues/rx-1/rps_cpus": "3\n",
	})
	for _, name := range []string{"/proc/sys/net/core/netdev_budget", "proc/sys/net/core/netdev_budget"} {
		if got := f.ReadTrim(name); got != "300" {
			t.Errorf("ReadTrim(%q) = %q", name, got)
		}
	}
	if got := f.ReadTrim("/proc/absent"); got != "" {
		t.Errorf("an absent file reads %q", got)
	}
	qs, err := f.Glob("/sys/class/net/eth0/queues/rx-*")
	if err != nil || !slices.Equal(qs, []string{"/sys/class/net/eth0/queues/rx-0", "/sys/class/net/eth0/queues/rx-1"}) {
		t.Errorf("Glob = %q, %v", qs, err)
	}
	if got := (FS{}).Path("/proc/interrupts"); got != "/proc/interrupts" {
		t.Errorf("the zero FS is not the host: %q", got)
	}
}

func TestReadParse(t *testing.T) {
	f := fixture(t, map[string]string{"proc/x": "a b\n"})
	words := func(r io.Reader) ([]string, error) {
		b, _ := io.ReadAll(r)
		if len(b) == 0 {
			return nil, errors.New("empty")
		}
		return strings.Fields(string(b)), nil
	}
	if got, err := ReadParse(f, "/proc/x", words); err != nil || len(got) != 2 {
		t.Errorf("ReadParse = %q, %v", got, err)
	}
	if _, err := ReadParse(f, "/proc/absent", words); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}
