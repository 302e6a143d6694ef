// SPDX-License-Identifier: Apache-2.0

package vmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/6.1 and 5.10 are what real runs of Debian's 6.1 and 5.10 cloud kernels under qemu
// left, trimmed: without the initramfs, the raw serial bundle, kallsyms, droptrace's stderr,
// the kernel's boot messages and the sessions the tests here do not read.
const (
	fixture    = "testdata/6.1"
	fixture510 = "testdata/5.10"
)

func TestRealRunPasses(t *testing.T) {
	r := Load(fixture)
	if !r.Passed() {
		t.Fatalf("problems: %q", r.Problems)
	}
	if r.Name != "6.1" || r.Uname != "6.1.0-57-cloud-amd64" || r.NCPU != 3 || r.Marker != "PASS" {
		t.Errorf("run %q, uname %q, %d CPUs, marker %q", r.Name, r.Uname, r.NCPU, r.Marker)
	}
	if r.Columns != 13 {
		t.Errorf("6.1's softnet_stat has 13 columns, read %d", r.Columns)
	}
	// 6.1's own numbering: CPU_BACKLOG is 46 there (61 on 6.12, 71 on 6.18).
	if r.Reasons["CPU_BACKLOG"] != 46 || r.Reasons["NO_SOCKET"] != 2 || len(r.Reasons) != 66 {
		t.Errorf("kfree_skb table: CPU_BACKLOG %d, NO_SOCKET %d, %d reasons", r.Reasons["CPU_BACKLOG"], r.Reasons["NO_SOCKET"], len(r.Reasons))
	}
	s := r.Sessions[ScenarioSession]
	if s == nil || s.Codes["CPU_BACKLOG"] != 46 || s.Start.SoftnetColumns != 13 {
		t.Fatalf("scenario session %+v", s)
	}
	if got := len(r.Tests["e2e"]); got != 17 {
		t.Errorf("%d e2e tests parsed", got)
	}

	var out bytes.Buffer
	Write(&out, []*Run{r})
	for _, want := range []string{
		"== 6.1: PASS  kernel 6.1.0-57-cloud-amd64 (Debian linux-image-6.1.0-57-cloud-amd64 6.1.192-3), qemu/tcg, 3 CPUs",
		"13 columns in /proc/net/softnet_stat",
		"CPU_BACKLOG=46 (18928 drops)",
		"gives 3 decoded codes the same, 0 others",
		"backlog_drops match 18928/18928",
		// The real NIC: the verdict on CPU 0 and its squeezes, in detail and in the table.
		"nic      irq_concentration cpu0, time_squeeze[cpu0] match 25/25, predicted 0 budget + 25 time (25 unproven, 0 uncertain), 1115 runs",
		"  irq_concentration cpu0, time_squeeze[cpu0] match 25/25\n",
		"TestPrivCountersOnly (counters-only): 10 unavailable",
		"\nvmtest: 1 passed, 0 failed\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// copyFixture copies the real 6.1 run into a directory a test may damage.
func copyFixture(t *testing.T) string { return copyDir(t, fixture) }

// copyDir copies a real run into a directory a test may damage.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s lacks %q", path, old)
	}
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte(old), []byte(new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Each way a run can go wrong fails it, with the reason.
func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"panic: qemu exits 0, no marker", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "console.log"), "VMTEST-RESULT: PASS", "Kernel panic - not syncing: Attempted to kill init!")
		}, "printed no \"VMTEST-RESULT:\" marker"},
		{"guest says FAIL", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "console.log"), "VMTEST-RESULT: PASS", "VMTEST-RESULT: FAIL insmod veth.ko")
		}, "the guest says FAIL insmod veth.ko"},
		{"timeout", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "meta"), "timed_out=0", "timed_out=1")
		}, "killed after the time limit"},
		{"no report", func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "report")); err != nil {
				t.Fatal(err)
			}
		}, "no report from the run"},
		{"test binary failed", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "report", "e2e.rc"), "0", "1")
		}, "e2e.test exited 1"},
		{"scenario skipped", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "report", "netlab.log"), "--- PASS: TestPrivScenarioReproduces", "--- SKIP: TestPrivScenarioReproduces")
		}, "TestPrivScenarioReproduces skipped"},
		{"one CPU", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "report", "nproc"), "3", "1")
		}, "1 CPUs: the RPS scenario needs two"},
		{"the real-NIC scenario skipped in a guest", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "report", "e2e.log"), "--- PASS: "+NICSession, "--- SKIP: "+NICSession)
		}, NICSession + " did not pass"},
		{"softnet layout misread", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "report", "sessions", ScenarioSession+".jsonl"), `"softnet_columns":13`, `"softnet_columns":15`)
		}, "droptrace read 15 softnet_stat columns, the file has 13"},
		{"classic tracepoints asked for, tp_btf attached", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "report", "sessions", ScenarioSession+".jsonl"), `"skb:kfree_skb":"tracepoint"`, `"skb:kfree_skb":"tp_btf"`)
		}, `skb:kfree_skb attached as "tp_btf", the run asked for "tracepoint"`},
		{"reason code misdecoded", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "report", "sessions", ScenarioSession+".jsonl"), `"reason_code":46`, `"reason_code":61`)
		}, "droptrace decoded code 61 as CPU_BACKLOG, the kernel's kfree_skb format says CPU_BACKLOG is 46"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyFixture(t)
			tc.damage(t, dir)
			r := Load(dir)
			if r.Passed() || !strings.Contains(strings.Join(r.Problems, "\n"), tc.want) {
				t.Fatalf("problems %q, want one with %q", r.Problems, tc.want)
			}
			var out bytes.Buffer
			Write(&out, []*Run{r})
			if !strings.HasSuffix(out.String(), "vmtest: 0 passed, 1 failed\n") || !strings.Contains(out.String(), "problem  ") {
				t.Errorf("report:\n%s", out.String())
			}
		})
	}
}

