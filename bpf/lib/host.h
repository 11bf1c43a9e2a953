/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Traffic between workloads and their own node (the host); host_is_local_dst is also the
 * "to the host or forwarded" decision of host endpoint policy (lib/hostep.h).
 *
 * Felix's defaultEndpointToHostAction (load-time constant, set by the loader from the agent's
 * config): 0 = Drop (Calico's default), 1 = Accept (also Return: as in Felix, Return hands the
 * packet to the host's own processing; host endpoint policy does not police workload->host).
 * "To the host" is what the kernel would deliver locally: bpf_fib_lookup from the cali* says
 * NOT_FWDED (a local, broadcast or multicast route: every address of the node's namespace,
 * whatever interface holds it, and any address later added: no list to keep in sync), or
 * FWD_DISABLED (forwarding is off on the cali*, so the kernel could only deliver it locally).
 * Only new flows the workload's egress policy allowed are judged here; replies and related
 * packets of host-initiated flows are conntrack's (CT_ESTABLISHED) and never reach it. ARP
 * (proxy ARP for the 169.254.1.1 gateway) is passed before.
 */
#ifndef TORTIE_LIB_HOST_H
#define TORTIE_LIB_HOST_H

#include "lib/parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

const volatile __u32 endpoint_to_host_accept = 0;

static __always_inline bool host_is_local_dst(struct __sk_buff *skb, const struct tortie_pkt *pkt)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	fib.family = AF_INET;
	fib.ifindex = skb->ifindex;
	fib.ipv4_src = pkt->saddr;
	fib.ipv4_dst = pkt->daddr;
	fib.l4_protocol = pkt->proto;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	return rc == BPF_FIB_LKUP_RET_NOT_FWDED || rc == BPF_FIB_LKUP_RET_FWD_DISABLED;
}

/*
 * A new flow from a workload that its egress policy allowed (call before the conntrack commit:
 * a refused flow leaves no state): DROP_TO_HOST_DENIED if it is for the host and the action is
 * Drop, else TORTIE_FORWARD.
 */
static __always_inline int host_from_wep(struct __sk_buff *skb, const struct tortie_pkt *pkt)
{
	if (!endpoint_to_host_accept && host_is_local_dst(skb, pkt))
		return DROP_TO_HOST_DENIED;
	return TORTIE_FORWARD;
}

/* host_is_local_dst for an IPv6 packet. */
static __always_inline bool host_is_local_dst6(struct __sk_buff *skb, const struct tortie_pkt *pkt)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	fib.family = AF_INET6;
	fib.ifindex = skb->ifindex;
	__builtin_memcpy(fib.ipv6_src, pkt->saddr6, 16);
	__builtin_memcpy(fib.ipv6_dst, pkt->daddr6, 16);
	fib.l4_protocol = pkt->proto;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	return rc == BPF_FIB_LKUP_RET_NOT_FWDED || rc == BPF_FIB_LKUP_RET_FWD_DISABLED;
}

/* The same for an IPv6 packet (host_from_wep's rule, one fib lookup). */
static __always_inline int host_from_wep6(struct __sk_buff *skb, const struct tortie_pkt *pkt)
{
	if (!endpoint_to_host_accept && host_is_local_dst6(skb, pkt))
		return DROP_TO_HOST_DENIED;
	return TORTIE_FORWARD;
}

#endif
