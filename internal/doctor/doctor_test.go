// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/dropreason/dropreasontest"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/locreason"
	"github.com/droptrace/droptrace/internal/probe"
	"github.com/droptrace/droptrace/internal/textfmt/texttest"
)

func writeFile(t *testing.T, root, name, text string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tracefs is found at either place; missing at both, the fix is to mount it. (Mounted but
// unreadable needs another uid: TestPrivDoctorUnprivilegedSaysWhatIsWrong in cmd/droptrace.)
func TestCheckTracefs(t *testing.T) {
	for _, tc := range []struct {
		name, events  string // events: the directory created, "" for none
		level, detail string
		fix           string
	}{
		{"tracing", "sys/kernel/tracing/events", OK, "/sys/kernel/tracing", ""},
		{"debugfs", "sys/kernel/debug/tracing/events", OK, "/sys/kernel/debug/tracing", ""},
		{"none", "", Warn, "not mounted", "mount -t tracefs nodev /sys/kernel/tracing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.events != "" {
				if err := os.MkdirAll(filepath.Join(root, tc.events), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			r := checkTracefs(hostfs.New(root))
			if r.Level != tc.level || !strings.Contains(r.Detail, tc.detail) || r.Fix != tc.fix {
				t.Errorf("%+v, want level %s, detail with %q, fix %q", r, tc.level, tc.detail, tc.fix)
			}
		})
	}
}

func TestMountedTracefs(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "proc/self/mountinfo", `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
36 22 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime shared:15 - tracefs tracefs rw
37 22 0:7 / /sys/kernel/debug rw,nosuid,nodev,noexec,relatime shared:16 - debugfs debugfs rw
`)
	fsys := hostfs.New(root)
	if !mountedTracefs(fsys, "/sys/kernel/tracing") {
		t.Error("tracefs at /sys/kernel/tracing not found")
	}
	if mountedTracefs(fsys, "/sys/kernel/debug") || mountedTracefs(fsys, "/sys/kernel/debug/tracing") {
		t.Error("debugfs taken for tracefs")
	}
	if mountedTracefs(hostfs.New(t.TempDir()), "/sys/kernel/tracing") {
		t.Error("no mountinfo, yet tracefs is said to be mounted")
	}
}

// A detail may quote what a host file held or a path: it must not drive the terminal.
func TestPrintEscapes(t *testing.T) {
	r := Report{CanCounter: true, Results: []Result{
		{Name: "lockdown", Level: OK, Detail: "none" + texttest.Hostile},
		{Name: "softnet_stat", Level: Fail, Detail: "line 2: field \x9b\xff", Fix: "mount" + texttest.Hostile},
	}}
	var b bytes.Buffer
	r.Print(&b)
	if err := texttest.Printable(b.String()); err != nil {
		t.Errorf("Print: %v", err)
	}
	for _, want := range []string{`none\x1b]0;PWN\x07\x1b[2J`, `field \x9b\xff`, `fix: mount\x1b]0;PWN`, "verdict: tracing is NOT possible"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Print lacks %q:\n%s", want, b.String())
		}
	}
	if r.Results[0].Detail != "none"+texttest.Hostile {
		t.Error("Print changed the report")
	}
}

// On 5.15.100 (5.17's enum) doctor says which reasons are inferred from the location.
func TestReasonsLineNamesTheInferredReasons(t *testing.T) {
	tab := dropreasontest.Table(t, "5.15.100")
	level, detail := reasonsLine(probe.Host{Reasons: tab, Inferred: locreason.Inferred(tab)})
	if level != Warn || !strings.Contains(detail, "12 reasons decoded from BTF, without CPU_BACKLOG, SOCKET_RCVBUFF") ||
		!strings.Contains(detail, "kernel+location") {
		t.Errorf("5.15.100: %s %q", level, detail)
	}
	full := dropreasontest.Table(t, "6.1")
	if level, detail := reasonsLine(probe.Host{Reasons: full, Inferred: locreason.Inferred(full)}); level != OK || strings.Contains(detail, "location") {
		t.Errorf("6.1: %s %q", level, detail)
	}
}
