// SPDX-License-Identifier: Apache-2.0

// Package kallsyms turns kernel text addresses, such as the callers of kfree_skb_reason that
// drops report as their location, into "function+0xoffset [module]" using /proc/kallsyms.
//
// Only text symbols (types t and T) are kept: a drop location is a return address, which is
// always in kernel text. Weak symbols (w, W) are aliases the strong ones already cover.
package kallsyms

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// ErrHidden means every text address read as zero: kernel.kptr_restrict (or lockdown) hides
// them from this user.
var ErrHidden = errors.New("kallsyms: addresses are hidden (kptr_restrict); run as root")

// Symbol is one text symbol. Module is "" for the kernel image.
type Symbol struct {
	Name, Module string
	Addr         uint64
}

// Symbols are the text symbols of one kernel, sorted by address. Safe for concurrent use.
type Symbols struct {
	// A real kernel has over 100k text symbols: they are kept without pointers (names are
	// offsets into one string), 16 bytes each, which the garbage collector need not scan.
	syms    []entry
	names   string
	modules []string // interned; [0] is the kernel image

	mu   sync.Mutex
	memo map[uint64]string
}

type entry struct {
	addr uint64
	off  uint32 // of the name in Symbols.names
	n    uint16 // name length; the kernel caps names at 512 bytes
	mod  uint16 // index in Symbols.modules
}

// memoMax bounds the Format cache: drop sites number in the tens or hundreds, but an address
// from a buggy source must not grow it without end.
const memoMax = 4096

// maxLine is the longest line accepted: KSYM_NAME_LEN is 512, module names are shorter still.
const maxLine = 64 << 10

