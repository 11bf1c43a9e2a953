/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Map key/value layouts: the only C that both the BPF programs and the agent see.
 * The agent's codecs (src/dataplane/bpf/codecs.ts) mirror these; a test compares every
 * codec with the BTF of the compiled objects, so a change here that is not made there fails CI.
 *
 * Rules for this file: fixed-width types only, explicit padding (no hole the compiler fills),
 * byte order in the type (__be* = network order), IPv4 now with IPv6-sized fields where an
 * address lives in a shared structure (endpoint addresses, events). Map names and their
 * semantics are documented next to the map definitions in bpf/lib/.
 */
#ifndef TORTIE_SHARED_MAPS_H
#define TORTIE_SHARED_MAPS_H

#include <linux/types.h>

#define TORTIE_AF_INET 4
#define TORTIE_AF_INET6 6

/* ---- endpoints: tortie_ep_v1 (key: __u32 ifindex of the host-side cali* veth) ---- */
#define TORTIE_EP_F_DISABLED (1u << 0) /* drop everything (agent is tearing the endpoint down) */

struct tortie_endpoint {
	__u32 id;       /* agent-assigned endpoint id, reported in events */
	__u32 flags;    /* TORTIE_EP_F_* */
	__u32 table[2]; /* active verdict table per enum tortie_dir (INGRESS, EGRESS); 0 = none */
	__u32 version;  /* bumped by the agent on every table flip; for debugging and tests */
	__u32 slot;     /* its forwarded-packet counters in tortie_epcnt_v1 (slot * 2 + dir); 0 = none:
			 * counted in tortie_cnt_v1 like everything else */
};

/* ---- forwarded packets per endpoint: tortie_epcnt_v1 (per-CPU array of struct tortie_cnt_value,
 * index slot * 2 + enum tortie_dir for slots 1 .. TORTIE_EPCNT_SLOTS - 1) ---- */
#define TORTIE_EPCNT_SLOTS 4096

/* ---- endpoint addresses: tortie_epip_v1 (LPM: anti-spoofing set, value __u32 reserved) ----
 * Fixed part = 64 bits (ifindex, family, pad); then 0..32 (IPv4) or 0..128 (IPv6) bits of
 * address, so an endpoint's ipNetworks may be wider than a host address. */
struct tortie_ep_addr_key {
	__u32 prefixlen;
	__u32 ifindex;
	__u8 family;    /* TORTIE_AF_INET or TORTIE_AF_INET6 */
	__u8 pad[3];
	__u8 addr[16];  /* network order; IPv4 in addr[0..3], rest zero */
};
#define TORTIE_EPADDR_FIXED_BITS 64

/* ---- local workloads by address: tortie_epdst_v1 (hash: host address -> where it lives) ----
 * One entry per host address (/32, /128) of a local workload whose MAC is known: the host-side
 * cali* ifindex, the endpoint id of its tortie_ep_v1 entry (the reader checks they still agree),
 * and the Ethernet header a packet forwarded to it carries (the workload's MAC, then the cali*'s). */
struct tortie_ep_dst_key {
	__u8 family;    /* TORTIE_AF_INET or TORTIE_AF_INET6 */
	__u8 pad[3];
	__u8 addr[16];  /* network order; IPv4 in addr[0..3], rest zero */
};

struct tortie_ep_dst {
	__u32 ifindex;      /* the host-side cali* */
	__u32 ep_id;        /* struct tortie_endpoint.id of that interface's entry when written */
	__u8 mac[6];        /* the workload's (destination MAC) */
	__u8 host_mac[6];   /* the cali*'s (source MAC) */
};

/* ---- address classes: tortie_cls4_v1 (LPM: remote IPv4 prefix -> global class, __u32) ---- */
struct tortie_cls4_key {
	__u32 prefixlen; /* 0..32 */
	__be32 addr;
};

struct tortie_cls6_key { /* reserved for tortie_cls6_v1 */
	__u32 prefixlen;
	__u8 addr[16];
};

/* ---- verdict tables ---- */
#define TORTIE_TBL_F_SPORT (1u << 0) /* table has source-port classes: consult tortie_spc_v1 */
#define TORTIE_TBL_F_PASS (1u << 1)  /* a host endpoint's doNotTrack/preDNAT table: cells whose rule
				      * is miss_rule mean "no policy decided, next stage" */

