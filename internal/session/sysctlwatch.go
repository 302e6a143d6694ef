// SPDX-License-Identifier: Apache-2.0

package session

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// sysctlPoll is how often the net.core sysctls are re-read. A user tunes netdev_budget during
// an incident; until the NET_RX programs know the new value their predictions are wrong, so
// the window is kept short (two small file reads per poll).
const sysctlPoll = 100 * time.Millisecond

// sysctlWatch follows the net.core sysctls: it hands changes to the NET_RX programs at once
// and queues a note for the interval in which they happened. It is safe for concurrent use.
type sysctlWatch struct {
	tree sysctl.Tree
	log  *slog.Logger
	now  func() time.Time
	// apply hands new values to the NET_RX programs; nil when none are attached.
	apply func(sysctl.NetCore) reconcile.Availability

	mu      sync.Mutex
	cur     sysctl.NetCore
	changes []string
	predict reconcile.Availability
}

func newSysctlWatch(fsys hostfs.FS, log *slog.Logger, cur sysctl.NetCore, predict reconcile.Availability,
	apply func(sysctl.NetCore) reconcile.Availability) *sysctlWatch {
	return &sysctlWatch{tree: sysctl.On(fsys), log: log, now: time.Now, apply: apply, cur: cur, predict: predict}
}

// run re-reads the sysctls until ctx ends.
func (w *sysctlWatch) run(ctx context.Context) {
	t := time.NewTicker(sysctlPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.refresh()
		}
	}
}

func (w *sysctlWatch) refresh() {
	nc, err := w.tree.ReadNetCore()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || nc == w.cur {
		return
	}
	old := w.cur
	w.log.Info("net.core sysctls changed", "netdev_budget", nc.Budget, "netdev_budget_usecs", nc.BudgetUsecs,
		"netdev_max_backlog", nc.MaxBacklog, "dev_weight", nc.DevWeight)
	w.changes = append(w.changes, describeChange(old, nc, w.now()))
	w.cur = nc
	if w.apply != nil && w.predict.OK {
		w.predict = w.apply(nc)
	}
}

func describeChange(old, cur sysctl.NetCore, at time.Time) string {
	var parts []string
	add := func(name string, a, b int64) {
		if a != b {
			parts = append(parts, fmt.Sprintf("%s %d->%d", name, a, b))
		}
	}
	add("netdev_budget", old.Budget, cur.Budget)
	add("netdev_budget_usecs", old.BudgetUsecs, cur.BudgetUsecs)
	add("netdev_max_backlog", old.MaxBacklog, cur.MaxBacklog)
	add("dev_weight", old.DevWeight, cur.DevWeight)
	return fmt.Sprintf("%s at %s", strings.Join(parts, ", "), at.UTC().Format("15:04:05.000"))
}

// take returns the changes since the last call and the current values.
func (w *sysctlWatch) take() ([]string, sysctl.NetCore) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.changes
	w.changes = nil
	return c, w.cur
}

// predictable says whether squeezes can be predicted with the values in force.
func (w *sysctlWatch) predictable() reconcile.Availability {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.predict
}
