/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF host routing from a workload: tortie_from_wep hands a packet its source's egress point
 * allowed
 *  - to another workload of this node straight into that workload's namespace with
 *    bpf_redirect_peer, skipping the kernel's forwarding path and the destination cali*'s own
 *    transmit (and so its tc egress hook, where tortie_to_wep runs); the workload is found by its
 *    address (tortie_epdst_v1, lib/endpoint.h: its cali* and MACs, no fib lookup) where the agent
 *    knows its MAC, else by the fib;
 *  - to anything the fib routes through the uplink straight to the uplink's egress (bpf_redirect
 *    with the fib's MACs, or bpf_redirect_neigh while the next hop is unresolved), skipping the
 *    kernel's forwarding path but not the uplink's tc egress program (SNAT, node-socket
 *    precedence), which every packet sent on the uplink passes.
 *
 * Contract with the entry (tortie_wep.bpf.c): hr_route only prepares the packet as the kernel
 * would have forwarded it (TTL decremented, the fib's MACs) and names the destination cali*; the
 * entry then runs the destination's to-workload stage itself (its ingress policy, conntrack,
 * fragments, counters, drop reasons and events, all attributed to the destination endpoint, the
 * very code tortie_to_wep runs, given the source stage's parse and conntrack entry so that
 * neither is done twice) and redirects to the peer only when that stage forwards. So nothing a
 * peer-redirected packet passes depends on the destination's tc hook.
 *
 * bpf_redirect_peer is valid only from tc ingress (tortie_from_wep's hook: the host side of the
 * source's veth), towards a veth whose peer sits in another namespace (every workload's).
 * The path declines (TC_ACT_OK: the kernel forwards, and tortie_to_wep enforces on the
 * destination cali* as without host routing) whenever the fib lookup is not a clean success to a
 * tortie endpoint or the uplink (no neighbour entry yet for a workload, too big for the route
 * MTU, the node itself, another interface), or the TTL would expire (the kernel answers
 * time-exceeded).
 *
 * Limit: bpf_fib_lookup checks a packet against the egress device's MTU, or a route's MTU only
 * when it is locked (`mtu lock`), where the kernel's forwarding honours any route MTU. tortie's
 * own routes without IPIP carry none (and IPIP routes are left to lib/ipip.h and the kernel);
 * an operator's route with an unlocked MTU below its device's would not produce frag-needed here.
 *
 * host_routing is a load-time constant set by the loader (src/dataplane/bpf/loader.ts): 0 keeps
 * the kernel path; the loader sets 1 only after probing that the kernel accepts the helpers
 * (a program calling bpf_redirect_peer / bpf_redirect_neigh / bpf_check_mtu only verifies where
 * the kernel has them: 5.12+, for bpf_check_mtu).
 */
#ifndef TORTIE_LIB_HOST_ROUTE_H
#define TORTIE_LIB_HOST_ROUTE_H

#include "lib/parse.h"
#include "lib/endpoint.h"
#include "lib/ipip.h"
#include "lib/route.h"

const volatile __u32 host_routing = 0;

/* Index of tortie_hrst_v2. */
enum tortie_hr_stat {
	TORTIE_HR_PEER = 0,     /* redirected into the destination workload (its stage forwarded) */
	TORTIE_HR_DECLINED = 1, /* for a local workload or the uplink, but left to the kernel (neighbour, TTL) */
	TORTIE_HR_UPLINK = 2,   /* redirected to the uplink's egress, next hop resolved by the fib */
	TORTIE_HR_UPLINK_NEIGH = 3, /* redirected to the uplink with bpf_redirect_neigh (no neighbour entry yet) */
	TORTIE_HR_PEER_FIB = 4, /* of TORTIE_HR_PEER, those whose destination the fib found (not tortie_epdst_v1) */
	TORTIE_HR_V6 = 5,       /* IPv6's counters (lib/host_route6.h): TORTIE_HR_V6 + each of the above */
	TORTIE_HR_MAX = 10,     /* the pinned map's size (IPv4's five, IPv6's five) */
};

/*
 * tortie_hrst_v2: per-CPU array of __u64 packet counts, index enum tortie_hr_stat. Written by
 * tortie_from_wep; read by tests (loader.ts readHostRouteStats). Only this object has it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, TORTIE_HR_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_hrst_v2 SEC(".maps");

static __always_inline void hr_count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&tortie_hrst_v2, &idx);

	if (c)
		*c += 1;
}

/*
 * The rewrite is written in place with direct packet access where the parse left the headers
 * linear (always, short of a malformed packet), else with bpf_skb_store_bytes. Direct writes make
 * the verifier add an unclone prologue to tortie_from_wep: a cloned skb (TCP's transmitted ones)
 * has its head made writable first, by bpf_skb_pull_data(skb, 0) = skb_ensure_writable over the
 * linear part, which copies nothing where the clone's header part is its own (TCP releases the
 * header of what it clones; its payload is in page fragments), as bpf_skb_store_bytes's own
 * skb_ensure_writable did for the 26 bytes; the kernel's forwarding (skb_cow in ip_forward)
 * copies the head of every cloned skb it forwards.
 */

