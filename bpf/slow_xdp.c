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
