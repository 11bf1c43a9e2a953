/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Header parsing: Ethernet (optionally VLAN), ARP, IPv4, TCP/UDP/SCTP/ICMP (with the inner
 * header of ICMP errors). Every bound is checked against both the linear data end and the
 * datagram end the IPv4 total length claims; a lie in either direction is a drop reason,
 * never a way around policy.
 *
 * parse_packet() returns PARSE_IPV4 or PARSE_ARP (>0) or a negative DROP_* reason, and
 * fills struct tortie_pkt. Non-first fragments carry no L4 header (no ports): the callers
 * place them by their first fragment (lib/frag.h).
 */
#ifndef TORTIE_LIB_PARSE_H
#define TORTIE_LIB_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "lib/ctx.h"

/* ICMPv4 types (linux/icmp.h pulls in libc socket headers, unusable for -target bpf). */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_REDIRECT 5
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

#define PARSE_IPV4 1
#define PARSE_ARP 2

#define TORTIE_FRAG_NONE 0
#define TORTIE_FRAG_FIRST 1
#define TORTIE_FRAG_LATER 2

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

struct vlan_hdr_t {
	__be16 tci;
	__be16 encap_proto;
};

struct tortie_pkt {
	__be32 saddr;
	__be32 daddr;
	__u16 sport;      /* host order; 0 for ICMP and port-less protocols */
	__u16 dport;      /* host order; ICMP: type << 8 | code (the policy port field) */
	__u16 ct_sport;   /* host order, ports for the conntrack key (ICMP echo: the id) */
	__u16 ct_dport;
	__be16 ip_id;
	__u8 proto;
	__u8 tcp_flags;
	__u8 frag;        /* TORTIE_FRAG_* */
	__u8 icmp_err;    /* 1: `inner` holds the normalised key of the flow this error is about */
	__u8 untracked;   /* 1: no conntrack entry is made or consulted (ICMP other than echo:
			   * its type/code is what policy matches, and one entry per address pair
			   * would let an allowed type carry a denied one) */
	__u8 l3_off;      /* offset of the IPv4 header in the frame (after Ethernet and tags) */
	__u8 echo;        /* TORTIE_ECHO_*: ICMP echo request or reply (the key marks the pinger) */
	struct tortie_ct4_key inner;
	__be32 inner_saddr; /* icmp_err: source of the quoted datagram (must be the error's destination) */
	__u8 inner_src_is_a; /* icmp_err: the quoted source is side a of `inner` */
	__u8 ip_opts;     /* 1: the IPv4 header carries options (IHL > 5) */
	__u8 ip_hlen;     /* IPv4 header length in bytes */
	__u8 pad2;
	__u32 tcp_seq;    /* TCP, host order: sequence number, */
	__u32 tcp_ack;    /* acknowledgment number (meaningful with ACK), */
	__u32 tcp_end;    /* seq + payload + SYN + FIN (the datagram's bytes, never padding) */
	__u16 ip_tot;     /* IPv4 total length: the datagram ends at l3_off + ip_tot (padding after) */
	__u16 pad3;
};

#define TORTIE_ECHO_NONE 0
#define TORTIE_ECHO_REQUEST 1
#define TORTIE_ECHO_REPLY 2

/*
 * TCP flag combinations a conforming stack sends, as Linux nf_conntrack_proto_tcp's
 * tcp_valid_flags (FIN|SYN|RST|ACK|URG; PSH, ECE and CWR are ignored): SYN, SYN+URG, SYN+ACK,
 * RST, RST+ACK, FIN+ACK, FIN+ACK+URG, ACK, ACK+URG. Anything else (SYN+FIN, SYN+RST, NULL,
 * XMAS, FIN without ACK, ...) is INVALID: bit n of the mask is set if combination n is valid.
 */
#define TCP_VALID_FLAGS_MASK ((1ULL << 0x02) | (1ULL << 0x22) | (1ULL << 0x12) | (1ULL << 0x04) | \
			      (1ULL << 0x14) | (1ULL << 0x11) | (1ULL << 0x31) | (1ULL << 0x10) | \
			      (1ULL << 0x30))

static __always_inline bool tcp_flags_valid(__u8 flags)
{
	return (TCP_VALID_FLAGS_MASK >> (flags & 0x37)) & 1;
}

