/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NAT66: NAT outgoing of IPv6 pools (Calico's natOutgoing on an IPv6 IPPool), on the uplink. Workload
 * traffic from a natOutgoing IPv6 pool to a destination outside every IPv6 pool, not a node and not
 * this host leaves with the node's IPv6 address as source (Calico's natOutgoingAddress is IPv4 only)
 * (nat6_snat, tc egress); replies are translated back (nat6_rev, tc ingress).
 *
 * The guarantees are lib/nat.h's, with the same load-time tunables (port range, retries, quota,
 * timeouts — one set for both families) and the same algorithm, on 128-bit keys:
 * - a mapping never takes a tuple a node socket uses or listens on: ports only from
 *   [nat_port_min, nat_port_max] (the agent refuses a range overlapping ip_local_port_range, which
 *   governs IPv6 sockets too), each candidate checked against the node's live IPv6 sockets
 *   (bpf_skc_lookup_tcp / bpf_sk_lookup_udp), a node packet leaving from a range port takes its
 *   tuple back (nat6_host_egress), and replies owned by a node socket are not translated;
 * - a port is claimed by creating the REV entry with BPF_NOEXIST (atomic across CPUs), an expired
 *   one reclaimed; the workload's port is kept when inside the range, then nat_retries
 *   independent random candidates (nat_candidate, lib/nat.h); none left: DROP_NAT_NO_PORT;
 * - tortie_nat6_v1 is a plain hash (a full table refuses new flows: DROP_NAT_TABLE_FULL) and a
 *   workload address holds at most nat_quota flows (DROP_NAT_QUOTA; counts in tortie_natq6_v1,
 *   CREATED here, RELEASED by the agent's sweep, MOVED here at a verified close);
 * - a TCP flow whose close the workloads' IPv6 conntrack verifies (tortie_ct6_v1 through
 *   tortie_natct6) is released at once and its port reused under TIME-WAIT rules
 *   (nat6_tcp_release, nat_tw_ok), as lib/nat.h explains.
 * Checksums: IPv6 has no header checksum; the TCP/UDP/ICMPv6 checksum covers the pseudo-header,
 * so the 128-bit address change is folded in with bpf_csum_diff (and the port or echo id with it).
 *
 * ICMPv6 errors about a mapping are translated both ways (nat6_err_rev, nat6_err_snat below, as
 * lib/icmp_err.h for IPv4). Not translated (refused instead, so nothing leaves with a pool
 * address): ICMPv6 other than echo requests and errors about a live mapping (DROP_NAT6_ICMP).
 *
 * Fragments, as lib/frag.h's NAT points for IPv4: a first fragment carries the upper-layer header
 * and is translated like a whole datagram (its L4 checksum covers the whole datagram: the
 * incremental update stays right); a translated first fragment records the address it was given
 * (tortie_nfrag6_v1, keyed by the tuple before translation, the fragment header's 32-bit id and
 * the point); its later fragments get that address (nat6_frag_later; no header checksum in IPv6,
 * no L4 header in them). Leaving, a later fragment from a natOutgoing pool without a record (its
 * first fragment not translated, not seen, overtaken or forgotten) is dropped (DROP_NAT6_FRAG):
 * the workload address never leaves. Arriving for the node, a later fragment without a record is
 * the node's and passes untouched. The tracker is an LRU of 16384 datagrams: a full one forgets
 * the oldest, whose remaining fragments are refused (out) or left to the node (in); the sender's
 * retry starts a new datagram.
 */
#ifndef TORTIE_LIB_NAT6_H
#define TORTIE_LIB_NAT6_H

#include "lib/nat.h"

#ifndef IP6_NH_ICMP
#define IP6_NH_ICMP 58
#endif

/* tortie_nat6_v1: struct tortie_nat6_key -> struct tortie_nat6_value; as tortie_nat4_v2. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_nat6_key);
	__type(value, struct tortie_nat6_value);
	__uint(max_entries, 131072);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_nat6_v1 SEC(".maps");

/* tortie_natq6_v1: per-workload NAT66 mapping counts (TORTIE_QUOTA_*), as tortie_natq4_v1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_quota6_key);
	__type(value, struct tortie_quota_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_natq6_v1 SEC(".maps");

/* tortie_pool6_v1 (LPM): IPv6 pool prefix -> flags (TORTIE_POOL_F_*). Written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_pool6_key);
	__type(value, struct tortie_pool);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_pool6_v1 SEC(".maps");

/* tortie_node6_v1: every node's IPv6 address (no SNAT towards them). Written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_node6_key);
	__type(value, struct tortie_node_info);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_node6_v1 SEC(".maps");

/* tortie_netcfg6_v1[0]: this node's IPv6 address and SNAT source (zero address: NAT66 off). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct tortie_netcfg6);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_netcfg6_v1 SEC(".maps");

/* tortie_nfrag6_v1: struct tortie_frag6_key (point TORTIE_FRAG_PT_SNAT or _RNAT; addresses as the
 * first fragment arrived) -> struct tortie_natfrag6_value. Written and read by the uplink program
 * only; LRU (bounded, see above). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tortie_frag6_key);
	__type(value, struct tortie_natfrag6_value);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_nfrag6_v1 SEC(".maps");

/* Per-CPU scratch of nat6_snat: its keys and values would not fit the 512-byte stack of the call
 * chain next to the parsed packet. A tc program runs to completion on its CPU, so one slot serves. */
