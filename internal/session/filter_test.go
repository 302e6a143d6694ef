// SPDX-License-Identifier: Apache-2.0

package session

import (
	"context"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/filter"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Filters select events: a session given filters without events refuses to start rather than
// record filters that select nothing.
func TestFilterNeedsEvents(t *testing.T) {
	f := filter.Filter{BPF: tracer.Filter{Ports: []uint16{53}}, Record: &record.Filters{Ports: []uint16{53}}}
	if _, err := Run(context.Background(), Config{Interval: time.Second, Filter: f, CountersOnly: true}); err == nil {
		t.Error("a session with filters and no events started")
	}
}
