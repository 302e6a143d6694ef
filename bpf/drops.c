// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Drop attribution: every skb freed through kfree_skb_reason() (the skb:kfree_skb tracepoint)
 * is counted per CPU by reason, location, netns, device and protocol, and optionally streamed
 * as an event. Consumed (non-drop) frees go to skb:consume_skb and are not seen here.
 *
 * Two attach variants share one handler: tp_btf (raw, BTF-typed arguments) and the classic
 * tracepoint for kernels or configurations that refuse raw BTF tracepoints. */
#include "vmlinux.h"
#include "bpf_helpers.h"
#include "bpf_core_read.h"
#include "bpf_tracing.h"
#include "bpf_endian.h"
#include "droptrace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define DT_ETH_P_IP 0x0800
#define DT_ETH_P_IPV6 0x86DD
#define DT_IPPROTO_TCP 6
#define DT_IPPROTO_UDP 17
#define DT_IPPROTO_UDPLITE 136
#define DT_IP_OFFSET 0x1fff
#define DT_ETH_HLEN 14

/* Drops counted by key, across the CPUs' front caches (drop_cpu.slots): two maps, one per
 * generation, drained like the socket maps below (map_gen). A map holds the keys of one
 * interval, so the keys of a namespace that no longer drops leave with its generation, and
 * userspace keeps the running totals. Each entry holds a value per possible CPU, so the loader
 * halves max_entries on hosts with many CPUs to bound the kernel memory
 * (internal/tracer/kmem.go). A full map is counted, not silently lost (DROP_STAT_AGG_FULL). */
struct drop_counts_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct drop_key);
	__type(value, __u64);
};

struct drop_counts_map drop_counts_a SEC(".maps");
struct drop_counts_map drop_counts_b SEC(".maps");

/* Looking a key up in a drop_counts map (hashing it, walking a bucket, a helper call) is most of
 * what counting a drop costs, and a drop storm repeats one key. Each CPU first tries the slot its
 * key hashes to (drop_cpu.slots): a slot belongs to the first key that lands in it, for good, so
 * a count never moves and userspace adds slot and map counts of the same key. Keys that find
 * their slot taken go to the drop_counts map of the generation. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct drop_cpu);
} drop_percpu SEC(".maps");

/* Socket-level drops (drop_cfg.sock_reasons) counted by receiving socket, across CPUs: one
 * entry per socket, not per socket and CPU, so kernel memory does not grow with the CPUs.
 *
 * Generations: BPF counts into the maps map_gen names (drop_counts_*, sock_drops_*, a memo of
 * sock_memos). Userspace drains a generation each interval: it flips map_gen to the other one,
 * then updates sync_maps, an array of maps no program uses: the kernel answers a map-in-map
 * update only after an RCU grace period (maybe_wait_bpf_programs in kernel/bpf/syscall.c), so
 * every program run that could have read the old map_gen has ended, and the old maps are read
 * and emptied with no increment racing them. The maps are named directly rather than looked up
 * through a map-in-map: the verifier then inlines the hash lookup, where an inner map's lookup
 * is an indirect call. A socket map holds the sockets of one interval; a full map is counted
 * (DROP_STAT_SOCK_FULL), and the drop is still counted by reason above. */
struct sock_drops_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_SOCK_ENTRIES);
	__type(key, struct sock_key);
	__type(value, __u64);
};

struct sock_drops_map sock_drops_a SEC(".maps");
struct sock_drops_map sock_drops_b SEC(".maps");

/* 0: the *_a maps, 1: the *_b maps. Written by userspace through the .bss mapping. */
volatile __u32 map_gen;

/* Per CPU, one memo per generation: a generation's memo is drained with its map. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sock_memo);
} sock_memos SEC(".maps");

struct sync_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sync_inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct sync_inner);
} sync_maps SEC(".maps") = {
	.values = { &sync_inner },
};

/* Set by the loader before load (CollectionSpec.Variables): with events off the verifier
 * removes the event path, with no rate limit the token bucket. */
volatile const struct drop_config drop_cfg = {};

/* Userspace sets max_entries before load (--ring-buffer-size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

/* Exported to Go through bpf2go -type. */
const struct drop_event *unused_drop_event __attribute__((unused));
const struct drop_packet *unused_drop_packet __attribute__((unused));
const struct drop_key *unused_drop_key __attribute__((unused));
const struct drop_slot *unused_drop_slot __attribute__((unused));
const struct drop_cpu *unused_drop_cpu __attribute__((unused));
const struct sock_key *unused_sock_key __attribute__((unused));
const struct sock_memo *unused_sock_memo __attribute__((unused));
const enum drop_stat *unused_drop_stat __attribute__((unused));

