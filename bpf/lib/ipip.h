/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPIP (IPv4 in IPv4, protocol 4) built and stripped by BPF: this kernel has no ipip module,
 * and not needing one keeps the datapath self-contained.
 *
 * Encapsulation happens in two places, with one header builder (ipip_push):
 *  - fast path, tortie_from_wep after the policy allow (lib/vxlan.h encap_from_wep ->
 *    ipip_encap_redirect): route map hit with ENCAP and not VXLAN -> fib lookup of the outer
 *    destination (next-hop MACs, egress device, MTU) -> push the outer header -> redirect to
 *    the uplink, skipping the kernel's forwarding path;
 *  - uplink tc egress (ipip_push directly): whatever the kernel routed to a remote workload
 *    (host-originated traffic, and packets the fast path declined). The kernel route the agent
 *    writes for such a workload goes via the underlay next hop towards the node, with
 *    `mtu <uplink MTU - 20>`, so the L2 header is already right and oversize packets got ICMP
 *    frag-needed (DF) or were fragmented by the kernel before reaching us.
 * The fast path declines (returns TC_ACT_OK, the kernel takes the packet) whenever the outer
 * packet would exceed the egress MTU, the TTL would expire, or the fib lookup is not a clean
 * success (no neighbour yet, ...): correctness never depends on it.
 *
 * bpf_fib_lookup answers only when forwarding is enabled on the uplink (net.ipv4.ip_forward=1,
 * as on every Calico node); otherwise every packet takes the kernel path.
 *
 * Decapsulation (ipip_uplink_in -> ipip_decap, ipip_deliver) is on the uplink's tc ingress, only
 * for IPIP whose outer source is a known node and whose outer destination is this node; IPIP
 * from anyone else is dropped there (DROP_IPIP_UNKNOWN_SRC).
 * Every failed rewrite has its own drop reason: DROP_ENCAP_TRIM, _HEADROOM, _STORE,
 * DROP_DECAP_HEADROOM, and DROP_FWD_TTL, DROP_FWD_MAC on the redirect fast paths.
 * Only untagged Ethernet frames are handled (L3 at ETH_HLEN); the callers check.
 *
 * Limits: the underlay is assumed to carry the uplink MTU end to end. An ICMP frag-needed from
 * the underlay about an outer packet is not relayed to the inner sender (the Linux ipip driver
 * would lower the tunnel PMTU), and outer fragments are not reassembled (dropped, counted).
 */
#ifndef TORTIE_LIB_IPIP_H
#define TORTIE_LIB_IPIP_H

#include "lib/parse.h"
#include "lib/route.h"
#include "lib/endpoint.h"
#include "lib/csum.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#define IPIP_HLEN 20
#define IPIP_L3_OFF ETH_HLEN
/* enum values from newer uapi headers than the build host's (kernel >= 6.3 accepts them). */
#define TORTIE_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)

/*
 * Drops what follows the IPv4 datagram at IPIP_L3_OFF whose total length is `tot`: Ethernet
 * padding of short frames (a NIC delivers 60 bytes at least; 14 + 20 + 20 + a short inner
 * datagram is less). Only for linear-sized, non-GSO packets (GSO packets are never padded).
 * bpf_skb_change_tail trims with the checksum kept right (CHECKSUM_COMPLETE is adjusted).
 */
static __always_inline int ipip_trim(struct __sk_buff *skb, __u32 tot)
{
	if (skb->gso_size || skb->len <= IPIP_L3_OFF + tot)
		return 0;
	if (bpf_skb_change_tail(skb, IPIP_L3_OFF + tot, 0) < 0)
		return DROP_ENCAP_TRIM;
	return 0;
}

/*
 * Inserts an outer IPv4 header (src -> dst, protocol 4) after the Ethernet header, in front of
 * `inner` (the inner header as loaded, 20 bytes). TOS and the DF bit are copied from the inner
 * header (RFC 2003 / Linux ipip defaults), TTL 64. GSO packets keep their gso_size (callers have
 * checked that each segment fits with the header) and become SKB_GSO_IPXIP4, segmented by the
 * kernel (or a NIC) with both headers replicated. With `fib` (the forwarding fast path) the
 * next hop's Ethernet header and the first 20 bytes of `inner` (its decremented TTL) are written
 * too: Ethernet, outer and inner header in one 54-byte store.
 */
