/**
 * Codecs for every tortie map key/value (bpf/shared/maps.h), plus map names and constants.
 * Each codec's layout is checked against the BTF of the compiled objects by
 * test/datapath/01-layouts.test.ts. Addresses are text, as everywhere at the codec boundary
 * (src/dataplane/native/codec.ts): `ipv4` dotted quads, `ipv6` and family-tagged `ip` slots
 * (IPv4 in the first 4 bytes when the struct's family is 4), all in network order in the map.
 */
import { defineStruct, type StructCodec } from '../native';

/** The JS value type a codec encodes and decodes. */
export type ValueOf<C> = C extends StructCodec<infer V> ? V : never;

export const MAP = {
  ep: 'tortie_ep_v1',
  epaddr: 'tortie_epip_v1',
  epdst: 'tortie_epdst_v1',
  cls4: 'tortie_cls4_v1',
  tbl: 'tortie_tbl_v1',
  proj: 'tortie_proj_v1',
  spc: 'tortie_spc_v1',
  pol: 'tortie_pol_v1',
  ct4: 'tortie_ct4_v3',
  ctq4: 'tortie_ctq4_v1',
  frag4: 'tortie_frag4_v2',
  pf4: 'tortie_pf4_v1',
  cnt: 'tortie_cnt_v1',
  epcnt: 'tortie_epcnt_v1',
  events: 'tortie_evt_v1',
  evsup: 'tortie_evsup_v1',
  evbud: 'tortie_evbud_v1',
  hep: 'tortie_hep_v1',
  fs4: 'tortie_fs4_v1',
  hct4: 'tortie_hct4_v2',
  hlt4: 'tortie_hlt4_v1',
  hrst: 'tortie_hrst_v2',
  cls6: 'tortie_cls6_v1',
  ct6: 'tortie_ct6_v1',
  ctq6: 'tortie_ctq6_v1',
  frag6: 'tortie_frag6_v1',
  hlt6: 'tortie_hlt6_v1',
  fs6: 'tortie_fs6_v1',
  hct6: 'tortie_hct6_v1',
  pf6: 'tortie_pf6_v1',
} as const;

/** TORTIE_AF_INET (bpf/shared/maps.h; TORTIE_AF_INET6 is 6): the family of `ip` address slots. */
export const AF_INET = 4;
export const AF_INET6 = 6;
export const EP_F_DISABLED = 1;
export const TBL_F_SPORT = 1;
export const TBL_F_PASS = 2;
export const ACT_ALLOW = 1;
export const ACT_DENY = 2;
export const MAX_LOG_RULES = 4;
export const EPADDR_FIXED_BITS = 64;
export const SPC_FIXED_BITS = 48;
export const POL_FIXED_BITS = 96;
export const PF_FIXED_BITS = 32;
export const PF_SRC = 0;
export const PF_DST = 1;
export const PF_KIND_DENYLIST = 1;
export const PF_KIND_DNT = 2;
export const EV_DENY = 1;
export const EV_LOG = 2;
export const EV_PREFILTER = 3;

export const CtState = {
  NONE: 0, SYN_SENT: 1, SYN_RECV: 2, ESTABLISHED: 3, FIN_WAIT: 4, CLOSING: 5, RST: 6, UDP: 7, ICMP: 8, OTHER: 9,
} as const;
export const CTF = { A_IS_INIT: 1, SRC_OK: 2, DST_OK: 4, FIN_A: 8, FIN_B: 16, REPLY: 32, DST_LOCAL: 64 } as const;

export const endpointCodec = defineStruct('tortie_endpoint', [
  { name: 'id', type: 'u32' },
  { name: 'flags', type: 'u32' },
  { name: 'table', type: 'u32', count: 2 },
  { name: 'version', type: 'u32' },
  { name: 'slot', type: 'u32' },
] as const);
export type Endpoint = ValueOf<typeof endpointCodec>;
/** TORTIE_EPCNT_SLOTS: endpoint counter slots 1 .. EPCNT_SLOTS - 1 in tortie_epcnt_v1 (index slot * 2 + dir). */
export const EPCNT_SLOTS = 4096;

export const epAddrKeyCodec = defineStruct('tortie_ep_addr_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'ifindex', type: 'u32' },
  { name: 'family', type: 'u8' },
  { name: 'pad', type: 'pad', length: 3 },
  { name: 'addr', type: 'ip', family: 'family' },
] as const);

/** tortie_epdst_v1: a local workload's host address -> its cali*, endpoint id and MACs. */
export const epDstKeyCodec = defineStruct('tortie_ep_dst_key', [
  { name: 'family', type: 'u8' },
  { name: 'pad', type: 'pad', length: 3 },
  { name: 'addr', type: 'ip', family: 'family' },
] as const);

export const epDstCodec = defineStruct('tortie_ep_dst', [
  { name: 'ifindex', type: 'u32' },
  { name: 'ep_id', type: 'u32' },
  { name: 'mac', type: 'mac' },
  { name: 'host_mac', type: 'mac' },
] as const);
export type EpDst = ValueOf<typeof epDstCodec>;

