// SPDX-License-Identifier: Apache-2.0

// Package dropreason names the reasons the kernel passes to kfree_skb_reason().
//
// Names come from the running kernel's BTF, never from a table compiled in: enum
// skb_drop_reason has been renumbered several times since it appeared in 5.17 (NOT_SPECIFIED
// is 0 on 5.17, 1 on 5.18 to 6.1, 2 since 6.2), so the same number means different reasons on
// different kernels.
//
// Codes are 32 bits. Since 6.4 the high 16 bits carry a subsystem id (enum
// skb_drop_reason_subsys in include/net/dropreason.h); that subsystem's reasons are defined in
// its module (mac80211's enum mac80211_drop_reason, openvswitch's enum ovs_drop_reason), whose
// enumerator values already include the subsystem bits, and whose BTF is
// /sys/kernel/btf/<module> while the module is loaded.
//
// # Names
//
// A core reason is its enumerator without SKB_DROP_REASON_: "NOT_SPECIFIED", "CPU_BACKLOG".
// These are exactly the names the skb:kfree_skb tracepoint prints. SKB_NOT_DROPPED_YET,
// SKB_CONSUMED and SKB_DROP_REASON_MAX are not drop reasons and have no name here.
//
// A subsystem reason is "SUBSYSTEM:REASON", e.g. "OPENVSWITCH:LAST_ACTION" for
// OVS_DROP_LAST_ACTION: SUBSYSTEM is the enumerator of enum skb_drop_reason_subsys without
// SKB_DROP_REASON_SUBSYS_, and REASON is the module's enumerator without the prefix that all of
// that subsystem's reasons share (OVS_DROP_, RX_DROP_U_). The colon cannot occur in a C
// identifier, so it never collides with a core name, and `split(":")` in jq separates the
// subsystem (whose own name contains underscores, MAC80211_UNUSABLE) from the reason. With
// fewer than two reasons in a subsystem there is no telling prefix from name, and the
// enumerator is kept whole.
//
// A code of a known subsystem whose name the module's BTF does not give is
// "SUBSYSTEM_<low 16 bits>", e.g. "OPENVSWITCH_3". Any other code is "UNKNOWN_<code>", both in
// decimal.
package dropreason

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf/btf"
)

// ErrNoEnum means the kernel's BTF has no enum skb_drop_reason: kernels before 5.17 pass no
// reason to kfree_skb.
var ErrNoEnum = errors.New("kernel BTF has no enum skb_drop_reason (kernels before 5.17 pass no drop reason)")

const (
	subsysShift = 16
	lowMask     = 1<<subsysShift - 1

	corePrefix   = "SKB_DROP_REASON_"
	subsysPrefix = "SKB_DROP_REASON_SUBSYS_"
)

// Table maps the codes of one kernel to names and back. It is safe for concurrent use.
type Table struct {
	core   []string          // indexed by code; "" is not a reason
	codes  map[string]uint32 // core names
	ncore  int
	subsys map[uint32]string // subsystem id -> "OPENVSWITCH"

	// loadModule reads a module's BTF. Nil for tables built by FromSpec, which name only
	// what they were given.
	loadModule func(module string) (*btf.Spec, error)
	mu         sync.Mutex // serialises module loading
	ext        atomic.Pointer[subsysNames]
}

// subsysNames is an immutable snapshot, replaced whole under Table.mu, so that Name reads it
// without a lock.
type subsysNames struct {
	names   map[uint32]string
	codes   map[string]uint32
	tried   map[uint32]bool // subsystems whose module was looked for
	modules map[string]bool // modules read, or found absent
}