static __always_inline int ipip_push_hdr(struct __sk_buff *skb, const struct iphdr *inner, __be32 src, __be32 dst,
					 const struct bpf_fib_lookup *fib)
{
	/* pad: the 14-byte Ethernet header ends where a 4-byte boundary starts, so both IPv4
	 * headers are aligned on the stack and the three are contiguous from &h.eth. */
	struct {
		__u16 pad;
		struct ethhdr eth;
		struct iphdr outer;
		struct iphdr inner;
	} h = {};
	int ret;

	/* Bytes after the datagram (padding, or a workload's trailing garbage) would end up after
	 * the outer datagram on the wire: not part of the tunnel payload. */
	ret = ipip_trim(skb, bpf_ntohs(inner->tot_len));
	if (ret < 0)
		return ret;
	if (bpf_skb_adjust_room(skb, IPIP_HLEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return DROP_ENCAP_HEADROOM;
	h.outer.version = 4;
	h.outer.ihl = 5;
	h.outer.tos = inner->tos;
	h.outer.tot_len = bpf_htons(bpf_ntohs(inner->tot_len) + IPIP_HLEN);
	h.outer.id = inner->id;
	h.outer.frag_off = inner->frag_off & bpf_htons(0x4000);
	h.outer.ttl = 64;
	h.outer.protocol = IPPROTO_IPIP;
	h.outer.saddr = src;
	h.outer.daddr = dst;
	h.outer.check = csum_ipv4_hdr(&h.outer);
	if (!fib) {
		if (bpf_skb_store_bytes(skb, IPIP_L3_OFF, &h.outer, sizeof(h.outer), 0) < 0)
			return DROP_ENCAP_STORE;
		return 0;
	}
	__builtin_memcpy(h.eth.h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(h.eth.h_source, fib->smac, ETH_ALEN);
	h.eth.h_proto = bpf_htons(ETH_P_IP);
	h.inner = *inner;
	if (bpf_skb_store_bytes(skb, 0, &h.eth, sizeof(h) - offsetof(typeof(h), eth), 0) < 0)
		return DROP_ENCAP_STORE;
	return 0;
}

/* ipip_push_hdr for the packet as it is (the uplink's egress: the kernel already forwarded it). */
static __always_inline int ipip_push(struct __sk_buff *skb, __be32 src, __be32 dst)
{
	struct iphdr inner;

	if (bpf_skb_load_bytes(skb, IPIP_L3_OFF, &inner, sizeof(inner)) < 0)
		return DROP_TRUNC_IP;
	return ipip_push_hdr(skb, &inner, src, dst, NULL);
}

/* The TTL decrement of forwarding on a loaded header copy, with its checksum adjusted by the
 * same constant (the kernel's ip_decrease_ttl arithmetic: the header's ones'-complement sum is
 * unchanged, so a CHECKSUM_COMPLETE skb->csum stays right). The caller stores it. */
static __always_inline void ipip_ttl_dec_copy(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__sum16)(check + (check >= 0xffff));
	ip->ttl--;
}

/* Largest IPv4 datagram this skb will put on the wire: one GSO segment, or the packet. */
static __always_inline __u32 ipip_wire_len(struct __sk_buff *skb, const struct iphdr *ip)
{
	__u32 hlen = ip->ihl * 4, l4len = 8;
	__u8 doff;

	if (!skb->gso_size)
		return bpf_ntohs(ip->tot_len);
	if (ip->protocol == IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, IPIP_L3_OFF + hlen + 12, &doff, 1) < 0)
			return 0xffff;
		l4len = (doff >> 4) * 4;
	}
	return hlen + l4len + skb->gso_size;
}

/* Forwarding without the kernel: decrement the TTL as it would have (the caller checked > 1):
 * TTL, protocol and checksum (contiguous) in one store, no bpf_l3_csum_replace. */
static __always_inline int ipip_ttl_dec(struct __sk_buff *skb, struct iphdr *ip)
{
	ipip_ttl_dec_copy(ip);
	if (bpf_skb_store_bytes(skb, IPIP_L3_OFF + offsetof(struct iphdr, ttl), &ip->ttl, 4, 0) < 0)
		return DROP_FWD_TTL;
	return 0;
}

