/* Structs shared by the native addon test programs in bpf/test and their TypeScript
 * codecs in test/native. Not part of the datapath: these exist so the addon's tests can run real
 * programs. Layouts are checked against the compiled object's BTF by test/native (09-*). */
#ifndef TORTIE_BPF_TEST_TNATIVE_H
#define TORTIE_BPF_TEST_TNATIVE_H

#include <linux/types.h>

/* Hook that produced a record. */
enum tn_hook {
	TN_HOOK_XDP = 1,
	TN_HOOK_TC = 2,
};

/* Slot in tn_counts for frames that are not IPv4 (IANA protocol 255 is reserved, never seen). */
#define TN_PROTO_NON_IP 255

/* tn_counts value: per-CPU, indexed by IPv4 protocol number. */
struct tn_counter {
	__u64 packets;
	__u64 bytes;
};

/* tn_flows key: one IPv4 (source, destination, protocol); addresses in network byte order. */
struct tn_flow_key {
	__be32 saddr;
	__be32 daddr;
	__u8 proto;
	__u8 pad[3];
};

/* tn_flows value. Has trailing padding on purpose (size 24, last field ends at 20) so the BTF
 * checker's size comparison is exercised. */
struct tn_flow_val {
	__u64 packets;
	__u64 bytes;
	__u32 last_len;
};

/* One tn_events ring-buffer record per packet when tn_events_on is set. */
struct tn_event {
	__u32 ifindex;
	__u8 proto;
	__u8 hook;     /* enum tn_hook */
	__u16 len;     /* frame length, host order */
	__be32 saddr;
	__be32 daddr;
	__u64 seq;     /* bpf_ktime_get_ns() at the hook */
};

#endif
