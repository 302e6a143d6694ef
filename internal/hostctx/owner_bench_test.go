// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// BenchmarkFindOwners5000 walks a /proc of 5000 processes with 20 descriptors each, 8 of them
// sockets, for the holders of 10 sockets: the work of one interval in which 10 sockets not
// seen before took drops. docs/victims.md has the figure.
func BenchmarkFindOwners5000(b *testing.B) {
	root := b.TempDir()
	const procs, fds = 5000, 20
	for pid := 1; pid <= procs; pid++ {
		dir := filepath.Join(root, "proc", fmt.Sprint(pid))
		if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
			b.Fatal(err)
		}
		for fd := range fds {
			target := "/dev/null"
			if fd >= 12 {
				target = fmt.Sprintf("socket:[%d]", pid*fds+fd)
			}
			if err := os.Symlink(target, filepath.Join(dir, "fd", fmt.Sprint(fd))); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte("worker\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte("0::/system.slice/worker.service\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	want := map[uint64]bool{}
	for i := range 10 {
		pid := 1 + i*procs/10
		want[uint64(pid*fds+15)] = true
	}
	fsys := hostfs.New(root)
	b.ResetTimer()
	for b.Loop() {
		if got := FindOwners(fsys, want); len(got) != len(want) {
			b.Fatalf("found %d of %d sockets", len(got), len(want))
		}
	}
}