/* tortie_tbl_v1: key __u32 table id. A table is usable only once this entry exists. */
struct tortie_table {
	__u32 flags;     /* TORTIE_TBL_F_* */
	__u32 miss_rule; /* TORTIE_TBL_F_PASS: the rule id of the "next stage" cells; else 0 */
	__u8 hash[8];    /* the compiler's content hash of the table, so a restarted agent can map
			  * ids back to tables; not read by BPF */
};

/* tortie_proj_v1: (table, global class) -> __u32 table-local class; absent = local class 0 */
struct tortie_proj_key {
	__u32 table;
	__u32 gclass;
};

/* tortie_spc_v1 (LPM): (table, proto, source port prefix) -> __u32 source-port class; absent = 0.
 * proto may be TORTIE_PROTO_OTHER. Fixed part = 48 bits (table, proto); then 0..16 port bits. */
struct tortie_spc_key {
	__u32 prefixlen;
	__u32 table;
	__u16 proto;
	__be16 port;
};
#define TORTIE_SPC_FIXED_BITS 48

/* Protocol value used for the cells that cover every protocol the table does not list. */
#define TORTIE_PROTO_OTHER 256

/* tortie_pol_v1 (LPM): (table, local class, proto, sport class, dst port prefix) -> verdict.
 * port = destination port for TCP/UDP/SCTP, (type << 8 | code) for ICMP, 0 otherwise.
 * Fixed part = 96 bits; then 0..16 bits of the port (ranges are split into prefixes). */
struct tortie_pol_key {
	__u32 prefixlen;
	__u32 table;
	__u32 lclass;
	__u16 proto;     /* 0..255, or TORTIE_PROTO_OTHER */
	__u16 sclass;
	__be16 port;
	__u16 pad;
};
#define TORTIE_POL_FIXED_BITS 96

#define TORTIE_ACT_ALLOW 1
#define TORTIE_ACT_DENY 2
#define TORTIE_MAX_LOG_RULES 4

struct tortie_verdict {
	__u8 action;     /* TORTIE_ACT_* */
	__u8 nlog;       /* valid entries in log_rules (the agent caps at TORTIE_MAX_LOG_RULES) */
	__u16 flags;     /* reserved */
	__u32 rule;      /* rule id that decided */
	__u32 log_rules[TORTIE_MAX_LOG_RULES]; /* Log rules hit before the decision, in order */
};

/* ---- conntrack: tortie_ct4_v3 (v1 was an LRU; v2 had no TCP sequence state) ---- */
/* Normalised over both directions: (addr_a, port_a) <= (addr_b, port_b), comparing the
 * address then the port as host-order integers. For ICMP echo both ports hold the echo id and
 * pad[0] says which side sent the request (1: a, 2: b; lib/parse.h ct4_key_mark_echo), so the
 * peer's requests are another flow; for protocols without ports both are 0. */
struct tortie_ct4_key {
	__be32 addr_a;
	__be32 addr_b;
	__be16 port_a;
	__be16 port_b;
	__u8 proto;
	__u8 pad[3];
};

enum tortie_ct_state {
	TORTIE_CT_NONE = 0,
	TORTIE_CT_SYN_SENT = 1,   /* SYN from the initiator */
	TORTIE_CT_SYN_RECV = 2,   /* SYN-ACK from the responder */
	TORTIE_CT_ESTABLISHED = 3,
	TORTIE_CT_FIN_WAIT = 4,   /* FIN seen from one side */
	TORTIE_CT_CLOSING = 5,    /* FIN seen from both sides */
	TORTIE_CT_RST = 6,
	TORTIE_CT_UDP = 7,
	TORTIE_CT_ICMP = 8,
	TORTIE_CT_OTHER = 9,
};

#define TORTIE_CTF_A_IS_INIT (1u << 0) /* side a of the key opened the flow */
#define TORTIE_CTF_SRC_OK (1u << 1)    /* initiator's egress policy allowed it (its cali* tc ingress) */
#define TORTIE_CTF_DST_OK (1u << 2)    /* responder's ingress policy allowed it (its cali* tc egress) */
#define TORTIE_CTF_FIN_A (1u << 3)
#define TORTIE_CTF_FIN_B (1u << 4)
#define TORTIE_CTF_REPLY (1u << 5)     /* a packet was seen in the reply direction */
#define TORTIE_CTF_DST_LOCAL (1u << 6) /* the responder's policy point is on this node (it saw a
					* packet of the flow): replies to the initiator then need
					* DST_OK too, so a request the responder's ingress policy
					* denied never opens the reply path */
