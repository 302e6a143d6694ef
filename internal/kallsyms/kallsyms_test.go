// SPDX-License-Identifier: Apache-2.0

package kallsyms

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/droptrace/droptrace/internal/hostfs"
)

func parseFile(t testing.TB, name string) (*Symbols, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(bytes.NewReader(b))
}

func TestFormat(t *testing.T) {
	s, err := parseFile(t, "sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr uint64
		want string
	}{
		{0xffffffff81002000, "kfree_skb_reason+0x0"}, // not its alias, listed after it
		{0xffffffff8100201a, "kfree_skb_reason+0x1a"},
		{0xffffffff81000000, "_stext+0x0"},             // _text shares it, listed second
		{0xffffffff81001008, "helper_one+0xef8"},       // some_data is not text
		{0xffffffff81002404, "kfree_skb_reason+0x404"}, // nor is the weak symbol
		{0xffffffff81001ff4, "__pfx_kfree_skb_reason+0x4"},
		{0xffffffff82000100, "_etext+0x100"},
		{0xffffffffc0a01408, "veth_poll+0x8 [veth]"},
		{0xffffffffc0a01000, "veth_xmit+0x0 [veth]"},
		{0xffffffffc0a03010, "veth_open+0x1010 [veth]"}, // veth_ops is data
		{0xffffffffc0025c48, "bpf_dispatcher_xdp+0x8 [bpf]"},
		{0xffffffffc0b00010, "udp_tunnel_xmit_skb+0x10 [udp_tunnel]"},
		{0xffffffff80000000, "0xffffffff80000000"}, // below all text
		{0x1000, "0x1000"},                         // a per-CPU offset, not text
		{0, "0x0"},
	} {
		for range 2 { // the second answer comes from the cache
			if got := s.Format(tc.addr); got != tc.want {
				t.Errorf("Format(%#x) = %q, want %q", tc.addr, got, tc.want)
			}
		}
	}
	if s.Len() != 13 {
		t.Errorf("Len() = %d text symbols, want 13", s.Len())
	}
}

