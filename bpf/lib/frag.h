/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPv4 fragments. Later fragments carry no ports, so policy and conntrack cannot place them
 * by themselves: when a first fragment is allowed, its ports are remembered here, keyed by
 * (src, dst, IP id, protocol); a later fragment takes them from here and then goes through
 * the normal conntrack path (which finds the flow the first fragment created). A later
 * fragment whose first fragment was not allowed (or not seen) is dropped.
 */
#ifndef TORTIE_LIB_FRAG_H
#define TORTIE_LIB_FRAG_H

#include "lib/parse.h"

/*
 * tortie_frag4_v1: struct tortie_frag4_key -> struct tortie_frag_value.
 * Written and read by the cali* programs only. LRU: a full map forgets the oldest datagrams
 * (their remaining fragments are dropped, the sender retransmits).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tortie_frag4_key);
	__type(value, struct tortie_frag_value);
	__uint(max_entries, 8192);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_frag4_v1 SEC(".maps");

static __always_inline void frag_key(struct tortie_frag4_key *k, const struct tortie_pkt *pkt)
{
	k->saddr = pkt->saddr;
	k->daddr = pkt->daddr;
	k->id = pkt->ip_id;
	k->proto = pkt->proto;
	k->pad = 0;
}

static __always_inline void frag_record(const struct tortie_pkt *pkt)
{
	struct tortie_frag4_key k;
	struct tortie_frag_value v = {
		.sport = bpf_htons(pkt->sport), .dport = bpf_htons(pkt->dport),
		.ct_sport = bpf_htons(pkt->ct_sport), .ct_dport = bpf_htons(pkt->ct_dport) };

	frag_key(&k, pkt);
	bpf_map_update_elem(&tortie_frag4_v1, &k, &v, BPF_ANY);
}

/* Fills the conntrack ports of a later fragment; DROP_FRAG_UNKNOWN if its first was not allowed. */
static __always_inline int frag_resolve(struct tortie_pkt *pkt)
{
	struct tortie_frag4_key k;
	struct tortie_frag_value *v;

	frag_key(&k, pkt);
	v = bpf_map_lookup_elem(&tortie_frag4_v1, &k);
	if (!v)
		return DROP_FRAG_UNKNOWN;
	pkt->sport = bpf_ntohs(v->sport);
	pkt->dport = bpf_ntohs(v->dport);
	pkt->ct_sport = bpf_ntohs(v->ct_sport);
	pkt->ct_dport = bpf_ntohs(v->ct_dport);
	return 0;
}

#endif
