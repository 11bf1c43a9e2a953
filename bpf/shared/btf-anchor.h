/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keeps every shared type in the object's BTF, including those no map declares (the drop
 * reason enum, the event record, IPv6 keys), so the agent's layout test can compare its
 * codecs and its drop-reason mirror with what the C compiler produced. The function is never
 * called; libbpf does not load uncalled subprograms.
 */
#ifndef TORTIE_SHARED_BTF_ANCHOR_H
#define TORTIE_SHARED_BTF_ANCHOR_H

#include "shared/drop.h"
#include "shared/maps.h"

struct tortie_btf_anchor {
	enum tortie_drop_reason reason;
	enum tortie_dir dir;
	enum tortie_ct_state ct_state;
	struct tortie_event event;
	struct tortie_cls6_key cls6;
	struct tortie_frag_value frag;
	struct tortie_table table;
	struct tortie_pf4_key pf4;
	struct tortie_pf_value pf;
	struct tortie_evsup_key evsup;
	struct tortie_evbud evbud;
	struct tortie_hostep hostep;
	struct tortie_fs4_key fs4;
	struct tortie_hlt4_key hlt4;
	struct tortie_hlt6_key hlt6;
	struct tortie_fs6_key fs6;
	struct tortie_pf6_key pf6;
	struct tortie_ep_dst_key ep_dst_key;
	struct tortie_ep_dst ep_dst;
};

__attribute__((used, noinline)) static int tortie_btf_anchor(struct tortie_btf_anchor *a)
{
	return a ? 0 : 1;
}

#endif