/* The next hop's MACs (the fib's, or a local workload's from tortie_epdst_v1) into the Ethernet
 * header (both families). */
static __always_inline int hr_set_macs(struct __sk_buff *skb, const __u8 *dmac, const __u8 *smac)
{
	void *d = ctx_data(skb), *e = ctx_data_end(skb);
	__u8 macs[2 * ETH_ALEN];

	if (d + 2 * ETH_ALEN <= e) {
		__builtin_memcpy(d, dmac, ETH_ALEN);
		__builtin_memcpy(d + ETH_ALEN, smac, ETH_ALEN);
		return 0;
	}
	__builtin_memcpy(macs, dmac, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, smac, ETH_ALEN);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return DROP_FWD_MAC;
	return 0;
}

/* An IPv4 header checksum after one 16-bit word of the header went from -> to (RFC 1624,
 * eqn. 3), in plain arithmetic: raw (network order) values, as csum.h's. */
static __always_inline __u16 hr_csum_update16(__u16 check, __u16 from, __u16 to)
{
	return csum_fold32((__u32)(__u16)~check + (__u16)~from + to);
}

/*
 * Forwarding without the kernel: the TTL and the next hop's MACs, as ip_forward would: the TTL
 * decremented and the checksum updated, both MACs written (in place, or in one store of the
 * frame's first 26 bytes: both MACs, the EtherType as it is, the IPv4 header up to its checksum)
 * instead of a checksum helper and two stores. The header's ones'-complement sum is unchanged
 * (the checksum compensates the TTL), so a CHECKSUM_COMPLETE skb->csum stays right, as with
 * bpf_l3_csum_replace; the Ethernet header is outside it. `ip`: the header as read (hr_load_l3).
 */
static __always_inline int hr_rewrite(struct __sk_buff *skb, struct iphdr *ip, const __u8 *dmac, const __u8 *smac)
{
	struct {
		__u8 dmac[ETH_ALEN];
		__u8 smac[ETH_ALEN];
		__be16 proto;
		__u8 ip[12]; /* up to saddr: version/IHL ... TTL, protocol, check */
	} __attribute__((packed)) h;
	void *d = ctx_data(skb), *e = ctx_data_end(skb);
	struct iphdr *pip = d + ETH_HLEN;
	__u16 old_w, new_w;

	_Static_assert(__builtin_offsetof(struct iphdr, saddr) == 12, "IPv4 header layout");

	__builtin_memcpy(&old_w, &ip->ttl, 2);
	ip->ttl--;
	__builtin_memcpy(&new_w, &ip->ttl, 2);
	ip->check = hr_csum_update16(ip->check, old_w, new_w);
	if ((void *)(pip + 1) <= e) {
		pip->ttl = ip->ttl;
		pip->check = ip->check;
		__builtin_memcpy(d, dmac, ETH_ALEN);
		__builtin_memcpy(d + ETH_ALEN, smac, ETH_ALEN);
		return 0;
	}
	__builtin_memcpy(h.dmac, dmac, ETH_ALEN);
	__builtin_memcpy(h.smac, smac, ETH_ALEN);
	h.proto = bpf_htons(ETH_P_IP);
	__builtin_memcpy(h.ip, ip, sizeof(h.ip));
	if (bpf_skb_store_bytes(skb, 0, &h, sizeof(h), 0) < 0)
		return DROP_FWD_MAC;
	return 0;
}

/* The network header at IPIP_L3_OFF (ETH_HLEN; both families, `to` its fixed header): read in
 * place where the parse left it linear (always, short of a malformed packet), else loaded. */
#define hr_load_l3(skb, to)                                                                    \
	({                                                                                      \
		void *_d = ctx_data(skb), *_e = ctx_data_end(skb);                            \
		long _r = 0;                                                                    \
		if (_d + IPIP_L3_OFF + sizeof(*(to)) <= _e)                                    \
			__builtin_memcpy((to), _d + IPIP_L3_OFF, sizeof(*(to)));              \
		else                                                                            \
			_r = bpf_skb_load_bytes(skb, IPIP_L3_OFF, (to), sizeof(*(to)));       \
		_r;                                                                             \
	})