// FromSpec reads the reasons from a vmlinux BTF spec and, for subsystem reasons, from module
// specs (as btf.LoadKernelModuleSpec returns them). The error wraps ErrNoEnum when the kernel
// has no enum skb_drop_reason.
func FromSpec(vmlinux *btf.Spec, modules ...*btf.Spec) (*Table, error) {
	e, err := findEnum(vmlinux, "skb_drop_reason")
	if errors.Is(err, btf.ErrNotFound) {
		return nil, fmt.Errorf("read drop reasons: %w", ErrNoEnum)
	}
	if err != nil {
		return nil, fmt.Errorf("read enum skb_drop_reason from BTF: %w", err)
	}

	t := &Table{codes: map[string]uint32{}, subsys: map[uint32]string{}}
	var maxCode uint32
	hasMax := false
	for _, v := range e.Values {
		code, ok := code32(v.Value)
		// The enum also holds SKB_DROP_REASON_SUBSYS_MASK (6.4+): a mask, not a reason.
		if !ok || code > lowMask {
			continue
		}
		name, ok := strings.CutPrefix(v.Name, corePrefix)
		if !ok {
			continue // SKB_NOT_DROPPED_YET, SKB_CONSUMED: not drops
		}
		if name == "MAX" {
			maxCode, hasMax = code, true
			continue
		}
		if _, dup := t.codes[name]; dup || name == "" {
			continue
		}
		if int(code) >= len(t.core) {
			t.core = append(t.core, make([]string, int(code)+1-len(t.core))...)
		}
		if t.core[code] != "" {
			continue // an alias: the first name wins, so that Name and Code stay inverses
		}
		t.core[code] = name
		t.codes[name] = code
	}
	// MAX can share its value with nothing real, but a code equal to it is not a reason even
	// if some alias claimed it.
	if hasMax && int(maxCode) < len(t.core) && t.core[maxCode] != "" {
		delete(t.codes, t.core[maxCode])
		t.core[maxCode] = ""
	}
	t.ncore = len(t.codes)

	// Before 6.4 there are no subsystems: every code with high bits set is unknown.
	if sub, err := findEnum(vmlinux, "skb_drop_reason_subsys"); err == nil {
		for _, v := range sub.Values {
			id, ok := code32(v.Value)
			name, isSub := strings.CutPrefix(v.Name, subsysPrefix)
			if !ok || !isSub || id == 0 || id > lowMask || name == "NUM" || name == "" {
				continue // CORE is the core reasons above; NUM counts, it names nothing
			}
			t.subsys[id] = name
		}
	} else if !errors.Is(err, btf.ErrNotFound) {
		return nil, fmt.Errorf("read enum skb_drop_reason_subsys from BTF: %w", err)
	}

	ext := &subsysNames{names: map[uint32]string{}, codes: map[string]uint32{},
		tried: map[uint32]bool{}, modules: map[string]bool{}}
	for _, m := range modules {
		if err := t.addModule(ext, m); err != nil {
			return nil, err
		}
	}
	t.ext.Store(ext)
	return t, nil
}

// findEnum returns the enum with values of that name: BTF can also hold a forward declaration
// of it, and a kernel built without deduplication several copies.
func findEnum(spec *btf.Spec, name string) (*btf.Enum, error) {
	types, err := spec.AnyTypesByName(name)
	if err != nil {
		return nil, err
	}
	var best *btf.Enum
	for _, typ := range types {
		if e, ok := typ.(*btf.Enum); ok && (best == nil || len(e.Values) > len(best.Values)) {
			best = e
		}
	}
	if best == nil || len(best.Values) == 0 {
		return nil, fmt.Errorf("enum %s: %w", name, btf.ErrNotFound)
	}
	return best, nil
}

func code32(v uint64) (uint32, bool) {
	// A signed enum's values come sign-extended: SUBSYS_MASK can read as -65536.
	if v > math.MaxUint32 && int64(v) < math.MinInt32 {
		return 0, false
	}
	return uint32(v), true
}

