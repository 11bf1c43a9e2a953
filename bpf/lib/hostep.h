/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host endpoint policy (Calico's HostEndpoint) on the node's own interfaces: the uplink programs
 * call it, and tortie_hep_in/_out carry it on any other host interface. Per packet it uses the
 * same verdict tables as workload policy (lib/policy.h): at most one policy_decide per stage, so
 * the cost does not depend on the number of policies, rules or set members.
 *
 * Order, as Felix's chains (raw → conntrack → mangle → filter):
 *   arriving (tc ingress)                       leaving (tc egress)
 *   1. doNotTrack ingress, unless failsafe      1. doNotTrack egress, unless failsafe
 *      (allow: accepted untracked, nothing         (allow: accepted untracked)
 *       else applies; deny: DROP_HEP_UNTRACKED)
 *   2. conntrack: a flow this endpoint allowed  2. conntrack (TCP flags no stack sends:
 *      before (or an ICMP error about one)         DROP_TCP_BAD_FLAGS, INVALID, as Felix)
 *      (TCP flags no stack sends: dropped; a
 *      RST/FIN outside the flow's window:
 *      DROP_CT_INVALID, both directions)
 *   3. preDNAT, unless inbound failsafe         3. from the host (skb ingress_ifindex 0):
 *      (allow: skips 4; deny: DROP_HEP_PREDNAT)    outbound failsafe, else normal egress
 *   4. to the host (fib: local delivery):          (DROP_HEP_POLICY); forwarded: forward
 *      inbound failsafe, else normal ingress       egress, none = allowed (DROP_HEP_FORWARD)
 *      (DROP_HEP_POLICY); forwarded: forward
 *      ingress, none = allowed (DROP_HEP_FORWARD)
 * A new flow allowed by stages 3–4 is tracked (tortie_hct4_v2), so its replies pass step 2 in
 * both directions; TCP flows follow Linux conntrack's states and windows (lib/ct_tcp.h), so a
 * closed flow's tuple is judged by policy again on its next SYN and idle timeouts follow the state. Failsafe in the untracked stage also skips replies (source port in the other
 * direction's list), as Felix's raw failsafe chains do. Interfaces without a host endpoint (no
 * entry for the ifindex, no `*` entry at 0) are not policed.
 * Non-first fragments pass: their first fragment carries the ports policy judged, and a
 * receiver cannot reassemble a datagram whose first fragment was dropped.
 * A rule's local side (ingress destination.nets/notNets, egress source.nets/notNets) matches the
 * packet's own address on this side, as Felix's -d/-s: arriving the destination (before any DNAT
 * in preDNAT, a workload's or another host's when forwarded), leaving the source. The remote
 * address goes through the class lookup; the local one picks the table: the agent compiles such
 * a stage once per region of the local nets (tortie_hlt4_v1 maps each net to its region's table)
 * and one LPM lookup per stage chooses — a flat cost whatever the number of rules or nets.
 * IPv6 takes the same sequence over the IPv6 maps (tortie_fs6_v1, tortie_hct6_v1, tortie_hlt6_v1,
 * tortie_cls6_v1), with neighbour discovery, router messages and MLD passing first (hep_ndp);
 * its stage parts are global functions (hep6_*), verified once whatever calls them.
 */
#ifndef TORTIE_LIB_HOSTEP_H
#define TORTIE_LIB_HOSTEP_H

#include "lib/parse.h"
#include "lib/policy.h"
#include "lib/drop.h"
#include "lib/host.h"
#include "lib/ct_tcp.h"

#ifndef NSEC
#define NSEC 1000000000ULL
#endif

/* Idle timeouts of host endpoint flows by state (load-time). Felix leaves host flows to Linux
 * conntrack: its defaults where tortie had none, an hour for an established TCP flow as before. */
const volatile __u64 hep_ct_tcp_ns = 3600 * NSEC;  /* TCP ESTABLISHED */
const volatile __u64 hep_ct_syn_ns = 120 * NSEC;   /* SYN_SENT, SYN_RECV (Linux: 120 s, 60 s) */
const volatile __u64 hep_ct_fin_ns = 120 * NSEC;   /* FIN_WAIT, CLOSING (Linux: TIME_WAIT 120 s) */
const volatile __u64 hep_ct_rst_ns = 10 * NSEC;    /* RST (Linux: CLOSE 10 s) */
const volatile __u64 hep_ct_other_ns = 120 * NSEC; /* UDP, ICMP, other protocols */

/* tortie_hep_v1: __u32 ifindex (0 = `*`) -> struct tortie_hostep. Agent-written (one update per
 * change, NO_PREALLOC: a reader sees the old or the new value whole). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct tortie_hostep);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_hep_v1 SEC(".maps");

/* tortie_hlt4_v1: (dispatch id, local prefix) -> verdict table id (shared/maps.h). Agent-written:
 * all of a dispatch's entries (with its 0.0.0.0/0 one) before the tortie_hep_v1 flip that names
 * it, deleted after the flip away from it. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_hlt4_key);
	__type(value, __u32);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_hlt4_v1 SEC(".maps");

/* tortie_fs4_v1: failsafe ports (shared/maps.h). Agent-written from Felix's configuration. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_fs4_key);
	__type(value, __u32);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_fs4_v1 SEC(".maps");

/* tortie_hct4_v2: flows a host endpoint allowed (normalised key and value as workload conntrack's,
 * TCP state and windows followed by lib/ct_tcp.h). LRU: the host's own flows are not per-workload
 * state; an evicted flow is judged by policy again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tortie_ct4_key);
	__type(value, struct tortie_ct_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_hct4_v2 SEC(".maps");

/* tortie_hlt6_v1: the dispatch of tortie_hlt4_v1 for IPv6 local addresses (struct tortie_hlt6_key,
 * the same dispatch ids; a dispatch's ::/0 entry is written with its 0.0.0.0/0 one). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_hlt6_key);
	__type(value, __u32);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_hlt6_v1 SEC(".maps");

/* tortie_fs6_v1: failsafe ports for IPv6 remotes (entries without a net, and IPv6 nets). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_fs6_key);
	__type(value, __u32);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_fs6_v1 SEC(".maps");

/* tortie_hct6_v1: IPv6 flows a host endpoint allowed, as tortie_hct4_v2 (struct tortie_ct6_key). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tortie_ct6_key);
	__type(value, struct tortie_ct_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_hct6_v1 SEC(".maps");

/* Untagged IPv4 only: PARSE_IPV4 with pkt filled, 0 = not ours (passes untouched), < 0 a drop. */
static __always_inline int host_parse(struct __sk_buff *skb, struct tortie_pkt *pkt, __u32 *l4off)
{
	struct ethhdr *eth;
	struct iphdr *ip;
	int ret;

	if (skb->vlan_present)
		return 0;
	/* Only the headers parse_packet() reads: a GSO packet's payload stays in its frags. */
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

/* tortie_hep6s: a per-CPU slot for an IPv6 packet's state (program-private): the IPv6 packet and
 * the stages' locals together exceed the 512-byte stack, and a copy taken before a call keeps the
 * caller's stack dead across it (the verifier prunes such paths). tc programs do not nest on a CPU. */
struct hep6_scratch {
	struct tortie_pkt pkt;
	struct tortie_ct6_key k6; /* hep_report's flow key */
	int parsed;               /* hep6_defer: the parse result of pkt, */
	__u8 pending;             /* set: judge pkt at the program's entry, after its path (hep6_deferred) */
	__u8 tracked;             /* translated back by NAT66 */
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct hep6_scratch);
	__uint(max_entries, 1);
} tortie_hep6s SEC(".maps");

/* The slot, holding a copy of *src unless src is NULL; NULL only if the map lookup failed. */
static __always_inline struct tortie_pkt *hep6_slot(const struct tortie_pkt *src)
{
	struct hep6_scratch *sc;
	__u32 zero = 0;

	sc = bpf_map_lookup_elem(&tortie_hep6s, &zero);
	if (!sc)
		return NULL;
	if (src)
		__builtin_memcpy(&sc->pkt, src, sizeof(*src));
	else
		__builtin_memset(&sc->pkt, 0, sizeof(sc->pkt));
	sc->pending = 0;
	return &sc->pkt;
}

#ifdef TORTIE_CTX_SKB
/* Untagged IPv6: PARSE_IPV6 with pkt filled (extension headers walked, lib/parse.h), 0 = not
 * IPv6 (passes untouched), < 0 a drop. */
static __always_inline int host_parse6(struct __sk_buff *skb, struct tortie_pkt *pkt)
{
	struct ethhdr *eth;

	if (skb->vlan_present)
		return 0;
	parse_pull_headers(skb);
	eth = ctx_data(skb);
	if ((void *)(eth + 1) > ctx_data_end(skb) || eth->h_proto != bpf_htons(ETH_P_IPV6))
		return 0;
	return parse_ipv6(skb, pkt, ETH_HLEN, true);
}
#endif

static __always_inline const struct tortie_hostep *hep_lookup(__u32 ifindex)
{
	const struct tortie_hostep *h = bpf_map_lookup_elem(&tortie_hep_v1, &ifindex);
	__u32 any = 0;

	return h ? h : bpf_map_lookup_elem(&tortie_hep_v1, &any);
}

/* `remote`: the remote address (IPv4: its first word). */
static __always_inline bool hep_failsafe(__u8 dir, const struct tortie_pkt *pkt, __u16 port, const __be32 *remote,
					 const bool v6)
{
	struct tortie_fs4_key k = {
		.prefixlen = TORTIE_FS_FIXED_BITS + 32, .dir = dir, .proto = pkt->proto,
		.port = bpf_htons(port), .addr = remote[0],
	};
	struct tortie_fs6_key k6 = {
		.prefixlen = TORTIE_FS_FIXED_BITS + 128, .dir = dir, .proto = pkt->proto, .port = bpf_htons(port),
	};

	if (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP && pkt->proto != 132)
		return false;
	if (!v6)
		return bpf_map_lookup_elem(&tortie_fs4_v1, &k) != NULL;
	__builtin_memcpy(k6.addr, remote, 16);
	return bpf_map_lookup_elem(&tortie_fs6_v1, &k6) != NULL;
}

/* The packet's flow key; true when its source is the key's side a. */
static __always_inline bool hep_ct_key(const struct tortie_pkt *pkt, struct tortie_ct4_key *k)
{
	bool src_is_a;

	ct4_key_make(k, pkt->saddr, pkt->daddr, pkt->ct_sport, pkt->ct_dport, pkt->proto, &src_is_a);
	ct4_key_mark_echo(k, src_is_a, pkt->echo);
	return src_is_a;
}

static __always_inline bool hep_ct6_key(const struct tortie_pkt *pkt, struct tortie_ct6_key *k)
{
	bool src_is_a;

	ct6_key_make(k, pkt->saddr6, pkt->daddr6, pkt->ct_sport, pkt->ct_dport, pkt->proto, &src_is_a);
	ct6_key_mark_echo(k, src_is_a, pkt->echo);
	return src_is_a;
}

static __always_inline __u64 hep_ct_timeout(__u8 state)
{
	switch (state) {
	case TORTIE_CT_SYN_SENT:
	case TORTIE_CT_SYN_RECV:
		return hep_ct_syn_ns;
	case TORTIE_CT_ESTABLISHED:
		return hep_ct_tcp_ns;
	case TORTIE_CT_FIN_WAIT:
	case TORTIE_CT_CLOSING:
		return hep_ct_fin_ns;
	case TORTIE_CT_RST:
		return hep_ct_rst_ns;
	default:
		return hep_ct_other_ns;
	}
}

/* last_seen may be ahead of `now` (another CPU stamped it after our clock read): live. */
static __always_inline bool hep_ct_live(const struct tortie_ct_value *v, __u64 now)
{
	__u64 seen = v->last_seen_ns;

	return seen >= now || now - seen <= hep_ct_timeout(v->state);
}

/* The tracked flow of a packet (tortie_hct4_v2 or, v6, tortie_hct6_v1); *src_is_a as hep_ct_key. */
static __always_inline struct tortie_ct_value *hep_ct_find(const struct tortie_pkt *pkt, const bool v6, bool *src_is_a)
{
	struct tortie_ct4_key k;
	struct tortie_ct6_key k6;

	if (v6) {
		*src_is_a = hep_ct6_key(pkt, &k6);
		return bpf_map_lookup_elem(&tortie_hct6_v1, &k6);
	}
	*src_is_a = hep_ct_key(pkt, &k);
	return bpf_map_lookup_elem(&tortie_hct4_v2, &k);
}

/* 1: a flow this host's endpoints allowed before, or an ICMP error quoting one (pass); 0: none,
 * or a fresh SYN on a closed flow (policy decides); DROP_CT_INVALID: a RST or FIN outside the
 * flow's window, or an implausible segment (lib/ct_tcp.h: Linux conntrack's INVALID, which
 * Felix's host endpoint chains drop). */
static __always_inline int hep_ct_established(const struct tortie_pkt *pkt, const bool v6)
{
	struct tortie_ct_value *v;
	__u64 now = bpf_ktime_get_ns();
	bool src_is_a;

	if (pkt->icmp_err) {
		v = v6 ? bpf_map_lookup_elem(&tortie_hct6_v1, &pkt->inner6) : bpf_map_lookup_elem(&tortie_hct4_v2, &pkt->inner);
		return v && hep_ct_live(v, now);
	}
	if (pkt->untracked)
		return 0;
	v = hep_ct_find(pkt, v6, &src_is_a);
	if (!v || !hep_ct_live(v, now) || ct_tcp_reopens(v, pkt))
		return 0;
	if (pkt->proto == IPPROTO_TCP && !ct_tcp_advance(v, pkt, src_is_a == !!(v->flags & TORTIE_CTF_A_IS_INIT), src_is_a))
		return DROP_CT_INVALID;
	v->last_seen_ns = now;
	return 1;
}

static __always_inline void hep_ct_commit(const struct tortie_pkt *pkt, __u32 rule, const bool v6)
{
	__u64 now = bpf_ktime_get_ns();
	struct tortie_ct_value v = { .last_seen_ns = now, .created_ns = now, .state = ct_initial_state(pkt), .rule = rule };
	struct tortie_ct4_key k;
	struct tortie_ct6_key k6;
	bool src_is_a;

	if (pkt->untracked || pkt->icmp_err)
		return;
	src_is_a = v6 ? hep_ct6_key(pkt, &k6) : hep_ct_key(pkt, &k);
	v.flags = src_is_a ? TORTIE_CTF_A_IS_INIT : 0;
	ct_tcp_init(&v, pkt, src_is_a);
	if (v6)
		bpf_map_update_elem(&tortie_hct6_v1, &k6, &v, BPF_ANY);
	else
		bpf_map_update_elem(&tortie_hct4_v2, &k, &v, BPF_ANY);
}

/* One stage: 1 allowed, 0 no table or no policy decided (next stage), < 0 `deny` or a drop.
 * `dispatch`: `table` is a tortie_hlt4_v1 / tortie_hlt6_v1 dispatch id — the stage's rules match
 * the local address (the packet's destination arriving, its source leaving), so one LPM lookup of
 * that address picks the table compiled for its region; a miss (a dispatch being replaced) fails
 * closed. `remote`, `local`: addresses (IPv4: the first word); v6: the packet is IPv6. */
static __always_inline int hep_stage(__u32 table, bool dispatch, const __be32 *remote, const __be32 *local,
				     const struct tortie_pkt *pkt, struct tortie_verdict *v, int deny, const bool v6)
{
	struct tortie_hlt4_key lk = { .prefixlen = TORTIE_HLT_FIXED_BITS + 32, .id = table, .addr = local[0] };
	struct tortie_hlt6_key lk6 = { .prefixlen = TORTIE_HLT_FIXED_BITS + 128, .id = table };
	__u32 *t;
	int ret;

	if (!table)
		return 0;
	if (dispatch) {
		if (v6) {
			__builtin_memcpy(lk6.addr, local, 16);
			t = bpf_map_lookup_elem(&tortie_hlt6_v1, &lk6);
		} else {
			t = bpf_map_lookup_elem(&tortie_hlt4_v1, &lk);
		}
		if (!t) {
			__builtin_memset(v, 0, sizeof(*v));
			v->action = TORTIE_ACT_DENY;
			return DROP_NO_TABLE;
		}
		table = *t;
	}
#ifdef TORTIE_CTX_SKB
	if (v6)
		ret = policy_decide6(table, remote, pkt, v);
	else
#endif
		ret = policy_decide(table, remote[0], pkt, v);
	if (ret == 0)
		return 1;
	if (ret == POLICY_NEXT)
		return 0;
	return ret == DROP_POLICY_DENY ? deny : ret;
}

/* Deny and Log-rule events of a host endpoint, within its interface's event budget. */
static __always_inline void hep_report(__u32 ifindex, __u32 id, __u8 dir, const struct tortie_verdict *v,
				       int ret, const struct tortie_pkt *pkt, const bool v6)
{
	struct tortie_ct4_key k;
	struct hep6_scratch *sc;
	__u32 zero = 0;
	__u32 n = v->nlog < TORTIE_MAX_LOG_RULES ? v->nlog : TORTIE_MAX_LOG_RULES;

	if (ret < 0) {
		if (v6) {
			sc = bpf_map_lookup_elem(&tortie_hep6s, &zero);
			if (!sc)
				return;
			hep_ct6_key(pkt, &sc->k6);
			ct6_fold(&k, &sc->k6);
		} else {
			hep_ct_key(pkt, &k);
		}
		if (!ev_budget(ifindex, n + 1, false) || !deny_report_due(&k, ifindex, dir) || !ev_budget(ifindex, n + 1, true))
			return;
	} else if (n == 0 || !ev_budget(ifindex, n, true)) {
		return;
	}
#pragma unroll
	for (int i = 0; i < TORTIE_MAX_LOG_RULES; i++)
		if (i < n)
			emit_event(TORTIE_EV_LOG, ifindex, id, dir, v->log_rules[i], 0, pkt);
	if (ret < 0)
		emit_event(TORTIE_EV_DENY, ifindex, id, dir, v->rule, ret, pkt);
}

/*
 * The IPv6 stages' parts as global functions: the verifier checks each once, apart from its
 * callers (hep_policy's paths multiply the states of what is inlined in them; the uplink's
 * IPv4 and NAT66 paths leave little of the verifier's budget). Pointer arguments may be NULL
 * to the verifier: checked.
 */
__noinline int hep6_ct_est(const struct tortie_pkt *pkt)
{
	return pkt ? hep_ct_established(pkt, true) : 0;
}

__noinline int hep6_ct_put(const struct tortie_pkt *pkt, __u32 rule)
{
	if (pkt)
		hep_ct_commit(pkt, rule, true);
	return 0;
}

/* hep_stage for an IPv6 packet; how: bit 0 dispatch, bit 1 arriving. */
__noinline int hep6_stage(const struct tortie_pkt *pkt, struct tortie_verdict *v, __u32 table, __u32 how, int deny)
{
	if (!pkt || !v)
		return DROP_NO_TABLE;
	if (how & 2)
		return hep_stage(table, how & 1, pkt->saddr6, pkt->daddr6, pkt, v, deny, true);
	return hep_stage(table, how & 1, pkt->daddr6, pkt->saddr6, pkt, v, deny, true);
}

/* hep_report for an IPv6 packet; where: ifindex | id << 32, dir in the low byte of `dir`. */
__noinline int hep6_report(const struct tortie_pkt *pkt, const struct tortie_verdict *v, __u64 where, __u32 dir, int ret)
{
	if (pkt && v)
		hep_report((__u32)where, (__u32)(where >> 32), (__u8)dir, v, ret, pkt, true);
	return 0;
}

/* One stage of either family (hep_stage; IPv6 through hep6_stage). */
static __always_inline int hep_stage_any(__u32 table, bool dispatch, const __be32 *remote, const __be32 *local,
					 const struct tortie_pkt *pkt, struct tortie_verdict *v, int deny, const bool v6,
					 const bool in)
{
	if (v6)
		return table ? hep6_stage(pkt, v, table, (dispatch ? 1 : 0) | (in ? 2 : 0), deny) : 0;
	return hep_stage(table, dispatch, remote, local, pkt, v, deny, false);
}

static __always_inline void hep_report_any(__u32 ifindex, __u32 id, __u8 dir, const struct tortie_verdict *v,
					   int ret, const struct tortie_pkt *pkt, const bool v6)
{
	if (v6)
		hep6_report(pkt, v, ifindex | ((__u64)id << 32), dir, ret);
	else
		hep_report(ifindex, id, dir, v, ret, pkt, false);
}

static __always_inline int hep_ct_established_any(const struct tortie_pkt *pkt, const bool v6)
{
	return v6 ? hep6_ct_est(pkt) : hep_ct_established(pkt, false);
}

static __always_inline void hep_ct_commit_any(const struct tortie_pkt *pkt, __u32 rule, const bool v6)
{
	if (v6)
		hep6_ct_put(pkt, rule);
	else
		hep_ct_commit(pkt, rule, false);
}

#ifdef TORTIE_CTX_SKB
/*
 * ICMPv6 neighbour discovery, router messages and MLD, which no host endpoint stage cuts off (as
 * Felix allows them ahead of policy; without them the node loses its IPv6 neighbours and routes):
 * router solicitation / advertisement, neighbour solicitation / advertisement and redirect with a
 * hop limit of 255 (RFC 4861: only then did they not cross a router — a receiver drops the
 * others, and what a router forwarded has a lower one), MLD (130-132, 143) from a link-local or
 * the unspecified source (RFC 3810: never forwarded). Anything else with those types meets policy.
 */
static __always_inline bool hep_ndp(struct __sk_buff *skb, const struct tortie_pkt *pkt)
{
	__u8 type = pkt->dport >> 8, hl = 0;

	if (pkt->proto != IP6_NH_ICMP || pkt->frag != TORTIE_FRAG_NONE)
		return false;
	if (type >= ICMP6_ROUTER_SOL && type <= ICMP6_REDIRECT)
		return bpf_skb_load_bytes(skb, pkt->l3_off + offsetof(struct ipv6hdr, hop_limit), &hl, 1) == 0 && hl == 255;
	if ((type >= 130 && type <= 132) || type == 143)
		return ip6_is_linklocal(pkt->saddr6) || ip6_is_unspecified(pkt->saddr6);
	return false;
}
#endif

/* To the host (a local delivery by the kernel's fib), for either family. */
static __always_inline bool hep_to_host(struct __sk_buff *skb, const struct tortie_pkt *pkt, const bool v6)
{
#ifdef TORTIE_CTX_SKB
	if (v6)
		return host_is_local_dst6(skb, pkt);
#endif
	return host_is_local_dst(skb, pkt);
}

/* Host endpoint policy for one packet: TORTIE_FORWARD or a DROP_* reason. `in` (a constant at
 * each call, so the compiler keeps one specialised copy per direction, as two functions would):
 * the packet arrives (tc ingress), else it leaves. Arriving, the remote address is the source and
 * the local one the destination; leaving, the other way round. `tracked`: the packet belongs to a
 * flow tracked elsewhere (a reply the uplink translated back from SNAT; arriving only). `v6` (a
 * constant too): an IPv6 packet — the same sequence over the IPv6 maps (tortie_fs6_v1,
 * tortie_hct6_v1, tortie_hlt6_v1, tortie_cls6_v1), neighbour discovery passing first. */
static __always_inline int hep_policy(struct __sk_buff *skb, const struct tortie_pkt *pkt, const bool in, bool tracked,
				      const bool v6)
{
	const struct tortie_hostep *h = hep_lookup(skb->ifindex);
	const __be32 *remote = in ? pkt->saddr6 : pkt->daddr6, *local = in ? pkt->daddr6 : pkt->saddr6;
	const __u8 fs_dir = in ? TORTIE_FS_IN : TORTIE_FS_OUT, fs_other = in ? TORTIE_FS_OUT : TORTIE_FS_IN;
	const __u8 dir = in ? TORTIE_DIR_INGRESS : TORTIE_DIR_EGRESS;
	const int dnt = in ? TORTIE_HEP_DNT_IN : TORTIE_HEP_DNT_OUT, normal = in ? TORTIE_HEP_IN : TORTIE_HEP_OUT,
		  fwd = in ? TORTIE_HEP_FWD_IN : TORTIE_HEP_FWD_OUT;
	struct tortie_verdict v = {};
	__u32 table[TORTIE_HEP_SLOTS], id, lf;
	bool to_host;
	int r;

	if (!h)
		return TORTIE_FORWARD;
	__builtin_memcpy(table, h->table, sizeof(table));
	id = h->id;
	lf = h->flags;
	if (pkt->frag == TORTIE_FRAG_LATER)
		return TORTIE_FORWARD;
#ifdef TORTIE_CTX_SKB
	if (v6 && hep_ndp(skb, pkt))
		return TORTIE_FORWARD;
#endif
	if (!hep_failsafe(fs_dir, pkt, pkt->dport, remote, v6) && !hep_failsafe(fs_other, pkt, pkt->sport, remote, v6)) {
		r = hep_stage_any(table[dnt], (lf >> dnt) & 1, remote, local, pkt, &v, DROP_HEP_UNTRACKED, v6, in);
		if (r != 0) {
			hep_report_any(skb->ifindex, id, dir, &v, r, pkt, v6);
			return r > 0 ? TORTIE_FORWARD : r;
		}
	}
	/* INVALID in Linux conntrack: Felix's tracked host endpoint chains drop it first. */
	if (pkt->proto == IPPROTO_TCP && !tcp_flags_valid(pkt->tcp_flags))
		return DROP_TCP_BAD_FLAGS;
	if (in && tracked)
		return TORTIE_FORWARD;
	r = hep_ct_established_any(pkt, v6);
	if (r != 0)
		return r > 0 ? TORTIE_FORWARD : r;
	if (in) {
		if (!hep_failsafe(TORTIE_FS_IN, pkt, pkt->dport, remote, v6)) {
			r = hep_stage_any(table[TORTIE_HEP_PREDNAT], (lf >> TORTIE_HEP_PREDNAT) & 1, remote, local, pkt, &v,
				      DROP_HEP_PREDNAT, v6, in);
			if (r != 0)
				goto decided;
		} else if (hep_to_host(skb, pkt, v6)) {
			hep_ct_commit_any(pkt, 0, v6);
			return TORTIE_FORWARD;
		}
		to_host = hep_to_host(skb, pkt, v6);
	} else {
		/* skb_iif is 0 for what the host's own stack sends; forwarded packets keep the interface
		 * they arrived on (a cali* for a workload's, also when tortie_from_wep redirected it). */
		to_host = skb->ingress_ifindex == 0;
		if (to_host && hep_failsafe(TORTIE_FS_OUT, pkt, pkt->dport, remote, v6)) {
			hep_ct_commit_any(pkt, 0, v6);
			return TORTIE_FORWARD;
		}
	}
	if (to_host) {
		r = hep_stage_any(table[normal], (lf >> normal) & 1, remote, local, pkt, &v, DROP_HEP_POLICY, v6, in);
		if (r == 0)
			r = DROP_HEP_POLICY; /* the normal table always decides; absent = fail closed */
	} else {
		r = table[fwd] ? hep_stage_any(table[fwd], (lf >> fwd) & 1, remote, local, pkt, &v, DROP_HEP_FORWARD, v6, in) : 1;
		if (r == 0)
			r = DROP_HEP_FORWARD;
	}
decided:
	hep_report_any(skb->ifindex, id, dir, &v, r, pkt, v6);
	if (r < 0)
		return r;
	hep_ct_commit_any(pkt, v.rule, v6);
	return TORTIE_FORWARD;
}

/* A packet arriving on a host interface: TORTIE_FORWARD or a DROP_* reason. `tracked`: the
 * packet belongs to a flow tracked elsewhere (a reply the uplink translated back from SNAT). */
static __always_inline int hep_ingress(struct __sk_buff *skb, const struct tortie_pkt *pkt, bool tracked)
{
	return hep_policy(skb, pkt, true, tracked, false);
}

/* A packet leaving through a host interface: TORTIE_FORWARD or a DROP_* reason. */
static __always_inline int hep_egress(struct __sk_buff *skb, const struct tortie_pkt *pkt)
{
	return hep_policy(skb, pkt, false, false, false);
}

/* The same for an IPv6 packet (host_parse6); `tracked`: translated back from NAT66. */
static __always_inline int hep_ingress6(struct __sk_buff *skb, const struct tortie_pkt *pkt, bool tracked)
{
	return hep_policy(skb, pkt, true, tracked, true);
}

static __always_inline int hep_egress6(struct __sk_buff *skb, const struct tortie_pkt *pkt)
{
	return hep_policy(skb, pkt, false, false, true);
}

/* Host endpoint policy for an IPv6 packet, as one global function: the verifier checks it once,
 * apart from its callers' paths (inlined at every IPv6 call site of the uplink, its states
 * multiplied past the verifier's budget). how: bit 0 arriving, bit 1 tracked (arriving only). */
__noinline int hep6_judge(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 how)
{
	if (!skb || !pkt)
		return TORTIE_FORWARD;
	if (how & 1)
		return hep_policy(skb, pkt, true, how & 2, true);
	return hep_policy(skb, pkt, false, false, true);
}

/* An IPv6 packet after parsing (`parsed`: host_parse6's result): 0 passes untouched; a parse drop
 * stands where a host endpoint applies (as IPv4's) and passes on an interface without one;
 * PARSE_IPV6 goes through the stages (pkt NULL: hep6_slot failed, passes). Both the uplink and
 * tortie_hep_in/_out call it. */
static __always_inline int hep6_point(struct __sk_buff *skb, const struct tortie_pkt *pkt, int parsed, const bool in,
				      bool tracked)
{
	if (parsed < 0)
		return hep_lookup(skb->ifindex) ? parsed : TORTIE_FORWARD;
	if (parsed != PARSE_IPV6 || !pkt)
		return TORTIE_FORWARD;
	return hep6_judge(skb, pkt, (in ? 1 : 0) | (tracked ? 2 : 0));
}

/*
 * The uplink's IPv6 point, deferred: its NAT66 functions' frames and the stages' global
 * functions together exceed the 512-byte stack of one call chain, so the uplink's IPv6 path
 * records what host endpoint policy is to judge (hep6_defer: the packet as it arrived, copied by
 * hep6_slot, and whether NAT66 translated it back) and its program's entry runs the judgment
 * when that path returns (hep6_deferred, hep6_point). A drop reason of the path itself stands.
 */
static __always_inline int hep6_defer(struct tortie_pkt *hp, int parsed, bool tracked)
{
	struct hep6_scratch *sc = (struct hep6_scratch *)hp; /* hp is the slot's first member */

	if (sc) {
		sc->parsed = parsed;
		sc->tracked = tracked;
		sc->pending = 1;
	}
	return TORTIE_FORWARD;
}

/* The slot hep6_defer filled (its pending mark cleared), or NULL when nothing is pending. */
static __always_inline struct hep6_scratch *hep6_deferred(void)
{
	struct hep6_scratch *sc;
	__u32 zero = 0;

	sc = bpf_map_lookup_elem(&tortie_hep6s, &zero);
	if (!sc || !sc->pending)
		return NULL;
	sc->pending = 0;
	return sc;
}

/* host_parse6 in a frame of its own (a sibling of the stages' calls, not their parent). */
__noinline int hep6_parse(struct __sk_buff *skb, struct tortie_pkt *pkt)
{
	return skb && pkt ? host_parse6(skb, pkt) : 0;
}

#endif
