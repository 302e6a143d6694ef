// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/sysctl"
)

// The NET_RX programs learn where the kernel keeps netdev_budget from a read of the sysctl,
// then predict with the value the kernel uses, not the one they were configured with: with
// the kernel's budget at 1 and the configuration still saying 300, loopback runs are predicted
// to squeeze.
func TestPrivNetRxReadsKernelLimits(t *testing.T) {
	requireRoot(t)
	j, err := sysctl.Lock(5 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := j.Close(); err != nil {
			t.Errorf("restore sysctls: %v", err)
		}
	}()
	tr, err := Open(Options{NoDrops: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var status string
	for _, p := range tr.Probes() {
		if p.Name == LimitsProbe {
			status = p.Status
		}
	}
	if status != "fentry" {
		// Kernels without BPF trampolines, or whose policy refuses fentry: the probe says
		// why, and the NET_RX programs keep the configured limits.
		if !strings.HasPrefix(status, "unavailable: fentry/proc_dointvec") {
			t.Fatalf("probe %s: %q, want fentry or why not", LimitsProbe, status)
		}
		if b, u, err := tr.KernelLimits(); err != nil || b || u {
			t.Errorf("without fentry: budget %v usecs %v err %v", b, u, err)
		}
		t.Logf("fentry unavailable on this kernel (%s): the NET_RX programs use the polled limits", status)
		return
	}
	if b, u, err := tr.KernelLimits(); err != nil || b || u {
		t.Fatalf("limits known before any sysctl read: budget %v usecs %v err %v", b, u, err)
	}
	restore, err := j.Set("net.core.netdev_budget", "1")
	if err != nil {
		t.Fatal(err)
	}
	defer restore()
	if err := tr.SetNetRx(300, 1000, 0); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"/proc/sys/net/core/netdev_budget", "/proc/sys/net/core/netdev_budget_usecs"} {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	b, u, err := tr.KernelLimits()
	if err != nil || !b || !u {
		t.Fatalf("after reading the sysctls: budget %v usecs %v err %v", b, u, err)
	}
	sendUDP(t, closedUDPPort(t), 200)
	time.Sleep(100 * time.Millisecond)
	nr, err := tr.ReadNetRx()
	if err != nil {
		t.Fatal(err)
	}
	var runs, squeezes uint64
	for _, c := range nr {
		runs += c.Runs
		squeezes += c.BudgetSqueezes
	}
	if runs == 0 || squeezes == 0 {
		t.Errorf("%d NET_RX runs, %d budget squeezes predicted: the kernel's budget of 1 was not read", runs, squeezes)
	}
}
