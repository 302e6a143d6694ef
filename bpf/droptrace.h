/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared by the BPF programs and, through bpf2go -type, by the Go loader.
 * Layouts are fixed-size and explicitly padded so that C and Go agree on every kernel. */
#ifndef DROPTRACE_H
#define DROPTRACE_H

#define DT_IFNAMSIZ 16

/* Aggregation key for drops. Reason codes are kept as the full 32 bits the kernel passes:
 * since 6.4 the high 16 bits carry a drop-reason subsystem (include/net/dropreason.h). */
struct drop_key {
	__u64 location; /* return address of the kfree_skb_reason caller */
	__u32 reason;   /* enum skb_drop_reason, decoded in userspace from the kernel's BTF */
	__u32 netns;    /* inode of the netns of skb->dev (or of skb->sk when there is no device) */
	__u32 ifindex;  /* skb->dev->ifindex, else skb->skb_iif; 0 when neither is known */
	__u16 l3;       /* ethertype in host order (0x0800, 0x86dd, ...); 0 when unknown */
	__u8 l4;        /* IPPROTO_* of the IPv4/IPv6 payload; 0 when unknown */
	__u8 pad;
};

/* A slot of drop_cpu: the first key hashed to it on that CPU, counted there for the
 * rest of the session. Userspace reads slots through the map syscall, a plain copy with no
 * acquire ordering, so on a weakly ordered CPU (arm64) it may see the count of a key whose
 * words it still reads as the zeros they were before the claim: whatever order BPF stores
 * them in. The seal makes such a copy detectable rather than impossible: it is written with the
 * key and says which of the key's three 64-bit words are nonzero (DT_SLOT_SEALED | DT_SLOT_WORD
 * bits). A copy whose seal is missing, or that reads a word as zero the seal says is not, is
 * skipped; its count is read at the next interval. Each word is one aligned 64-bit store and
 * one 64-bit load, so a word is read either whole or as zero. */
struct drop_slot {
	__u64 count;
	struct drop_key key;
	__u64 seal;
};

#define DT_SLOT_SEALED 1
#define DT_SLOT_WORD(i) (2ULL << (i))

#define DT_DROP_CACHE_SLOTS 128

/* A socket-level drop's key in sock_drops: the receiving socket as the packet names it, its
 * destination. That is the socket's own address unless it is bound to a wildcard address,
 * which userspace matches by port. */
struct sock_key {
	__u8 addr[16];  /* destination address; IPv4 in the first 4 bytes */
	__u32 netns;
	__u32 reason;
	__u16 port;     /* destination port, host order; 0 when not TCP/UDP */
	__u16 l3;
	__u8 l4;
	__u8 pad[3];
};

/* The socket counted last on a CPU, with its drops not yet added to the shared map: a storm
 * repeats one socket, and adding to a shared map entry is most of what counting by socket costs.
 * The count is added when another socket's drop comes; userspace adds what is still pending
 * when it drains a generation. */
struct sock_memo {
	struct sock_key key;
	__u64 pending;
};

#define DT_SOCK_ENTRIES 4096
#define DT_SOCK_REASON_WORDS 4

/* Kernels without drop reasons (before 5.17): the text of a function whose drops are counted
 * by socket, [start, end), from kallsyms. A sock_key of such a drop has the reason
 * DT_SOCK_LOC | index << 16 | offset of the call site in the function. */
struct sock_fn {
	__u64 start;
	__u64 end;
};

#define DT_SOCK_FNS 8
#define DT_SOCK_LOC (1U << 31)

/* One dropped packet, streamed through the ring buffer when events are on. */
struct drop_event {
	__u64 ts_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u64 location;
	__u32 reason;
	__u32 netns;
	__u32 ifindex;
	__u32 len; /* skb->len */
	__u32 cpu;
	__u16 l3;
	__u8 l4;
	__u8 pad;
	__u16 sport; /* host order; 0 when not TCP/UDP */
	__u16 dport;
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	char ifname[DT_IFNAMSIZ];
};

/* The most packet bytes a drop_packet carries (--snaplen): one bounded copy per event. */
#define DT_SNAPLEN_MAX 256

