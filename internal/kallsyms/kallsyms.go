// SPDX-License-Identifier: Apache-2.0

// Package kallsyms turns kernel text addresses (the callers of kfree_skb_reason) into
// "function+0xoffset [module]" from /proc/kallsyms.
package kallsyms

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"
)

// Symbol is one text symbol.
type Symbol struct {
	Addr   uint64
	Name   string
	Module string
}

// Symbols are text symbols sorted by address.
type Symbols struct {
	syms []Symbol
	mu   sync.Mutex
	memo map[uint64]string // drop sites are few: format each once
}

// ErrHidden means every address read as zero: kernel.kptr_restrict hides them from this user.
var ErrHidden = errors.New("kallsyms: addresses are hidden (kernel.kptr_restrict); run as root")

// Parse reads kallsyms lines "ffffffff81000000 T _text" or "... t veth_xmit\t[veth]", keeping
// text symbols only: drop locations are return addresses in kernel text.
func Parse(r io.Reader) (*Symbols, error) {
	s := &Symbols{memo: map[uint64]string{}}
	mods := map[string]string{}
	sc := bufio.NewScanner(r)
	line := 0
	nonzero := false
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		f := bytes.Fields(b)
		if len(f) < 3 || len(f[1]) != 1 {
			return nil, fmt.Errorf("kallsyms line %d: want \"address type name [module]\", got %q", line, clip(b))
		}
		addr, err := strconv.ParseUint(string(f[0]), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("kallsyms line %d: address %q is not hexadecimal", line, clip(f[0]))
		}
		if addr != 0 {
			nonzero = true
		}
		if t := f[1][0]; t != 't' && t != 'T' {
			continue
		}
		sym := Symbol{Addr: addr, Name: string(f[2])}
		if len(f) >= 4 {
			m := string(bytes.Trim(f[3], "[]"))
			if v, ok := mods[m]; ok {
				m = v
			} else {
				mods[m] = m
			}
			sym.Module = m
		}
		s.syms = append(s.syms, sym)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kallsyms: %w", err)
	}
	if line > 0 && !nonzero {
		return nil, ErrHidden
	}
	sort.SliceStable(s.syms, func(i, j int) bool { return s.syms[i].Addr < s.syms[j].Addr })
	return s, nil
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// Load reads /proc/kallsyms.
func Load() (*Symbols, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Lookup finds the symbol at or below addr.
func (s *Symbols) Lookup(addr uint64) (Symbol, bool) {
	i := sort.Search(len(s.syms), func(i int) bool { return s.syms[i].Addr > addr })
	if i == 0 || addr == 0 {
		return Symbol{}, false
	}
	return s.syms[i-1], true
}

// Format renders addr as "name+0xoff", "name+0xoff [module]", or the bare address.
func (s *Symbols) Format(addr uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.memo[addr]; ok {
		return v
	}
	var out string
	if sym, ok := s.Lookup(addr); ok {
		out = fmt.Sprintf("%s+0x%x", sym.Name, addr-sym.Addr)
		if sym.Module != "" {
			out += " [" + sym.Module + "]"
		}
	} else {
		out = fmt.Sprintf("0x%x", addr)
	}
	if len(s.memo) < 1<<16 {
		s.memo[addr] = out
	}
	return out
}

// Len is the number of text symbols.
func (s *Symbols) Len() int { return len(s.syms) }
