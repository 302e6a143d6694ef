// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// asNobody runs the binary as uid and gid 65534 and returns its exit code and output.
func asNobody(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(droptraceBinary(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// tracefsMounted says whether the host has tracefs at dir.
func tracefsMounted(t *testing.T, dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir && strings.Contains(l, " - tracefs ") {
			return true
		}
	}
	return false
}

// As an unprivileged user, doctor and the counters-only fallback say what is actually wrong
// (no capabilities; tracefs mounted but unreadable) and the command that fixes it, not the BPF
// library's RLIMIT_MEMLOCK advice or "not mounted".
func TestPrivUnprivilegedMessagesSayTheCause(t *testing.T) {
	code, out, _ := asNobody(t, "doctor")
	if code != 1 {
		t.Errorf("doctor as nobody: exit %d, want 1\n%s", code, out)
	}
	want := []string{"may not load BPF programs", "run droptrace with sudo"}
	if tracefsMounted(t, "/sys/kernel/tracing") {
		if st, err := os.Stat("/sys/kernel/tracing"); err == nil && st.Mode().Perm()&0o001 == 0 {
			want = append(want, "mounted at /sys/kernel/tracing but not readable by uid 65534")
		}
	} else {
		t.Log("tracefs is not mounted at /sys/kernel/tracing: its message is not checked")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("doctor as nobody lacks %q:\n%s", w, out)
		}
	}
	for _, n := range []string{"MEMLOCK may be too low", "RemoveMemlock"} {
		if strings.Contains(out, n) {
			t.Errorf("doctor as nobody shows %q:\n%s", n, out)
		}
	}
	if tracefsMounted(t, "/sys/kernel/tracing") && strings.Contains(out, "not mounted") {
		t.Errorf("doctor as nobody says tracefs is not mounted:\n%s", out)
	}

	code, _, errs := asNobody(t, "--duration", "100ms", "--interval", "50ms", "--output", "/dev/null", "--live", "off")
	if code != 0 {
		t.Fatalf("session as nobody: exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "counters-only") || !strings.Contains(errs, "run droptrace with sudo") {
		t.Errorf("the counters-only fallback does not say the cause and the fix:\n%s", errs)
	}
	if strings.Contains(errs, "RemoveMemlock") {
		t.Errorf("the counters-only fallback shows the library's RLIMIT_MEMLOCK advice:\n%s", errs)
	}
}