/* Where a drop_packet's bytes start. */
enum drop_link {
	DT_LINK_NONE = 0,     /* nothing copied: no IP header found and no Ethernet header before one */
	DT_LINK_ETHERNET = 1, /* the MAC header, 14 bytes before the IP header */
	DT_LINK_IP = 2,       /* the network header: no MAC header, or not an Ethernet one */
};

/* A drop event with the start of its packet, streamed instead of a bare drop_event when
 * drop_config.snaplen is set (--pcap); the record is reserved snaplen bytes long. */
struct drop_packet {
	struct drop_event ev;
	__u32 orig_len; /* bytes from the start of data[] to the end of the packet */
	__u16 caplen;   /* bytes copied into data */
	__u8 link;      /* enum drop_link */
	__u8 pad;
	__u8 data[DT_SNAPLEN_MAX];
};

/* Indexes into drop_cpu.stats. */
enum drop_stat {
	DROP_STAT_SEEN = 0,        /* kfree_skb hits handled */
	DROP_STAT_AGG_FULL,        /* aggregation map full: counted here instead of by key */
	DROP_STAT_EVENTS_SENT,     /* events handed to the ring buffer */
	DROP_STAT_EVENTS_RATELIMITED, /* events not sent: token bucket empty */
	DROP_STAT_EVENTS_RINGBUF_FULL, /* events not sent: ring buffer full (reader too slow) */
	DROP_STAT_SOCK_FULL,       /* socket-level drop not keyed by socket: sock_drops map full */
	DROP_STAT_EVENTS_FILTERED, /* events not sent: outside drop_config's filters */
	DROP_STAT_MAX,
};

#define DT_FILTER_REASONS 8
#define DT_FILTER_NETNS 4
#define DT_FILTER_IFACES 4
#define DT_FILTER_PORTS 8
#define DT_FILTER_PROTO_WORDS 4

/* Configuration of the drop programs: a volatile const global that the loader sets before
 * load, so that the verifier knows each field as a constant and removes what it turns off. */
struct drop_config {
	__u32 events;          /* 1: stream events */
	__u32 max_event_rate;  /* events per second per CPU; 0: unlimited */
	__u32 hz;              /* CONFIG_HZ, for the rate limit's jiffies clock; 0: use ns */
	__u32 filter;          /* 1: some event filter below is set */
	/* Reasons (bit n: code n, core reasons only) whose drops are also counted by local
	 * socket in sock_drops. */
	__u64 sock_reasons[DT_SOCK_REASON_WORDS];
	/* Event filters (--reason, --netns, --iface, --port, --proto): a count of 0 turns a kind
	 * off, and the verifier removes its code. Kinds are ANDed, the values of a kind ORed. */
	__u32 nreasons, nnetns, nifaces, nports;
	__u32 reasons[DT_FILTER_REASONS];
	__u32 netns[DT_FILTER_NETNS];
	struct {
		__u32 netns, ifindex;
	} ifaces[DT_FILTER_IFACES];
	__u16 ports[DT_FILTER_PORTS];
	__u32 protos_on;                         /* 1: protos is a filter */
	__u32 pad2;
	__u64 protos[DT_FILTER_PROTO_WORDS];     /* bit n: IP protocol n */
	/* Kernels without drop reasons: the functions whose drops are counted by socket, by
	 * call site; unused entries are zero. */
	struct sock_fn sock_fns[DT_SOCK_FNS];
	/* Packet bytes each event carries (struct drop_packet), at most DT_SNAPLEN_MAX; 0: none,
	 * the verifier removes the copy. */
	__u32 snaplen;
	__u32 pad3;
};

/* Per-CPU token bucket for the event stream. */
struct rate_state {
	__u64 tokens; /* in units of 1e-9 events */
	__u64 last;   /* jiffies, or ns when drop_config.hz is 0 */
};

/* One per-CPU entry of drop_percpu: the drop program's counters, cache slots and event rate
 * state in one value, so that a drop looks up one per-CPU value. */
struct drop_cpu {
	__u64 stats[DROP_STAT_MAX]; /* enum drop_stat */
	struct drop_slot slots[DT_DROP_CACHE_SLOTS];
	struct rate_state rate;
};

