/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection tracking: one hash entry per flow, key normalised over both directions
 * (shared/maps.h). Timeouts are Calico's and load-time constants; an entry older than its
 * state's timeout is treated as absent here and deleted by the agent's sweep
 * (src/dataplane/bpf/conntrack.ts) with batch ops, so no packet ever scans the table.
 *
 * Approval model. A flow between two local workloads crosses two policy points: the
 * initiator's cali* tc ingress (its egress policy) and the responder's cali* tc egress (its
 * ingress policy). Each point records its own approval bit (SRC_OK / DST_OK); a packet is
 * "established" at a point only when that point's bit is set, so an allow at one end never
 * skips the other end's policy. A reply passes at a point when the bit of the local side at
 * that point is set (the responder's DST_OK when it sends, the initiator's SRC_OK when it
 * receives). When the responder is a workload of this node too (its point has seen the flow:
 * DST_LOCAL), the initiator receives replies only once the responder's ingress policy allowed
 * the request (DST_OK as well): a denied request never opens the reply path, as with Linux
 * conntrack, where a request dropped by the receiver's filter leaves no entry.
 * Existing flows keep their verdict until the entry expires, as in Calico.
 *
 * ICMP errors (ct_icmp_related) pass as related only when genuine, as Linux conntrack's
 * nf_conntrack_inet_error checks them: addressed to the quoted datagram's source (after NAT:
 * the uplink translates errors about SNATed flows first), quoting a live flow, and that flow
 * approved by the local endpoint's policy at this point (the approval a reply would need here).
 * A workload sending an error must be the quoted datagram's destination (workloads do not
 * route). Anything else is a plain ICMP packet that policy judges.
 */
#ifndef TORTIE_LIB_CONNTRACK_H
#define TORTIE_LIB_CONNTRACK_H

#include "lib/parse.h"
#include "lib/quota.h"
#include "lib/ct_tcp.h"

#define NSEC 1000000000ULL
#ifndef E2BIG
#define E2BIG 7
#endif
#ifndef EEXIST
#define EEXIST 17
#endif

/* Load-time tunables (ns); the agent's sweep is given the same values. */
const volatile __u64 ct_timeout_syn_ns = 20 * NSEC;
const volatile __u64 ct_timeout_est_ns = 3600 * NSEC;
const volatile __u64 ct_timeout_fin_ns = 30 * NSEC;
const volatile __u64 ct_timeout_rst_ns = 40 * NSEC;
const volatile __u64 ct_timeout_udp_ns = 60 * NSEC;
const volatile __u64 ct_timeout_icmp_ns = 5 * NSEC;
const volatile __u64 ct_timeout_other_ns = 600 * NSEC;
/* Live entries one workload address may own (see ct_owner); 0 = no quota. Set by the agent. */
const volatile __u32 ct_quota = 0;

/*
 * tortie_ct4_v3: struct tortie_ct4_key -> struct tortie_ct_value.
 * Written by the cali* programs (create on an allowed new flow, state/last_seen on every
 * packet); read by them; the agent reads it for metrics and deletes expired entries.
 * max_entries is set by the agent at load (derived from memory); the value here is the
 * default. Not LRU (v1 was): a live flow is never evicted to make room; a full table refuses
 * new flows (DROP_CT_TABLE_FULL), and each workload may own at most ct_quota entries
 * (DROP_CT_QUOTA), so one workload's flood cannot fill it for the others.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_ct4_key);
	__type(value, struct tortie_ct_value);
	__uint(max_entries, 262144);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_ct4_v3 SEC(".maps");

/*
 * tortie_ctq4_v1: per-workload counts of conntrack entries (shared/maps.h, lib/quota.h). The
 * owner of an entry follows from the entry itself (ct_owner): the initiator when its egress
 * point approved the flow (SRC_OK), else the responder (the entry came in through its ingress
 * point). CREATED and MOVED are the programs'; RELEASED is set by the agent's sweep so that the
 * count equals the entries it saw, which also corrects the rare double count of two CPUs racing
 * on the same entry.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_quota4_key);
	__type(value, struct tortie_quota_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_ctq4_v1 SEC(".maps");

static __always_inline __be32 ct_owner(const struct tortie_ct4_key *k, __u64 flags)
{
	bool init_a = flags & TORTIE_CTF_A_IS_INIT;
	bool owner_a = (flags & TORTIE_CTF_SRC_OK) ? init_a : !init_a;

	return owner_a ? k->addr_a : k->addr_b;
}

enum ct_result {
	CT_NEW = 0,         /* no live entry: policy decides, ct_commit creates one */
	CT_ESTABLISHED = 1, /* this point approved the flow already: pass */
	CT_RELATED = 2,     /* ICMP error about a tracked flow: pass */
	CT_UNAPPROVED = 3,  /* entry exists but this point never approved it: policy decides */
	CT_INVALID = 4,     /* approved TCP flow, RST/FIN outside its window: DROP_CT_INVALID */
};

