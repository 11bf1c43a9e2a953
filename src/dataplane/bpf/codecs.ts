/**
 * Codecs for every tortie map key/value (bpf/shared/maps.h), plus map names and constants.
 * Each codec's layout is checked against the BTF of the compiled objects by
 * test/datapath/01-layouts.test.ts. Addresses are handled as u32 numbers in host order
 * (192.168.0.1 = 0xc0a80001) and written in network order where the C type is __be32.
 */
import { StructCodec } from './struct';

export const MAP = {
  ep: 'tortie_ep_v1',
  epaddr: 'tortie_epaddr_v1',
  cls4: 'tortie_cls4_v1',
  tbl: 'tortie_tbl_v1',
  proj: 'tortie_proj_v1',
  spc: 'tortie_spc_v1',
  pol: 'tortie_pol_v1',
  ct4: 'tortie_ct4_v1',
  frag4: 'tortie_frag4_v1',
  pf4: 'tortie_pf4_v1',
  cnt: 'tortie_cnt_v1',
  events: 'tortie_events_v1',
} as const;

export const AF_INET = 4;
export const AF_INET6 = 6;
export const EP_F_DISABLED = 1;
export const TBL_F_SPORT = 1;
export const PROTO_OTHER = 256;
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
export const CTF = { A_IS_INIT: 1, SRC_OK: 2, DST_OK: 4, FIN_A: 8, FIN_B: 16, REPLY: 32 } as const;

export interface Endpoint { id: number; flags: number; table: number[]; version: number }
export const endpointCodec = new StructCodec<Endpoint>('tortie_endpoint', 24, [
  { name: 'id', kind: 'u32', offset: 0 },
  { name: 'flags', kind: 'u32', offset: 4 },
  { name: 'table', kind: 'u32array', offset: 8, size: 8 },
  { name: 'version', kind: 'u32', offset: 16 },
]);

export interface EpAddrKey { prefixlen: number; ifindex: number; family: number; addr: Buffer }
export const epAddrKeyCodec = new StructCodec<EpAddrKey>('tortie_ep_addr_key', 28, [
  { name: 'prefixlen', kind: 'u32', offset: 0 },
  { name: 'ifindex', kind: 'u32', offset: 4 },
  { name: 'family', kind: 'u8', offset: 8 },
  { name: 'addr', kind: 'bytes', offset: 12, size: 16 },
]);

export interface Cls4Key { prefixlen: number; addr: number }
export const cls4KeyCodec = new StructCodec<Cls4Key>('tortie_cls4_key', 8, [
  { name: 'prefixlen', kind: 'u32', offset: 0 },
  { name: 'addr', kind: 'be32', offset: 4 },
]);

export interface TableMeta { flags: number; miss_rule: number; hash: Buffer }
export const tableCodec = new StructCodec<TableMeta>('tortie_table', 16, [
  { name: 'flags', kind: 'u32', offset: 0 },
  { name: 'miss_rule', kind: 'u32', offset: 4 },
  { name: 'hash', kind: 'bytes', offset: 8, size: 8 },
]);

export interface ProjKey { table: number; gclass: number }
export const projKeyCodec = new StructCodec<ProjKey>('tortie_proj_key', 8, [
  { name: 'table', kind: 'u32', offset: 0 },
  { name: 'gclass', kind: 'u32', offset: 4 },
]);

export interface SpcKey { prefixlen: number; table: number; proto: number; port: number }
export const spcKeyCodec = new StructCodec<SpcKey>('tortie_spc_key', 12, [
  { name: 'prefixlen', kind: 'u32', offset: 0 },
  { name: 'table', kind: 'u32', offset: 4 },
  { name: 'proto', kind: 'u16', offset: 8 },
  { name: 'port', kind: 'be16', offset: 10 },
]);

export interface PolKey { prefixlen: number; table: number; lclass: number; proto: number; sclass: number; port: number }
export const polKeyCodec = new StructCodec<PolKey>('tortie_pol_key', 20, [
  { name: 'prefixlen', kind: 'u32', offset: 0 },
  { name: 'table', kind: 'u32', offset: 4 },
  { name: 'lclass', kind: 'u32', offset: 8 },
  { name: 'proto', kind: 'u16', offset: 12 },
  { name: 'sclass', kind: 'u16', offset: 14 },
  { name: 'port', kind: 'be16', offset: 16 },
]);

export interface VerdictValue { action: number; nlog: number; flags: number; rule: number; log_rules: number[] }
export const verdictCodec = new StructCodec<VerdictValue>('tortie_verdict', 24, [
  { name: 'action', kind: 'u8', offset: 0 },
  { name: 'nlog', kind: 'u8', offset: 1 },
  { name: 'flags', kind: 'u16', offset: 2 },
  { name: 'rule', kind: 'u32', offset: 4 },
  { name: 'log_rules', kind: 'u32array', offset: 8, size: 16 },
]);

