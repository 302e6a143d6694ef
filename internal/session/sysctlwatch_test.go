// SPDX-License-Identifier: Apache-2.0

package session

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// A change is applied at the first poll after it: the runs from before the previous poll's
// read to after the apply may have been predicted with the old values, and are counted per CPU
// for the interval's time_squeeze check; polls without a change count none.
func TestSysctlWatchCountsStaleRuns(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "proc/sys/net/core")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	set := func(budget string) {
		t.Helper()
		for name, v := range map[string]string{"netdev_budget": budget, "netdev_budget_usecs": "8000", "netdev_max_backlog": "1000", "dev_weight": "64"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	set("300")
	fsys := hostfs.New(root)
	cur, err := sysctl.On(fsys).ReadNetCore()
	if err != nil {
		t.Fatal(err)
	}
	// Each read of the runs finds CPU 1 ten runs further, CPU 0 one.
	var reads uint64
	runs := func() []uint64 { reads++; return []uint64{reads, 10 * reads} }
	var applied []int64
	w := newSysctlWatch(fsys, slog.New(slog.NewTextHandler(io.Discard, nil)), cur, reconcile.Availability{OK: true},
		func(nc sysctl.NetCore) reconcile.Availability {
			applied = append(applied, nc.Budget)
			return reconcile.Availability{OK: true}
		})
	w.followRuns(runs) // read 1
	w.refresh()        // read 2: no change
	if _, _, stale := w.take(); stale != nil {
		t.Errorf("stale runs %v without a change", stale)
	}
	set("4")
	w.refresh() // read 3 before the sysctls, read 4 after the apply: from read 2 to read 4
	changes, nc, stale := w.take()
	if len(changes) != 1 || nc.Budget != 4 || len(applied) != 1 || applied[0] != 4 {
		t.Fatalf("changes %v, values %+v, applied %v", changes, nc, applied)
	}
	if stale[0] != 2 || stale[1] != 20 {
		t.Errorf("stale runs %v, want CPU 0: 2, CPU 1: 20", stale)
	}
	w.refresh()
	if _, _, stale := w.take(); stale != nil {
		t.Errorf("stale runs %v after the change was taken", stale)
	}
}