/* The slot index is the top bits of a multiplicative (Fibonacci) hash of the key's words. */
#define DT_SLOT_BITS __builtin_ctz(DT_DROP_CACHE_SLOTS)
_Static_assert(DT_DROP_CACHE_SLOTS >= 2 && (DT_DROP_CACHE_SLOTS & (DT_DROP_CACHE_SLOTS - 1)) == 0,
	       "DT_DROP_CACHE_SLOTS is a power of two");

/* The drop key as its three 64-bit words (struct drop_key, little endian), built in registers:
 * storing the fields one by one and loading them back as words stalls store forwarding on
 * every drop. */
struct key_words {
	__u64 w[3];
};

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "key words are built little endian");
_Static_assert(__builtin_offsetof(struct drop_key, reason) == 8 &&
		       __builtin_offsetof(struct drop_key, netns) == 12 &&
		       __builtin_offsetof(struct drop_key, ifindex) == 16 &&
		       __builtin_offsetof(struct drop_key, l3) == 20 &&
		       __builtin_offsetof(struct drop_key, l4) == 22 && sizeof(struct drop_key) == 24,
	       "key_words follows struct drop_key");

static __always_inline void make_key(struct key_words *k, __u64 location, __u32 reason, __u32 netns,
				     __u32 ifindex, __u16 l3, __u8 l4)
{
	k->w[0] = location;
	k->w[1] = reason | (__u64)netns << 32;
	k->w[2] = ifindex | (__u64)l3 << 32 | (__u64)l4 << 48;
}

static __always_inline bool count_in_slot(struct drop_cpu *pc, struct key_words *k)
{
	__u64 k0 = k->w[0], k1 = k->w[1], k2 = k->w[2], *sk;
	struct drop_slot *slot;
	__u32 idx;

	idx = (__u32)(k0 ^ (k0 >> 29) ^ k1 ^ (k1 >> 32) ^ k2 ^ (k2 >> 16)) * 2654435761U;
	idx >>= 32 - DT_SLOT_BITS;
	slot = &pc->slots[idx];
	sk = (__u64 *)&slot->key;
	if (slot->count == 0) {
		/* Whole-word stores: see struct drop_slot for why the seal, not the order, is what
		 * keeps userspace from reading a count with a torn key. */
		sk[0] = k0;
		sk[1] = k1;
		sk[2] = k2;
		slot->seal = DT_SLOT_SEALED | (k0 ? DT_SLOT_WORD(0) : 0) | (k1 ? DT_SLOT_WORD(1) : 0) |
			     (k2 ? DT_SLOT_WORD(2) : 0);
		slot->count = 1;
		return true;
	}
	if (sk[0] != k0 || sk[1] != k1 || sk[2] != k2)
		return false;
	slot->count++;
	return true;
}

/* Adds a drop of key to one of the drop_counts maps. */
static __always_inline void count_in_map(struct drop_cpu *pc, void *map, struct key_words *key)
{
	__u64 one = 1, *cnt;

	cnt = bpf_map_lookup_elem(map, key);
	if (cnt) {
		*cnt += 1;
		return;
	}
	if (!bpf_map_update_elem(map, key, &one, BPF_NOEXIST))
		return;
	/* Full map, or a racing insert of the same key on this CPU: try once more. */
	cnt = bpf_map_lookup_elem(map, key);
	if (cnt)
		*cnt += 1;
	else
		pc->stats[DROP_STAT_AGG_FULL]++;
}

/* Per-CPU token bucket: at most `rate` events per second per CPU, bursts of up to one second's
 * worth. Integer math in units of 1e-9 events; the elapsed time is capped at one second, which
 * both bounds the burst and keeps the product from overflowing. Under a drop storm this runs
 * for every drop and most are refused, so the clock is jiffies (a load) when userspace knows
 * HZ, not bpf_ktime_get_ns (a clock read): the bucket then refills once per tick. */