struct nat6_scratch {
	struct tortie_nat6_key fk, rk, ck;  /* ck: nat6_claim's FWD key */
	struct tortie_nat6_value nv, rv;
	struct bpf_sock_tuple t;            /* nat6_host_sock's lookup */
	__be32 stale[4];
	struct tortie_frag6_key frk;        /* nat6_frag_record / nat6_frag_later */
	struct tortie_natfrag6_value frv;
	struct tortie_ct6_key ctk;          /* nat6_ct_find (nat6_tcp_release) */
	__u64 syn_ts;                       /* nat6_snat: a new flow's SYN timestamp (nat_tcp_ts) */
	__u8 wl_a;                          /* nat6_ct_find: the workload is side a of ctk */
	__u8 closing;                       /* nat6_snat: the mapping may be released (nat6_out) */
};

/* The workloads' IPv6 conntrack (tortie_ct6_v1), read only, as tortie_natct4 for IPv4. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_ct6_key);
	__type(value, struct tortie_ct_value);
	__uint(max_entries, 1);
} tortie_natct6 SEC(".maps");


struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct nat6_scratch);
	__uint(max_entries, 1);
} tortie_nat6s_v1 SEC(".maps");

static __always_inline struct nat6_scratch *nat6_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tortie_nat6s_v1, &zero);
}

static __always_inline bool ip6_zero(const __be32 *a)
{
	return !(a[0] | a[1] | a[2] | a[3]);
}

static __always_inline void ip6_copy(__be32 *to, const __be32 *from)
{
	to[0] = from[0];
	to[1] = from[1];
	to[2] = from[2];
	to[3] = from[3];
}

/* A translated first fragment (any translated packet may be passed: only first fragments are
 * recorded): its later fragments at `point` will get nat_addr. */
static __always_inline void nat6_frag_record(const struct tortie_pkt *pkt, __u8 point, const __be32 *nat_addr)
{
	struct nat6_scratch *sc;

	if (pkt->frag != TORTIE_FRAG_FIRST)
		return;
	sc = nat6_scratch();
	if (!sc)
		return;
	frag6_key(&sc->frk, pkt, point);
	ip6_copy(sc->frv.nat_addr, nat_addr);
	bpf_map_update_elem(&tortie_nfrag6_v1, &sc->frk, &sc->frv, BPF_ANY);
}

/*
 * A later fragment at a NAT66 point (TORTIE_FRAG_PT_SNAT: its source, _RNAT: its destination):
 * the address its first fragment was given. 1 translated; 0 no record arriving (the node's);
 * no record leaving: DROP_NAT6_FRAG; a failed store: DROP_NAT6_FRAG_ADDR.
 */
static __noinline int nat6_frag_later(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u8 point)
{
	struct nat6_scratch *sc = nat6_scratch();
	bool out = point == TORTIE_FRAG_PT_SNAT;
	__u32 field = pkt->l3_off + (out ? offsetof(struct ipv6hdr, saddr) : offsetof(struct ipv6hdr, daddr));
	struct tortie_natfrag6_value *v;

	if (!sc)
		return out ? DROP_NAT6_FRAG : 0;
	frag6_key(&sc->frk, pkt, point);
	v = bpf_map_lookup_elem(&tortie_nfrag6_v1, &sc->frk);
	if (!v)
		return out ? DROP_NAT6_FRAG : 0;
	ip6_copy(sc->frv.nat_addr, v->nat_addr);
	if (bpf_skb_store_bytes(skb, field, sc->frv.nat_addr, 16, 0) < 0)
		return DROP_NAT6_FRAG_ADDR;
	netstat_inc(TORTIE_NS_NAT_FRAG);
	return 1;
}

/* This node's IPv6 parameters, or NULL while NAT66 is off. */
static __always_inline const struct tortie_netcfg6 *netcfg6_get(void)
{
	__u32 zero = 0;
	const struct tortie_netcfg6 *c = bpf_map_lookup_elem(&tortie_netcfg6_v1, &zero);

	return c && !ip6_zero(c->node_ip6) ? c : NULL;
}

/* The SNAT source: tortie_netcfg6's snat_ip6 if set (the agent leaves it zero: Calico's
 * natOutgoingAddress is IPv4 only), else the node's IPv6 address. */
static __always_inline const __be32 *snat6_addr(const struct tortie_netcfg6 *cfg)
{
	return ip6_zero(cfg->snat_ip6) ? cfg->node_ip6 : cfg->snat_ip6;
}

static __always_inline const struct tortie_pool *pool6_lookup(const __be32 *addr)
{
	struct tortie_pool6_key k = { .prefixlen = 128 };

	ip6_copy(k.addr, addr);
	return bpf_map_lookup_elem(&tortie_pool6_v1, &k);
}

static __always_inline bool node6_known(const __be32 *addr)
{
	struct tortie_node6_key k;

	ip6_copy(k.addr, addr);
	return bpf_map_lookup_elem(&tortie_node6_v1, &k) != NULL;
}

/* A leaving IPv6 frame the parser refused before it read the addresses (a payload length beyond
 * the frame): its addresses, if the fixed header is there, so that a natOutgoing pool's frame is
 * refused rather than passed (nothing leaves with a pool address). */
static __always_inline void nat6_refused_addrs(struct __sk_buff *skb, struct tortie_pkt *pkt)
{
	if (pkt->family == 6)
		return;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, saddr), pkt->saddr6, 16) == 0 &&
	    bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, daddr), pkt->daddr6, 16) == 0)
		pkt->family = 6;
}

