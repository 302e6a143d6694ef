// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test load only, never attached by droptrace itself: a generic-XDP program that spends about
 * `burn_ns` of CPU per packet, so that net_rx_action runs past netdev_budget_usecs with work
 * left and the kernel counts a time squeeze (rather than a budget one). netlab attaches it to
 * a veth inside its own test namespaces. */
#include "vmlinux.h"
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

volatile const __u64 burn_ns = 2000000;

struct burn {
	__u64 start;
};

static long burn_step(__u32 i, struct burn *b)
{
	return bpf_ktime_get_ns() - b->start >= burn_ns; /* 1 stops bpf_loop */
}

SEC("xdp")
int slow_xdp(struct xdp_md *ctx)
{
	struct burn b = { .start = bpf_ktime_get_ns() };

	/* bpf_loop (5.17) keeps the verifier's work constant however long the burn. */
	bpf_loop(1 << 23, burn_step, &b, 0);
	return XDP_PASS;
}

/* The same burn without bpf_loop, for kernels before 5.17: each program run burns a bounded
 * chunk and tail-calls itself until burn_ns has passed, at most the kernel's 33 runs in a
 * chain (MAX_TAIL_CALL_CNT). burn_start holds the packet's start across the chain: per CPU,
 * and one packet at a time, since XDP runs with preemption off. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} burn_again SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} burn_start SEC(".maps");

SEC("xdp")
int slow_xdp_chain(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *start = bpf_map_lookup_elem(&burn_start, &zero);

	if (!start)
		return XDP_PASS;
	if (!*start)
		*start = bpf_ktime_get_ns();
	for (int i = 0; i < 1024; i++) {
		if (bpf_ktime_get_ns() - *start >= burn_ns) {
			*start = 0;
			return XDP_PASS;
		}
	}
	bpf_tail_call(ctx, &burn_again, 0);
	*start = 0; /* the chain is at its limit: this packet is done */
	return XDP_PASS;
}
