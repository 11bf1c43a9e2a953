/**
 * Codecs and constants for the networking maps (bpf/shared/maps.h, "networking" section; map
 * semantics in bpf/lib/route.h and bpf/lib/nat.h). test/networking checks each layout against
 * the BTF of tortie_uplink.bpf.o. Addresses are dotted-quad strings (codec type ipv4), the one
 * address convention of every codec (src/dataplane/native/codec.ts).
 */
import { defineStruct, type BpfMap } from '../native';
import type { ValueOf } from './codecs';
import { prefix4 } from './encode';
import { formatIP, maskCidr, parseCidrOrIp, parseIP } from '../../primitives';

export const NET_MAP = {
  rt4: 'tortie_rt4_v1',
  pool4: 'tortie_pool4_v1',
  node4: 'tortie_node4_v1',
  netcfg: 'tortie_netcfg_v1',
  nat4: 'tortie_nat4_v2',
  natq4: 'tortie_natq4_v1',
  netstat: 'tortie_netstat_v1',
  vxcfg: 'tortie_vxcfg_v1',
  vxst: 'tortie_vxst_v1',
  nat6: 'tortie_nat6_v1',
  natq6: 'tortie_natq6_v1',
  pool6: 'tortie_pool6_v1',
  node6: 'tortie_node6_v1',
  netcfg6: 'tortie_netcfg6_v1',
  nfrag6: 'tortie_nfrag6_v1',
  rt6: 'tortie_rt6_v1',
  vx6st: 'tortie_vx6st_v1',
} as const;

/** TORTIE_RT_F_*: VXLAN (with ENCAP) is TORTIE_RT_F_VXLAN, the encapsulation is VXLAN rather than IPIP. */
export const RT_F = { WORKLOAD: 1, ENCAP: 2, VXLAN: 4 } as const;
export const POOL_F = { NAT_OUT: 1, DISABLED: 2 } as const;
export const NODE_F = { SAME_SUBNET: 1, SELF: 2 } as const;
export const NAT_DIR = { FWD: 0, REV: 1 } as const;
export const NATF = { FIN_OUT: 1, FIN_IN: 2, RST: 4, REPLY: 8, RST_IN: 16, FIN_IN_SEEN: 32, DONE: 64, TW_TS: 128, /** FWD entries: the same bit as DONE */ PICKUP: 64 } as const;

/** enum tortie_netstat, in index order. */
export const NETSTAT = ['encapFast', 'encapUplink', 'encapFallback', 'decap', 'snat', 'snatNew', 'snatRetry', 'rnat', 'natFrag', 'decapFast', 'natHostSock'] as const;
export type NetStatName = typeof NETSTAT[number];
export type NetStats = Record<NetStatName, bigint>;

export const rt4KeyCodec = defineStruct('tortie_rt4_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'addr', type: 'ipv4' },
] as const);

export const routeCodec = defineStruct('tortie_route', [
  { name: 'next_hop', type: 'ipv4' },
  { name: 'flags', type: 'u32' },
] as const);

export const poolCodec = defineStruct('tortie_pool', [
  { name: 'flags', type: 'u32' },
  { name: 'pad', type: 'pad', length: 4 },
] as const);

export const nodeInfoCodec = defineStruct('tortie_node_info', [
  { name: 'flags', type: 'u32' },
  { name: 'pad', type: 'pad', length: 4 },
] as const);

export const nodeKeyCodec = defineStruct('tortie_node_key', [{ name: 'addr', type: 'ipv4' }] as const);

export const netcfgCodec = defineStruct('tortie_netcfg', [
  { name: 'node_ip', type: 'ipv4' },
  { name: 'uplink_ifindex', type: 'u32' },
  { name: 'ipip_mtu', type: 'u32' },
  { name: 'snat_ip', type: 'ipv4' },
] as const);

/** tortie_vxcfg_v1 (bpf/lib/vxlan.h): this node's VNI (0 = VXLAN off), UDP port, VXLAN MTU. */
export const vxcfgCodec = defineStruct('tortie_vxlan_cfg', [
  { name: 'vni', type: 'u32' },
  { name: 'port', type: 'u32' },
  { name: 'mtu', type: 'u32' },
  { name: 'pad', type: 'pad', length: 4 },
] as const);