/* SNAT applies: source in a natOutgoing IPv6 pool; destination in no pool, not a node, not us. */
static __always_inline bool needs_snat6(const struct tortie_pkt *pkt, const struct tortie_netcfg6 *cfg)
{
	const struct tortie_pool *src = pool6_lookup(pkt->saddr6);

	if (!src || !(src->flags & TORTIE_POOL_F_NAT_OUT))
		return false;
	if (ip6_eq(pkt->daddr6, cfg->node_ip6) || ip6_eq(pkt->daddr6, snat6_addr(cfg)) || pool6_lookup(pkt->daddr6) ||
	    node6_known(pkt->daddr6))
		return false;
	return true;
}

static __always_inline bool nat6_live(const struct tortie_nat6_value *v, __u8 proto, __u64 now)
{
	__u64 seen = v->last_seen_ns, t;

	if (seen >= now)
		return true;
	switch (proto) {
	case IPPROTO_TCP:
		t = nat_closed(v->flags) ? nat_timeout_tcp_closed_ns : nat_timeout_tcp_ns;
		break;
	case IPPROTO_UDP:
		t = nat_timeout_udp_ns;
		break;
	case IP6_NH_ICMP:
		t = nat_timeout_icmp_ns;
		break;
	default:
		t = nat_timeout_other_ns;
	}
	return now - seen <= t;
}

static __always_inline bool nat6_has_port(const struct tortie_pkt *pkt)
{
	return pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP ||
	       (pkt->proto == IP6_NH_ICMP && pkt->echo != TORTIE_ECHO_NONE);
}

static __always_inline void nat6_track_tcp(struct tortie_nat6_value *v, const struct tortie_pkt *pkt, bool out)
{
	__u8 f = pkt->tcp_flags, add = 0;

	if (pkt->proto != IPPROTO_TCP)
		return;
	/* As nat_track_tcp: only the workload's own RST closes; what arrives is noted for the sweep. */
	if (f & TCP_FLAG_RST)
		add = out ? TORTIE_NATF_RST : TORTIE_NATF_RST_IN;
	else if (f & TCP_FLAG_FIN)
		add = out ? TORTIE_NATF_FIN_OUT : TORTIE_NATF_FIN_IN_SEEN;
	if (add && !(v->flags & add))
		v->flags |= add;
}

/* Does a node socket own (node_ip:lport <- raddr:rport) over IPv6? As nat_host_sock. */
static __always_inline bool nat6_host_sock(struct __sk_buff *skb, __u8 proto, const __be32 *raddr, __be16 rport,
					   const __be32 *node_ip, __be16 lport)
{
	struct nat6_scratch *sc = nat6_scratch();
	struct bpf_sock_tuple *t;
	struct bpf_sock *sk;

	if (!sc)
		return true; /* cannot look: treat the tuple as the node's (never take it) */
	t = &sc->t;
	__builtin_memset(t, 0, sizeof(*t));
	ip6_copy(t->ipv6.saddr, raddr);
	ip6_copy(t->ipv6.daddr, node_ip);
	t->ipv6.sport = rport;
	t->ipv6.dport = lport;
	if (proto == IPPROTO_TCP)
		sk = bpf_skc_lookup_tcp(skb, t, sizeof(t->ipv6), BPF_F_CURRENT_NETNS, 0);
	else if (proto == IPPROTO_UDP)
		sk = bpf_sk_lookup_udp(skb, t, sizeof(t->ipv6), BPF_F_CURRENT_NETNS, 0);
	else
		return false;
	if (!sk)
		return false;
	bpf_sk_release(sk);
	return true;
}

/* The workload's conntrack entry of a NAT66 TCP flow (key built in sc->ctk; sc->wl_a: the workload
 * is its side a). Ports in host order. */
static __always_inline struct tortie_ct_value *nat6_ct_find(struct nat6_scratch *sc, const __be32 *wl, __u32 wl_port,
							    const __be32 *remote, __u32 remote_port)
{
	ct6_key_make(&sc->ctk, wl, remote, (__u16)wl_port, (__u16)remote_port, IPPROTO_TCP, NULL);
	sc->wl_a = sc->ctk.port_a == bpf_htons((__u16)wl_port) && ip6_eq(sc->ctk.addr_a, wl);
	return bpf_map_lookup_elem(&tortie_natct6, &sc->ctk);
}

/* As nat_tcp_release: a verified close releases the FWD entry (MOVED credited by the deleter)
 * and leaves the REV entry as the flow's tombstone. Called last for the packet. */
static __always_inline void nat6_tcp_release(struct __sk_buff *skb, __u32 l4off, const struct tortie_pkt *pkt,
					     const struct tortie_nat6_key *fk, const struct tortie_nat6_value *fv,
					     const struct tortie_nat6_key *rk, bool out, __u64 now)
{
	struct nat6_scratch *sc;
	struct tortie_nat6_value *rv;
	struct tortie_ct_value *cv;
	__u64 ts;
	bool a;

	if (!nat_release_may(pkt, fv->flags, out)) /* lib/nat.h */
		return;
	sc = nat6_scratch();
	if (!sc)
		return;
	cv = nat6_ct_find(sc, fk->saddr, bpf_ntohs(fk->sport), fk->daddr, bpf_ntohs(fk->dport));
	a = sc->wl_a;
	if (!cv || !nat_ct_closed(cv, a, pkt, out))
		return;
	rv = bpf_map_lookup_elem(&tortie_nat6_v1, rk);
	if (rv && ip6_eq(rv->addr, fk->saddr) && rv->port == fk->sport) {
		ts = nat_tcp_ts(skb, l4off, !out);
		rv->created_ns = tombstone_created(ts, a ? cv->seq_end[0] : cv->seq_end[1]);
		rv->flags = TORTIE_NATF_DONE | ((ts & NAT_TS_SEEN) ? TORTIE_NATF_TW_TS : 0);
		rv->last_seen_ns = now;
	}
	if (bpf_map_delete_elem(&tortie_nat6_v1, fk) == 0)
		quota6_add(&tortie_natq6_v1, fk->saddr, TORTIE_QUOTA_MOVED);
}

