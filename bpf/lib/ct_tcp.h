/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCP state of a tracked flow (struct tortie_ct_value), as Linux nf_conntrack follows it: the
 * state machine (SYN_SENT → SYN_RECV → ESTABLISHED → FIN_WAIT/CLOSING, RST), each side's highest
 * sequence end and ACK (moved only by segments inside the window the other side advertised,
 * scaled), each side's window scale and largest window, and the window check that makes a RST or
 * FIN outside them INVALID. No maps: workload conntrack (lib/conntrack.h) and host endpoint conntrack (lib/hostep.h) keep
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

/* ceil(log2(x)) for x >= 1; 0 for x <= 1. */
static __always_inline __u8 ct_log2_ceil(__u32 x)
{
	__u8 n = 0;

	if (x <= 1)
		return 0;
	x--;
	if (x >> 16) { n += 16; x >>= 16; }
	if (x >> 8) { n += 8; x >>= 8; }
	if (x >> 4) { n += 4; x >>= 4; }
	if (x >> 2) { n += 2; x >>= 2; }
	if (x >> 1) { n += 1; x >>= 1; }
	return n + x;
}

/*
 * Records the window the sender advertised, as Linux nf_conntrack's td_maxwin: scaled by the
 * shift its SYN announced when both SYNs carried the option (RFC 7323: a SYN's own window is
 * never scaled), kept as ceil(log2) (a power-of-two bound at most twice the real window, never
 * below it). The option is taken from SYNs of the handshake only. Plain byte stores: two CPUs
 * updating the same entry may lose one advertisement, which the next one restores.
 */