/** enum tortie_vxstat, in index order. */
export const VXSTAT = ['encapFast', 'encapUplink', 'encapFallback', 'decap'] as const;
export type VxStats = Record<typeof VXSTAT[number], bigint>;

/** Sums tortie_vxst_v1 over CPUs. */
export function readVxStats(m: BpfMap): VxStats {
  return sumPerCpuCounters(m, VXSTAT);
}

export const nat4KeyCodec = defineStruct('tortie_nat4_key', [
  { name: 'saddr', type: 'ipv4' },
  { name: 'daddr', type: 'ipv4' },
  { name: 'sport', type: 'be16' },
  { name: 'dport', type: 'be16' },
  { name: 'proto', type: 'u8' },
  { name: 'dir', type: 'u8' },
  { name: 'pad', type: 'pad', length: 2 },
] as const);
export type Nat4Key = ValueOf<typeof nat4KeyCodec>;

export const nat4ValueCodec = defineStruct('tortie_nat4_value', [
  { name: 'last_seen_ns', type: 'u64' },
  { name: 'created_ns', type: 'u64' },
  { name: 'addr', type: 'ipv4' },
  { name: 'port', type: 'be16' },
  { name: 'flags', type: 'u8' },
  { name: 'pad', type: 'pad', length: 1 },
] as const);
export type Nat4Value = ValueOf<typeof nat4ValueCodec>;

/** tortie_natq4_v1 / tortie_ctq4_v1: per-workload entry counts (bpf/shared/maps.h, kinds TORTIE_QUOTA_*). */
export const QUOTA = { CREATED: 0, RELEASED: 1, MOVED: 2 } as const;
export const quota4KeyCodec = defineStruct('tortie_quota4_key', [
  { name: 'addr', type: 'ipv4' },
  { name: 'kind', type: 'u32' },
] as const);
export const quotaValueCodec = defineStruct('tortie_quota_value', [{ name: 'count', type: 'u64' }] as const);

// NAT66 (bpf/lib/nat6.h): the IPv4 layouts with 128-bit addresses.
export const nat6KeyCodec = defineStruct('tortie_nat6_key', [
  { name: 'saddr', type: 'ipv6' },
  { name: 'daddr', type: 'ipv6' },
  { name: 'sport', type: 'be16' },
  { name: 'dport', type: 'be16' },
  { name: 'proto', type: 'u8' },
  { name: 'dir', type: 'u8' },
  { name: 'pad', type: 'pad', length: 2 },
] as const);
export type Nat6Key = ValueOf<typeof nat6KeyCodec>;

export const nat6ValueCodec = defineStruct('tortie_nat6_value', [
  { name: 'last_seen_ns', type: 'u64' },
  { name: 'created_ns', type: 'u64' },
  { name: 'addr', type: 'ipv6' },
  { name: 'port', type: 'be16' },
  { name: 'flags', type: 'u8' },
  { name: 'pad', type: 'pad', length: 5 },
] as const);
export type Nat6Value = ValueOf<typeof nat6ValueCodec>;

export const pool6KeyCodec = defineStruct('tortie_pool6_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'addr', type: 'ipv6' },
] as const);

export const node6KeyCodec = defineStruct('tortie_node6_key', [{ name: 'addr', type: 'ipv6' }] as const);

export const netcfg6Codec = defineStruct('tortie_netcfg6', [
  { name: 'node_ip6', type: 'ipv6' },
  { name: 'snat_ip6', type: 'ipv6' },
] as const);

/** tortie_nfrag6_v1's value (key: tortie_frag6_key of codecs.ts): the address NAT66 wrote into a first fragment. */
export const natFrag6ValueCodec = defineStruct('tortie_natfrag6_value', [{ name: 'nat_addr', type: 'ipv6' }] as const);