/* Claims the REV tuple rk for the flow, as nat_claim. 1 claimed, 0 taken, < 0 the table is full. */
static __always_inline int nat6_claim(const struct tortie_pkt *pkt, struct tortie_nat6_key *rk,
				      const struct tortie_nat6_value *rv, __u8 proto, __u64 now)
{
	struct nat6_scratch *sc = nat6_scratch();
	struct tortie_nat6_value *cur, *fv;
	struct tortie_nat6_key *fk;
	long err;

	/* Looked up first, as nat_claim. */
	cur = bpf_map_lookup_elem(&tortie_nat6_v1, rk);
	if (!cur) {
		err = bpf_map_update_elem(&tortie_nat6_v1, rk, rv, BPF_NOEXIST);
		if (err == 0)
			return 1;
		if (err == -E2BIG)
			return -1;
		cur = bpf_map_lookup_elem(&tortie_nat6_v1, rk);
		if (!cur)
			return bpf_map_update_elem(&tortie_nat6_v1, rk, rv, BPF_NOEXIST) == 0;
	}
	if (ip6_eq(cur->addr, rv->addr) && cur->port == rv->port) {
		if (cur->flags & TORTIE_NATF_DONE) { /* our own tombstone: the flow reopened its tuple */
			cur->flags = 0;
			cur->created_ns = now;
		}
		return 1;
	}
	if ((cur->flags & TORTIE_NATF_DONE) ? nat_tomb_live(cur->last_seen_ns, now) && !nat_tw_ok(pkt, sc ? sc->syn_ts : 0, cur->flags, cur->created_ns)
					     : nat6_live(cur, proto, now))
		return 0;
	/* A one-way flow keeps its port while its FWD entry is live and still maps to it. */
	if (!sc)
		return 0;
	fk = &sc->ck;
	__builtin_memset(fk, 0, sizeof(*fk));
	ip6_copy(fk->saddr, cur->addr);
	ip6_copy(fk->daddr, rk->saddr);
	fk->sport = cur->port;
	fk->dport = proto == IP6_NH_ICMP ? cur->port : rk->sport;
	fk->proto = proto;
	fk->dir = TORTIE_NAT_FWD;
	fv = bpf_map_lookup_elem(&tortie_nat6_v1, fk);
	if (fv && fv->port == rk->dport && nat6_live(fv, proto, now))
		return 0;
	bpf_map_delete_elem(&tortie_nat6_v1, rk);
	return bpf_map_update_elem(&tortie_nat6_v1, rk, rv, BPF_NOEXIST) == 0;
}

static __always_inline int nat6_try_port(struct __sk_buff *skb, const struct tortie_pkt *pkt, struct tortie_nat6_key *rk,
					 const struct tortie_nat6_value *rv, const __be32 *node_ip, __u64 now)
{
	if (nat6_host_sock(skb, pkt->proto, pkt->daddr6, rk->sport, node_ip, rk->dport)) {
		netstat_inc(TORTIE_NS_NAT_HOST_SOCK);
		return 0;
	}
	return nat6_claim(pkt, rk, rv, pkt->proto, now);
}

/*
 * Rewrites the source (src) or destination address and the matching port / echo id of an IPv6
 * packet, folding both into the L4 checksum. l4off: the upper-layer header in the frame.
 */
static __always_inline int nat6_rewrite(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off, bool src,
					const __be32 *from_ip, const __be32 *to_ip, __be16 from_port, __be16 to_port)
{
	__u32 field = pkt->l3_off + (src ? offsetof(struct ipv6hdr, saddr) : offsetof(struct ipv6hdr, daddr));
	__u32 csum_off = 0, port_off = 0;
	__u64 mangled = 0;
	__s64 diff;

	switch (pkt->proto) {
	case IPPROTO_TCP:
		csum_off = l4off + 16;
		port_off = l4off + (src ? 0 : 2);
		break;
	case IPPROTO_UDP:
		csum_off = l4off + 6;
		port_off = l4off + (src ? 0 : 2);
		mangled = BPF_F_MARK_MANGLED_0;
		break;
	case IP6_NH_ICMP:
		/* ICMPv6's checksum covers the pseudo-header too (unlike ICMPv4's). */
		csum_off = l4off + 2;
		port_off = l4off + 4;
		break;
	}
	if (csum_off) {
		diff = bpf_csum_diff((__be32 *)from_ip, 16, (__be32 *)to_ip, 16, 0);
		if (diff < 0 || bpf_l4_csum_replace(skb, csum_off, 0, (__u32)diff, BPF_F_PSEUDO_HDR | mangled) < 0)
			return DROP_NAT_L4_CSUM;
	}
	if (port_off && from_port != to_port && csum_l4_set16(skb, csum_off, port_off, from_port, to_port, mangled) < 0)
		return DROP_NAT_PORT;
	if (bpf_skb_store_bytes(skb, field, to_ip, 16, 0) < 0)
		return DROP_NAT6_ADDR;
	return 0;
}

