/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Uplink tc programs (the host's interface towards the other nodes and the outside):
 *   tortie_uplink_in   tc ingress: IPIP to this node from a known node is decapsulated and
 *                      redirected to the workload's cali* (lib/ipip.h ipip_uplink_in; else the
 *                      kernel routes the inner packet);
 *                      IPIP from anyone else is dropped (DROP_IPIP_UNKNOWN_SRC); replies of
 *                      SNATed flows (lib/nat.h), ICMP errors about them (lib/icmp_err.h) and
 *                      their later fragments (lib/nat.h nat_frag_later) are translated back to
 *                      the workload.
 *   tortie_uplink_out  tc egress: packets the kernel routed to a remote workload whose route
 *                      says ENCAP get the outer header (lib/ipip.h); workload traffic from a
 *                      natOutgoing pool to a destination outside every pool, not a node and not
 *                      this host, is SNATed to the node address; ICMP errors of SNATed
 *                      flows are translated like them, other ICMP from such pools is dropped
 *                      (lib/icmp_err.h).
 * Everything else passes untouched, including VLAN-tagged and non-IPv4 frames. Until the agent
 * has written tortie_netcfg_v1 (the node address) both programs only count.
 * One exit per program: a DROP_* reason becomes TC_ACT_SHOT and a counter (TORTIE_DIR_UPLINK).
 */
#define TORTIE_CTX_SKB
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/drop.h"
#include "lib/route.h"
#include "lib/ipip.h"
#include "lib/nat.h"
#include "lib/icmp_err.h"
#include "shared/btf-anchor.h"

/* Untagged IPv4 only: returns PARSE_IPV4 with pkt filled, 0 to pass untouched, < 0 a drop. */
static __always_inline int uplink_parse(struct __sk_buff *skb, struct tortie_pkt *pkt, __u32 *l4off)
{
	struct ethhdr *eth;
	struct iphdr *ip;
	int ret;

	if (skb->vlan_present)
		return 0;
	/* Only the headers parse_packet() reads (outer IP + 20 bytes for IPIP, whose inner header
	 * the decap path reads with bpf_skb_load_bytes; the quoted header of an ICMP error): a GSO
	 * packet's payload stays in its frags, and a cloned head (TCP's) is not copied. */
	parse_pull_headers(skb);
	eth = ctx_data(skb);
	if ((void *)(eth + 1) > ctx_data_end(skb))
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ret = parse_packet(skb, pkt, false, true);
	if (ret < 0)
		return ret;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > ctx_data_end(skb))
		return DROP_TRUNC_IP;
	*l4off = ETH_HLEN + ip->ihl * 4;
	return PARSE_IPV4;
}

/* The SNAT source of natOutgoing pools: Felix's natOutgoingAddress, else the node address. */
static __always_inline __be32 snat_addr(const struct tortie_netcfg *cfg)
{
	return cfg->snat_ip ? cfg->snat_ip : cfg->node_ip;
}

/* Returns the drop reason (or TORTIE_FORWARD); *act is the tc verdict for forwarded packets. */
static __always_inline int uplink_ingress(struct __sk_buff *skb, int *act)
{
	const struct tortie_netcfg *cfg = netcfg_get();
	struct tortie_pkt pkt = {};
	__u32 l4off = 0;
	int ret;

	if (!cfg)
		return TORTIE_FORWARD;
	ret = uplink_parse(skb, &pkt, &l4off);
	if (ret <= 0)
		return ret;
	if (pkt.proto == IPPROTO_IPIP)
		return ipip_uplink_in(skb, &pkt, l4off, cfg->node_ip, act);
	if (pkt.daddr == snat_addr(cfg) && pkt.frag == TORTIE_FRAG_LATER) {
		ret = nat_frag_later(skb, &pkt, TORTIE_FRAG_PT_RNAT);
		if (ret < 0)
			return ret;
	} else if (pkt.daddr == snat_addr(cfg)) {
		__u8 type = (__u8)(pkt.dport >> 8);

		if (pkt.proto == IPPROTO_ICMP && icmp_is_error(type))
			ret = icmp_err_rev(skb, &pkt, l4off, snat_addr(cfg));
		else if (pkt.proto == IPPROTO_ICMP && type != ICMP_ECHOREPLY)
			ret = 0; /* only an echo reply answers a SNATed ping: requests and queries are the node's */
		else
			ret = nat_rev(skb, &pkt, l4off, snat_addr(cfg));
		if (ret < 0)
			return ret;
	}
	return TORTIE_FORWARD;
}

/* SNAT applies: source in a natOutgoing pool; destination in no pool, not a node, not us. */
static __always_inline bool needs_snat(const struct tortie_pkt *pkt, const struct tortie_netcfg *cfg)
{
	const struct tortie_pool *src = pool_lookup(pkt->saddr);

	if (!src || !(src->flags & TORTIE_POOL_F_NAT_OUT))
		return false;
	if (pkt->daddr == cfg->node_ip || pkt->daddr == snat_addr(cfg) || pool_lookup(pkt->daddr) || node_known(pkt->daddr))
		return false;
	return true;
}

static __always_inline int uplink_egress(struct __sk_buff *skb)
{
	const struct tortie_netcfg *cfg = netcfg_get();
	const struct tortie_route *rt;
	struct tortie_pkt pkt = {};
	__u32 l4off = 0;
	int ret;

	if (!cfg)
		return TORTIE_FORWARD;
	ret = uplink_parse(skb, &pkt, &l4off);
	if (ret <= 0)
		return ret;
	rt = rt_lookup(pkt.daddr);
	if (rt) {
		if (!(rt->flags & TORTIE_RT_F_ENCAP) || pkt.proto == IPPROTO_IPIP)
			return TORTIE_FORWARD;
		ret = ipip_push(skb, cfg->node_ip, rt->next_hop);
		if (ret == 0)
			netstat_inc(TORTIE_NS_ENCAP_UPLINK);
		return ret;
	}
	if (needs_snat(&pkt, cfg)) {
		if (pkt.frag == TORTIE_FRAG_LATER) {
			ret = nat_frag_later(skb, &pkt, TORTIE_FRAG_PT_SNAT);
			return ret < 0 ? ret : TORTIE_FORWARD;
		}
		/* Errors and queries: translated like their flow or dropped (lib/icmp_err.h). */
		if (pkt.proto == IPPROTO_ICMP && !icmp_is_echo((__u8)(pkt.dport >> 8)))
			return icmp_err_snat(skb, &pkt, l4off, snat_addr(cfg));
		return nat_snat(skb, &pkt, l4off, snat_addr(cfg));
	}
	if (pkt.saddr == snat_addr(cfg))
		nat_host_egress(&pkt);
	return TORTIE_FORWARD;
}

/* The single exit: the packet is counted with its length before any rewrite. */
static __always_inline int uplink_exit(__u32 ifindex, __u32 len, int ret, int act)
{
	count_packet(ifindex, TORTIE_DIR_UPLINK, ret, len);
	return ret < 0 ? TC_ACT_SHOT : act;
}

SEC("tc")
int tortie_uplink_in(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex, len = skb->len;
	int act = TC_ACT_OK, ret = uplink_ingress(skb, &act);

	return uplink_exit(ifindex, len, ret, act);
}

SEC("tc")
int tortie_uplink_out(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex, len = skb->len;

	return uplink_exit(ifindex, len, uplink_egress(skb), TC_ACT_OK);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
