/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VXLAN (RFC 7348: outer IPv4 / UDP / VXLAN header / inner Ethernet) built and stripped by BPF,
 * as lib/ipip.h does IPIP: this kernel has no vxlan module, and no vxlan.calico device exists.
 * Calico's vxlanMode (Always, CrossSubnet) routes get TORTIE_RT_F_ENCAP | TORTIE_RT_F_VXLAN in
 * tortie_rt4_v1; this node's VNI, UDP port and VXLAN MTU are in tortie_vxcfg_v1.
 *
 * Encapsulation, in the same two places as IPIP:
 *  - fast path, tortie_from_wep after the policy allow (encap_from_wep -> vxlan_encap_redirect):
 *    fib lookup of the outer destination, outer headers pushed, redirect to the uplink; declined
 *    (the kernel's) over the VXLAN MTU or the uplink's, at TTL 1, or without a clean fib answer;
 *  - uplink tc egress (vxlan_push4): what the kernel routed to such a workload (host-originated
 *    traffic, packets the fast path declined) over the route the agent wrote with
 *    `mtu <VXLAN MTU>`, so oversize packets got frag-needed before reaching us.
 * Outer header: IPv4 node address -> the remote node's address, TTL 64, TOS and DF copied from
 * the inner header (as lib/ipip.h); UDP from a port derived from the flow hash of the inner
 * packet (Linux's udp_flow_src_port over 32768..60999: ECMP in the underlay spreads flows, one
 * flow keeps its path) to tortie_vxcfg_v1.port, UDP checksum 0 (RFC 7348 allows it over IPv4;
 * the Linux vxlan driver's default; the inner packet keeps its own checksums); VXLAN flags I
 * and the 24-bit VNI. GSO packets keep their segment size (the callers checked that a segment
 * plus VXLAN_OVERHEAD fits) and become UDP-tunnel GSO, segmented by the kernel (or the NIC).
 *
 * Inner Ethernet: there is no vxlan.calico device whose MAC a peer would learn, so each node's
 * VXLAN MAC is derived from its underlay IPv4 address: 0e:74:a.b.c.d (locally administered,
 * unicast). The encapsulator writes its own as the inner source and the remote node's as the
 * inner destination; the decapsulator requires the inner destination to be its own (a frame for
 * another MAC would not be delivered by a Linux vxlan device either) and does not judge the inner
 * source MAC (the inner IP source is judged instead, below).
 *
 * Decapsulation (vxlan_uplink_in), on the uplink's tc ingress, for UDP to this node's address and
 * VXLAN port while VXLAN is on (vni != 0): outer source a known node (else DROP_VXLAN_UNKNOWN_SRC),
 * not an outer fragment, UDP length equal to the datagram's, VXLAN flags exactly I with reserved
 * bits 0 (DROP_VXLAN_BAD_HDR), this node's VNI (DROP_VXLAN_VNI), inner Ethernet to this node's
 * VXLAN MAC carrying IPv4 whose header fills the payload exactly (DROP_VXLAN_BAD_INNER), inner
 * source the sending node itself or an address the route map places behind that node
 * (DROP_VXLAN_INNER_SRC: a node cannot inject packets in another node's or an outside host's
 * name). The outer UDP checksum is not verified (the inner transport checksum still is, by the
 * receiver). Then exactly as decapsulated IPIP: padding trimmed, headers removed, straight to the
 * local workload's cali* (ipip_deliver) or to the kernel, the to-workload policy on the cali*'s
 * tc egress either way.
 *
 * IPv6 inner packets (for the v6 datapath): vxlan_push takes the inner packet as a struct
 * vxlan_inner (length, ethertype, TOS, DF, id) and writes the outer Ethernet type itself, so a
 * v6 caller fills that struct from its own header and calls vxlan_push; on receive, the inner
 * ethertype check in vxlan_uplink_in is where an IPv6 branch goes (vxlan_inner4_check's v6
 * counterpart). Outer IPv6 (Calico's vxlan-v6.calico) is not built here.
 */
#ifndef TORTIE_LIB_VXLAN_H
#define TORTIE_LIB_VXLAN_H

#include "lib/ipip.h"
#include "lib/vxcfg.h"

#define VXLAN_HLEN 8
/* Outer IPv4 + UDP + VXLAN + inner Ethernet: what a VXLAN packet adds to the inner L3 packet
 * (also the outer IPv4 datagram's length over the inner's: the outer Ethernet header is reused). */
#define VXLAN_OVERHEAD (20 + 8 + VXLAN_HLEN + ETH_HLEN)
#define VXLAN_F_I 0x08000000u
#define VXLAN_SPORT_MIN 32768u
#define VXLAN_SPORT_MAX 61000u /* exclusive: Linux's default ip_local_port_range is 32768..60999 */
#define VXLAN_MAC0 0x0e
#define VXLAN_MAC1 0x74

/* tortie_vxst_v1: per-CPU packet counts per enum tortie_vxstat; read by the agent and tests. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, TORTIE_VS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_vxst_v1 SEC(".maps");

/* The headers in front of the inner L3 packet, as on the wire after the outer Ethernet header. */
struct vxlan_outer {
	struct iphdr ip;
	struct udphdr udp;
	__be32 vx_flags;
	__be32 vx_vni;   /* VNI << 8 */
	struct ethhdr eth;
};
_Static_assert(__builtin_offsetof(struct vxlan_outer, eth) + sizeof(struct ethhdr) == VXLAN_OVERHEAD, "vxlan_outer layout");

/* What vxlan_push needs of the inner L3 packet (IPv4 here; an IPv6 caller fills it from its header). */
struct vxlan_inner {
	__u32 len;       /* L3 packet length (IPv4 tot_len) */
	__be16 proto;    /* inner Ethernet type */
	__be16 df;       /* outer DF bit (network order, as in frag_off) */
	__be16 id;       /* outer IP id */
	__u8 tos;
	__u8 pad;
};

static __always_inline void vxst_inc(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&tortie_vxst_v1, &idx);

	if (c)
		*c += 1;
}

/* A node's VXLAN MAC: 0e:74 and its underlay IPv4 address. */
static __always_inline void vxlan_node_mac(__u8 *mac, __be32 node)
{
	mac[0] = VXLAN_MAC0;
	mac[1] = VXLAN_MAC1;
	__builtin_memcpy(mac + 2, &node, 4);
}

static __always_inline bool vxlan_mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

/* The outer UDP source port from a flow hash, as Linux's udp_flow_src_port. */
static __always_inline __be16 vxlan_sport_of(__u32 hash)
{
	hash ^= hash << 16;
	return bpf_htons((__u16)((((__u64)hash * (VXLAN_SPORT_MAX - VXLAN_SPORT_MIN)) >> 32) + VXLAN_SPORT_MIN));
}

/* The outer UDP source port from the packet's flow hash. */
static __always_inline __be16 vxlan_sport(struct __sk_buff *skb)
{
	return vxlan_sport_of(bpf_get_hash_recalc(skb));
}

/*
 * Inserts outer IPv4/UDP/VXLAN and the inner Ethernet header between the Ethernet header and the
 * L3 packet at ETH_HLEN (in->len bytes, nothing after it: the caller trimmed). Without `fib` the
 * outer Ethernet header keeps its MACs (the kernel routed the packet) and gets type IPv4; with
 * `fib` (the forwarding fast path) it is written whole, next hop's MACs included, in the same
 * store as the headers after it (64 bytes).
 */
static __always_inline int vxlan_push(struct __sk_buff *skb, const struct tortie_vxlan_cfg *vx, __be32 src, __be32 dst,
				      const struct vxlan_inner *in, const struct bpf_fib_lookup *fib)
{
	/* pad: the outer IPv4 header after the 14-byte Ethernet header starts 4-byte aligned. */
	struct {
		__u16 pad;
		struct ethhdr eth;
		struct vxlan_outer h;
	} o = {};
	__be16 ip_type = bpf_htons(ETH_P_IP);
	__be16 sport = vxlan_sport(skb); /* hashes the inner headers: before they move */

	if (bpf_skb_adjust_room(skb, VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
				BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN) |
				BPF_F_ADJ_ROOM_FIXED_GSO))
		return DROP_ENCAP_HEADROOM;
	o.h.ip.version = 4;
	o.h.ip.ihl = 5;
	o.h.ip.tos = in->tos;
	o.h.ip.tot_len = bpf_htons(in->len + VXLAN_OVERHEAD);
	o.h.ip.id = in->id;
	o.h.ip.frag_off = in->df;
	o.h.ip.ttl = 64;
	o.h.ip.protocol = IPPROTO_UDP;
	o.h.ip.saddr = src;
	o.h.ip.daddr = dst;
	o.h.ip.check = csum_ipv4_hdr(&o.h.ip);
	o.h.udp.source = sport;
	o.h.udp.dest = bpf_htons((__u16)vx->port);
	o.h.udp.len = bpf_htons(in->len + VXLAN_OVERHEAD - 20);
	o.h.udp.check = 0;
	o.h.vx_flags = bpf_htonl(VXLAN_F_I);
	o.h.vx_vni = bpf_htonl(vx->vni << 8);
	vxlan_node_mac(o.h.eth.h_dest, dst);
	vxlan_node_mac(o.h.eth.h_source, src);
	o.h.eth.h_proto = in->proto;
	if (fib) {
		__builtin_memcpy(o.eth.h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(o.eth.h_source, fib->smac, ETH_ALEN);
		o.eth.h_proto = ip_type;
		if (bpf_skb_store_bytes(skb, 0, &o.eth, ETH_HLEN + VXLAN_OVERHEAD, 0) < 0)
			return DROP_ENCAP_STORE;
		return 0;
	}
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &o.h, VXLAN_OVERHEAD, 0) < 0 ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &ip_type, sizeof(ip_type), 0) < 0)
		return DROP_ENCAP_STORE;
	return 0;
}