static __always_inline bool take_token(struct rate_state *st)
{
	const __u64 one = 1000000000ULL;
	__u32 rate = drop_cfg.max_event_rate, hz = drop_cfg.hz;
	__u64 now, elapsed, cap;

	if (rate == 0)
		return true;
	if (hz) {
		now = bpf_jiffies64();
		elapsed = now - st->last;
		if (elapsed > hz)
			elapsed = hz;
		elapsed *= one / hz;
	} else {
		now = bpf_ktime_get_ns();
		elapsed = now - st->last;
		if (elapsed > one)
			elapsed = one;
	}
	st->last = now;
	cap = (__u64)rate * one;
	st->tokens += elapsed * rate;
	if (st->tokens > cap)
		st->tokens = cap;
	if (st->tokens < one)
		return false;
	st->tokens -= one;
	return true;
}

struct pkt {
	__u16 l3;
	__u8 l4;
	__u16 sport, dport;
	__u8 saddr[16], daddr[16];
};

/* What the key needs of the skb, read once; what only some drops need (skb->data, skb->len) is
 * read from skb when they need it. */
struct skb_meta {
	struct net_device *dev;
	unsigned char *head;
	unsigned char *ip; /* the IP header parse_protocols trusted; NULL if none */
	__u32 netns, ifindex;
	__u16 nh, protocol;
};

/* tp_btf hands the handler a BTF-typed skb: plain loads through it are checked by the verifier
 * and cost a load each, where every BPF_CORE_READ step is a bpf_probe_read_kernel call. This
 * runs for every dropped packet, so the tp_btf variant reads directly; the classic tracepoint
 * only has the skb's address and must go through the helper. */
static __always_inline void read_meta(struct sk_buff *skb, bool btf, struct skb_meta *m)
{
	struct net_device *dev;
	struct sock *sk;

	if (btf) {
		dev = skb->dev;
		m->head = skb->head;
		m->nh = skb->network_header;
		m->protocol = skb->protocol;
		if (dev) {
			m->ifindex = dev->ifindex;
			m->netns = dev->nd_net.net->ns.inum;
		} else {
			m->ifindex = skb->skb_iif;
			sk = skb->sk;
			if (sk)
				m->netns = sk->__sk_common.skc_net.net->ns.inum;
		}
	} else {
		dev = BPF_CORE_READ(skb, dev);
		m->head = BPF_CORE_READ(skb, head);
		m->nh = BPF_CORE_READ(skb, network_header);
		m->protocol = BPF_CORE_READ(skb, protocol);
		if (dev) {
			m->ifindex = BPF_CORE_READ(dev, ifindex);
			m->netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
		} else {
			m->ifindex = BPF_CORE_READ(skb, skb_iif);
			sk = BPF_CORE_READ(skb, sk);
			if (sk)
				m->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
		}
	}
	m->dev = dev;
}

/* skb->data: where the IP header is when network_header is not trusted (see read_ip). */
static __always_inline unsigned char *skb_data(struct sk_buff *skb, bool btf)
{
	if (btf)
		return skb->data;
	return BPF_CORE_READ(skb, data);
}

/* The IP header, with the four bytes after it: the ports when there are no IPv4 options (the
 * usual case), so that one read serves both. */
struct ip4_ports {
	struct iphdr ip;
	__u16 ports[2];
};

struct ip6_ports {
	struct ipv6hdr ip6;
	__u16 ports[2];
};

/* Reads size bytes of the IP header into dst and returns where it starts. The network header
 * offset is trusted only when the version nibble there matches skb->protocol: on receive,
 * skb->data points at it once eth_type_trans has run, while network_header may still be stale
 * until __netif_receive_skb_core resets it (net/core/dev.c). */
static __always_inline unsigned char *read_ip(struct sk_buff *skb, bool btf, struct skb_meta *m, void *dst,
					     __u32 size, __u8 want_version)
{
	unsigned char *p;

	if (m->nh != (__u16)~0U) {
		p = m->head + m->nh;
		if (!bpf_probe_read_kernel(dst, size, p) && (*(__u8 *)dst >> 4) == want_version)
			return p;
	}
	p = skb_data(skb, btf);
	if (!bpf_probe_read_kernel(dst, size, p) && (*(__u8 *)dst >> 4) == want_version)
		return p;
	return NULL;
}

/* bpf_rdonly_cast (6.2+) turns an address into a typed pointer the verifier lets the program
 * load through directly, each load guarded by the exception table like a BTF field load: the
 * L4 protocol then costs a load where bpf_probe_read_kernel costs a helper call. Weak: on
 * older kernels the loader poisons the call and the probe_read path below stays. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* The L4 protocol from the IP header at p, or -1 when p does not hold the expected version
 * (a faulting load reads as 0, which no version matches). */
