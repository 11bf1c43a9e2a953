/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checksums: the one place tortie's BPF code computes or updates an Internet checksum.
 *
 *  csum_fold32       folds a 32-bit ones'-complement sum (bpf_csum_diff's) into a checksum;
 *  csum_ipv4_hdr     full sum of a 20-byte IPv4 header built from scratch (IPIP's outer), inline;
 *  csum_update32     a checksum *value* after one 32-bit word changed (RFC 1624), for checksums
 *                    that are data, not a header field the helpers know (an ICMP error's quoted
 *                    IPv4 header);
 *  csum_l3_set16/32  store a 2/4-byte field of the IPv4 header at l3off and update its header
 *                    checksum incrementally;
 *  csum_l4_pseudo32  fold a changed pseudo-header address into a TCP/UDP checksum (the address
 *                    itself is stored with csum_l3_set32);
 *  csum_l4_set16/32  store a 2/4-byte field covered by an L4 checksum at csum_off (TCP/UDP port,
 *                    ICMP echo id, anything inside an ICMP message) and update that checksum.
 *
 * The incremental updates go through bpf_l3/l4_csum_replace, which also handle CHECKSUM_PARTIAL
 * and CHECKSUM_COMPLETE skbs. Values are in network (raw memory) order throughout: ones'-
 * complement sums commute with the byte swap. Flags: BPF_F_MARK_MANGLED_0 for UDP (a zero
 * checksum means "none" and stays zero). Every function returns 0 or < 0 (a kernel helper
 * failed); the caller turns that into the DROP_* reason of its site (shared/drop.h).
 */
#ifndef TORTIE_LIB_CSUM_H
#define TORTIE_LIB_CSUM_H

#include <linux/ip.h>
#include "lib/ctx.h"

static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The header checksum of an option-less IPv4 header whose `check` is 0: ten 16-bit words summed
 * inline (cheaper than a bpf_csum_diff call for a header built on the stack). */
static __always_inline __u16 csum_ipv4_hdr(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	return csum_fold32(sum);
}

/* `check` (as read from the packet) after a 32-bit word of the data it covers went from -> to. */
static __always_inline __u16 csum_update32(__u16 check, __be32 from, __be32 to)
{
	return csum_fold32(bpf_csum_diff(&from, 4, &to, 4, (__u16)~check));
}

static __always_inline int csum_l3_set32(struct __sk_buff *skb, __u32 l3off, __u32 field, __be32 from, __be32 to)
{
	if (bpf_l3_csum_replace(skb, l3off + offsetof(struct iphdr, check), from, to, 4) < 0 ||
	    bpf_skb_store_bytes(skb, l3off + field, &to, 4, 0) < 0)
		return -1;
	return 0;
}

static __always_inline int csum_l3_set16(struct __sk_buff *skb, __u32 l3off, __u32 field, __be16 from, __be16 to)
{
	if (bpf_l3_csum_replace(skb, l3off + offsetof(struct iphdr, check), from, to, 2) < 0 ||
	    bpf_skb_store_bytes(skb, l3off + field, &to, 2, 0) < 0)
		return -1;
	return 0;
}

static __always_inline int csum_l4_pseudo32(struct __sk_buff *skb, __u32 csum_off, __be32 from, __be32 to, __u64 flags)
{
	return bpf_l4_csum_replace(skb, csum_off, from, to, BPF_F_PSEUDO_HDR | flags | 4) < 0 ? -1 : 0;
}

static __always_inline int csum_l4_set32(struct __sk_buff *skb, __u32 csum_off, __u32 at, __be32 from, __be32 to,
					 __u64 flags)
{
	if (bpf_l4_csum_replace(skb, csum_off, from, to, flags | 4) < 0 ||
	    bpf_skb_store_bytes(skb, at, &to, 4, 0) < 0)
		return -1;
	return 0;
}

static __always_inline int csum_l4_set16(struct __sk_buff *skb, __u32 csum_off, __u32 at, __be16 from, __be16 to,
					 __u64 flags)
{
	if (bpf_l4_csum_replace(skb, csum_off, from, to, flags | 2) < 0 ||
	    bpf_skb_store_bytes(skb, at, &to, 2, 0) < 0)
		return -1;
	return 0;
}

#endif
