/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Uplink XDP prefilter: drops packets whose source or destination is deny-listed (or matches
 * a doNotTrack deny rule) before an skb exists. Stateless. Non-IPv4 frames pass (the uplink
 * carries ARP, LLDP, ...); malformed IPv4 headers are dropped here, the stack would drop them
 * anyway. Up to two VLAN tags are parsed.
 */
#define TORTIE_CTX_XDP
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/prefilter.h"
#include "lib/drop.h"

/* 1: count passed packets too (one per-CPU hash update per packet); 0: only drops. */
const volatile __u32 count_passed = 1;

SEC("xdp")
int tortie_xdp_prefilter(struct xdp_md *ctx)
{
	struct tortie_pkt pkt = {};
	__u32 ifindex = ctx->ingress_ifindex, rule = 0;
	int ret = parse_packet(ctx, &pkt, true, false);

	if (ret == PARSE_ARP || ret == DROP_UNSUPPORTED_L3) {
		ret = TORTIE_FORWARD;
		goto out;
	}
	if (ret < 0)
		goto out;
	ret = prefilter_check(&pkt, &rule);
	if (ret < 0)
		emit_event(TORTIE_EV_PREFILTER, ifindex, 0, TORTIE_DIR_UPLINK, rule, ret, &pkt);
	else
		ret = TORTIE_FORWARD;
out:
	if (ret < 0 || count_passed)
		count_packet(ifindex, TORTIE_DIR_UPLINK, ret, ctx->data_end - ctx->data);
	return ret < 0 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