static __always_inline bool icmp_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB || type == ICMP_SOURCE_QUENCH || type == ICMP_REDIRECT;
}

static __always_inline bool icmp_is_echo(__u8 type)
{
	return type == ICMP_ECHO || type == ICMP_ECHOREPLY;
}

/* Normalised conntrack key of (s:sp -> d:dp); *src_is_a tells which side the source is. */
static __always_inline void ct4_key_make(struct tortie_ct4_key *k, __be32 s, __be32 d, __u16 sp,
					 __u16 dp, __u8 proto, bool *src_is_a)
{
	__u32 hs = bpf_ntohl(s), hd = bpf_ntohl(d);
	bool a = hs < hd || (hs == hd && sp <= dp);

	k->proto = proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
	if (a) {
		k->addr_a = s; k->addr_b = d;
		k->port_a = bpf_htons(sp); k->port_b = bpf_htons(dp);
	} else {
		k->addr_a = d; k->addr_b = s;
		k->port_a = bpf_htons(dp); k->port_b = bpf_htons(sp);
	}
	if (src_is_a)
		*src_is_a = a;
}

/*
 * ICMP echo keys carry which side is the pinger (pad[0]: 1 = side a, 2 = side b), so a
 * request s -> d and its reply d -> s share one key while a request d -> s (the peer pinging
 * back with the same id) has another: an outgoing ping never admits the peer's requests.
 */
static __always_inline void ct4_key_mark_echo(struct tortie_ct4_key *k, bool src_is_a, __u8 echo)
{
	bool pinger_is_a = echo == TORTIE_ECHO_REQUEST ? src_is_a : !src_is_a;

	if (echo != TORTIE_ECHO_NONE)
		k->pad[0] = pinger_is_a ? 1 : 2;
}

/* Inner header of an ICMP error: the offending datagram as the peer sent it. Best effort:
 * if it is not complete, the error is treated as a plain ICMP packet (policy decides). */
static __always_inline void parse_icmp_inner(void *inner, void *end, __u32 room, struct tortie_pkt *pkt)
{
	struct iphdr *iip = inner;
	__u16 isp = 0, idp = 0;
	__u32 ihlen;
	__u8 *l4, echo = TORTIE_ECHO_NONE;
	bool a;

	if ((void *)(iip + 1) > end || room < sizeof(*iip))
		return;
	if (iip->version != 4 || iip->ihl < 5)
		return;
	/* A quoted later fragment has no L4 header: its "ports" are payload (Linux: no tuple). */
	if (iip->frag_off & bpf_htons(0x1fff))
		return;
	ihlen = iip->ihl * 4;
	if (ihlen + 8 > room)
		return;
	l4 = inner + ihlen;
	if ((void *)(l4 + 8) > end)
		return;
	switch (iip->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
		isp = ((__u16)l4[0] << 8) | l4[1];
		idp = ((__u16)l4[2] << 8) | l4[3];
		break;
	case IPPROTO_ICMP:
		if (!icmp_is_echo(l4[0]))
			return;
		isp = idp = ((__u16)l4[4] << 8) | l4[5];
		echo = l4[0] == ICMP_ECHO ? TORTIE_ECHO_REQUEST : TORTIE_ECHO_REPLY;
		break;
	default:
		break;
	}
	ct4_key_make(&pkt->inner, iip->saddr, iip->daddr, isp, idp, iip->protocol, &a);
	ct4_key_mark_echo(&pkt->inner, a, echo);
	pkt->inner_saddr = iip->saddr;
	pkt->inner_src_is_a = a;
	pkt->icmp_err = 1;
}

/* IPOPT_END, IPOPT_NOOP, IPOPT_LSRR, IPOPT_SSRR: linux/ip.h (0, 1, 131, 137). */

#ifdef TORTIE_CTX_SKB
/* The option list of one IPv4 header, walked by bpf_loop (one verified callback, not 40
 * unrolled branches in the caller). */
struct ipopt_walk {
	__u8 opt[40];
	__u32 i;
	__u32 len;
	__u32 srr;
};