/* vxlan_push for the IPv4 packet at ETH_HLEN: trims what follows the datagram (lib/ipip.h ipip_trim). */
static __always_inline int vxlan_push4(struct __sk_buff *skb, const struct tortie_vxlan_cfg *vx, __be32 src, __be32 dst,
				       const struct bpf_fib_lookup *fib)
{
	struct vxlan_inner in = { .proto = bpf_htons(ETH_P_IP) };
	struct iphdr ip;
	int ret;

	if (bpf_skb_load_bytes(skb, IPIP_L3_OFF, &ip, sizeof(ip)) < 0)
		return DROP_TRUNC_IP;
	in.len = bpf_ntohs(ip.tot_len);
	ret = ipip_trim(skb, in.len);
	if (ret < 0)
		return ret;
	in.tos = ip.tos;
	in.df = ip.frag_off & bpf_htons(0x4000);
	in.id = ip.id;
	return vxlan_push(skb, vx, src, dst, &in, fib);
}

/*
 * Fast path from a workload to a remote workload behind VXLAN: >= 0 the tc verdict
 * (TC_ACT_REDIRECT, or TC_ACT_OK: the kernel's, unchanged), < 0 a drop reason. Only for packets
 * the policy allowed, IPv4 at ETH_HLEN.
 */