struct ct_ctx {
	struct tortie_ct4_key key;
	struct tortie_ct_value *entry;
	__u64 now;      /* the lookup's clock (ct_now); ct_commit stamps with it */
	bool src_is_a;
	bool init_dir;  /* packet travels initiator -> responder */
	bool keyed;     /* key, now and src_is_a are this packet's (a lookup made them) */
};

static __always_inline __u64 ct_timeout(__u8 state)
{
	switch (state) {
	case TORTIE_CT_SYN_SENT:
	case TORTIE_CT_SYN_RECV:
		return ct_timeout_syn_ns;
	case TORTIE_CT_ESTABLISHED:
		return ct_timeout_est_ns;
	case TORTIE_CT_FIN_WAIT:
	case TORTIE_CT_CLOSING:
		return ct_timeout_fin_ns;
	case TORTIE_CT_RST:
		return ct_timeout_rst_ns;
	case TORTIE_CT_UDP:
		return ct_timeout_udp_ns;
	case TORTIE_CT_ICMP:
		return ct_timeout_icmp_ns;
	default:
		return ct_timeout_other_ns;
	}
}

/*
 * The conntrack clock: CLOCK_MONOTONIC at the kernel tick's resolution (bpf_ktime_get_coarse_ns,
 * the time of the last tick: 4 ms at HZ=250), the clock of bpf_ktime_get_ns and of the agent's
 * sweep (process.hrtime), read without the clock source. Timeouts are seconds, so a stamp up to a
 * tick early changes nothing observable; it saved ~15 ns of an established packet's ~150 ns in
 * BPF_PROG_TEST_RUN (docs/benchmarks.md, Per-packet).
 */
static __always_inline __u64 ct_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* `now` was read before the lookup; another CPU may have stamped the entry after that, so
 * last_seen can be ahead of now. Such an entry is live, not 2^64 ns old. */
static __always_inline bool ct_live(const struct tortie_ct_value *v, __u64 now)
{
	__u64 seen = v->last_seen_ns;

	return seen >= now || now - seen <= ct_timeout(v->state);
}

/* The approval bit this point sets for a packet in the initiator direction. */
static __always_inline __u32 ct_point_flag(__u8 dir)
{
	return dir == TORTIE_DIR_EGRESS ? TORTIE_CTF_SRC_OK : TORTIE_CTF_DST_OK;
}

/*
 * The approval a packet needs at a point, given whether the endpoint of this point is the
 * flow's initiator and whether the packet comes in to it: the endpoint's own approval, and
 * for packets coming in to the initiator also the local responder's (DST_LOCAL).
 */
static __always_inline __u32 ct_need(bool local_is_init, __u8 dir, __u64 flags)
{
	if (!local_is_init)
		return TORTIE_CTF_DST_OK;
	if (dir == TORTIE_DIR_INGRESS && (flags & TORTIE_CTF_DST_LOCAL))
		return TORTIE_CTF_SRC_OK | TORTIE_CTF_DST_OK;
	return TORTIE_CTF_SRC_OK;
}

