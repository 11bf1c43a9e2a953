/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Header parsing: Ethernet (optionally VLAN), ARP, IPv4, IPv6 with its extension headers (tc
 * programs only), TCP/UDP/SCTP/ICMP/ICMPv6 (with the inner header of ICMP errors). Every bound
 * is checked against both the linear data end and the datagram end the IPv4 total length (IPv6
 * payload length) claims; a lie in either direction is a drop reason, never a way around policy.
 *
 * parse_packet() returns PARSE_IPV4, PARSE_IPV6 or PARSE_ARP (>0) or a negative DROP_* reason,
 * and fills struct tortie_pkt (family 4 or 6). Non-first fragments carry no L4 header (no
 * ports): the callers place them by their first fragment (lib/frag.h).
 */
#ifndef TORTIE_LIB_PARSE_H
#define TORTIE_LIB_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "lib/ctx.h"
#ifdef TORTIE_CTX_SKB
#include "lib/tcp_opt.h"
#endif

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
#define PARSE_IPV6 3

/* IPv6 next-header values (linux/ipv6.h's NEXTHDR_* are kernel-internal). */
#define IP6_NH_HOP 0
#define IP6_NH_ROUTING 43
#define IP6_NH_FRAGMENT 44
#define IP6_NH_ESP 50
#define IP6_NH_AUTH 51
#define IP6_NH_ICMP 58
#define IP6_NH_NONE 59
#define IP6_NH_DEST 60
/* Extension headers walked before giving up (DROP_IP6_EXT_CHAIN): a legitimate packet carries at
 * most hop-by-hop, destination options (twice), routing, fragment and AH (RFC 8200 4.1). */
#define TORTIE_IP6_EXT_MAX 8

/* ICMPv6 types (linux/icmpv6.h pulls in kernel-internal headers). */
#define ICMP6_DEST_UNREACH 1
#define ICMP6_PKT_TOOBIG 2
#define ICMP6_TIME_EXCEED 3
#define ICMP6_PARAMPROB 4
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define ICMP6_ROUTER_SOL 133
#define ICMP6_ROUTER_ADV 134
#define ICMP6_NEIGH_SOL 135
#define ICMP6_NEIGH_ADV 136
#define ICMP6_REDIRECT 137

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
	/* IPv4: saddr/daddr; IPv6 (family 6): saddr6/daddr6, saddr/daddr then hold their first word. */
	union { __be32 saddr; __be32 saddr6[4]; };
	union { __be32 daddr; __be32 daddr6[4]; };
	__u16 sport;      /* host order; 0 for ICMP and port-less protocols */
	__u16 dport;      /* host order; ICMP: type << 8 | code (the policy port field) */
	__u16 ct_sport;   /* host order, ports for the conntrack key (ICMP echo: the id) */
	__u16 ct_dport;
	__be16 ip_id;
	__u8 proto;       /* IPv6: the upper-layer protocol after the extension headers */
	__u8 tcp_flags;
	__u8 frag;        /* TORTIE_FRAG_* */
	__u8 icmp_err;    /* 1: `inner` (IPv6: `inner6`) holds the normalised key of the flow this error is about */
	__u8 untracked;   /* 1: no conntrack entry is made or consulted (ICMP other than echo:
			   * its type/code is what policy matches, and one entry per address pair
			   * would let an allowed type carry a denied one) */
	__u8 l3_off;      /* offset of the IP header in the frame (after Ethernet and tags) */
	__u8 echo;        /* TORTIE_ECHO_*: ICMP echo request or reply (the key marks the pinger) */
	union { struct tortie_ct4_key inner; struct tortie_ct6_key inner6; };
	/* icmp_err: source of the quoted datagram (must be the error's destination) */
	union { __be32 inner_saddr; __be32 inner_saddr6[4]; };
	__u8 inner_src_is_a; /* icmp_err: the quoted source is side a of `inner` */
	__u8 ip_opts;     /* 1: the IPv4 header carries options (IHL > 5) */
	__u8 ip_hlen;     /* IPv4 header length in bytes */
	__u8 family;      /* 4 or 6 (set by parse_packet for IP packets) */
	__u32 tcp_seq;    /* TCP, host order: sequence number, */
	__u32 tcp_ack;    /* acknowledgment number (meaningful with ACK), */
	__u32 tcp_end;    /* seq + payload + SYN + FIN (the datagram's bytes, never padding) */
	__u16 ip_tot;     /* IP datagram length (IPv6: 40 + payload length): it ends at l3_off + ip_tot */
	__u16 l4_off;     /* IPv6: offset of the upper-layer header from the IPv6 header (40 + extension headers) */
	__be32 frag_id6;  /* IPv6 fragment header's identification (frag != NONE) */
	__u8 frag_nh6;    /* IPv6: the fragment header's next header (the same in every fragment of a
			   * datagram, unlike `proto` when more extension headers follow it) */
	__u8 tcp_wscale;  /* TCP SYN (tc only): its window scale option's shift + 1 (shift capped at
			   * 14, RFC 7323); 0: none */
	__u16 tcp_win;    /* TCP, host order: the window field (unscaled) */
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