static __always_inline int vxlan_encap_redirect(struct __sk_buff *skb, const struct tortie_route *rt,
						const struct tortie_netcfg *cfg)
{
	const struct tortie_vxlan_cfg *vx = vxcfg_get();
	struct bpf_fib_lookup fib = {};
	struct iphdr ip;
	__u32 wire;
	int ret;

	if (!vx)
		goto fallback;
	if (bpf_skb_load_bytes(skb, IPIP_L3_OFF, &ip, sizeof(ip)) < 0)
		return DROP_TRUNC_IP;
	if (ip.ttl <= 1)
		goto fallback; /* the kernel sends time-exceeded */
	wire = ipip_wire_len(skb, &ip);
	if (vx->mtu && wire > vx->mtu)
		goto fallback; /* the kernel route (mtu vxlan_mtu) answers frag-needed */
	if (encap_fib(skb, &fib, cfg, rt->next_hop, IPPROTO_UDP, wire + VXLAN_OVERHEAD) != BPF_FIB_LKUP_RET_SUCCESS)
		goto fallback;
	ret = ipip_ttl_dec(skb, &ip);
	if (ret < 0)
		return ret;
	ret = vxlan_push4(skb, vx, cfg->node_ip, rt->next_hop, &fib);
	if (ret < 0)
		return ret;
	vxst_inc(TORTIE_VS_ENCAP_FAST);
	return bpf_redirect(fib.ifindex, 0);
fallback:
	vxst_inc(TORTIE_VS_ENCAP_FALLBACK);
	return TC_ACT_OK;
}