/* SNAT an IPv6 packet leaving through the uplink (the caller decided it needs it). 0 or DROP_*. */
static __noinline int nat6_snat(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
				const __be32 *node_ip, __u64 syn_ts)
{
	struct tortie_nat6_value *fv, *cur;
	struct tortie_quota_value *created = NULL;
	__u64 now = bpf_ktime_get_ns();
	bool ports = nat6_has_port(pkt), replace = false, stale = false;
	__be16 sport = bpf_htons(pkt->ct_sport), dport = bpf_htons(pkt->ct_dport), port = 0;
	__be16 stale_port = 0;
	__u32 span, start, i, own = pkt->ct_sport;
	struct nat6_scratch *sc = nat6_scratch();
	struct tortie_nat6_key *fk, *rk;
	struct tortie_nat6_value *nv, *rv;
	int got = 0;

	if (!sc)
		return DROP_NAT_NO_PORT;
	__builtin_memset(sc, 0, sizeof(*sc));
	sc->syn_ts = syn_ts;
	fk = &sc->fk;
	rk = &sc->rk;
	nv = &sc->nv;
	rv = &sc->rv;
	ip6_copy(fk->saddr, pkt->saddr6);
	ip6_copy(fk->daddr, pkt->daddr6);
	fk->sport = ports ? sport : 0;
	fk->dport = ports ? dport : 0;
	fk->proto = pkt->proto;
	fk->dir = TORTIE_NAT_FWD;

	ip6_copy(rk->saddr, pkt->daddr6);
	ip6_copy(rk->daddr, node_ip);
	rk->sport = pkt->proto == IP6_NH_ICMP ? 0 : fk->dport;
	rk->proto = pkt->proto;
	rk->dir = TORTIE_NAT_REV;
	ip6_copy(rv->addr, pkt->saddr6);
	rv->port = fk->sport;
	rv->last_seen_ns = now;
	rv->created_ns = now;

	fv = bpf_map_lookup_elem(&tortie_nat6_v1, fk);
	if (fv) {
		stale = true;
		ip6_copy(sc->stale, fv->addr);
		stale_port = fv->port;
	}
	if (fv && ip6_eq(fv->addr, node_ip)) {
		rk->dport = fv->port;
		cur = bpf_map_lookup_elem(&tortie_nat6_v1, rk);
		if (cur ? (ip6_eq(cur->addr, rv->addr) && cur->port == rv->port) : nat6_try_port(skb, pkt, rk, rv, node_ip, now) > 0)
			port = fv->port;
		else
			fv = NULL;
	} else {
		fv = NULL;
	}
	if (!fv) {
		replace = stale;
		if (!replace) {
			created = quota6_counter(&tortie_natq6_v1, pkt->saddr6, TORTIE_QUOTA_CREATED);
			if (!created || quota6_full(&tortie_natq6_v1, pkt->saddr6, created, nat_quota))
				return DROP_NAT_QUOTA;
		}
		if (!ports) {
			rk->dport = 0;
			got = nat6_try_port(skb, pkt, rk, rv, node_ip, now);
		} else {
			span = nat_port_max >= nat_port_min ? nat_port_max - nat_port_min + 1 : 1;
			if (own >= nat_port_min && own <= nat_port_max) {
				rk->dport = sport;
				got = nat6_try_port(skb, pkt, rk, rv, node_ip, now);
			}
			start = bpf_get_prandom_u32();
			for (i = 0; i < NAT_MAX_RETRIES && got == 0; i++) {
				if (i >= nat_retries)
					break;
				netstat_inc(TORTIE_NS_SNAT_RETRY);
				rk->dport = bpf_htons((__u16)(nat_port_min + nat_candidate(start, i, span) % span));
				got = nat6_try_port(skb, pkt, rk, rv, node_ip, now);
			}
		}
		if (got < 0)
			return DROP_NAT_TABLE_FULL;
		if (got == 0) {
			netstat_inc(TORTIE_NS_SNAT_RETRY);
			return DROP_NAT_NO_PORT;
		}
		port = rk->dport;
		ip6_copy(nv->addr, node_ip);
		nv->port = port;
		nv->last_seen_ns = now;
		nv->created_ns = now;
		nv->flags = nat_pickup(pkt) ? TORTIE_NATF_PICKUP : 0;
		cur = replace ? bpf_map_lookup_elem(&tortie_nat6_v1, fk) : NULL;
		if (cur && ip6_eq(cur->addr, sc->stale) && cur->port == stale_port &&
		    bpf_map_update_elem(&tortie_nat6_v1, fk, nv, BPF_EXIST) == 0) {
			netstat_inc(TORTIE_NS_SNAT_NEW);
		} else if (bpf_map_update_elem(&tortie_nat6_v1, fk, nv, BPF_NOEXIST) == 0) {
			if (!created)
				created = quota6_counter(&tortie_natq6_v1, pkt->saddr6, TORTIE_QUOTA_CREATED);
			if (created)
				__sync_fetch_and_add(&created->count, 1);
			netstat_inc(TORTIE_NS_SNAT_NEW);
		} else {
			/* Lost the race for this flow's first packets (take the winner's port), or the table
			 * is full: give back our claim (unless it is the winner's port). */
			cur = bpf_map_lookup_elem(&tortie_nat6_v1, fk);
			if (!cur || cur->port != port)
				bpf_map_delete_elem(&tortie_nat6_v1, rk);
			if (!cur)
				return DROP_NAT_TABLE_FULL;
			port = cur->port;
		}
		fv = bpf_map_lookup_elem(&tortie_nat6_v1, fk);
		if (!fv)
			return DROP_NAT_NO_PORT;
	}
	/* A fresh SYN on a closed mapping reopens it (the workload reused its port). */
	if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		fv->flags = 0;
	nat6_track_tcp(fv, pkt, true);
	fv->last_seen_ns = now;
	netstat_inc(TORTIE_NS_SNAT);
	nat6_frag_record(pkt, TORTIE_FRAG_PT_SNAT, node_ip);
	rk->dport = port;
	/* Both FINs seen and an ACK: nat6_out checks for a verified close after the rewrite. */
	sc->closing = pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & TCP_FLAG_ACK) &&
		      (fv->flags & (TORTIE_NATF_FIN_OUT | TORTIE_NATF_FIN_IN_SEEN)) == (TORTIE_NATF_FIN_OUT | TORTIE_NATF_FIN_IN_SEEN);
	return nat6_rewrite(skb, pkt, l4off, true, pkt->saddr6, node_ip, ports ? sport : 0, port);
}

