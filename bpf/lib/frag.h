/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPv4 fragments. Later fragments carry no L4 header, so policy and conntrack cannot place
 * them by themselves. The receiver reassembles the datagram before any socket sees it, so the
 * datagram gets one verdict at each policy point, its first fragment's (as Linux, which
 * defragments before conntrack): when a first fragment passes a point, the point records
 * (src, dst, IP id, protocol, direction); a later fragment passes that point only if that
 * record exists, and never creates or matches conntrack state (a later fragment of an
 * ICMP error would otherwise look like an ICMP echo flow with id 0). A later fragment whose
 * first fragment was not passed (or not seen) here is dropped. The direction in the key keeps
 * the sender's point (egress) from vouching for the receiver's (ingress).
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

static __always_inline void frag_key(struct tortie_frag4_key *k, const struct tortie_pkt *pkt, __u8 dir)
{
	k->saddr = pkt->saddr;
	k->daddr = pkt->daddr;
	k->id = pkt->ip_id;
	k->proto = pkt->proto;
	k->dir = dir;
}

static __always_inline void frag_record(const struct tortie_pkt *pkt, __u8 dir)
{
	struct tortie_frag4_key k;
	struct tortie_frag_value v = {
		.sport = bpf_htons(pkt->sport), .dport = bpf_htons(pkt->dport),
		.ct_sport = bpf_htons(pkt->ct_sport), .ct_dport = bpf_htons(pkt->ct_dport) };

	frag_key(&k, pkt, dir);
	bpf_map_update_elem(&tortie_frag4_v1, &k, &v, BPF_ANY);
}

/* A later fragment: TORTIE_FORWARD if its first fragment passed this point, else DROP_FRAG_UNKNOWN. */
static __always_inline int frag_follow(const struct tortie_pkt *pkt, __u8 dir)
{
	struct tortie_frag4_key k;

	frag_key(&k, pkt, dir);
	return bpf_map_lookup_elem(&tortie_frag4_v1, &k) ? TORTIE_FORWARD : DROP_FRAG_UNKNOWN;
}

#endif