#define TORTIE_CTF_SEQ_A (1u << 7)     /* seq_end[0] holds what side a sent (TCP) */
#define TORTIE_CTF_SEQ_B (1u << 8)
#define TORTIE_CTF_ACK_A (1u << 9)     /* ack_max[0] holds the highest ACK side a sent (TCP) */
#define TORTIE_CTF_ACK_B (1u << 10)
#define TORTIE_CTF_SYN_SEEN (1u << 11) /* opened by a SYN: both sides' sequences are known from the
					* handshake, so an implausible segment is INVALID (TCP) */
#define TORTIE_CTF_IGN_ACK (1u << 12)  /* SYN_SENT: the responder sent a segment without SYN, passed
					* but not tracked (e.g. its old TIME-WAIT answering the SYN);
					* its ACK number is in the responder's ack_max slot, without
					* the responder's ACK_* bit, for the RST the initiator answers
					* it with (TCP, lib/ct_tcp.h) */

struct tortie_ct_value {
	__u64 last_seen_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) of the last packet */
	__u64 created_ns;
	__u64 flags;        /* TORTIE_CTF_*, set with atomic or (64-bit: BPF atomics need it) */
	__u8 state;         /* enum tortie_ct_state */
	__u8 wscale;        /* TCP: the window scale shift + 1 each side's SYN announced, side a in the
			     * low 4 bits, side b in the high 4 (0: its SYN had no option / was not seen) */
	__u8 win_log[2];    /* TCP, [0] side a, [1] side b: ceil(log2(the largest window the side
			     * advertised, scaled)), at least 1; 0: none seen (lib/ct_tcp.h) */
	__u32 rule;         /* rule id that first allowed the flow */
	/* TCP, host order, [0] side a, [1] side b (valid with TORTIE_CTF_SEQ_* / ACK_*): the
	 * highest sequence end (seq + payload + SYN + FIN) and the highest ACK each side sent.
	 * A RST is accepted only inside [peer's ack_max, sender's seq_end + 65535]; a segment moves
	 * its sender's maxima only when plausible (lib/ct_tcp.h ct_tcp_plausible). */
	__u32 seq_end[2];
	__u32 ack_max[2];
};

/* ---- IPv4 fragments: tortie_frag4_v2 (lib/frag.h), the first fragments seen at each point ----
 * Later fragments carry no L4 header: each point that handles a datagram's first fragment
 * records it under the (src, dst, IP id, proto) its later fragments will carry *at that point*
 * (before any rewrite of the point), so they follow their first fragment. Points: */
enum tortie_frag_point {
	TORTIE_FRAG_PT_INGRESS = 0,  /* = TORTIE_DIR_INGRESS: cali* tc egress passed it (ingress policy) */
	TORTIE_FRAG_PT_EGRESS = 1,   /* = TORTIE_DIR_EGRESS: cali* tc ingress passed it (egress policy) */
	TORTIE_FRAG_PT_SNAT = 2,     /* uplink tc egress source-translated it (value: nat_addr = new source) */
	TORTIE_FRAG_PT_RNAT = 3,     /* uplink tc ingress reverse-translated it (nat_addr = new destination) */
};

struct tortie_frag4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 point;      /* enum tortie_frag_point: no point's record vouches for another's */
};

struct tortie_frag_value {
	__be16 sport;    /* policy ports of the first fragment (ICMP: 0, type << 8 | code) */
	__be16 dport;
	__be16 ct_sport; /* its conntrack ports */
	__be16 ct_dport;
	__be32 nat_addr; /* NAT points: the address written into the first fragment; else 0 */
	__u32 pad;
};

/* ---- XDP prefilter: tortie_pf4_v1 (LPM: (side, IPv4 prefix) -> struct tortie_pf_value) ---- */
#define TORTIE_PF_SRC 0
#define TORTIE_PF_DST 1
#define TORTIE_PF_FIXED_BITS 32

