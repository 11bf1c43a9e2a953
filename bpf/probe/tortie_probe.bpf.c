// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Feature probe for `tortie-node doctor`: the smallest tc and XDP programs that exercise what the
 * real datapath needs (BTF-defined maps, per-CPU counters, tc clsact, XDP on veth). Each program
 * counts the packets it sees in slot 0 (XDP) or 1 (tc) and passes them.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* Packet counters. Key: 0 = XDP, 1 = tc. Written by the programs, read by the doctor. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} tortie_probe_v1 SEC(".maps");

static __always_inline void probe_count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&tortie_probe_v1, &slot);

	if (n)
		*n += 1;
}

SEC("xdp")
int probe_xdp(struct xdp_md *ctx)
{
	probe_count(0);
	return XDP_PASS;
}

SEC("tc")
int probe_tc(struct __sk_buff *skb)
{
	probe_count(1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
