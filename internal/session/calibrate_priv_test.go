// SPDX-License-Identifier: Apache-2.0

package session

import (
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/kallsyms"
	"github.com/droptrace/droptrace/internal/locreason"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/tracer"
)

// calibrationTracer is the drop programs and the kernel's symbols, for calibrating; it skips
// the test when not root.
func calibrationTracer(t *testing.T) (*tracer.Tracer, *kallsyms.Symbols) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to load BPF programs and make a network namespace; run `sudo make test`")
	}
	tr, err := tracer.Open(tracer.Options{NoNetRx: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	syms, err := kallsyms.Load(hostfs.FS{})
	if err != nil {
		t.Fatal(err)
	}
	return tr, syms
}

// Calibration learns the call sites where a closed port and a full socket free datagrams. On a
// kernel with drop reasons the kernel's own reason for every drop at a learned call site must
// be the name learned: that is what the location stands for on kernels without them.
func TestPrivCalibrationLearnsWhatTheKernelNames(t *testing.T) {
	tr, syms := calibrationTracer(t)
	locs := locreason.New(syms)
	calibrate(tr, locs, false, slog.New(slog.NewTextHandler(io.Discard, nil)))
	learned := locs.Learned()
	for _, r := range []string{"NO_SOCKET", "SOCKET_RCVBUFF"} {
		if len(learned[r]) == 0 {
			t.Errorf("no call site learned for %s: %v", r, learned)
		}
		for _, loc := range learned[r] {
			t.Logf("%s at %s", r, syms.Format(loc))
		}
	}

	reasons, err := dropreason.Load()
	if err != nil {
		t.Logf("this kernel names no reasons (%v): learned call sites are not cross-checked", err)
		return
	}
	counts, err := tr.ReadDrops()
	if err != nil {
		t.Fatal(err)
	}
	at := map[uint64]string{}
	for r, ls := range learned {
		for _, l := range ls {
			at[l] = r
		}
	}
	checked := 0
	for _, c := range counts {
		want, ok := at[c.Key.Location]
		if !ok {
			continue
		}
		checked++
		if got := reasons.Name(c.Key.Reason); got != want {
			t.Errorf("%s: learned as %s, the kernel says %s", syms.Format(c.Key.Location), want, got)
		}
	}
	if checked == 0 {
		t.Error("no traced drop at a learned call site")
	}
}

// Where the enum is short, only drops the kernel frees without a reason teach a call site. On a
// kernel that names both calibration drops, each step ends on the named drop, learning nothing
// and reporting nothing missing.
func TestPrivCalibrationOfUnspecifiedLearnsNoNamedDrop(t *testing.T) {
	tr, syms := calibrationTracer(t)
	reasons, err := dropreason.Load()
	if err != nil {
		t.Fatalf("this test needs a kernel with drop reasons: %v", err)
	}
	for _, r := range locreason.Calibrated {
		if _, ok := reasons.Code(r); !ok {
			t.Fatalf("this kernel has no %s: it would free that drop as NOT_SPECIFIED", r)
		}
	}
	locs := locreason.New(syms)
	if err := netns.DoUnshared(func() error { return calibrateHere(tr, locs, true) }); err != nil {
		t.Errorf("calibration of unspecified drops: %v", err)
	}
	if l := locs.Learned(); len(l) != 0 {
		t.Errorf("learned %v from drops the kernel named", l)
	}
}