// addModule adds the subsystem reasons a module's BTF defines to ext, which the caller owns.
func (t *Table) addModule(ext *subsysNames, spec *btf.Spec) error {
	type value struct {
		code uint32
		name string
	}
	bySubsys := map[uint32][]value{}
	for typ, err := range spec.All() {
		if err != nil {
			return fmt.Errorf("read module BTF: %w", err)
		}
		e, ok := typ.(*btf.Enum)
		// By convention the enums are <module>_drop_reason; mac80211 also has a
		// ___mac80211_drop_reason twin whose enumerators all start with ___ and are skipped.
		if !ok || !strings.Contains(e.Name, "drop_reason") || strings.HasPrefix(e.Name, "skb_drop_reason") {
			continue
		}
		top := map[uint32]uint32{} // subsystem -> highest code in this enum
		for _, v := range e.Values {
			if c, ok := code32(v.Value); ok && c > top[c>>subsysShift] {
				top[c>>subsysShift] = c
			}
		}
		for _, v := range e.Values {
			code, ok := code32(v.Value)
			if !ok {
				continue
			}
			id := code >> subsysShift
			// Subsystem 0 holds mac80211's RX_CONTINUE = SKB_CONSUMED and the like; names
			// with a leading underscore are markers (__OVS_DROP_REASON, the subsystem's base)
			// or internal twins; the enum's trailing *_MAX counts, it names nothing.
			if _, ok := t.subsys[id]; !ok || strings.HasPrefix(v.Name, "_") ||
				(strings.HasSuffix(v.Name, "_MAX") && code == top[id]) {
				continue
			}
			bySubsys[id] = append(bySubsys[id], value{code, v.Name})
		}
	}
	for id, vals := range bySubsys {
		var reasons []string
		for _, v := range vals {
			if v.code&lowMask != 0 {
				reasons = append(reasons, v.name)
			}
		}
		prefix := sharedPrefix(reasons)
		for _, v := range vals {
			if _, dup := ext.names[v.code]; dup {
				continue
			}
			short := v.name
			if rest, ok := strings.CutPrefix(v.name, prefix); ok && rest != "" {
				short = rest
			}
			name := t.subsys[id] + ":" + short
			if _, taken := ext.codes[name]; taken {
				name = t.subsys[id] + ":" + v.name
			}
			if _, taken := ext.codes[name]; taken {
				continue // two enums name different values alike: neither is trusted
			}
			ext.names[v.code] = name
			ext.codes[name] = v.code
		}
	}
	return nil
}

// sharedPrefix is the longest prefix ending in "_" that all names share, "" for fewer than
// two names: one name alone does not tell its prefix from its words.
func sharedPrefix(names []string) string {
	if len(names) < 2 {
		return ""
	}
	p := names[0]
	for _, n := range names[1:] {
		i := 0
		for i < len(p) && i < len(n) && p[i] == n[i] {
			i++
		}
		p = p[:i]
	}
	i := strings.LastIndexByte(p, '_')
	if i < 0 {
		return ""
	}
	return p[:i+1]
}

// Load reads the running kernel's BTF.
//
// Module BTF is read lazily, the first time a code (or name) of a subsystem is looked up: a
// subsystem's reasons can only be passed while its module is loaded, so when its first code
// arrives the module is there to be read, even if it was loaded after Load; and on the many
// hosts that never see a subsystem drop no module BTF is parsed at all. Modules are found by
// the subsystem's name: its first word, then the whole name, lower-cased (MAC80211_UNUSABLE:
// mac80211, OPENVSWITCH: openvswitch). A module that cannot be read is not retried, and its
// codes are named SUBSYSTEM_<n>.
func Load() (*Table, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("read kernel BTF (/sys/kernel/btf/vmlinux needs a kernel built with CONFIG_DEBUG_INFO_BTF=y): %w", err)
	}
	t, err := FromSpec(spec)
	if err != nil {
		return nil, err
	}
	t.loadModule = btf.LoadKernelModuleSpec
	return t, nil
}