func TestKernelReasons(t *testing.T) {
	format := "name: kfree_skb\nprint fmt: \"reason: %s\", __print_symbolic(REC->reason, { 2, \"NOT_SPECIFIED\" }, { 3, \"NO_SOCKET\" }, {71,\"CPU_BACKLOG\"})\n"
	got := kernelReasons(format)
	if len(got) != 3 || got["NOT_SPECIFIED"] != 2 || got["NO_SOCKET"] != 3 || got["CPU_BACKLOG"] != 71 {
		t.Errorf("%v", got)
	}
	if got := kernelReasons("no format"); got != nil {
		t.Errorf("%v from no format", got)
	}
}

// A kernel without drop reasons: the table says the names came from locations, and lists them
// without codes (which are all 0 there).
func TestReportSaysReasonsCameFromLocations(t *testing.T) {
	dir := copyFixture(t)
	edit(t, filepath.Join(dir, "report", "sessions", ScenarioSession+".jsonl"), `"drop_reasons":65,`, `"drop_reasons":0,`)
	edit(t, filepath.Join(dir, "report", "sessions", ScenarioSession+".jsonl"), `"reason_source":"kernel"`, `"reason_source":"location"`)
	r := Load(dir)
	var out bytes.Buffer
	Write(&out, []*Run{r})
	for _, want := range []string{
		"droptrace named drops from their location (reason_source location)",
		"CPU_BACKLOG (18928 drops)",
		"reason_source",
		" location  ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "CPU_BACKLOG=") {
		t.Errorf("report gives location-named reasons a code:\n%s", out.String())
	}
}

// 5.10's run also passed the hidden-loss scenario through the classic tracepoints in the same
// boot (option also-tracepoint): the table says both ways it attached, and the run fails when
// that pass fails or did not attach them.
func TestSecondPassThroughTracepoints(t *testing.T) {
	r := Load(fixture510)
	if !r.Passed() {
		t.Fatalf("problems: %q", r.Problems)
	}
	var out bytes.Buffer
	Write(&out, []*Run{r})
	for _, want := range []string{
		" tp_btf+tracepoint ",
		"also     e2e.test again with --tracepoint, exit 0: TestPrivHiddenLossReconciles PASS",
		"reason_source",
		" location ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"the pass failed", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "report", "e2e-tracepoint.rc"), "0", "1")
		}, "the --tracepoint pass: e2e.test exited 1"},
		{"tp_btf attached", func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, "report", "sessions-tracepoint", ScenarioSession+".jsonl"), `"skb:kfree_skb":"tracepoint"`, `"skb:kfree_skb":"tp_btf"`)
		}, `the --tracepoint pass: skb:kfree_skb attached as "tp_btf"`},
		{"no session kept", func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "report", "sessions-tracepoint")); err != nil {
				t.Fatal(err)
			}
		}, "the --tracepoint pass kept no session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, fixture510)
			tc.damage(t, dir)
			if r := Load(dir); r.Passed() || !strings.Contains(strings.Join(r.Problems, "\n"), tc.want) {
				t.Fatalf("problems %q, want one with %q", r.Problems, tc.want)
			}
		})
	}
}
