/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Workload endpoint programs, attached to the host side of each cali* veth:
 *   tortie_from_wep  tc ingress: packets FROM the workload: anti-spoofing, conntrack, the
 *                    endpoint's egress policy;
 *   tortie_to_wep    tc egress:  packets TO the workload: conntrack, its ingress policy.
 * Both judge through one path (wep_judge, one policy point) and each has one exit, where a
 * DROP_* reason becomes a verdict, a counter and, for policy, an event within the endpoint's
 * event budget (lib/drop.h). ARP passes (proxy ARP answers 169.254.1.1); every other non-IPv4
 * frame, VLAN tag or malformed header is dropped with its reason.
 *
 * Networking: every IPv4 packet tortie_from_wep forwards goes through encap_from_wep
 * (lib/vxlan.h) at the exit: a remote workload behind IPIP (lib/ipip.h) or VXLAN is encapsulated
 * and redirected to the uplink there. With host routing on (lib/host_route.h), a packet for another workload of this
 * node is then judged by the destination's to-workload point (wep_to, the code tortie_to_wep
 * runs, counted for the destination) and redirected into its namespace, and one the fib routes
 * through the uplink is redirected to the uplink's egress. Anything else continues to the kernel
 * (SNAT happens on the uplink's egress).
 *
 * One header per concern: lib/endpoint.h (which endpoint, its addresses), lib/parse.h,
 * lib/frag.h (later fragments follow their first), lib/conntrack.h, lib/policy.h, lib/host.h
 * (workload -> its own node: defaultEndpointToHostAction), lib/ipip.h, lib/vxlan.h, lib/host_route.h,
 * lib/drop.h (the exit's counters and events).
 */
#define TORTIE_CTX_SKB
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/endpoint.h"
#include "lib/frag.h"
#include "lib/conntrack.h"
#include "lib/policy.h"
#include "lib/drop.h"
#include "lib/host.h"
#include "lib/ipip.h"
#include "lib/vxlan.h"
#include "lib/host_route.h"
#include "shared/btf-anchor.h"

static __always_inline void log_hits(const struct tortie_verdict *v, __u32 ifindex, __u32 ep_id,
				     __u8 dir, const struct tortie_pkt *pkt)
{
#pragma unroll
	for (int i = 0; i < TORTIE_MAX_LOG_RULES; i++)
		if (i < v->nlog)
			emit_event(TORTIE_EV_LOG, ifindex, ep_id, dir, v->log_rules[i], 0, pkt);
}

/*
 * One policy point: the endpoint behind the cali* `ifindex` judging a packet in direction `dir`.
 * Returns TORTIE_FORWARD or a drop reason; *ip4 says the packet parsed as IPv4 (*daddr set).
 * It never reads skb->ifindex: tortie_from_wep runs it for the source endpoint and, on the
 * host-routed path (lib/host_route.h), for the destination endpoint too.
 */
static __always_inline int wep_judge(struct __sk_buff *skb, __u32 ifindex, __u8 dir,
				     __be32 *daddr, bool *ip4)
{
	struct tortie_pkt pkt = {};
	struct tortie_endpoint ep;
	struct tortie_verdict verdict;
	struct ct_ctx ct;
	enum ct_result cr;
	__u32 nev;
	__be32 remote;
	int ret;

	if (!ep_lookup(ifindex, &ep)) {
		ret = DROP_UNKNOWN_IFACE;
		goto out;
	}
	if (ep.flags & TORTIE_EP_F_DISABLED) {
		ret = DROP_ENDPOINT_DISABLED;
		goto out;
	}
	/* A hardware-accelerated tag never shows in the data: check the skb field too. */
	if (skb->vlan_present) {
		ret = DROP_VLAN;
		goto out;
	}
	parse_pull_headers(skb);
	ret = parse_packet(skb, &pkt, false, true);
	if (ret == PARSE_ARP) {
		ret = TORTIE_FORWARD;
		goto out;
	}
	if (ret < 0)
		goto out;
	if (ret == PARSE_IPV6) {
		/* Parsed (malformed headers are dropped with their reason above); not enforced yet. */
		ret = DROP_UNSUPPORTED_L3;
		goto out;
	}
	*ip4 = true;
	if (dir == TORTIE_DIR_EGRESS && !ep_addr4_ok(ifindex, pkt.saddr)) {
		ret = DROP_SPOOFED_SRC;
		goto out;
	}
	/* Options are rare: only then walk them. VLAN tags never reach this point on a cali*. */
	if (pkt.ip_opts && parse_ip_srcroute(skb, pkt.ip_hlen)) {
		ret = DROP_IP_SRCROUTE;
		goto out;
	}
	if (pkt.frag == TORTIE_FRAG_LATER) {
		/* The datagram's verdict here is its first fragment's (lib/frag.h). */
		ret = frag_follow(&pkt, dir);
		goto out;
	}
	/* INVALID in Linux conntrack, which Calico drops whatever the policy. */
	if (pkt.proto == IPPROTO_TCP && !tcp_flags_valid(pkt.tcp_flags)) {
		ret = DROP_TCP_BAD_FLAGS;
		goto out;
	}

	cr = ct_lookup(&pkt, dir, &ct);
	if (cr == CT_INVALID) {
		ret = DROP_CT_INVALID;
		goto out;
	}
	if (cr == CT_ESTABLISHED || cr == CT_RELATED) {
		/* A big datagram of an established flow: its later fragments follow it. */
		if (pkt.frag == TORTIE_FRAG_FIRST)
			frag_record(&pkt, dir, 0);
		ret = TORTIE_FORWARD;
		goto out;
	}

	remote = dir == TORTIE_DIR_EGRESS ? pkt.daddr : pkt.saddr;
	ret = policy_decide(ep.table[dir & 1], remote, &pkt, &verdict);
	if (ret < 0) {
		/* One report per denied flow and interval, not one per retransmitted SYN; and only
		 * within the endpoint's event budget (a flood of new tuples is counted, not logged). */
		nev = 1 + (verdict.nlog < TORTIE_MAX_LOG_RULES ? verdict.nlog : TORTIE_MAX_LOG_RULES);
		if (ev_budget(ifindex, nev, false) && deny_report_due(&ct.key, ifindex, dir) &&
		    ev_budget(ifindex, nev, true)) {
			log_hits(&verdict, ifindex, ep.id, dir, &pkt);
			emit_event(TORTIE_EV_DENY, ifindex, ep.id, dir, verdict.rule, ret, &pkt);
		}
		goto out;
	}
	if (verdict.nlog && ev_budget(ifindex, verdict.nlog < TORTIE_MAX_LOG_RULES ? verdict.nlog : TORTIE_MAX_LOG_RULES, true))
		log_hits(&verdict, ifindex, ep.id, dir, &pkt);
	/* Before the commit: a refused flow leaves no state that would pass its next packet. */
	if (dir == TORTIE_DIR_EGRESS) {
		ret = host_from_wep(skb, &pkt);
		if (ret < 0)
			goto out;
	}
	ret = ct_commit(&pkt, dir, &ct, cr, verdict.rule);
	if (ret < 0)
		goto out;
	if (pkt.frag == TORTIE_FRAG_FIRST)
		frag_record(&pkt, dir, 0);
	ret = TORTIE_FORWARD;
out:
	*daddr = pkt.daddr;
	return ret;
}

/* The to-workload point, counted; tortie_to_wep, and the host-routed path for the destination. */
static __always_inline int wep_to(struct __sk_buff *skb, __u32 ifindex)
{
	__be32 daddr = 0;
	bool ip4 = false;
	__u32 len = skb->len;
	int ret;

	ret = wep_judge(skb, ifindex, TORTIE_DIR_INGRESS, &daddr, &ip4);
	count_packet(ifindex, TORTIE_DIR_INGRESS, ret, len);
	return ret;
}

SEC("tc")
int tortie_from_wep(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex, len = skb->len;
	__be32 daddr = 0;
	bool ip4 = false;
	int ret, act = TC_ACT_OK;
	__u32 dst = 0;

	ret = wep_judge(skb, ifindex, TORTIE_DIR_EGRESS, &daddr, &ip4);
	if (ret == TORTIE_FORWARD && ip4) {
		act = encap_from_wep(skb, daddr);
		if (act == TC_ACT_OK)
			act = hr_route(skb, &dst);
		if (act < 0)
			ret = act;
	}
	count_packet(ifindex, TORTIE_DIR_EGRESS, ret, len);
	if (ret < 0)
		return TC_ACT_SHOT;
	if (dst > 0)
		return wep_to(skb, dst) < 0 ? TC_ACT_SHOT : hr_redirect(dst);
	return act;
}

SEC("tc")
int tortie_to_wep(struct __sk_buff *skb)
{
	return wep_to(skb, skb->ifindex) < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
