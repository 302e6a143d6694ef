// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// standIn writes a stand-in for droptrace: it reports ready as droptrace does (--ready-file),
// records how many of the benchmark's namespaces exist, and runs until SIGTERM, or fails at
// once when fail is set.
func standIn(t *testing.T, dir string, fail bool) string {
	t.Helper()
	bin := filepath.Join(dir, "droptrace")
	script := `#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --ready-file ] && ready=$2; shift; done
ls /run/netns | grep -c '^` + scalePrefix() + `' > ` + filepath.Join(dir, "seen") + `
`
	if fail {
		script += "echo no BPF here >&2; exit 1\n"
	} else {
		script += "trap 'exit 0' TERM\ntouch \"$ready\"\nwhile :; do sleep 0.05; done\n"
	}
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func leftNamespaces(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), scalePrefix()) {
			left = append(left, e.Name())
		}
	}
	return left
}

// The scale section creates the namespaces it measures and removes them, when the tracer
// fails too.
func TestPrivScaleCreatesAndRemovesNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: creating network namespaces needs root; run as root to cover this")
	}
	t.Cleanup(func() { delNamespaces(leftNamespaces(t)) })
	dir := t.TempDir()
	cfg := ScaleConfig{Droptrace: standIn(t, dir, false), Dir: dir, Namespaces: []int{0, 4},
		Interval: time.Second, Settle: 10 * time.Millisecond, Measure: 50 * time.Millisecond}
	rows, err := Scale(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Namespaces != 0 || rows[1].Namespaces != 4 || rows[1].PeakRSS == 0 {
		t.Errorf("rows %+v", rows)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "seen")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(4) {
		t.Errorf("the tracer saw %q namespaces (%v), want 4", b, err)
	}
	if left := leftNamespaces(t); len(left) != 0 {
		t.Errorf("namespaces left: %v", left)
	}

	cfg.Droptrace = standIn(t, dir, true)
	cfg.Namespaces = []int{3}
	if _, err := Scale(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "3 namespaces") {
		t.Errorf("a tracer that fails: %v", err)
	}
	if left := leftNamespaces(t); len(left) != 0 {
		t.Errorf("namespaces left after a failure: %v", left)
	}
}