/*
 * Would the packet fit the MTU of the cali* `ifindex` (a GSO packet: its segments)? What the fib
 * checks against its egress device, for the destinations found without it; over it, the fib's
 * path answers (FRAG_NEEDED: the kernel's).
 */
static __always_inline bool hr_fits(struct __sk_buff *skb, __u32 ifindex)
{
	__u32 mtu_len = 0;

	return bpf_check_mtu(skb, ifindex, &mtu_len, 0, BPF_MTU_CHK_SEGS) == BPF_MTU_CHK_RET_SUCCESS;
}

/*
 * The local workload a packet from a workload is for, looked up once per packet (both families):
 * tortie_epdst_v1 at the destination address, checked against tortie_ep_v1 (ep_dst_live), not the
 * sender's own cali*, the packet within that cali*'s MTU. `ep` is set when all hold; then, with
 * a TTL / hop limit above 1, hr_local (hr6_route) forwards the packet to that workload itself and
 * never to the node, so the source's egress point needs no fib lookup to know that a new flow
 * there is not for the node (hr_skips_host). Map value pointers: on the stack only.
 */
struct hr_dst {
	const struct tortie_ep_dst *d;
	const struct tortie_endpoint *ep;
	bool done; /* looked up (d, ep hold the answer) */
};

static __always_inline const struct tortie_endpoint *hr_dst_find(struct __sk_buff *skb, const void *daddr, bool v6, struct hr_dst *h)
{
	const struct tortie_ep_dst *d;

	if (h->done)
		return h->ep;
	h->done = true;
	h->ep = NULL;
	d = v6 ? ep_dst6(daddr) : ep_dst4(*(const __be32 *)daddr);
	h->d = d;
	if (!d || d->ifindex == skb->ifindex)
		return NULL;
	h->ep = ep_dst_live(d);
	if (h->ep && !hr_fits(skb, d->ifindex))
		h->ep = NULL;
	return h->ep;
}

/* The TTL (IPv4) or hop limit (IPv6) of the packet at ETH_HLEN, 0 if unreadable. */
static __always_inline __u8 hr_hops(struct __sk_buff *skb, bool v6)
{
	__u32 off = ETH_HLEN + (v6 ? offsetof(struct ipv6hdr, hop_limit) : offsetof(struct iphdr, ttl));
	void *d = ctx_data(skb), *e = ctx_data_end(skb);
	__u8 hops = 0;

	if (d + off + 1 <= e)
		return *(__u8 *)(d + off);
	if (bpf_skb_load_bytes(skb, off, &hops, 1) < 0)
		return 0;
	return hops;
}

/*
 * For the source's egress point (host_from_wep, before its commit): is this packet, from a workload
 * (untagged IP at ETH_HLEN, `daddr` its destination), one that hr_local / hr6_route will forward to
 * a local workload? Then it cannot be for the node and the to-host check's fib lookup is skipped
 * (the packet is redirected into the workload, or dropped if its rewrite fails: never passed to
 * the kernel). The lookup is hr_local's (kept in `h`), so this costs no lookup of its own. False
 * (do the fib lookup) without host routing, without `h` (the destination's point) or when the
 * packet will not be redirected so.
 */
static __always_inline bool hr_skips_host(struct __sk_buff *skb, const void *daddr, bool v6, struct hr_dst *h)
{
	if (!host_routing || !h)
		return false;
	return hr_hops(skb, v6) > 1 && hr_dst_find(skb, daddr, v6, h);
}

/*
 * A local workload by its address, first of all (tortie_from_wep runs it before the IPIP/VXLAN
 * fast path, whose remote-route LPM lookup a local destination does not need): for a packet the
 * source's egress point forwarded (untagged IPv4 at ETH_HLEN). tortie_epdst_v1, checked against
 * tortie_ep_v1 (hr_dst_find, done once per packet: `h`, shared with the source's point), gives the
 * destination's cali* and both MACs without a fib lookup.
 * Returns 1 when the destination is such a workload (the packet rewritten as forwarded, *local
 * its cali*'s ifindex, *local_ep its endpoint entry: the caller runs the destination's point,
 * then hr_redirect), 0 to go on (encapsulation, then hr_route), < 0 a drop reason (a rewrite
 * failed). Declines (0) for anything else: addresses the agent has no entry for (its MAC not
 * known yet, not a workload of this node), a stale entry, the TTL expiring, a packet over the
 * cali*'s MTU; hr_route's fib then answers for those.
 */
