// SPDX-License-Identifier: Apache-2.0

// Package locreason names drops by where they happen, on kernels whose kfree_skb passes no
// reason (before 5.17, no enum skb_drop_reason in BTF). The location a drop reports is the
// return address into the function that called kfree_skb; the function comes from kallsyms.
//
// A function that frees for one cause only is named from Table. A function that frees for
// several causes at different call sites is named only at the call sites learned on this
// kernel (Learn, from a calibration that provokes a known cause and records where it fired);
// its other call sites, and every function the table does not know, keep the function's name
// as "kfree_skb@<function>". A drop is never named UNKNOWN_<code> here: the code is always 0.
//
// The names are those the kernel gives the same drops once it has them (NO_SOCKET and
// NETFILTER_DROP from 5.17, CPU_BACKLOG and SOCKET_RCVBUFF from 5.18), so checks and verdicts
// written for them work unchanged. On 5.17's enum, which the 5.15 stable series carries too,
// the kernel frees the drops of the later names as NOT_SPECIFIED: there a session names only
// those from their location (Inferred, Reason).
package locreason

import (
	"slices"
	"strings"
	"sync"

	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/kallsyms"
)

// Rule is what the table knows of one function that frees packets.
type Rule struct {
	// Reason is the name of every drop in the function, for a single-cause function; "" when
	// the function frees for several causes and only learned call sites are named.
	Reason string
	// Source cites the 5.10 kernel source the rule rests on.
	Source string
	// Cannot says what a name from this function cannot separate, for the checks' notes.
	Cannot string
	// Socket says that drops here are socket-level (a full socket, no socket): BPF counts
	// them by receiving socket (SocketFunctions).
	Socket bool
}

// Table maps the functions that call kfree_skb to what their drops are. Sources are Linux
// v5.10 (the Debian 11 kernel); the functions and their frees are unchanged up to 5.16 (5.15's
// checked in its source: testdata/5.15/locations).
var Table = map[string]Rule{
	"enqueue_to_backlog": {Reason: "CPU_BACKLOG",
		Source: "net/core/dev.c enqueue_to_backlog(): the backlog is over netdev_max_backlog (or the flow limit): `drop: sd->dropped++; ... atomic_long_inc(&skb->dev->rx_dropped); kfree_skb(skb);`, its only free",
		Cannot: "the flow limit's drops (softnet_stat's flow_limit_count) free at the same call site"},
	"__udp_queue_rcv_skb": {Socket: true, Reason: "SOCKET_RCVBUFF",
		Source: "net/ipv4/udp.c __udp_queue_rcv_skb(): `rc = __udp_enqueue_schedule_skb(sk, skb); if (rc < 0) { ... if (rc == -ENOMEM) UDP_INC_STATS(..., UDP_MIB_RCVBUFERRORS, ...); ... kfree_skb(skb);`, its only free",
		Cannot: udpMemCannot},
	"__udpv6_queue_rcv_skb": {Socket: true, Reason: "SOCKET_RCVBUFF",
		Source: "net/ipv6/udp.c __udpv6_queue_rcv_skb(): the IPv6 twin of __udp_queue_rcv_skb, `kfree_skb(skb)` after a failed __udp_enqueue_schedule_skb",
		Cannot: udpMemCannot},
	"udp_queue_rcv_one_skb": {Socket: true,
		Source: "net/ipv4/udp.c udp_queue_rcv_one_skb(): __udp_queue_rcv_skb, inlined here by the compiler, frees a datagram the full socket refused; the `drop:` label frees for a socket filter, a bad checksum or an xfrm policy",
		Cannot: udpMemCannot},
	"udpv6_queue_rcv_one_skb": {Socket: true,
		Source: "net/ipv6/udp.c udpv6_queue_rcv_one_skb(): the IPv6 twin of udp_queue_rcv_one_skb",
		Cannot: udpMemCannot},
	"__udp4_lib_rcv": {Socket: true,
		Source: "net/ipv4/udp.c __udp4_lib_rcv(): no socket: `__UDP_INC_STATS(net, UDP_MIB_NOPORTS, ...); icmp_send(skb, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0); kfree_skb(skb);`; short packets and bad checksums free at the `drop:` label",
		Cannot: "a datagram to a closed port with a bad checksum frees at the `drop:` label, not as NO_SOCKET, and NoPorts does not count it either"},
	"__udp6_lib_rcv": {Socket: true,
		Source: "net/ipv6/udp.c __udp6_lib_rcv(): no socket: `__UDP6_INC_STATS(net, UDP_MIB_NOPORTS, ...); icmpv6_send(skb, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH, 0); kfree_skb(skb);`; short packets and bad checksums free at `discard:`",
		Cannot: "a datagram to a closed port with a bad checksum frees at `discard:`, not as NO_SOCKET, and NoPorts does not count it either"},
	"nf_hook_slow": {Reason: "NETFILTER_DROP",
		Source: "net/netfilter/core.c nf_hook_slow(): `case NF_DROP: kfree_skb(skb);`, its only free"},
}

