// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/sysctl"
)

type softnet struct{ dropped, squeeze map[int]uint64 }

// readSoftnet is deliberately minimal and independent of internal/softnet: this test checks
// the scenario, not the parser.
func readSoftnet(t *testing.T) softnet {
	t.Helper()
	f, err := os.Open("/proc/net/softnet_stat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := softnet{map[int]uint64{}, map[int]uint64{}}
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		f := strings.Fields(sc.Text())
		cpu := i
		if len(f) >= 13 {
			c, _ := strconv.ParseUint(f[12], 16, 32)
			cpu = int(c)
		}
		d, _ := strconv.ParseUint(f[1], 16, 32)
		q, _ := strconv.ParseUint(f[2], 16, 32)
		s.dropped[cpu], s.squeeze[cpu] = d, q
	}
	return s
}

func TestPrivScenarioReproduces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: the scenario needs root (netns, veth, sysctls)")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("SKIPPED: RPS to another CPU needs two CPUs")
	}
	CleanupStale("dtlabtest-")
	origBacklog, _ := sysctl.Read("net.core.netdev_max_backlog")
	origBudget, _ := sysctl.Read("net.core.netdev_budget")
	lab, err := New("dtlabtest-")
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			lab.Close()
		}
	})
	if err := lab.SetRPS(1); err != nil {
		t.Fatal(err)
	}
	if err := lab.SetSysctl("net.core.netdev_max_backlog", "10"); err != nil {
		t.Fatal(err)
	}
	if err := lab.SetSysctl("net.core.netdev_budget", "4"); err != nil {
		t.Fatal(err)
	}
	before := readSoftnet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	sent, err := lab.Flood(ctx, 0, 9, 200_000, 64)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	after := readSoftnet(t)
	dropped := after.dropped[1] - before.dropped[1]
	squeezed := after.squeeze[1] - before.squeeze[1]
	t.Logf("sent %d datagrams in %s from CPU 0; RPS CPU 1: dropped +%d, time_squeeze +%d; CPU 0: dropped +%d, time_squeeze +%d",
		sent, took.Round(time.Millisecond), dropped, squeezed, after.dropped[0]-before.dropped[0], after.squeeze[0]-before.squeeze[0])
	if dropped == 0 || squeezed == 0 {
		t.Errorf("the scenario did not reproduce on the RPS CPU: dropped +%d, time_squeeze +%d", dropped, squeezed)
	}
	rx, err := lab.ReadFile("dev")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("receiver /proc/net/dev:\n%s", rx)

	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if v, _ := sysctl.Read("net.core.netdev_max_backlog"); v != origBacklog {
		t.Errorf("netdev_max_backlog %s after Close, was %s", v, origBacklog)
	}
	if v, _ := sysctl.Read("net.core.netdev_budget"); v != origBudget {
		t.Errorf("netdev_budget %s after Close, was %s", v, origBudget)
	}
	for _, ns := range []string{lab.Sender, lab.Receiver} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("namespace %s left behind", ns)
		}
	}
}
