/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-workload quotas of state entries (NAT mappings, conntrack entries): counters per workload
 * address in a hash map of struct tortie_quota4_key -> struct tortie_quota_value (shared/maps.h
 * explains the CREATED / RELEASED / MOVED kinds and who writes each). The counter entries are
 * created at 0 on a workload's first entry and never deleted (one set per workload address the
 * node ever served: bounded by its pools' blocks).
 */
#ifndef TORTIE_LIB_QUOTA_H
#define TORTIE_LIB_QUOTA_H

#include "lib/ctx.h"
#include "shared/maps.h"

static __always_inline struct tortie_quota_value *quota_counter(void *map, __be32 addr, __u32 kind)
{
	struct tortie_quota4_key k = { .addr = addr, .kind = kind };
	struct tortie_quota_value zero = {}, *c;

	c = bpf_map_lookup_elem(map, &k);
	if (c)
		return c;
	bpf_map_update_elem(map, &k, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, &k);
}

static __always_inline __u64 quota_read(void *map, __be32 addr, __u32 kind)
{
	struct tortie_quota4_key k = { .addr = addr, .kind = kind };
	struct tortie_quota_value *c = bpf_map_lookup_elem(map, &k);

	return c ? c->count : 0;
}

/* Does the workload hold `quota` entries already? (0 = no quota.) `created` is its CREATED.
 * MOVED is read first: under connection churn (closes released at once) CREATED - MOVED alone is
 * under the quota, and RELEASED, which can only lower the count further, is not looked up. */
static __always_inline bool quota_full(void *map, __be32 addr, const struct tortie_quota_value *created, __u32 quota)
{
	__u64 c = created->count, gone;

	if (!quota)
		return false;
	gone = quota_read(map, addr, TORTIE_QUOTA_MOVED);
	if (c <= gone || c - gone < quota)
		return false;
	gone += quota_read(map, addr, TORTIE_QUOTA_RELEASED);
	return c > gone && c - gone >= quota;
}

static __always_inline void quota_add(void *map, __be32 addr, __u32 kind)
{
	struct tortie_quota_value *c = quota_counter(map, addr, kind);

	if (c)
		__sync_fetch_and_add(&c->count, 1);
}

/* The same for IPv6 workload addresses (struct tortie_quota6_key maps). */
static __always_inline struct tortie_quota_value *quota6_counter(void *map, const __be32 *addr, __u32 kind)
{
	struct tortie_quota6_key k = { .kind = kind };
	struct tortie_quota_value zero = {}, *c;

	__builtin_memcpy(k.addr, addr, 16);
	c = bpf_map_lookup_elem(map, &k);
	if (c)
		return c;
	bpf_map_update_elem(map, &k, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, &k);
}

static __always_inline __u64 quota6_read(void *map, const __be32 *addr, __u32 kind)
{
	struct tortie_quota6_key k = { .kind = kind };
	struct tortie_quota_value *c;

	__builtin_memcpy(k.addr, addr, 16);
	c = bpf_map_lookup_elem(map, &k);
	return c ? c->count : 0;
}

static __always_inline bool quota6_full(void *map, const __be32 *addr, const struct tortie_quota_value *created, __u32 quota)
{
	__u64 c = created->count, gone;

	if (!quota)
		return false;
	gone = quota6_read(map, addr, TORTIE_QUOTA_MOVED); /* first, as quota_full */
	if (c <= gone || c - gone < quota)
		return false;
	gone += quota6_read(map, addr, TORTIE_QUOTA_RELEASED);
	return c > gone && c - gone >= quota;
}

static __always_inline void quota6_add(void *map, const __be32 *addr, __u32 kind)
{
	struct tortie_quota_value *c = quota6_counter(map, addr, kind);

	if (c)
		__sync_fetch_and_add(&c->count, 1);
}

#endif
