/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VXLAN over IPv6 (Calico's vxlan-v6.calico: outer IPv6 between the nodes' IPv6 addresses), for
 * IPv6 pools with vxlanMode Always or CrossSubnet (the subnet judged on the nodes' IPv6
 * addresses). Same VNI and UDP port as IPv4's (tortie_vxcfg_v1); the inner packet is IPv6.
 *
 * Routes: tortie_rt6_v1 (LPM, key struct tortie_pool6_key) holds every remote IPv6 workload
 * prefix the agent programs -> the owning node's IPv6 address and TORTIE_RT_F_* (ENCAP|VXLAN for
 * the tunnelled ones, none for the natively routed ones). The kernel route of a tunnelled prefix
 * (`via <underlay next hop> mtu lock <vxlanMTUV6>`) carries the packet to the uplink, whose tc
 * egress adds the outer headers here (vxlan6_uplink_out); the locked route MTU makes the kernel
 * answer Packet Too Big for oversize packets it forwards (IPv6 ignores an unlocked route MTU
 * when forwarding), as IPv4's route MTU answers frag-needed. There is no fast path from the
 * workload program for IPv6: every tunnelled IPv6 packet takes the kernel's route.
 *
 * Outer headers (VXLAN6_OVERHEAD = 70 bytes over the inner packet): IPv6 node address -> the
 * remote node's, traffic class copied from the inner packet, flow label from the flow hash, hop
 * limit 64; UDP from the flow-hash port (lib/vxlan.h vxlan_sport) to the VXLAN port; VXLAN flags
 * I and the VNI; inner Ethernet from this node's VXLAN MAC to the remote node's. A node's IPv6
 * VXLAN MAC is 0e:76 and the XOR of its IPv6 address's four 32-bit words (locally administered,
 * unicast; nodes ::10 of two /64s differ; the receiver only checks that the inner destination is
 * its own).
 *
 * Outer UDP checksum (RFC 8200 requires one over IPv6, RFC 6935/6936 allow zero for tunnels):
 *  - a non-GSO packet whose inner IPv6 header is followed directly by TCP, UDP or ICMPv6 gets a
 *    real checksum, computed without reading the payload: the inner transport checksum covers
 *    the inner segment, so that segment's ones'-complement sum is the complement of the inner
 *    pseudo-header's (the "local checksum offload" identity Linux's udp tunnels use). It holds
 *    whether the inner checksum is already filled or still CHECKSUM_PARTIAL (filled later by the
 *    kernel or NIC), so the outer checksum is right on the wire either way;
 *  - a GSO packet gets 0: the segments are cut by the kernel's UDP-tunnel GSO, which BPF cannot
 *    ask to checksum the outer UDP (no SKB_GSO_UDP_TUNNEL_CSUM from bpf_skb_adjust_room), and a
 *    value written before segmentation would be wrong in every segment. So do inner packets with
 *    extension headers or other protocols (as Linux's vxlan with udp6zerocsumtx);
 *  - the receiver accepts 0 (as Linux's vxlan with udp6zerocsumrx) and verifies a non-zero
 *    checksum by the same identity when the inner packet is TCP/UDP/ICMPv6 without extension
 *    headers (DROP_VXLAN6_CSUM: it detects corrupted addresses, ports and headers; the payload is
 *    covered by the inner checksum the receiving stack verifies); other non-zero checksums are
 *    accepted unverified.
 *
 * Decapsulation (vxlan6_uplink_in, the uplink's tc ingress): IPv6 whose next header is UDP, to
 * this node's IPv6 address and the VXLAN port, while VXLAN is on. The checks and reasons are
 * IPv4's (lib/vxlan.h): outer source not a known node's IPv6 address -> DROP_VXLAN_UNKNOWN_SRC;
 * UDP length not the payload's, truncated, flags other than I or reserved bits -> BAD_HDR;
 * another VNI -> VNI; inner Ethernet not to this node's IPv6 VXLAN MAC, not IPv6, or whose
 * header does not fill the payload exactly -> BAD_INNER; inner source neither the sending node
 * nor an address tortie_rt6_v1 places behind it -> INNER_SRC. Outer packets with extension
 * headers (fragments included) are not taken as VXLAN: the kernel gets them, and nothing listens
 * on the VXLAN port. Then the outer headers are removed and the kernel routes the inner packet
 * (to the workload's cali*, whose to-workload policy judges it).
 */
#ifndef TORTIE_LIB_VXLAN6_H
#define TORTIE_LIB_VXLAN6_H

#include <linux/ipv6.h>
#include "lib/vxlan.h"
#include "lib/nat6.h"

#define VXLAN6_OVERHEAD (40 + 8 + VXLAN_HLEN + ETH_HLEN)
#define VXLAN6_MAC1 0x76
#define VXLAN6_NOT_OURS 1 /* the hooks' answer for packets they leave to the caller (> TORTIE_FORWARD) */
#define TORTIE_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

/* tortie_rt6_v1 (LPM): remote IPv6 workload prefix -> its node's IPv6 address, TORTIE_RT_F_*. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_pool6_key);
	__type(value, struct tortie_route6);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_rt6_v1 SEC(".maps");

/* tortie_vx6st_v1: per-CPU packet counts per enum tortie_vx6stat. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, TORTIE_VS6_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_vx6st_v1 SEC(".maps");

static __always_inline void vx6st_inc(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&tortie_vx6st_v1, &idx);

	if (c)
		*c += 1;
}

static __always_inline const struct tortie_route6 *rt6_lookup(const __be32 *addr)
{
	struct tortie_pool6_key k = { .prefixlen = 128 };

	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(&tortie_rt6_v1, &k);
}

/* A node's IPv6 VXLAN MAC: 0e:76 and the XOR of its IPv6 address's four 32-bit words. */
static __always_inline void vxlan6_node_mac(__u8 *mac, const __be32 *node)
{
	__be32 w = node[0] ^ node[1] ^ node[2] ^ node[3];

	mac[0] = VXLAN_MAC0;
	mac[1] = VXLAN6_MAC1;
	__builtin_memcpy(mac + 2, &w, 4);
}

/* The headers vxlan6 puts in front of the inner IPv6 packet (after the outer Ethernet header). */
struct vxlan6_outer {
	struct ipv6hdr ip;
	struct udphdr udp;
	__be32 vx_flags;
	__be32 vx_vni;
	struct ethhdr eth;
	__u8 pad[2]; /* not on the wire: rounds the checksummed part to 4 bytes (zero adds nothing) */
};
_Static_assert(__builtin_offsetof(struct vxlan6_outer, pad) == VXLAN6_OVERHEAD, "vxlan6_outer layout");

/* Ones'-complement sum of an IPv6 pseudo-header (RFC 8200 8.1), unfolded. */
static __always_inline __u32 csum6_pseudo(const __be32 *s, const __be32 *d, __u32 len, __u8 nexthdr)
{
	struct {
		__be32 s[4], d[4];
		__be32 len, nh;
	} ph;

	__builtin_memcpy(ph.s, s, 16);
	__builtin_memcpy(ph.d, d, 16);
	ph.len = bpf_htonl(len);
	ph.nh = bpf_htonl(nexthdr);
	return (__u32)bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
}

static __always_inline __u32 csum_add32(__u32 a, __u32 b)
{
	a += b;
	return a + (a < b);
}

/*
 * The outer UDP checksum of h (h->udp.check 0) over an inner IPv6 packet whose transport
 * checksum is (or will be) right (the identity in the header comment); 0 when it cannot be
 * computed that way (inner extension headers or another protocol).
 */
static __always_inline __u16 vxlan6_udp_csum(struct vxlan6_outer *h, const struct ipv6hdr *in)
{
	__u32 sum, inner;
	__u16 c;

	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP && in->nexthdr != IPPROTO_ICMPV6)
		return 0;
	sum = csum6_pseudo(h->ip.saddr.in6_u.u6_addr32, h->ip.daddr.in6_u.u6_addr32, bpf_ntohs(h->udp.len), IPPROTO_UDP);
	sum = (__u32)bpf_csum_diff(NULL, 0, (__be32 *)&h->udp, sizeof(*h) - sizeof(h->ip), sum);
	sum = (__u32)bpf_csum_diff(NULL, 0, (__be32 *)in, sizeof(*in), sum);
	/* The inner segment sums to the complement of its pseudo-header (folded, not inverted). */
	inner = csum6_pseudo(in->saddr.in6_u.u6_addr32, in->daddr.in6_u.u6_addr32, bpf_ntohs(in->payload_len), in->nexthdr);
	sum = csum_add32(sum, (__u16)csum_fold32(inner));
	c = csum_fold32(sum);
	return c ? c : 0xffff;
}

/*
 * Inserts outer IPv6/UDP/VXLAN and the inner Ethernet header in front of the IPv6 packet at
 * ETH_HLEN (trimmed to its length). The outer Ethernet header stays (the kernel wrote the next
 * hop's MACs). 0 or a drop reason.
 */
static __always_inline int vxlan6_push(struct __sk_buff *skb, const struct tortie_vxlan_cfg *vx, const __be32 *src,
				       const __be32 *dst)
{
	struct vxlan6_outer h = {};
	__u32 hash = bpf_get_hash_recalc(skb), len; /* hashes the inner headers: before they move */
	__be16 sport = vxlan_sport_of(hash);
	struct ipv6hdr in;
	int ret;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &in, sizeof(in)) < 0)
		return DROP_TRUNC_IP;
	len = sizeof(in) + bpf_ntohs(in.payload_len);
	ret = ipip_trim(skb, len);
	if (ret < 0)
		return ret;
	if (bpf_skb_adjust_room(skb, VXLAN6_OVERHEAD, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
				BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN) |
				BPF_F_ADJ_ROOM_FIXED_GSO))
		return DROP_ENCAP_HEADROOM;
	/* version 6, traffic class as the inner packet's, flow label from the flow hash */
	*(__be32 *)&h.ip = bpf_htonl(0x60000000u | ((bpf_ntohl(*(__be32 *)&in) & 0x0ff00000u)) | (hash & 0xfffffu));
	h.ip.payload_len = bpf_htons(len + VXLAN6_OVERHEAD - 40);
	h.ip.nexthdr = IPPROTO_UDP;
	h.ip.hop_limit = 64;
	__builtin_memcpy(h.ip.saddr.in6_u.u6_addr32, src, 16);
	__builtin_memcpy(h.ip.daddr.in6_u.u6_addr32, dst, 16);
	h.udp.source = sport;
	h.udp.dest = bpf_htons((__u16)vx->port);
	h.udp.len = h.ip.payload_len;
	h.vx_flags = bpf_htonl(VXLAN_F_I);
	h.vx_vni = bpf_htonl(vx->vni << 8);
	vxlan6_node_mac(h.eth.h_dest, dst);
	vxlan6_node_mac(h.eth.h_source, src);
	h.eth.h_proto = bpf_htons(ETH_P_IPV6);
	if (!skb->gso_size)
		h.udp.check = vxlan6_udp_csum(&h, &in);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, VXLAN6_OVERHEAD, 0) < 0)
		return DROP_ENCAP_STORE;
	return 0;
}

