// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// wantClangMajor is the clang the committed objects are built with: Debian bookworm's, which
// .ci/run installs and gen.go names (clang-14). Another major emits other bytes for the same C,
// so with it this test could only report a difference that says nothing about bpf/*.c.
const wantClangMajor = 14

// The bpf2go outputs are committed so that `go build` needs no clang. This regenerates them
// into a temporary directory with the exact //go:generate lines of gen.go and compares bytes:
// a C change without `make generate` fails here.
func TestGeneratedObjectsFresh(t *testing.T) {
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
		requireClang(t, dir, args)
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

// requireClang skips (fails on CI) when the compiler a //go:generate line names is missing,
// and fails, naming both versions, when it is not clang wantClangMajor.
func requireClang(t *testing.T, dir string, args []string) {
	t.Helper()
	cc := "clang"
	for i, a := range args {
		if a == "-cc" && i+1 < len(args) {
			cc = args[i+1]
		}
	}
	if _, err := exec.LookPath(cc); err != nil {
		msg := fmt.Sprintf("%s/gen.go compiles with %s, which is not installed, so the committed BPF objects cannot be checked (apt-get install clang-%d llvm-%d)",
			dir, cc, wantClangMajor, wantClangMajor)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; .ci/run must install them")
		}
		t.Skip("SKIPPED: " + msg)
	}
	out, err := exec.Command(cc, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", cc, err)
	}
	major, full, err := clangVersion(string(out))
	if err != nil {
		t.Fatalf("%s --version: %v", cc, err)
	}
	if major != wantClangMajor {
		t.Fatalf("%s/gen.go compiles with %s, which is clang %s; the committed BPF objects are built with clang %d (Debian bookworm's): install clang-%d, or move every pin (gen.go, wantClangMajor, .ci/run) to the new version and run make generate",
			dir, cc, full, wantClangMajor, wantClangMajor)
	}
}

var clangVersionRE = regexp.MustCompile(`clang version ((\d+)\.\d+\.\d+)`)

// clangVersion finds the version in clang --version output ("Debian clang version 14.0.6").
func clangVersion(out string) (major int, full string, err error) {
	m := clangVersionRE.FindStringSubmatch(out)
	if m == nil {
		return 0, "", fmt.Errorf("no clang version in %q", out)
	}
	major, err = strconv.Atoi(m[2])
	return major, m[1], err
}

func TestClangVersion(t *testing.T) {
	for _, tc := range []struct {
		out   string
		major int
		full  string
	}{
		{"Debian clang version 14.0.6\nTarget: x86_64-pc-linux-gnu\n", 14, "14.0.6"},
		{"Ubuntu clang version 18.1.3 (1ubuntu1)\n", 18, "18.1.3"},
		{"clang version 16.0.6 (Fedora 16.0.6-3.fc39)\n", 16, "16.0.6"},
	} {
		major, full, err := clangVersion(tc.out)
		if err != nil || major != tc.major || full != tc.full {
			t.Errorf("%q: %d %q %v, want %d %q", tc.out, major, full, err, tc.major, tc.full)
		}
	}
	if _, _, err := clangVersion("gcc (Debian 12.2.0-14) 12.2.0"); err == nil {
		t.Error("gcc's version parsed as clang's")
	}
}
