/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy lookup: at most five map lookups per packet whatever the number of policies, rules
 * or set members, because the agent precomputes everything (src/dataplane/bpf/encode.ts):
 *
 *   remote address --tortie_cls4_v1 (LPM)--> global class
 *   (table, global class) --tortie_proj_v1--> local class        (absent: 0)
 *   (table, proto, sport) --tortie_spc_v1 (LPM)--> sport class   (only if the table has any)
 *   (table, local class, proto, sport class, port) --tortie_pol_v1 (LPM)--> verdict
 *        on a miss (protocol not in the table), sport class and verdict once more with
 *        proto = TORTIE_PROTO_OTHER
 *
 * Tables are immutable once written: the agent writes a new table under a new id, flips the
 * endpoint's table id (one atomic map update, lib/endpoint.h) and then deletes the old table,
 * so a packet sees a whole table, old or new. An id whose tortie_tbl_v1 entry is missing is a
 * table still being written or already deleted: fail closed (DROP_NO_TABLE).
 */
#ifndef TORTIE_LIB_POLICY_H
#define TORTIE_LIB_POLICY_H

#include "lib/parse.h"

/* tortie_cls4_v1: remote IPv4 prefix -> global class (__u32). Written by the agent from the
 * compiler's class partition; absent = class 0 ("in no set"). Full: agent error. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_cls4_key);
	__type(value, __u32);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_cls4_v1 SEC(".maps");

#ifdef TORTIE_CTX_SKB
/* tortie_cls6_v1: remote IPv6 prefix -> global class (__u32), the same class ids as
 * tortie_cls4_v1 (one partition of both families' addresses), feeding the same tables. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_cls6_key);
	__type(value, __u32);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_cls6_v1 SEC(".maps");
#endif

/* tortie_tbl_v1: table id -> struct tortie_table. Written last when a table is added and
 * deleted first when it is removed; its presence means the table is complete. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct tortie_table);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_tbl_v1 SEC(".maps");

/* tortie_proj_v1: (table, global class) -> local class (__u32); absent = 0. Agent-written. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_proj_key);
	__type(value, __u32);
	__uint(max_entries, 4194304); /* the agent sets it: src/dataplane/bpf/map-sizes.ts */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_proj_v1 SEC(".maps");

/* tortie_spc_v1: (table, proto, sport prefix) -> source-port class (__u32); absent = 0. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_spc_key);
	__type(value, __u32);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_spc_v1 SEC(".maps");

/* tortie_pol_v1: (table, local class, proto, sport class, port prefix) -> verdict.
 * Agent-written; cells of one table are disjoint. Full: agent error, the flip is not done. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_pol_key);
	__type(value, struct tortie_verdict);
	__uint(max_entries, 2097152); /* the agent sets it: src/dataplane/bpf/map-sizes.ts */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_pol_v1 SEC(".maps");

static __always_inline __u16 policy_sport_class(const struct tortie_table *t, __u32 table, __u16 proto,
					       __u16 sport)
{
	struct tortie_spc_key sk = {
		.prefixlen = TORTIE_SPC_FIXED_BITS + 16,
		.table = table,
		.proto = proto,
		.port = bpf_htons(sport),
	};
	__u32 *val;

	if (!(t->flags & TORTIE_TBL_F_SPORT))
		return 0;
	val = bpf_map_lookup_elem(&tortie_spc_v1, &sk);
	return val ? (__u16)*val : 0;
}

/* policy_decide: no policy of a TORTIE_TBL_F_PASS table decided (never for workload tables). */
#define POLICY_NEXT 1

/* Fills *out; returns 0 when the verdict is allow, DROP_POLICY_DENY or DROP_NO_TABLE (or
 * POLICY_NEXT, TORTIE_TBL_F_PASS tables only). */
static __always_inline int policy_decide_gclass(__u32 table, __u32 *gclass, const struct tortie_pkt *pkt,
						struct tortie_verdict *out)
{
	struct tortie_table *t;
	struct tortie_verdict *v;
	struct tortie_proj_key pk = { .table = table };
	struct tortie_pol_key k = {
		.prefixlen = TORTIE_POL_FIXED_BITS + 16,
		.table = table,
		.proto = pkt->proto,
		.port = bpf_htons(pkt->dport),
	};
	__u32 *val;

	__builtin_memset(out, 0, sizeof(*out));
	out->action = TORTIE_ACT_DENY;
	t = table ? bpf_map_lookup_elem(&tortie_tbl_v1, &table) : NULL;
	if (!t)
		return DROP_NO_TABLE;
	out->rule = 0;

	pk.gclass = gclass ? *gclass : 0;
	val = bpf_map_lookup_elem(&tortie_proj_v1, &pk);
	k.lclass = val ? *val : 0;
	k.sclass = policy_sport_class(t, table, pkt->proto, pkt->sport);
	v = bpf_map_lookup_elem(&tortie_pol_v1, &k);
	if (!v) {
		/* A protocol the table doesn't list: its cells are under TORTIE_PROTO_OTHER (the
		 * compiler's cells of a listed protocol cover every port, so a miss means unlisted). */
		k.proto = TORTIE_PROTO_OTHER;
		k.sclass = policy_sport_class(t, table, TORTIE_PROTO_OTHER, pkt->sport);
		v = bpf_map_lookup_elem(&tortie_pol_v1, &k);
	}
	if (!v)
		return DROP_POLICY_DENY;
	__builtin_memcpy(out, v, sizeof(*out));
	if (out->action == TORTIE_ACT_ALLOW)
		return 0;
	/* Host endpoint stages that go on when none of their policies decided. */
	if ((t->flags & TORTIE_TBL_F_PASS) && out->rule == t->miss_rule)
		return POLICY_NEXT;
	return DROP_POLICY_DENY;
}

static __always_inline int policy_decide(__u32 table, __be32 remote, const struct tortie_pkt *pkt,
					 struct tortie_verdict *out)
{
	struct tortie_cls4_key ck = { .prefixlen = 32, .addr = remote };

	return policy_decide_gclass(table, bpf_map_lookup_elem(&tortie_cls4_v1, &ck), pkt, out);
}

#ifdef TORTIE_CTX_SKB
/* The same decision for an IPv6 remote address (class from tortie_cls6_v1). */
static __always_inline int policy_decide6(__u32 table, const __be32 *remote, const struct tortie_pkt *pkt,
					  struct tortie_verdict *out)
{
	struct tortie_cls6_key ck = { .prefixlen = 128 };

	__builtin_memcpy(ck.addr, remote, 16);
	return policy_decide_gclass(table, bpf_map_lookup_elem(&tortie_cls6_v1, &ck), pkt, out);
}
#endif

#endif
