/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NAT outgoing (Calico's natOutgoing) in BPF, on the uplink: workload traffic from a
 * natOutgoing pool to a destination outside every pool, not a node and not this host, leaves
 * with the node's address as source (nat_snat, tc egress); replies are translated back
 * (nat_rev, tc ingress).
 *
 * Mapping: one entry per direction (shared/maps.h, tortie_nat4_v2), in a plain hash: a live
 * mapping is never evicted to make room; a full table refuses new flows (DROP_NAT_TABLE_FULL).
 *
 * The node's own traffic (docs/security.md, "NAT outgoing and the node's own traffic"): a mapping
 * never takes a (node address, port, protocol, remote address and port) tuple that a socket of the
 * node uses or listens on. Ports come only from [nat_port_min, nat_port_max], which the agent
 * refuses to load when it overlaps the node's ip_local_port_range, so the kernel never picks one
 * of them for an unbound connect(); the workload's own port is kept only when it lies in that
 * range. Every candidate the table lets the flow have is checked against the node's live sockets
 * before it is claimed (bpf_skc_lookup_tcp / bpf_sk_lookup_udp in the uplink's namespace:
 * connected, listening and TIME-WAIT sockets; nat_claim), and a reply is reverse-translated only if no node socket owns its tuple
 * (a socket bound into the range after the claim keeps its traffic; the mapping's flow breaks,
 * never the node's). Candidates: the workload's port if in range, then nat_retries ports drawn at
 * random, each on its own (nat_candidate; a range of at most NAT_MAX_RETRIES ports is walked in
 * order from a random start, so every port of it is tried). A port is claimed by creating the REV entry with BPF_NOEXIST,
 * which is atomic across CPUs, so two flows can never share a reply tuple; the FWD entry is then
 * created with BPF_NOEXIST too, and a CPU that loses that race gives its claim back and uses the
 * winner's mapping. A colliding REV entry whose flow has expired (timeouts below) is reclaimed.
 * No port after the retries: DROP_NAT_NO_PORT, the flow never goes out half-translated.
 *
 * Fairness (docs/security.md, "Fair state tables"): a workload address may hold at most
 * nat_quota FWD mappings (flows); a new flow over it is refused with DROP_NAT_QUOTA, so one
 * workload's flood never takes the table from the others. The count is tortie_natq4_v1:
 * CREATED (added here on every FWD creation, atomically) minus RELEASED (added by the agent's
 * sweep for every FWD entry it deletes; src/dataplane/bpf/nat.ts) minus MOVED (added here,
 * atomically, for every FWD entry released at a verified close). FWD entries are only created
 * here and deleted by the sweep, by nat_tcp_release or by nat_fwd_drop (a node socket took the
 * tuple back; a stale one is replaced in place); each deleter credits only a delete that
 * succeeded for it, so the count is exact.
 *
 * Connection churn (docs/security.md, "A closed TCP flow's mapping is released at once"): a TCP
 * flow whose close the workload's conntrack verifies (nat_ct_closed: both FINs accepted there and
 * each acknowledged exactly by the other end) is released by the packet that completes it
 * (nat_tcp_release): the FWD entry goes, the REV entry stays as a tombstone (TORTIE_NATF_DONE,
 * closed timeout) that still translates late segments and holds the port, and a new SYN takes a
 * tombstone's port only when the outside's TIME-WAIT socket will accept it (nat_tw_ok: RFC 6191
 * by timestamp, else by sequence number, as Linux nf_nat reuses a TIME_WAIT tuple). Why not
 * release at the first FIN, or delete both entries: the last ACK and retransmitted FINs would then
 * find no mapping (a new port, a RST from outside); why the TIME-WAIT rules: the outside keeps
 * TIME-WAIT for (node address, port) for 60 s, and a reused port whose SYN it refuses costs the
 * new connection a 1 s SYN retransmission. Linux MASQUERADE avoids most reuse by keeping the
 * workload's port; here the ports come from a range apart from the node's own, so a closed
 * flow's port must serve the next flow. The conntrack judge is read through tortie_natct4 (the
 * loader reuses the cali* programs' table); per packet this costs one flags test until both FINs
 * went by.
 * Checksums: the IPv4 header checksum, the TCP/UDP checksum (pseudo-header address and port;
 * a zero UDP checksum stays zero) and the ICMP echo checksum (id) are updated incrementally
 * (lib/csum.h). Each failed rewrite has its own drop reason (DROP_NAT_L4_CSUM, _PORT, _ADDR).
 *
 * This header translates the flow itself. ICMP errors about a SNATed flow (both directions: the
 * quoted header is rewritten too) are lib/icmp_err.h's, built on the mapping helpers here
 * (nat_live, nat_host_sock). Later fragments of a translated datagram get the address
 * translation of their first fragment (nat_frag_later, recorded in the one fragment tracker,
 * lib/frag.h) when the first one went through first.
 */
#ifndef TORTIE_LIB_NAT_H
#define TORTIE_LIB_NAT_H

#include "lib/parse.h"
#include "lib/tcp_opt.h"
#include "lib/route.h"
#include "lib/csum.h"
#include "lib/quota.h"
#include "lib/frag.h"
#include "lib/ct_tcp.h"

#define NAT_NSEC 1000000000ULL
#ifndef E2BIG
#define E2BIG 7
#endif

/* Load-time tunables. */
const volatile __u32 nat_port_min = 20000;
const volatile __u32 nat_port_max = 29999;
const volatile __u32 nat_retries = 24;
const volatile __u32 nat_quota = 8192;        /* FWD mappings per workload address; 0 = no quota */
const volatile __u64 nat_timeout_tcp_ns = 3600 * NAT_NSEC;
const volatile __u64 nat_timeout_tcp_closed_ns = 10 * NAT_NSEC; /* after a RST out (program); sweep: see nat.ts */
const volatile __u64 nat_timeout_udp_ns = 60 * NAT_NSEC;
const volatile __u64 nat_timeout_icmp_ns = 30 * NAT_NSEC;
const volatile __u64 nat_timeout_other_ns = 600 * NAT_NSEC;

/* The most candidates a SYN tries (nat_retries at most this): 28 unrolled tries exceed the
 * verifier's million instructions for tortie_uplink_out, 27 pass; 24 keeps a margin. */
#define NAT_MAX_RETRIES 24

/*
 * The i-th port candidate (an offset in the range of span ports; start is the SYN's random
 * draw): an independent random draw, so that one SYN's candidates are as likely to be free as
 * any port of the range. Consecutive ports are not independent: with the range full of
 * tombstones, each refuses about half the SYNs (nat_tw_ok; the closed flows' timestamps and
 * sequence numbers are random per connection), and a SYN that took a port after a run of
 * refusals leaves behind it ports that refuse SYNs like it — consecutive candidates all failed
 * about 9 times as often as independent ones (2^-16 at 16 candidates; the default is now 24). A range no longer than
 * NAT_MAX_RETRIES is walked in order, so that its last free port is always found.
 */
static __always_inline __u32 nat_candidate(__u32 start, __u32 i, __u32 span)
{
	return span <= NAT_MAX_RETRIES ? start + i : bpf_get_prandom_u32();
}

/*
 * tortie_nat4_v2: struct tortie_nat4_key -> struct tortie_nat4_value. Written by the uplink
 * program only (the agent deletes expired entries). Not LRU: when full, new flows are refused
 * (DROP_NAT_TABLE_FULL) and every live mapping keeps working; size from the agent. (v1 was an
 * LRU whose evictions let one workload's flood kill the others' idle flows.)
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_nat4_key);
	__type(value, struct tortie_nat4_value);
	__uint(max_entries, 131072);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_nat4_v2 SEC(".maps");

/* tortie_natq4_v1: per-workload mapping counts (shared/maps.h, lib/quota.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_quota4_key);
	__type(value, struct tortie_quota_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_natq4_v1 SEC(".maps");

/*
 * The workloads' conntrack (lib/conntrack.h's tortie_ct4_v3), read only here: the judge of a
 * closed flow. The loader points this at the cali* programs' table (bpf_map__reuse_fd); loaded
 * without it, this is an empty private map and no mapping is released before the sweep.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tortie_ct4_key);
	__type(value, struct tortie_ct_value);
	__uint(max_entries, 1);
} tortie_natct4 SEC(".maps");

/*
 * Is the TCP flow over at both ends, by the workload's conntrack entry v (wl_is_a: the workload is
 * side a of its key)? Both FINs accepted there (state CLOSING; a FIN from outside passed the
 * sequence window check), the workload acknowledged exactly the outside's FIN (its stack took
 * it: it never acknowledges a FIN out of order), and the outside acknowledged exactly the
 * workload's FIN: in v already when the last ACK left the workload (out: conntrack saw it), or
 * this arriving pkt is that ACK (not yet seen by conntrack: its sequence number must be the
 * outside's FIN end and its acknowledgment the workload's, exactly — 64 bits a blind sender
 * cannot guess).
 */
static __always_inline bool nat_ct_closed(const struct tortie_ct_value *v, bool wl_is_a, const struct tortie_pkt *pkt,
					  bool out)
{
	const __u64 need = TORTIE_CTF_FIN_A | TORTIE_CTF_FIN_B | TORTIE_CTF_SEQ_A | TORTIE_CTF_SEQ_B |
			   TORTIE_CTF_ACK_A | TORTIE_CTF_ACK_B;
	__u32 w_end = wl_is_a ? v->seq_end[0] : v->seq_end[1];
	__u32 r_end = wl_is_a ? v->seq_end[1] : v->seq_end[0];
	__u32 w_ack = wl_is_a ? v->ack_max[0] : v->ack_max[1];
	__u32 r_ack = wl_is_a ? v->ack_max[1] : v->ack_max[0];

	if (v->state != TORTIE_CT_CLOSING || (v->flags & need) != need || w_ack != r_end)
		return false;
	if (r_ack == w_end)
		return true;
	return !out && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_FIN | TCP_FLAG_RST)) == TCP_FLAG_ACK &&
	       pkt->tcp_ack == w_end && pkt->tcp_seq == r_end && pkt->tcp_end == r_end;
}

