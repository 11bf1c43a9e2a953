/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ICMP leaving a natOutgoing pool for the outside, other than echo (which lib/nat.h nat_snat
 * maps like any flow). A workload's error about a packet of a SNATed flow it received
 * (quoted: remote -> workload:port, as nat_rev delivered it) goes out as the node would send it:
 * outer source, the quoted destination address and port (or echo id) back to the node's
 * mapping, the quoted IPv4 checksum and the ICMP checksum (the quoted L4 checksum is left
 * alone, as nat_rev_icmp_err does: receivers do not check it). Anything that cannot be
 * translated like its flow is dropped (DROP_NAT_ICMP): an error quoting no live mapping, one
 * not addressed to the quoted datagram's source, and ICMP queries other than echo (timestamp,
 * address mask, ...: tortie keeps no mapping for them). A workload address never leaves the
 * node in an ICMP message to the outside.
 */
#ifndef TORTIE_LIB_ICMP_ERR_H
#define TORTIE_LIB_ICMP_ERR_H

#include "lib/parse.h"
#include "lib/nat.h"

static __always_inline int nat_snat_icmp(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
					 __be32 node_ip)
{
	struct tortie_nat4_key fk = {};
	struct tortie_nat4_value *fv;
	struct iphdr in;
	__u32 icsum = l4off + 2, inoff = l4off + 8, pofs, port_at = 0;
	__be16 ports[3], from_port = 0, to_port;
	__be32 pod_ip = pkt->saddr;
	__u32 dgram_end = (__u32)pkt->l3_off + pkt->ip_tot; /* never Ethernet padding */

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

	if (nat_icmp_quote_rewrite(skb, icsum, inoff, offsetof(struct iphdr, daddr), pod_ip, node_ip, in.check,
				   port_at, from_port, to_port) < 0)
		return DROP_ENCAP_FAILED;
	/* Outer source (ICMP has no pseudo-header: only the IPv4 checksum changes). */
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), pod_ip, node_ip, 4) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, saddr), &node_ip, 4, 0) < 0)
		return DROP_ENCAP_FAILED;
	nat_frag_record(pkt, TORTIE_NAT_FWD, node_ip);
	netstat_inc(TORTIE_NS_SNAT);
	return 0;
}

#endif
