/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Uplink tc ingress: extension point for the networking issue (IPIP decapsulation from known
 * nodes, reverse SNAT, delivery). Today it passes everything and counts it, so the agent's
 * attach/detach path and the counters can be exercised before that work lands.
 */
#define TORTIE_CTX_SKB
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/drop.h"

SEC("tc")
int tortie_uplink_in(struct __sk_buff *skb)
{
	count_packet(skb->ifindex, TORTIE_DIR_UPLINK, TORTIE_FORWARD, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
