/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPv4 fragments: the one tracker of first fragments, for every point that must treat a later
 * fragment like its first (shared/maps.h enum tortie_frag_point). Later fragments carry no L4
 * header, so neither policy, conntrack nor NAT can place them by themselves.
 *
 * Policy points (cali* programs, point = the policy direction): the receiver reassembles the
 * datagram before any socket sees it, so the datagram gets one verdict at each policy point, its
 * first fragment's (as Linux, which defragments before conntrack): when a first fragment passes
 * a point, the point records (src, dst, IP id, protocol, point); a later fragment passes that
 * point only if that record exists (frag_follow), and never creates or matches conntrack state
 * (a later fragment of an ICMP error would otherwise look like an ICMP echo flow with id 0). A
 * later fragment whose first fragment was not passed (or not seen) here is dropped. The point in
 * the key keeps the sender's point (egress) from vouching for the receiver's (ingress), and a NAT
 * record from vouching for either.
 *
 * NAT points (uplink, lib/nat.h): a translated first fragment records the address it was given
 * (nat_addr), under its tuple as seen before translation; its later fragments get that address
 * (frag_lookup, then lib/nat.h nat_frag_later). A later fragment that overtakes its first
 * fragment, or whose record was forgotten, leaves untranslated (the receiver cannot reassemble
 * the datagram; the sender's retry starts a new one).
 */
#ifndef TORTIE_LIB_FRAG_H
#define TORTIE_LIB_FRAG_H

#include "lib/parse.h"

/*
 * tortie_frag4_v2: struct tortie_frag4_key -> struct tortie_frag_value. Written and read by the
 * cali* programs (policy points) and the uplink program (NAT points); the agent does not touch
 * it. LRU: a full map forgets the oldest datagrams (their remaining fragments are dropped or
 * leave untranslated; the sender retransmits). 16384 = the 8192 each of the two maps this one
 * replaced had (v1, policy points only, and tortie_natfrag4_v1).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tortie_frag4_key);
	__type(value, struct tortie_frag_value);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_frag4_v2 SEC(".maps");

static __always_inline void frag_key(struct tortie_frag4_key *k, const struct tortie_pkt *pkt, __u8 point)
{
	k->saddr = pkt->saddr;
	k->daddr = pkt->daddr;
	k->id = pkt->ip_id;
	k->proto = pkt->proto;
	k->point = point;
}

/*
 * A first fragment handled at `point`: remember it for the later ones. nat_addr: the address a
 * NAT point wrote (0 at policy points). Callers at NAT points call it for every translated
 * packet: only first fragments are recorded.
 */
static __always_inline void frag_record(const struct tortie_pkt *pkt, __u8 point, __be32 nat_addr)
{
	struct tortie_frag4_key k;
	struct tortie_frag_value v = {
		.sport = bpf_htons(pkt->sport), .dport = bpf_htons(pkt->dport),
		.ct_sport = bpf_htons(pkt->ct_sport), .ct_dport = bpf_htons(pkt->ct_dport),
		.nat_addr = nat_addr };

	if (pkt->frag != TORTIE_FRAG_FIRST)
		return;
	frag_key(&k, pkt, point);
	bpf_map_update_elem(&tortie_frag4_v2, &k, &v, BPF_ANY);
}

/* A later fragment: its first fragment's record at `point`, or NULL. */
static __always_inline struct tortie_frag_value *frag_lookup(const struct tortie_pkt *pkt, __u8 point)
{
	struct tortie_frag4_key k;

	frag_key(&k, pkt, point);
	return bpf_map_lookup_elem(&tortie_frag4_v2, &k);
}

/* A later fragment at a policy point: TORTIE_FORWARD if its first fragment passed it, else DROP_FRAG_UNKNOWN. */
static __always_inline int frag_follow(const struct tortie_pkt *pkt, __u8 point)
{
	return frag_lookup(pkt, point) ? TORTIE_FORWARD : DROP_FRAG_UNKNOWN;
}

#ifdef TORTIE_CTX_SKB
/* IPv6 fragments at the policy points, the same rules (tortie_frag6_v1, LRU, 16384): the key
 * carries the fragment header's 32-bit id. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tortie_frag6_key);
	__type(value, struct tortie_frag_value);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_frag6_v1 SEC(".maps");

static __always_inline void frag6_key(struct tortie_frag6_key *k, const struct tortie_pkt *pkt, __u8 point)
{
	__builtin_memcpy(k->saddr, pkt->saddr6, 16);
	__builtin_memcpy(k->daddr, pkt->daddr6, 16);
	k->id = pkt->frag_id6;
	k->proto = pkt->frag_nh6; /* every fragment's: not the upper layer behind later headers */
	k->point = point;
	k->pad[0] = k->pad[1] = 0;
}

static __always_inline void frag6_record(const struct tortie_pkt *pkt, __u8 point)
{
	struct tortie_frag6_key k;
	struct tortie_frag_value v = {
		.sport = bpf_htons(pkt->sport), .dport = bpf_htons(pkt->dport),
		.ct_sport = bpf_htons(pkt->ct_sport), .ct_dport = bpf_htons(pkt->ct_dport) };

	if (pkt->frag != TORTIE_FRAG_FIRST)
		return;
	frag6_key(&k, pkt, point);
	bpf_map_update_elem(&tortie_frag6_v1, &k, &v, BPF_ANY);
}

static __always_inline int frag6_follow(const struct tortie_pkt *pkt, __u8 point)
{
	struct tortie_frag6_key k;

	frag6_key(&k, pkt, point);
	return bpf_map_lookup_elem(&tortie_frag6_v1, &k) ? TORTIE_FORWARD : DROP_FRAG_UNKNOWN;
}
#endif

#endif