// Name returns the name of a code; see the package documentation for the forms.
func (t *Table) Name(code uint32) string {
	if code < uint32(len(t.core)) && t.core[code] != "" {
		return t.core[code]
	}
	id := code >> subsysShift
	sub, ok := t.subsys[id]
	if !ok {
		return "UNKNOWN_" + strconv.FormatUint(uint64(code), 10)
	}
	ext := t.ext.Load()
	if !ext.tried[id] && t.loadModule != nil {
		ext = t.loadSubsys(id)
	}
	if n, ok := ext.names[code]; ok {
		return n
	}
	return sub + "_" + strconv.FormatUint(uint64(code&lowMask), 10)
}

// loadSubsys reads the BTF of the module defining subsystem id, once.
func (t *Table) loadSubsys(id uint32) *subsysNames {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.ext.Load()
	if old.tried[id] {
		return old
	}
	ext := &subsysNames{names: maps.Clone(old.names), codes: maps.Clone(old.codes),
		tried: maps.Clone(old.tried), modules: maps.Clone(old.modules)}
	ext.tried[id] = true
	for _, mod := range moduleCandidates(t.subsys[id]) {
		if ext.modules[mod] {
			continue
		}
		ext.modules[mod] = true
		spec, err := t.loadModule(mod)
		if err != nil {
			continue // not this module, or not loaded: the codes keep their numbers
		}
		if err := t.addModule(ext, spec); err != nil {
			continue
		}
	}
	t.ext.Store(ext)
	return ext
}

func moduleCandidates(subsys string) []string {
	whole := strings.ToLower(subsys)
	first, _, _ := strings.Cut(whole, "_")
	if first == whole {
		return []string{whole}
	}
	return []string{first, whole}
}

// Code returns the code of a name as Name spells it: a core reason such as "CPU_BACKLOG", or a
// subsystem reason such as "OPENVSWITCH:LAST_ACTION" (reading the module's BTF if need be).
// The fallback forms UNKNOWN_<n> and SUBSYSTEM_<n> are not names and are not found.
func (t *Table) Code(name string) (uint32, bool) {
	if c, ok := t.codes[name]; ok {
		return c, true
	}
	sub, _, ok := strings.Cut(name, ":")
	if !ok {
		return 0, false
	}
	ext := t.ext.Load()
	for id, s := range t.subsys {
		if s == sub && !ext.tried[id] && t.loadModule != nil {
			ext = t.loadSubsys(id)
		}
	}
	c, ok := ext.codes[name]
	return c, ok
}

// SocketLevel are the reasons of drops at a receiving socket, or for want of one: their
// destination names the socket (or the port nobody listens on). Drops of these reasons are
// counted by socket, and their owners looked up.
var SocketLevel = []string{"SOCKET_RCVBUFF", "NO_SOCKET", "TCP_LISTEN_OVERFLOW", "SOCKET_BACKLOG",
	"SOCKET_FILTER", "PROTO_MEM", "SOCKET_CLOSE"}

// IsSocketLevel says whether name is one of SocketLevel.
func IsSocketLevel(name string) bool { return slices.Contains(SocketLevel, name) }

// Codes are the codes of the names this kernel has, in the order given.
func (t *Table) Codes(names []string) []uint32 {
	var out []uint32
	for _, n := range names {
		if c, ok := t.Code(n); ok {
			out = append(out, c)
		}
	}
	return out
}

// Names are the names Code finds without reading a module: the core reasons, and those of the
// subsystems whose module BTF has been read so far; sorted.
func (t *Table) Names() []string {
	out := slices.Collect(maps.Keys(t.codes))
	out = append(out, slices.Collect(maps.Keys(t.ext.Load().codes))...)
	slices.Sort(out)
	return out
}

// Len is the number of reasons named: the core reasons, and those of the subsystems whose
// module BTF has been read so far.
func (t *Table) Len() int { return t.ncore + len(t.ext.Load().names) }