/* nat_tcp_ts's answer: a timestamp value, with this bit set when the segment carried one. */
#define NAT_TS_SEEN TCP_OPT_SEEN

/* The TCP timestamp option of the segment at l4off: TSval (ecr false) or TSecr (lib/tcp_opt.h). */
static __always_inline __u64 nat_tcp_ts(struct __sk_buff *skb, __u32 l4off, __u32 ecr)
{
	return tcp_opt_ts(skb, l4off, ecr);
}

/*
 * May a new flow's SYN (pkt; syn_ts its timestamp, nat_tcp_ts) take the port of a closed flow's
 * tombstone (TIME-WAIT reuse)? Only if the outside's TIME-WAIT socket for the old flow will take
 * it as a new connection (RFC 6191, as Linux's tcp_timewait_state_process): with timestamps on
 * both, a SYN whose timestamp is newer than the old flow's last one (PAWS then also keeps the old
 * flow's late segments out of the new connection), or as new with a sequence number past
 * everything the old flow's workload sent; without, that sequence condition alone (as Linux
 * nf_nat's reuse of a TIME_WAIT tuple, nf_seq_has_advanced). Timestamp offsets and initial
 * sequence numbers differ from one connection to the next, so about half the tombstones qualify
 * for a given SYN. The tombstone keeps both values (tombstone_created, below); one past the
 * closed timeout is free, as any expired entry.
 */
static __always_inline bool nat_tw_ok_seg(__u8 proto, __u8 tcp_flags, __u32 tcp_seq, __u64 syn_ts, __u8 tflags, __u64 tomb)
{
	__u32 old_ts = (__u32)(tomb >> 32), ts = (__u32)syn_ts;

	if (proto != IPPROTO_TCP || (tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) != TCP_FLAG_SYN)
		return false;
	if ((syn_ts & NAT_TS_SEEN) && (tflags & TORTIE_NATF_TW_TS)) {
		if (seq_after(ts, old_ts))
			return true;
		if (ts != old_ts)
			return false; /* PAWS would reject it */
	}
	return seq_after(tcp_seq, (__u32)tomb);
}

static __always_inline bool nat_tw_ok(const struct tortie_pkt *pkt, __u64 syn_ts, __u8 tflags, __u64 tomb)
{
	return nat_tw_ok_seg(pkt->proto, pkt->tcp_flags, pkt->tcp_seq, syn_ts, tflags, tomb);
}

/* A tombstone's created_ns: the closed flow's last timestamp from the workload (high half; with
 * TORTIE_NATF_TW_TS) and the end of the workload's sequence space (its FIN's end, low half). */
static __always_inline __u64 tombstone_created(__u64 ts, __u32 wl_seq_end)
{
	return ((__u64)(__u32)ts << 32) | wl_seq_end;
}

/*
 * A later fragment at a NAT point (TORTIE_FRAG_PT_SNAT: its source, _RNAT: its destination):
 * translate its address like its first fragment's (lib/frag.h; no L4 header to fix). 1 done,
 * 0 no record (left as is), < 0 a drop reason.
 */