static __always_inline int l4_at(unsigned char *p, __u8 want_version)
{
	if (want_version == 4) {
		struct iphdr *ip = bpf_rdonly_cast(p, bpf_core_type_id_kernel(struct iphdr));

		if (BPF_CORE_READ_BITFIELD(ip, version) == 4)
			return ip->protocol;
	} else {
		struct ipv6hdr *ip6 = bpf_rdonly_cast(p, bpf_core_type_id_kernel(struct ipv6hdr));

		if (BPF_CORE_READ_BITFIELD(ip6, version) == 6)
			return ip6->nexthdr;
	}
	return -1;
}

/* The same choice of header as read_ip, with direct loads. */
static __always_inline void l4_direct(struct sk_buff *skb, bool btf, struct skb_meta *m, struct pkt *pk,
				      __u8 want_version)
{
	int l4 = -1;

	if (m->nh != (__u16)~0U) {
		m->ip = m->head + m->nh;
		l4 = l4_at(m->ip, want_version);
	}
	if (l4 < 0) {
		m->ip = skb_data(skb, btf);
		l4 = l4_at(m->ip, want_version);
	}
	if (l4 >= 0)
		pk->l4 = l4;
	else
		m->ip = NULL;
}

static __always_inline bool has_ports(__u8 l4)
{
	return l4 == DT_IPPROTO_TCP || l4 == DT_IPPROTO_UDP || l4 == DT_IPPROTO_UDPLITE;
}

static __always_inline void set_ports(struct pkt *pk, __u16 *ports)
{
	pk->sport = bpf_ntohs(ports[0]);
	pk->dport = bpf_ntohs(ports[1]);
}

/* The L3 and L4 protocols, all that the aggregation key needs; remembers the IP header in
 * m->ip for parse_detail. */
static __always_inline void parse_protocols(struct sk_buff *skb, bool btf, struct skb_meta *m, struct pkt *pk)
{
	__u16 proto = bpf_ntohs(m->protocol);

	pk->l3 = proto;
	pk->l4 = 0;
	if (proto == DT_ETH_P_IP) {
		struct iphdr ip;

		if (bpf_rdonly_cast)
			l4_direct(skb, btf, m, pk, 4);
		else if ((m->ip = read_ip(skb, btf, m, &ip, sizeof(ip), 4)))
			pk->l4 = ip.protocol;
	} else if (proto == DT_ETH_P_IPV6) {
		struct ipv6hdr ip6;

		if (bpf_rdonly_cast)
			l4_direct(skb, btf, m, pk, 6);
		else if ((m->ip = read_ip(skb, btf, m, &ip6, sizeof(ip6), 6)))
			pk->l4 = ip6.nexthdr;
	}
}

/* Addresses and ports with direct loads (bpf_rdonly_cast). TCP's and UDP's headers both start
 * with the two ports. */
static __always_inline void detail_direct(struct skb_meta *m, struct pkt *pk)
{
	unsigned char *h = m->ip;

	if (pk->l3 == DT_ETH_P_IP) {
		struct iphdr *ip;
		struct udphdr *uh;
		__u32 a;

		ip = bpf_rdonly_cast(h, bpf_core_type_id_kernel(struct iphdr));
		a = ip->saddr;
		__builtin_memcpy(pk->saddr, &a, 4);
		a = ip->daddr;
		__builtin_memcpy(pk->daddr, &a, 4);
		if ((bpf_ntohs(ip->frag_off) & DT_IP_OFFSET) || !has_ports(pk->l4))
			return;
		uh = bpf_rdonly_cast(h + BPF_CORE_READ_BITFIELD(ip, ihl) * 4, bpf_core_type_id_kernel(struct udphdr));
		pk->sport = bpf_ntohs(uh->source);
		pk->dport = bpf_ntohs(uh->dest);
	} else if (pk->l3 == DT_ETH_P_IPV6) {
		struct ipv6hdr *ip6;
		struct udphdr *uh;
		__u32 *src, *dst;

		ip6 = bpf_rdonly_cast(h, bpf_core_type_id_kernel(struct ipv6hdr));
		src = (__u32 *)pk->saddr;
		dst = (__u32 *)pk->daddr;
		src[0] = ip6->saddr.in6_u.u6_addr32[0];
		src[1] = ip6->saddr.in6_u.u6_addr32[1];
		src[2] = ip6->saddr.in6_u.u6_addr32[2];
		src[3] = ip6->saddr.in6_u.u6_addr32[3];
		dst[0] = ip6->daddr.in6_u.u6_addr32[0];
		dst[1] = ip6->daddr.in6_u.u6_addr32[1];
		dst[2] = ip6->daddr.in6_u.u6_addr32[2];
		dst[3] = ip6->daddr.in6_u.u6_addr32[3];
		if (!has_ports(pk->l4))
			return;
		uh = bpf_rdonly_cast(h + sizeof(struct ipv6hdr), bpf_core_type_id_kernel(struct udphdr));
		pk->sport = bpf_ntohs(uh->source);
		pk->dport = bpf_ntohs(uh->dest);
	}
}

