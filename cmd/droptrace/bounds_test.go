// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/pods"
)

// Every numeric flag has a documented range: a value outside it is a usage error (exit 2)
// whose message names the flag and the range, and is refused before anything is opened
// (the --output below must not be created).
func TestFlagBounds(t *testing.T) {
	out := t.TempDir() + "/out.jsonl"
	tests := []struct {
		flag, value string
		want        string // "" when the value is in range
	}{
		{"--interval", "1ns", "--interval 1ns: want 50ms to 1h"},
		{"--interval", "49ms", "--interval 49ms: want 50ms to 1h"},
		{"--interval", "50ms", ""},
		{"--interval", "1h", ""},
		{"--interval", "61m", "--interval 1h1m0s: want 50ms to 1h"},
		{"--duration", "-1s", "--duration -1s: want 0 (until Ctrl-C or SIGTERM) or 100ms to 8784h"},
		{"--duration", "99ms", "--duration 99ms: want 0 (until Ctrl-C or SIGTERM) or 100ms to 8784h"},
		{"--duration", "0", ""},
		{"--duration", "100ms", ""},
		{"--duration", "8784h", ""},
		{"--duration", "8785h", "--duration 8785h0m0s: want 0 (until Ctrl-C or SIGTERM) or 100ms to 8784h"},
		{"--max-event-rate", "0", ""},
		{"--max-event-rate", "1000000", ""},
		{"--max-event-rate", "1000001", "--max-event-rate 1000001: want 0 (unlimited) or 1 to 1000000 events per second per CPU"},
		{"--ring-buffer-size", "2048", "--ring-buffer-size 2048: want a power of two from 4096 (4 KiB) to 67108864 (64 MiB)"},
		{"--ring-buffer-size", "4096", ""},
		{"--ring-buffer-size", "6000", "--ring-buffer-size 6000: want a power of two from 4096 (4 KiB) to 67108864 (64 MiB)"},
		{"--ring-buffer-size", "67108864", ""},
		{"--ring-buffer-size", "2147483648", "--ring-buffer-size 2147483648: want a power of two from 4096 (4 KiB) to 67108864 (64 MiB)"},
		{"--output-max-size", "0", ""},
		{"--output-max-size", "63K", "--output-max-size 63K: want 0 (never rotate) or 64K to 1024G"},
		{"--output-max-size", "64K", ""},
		{"--output-max-size", "1024G", ""},
		{"--output-max-size", "1025G", "--output-max-size 1025G: want 0 (never rotate) or 64K to 1024G"},
		{"--snaplen", "63", "--snaplen 63: want 64 to 256 bytes"},
		{"--snaplen", "64", ""},
		{"--snaplen", "256", ""},
		{"--snaplen", "257", "--snaplen 257: want 64 to 256 bytes"},
		{"--output-keep", "-1", "--output-keep -1: want 0 to 1000"},
		{"--output-keep", "0", ""},
		{"--output-keep", "1000", ""},
		{"--output-keep", "1001", "--output-keep 1001: want 0 to 1000"},
		{"--output-keep", "1000000", "--output-keep 1000000: want 0 to 1000"},
		{"--runtime-state-dir", "containerd=/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io", ""},
		{"--runtime-state-dir", "cri-o=/var/lib/containers/storage/overlay-containers", ""},
		{"--runtime-state-dir", "docker=/run/docker", `--runtime-state-dir "docker=/run/docker": want RUNTIME=DIR, RUNTIME one of containerd, cri-o, DIR an absolute clean path`},
		{"--runtime-state-dir", "containerd=run/containerd", `--runtime-state-dir "containerd=run/containerd": want RUNTIME=DIR, RUNTIME one of containerd, cri-o, DIR an absolute clean path`},
		{"--runtime-state-dir", "containerd=/run/../etc", `--runtime-state-dir "containerd=/run/../etc": want RUNTIME=DIR, RUNTIME one of containerd, cri-o, DIR an absolute clean path`},
		{"--runtime-state-dir", "/run/containerd", `--runtime-state-dir "/run/containerd": want RUNTIME=DIR, RUNTIME one of containerd, cri-o, DIR an absolute clean path`},
	}
	for _, tc := range tests {
		args := []string{tc.flag, tc.value, "--output", out}
		var f flags
		set := newFlagSet(&f, &bytes.Buffer{})
		if err := set.Parse(args); err != nil {
			t.Fatalf("parse %v: %v", args, err)
		}
		err := f.validateBounds()
		var ue usageError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %s: %v, want it accepted", tc.flag, tc.value, err)
		case tc.want != "" && (err == nil || !errors.As(err, &ue) || err.Error() != tc.want):
			t.Errorf("%s %s: %v, want the usage error %q", tc.flag, tc.value, err, tc.want)
		}
		if tc.want == "" {
			continue
		}
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("droptrace %v: exit %d, stderr %q; want exit 2 and %q", args, code, stderr.String(), tc.want)
		}
		if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("droptrace %v touched --output before refusing the flag: %v", args, err)
		}
	}
}

// The defaults are inside the bounds.
func TestDefaultsWithinBounds(t *testing.T) {
	var f flags
	newFlagSet(&f, &bytes.Buffer{})
	if err := f.validateBounds(); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
}

// --runtime-state-dir replaces the defaults, repeated at most maxStateDirs times.
func TestRuntimeStateDirs(t *testing.T) {
	var f flags
	set := newFlagSet(&f, &bytes.Buffer{})
	if err := set.Parse([]string{"--runtime-state-dir", "containerd=/a", "--runtime-state-dir", "cri-o=/b"}); err != nil {
		t.Fatal(err)
	}
	dirs, err := f.pods.parse()
	if err != nil || !slices.Equal(dirs, []pods.StateDir{{Runtime: pods.RuntimeContainerd, Dir: "/a"}, {Runtime: pods.RuntimeCRIO, Dir: "/b"}}) {
		t.Errorf("parsed %+v, %v", dirs, err)
	}
	var none flags
	newFlagSet(&none, &bytes.Buffer{})
	if dirs, err := none.pods.parse(); dirs != nil || err != nil {
		t.Errorf("no flag: %+v, %v; want nil (the defaults)", dirs, err)
	}
	args := []string{}
	for range maxStateDirs + 1 {
		args = append(args, "--runtime-state-dir", "containerd=/a")
	}
	var many flags
	if err := newFlagSet(&many, &bytes.Buffer{}).Parse(args); err != nil {
		t.Fatal(err)
	}
	var ue usageError
	if err := many.validateBounds(); !errors.As(err, &ue) {
		t.Errorf("%d state directories: %v, want a usage error", maxStateDirs+1, err)
	}
}