struct tortie_pf4_key {
	__u32 prefixlen; /* 32 (side + pad) + 0..32 */
	__u8 side;       /* TORTIE_PF_SRC / TORTIE_PF_DST: which address the prefix matches */
	__u8 pad[3];
	__be32 addr;
};

#define TORTIE_PF_KIND_DENYLIST 1
#define TORTIE_PF_KIND_DNT 2

struct tortie_pf_value {
	__u32 kind;  /* TORTIE_PF_KIND_*: selects DROP_PREFILTER or DROP_DNT_DENY */
	__u32 rule;  /* rule id (0 for a plain deny-list entry) */
};

/* ---- counters: tortie_cnt_v1 (per-CPU) ---- */
struct tortie_cnt_key {
	__u32 ifindex;
	__u8 dir;        /* enum tortie_dir */
	__u8 pad;
	__s16 reason;    /* enum tortie_drop_reason; 0 = forwarded */
};

struct tortie_cnt_value {
	__u64 packets;
	__u64 bytes;
};

/* ---- event suppression: tortie_evsup_v1 (LRU: one report per denied flow and interval) ---- */
struct tortie_evsup_key {
	struct tortie_ct4_key flow; /* normalised, as conntrack's */
	__u32 ifindex;
	__u8 dir;
	__u8 pad[3];
};

/* ---- event budget: tortie_evbud_v1 (per-CPU LRU, ifindex -> this) ---- */
struct tortie_evbud {
	__u64 tokens;     /* credit in ns (lib/drop.h ev_budget) */
	__u64 last_ns;    /* last refill; 0 = full bucket */
	__u64 emitted;    /* events this endpoint put in the ring */
	__u64 suppressed; /* events not emitted: over budget (the aggregate for floods) */
	__u64 lost;       /* events the ring had no room for */
};

/* ---- events: tortie_evt_v1 (ring buffer) ---- */
#define TORTIE_EV_DENY 1 /* a new flow denied by policy (rule = deciding rule) */
#define TORTIE_EV_LOG 2  /* a Log rule hit on a new flow (rule = the Log rule) */
#define TORTIE_EV_PREFILTER 3

struct tortie_event {
	__u64 ts_ns;
	__u32 kind;      /* TORTIE_EV_* */
	__u32 ifindex;
	__u32 ep_id;
	__u32 rule;
	__s32 reason;
	__u8 dir;        /* enum tortie_dir */
	__u8 family;
	__u8 proto;
	__u8 pad;
	__u16 sport;     /* host order */
	__u16 dport;     /* host order; ICMP: type << 8 | code */
	__u8 saddr[16];  /* network order */
	__u8 daddr[16];
	__u32 pad2;
};

/* ---- networking: routes, pools, nodes, node config, NAT, counters ----
 * Written by the route manager (src/dataplane/routes.ts), read by tortie_wep (encap fast path)
 * and tortie_uplink (decap, SNAT, reverse SNAT, encap of kernel-routed traffic). */

/* tortie_rt4_v1 (LPM): remote workload prefix -> struct tortie_route */
struct tortie_rt4_key {
	__u32 prefixlen; /* 0..32 */
	__be32 addr;
};

#define TORTIE_RT_F_WORKLOAD (1u << 0) /* a workload on another node */
#define TORTIE_RT_F_ENCAP (1u << 1)    /* reach it through IPIP to next_hop */

struct tortie_route {
	__be32 next_hop; /* the node's underlay address (outer destination with ENCAP) */
	__u32 flags;     /* TORTIE_RT_F_* */
};

/* tortie_pool4_v1 (LPM): IP pool prefix -> struct tortie_pool (every pool, disabled ones too) */
#define TORTIE_POOL_F_NAT_OUT (1u << 0)  /* natOutgoing: SNAT traffic leaving every pool */
#define TORTIE_POOL_F_DISABLED (1u << 1)

struct tortie_pool {
	__u32 flags;     /* TORTIE_POOL_F_* */
	__u32 pad;
};

/* tortie_node4_v1 (hash): __be32 node underlay address -> struct tortie_node_info */
#define TORTIE_NODE_F_SAME_SUBNET (1u << 0) /* in this node's subnet (informational) */
#define TORTIE_NODE_F_SELF (1u << 1)        /* this node */

