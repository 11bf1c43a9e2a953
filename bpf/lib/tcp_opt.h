/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCP options read from a segment (tc programs only): the timestamp option (NAT's TIME-WAIT
 * reuse, lib/nat.h) and the window scale option of a SYN (conntrack's window, lib/ct_tcp.h).
 */
#ifndef TORTIE_LIB_TCP_OPT_H
#define TORTIE_LIB_TCP_OPT_H

#include "lib/ctx.h"

/* The answer of tcp_opt_ts and tcp_opt_wscale: the option's value, with this bit set when the segment carried it. */
#define TCP_OPT_SEEN (1ULL << 32)

#define TCP_OPT_TSVAL 0  /* timestamp option (kind 8): TSval */
#define TCP_OPT_TSECR 1  /* timestamp option: TSecr */
#define TCP_OPT_WSCALE 2 /* window scale option (kind 3): the shift count */

/*
 * One option (`which`, TCP_OPT_*) of the TCP segment at l4off, with TCP_OPT_SEEN set; 0 if it
 * has none. Walks at most 12 options; read only for SYNs and for the segment that releases a NAT
 * mapping. Called through the global functions below (verified once, not at every call site),
 * one per option kind: a constant `which` keeps each one's stack frame at its minimum (the
 * uplink's deepest call chain has no byte to spare).
 */
static __always_inline __u64 tcp_opt_walk_copy(struct __sk_buff *skb, __u32 l4off, __u32 which)
{
	__u8 b[4]; /* one small buffer: the callers' chains (nat6_snat) are near the stack limit */
	__u32 off, end, i;

	if (bpf_skb_load_bytes(skb, l4off + 12, b, 1) < 0)
		return 0;
	end = l4off + (b[0] >> 4) * 4;
	off = l4off + 20;
	for (i = 0; i < 12; i++) {
		if (off >= end || bpf_skb_load_bytes(skb, off, b, 1) < 0 || b[0] == 0)
			return 0;
		if (b[0] == 1) {
			off++;
			continue;
		}
		if (off + 2 > end || bpf_skb_load_bytes(skb, off, b, 2) < 0 || b[1] < 2)
			return 0;
		if (which == TCP_OPT_WSCALE && b[0] == 3 && b[1] == 3 && off + 3 <= end) {
			if (bpf_skb_load_bytes(skb, off + 2, b, 1) < 0)
				return 0;
			return TCP_OPT_SEEN | b[0];
		}
		if (which != TCP_OPT_WSCALE && b[0] == 8 && b[1] == 10 && off + 10 <= end) {
			if (bpf_skb_load_bytes(skb, off + (which == TCP_OPT_TSECR ? 6 : 2), b, 4) < 0)
				return 0;
			return TCP_OPT_SEEN | ((__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3]);
		}
		off += b[1];
	}
	return 0;
}

/* tcp_opt_common's answer when the segment's options are not laid out as it knows. */
#define TCP_OPT_UNSURE (1ULL << 33)
/* Beyond this many bytes into the linear data the header is left to tcp_opt_walk_copy. */
#define TCP_OPT_DIRECT_MAX 1024

/*
 * The option read in place, without a walk, when the segment's options begin as the ones Linux
 * sends: [MSS] then SACK permitted or two NOPs, the timestamp option, and (a SYN's) NOP and
 * window scale; TCP_OPT_UNSURE for any other layout or when the header is not in the linear data.
 * Where it answers, tcp_opt_walk_copy over the same bytes gives the same answer (it would step
 * over the same options, each within the header's length, to the same one).
 */
static __always_inline __u64 tcp_opt_common(struct __sk_buff *skb, __u32 l4off, __u32 which)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	__u8 *h, *q;
	__u32 end, s = 20;

	if (l4off > TCP_OPT_DIRECT_MAX)
		return TCP_OPT_UNSURE;
	h = data + l4off;
	if ((void *)(h + 32) > data_end)
		return TCP_OPT_UNSURE;
	end = (h[12] >> 4) * 4;
	if (h[20] == 2 && h[21] == 4) /* MSS */
		s = 24;
	q = h + s; /* s <= 24: within the 32 bytes checked */
	if (!((q[0] == 4 && q[1] == 2) || (q[0] == 1 && q[1] == 1)) || q[2] != 8 || q[3] != 10)
		return TCP_OPT_UNSURE;
	s += 2; /* the timestamp option */
	if (which == TCP_OPT_WSCALE) {
		q = h + s;
		if (s + 14 > end || (void *)(q + 14) > data_end || q[10] != 1 || q[11] != 3 || q[12] != 3)
			return TCP_OPT_UNSURE;
		return TCP_OPT_SEEN | q[13];
	}
	q = h + s;
	if (s + 10 > end || (void *)(q + 10) > data_end)
		return TCP_OPT_UNSURE;
	q += which == TCP_OPT_TSECR ? 6 : 2;
	return TCP_OPT_SEEN | ((__u32)q[0] << 24 | (__u32)q[1] << 16 | (__u32)q[2] << 8 | q[3]);
}

static __always_inline __u64 tcp_opt_walk(struct __sk_buff *skb, __u32 l4off, __u32 which)
{
	__u64 o = tcp_opt_common(skb, l4off, which);

	return o != TCP_OPT_UNSURE ? o : tcp_opt_walk_copy(skb, l4off, which);
}

/* The timestamp option: TSval (ecr 0) or TSecr (ecr 1). */
__noinline __u64 tcp_opt_ts(struct __sk_buff *skb, __u32 l4off, __u32 ecr)
{
	return tcp_opt_walk(skb, l4off, ecr ? TCP_OPT_TSECR : TCP_OPT_TSVAL);
}

/* The window scale option's shift count. */
__noinline __u64 tcp_opt_wscale(struct __sk_buff *skb, __u32 l4off)
{
	return tcp_opt_walk(skb, l4off, TCP_OPT_WSCALE);
}

#endif