/* Addresses and ports, for an event that is going to be sent, from the IP header
 * parse_protocols chose: one read of it with the four bytes after it. */
static __always_inline void parse_detail(struct skb_meta *m, struct pkt *pk)
{
	unsigned char *h = m->ip;

	/* Zeroed here, not where pk is declared: only an event needs them. */
	pk->sport = 0;
	pk->dport = 0;
	__builtin_memset(pk->saddr, 0, sizeof(pk->saddr));
	__builtin_memset(pk->daddr, 0, sizeof(pk->daddr));
	if (!h)
		return;
	if (bpf_rdonly_cast) {
		detail_direct(m, pk);
		return;
	}

	if (pk->l3 == DT_ETH_P_IP) {
		struct ip4_ports hp;

		if (bpf_probe_read_kernel(&hp, sizeof(hp), h))
			return;
		__builtin_memcpy(pk->saddr, &hp.ip.saddr, 4);
		__builtin_memcpy(pk->daddr, &hp.ip.daddr, 4);
		/* Only the first fragment carries the transport header. */
		if ((bpf_ntohs(hp.ip.frag_off) & DT_IP_OFFSET) || !has_ports(pk->l4))
			return;
		if (hp.ip.ihl == 5) {
			set_ports(pk, hp.ports);
		} else {
			__u16 ports[2];

			if (!bpf_probe_read_kernel(ports, sizeof(ports), h + hp.ip.ihl * 4))
				set_ports(pk, ports);
		}
	} else if (pk->l3 == DT_ETH_P_IPV6) {
		struct ip6_ports hp;

		if (bpf_probe_read_kernel(&hp, sizeof(hp), h))
			return;
		/* Extension headers are not walked: their type is reported as the L4 protocol. */
		__builtin_memcpy(pk->saddr, &hp.ip6.saddr, 16);
		__builtin_memcpy(pk->daddr, &hp.ip6.daddr, 16);
		if (has_ports(pk->l4))
			set_ports(pk, hp.ports);
	}
}

/* Waking the reader is an irq_work, i.e. an interrupt on this CPU, and by default the kernel
 * sends one for every record the reader finds waiting when it has caught up: under a flood
 * that is one interrupt per drop. The reader instead polls on a deadline, and is woken only
 * when the ring is half full, so that a burst cannot fill it between polls. The window is
 * several records wide because producers on other CPUs move the fill level concurrently: one of
 * them must observe it inside the window. */
static __always_inline __u64 wakeup_flags(__u64 rec)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 half = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 2;

	if (avail >= half && avail < half + 64 * (rec + 8))
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline bool sock_reason(__u32 reason)
{
	__u32 word = reason / 64;

	if (word >= DT_SOCK_REASON_WORDS)
		return false;
	/* Hides the bound from clang so that it keeps the mask, which is what the verifier
	 * follows. */
	asm volatile("" : "+r"(word));
	return (drop_cfg.sock_reasons[word & (DT_SOCK_REASON_WORDS - 1)] >> (reason % 64)) & 1;
}

_Static_assert(__builtin_offsetof(struct sock_key, netns) == 16 && __builtin_offsetof(struct sock_key, reason) == 20 &&
		       __builtin_offsetof(struct sock_key, port) == 24 && __builtin_offsetof(struct sock_key, l3) == 26 &&
		       __builtin_offsetof(struct sock_key, l4) == 28 && sizeof(struct sock_key) == 32,
	       "count_sock's words follow struct sock_key");

/* On a kernel without drop reasons (reason 0), the sock_key reason of a drop in one of
 * drop_cfg.sock_fns: the function's index and the call site's offset in it, so that userspace
 * names it from its location. 0 when the drop is in none of them (or they are not set). */