export interface Ct4Key { addr_a: number; addr_b: number; port_a: number; port_b: number; proto: number }
export const ct4KeyCodec = new StructCodec<Ct4Key>('tortie_ct4_key', 16, [
  { name: 'addr_a', kind: 'be32', offset: 0 },
  { name: 'addr_b', kind: 'be32', offset: 4 },
  { name: 'port_a', kind: 'be16', offset: 8 },
  { name: 'port_b', kind: 'be16', offset: 10 },
  { name: 'proto', kind: 'u8', offset: 12 },
]);

export interface CtValue { last_seen_ns: bigint; created_ns: bigint; flags: bigint; state: number; rule: number }
export const ctValueCodec = new StructCodec<CtValue>('tortie_ct_value', 32, [
  { name: 'last_seen_ns', kind: 'u64', offset: 0 },
  { name: 'created_ns', kind: 'u64', offset: 8 },
  { name: 'flags', kind: 'u64', offset: 16 },
  { name: 'state', kind: 'u8', offset: 24 },
  { name: 'rule', kind: 'u32', offset: 28 },
]);

export interface Frag4Key { saddr: number; daddr: number; id: number; proto: number }
export const frag4KeyCodec = new StructCodec<Frag4Key>('tortie_frag4_key', 12, [
  { name: 'saddr', kind: 'be32', offset: 0 },
  { name: 'daddr', kind: 'be32', offset: 4 },
  { name: 'id', kind: 'be16', offset: 8 },
  { name: 'proto', kind: 'u8', offset: 10 },
]);

export interface FragValue { sport: number; dport: number; ct_sport: number; ct_dport: number }
export const fragValueCodec = new StructCodec<FragValue>('tortie_frag_value', 8, [
  { name: 'sport', kind: 'be16', offset: 0 },
  { name: 'dport', kind: 'be16', offset: 2 },
  { name: 'ct_sport', kind: 'be16', offset: 4 },
  { name: 'ct_dport', kind: 'be16', offset: 6 },
]);

export interface Pf4Key { prefixlen: number; side: number; addr: number }
export const pf4KeyCodec = new StructCodec<Pf4Key>('tortie_pf4_key', 12, [
  { name: 'prefixlen', kind: 'u32', offset: 0 },
  { name: 'side', kind: 'u8', offset: 4 },
  { name: 'addr', kind: 'be32', offset: 8 },
]);

export interface PfValue { kind: number; rule: number }
export const pfValueCodec = new StructCodec<PfValue>('tortie_pf_value', 8, [
  { name: 'kind', kind: 'u32', offset: 0 },
  { name: 'rule', kind: 'u32', offset: 4 },
]);

export interface CntKey { ifindex: number; dir: number; reason: number }
export const cntKeyCodec = new StructCodec<CntKey>('tortie_cnt_key', 8, [
  { name: 'ifindex', kind: 'u32', offset: 0 },
  { name: 'dir', kind: 'u8', offset: 4 },
  { name: 'reason', kind: 's16', offset: 6 },
]);

export interface CntValue { packets: bigint; bytes: bigint }
export const cntValueCodec = new StructCodec<CntValue>('tortie_cnt_value', 16, [
  { name: 'packets', kind: 'u64', offset: 0 },
  { name: 'bytes', kind: 'u64', offset: 8 },
]);

export interface EventRecord {
  ts_ns: bigint; kind: number; ifindex: number; ep_id: number; rule: number; reason: number;
  dir: number; family: number; proto: number; sport: number; dport: number; saddr: Buffer; daddr: Buffer;
}
export const eventCodec = new StructCodec<EventRecord>('tortie_event', 72, [
  { name: 'ts_ns', kind: 'u64', offset: 0 },
  { name: 'kind', kind: 'u32', offset: 8 },
  { name: 'ifindex', kind: 'u32', offset: 12 },
  { name: 'ep_id', kind: 'u32', offset: 16 },
  { name: 'rule', kind: 'u32', offset: 20 },
  { name: 'reason', kind: 's32', offset: 24 },
  { name: 'dir', kind: 'u8', offset: 28 },
  { name: 'family', kind: 'u8', offset: 29 },
  { name: 'proto', kind: 'u8', offset: 30 },
  { name: 'sport', kind: 'u16', offset: 32 },
  { name: 'dport', kind: 'u16', offset: 34 },
  { name: 'saddr', kind: 'bytes', offset: 36, size: 16 },
  { name: 'daddr', kind: 'bytes', offset: 52, size: 16 },
]);

/** Every codec whose layout the BTF test checks. */
export const ALL_CODECS = [
  endpointCodec, epAddrKeyCodec, cls4KeyCodec, tableCodec, projKeyCodec, spcKeyCodec, polKeyCodec,
  verdictCodec, ct4KeyCodec, ctValueCodec, frag4KeyCodec, fragValueCodec, pf4KeyCodec, pfValueCodec,
  cntKeyCodec, cntValueCodec, eventCodec,
];

/** __u32 map values (class ids, local classes, sport classes, epaddr flags). */
export function u32Value(v: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; }
export function u32Key(v: number): Buffer { return u32Value(v); }
export function readU32(b: Buffer): number { return b.readUInt32LE(0); }
