/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This node's VXLAN parameters (tortie_vxcfg_v1), apart from lib/vxlan.h so that the XDP
 * prefilter (lib/prefilter.h), which cannot include the tc-only encapsulation code, knows which
 * UDP port carries VXLAN to this node. Written by the agent's route manager; layout in
 * shared/maps.h (struct tortie_vxlan_cfg).
 */
#ifndef TORTIE_LIB_VXCFG_H
#define TORTIE_LIB_VXCFG_H

#include "lib/ctx.h"

/* tortie_vxcfg_v1: index 0 -> this node's VXLAN parameters; vni 0 = VXLAN off. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct tortie_vxlan_cfg);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tortie_vxcfg_v1 SEC(".maps");

/* This node's VXLAN parameters, or NULL while VXLAN is off (vni 0). */
static __always_inline const struct tortie_vxlan_cfg *vxcfg_get(void)
{
	__u32 zero = 0;
	const struct tortie_vxlan_cfg *c = bpf_map_lookup_elem(&tortie_vxcfg_v1, &zero);

	return c && c->vni ? c : NULL;
}

#endif