/** tortie_rt6_v1 values (bpf/lib/vxlan6.h): the node's IPv6 address and RT_F (key: lpm6Key). */
export const route6Codec = defineStruct('tortie_route6', [
  { name: 'next_hop', type: 'ipv6' },
  { name: 'flags', type: 'u32' },
  { name: 'pad', type: 'pad', length: 4 },
] as const);

/** A node's IPv6 VXLAN MAC as bpf/lib/vxlan6.h derives it: 0e:76 and the XOR of the address's four 32-bit words. */
export function vxlan6Mac(ip: string): string {
  const b = Buffer.from(parseIP(ip).bytes);
  const w = (b.readUInt32BE(0) ^ b.readUInt32BE(4) ^ b.readUInt32BE(8) ^ b.readUInt32BE(12)) >>> 0;
  return ['0e', '76', ...[24, 16, 8, 0].map((s) => ((w >>> s) & 0xff).toString(16).padStart(2, '0'))].join(':');
}

/** enum tortie_vx6stat, in index order. */
export const VX6STAT = ['encapUplink', 'decap'] as const;

/** Codecs whose struct exists in the uplink object's BTF (tortie_node_key is TS-only). */
export const NET_CODECS = [rt4KeyCodec, routeCodec, poolCodec, nodeInfoCodec, netcfgCodec, nat4KeyCodec, nat4ValueCodec,
  quota4KeyCodec, quotaValueCodec, vxcfgCodec, nat6KeyCodec, nat6ValueCodec, pool6KeyCodec, node6KeyCodec, netcfg6Codec,
  natFrag6ValueCodec, route6Codec];

/** Mappings currently in tortie_nat6_v1, decoded (tests, status). */
export function readNat6Entries(m: BpfMap): { key: Nat6Key; value: Nat6Value }[] {
  const { keys, values } = m.entries();
  return keys.map((k, i) => ({ key: nat6KeyCodec.decode(k), value: nat6ValueCodec.decode(values[i]!) }));
}

/** LPM key of tortie_pool6_v1 for an IPv6 prefix (host bits cleared). */
export function lpm6Key(cidr: string): Buffer {
  const c = maskCidr(parseCidrOrIp(cidr));
  if (c.ip.version !== 6) throw new RangeError(`${cidr} is not an IPv6 prefix`);
  return pool6KeyCodec.encode({ prefixlen: c.prefix, addr: formatIP(c.ip) });
}

export function lpm6KeyCidr(key: Buffer): string {
  const k = pool6KeyCodec.decode(key);
  return `${k.addr}/${k.prefixlen}`;
}

/** A per-CPU array of u64 counters, index i named names[i], summed over CPUs. */
export function sumPerCpuCounters<K extends string>(m: BpfMap, names: readonly K[]): Record<K, bigint> {
  const out = {} as Record<K, bigint>;
  names.forEach((name, i) => {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(i);
    const v = m.lookup(k);
    let sum = 0n;
    if (v) for (const part of m.splitPerCpu(v)) sum += part.readBigUInt64LE(0);
    out[name] = sum;
  });
  return out;
}

/** Sums tortie_netstat_v1 over CPUs. */
export function readNetStats(m: BpfMap): NetStats {
  return sumPerCpuCounters(m, NETSTAT);
}

/** Mappings currently in tortie_nat4_v2, decoded (tests, status). */
export function readNatEntries(m: BpfMap): { key: Nat4Key; value: Nat4Value }[] {
  const { keys, values } = m.entries();
  return keys.map((k, i) => ({ key: nat4KeyCodec.decode(k), value: nat4ValueCodec.decode(values[i]!) }));
}

/** LPM key of tortie_rt4_v1 / tortie_pool4_v1 for `a.b.c.d/len` (host bits cleared). */
export function lpm4Key(cidr: string): Buffer {
  const { addr, len } = prefix4(cidr);
  return rt4KeyCodec.encode({ prefixlen: len, addr });
}

export function lpm4KeyCidr(key: Buffer): string {
  const k = rt4KeyCodec.decode(key);
  return `${k.addr}/${k.prefixlen}`;
}

export const NETCFG_KEY = Buffer.alloc(4);