// Unseparated are reasons no 5.10 call site frees for alone, with where their drops go.
var Unseparated = map[string]string{
	"TCP_LISTEN_OVERFLOW": "no call site frees only for TCP_LISTEN_OVERFLOW: net/ipv4/tcp_ipv4.c tcp_v4_rcv() frees a handshake ACK that tcp_check_req() refused at a full accept queue at `discard_it:` (`if (!nsk) { reqsk_put(req); goto discard_and_relse; }`), the call site it shares with every other TCP receive error (tcp_v6_rcv() alike)",
}

// Calibrated are the reasons calibration (internal/session) learns call sites for.
var Calibrated = []string{"NO_SOCKET", "SOCKET_RCVBUFF"}

// Reasons are the names a location can give: the table's and calibration's, sorted.
func Reasons() []string {
	out := slices.Clone(Calibrated)
	for _, r := range Table {
		if r.Reason != "" {
			out = append(out, r.Reason)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Inferred are the reasons a location names that the kernel's enum skb_drop_reason lacks,
// sorted: on such a kernel the drops it frees as NOT_SPECIFIED are named from their location
// too. 5.17 introduced the enum with 12 reasons, and the 5.15 stable series backported it
// (5.15.100 has it): CPU_BACKLOG and SOCKET_RCVBUFF came in 5.18, so there enqueue_to_backlog
// and a full UDP socket free as NOT_SPECIFIED. Nil for a kernel with every reason, without
// the enum (t nil: every drop is named from its location), or whose NOT_SPECIFIED is not 0:
// BPF counts a socket-level drop by its location only for reason 0, and NOT_SPECIFIED is 0
// in 5.17's enum and its 5.15 backport, the kernels that lack CPU_BACKLOG.
func Inferred(t *dropreason.Table) []string {
	if t == nil {
		return nil
	}
	if c, ok := t.Code("NOT_SPECIFIED"); !ok || c != 0 {
		return nil
	}
	var out []string
	for _, r := range Reasons() {
		if _, ok := t.Code(r); !ok {
			out = append(out, r)
		}
	}
	return out
}

// udpMemCannot is what a UDP enqueue failure's location cannot tell apart.
const udpMemCannot = "a datagram refused for UDP's protocol memory (udp_mem, -ENOBUFS) frees at the same call site as one refused for a full receive buffer (-ENOMEM), but only the latter counts in RcvbufErrors: more traced than counted is bounded by InErrors"

// Namer names drop locations of one kernel. It is safe for concurrent use.
type Namer struct {
	syms *kallsyms.Symbols

	mu      sync.Mutex
	learned map[uint64]string // call site -> reason
	memo    map[uint64]string
}

// unnamedPrefix starts the name of a location that gives no reason.
const unnamedPrefix = "kfree_skb@"

// memoMax bounds the cache, as kallsyms.Format's: call sites are few, bad addresses are not.
const memoMax = 4096

// New returns a Namer over the kernel's text symbols.
func New(syms *kallsyms.Symbols) *Namer {
	return &Namer{syms: syms, learned: map[uint64]string{}, memo: map[uint64]string{}}
}

// Function is the function a location is in, without the suffix of a compiler clone
// (udp_queue_rcv_one_skb.isra.0 is udp_queue_rcv_one_skb); "" when no symbol is below it.
func (n *Namer) Function(loc uint64) string {
	sym, ok := n.syms.Lookup(loc)
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(sym.Name, ".")
	return name
}

// Learn says that the call site at loc frees for reason: a calibration provoked it.
func (n *Namer) Learn(loc uint64, reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.learned[loc] = reason
	clear(n.memo)
}

// Learned are the call sites learned so far, by reason.
func (n *Namer) Learned() map[string][]uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string][]uint64{}
	for loc, r := range n.learned {
		out[r] = append(out[r], loc)
	}
	return out
}

// Name names the drop at loc: a learned call site's reason, a single-cause function's reason,
// or "kfree_skb@<function>" ("kfree_skb@0x<addr>" outside any symbol).
func (n *Namer) Name(loc uint64) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if v, ok := n.memo[loc]; ok {
		return v
	}
	name := n.name(loc)
	if len(n.memo) < memoMax {
		n.memo[loc] = name
	}
	return name
}

