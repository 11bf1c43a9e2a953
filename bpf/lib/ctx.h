/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One context abstraction so lib code compiles for XDP and tc. An entry file defines exactly
 * one of TORTIE_CTX_XDP / TORTIE_CTX_SKB before including any lib header; lib code only uses
 * the ctx_* accessors below. Operations a hook lacks are not defined for it, so misuse fails
 * at build time rather than at load time.
 */
#ifndef TORTIE_LIB_CTX_H
#define TORTIE_LIB_CTX_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <stdbool.h>

#include "shared/drop.h"
#include "shared/maps.h"

#if defined(TORTIE_CTX_XDP) && defined(TORTIE_CTX_SKB)
#error "define only one of TORTIE_CTX_XDP and TORTIE_CTX_SKB"
#elif defined(TORTIE_CTX_XDP)
#define ctx_buff xdp_md
static __always_inline void *ctx_data(struct xdp_md *ctx) { return (void *)(long)ctx->data; }
static __always_inline void *ctx_data_end(struct xdp_md *ctx) { return (void *)(long)ctx->data_end; }
static __always_inline __u32 ctx_len(struct xdp_md *ctx) { return ctx->data_end - ctx->data; }
static __always_inline __u32 ctx_ifindex(struct xdp_md *ctx) { return ctx->ingress_ifindex; }
#elif defined(TORTIE_CTX_SKB)
#define ctx_buff __sk_buff
static __always_inline void *ctx_data(struct __sk_buff *ctx) { return (void *)(long)ctx->data; }
static __always_inline void *ctx_data_end(struct __sk_buff *ctx) { return (void *)(long)ctx->data_end; }
static __always_inline __u32 ctx_len(struct __sk_buff *ctx) { return ctx->len; }
static __always_inline __u32 ctx_ifindex(struct __sk_buff *ctx) { return ctx->ifindex; }
#else
#error "define TORTIE_CTX_XDP or TORTIE_CTX_SKB before including bpf/lib headers"
#endif

#ifndef __maybe_unused
#define __maybe_unused __attribute__((unused))
#endif

#endif