#ifdef TORTIE_CTX_SKB
/* ---- IPv6 (tc only: the XDP prefilter leaves IPv6 alone, DROP_UNSUPPORTED_L3 there) ---- */

static __always_inline bool icmp6_is_error(__u8 type)
{
	return type == ICMP6_DEST_UNREACH || type == ICMP6_PKT_TOOBIG || type == ICMP6_TIME_EXCEED ||
	       type == ICMP6_PARAMPROB;
}

static __always_inline bool icmp6_is_echo(__u8 type)
{
	return type == ICMP6_ECHO_REQUEST || type == ICMP6_ECHO_REPLY;
}

/* addr a < addr b as 128-bit big-endian numbers (the normalisation order of tortie_ct6_key). */
static __always_inline int ip6_cmp(const __be32 *a, const __be32 *b)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 x = bpf_ntohl(a[i]), y = bpf_ntohl(b[i]);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

static __always_inline bool ip6_eq(const __be32 *a, const __be32 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

/* Normalised conntrack key of (s:sp -> d:dp), as ct4_key_make. */
static __always_inline void ct6_key_make(struct tortie_ct6_key *k, const __be32 *s, const __be32 *d,
					 __u16 sp, __u16 dp, __u8 proto, bool *src_is_a)
{
	int c = ip6_cmp(s, d);
	bool a = c < 0 || (c == 0 && sp <= dp);

	k->proto = proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
	if (a) {
		__builtin_memcpy(k->addr_a, s, 16);
		__builtin_memcpy(k->addr_b, d, 16);
		k->port_a = bpf_htons(sp); k->port_b = bpf_htons(dp);
	} else {
		__builtin_memcpy(k->addr_a, d, 16);
		__builtin_memcpy(k->addr_b, s, 16);
		k->port_a = bpf_htons(dp); k->port_b = bpf_htons(sp);
	}
	if (src_is_a)
		*src_is_a = a;
}

static __always_inline void ct6_key_mark_echo(struct tortie_ct6_key *k, bool src_is_a, __u8 echo)
{
	bool pinger_is_a = echo == TORTIE_ECHO_REQUEST ? src_is_a : !src_is_a;

	if (echo != TORTIE_ECHO_NONE)
		k->pad[0] = pinger_is_a ? 1 : 2;
}

/* ICMPv6 types of neighbour discovery and multicast listener discovery (MLDv1 130-132, MLDv2
 * 143): link-local by nature, handled before policy as Felix accepts them between a workload and
 * its host. */
static __always_inline bool icmp6_is_ndp(__u8 type)
{
	return (type >= 130 && type <= 133) || type == ICMP6_NEIGH_SOL || type == ICMP6_NEIGH_ADV || type == 143;
}

static __always_inline bool ip6_is_linklocal(const __be32 *a)
{
	return (bpf_ntohl(a[0]) & 0xffc00000) == 0xfe800000;
}

/* Link-scope multicast (ff02::/16, any flags): never forwarded off the link. */
static __always_inline bool ip6_is_multicast(const __be32 *a)
{
	return (bpf_ntohl(a[0]) & 0xff0f0000) == 0xff020000;
}

static __always_inline bool ip6_is_unspecified(const __be32 *a)
{
	return (a[0] | a[1] | a[2] | a[3]) == 0;
}

/* The deny-report key of an IPv6 flow: its conntrack key folded into the IPv4-sized one the
 * suppression map is keyed by (a collision only merges two flows' report intervals). */
static __always_inline void ct6_fold(struct tortie_ct4_key *k, const struct tortie_ct6_key *k6)
{
	k->addr_a = k6->addr_a[0] ^ k6->addr_a[1] ^ k6->addr_a[2] ^ k6->addr_a[3];
	k->addr_b = k6->addr_b[0] ^ k6->addr_b[1] ^ k6->addr_b[2] ^ k6->addr_b[3];
	k->port_a = k6->port_a;
	k->port_b = k6->port_b;
	k->proto = k6->proto;
	k->pad[0] = k6->pad[0];
	k->pad[1] = 6;
	k->pad[2] = 0;
}

/* Where an IPv6 extension-header walk ended. */
struct ip6_walk {
	__u32 off;      /* offset (from the frame start) of the upper-layer header */
	__u8 nh;        /* upper-layer protocol */
	__u8 frag;      /* TORTIE_FRAG_* */
	__u16 frag_off; /* later fragment: offset in 8-byte units */
	__be32 frag_id;
	__u8 frag_nh;   /* the fragment header's next header */
};

/*
 * Walks the extension headers from `off` (just after the fixed header, whose next header is
 * `nh`) up to `end` (the datagram's end), at most TORTIE_IP6_EXT_MAX of them, as Linux's
 * ipv6_skip_exthdr: hop-by-hop, routing, destination options, fragment and AH are skipped (AH
 * authenticates, it does not hide the upper layer; Cilium's parser skips it too); ESP and
 * "no next header" end the walk as an upper-layer protocol without ports. A later fragment ends
 * the walk at its fragment header (nothing after it is a header). strict (the outer packet):
 * hop-by-hop anywhere but first, a second fragment header and a routing header with segments
 * left are drops; the quote of an ICMPv6 error is walked leniently (not strict) and only needs
 * to name a flow. Returns 0 or a DROP_* reason.
 */
static __always_inline int ip6_walk_exts(struct __sk_buff *skb, struct ip6_walk *w, __u32 end, bool strict)
{
	__u32 off = w->off;
	__u8 nh = w->nh, b[8];
	bool frag_seen = false;

#pragma unroll
	for (int i = 0; i < TORTIE_IP6_EXT_MAX; i++) {
		__u32 len;

		if (nh != IP6_NH_HOP && nh != IP6_NH_ROUTING && nh != IP6_NH_DEST &&
		    nh != IP6_NH_FRAGMENT && nh != IP6_NH_AUTH)
			goto done;
		if (off + 8 > end || bpf_skb_load_bytes(skb, off, b, 8) < 0)
			return DROP_IP6_BAD_EXT;
		if (nh == IP6_NH_FRAGMENT) {
			__u16 fo = ((__u16)b[2] << 8) | b[3];

			if (frag_seen && strict)
				return DROP_IP6_BAD_EXT;
			frag_seen = true;
			w->frag_id = *(__be32 *)&b[4];
			w->frag_nh = b[0];
			len = 8;
			if (fo >> 3) {
				w->frag = TORTIE_FRAG_LATER;
				w->frag_off = fo >> 3;
				w->nh = b[0];
				w->off = off + 8;
				return 0;
			}
			/* Offset 0 without M is an atomic fragment (RFC 6946): a whole datagram. */
			if (fo & 1)
				w->frag = TORTIE_FRAG_FIRST;
		} else if (nh == IP6_NH_AUTH) {
			len = ((__u32)b[1] + 2) * 4;
		} else {
			len = ((__u32)b[1] + 1) * 8;
			if (strict && nh == IP6_NH_HOP && i != 0)
				return DROP_IP6_BAD_EXT;
			/* Segments left: the destination is a waypoint, not where the packet goes. */
			if (strict && nh == IP6_NH_ROUTING && b[3] != 0)
				return DROP_IP6_SRCROUTE;
		}
		nh = b[0];
		off += len;
	}
	if (nh == IP6_NH_HOP || nh == IP6_NH_ROUTING || nh == IP6_NH_DEST || nh == IP6_NH_FRAGMENT ||
	    nh == IP6_NH_AUTH)
		return DROP_IP6_EXT_CHAIN;
done:
	if (off > end)
		return DROP_IP6_BAD_EXT;
	w->off = off;
	w->nh = nh;
	return 0;
}


#ifdef TORTIE_CTX_SKB
/* A SYN's window scale option (the TCP header at l4off) as tcp_wscale: shift + 1, 0 none. */
static __always_inline __u8 parse_tcp_wscale(struct __sk_buff *skb, __u32 l4off)
{
	__u64 o = tcp_opt_wscale(skb, l4off);

	if (!(o & TCP_OPT_SEEN))
		return 0;
	return ((__u8)o > 14 ? 14 : (__u8)o) + 1; /* RFC 7323 2.3: a larger shift is taken as 14 */
}
#endif

/* The quote of an ICMPv6 error (at `off`, up to `end`): the offending datagram as the peer sent
 * it. Best effort, as parse_icmp_inner: incomplete, it is a plain ICMPv6 packet for policy. */
static __always_inline void parse_icmp6_inner(struct __sk_buff *skb, __u32 off, __u32 end, struct tortie_pkt *pkt)
{
	struct ipv6hdr iip;
	struct ip6_walk w = {};
	__u16 isp = 0, idp = 0;
	__u8 l4[8], echo = TORTIE_ECHO_NONE;
	bool a;

	if (off + sizeof(iip) > end || bpf_skb_load_bytes(skb, off, &iip, sizeof(iip)) < 0)
		return;
	if (iip.version != 6)
		return;
	w.off = off + sizeof(iip);
	w.nh = iip.nexthdr;
	if (ip6_walk_exts(skb, &w, end, false) < 0 || w.frag == TORTIE_FRAG_LATER)
		return;
	if (w.off + 8 > end || bpf_skb_load_bytes(skb, w.off, l4, 8) < 0)
		return;
	switch (w.nh) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
		isp = ((__u16)l4[0] << 8) | l4[1];
		idp = ((__u16)l4[2] << 8) | l4[3];
		break;
	case IP6_NH_ICMP:
		if (!icmp6_is_echo(l4[0]))
			return;
		isp = idp = ((__u16)l4[4] << 8) | l4[5];
		echo = l4[0] == ICMP6_ECHO_REQUEST ? TORTIE_ECHO_REQUEST : TORTIE_ECHO_REPLY;
		break;
	default:
		break;
	}
	ct6_key_make(&pkt->inner6, (const __be32 *)&iip.saddr, (const __be32 *)&iip.daddr, isp, idp, w.nh, &a);
	ct6_key_mark_echo(&pkt->inner6, a, echo);
	__builtin_memcpy(pkt->inner_saddr6, &iip.saddr, 16);
	pkt->inner_src_is_a = a;
	pkt->icmp_err = 1;
}

