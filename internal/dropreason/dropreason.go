// SPDX-License-Identifier: Apache-2.0

// Package dropreason names the reasons the kernel passes to kfree_skb_reason().
//
// Names come from the running kernel's BTF, never from a table compiled in: enum
// skb_drop_reason has been renumbered several times since it appeared in 5.17, so the same
// number means different reasons on different kernels. Codes are 32 bits: since 6.4 the high 16
// bits carry a subsystem (enum skb_drop_reason_subsys, include/net/dropreason.h) whose own
// reasons are defined in that subsystem's module (mac80211, openvswitch).
package dropreason

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// ErrNoEnum means the kernel has no enum skb_drop_reason (before 5.17): kfree_skb carries no
// reason at all.
var ErrNoEnum = errors.New("kernel BTF has no enum skb_drop_reason (kernels before 5.17 pass no drop reason)")

const (
	subsysShift = 16
	corePrefix  = "SKB_DROP_REASON_"
	subsysEnum  = "skb_drop_reason_subsys"
)

// Table maps codes to names for one kernel.
type Table struct {
	names  map[uint32]string
	codes  map[string]uint32
	subsys map[uint32]string // subsystem id -> "OPENVSWITCH"
	max    uint32            // SKB_DROP_REASON_MAX: not a reason
	hasMax bool
}

// FromSpec reads the reasons from a vmlinux BTF spec and, for subsystem reasons, from module
// specs (split BTF loaded on top of vmlinux).
func FromSpec(vmlinux *btf.Spec, modules ...*btf.Spec) (*Table, error) {
	var e *btf.Enum
	if err := vmlinux.TypeByName("skb_drop_reason", &e); err != nil {
		if errors.Is(err, btf.ErrNotFound) {
			return nil, ErrNoEnum
		}
		return nil, fmt.Errorf("look up enum skb_drop_reason: %w", err)
	}
	t := &Table{names: map[uint32]string{}, codes: map[string]uint32{}, subsys: map[uint32]string{}}
	for _, v := range e.Values {
		code := uint32(v.Value)
		switch v.Name {
		case "SKB_DROP_REASON_MAX":
			t.max, t.hasMax = code, true
			continue
		case "SKB_DROP_REASON_SUBSYS_MASK":
			continue
		}
		// SKB_DROP_REASON_SKB_CSUM is "SKB_CSUM", as the tracepoint prints it; only the two
		// values outside the SKB_DROP_REASON_ namespace lose a bare SKB_ (SKB_CONSUMED).
		name, ok := strings.CutPrefix(v.Name, corePrefix)
		if !ok {
			name = strings.TrimPrefix(v.Name, "SKB_")
		}
		t.add(code, name)
	}
	var sub *btf.Enum
	if err := vmlinux.TypeByName(subsysEnum, &sub); err == nil {
		for _, v := range sub.Values {
			name := strings.TrimPrefix(v.Name, "SKB_DROP_REASON_SUBSYS_")
			if name == "NUM" || v.Value == 0 {
				continue
			}
			t.subsys[uint32(v.Value)] = name
		}
	}
	for _, m := range modules {
		for e := range moduleEnums(m) {
			for _, v := range e.Values {
				code := uint32(v.Value)
				sub, ok := t.subsys[code>>subsysShift]
				// Only values inside a registered subsystem; the enums also hold core values
				// such as mac80211's RX_CONTINUE = 1.
				if !ok || code&0xffff == 0 {
					continue
				}
				t.add(code, sub+":"+v.Name)
			}
		}
	}
	return t, nil
}

// moduleEnums yields a module's enums named *_drop_reason (mac80211_drop_reason,
// ovs_drop_reason).
func moduleEnums(s *btf.Spec) iter.Seq[*btf.Enum] {
	return func(yield func(*btf.Enum) bool) {
		for typ := range s.All() {
			e, ok := typ.(*btf.Enum)
			if !ok || !strings.HasSuffix(e.Name, "_drop_reason") || e.Name == "skb_drop_reason" {
				continue
			}
			if !yield(e) {
				return
			}
		}
	}
}

func (t *Table) add(code uint32, name string) {
	if _, dup := t.names[code]; dup {
		return // the first name of an aliased value wins
	}
	t.names[code] = name
	if _, dup := t.codes[name]; !dup {
		t.codes[name] = code
	}
}

// Load reads the running kernel's BTF, and the BTF of loaded modules that define subsystem
// reasons. Modules are looked up by the subsystem's first word (MAC80211_UNUSABLE: mac80211),
// so only the few that matter are read, not every module on the host.
func Load() (*Table, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("load kernel BTF (/sys/kernel/btf/vmlinux; needs CONFIG_DEBUG_INFO_BTF): %w", err)
	}
	t, err := FromSpec(spec)
	if err != nil {
		return nil, err
	}
	var mods []*btf.Spec
	seen := map[string]bool{}
	for _, sub := range t.subsys {
		mod := strings.ToLower(strings.SplitN(sub, "_", 2)[0])
		if seen[mod] {
			continue
		}
		seen[mod] = true
		if _, err := os.Stat("/sys/kernel/btf/" + mod); err != nil {
			continue // not loaded: its reasons cannot occur
		}
		if m, err := btf.LoadKernelModuleSpec(mod); err == nil {
			mods = append(mods, m)
		}
	}
	if len(mods) == 0 {
		return t, nil
	}
	return FromSpec(spec, mods...)
}

// Name returns the reason's name without the SKB_DROP_REASON_ prefix. A subsystem reason is
// "SUBSYSTEM:NAME" (e.g. "OPENVSWITCH:OVS_DROP_LAST_ACTION"), or "SUBSYSTEM:<n>" when the
// module defining it is not loaded; a code this kernel does not define is "UNKNOWN_<code>".
func (t *Table) Name(code uint32) string {
	if n, ok := t.names[code]; ok {
		return n
	}
	if code>>subsysShift != 0 {
		if sub, ok := t.subsys[code>>subsysShift]; ok {
			return fmt.Sprintf("%s:%d", sub, code&0xffff)
		}
	}
	return fmt.Sprintf("UNKNOWN_%d", code)
}

// Code returns the code of a name as Name spells it.
func (t *Table) Code(name string) (uint32, bool) {
	c, ok := t.codes[name]
	return c, ok
}

// Len is how many names the table holds.
func (t *Table) Len() int { return len(t.names) }