/* The fib's next-hop MACs into the Ethernet header (one store). */
static __always_inline int fib_set_macs(struct __sk_buff *skb, const struct bpf_fib_lookup *fib)
{
	__u8 macs[2 * ETH_ALEN];

	__builtin_memcpy(macs, fib->dmac, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, fib->smac, ETH_ALEN);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return DROP_FWD_MAC;
	return 0;
}

/* The outer packet's route (node address -> next_hop, leaving by the uplink): next-hop MACs,
 * egress device, and the MTU check on outer_len (the outer IPv4 datagram's length). */
static __always_inline long encap_fib(struct __sk_buff *skb, struct bpf_fib_lookup *fib, const struct tortie_netcfg *cfg,
				      __be32 next_hop, __u8 proto, __u32 outer_len)
{
	fib->family = AF_INET;
	fib->l4_protocol = proto;
	fib->tot_len = outer_len > 0xffff ? 0xffff : outer_len;
	fib->ifindex = cfg->uplink_ifindex;
	fib->ipv4_src = cfg->node_ip;
	fib->ipv4_dst = next_hop;
	return bpf_fib_lookup(skb, fib, sizeof(*fib), BPF_FIB_LOOKUP_OUTPUT);
}

/*
 * Fast path from a workload: >= 0 is the tc verdict (TC_ACT_REDIRECT done, or TC_ACT_OK to
 * leave the packet to the kernel unchanged), < 0 a drop reason. Call only for packets the
 * policy allowed, with an untagged IPv4 header at ETH_HLEN.
 */
static __always_inline int ipip_encap_redirect(struct __sk_buff *skb, const struct tortie_route *rt,
					       const struct tortie_netcfg *cfg)
{
	struct bpf_fib_lookup fib = {};
	struct iphdr ip;
	__u32 wire;
	long rc;
	int ret;

	if (bpf_skb_load_bytes(skb, IPIP_L3_OFF, &ip, sizeof(ip)) < 0)
		return DROP_TRUNC_IP;
	if (ip.ttl <= 1)
		goto fallback; /* the kernel sends time-exceeded */
	wire = ipip_wire_len(skb, &ip);
	if (cfg->ipip_mtu && wire > cfg->ipip_mtu)
		goto fallback; /* over the IPIP MTU: the kernel route (mtu ipip_mtu) answers frag-needed */
	rc = encap_fib(skb, &fib, cfg, rt->next_hop, IPPROTO_IPIP, wire + IPIP_HLEN);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		goto fallback; /* FRAG_NEEDED: the kernel route's MTU makes it answer frag-needed */

	/* The inner TTL decrement and the next hop's MACs go out with the outer header: one load,
	 * one store. */
	ipip_ttl_dec_copy(&ip);
	ret = ipip_push_hdr(skb, &ip, cfg->node_ip, rt->next_hop, &fib);
	if (ret < 0)
		return ret;
	netstat_inc(TORTIE_NS_ENCAP_FAST);
	return bpf_redirect(fib.ifindex, 0);
fallback:
	netstat_inc(TORTIE_NS_ENCAP_FALLBACK);
	return TC_ACT_OK;
}

/*
 * Strips the outer header (hlen bytes, options included) after checking the inner one. Lengths
 * are the outer header's total length (outer_tot, as parse_packet validated it), never skb->len: a padded frame is longer than its
 * datagram (any inner datagram under 26 bytes arrives padded from a real NIC).
 * The padding is trimmed, so the inner packet leaves with exactly its own length.
 */