/*
 * The uplink's egress hook for IPv6: a packet the kernel routed to a remote workload whose
 * tortie_rt6_v1 route says ENCAP|VXLAN gets the outer headers (TORTIE_FORWARD or a drop reason:
 * without VXLAN parameters it is dropped rather than sent bare); VXLAN6_NOT_OURS: the caller goes on.
 */
static __noinline int vxlan6_uplink_out(struct __sk_buff *skb)
{
	const struct tortie_netcfg6 *cfg = netcfg6_get();
	const struct tortie_vxlan_cfg *vx;
	const struct tortie_route6 *rt;
	struct ethhdr eth;
	__be32 dst[4];
	int ret;

	if (!cfg || skb->vlan_present)
		return VXLAN6_NOT_OURS;
	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0 || eth.h_proto != bpf_htons(ETH_P_IPV6) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, daddr), dst, 16) < 0)
		return VXLAN6_NOT_OURS;
	rt = rt6_lookup(dst);
	if (!rt || (rt->flags & (TORTIE_RT_F_ENCAP | TORTIE_RT_F_VXLAN)) != (TORTIE_RT_F_ENCAP | TORTIE_RT_F_VXLAN))
		return VXLAN6_NOT_OURS;
	vx = vxcfg_get();
	if (!vx)
		return DROP_ENCAP_STORE;
	ret = vxlan6_push(skb, vx, cfg->node_ip6, rt->next_hop);
	if (ret < 0)
		return ret;
	vx6st_inc(TORTIE_VS6_ENCAP_UPLINK);
	return TORTIE_FORWARD;
}