/* The in-place read of IPv6's upper-layer header (parse6_l4, below) is for the programs that define
 * TORTIE_PARSE_IN_PLACE 1 (tortie_wep); elsewhere the helper reads as before: the uplink's egress
 * program is near the verifier's complexity limit, and the extra branches took it over. */
#ifndef TORTIE_PARSE_IN_PLACE
#define TORTIE_PARSE_IN_PLACE 0
#endif

/* `len` (a constant: 8 or 20) bytes of the upper-layer header at `off` into `to`: in place where
 * the head holds them (always without extension headers, short of a malformed packet), else with
 * bpf_skb_load_bytes. 0 or < 0 as bpf_skb_load_bytes. */
#define parse6_l4(skb, off, to, len)                                                           \
	({                                                                                      \
		void *_d = ctx_data(skb), *_e = ctx_data_end(skb);                            \
		__u32 _o = (off);                                                               \
		long _r = 0;                                                                    \
		if (TORTIE_PARSE_IN_PLACE && _o < 1024 && _d + _o + (len) <= _e)              \
			__builtin_memcpy((to), _d + _o, (len));                                \
		else                                                                            \
			_r = bpf_skb_load_bytes(skb, _o, (to), (len));                         \
		_r;                                                                             \
	})

/*
 * The IPv6 header at `off` and its extension headers; the upper-layer header is read in place
 * where the head holds it, else with bpf_skb_load_bytes (it may sit past the linear head behind
 * long extension headers: parse6_l4). Bounds
 * are the payload length's, never the frame's (Ethernet padding is ignored); a payload length
 * past the frame is DROP_BAD_TOTLEN. A first fragment must hold the whole header chain and the
 * upper-layer header (RFC 7112), else DROP_FRAG_TINY.
 */