export const cls4KeyCodec = defineStruct('tortie_cls4_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'addr', type: 'ipv4' },
] as const);

export const tableCodec = defineStruct('tortie_table', [
  { name: 'flags', type: 'u32' },
  { name: 'miss_rule', type: 'u32' },
  { name: 'hash', type: 'bytes', length: 8 },
] as const);

export const projKeyCodec = defineStruct('tortie_proj_key', [
  { name: 'table', type: 'u32' },
  { name: 'gclass', type: 'u32' },
] as const);

export const spcKeyCodec = defineStruct('tortie_spc_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'table', type: 'u32' },
  { name: 'proto', type: 'u16' },
  { name: 'port', type: 'be16' },
] as const);

export const polKeyCodec = defineStruct('tortie_pol_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'table', type: 'u32' },
  { name: 'lclass', type: 'u32' },
  { name: 'proto', type: 'u16' },
  { name: 'sclass', type: 'u16' },
  { name: 'port', type: 'be16' },
  { name: 'pad', type: 'pad', length: 2 },
] as const);

export const verdictCodec = defineStruct('tortie_verdict', [
  { name: 'action', type: 'u8' },
  { name: 'nlog', type: 'u8' },
  { name: 'flags', type: 'u16' },
  { name: 'rule', type: 'u32' },
  { name: 'log_rules', type: 'u32', count: MAX_LOG_RULES },
] as const);

export const ct4KeyCodec = defineStruct('tortie_ct4_key', [
  { name: 'addr_a', type: 'ipv4' },
  { name: 'addr_b', type: 'ipv4' },
  { name: 'port_a', type: 'be16' },
  { name: 'port_b', type: 'be16' },
  { name: 'proto', type: 'u8' },
  { name: 'pad', type: 'pad', length: 3 },
] as const);
export type Ct4Key = ValueOf<typeof ct4KeyCodec>;

export const ctValueCodec = defineStruct('tortie_ct_value', [
  { name: 'last_seen_ns', type: 'u64' },
  { name: 'created_ns', type: 'u64' },
  { name: 'flags', type: 'u64' },
  { name: 'state', type: 'u8' },
  { name: 'wscale', type: 'u8' },
  { name: 'win_log', type: 'u8', count: 2 },
  { name: 'rule', type: 'u32' },
  { name: 'seq_end', type: 'u32', count: 2 },
  { name: 'ack_max', type: 'u32', count: 2 },
] as const);
export type CtValue = ValueOf<typeof ctValueCodec>;

export const frag4KeyCodec = defineStruct('tortie_frag4_key', [
  { name: 'saddr', type: 'ipv4' },
  { name: 'daddr', type: 'ipv4' },
  { name: 'id', type: 'be16' },
  { name: 'proto', type: 'u8' },
  { name: 'point', type: 'u8' },
] as const);

export const fragValueCodec = defineStruct('tortie_frag_value', [
  { name: 'sport', type: 'be16' },
  { name: 'dport', type: 'be16' },
  { name: 'ct_sport', type: 'be16' },
  { name: 'ct_dport', type: 'be16' },
  { name: 'nat_addr', type: 'ipv4' },
  { name: 'pad', type: 'pad', length: 4 },
] as const);

export const pf4KeyCodec = defineStruct('tortie_pf4_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'side', type: 'u8' },
  { name: 'pad', type: 'pad', length: 3 },
  { name: 'addr', type: 'ipv4' },
] as const);

export const pfValueCodec = defineStruct('tortie_pf_value', [
  { name: 'kind', type: 'u32' },
  { name: 'rule', type: 'u32' },
] as const);

export const cntKeyCodec = defineStruct('tortie_cnt_key', [
  { name: 'ifindex', type: 'u32' },
  { name: 'dir', type: 'u8' },
  { name: 'pad', type: 'pad', length: 1 },
  { name: 'reason', type: 'i16' },
] as const);

export const cntValueCodec = defineStruct('tortie_cnt_value', [
  { name: 'packets', type: 'u64' },
  { name: 'bytes', type: 'u64' },
] as const);

export const evsupKeyCodec = defineStruct('tortie_evsup_key', [
  { name: 'flow', type: 'struct', struct: ct4KeyCodec },
  { name: 'ifindex', type: 'u32' },
  { name: 'dir', type: 'u8' },
  { name: 'pad', type: 'pad', length: 3 },
] as const);

/** Per-endpoint event budget (per-CPU value of tortie_evbud_v1, key: u32 ifindex). */
export const evbudCodec = defineStruct('tortie_evbud', [
  { name: 'tokens', type: 'u64' },
  { name: 'last_ns', type: 'u64' },
  { name: 'emitted', type: 'u64' },
  { name: 'suppressed', type: 'u64' },
  { name: 'lost', type: 'u64' },
] as const);