/* After nat6_snat translated a segment of a flow whose FINs both went by: is the close verified?
 * (Its own subprogram, out of nat6_snat's call chain: the stack of that chain is at its limit.) */
static __noinline void nat6_release_out(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off)
{
	struct nat6_scratch *sc = nat6_scratch();
	struct tortie_nat6_value *fv;

	if (!sc || !sc->closing)
		return;
	fv = bpf_map_lookup_elem(&tortie_nat6_v1, &sc->fk);
	if (fv)
		nat6_tcp_release(skb, l4off, pkt, &sc->fk, fv, &sc->rk, true, bpf_ktime_get_ns());
}

/* NAT66 of a packet leaving (the caller decided it needs it): nat6_snat, with a new flow's SYN
 * timestamp read first and a verified close released after. 0 or DROP_*. */
static __always_inline int nat6_out(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
				    const __be32 *node_ip)
{
	__u64 syn_ts = 0;
	int ret;

	if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		syn_ts = nat_tcp_ts(skb, l4off, false);
	ret = nat6_snat(skb, pkt, l4off, node_ip, syn_ts);
	if (ret == 0 && pkt->proto == IPPROTO_TCP)
		nat6_release_out(skb, pkt, l4off);
	return ret;
}

/* The node's own IPv6 packet from node_ip with a source port in the NAT range: as nat_host_egress. */
static __always_inline void nat6_host_egress(const struct tortie_pkt *pkt)
{
	struct tortie_nat6_key rk = {};

	if ((pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP) || pkt->frag == TORTIE_FRAG_LATER ||
	    pkt->ct_sport < nat_port_min || pkt->ct_sport > nat_port_max)
		return;
	ip6_copy(rk.saddr, pkt->daddr6);
	ip6_copy(rk.daddr, pkt->saddr6);
	rk.sport = bpf_htons(pkt->ct_dport);
	rk.dport = bpf_htons(pkt->ct_sport);
	rk.proto = pkt->proto;
	rk.dir = TORTIE_NAT_REV;
	if (bpf_map_delete_elem(&tortie_nat6_v1, &rk) == 0)
		netstat_inc(TORTIE_NS_NAT_HOST_SOCK);
}

/* Reverse translation of an IPv6 packet arriving for node_ip: 1 translated, 0 not ours, < 0 a drop. */
static __always_inline int nat6_rev(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
				    const __be32 *node_ip)
{
	struct tortie_nat6_key rk = {}, fk = {};
	struct tortie_nat6_value *rv, *fv;
	__u64 now = bpf_ktime_get_ns();
	bool ports = nat6_has_port(pkt);
	__be16 dport = bpf_htons(pkt->ct_dport);
	int ret;

	ip6_copy(rk.saddr, pkt->saddr6);
	ip6_copy(rk.daddr, node_ip);
	rk.sport = ports && pkt->proto != IP6_NH_ICMP ? bpf_htons(pkt->ct_sport) : 0;
	rk.dport = ports ? dport : 0;
	rk.proto = pkt->proto;
	rk.dir = TORTIE_NAT_REV;
	rv = bpf_map_lookup_elem(&tortie_nat6_v1, &rk);
	if (!rv)
		return 0;
	if ((pkt->proto == IPPROTO_UDP ||
	     (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)) &&
	    nat6_host_sock(skb, pkt->proto, pkt->saddr6, rk.sport, node_ip, rk.dport)) {
		netstat_inc(TORTIE_NS_NAT_HOST_SOCK);
		if (pkt->proto == IPPROTO_TCP)
			bpf_map_delete_elem(&tortie_nat6_v1, &rk);
		return 0;
	}
	ip6_copy(fk.saddr, rv->addr);
	ip6_copy(fk.daddr, pkt->saddr6);
	fk.sport = rv->port;
	fk.dport = pkt->proto == IP6_NH_ICMP ? rv->port : rk.sport;
	fk.proto = pkt->proto;
	fk.dir = TORTIE_NAT_FWD;
	fv = bpf_map_lookup_elem(&tortie_nat6_v1, &fk);
	if (fv) {
		if (!nat6_live(fv, pkt->proto, now))
			return 0;
		nat6_track_tcp(fv, pkt, false);
		fv->last_seen_ns = now;
		if (!(fv->flags & TORTIE_NATF_REPLY))
			fv->flags |= TORTIE_NATF_REPLY;
	}
	rv->last_seen_ns = now;
	if (fv)
		nat6_tcp_release(skb, l4off, pkt, &fk, fv, &rk, false, now);
	netstat_inc(TORTIE_NS_RNAT);
	nat6_frag_record(pkt, TORTIE_FRAG_PT_RNAT, rv->addr);
	ret = nat6_rewrite(skb, pkt, l4off, false, node_ip, rv->addr, rk.dport, rv->port);
	return ret < 0 ? ret : 1;
}