struct tortie_node_info {
	__u32 flags;     /* TORTIE_NODE_F_* */
	__u32 pad;
};

/* tortie_netcfg_v1 (array, one entry at index 0): this node's networking parameters.
 * node_ip 0 = not configured yet: no encapsulation, no NAT, IPIP is not decapsulated. */
struct tortie_netcfg {
	__be32 node_ip;         /* outer source of IPIP; SNAT address unless snat_ip is set */
	__u32 uplink_ifindex;   /* where encapsulated packets leave (fib lookup input) */
	__u32 ipip_mtu;         /* Felix's IPIP MTU: bigger inner packets are left to the kernel route; 0 = the uplink's less 20 */
	__be32 snat_ip;         /* Felix's natOutgoingAddress; 0 = node_ip */
};

/* tortie_nat4_v2 (hash, not LRU: a live mapping is never evicted): one entry per direction of a
 * SNATed flow.
 *   dir FWD: (workload addr, dst, workload port, dst port, proto) -> {node addr, NAT port}
 *   dir REV: (dst, node addr, dst port, NAT port, proto)          -> {workload addr, port}
 * ICMP echo: both ports hold the echo id. Protocols without ports: ports 0. */
#define TORTIE_NAT_FWD 0
#define TORTIE_NAT_REV 1

struct tortie_nat4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;        /* TORTIE_NAT_FWD / TORTIE_NAT_REV */
	__u8 pad[2];
};

#define TORTIE_NATF_FIN_OUT (1u << 0) /* FIN seen leaving (workload side) */
/* FIN seen arriving: set by older programs only (it counted towards "FIN both ways" by itself);
 * read by the sweep as TORTIE_NATF_FIN_IN_SEEN. */
#define TORTIE_NATF_FIN_IN (1u << 1)
#define TORTIE_NATF_RST (1u << 2)
#define TORTIE_NATF_REPLY (1u << 3)   /* a reply was reverse-translated */
/* A RST arrived from outside: not a close by itself (it may be blind); the agent's sweep applies
 * the closed timeout only when the workload's conntrack accepted a RST (state RST). */
#define TORTIE_NATF_RST_IN (1u << 4)
/* (Also on an IPv4 REV entry: a FIN went by there, so every later reply looks the FWD entry up.)
 * A FIN arrived from outside: noted only (it may be blind); with TORTIE_NATF_FIN_OUT the agent's
 * sweep applies the closed timeout only when the workload's conntrack accepted both FINs
 * (state CLOSING: the outside FIN passed its sequence window check). */
#define TORTIE_NATF_FIN_IN_SEEN (1u << 5)
/* On a REV entry only: the tombstone of a flow whose close the program verified against the
 * workload's conntrack (lib/nat.h nat_tcp_release): its FWD entry is gone, late segments are
 * still translated back, the closed timeout applies, and a new SYN may take the port (TIME-WAIT
 * reuse, nat_tw_reusable). */
#define TORTIE_NATF_DONE (1u << 6)
/* On a FWD entry (the same bit): created by a TCP segment other than a SYN (lib/nat.h nat_pickup):
 * the closed timeout applies until a SYN reopens the tuple. */
#define TORTIE_NATF_PICKUP (1u << 6)
/* With TORTIE_NATF_DONE: the tombstone's created_ns holds the closed flow's last TCP timestamp from
 * the workload (high 32 bits) besides its sequence end (low 32 bits; lib/nat.h tombstone_created). */
#define TORTIE_NATF_TW_TS (1u << 7)

struct tortie_nat4_value {
	__u64 last_seen_ns; /* bpf_ktime_get_ns of the last packet (either direction) */
	__u64 created_ns;   /* REV with TORTIE_NATF_DONE: the closed flow's timestamp and sequence end;
			     * other REV: when a reply last found the FWD entry live and refreshed it
			     * (0 until then: lib/nat.h NAT_FWD_SEEN_NS);
			     * FWD: when the program last saw its REV entry hold the flow (its claim,
			     * a reply, a check: lib/nat.h nat_rev_seen); the sweep's identity */
	__be32 addr;        /* FWD: address to write as source; REV: as destination */
	__be16 port;        /* FWD: source port / echo id to write; REV: destination port / id */
	__u8 flags;         /* TORTIE_NATF_* (on the FWD entry) */
	__u8 pad;
};

