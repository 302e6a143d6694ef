// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* NET_RX softirq accounting per CPU, and a prediction of net_rx_action's time_squeeze split by
 * cause. net_rx_action (net/core/dev.c) starts with
 *     budget = netdev_budget; time_limit = jiffies + usecs_to_jiffies(netdev_budget_usecs);
 * and after each napi_poll() does
 *     budget -= work; if (budget <= 0 || time_after_eq(jiffies, time_limit)) { time_squeeze++; break; }
 * The napi:napi_poll tracepoint fires in __napi_poll right after the driver's poll with that
 * work, so replaying the same test here tells a budget squeeze from a time squeeze, which
 * /proc/net/softnet_stat cannot. Only polls between softirq_entry and softirq_exit of NET_RX on
 * the same CPU belong to net_rx_action: busy polling and threaded NAPI call __napi_poll from
 * process context with bottom halves disabled, so they cannot interleave with a softirq on
 * that CPU and are counted apart. */
#include "vmlinux.h"
#include "bpf_helpers.h"
#include "bpf_core_read.h"
#include "bpf_tracing.h"
#include "droptrace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* include/linux/interrupt.h: fixed since 2.6 (HI, TIMER, NET_TX, NET_RX, ...). */
#define DT_NET_RX_SOFTIRQ 3

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netrx_cpu);
} netrx_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netrx_config);
} netrx_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netrx_limits);
} netrx_lim SEC(".maps");

const struct netrx_cpu *unused_netrx_cpu __attribute__((unused));
const struct netrx_config *unused_netrx_config __attribute__((unused));
const struct netrx_limits *unused_netrx_limits __attribute__((unused));

/* The limits net_rx_action reads at its start are kernel variables with no symbol this
 * program can name (kallsyms lists data only with CONFIG_KALLSYMS_ALL, and vmlinux BTF has
 * per-CPU variables only). Their sysctl table entries point at them: net/core/
 * sysctl_net_core.c hands netdev_budget to proc_dointvec and netdev_budget_usecs to
 * proc_dointvec_minmax, with .data = the variable. Reading either file once (droptrace does at
 * start) teaches these programs the address; each run then reads the value the kernel uses. */
static __always_inline int name_is(const char *name, const char *want, int len)
{
	for (int i = 0; i < len; i++)
		if (name[i] != want[i])
			return 0;
	return 1;
}

static __always_inline void learn_limit(const struct ctl_table *table)
{
	static const char budget[] = "netdev_budget";
	static const char usecs[] = "netdev_budget_usecs";
	struct netrx_limits *lim;
	char name[sizeof(usecs)] = {};
	__u32 zero = 0;
	__u64 data;

	if (BPF_CORE_READ(table, maxlen) != sizeof(int))
		return;
	if (bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(table, procname)) < 0)
		return;
	lim = bpf_map_lookup_elem(&netrx_lim, &zero);
	if (!lim)
		return;
	data = (__u64)BPF_CORE_READ(table, data);
	if (name_is(name, budget, sizeof(budget)))
		lim->budget_addr = data;
	else if (name_is(name, usecs, sizeof(usecs)))
		lim->usecs_addr = data;
}

SEC("fentry/proc_dointvec")
int BPF_PROG(fentry_proc_dointvec, const struct ctl_table *table)
{
	learn_limit(table);
	return 0;
}

SEC("fentry/proc_dointvec_minmax")
int BPF_PROG(fentry_proc_dointvec_minmax, const struct ctl_table *table)
{
	learn_limit(table);
	return 0;
}

static __always_inline void netrx_enter(void)
{
	struct netrx_config *cfg;
	struct netrx_limits *lim;
	struct netrx_cpu *pc;
	struct netrx_state *st;
	struct netrx_stats *s;
	__u32 zero = 0, budget, jiffies, usecs;
	int v;
	__u64 now;

	pc = bpf_map_lookup_elem(&netrx_percpu, &zero);
	cfg = bpf_map_lookup_elem(&netrx_cfg, &zero);
	lim = bpf_map_lookup_elem(&netrx_lim, &zero);
	if (!pc || !cfg || !lim)
		return;
	s = &pc->stats;
	st = &pc->run;
	s->runs++;
	st->active = 1;
	/* The values net_rx_action is about to read (READ_ONCE of the same variables), when their
	 * addresses are known; else the last ones user space polled. */
	budget = cfg->budget;
	jiffies = cfg->time_jiffies;
	if (budget && lim->budget_addr && !bpf_probe_read_kernel(&v, sizeof(v), (void *)lim->budget_addr))
		budget = v > 0 ? v : 0;
	/* usecs_to_jiffies for HZ dividing USEC_PER_SEC, as internal/sysctl.UsecsToJiffies. */
	if (budget && lim->usecs_addr && cfg->usec_per_jiffy &&
	    !bpf_probe_read_kernel(&usecs, sizeof(usecs), (void *)lim->usecs_addr))
		jiffies = (usecs + cfg->usec_per_jiffy - 1) / cfg->usec_per_jiffy;
	/* A budget of 0 means "not configured yet": the run is then not predicted, as if it had
	 * already squeezed, and netrx_poll needs no configuration of its own. */
	st->squeezed = budget == 0;
	st->time_pending = 0;
	st->budget_left = budget;
	now = bpf_jiffies64();
	st->time_limit = now + jiffies;
	st->limit_hi = st->time_limit;
	st->polled = 0;
	if (now != st->jiffy) {
		st->jiffy = now;
		st->jiffy_runs = 0;
	}
	st->jiffy_runs++;
	if (st->jiffy_runs <= DT_TIMED_RUNS_PER_JIFFY)
		st->timing = NETRX_TIMED;
	else if (st->jiffy_runs % DT_SAMPLE_EVERY == 0)
		st->timing = NETRX_SAMPLED;
	else
		st->timing = NETRX_UNTIMED;
	if (st->timing != NETRX_UNTIMED)
		st->start_ns = bpf_ktime_get_ns();
}

