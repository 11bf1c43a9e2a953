/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ICMP errors about NATed flows, on the uplink: the translation of the error's quoted header
 * (the datagram it is about) as well as its outer addresses, in both directions. lib/nat.h does
 * the flows themselves and owns the mappings this header reads.
 *
 *  icmp_err_rev   an error from outside addressed to the node, quoting a SNATed packet
 *                 (node_ip:port -> remote; frag-needed, port unreachable, ...): sent on to the
 *                 workload with the quoted header as the workload sent it: outer destination, the
 *                 quoted source address and port or echo id. Not ours (0): left to the node.
 *  icmp_err_snat  ICMP leaving a natOutgoing pool for the outside, other than echo (which
 *                 lib/nat.h nat_snat maps like any flow). A workload's error about a packet of a
 *                 SNATed flow it received (quoted: remote -> workload:port, as nat_rev delivered
 *                 it) goes out as the node would send it: outer source, the quoted destination
 *                 address and port (or echo id) back to the node's mapping. Anything that cannot
 *                 be translated like its flow is dropped (DROP_NAT_ICMP): an error quoting no live
 *                 mapping, one not addressed to the quoted datagram's source, and ICMP queries
 *                 other than echo (timestamp, address mask, ...: tortie keeps no mapping for
 *                 them). A workload address never leaves the node in an ICMP message to the
 *                 outside.
 *
 * Both fix the quoted IPv4 checksum and the ICMP checksum (icmp_err_quote_rewrite, lib/csum.h);
 * the quoted L4 checksum is left alone (receivers do not check it). Failed rewrites:
 * DROP_ICMP_QUOTE (quoted header), DROP_ICMP_OUTER (outer address).
 */
#ifndef TORTIE_LIB_ICMP_ERR_H
#define TORTIE_LIB_ICMP_ERR_H

#include "lib/parse.h"
#include "lib/csum.h"
#include "lib/nat.h"

/*
 * Rewrites the datagram an ICMP error quotes, starting at inoff: one of its addresses (addr_field:
 * offsetof saddr or daddr in struct iphdr) from old_ip to new_ip, its IPv4 checksum (quoted_ck,
 * as read), and the port or echo id at port_at (0: none) when it changes. Each change is folded
 * into the ICMP checksum at icsum (the quoted header starts at an even offset of the ICMP
 * message). Raw memory order throughout: ones'-complement sums commute with the byte swap. The
 * quoted L4 checksum is left alone: receivers do not check it. Shared by both directions
 * (icmp_err_rev, icmp_err_snat).
 */
static __always_inline int icmp_err_quote_rewrite(struct __sk_buff *skb, __u32 icsum, __u32 inoff, __u32 addr_field,
						  __be32 old_ip, __be32 new_ip, __u16 quoted_ck, __u32 port_at,
						  __be16 from_port, __be16 to_port)
{
	__u16 new_ck = csum_update32(quoted_ck, old_ip, new_ip);

	if (csum_l4_set32(skb, icsum, inoff + addr_field, old_ip, new_ip, 0) < 0 ||
	    csum_l4_set16(skb, icsum, inoff + offsetof(struct iphdr, check), quoted_ck, new_ck, 0) < 0)
		return DROP_ICMP_QUOTE;
	if (port_at && from_port != to_port && csum_l4_set16(skb, icsum, port_at, from_port, to_port, 0) < 0)
		return DROP_ICMP_QUOTE;
	return 0;
}

/*
 * An ICMP error addressed to node_ip that quotes a SNATed packet (node_ip:port -> remote): send
 * it to the workload with the quoted header as the workload sent it. Returns 1 if translated,
 * 0 if not ours, < 0 a drop reason.
 */
