/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stateless prefilter for the uplink XDP program: deny-listed CIDRs and doNotTrack deny rules
 * (compiled to CIDRs by the agent), matched on source or destination address, before an skb
 * exists. Two LPM lookups per IPv4 packet, two more for the inner header of IPIP or VXLAN.
 */
#ifndef TORTIE_LIB_PREFILTER_H
#define TORTIE_LIB_PREFILTER_H

#include "lib/parse.h"
#include "lib/vxcfg.h"

/* tortie_pf4_v1: (side, IPv4 prefix) -> struct tortie_pf_value. Agent-written (prefilter
 * manager); read by the XDP program. Full: agent error, the entry is not added. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_pf4_key);
	__type(value, struct tortie_pf_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_pf4_v1 SEC(".maps");

static __always_inline int prefilter_one(__u8 side, __be32 addr, __u32 *rule)
{
	struct tortie_pf4_key k = { .prefixlen = TORTIE_PF_FIXED_BITS + 32, .side = side, .addr = addr };
	struct tortie_pf_value *v = bpf_map_lookup_elem(&tortie_pf4_v1, &k);

	if (!v)
		return 0;
	*rule = v->rule;
	return v->kind == TORTIE_PF_KIND_DNT ? DROP_DNT_DENY : DROP_PREFILTER;
}

/* 0 to pass, or DROP_PREFILTER / DROP_DNT_DENY with *rule set. */
static __always_inline int prefilter_check(const struct tortie_pkt *pkt, __u32 *rule)
{
	int r = prefilter_one(TORTIE_PF_SRC, pkt->saddr, rule);

	if (r)
		return r;
	return prefilter_one(TORTIE_PF_DST, pkt->daddr, rule);
}

#ifdef TORTIE_CTX_XDP
/*
 * IPIP (docs/security.md, "Encapsulated traffic"): the uplink decapsulates IPIP from other nodes (lib/ipip.h), so the
 * inner packet is what reaches the workloads, and the deny list must hold for it as for a packet
 * that arrives directly. Fills *inner with the inner header's addresses and protocol when the
 * outer datagram (a whole one: outer fragments are never decapsulated) holds a complete inner
 * IPv4 header; returns false otherwise (the uplink's tc program drops such IPIP, or the kernel
 * forwards IPIP that is not for this node: neither delivers an inner packet here).
 * Bounds are the outer datagram's (its total length), not the frame's: padding is not inner data.
 */
static __always_inline bool prefilter_ipip_inner(struct xdp_md *ctx, const struct tortie_pkt *outer,
						 struct tortie_pkt *inner)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	struct iphdr *ip, *iip;
	__u32 hlen, tot;

	if (outer->proto != IPPROTO_IPIP || outer->frag != TORTIE_FRAG_NONE)
		return false;
	ip = data + (outer->l3_off & 0x1f); /* 14, 18 or 22 (parse_packet); the mask bounds it */
	if ((void *)(ip + 1) > end)
		return false;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (hlen < sizeof(*ip) || hlen > 60 || tot < hlen + sizeof(*iip))
		return false;
	iip = (void *)ip + hlen;
	if ((void *)(iip + 1) > end || iip->version != 4)
		return false;
	__builtin_memset(inner, 0, sizeof(*inner));
	inner->saddr = iip->saddr;
	inner->daddr = iip->daddr;
	inner->proto = iip->protocol;
	return true;
}

/*
 * VXLAN likewise (lib/vxlan.h decapsulates UDP to this node's VXLAN port while VXLAN is on):
 * a whole outer datagram to the VXLAN port whose inner Ethernet frame carries a complete IPv4
 * header fills *inner. The outer destination is not compared with the node address (XDP does
 * not read the routing config): judging VXLAN that is not for this node costs nothing, as the
 * kernel would only forward it. Anything else returns false (tc drops malformed VXLAN itself).
 */
static __always_inline bool prefilter_vxlan_inner(struct xdp_md *ctx, const struct tortie_pkt *outer,
						  struct tortie_pkt *inner)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	const struct tortie_vxlan_cfg *vx;
	struct iphdr *ip, *iip;
	struct ethhdr *ieth;
	struct udphdr *udp;
	__u32 hlen, tot;

	if (outer->proto != IPPROTO_UDP || outer->frag != TORTIE_FRAG_NONE)
		return false;
	vx = vxcfg_get();
	if (!vx)
		return false;
	ip = data + (outer->l3_off & 0x1f);
	if ((void *)(ip + 1) > end)
		return false;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (hlen < sizeof(*ip) || hlen > 60 || tot < hlen + 8 + 8 + sizeof(*ieth) + sizeof(*iip))
		return false;
	udp = (void *)ip + hlen; /* the XDP parse reads no ports */
	ieth = (void *)(udp + 1) + 8;
	iip = (void *)(ieth + 1);
	if ((void *)(iip + 1) > end || udp->dest != bpf_htons((__u16)vx->port) ||
	    ieth->h_proto != bpf_htons(ETH_P_IP) || iip->version != 4)
		return false;
	__builtin_memset(inner, 0, sizeof(*inner));
	inner->saddr = iip->saddr;
	inner->daddr = iip->daddr;
	inner->proto = iip->protocol;
	return true;
}
#endif

#endif
