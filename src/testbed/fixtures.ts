/**
 * Test fixtures, one module for tests and benchmarks:
 * - resource builders: plain v3 objects as validation would produce them (`wep`, `gnp`, `np`,
 *   `profile`, `tier`, `namespace`, `node`, `gns`, `netset`, `pool`, `allowAllProfile`);
 * - packet builders and checks: frames with valid L4 checksums (`tcpFrame`, `udpFrame`,
 *   `icmpFrame`), an IPv4 view (`ipAt`), checksums recomputed from the bytes (`l4ChecksumOk`,
 *   `fillL4Checksum`) so incremental updates in BPF are verified independently; IPv6 frames without
 *   extension headers likewise (`frame6`, `ip6At`);
 * - `stampOlderThan`: a CLOCK_MONOTONIC stamp older than n seconds, for ageing map entries.
 * The header builders themselves are src/dataplane/bpf/packet.ts.
 */
import { inetChecksum, eth, eth6, ipv4, ipv6Bytes, tcp, udp, icmp, PROTO, NH6, type EthOpts } from '../dataplane/bpf/packet';
import { formatIP } from '../primitives';
import { workloadEndpointName } from '../model';
import type {
  GlobalNetworkPolicy, GlobalNetworkPolicySpec, GlobalNetworkSet, HostEndpoint, IPPool, NetworkSet, Namespace, NetworkPolicy, NetworkPolicySpec,
  Node, Profile, ProfileSpec, Tier, WorkloadEndpoint, WorkloadEndpointPort,
} from '../model';

const V3 = 'projectcalico.org/v3' as const;

// ---------------------------------------------------------------- resources

/** A WorkloadEndpoint `namespace/name` (interface `cali<name>` cut to 15, node `node1`, /32 when no prefix). */
export function wep(
  key: string,
  o: { labels?: Record<string, string>; ip?: string | string[]; node?: string; profiles?: string[]; ports?: WorkloadEndpointPort[]; sa?: string; iface?: string; mac?: string } = {},
): WorkloadEndpoint {
  const [namespace, name] = key.split('/') as [string, string];
  const ips = o.ip === undefined ? [] : Array.isArray(o.ip) ? o.ip : [o.ip];
  const w: WorkloadEndpoint = {
    apiVersion: V3,
    kind: 'WorkloadEndpoint',
    metadata: { name, namespace, labels: { ...(o.labels ?? {}) } },
    spec: {
      orchestrator: 'k8s',
      node: o.node ?? 'node1',
      ipNetworks: ips.map((i) => (i.includes('/') ? i : i.includes(':') ? `${i}/128` : `${i}/32`)),
      interfaceName: o.iface ?? `cali${name}`.slice(0, 15),
      profiles: o.profiles ?? [],
    },
  };
  if (o.ports) w.spec.ports = o.ports;
  if (o.sa) w.spec.serviceAccountName = o.sa;
  if (o.mac) w.spec.mac = o.mac;
  return w;
}

/**
 * A WorkloadEndpoint as the CNI plugin writes it for a Kubernetes pod: named from node, pod and
 * endpoint (workloadEndpointName), namespace `default` unless given, profiles `allow-all`.
 */
export function k8sWep(o: { node: string; pod: string; ip: string; iface: string; namespace?: string; labels?: Record<string, string>; profiles?: string[] }): WorkloadEndpoint {
  const spec = { node: o.node, orchestrator: 'k8s', pod: o.pod, endpoint: 'eth0', interfaceName: o.iface, ipNetworks: [`${o.ip}/32`], profiles: o.profiles ?? ['allow-all'] };
  const name = workloadEndpointName(spec);
  if (typeof name !== 'string') throw new Error(`workload endpoint name for pod ${o.pod}: ${name.path} ${name.reason}`);
  const metadata: WorkloadEndpoint['metadata'] = { name, namespace: o.namespace ?? 'default' };
  if (o.labels) metadata.labels = o.labels;
  return { apiVersion: V3, kind: 'WorkloadEndpoint', metadata, spec };
}

export function gnp(name: string, spec: GlobalNetworkPolicySpec): GlobalNetworkPolicy {
  return { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name }, spec };
}

export function np(key: string, spec: NetworkPolicySpec): NetworkPolicy {
  const [namespace, name] = key.split('/') as [string, string];
  return { apiVersion: V3, kind: 'NetworkPolicy', metadata: { name, namespace }, spec };
}

export function profile(name: string, spec: ProfileSpec): Profile {
  return { apiVersion: V3, kind: 'Profile', metadata: { name }, spec };
}

/** A profile allowing everything both ways (Calico's namespace profiles in a permissive cluster). */
export function allowAllProfile(name: string): Profile {
  return profile(name, { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] });
}

