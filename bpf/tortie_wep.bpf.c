/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Workload endpoint programs, attached to the host side of each cali* veth:
 *   tortie_from_wep  tc ingress: packets FROM the workload: anti-spoofing, conntrack, the
 *                    endpoint's egress policy;
 *   tortie_to_wep    tc egress:  packets TO the workload: conntrack, its ingress policy.
 * Both judge through one path (wep_judge, one policy point) and each has one exit, where a
 * DROP_* reason becomes a verdict, a counter and, for policy, an event within the endpoint's
 * event budget (lib/drop.h). ARP passes (proxy ARP answers 169.254.1.1); IPv6 takes wep_judge6
 * (the same sequence over the IPv6 maps, neighbour discovery before policy); every other frame,
 * VLAN tag or malformed header is dropped with its reason.
 *
 * Networking: every IPv4 packet tortie_from_wep forwards goes through encap_from_wep
 * (lib/vxlan.h) at the exit: a remote workload behind IPIP (lib/ipip.h) or VXLAN is encapsulated
 * and redirected to the uplink there. With host routing on (lib/host_route.h), a packet for another
 * workload of this node (found by its address first, hr_local, before the remote-route lookup of
 * encap_from_wep, or by the fib after it) is judged by the destination's to-workload point (wep_to, the code tortie_to_wep
 * runs, counted for the destination; it takes the source point's parse and conntrack entry
 * instead of redoing them) and redirected into its namespace, and one the fib routes
 * through the uplink is redirected to the uplink's egress. IPv6 the same way (lib/host_route6.h,
 * the destination judged by wep6_point). Anything else continues to the kernel (SNAT and NAT66
 * happen on the uplink's egress).
 *
 * One header per concern: lib/endpoint.h (which endpoint, its addresses), lib/parse.h,
 * lib/frag.h (later fragments follow their first), lib/conntrack.h, lib/policy.h, lib/host.h
 * (workload -> its own node: defaultEndpointToHostAction), lib/ipip.h, lib/vxlan.h, lib/host_route.h,
 * lib/host_route6.h, lib/drop.h (the exit's counters and events).
 */
#define TORTIE_CTX_SKB
#define TORTIE_PARSE_V6_APART
#define TORTIE_PARSE_IN_PLACE 1
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
#include "lib/host_route6.h"
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
 * Neighbour discovery, MLD and router messages, before anti-spoofing and policy. From a workload:
 * router advertisements and redirects are dropped (DROP_ICMP6_ROUTER); NS/NA/RS/MLD pass only to a
 * link-local or link-scope multicast destination (never forwarded by the node) and from the unspecified
 * address (DAD), a link-local address or the workload's own (DROP_ICMP6_ND_SCOPE otherwise). To a
 * workload: ND/RS/RA/MLD from a link-local or unspecified source (the node on this link: routers
 * never forward link-local sources) pass. Returns 1 (not such a message: go on), TORTIE_FORWARD or
 * a drop reason.
 */
static __always_inline int wep_ndp(const struct tortie_pkt *pkt, __u32 ifindex, __u8 dir)
{
	__u8 type = pkt->dport >> 8;

	if (pkt->proto != IP6_NH_ICMP || pkt->frag != TORTIE_FRAG_NONE)
		return 1;
	if (dir == TORTIE_DIR_EGRESS) {
		if (type == ICMP6_ROUTER_ADV || type == ICMP6_REDIRECT)
			return DROP_ICMP6_ROUTER;
		if (!icmp6_is_ndp(type))
			return 1;
		if (!ip6_is_linklocal(pkt->daddr6) && !ip6_is_multicast(pkt->daddr6))
			return DROP_ICMP6_ND_SCOPE;
		if (!ip6_is_unspecified(pkt->saddr6) && !ip6_is_linklocal(pkt->saddr6) &&
		    !ep_addr6_ok(ifindex, pkt->saddr6))
			return DROP_ICMP6_ND_SCOPE;
		return TORTIE_FORWARD;
	}
	if (!icmp6_is_ndp(type) && type != ICMP6_ROUTER_ADV && type != ICMP6_REDIRECT)
		return 1;
	if (ip6_is_linklocal(pkt->saddr6) || ip6_is_unspecified(pkt->saddr6))
		return TORTIE_FORWARD;
	return 1;
}

/* The parsed packet (both families; on the host-routed path the destination's point reuses the
 * source's) and wep_judge6's verdict: in a per-CPU slot, not on the stack (the caller's frame and
 * the points' together must stay within the verifier's 512 bytes). tc programs do not nest on a
 * CPU, and tortie_from_wep reads the slot only within its own run. */
struct wep_scratch {
	struct tortie_pkt pkt;
	struct tortie_verdict verdict;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct wep_scratch);
	__uint(max_entries, 1);
} tortie_weps SEC(".maps");

/* count_packet for a workload's point: a forwarded packet of an endpoint with a counter slot is
 * counted in its tortie_epcnt_v1 slot (an array index: no hash lookup), anything else in
 * tortie_cnt_v1. Readers see one (ifindex, dir, reason) counter either way (lib/endpoint.h). */
static __always_inline void count_ep_packet(__u32 ifindex, __u32 slot, __u8 dir, int reason, __u32 len)
{
	__u32 i = slot * 2 + (dir & 1);
	struct tortie_cnt_value *c;

	if (reason == TORTIE_FORWARD && slot && slot < TORTIE_EPCNT_SLOTS) {
		c = bpf_map_lookup_elem(&tortie_epcnt_v1, &i);
		if (c) {
			c->packets++;
			c->bytes += len;
			return;
		}
	}
	count_packet(ifindex, dir, reason, len);
}

/*
 * One IPv6 policy point: wep_judge's sequence for an IPv6 packet (parse, ND before policy,
 * anti-spoofing, later fragments, INVALID TCP flags, conntrack, policy through tortie_cls6_v1 and
 * the endpoint's tables, endpoint-to-host, commit). The entry programs branch to it before the
 * IPv4 path, which it leaves unchanged. With host routing on, tortie_from_wep runs it for the
 * destination workload too (lib/host_route6.h), as wep_judge for IPv4.
 */
static __always_inline int wep_judge6(struct __sk_buff *skb, __u32 ifindex, __u32 dir, __u32 ep_id,
				      __u32 table, bool again, struct ct6_ctx *c, struct hr_dst *h)
{
	struct wep_scratch *sc;
	struct tortie_pkt *p;
	struct tortie_verdict *v;
	struct tortie_ct4_key fold;
	enum ct_result cr;
	const __be32 *remote;
	__u32 nev, zero = 0;
	int ret;

	if (dir > TORTIE_DIR_EGRESS)
		return DROP_UNSUPPORTED_L3;
	sc = bpf_map_lookup_elem(&tortie_weps, &zero);
	if (!sc)
		return DROP_UNSUPPORTED_L3;
	p = &sc->pkt;
	v = &sc->verdict;
	/* again: the destination's point of a host-routed packet, parsed by the source's (as wep_judge). */
	if (!again) {
		__builtin_memset(p, 0, sizeof(*p));
		parse_pull_headers(skb);
		ret = parse_ipv6(skb, p, ETH_HLEN, true);
		if (ret < 0)
			return ret;
	}
	ret = wep_ndp(p, ifindex, dir);
	if (ret <= 0)
		return ret;
	if (dir == TORTIE_DIR_EGRESS && !ep_addr6_ok(ifindex, p->saddr6))
		return DROP_SPOOFED_SRC;
	if (p->frag == TORTIE_FRAG_LATER)
		return frag6_follow(p, dir);
	if (!again && p->proto == IPPROTO_TCP && !tcp_flags_valid(p->tcp_flags))
		return DROP_TCP_BAD_FLAGS;

	cr = again ? ct6_lookup_again(p, dir, c) : ct6_lookup(p, dir, c);
	if (cr == CT_INVALID)
		return DROP_CT_INVALID;
	if (cr == CT_ESTABLISHED || cr == CT_RELATED) {
		if (p->frag == TORTIE_FRAG_FIRST)
			frag6_record(p, dir);
		return TORTIE_FORWARD;
	}

	remote = dir == TORTIE_DIR_EGRESS ? p->daddr6 : p->saddr6;
	ret = policy_decide6(table, remote, p, v);
	if (ret < 0) {
		nev = 1 + (v->nlog < TORTIE_MAX_LOG_RULES ? v->nlog : TORTIE_MAX_LOG_RULES);
		ct6_fold(&fold, &c->key);
		if (ev_budget(ifindex, nev, false) && deny_report_due(&fold, ifindex, dir) &&
		    ev_budget(ifindex, nev, true)) {
			log_hits(v, ifindex, ep_id, dir, p);
			emit_event(TORTIE_EV_DENY, ifindex, ep_id, dir, v->rule, ret, p);
		}
		return ret;
	}
	if (v->nlog && ev_budget(ifindex, v->nlog < TORTIE_MAX_LOG_RULES ? v->nlog : TORTIE_MAX_LOG_RULES, true))
		log_hits(v, ifindex, ep_id, dir, p);
	/* A packet host routing forwards to a local workload is not for the node (hr_skips_host). */
	if (dir == TORTIE_DIR_EGRESS && !hr_skips_host(skb, p->daddr6, true, h)) {
		ret = host_from_wep6(skb, p);
		if (ret < 0)
			return ret;
	}
	ret = ct6_commit(p, dir, c, cr, v->rule);
	if (ret < 0)
		return ret;
	if (p->frag == TORTIE_FRAG_FIRST)
		frag6_record(p, dir);
	return TORTIE_FORWARD;
}

/* The endpoint behind `ifindex`: `known` (the entry host routing found, again: the destination's
 * point) copied, else looked up. False if unknown. */
static __always_inline bool wep_ep(__u32 ifindex, const struct tortie_endpoint *known, struct tortie_endpoint *ep)
{
	if (!known)
		return ep_lookup(ifindex, ep);
	__builtin_memcpy(ep, known, sizeof(*ep));
	return true;
}

/* The IPv6 policy point of the endpoint behind `ifindex` (never skb->ifindex: on the host-routed
 * path tortie_from_wep runs it for the destination too, `again` with the source's parse and
 * conntrack context, as wep_judge). Returns TORTIE_FORWARD or a drop reason. */
static __always_inline int wep6_judge_ep(struct __sk_buff *skb, __u32 ifindex, __u8 dir, bool again,
					 const struct tortie_endpoint *known, struct ct6_ctx *c, __u32 *slot,
					 struct hr_dst *h)
{
	struct tortie_endpoint ep;

	if (!wep_ep(ifindex, known, &ep))
		return DROP_UNKNOWN_IFACE;
	*slot = ep.slot;
	if (ep.flags & TORTIE_EP_F_DISABLED)
		return DROP_ENDPOINT_DISABLED;
	if (skb->vlan_present)
		return DROP_VLAN;
	return wep_judge6(skb, ifindex, dir, ep.id, ep.table[dir & 1], again, c, h);
}

/* The same, counted: tortie_to_wep, and the host-routed path for the destination. */
static __always_inline int wep6_point(struct __sk_buff *skb, __u32 ifindex, __u8 dir, bool again,
				      const struct tortie_endpoint *known, struct ct6_ctx *c)
{
	__u32 len = skb->len, slot = 0;
	int ret = wep6_judge_ep(skb, ifindex, dir, again, known, c, &slot, NULL);

	count_ep_packet(ifindex, slot, dir, ret, len);
	return ret < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

/*
 * One policy point: the endpoint behind the cali* `ifindex` judging a packet in direction `dir`.
 * Returns TORTIE_FORWARD or a drop reason; *ip4 says the packet parsed as IPv4 (into *pkt, with
 * its flow's conntrack key and entry in *ct). It never reads skb->ifindex: tortie_from_wep runs it
 * for the source endpoint and, on the host-routed path (lib/host_route.h), for the destination
 * endpoint too. That second run (`again`) takes *pkt and *ct as the source's run left them: the
 * same datagram (the forwarding rewrite changed only TTL, checksum and MACs) already parsed and
 * past the checks that do not depend on the point (IP options, TCP flags), and its flow's
 * conntrack entry (ct_lookup_again); the destination's own checks, fragments, conntrack approval,
 * policy, events and commit run as on its cali*.
 */
static __always_inline int wep_judge(struct __sk_buff *skb, __u32 ifindex, __u8 dir, bool again,
				     const struct tortie_endpoint *known, struct tortie_pkt *p,
				     struct ct_ctx *ct, bool *ip4, __u32 *slot, struct hr_dst *h)
{
	struct tortie_endpoint ep;
	struct tortie_verdict verdict;
	enum ct_result cr;
	__u32 nev;
	__be32 remote;
	int ret;

	if (!wep_ep(ifindex, known, &ep))
		return DROP_UNKNOWN_IFACE;
	*slot = ep.slot;
	if (ep.flags & TORTIE_EP_F_DISABLED)
		return DROP_ENDPOINT_DISABLED;
	/* A hardware-accelerated tag never shows in the data: check the skb field too. */
	if (skb->vlan_present)
		return DROP_VLAN;
	if (!again) {
		parse_pull_headers(skb);
		ret = parse_packet(skb, p, false, true);
		if (ret == PARSE_ARP)
			return TORTIE_FORWARD;
		if (ret < 0)
			return ret;
		*ip4 = true;
		if (dir == TORTIE_DIR_EGRESS && !ep_addr4_ok(ifindex, p->saddr))
			return DROP_SPOOFED_SRC;
		/* Options are rare: only then walk them. VLAN tags never reach this point on a cali*. */
		if (p->ip_opts && parse_ip_srcroute(skb, p->ip_hlen))
			return DROP_IP_SRCROUTE;
	}
	if (p->frag == TORTIE_FRAG_LATER) {
		/* The datagram's verdict here is its first fragment's (lib/frag.h). */
		return frag_follow(p, dir);
	}
	/* INVALID in Linux conntrack, which Calico drops whatever the policy. */
	if (!again && p->proto == IPPROTO_TCP && !tcp_flags_valid(p->tcp_flags))
		return DROP_TCP_BAD_FLAGS;

	cr = again ? ct_lookup_again(p, dir, ct) : ct_lookup(p, dir, ct);
	if (cr == CT_INVALID)
		return DROP_CT_INVALID;
	if (cr == CT_ESTABLISHED || cr == CT_RELATED) {
		/* A big datagram of an established flow: its later fragments follow it. */
		if (p->frag == TORTIE_FRAG_FIRST)
			frag_record(p, dir, 0);
		return TORTIE_FORWARD;
	}

	remote = dir == TORTIE_DIR_EGRESS ? p->daddr : p->saddr;
	ret = policy_decide(ep.table[dir & 1], remote, p, &verdict);
	if (ret < 0) {
		/* One report per denied flow and interval, not one per retransmitted SYN; and only
		 * within the endpoint's event budget (a flood of new tuples is counted, not logged). */
		nev = 1 + (verdict.nlog < TORTIE_MAX_LOG_RULES ? verdict.nlog : TORTIE_MAX_LOG_RULES);
		if (ev_budget(ifindex, nev, false) && deny_report_due(&ct->key, ifindex, dir) &&
		    ev_budget(ifindex, nev, true)) {
			log_hits(&verdict, ifindex, ep.id, dir, p);
			emit_event(TORTIE_EV_DENY, ifindex, ep.id, dir, verdict.rule, ret, p);
		}
		return ret;
	}
	if (verdict.nlog && ev_budget(ifindex, verdict.nlog < TORTIE_MAX_LOG_RULES ? verdict.nlog : TORTIE_MAX_LOG_RULES, true))
		log_hits(&verdict, ifindex, ep.id, dir, p);
	/* Before the commit: a refused flow leaves no state that would pass its next packet. */
	/* Not for the node when host routing forwards it to a local workload (hr_skips_host). */
	if (dir == TORTIE_DIR_EGRESS && !hr_skips_host(skb, &p->daddr, false, h)) {
		ret = host_from_wep(skb, p);
		if (ret < 0)
			return ret;
	}
	ret = ct_commit(p, dir, ct, cr, verdict.rule);
	if (ret < 0)
		return ret;
	if (p->frag == TORTIE_FRAG_FIRST)
		frag_record(p, dir, 0);
	return TORTIE_FORWARD;
}

/* The to-workload point, counted; tortie_to_wep, and (again: see wep_judge) the host-routed
 * path for the destination. */
static __always_inline int wep_to(struct __sk_buff *skb, __u32 ifindex, bool again,
				  const struct tortie_endpoint *known, struct tortie_pkt *p, struct ct_ctx *ct)
{
	bool ip4 = false;
	__u32 len = skb->len, slot = 0;
	int ret;

	ret = wep_judge(skb, ifindex, TORTIE_DIR_INGRESS, again, known, p, ct, &ip4, &slot, NULL);
	count_ep_packet(ifindex, slot, TORTIE_DIR_INGRESS, ret, len);
	return ret;
}

SEC("tc")
int tortie_from_wep(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex, len = skb->len, zero = 0, slot = 0;
	const struct tortie_endpoint *dst_ep = NULL;
	struct wep_scratch *sc;
	/* The source's conntrack context, which the destination's point reuses (wep_judge); no
	 * entry until a lookup found one. */
	union {
		struct ct_ctx v4;
		struct ct6_ctx v6;
	} ct;
	/* The local workload the packet is for, looked up once (lib/host_route.h, hr_dst). */
	struct hr_dst hd = { .done = false };
	bool ip4 = false, via_fib = false;
	int ret, act = TC_ACT_OK;
	__u32 dst = 0;

	bool v6 = skb->protocol == bpf_htons(ETH_P_IPV6);

	sc = bpf_map_lookup_elem(&tortie_weps, &zero);
	if (!sc)
		return TC_ACT_SHOT;
	ct.v4.entry = NULL;
	ct.v6.entry = NULL;
	ct.v4.keyed = false;
	ct.v6.keyed = false;
	if (v6) {
		ret = wep6_judge_ep(skb, ifindex, TORTIE_DIR_EGRESS, false, NULL, &ct.v6, &slot, &hd);
		if (ret == TORTIE_FORWARD)
			act = hr6_route(skb, &hd, &dst, &dst_ep, &via_fib);
	} else {
		__builtin_memset(&sc->pkt, 0, sizeof(sc->pkt));
		ret = wep_judge(skb, ifindex, TORTIE_DIR_EGRESS, false, NULL, &sc->pkt, &ct.v4, &ip4, &slot, &hd);
		if (ret == TORTIE_FORWARD && ip4) {
			/* A local workload first: it needs neither the remote-route lookup nor the fib. */
			act = hr_local(skb, &hd, &dst, &dst_ep);
			if (act == 0)
				act = encap_from_wep(skb, sc->pkt.daddr);
			else if (act > 0)
				act = TC_ACT_OK;
			if (act == TC_ACT_OK && dst == 0)
				act = hr_route(skb, &dst, &dst_ep, &via_fib);
		}
	}
	if (act < 0)
		ret = act;
	count_ep_packet(ifindex, slot, TORTIE_DIR_EGRESS, ret, len);
	if (ret < 0)
		return TC_ACT_SHOT;
	if (dst > 0 && v6)
		return wep6_point(skb, dst, TORTIE_DIR_INGRESS, true, dst_ep, &ct.v6) == TC_ACT_SHOT ?
			TC_ACT_SHOT : hr_redirect(dst, TORTIE_HR_V6, via_fib);
	if (dst > 0)
		return wep_to(skb, dst, true, dst_ep, &sc->pkt, &ct.v4) < 0 ? TC_ACT_SHOT : hr_redirect(dst, 0, via_fib);
	return act;
}

SEC("tc")
int tortie_to_wep(struct __sk_buff *skb)
{
	struct ct_ctx ct = { .entry = NULL };
	struct ct6_ctx ct6 = { .entry = NULL };
	struct wep_scratch *sc;
	__u32 zero = 0;

	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return wep6_point(skb, skb->ifindex, TORTIE_DIR_INGRESS, false, NULL, &ct6);
	/* The packet in the per-CPU slot (as tortie_from_wep): the stack leaves room for the
	 * option walk's global function (tcp_opt_wscale). The IPv4 path uses no other part of it. */
	sc = bpf_map_lookup_elem(&tortie_weps, &zero);
	if (!sc)
		return TC_ACT_SHOT;
	__builtin_memset(&sc->pkt, 0, sizeof(sc->pkt));
	return wep_to(skb, skb->ifindex, false, NULL, &sc->pkt, &ct) < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