static __always_inline int nat_frag_later(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u8 point)
{
	struct tortie_frag_value *v;
	__u32 field = point == TORTIE_FRAG_PT_SNAT ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr);
	__be32 from = point == TORTIE_FRAG_PT_SNAT ? pkt->saddr : pkt->daddr, to;

	v = frag_lookup(pkt, point);
	if (!v)
		return 0;
	to = v->nat_addr;
	if (csum_l3_set32(skb, ETH_HLEN, field, from, to) < 0)
		return DROP_NAT_FRAG_ADDR;
	netstat_inc(TORTIE_NS_NAT_FRAG);
	return 1;
}

static __always_inline bool nat_closed(__u8 flags)
{
	/* The workload's own RST or a mid-stream pickup (FWD entry), or a REV entry left as the
	 * tombstone of a verified close (nat_tcp_release); other FINs and RSTs from outside are
	 * judged by the sweep. (TORTIE_NATF_PICKUP and _DONE are one bit, on FWD and REV entries.) */
	return flags & (TORTIE_NATF_RST | TORTIE_NATF_DONE | TORTIE_NATF_PICKUP);
}

/*
 * How long a tombstone (a REV entry with TORTIE_NATF_DONE) keeps judging the SYNs that want its
 * port: as long as the outside's TIME-WAIT socket of the closed flow may live (Linux's
 * TCP_TIMEWAIT_LEN, fixed at 60 s), and at least the closed timeout. Past the closed timeout
 * alone, a SYN the TIME-WAIT refuses (older timestamp: PAWS; or sequence number not past the old
 * flow's) got the port and waited for its SYN retransmission. Late segments are translated by a
 * tombstone for the closed timeout only (nat_live), as before.
 */
#define TORTIE_NAT_TIMEWAIT_NS (60ULL * 1000000000ULL)

static __always_inline bool nat_tomb_live(__u64 last_seen_ns, __u64 now)
{
	__u64 t = nat_timeout_tcp_closed_ns > TORTIE_NAT_TIMEWAIT_NS ? nat_timeout_tcp_closed_ns : TORTIE_NAT_TIMEWAIT_NS;

	return last_seen_ns >= now || now - last_seen_ns < t;
}

/* The idle timeout of an IPv4 mapping of `proto`; TCP's is `tcp` (the caller picks which). */
static __always_inline __u64 nat_proto_timeout(__u8 proto, __u64 tcp)
{
	switch (proto) {
	case IPPROTO_TCP:
		return tcp;
	case IPPROTO_UDP:
		return nat_timeout_udp_ns;
	case IPPROTO_ICMP:
		return nat_timeout_icmp_ns;
	default:
		return nat_timeout_other_ns;
	}
}

static __always_inline bool nat_live(const struct tortie_nat4_value *v, __u8 proto, __u64 now)
{
	__u64 seen = v->last_seen_ns;

	if (seen >= now)
		return true;
	return now - seen <= nat_proto_timeout(proto, nat_closed(v->flags) ? nat_timeout_tcp_closed_ns : nat_timeout_tcp_ns);
}

/*
 * A TCP mapping created by a segment other than a SYN: a flow picked up mid-stream, in practice a
 * closed flow's late segment after its release (its TIME-WAIT answering a retransmitted FIN) —
 * with a new port the outside does not know, so it gets the closed timeout (TORTIE_NATF_PICKUP)
 * rather than an hour of the workload's quota; a SYN on the tuple reopens it as any flow.
 */
static __always_inline bool nat_pickup(const struct tortie_pkt *pkt)
{
	return pkt->proto == IPPROTO_TCP && !(pkt->tcp_flags & TCP_FLAG_SYN);
}

/* Does the protocol carry a port (or echo id) we translate? */
static __always_inline bool nat_has_port(const struct tortie_pkt *pkt)
{
	return pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP ||
	       (pkt->proto == IPPROTO_ICMP && icmp_is_echo((__u8)(pkt->dport >> 8)));
}

/* An IPv4 header checksum after one 32-bit word of the header went from -> to (RFC 1624, eqn. 3;
 * as the kernel's csum_replace4): inline arithmetic, no helper call. Raw (network-order) words. */
static __always_inline __u16 nat_ip_csum_replace32(__u16 check, __be32 from, __be32 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~(from & 0xffff);
	sum += (__u16)~(from >> 16);
	sum += (to & 0xffff) + (to >> 16);
	return csum_fold32(sum);
}

/* The bytes from the IPv4 header's checksum to the destination port, contiguous when the header
 * has no options (nat_rewrite's single store). */
struct nat4_span {
	__be16 check;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
} __attribute__((packed));

/*
 * Rewrites one address (source or destination) and, if it changes, the matching port: at
 * l4off+0 (TCP/UDP source), l4off+2 (destination), l4off+4 (ICMP echo id, either way).
 *
 * TCP and UDP behind an option-less IPv4 header (every packet a Linux stack sends): the L4
 * checksum through bpf_l4_csum_replace as always (the pseudo-header address with
 * BPF_F_PSEUDO_HDR, the port without: the helper knows CHECKSUM_PARTIAL from a full checksum),
 * then the header checksum (computed here), the address and the port in ONE bpf_skb_store_bytes of
 * the bytes between them as read from the packet: three helper calls instead of five. Other
 * packets (IP options, ICMP, a header not in the linear data) take the field-by-field path.
 */
