// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// TestMain removes the binary the privileged tests build.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// droptraceBinary builds the command once: signal handling and privileges are properties of
// the process, so these tests run the binary, not run(). The tests that use it load BPF and
// change uid: without root they are skipped.
func droptraceBinary(t *testing.T) string {
	t.Helper()
	needRoot(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "droptrace-cmd-")
		if buildErr != nil {
			return
		}
		// 0755 so that the unprivileged tests' uid can run it.
		if buildErr = os.Chmod(buildDir, 0o755); buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "droptrace")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = &buildError{err, out}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string {
	return "build droptrace: " + e.err.Error() + "\n" + string(e.out)
}
func (e *buildError) Unwrap() error { return e.err }

// startSession starts the binary with args plus --output and --ready-file in a temporary
// directory, and waits until it is ready.
func startSession(t *testing.T, args ...string) (cmd *exec.Cmd, out string, stderr *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	out = filepath.Join(dir, "out.jsonl")
	ready := filepath.Join(dir, "ready")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd = exec.CommandContext(ctx, droptraceBinary(t), append(args, "--output", out, "--ready-file", ready)...)
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, func() bool { _, err := os.Stat(ready); return err == nil }, "ready file", stderr)
	return cmd, out, stderr
}

// waitFor polls cond until it holds; the deadline only ends a hung test.
func waitFor(t *testing.T, cond func() bool, what string, stderr *bytes.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 60s; stderr:\n%s", what, stderr)
		}
	}
}

func countType(t *testing.T, path, typ string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), `"type":"`+typ+`"`)
}

// A terminal session whose terminal goes away (an ssh session dropping: SIGHUP) ends as on
// Ctrl-C: summary written, exit 0.
func TestPrivSIGHUPEndsSessionCleanly(t *testing.T) {
	cmd, out, stderr := startSession(t, "--duration", "30s", "--live", "off")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("droptrace after SIGHUP: %v, want exit 0; stderr:\n%s", err, stderr)
	}
	if n := countType(t, out, "summary"); n != 1 {
		t.Errorf("%d summary records after SIGHUP, want 1; stderr:\n%s", n, stderr)
	}
}

// A daemon outlives the terminal it was started from: SIGHUP leaves it tracing, and SIGTERM
// still ends it cleanly.
func TestPrivDaemonIgnoresSIGHUP(t *testing.T) {
	cmd, out, stderr := startSession(t, "--daemon", "--interval", "100ms")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Still writing intervals after the SIGHUP: it was not taken as the end.
	seen := countType(t, out, "interval")
	waitFor(t, func() bool { return countType(t, out, "interval") >= seen+2 }, "interval after SIGHUP", stderr)
	if n := countType(t, out, "summary"); n != 0 {
		t.Fatalf("daemon wrote a summary after SIGHUP; stderr:\n%s", stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon after SIGTERM: %v, want exit 0; stderr:\n%s", err, stderr)
	}
	if n := countType(t, out, "summary"); n != 1 {
		t.Errorf("%d summary records after SIGTERM, want 1", n)
	}
}