static long ipopt_step(__u32 n, void *data)
{
	struct ipopt_walk *w = data;
	__u32 i = w->i;
	__u8 type, olen;

	if (i >= w->len || i >= sizeof(w->opt))
		return 1;
	type = w->opt[i];
	if (type == IPOPT_END)
		return 1;
	if (type == IPOPT_NOOP) {
		w->i = i + 1;
		return 0;
	}
	if (type == IPOPT_LSRR || type == IPOPT_SSRR) {
		w->srr = 1;
		return 1;
	}
	if (i + 1 >= w->len || i + 1 >= sizeof(w->opt))
		return 1;
	olen = w->opt[i + 1];
	if (olen < 2)
		return 1;
	w->i = i + olen;
	return 0;
}

/*
 * Does the IPv4 header (hlen bytes after Ethernet, no VLAN tag) carry a loose or strict source
 * route? A router honouring it forwards the packet to the next listed hop, not to the
 * destination policy judged. The walk stops at the end-of-list option or at a malformed length
 * (the kernel drops such headers itself).
 */
static __always_inline bool parse_ip_srcroute(struct __sk_buff *skb, __u32 hlen)
{
	struct ipopt_walk w = { .i = 0, .srr = 0 };
	__u32 olen = hlen - sizeof(struct iphdr);

	if (olen < 1 || olen > sizeof(w.opt))
		return false;
	w.len = olen;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(struct iphdr), w.opt, olen) < 0)
		return false;
	bpf_loop(sizeof(w.opt), ipopt_step, &w, 0);
	return w.srr;
}
#endif

#ifdef TORTIE_CTX_SKB
/*
 * Makes the headers parse_packet() reads linear, and nothing more: pulling a fixed length
 * (bpf_skb_pull_data) into the head of a GSO packet whose payload lives in page frags copies
 * payload and can reallocate the head on every packet. Reads the IPv4 header length and
 * protocol first, then pulls Ethernet + IP header + the L4 header (ICMP: + the inner IPv4
 * header and 8 bytes an error quotes) only if those bytes are not linear already. Bounds are
 * checked again by parse_packet(); a failed pull just leaves it to report the truncation.
 */
static __always_inline void parse_pull_headers(struct __sk_buff *skb)
{
	void *data = ctx_data(skb), *end = ctx_data_end(skb);
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 need = sizeof(*eth) + sizeof(*ip);

	if (skb->len < need)
		return;
	if (data + need > end) {
		if (bpf_skb_pull_data(skb, need))
			return;
		data = ctx_data(skb);
		end = ctx_data_end(skb);
		eth = data;
	}
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return;
	ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > end)
		return;
	need = sizeof(*eth) + ip->ihl * 4 + (ip->protocol == IPPROTO_ICMP ? 8 + 60 + 8 : 20);
	if (need > skb->len)
		need = skb->len;
	if (data + need > end)
		bpf_skb_pull_data(skb, need);
}
#endif

/* vlan_ok: accept up to two VLAN tags (uplink); on workload interfaces a tag is a drop.
 * want_l4: parse and validate the L4 header (the prefilter only needs addresses). */
