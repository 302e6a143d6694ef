// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// childEnv makes the test binary act as a lab process that is then killed.
const childEnv = "NETLAB_TEST_KILLED_CHILD"

// A process killed with its lab up (a test timeout) leaves namespaces and changed sysctls;
// CleanupStale must undo them, and must leave a live process's lab alone.
func TestPrivKilledLabIsCleanedUp(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		killedChild()
		return
	}
	requireRoot(t)
	const prefix = "dtlabkill-"
	const name = "net.core.netdev_max_backlog"
	if err := CleanupStale(prefix); err != nil {
		t.Logf("cleaning up earlier runs: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPrivKilledLabIsCleanedUp$")
	cmd.Env = append(os.Environ(), childEnv+"="+prefix)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if err := CleanupStale(prefix); err != nil {
			t.Errorf("final cleanup: %v", err)
		}
	})
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "READY" {
				ready <- f[1:]
				return
			}
		}
		close(ready)
	}()
	var f []string
	select {
	case f = <-ready:
	case <-time.After(SysctlLockWait + 30*time.Second):
		t.Fatal("child lab not ready")
	}
	if f == nil {
		t.Fatal("child lab failed")
	}
	sender, receiver, orig := f[0], f[1], f[2]

	// Alive: nothing of it may go.
	if err := CleanupStale(prefix); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{sender, receiver} {
		if _, err := os.Stat(filepath.Join(netns.RunDir, ns)); err != nil {
			t.Errorf("CleanupStale removed live lab's namespace %s: %v", ns, err)
		}
	}
	if v, _ := sysctl.Read(name); v == orig {
		t.Errorf("CleanupStale restored %s under a live lab", name)
	}

	if err := cmd.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// What the kill left, for CleanupStale to remove.
	left, _ := filepath.Glob(filepath.Join(netns.RunDir, prefix+"*"))
	v, _ := sysctl.Read(name)
	t.Logf("killed pid %d; left namespaces %v, %s=%s (was %s)", cmd.Process.Pid, left, name, v, orig)
	// The sysctl is not asserted here: a lab in another process taking the lock right now
	// would already have restored it, as it should.
	if len(left) != 2 {
		t.Errorf("the killed lab left namespaces %v: not the leftovers this test is about", left)
	}
	// And a lock file from a process killed before it could name it.
	tmp, err := os.CreateTemp(StateDir, ".lab-*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	if err := CleanupStale(prefix); err != nil {
		t.Fatal(err)
	}
	assertRestored(t, map[string]string{name: orig})
	assertNoLeftovers(t, prefix, sender, receiver)
	if _, err := os.Stat(tmp.Name()); err == nil {
		t.Errorf("unnamed lock file %s left behind", tmp.Name())
	}
}

// killedChild builds a lab, changes a sysctl and waits to be killed without closing anything.
func killedChild() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "killed-lab child:", err)
		os.Exit(1)
	}
	lab, err := New(os.Getenv(childEnv))
	if err != nil {
		fail(err)
	}
	const name = "net.core.netdev_max_backlog"
	if err := lab.SetSysctl(name, "10"); err != nil {
		fail(err)
	}
	// The value before ours, as recorded under the lock.
	j, err := os.ReadFile(sysctl.LockPath)
	if err != nil {
		fail(err)
	}
	orig, ok := strings.CutPrefix(strings.TrimSpace(string(j)), name+" ")
	if !ok {
		fail(fmt.Errorf("journal %q does not record %s", j, name))
	}
	if err := lab.SetRPS(0); err != nil {
		fail(err)
	}
	fmt.Printf("READY %s %s %s\n", lab.Sender, lab.Receiver, orig)
	time.Sleep(time.Minute) // bounded if the parent dies without killing us
	os.Exit(2)
}

func TestPrefixValidated(t *testing.T) {
	for _, bad := range []string{"", "-x", "UPPER", "a/b", "a b", strings.Repeat("a", 21)} {
		if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "prefix") {
			t.Errorf("New(%q): %v", bad, err)
		}
		// An empty prefix would match every namespace on the host.
		if err := CleanupStale(bad); err == nil {
			t.Errorf("CleanupStale(%q) accepted", bad)
		}
	}
}
