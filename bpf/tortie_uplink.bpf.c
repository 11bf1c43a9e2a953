/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Uplink tc programs (the host's interface towards the other nodes and the outside):
 *   tortie_uplink_in   tc ingress: IPIP to this node from a known node is decapsulated and
 *                      redirected to the workload's cali* (lib/ipip.h ipip_uplink_in; else the
 *                      kernel routes the inner packet), VXLAN to this node's port likewise
 *                      after its checks (lib/vxlan.h vxlan_uplink_in);
 *                      IPIP from anyone else is dropped (DROP_IPIP_UNKNOWN_SRC); replies of
 *                      SNATed flows (lib/nat.h), ICMP errors about them (lib/icmp_err.h) and
 *                      their later fragments (lib/nat.h nat_frag_later) are translated back to
 *                      the workload.
 *   tortie_uplink_out  tc egress: packets the kernel routed to a remote workload whose route
 *                      says ENCAP get the outer headers (lib/ipip.h, lib/vxlan.h); workload traffic from a
 *                      natOutgoing pool to a destination outside every pool, not a node and not
 *                      this host (judged at a flow's first packet), is SNATed to the node address; ICMP errors of SNATed
 *                      flows are translated like them, other ICMP from such pools is dropped
 *                      (lib/icmp_err.h).
 * Untagged IPv6 (uplink6_ingress / uplink6_egress): VXLAN over IPv6 (lib/vxlan6.h: decapsulated
 * on ingress after its checks, encapsulated on egress for routes that say so), NAT66 of natOutgoing IPv6 pools, of
 * ICMPv6 errors about their mappings and of their later fragments (lib/nat6.h), once the agent has written tortie_netcfg6_v1; host
 * endpoint policy for IPv6 (lib/hostep.h) as for IPv4: arriving after NAT66's reverse translation
 * (a translated reply is tracked; judged at the program's entry, uplink6_hep), leaving before
 * NAT66; VXLAN between this node and known nodes is not judged (vxlan6.h's own checks apply;
 * uplink6_node_vxlan), nor is workload traffic the uplink encapsulates.
 * Both also carry host endpoint policy (lib/hostep.h; IPIP between nodes and tunnelled
 * workload traffic excepted). Everything else passes untouched, including VLAN-tagged and
 * non-IP frames. Until the agent has written tortie_netcfg_v1 (the node address) both
 * programs only count and apply host endpoint policy.
 * One exit per program: a DROP_* reason becomes TC_ACT_SHOT and a counter (TORTIE_DIR_UPLINK).
 */
#define TORTIE_CTX_SKB
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/drop.h"
#include "lib/route.h"
#include "lib/ipip.h"
#include "lib/vxlan.h"
#include "lib/vxlan6.h"
#include "lib/nat.h"
#include "lib/nat6.h"
#include "lib/icmp_err.h"
#include "lib/hostep.h"
#include "shared/btf-anchor.h"

/* Untagged IPv4 only (lib/hostep.h host_parse): PARSE_IPV4, 0 to pass untouched, < 0 a drop.
 * parse_pull_headers pulls the outer IP + 20 bytes (IPIP's inner header is read with
 * bpf_skb_load_bytes) and an ICMP error's quote: a cloned head (TCP's) is not copied. */
#define uplink_parse host_parse

/* The SNAT source of natOutgoing pools: Felix's natOutgoingAddress, else the node address. */
static __always_inline __be32 snat_addr(const struct tortie_netcfg *cfg)
{
	return cfg->snat_ip ? cfg->snat_ip : cfg->node_ip;
}

/* An IPv6 packet arriving: replies of NAT66 mappings are translated back; then host endpoint
 * policy (lib/hostep.h hep6_point: a parse failure passes where no host endpoint applies). */
static __noinline int uplink6_ingress(struct __sk_buff *skb)
{
	const struct tortie_netcfg6 *cfg = netcfg6_get();
	struct tortie_pkt pkt = {}, *hp;
	int ret;

	ret = host_parse6(skb, &pkt) /* lib/hostep.h */;
	hp = hep6_slot(&pkt); /* host endpoint policy's copy, as the packet arrived */
	if (!cfg || ret != PARSE_IPV6 || !ip6_eq(pkt.daddr6, snat6_addr(cfg)))
		return hep6_defer(hp, ret, false);
	if (pkt.frag == TORTIE_FRAG_LATER) {
		ret = nat6_frag_later(skb, &pkt, TORTIE_FRAG_PT_RNAT);
		return ret < 0 ? ret : hep6_defer(hp, PARSE_IPV6, ret > 0);
	}
	/* An error quoting a translated flow goes to its workload; only an echo reply answers a
	 * translated ping: requests and other ICMPv6 are the node's. */
	if (pkt.proto == IP6_NH_ICMP && icmp6_is_error((__u8)(pkt.dport >> 8)))
		ret = nat6_err_rev(skb, &pkt, pkt.l3_off + pkt.l4_off, snat6_addr(cfg));
	else if (pkt.proto == IP6_NH_ICMP && pkt.echo != TORTIE_ECHO_REPLY)
		ret = 0;
	else
		ret = nat6_rev(skb, &pkt, pkt.l3_off + pkt.l4_off, snat6_addr(cfg));
	return ret < 0 ? ret : hep6_defer(hp, PARSE_IPV6, ret > 0);
}

/* An IPv6 packet leaving: NAT66 of natOutgoing pools' traffic to the outside; the node's own
 * packets take back a tuple a mapping holds. Nothing from such a pool leaves untranslated. */
static __noinline int uplink6_egress(struct __sk_buff *skb)
{
	const struct tortie_netcfg6 *cfg = netcfg6_get();
	struct tortie_pkt pkt = {};
	int ret;

	if (!cfg)
		return TORTIE_FORWARD;
	ret = host_parse6(skb, &pkt) /* lib/hostep.h */;
	if (ret == 0)
		return TORTIE_FORWARD;
	if (ret < 0) {
		/* Unparseable: passes, unless it is a natOutgoing pool's. */
		nat6_refused_addrs(skb, &pkt);
		return pkt.family == 6 && needs_snat6(&pkt, cfg) ? ret : TORTIE_FORWARD;
	}
	if (ret != PARSE_IPV6)
		return TORTIE_FORWARD;
	if (needs_snat6(&pkt, cfg)) {
		if (pkt.frag == TORTIE_FRAG_LATER) {
			ret = nat6_frag_later(skb, &pkt, TORTIE_FRAG_PT_SNAT);
			return ret < 0 ? ret : TORTIE_FORWARD;
		}
		/* Errors about a translated flow leave as the node's; other ICMPv6 is refused. */
		if (pkt.proto == IP6_NH_ICMP && pkt.echo != TORTIE_ECHO_REQUEST)
			return nat6_err_snat(skb, &pkt, pkt.l3_off + pkt.l4_off, snat6_addr(cfg));
		return nat6_out(skb, &pkt, pkt.l3_off + pkt.l4_off, snat6_addr(cfg));
	}
	if (ip6_eq(pkt.saddr6, snat6_addr(cfg)))
		nat6_host_egress(&pkt);
	return TORTIE_FORWARD;
}

/* VXLAN between this node and a known node (outer IPv6): not host endpoint traffic, as Felix
 * allows VXLAN from and to Calico hosts ahead of host endpoint policy (IPv4: vxlan_is_tunnel_out,
 * vxlan_for_us). */
static __always_inline bool uplink6_node_vxlan(const struct tortie_pkt *p, bool in)
{
	const struct tortie_vxlan_cfg *vx;
	struct tortie_node6_key k = {};

	if (p->proto != IPPROTO_UDP || p->frag != TORTIE_FRAG_NONE)
		return false;
	vx = vxcfg_get();
	if (!vx || p->dport != vx->port)
		return false;
	__builtin_memcpy(k.addr, in ? p->saddr6 : p->daddr6, 16);
	return bpf_map_lookup_elem(&tortie_node6_v1, &k) != NULL;
}

/* Host endpoint policy for an IPv6 packet on the uplink (lib/hostep.h): arriving, what
 * uplink6_ingress deferred; leaving, the packet parsed and judged before NAT66 (which parses
 * again). */
static __noinline int uplink6_hep(struct __sk_buff *skb, bool in)
{
	struct hep6_scratch *sc;
	struct tortie_pkt *p;
	int parsed;

	if (in) {
		sc = hep6_deferred();
		if (!sc || (sc->parsed == PARSE_IPV6 && uplink6_node_vxlan(&sc->pkt, true)))
			return TORTIE_FORWARD;
		return hep6_point(skb, &sc->pkt, sc->parsed, true, sc->tracked);
	}
	p = hep6_slot(NULL);
	if (!p)
		return TORTIE_FORWARD;
	parsed = hep6_parse(skb, p);
	if (parsed == PARSE_IPV6 && uplink6_node_vxlan(p, false))
		return TORTIE_FORWARD;
	return hep6_point(skb, p, parsed, false, false);
}

/* Returns the drop reason (or TORTIE_FORWARD); *act is the tc verdict for forwarded packets. */
static __noinline int uplink_ingress(struct __sk_buff *skb, int *act)
{
	const struct tortie_netcfg *cfg = netcfg_get();
	const struct tortie_vxlan_cfg *vx;
	struct tortie_pkt pkt = {};
	bool translated = false;
	__u32 l4off = 0;
	int ret;

	if (!cfg) {
		/* Networking not configured yet: only host endpoint policy applies (and what it cannot
		 * parse passes, as everything did before). */
		ret = uplink_parse(skb, &pkt, &l4off);
		return ret <= 0 ? TORTIE_FORWARD : hep_ingress(skb, &pkt, false);
	}
	ret = uplink_parse(skb, &pkt, &l4off);
	if (ret <= 0)
		return ret;
	if (pkt.proto == IPPROTO_IPIP)
		return ipip_uplink_in(skb, &pkt, l4off, cfg->node_ip, act);
	vx = vxlan_for_us(&pkt, cfg);
	if (vx)
		return vxlan_uplink_in(skb, &pkt, l4off, vx, cfg->node_ip, act);
	if (pkt.daddr == snat_addr(cfg) && pkt.frag == TORTIE_FRAG_LATER) {
		ret = nat_frag_later(skb, &pkt, TORTIE_FRAG_PT_RNAT);
		if (ret < 0)
			return ret;
		translated = ret > 0;
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
		translated = ret > 0;
	}
	/* Host endpoint policy: a reply of a SNATed flow (translated back) is established,
	 * as in Linux conntrack; doNotTrack policy still sees it as it arrived (pkt is not
	 * rewritten), as Felix's raw table does. IPIP and VXLAN from known nodes were handled
	 * above: Felix allows them before host endpoint policy too. */
	return hep_ingress(skb, &pkt, translated);
}

/*
 * SNAT applies: source in a natOutgoing pool; destination not us (snat_from), in no pool and not a
 * node (snat_to). A flow with a live mapping skips snat_to (nat_fwd_established: the decision is
 * its first packet's, as conntrack's NEW state decides MASQUERADE in Calico's iptables dataplane).
 */
static __always_inline bool snat_from(const struct tortie_pkt *pkt, const struct tortie_netcfg *cfg)
{
	const struct tortie_pool *src = pool_lookup(pkt->saddr);

	if (!src || !(src->flags & TORTIE_POOL_F_NAT_OUT))
		return false;
	return pkt->daddr != cfg->node_ip && pkt->daddr != snat_addr(cfg);
}

static __always_inline bool snat_to(const struct tortie_pkt *pkt)
{
	return !pool_lookup(pkt->daddr) && !node_known(pkt->daddr);
}

static __noinline int uplink_egress(struct __sk_buff *skb)
{
	const struct tortie_netcfg *cfg = netcfg_get();
	const struct tortie_route *rt;
	struct tortie_pkt pkt = {};
	__u32 l4off = 0;
	int ret;

	if (!cfg) {
		ret = uplink_parse(skb, &pkt, &l4off);
		return ret <= 0 ? TORTIE_FORWARD : hep_egress(skb, &pkt);
	}
	ret = uplink_parse(skb, &pkt, &l4off);
	if (ret <= 0)
		return ret;
	/* Our own VXLAN packets to other nodes (encapsulated by the fast path): Felix allows them
	 * to Calico nodes before host endpoint policy; not NAT candidates. */
	if (vxlan_is_tunnel_out(&pkt, cfg))
		return TORTIE_FORWARD;
	rt = rt_lookup(pkt.daddr);
	/* Host endpoint policy, before SNAT (on the workload's address, as Felix's FORWARD chain):
	 * not for what crosses the IPIP or VXLAN tunnel (Felix: via tunl0 / vxlan.calico, its outer
	 * packet allowed to Calico nodes). */
	if (!(pkt.proto == IPPROTO_IPIP && node_known(pkt.daddr)) && !(rt && (rt->flags & TORTIE_RT_F_ENCAP))) {
		ret = hep_egress(skb, &pkt);
		if (ret < 0)
			return ret;
	}
	if (rt) {
		if (!(rt->flags & TORTIE_RT_F_ENCAP) || pkt.proto == IPPROTO_IPIP)
			return TORTIE_FORWARD;
		if (rt->flags & TORTIE_RT_F_VXLAN)
			return vxlan_uplink_out(skb, cfg, rt);
		ret = ipip_push(skb, cfg->node_ip, rt->next_hop);
		if (ret == 0)
			netstat_inc(TORTIE_NS_ENCAP_UPLINK);
		return ret;
	}
	if (snat_from(&pkt, cfg)) {
		if (pkt.frag == TORTIE_FRAG_LATER) {
			/* As its first fragment was: translated if recorded so (nat_snat), else left as is. */
			ret = nat_frag_later(skb, &pkt, TORTIE_FRAG_PT_SNAT);
			return ret < 0 ? ret : TORTIE_FORWARD;
		} else if (pkt.proto == IPPROTO_ICMP && !icmp_is_echo((__u8)(pkt.dport >> 8))) {
			/* Errors and queries: translated like their flow or dropped (lib/icmp_err.h). */
			if (snat_to(&pkt))
				return icmp_err_snat(skb, &pkt, l4off, snat_addr(cfg));
		} else {
			struct tortie_nat4_key fk = {};
			struct tortie_nat4_value *fv;
			__u64 now = bpf_ktime_get_ns();

			nat_fwd_key(&fk, &pkt);
			fv = bpf_map_lookup_elem(&tortie_nat4_v2, &fk);
			if (nat_fwd_established(fv, &pkt, snat_addr(cfg), now) || snat_to(&pkt))
				return nat_snat(skb, &pkt, l4off, snat_addr(cfg), &fk, fv, now);
		}
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
	int act = TC_ACT_OK, ret;

	/* Each family in a frame of its own: NAT66's 128-bit state and the IPv4 path never share one
	 * stack (the verifier bounds a call chain's total at 512 bytes). */
	ret = skb->protocol == bpf_htons(ETH_P_IPV6) ? vxlan6_uplink_in(skb) : VXLAN6_NOT_OURS; /* its own frame too */
	if (ret == VXLAN6_NOT_OURS) {
		ret = skb->protocol == bpf_htons(ETH_P_IPV6) ? uplink6_ingress(skb) : uplink_ingress(skb, &act);
		if (ret >= 0 && skb->protocol == bpf_htons(ETH_P_IPV6))
			ret = uplink6_hep(skb, true); /* host endpoint policy (lib/hostep.h) */
	}
	return uplink_exit(ifindex, len, ret, act);
}

SEC("tc")
int tortie_uplink_out(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex, len = skb->len;
	int ret = skb->protocol == bpf_htons(ETH_P_IPV6) ? vxlan6_uplink_out(skb) : VXLAN6_NOT_OURS;

	if (ret != VXLAN6_NOT_OURS) {
		/* Workload traffic encapsulated towards a node: not host endpoint traffic. */
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		/* Host endpoint policy first, on the workload's address (as IPv4's before SNAT). */
		ret = uplink6_hep(skb, false);
		if (ret >= 0)
			ret = uplink6_egress(skb);
	} else {
		ret = uplink_egress(skb);
	}

	return uplink_exit(ifindex, len, ret, TC_ACT_OK);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