export const eventCodec = defineStruct('tortie_event', [
  { name: 'ts_ns', type: 'u64' },
  { name: 'kind', type: 'u32' },
  { name: 'ifindex', type: 'u32' },
  { name: 'ep_id', type: 'u32' },
  { name: 'rule', type: 'u32' },
  { name: 'reason', type: 'i32' },
  { name: 'dir', type: 'u8' },
  { name: 'family', type: 'u8' },
  { name: 'proto', type: 'u8' },
  { name: 'pad', type: 'pad', length: 1 },
  { name: 'sport', type: 'u16' },
  { name: 'dport', type: 'u16' },
  { name: 'saddr', type: 'ip', family: 'family' },
  { name: 'daddr', type: 'ip', family: 'family' },
  { name: 'pad2', type: 'pad', length: 4 },
] as const);
export type EventRecord = ValueOf<typeof eventCodec>;

/** Host endpoint slots (enum tortie_hep_slot), in the order of tortie_hostep.table. */
export const HEP_SLOT = { in: 0, out: 1, forwardIngress: 2, forwardEgress: 3, preDNAT: 4, untrackedIngress: 5, untrackedEgress: 6 } as const;
export const HEP_SLOTS = 8;

export const hostepCodec = defineStruct('tortie_hostep', [
  { name: 'id', type: 'u32' },
  { name: 'flags', type: 'u32' },
  { name: 'table', type: 'u32', count: HEP_SLOTS },
  { name: 'version', type: 'u32' },
  { name: 'pad', type: 'pad', length: 4 },
] as const);
export type HostEp = ValueOf<typeof hostepCodec>;

export const FS_IN = 0;
export const FS_OUT = 1;
export const FS_FIXED_BITS = 32;
export const fs4KeyCodec = defineStruct('tortie_fs4_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'dir', type: 'u8' },
  { name: 'proto', type: 'u8' },
  { name: 'port', type: 'be16' },
  { name: 'addr', type: 'ipv4' },
] as const);

/** Local-address dispatch of a host endpoint stage (tortie_hlt4_v1 -> __u32 table id). */
export const HLT_FIXED_BITS = 32;
export const hlt4KeyCodec = defineStruct('tortie_hlt4_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'id', type: 'u32' },
  { name: 'addr', type: 'ipv4' },
] as const);

/** IPv6 class key (reserved map tortie_cls6_v1), checked against BTF ahead of use. */
export const cls6KeyCodec = defineStruct('tortie_cls6_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'addr', type: 'ipv6' },
] as const);

/** IPv6 conntrack key (tortie_ct6_v1), normalised as tortie_ct4_key. */
export const ct6KeyCodec = defineStruct('tortie_ct6_key', [
  { name: 'addr_a', type: 'ipv6' },
  { name: 'addr_b', type: 'ipv6' },
  { name: 'port_a', type: 'be16' },
  { name: 'port_b', type: 'be16' },
  { name: 'proto', type: 'u8' },
  { name: 'pad', type: 'pad', length: 3 },
] as const);

export const frag6KeyCodec = defineStruct('tortie_frag6_key', [
  { name: 'saddr', type: 'ipv6' },
  { name: 'daddr', type: 'ipv6' },
  { name: 'id', type: 'be32' },
  { name: 'proto', type: 'u8' },
  { name: 'point', type: 'u8' },
  { name: 'pad', type: 'pad', length: 2 },
] as const);

export const quota6KeyCodec = defineStruct('tortie_quota6_key', [
  { name: 'addr', type: 'ipv6' },
  { name: 'kind', type: 'u32' },
] as const);

/** Host endpoints and the prefilter for IPv6 (bpf/shared/maps.h, their block). */
export const hlt6KeyCodec = defineStruct('tortie_hlt6_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'id', type: 'u32' },
  { name: 'addr', type: 'ipv6' },
] as const);

export const fs6KeyCodec = defineStruct('tortie_fs6_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'dir', type: 'u8' },
  { name: 'proto', type: 'u8' },
  { name: 'port', type: 'be16' },
  { name: 'addr', type: 'ipv6' },
] as const);

export const pf6KeyCodec = defineStruct('tortie_pf6_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'side', type: 'u8' },
  { name: 'pad', type: 'pad', length: 3 },
  { name: 'addr', type: 'ipv6' },
] as const);

/** Every codec whose layout the BTF test checks. */
export const ALL_CODECS = [
  endpointCodec, epAddrKeyCodec, epDstKeyCodec, epDstCodec, cls4KeyCodec, tableCodec, projKeyCodec, spcKeyCodec, polKeyCodec,
  verdictCodec, ct4KeyCodec, ctValueCodec, frag4KeyCodec, fragValueCodec, pf4KeyCodec, pfValueCodec,
  cntKeyCodec, cntValueCodec, eventCodec, cls6KeyCodec, evsupKeyCodec, evbudCodec,
  hostepCodec, fs4KeyCodec, hlt4KeyCodec, ct6KeyCodec, frag6KeyCodec, quota6KeyCodec,
  hlt6KeyCodec, fs6KeyCodec, pf6KeyCodec,
];

/** __u32 map values (class ids, local classes, sport classes, epaddr flags). */
export function u32Value(v: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; }
export function u32Key(v: number): Buffer { return u32Value(v); }
