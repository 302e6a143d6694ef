// SPDX-License-Identifier: Apache-2.0

// Package locreasontest reads the kernels' symbol fixtures (internal/locreason/testdata) and
// their locations, for tests of the packages that name drops by location.
package locreasontest

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/kallsyms"
)

// Symbols is the kallsyms fixture at path (internal/locreason/testdata/<kernel>/kallsyms).
func Symbols(t testing.TB, path string) *kallsyms.Symbols {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := kallsyms.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return syms
}

// Addr turns "function+0xoff" into an address of syms.
func Addr(t testing.TB, syms *kallsyms.Symbols, loc string) uint64 {
	t.Helper()
	fn, off, ok := strings.Cut(loc, "+0x")
	if !ok {
		t.Fatalf("location %q is not function+0xoffset", loc)
	}
	o, err := strconv.ParseUint(off, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	start, end, ok := syms.Func(fn)
	if !ok {
		t.Fatalf("no symbol %s in the fixture", fn)
	}
	if start+o >= end {
		t.Fatalf("%s: offset past the function's end", loc)
	}
	return start + o
}
