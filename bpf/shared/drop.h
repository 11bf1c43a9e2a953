/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Drop reasons: ONE space of negative codes, shared by every tortie BPF program and by
 * TypeScript (src/dataplane/bpf/drop-reasons.ts mirrors this enum; test/datapath checks
 * the mirror against this file's BTF). Lib code returns these; only the entry program turns
 * them into a verdict, a counter and (for policy) an event.
 *
 * Contract: values are stable once released (they are stored in counters and events).
 * 0 means "forwarded"; it is the counter slot for accepted packets.
 */
#ifndef TORTIE_SHARED_DROP_H
#define TORTIE_SHARED_DROP_H

enum tortie_drop_reason {
	TORTIE_FORWARD = 0,              /* not a drop: packet accepted */
	DROP_TRUNC_ETH = -1,             /* shorter than an Ethernet (or VLAN) header */
	DROP_TRUNC_IP = -2,              /* shorter than the IPv4 header it claims */
	DROP_BAD_IHL = -3,               /* IPv4 IHL < 5 */
	DROP_BAD_TOTLEN = -4,            /* IPv4 total length < IHL*4 or > bytes present */
	DROP_TRUNC_L4 = -5,              /* TCP/UDP/ICMP header does not fit in the datagram */
	DROP_UNKNOWN_IFACE = -6,         /* cali* interface not in the endpoint map: fail closed */
	DROP_SPOOFED_SRC = -7,           /* source address not one of the endpoint's */
	DROP_POLICY_DENY = -8,           /* verdict table said deny (or no cell matched) */
	DROP_NO_TABLE = -9,              /* endpoint names a table that is not loaded: fail closed */
	DROP_PREFILTER = -10,            /* XDP prefilter: deny-listed CIDR */
	DROP_DNT_DENY = -11,             /* XDP prefilter: doNotTrack deny rule */
	DROP_UNSUPPORTED_L3 = -12,       /* ethertype neither IPv4, IPv6 nor ARP (XDP: IPv6 is not filtered) */
	DROP_VLAN = -13,                 /* VLAN-tagged frame on a workload interface */
	DROP_FRAG_UNKNOWN = -14,         /* non-first fragment whose first fragment was not seen */
	DROP_CT_INVALID = -15,           /* TCP RST/FIN outside the flow's sequence window */
	DROP_BAD_TCP_HDR = -16,          /* TCP data offset < 5 or header past the datagram */
	DROP_ENDPOINT_DISABLED = -17,    /* endpoint flagged down by the agent */
	DROP_FRAG_TINY = -18,            /* fragment overlapping the L4 header (RFC 1858) */
	DROP_BAD_IP_VERSION = -19,       /* ethertype IPv4 but version field != 4 */
	DROP_IPIP_UNKNOWN_SRC = -20,     /* uplink: IPIP whose outer source is not a known node */
	DROP_IPIP_BAD_INNER = -21,       /* uplink: IPIP from a node whose inner header is malformed */
	DROP_NAT_NO_PORT = -22,          /* SNAT: no free source port after the bounded retries */
	/* -23 was DROP_ENCAP_FAILED (one code for every failed rewrite): retired, now one code per
	 * site (-36 onward). Not to be reused. */
	DROP_TCP_BAD_FLAGS = -24,        /* TCP flag combination no stack sends (SYN+FIN, NULL, XMAS, ...):
					  * INVALID as in Linux conntrack, dropped even on an allowed flow */
	DROP_NAT_ICMP = -25,             /* uplink: ICMP from a natOutgoing pool that cannot be translated
					  * (an error about no SNATed flow, or a non-echo query): the pod
					  * address would leak */
	DROP_IP_SRCROUTE = -26,          /* IPv4 loose/strict source-route option on a workload
					  * interface: the next hop would not be the destination that
					  * policy judged */
	DROP_TO_HOST_DENIED = -27,       /* workload -> an address of this node's own (local delivery), a
					  * new flow its egress policy allowed, refused by Felix's
					  * defaultEndpointToHostAction Drop (replies to host-initiated
					  * flows are conntrack's and pass) */
	DROP_NAT_QUOTA = -30,            /* SNAT: the workload holds its quota of NAT mappings already */
	DROP_NAT_TABLE_FULL = -31,       /* SNAT: tortie_nat4 is full (nothing is evicted for a new flow) */
	DROP_CT_QUOTA = -32,             /* new flow: the workload owns its quota of conntrack entries already */
	DROP_CT_TABLE_FULL = -33,        /* new flow: tortie_ct4 is full (nothing is evicted for a new flow) */
	/* A kernel helper refused a rewrite (bpf_skb_* / bpf_l3,l4_csum_replace failed: memory,
	 * a clone that cannot be unshared, ...). One code per site, named after what failed. */
	DROP_ENCAP_TRIM = -36,           /* IPIP encap/decap: trimming the frame's padding (lib/ipip.h) */
	DROP_ENCAP_HEADROOM = -37,       /* IPIP encap: making room for the outer header (lib/ipip.h) */
	DROP_ENCAP_STORE = -38,          /* IPIP encap: writing the outer header (lib/ipip.h) */
	DROP_DECAP_HEADROOM = -39,       /* IPIP decap: removing the outer header (lib/ipip.h) */
	DROP_FWD_TTL = -40,              /* BPF fast path: decrementing the TTL (lib/ipip.h) or IPv6 hop limit (lib/host_route6.h) */
	DROP_FWD_MAC = -41,              /* BPF fast path: writing the next hop's MACs (lib/ipip.h) */
	DROP_NAT_L4_CSUM = -42,          /* NAT: the pseudo-header address into the TCP/UDP checksum (lib/nat.h) */
	DROP_NAT_PORT = -43,             /* NAT: the port or echo id and its L4 checksum (lib/nat.h) */
	DROP_NAT_ADDR = -44,             /* NAT: the address and the IPv4 checksum (lib/nat.h) */
	DROP_NAT_FRAG_ADDR = -45,        /* NAT: a later fragment's address and IPv4 checksum (lib/nat.h nat_frag_later) */
	DROP_ICMP_QUOTE = -46,           /* ICMP error NAT: the quoted header (address, checksum, port or
					  * id) and the ICMP checksum (lib/icmp_err.h) */
	DROP_ICMP_OUTER = -47,           /* ICMP error NAT: the outer address and IPv4 checksum (lib/icmp_err.h) */
	DROP_HEP_POLICY = -48,           /* host endpoint: its normal policy (and profiles) denied traffic
					  * to or from the host itself */
	DROP_HEP_FORWARD = -49,          /* host endpoint: an applyOnForward policy denied forwarded traffic */
	DROP_HEP_PREDNAT = -50,          /* host endpoint: a preDNAT policy denied arriving traffic */
	DROP_HEP_UNTRACKED = -51,        /* host endpoint: a doNotTrack policy denied (before conntrack) */
	DROP_IP6_EXT_CHAIN = -52,        /* IPv6: more extension headers than the parser walks (8) */
	DROP_IP6_BAD_EXT = -53,          /* IPv6: extension header truncated, past the datagram, hop-by-hop
					  * not first, or a second fragment header */
	DROP_IP6_SRCROUTE = -54,         /* IPv6 routing header with segments left on a workload interface:
					  * the next hop would not be the destination that policy judged */
	DROP_ICMP6_ROUTER = -55,         /* ICMPv6 router advertisement or redirect from a workload (a
					  * workload is never the router of its link) */
	DROP_ICMP6_ND_SCOPE = -56,       /* neighbour discovery / MLD from a workload to an address beyond the
					  * link (not link-local, not multicast), or from a source that is
					  * neither unspecified, link-local nor the workload's own */
	DROP_VXLAN6_CSUM = -57,          /* VXLAN over IPv6: a non-zero outer UDP checksum that is wrong for
					  * its headers (lib/vxlan6.h; zero is accepted, RFC 6936) */
	DROP_NAT6_ADDR = -64,            /* NAT66: storing the translated IPv6 address (lib/nat6.h) */
	DROP_NAT6_FRAG = -65,            /* NAT66: a later fragment of an IPv6 datagram from a natOutgoing
					  * pool to the outside whose first fragment was not translated here
					  * (not seen, overtaken or forgotten: lib/nat6.h nat6_frag_later) */
	DROP_NAT6_ICMP = -66,            /* NAT66: ICMPv6 from a natOutgoing pool to the outside that cannot
					  * be translated like its flow: not an echo request nor an error
					  * quoting a live mapping and addressed to the quoted source */
	DROP_NAT6_FRAG_ADDR = -67,       /* NAT66: storing a later fragment's translated address (lib/nat6.h) */
	/* VXLAN arriving on the uplink (lib/vxlan.h): UDP to this node's VXLAN port and address. */
	DROP_VXLAN_UNKNOWN_SRC = -72,    /* VXLAN from an address that is not a known node */
	DROP_VXLAN_BAD_HDR = -73,        /* VXLAN: outer fragment, truncated, UDP length not the datagram's,
					  * flags other than the I bit, reserved bits set */
	DROP_VXLAN_VNI = -74,            /* VXLAN with another VNI than this node's (Felix's vxlanVNI) */
	DROP_VXLAN_BAD_INNER = -75,      /* VXLAN: inner Ethernet not to this node's VXLAN MAC, not IPv4 (IPv6 over IPv6),
					  * or an inner IPv4 header that does not fill the payload exactly */
	DROP_VXLAN_INNER_SRC = -76,      /* VXLAN: inner source neither the sending node nor one of its
					  * workloads (as this node's route map has them) */
	TORTIE_DROP_MIN = -76,           /* keep equal to the most negative value */
};

/* Directions, as seen from the workload (Calico's terms for policy). */
enum tortie_dir {
	TORTIE_DIR_INGRESS = 0,          /* to the workload: tc egress on cali*; ingress policy */
	TORTIE_DIR_EGRESS = 1,           /* from the workload: tc ingress on cali*; egress policy */
	TORTIE_DIR_UPLINK = 2,           /* XDP / tc on the uplink */
};

#endif
