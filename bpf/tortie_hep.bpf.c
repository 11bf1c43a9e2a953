/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host endpoint programs for host interfaces other than the uplink (whose programs call the
 * same lib/hostep.h): tc ingress tortie_hep_in, tc egress tortie_hep_out. The agent attaches
 * them to the interfaces host endpoints name and, when a `*` host endpoint exists, to every
 * interface of the node that is not a workload's. Untagged IPv4 is policed; everything else
 * passes. One exit per program: a DROP_* reason becomes TC_ACT_SHOT and a counter
 * (TORTIE_DIR_UPLINK: the host side).
 */
#define TORTIE_CTX_SKB
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/drop.h"
#include "lib/hostep.h"
#include "shared/btf-anchor.h"

static __always_inline int hep_process(struct __sk_buff *skb, bool ingress)
{
	struct tortie_pkt pkt = {};
	__u32 ifindex = skb->ifindex, len = skb->len, l4off = 0;
	int ret = host_parse(skb, &pkt, &l4off);

	if (ret > 0)
		ret = ingress ? hep_ingress(skb, &pkt, false) : hep_egress(skb, &pkt);
	count_packet(ifindex, TORTIE_DIR_UPLINK, ret, len);
	return ret < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int tortie_hep_in(struct __sk_buff *skb)
{
	return hep_process(skb, true);
}

SEC("tc")
int tortie_hep_out(struct __sk_buff *skb)
{
	return hep_process(skb, false);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