func TestLookup(t *testing.T) {
	s, err := parseFile(t, "sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	sym, ok := s.Lookup(0xffffffffc0a0100c)
	if want := (Symbol{Name: "veth_xmit", Module: "veth", Addr: 0xffffffffc0a01000}); !ok || sym != want {
		t.Errorf("Lookup = %+v, %v; want %+v", sym, ok, want)
	}
	sym, ok = s.Lookup(0xffffffff81000110)
	if want := (Symbol{Name: "helper_one", Addr: 0xffffffff81000110}); !ok || sym != want {
		t.Errorf("Lookup = %+v, %v; want %+v", sym, ok, want)
	}
	if sym, ok := s.Lookup(0xffffffff80ffffff); ok {
		t.Errorf("Lookup below all text = %+v", sym)
	}
	// Module names are interned: one copy per module, not per symbol.
	a, _ := s.Lookup(0xffffffffc0a01000)
	b, _ := s.Lookup(0xffffffffc0a02000)
	if a.Module != "veth" || b.Module != "veth" || unsafe.StringData(a.Module) != unsafe.StringData(b.Module) {
		t.Errorf("module names %q and %q are separate copies", a.Module, b.Module)
	}
}

func TestHidden(t *testing.T) {
	_, err := parseFile(t, "hidden.txt")
	if !errors.Is(err, ErrHidden) {
		t.Fatalf("err %v, want ErrHidden", err)
	}
	if want := "kallsyms: addresses are hidden (kptr_restrict); run as root"; err.Error() != want {
		t.Errorf("err %q, want %q", err, want)
	}
}

func TestMalformed(t *testing.T) {
	for file, want := range map[string]string{
		"too-few-fields.txt":   `kallsyms line 3: want "address type name [module]", got "ffffffff81000200 T\n"`,
		"not-hex.txt":          `kallsyms line 2: address "ffffffffzz000100" is not hexadecimal`,
		"long-type.txt":        `kallsyms line 2: symbol type "Tt" is not one letter`,
		"module-brackets.txt":  `kallsyms line 2: module "veth" is not "[name]"`,
		"too-many-fields.txt":  `kallsyms line 2: want "address type name [module]"`,
		"address-too-long.txt": `kallsyms line 3: address "1ffffffff81000100" is longer than 64 bits`,
	} {
		_, err := parseFile(t, filepath.Join("bad", file))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", file, err, want)
		}
	}
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "kallsyms: no text symbols in 0 lines"},
		{"data only", "ffffffff81001000 D some_data\n", "kallsyms: no text symbols in 1 lines"},
		{"overlong line", "ffffffff81000000 T _text\nffffffff81000100 t " + strings.Repeat("x", 70000) + "\n",
			"kallsyms line 2: longer than 65536 bytes"},
	} {
		if _, err := Parse(strings.NewReader(tc.in)); err == nil || err.Error() != tc.want {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Tolerated: CRLF, blank lines, spaces for the tab, no final newline.
func TestLenientWhitespace(t *testing.T) {
	s, err := Parse(strings.NewReader("ffffffff81000000 T _text\r\n\nffffffffc0a01000  t  veth_xmit [veth]"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Format(0xffffffffc0a01004); got != "veth_xmit+0x4 [veth]" {
		t.Errorf("Format = %q", got)
	}
	if got := s.Format(0xffffffff81000001); got != "_text+0x1" {
		t.Errorf("Format = %q", got)
	}
}

// kernelSymbol finds the address of the first of names that /proc/kallsyms lists as kernel
// text, reading the file independently of Parse.
func kernelSymbol(t *testing.T, names ...string) (string, uint64) {
	t.Helper()
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) == 3 && (w[1] == "T" || w[1] == "t") {
			if addr, err := strconv.ParseUint(w[0], 16, 64); err == nil {
				found[w[2]] = addr
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if addr, ok := found[n]; ok {
			return n, addr
		}
	}
	t.Fatalf("none of %v in /proc/kallsyms", names)
	return "", 0
}

// Load reads the kallsyms of the FS it is given, and says what a kernel without them lacks.
func TestLoadUnderRoot(t *testing.T) {
	root := t.TempDir()
	if _, err := Load(hostfs.New(root)); err == nil || !strings.Contains(err.Error(), "CONFIG_KALLSYMS") {
		t.Errorf("Load of a tree without /proc/kallsyms: %v, want an error naming CONFIG_KALLSYMS", err)
	}
	b, err := os.ReadFile("testdata/sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc", "kallsyms"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(hostfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() == 0 || s.Len() != want.Len() {
		t.Errorf("Load under %s: %d symbols, want %d", root, s.Len(), want.Len())
	}
}

func TestRealKallsyms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: /proc/kallsyms shows addresses only to root; run the tests as root")
	}
	s, err := Load(hostfs.Host())
	if err != nil {
		t.Fatal(err)
	}
	// sk_skb_reason_drop (6.11+) is where kfree_skb_reason's work moved.
	name, addr := kernelSymbol(t, "sk_skb_reason_drop", "kfree_skb_reason")
	if got := s.Format(addr); got != name+"+0x0" {
		t.Errorf("Format(%#x) = %q, want %q", addr, got, name+"+0x0")
	}
	if got := s.Format(addr + 0x1a); got != name+"+0x1a" {
		t.Errorf("Format(%#x) = %q, want %q", addr+0x1a, got, name+"+0x1a")
	}
	if s.Len() < 10000 {
		t.Errorf("only %d text symbols", s.Len())
	}
	t.Logf("%d text symbols, %d modules, %d KiB of symbol data", s.Len(), len(s.modules)-1, s.size()>>10)
}

// size is the memory the symbols hold.
func (s *Symbols) size() int {
	n := cap(s.syms)*int(unsafe.Sizeof(entry{})) + len(s.names)
	for _, m := range s.modules {
		n += len(m) + int(unsafe.Sizeof(m))
	}
	return n
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"sample.txt", "hidden.txt", "bad/too-few-fields.txt", "bad/module-brackets.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("ffffffff81000000 T a\nffffffff81000000 t b\n0000000000000010 T c\t[m]\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Parse(bytes.NewReader(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "kallsyms") {
				t.Fatalf("error %q does not say where it comes from", err)
			}
			return
		}
		if s.Len() == 0 {
			t.Fatal("success without symbols")
		}
		for i, e := range s.syms {
			if i > 0 && e.addr <= s.syms[i-1].addr {
				t.Fatalf("symbols %d and %d out of order or duplicated", i-1, i)
			}
			sym, ok := s.Lookup(e.addr)
			if !ok || sym.Addr != e.addr || sym.Name == "" || strings.ContainsAny(sym.Name, " \t\r\n") {
				t.Fatalf("Lookup(%#x) = %+v, %v", e.addr, sym, ok)
			}
			want := sym.Name + "+0x0"
			if sym.Module != "" {
				want += " [" + sym.Module + "]"
			}
			if got := s.Format(e.addr); got != want {
				t.Fatalf("Format(%#x) = %q, want %q", e.addr, got, want)
			}
		}
		if _, ok := s.Lookup(s.syms[0].addr - 1); ok && s.syms[0].addr > 0 {
			t.Fatal("a symbol below the lowest")
		}
	})
}

func readKallsyms(b *testing.B) []byte {
	if os.Geteuid() != 0 {
		b.Skip("SKIPPED: /proc/kallsyms shows addresses only to root")
	}
	raw, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// Parse alone, from memory; BenchmarkLoad adds the kernel's cost of generating the file.
func BenchmarkParse(b *testing.B) {
	raw := readKallsyms(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var s *Symbols
	for b.Loop() {
		var err error
		if s, err = Parse(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.size()), "bytes-kept")
}

func BenchmarkLoad(b *testing.B) {
	readKallsyms(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(hostfs.Host()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	s, err := Parse(bytes.NewReader(readKallsyms(b)))
	if err != nil {
		b.Fatal(err)
	}
	lo, hi := s.syms[0].addr, s.syms[len(s.syms)-1].addr
	addrs := make([]uint64, 1024)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range addrs {
		addrs[i] = lo + r.Uint64N(hi-lo)
	}
	b.Run("Lookup", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Lookup(addrs[i&1023])
			i++
		}
	})
	// A drop site seen before: the cached string.
	b.Run("Format-cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Format(addrs[0])
		}
	})
}

func TestFuncFindsTheTextOfAFunctionOrItsClone(t *testing.T) {
	s, err := Parse(strings.NewReader("ffffffff81000000 T _text\n" +
		"ffffffff81000100 t udp_queue_rcv_one_skb.isra.0\n" +
		"ffffffff81000500 T __udp4_lib_rcv\n" +
		"ffffffff81000900 T udp_v4_early_demux\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		start, end uint64
	}{
		{"udp_queue_rcv_one_skb", 0xffffffff81000100, 0xffffffff81000500},
		{"__udp4_lib_rcv", 0xffffffff81000500, 0xffffffff81000900},
	} {
		start, end, ok := s.Func(c.name)
		if !ok || start != c.start || end != c.end {
			t.Errorf("%s: %#x-%#x %v, want %#x-%#x", c.name, start, end, ok, c.start, c.end)
		}
	}
	for _, name := range []string{"udp_queue_rcv", "udp_v4_early_demux", "missing"} {
		if _, _, ok := s.Func(name); ok {
			t.Errorf("%s found", name)
		}
	}
}
