// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The bpf2go outputs are committed so that `go build` needs no clang. This regenerates them
// into a temporary directory with the exact //go:generate lines of gen.go and compares bytes:
// a C change without `make generate` fails here.
func TestGeneratedObjectsFresh(t *testing.T) {
	if _, err := exec.LookPath("clang"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("clang is not installed, so the committed BPF objects cannot be checked; .ci/run must install clang and llvm")
		}
		t.Skip("SKIPPED: clang not installed; cannot check that the committed BPF objects match bpf/*.c (apt-get install clang llvm)")
	}
	for _, pkg := range []struct{ dir, name string }{{".", "tracer"}, {"../netlab", "netlab"}} {
		t.Run(pkg.name, func(t *testing.T) { checkGenerated(t, pkg.dir, pkg.name) })
	}
}

func checkGenerated(t *testing.T, dir, pkgName string) {
	f, err := os.Open(filepath.Join(dir, "gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := t.TempDir()
	var ran int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "//go:generate ")
		if !ok {
			continue
		}
		args := strings.Fields(line)
		// go tool bpf2go <options> <ident> <source> -- <cflags>: put -output-dir among the options.
		args = append(args[:3], append([]string{"-output-dir", out}, args[3:]...)...)
		for i, a := range args {
			args[i] = strings.Trim(a, `"`)
		}
		// -cflags "…" was split by Fields; rejoin its words.
		args = rejoinCflags(args)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOPACKAGE="+pkgName, "GOFILE=gen.go")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
		}
		ran++
	}
	if ran == 0 {
		t.Fatal("no //go:generate lines in gen.go")
	}
	gen, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(gen) == 0 {
		t.Fatal("bpf2go produced nothing")
	}
	for _, g := range gen {
		name := filepath.Base(g)
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s/%s is generated but not committed: run make generate", dir, name)
			continue
		}
		if !bytes.Equal(have, want) {
			t.Errorf("%s/%s differs from what bpf/*.c generates: run make generate and commit", dir, name)
		}
	}
}

func rejoinCflags(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] != "-cflags" {
			out = append(out, args[i])
			continue
		}
		var words []string
		for i++; i < len(args) && !strings.HasPrefix(args[i], "-target") && !strings.HasPrefix(args[i], "-type"); i++ {
			words = append(words, args[i])
		}
		i--
		out = append(out, "-cflags", strings.Join(words, " "))
	}
	return out
}