/*
 * ICMPv6 errors about NAT66 mappings (destination unreachable, Packet Too Big, time exceeded,
 * parameter problem), both ways, as lib/icmp_err.h does for IPv4: the outer address and the
 * quoted datagram's address and port (or echo id) are rewritten, each change folded into the
 * ICMPv6 checksum (the outer one through the pseudo-header, the quoted one through the message
 * body; IPv6 has no header checksum, the quoted L4 checksum is left alone: receivers do not
 * check it). The quote is read only within the error's payload length and walked past its
 * extension headers as the parser walks it (leniently); a quoted later fragment names no flow.
 */

/* The quoted datagram of an ICMPv6 error at inoff: its header in *in, its upper-layer protocol
 * and offset in *w. false: not a quote that names a flow (not IPv6, truncated, a later fragment). */
static __always_inline bool nat6_err_quote(struct __sk_buff *skb, __u32 inoff, __u32 dgram_end, struct ipv6hdr *in,
					   struct ip6_walk *w)
{
	if (inoff + sizeof(*in) > dgram_end || bpf_skb_load_bytes(skb, inoff, in, sizeof(*in)) < 0 || in->version != 6)
		return false;
	w->off = inoff + sizeof(*in);
	w->nh = in->nexthdr;
	return ip6_walk_exts(skb, w, dgram_end, false) == 0 && w->frag != TORTIE_FRAG_LATER;
}

/* Rewrites a 16-byte address at `at` (from -> to), folding it into the ICMPv6 checksum at icsum;
 * pseudo: the address is the outer header's (pseudo-header), else it is in the message body. */
static __always_inline int nat6_err_set_addr(struct __sk_buff *skb, __u32 icsum, __u32 at, const __be32 *from,
					     const __be32 *to, bool pseudo)
{
	__s64 diff = bpf_csum_diff((__be32 *)from, 16, (__be32 *)to, 16, 0);

	if (diff < 0 || bpf_l4_csum_replace(skb, icsum, 0, (__u32)diff, pseudo ? BPF_F_PSEUDO_HDR : 0) < 0 ||
	    bpf_skb_store_bytes(skb, at, to, 16, 0) < 0)
		return -1;
	return 0;
}

/*
 * An ICMPv6 error addressed to node_ip that quotes a NAT66-translated packet (node_ip:port ->
 * remote): sent on to the workload with the quoted datagram as the workload sent it (outer
 * destination, quoted source address and port or echo id). Only while the flow's forward mapping
 * is live and no node socket owns the quoted tuple. 1 translated, 0 not ours (the node's), < 0 a drop.
 */
static __noinline int nat6_err_rev(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
				   const __be32 *node_ip)
{
	struct nat6_scratch *sc = nat6_scratch();
	struct tortie_nat6_key *rk, *fk;
	struct tortie_nat6_value *rv, *fv;
	struct ipv6hdr in;
	struct ip6_walk w = {};
	__u32 icsum = l4off + 2, inoff = l4off + 8, need = 0, port_at = 0;
	__u32 dgram_end = (__u32)pkt->l3_off + pkt->ip_tot; /* never Ethernet padding */
	__be16 ports[3];
	__be32 to_ip[4];
	__be16 to_port;

	if (!sc || !nat6_err_quote(skb, inoff, dgram_end, &in, &w))
		return 0;
	if (!ip6_eq((const __be32 *)&in.saddr, node_ip))
		return 0;
	if (w.nh == IPPROTO_TCP || w.nh == IPPROTO_UDP)
		need = 4;
	else if (w.nh == IP6_NH_ICMP)
		need = 6;
	/* The quoted ports must be inside the datagram: not translated otherwise (the node's). */
	if (w.off + need > dgram_end)
		return 0;
	/* Exactly what the quote must hold: a 4-byte TCP/UDP quote ending the frame is read too. */
	if (need == 4 && bpf_skb_load_bytes(skb, w.off, ports, 4) < 0)
		return 0;
	if (need == 6 && bpf_skb_load_bytes(skb, w.off, ports, 6) < 0)
		return 0;
	rk = &sc->rk;
	fk = &sc->fk;
	__builtin_memset(rk, 0, sizeof(*rk));
	__builtin_memset(fk, 0, sizeof(*fk));
	ip6_copy(rk->saddr, (const __be32 *)&in.daddr);
	ip6_copy(rk->daddr, node_ip);
	rk->proto = w.nh;
	rk->dir = TORTIE_NAT_REV;
	if (need == 4) {
		rk->sport = ports[1];
		rk->dport = ports[0];
		port_at = w.off;
	} else if (need == 6) {
		/* Only a quoted echo request is a packet of a translated ping (the node sends no others). */
		if (((__u8 *)ports)[0] != ICMP6_ECHO_REQUEST)
			return 0;
		rk->dport = ports[2];
		port_at = w.off + 4;
	}
	rv = bpf_map_lookup_elem(&tortie_nat6_v1, rk);
	if (!rv)
		return 0;
	ip6_copy(fk->saddr, rv->addr);
	ip6_copy(fk->daddr, (const __be32 *)&in.daddr);
	fk->sport = rv->port;
	fk->dport = w.nh == IP6_NH_ICMP ? rv->port : rk->sport;
	fk->proto = w.nh;
	fk->dir = TORTIE_NAT_FWD;
	fv = bpf_map_lookup_elem(&tortie_nat6_v1, fk);
	if (!fv || !nat6_live(fv, w.nh, bpf_ktime_get_ns()))
		return 0;
	ip6_copy(to_ip, rv->addr);
	to_port = rv->port;
	if (nat6_host_sock(skb, w.nh, (const __be32 *)&in.daddr, rk->sport, node_ip, rk->dport)) {
		netstat_inc(TORTIE_NS_NAT_HOST_SOCK);
		return 0;
	}
	/* Quoted source address and port or echo id (message body), then the outer destination. */
	if (nat6_err_set_addr(skb, icsum, inoff + offsetof(struct ipv6hdr, saddr), node_ip, to_ip, false) < 0)
		return DROP_ICMP_QUOTE;
	if (port_at && rk->dport != to_port && csum_l4_set16(skb, icsum, port_at, rk->dport, to_port, 0) < 0)
		return DROP_ICMP_QUOTE;
	if (nat6_err_set_addr(skb, icsum, pkt->l3_off + offsetof(struct ipv6hdr, daddr), node_ip, to_ip, true) < 0)
		return DROP_ICMP_OUTER;
	netstat_inc(TORTIE_NS_RNAT);
	return 1;
}