static __always_inline int nat_rewrite(struct __sk_buff *skb, __u32 l4off, __u8 proto, bool src,
				       __be32 from_ip, __be32 to_ip, __be16 from_port, __be16 to_port)
{
	__u32 field = src ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr);
	__u32 csum_off = 0, port_off = 0, mangled = 0;
	bool pseudo = false;

	switch (proto) {
	case IPPROTO_TCP:
		csum_off = l4off + 16;
		port_off = l4off + (src ? 0 : 2);
		pseudo = true;
		break;
	case IPPROTO_UDP:
		csum_off = l4off + 6;
		port_off = l4off + (src ? 0 : 2);
		pseudo = true;
		mangled = BPF_F_MARK_MANGLED_0;
		break;
	case IPPROTO_ICMP:
		csum_off = l4off + 2;
		port_off = l4off + 4;
		break;
	}
	if (pseudo && l4off == ETH_HLEN + sizeof(struct iphdr)) {
		const __u32 at = ETH_HLEN + offsetof(struct iphdr, check);
		void *data = ctx_data(skb), *end = ctx_data_end(skb);
		struct nat4_span h;

		if (data + at + sizeof(h) <= end) {
			__builtin_memcpy(&h, data + at, sizeof(h));
			if (from_ip != to_ip && csum_l4_pseudo32(skb, csum_off, from_ip, to_ip, mangled) < 0)
				return DROP_NAT_L4_CSUM;
			if (from_port != to_port &&
			    bpf_l4_csum_replace(skb, csum_off, from_port, to_port, mangled | sizeof(to_port)) < 0)
				return DROP_NAT_PORT;
			h.check = nat_ip_csum_replace32(h.check, from_ip, to_ip);
			if (src) {
				h.saddr = to_ip;
				h.sport = to_port;
			} else {
				h.daddr = to_ip;
				h.dport = to_port;
			}
			/* Source: up to the source port (12 bytes); destination: to its port (14). */
			if (bpf_skb_store_bytes(skb, at, &h, src ? sizeof(h) - 2 : sizeof(h), 0) < 0)
				return DROP_NAT_ADDR;
			return 0;
		}
	}
	if (csum_off && pseudo && from_ip != to_ip && csum_l4_pseudo32(skb, csum_off, from_ip, to_ip, mangled) < 0)
		return DROP_NAT_L4_CSUM;
	if (port_off && from_port != to_port && csum_l4_set16(skb, csum_off, port_off, from_port, to_port, mangled) < 0)
		return DROP_NAT_PORT;
	if (from_ip != to_ip && csum_l3_set32(skb, ETH_HLEN, field, from_ip, to_ip) < 0)
		return DROP_NAT_ADDR;
	return 0;
}

static __always_inline void nat_track_tcp(struct tortie_nat4_value *v, const struct tortie_pkt *pkt, bool out)
{
	__u8 f = pkt->tcp_flags, add = 0;

	if (pkt->proto != IPPROTO_TCP)
		return;
	/* A RST leaving (the workload's own) closes the mapping; one arriving may be blind (only the
	 * 4-tuple known): it is only noted, and the workload's conntrack decides (its sequence
	 * window check) — the sweep shortens the mapping once that conntrack entry is in RST state.
	 * Likewise a FIN arriving is only noted; FIN both ways shortens the mapping in the sweep once
	 * the conntrack entry shows both FINs accepted (CLOSING). */
	if (f & TCP_FLAG_RST)
		add = out ? TORTIE_NATF_RST : TORTIE_NATF_RST_IN;
	else if (f & TCP_FLAG_FIN)
		add = out ? TORTIE_NATF_FIN_OUT : TORTIE_NATF_FIN_IN_SEEN;
	/* Plain read-modify-write: a lost bit only delays the short closed-flow timeout. */
	if (add && !(v->flags & add))
		v->flags |= add;
}

/*
 * Does a socket of the node own (node_ip:lport <- raddr:rport)? Connected, listening (bound to
 * node_ip or the wildcard) and TIME-WAIT TCP sockets; connected and bound UDP sockets. Looked up
 * in the namespace of the uplink (the node's). ICMP echo ids have no lookup helper (see docs).
 */
/* The IPv4 half of struct bpf_sock_tuple only (12 bytes of stack, not 36: nat4_try_port's frame
 * counts towards the 512 bytes of its call chain). */
struct nat4_sock_tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

static __always_inline bool nat_host_sock_t(struct __sk_buff *skb, __u8 proto, struct nat4_sock_tuple *t)
{
	struct bpf_sock *sk;

	_Static_assert(sizeof(*t) == sizeof(((struct bpf_sock_tuple *)0)->ipv4), "IPv4 sock tuple");
	if (proto == IPPROTO_TCP)
		sk = bpf_skc_lookup_tcp(skb, (struct bpf_sock_tuple *)t, sizeof(*t), BPF_F_CURRENT_NETNS, 0);
	else if (proto == IPPROTO_UDP)
		sk = bpf_sk_lookup_udp(skb, (struct bpf_sock_tuple *)t, sizeof(*t), BPF_F_CURRENT_NETNS, 0);
	else
		return false;
	if (!sk)
		return false;
	bpf_sk_release(sk);
	return true;
}

static __always_inline bool nat_host_sock(struct __sk_buff *skb, __u8 proto, __be32 raddr, __be16 rport,
					  __be32 node_ip, __be16 lport)
{
	struct nat4_sock_tuple t = { .saddr = raddr, .daddr = node_ip, .sport = rport, .dport = lport };

	return nat_host_sock_t(skb, proto, &t);
}

/*
 * One port candidate of a flow's new mapping (nat4_try_port): the REV entry to create (rk, with
 * rk.dport the candidate; rv) and what judging a collision needs of the packet.
 */
struct nat4_cand {
	struct tortie_nat4_key rk;    /* rk.daddr: the node address; rk.dport: the candidate */
	struct tortie_nat4_value rv;  /* rv.last_seen_ns: now */
	__u64 syn_ts; /* the SYN's timestamp (nat_tcp_ts), for a tombstone's port */
	__u32 tcp_seq;
	__u8 tcp_flags;
	__u8 pad[3];
};

/* Is the REV entry cur the candidate's flow's own (c->rv)? */
static __always_inline bool nat_cand_ours(const struct nat4_cand *c, const struct tortie_nat4_value *cur)
{
	return cur->addr == c->rv.addr && cur->port == c->rv.port;
}

/* Does another flow's REV entry cur refuse the flow of c by itself: a live mapping, or a live
 * verified close's tombstone whose TIME-WAIT would refuse this SYN (its port goes to a new SYN that
 * TIME-WAIT would accept)? An expired mapping's FWD entry is asked after (nat_cand_fwd_live). */
static __always_inline bool nat_cand_refused(const struct nat4_cand *c, const struct tortie_nat4_value *cur)
{
	__u8 proto = c->rk.proto;
	__u64 now = c->rv.last_seen_ns;

	return (cur->flags & TORTIE_NATF_DONE) ? nat_tomb_live(cur->last_seen_ns, now) &&
							 !nat_tw_ok_seg(proto, c->tcp_flags, c->tcp_seq, c->syn_ts, cur->flags, cur->created_ns)
						: nat_live(cur, proto, now);
}

/* REV entries are refreshed by replies only: a one-way flow keeps its port while its FWD entry
 * (refreshed by every outgoing packet) is live and still maps to this port. A tombstone's FWD
 * entry was deleted by the release that made it one (nat_tcp_release marks the REV entry, then
 * deletes the FWD entry; a later FWD entry of that tuple took a port of its own, or revived the
 * tombstone): none to ask. */