static __always_inline int parse_ipv6(struct __sk_buff *skb, struct tortie_pkt *pkt, __u32 off, bool want_l4)
{
	void *data = ctx_data(skb), *end = ctx_data_end(skb);
	struct ipv6hdr *ip6 = data + off;
	struct ip6_walk w = {};
	__u32 plen, dend, tot;
	__u8 l4[20];
	int ret;

	if ((void *)(ip6 + 1) > end)
		return DROP_TRUNC_IP;
	if (ip6->version != 6)
		return DROP_BAD_IP_VERSION;
	plen = bpf_ntohs(ip6->payload_len);
	/* A jumbogram (payload length 0, RFC 2675) has no place on a workload's veth either. */
	if (off + sizeof(*ip6) + plen > skb->len || sizeof(*ip6) + plen > 0xffff)
		return DROP_BAD_TOTLEN;
	dend = off + sizeof(*ip6) + plen;
	pkt->family = 6;
	pkt->l3_off = off;
	pkt->ip_tot = sizeof(*ip6) + plen;
	__builtin_memcpy(pkt->saddr6, &ip6->saddr, 16);
	__builtin_memcpy(pkt->daddr6, &ip6->daddr, 16);
	w.off = off + sizeof(*ip6);
	w.nh = ip6->nexthdr;
	ret = ip6_walk_exts(skb, &w, dend, true);
	if (ret < 0)
		return ret;
	pkt->proto = w.nh;
	pkt->frag = w.frag;
	pkt->frag_id6 = w.frag_id;
	pkt->frag_nh6 = w.frag_nh;
	pkt->l4_off = w.off - off;
	if (w.frag == TORTIE_FRAG_LATER) {
		/* A later fragment at offset 8 would rewrite TCP flags of the first (RFC 1858). */
		if (w.frag_off == 1 && w.nh == IPPROTO_TCP)
			return DROP_FRAG_TINY;
		return PARSE_IPV6;
	}
	if (!want_l4)
		return PARSE_IPV6;
	tot = dend - w.off; /* bytes of upper-layer header + payload */
	switch (w.nh) {
	case IPPROTO_TCP: {
		__u32 doff;

		if (tot < 20 || parse6_l4(skb, w.off, l4, 20) < 0)
			return pkt->frag ? DROP_FRAG_TINY : DROP_TRUNC_L4;
		doff = (l4[12] >> 4) * 4;
		if (doff < 20 || doff > tot)
			return DROP_BAD_TCP_HDR;
		pkt->sport = ((__u16)l4[0] << 8) | l4[1];
		pkt->dport = ((__u16)l4[2] << 8) | l4[3];
		pkt->tcp_flags = l4[13];
		pkt->tcp_seq = bpf_ntohl(*(__be32 *)&l4[4]);
		pkt->tcp_ack = bpf_ntohl(*(__be32 *)&l4[8]);
		pkt->tcp_end = pkt->tcp_seq + (tot - doff) + !!(pkt->tcp_flags & TCP_FLAG_SYN) +
			       !!(pkt->tcp_flags & TCP_FLAG_FIN);
		pkt->tcp_win = ((__u16)l4[14] << 8) | l4[15];
		pkt->tcp_wscale = (pkt->tcp_flags & TCP_FLAG_SYN) ? parse_tcp_wscale(skb, w.off) : 0;
		break;
	}
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP: {
		__u32 need = w.nh == IPPROTO_SCTP ? 12 : 8;

		if (tot < need || parse6_l4(skb, w.off, l4, 8) < 0)
			return pkt->frag ? DROP_FRAG_TINY : DROP_TRUNC_L4;
		pkt->sport = ((__u16)l4[0] << 8) | l4[1];
		pkt->dport = ((__u16)l4[2] << 8) | l4[3];
		break;
	}
	case IP6_NH_ICMP: {
		__u8 type;

		/* Every ICMPv6 message tortie reads has 8 bytes (type, code, checksum, 4 more). */
		if (tot < 8 || bpf_skb_load_bytes(skb, w.off, l4, 8) < 0)
			return pkt->frag ? DROP_FRAG_TINY : DROP_TRUNC_L4;
		type = l4[0];
		pkt->dport = ((__u16)type << 8) | l4[1];
		if (icmp6_is_echo(type)) {
			pkt->ct_sport = pkt->ct_dport = ((__u16)l4[4] << 8) | l4[5];
			pkt->echo = type == ICMP6_ECHO_REQUEST ? TORTIE_ECHO_REQUEST : TORTIE_ECHO_REPLY;
		} else {
			pkt->untracked = 1;
			if (icmp6_is_error(type))
				parse_icmp6_inner(skb, w.off + 8, dend, pkt);
		}
		return PARSE_IPV6;
	}
	case IPPROTO_ICMP: /* ICMPv4 in IPv6: policy matches type/code; no echo/error semantics */
		if (tot < 4 || bpf_skb_load_bytes(skb, w.off, l4, 4) < 0)
			return pkt->frag ? DROP_FRAG_TINY : DROP_TRUNC_L4;
		pkt->dport = ((__u16)l4[0] << 8) | l4[1];
		pkt->untracked = 1;
		return PARSE_IPV6;
	default:
		return PARSE_IPV6;
	}
	pkt->ct_sport = pkt->sport;
	pkt->ct_dport = pkt->dport;
	return PARSE_IPV6;
}
#endif

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
	if ((void *)(eth + 1) > end)
		return;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		/* The fixed header is read in place; extension and upper-layer headers are loaded. */
		need = sizeof(*eth) + sizeof(struct ipv6hdr);
		if (need <= skb->len && data + need > end)
			bpf_skb_pull_data(skb, need);
		return;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP))
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
#if defined(TORTIE_CTX_SKB) && !defined(TORTIE_PARSE_V6_APART)
	/* Entry files that route IPv6 to a program path of its own before parse_packet() (the
	 * workload programs: wep_judge6) define TORTIE_PARSE_V6_APART and call parse_ipv6(). */
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(ctx, pkt, off, want_l4);
#endif
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

	pkt->family = 4;
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
		pkt->tcp_win = bpf_ntohs(th->window);
#ifdef TORTIE_CTX_SKB
		pkt->tcp_wscale = (pkt->tcp_flags & TCP_FLAG_SYN) ? parse_tcp_wscale(ctx, pkt->l3_off + hlen) : 0;
#else
		pkt->tcp_wscale = 0; /* XDP keeps no conntrack */
#endif
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