static __always_inline int parse_packet(struct ctx_buff *ctx, struct tortie_pkt *pkt, bool vlan_ok,
					bool want_l4)
{
	void *data = ctx_data(ctx);
	void *end = ctx_data_end(ctx);
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 off = sizeof(*eth), hlen, tot, fo;
	__be16 proto;
	__u8 *l4;

	if ((void *)(eth + 1) > end)
		return DROP_TRUNC_ETH;
	proto = eth->h_proto;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
			struct vlan_hdr_t *vh = data + off;

			if (!vlan_ok)
				return DROP_VLAN;
			if ((void *)(vh + 1) > end)
				return DROP_TRUNC_ETH;
			proto = vh->encap_proto;
			off += sizeof(*vh);
		}
	}
	if (proto == bpf_htons(ETH_P_ARP))
		return PARSE_ARP;
	if (proto != bpf_htons(ETH_P_IP))
		return (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) ?
			DROP_VLAN : DROP_UNSUPPORTED_L3;

	ip = data + off;
	if ((void *)(ip + 1) > end)
		return DROP_TRUNC_IP;
	if (ip->version != 4)
		return DROP_BAD_IP_VERSION;
	if (ip->ihl < 5)
		return DROP_BAD_IHL;
	hlen = ip->ihl * 4;
	if ((void *)ip + hlen > end)
		return DROP_TRUNC_IP;
	tot = bpf_ntohs(ip->tot_len);
	/* Bytes past the datagram (Ethernet padding of short frames) are allowed and ignored: every
	 * bound below is the datagram's, never the frame's. */
	if (tot < hlen || off + tot > ctx_len(ctx))
		return DROP_BAD_TOTLEN;

	pkt->l3_off = off;
	pkt->ip_tot = tot;
	pkt->saddr = ip->saddr;
	pkt->daddr = ip->daddr;
	pkt->ip_opts = hlen > sizeof(*ip);
	pkt->ip_hlen = hlen;
	pkt->proto = ip->protocol;
	pkt->ip_id = ip->id;
	fo = bpf_ntohs(ip->frag_off);
	if (fo & 0x1fff) {
		pkt->frag = TORTIE_FRAG_LATER;
		/* A later fragment at offset 8 rewrites TCP flags of the first (RFC 1858). */
		if ((fo & 0x1fff) == 1 && ip->protocol == IPPROTO_TCP)
			return DROP_FRAG_TINY;
		return PARSE_IPV4;
	}
	if (fo & 0x2000)
		pkt->frag = TORTIE_FRAG_FIRST;
	if (!want_l4)
		return PARSE_IPV4;

	l4 = (__u8 *)ip + hlen;
	tot -= hlen; /* bytes of L4 header + payload the datagram claims */
	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *th = (void *)l4;
		__u32 doff;

		if (tot < sizeof(*th) || (void *)(th + 1) > end)
			return pkt->frag ? DROP_FRAG_TINY : DROP_TRUNC_L4;
		doff = th->doff * 4;
		if (doff < sizeof(*th) || doff > tot)
			return DROP_BAD_TCP_HDR;
		pkt->sport = bpf_ntohs(th->source);
		pkt->dport = bpf_ntohs(th->dest);
		pkt->tcp_flags = l4[13];
		pkt->tcp_seq = bpf_ntohl(th->seq);
		pkt->tcp_ack = bpf_ntohl(th->ack_seq);
		pkt->tcp_end = pkt->tcp_seq + (tot - doff) + !!(pkt->tcp_flags & TCP_FLAG_SYN) +
			       !!(pkt->tcp_flags & TCP_FLAG_FIN);
		break;
	}
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP: {
		/* SCTP's 12-byte common header starts with the same two ports as UDP's 8. */
		if (ip->protocol != IPPROTO_SCTP) {
			if (tot < 8 || (void *)(l4 + 8) > end)
				return pkt->frag ? DROP_FRAG_TINY : DROP_TRUNC_L4;
		} else {
			if (tot < 12 || (void *)(l4 + 12) > end)
				return pkt->frag ? DROP_FRAG_TINY : DROP_TRUNC_L4;
		}
		pkt->sport = ((__u16)l4[0] << 8) | l4[1];
		pkt->dport = ((__u16)l4[2] << 8) | l4[3];
		break;
	}
	case 58: /* ICMPv6 number in an IPv4 header: no echo/error semantics, but the policy
		  * port value is type << 8 | code as the compiler's contract defines for it. */
		if (tot < 4 || (void *)(l4 + 4) > end)
			return pkt->frag ? DROP_FRAG_TINY : DROP_TRUNC_L4;
		pkt->dport = ((__u16)l4[0] << 8) | l4[1];
		pkt->untracked = 1;
		return PARSE_IPV4;
	case IPPROTO_ICMP: {
		__u8 type, code;

		if (tot < 8 || (void *)(l4 + 8) > end)
			return pkt->frag ? DROP_FRAG_TINY : DROP_TRUNC_L4;
		type = l4[0];
		code = l4[1];
		pkt->dport = ((__u16)type << 8) | code;
		if (icmp_is_echo(type)) {
			pkt->ct_sport = pkt->ct_dport = ((__u16)l4[4] << 8) | l4[5];
			pkt->echo = type == ICMP_ECHO ? TORTIE_ECHO_REQUEST : TORTIE_ECHO_REPLY;
		} else {
			pkt->untracked = 1;
			if (icmp_is_error(type))
				parse_icmp_inner(l4 + 8, end, tot - 8, pkt);
		}
		return PARSE_IPV4;
	}
	default:
		return PARSE_IPV4;
	}
	pkt->ct_sport = pkt->sport;
	pkt->ct_dport = pkt->dport;
	return PARSE_IPV4;
}

#endif