static __always_inline int ipip_decap(struct __sk_buff *skb, __u32 hlen, __u32 outer_tot)
{
	struct iphdr inner;
	int ret;

	if (outer_tot < hlen + sizeof(inner) || IPIP_L3_OFF + outer_tot > skb->len ||
	    bpf_skb_load_bytes(skb, IPIP_L3_OFF + hlen, &inner, sizeof(inner)) < 0)
		return DROP_IPIP_BAD_INNER;
	if (inner.version != 4 || inner.ihl < 5 || bpf_ntohs(inner.tot_len) != outer_tot - hlen)
		return DROP_IPIP_BAD_INNER;
	ret = ipip_trim(skb, outer_tot);
	if (ret < 0)
		return ret;
	/* FIXED_GSO: a GSO packet keeps the sender's segment size (otherwise the kernel would grow
	 * gso_size by the removed header and the inner segments would exceed the workload MTU). */
	if (bpf_skb_adjust_room(skb, -(__s32)hlen, BPF_ADJ_ROOM_MAC,
				TORTIE_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return DROP_DECAP_HEADROOM;
	netstat_inc(TORTIE_NS_DECAP);
	return 0;
}

/*
 * After decapsulation: hand the inner packet straight to the local workload's cali* device when
 * the fib says that is where it goes and the device is a tortie endpoint (its tc egress program
 * then enforces the workload's ingress policy as on the kernel path), skipping the kernel's
 * forwarding. Returns the tc verdict: TC_ACT_REDIRECT, or TC_ACT_OK to leave the packet to the
 * kernel (other destinations, TTL 1, no neighbour entry yet, too big); < 0 a drop reason.
 *
 * This runs once per received packet (without GRO, once per MTU-sized segment), so the rewrite
 * is done in place with direct packet access, as the kernel's forwarding does it: the inner
 * header is read where it lies (the parser pulled the outer header and 20 bytes more, and
 * bpf_skb_adjust_room keeps the linear part), the TTL is decremented in place
 * (ipip_ttl_dec_copy) and the fib's MACs are written into the Ethernet header: no
 * bpf_skb_store_bytes / bpf_l3_csum_replace calls. Direct writes make the verifier add an
 * unclone prologue to tortie_uplink_in (a cloned skb's head is copied first, as
 * bpf_skb_store_bytes would have done). tortie_from_wep's host-routing rewrite writes in place
 * too (lib/host_route.h, where its prologue's cost on TCP's clones is explained).
 */
static __always_inline int ipip_deliver(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib = {};
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 out;

	if (ctx_data(skb) + ETH_HLEN + sizeof(*ip) > ctx_data_end(skb) &&
	    bpf_skb_pull_data(skb, ETH_HLEN + sizeof(*ip)) < 0)
		return TC_ACT_OK;
	eth = ctx_data(skb);
	ip = ctx_data(skb) + ETH_HLEN;
	if ((void *)(ip + 1) > ctx_data_end(skb) || ip->ttl <= 1)
		return TC_ACT_OK;
	fib.family = AF_INET;
	fib.l4_protocol = ip->protocol;
	fib.tot_len = ipip_wire_len(skb, ip);
	fib.tos = ip->tos;
	fib.ifindex = skb->ifindex;
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return TC_ACT_OK;
	out = fib.ifindex;
	if (out == skb->ifindex || !bpf_map_lookup_elem(&tortie_ep_v1, &out))
		return TC_ACT_OK;
	/* bpf_fib_lookup and bpf_skb_load_bytes leave the packet where it was: eth and ip hold. */
	ipip_ttl_dec_copy(ip);
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	netstat_inc(TORTIE_NS_DECAP_FAST);
	return bpf_redirect(out, 0);
}

/*
 * IPIP arriving on the uplink (pkt->proto == IPPROTO_IPIP, l4off = ETH_HLEN + outer header
 * length): from a known node to node_ip it is decapsulated and delivered (ipip_deliver; *act =
 * its tc verdict); to another address it is the kernel's; from anyone else, and outer
 * fragments (not reassembled here), a drop. Returns TORTIE_FORWARD or a drop reason.
 */
static __always_inline int ipip_uplink_in(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
					  __be32 node_ip, int *act)
{
	struct iphdr *ip;
	int ret;

	if (!node_known(pkt->saddr))
		return DROP_IPIP_UNKNOWN_SRC;
	if (pkt->daddr != node_ip)
		return TORTIE_FORWARD; /* not for us: the kernel decides */
	if (pkt->frag != TORTIE_FRAG_NONE)
		return DROP_IPIP_BAD_INNER; /* outer fragments are not reassembled here */
	/* The outer IP total length, not skb->len: a padded frame is longer (ipip_decap). */
	ip = ctx_data(skb) + ETH_HLEN;
	if ((void *)(ip + 1) > ctx_data_end(skb))
		return DROP_TRUNC_IP;
	ret = ipip_decap(skb, l4off - ETH_HLEN, bpf_ntohs(ip->tot_len));
	if (ret < 0)
		return ret;
	ret = ipip_deliver(skb);
	if (ret < 0)
		return ret;
	*act = ret;
	return TORTIE_FORWARD;
}

#endif