static __always_inline __u32 sock_fn_code(__u64 location)
{
	for (int i = 0; i < DT_SOCK_FNS; i++) {
		__u64 start = drop_cfg.sock_fns[i].start;

		if (!start)
			break;
		if (location >= start && location < drop_cfg.sock_fns[i].end && location - start < 0x10000)
			return DT_SOCK_LOC | ((__u32)i << 16) | (__u32)(location - start);
	}
	return 0;
}

/* Adds n drops of key to one of the socket drop maps. */
static __always_inline void add_sock(struct drop_cpu *pc, void *map, struct sock_key *key, __u64 n)
{
	__u64 *cnt;

	cnt = bpf_map_lookup_elem(map, key);
	if (cnt) {
		__sync_fetch_and_add(cnt, n);
		return;
	}
	if (!bpf_map_update_elem(map, key, &n, BPF_NOEXIST))
		return;
	/* Full, or another CPU inserted the key first. */
	cnt = bpf_map_lookup_elem(map, key);
	if (cnt)
		__sync_fetch_and_add(cnt, n);
	else
		pc->stats[DROP_STAT_SOCK_FULL] += n;
}

/* Counts a socket-level drop by its destination (parse_detail has run): in the CPU's memo when
 * it is the socket counted last, else the memo's count goes to the map and the memo takes this
 * socket. */
static __always_inline void count_sock(struct drop_cpu *pc, struct skb_meta *m, struct pkt *pk, __u32 reason,
				       __u32 gen)
{
	struct sock_memo *memo;
	__u64 w0, w1, w2, w3, *mk;

	memo = bpf_map_lookup_elem(&sock_memos, &gen);
	if (!memo)
		return;
	/* The key as its four 64-bit words (struct sock_key: addr, netns|reason,
	 * port|l3|l4|pad), built in registers. */
	__builtin_memcpy(&w0, pk->daddr, 8);
	__builtin_memcpy(&w1, pk->daddr + 8, 8);
	w2 = m->netns | (__u64)reason << 32;
	w3 = pk->dport | (__u64)pk->l3 << 16 | (__u64)pk->l4 << 32;
	mk = (__u64 *)&memo->key;
	if (memo->pending && mk[0] == w0 && mk[1] == w1 && mk[2] == w2 && mk[3] == w3) {
		memo->pending++;
		return;
	}
	if (memo->pending) {
		if (gen)
			add_sock(pc, &sock_drops_b, &memo->key, memo->pending);
		else
			add_sock(pc, &sock_drops_a, &memo->key, memo->pending);
	}
	mk[0] = w0;
	mk[1] = w1;
	mk[2] = w2;
	mk[3] = w3;
	memo->pending = 1;
}

/* Whether a drop passes the event filters on what read_meta and parse_protocols found; the
 * port filter is passes_ports, after parse_detail. Each kind is a constant of drop_cfg, so a
 * kind turned off costs nothing once the verifier has pruned it. */
static __always_inline bool passes_meta(struct skb_meta *m, struct pkt *pk, __u32 reason)
{
	bool hit;
	int i;

	if (drop_cfg.nreasons) {
		hit = false;
		for (i = 0; i < DT_FILTER_REASONS; i++)
			if (i < drop_cfg.nreasons && drop_cfg.reasons[i] == reason)
				hit = true;
		if (!hit)
			return false;
	}
	if (drop_cfg.nnetns) {
		hit = false;
		for (i = 0; i < DT_FILTER_NETNS; i++)
			if (i < drop_cfg.nnetns && drop_cfg.netns[i] == m->netns)
				hit = true;
		if (!hit)
			return false;
	}
	if (drop_cfg.nifaces) {
		hit = false;
		for (i = 0; i < DT_FILTER_IFACES; i++)
			if (i < drop_cfg.nifaces && drop_cfg.ifaces[i].netns == m->netns &&
			    drop_cfg.ifaces[i].ifindex == m->ifindex)
				hit = true;
		if (!hit)
			return false;
	}
	if (drop_cfg.protos_on && !((drop_cfg.protos[(pk->l4 / 64) & (DT_FILTER_PROTO_WORDS - 1)] >> (pk->l4 % 64)) & 1))
		return false;
	return true;
}

