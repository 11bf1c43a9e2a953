/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF host routing for IPv6 (lib/host_route.h's IPv4 path, the same contract): tortie_from_wep
 * hands an IPv6 packet its source's egress point allowed
 *  - to another workload of this node: hr6_route rewrites it as ip6_forward would (hop limit,
 *    the fib's MACs) and names the destination cali*; the entry runs the destination's IPv6
 *    to-workload point on it (its ingress policy, v6 conntrack, fragments, counters, drop reasons
 *    and events, attributed to the destination) and redirects with bpf_redirect_peer only when
 *    that point forwards;
 *  - to anything the fib routes through the uplink: to the uplink's egress (bpf_redirect with
 *    the fib's MACs, or bpf_redirect_neigh while the next hop has no neighbour entry), where the
 *    uplink's tc egress program (NAT66 for natOutgoing pools, node-socket precedence) runs on it
 *    as on every packet sent there.
 *
 * Declined (TC_ACT_OK, the packet unchanged: the kernel forwards it and tortie_to_wep enforces on
 * the destination cali*): hop limit <= 1 (the kernel sends Time Exceeded), FRAG_NEEDED (over the
 * route MTU: the kernel sends Packet Too Big with its MTU), no neighbour entry yet for a local
 * workload, link-local or multicast addresses (the fib never forwards them: NOT_FWDED), the node
 * itself, forwarding off on the cali*, any other interface. Counted in tortie_hrst_v2 at
 * TORTIE_HR_V6 + enum tortie_hr_stat, beside IPv4's.
 *
 * MTU: bpf_fib_lookup (AF_INET6) checks tot_len against the route's MTU when it is locked, a
 * path MTU the node learned for the destination (a cached exception), else the egress device's
 * IPv6 MTU; an unlocked route `mtu` below its device's is honoured by ip6_forward but not here
 * (lib/host_route.h's limit, in IPv6). A GSO packet is checked by the size of the segments it
 * will be cut into, as ip6_forward checks it.
 */
#ifndef TORTIE_LIB_HOST_ROUTE6_H
#define TORTIE_LIB_HOST_ROUTE6_H

#include "lib/host_route.h"

#ifndef AF_INET6
#define AF_INET6 10
#endif

#define HR6_L3_OFF ETH_HLEN

/* The length each packet will have on the wire (a GSO packet: one segment's), for the fib's MTU
 * check. Extension headers before a GSO payload are rare: then the whole length, which only
 * makes the path decline to the kernel. */
static __always_inline __u16 hr6_wire_len(struct __sk_buff *skb, const struct ipv6hdr *ip6)
{
	__u32 l4len = sizeof(struct udphdr);
	__u8 doff;

	if (!skb->gso_size)
		return sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (ip6->nexthdr == IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, HR6_L3_OFF + sizeof(*ip6) + 12, &doff, 1) < 0)
			return 0xffff;
		l4len = (doff >> 4) * 4;
	} else if (ip6->nexthdr != IPPROTO_UDP) {
		return 0xffff;
	}
	return sizeof(*ip6) + l4len + skb->gso_size;
}

/* Forwarding without the kernel: the hop limit (not in any checksum; skb->csum kept right for
 * CHECKSUM_COMPLETE) and, when the fib resolved the next hop, its MACs. The hop limit is written
 * in place where the header is linear (always, short of a malformed packet; lib/host_route.h's
 * unclone prologue made the head writable), and the change of its 16-bit word (next header, hop
 * limit: at an even offset from the frame's start, where skb->csum begins on tc ingress) added
 * to a CHECKSUM_COMPLETE skb->csum by bpf_csum_update (a no-op for any other skb): what
 * bpf_skb_store_bytes with BPF_F_RECOMPUTE_CSUM does, without its call, which stays the fallback. */
static __always_inline int hr6_rewrite(struct __sk_buff *skb, const struct ipv6hdr *ip6, const struct bpf_fib_lookup *fib)
{
	void *d = ctx_data(skb), *e = ctx_data_end(skb);
	struct ipv6hdr *pip6 = d + HR6_L3_OFF;
	__u8 hl = ip6->hop_limit - 1;
	__u16 old_w, new_w;

	_Static_assert(__builtin_offsetof(struct ipv6hdr, hop_limit) == __builtin_offsetof(struct ipv6hdr, nexthdr) + 1 &&
		       (HR6_L3_OFF + __builtin_offsetof(struct ipv6hdr, nexthdr)) % 2 == 0, "IPv6 header layout");
	if ((void *)(pip6 + 1) <= e) {
		__builtin_memcpy(&old_w, &pip6->nexthdr, 2);
		pip6->hop_limit = hl;
		__builtin_memcpy(&new_w, &pip6->nexthdr, 2);
		bpf_csum_update(skb, (__u32)(__u16)~old_w + new_w);
	} else if (bpf_skb_store_bytes(skb, HR6_L3_OFF + offsetof(struct ipv6hdr, hop_limit), &hl, 1, BPF_F_RECOMPUTE_CSUM) < 0) {
		return DROP_FWD_TTL;
	}
	return fib ? hr_set_macs(skb, fib->dmac, fib->smac) : 0;
}

/*
 * For an IPv6 packet (untagged, at ETH_HLEN) the source's egress point forwarded: returns the tc
 * verdict (TC_ACT_OK: the kernel's path; TC_ACT_REDIRECT: sent to the uplink) or < 0 a drop
 * reason (a rewrite failed). *local is set to the destination cali*'s ifindex (*local_ep to its
 * endpoint entry) when the destination is a workload of this node: the packet is then rewritten
 * as forwarded and the caller runs the destination's IPv6 point, then hr_redirect(*local,
 * TORTIE_HR_V6).
 */
static __always_inline int hr6_route(struct __sk_buff *skb, struct hr_dst *h, __u32 *local, const struct tortie_endpoint **local_ep, bool *via_fib)
{
	const struct tortie_netcfg *cfg;
	const struct tortie_endpoint *ep;
	const struct tortie_ep_dst *d;
	struct bpf_fib_lookup fib = {};
	struct ipv6hdr ip6;
	__u32 out;
	long rc;
	int ret;

	if (!host_routing)
		return TC_ACT_OK;
	if (hr_load_l3(skb, &ip6) < 0)
		return TC_ACT_OK;
	/* A local workload by its address, without the fib (lib/host_route.h's hr_local; the lookup
	 * is hr_dst_find's, shared with the source's point). */
	if (ip6.hop_limit > 1) {
		ep = hr_dst_find(skb, &ip6.daddr, true, h);
		d = h->d;
		if (ep && d) {
			ret = hr6_rewrite(skb, &ip6, NULL);
			if (ret < 0)
				return ret;
			ret = hr_set_macs(skb, d->mac, d->host_mac);
			if (ret < 0)
				return ret;
			*local = d->ifindex;
			*local_ep = ep;
			return TC_ACT_OK;
		}
	}
	fib.family = AF_INET6;
	/* Traffic class and flow label, as ip6_forward's route lookup sees them (fib rules). */
	fib.flowinfo = *(__be32 *)&ip6 & bpf_htonl(0x0fffffff);
	fib.l4_protocol = ip6.nexthdr;
	fib.tot_len = hr6_wire_len(skb, &ip6);
	fib.ifindex = skb->ifindex;
	__builtin_memcpy(fib.ipv6_src, &ip6.saddr, sizeof(fib.ipv6_src));
	__builtin_memcpy(fib.ipv6_dst, &ip6.daddr, sizeof(fib.ipv6_dst));
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	/* NOT_FWDED (the node, link-local, multicast), FWD_DISABLED, FRAG_NEEDED (fib.mtu_result
	 * shares fib.tot_len: the kernel answers Packet Too Big), ... */
	out = fib.ifindex;
	if (out == skb->ifindex || (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH))
		return TC_ACT_OK;
	ep = bpf_map_lookup_elem(&tortie_ep_v1, &out);
	if (ep) {
		if (rc != BPF_FIB_LKUP_RET_SUCCESS || ip6.hop_limit <= 1) {
			hr_count(TORTIE_HR_V6 + TORTIE_HR_DECLINED);
			return TC_ACT_OK;
		}
		ret = hr6_rewrite(skb, &ip6, &fib);
		if (ret < 0)
			return ret;
		*local = out;
		*local_ep = ep;
		*via_fib = true;
		return TC_ACT_OK;
	}
	/* Leaving the node: only through the uplink (tortie_netcfg_v1 names it in either family). */
	cfg = netcfg_get();
	if (!cfg || out != cfg->uplink_ifindex)
		return TC_ACT_OK;
	if (ip6.hop_limit <= 1) {
		hr_count(TORTIE_HR_V6 + TORTIE_HR_DECLINED);
		return TC_ACT_OK;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* The kernel resolves the next hop (neighbour discovery) and queues the packet meanwhile. */
		ret = hr6_rewrite(skb, &ip6, NULL);
		if (ret < 0)
			return ret;
		hr_count(TORTIE_HR_V6 + TORTIE_HR_UPLINK_NEIGH);
		return bpf_redirect_neigh(out, NULL, 0, 0);
	}
	ret = hr6_rewrite(skb, &ip6, &fib);
	if (ret < 0)
		return ret;
	hr_count(TORTIE_HR_V6 + TORTIE_HR_UPLINK);
	return bpf_redirect(out, 0);
}

#endif