export function tier(name: string, order?: number, defaultAction?: 'Deny' | 'Pass'): Tier {
  const spec: Tier['spec'] = {};
  if (order !== undefined) spec.order = order;
  if (defaultAction !== undefined) spec.defaultAction = defaultAction;
  return { apiVersion: V3, kind: 'Tier', metadata: { name }, spec };
}

export function namespace(name: string, labels: Record<string, string> = {}): Namespace {
  return { apiVersion: V3, kind: 'Namespace', metadata: { name, labels } };
}

export function node(name: string, labels: Record<string, string> = {}, ipv4Address?: string): Node {
  const n: Node = { apiVersion: V3, kind: 'Node', metadata: { name, labels }, spec: {} };
  if (ipv4Address) n.spec.bgp = { ipv4Address };
  return n;
}

export function gns(name: string, nets: string[], labels: Record<string, string> = {}): GlobalNetworkSet {
  return { apiVersion: V3, kind: 'GlobalNetworkSet', metadata: { name, labels }, spec: { nets } };
}

export function netset(key: string, nets: string[], labels: Record<string, string> = {}): NetworkSet {
  const [namespace, name] = key.split('/') as [string, string];
  return { apiVersion: V3, kind: 'NetworkSet', metadata: { name, namespace, labels }, spec: { nets } };
}

/** A HostEndpoint (node `node1` unless given; interface, expected IPs, profiles, named ports as given). */
export function hep(
  name: string,
  o: { labels?: Record<string, string>; node?: string; iface?: string; ips?: string[]; profiles?: string[]; ports?: { name: string; protocol: string; port: number }[] } = {},
): HostEndpoint {
  const h: HostEndpoint = { apiVersion: V3, kind: 'HostEndpoint', metadata: { name, labels: { ...(o.labels ?? {}) } }, spec: { node: o.node ?? 'node1' } };
  if (o.iface !== undefined) h.spec.interfaceName = o.iface;
  if (o.ips !== undefined) h.spec.expectedIPs = o.ips;
  if (o.profiles !== undefined) h.spec.profiles = o.profiles;
  if (o.ports !== undefined) h.spec.ports = o.ports;
  return h;
}

export function pool(name: string, cidr: string, spec: Partial<IPPool['spec']> = {}): IPPool {
  return { apiVersion: V3, kind: 'IPPool', metadata: { name }, spec: { cidr, ...spec } } as IPPool;
}

// ---------------------------------------------------------------- packets

export const ETH_HLEN = 14;

export interface IpView { src: string; dst: string; proto: number; ttl: number; totLen: number; df: boolean; hlen: number; csumOk: boolean; l4: Buffer; raw: Buffer }

function ipStr(b: Buffer, off: number): string { return [b[off], b[off + 1], b[off + 2], b[off + 3]].join('.'); }

/** Parses the IPv4 header at `off` (default: after Ethernet). */
export function ipAt(frame: Buffer, off = ETH_HLEN): IpView {
  const hlen = (frame[off]! & 0xf) * 4;
  const totLen = frame.readUInt16BE(off + 2);
  const raw = frame.subarray(off, off + totLen);
  return {
    src: ipStr(frame, off + 12), dst: ipStr(frame, off + 16), proto: frame[off + 9]!, ttl: frame[off + 8]!, totLen,
    df: (frame.readUInt16BE(off + 6) & 0x4000) !== 0, hlen, csumOk: inetChecksum(frame.subarray(off, off + hlen)) === 0,
    l4: raw.subarray(hlen), raw,
  };
}

/** True if the TCP/UDP checksum (with pseudo-header) or ICMP checksum of the datagram is valid. */
export function l4ChecksumOk(ip: IpView): boolean {
  if (ip.proto === PROTO.ICMP) return inetChecksum(ip.l4) === 0;
  if (ip.proto === PROTO.UDP && ip.l4.readUInt16BE(6) === 0) return true; // no checksum
  return inetChecksum(Buffer.concat([pseudo(ip.raw, ip.l4.length), ip.l4])) === 0;
}

function pseudo(raw: Buffer, l4len: number): Buffer {
  const p = Buffer.alloc(12);
  raw.copy(p, 0, 12, 20);
  p[9] = raw[9]!;
  p.writeUInt16BE(l4len, 10);
  return p;
}

/** Fills the TCP/UDP/ICMP checksum of an IPv4 datagram in place (the builder leaves TCP/UDP at 0). */
export function fillL4Checksum(datagram: Buffer): Buffer {
  const hlen = (datagram[0]! & 0xf) * 4;
  const proto = datagram[9]!;
  const l4 = datagram.subarray(hlen);
  const at = proto === PROTO.TCP ? 16 : proto === PROTO.UDP ? 6 : 2;
  l4.writeUInt16BE(0, at);
  const sum = proto === PROTO.ICMP ? inetChecksum(l4) : inetChecksum(Buffer.concat([pseudo(datagram, l4.length), l4]));
  l4.writeUInt16BE(proto === PROTO.UDP && sum === 0 ? 0xffff : sum, at);
  return datagram;
}

