// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/droptrace/droptrace/internal/tracer"
)

// version keeps its first line (scripts read the JSON schema from it) and names the commit, the
// toolchain and the embedded BPF objects.
func TestVersionNamesTheBuild(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("version: exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{
		"droptrace dev (JSON schema 1)",
		"commit:      ",
		"go:          " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		"bpf objects: sha256:" + tracer.ObjectsSHA256(),
	}
	if len(lines) != len(want) {
		t.Fatalf("version printed %q, want %d lines", out.String(), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	if c := strings.TrimPrefix(lines[1], "commit:      "); c == "" {
		t.Error("no commit")
	}
}

// The man page is generated from the flag set: every flag is in it, with its argument, and no
// text line can be taken for a roff request.
func TestManpageListsEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{manpageCommand}, &out, &errb); code != 0 {
		t.Fatalf("manpage: exit %d: %s", code, errb.String())
	}
	page := out.String()
	var f flags
	n := 0
	newFlagSet(&f, io.Discard).VisitAll(func(fl *pflag.Flag) {
		n++
		name, _ := pflag.UnquoteUsage(fl)
		head := `\fB\-\-` + roff(fl.Name) + `\fR`
		if name != "" {
			head += ` \fI` + roff(name) + `\fR`
		}
		if !strings.Contains(page, ".TP\n"+head+"\n") {
			t.Errorf("the man page lacks %s", head)
		}
	})
	if n < 20 {
		t.Errorf("only %d flags", n)
	}
	for _, sec := range []string{".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH EXAMPLES", ".SH EXIT STATUS", `sudo droptrace \-\-duration 30s`} {
		if !strings.Contains(page, sec) {
			t.Errorf("the man page lacks %q", sec)
		}
	}
	requests := []string{".TH ", ".SH ", ".TP", ".PP", ".nf", ".fi", ".B ", ".BR "}
	for _, l := range strings.Split(page, "\n") {
		if !strings.HasPrefix(l, ".") && !strings.HasPrefix(l, "'") {
			continue
		}
		known := false
		for _, r := range requests {
			known = known || strings.HasPrefix(l, r)
		}
		if !known {
			t.Errorf("line %q would be read as a roff request", l)
		}
	}
	if code := run([]string{manpageCommand, "extra"}, &out, &errb); code != 2 {
		t.Errorf("manpage with an argument: exit %d, want 2", code)
	}
}

func TestRoffEscapes(t *testing.T) {
	for in, want := range map[string]string{
		`a\b`:       `a\eb`,
		"--flag":    `\-\-flag`,
		".period":   `\&.period`,
		"'quote":    `\&'quote`,
		"mid.dle's": "mid.dle's",
	} {
		if got := roff(in); got != want {
			t.Errorf("roff(%q) = %q, want %q", in, got, want)
		}
	}
}