static __always_inline bool ct_icmp_related(const struct tortie_pkt *pkt, __u8 dir, __u64 now)
{
	struct tortie_ct_value *v;
	bool quoted_src_is_init, local_is_init;
	__be32 quoted_dst = pkt->inner_src_is_a ? pkt->inner.addr_b : pkt->inner.addr_a;
	__u32 need;
	__u64 f;

	if (pkt->daddr != pkt->inner_saddr)
		return false;
	if (dir == TORTIE_DIR_EGRESS && pkt->saddr != quoted_dst)
		return false;
	v = bpf_map_lookup_elem(&tortie_ct4_v3, &pkt->inner);
	if (!v || !ct_live(v, now))
		return false;
	f = v->flags;
	quoted_src_is_init = pkt->inner_src_is_a == !!(f & TORTIE_CTF_A_IS_INIT);
	/* The endpoint here: the error's receiver (the quoted source) or its sender. */
	local_is_init = dir == TORTIE_DIR_INGRESS ? quoted_src_is_init : !quoted_src_is_init;
	need = ct_need(local_is_init, dir, f);
	return (f & need) == need;
}

/*
 * A live entry `v` of the packet's flow (c->entry = v), judged at this point: the approval bits
 * it needs here, then on ESTABLISHED the TCP state and last_seen. Both families.
 */
static __always_inline enum ct_result ct_entry_judge(const struct tortie_pkt *pkt, __u8 dir,
						     struct tortie_ct_value *v, bool src_is_a,
						     bool *init_dir, __u64 now)
{
	bool local_is_init;
	__u32 need;

	*init_dir = src_is_a == !!(v->flags & TORTIE_CTF_A_IS_INIT);
	local_is_init = (dir == TORTIE_DIR_EGRESS) == *init_dir;
	/* The responder's point runs before any reply of its reaches the initiator's point. */
	if (!local_is_init && !(v->flags & TORTIE_CTF_DST_LOCAL))
		__sync_fetch_and_or(&v->flags, TORTIE_CTF_DST_LOCAL);
	need = ct_need(local_is_init, dir, v->flags);
	if ((v->flags & need) != need)
		return CT_UNAPPROVED;
	if (pkt->proto == IPPROTO_TCP && !ct_tcp_advance(v, pkt, *init_dir, src_is_a))
		return CT_INVALID;
	if (!*init_dir && !(v->flags & TORTIE_CTF_REPLY))
		__sync_fetch_and_or(&v->flags, TORTIE_CTF_REPLY);
	v->last_seen_ns = now;
	return CT_ESTABLISHED;
}

/* Looks the packet up; on ESTABLISHED also advances state and last_seen. */
static __always_inline enum ct_result ct_lookup(const struct tortie_pkt *pkt, __u8 dir, struct ct_ctx *c)
{
	struct tortie_ct_value *v;
	__u64 now = ct_now();

	c->now = now;
	ct4_key_make(&c->key, pkt->saddr, pkt->daddr, pkt->ct_sport, pkt->ct_dport, pkt->proto, &c->src_is_a);
	ct4_key_mark_echo(&c->key, c->src_is_a, pkt->echo);
	c->keyed = true;
	c->entry = NULL;
	if (pkt->icmp_err && ct_icmp_related(pkt, dir, now))
		return CT_RELATED;
	if (pkt->untracked)
		return CT_NEW;
	v = bpf_map_lookup_elem(&tortie_ct4_v3, &c->key);
	if (!v || !ct_live(v, now) || ct_tcp_reopens(v, pkt))
		return CT_NEW;
	c->entry = v;
	return ct_entry_judge(pkt, dir, v, c->src_is_a, &c->init_dir, now);
}

/*
 * The second point of a host-routed packet (the destination's, right after the source's in the
 * same program run): the source's lookup left the flow's key in `c` and, when it found a live
 * entry, the entry itself, which this run still holds (same tuple, same RCU section, and an entry
 * is only replaced when no live one was found). Judges that entry at this point without a second
 * hash lookup. No entry then (a new flow: the source's point has just created it, or refused it):
 * looks the same key up again, at the same clock, as ct_lookup would for this packet. An ICMP
 * error (its related check is per point), an untracked packet, or no key made by the source's
 * point (`keyed`: it passed the packet before its lookup): ct_lookup itself.
 */