static __always_inline bool nat_cand_fwd_live(const struct nat4_cand *c, const struct tortie_nat4_value *cur,
					      struct tortie_nat4_key *fk)
{
	const struct tortie_nat4_key *rk = &c->rk;
	struct tortie_nat4_value *fv;
	__u8 proto = rk->proto;

	if (cur->flags & TORTIE_NATF_DONE)
		return false;
	__builtin_memset(fk, 0, sizeof(*fk));
	fk->saddr = cur->addr;
	fk->daddr = rk->saddr;
	fk->sport = cur->port;
	fk->dport = proto == IPPROTO_ICMP ? cur->port : rk->sport;
	fk->proto = proto;
	fk->dir = TORTIE_NAT_FWD;
	fv = bpf_map_lookup_elem(&tortie_nat4_v2, fk);
	return fv && fv->port == rk->dport && nat_live(fv, proto, c->rv.last_seen_ns);
}

/*
 * Claims the REV tuple c->rk (rk.dport = candidate port) for the flow: creates the REV entry, or
 * reclaims it if its flow is over. 1 claimed, 0 taken, < 0 the table is full. The table is asked
 * first: a candidate whose entry refuses the flow (a live mapping, a tombstone whose TIME-WAIT
 * would refuse the SYN: under churn about half the candidates) is turned down without a socket
 * lookup; every candidate the flow may have is then checked against the node's sockets
 * (nat_host_sock) before it is claimed — created, reclaimed, or our own entry taken again.
 */
static __always_inline int nat_claim(struct __sk_buff *skb, struct nat4_cand *c)
{
	struct tortie_nat4_value *cur;
	/* One stack slot for the socket tuple and the FWD key asked after it (the call chain's 512
	 * bytes). */
	union {
		struct tortie_nat4_key fk;
		struct nat4_sock_tuple t;
	} u;
	long err;

	/* Looked up first: under churn most candidates hold a tombstone, and a lookup costs less than
	 * a create that fails on it (the bucket lock). A free port is still claimed only by the create. */
	cur = bpf_map_lookup_elem(&tortie_nat4_v2, &c->rk);
	if (cur && !nat_cand_ours(c, cur) && nat_cand_refused(c, cur))
		return 0;
	/* The table may let the flow have the port; a node socket may still own the tuple. */
	u.t.saddr = c->rk.saddr;
	u.t.daddr = c->rk.daddr;
	u.t.sport = c->rk.sport;
	u.t.dport = c->rk.dport;
	if (nat_host_sock_t(skb, c->rk.proto, &u.t)) {
		netstat_inc(TORTIE_NS_NAT_HOST_SOCK);
		return 0;
	}
	if (!cur) {
		err = bpf_map_update_elem(&tortie_nat4_v2, &c->rk, &c->rv, BPF_NOEXIST);
		if (err == 0)
			return 1;
		return err == -E2BIG ? -1 : 0; /* another CPU claimed it meanwhile: taken */
	}
	/* Ours already: we lost a race to ourselves, or our own tombstone (the flow reopened its
	 * tuple): live again. */
	if (nat_cand_ours(c, cur)) {
		if (cur->flags & TORTIE_NATF_DONE) {
			cur->flags = 0;
			cur->created_ns = 0; /* no reply yet (NAT_FWD_SEEN_NS) */
		}
		return 1;
	}
	if (nat_cand_fwd_live(c, cur, &u.fk))
		return 0;
	bpf_map_delete_elem(&tortie_nat4_v2, &c->rk);
	return bpf_map_update_elem(&tortie_nat4_v2, &c->rk, &c->rv, BPF_NOEXIST) == 0;
}

/*
 * One candidate: claimed if the table lets the flow have it and no node socket owns it
 * (nat_claim). 1 claimed, 0 not, < 0 table full. A global function: the verifier checks it once,
 * not once per unrolled candidate of nat_snat (which kept tortie_uplink_out near the
 * million-instruction limit).
 */
__noinline int nat4_try_port(struct __sk_buff *skb, struct nat4_cand *c)
{
	if (!skb || !c)
		return 0;
	return nat_claim(skb, c);
}

/*
 * May this packet complete a verified close (nat_ct_closed), so that the workload's conntrack
 * entry is worth looking up? A TCP segment with ACK once both FINs went by (the mapping's flags),
 * and not the workload's own FIN leaving: the outside has not acknowledged that FIN yet
 * (conntrack saw it first). Shared with NAT66 (lib/nat6.h nat6_tcp_release).
 */
static __always_inline bool nat_release_may(const struct tortie_pkt *pkt, __u8 flags, bool out)
{
	const __u8 fins = TORTIE_NATF_FIN_OUT | TORTIE_NATF_FIN_IN_SEEN;

	if (pkt->proto != IPPROTO_TCP || (flags & fins) != fins || !(pkt->tcp_flags & TCP_FLAG_ACK))
		return false;
	return !(out && (pkt->tcp_flags & TCP_FLAG_FIN));
}

/*
 * A TCP mapping whose close is verified (nat_ct_closed, by the workload's conntrack) is released
 * at once: its FWD entry is deleted, and the CPU whose delete succeeds credits the workload's
 * quota (MOVED, an atomic add: a kind only the programs write), so the count stays exact with the
 * sweep crediting RELEASED only for the deletes that succeed for it. The REV entry stays as the
 * flow's tombstone (TORTIE_NATF_DONE; nat_tomb_live): late segments of the closed flow still
 * reach the workload, and its port goes to the next flow only under nat_tw_ok. Called last
 * for the packet (fv may be gone after it); only once both FINs were seen here, and only with
 * an ACK, so other packets pay one test of the flags.
 */
static __always_inline void nat_tcp_release(struct __sk_buff *skb, __u32 l4off, const struct tortie_pkt *pkt,
					    const struct tortie_nat4_key *fk, const struct tortie_nat4_value *fv,
					    const struct tortie_nat4_key *rk, struct tortie_nat4_value *rv, bool out,
					    __u64 now)
{
	struct tortie_ct_value *cv;
	struct tortie_ct4_key ck;
	__u64 ts;
	bool a;

	if (!nat_release_may(pkt, fv->flags, out))
		return;
	ct4_key_make(&ck, fk->saddr, fk->daddr, bpf_ntohs(fk->sport), bpf_ntohs(fk->dport), IPPROTO_TCP, &a);
	cv = bpf_map_lookup_elem(&tortie_natct4, &ck);
	if (!cv || !nat_ct_closed(cv, a, pkt, out))
		return;
	if (!rv) /* the caller's REV entry, when it looked it up for this packet */
		rv = bpf_map_lookup_elem(&tortie_nat4_v2, rk);
	if (rv && rv->addr == fk->saddr && rv->port == fk->sport) {
		/* For nat_tw_ok: the workload's last timestamp (this segment's TSval leaving, or the
		 * TSecr of the outside's last ACK: what its TIME-WAIT keeps) and sequence end. */
		ts = nat_tcp_ts(skb, l4off, !out);
		rv->created_ns = tombstone_created(ts, a ? cv->seq_end[0] : cv->seq_end[1]);
		rv->flags = TORTIE_NATF_DONE | ((ts & NAT_TS_SEEN) ? TORTIE_NATF_TW_TS : 0);
		rv->last_seen_ns = now;
	}
	if (bpf_map_delete_elem(&tortie_nat4_v2, fk) == 0)
		quota_add(&tortie_natq4_v1, fk->saddr, TORTIE_QUOTA_MOVED);
}