/* Per-workload counts of state entries, for the quotas (lib/quota.h): tortie_natq4_v1 (NAT
 * mappings, FWD entries) and tortie_ctq4_v1 (conntrack entries). Per workload address, counters
 * with a single kind of writer each, so no read-modify-write crosses user space and the kernel:
 *   CREATED  added to atomically by the programs for every entry they create;
 *   RELEASED written by the agent's sweep only (NAT: + every FWD entry it deleted; conntrack: set
 *            so that the count matches the entries the sweep saw, correcting any race);
 *   MOVED    added to atomically by the programs for entries they remove themselves: conntrack,
 *            an entry of this workload replaced by one of another; NAT, a mapping released at
 *            its verified close or taken back by a node socket (counted by the CPU whose
 *            delete succeeded).
 * Live entries of the workload = CREATED - RELEASED - MOVED. */
#define TORTIE_QUOTA_CREATED 0
#define TORTIE_QUOTA_RELEASED 1
#define TORTIE_QUOTA_MOVED 2

struct tortie_quota4_key {
	__be32 addr;     /* workload address */
	__u32 kind;      /* TORTIE_QUOTA_* */
};

struct tortie_quota_value {
	__u64 count;
};

/* tortie_netstat_v1 (per-CPU array of __u64 packet counts), index enum tortie_netstat */
enum tortie_netstat {
	TORTIE_NS_ENCAP_FAST = 0,     /* encapsulated in tortie_from_wep and redirected */
	TORTIE_NS_ENCAP_UPLINK = 1,   /* encapsulated on the uplink's egress (kernel-routed) */
	TORTIE_NS_ENCAP_FALLBACK = 2, /* fast path declined (MTU, TTL, fib): left to the kernel */
	TORTIE_NS_DECAP = 3,          /* IPIP from a known node decapsulated */
	TORTIE_NS_SNAT = 4,           /* packets source-translated */
	TORTIE_NS_SNAT_NEW = 5,       /* new SNAT mappings created */
	TORTIE_NS_SNAT_RETRY = 6,     /* port candidates that collided */
	TORTIE_NS_RNAT = 7,           /* replies reverse-translated */
	TORTIE_NS_NAT_FRAG = 8,       /* later fragments translated like their first fragment */
	TORTIE_NS_DECAP_FAST = 9,     /* decapsulated and redirected straight to the workload's cali* */
	TORTIE_NS_NAT_HOST_SOCK = 10, /* SNAT candidate port skipped, or a reply left alone: a node socket owns the tuple */
	TORTIE_NS_MAX = 11,
};

/* ---- host endpoints: tortie_hep_v1 (key: __u32 ifindex of a host interface; 0 = the `*` one) ----
 * One table id per stage (0 = the stage has no policy: forward allows, the others go on); a slot
 * whose bit (1 << slot) is set in `flags` holds a local-address dispatch id instead
 * (tortie_hlt4_v1, at the end of this file). */
enum tortie_hep_slot {
	TORTIE_HEP_IN = 0,        /* normal policy, traffic to the host (then profiles, default deny) */
	TORTIE_HEP_OUT = 1,       /* normal policy, traffic from the host */
	TORTIE_HEP_FWD_IN = 2,    /* applyOnForward policy, forwarded traffic arriving here */
	TORTIE_HEP_FWD_OUT = 3,   /* applyOnForward policy, forwarded traffic leaving here */
	TORTIE_HEP_PREDNAT = 4,   /* preDNAT policy (ingress) */
	TORTIE_HEP_DNT_IN = 5,    /* doNotTrack policy, arriving */
	TORTIE_HEP_DNT_OUT = 6,   /* doNotTrack policy, leaving */
	TORTIE_HEP_SLOTS = 8,     /* slot 7 reserved */
};

struct tortie_hostep {
	__u32 id;                        /* agent-assigned endpoint id, reported in events */
	__u32 flags;                     /* bit (1 << slot): table[slot] is a tortie_hlt4_v1 dispatch id */
	__u32 table[TORTIE_HEP_SLOTS];   /* enum tortie_hep_slot -> verdict table id */
	__u32 version;                   /* bumped by the agent on every update */
	__u32 pad;
};