static __always_inline enum ct_result ct_lookup_again(const struct tortie_pkt *pkt, __u8 dir, struct ct_ctx *c)
{
	struct tortie_ct_value *v;

	if (pkt->icmp_err || pkt->untracked || !c->keyed)
		return ct_lookup(pkt, dir, c);
	v = c->entry;
	if (!v) {
		v = bpf_map_lookup_elem(&tortie_ct4_v3, &c->key);
		if (!v || !ct_live(v, c->now) || ct_tcp_reopens(v, pkt))
			return CT_NEW;
		c->entry = v;
	}
	return ct_entry_judge(pkt, dir, v, c->src_is_a, &c->init_dir, c->now);
}

/*
 * After policy allowed the packet: create the entry (new flow, this point's approval set)
 * or add this point's approval to an existing one. A reply-direction packet a point never
 * approved is passed on its own verdict without changing the entry. Returns 0, or
 * DROP_CT_QUOTA / DROP_CT_TABLE_FULL for a new flow that gets no entry (it is refused rather
 * than let through untracked: its replies would have no state to pass on).
 */
static __always_inline int ct_commit(const struct tortie_pkt *pkt, __u8 dir, struct ct_ctx *c,
				     enum ct_result r, __u32 rule)
{
	__u64 now = c->now;

	if (pkt->untracked)
		return 0;
	if (r == CT_NEW) {
		struct tortie_ct_value v = {
			.last_seen_ns = now,
			.created_ns = now,
			.state = ct_initial_state(pkt),
			.flags = ct_point_flag(dir) | (c->src_is_a ? TORTIE_CTF_A_IS_INIT : 0) |
				 (dir == TORTIE_DIR_INGRESS ? TORTIE_CTF_DST_LOCAL : 0),
			.rule = rule,
		};
		/* The endpoint at this point: the sender at its egress, the receiver at its ingress. */
		__be32 owner = dir == TORTIE_DIR_EGRESS ? pkt->saddr : pkt->daddr, old_owner;
		struct tortie_quota_value *created = quota_counter(&tortie_ctq4_v1, owner, TORTIE_QUOTA_CREATED);
		struct tortie_ct_value *old;
		long err;

		/* Below the quota in CREATED alone, RELEASED and MOVED need not be read. */
		if (!created || (created->count >= ct_quota && quota_full(&tortie_ctq4_v1, owner, created, ct_quota)))
			return DROP_CT_QUOTA;
		ct_tcp_init(&v, pkt, c->src_is_a);
		err = bpf_map_update_elem(&tortie_ct4_v3, &c->key, &v, BPF_NOEXIST);
		old = err == -EEXIST ? bpf_map_lookup_elem(&tortie_ct4_v3, &c->key) : NULL;
		if (old) {
			/* An expired or closed entry of the same tuple: replaced, its owner released. */
			old_owner = ct_owner(&c->key, old->flags);
			err = bpf_map_update_elem(&tortie_ct4_v3, &c->key, &v, BPF_EXIST);
			if (err == 0)
				quota_add(&tortie_ctq4_v1, old_owner, TORTIE_QUOTA_MOVED);
		}
		if (err == -E2BIG)
			return DROP_CT_TABLE_FULL;
		if (err == 0)
			__sync_fetch_and_add(&created->count, 1);
		/* else: another CPU created or replaced it meanwhile (and counted it). */
		return 0;
	}
	if (r == CT_UNAPPROVED && c->entry && c->init_dir) {
		__u32 bit = ct_point_flag(dir);

		/* The initiator's egress point approves an entry its responder's ingress point
		 * created: the initiator owns it from now on. */
		if (bit == TORTIE_CTF_SRC_OK && !(c->entry->flags & TORTIE_CTF_SRC_OK)) {
			quota_add(&tortie_ctq4_v1, ct_owner(&c->key, c->entry->flags), TORTIE_QUOTA_MOVED);
			quota_add(&tortie_ctq4_v1, pkt->saddr, TORTIE_QUOTA_CREATED);
		}
		if (pkt->proto == IPPROTO_TCP && !ct_tcp_advance(c->entry, pkt, true, c->src_is_a))
			return DROP_CT_INVALID;
		__sync_fetch_and_or(&c->entry->flags, bit);
		c->entry->last_seen_ns = now;
	}
	return 0;
}


