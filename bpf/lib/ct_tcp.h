/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCP state of a tracked flow (struct tortie_ct_value), as Linux nf_conntrack follows it: the
 * state machine (SYN_SENT → SYN_RECV → ESTABLISHED → FIN_WAIT/CLOSING, RST), each side's highest
 * sequence end and ACK, and the window check that makes a RST or FIN outside them INVALID. No
 * maps: workload conntrack (lib/conntrack.h) and host endpoint conntrack (lib/hostep.h) keep
 * their entries in tables of their own and share this.
 */
#ifndef TORTIE_LIB_CT_TCP_H
#define TORTIE_LIB_CT_TCP_H

#include "lib/parse.h"

static __always_inline __u8 ct_initial_state(const struct tortie_pkt *pkt)
{
	switch (pkt->proto) {
	case IPPROTO_TCP:
		if (pkt->tcp_flags & TCP_FLAG_RST)
			return TORTIE_CT_RST;
		/* Mid-stream pickup (no SYN): e.g. flows that outlived an expired entry. */
		return (pkt->tcp_flags & TCP_FLAG_SYN) ? TORTIE_CT_SYN_SENT : TORTIE_CT_ESTABLISHED;
	case IPPROTO_UDP:
		return TORTIE_CT_UDP;
	case IPPROTO_ICMP:
		return TORTIE_CT_ICMP;
	default:
		return TORTIE_CT_OTHER;
	}
}

/* A new entry's sequence state from its first packet (sent by side a if src_is_a). */
static __always_inline void ct_tcp_init(struct tortie_ct_value *v, const struct tortie_pkt *pkt, bool src_is_a)
{
	bool ack = pkt->tcp_flags & TCP_FLAG_ACK;

	if (pkt->proto != IPPROTO_TCP || (pkt->tcp_flags & TCP_FLAG_RST))
		return;
	if (src_is_a) {
		v->seq_end[0] = pkt->tcp_end;
		v->ack_max[0] = ack ? pkt->tcp_ack : 0;
		v->flags |= TORTIE_CTF_SEQ_A | (ack ? TORTIE_CTF_ACK_A : 0);
	} else {
		v->seq_end[1] = pkt->tcp_end;
		v->ack_max[1] = ack ? pkt->tcp_ack : 0;
		v->flags |= TORTIE_CTF_SEQ_B | (ack ? TORTIE_CTF_ACK_B : 0);
	}
}

/* Serial-number comparison (RFC 1982): a is after b. */
static __always_inline bool seq_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

#define TORTIE_CT_RST_SLACK 65535u

/*
 * Is a RST or FIN from the sender (side a if sender_is_a) plausible, as Linux nf_conntrack's
 * window check: `seq` must not be before the highest ACK the peer sent (what the peer still
 * expects) nor past what the sender sent plus one unscaled window. A RST is judged by its
 * sequence number, a FIN by its segment's end (seq + payload + 1: a retransmitted FIN the peer
 * already acknowledged ends exactly at that ACK). With nothing seen from the sender, the segment
 * must acknowledge exactly what the peer sent (SYN_SENT rule for a RST answering a SYN). With
 * nothing seen from either side there is nothing to judge against: accepted.
 */
static __always_inline bool ct_seq_ok(const struct tortie_ct_value *v, const struct tortie_pkt *pkt,
				      bool sender_is_a, __u32 seq)
{
	__u64 f = v->flags;
	/* Fixed indices in both branches: a variable one is out of the verifier's reach. */
	__u32 end_s = sender_is_a ? v->seq_end[0] : v->seq_end[1];
	__u32 end_p = sender_is_a ? v->seq_end[1] : v->seq_end[0];
	__u32 ack_pv = sender_is_a ? v->ack_max[1] : v->ack_max[0];
	bool seq_s = f & (sender_is_a ? TORTIE_CTF_SEQ_A : TORTIE_CTF_SEQ_B);
	bool seq_p = f & (sender_is_a ? TORTIE_CTF_SEQ_B : TORTIE_CTF_SEQ_A);
	bool ack_p = f & (sender_is_a ? TORTIE_CTF_ACK_B : TORTIE_CTF_ACK_A);
	__u32 lo, hi;

	if (!seq_s) {
		if (!seq_p)
			return true;
		return (pkt->tcp_flags & TCP_FLAG_ACK) && pkt->tcp_ack == end_p;
	}
	hi = end_s + TORTIE_CT_RST_SLACK;
	lo = ack_p ? ack_pv : end_s - TORTIE_CT_RST_SLACK;
	return seq - lo <= hi - lo;
}

