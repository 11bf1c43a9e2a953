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

/*
 * Per-endpoint event budget (docs/security.md, "Event budgets"): a token bucket per (endpoint interface, CPU).
 * One event costs ep_event_cost_ns of credit; credit refills at 1 ns per ns up to
 * ep_event_burst_ns (so: 1e9 / cost events per second per CPU, bursts of burst / cost). Over
 * budget, nothing goes to the ring: the would-be events are counted in the endpoint's
 * `suppressed` (the aggregate the agent exports), and the per-flow suppression map is not
 * touched either, so a flood of new tuples costs one per-CPU lookup per packet here.
 * The loader derives both from events-per-second and burst; cost 0 = no budget.
 */
const volatile __u64 ep_event_cost_ns = 20000000ULL;    /* 50 events/s per CPU */
const volatile __u64 ep_event_burst_ns = 2000000000ULL; /* bursts of 100 */

/*
 * tortie_evbud_v1: ifindex -> per-CPU struct tortie_evbud (bucket + emitted/suppressed/lost
 * counts). Written by the programs, read (summed over CPUs) by the agent for metrics. LRU: an
 * evicted endpoint starts again with a full bucket and zero counts (the agent's totals only
 * grow: it keeps what it read, see src/dataplane/bpf/observe.ts EventBudgetReader).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, __u32);
	__type(value, struct tortie_evbud);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_evbud_v1 SEC(".maps");

static __always_inline struct tortie_evbud *ev_budget_get(__u32 ifindex)
{
	struct tortie_evbud *b = bpf_map_lookup_elem(&tortie_evbud_v1, &ifindex);
	struct tortie_evbud init = {};

	if (b)
		return b;
	bpf_map_update_elem(&tortie_evbud_v1, &ifindex, &init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tortie_evbud_v1, &ifindex);
}

/*
 * n events for endpoint `ifindex`: true if its budget on this CPU covers them. take: consume
 * the credit and count them emitted; otherwise only look (a false answer still counts them
 * suppressed, as the caller will not emit them).
 */
static __always_inline bool ev_budget(__u32 ifindex, __u32 n, bool take)
{
	struct tortie_evbud *b;
	__u64 now, delta, cost;

	if (!events_enabled)
		return false;
	if (!ep_event_cost_ns || !n)
		return true;
	b = ev_budget_get(ifindex);
	if (!b)
		return false;
	now = bpf_ktime_get_ns();
	/* Refill (tokens <= burst always). last_ns 0 = new on this CPU: a full bucket. */
	delta = now > b->last_ns ? now - b->last_ns : 0;
	if (!b->last_ns || b->tokens > ep_event_burst_ns || delta >= ep_event_burst_ns - b->tokens)
		b->tokens = ep_event_burst_ns;
	else
		b->tokens += delta;
	b->last_ns = now;
	cost = (__u64)n * ep_event_cost_ns;
	if (b->tokens < cost) {
		b->suppressed += n;
		return false;
	}
	if (take) {
		b->tokens -= cost;
		b->emitted += n;
	}
	return true;
}

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
	if (!e) {
		/* Ring full (the agent is behind): the loss is counted on the endpoint. */
		struct tortie_evbud *b = ev_budget_get(ifindex);

		if (b)
			b->lost++;
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = kind;
	e->ifindex = ifindex;
	e->ep_id = ep_id;
	e->rule = rule;
	e->reason = reason;
	e->dir = dir;
	e->proto = pkt->proto;
	e->sport = pkt->sport;
	e->dport = pkt->dport;
	if (pkt->family == 6) {
		e->family = TORTIE_AF_INET6;
		__builtin_memcpy(e->saddr, pkt->saddr6, 16);
		__builtin_memcpy(e->daddr, pkt->daddr6, 16);
	} else {
		e->family = TORTIE_AF_INET;
		__builtin_memcpy(e->saddr, &pkt->saddr, 4);
		__builtin_memcpy(e->daddr, &pkt->daddr, 4);
	}
	bpf_ringbuf_submit(e, 0);
}

#endif