/*
 * The uplink's ingress hook for IPv6: VXLAN to this node (the header comment) is checked,
 * decapsulated and passed to the kernel (TORTIE_FORWARD) or dropped (a reason); VXLAN6_NOT_OURS:
 * not VXLAN for this node, the caller goes on.
 */
static __noinline int vxlan6_uplink_in(struct __sk_buff *skb)
{
	const struct tortie_netcfg6 *cfg = netcfg6_get();
	const struct tortie_vxlan_cfg *vx;
	const struct tortie_route6 *rt;
	struct vxlan6_outer h = {};
	struct ipv6hdr in;
	__u8 mac[ETH_ALEN];
	__u32 plen;
	__u16 check;

	if (!cfg || skb->vlan_present || skb->len < ETH_HLEN + sizeof(struct ipv6hdr) + sizeof(struct udphdr))
		return VXLAN6_NOT_OURS;
	vx = vxcfg_get();
	if (!vx)
		return VXLAN6_NOT_OURS;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &h, sizeof(h.ip) + sizeof(h.udp)) < 0)
		return VXLAN6_NOT_OURS;
	if (h.ip.nexthdr != IPPROTO_UDP || h.udp.dest != bpf_htons((__u16)vx->port) ||
	    !ip6_eq(h.ip.daddr.in6_u.u6_addr32, cfg->node_ip6))
		return VXLAN6_NOT_OURS;
	if (!node6_known(h.ip.saddr.in6_u.u6_addr32))
		return DROP_VXLAN_UNKNOWN_SRC;
	plen = bpf_ntohs(h.ip.payload_len);
	if (bpf_ntohs(h.udp.len) != plen || plen < VXLAN6_OVERHEAD - 40 || ETH_HLEN + 40 + plen > skb->len ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &h, VXLAN6_OVERHEAD) < 0)
		return DROP_VXLAN_BAD_HDR;
	if (h.vx_flags != bpf_htonl(VXLAN_F_I) || (h.vx_vni & bpf_htonl(0xff)))
		return DROP_VXLAN_BAD_HDR;
	if (bpf_ntohl(h.vx_vni) >> 8 != vx->vni)
		return DROP_VXLAN_VNI;
	vxlan6_node_mac(mac, cfg->node_ip6);
	if (!vxlan_mac_eq(h.eth.h_dest, mac) || h.eth.h_proto != bpf_htons(ETH_P_IPV6))
		return DROP_VXLAN_BAD_INNER;
	plen -= VXLAN6_OVERHEAD - 40; /* the inner packet's length */
	if (plen < sizeof(in) || bpf_skb_load_bytes(skb, ETH_HLEN + VXLAN6_OVERHEAD, &in, sizeof(in)) < 0 ||
	    (bpf_ntohl(*(__be32 *)&in) >> 28) != 6 || sizeof(in) + bpf_ntohs(in.payload_len) != plen)
		return DROP_VXLAN_BAD_INNER;
	if (!ip6_eq(in.saddr.in6_u.u6_addr32, h.ip.saddr.in6_u.u6_addr32)) {
		rt = rt6_lookup(in.saddr.in6_u.u6_addr32);
		if (!rt || !ip6_eq(rt->next_hop, h.ip.saddr.in6_u.u6_addr32))
			return DROP_VXLAN_INNER_SRC;
	}
	check = h.udp.check;
	if (check) {
		__u16 want;

		h.udp.check = 0;
		want = vxlan6_udp_csum(&h, &in);
		if (want && want != check)
			return DROP_VXLAN6_CSUM;
	}
	if (ipip_trim(skb, 40 + bpf_ntohs(h.ip.payload_len)) < 0)
		return DROP_ENCAP_TRIM;
	if (bpf_skb_adjust_room(skb, -(__s32)VXLAN6_OVERHEAD, BPF_ADJ_ROOM_MAC,
				TORTIE_ADJ_ROOM_DECAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return DROP_DECAP_HEADROOM;
	vx6st_inc(TORTIE_VS6_DECAP);
	return TORTIE_FORWARD;
}

#endif