/* Per-CPU NET_RX softirq accounting (net_rx_action in net/core/dev.c). */
struct netrx_stats {
	__u64 runs;            /* NET_RX softirq entries seen */
	__u64 exits;           /* NET_RX softirq exits seen that closed a seen entry */
	__u64 busy_ns;         /* time between entry and exit of the runs timed one by one */
	__u64 polls;           /* napi_poll inside NET_RX */
	__u64 packets;         /* sum of napi_poll work inside NET_RX */
	__u64 budget_squeezes; /* predicted: cumulative work reached netdev_budget */
	__u64 time_squeezes;   /* predicted: jiffies reached start + netdev_budget_usecs */
	__u64 other_polls;     /* napi_poll outside NET_RX: busy polling, threaded NAPI */
	__u64 other_packets;
	__u64 max_run_ns;      /* longest timed NET_RX run */
	/* Reading the clock twice per run is most of what the accounting costs, and a CPU that
	 * runs NET_RX many times per jiffy is one under load, where that cost hurts. The first
	 * DT_TIMED_RUNS_PER_JIFFY runs of each jiffy on a CPU are timed one by one (busy_ns); beyond
	 * that one run in DT_SAMPLE_EVERY is timed and stands for the others, so userspace
	 * estimates busy time as busy_ns + sample_busy_ns * sampled_from / sample_runs. */
	__u64 timed_runs;      /* runs in busy_ns */
	__u64 sample_runs;     /* runs in sample_busy_ns */
	__u64 sample_busy_ns;
	__u64 sampled_from;    /* exits of runs past the first DT_TIMED_RUNS_PER_JIFFY of their jiffy */
	/* Runs that ended past the time limit with no squeeze predicted and budget left. Every
	 * time squeeze net_rx_action counts in a run BPF saw begin and end without predicting it
	 * is in one of these: the tick fell between the napi_poll tracepoint and the kernel's own
	 * test a few instructions later, or the run polled without the tracepoint firing. */
	__u64 time_uncertain;
	/* Time squeezes counted whose poll's jiffies was short of the latest limit net_rx_action
	 * can have used: it read jiffies somewhere between softirq_entry and the run's first poll,
	 * so its limit is up to the ticks in between later than BPF's. Nothing after a run's last
	 * poll can disprove its prediction; these are the ones that may be wrong. */
	__u64 time_unproven;
};

#define DT_TIMED_RUNS_PER_JIFFY 16
#define DT_SAMPLE_EVERY 16

/* How the run in progress is timed. */
enum netrx_timing {
	NETRX_UNTIMED = 0,
	NETRX_TIMED,
	NETRX_SAMPLED,
};

/* Per-CPU state of the NET_RX run in progress. */
struct netrx_state {
	__u64 start_ns;
	__u64 time_limit;  /* jiffies */
	__s64 budget_left;
	__u64 jiffy;       /* jiffies at the last entry */
	__u32 jiffy_runs;  /* entries during that jiffy */
	__u32 timing;      /* enum netrx_timing */
	__u32 active;
	__u32 squeezed;
	/* A time squeeze predicted at the last poll, counted at the run's exit unless a later
	 * poll of the same run shows the kernel went on (see netrx_poll). */
	__u32 time_pending;
	__u32 polled;      /* the run has had its first poll */
	__u64 limit_hi;    /* the latest limit net_rx_action can have, known from the first poll */
	__u64 pred_jiffy;  /* jiffies at the poll of the pending time squeeze */
};

/* One per-CPU entry of netrx_percpu: what the handlers count and the run they are in, in one
 * value so that each handler looks it up once. */
struct netrx_cpu {
	struct netrx_stats stats;
	struct netrx_state run;
};

/* What net_rx_action reads at its start; userspace rewrites it when netdev_budget or
 * netdev_budget_usecs change, so that a change during a session is picked up. */
struct netrx_config {
	__u32 budget;        /* net.core.netdev_budget; 0: do not predict */
	__u32 time_jiffies;  /* usecs_to_jiffies(net.core.netdev_budget_usecs) */
	__u32 usec_per_jiffy; /* USEC_PER_SEC / HZ when HZ divides it, else 0 */
	__u32 pad;
};

/* Where net_rx_action reads its limits from, learnt from the sysctl table (0: not yet). */
struct netrx_limits {
	__u64 budget_addr;   /* &netdev_budget (&net_hotdata.netdev_budget since 6.9) */
	__u64 usecs_addr;    /* &netdev_budget_usecs */
};

#endif