/* ---- failsafe ports: tortie_fs4_v1 (LPM: (dir, proto, port, remote prefix) -> __u32 reserved) ----
 * Felix's failsafeInboundHostPorts (dir IN: destination port, remote = source) and
 * failsafeOutboundHostPorts (dir OUT: destination port, remote = destination). An entry
 * without `net` has prefixlen TORTIE_FS_FIXED_BITS (any remote). */
#define TORTIE_FS_IN 0
#define TORTIE_FS_OUT 1
#define TORTIE_FS_FIXED_BITS 32

struct tortie_fs4_key {
	__u32 prefixlen;
	__u8 dir;        /* TORTIE_FS_IN / TORTIE_FS_OUT */
	__u8 proto;      /* 6, 17 or 132 */
	__be16 port;
	__be32 addr;     /* remote address (prefix) */
};

/* ---- host endpoint conntrack: tortie_hct4_v2 (LRU: struct tortie_ct4_key -> struct tortie_ct_value,
 * as workload conntrack's; rule 0: allowed by a failsafe port) ---- */


/* ---- IPv6 workload datapath: conntrack key (tortie_ct6_v1), fragment key (tortie_frag6_v1),
 * quota key (tortie_ctq6_v1), class LPM key (tortie_cls6_v1) ---- */
/* Like struct tortie_ct4_key with 128-bit addresses, normalised the same way (side a = the
 * numerically smaller address, then port; pad[0] marks the pinger of an echo flow). */
struct tortie_ct6_key {
	__be32 addr_a[4];
	__be32 addr_b[4];
	__be16 port_a;
	__be16 port_b;
	__u8 proto;
	__u8 pad[3];
};

/* ---- VXLAN (lib/vxlan.h): the route flag, tortie_vxcfg_v1 and tortie_vxst_v1 ---- */
#define TORTIE_RT_F_VXLAN (1u << 2)  /* with TORTIE_RT_F_ENCAP: the encapsulation is VXLAN, not IPIP */

/* tortie_vxcfg_v1 (array, one entry at index 0): this node's VXLAN parameters (Felix's vxlanVNI,
 * vxlanPort, vxlanMTU). vni 0: VXLAN is off (no IPv4 pool uses it): UDP to the port is not
 * decapsulated, and no route carries TORTIE_RT_F_VXLAN. */
struct tortie_vxlan_cfg {
	__u32 vni;       /* 24-bit VXLAN network identifier, host order */
	__u32 port;      /* UDP destination port, host order (Calico's 4789) */
	__u32 mtu;       /* inner packets bigger than this are left to the kernel route (its mtu answers) */
	__u32 pad;
};

/* tortie_vxst_v1 (per-CPU array of __u64 packet counts), index enum tortie_vxstat */
enum tortie_vxstat {
	TORTIE_VS_ENCAP_FAST = 0,     /* encapsulated in tortie_from_wep and redirected to the uplink */
	TORTIE_VS_ENCAP_UPLINK = 1,   /* encapsulated on the uplink's egress (kernel-routed) */
	TORTIE_VS_ENCAP_FALLBACK = 2, /* fast path declined (MTU, TTL, fib): left to the kernel */
	TORTIE_VS_DECAP = 3,          /* VXLAN from a known node decapsulated */
	TORTIE_VS_MAX = 4,
};

/* ---- host endpoint local-side nets: tortie_hlt4_v1 (LPM: (dispatch id, local prefix) -> table id) ----
 * A stage whose rules match the packet's local address (ingress destination.nets, egress
 * source.nets, their notNets) is compiled once per region of the local address space those nets
 * cut: each entry maps a net (and 0.0.0.0/0, the rest) to the table of that region. */
#define TORTIE_HLT_FIXED_BITS 32

struct tortie_hlt4_key {
	__u32 prefixlen;
	__u32 id;        /* dispatch id (struct tortie_hostep.table[slot] when its flag bit is set) */
	__be32 addr;     /* local address (prefix) */
};

/* tortie_frag6_v1: like struct tortie_frag4_key, with the fragment header's 32-bit id. */
struct tortie_frag6_key {
	__be32 saddr[4];
	__be32 daddr[4];
	__be32 id;
	__u8 proto;
	__u8 point;      /* enum tortie_frag_point */
	__u8 pad[2];
};