// Parse reads the /proc/kallsyms format: "ffffffff81000000 T _text", or
// "ffffffffc0a01000 t veth_xmit\t[veth]" for a module. Errors name the line.
//
// Several symbols can share an address (_stext and _text); the first one listed is kept,
// because the kernel lists aliases in the order of its own preference and names the first in
// its %pS output (the skb:kfree_skb tracepoint's location), so the names agree.
func Parse(r io.Reader) (*Symbols, error) {
	s := &Symbols{modules: []string{""}}
	mods := map[string]uint16{"": 0}
	var names strings.Builder
	br := bufio.NewReaderSize(r, maxLine)
	var line, zeros int
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("kallsyms line %d: longer than %d bytes", line+1, maxLine)
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("kallsyms line %d: read: %w", line+1, err)
		}
		if len(b) > 0 {
			line++
			f, perr := parseLine(b)
			if perr != nil {
				return nil, fmt.Errorf("kallsyms line %d: %w", line, perr)
			}
			switch {
			case f.typ != 't' && f.typ != 'T':
			case f.addr == 0:
				zeros++
			default:
				mod, ok := mods[string(f.module)]
				if !ok {
					if len(s.modules) > 1<<16-1 {
						return nil, fmt.Errorf("kallsyms line %d: more than %d modules", line, 1<<16-1)
					}
					mod = uint16(len(s.modules))
					m := string(f.module)
					mods[m] = mod
					s.modules = append(s.modules, m)
				}
				if len(f.name) > 1<<16-1 {
					return nil, fmt.Errorf("kallsyms line %d: name longer than %d bytes", line, 1<<16-1)
				}
				if names.Len()+len(f.name) > 1<<32-1 {
					return nil, fmt.Errorf("kallsyms line %d: more than 4 GiB of names", line)
				}
				// Doubling: append's gentler growth for large slices copies about five times
				// the final size.
				if len(s.syms) == cap(s.syms) {
					s.syms = slices.Grow(s.syms, max(1024, len(s.syms)))
				}
				if names.Cap()-names.Len() < len(f.name) {
					names.Grow(max(16<<10, names.Len(), len(f.name)))
				}
				s.syms = append(s.syms, entry{addr: f.addr, off: uint32(names.Len()), n: uint16(len(f.name)), mod: mod})
				names.Write(f.name)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if len(s.syms) == 0 {
		if zeros > 0 {
			return nil, ErrHidden
		}
		return nil, fmt.Errorf("kallsyms: no text symbols in %d lines", line)
	}
	s.names = strings.Clone(names.String()) // without the builder's spare capacity

	// The kernel image comes sorted; module symbols follow it in load order.
	// Ties keep the file's order: names are stored in it, so off breaks them.
	byAddr := func(a, b entry) int { return cmp.Or(cmp.Compare(a.addr, b.addr), cmp.Compare(a.off, b.off)) }
	if !slices.IsSortedFunc(s.syms, byAddr) {
		slices.SortFunc(s.syms, byAddr)
	}
	s.syms = slices.CompactFunc(s.syms, func(a, b entry) bool { return a.addr == b.addr })
	s.syms = slices.Clone(s.syms) // drop the spare capacity for good
	return s, nil
}

// fields of one line; name and module point into the reader's buffer.
type fields struct {
	addr         uint64
	typ          byte
	name, module []byte
}

// parseLine splits one line without allocating: 100k lines are read on every start.
func parseLine(b []byte) (fields, error) {
	var f fields
	var words [5][]byte
	n := 0
	for i := 0; i < len(b); {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		j := i
		for j < len(b) && !isSpace(b[j]) {
			j++
		}
		if j > i {
			if n == len(words) {
				return f, fmt.Errorf("want \"address type name [module]\", got %q", clip(b))
			}
			words[n] = b[i:j]
			n++
		}
		i = j
	}
	if n == 0 {
		return f, nil // a blank line: type 0 is not text, so nothing is kept
	}
	if n < 3 || n > 4 {
		return f, fmt.Errorf("want \"address type name [module]\", got %q", clip(b))
	}
	if len(words[0]) > 16 {
		return f, fmt.Errorf("address %q is longer than 64 bits", clip(words[0]))
	}
	addr, err := strconv.ParseUint(string(words[0]), 16, 64)
	if err != nil {
		return f, fmt.Errorf("address %q is not hexadecimal", clip(words[0]))
	}
	if len(words[1]) != 1 {
		return f, fmt.Errorf("symbol type %q is not one letter", clip(words[1]))
	}
	f.addr, f.typ = addr, words[1][0]
	f.name = words[2]
	if n == 4 {
		m := words[3]
		if len(m) < 3 || m[0] != '[' || m[len(m)-1] != ']' {
			return f, fmt.Errorf("module %q is not \"[name]\"", clip(m))
		}
		f.module = m[1 : len(m)-1]
	}
	return f, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func clip(b []byte) string {
	const limit = 80
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

// Load reads /proc/kallsyms of fsys.
func Load(fsys hostfs.FS) (*Symbols, error) {
	f, err := fsys.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("kallsyms: %w (drop locations need a kernel built with CONFIG_KALLSYMS=y)", err)
	}
	defer f.Close()
	return Parse(f)
}

// Len is the number of text symbols, one per address.
func (s *Symbols) Len() int { return len(s.syms) }

// Lookup returns the symbol at or nearest below addr.
func (s *Symbols) Lookup(addr uint64) (Symbol, bool) {
	i, found := slices.BinarySearchFunc(s.syms, addr, func(e entry, a uint64) int { return cmp.Compare(e.addr, a) })
	if !found {
		if i == 0 {
			return Symbol{}, false
		}
		i--
	}
	e := s.syms[i]
	return Symbol{Name: s.names[e.off : e.off+uint32(e.n)], Module: s.modules[e.mod], Addr: e.addr}, true
}

// Format renders addr as "name+0xoff", "name+0xoff [module]", or "0x<addr>" when no symbol
// is at or below it.
func (s *Symbols) Format(addr uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.memo[addr]; ok {
		return v
	}
	var b []byte
	if sym, ok := s.Lookup(addr); ok {
		b = make([]byte, 0, len(sym.Name)+len(sym.Module)+24)
		b = append(b, sym.Name...)
		b = append(b, "+0x"...)
		b = strconv.AppendUint(b, addr-sym.Addr, 16)
		if sym.Module != "" {
			b = append(b, " ["...)
			b = append(b, sym.Module...)
			b = append(b, ']')
		}
	} else {
		b = strconv.AppendUint(append(make([]byte, 0, 18), "0x"...), addr, 16)
	}
	out := string(b)
	if s.memo == nil {
		s.memo = map[uint64]string{}
	}
	if len(s.memo) < memoMax {
		s.memo[addr] = out
	}
	return out
}

// Func finds a function by name, or a compiler clone of it (name.isra.0, name.constprop.0),
// and returns its text [start, end): end is the next symbol's address. It scans every
// symbol: it is for the few functions looked up once at start.
func (s *Symbols) Func(name string) (start, end uint64, ok bool) {
	for i, e := range s.syms {
		n := s.names[e.off : e.off+uint32(e.n)]
		if n != name && !(strings.HasPrefix(n, name) && n[len(name)] == '.') {
			continue
		}
		if i+1 == len(s.syms) || s.modules[e.mod] != "" {
			return 0, 0, false // no end known; module text is not looked for
		}
		return e.addr, s.syms[i+1].addr, true
	}
	return 0, 0, false
}
