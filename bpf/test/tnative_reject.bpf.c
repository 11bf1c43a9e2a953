// SPDX-License-Identifier: GPL-2.0
/* Verifier-rejection fixture for test/native (05-*). Loads fine as built. With the load-time
 * constant tn_reject set to 1, the branch that reads a packet byte without a bounds check becomes
 * reachable (the verifier treats frozen .rodata as known values and prunes dead branches) and
 * the load fails with a verifier log the test inspects. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u8 tn_reject = 0;

SEC("xdp")
int tn_reject_xdp(struct xdp_md *ctx)
{
	if (tn_reject) {
		__u8 *p = (void *)(long)ctx->data;
		return p[0] ? XDP_DROP : XDP_PASS; /* no data_end check: invalid access */
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