/* tortie_ctq6_v1: per-workload conntrack entry counts, as tortie_ctq4_v1's (TORTIE_QUOTA_*). */
struct tortie_quota6_key {
	__be32 addr[4];  /* workload address */
	__u32 kind;      /* TORTIE_QUOTA_* */
};

/* ---- NAT66 (NAT outgoing of IPv6 pools, lib/nat6.h): tortie_nat6_v1 entries, tortie_natq6_v1
 * counts (keyed by struct tortie_quota6_key), the IPv6 pool LPM key (tortie_pool6_v1) and this node's IPv6 parameters ---- */
/* tortie_nat6_v1: struct tortie_nat4_key's layout with 128-bit addresses, same dir semantics. */
struct tortie_nat6_key {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;        /* TORTIE_NAT_FWD / TORTIE_NAT_REV */
	__u8 pad[2];
};

struct tortie_nat6_value {
	__u64 last_seen_ns;
	__u64 created_ns;
	__be32 addr[4];  /* FWD: address to write as source; REV: as destination */
	__be16 port;
	__u8 flags;      /* TORTIE_NATF_* (on the FWD entry) */
	__u8 pad[5];
};

/* tortie_pool6_v1 (LPM): IPv6 pool prefix -> struct tortie_pool. */
struct tortie_pool6_key {
	__u32 prefixlen;
	__be32 addr[4];
};

/* tortie_netcfg6_v1[0]: this node's IPv6 address (0 = NAT66 off) and an IPv6 SNAT source
 * (0 = the node address; the agent writes 0: Calico's natOutgoingAddress is IPv4 only). tortie_node6_v1: __be32[4] node address -> struct
 * tortie_node_info (no SNAT towards nodes). */
struct tortie_netcfg6 {
	__be32 node_ip6[4];
	__be32 snat_ip6[4];
};

struct tortie_node6_key {
	__be32 addr[4];
};

/* ---- NAT66 fragments (lib/nat6.h): tortie_nfrag6_v1, struct tortie_frag6_key (point SNAT or
 * RNAT) -> the address the NAT point wrote into the datagram's first fragment ---- */
struct tortie_natfrag6_value {
	__be32 nat_addr[4];  /* SNAT: the new source; RNAT: the new destination (the workload) */
};

/* ---- VXLAN over IPv6 (lib/vxlan6.h): tortie_rt6_v1 values (LPM key struct tortie_pool6_key) and tortie_vx6st_v1 indexes ---- */
struct tortie_route6 {
	__be32 next_hop[4]; /* the node's IPv6 address (outer destination with ENCAP|VXLAN) */
	__u32 flags;        /* TORTIE_RT_F_* */
	__u32 pad;
};

enum tortie_vx6stat {
	TORTIE_VS6_ENCAP_UPLINK = 0, /* IPv6 encapsulated in outer IPv6 on the uplink's egress */
	TORTIE_VS6_DECAP = 1,        /* VXLAN over IPv6 from a known node decapsulated */
	TORTIE_VS6_MAX = 2,
};

/* ---- host endpoints and the XDP prefilter, IPv6 ---- */
/* tortie_hlt6_v1 (LPM): struct tortie_hlt4_key's dispatch with an IPv6 local prefix (prefixlen
 * TORTIE_HLT_FIXED_BITS + 0..128); the same dispatch ids as tortie_hlt4_v1. */
struct tortie_hlt6_key {
	__u32 prefixlen;
	__u32 id;
	__be32 addr[4];
};

/* tortie_fs6_v1 (LPM): failsafe ports for IPv6 remotes, as struct tortie_fs4_key (prefixlen
 * TORTIE_FS_FIXED_BITS + 0..128). */
struct tortie_fs6_key {
	__u32 prefixlen;
	__u8 dir;
	__u8 proto;
	__be16 port;
	__be32 addr[4];
};

/* tortie_pf6_v1 (LPM): the prefilter's IPv6 prefixes, as struct tortie_pf4_key (prefixlen
 * TORTIE_PF_FIXED_BITS + 0..128) -> struct tortie_pf_value. */
struct tortie_pf6_key {
	__u32 prefixlen;
	__u8 side;
	__u8 pad[3];
	__be32 addr[4];
};

#endif
