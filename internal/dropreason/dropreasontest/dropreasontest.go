// SPDX-License-Identifier: Apache-2.0

// Package dropreasontest builds the drop reason tables of real kernels from the enum fixtures
// in internal/dropreason/testdata/enum, for tests of the packages that name drops.
package dropreasontest

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/droptrace/droptrace/internal/dropreason"
)

// Table is the reason table of kernel (a file of testdata/enum: "NAME VALUE" lines, # comments),
// read from BTF the way dropreason.Load reads the running kernel's.
func Table(t testing.TB, kernel string) *dropreason.Table {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(self), "..", "testdata", "enum", kernel)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := &btf.Enum{Name: "skb_drop_reason", Size: 4}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 2 {
			t.Fatalf("%s:%d: want NAME VALUE", path, n)
		}
		v, err := strconv.ParseInt(fs[1], 0, 64)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		e.Values = append(e.Values, btf.EnumValue{Name: fs[0], Value: uint64(v)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	b, err := btf.NewBuilder([]btf.Type{e}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tab, err := dropreason.FromSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}