func (n *Namer) name(loc uint64) string {
	if r, ok := n.learned[loc]; ok {
		return r
	}
	fn := n.Function(loc)
	if fn == "" {
		return unnamedPrefix + n.syms.Format(loc)
	}
	if r := Table[fn]; r.Reason != "" {
		return r.Reason
	}
	return unnamedPrefix + fn
}

// Reason is the name the location gives a drop, when it gives one: a learned call site's
// reason or a single-cause function's; false where Name falls back to the function.
func (n *Namer) Reason(loc uint64) (string, bool) {
	name := n.Name(loc)
	return name, !strings.HasPrefix(name, unnamedPrefix)
}

// Named says whether reason can be named on this kernel: a learned call site, or a
// single-cause function of the table.
func (n *Namer) Named(reason string) bool {
	n.mu.Lock()
	for _, r := range n.learned {
		if r == reason {
			n.mu.Unlock()
			return true
		}
	}
	n.mu.Unlock()
	for _, r := range Table {
		if r.Reason == reason {
			return true
		}
	}
	return false
}

// Cannot is what naming reason by location cannot separate on this kernel: the Cannot of
// every table function whose drops may carry that name.
func (n *Namer) Cannot(reason string) []string {
	fns := map[string]bool{}
	for fn, r := range Table {
		if r.Reason == reason {
			fns[fn] = true
		}
	}
	for r, locs := range n.Learned() {
		if r != reason {
			continue
		}
		for _, loc := range locs {
			fns[n.Function(loc)] = true
		}
	}
	seen := map[string]bool{}
	var out []string
	for fn := range fns {
		if c := Table[fn].Cannot; c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// Located is, for each reason a check rests on, what naming it by location cannot separate on
// this kernel, or why no location names it.
func (n *Namer) Located(reasons []string) map[string]string {
	out := map[string]string{}
	for _, r := range reasons {
		if why, ok := Unseparated[r]; ok && !n.Named(r) {
			out[r] = why
			continue
		}
		if c := n.Cannot(r); len(c) > 0 {
			out[r] = strings.Join(c, "; ")
		}
	}
	return out
}

// SocketFunctions are the functions of Table whose drops are socket-level, sorted.
func SocketFunctions() []string {
	var out []string
	for fn, r := range Table {
		if r.Socket {
			out = append(out, fn)
		}
	}
	slices.Sort(out)
	return out
}