/* ---------------------------------------------------------------- IPv6 (tc programs)
 * The same model over 128-bit keys: tortie_ct6_v1 (struct tortie_ct6_key -> the same value,
 * same states, TCP window, approvals and timeouts) and tortie_ctq6_v1 (per-workload counts, the
 * same quota ct_quota). The agent sizes and sweeps it like tortie_ct4_v3. */
#ifdef TORTIE_CTX_SKB
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_ct6_key);
	__type(value, struct tortie_ct_value);
	__uint(max_entries, 262144);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_ct6_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_quota6_key);
	__type(value, struct tortie_quota_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_ctq6_v1 SEC(".maps");

struct ct6_ctx {
	struct tortie_ct6_key key;
	struct tortie_ct_value *entry;
	__u64 now;
	bool src_is_a;
	bool init_dir;
	bool keyed;
};

static __always_inline const __be32 *ct6_owner(const struct tortie_ct6_key *k, __u64 flags)
{
	bool init_a = flags & TORTIE_CTF_A_IS_INIT;
	bool owner_a = (flags & TORTIE_CTF_SRC_OK) ? init_a : !init_a;

	return owner_a ? k->addr_a : k->addr_b;
}

/* ICMPv6 errors, under ct_icmp_related's rules. */
static __always_inline bool ct6_icmp_related(const struct tortie_pkt *pkt, __u8 dir, __u64 now)
{
	struct tortie_ct_value *v;
	bool quoted_src_is_init, local_is_init;
	const __be32 *quoted_dst = pkt->inner_src_is_a ? pkt->inner6.addr_b : pkt->inner6.addr_a;
	__u32 need;
	__u64 f;

	if (!ip6_eq(pkt->daddr6, pkt->inner_saddr6))
		return false;
	if (dir == TORTIE_DIR_EGRESS && !ip6_eq(pkt->saddr6, quoted_dst))
		return false;
	v = bpf_map_lookup_elem(&tortie_ct6_v1, &pkt->inner6);
	if (!v || !ct_live(v, now))
		return false;
	f = v->flags;
	quoted_src_is_init = pkt->inner_src_is_a == !!(f & TORTIE_CTF_A_IS_INIT);
	local_is_init = dir == TORTIE_DIR_INGRESS ? quoted_src_is_init : !quoted_src_is_init;
	need = ct_need(local_is_init, dir, f);
	return (f & need) == need;
}

static __always_inline __u8 ct6_initial_state(const struct tortie_pkt *pkt)
{
	if (pkt->proto == IP6_NH_ICMP)
		return TORTIE_CT_ICMP;
	return ct_initial_state(pkt);
}

/* ct_lookup for IPv6. */
static __always_inline enum ct_result ct6_lookup(const struct tortie_pkt *pkt, __u8 dir, struct ct6_ctx *c)
{
	struct tortie_ct_value *v;
	__u64 now = ct_now();

	c->now = now;
	ct6_key_make(&c->key, pkt->saddr6, pkt->daddr6, pkt->ct_sport, pkt->ct_dport, pkt->proto, &c->src_is_a);
	ct6_key_mark_echo(&c->key, c->src_is_a, pkt->echo);
	c->keyed = true;
	c->entry = NULL;
	if (pkt->icmp_err && ct6_icmp_related(pkt, dir, now))
		return CT_RELATED;
	if (pkt->untracked)
		return CT_NEW;
	v = bpf_map_lookup_elem(&tortie_ct6_v1, &c->key);
	if (!v || !ct_live(v, now) || ct_tcp_reopens(v, pkt))
		return CT_NEW;
	c->entry = v;
	return ct_entry_judge(pkt, dir, v, c->src_is_a, &c->init_dir, now);
}

/* ct_lookup_again for IPv6. */
static __always_inline enum ct_result ct6_lookup_again(const struct tortie_pkt *pkt, __u8 dir, struct ct6_ctx *c)
{
	struct tortie_ct_value *v;

	if (pkt->icmp_err || pkt->untracked || !c->keyed)
		return ct6_lookup(pkt, dir, c);
	v = c->entry;
	if (!v) {
		v = bpf_map_lookup_elem(&tortie_ct6_v1, &c->key);
		if (!v || !ct_live(v, c->now) || ct_tcp_reopens(v, pkt))
			return CT_NEW;
		c->entry = v;
	}
	return ct_entry_judge(pkt, dir, v, c->src_is_a, &c->init_dir, c->now);
}

/* ct_commit for IPv6: the same quota (ct_quota) per workload address, counted in tortie_ctq6_v1. */
static __always_inline int ct6_commit(const struct tortie_pkt *pkt, __u8 dir, struct ct6_ctx *c,
				      enum ct_result r, __u32 rule)
{
	__u64 now = c->now;

	if (pkt->untracked)
		return 0;
	if (r == CT_NEW) {
		struct tortie_ct_value v = {
			.last_seen_ns = now,
			.created_ns = now,
			.state = ct6_initial_state(pkt),
			.flags = ct_point_flag(dir) | (c->src_is_a ? TORTIE_CTF_A_IS_INIT : 0) |
				 (dir == TORTIE_DIR_INGRESS ? TORTIE_CTF_DST_LOCAL : 0),
			.rule = rule,
		};
		const __be32 *owner = dir == TORTIE_DIR_EGRESS ? pkt->saddr6 : pkt->daddr6;
		struct tortie_quota_value *created = quota6_counter(&tortie_ctq6_v1, owner, TORTIE_QUOTA_CREATED);
		struct tortie_ct_value *old;
		long err;

		if (!created || (created->count >= ct_quota && quota6_full(&tortie_ctq6_v1, owner, created, ct_quota)))
			return DROP_CT_QUOTA;
		ct_tcp_init(&v, pkt, c->src_is_a);
		err = bpf_map_update_elem(&tortie_ct6_v1, &c->key, &v, BPF_NOEXIST);
		old = err == -EEXIST ? bpf_map_lookup_elem(&tortie_ct6_v1, &c->key) : NULL;
		if (old) {
			__be32 old_owner[4];

			__builtin_memcpy(old_owner, ct6_owner(&c->key, old->flags), 16);
			err = bpf_map_update_elem(&tortie_ct6_v1, &c->key, &v, BPF_EXIST);
			if (err == 0)
				quota6_add(&tortie_ctq6_v1, old_owner, TORTIE_QUOTA_MOVED);
		}
		if (err == -E2BIG)
			return DROP_CT_TABLE_FULL;
		if (err == 0)
			__sync_fetch_and_add(&created->count, 1);
		return 0;
	}
	if (r == CT_UNAPPROVED && c->entry && c->init_dir) {
		__u32 bit = ct_point_flag(dir);

		if (bit == TORTIE_CTF_SRC_OK && !(c->entry->flags & TORTIE_CTF_SRC_OK)) {
			quota6_add(&tortie_ctq6_v1, ct6_owner(&c->key, c->entry->flags), TORTIE_QUOTA_MOVED);
			quota6_add(&tortie_ctq6_v1, pkt->saddr6, TORTIE_QUOTA_CREATED);
		}
		if (pkt->proto == IPPROTO_TCP && !ct_tcp_advance(c->entry, pkt, true, c->src_is_a))
			return DROP_CT_INVALID;
		__sync_fetch_and_or(&c->entry->flags, bit);
		c->entry->last_seen_ns = now;
	}
	return 0;
}
#endif

#endif
