/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stateless prefilter for the uplink XDP program: deny-listed CIDRs and doNotTrack deny rules
 * (compiled to CIDRs by the agent), matched on source or destination address, before an skb
 * exists. Two LPM lookups per IPv4 packet.
 */
#ifndef TORTIE_LIB_PREFILTER_H
#define TORTIE_LIB_PREFILTER_H

#include "lib/parse.h"

/* tortie_pf4_v1: (side, IPv4 prefix) -> struct tortie_pf_value. Agent-written (prefilter
 * manager); read by the XDP program. Full: agent error, the entry is not added. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tortie_pf4_key);
	__type(value, struct tortie_pf_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_pf4_v1 SEC(".maps");

static __always_inline int prefilter_one(__u8 side, __be32 addr, __u32 *rule)
{
	struct tortie_pf4_key k = { .prefixlen = TORTIE_PF_FIXED_BITS + 32, .side = side, .addr = addr };
	struct tortie_pf_value *v = bpf_map_lookup_elem(&tortie_pf4_v1, &k);

	if (!v)
		return 0;
	*rule = v->rule;
	return v->kind == TORTIE_PF_KIND_DNT ? DROP_DNT_DENY : DROP_PREFILTER;
}

/* 0 to pass, or DROP_PREFILTER / DROP_DNT_DENY with *rule set. */
static __always_inline int prefilter_check(const struct tortie_pkt *pkt, __u32 *rule)
{
	int r = prefilter_one(TORTIE_PF_SRC, pkt->saddr, rule);

	if (r)
		return r;
	return prefilter_one(TORTIE_PF_DST, pkt->daddr, rule);
}

#endif