static __always_inline int icmp_err_rev(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
					__be32 node_ip)
{
	struct tortie_nat4_key rk = {}, fk = {};
	struct tortie_nat4_value *rv, *fv;
	struct iphdr in;
	__u32 icsum = l4off + 2, inoff = l4off + 8, pofs, need = 0;
	__u32 dgram_end = (__u32)pkt->l3_off + pkt->ip_tot; /* never Ethernet padding */
	__be16 ports[3], from_port, to_port;
	__be32 to_ip;
	int ret;

	if (inoff + sizeof(in) > dgram_end ||
	    bpf_skb_load_bytes(skb, inoff, &in, sizeof(in)) < 0 || in.version != 4 || in.ihl < 5)
		return 0;
	if (in.saddr != node_ip)
		return 0;
	pofs = inoff + in.ihl * 4;
	if (in.protocol == IPPROTO_TCP || in.protocol == IPPROTO_UDP)
		need = 4;
	else if (in.protocol == IPPROTO_ICMP)
		need = 6;
	/* The quoted ports must be inside the datagram: not translated otherwise (the node's). */
	if (pofs + need > dgram_end)
		return 0;
	/* Exactly what the quote must hold: a 4-byte TCP/UDP quote ending the frame is read too. */
	if (need == 4 && bpf_skb_load_bytes(skb, pofs, ports, 4) < 0)
		return 0;
	if (need == 6 && bpf_skb_load_bytes(skb, pofs, ports, 6) < 0)
		return 0;
	rk.saddr = in.daddr;
	rk.daddr = node_ip;
	rk.proto = in.protocol;
	rk.dir = TORTIE_NAT_REV;
	if (in.protocol == IPPROTO_TCP || in.protocol == IPPROTO_UDP) {
		rk.sport = ports[1];
		rk.dport = ports[0];
	} else if (in.protocol == IPPROTO_ICMP) {
		rk.dport = ports[2]; /* quoted echo request: id at offset 4 */
		pofs += 4;
	}
	rv = bpf_map_lookup_elem(&tortie_nat4_v2, &rk);
	if (!rv)
		return 0;
	/* Only about a flow that still has its live forward mapping, and never about a tuple a
	 * node socket owns (a node port bound into the range after the claim): the node's. */
	fk.saddr = rv->addr;
	fk.daddr = in.daddr;
	fk.sport = rv->port;
	fk.dport = in.protocol == IPPROTO_ICMP ? rv->port : rk.sport;
	fk.proto = in.protocol;
	fk.dir = TORTIE_NAT_FWD;
	fv = bpf_map_lookup_elem(&tortie_nat4_v2, &fk);
	if (!fv || !nat_live(fv, in.protocol, bpf_ktime_get_ns()))
		return 0;
	if (nat_host_sock(skb, in.protocol, in.daddr, rk.sport, node_ip, rk.dport)) {
		netstat_inc(TORTIE_NS_NAT_HOST_SOCK);
		return 0;
	}
	to_ip = rv->addr;
	to_port = rv->port;
	from_port = rk.dport;

	/* Quoted header: source address, its checksum, the port or echo id. */
	ret = icmp_err_quote_rewrite(skb, icsum, inoff, offsetof(struct iphdr, saddr), node_ip, to_ip, in.check,
				     need ? pofs : 0, from_port, to_port);
	if (ret < 0)
		return ret;
	/* Outer destination (ICMP has no pseudo-header: only the IPv4 checksum changes). */
	if (csum_l3_set32(skb, ETH_HLEN, offsetof(struct iphdr, daddr), node_ip, to_ip) < 0)
		return DROP_ICMP_OUTER;
	netstat_inc(TORTIE_NS_RNAT);
	return 1;
}

static __always_inline int icmp_err_snat(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
					 __be32 node_ip)
{
	struct tortie_nat4_key fk = {};
	struct tortie_nat4_value *fv;
	struct iphdr in;
	__u32 icsum = l4off + 2, inoff = l4off + 8, pofs, port_at = 0;
	__be16 ports[3], from_port = 0, to_port;
	__be32 pod_ip = pkt->saddr;
	__u32 dgram_end = (__u32)pkt->l3_off + pkt->ip_tot; /* never Ethernet padding */
	int ret;

	if (!icmp_is_error((__u8)(pkt->dport >> 8)))
		return DROP_NAT_ICMP;
	if (inoff + sizeof(in) > dgram_end ||
	    bpf_skb_load_bytes(skb, inoff, &in, sizeof(in)) < 0 || in.version != 4 || in.ihl < 5)
		return DROP_NAT_ICMP;
	/* About a datagram the workload received, and addressed to that datagram's source. */
	if (in.daddr != pkt->saddr || in.saddr != pkt->daddr)
		return DROP_NAT_ICMP;
	pofs = inoff + in.ihl * 4;
	fk.saddr = pkt->saddr;
	fk.daddr = in.saddr;
	fk.proto = in.protocol;
	fk.dir = TORTIE_NAT_FWD;
	switch (in.protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (pofs + 4 > dgram_end || bpf_skb_load_bytes(skb, pofs, ports, 4) < 0)
			return DROP_NAT_ICMP;
		fk.sport = ports[1];
		fk.dport = ports[0];
		port_at = pofs + 2;
		break;
	case IPPROTO_ICMP:
		if (pofs + 6 > dgram_end || bpf_skb_load_bytes(skb, pofs, ports, 6) < 0 || !icmp_is_echo(((__u8 *)ports)[0]))
			return DROP_NAT_ICMP;
		fk.sport = fk.dport = ports[2];
		port_at = pofs + 4;
		break;
	default:
		break;
	}
	from_port = fk.sport;
	fv = bpf_map_lookup_elem(&tortie_nat4_v2, &fk);
	if (!fv || fv->addr != node_ip || !nat_live(fv, in.protocol, bpf_ktime_get_ns()))
		return DROP_NAT_ICMP;
	to_port = fv->port;

	ret = icmp_err_quote_rewrite(skb, icsum, inoff, offsetof(struct iphdr, daddr), pod_ip, node_ip, in.check,
				     port_at, from_port, to_port);
	if (ret < 0)
		return ret;
	/* Outer source (ICMP has no pseudo-header: only the IPv4 checksum changes). */
	if (csum_l3_set32(skb, ETH_HLEN, offsetof(struct iphdr, saddr), pod_ip, node_ip) < 0)
		return DROP_ICMP_OUTER;
	frag_record(pkt, TORTIE_FRAG_PT_SNAT, node_ip);
	netstat_inc(TORTIE_NS_SNAT);
	return 0;
}

#endif