/* A port filter matches the source or the destination port. */
static __always_inline bool passes_ports(struct pkt *pk)
{
	int i;

	for (i = 0; i < DT_FILTER_PORTS; i++)
		if (i < drop_cfg.nports && (drop_cfg.ports[i] == pk->sport || drop_cfg.ports[i] == pk->dport))
			return true;
	return false;
}

/* Whether a drop passes every event filter; parses addresses and ports when the port filter
 * needs them and parse_detail has not run (detailed). */
static __noinline bool passes(struct skb_meta *m, struct pkt *pk, __u32 reason, bool detailed)
{
	if (!m || !pk || !passes_meta(m, pk, reason))
		return false;
	if (!drop_cfg.nports)
		return true;
	if (!detailed)
		parse_detail(m, pk);
	return passes_ports(pk);
}

/* Copies the start of the packet after the event (--pcap), at most drop_cfg.snaplen bytes:
 * from the Ethernet header when one ends right where the IP header parse_protocols trusted
 * starts, else from that IP header, so that a drop at the transport layer (skb->data past the
 * IP header) still shows it. A packet with neither is sent without bytes, with its length.
 * The copy stops at the end of the linear data: the rest is in pages, and orig_len says how
 * much is missing.
 * Everything is an offset from skb->head: with tp_btf the verifier types skb's pointers as
 * untrusted memory and would not bound a length computed from them, so skb->data's offset
 * comes from the linear length instead (tail - (len - data_len)). */
static __always_inline void copy_packet(struct drop_packet *p, struct sk_buff *skb, bool btf, struct skb_meta *m,
					__u32 len)
{
	__u32 data_len, tail, data, start, snaplen = drop_cfg.snaplen;
	__s64 orig, n;
	__u16 mac;

	if (btf) {
		mac = skb->mac_header;
		tail = skb->tail;
		data_len = skb->data_len;
	} else {
		mac = BPF_CORE_READ(skb, mac_header);
		tail = BPF_CORE_READ(skb, tail);
		data_len = BPF_CORE_READ(skb, data_len);
	}
	p->link = DT_LINK_NONE;
	p->pad = 0;
	p->caplen = 0;
	p->orig_len = 0;
	data = tail - (len - data_len);
	start = data; /* not IP: only an Ethernet header right before data is taken */
	if (m->ip) {
		p->link = DT_LINK_IP;
		if (m->nh != (__u16)~0U && m->ip == m->head + m->nh)
			start = m->nh;
	}
	if (mac != (__u16)~0U && (__u32)mac + DT_ETH_HLEN == start) {
		start = mac;
		p->link = DT_LINK_ETHERNET;
	}
	if (p->link == DT_LINK_NONE) {
		p->orig_len = len; /* nothing captured, the length still said */
		return;
	}
	orig = (__s64)len + data - start;
	n = (__s64)tail - start;
	if (n > orig)
		n = orig;
	if (n > snaplen)
		n = snaplen;
	if (n <= 0 || n > DT_SNAPLEN_MAX)
		return;
	if (bpf_probe_read_kernel(p->data, n, m->head + start))
		return;
	p->caplen = n;
	p->orig_len = orig;
}

/* Fills and submits the event of a drop that passed the filters and the rate limit; with
 * packet, a drop_packet with drop_cfg.snaplen bytes of it. */
