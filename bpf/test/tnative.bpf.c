// SPDX-License-Identifier: GPL-2.0
/* Test programs for the native addon (test/native): one XDP and one tc program that share maps.
 * Each packet is counted per IPv4 protocol in a per-CPU array, recorded per flow in a hash map
 * pinned by name, optionally reported through a ring buffer, and dropped when its protocol is in
 * the load-time set tn_drop_protos. tn_set_tos (non-zero) rewrites the IPv4 TOS byte and fixes
 * the header checksum, so BPF_PROG_TEST_RUN's output bytes can be checked. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "test/tnative.h"

/* Load-time constants (set through BpfObject.setConstant before load). */
const volatile __u64 tn_drop_protos[4] = {}; /* bitmap over protocol numbers 0..255 */
const volatile __u8 tn_events_on = 0;        /* 1: one tn_events record per packet */
const volatile __u8 tn_set_tos = 0;          /* non-zero: rewrite IPv4 TOS to this value */

/* Ring-buffer records are only used through pointers, which clang does not describe in BTF;
 * this anchor puts struct tn_event into the object's BTF so its layout can be checked. */
const struct tn_event *const tn_event_btf_anchor = 0;

/* Key: protocol number (host order, 0..255). Written by both programs, read by tests. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct tn_counter);
} tn_counts SEC(".maps");

/* Key: IPv4 flow. Pinned by name so a second load reuses it (pin/reuse tests). A full map only
 * means new flows go unrecorded. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct tn_flow_key);
	__type(value, struct tn_flow_val);
} tn_flows SEC(".maps");

/* Per-packet events when tn_events_on; a full ring drops the event, never the packet. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} tn_events SEC(".maps");

static __always_inline void tn_fix_tos(struct iphdr *ip, __u8 tos)
{
	/* RFC 1624 incremental update of the 16-bit word holding version/IHL and TOS. */
	__u16 old_word = bpf_ntohs(*(__be16 *)ip);
	__u16 new_word = (old_word & 0xff00) | tos;
	__u32 sum = (__u16)~bpf_ntohs(ip->check);

	sum += (__u16)~old_word;
	sum += new_word;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->tos = tos;
	ip->check = bpf_htons((__u16)~sum);
}

/* Returns 1 to drop, 0 to pass. */
static __always_inline int tn_handle(void *data, void *data_end, __u32 len, __u32 ifindex,
				     __u8 hook)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = NULL;
	__u32 proto = TN_PROTO_NON_IP;

	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) <= data_end)
			proto = ip->protocol;
		else
			ip = NULL;
	}

	struct tn_counter *c = bpf_map_lookup_elem(&tn_counts, &proto);
	if (c) {
		c->packets++;
		c->bytes += len;
	}

	if (ip) {
		struct tn_flow_key k = { .saddr = ip->saddr, .daddr = ip->daddr, .proto = proto };
		struct tn_flow_val *v = bpf_map_lookup_elem(&tn_flows, &k);
		if (v) {
			__sync_fetch_and_add(&v->packets, 1);
			__sync_fetch_and_add(&v->bytes, len);
			v->last_len = len;
		} else {
			struct tn_flow_val nv = { .packets = 1, .bytes = len, .last_len = len };
			bpf_map_update_elem(&tn_flows, &k, &nv, BPF_NOEXIST);
		}
		if (tn_set_tos)
			tn_fix_tos(ip, tn_set_tos);
	}

	if (tn_events_on) {
		struct tn_event *e = bpf_ringbuf_reserve(&tn_events, sizeof(*e), 0);
		if (e) {
			e->ifindex = ifindex;
			e->proto = proto;
			e->hook = hook;
			e->len = len;
			e->saddr = ip ? ip->saddr : 0;
			e->daddr = ip ? ip->daddr : 0;
			e->seq = bpf_ktime_get_ns();
			bpf_ringbuf_submit(e, 0);
		}
	}

	return (tn_drop_protos[(proto >> 6) & 3] >> (proto & 63)) & 1;
}

SEC("xdp")
int tn_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	return tn_handle(data, data_end, data_end - data, ctx->ingress_ifindex, TN_HOOK_XDP)
		       ? XDP_DROP
		       : XDP_PASS;
}

SEC("tc")
int tn_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	return tn_handle(data, data_end, skb->len, skb->ifindex, TN_HOOK_TC) ? TC_ACT_SHOT
									     : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