/*
 * One lookup per packet leaving: a FWD entry's created_ns is the last time this program saw its
 * REV entry hold this flow — the claim that created it, a reply translated through that REV entry
 * (nat_rev), or a check of it here. Within NAT_REV_SEEN_NS of that, the REV entry is taken as
 * still the flow's without looking it up; else it is looked up (and claimed again if gone) as
 * before. Why that holds (docs/security.md "NAT outgoing and the node's own traffic"):
 *  - a node socket taking the tuple back (nat_host_egress, or a SYN for a node listener in
 *    nat_rev) deletes the FWD entry with the REV entry (nat_fwd_drop): the flow's next packet
 *    gets a new mapping, as the REV check gave it;
 *  - another flow reclaims a REV entry only when it is not live (last reply older than the
 *    protocol's timeout, which this window never exceeds: nat_rev_seen) while its FWD entry is
 *    not live or maps elsewhere, or when it is a verified close's tombstone (its FWD entry deleted
 *    by that release);
 *  - the agent's sweep deletes a REV entry only with the FWD entry it deleted, or when both were
 *    idle past their timeouts, re-reading it first (src/dataplane/bpf/nat.ts); if a flow's REV
 *    entry still went missing, its packets keep the port for at most this window after the last
 *    reply or check, then the check claims it again.
 * The sweep compares created_ns to tell a FWD entry from a newer one of the same key: an entry
 * whose REV entry was seen since the sweep's dump is not expired either.
 */
#define NAT_REV_SEEN_NS (1000000000ULL)

/* Was the FWD entry's REV entry seen to be this flow's within NAT_REV_SEEN_NS (and within the
 * protocol's REV timeout, so that no other flow may have reclaimed it since)? */
static __always_inline bool nat_recent(__u64 seen, __u8 proto, __u64 now, __u64 limit)
{
	__u64 t;

	if (seen >= now)
		return true;
	t = nat_proto_timeout(proto, nat_timeout_tcp_closed_ns < nat_timeout_tcp_ns ? nat_timeout_tcp_closed_ns : nat_timeout_tcp_ns);
	if (t > limit)
		t = limit;
	return now - seen < t;
}

static __always_inline bool nat_rev_seen(const struct tortie_nat4_value *fv, __u8 proto, __u64 now)
{
	/* Never later than the entry's last packet (each stamp refreshes that too): so an entry idle
	 * past its own timeout (nat_live) always has its REV entry looked up. */
	return nat_recent(fv->created_ns < fv->last_seen_ns ? fv->created_ns : fv->last_seen_ns, proto, now, NAT_REV_SEEN_NS);
}

/*
 * One lookup per reply, mostly: a REV entry's created_ns (not a tombstone's) is the last time a
 * reply through it found the flow's FWD entry live and mapping to it, and refreshed it (last
 * packet, NAT_REV_SEEN_NS stamp). Within NAT_FWD_SEEN_NS of that, a reply without SYN, FIN or RST
 * of a flow whose close has not begun (no FIN from outside yet: TORTIE_NATF_FIN_IN_SEEN on the
 * REV entry) does not look up the FWD entry: it is live (refreshed then, and the window is
 * shorter than every timeout), and what a reply would write there can wait — its last packet
 * lags by at most the window, its close flags come with FIN and RST segments, and once the
 * outside's FIN went by every reply looks it up (the last ACK releases the mapping). Half of
 * NAT_REV_SEEN_NS, so that a flow with replies keeps its packets leaving at one lookup.
 */
#define NAT_FWD_SEEN_NS (NAT_REV_SEEN_NS / 2)

/*
 * A node socket took the tuple (raddr:rport -> node_ip:port) back from a mapping whose REV entry
 * named the workload waddr:wport: the flow's FWD entry goes too, if it still maps to that port,
 * and the workload's quota is credited (MOVED) by the CPU whose delete succeeded. The flow's next
 * packet gets a new mapping (nat_rev_seen).
 */
static __always_inline void nat_fwd_drop(__be32 waddr, __be16 wport, __be32 raddr, __be16 rport, __u8 proto,
					 __be32 node_ip, __be16 port)
{
	struct tortie_nat4_key fk = {};
	struct tortie_nat4_value *fv;

	fk.saddr = waddr;
	fk.daddr = raddr;
	fk.sport = wport;
	fk.dport = rport;
	fk.proto = proto;
	fk.dir = TORTIE_NAT_FWD;
	fv = bpf_map_lookup_elem(&tortie_nat4_v2, &fk);
	if (fv && fv->addr == node_ip && fv->port == port && bpf_map_delete_elem(&tortie_nat4_v2, &fk) == 0)
		quota_add(&tortie_natq4_v1, waddr, TORTIE_QUOTA_MOVED);
}

/* The FWD key of the flow of a packet leaving (nat_snat's; its caller looks the entry up). */
static __always_inline void nat_fwd_key(struct tortie_nat4_key *fk, const struct tortie_pkt *pkt)
{
	bool ports = nat_has_port(pkt);

	fk->saddr = pkt->saddr;
	fk->daddr = pkt->daddr;
	fk->sport = ports ? bpf_htons(pkt->ct_sport) : 0;
	fk->dport = ports ? bpf_htons(pkt->ct_dport) : 0;
	fk->proto = pkt->proto;
	fk->dir = TORTIE_NAT_FWD;
}

/*
 * Is the packet's flow an established mapping: a live FWD entry fv (looked up by the caller,
 * maybe NULL) to node_ip, and the packet not a TCP SYN? Its packets are translated without the
 * destination checks (a pool, a node): the decision to translate a flow is taken at its first
 * packet, as Calico's iptables dataplane MASQUERADEs at conntrack's NEW state only — an
 * established flow stays translated after its destination joins a pool or becomes a node; a new
 * flow (no live mapping, or a SYN) is judged in full (docs/architecture.md, NAT outgoing).
 */
