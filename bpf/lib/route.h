/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Routing state the datapath consults (Calico networking): remote workload routes,
 * IP pools, known nodes, this node's parameters, and the networking counters. All maps are
 * written only by the agent's route manager (src/dataplane/routes.ts) and read here; layouts in
 * shared/maps.h. Lookups are O(1) (hash, array) or one LPM walk each.
 */
#ifndef TORTIE_LIB_ROUTE_H
#define TORTIE_LIB_ROUTE_H

#include "lib/ctx.h"

/*
 * tortie_rt4_v1 (LPM): remote workload CIDR -> {node address, flags}. One entry per remote
 * workload /32 (or block). Read by the encap paths. Full map: the agent logs an error and
 * the kernel route it also writes still carries the traffic (without the fast path).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_rt4_key);
	__type(value, struct tortie_route);
	__uint(max_entries, 262144); /* the agent sets it: src/dataplane/bpf/map-sizes.ts */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_rt4_v1 SEC(".maps");

/*
 * tortie_pool4_v1 (LPM): pool CIDR -> {flags}. Decides SNAT (source in a natOutgoing pool,
 * destination in no pool). Full map: agent error.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_rt4_key);
	__type(value, struct tortie_pool);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_pool4_v1 SEC(".maps");

/*
 * tortie_node4_v1: __be32 node address -> {flags}. IPIP is decapsulated only when its outer
 * source is here; no SNAT towards these addresses. Full map: agent error.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, struct tortie_node_info);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_node4_v1 SEC(".maps");

/* tortie_netcfg_v1: index 0 -> this node's parameters (written once the node address is known). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct tortie_netcfg);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_netcfg_v1 SEC(".maps");

/* tortie_netstat_v1: per-CPU packet counts per enum tortie_netstat; read by the agent and tests. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, TORTIE_NS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_netstat_v1 SEC(".maps");

static __always_inline void netstat_inc(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&tortie_netstat_v1, &idx);

	if (c)
		*c += 1;
}

/* This node's parameters, or NULL while the agent has not configured networking. */
static __always_inline const struct tortie_netcfg *netcfg_get(void)
{
	__u32 zero = 0;
	const struct tortie_netcfg *c = bpf_map_lookup_elem(&tortie_netcfg_v1, &zero);

	return c && c->node_ip ? c : NULL;
}

static __always_inline const struct tortie_route *rt_lookup(__be32 addr)
{
	struct tortie_rt4_key k = { .prefixlen = 32, .addr = addr };

	return bpf_map_lookup_elem(&tortie_rt4_v1, &k);
}

static __always_inline const struct tortie_pool *pool_lookup(__be32 addr)
{
	struct tortie_rt4_key k = { .prefixlen = 32, .addr = addr };

	return bpf_map_lookup_elem(&tortie_pool4_v1, &k);
}

static __always_inline bool node_known(__be32 addr)
{
	return bpf_map_lookup_elem(&tortie_node4_v1, &addr) != NULL;
}

#endif