static __always_inline void send_event(struct sk_buff *skb, bool btf, __u64 location, __u32 reason,
				       struct skb_meta *m, struct pkt *pk, struct drop_cpu *pc, bool detailed,
				       bool packet)
{
	/* A constant to the verifier either way: drop_cfg is read-only. */
	__u64 rec = packet ? sizeof(struct drop_packet) - DT_SNAPLEN_MAX + drop_cfg.snaplen : sizeof(struct drop_event);
	struct net_device *dev;
	struct drop_event *e;

	e = bpf_ringbuf_reserve(&events, rec, 0);
	if (!e) {
		pc->stats[DROP_STAT_EVENTS_RINGBUF_FULL]++;
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	if (!detailed)
		parse_detail(m, pk);
	e->location = location;
	e->reason = reason;
	e->netns = m->netns;
	e->ifindex = m->ifindex;
	e->len = btf ? skb->len : BPF_CORE_READ(skb, len); /* read once: copy_packet needs it too */
	e->cpu = bpf_get_smp_processor_id();
	e->l3 = pk->l3;
	e->l4 = pk->l4;
	e->pad = 0;
	e->sport = pk->sport;
	e->dport = pk->dport;
	__builtin_memcpy(e->saddr, pk->saddr, 16);
	__builtin_memcpy(e->daddr, pk->daddr, 16);
	/* A plain local: CO-RE relocates the access chain inside BPF_CORE_READ_STR_INTO, and
	 * skb_meta is not a kernel type. */
	dev = m->dev;
	if (!dev)
		e->ifname[0] = 0;
	else if (btf)
		__builtin_memcpy(e->ifname, dev->name, DT_IFNAMSIZ);
	else
		BPF_CORE_READ_STR_INTO(&e->ifname, dev, name);
	if (packet)
		copy_packet((struct drop_packet *)e, skb, btf, m, e->len);
	/* Counted before the submit: once submitted, the reader may count it written, and
	 * written must never exceed sent. */
	pc->stats[DROP_STAT_EVENTS_SENT]++;
	bpf_ringbuf_submit(e, wakeup_flags(rec));
}

static __always_inline void handle_drop(struct sk_buff *skb, __u64 location, __u32 reason, bool btf)
{
	struct skb_meta m = {};
	struct key_words key;
	struct pkt pk;
	struct drop_cpu *pc;
	__u32 zero = 0, sock_code, gen;
	bool detailed;

	pc = bpf_map_lookup_elem(&drop_percpu, &zero);
	if (!pc)
		return;
	pc->stats[DROP_STAT_SEEN]++;

	read_meta(skb, btf, &m);
	parse_protocols(skb, btf, &m, &pk);
	make_key(&key, location, reason, m.netns, m.ifindex, pk.l3, pk.l4);

	/* One read of map_gen per drop: the key and the socket go to the same generation. */
	gen = map_gen & 1;
	/* Each map named at its own call, so that the verifier inlines both lookups. */
	if (count_in_slot(pc, &key)) {
		/* counted */
	} else if (gen) {
		count_in_map(pc, &drop_counts_b, &key);
	} else {
		count_in_map(pc, &drop_counts_a, &key);
	}

	sock_code = reason;
	detailed = sock_reason(reason);
	if (!detailed && !reason) {
		sock_code = sock_fn_code(location);
		detailed = sock_code != 0;
	}
	if (detailed) {
		parse_detail(&m, &pk);
		count_sock(pc, &m, &pk, sock_code, gen);
	}

	if (!drop_cfg.events)
		return;
	/* Filtered before the token bucket, so that drops nobody asked for do not spend the
	 * rate limit; the aggregate and sock_drops above have counted them all. */
	/* One test when no filter is set: the verifier would otherwise keep a load of each
	 * kind's count, and the filters inlined here would reshuffle the registers of the path
	 * every drop takes. */
	if (drop_cfg.filter && !passes(&m, &pk, reason, detailed)) {
		pc->stats[DROP_STAT_EVENTS_FILTERED]++;
		return;
	}
	if (drop_cfg.filter && drop_cfg.nports)
		detailed = true; /* passes parsed the ports */
	if (!take_token(&pc->rate)) {
		pc->stats[DROP_STAT_EVENTS_RATELIMITED]++;
		return;
	}
	/* Tested once, here: without --pcap the verifier keeps only the path without the packet,
	 * the event path as it is without the option. */
	if (drop_cfg.snaplen)
		send_event(skb, btf, location, reason, &m, &pk, pc, detailed, true);
	else
		send_event(skb, btf, location, reason, &m, &pk, pc, detailed, false);
}

/* include/trace/events/skb.h: kfree_skb(skb, location, reason[, rx_sk since 6.10]); the reason
 * argument exists since 5.17 — before that there is no enum skb_drop_reason in BTF and the
 * verifier prunes the read of a third argument. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(tp_btf_kfree_skb, struct sk_buff *skb, void *location)
{
	__u32 reason = 0;

	if (bpf_core_type_exists(enum skb_drop_reason))
		reason = (__u32)ctx[2];
	handle_drop(skb, (__u64)location, reason, true);
	return 0;
}

SEC("tracepoint/skb/kfree_skb")
int tp_kfree_skb(struct trace_event_raw_kfree_skb *ctx)
{
	__u32 reason = 0;

	/* Direct, CO-RE-relocated reads of the record: rx_sk (6.10) moved protocol and reason. */
	if (bpf_core_field_exists(ctx->reason))
		reason = ctx->reason;
	handle_drop((struct sk_buff *)ctx->skbaddr, (__u64)ctx->location, reason, false);
	return 0;
}
