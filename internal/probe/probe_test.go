// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

func TestDetectHZ(t *testing.T) {
	unknown := fmt.Errorf("no config: %w", sysctl.ErrHZUnknown)
	unreadable := errors.New("read /boot/config: permission denied")
	noBPF := errors.New("load jiffies probe: operation not permitted")
	value := func(hz int, err error) func() (int, error) { return func() (int, error) { return hz, err } }
	for _, tc := range []struct {
		name             string
		kconfig, measure func() (int, error)
		hz               int
		source           string
		errIs            []error // what the error wraps
	}{
		{"kconfig", value(250, nil), value(0, noBPF), 250, HZKconfig, nil},
		{"measured without a config", value(0, unknown), value(1000, nil), 1000, HZMeasured, nil},
		{"neither", value(0, unknown), value(0, noBPF), 0, "", []error{sysctl.ErrHZUnknown, noBPF}},
		// A config that exists but cannot be read is reported, not papered over by a measurement.
		{"unreadable config", value(0, unreadable), value(250, nil), 0, "", []error{unreadable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hz, src, err := detectHZ(tc.kconfig, tc.measure)
			if hz != tc.hz || src != tc.source {
				t.Errorf("HZ %d from %q, want %d from %q", hz, src, tc.hz, tc.source)
			}
			if (err != nil) != (tc.errIs != nil) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.errIs)
			}
			for _, want := range tc.errIs {
				if !errors.Is(err, want) {
					t.Errorf("error %v does not wrap %v", err, want)
				}
			}
		})
	}
}

func TestMode(t *testing.T) {
	if m := mode(true); m != record.ModeFull {
		t.Errorf("tracing: mode %q", m)
	}
	if m := mode(false); m != record.ModeCountersOnly {
		t.Errorf("no tracing: mode %q", m)
	}
}

// On a host that can trace, Open attaches every family and says so; with countersOnly it opens
// nothing and still finds HZ.
func TestPrivOpen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to load BPF programs; run `sudo make test`")
	}
	h, tr := Open(hostfs.Host(), tracer.Options{}, false)
	if tr == nil {
		t.Fatalf("no tracer: %v", h.TraceErr)
	}
	defer tr.Close()
	if h.Mode != record.ModeFull || h.TraceErr != nil {
		t.Errorf("mode %q, error %v", h.Mode, h.TraceErr)
	}
	if len(h.Probes) != 5 {
		t.Errorf("probes %+v, want kfree_skb, the three NET_RX tracepoints and the limits' probe", h.Probes)
	}
	for _, p := range h.Probes {
		// Where fentry is refused the NET_RX limits are polled instead: that probe says why.
		if !p.OK && (p.Name != tracer.LimitsProbe || !strings.HasPrefix(p.Status, "unavailable: ")) {
			t.Errorf("probe %+v", p)
		}
	}
	if h.HZ == 0 {
		t.Errorf("HZ unknown: %v", h.HZErr)
	}
	c, tr2 := Open(hostfs.Host(), tracer.Options{}, true)
	if tr2 != nil {
		tr2.Close()
		t.Fatal("countersOnly opened a tracer")
	}
	if c.Mode != record.ModeCountersOnly || c.Probes != nil || c.HZ != h.HZ {
		t.Errorf("countersOnly: %+v", c)
	}
}
