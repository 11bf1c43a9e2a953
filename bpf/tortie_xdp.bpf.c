/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Uplink XDP prefilter: drops packets whose source or destination is deny-listed (or matches
 * a doNotTrack deny rule) before an skb exists. Stateless. IPv4 and IPv6 are judged (IPv6 by its
 * fixed header's addresses: lib/prefilter.h prefilter_parse6); other frames pass (the uplink
 * carries ARP, LLDP, ...); malformed IPv4 headers are dropped here, the stack would drop them
 * anyway. Up to two VLAN tags are parsed. IPIP and VXLAN are also judged by their inner
 * addresses (the uplink decapsulates them: lib/prefilter.h prefilter_ipip_inner,
 * prefilter_vxlan_inner); the drop reason is the same and the event carries the inner addresses.
 */
#define TORTIE_CTX_XDP
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/prefilter.h"
#include "lib/drop.h"

/* 1: count passed packets too (one per-CPU hash update per packet); 0: only drops. */
const volatile __u32 count_passed = 1;

/*
 * Prefilter events are a sample for flow logs, not a record of a flood (the counters are the
 * record): at most this many per CPU per second; 0 = none. Every event costs a ring-buffer
 * reserve/submit and a wake-up, which under a flood was ~5x the cost of the drop itself.
 */
const volatile __u32 prefilter_events_per_sec = 100;

struct pf_budget {
	__u64 window_ns;
	__u32 sent;
	__u32 pad;
};

/* tortie_pfbud_v1: per-CPU event budget of the current one-second window. Program-private. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct pf_budget);
	__uint(max_entries, 1);
} tortie_pfbud_v1 SEC(".maps");

static __always_inline bool prefilter_event_due(void)
{
	__u32 zero = 0;
	struct pf_budget *b;
	__u64 now;

	if (!prefilter_events_per_sec)
		return false;
	b = bpf_map_lookup_elem(&tortie_pfbud_v1, &zero);
	if (!b)
		return false;
	now = bpf_ktime_get_ns();
	if (now - b->window_ns >= 1000000000ULL) {
		b->window_ns = now;
		b->sent = 0;
	}
	if (b->sent >= prefilter_events_per_sec)
		return false;
	b->sent++;
	return true;
}

SEC("xdp")
int tortie_xdp_prefilter(struct xdp_md *ctx)
{
	struct tortie_pkt pkt = {}, inner, *ev = &pkt;
	__u32 ifindex = ctx->ingress_ifindex, rule = 0;
	int ret = parse_packet(ctx, &pkt, true, false);

	if (ret == DROP_UNSUPPORTED_L3 && prefilter_parse6(ctx, &pkt))
		ret = PARSE_IPV6;
	if (ret == PARSE_ARP || ret == DROP_UNSUPPORTED_L3) {
		ret = TORTIE_FORWARD;
		goto out;
	}
	if (ret < 0)
		goto out;
	ret = prefilter_check(&pkt, &rule);
	/* Encapsulated traffic meets the same deny list with its inner addresses. */
	if (ret == 0 && (prefilter_ipip_inner(ctx, &pkt, &inner) || prefilter_vxlan_inner(ctx, &pkt, &inner))) {
		ret = prefilter_check(&inner, &rule);
		if (ret < 0)
			ev = &inner;
	}
	if (ret < 0) {
		if (prefilter_event_due())
			emit_event(TORTIE_EV_PREFILTER, ifindex, 0, TORTIE_DIR_UPLINK, rule, ret, ev);
	} else
		ret = TORTIE_FORWARD;
out:
	if (ret < 0 || count_passed)
		count_packet(ifindex, TORTIE_DIR_UPLINK, ret, ctx->data_end - ctx->data);
	return ret < 0 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