/* Records the sequence end and ACK the sender sent (kept as maxima in serial order). */
static __always_inline void ct_seq_max(__u32 *slot, __u32 val, __u64 *flags, __u32 bit)
{
	if (!(*flags & bit) || seq_after(val, *slot)) {
		*slot = val;
		if (!(*flags & bit))
			__sync_fetch_and_or(flags, bit);
	}
}

static __always_inline void ct_tcp_track(struct tortie_ct_value *v, const struct tortie_pkt *pkt,
					 bool sender_is_a)
{
	bool ack = pkt->tcp_flags & TCP_FLAG_ACK;

	if (sender_is_a) {
		ct_seq_max(&v->seq_end[0], pkt->tcp_end, &v->flags, TORTIE_CTF_SEQ_A);
		if (ack)
			ct_seq_max(&v->ack_max[0], pkt->tcp_ack, &v->flags, TORTIE_CTF_ACK_A);
	} else {
		ct_seq_max(&v->seq_end[1], pkt->tcp_end, &v->flags, TORTIE_CTF_SEQ_B);
		if (ack)
			ct_seq_max(&v->ack_max[1], pkt->tcp_ack, &v->flags, TORTIE_CTF_ACK_B);
	}
}

/* Advances the TCP state; false: an out-of-window RST or FIN (INVALID: dropped, the flow
 * unchanged — a blind FIN no longer counts towards "FIN both ways"). */
static __always_inline bool ct_tcp_advance(struct tortie_ct_value *v, const struct tortie_pkt *pkt,
					   bool init_dir, bool sender_is_a)
{
	__u8 f = pkt->tcp_flags, st = v->state;

	if (f & TCP_FLAG_RST) {
		if (!ct_seq_ok(v, pkt, sender_is_a, pkt->tcp_seq))
			return false;
		v->state = TORTIE_CT_RST;
		return true;
	}
	if ((f & TCP_FLAG_FIN) && !ct_seq_ok(v, pkt, sender_is_a, pkt->tcp_end))
		return false;
	ct_tcp_track(v, pkt, sender_is_a);
	if (f & TCP_FLAG_FIN) {
		__u32 bit = sender_is_a ? TORTIE_CTF_FIN_A : TORTIE_CTF_FIN_B;
		__u32 other = sender_is_a ? TORTIE_CTF_FIN_B : TORTIE_CTF_FIN_A;

		__sync_fetch_and_or(&v->flags, bit);
		v->state = (v->flags & other) ? TORTIE_CT_CLOSING : TORTIE_CT_FIN_WAIT;
		return true;
	}
	if (st == TORTIE_CT_SYN_SENT && !init_dir && (f & TCP_FLAG_SYN) && (f & TCP_FLAG_ACK))
		v->state = TORTIE_CT_SYN_RECV;
	else if (st == TORTIE_CT_SYN_RECV && init_dir && (f & TCP_FLAG_ACK) && !(f & TCP_FLAG_SYN))
		v->state = TORTIE_CT_ESTABLISHED;
	return true;
}

static __always_inline bool ct_tcp_reopens(const struct tortie_ct_value *v, const struct tortie_pkt *pkt)
{
	/* A fresh SYN on a closed/closing 4-tuple is a new connection: policy again. */
	return pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN &&
	       v->state >= TORTIE_CT_FIN_WAIT && v->state <= TORTIE_CT_RST;
}

#endif