export interface Flow { src: string; dst: string; sport?: number; dport?: number; flags?: string; id?: number; type?: number; payload?: Buffer; ttl?: number; df?: boolean; id16?: number }

export function tcpFrame(f: Flow, e: EthOpts = {}): Buffer {
  return eth(e, fillL4Checksum(ipv4({ src: f.src, dst: f.dst, proto: PROTO.TCP, ttl: f.ttl, dontFragment: f.df, id: f.id16 },
    tcp({ sport: f.sport ?? 1, dport: f.dport ?? 1, flags: f.flags ?? 'S', payload: f.payload }))));
}

export function udpFrame(f: Flow, e: EthOpts = {}, zeroCsum = false): Buffer {
  const d = ipv4({ src: f.src, dst: f.dst, proto: PROTO.UDP, ttl: f.ttl }, udp({ sport: f.sport ?? 1, dport: f.dport ?? 1, payload: f.payload ?? Buffer.from('hello') }));
  return eth(e, zeroCsum ? d : fillL4Checksum(d));
}

export function icmpFrame(f: Flow, e: EthOpts = {}): Buffer {
  return eth(e, ipv4({ src: f.src, dst: f.dst, proto: PROTO.ICMP, ttl: f.ttl },
    icmp({ type: f.type ?? 8, id: f.id ?? 1, seq: 1, payload: f.payload ?? Buffer.from('0123456789abcdef') })));
}

/** Ports (or echo id) of the datagram: [source, destination]. */
export function portsOf(ip: IpView): [number, number] {
  if (ip.proto === PROTO.ICMP) { const id = ip.l4.readUInt16BE(4); return [id, id]; }
  return [ip.l4.readUInt16BE(0), ip.l4.readUInt16BE(2)];
}

// ---------------------------------------------------------------- IPv6 frames

const CSUM6_AT: Record<number, number> = { [NH6.TCP]: 16, [NH6.UDP]: 6, [NH6.ICMP6]: 2 };

/** The upper-layer checksum over the IPv6 pseudo-header (RFC 8200 8.1) and `l4`. */
export function l4Sum6(src: Buffer, dst: Buffer, nh: number, l4: Buffer): number {
  const p = Buffer.alloc(40);
  src.copy(p, 0);
  dst.copy(p, 16);
  p.writeUInt32BE(l4.length, 32);
  p[39] = nh;
  return inetChecksum(Buffer.concat([p, l4]));
}

/** An IPv6 frame (no extension headers) whose TCP, UDP or ICMPv6 checksum is filled in. */
export function frame6(src: string, dst: string, nh: number, l4: Buffer, e: EthOpts = {}): Buffer {
  const f = eth6({ src, dst, proto: nh }, l4, e);
  const at = ETH_HLEN + 40 + CSUM6_AT[nh]!;
  f.writeUInt16BE(0, at);
  const sum = l4Sum6(ipv6Bytes(src), ipv6Bytes(dst), nh, f.subarray(ETH_HLEN + 40));
  f.writeUInt16BE(nh === NH6.UDP && sum === 0 ? 0xffff : sum, at);
  return f;
}

export interface Ip6View { src: string; dst: string; nh: number; l4: Buffer; ports: [number, number]; csumOk: boolean }

/** An IPv6 frame without extension headers: addresses, ports (echo id twice for ICMPv6), checksum recomputed. */
export function ip6At(frame: Buffer, off = ETH_HLEN): Ip6View {
  const ip = frame.subarray(off);
  const nh = ip[6]!;
  const l4 = ip.subarray(40, 40 + ip.readUInt16BE(4));
  const addr = (o: number) => formatIP({ version: 6, bytes: [...ip.subarray(o, o + 16)] });
  const sum = l4Sum6(ip.subarray(8, 24), ip.subarray(24, 40), nh, l4);
  return {
    src: addr(8), dst: addr(24), nh, l4,
    ports: nh === NH6.ICMP6 ? [l4.readUInt16BE(4), l4.readUInt16BE(4)] : [l4.readUInt16BE(0), l4.readUInt16BE(2)],
    csumOk: sum === 0 || sum === 0xffff,
  };
}

/** A last_seen stamp older than `sec` on the monotonic clock (bpf_ktime_get_ns's). Waits (never
 *  fails) on a machine whose clock has not run that long yet: no assumption about the time since boot. */
export async function stampOlderThan(sec: number): Promise<bigint> {
  const age = BigInt(Math.round((sec + 1) * 1e9));
  while (process.hrtime.bigint() <= age) await new Promise((r) => setTimeout(r, 100));
  return process.hrtime.bigint() - age;
}
