/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host endpoint programs for host interfaces other than the uplink (whose programs call the
 * same lib/hostep.h): tc ingress tortie_hep_in, tc egress tortie_hep_out. The agent attaches
 * them to the interfaces host endpoints name and, when a `*` host endpoint exists, to every
 * interface of the node that is not a workload's. Untagged IPv4 and IPv6 are policed (each family
 * in a frame of its own: hep_process6); everything else passes. One exit per program: a DROP_* reason becomes TC_ACT_SHOT and a counter
 * (TORTIE_DIR_UPLINK: the host side).
 */
#define TORTIE_CTX_SKB
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/drop.h"
#include "lib/hostep.h"
#include "shared/btf-anchor.h"

/* An IPv6 packet: parsed into a per-CPU slot (lib/hostep.h hep6_slot). A malformed one is dropped
 * where a host endpoint applies, as IPv4's; on an interface without one it passes. */
static __noinline int hep_process6(struct __sk_buff *skb, bool ingress)
{
	struct tortie_pkt *pkt = hep6_slot(NULL);
	__u32 ifindex = skb->ifindex, len = skb->len;
	int ret = TORTIE_FORWARD;

	if (pkt) {
		ret = hep6_parse(skb, pkt);
		ret = hep6_point(skb, pkt, ret, ingress, false);
	}
	count_packet(ifindex, TORTIE_DIR_UPLINK, ret, len);
	return ret < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

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

/* Each family in a frame of its own (the verifier bounds a call chain's stack at 512 bytes). */
static __noinline int hep_process4_in(struct __sk_buff *skb)
{
	return hep_process(skb, true);
}

static __noinline int hep_process4_out(struct __sk_buff *skb)
{
	return hep_process(skb, false);
}

SEC("tc")
int tortie_hep_in(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_IPV6) ? hep_process6(skb, true) : hep_process4_in(skb);
}

SEC("tc")
int tortie_hep_out(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_IPV6) ? hep_process6(skb, false) : hep_process4_out(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
