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

static __always_inline const struct tortie_hostep *hep_lookup(__u32 ifindex)
{
	const struct tortie_hostep *h = bpf_map_lookup_elem(&tortie_hep_v1, &ifindex);
	__u32 any = 0;

	return h ? h : bpf_map_lookup_elem(&tortie_hep_v1, &any);
}

static __always_inline bool hep_failsafe(__u8 dir, const struct tortie_pkt *pkt, __u16 port, __be32 remote)
{
	struct tortie_fs4_key k = {
		.prefixlen = TORTIE_FS_FIXED_BITS + 32, .dir = dir, .proto = pkt->proto,
		.port = bpf_htons(port), .addr = remote,
	};

	if (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP && pkt->proto != 132)
		return false;
	return bpf_map_lookup_elem(&tortie_fs4_v1, &k) != NULL;
}

/* The packet's flow key; true when its source is the key's side a. */
static __always_inline bool hep_ct_key(const struct tortie_pkt *pkt, struct tortie_ct4_key *k)
{
	bool src_is_a;

	ct4_key_make(k, pkt->saddr, pkt->daddr, pkt->ct_sport, pkt->ct_dport, pkt->proto, &src_is_a);
	ct4_key_mark_echo(k, src_is_a, pkt->echo);
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

/* 1: a flow this host's endpoints allowed before, or an ICMP error quoting one (pass); 0: none,
 * or a fresh SYN on a closed flow (policy decides); DROP_CT_INVALID: a RST or FIN outside the
 * flow's window (Linux conntrack's INVALID, which Felix's host endpoint chains drop). */
static __always_inline int hep_ct_established(const struct tortie_pkt *pkt)
{
	struct tortie_ct4_key k;
	struct tortie_ct_value *v;
	__u64 now = bpf_ktime_get_ns();
	bool src_is_a;

	if (pkt->icmp_err) {
		v = bpf_map_lookup_elem(&tortie_hct4_v2, &pkt->inner);
		return v && hep_ct_live(v, now);
	}
	if (pkt->untracked)
		return 0;
	src_is_a = hep_ct_key(pkt, &k);
	v = bpf_map_lookup_elem(&tortie_hct4_v2, &k);
	if (!v || !hep_ct_live(v, now) || ct_tcp_reopens(v, pkt))
		return 0;
	if (pkt->proto == IPPROTO_TCP && !ct_tcp_advance(v, pkt, src_is_a == !!(v->flags & TORTIE_CTF_A_IS_INIT), src_is_a))
		return DROP_CT_INVALID;
	v->last_seen_ns = now;
	return 1;
}

static __always_inline void hep_ct_commit(const struct tortie_pkt *pkt, __u32 rule)
{
	__u64 now = bpf_ktime_get_ns();
	struct tortie_ct_value v = { .last_seen_ns = now, .created_ns = now, .state = ct_initial_state(pkt), .rule = rule };
	struct tortie_ct4_key k;
	bool src_is_a;

	if (pkt->untracked || pkt->icmp_err)
		return;
	src_is_a = hep_ct_key(pkt, &k);
	v.flags = src_is_a ? TORTIE_CTF_A_IS_INIT : 0;
	ct_tcp_init(&v, pkt, src_is_a);
	bpf_map_update_elem(&tortie_hct4_v2, &k, &v, BPF_ANY);
}

/* One stage: 1 allowed, 0 no table or no policy decided (next stage), < 0 `deny` or a drop.
 * `dispatch`: `table` is a tortie_hlt4_v1 dispatch id — the stage's rules match the local address
 * (the packet's destination arriving, its source leaving), so one LPM lookup of that address
 * picks the table compiled for its region; a miss (a dispatch being replaced) fails closed. */
static __always_inline int hep_stage(__u32 table, bool dispatch, __be32 remote, __be32 local,
				     const struct tortie_pkt *pkt, struct tortie_verdict *v, int deny)
{
	struct tortie_hlt4_key lk = { .prefixlen = TORTIE_HLT_FIXED_BITS + 32, .id = table, .addr = local };
	__u32 *t;
	int ret;

	if (!table)
		return 0;
	if (dispatch) {
		t = bpf_map_lookup_elem(&tortie_hlt4_v1, &lk);
		if (!t) {
			__builtin_memset(v, 0, sizeof(*v));
			v->action = TORTIE_ACT_DENY;
			return DROP_NO_TABLE;
		}
		table = *t;
	}
	ret = policy_decide(table, remote, pkt, v);
	if (ret == 0)
		return 1;
	if (ret == POLICY_NEXT)
		return 0;
	return ret == DROP_POLICY_DENY ? deny : ret;
}

/* Deny and Log-rule events of a host endpoint, within its interface's event budget. */
static __always_inline void hep_report(__u32 ifindex, __u32 id, __u8 dir, const struct tortie_verdict *v,
				       int ret, const struct tortie_pkt *pkt)
{
	struct tortie_ct4_key k;
	__u32 n = v->nlog < TORTIE_MAX_LOG_RULES ? v->nlog : TORTIE_MAX_LOG_RULES;

	if (ret < 0) {
		hep_ct_key(pkt, &k);
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

/* Host endpoint policy for one packet: TORTIE_FORWARD or a DROP_* reason. `in` (a constant at
 * each call, so the compiler keeps one specialised copy per direction, as two functions would):
 * the packet arrives (tc ingress), else it leaves. Arriving, the remote address is the source and
 * the local one the destination; leaving, the other way round. `tracked`: the packet belongs to a
 * flow tracked elsewhere (a reply the uplink translated back from SNAT; arriving only). */
static __always_inline int hep_policy(struct __sk_buff *skb, const struct tortie_pkt *pkt, const bool in, bool tracked)
{
	const struct tortie_hostep *h = hep_lookup(skb->ifindex);
	const __be32 remote = in ? pkt->saddr : pkt->daddr, local = in ? pkt->daddr : pkt->saddr;
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
	if (!hep_failsafe(fs_dir, pkt, pkt->dport, remote) && !hep_failsafe(fs_other, pkt, pkt->sport, remote)) {
		r = hep_stage(table[dnt], (lf >> dnt) & 1, remote, local, pkt, &v, DROP_HEP_UNTRACKED);
		if (r != 0) {
			hep_report(skb->ifindex, id, dir, &v, r, pkt);
			return r > 0 ? TORTIE_FORWARD : r;
		}
	}
	/* INVALID in Linux conntrack: Felix's tracked host endpoint chains drop it first. */
	if (pkt->proto == IPPROTO_TCP && !tcp_flags_valid(pkt->tcp_flags))
		return DROP_TCP_BAD_FLAGS;
	if (in && tracked)
		return TORTIE_FORWARD;
	r = hep_ct_established(pkt);
	if (r != 0)
		return r > 0 ? TORTIE_FORWARD : r;
	if (in) {
		if (!hep_failsafe(TORTIE_FS_IN, pkt, pkt->dport, remote)) {
			r = hep_stage(table[TORTIE_HEP_PREDNAT], (lf >> TORTIE_HEP_PREDNAT) & 1, remote, local, pkt, &v, DROP_HEP_PREDNAT);
			if (r != 0)
				goto decided;
		} else if (host_is_local_dst(skb, pkt)) {
			hep_ct_commit(pkt, 0);
			return TORTIE_FORWARD;
		}
		to_host = host_is_local_dst(skb, pkt);
	} else {
		/* skb_iif is 0 for what the host's own stack sends; forwarded packets keep the interface
		 * they arrived on (a cali* for a workload's, also when tortie_from_wep redirected it). */
		to_host = skb->ingress_ifindex == 0;
		if (to_host && hep_failsafe(TORTIE_FS_OUT, pkt, pkt->dport, remote)) {
			hep_ct_commit(pkt, 0);
			return TORTIE_FORWARD;
		}
	}
	if (to_host) {
		r = hep_stage(table[normal], (lf >> normal) & 1, remote, local, pkt, &v, DROP_HEP_POLICY);
		if (r == 0)
			r = DROP_HEP_POLICY; /* the normal table always decides; absent = fail closed */
	} else {
		r = table[fwd] ? hep_stage(table[fwd], (lf >> fwd) & 1, remote, local, pkt, &v, DROP_HEP_FORWARD) : 1;
		if (r == 0)
			r = DROP_HEP_FORWARD;
	}
decided:
	hep_report(skb->ifindex, id, dir, &v, r, pkt);
	if (r < 0)
		return r;
	hep_ct_commit(pkt, v.rule);
	return TORTIE_FORWARD;
}

/* A packet arriving on a host interface: TORTIE_FORWARD or a DROP_* reason. `tracked`: the
 * packet belongs to a flow tracked elsewhere (a reply the uplink translated back from SNAT). */
static __always_inline int hep_ingress(struct __sk_buff *skb, const struct tortie_pkt *pkt, bool tracked)
{
	return hep_policy(skb, pkt, true, tracked);
}

/* A packet leaving through a host interface: TORTIE_FORWARD or a DROP_* reason. */
static __always_inline int hep_egress(struct __sk_buff *skb, const struct tortie_pkt *pkt)
{
	return hep_policy(skb, pkt, false, false);
}

#endif