/* The from-workload hook: a remote workload behind IPIP or VXLAN is encapsulated, else pass. */
static __always_inline int encap_from_wep(struct __sk_buff *skb, __be32 daddr)
{
	const struct tortie_route *rt = rt_lookup(daddr);
	const struct tortie_netcfg *cfg;

	if (!rt || !(rt->flags & TORTIE_RT_F_ENCAP))
		return TC_ACT_OK;
	cfg = netcfg_get();
	if (!cfg || !cfg->uplink_ifindex)
		return TC_ACT_OK;
	if (rt->flags & TORTIE_RT_F_VXLAN)
		return vxlan_encap_redirect(skb, rt, cfg);
	return ipip_encap_redirect(skb, rt, cfg);
}

/*
 * The uplink's egress for a packet the kernel routed to a VXLAN route: the outer headers (the L2
 * header is already the next hop's). TORTIE_FORWARD or a drop reason. The agent writes
 * tortie_vxcfg_v1 before any route carries the flag; without it the packet is dropped rather than
 * sent unencapsulated.
 */
static __always_inline int vxlan_uplink_out(struct __sk_buff *skb, const struct tortie_netcfg *cfg, const struct tortie_route *rt)
{
	const struct tortie_vxlan_cfg *vx = vxcfg_get();
	int ret;

	if (!vx)
		return DROP_ENCAP_STORE;
	ret = vxlan_push4(skb, vx, cfg->node_ip, rt->next_hop, NULL);
	if (ret < 0)
		return ret;
	vxst_inc(TORTIE_VS_ENCAP_UPLINK);
	return TORTIE_FORWARD;
}

/* UDP from this node's address to a known node's VXLAN port: the outer packet of our own tunnel. */
static __always_inline bool vxlan_is_tunnel_out(const struct tortie_pkt *pkt, const struct tortie_netcfg *cfg)
{
	const struct tortie_vxlan_cfg *vx;

	if (pkt->proto != IPPROTO_UDP || pkt->saddr != cfg->node_ip)
		return false;
	vx = vxcfg_get();
	return vx && pkt->dport == vx->port && node_known(pkt->daddr);
}

/* Arriving: UDP to this node's address and VXLAN port while VXLAN is on (NULL: not VXLAN for us). */
static __always_inline const struct tortie_vxlan_cfg *vxlan_for_us(const struct tortie_pkt *pkt, const struct tortie_netcfg *cfg)
{
	const struct tortie_vxlan_cfg *vx;

	if (pkt->proto != IPPROTO_UDP || pkt->daddr != cfg->node_ip)
		return NULL;
	vx = vxcfg_get();
	return vx && pkt->dport == vx->port ? vx : NULL;
}

/* The inner IPv4 header at off (len bytes of payload): well formed, filling it exactly, and from
 * the sending node or one of its workloads. */
