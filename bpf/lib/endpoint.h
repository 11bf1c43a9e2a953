/* SPDX-License-Identifier: Apache-2.0 */
/* Local workload endpoints, keyed by the ifindex of their host-side cali* veth. */
#ifndef TORTIE_LIB_ENDPOINT_H
#define TORTIE_LIB_ENDPOINT_H

#include "lib/ctx.h"

/*
 * tortie_ep_v1: __u32 ifindex -> struct tortie_endpoint.
 * Written by the agent (endpoint manager, applyEndpointPolicy); read by both cali* programs.
 * No entry for an interface a program runs on = fail closed (DROP_UNKNOWN_IFACE).
 * BPF_F_NO_PREALLOC on purpose: an update replaces the element and frees the old one after
 * an RCU grace period, so a packet that looked up the old value reads it whole; with a
 * preallocated hash the old element could be recycled under the reader. This is what makes
 * the per-endpoint table flip atomic. Full map: the agent cannot add endpoints (error there).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct tortie_endpoint);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_ep_v1 SEC(".maps");

/*
 * tortie_epcnt_v1: slot * 2 + dir -> per-CPU struct tortie_cnt_value: the packets an endpoint's
 * points forward (reason 0), at an index the agent gives the endpoint (tortie_endpoint.slot), so
 * the per-packet count is an array slot instead of a tortie_cnt_v1 hash lookup. Drops still go
 * to tortie_cnt_v1. The agent zeroes a slot before giving it out, reads it as the endpoint's
 * (ifindex, dir, 0) counter, and when the endpoint goes adds what it counted to that
 * tortie_cnt_v1 key (src/dataplane/bpf/counters.ts), so readers see one counter either way.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct tortie_cnt_value);
	__uint(max_entries, TORTIE_EPCNT_SLOTS * 2);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_epcnt_v1 SEC(".maps");

/*
 * tortie_epip_v1 (LPM): (ifindex, family, address prefix) -> __u32 (reserved, 0).
 * The addresses an endpoint may send from (anti-spoofing). Written by the agent with the
 * endpoint; read by the from-workload program. Full map: agent error, endpoint not added.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_ep_addr_key);
	__type(value, __u32);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_epip_v1 SEC(".maps");

/*
 * tortie_epdst_v1: struct tortie_ep_dst_key (a host address) -> struct tortie_ep_dst.
 * The local workload an address belongs to, for BPF host routing (lib/host_route.h): its cali*,
 * endpoint id and MACs, so that same-node delivery needs no fib lookup. Written by the agent
 * (applyEndpointPolicy) after the endpoint's tortie_ep_v1 entry, only for workloads whose MAC is
 * known; removed before that entry. A reader trusts an entry only while tortie_ep_v1 still has
 * an entry for its ifindex with the same endpoint id (ep_dst_live): anything else, or no entry,
 * leaves the packet to the fib. BPF_F_NO_PREALLOC: readers see an old or new value whole.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_ep_dst_key);
	__type(value, struct tortie_ep_dst);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_epdst_v1 SEC(".maps");

/* The local workload at an IPv4 / IPv6 address, if the agent named one (see above). */
static __always_inline const struct tortie_ep_dst *ep_dst4(__be32 addr)
{
	struct tortie_ep_dst_key k = { .family = TORTIE_AF_INET };

	__builtin_memcpy(k.addr, &addr, 4);
	return bpf_map_lookup_elem(&tortie_epdst_v1, &k);
}

static __always_inline const struct tortie_ep_dst *ep_dst6(const void *addr)
{
	struct tortie_ep_dst_key k = { .family = TORTIE_AF_INET6 };

	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(&tortie_epdst_v1, &k);
}

/* The endpoint entry behind an address entry, only while they agree (the same endpoint id on
 * the same interface): an entry left behind by an endpoint deleted, moved or re-added meanwhile
 * is never followed. NULL: use the fib. */
static __always_inline const struct tortie_endpoint *ep_dst_live(const struct tortie_ep_dst *d)
{
	__u32 ifindex = d->ifindex;
	const struct tortie_endpoint *ep = bpf_map_lookup_elem(&tortie_ep_v1, &ifindex);

	return ep && ep->id == d->ep_id ? ep : NULL;
}

/* Copies the endpoint (one consistent snapshot for the whole packet); false if unknown. */
static __always_inline bool ep_lookup(__u32 ifindex, struct tortie_endpoint *out)
{
	struct tortie_endpoint *ep = bpf_map_lookup_elem(&tortie_ep_v1, &ifindex);

	if (!ep)
		return false;
	__builtin_memcpy(out, ep, sizeof(*out));
	return true;
}

static __always_inline bool ep_addr4_ok(__u32 ifindex, __be32 saddr)
{
	struct tortie_ep_addr_key k = {
		.prefixlen = TORTIE_EPADDR_FIXED_BITS + 32, .ifindex = ifindex, .family = TORTIE_AF_INET };

	__builtin_memcpy(k.addr, &saddr, 4);
	return bpf_map_lookup_elem(&tortie_epip_v1, &k) != NULL;
}

/* Anti-spoofing for IPv6 sources (the same map, family TORTIE_AF_INET6). */
static __always_inline bool ep_addr6_ok(__u32 ifindex, const __be32 *saddr)
{
	struct tortie_ep_addr_key k = {
		.prefixlen = TORTIE_EPADDR_FIXED_BITS + 128, .ifindex = ifindex, .family = TORTIE_AF_INET6 };

	__builtin_memcpy(k.addr, saddr, 16);
	return bpf_map_lookup_elem(&tortie_epip_v1, &k) != NULL;
}

/* Does the endpoint have any IPv6 address? (An LPM lookup for the whole family.) */
static __always_inline bool ep_has_v6(__u32 ifindex, const __be32 *any)
{
	return ep_addr6_ok(ifindex, any);
}

#endif