static __always_inline int hr_local(struct __sk_buff *skb, struct hr_dst *h, __u32 *local, const struct tortie_endpoint **local_ep)
{
	const struct tortie_endpoint *ep;
	const struct tortie_ep_dst *d;
	struct iphdr ip;
	int ret;

	if (!host_routing)
		return 0;
	if (hr_load_l3(skb, &ip) < 0)
		return 0;
	if (ip.ttl <= 1)
		return 0;
	ep = hr_dst_find(skb, &ip.daddr, false, h);
	d = h->d;
	if (!ep || !d)
		return 0;
	ret = hr_rewrite(skb, &ip, d->mac, d->host_mac);
	if (ret < 0)
		return ret;
	*local = d->ifindex;
	*local_ep = ep;
	return 1;
}

/*
 * After hr_local declined and the IPIP/VXLAN fast path left the packet: returns the tc verdict
 * (TC_ACT_OK: the kernel's path, the packet unchanged; TC_ACT_REDIRECT: sent to the uplink) or
 * < 0 a drop reason (a rewrite failed). *local is set to the destination cali*'s ifindex when the
 * fib finds a workload of this node (*local_ep to its endpoint entry, *via_fib true): the packet
 * is then rewritten as forwarded and the caller runs the destination's point, then hr_redirect.
 */
static __always_inline int hr_route(struct __sk_buff *skb, __u32 *local, const struct tortie_endpoint **local_ep, bool *via_fib)
{
	const struct tortie_netcfg *cfg;
	const struct tortie_endpoint *ep;
	const struct tortie_route *rt;
	struct bpf_fib_lookup fib = {};
	struct iphdr ip;
	__u32 out;
	long rc;
	int ret;

	if (!host_routing)
		return TC_ACT_OK;
	if (hr_load_l3(skb, &ip) < 0)
		return TC_ACT_OK;
	fib.family = AF_INET;
	fib.l4_protocol = ip.protocol;
	fib.tot_len = ipip_wire_len(skb, &ip);
	fib.tos = ip.tos;
	fib.ifindex = skb->ifindex;
	fib.ipv4_src = ip.saddr;
	fib.ipv4_dst = ip.daddr;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	/* NOT_FWDED (the node itself, broadcast), FRAG_NEEDED, ... leave fib.ifindex as it was. */
	out = fib.ifindex;
	if (out == skb->ifindex || (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH))
		return TC_ACT_OK;
	ep = bpf_map_lookup_elem(&tortie_ep_v1, &out);
	if (ep) {
		if (rc != BPF_FIB_LKUP_RET_SUCCESS || ip.ttl <= 1) {
			hr_count(TORTIE_HR_DECLINED);
			return TC_ACT_OK;
		}
		ret = hr_rewrite(skb, &ip, fib.dmac, fib.smac);
		if (ret < 0)
			return ret;
		*local = out;
		*local_ep = ep;
		*via_fib = true;
		return TC_ACT_OK;
	}
	/* Leaving the node: only through the uplink, whose tc egress (SNAT, IPIP of kernel-routed
	 * packets) a redirect to its egress still passes. */
	cfg = netcfg_get();
	if (!cfg || out != cfg->uplink_ifindex)
		return TC_ACT_OK;
	/* A remote workload behind IPIP the encapsulating fast path declined (lib/ipip.h): the
	 * kernel's, whose route MTU answers frag-needed for the tunnel. */
	rt = rt_lookup(ip.daddr);
	if (rt && (rt->flags & TORTIE_RT_F_ENCAP))
		return TC_ACT_OK;
	if (ip.ttl <= 1) {
		hr_count(TORTIE_HR_DECLINED);
		return TC_ACT_OK;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* The kernel resolves the next hop's address and queues the packet meanwhile. */
		ret = ipip_ttl_dec(skb, &ip);
		if (ret < 0)
			return ret;
		hr_count(TORTIE_HR_UPLINK_NEIGH);
		return bpf_redirect_neigh(out, NULL, 0, 0);
	}
	ret = hr_rewrite(skb, &ip, fib.dmac, fib.smac);
	if (ret < 0)
		return ret;
	hr_count(TORTIE_HR_UPLINK);
	return bpf_redirect(out, 0);
}

/* The destination's stage forwarded: into its namespace. `family`: 0, or TORTIE_HR_V6 for IPv6;
 * `via_fib`: hr_route's. */
static __always_inline int hr_redirect(__u32 out, __u32 family, bool via_fib)
{
	hr_count(family + TORTIE_HR_PEER);
	if (via_fib)
		hr_count(family + TORTIE_HR_PEER_FIB);
	return bpf_redirect_peer(out, 0);
}

#endif
