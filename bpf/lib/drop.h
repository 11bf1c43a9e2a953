/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Observability: per-CPU counters per (ifindex, direction, reason) and the event ring
 * buffer. Entry programs call these once, at their single exit; lib code only returns
 * DROP_* reasons (shared/drop.h).
 */
#ifndef TORTIE_LIB_DROP_H
#define TORTIE_LIB_DROP_H

#include "lib/parse.h"

/* Load-time switch: 0 disables ring-buffer events (counters always run). */
const volatile __u32 events_enabled = 1;

/*
 * tortie_cnt_v1: (ifindex, dir, reason) -> per-CPU {packets, bytes}; reason 0 = forwarded.
 * Written by every program; read (summed over CPUs) by the agent for metrics. Full map:
 * new keys are not counted (the agent exports that as a metric); existing ones still are.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct tortie_cnt_key);
	__type(value, struct tortie_cnt_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_cnt_v1 SEC(".maps");

/*
 * tortie_evt_v1: ring buffer of struct tortie_event (denied new flows, Log rule hits,
 * prefilter drops). Written by the programs, consumed by the agent. Full: the event is lost
 * (the counters still count the packet).
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_evt_v1 SEC(".maps");

/* A denied flow is reported once per this interval (its retransmissions are not). */
const volatile __u64 deny_report_interval_ns = 1000000000ULL;

/*
 * tortie_evsup_v1: (flow, ifindex, dir) -> __u64 ns of the last deny report for that flow.
 * Written and read by the workload programs only. LRU: a full map forgets old flows, which
 * then get reported again (more events, never fewer).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tortie_evsup_key);
	__type(value, __u64);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_evsup_v1 SEC(".maps");

/* True the first time a denied flow is seen in an interval (then its events are emitted). */
static __always_inline bool deny_report_due(const struct tortie_ct4_key *flow, __u32 ifindex, __u8 dir)
{
	struct tortie_evsup_key k = { .ifindex = ifindex, .dir = dir };
	__u64 now = bpf_ktime_get_ns(), *last;

	if (!events_enabled)
		return false;
	__builtin_memcpy(&k.flow, flow, sizeof(k.flow));
	last = bpf_map_lookup_elem(&tortie_evsup_v1, &k);
	if (last && now >= *last && now - *last < deny_report_interval_ns)
		return false;
	bpf_map_update_elem(&tortie_evsup_v1, &k, &now, BPF_ANY);
	return true;
}

static __always_inline void count_packet(__u32 ifindex, __u8 dir, int reason, __u32 len)
{
	struct tortie_cnt_key k = { .ifindex = ifindex, .dir = dir, .reason = (__s16)reason };
	struct tortie_cnt_value *c = bpf_map_lookup_elem(&tortie_cnt_v1, &k);

	if (c) {
		c->packets++;
		c->bytes += len;
		return;
	}
	struct tortie_cnt_value init = { .packets = 1, .bytes = len };

	bpf_map_update_elem(&tortie_cnt_v1, &k, &init, BPF_NOEXIST);
}

static __always_inline void emit_event(__u32 kind, __u32 ifindex, __u32 ep_id, __u8 dir, __u32 rule,
				       int reason, const struct tortie_pkt *pkt)
{
	struct tortie_event *e;

	if (!events_enabled)
		return;
	e = bpf_ringbuf_reserve(&tortie_evt_v1, sizeof(*e), 0);
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = kind;
	e->ifindex = ifindex;
	e->ep_id = ep_id;
	e->rule = rule;
	e->reason = reason;
	e->dir = dir;
	e->family = TORTIE_AF_INET;
	e->proto = pkt->proto;
	e->sport = pkt->sport;
	e->dport = pkt->dport;
	__builtin_memcpy(e->saddr, &pkt->saddr, 4);
	__builtin_memcpy(e->daddr, &pkt->daddr, 4);
	bpf_ringbuf_submit(e, 0);
}

#endif