static __always_inline int vxlan_inner4_check(struct __sk_buff *skb, __u32 off, __u32 len, __be32 node)
{
	const struct tortie_route *rt;
	struct iphdr inner;

	if (len < sizeof(inner) || bpf_skb_load_bytes(skb, off, &inner, sizeof(inner)) < 0)
		return DROP_VXLAN_BAD_INNER;
	if (inner.version != 4 || inner.ihl < 5 || bpf_ntohs(inner.tot_len) != len)
		return DROP_VXLAN_BAD_INNER;
	if (inner.saddr == node)
		return 0;
	rt = rt_lookup(inner.saddr);
	if (!rt || rt->next_hop != node)
		return DROP_VXLAN_INNER_SRC;
	return 0;
}

/* UDP, VXLAN header and inner Ethernet header as received (after the outer IPv4 header). */
struct vxlan_rx {
	struct udphdr udp;
	__be32 vx_flags;
	__be32 vx_vni;
	struct ethhdr eth;
};
#define VXLAN_RX_LEN (VXLAN_OVERHEAD - 20) /* the bytes of struct vxlan_rx on the wire */
_Static_assert(__builtin_offsetof(struct vxlan_rx, eth) + sizeof(struct ethhdr) == VXLAN_RX_LEN, "vxlan_rx layout");

/*
 * VXLAN for this node (vxlan_for_us said so; l4off = ETH_HLEN + outer header length): checked
 * (header comment), decapsulated and delivered (ipip_deliver; *act = its tc verdict). Returns
 * TORTIE_FORWARD or a drop reason.
 */
static __always_inline int vxlan_uplink_in(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
					   const struct tortie_vxlan_cfg *vx, __be32 node_ip, int *act)
{
	__u32 hlen = l4off - ETH_HLEN, outer_tot, udp_len;
	__u8 mac[ETH_ALEN];
	struct vxlan_rx h;
	struct iphdr *ip;
	int ret;

	if (!node_known(pkt->saddr))
		return DROP_VXLAN_UNKNOWN_SRC;
	if (pkt->frag != TORTIE_FRAG_NONE)
		return DROP_VXLAN_BAD_HDR; /* outer fragments are not reassembled here */
	/* The outer IP total length, not skb->len: a padded frame is longer (lib/ipip.h ipip_decap). */
	ip = ctx_data(skb) + ETH_HLEN;
	if ((void *)(ip + 1) > ctx_data_end(skb))
		return DROP_TRUNC_IP;
	outer_tot = bpf_ntohs(ip->tot_len);
	if (bpf_skb_load_bytes(skb, l4off, &h, VXLAN_RX_LEN) < 0)
		return DROP_VXLAN_BAD_HDR;
	udp_len = bpf_ntohs(h.udp.len);
	if (outer_tot < hlen || udp_len != outer_tot - hlen || udp_len < VXLAN_RX_LEN || ETH_HLEN + outer_tot > skb->len)
		return DROP_VXLAN_BAD_HDR;
	if (h.vx_flags != bpf_htonl(VXLAN_F_I) || (h.vx_vni & bpf_htonl(0xff)))
		return DROP_VXLAN_BAD_HDR;
	if (bpf_ntohl(h.vx_vni) >> 8 != vx->vni)
		return DROP_VXLAN_VNI;
	vxlan_node_mac(mac, node_ip);
	if (!vxlan_mac_eq(h.eth.h_dest, mac))
		return DROP_VXLAN_BAD_INNER;
	/* IPv6 inner packets: the v6 datapath's branch goes here. */
	if (h.eth.h_proto != bpf_htons(ETH_P_IP))
		return DROP_VXLAN_BAD_INNER;
	ret = vxlan_inner4_check(skb, l4off + VXLAN_RX_LEN, udp_len - VXLAN_RX_LEN, pkt->saddr);
	if (ret < 0)
		return ret;
	ret = ipip_trim(skb, outer_tot);
	if (ret < 0)
		return ret;
	if (bpf_skb_adjust_room(skb, -(__s32)(hlen + VXLAN_RX_LEN), BPF_ADJ_ROOM_MAC,
				TORTIE_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return DROP_DECAP_HEADROOM;
	vxst_inc(TORTIE_VS_DECAP);
	ret = ipip_deliver(skb);
	if (ret < 0)
		return ret;
	*act = ret;
	return TORTIE_FORWARD;
}

#endif