static __always_inline void netrx_exit(void)
{
	struct netrx_cpu *pc;
	struct netrx_state *st;
	struct netrx_stats *s;
	__u32 zero = 0;
	__u64 d;

	pc = bpf_map_lookup_elem(&netrx_percpu, &zero);
	if (!pc || !pc->run.active)
		return;
	s = &pc->stats;
	st = &pc->run;
	st->active = 0;
	s->exits++;
	if (st->time_pending) {
		st->time_pending = 0;
		s->time_squeezes++;
		if ((__s64)(st->pred_jiffy - st->limit_hi) < 0)
			s->time_unproven++;
	}
	if (!st->squeezed && st->budget_left > 0 && (__s64)(bpf_jiffies64() - st->time_limit) >= 0)
		s->time_uncertain++;
	if (st->timing != NETRX_TIMED)
		s->sampled_from++;
	if (st->timing == NETRX_UNTIMED)
		return;
	d = bpf_ktime_get_ns() - st->start_ns;
	if (st->timing == NETRX_TIMED) {
		s->timed_runs++;
		s->busy_ns += d;
	} else {
		s->sample_runs++;
		s->sample_busy_ns += d;
	}
	if (d > s->max_run_ns)
		s->max_run_ns = d;
}

static __always_inline void netrx_poll(int work)
{
	struct netrx_cpu *pc;
	struct netrx_state *st;
	struct netrx_stats *s;
	__u32 zero = 0;
	__u64 now;

	pc = bpf_map_lookup_elem(&netrx_percpu, &zero);
	if (!pc)
		return;
	s = &pc->stats;
	st = &pc->run;
	if (work < 0)
		work = 0;
	if (!st->active) {
		s->other_polls++;
		s->other_packets += work;
		return;
	}
	s->polls++;
	s->packets += work;
	now = bpf_jiffies64();
	/* net_rx_action read jiffies between softirq_entry and this run's first poll: its time
	 * limit is BPF's plus at most the ticks in between. */
	if (!st->polled) {
		st->polled = 1;
		st->limit_hi = st->time_limit + (now - st->jiffy);
	}
	/* net_rx_action stops at the first squeeze, so a poll after a predicted time squeeze
	 * proves the kernel did not squeeze there: its time limit was later than the jiffies of
	 * that poll (a tick before net_rx_action read jiffies). The prediction, not yet counted,
	 * is withdrawn and this poll judged on the later limit. */
	if (st->time_pending) {
		st->time_pending = 0;
		st->squeezed = 0;
		st->time_limit = st->pred_jiffy + 1;
	}
	if (st->squeezed)
		return;
	st->budget_left -= work;
	if (st->budget_left <= 0) {
		st->squeezed = 1;
		s->budget_squeezes++;
	} else if ((__s64)(now - st->time_limit) >= 0) {
		st->squeezed = 1;
		st->time_pending = 1;
		st->pred_jiffy = now;
	}
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(tp_btf_softirq_entry, unsigned int vec_nr)
{
	if (vec_nr == DT_NET_RX_SOFTIRQ)
		netrx_enter();
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(tp_btf_softirq_exit, unsigned int vec_nr)
{
	if (vec_nr == DT_NET_RX_SOFTIRQ)
		netrx_exit();
	return 0;
}

SEC("tp_btf/napi_poll")
int BPF_PROG(tp_btf_napi_poll, struct napi_struct *napi, int work, int budget)
{
	netrx_poll(work);
	return 0;
}

SEC("tracepoint/irq/softirq_entry")
int tp_softirq_entry(struct trace_event_raw_softirq *ctx)
{
	if (ctx->vec == DT_NET_RX_SOFTIRQ)
		netrx_enter();
	return 0;
}

SEC("tracepoint/irq/softirq_exit")
int tp_softirq_exit(struct trace_event_raw_softirq *ctx)
{
	if (ctx->vec == DT_NET_RX_SOFTIRQ)
		netrx_exit();
	return 0;
}

SEC("tracepoint/napi/napi_poll")
int tp_napi_poll(struct trace_event_raw_napi_poll *ctx)
{
	netrx_poll(ctx->work);
	return 0;
}
