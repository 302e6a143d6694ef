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
	// runs reads the NET_RX runs per CPU so far, when the programs follow this poll rather
	// than the kernel's own variables; nil otherwise.
	runs func() []uint64

	mu      sync.Mutex
	cur     sysctl.NetCore
	changes []string
	predict reconcile.Availability
	// polled is the runs per CPU before the last read of the sysctls; stale the runs between
	// such a point and the applying of a change seen after it, not yet taken.
	polled []uint64
	stale  map[int]uint64
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

// followRuns makes the watch count the runs that may be predicted with stale limits.
func (w *sysctlWatch) followRuns(runs func() []uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runs = runs
	w.polled = runs()
}

// refresh reads the sysctls and applies a change. A change made after the previous read was
// applied only now: every run in between may have been predicted with the old values, so
// the runs from before that read to after this apply are counted (a bound: one squeeze at most
// each).
func (w *sysctlWatch) refresh() {
	w.mu.Lock()
	var before []uint64
	if w.runs != nil {
		before = w.runs()
	}
	w.mu.Unlock()
	nc, err := w.tree.ReadNetCore()
	w.mu.Lock()
	defer w.mu.Unlock()
	since := w.polled
	if before != nil {
		w.polled = before
	}
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
	if w.runs != nil {
		w.addStale(since, w.runs())
	}
}

func (w *sysctlWatch) addStale(from, to []uint64) {
	for cpu, n := range to {
		var f uint64
		if cpu < len(from) {
			f = from[cpu]
		}
		if n > f {
			if w.stale == nil {
				w.stale = map[int]uint64{}
			}
			w.stale[cpu] += n - f
		}
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

// take returns the changes since the last call, the current values, and the runs per CPU
// that may have been predicted with the values before a change.
func (w *sysctlWatch) take() ([]string, sysctl.NetCore, map[int]uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, stale := w.changes, w.stale
	w.changes, w.stale = nil, nil
	return c, w.cur, stale
}

// predictable says whether squeezes can be predicted with the values in force.
func (w *sysctlWatch) predictable() reconcile.Availability {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.predict
}