static __always_inline void ct_tcp_window(struct tortie_ct_value *v, const struct tortie_pkt *pkt, bool sender_is_a)
{
	__u32 win = pkt->tcp_win;
	__u8 ws = v->wscale, l;

	if (pkt->tcp_flags & TCP_FLAG_SYN) {
		if (v->state <= TORTIE_CT_SYN_RECV)
			v->wscale = sender_is_a ? (ws & 0xf0) | (pkt->tcp_wscale & 0x0f) :
						  (ws & 0x0f) | (pkt->tcp_wscale << 4);
	} else if ((ws & 0x0f) && (ws & 0xf0)) {
		win <<= ((sender_is_a ? ws : ws >> 4) & 0x0f) - 1;
	}
	l = ct_log2_ceil(win);
	if (!l)
		l = 1; /* a zero window: as Linux, the bound is never 0 */
	if (sender_is_a) {
		if (l > v->win_log[0])
			v->win_log[0] = l;
	} else if (l > v->win_log[1]) {
		v->win_log[1] = l;
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
	if ((pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		v->flags |= TORTIE_CTF_SYN_SEEN;
	ct_tcp_window(v, pkt, src_is_a);
}

/* Serial-number comparison (RFC 1982): a is after b. */
static __always_inline bool seq_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

#define TORTIE_CT_RST_SLACK 65535u

/* What a flow's entry says of one segment's sender (s) and its peer (p): their sequence ends,
 * the peer's highest ACK, and which of them have been seen. Fixed indices in both branches: a
 * variable one is out of the verifier's reach. */
struct ct_tcp_view {
	__u32 end_s, end_p, ack_pv;
	bool seq_s, seq_p, ack_p;
};

static __always_inline void ct_tcp_view(const struct tortie_ct_value *v, bool sender_is_a,
					struct ct_tcp_view *w)
{
	__u64 f = v->flags;

	w->end_s = sender_is_a ? v->seq_end[0] : v->seq_end[1];
	w->end_p = sender_is_a ? v->seq_end[1] : v->seq_end[0];
	w->ack_pv = sender_is_a ? v->ack_max[1] : v->ack_max[0];
	w->seq_s = f & (sender_is_a ? TORTIE_CTF_SEQ_A : TORTIE_CTF_SEQ_B);
	w->seq_p = f & (sender_is_a ? TORTIE_CTF_SEQ_B : TORTIE_CTF_SEQ_A);
	w->ack_p = f & (sender_is_a ? TORTIE_CTF_ACK_B : TORTIE_CTF_ACK_A);
}

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
	struct ct_tcp_view w;
	__u32 lo, hi;

	ct_tcp_view(v, sender_is_a, &w);

	if (!w.seq_s) {
		if (!w.seq_p)
			return true;
		return (pkt->tcp_flags & TCP_FLAG_ACK) && pkt->tcp_ack == w.end_p;
	}
	/* The initiator's RST answering a segment passed untracked in SYN_SENT (TORTIE_CTF_IGN_ACK):
	 * its sequence number is exactly that segment's ACK number (RFC 9293 3.10.7.3). */
	if (!w.ack_p && (f & TORTIE_CTF_IGN_ACK) && sender_is_a == !!(f & TORTIE_CTF_A_IS_INIT) &&
	    (pkt->tcp_flags & TCP_FLAG_RST) && seq == w.ack_pv)
		return true;
	hi = w.end_s + TORTIE_CT_RST_SLACK;
	lo = w.ack_p ? w.ack_pv : w.end_s - TORTIE_CT_RST_SLACK;
	/* The peer acknowledged past what the sender could have sent: an empty window, not a wrap. */
	if (seq_after(lo, hi))
		return false;
	return seq - lo <= hi - lo;
}

/*
 * How far a sender's sequence end may lie from what its peer acknowledged (either way) on a flow
 * picked up mid-stream, where the window scale is unknown (the SYNs were not seen): a bound on
 * the receive window there. Such flows are liberal anyway (an implausible segment is only
 * ignored): the bound decides which segments move the maxima a RST is judged by.
 */
#define TORTIE_CT_SEQ_BOUND (8u << 20)

/* Linux's lower bound on how far an ACK may lag what the peer sent (MAXACKWINCONST). */
#define TORTIE_CT_ACK_WIN_MIN 66000u

/*
 * May a segment (not a RST) from the sender move its maxima? As Linux nf_conntrack's
 * tcp_in_window: it must carry an ACK (only a SYN may not). On a flow tortie saw open (both
 * windows known, with their scale), with W(x) the window bound of side x (ct_tcp_window):
 * its end must not be after the peer's highest ACK + W(peer) (the peer never allowed more) nor
 * before the sender's own end - W(peer) (a retransmission is at most a window old), and its ACK
 * must not be after what the peer sent (nobody acknowledges data never sent: tortie sees every
 * segment of the flow both ways) nor more than max(W(sender), 66000) before it. On a pickup
 * the ACK must not be after what the peer sent and the end must lie within TORTIE_CT_SEQ_BOUND
 * of what the peer acknowledged (of the sender's own end while the peer acknowledged nothing
 * yet). What is not known yet is not checked.
 */
static __always_inline bool ct_tcp_plausible(const struct tortie_ct_value *v, const struct tortie_pkt *pkt,
					     bool sender_is_a)
{
	__u64 f = v->flags;
	__u8 log_s = sender_is_a ? v->win_log[0] : v->win_log[1];
	__u8 log_p = sender_is_a ? v->win_log[1] : v->win_log[0];
	struct ct_tcp_view w;
	__u32 ref, w_s, w_p;

	ct_tcp_view(v, sender_is_a, &w);

	if (!(pkt->tcp_flags & TCP_FLAG_ACK))
		return false;
	if (w.seq_p && seq_after(pkt->tcp_ack, w.end_p))
		return false;
	if ((f & TORTIE_CTF_SYN_SEEN) && log_s && log_p) {
		/* Scaled windows stay below 2^30 (65535 << 14): the shifts cannot overflow. */
		w_s = 1u << (log_s > 30 ? 30 : log_s);
		w_p = 1u << (log_p > 30 ? 30 : log_p);
		if (w_s < TORTIE_CT_ACK_WIN_MIN)
			w_s = TORTIE_CT_ACK_WIN_MIN;
		if (w.seq_p && w.end_p - pkt->tcp_ack > w_s)
			return false;
		if (w.ack_p && seq_after(pkt->tcp_end, w.ack_pv + w_p))
			return false;
		if (w.seq_s && seq_after(w.end_s - w_p, pkt->tcp_end))
			return false;
		return true;
	}
	if (w.ack_p)
		ref = w.ack_pv;
	else if (w.seq_s)
		ref = w.end_s;
	else
		return true;
	return pkt->tcp_end - (ref - TORTIE_CT_SEQ_BOUND) <= 2 * TORTIE_CT_SEQ_BOUND;
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

	ct_tcp_window(v, pkt, sender_is_a);

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

/* Advances the TCP state; false: an out-of-window RST or FIN, or an implausible segment of a flow
 * tortie saw open (INVALID: dropped, the flow unchanged — a blind FIN no longer counts towards
 * "FIN both ways", a blind ACK no longer widens the window a RST is judged by). */
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
	if (st == TORTIE_CT_SYN_SENT && (v->flags & TORTIE_CTF_SYN_SEEN)) {
		__u32 ack_bit = sender_is_a ? TORTIE_CTF_ACK_A : TORTIE_CTF_ACK_B;

		/*
		 * Before the responder's SYN-ACK, as Linux nf_conntrack (TCP_CONNTRACK_IGNORE): a
		 * segment of the responder without SYN is no part of this handshake — typically the
		 * outside's TIME-WAIT of an earlier flow on the tuple (or, behind NAT, on the port)
		 * answering the SYN with that flow's ACK, or a blind guess. It is passed (the
		 * initiator's stack answers it with a RST, which must reach the TIME-WAIT to end it,
		 * or the SYN's retransmissions meet the same ACK until TIME-WAIT expires) and moves
		 * nothing: its ACK number is only kept for that RST (ct_seq_ok, exact match).
		 */
		if (!init_dir && !(f & TCP_FLAG_SYN) && !(v->flags & ack_bit)) {
			if (f & TCP_FLAG_ACK) {
				if (sender_is_a)
					v->ack_max[0] = pkt->tcp_ack;
				else
					v->ack_max[1] = pkt->tcp_ack;
				if (!(v->flags & TORTIE_CTF_IGN_ACK))
					__sync_fetch_and_or(&v->flags, TORTIE_CTF_IGN_ACK);
			}
			return true;
		}
		/* A SYN of the initiator again: its latest attempt's sequence is the flow's (RFC 9293:
		 * a reinitialised TCP need only use larger sequence numbers; a retransmission ends
		 * where the entry's does). */
		if (init_dir && (f & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
			if (sender_is_a)
				v->seq_end[0] = pkt->tcp_end;
			else
				v->seq_end[1] = pkt->tcp_end;
		}
	}
	/*
	 * Outside the handshake (where SYN and SYN-ACK set what the rest is judged by), an
	 * implausible segment changes nothing. It is INVALID when tortie saw the flow open (Linux
	 * conntrack marks it so, Calico drops INVALID); a SYN (a new connection attempt on the
	 * tuple, which Linux ignores) and any segment of a flow picked up mid-stream (a side's
	 * sequence may predate the entry: Linux is liberal there too) are only ignored: passed.
	 */
	if (st != TORTIE_CT_SYN_SENT && !ct_tcp_plausible(v, pkt, sender_is_a))
		return !(v->flags & TORTIE_CTF_SYN_SEEN) || (f & TCP_FLAG_SYN);
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