static __always_inline bool nat_fwd_established(const struct tortie_nat4_value *fv, const struct tortie_pkt *pkt,
						__be32 node_ip, __u64 now)
{
	if (!fv || fv->addr != node_ip)
		return false;
	if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		return false;
	return nat_live(fv, pkt->proto, now);
}

/*
 * SNAT a packet leaving through the uplink: source pkt->saddr:ct_sport -> node_ip:port. The
 * caller decided the packet needs it, with the flow's FWD key fkp (nat_fwd_key) and entry fv
 * (looked up, maybe NULL) at time now. Returns 0 or a DROP_* reason.
 */
static __always_inline int nat_snat(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
				    __be32 node_ip, const struct tortie_nat4_key *fkp, struct tortie_nat4_value *fv,
				    __u64 now)
{
	struct nat4_cand c = {};
	struct tortie_nat4_value *cur, *revp = NULL, nv = {};
	struct tortie_quota_value *created = NULL;
	bool ports = nat_has_port(pkt), replace = false;
	__be16 sport = bpf_htons(pkt->ct_sport), port = 0;
	__be32 stale_addr = 0;
	__be16 stale_port = 0;
	__u32 span, start, i, own = pkt->ct_sport;
	int got = 0;

	/* ICMP echo: the reply carries the translated id only; the remote side has no port. */
	c.rk.saddr = pkt->daddr;
	c.rk.daddr = node_ip;
	c.rk.sport = pkt->proto == IPPROTO_ICMP ? 0 : fkp->dport;
	c.rk.proto = pkt->proto;
	c.rk.dir = TORTIE_NAT_REV;
	c.rv.addr = pkt->saddr;
	c.rv.port = fkp->sport;
	c.rv.last_seen_ns = now;
	c.rv.created_ns = 0; /* no reply yet (NAT_FWD_SEEN_NS) */
	c.tcp_seq = pkt->tcp_seq;
	c.tcp_flags = pkt->tcp_flags;

	if (fv) {
		stale_addr = fv->addr;
		stale_port = fv->port;
	}
	/* A new flow's SYN: its timestamp, for taking a closed flow's port (nat_tw_ok). */
	if (!fv && pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		c.syn_ts = nat_tcp_ts(skb, l4off, false);
	if (fv && fv->addr == node_ip) {
		/* Existing mapping: its REV half must still be ours. After this mapping expired, another
		 * flow may have reclaimed the port (or the sweep deleted the REV half): claim again.
		 * Seen to be ours within NAT_REV_SEEN_NS: not looked up (nat_rev_seen). */
		c.rk.dport = fv->port;
		if (nat_rev_seen(fv, pkt->proto, now)) {
			port = fv->port;
		} else {
			cur = bpf_map_lookup_elem(&tortie_nat4_v2, &c.rk);
			if (cur ? (cur->addr == c.rv.addr && cur->port == c.rv.port) : nat4_try_port(skb, &c) > 0) {
				port = fv->port;
				fv->created_ns = now;
				revp = cur;
			} else {
				fv = NULL; /* someone else holds that port now: allocate afresh */
			}
		}
	} else {
		fv = NULL;
	}
	if (!fv) {
		replace = stale_addr != 0;
		if (!replace) {
			/* A new flow of this workload: within its quota? */
			created = quota_counter(&tortie_natq4_v1, pkt->saddr, TORTIE_QUOTA_CREATED);
			if (!created || quota_full(&tortie_natq4_v1, pkt->saddr, created, nat_quota))
				return DROP_NAT_QUOTA;
		}
		if (!ports) {
			c.rk.dport = 0;
			got = nat4_try_port(skb, &c);
		} else {
			span = nat_port_max >= nat_port_min ? nat_port_max - nat_port_min + 1 : 1;
			if (own >= nat_port_min && own <= nat_port_max) {
				c.rk.dport = sport;
				got = nat4_try_port(skb, &c);
			}
			start = bpf_get_prandom_u32();
			for (i = 0; i < NAT_MAX_RETRIES && got == 0; i++) {
				if (i >= nat_retries)
					break;
				netstat_inc(TORTIE_NS_SNAT_RETRY);
				c.rk.dport = bpf_htons((__u16)(nat_port_min + nat_candidate(start, i, span) % span));
				got = nat4_try_port(skb, &c);
			}
		}
		if (got < 0)
			return DROP_NAT_TABLE_FULL;
		if (got == 0) {
			netstat_inc(TORTIE_NS_SNAT_RETRY);
			return DROP_NAT_NO_PORT;
		}
		port = c.rk.dport;
		nv.addr = node_ip;
		nv.port = port;
		nv.last_seen_ns = now;
		nv.created_ns = now;
		nv.flags = nat_pickup(pkt) ? TORTIE_NATF_PICKUP : 0;
		nat_track_tcp(&nv, pkt, true); /* the entry is written whole: not looked up again */
		/* The unusable FWD entry seen above (other node address, or a port lost to another
		 * flow) is replaced in place (the workload's count does not change); otherwise the
		 * entry is created only if no other CPU created it meanwhile. */
		cur = replace ? bpf_map_lookup_elem(&tortie_nat4_v2, fkp) : NULL;
		if (cur && cur->addr == stale_addr && cur->port == stale_port &&
		    bpf_map_update_elem(&tortie_nat4_v2, fkp, &nv, BPF_EXIST) == 0) {
			netstat_inc(TORTIE_NS_SNAT_NEW);
		} else if (bpf_map_update_elem(&tortie_nat4_v2, fkp, &nv, BPF_NOEXIST) == 0) {
			if (!created)
				created = quota_counter(&tortie_natq4_v1, pkt->saddr, TORTIE_QUOTA_CREATED);
			if (created)
				__sync_fetch_and_add(&created->count, 1);
			netstat_inc(TORTIE_NS_SNAT_NEW);
		} else {
			/* Lost the race for this flow's first packets (take the winner's port), or the
			 * table is full: give back our claim (unless it is the winner's port). */
			cur = bpf_map_lookup_elem(&tortie_nat4_v2, fkp);
			if (!cur || cur->port != port)
				bpf_map_delete_elem(&tortie_nat4_v2, &c.rk);
			if (!cur)
				return DROP_NAT_TABLE_FULL;
			port = cur->port;
			fv = cur;
		}
	}
	if (fv) {
		/* A fresh SYN on a closed mapping reopens it (the workload reused its port). */
		if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
			fv->flags = 0;
		nat_track_tcp(fv, pkt, true);
		fv->last_seen_ns = now;
	}
	netstat_inc(TORTIE_NS_SNAT);
	frag_record(pkt, TORTIE_FRAG_PT_SNAT, node_ip);
	c.rk.dport = port;
	/* A mapping created by this packet has not seen both FINs: nothing to release. */
	if (fv)
		nat_tcp_release(skb, l4off, pkt, fkp, fv, &c.rk, revp, true, now);
	return nat_rewrite(skb, l4off, pkt->proto, true, pkt->saddr, node_ip, fkp->sport, port);
}

/*
 * The node's own packet leaving from node_ip with a source port in the NAT range: if a mapping
 * holds that tuple (a node socket bound into the range after the claim), the node takes it back
 * (the REV entry goes, and the flow's FWD entry with it: the workload's flow moves to another port
 * on its next packet, nat_rev_seen). Host packets
 * with ports outside the range cost one comparison.
 */
static __always_inline void nat_host_egress(const struct tortie_pkt *pkt)
{
	struct tortie_nat4_key rk = {};
	struct tortie_nat4_value *rv;
	__be32 waddr;
	__be16 wport;

	if ((pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP) || pkt->frag == TORTIE_FRAG_LATER ||
	    pkt->ct_sport < nat_port_min || pkt->ct_sport > nat_port_max)
		return;
	rk.saddr = pkt->daddr;
	rk.daddr = pkt->saddr;
	rk.sport = bpf_htons(pkt->ct_dport);
	rk.dport = bpf_htons(pkt->ct_sport);
	rk.proto = pkt->proto;
	rk.dir = TORTIE_NAT_REV;
	rv = bpf_map_lookup_elem(&tortie_nat4_v2, &rk);
	if (!rv)
		return;
	waddr = rv->addr;
	wport = rv->port;
	if (bpf_map_delete_elem(&tortie_nat4_v2, &rk) == 0)
		netstat_inc(TORTIE_NS_NAT_HOST_SOCK);
	nat_fwd_drop(waddr, wport, rk.saddr, rk.sport, rk.proto, rk.daddr, rk.dport);
}

/*
 * Reverse translation of a packet arriving on the uplink for node_ip: returns 1 if it was a
 * reply of a SNATed flow (now addressed to the workload), 0 if not ours, < 0 a drop reason.
 */
static __always_inline int nat_rev(struct __sk_buff *skb, const struct tortie_pkt *pkt, __u32 l4off,
				   __be32 node_ip)
{
	struct tortie_nat4_key rk = {}, fk = {};
	struct tortie_nat4_value *rv, *fv;
	__u64 now = bpf_ktime_get_ns();
	bool ports = nat_has_port(pkt);
	__be16 dport = bpf_htons(pkt->ct_dport);
	int ret;

	rk.saddr = pkt->saddr;
	rk.daddr = node_ip;
	rk.sport = ports && pkt->proto != IPPROTO_ICMP ? bpf_htons(pkt->ct_sport) : 0;
	rk.dport = ports ? dport : 0;
	rk.proto = pkt->proto;
	rk.dir = TORTIE_NAT_REV;
	rv = bpf_map_lookup_elem(&tortie_nat4_v2, &rk);
	if (!rv)
		return 0;
	/* A node socket bound into the range after the claim owns its traffic, not the mapping. A
	 * node TCP socket shows itself first by a SYN: leaving (nat_host_egress takes the tuple back)
	 * or arriving for a listener (looked up here); UDP has no such first packet: every datagram. */
	if ((pkt->proto == IPPROTO_UDP ||
	     (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)) &&
	    nat_host_sock(skb, pkt->proto, pkt->saddr, rk.sport, node_ip, rk.dport)) {
		netstat_inc(TORTIE_NS_NAT_HOST_SOCK);
		if (pkt->proto == IPPROTO_TCP) {
			__be32 waddr = rv->addr;
			__be16 wport = rv->port;

			bpf_map_delete_elem(&tortie_nat4_v2, &rk);
			nat_fwd_drop(waddr, wport, rk.saddr, rk.sport, rk.proto, node_ip, rk.dport);
		}
		return 0;
	}
	fk.saddr = rv->addr;
	fk.daddr = pkt->saddr;
	fk.sport = rv->port;
	fk.dport = pkt->proto == IPPROTO_ICMP ? rv->port : rk.sport;
	fk.proto = pkt->proto;
	fk.dir = TORTIE_NAT_FWD;
	if (!(rv->flags & (TORTIE_NATF_DONE | TORTIE_NATF_FIN_IN_SEEN)) &&
	    !(pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST))) &&
	    nat_recent(rv->created_ns < rv->last_seen_ns ? rv->created_ns : rv->last_seen_ns, pkt->proto, now, NAT_FWD_SEEN_NS)) {
		fv = NULL; /* live and refreshed within the window (NAT_FWD_SEEN_NS) */
	} else {
		fv = bpf_map_lookup_elem(&tortie_nat4_v2, &fk);
		if (fv) {
			if (!nat_live(fv, pkt->proto, now))
				return 0;
			nat_track_tcp(fv, pkt, false);
			fv->last_seen_ns = now;
			if (!(fv->flags & TORTIE_NATF_REPLY))
				fv->flags |= TORTIE_NATF_REPLY;
			/* This REV entry is the flow's (nat_rev_seen), when the FWD entry maps to it; and the
			 * FWD entry is refreshed (NAT_FWD_SEEN_NS). */
			if (fv->addr == node_ip && fv->port == rk.dport) {
				fv->created_ns = now;
				if (!(rv->flags & TORTIE_NATF_DONE))
					rv->created_ns = now;
			}
		}
		/* The close has begun: every later reply looks the FWD entry up (nat_tcp_release). */
		if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & TCP_FLAG_FIN) && !(rv->flags & (TORTIE_NATF_DONE | TORTIE_NATF_FIN_IN_SEEN)))
			rv->flags |= TORTIE_NATF_FIN_IN_SEEN;
	}
	rv->last_seen_ns = now;
	if (fv)
		nat_tcp_release(skb, l4off, pkt, &fk, fv, &rk, rv, false, now);
	netstat_inc(TORTIE_NS_RNAT);
	frag_record(pkt, TORTIE_FRAG_PT_RNAT, rv->addr);
	ret = nat_rewrite(skb, l4off, pkt->proto, false, node_ip, rv->addr, rk.dport, rv->port);
	return ret < 0 ? ret : 1;
}

#endif
