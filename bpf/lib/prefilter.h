/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stateless prefilter for the uplink XDP program: deny-listed CIDRs and doNotTrack deny rules
 * (compiled to CIDRs by the agent), matched on source or destination address, before an skb
 * exists. Two LPM lookups per IPv4 or IPv6 packet (tortie_pf4_v1 / tortie_pf6_v1 by the
 * packet's family), two more for the inner header of IPIP or VXLAN (an IPv4 or IPv6 inner
 * packet, inside an IPv4 or IPv6 outer one).
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

/* tortie_pf6_v1: (side, IPv6 prefix) -> struct tortie_pf_value, as tortie_pf4_v1. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_pf6_key);
	__type(value, struct tortie_pf_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_pf6_v1 SEC(".maps");

/* addr: the address (IPv4: its first word); v6: look it up in tortie_pf6_v1. */
static __always_inline int prefilter_one(__u8 side, const __be32 *addr, bool v6, __u32 *rule)
{
	struct tortie_pf4_key k = { .prefixlen = TORTIE_PF_FIXED_BITS + 32, .side = side, .addr = addr[0] };
	struct tortie_pf6_key k6 = { .prefixlen = TORTIE_PF_FIXED_BITS + 128, .side = side };
	struct tortie_pf_value *v;

	if (v6) {
		__builtin_memcpy(k6.addr, addr, 16);
		v = bpf_map_lookup_elem(&tortie_pf6_v1, &k6);
	} else {
		v = bpf_map_lookup_elem(&tortie_pf4_v1, &k);
	}

	if (!v)
		return 0;
	*rule = v->rule;
	return v->kind == TORTIE_PF_KIND_DNT ? DROP_DNT_DENY : DROP_PREFILTER;
}

/* 0 to pass, or DROP_PREFILTER / DROP_DNT_DENY with *rule set. */
static __always_inline int prefilter_check(const struct tortie_pkt *pkt, __u32 *rule)
{
	bool v6 = pkt->family == 6;
	int r = prefilter_one(TORTIE_PF_SRC, pkt->saddr6, v6, rule);

	if (r)
		return r;
	return prefilter_one(TORTIE_PF_DST, pkt->daddr6, v6, rule);
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

	if (outer->family != 4 || outer->proto != IPPROTO_IPIP || outer->frag != TORTIE_FRAG_NONE)
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
	inner->family = 4;
	inner->saddr = iip->saddr;
	inner->daddr = iip->daddr;
	inner->proto = iip->protocol;
	return true;
}

/* An inner Ethernet frame at `ieth` (of a VXLAN payload ending at `dend`): fills *inner with an
 * IPv4 or IPv6 header's addresses and protocol; false if it holds neither whole. */
static __always_inline bool prefilter_inner_frame(struct ethhdr *ieth, void *dend, void *end, struct tortie_pkt *inner)
{
	struct iphdr *iip = (void *)(ieth + 1);
	struct ipv6hdr *iip6 = (void *)(ieth + 1);

	if ((void *)(iip + 1) > end || (void *)(iip + 1) > dend)
		return false;
	__builtin_memset(inner, 0, sizeof(*inner));
	if (ieth->h_proto == bpf_htons(ETH_P_IP) && iip->version == 4) {
		inner->family = 4;
		inner->saddr = iip->saddr;
		inner->daddr = iip->daddr;
		inner->proto = iip->protocol;
		return true;
	}
	if (ieth->h_proto != bpf_htons(ETH_P_IPV6) || (void *)(iip6 + 1) > end || (void *)(iip6 + 1) > dend ||
	    iip6->version != 6)
		return false;
	inner->family = 6;
	__builtin_memcpy(inner->saddr6, &iip6->saddr, 16);
	__builtin_memcpy(inner->daddr6, &iip6->daddr, 16);
	inner->proto = iip6->nexthdr;
	return true;
}

/*
 * VXLAN likewise (lib/vxlan.h decapsulates UDP to this node's VXLAN port while VXLAN is on):
 * a whole outer datagram to the VXLAN port whose inner Ethernet frame carries a complete IPv4 or
 * IPv6 header fills *inner. The outer destination is not compared with the node address (XDP does
 * not read the routing config): judging VXLAN that is not for this node costs nothing, as the
 * kernel would only forward it. Anything else returns false (tc drops malformed VXLAN itself).
 * An IPv6 outer datagram (Calico's VXLAN over IPv6) is read when UDP follows its fixed header
 * directly (no extension headers: the XDP parse does not walk them).
 */
static __always_inline bool prefilter_vxlan_inner(struct xdp_md *ctx, const struct tortie_pkt *outer,
						  struct tortie_pkt *inner)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx), *dend;
	const struct tortie_vxlan_cfg *vx;
	struct ipv6hdr *ip6;
	struct ethhdr *ieth;
	struct udphdr *udp;
	struct iphdr *ip;
	__u32 hlen, tot;

	if (outer->proto != IPPROTO_UDP || outer->frag != TORTIE_FRAG_NONE)
		return false;
	vx = vxcfg_get();
	if (!vx)
		return false;
	if (outer->family == 6) {
		ip6 = data + (outer->l3_off & 0x1f);
		if ((void *)(ip6 + 1) > end)
			return false;
		udp = (void *)(ip6 + 1);
		dend = (void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len);
	} else {
		ip = data + (outer->l3_off & 0x1f); /* 14, 18 or 22 (parse_packet); the mask bounds it */
		if ((void *)(ip + 1) > end)
			return false;
		hlen = ip->ihl * 4;
		tot = bpf_ntohs(ip->tot_len);
		if (hlen < sizeof(*ip) || hlen > 60 || tot < hlen)
			return false;
		udp = (void *)ip + hlen; /* the XDP parse reads no ports */
		dend = (void *)ip + tot;
	}
	ieth = (void *)(udp + 1) + 8;
	if ((void *)(ieth + 1) > end || udp->dest != bpf_htons((__u16)vx->port))
		return false;
	return prefilter_inner_frame(ieth, dend, end, inner);
}

/*
 * IPv6 (parse_packet leaves it to this: its extension-header walk is tc's): the fixed header's
 * addresses, after up to two VLAN tags as parse_packet. 1: an IPv6 packet, *pkt filled (family 6,
 * addresses, next header as proto, l3_off; fragments are not looked for: only addresses are
 * judged); 0: not IPv6 or a header shorter than 40 bytes (the stack drops those).
 */
static __always_inline int prefilter_parse6(struct xdp_md *ctx, struct tortie_pkt *pkt)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	__u32 off = sizeof(*eth);
	__be16 proto;

	if ((void *)(eth + 1) > end)
		return 0;
	proto = eth->h_proto;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
			struct vlan_hdr_t *vh = data + off;

			if ((void *)(vh + 1) > end)
				return 0;
			proto = vh->encap_proto;
			off += sizeof(*vh);
		}
	}
	if (proto != bpf_htons(ETH_P_IPV6))
		return 0;
	ip6 = data + off;
	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return 0;
	__builtin_memset(pkt, 0, sizeof(*pkt));
	pkt->family = 6;
	pkt->l3_off = off;
	__builtin_memcpy(pkt->saddr6, &ip6->saddr, 16);
	__builtin_memcpy(pkt->daddr6, &ip6->daddr, 16);
	pkt->proto = ip6->nexthdr;
	return 1;
}
#endif

#endif
