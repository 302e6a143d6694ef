// SPDX-License-Identifier: Apache-2.0

package kallsyms

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func load(t testing.TB, name string) (*Symbols, error) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Parse(f)
}

func TestFormat(t *testing.T) {
	s, err := load(t, "sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr uint64
		want string
	}{
		{0xffffffff81002000, "kfree_skb_reason+0x0"},
		{0xffffffff8100201a, "kfree_skb_reason+0x1a"},
		// some_data is data, not text: the address still belongs to helper_one.
		{0xffffffff81001008, "helper_one+0xf08"},
		{0xffffffffc0a01408, "veth_poll+0x8 [veth]"},
		{0xffffffff80000000, "0xffffffff80000000"},
		{0, "0x0"},
	}
	for _, tc := range tests {
		if got := s.Format(tc.addr); got != tc.want {
			t.Errorf("Format(%#x) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if s.Len() != 7 {
		t.Errorf("%d text symbols, want 7", s.Len())
	}
}

func TestHidden(t *testing.T) {
	if _, err := load(t, "hidden.txt"); !errors.Is(err, ErrHidden) {
		t.Errorf("err %v, want ErrHidden", err)
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ffffffff81000000 T\n", "line 1: want \"address type name [module]\""},
		{"ffffffff81000000 T a\nzz T b\n", "line 2: address \"zz\" is not hexadecimal"},
		{"ffffffff81000000 TT a\n", "line 1"},
	} {
		if _, err := Parse(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestRealKallsyms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: /proc/kallsyms addresses are hidden unless root")
	}
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, name := range []string{"sk_skb_reason_drop", "kfree_skb_reason"} {
		for _, sym := range s.syms {
			if sym.Name == name && sym.Module == "" {
				found = true
				if got := s.Format(sym.Addr); got != name+"+0x0" {
					t.Errorf("Format(%s) = %q", name, got)
				}
				break
			}
		}
	}
	if !found {
		t.Error("neither sk_skb_reason_drop nor kfree_skb_reason in /proc/kallsyms")
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/sample.txt")
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for i := 1; i < len(s.syms); i++ {
			if s.syms[i].Addr < s.syms[i-1].Addr {
				t.Fatal("not sorted")
			}
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(); err != nil {
			b.Fatal(err)
		}
	}
}
