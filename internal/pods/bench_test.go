// SPDX-License-Identifier: Apache-2.0

package pods

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// A socket's owner named again: /proc/<pid>/cgroup read and parsed, its config.json cached.
func BenchmarkProcessCached(b *testing.B) {
	r := New(hostfs.New("testdata/root"), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.Process(4121, "")
	for b.Loop() {
		if _, ok := r.Process(4121, ""); !ok {
			b.Fatal("not found")
		}
	}
}

// A new container: its config.json opened without following links, checked and parsed; the
// fixture's, and one of 32 KiB as a container with many mounts and variables has.
func BenchmarkReadConfig(b *testing.B) {
	fsys := hostfs.New("testdata/root")
	b.Run("fixture", func(b *testing.B) {
		for b.Loop() {
			if _, err := readConfig(fsys, DefaultStateDirs[0], cid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("32KiB", func(b *testing.B) {
		root := b.TempDir()
		dir := filepath.Join(root, cid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		env := make([]string, 0, 600)
		for i := range 600 {
			env = append(env, fmt.Sprintf("SERVICE_%d_PORT=tcp://10.96.%d.%d:8080", i, i/256, i%256))
		}
		cfg, _ := json.Marshal(map[string]any{"process": map[string]any{"env": env},
			"annotations": map[string]string{"io.kubernetes.cri.sandbox-name": "web-0", "io.kubernetes.cri.sandbox-namespace": "default"}})
		if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(cfg)))
		for b.Loop() {
			if _, err := readConfig(hostfs.New(root), StateDir{RuntimeContainerd, "/"}, cid); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// An unknown network namespace: every state directory listed, sandboxes' configs cached.
func BenchmarkNetnsRescan(b *testing.B) {
	r := New(hostfs.New("testdata/root"), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.mu.Lock()
	r.scanNetns()
	for b.Loop() {
		r.scanNetns()
	}
	r.mu.Unlock()
}