/*
 * ICMPv6 from a natOutgoing pool to the outside other than echo requests (which nat6_snat maps):
 * a workload's error about a packet of a translated flow it received (quoted: remote -> workload:port,
 * as nat6_rev delivered it) leaves as the node would send it (outer source, the quoted destination
 * address and port or echo id back to the node's mapping). Anything else — not an error, a quote
 * naming no live mapping, an error not addressed to the quoted datagram's source — is dropped
 * (DROP_NAT6_ICMP): a workload address never leaves in an ICMPv6 message. 0 or a drop reason.
 */
static __noinline int nat6_err_snat(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
				    const __be32 *node_ip)
{
	struct nat6_scratch *sc = nat6_scratch();
	struct tortie_nat6_key *fk;
	struct tortie_nat6_value *fv;
	struct ipv6hdr in;
	struct ip6_walk w = {};
	__u32 icsum = l4off + 2, inoff = l4off + 8, port_at = 0;
	__u32 dgram_end = (__u32)pkt->l3_off + pkt->ip_tot; /* never Ethernet padding */
	__be16 ports[3], to_port;

	if (!sc || !icmp6_is_error((__u8)(pkt->dport >> 8)) || !nat6_err_quote(skb, inoff, dgram_end, &in, &w))
		return DROP_NAT6_ICMP;
	/* About a datagram the workload received, and addressed to that datagram's source. */
	if (!ip6_eq((const __be32 *)&in.daddr, pkt->saddr6) || !ip6_eq((const __be32 *)&in.saddr, pkt->daddr6))
		return DROP_NAT6_ICMP;
	fk = &sc->fk;
	__builtin_memset(fk, 0, sizeof(*fk));
	ip6_copy(fk->saddr, pkt->saddr6);
	ip6_copy(fk->daddr, pkt->daddr6);
	fk->proto = w.nh;
	fk->dir = TORTIE_NAT_FWD;
	switch (w.nh) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (w.off + 4 > dgram_end || bpf_skb_load_bytes(skb, w.off, ports, 4) < 0)
			return DROP_NAT6_ICMP;
		fk->sport = ports[1];
		fk->dport = ports[0];
		port_at = w.off + 2;
		break;
	case IP6_NH_ICMP:
		if (w.off + 6 > dgram_end || bpf_skb_load_bytes(skb, w.off, ports, 6) < 0 ||
		    !icmp6_is_echo(((__u8 *)ports)[0]))
			return DROP_NAT6_ICMP;
		fk->sport = fk->dport = ports[2];
		port_at = w.off + 4;
		break;
	default:
		break;
	}
	fv = bpf_map_lookup_elem(&tortie_nat6_v1, fk);
	if (!fv || !ip6_eq(fv->addr, node_ip) || !nat6_live(fv, w.nh, bpf_ktime_get_ns()))
		return DROP_NAT6_ICMP;
	to_port = fv->port;
	if (nat6_err_set_addr(skb, icsum, inoff + offsetof(struct ipv6hdr, daddr), pkt->saddr6, node_ip, false) < 0)
		return DROP_ICMP_QUOTE;
	if (port_at && fk->sport != to_port && csum_l4_set16(skb, icsum, port_at, fk->sport, to_port, 0) < 0)
		return DROP_ICMP_QUOTE;
	if (nat6_err_set_addr(skb, icsum, pkt->l3_off + offsetof(struct ipv6hdr, saddr), pkt->saddr6, node_ip, true) < 0)
		return DROP_ICMP_OUTER;
	netstat_inc(TORTIE_NS_SNAT);
	return 0;
}

#endif
