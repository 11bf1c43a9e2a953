/**
 * One address family as the workload-program tests see it, so a test body written once runs in
 * IPv4 and in IPv6 (`for (const F of FAMILIES)`): the addresses of the endpoints and peers, the
 * frame builders, ICMP's numbering (echo, unreachable, "too big"), and the family's conntrack
 * map, key and quota map. IPv6 addresses are ULA (fd00::/8), IPv4 the ones the IPv4 tests use.
 */
import { eth, eth6, ipv4, ipv6, icmp, icmp6, tcp, udp, flowPacket, frag6, PROTO, NH6, ipv4ToU32, ipv6Bytes, type FlowPacket } from '../dataplane/bpf/packet';
import { ct4KeyCodec, ct6KeyCodec, ctValueCodec, type CtValue } from '../dataplane/bpf/codecs';
import type { WepHarness } from './wep-harness';

export interface Family {
  v: 4 | 6;
  label: 'IPv4' | 'IPv6';
  /** The endpoint under test, a second local workload, a remote peer, a router, another remote. */
  EP: string; EP2: string; PEER: string; ROUTER: string; OTHER: string;
  /** `addr` as a host prefix (/32, /128). */
  host(addr: string): string;
  /** ICMP of the family: protocol number, echo request and reply, unreachable (type, port code), "too big" (type, code). */
  icmpProto: number; echoRequest: number; echoReply: number; unreach: number; portUnreach: number; tooBig: [number, number];
  /** A datagram (no Ethernet). */
  ip(src: string, dst: string, proto: number, l4: Buffer): Buffer;
  /** An Ethernet frame. */
  frame(src: string, dst: string, proto: number, l4: Buffer): Buffer;
  /** An ICMP message of the family (header + payload). */
  icmp(type: number, code: number, o?: { id?: number; payload?: Buffer }): Buffer;
  /** flowPacket (IPv6 from IPv6 addresses; ICMP is `icmpProto`). */
  flow(f: FlowPacket): Buffer;
  /** A fragment of `proto`'s datagram: `part` at `offset` 8-byte units, more following or not. */
  fragment(src: string, dst: string, proto: number, id: number, offset: number, mf: boolean, part: Buffer): Buffer;
  /** The start of a datagram as an ICMP error quotes it (IP header + 8 bytes of L4). */
  quote(src: string, dst: string, proto: number, l4: Buffer): Buffer;
  /** The conntrack entry of a flow, or undefined. */
  ctEntry(h: WepHarness, a: [string, number], b: [string, number], proto: number): CtValue | undefined;
  ctKeys(h: WepHarness): number;
  /** The family's conntrack table and per-workload count map (for the agent's sweep). */
  ct(h: WepHarness): WepHarness['dp']['ct'];
  ctq(h: WepHarness): WepHarness['dp']['ctq'];
  /** An informational ICMP type that is neither echo nor neighbour discovery (timestamp, node information query). */
  icmpOther: number;
}

const hostOrder4 = (a: string) => ipv4ToU32(a);
const hostOrder6 = (a: string) => ipv6Bytes(a).toString('hex');

export const V4: Family = {
  v: 4, label: 'IPv4',
  EP: '192.168.1.10', EP2: '192.168.1.20', PEER: '10.2.3.4', ROUTER: '198.18.0.1', OTHER: '10.9.9.9',
  host: (a) => `${a}/32`,
  icmpProto: PROTO.ICMP, echoRequest: 8, echoReply: 0, unreach: 3, portUnreach: 3, tooBig: [3, 4],
  ip: (src, dst, proto, l4) => ipv4({ src, dst, proto }, l4),
  frame: (src, dst, proto, l4) => eth({}, ipv4({ src, dst, proto }, l4)),
  icmp: (type, code, o = {}) => icmp({ type, code, id: o.id, payload: o.payload }),
  flow: (f) => flowPacket(f),
  quote: (src, dst, proto, l4) => ipv4({ src, dst, proto }, l4.subarray(0, 8)),
  fragment: (src, dst, proto, id, offset, mf, part) => eth({}, ipv4({ src, dst, proto, id, mf, fragOffset: offset }, part)),
  ctEntry(h, a, b, proto) {
    const [lo, hi] = hostOrder4(a[0]) < hostOrder4(b[0]) || (a[0] === b[0] && a[1] <= b[1]) ? [a, b] : [b, a];
    const v = h.dp.maps.ct4!.lookup(ct4KeyCodec.encode({ addr_a: lo[0], addr_b: hi[0], port_a: lo[1], port_b: hi[1], proto }));
    return v ? ctValueCodec.decode(v) : undefined;
  },
  ctKeys: (h) => h.dp.maps.ct4!.keys().length,
  ct: (h) => h.dp.ct, ctq: (h) => h.dp.ctq, icmpOther: 13,
};

export const V6: Family = {
  v: 6, label: 'IPv6',
  EP: 'fd00:10::a', EP2: 'fd00:10::14', PEER: 'fd00:20::3:4', ROUTER: 'fd00:18::1', OTHER: 'fd00:20::9:9',
  host: (a) => `${a}/128`,
  icmpProto: NH6.ICMP6, echoRequest: 128, echoReply: 129, unreach: 1, portUnreach: 4, tooBig: [2, 0],
  ip: (src, dst, proto, l4) => ipv6({ src, dst, proto }, l4),
  frame: (src, dst, proto, l4) => eth6({ src, dst, proto }, l4),
  icmp: (type, code, o = {}) => icmp6({ type, code, id: o.id, payload: o.payload }),
  flow: (f) => flowPacket(f),
  quote: (src, dst, proto, l4) => ipv6({ src, dst, proto }, l4.subarray(0, 8)),
  fragment: (src, dst, proto, id, offset, mf, part) => eth6({ src, dst, proto, exts: [frag6({ offset, mf, id })] }, part),
  ctEntry(h, a, b, proto) {
    const [lo, hi] = hostOrder6(a[0]) < hostOrder6(b[0]) || (a[0] === b[0] && a[1] <= b[1]) ? [a, b] : [b, a];
    const v = h.dp.maps.ct6!.lookup(ct6KeyCodec.encode({ addr_a: lo[0], addr_b: hi[0], port_a: lo[1], port_b: hi[1], proto }));
    return v ? ctValueCodec.decode(v) : undefined;
  },
  ctKeys: (h) => h.dp.maps.ct6!.keys().length,
  ct: (h) => h.dp.ct6, ctq: (h) => h.dp.ctq6, icmpOther: 139,
};

export const FAMILIES: readonly Family[] = [V4, V6];

/** TCP and UDP frames of a family (the common case of the tests). */
export function tcpFrame(F: Family, src: string, dst: string, sport: number, dport: number, flags: string, seq = 0, ack = 0, len = 0): Buffer {
  return F.frame(src, dst, PROTO.TCP, tcp({ sport, dport, flags, seq, ack, payload: len ? Buffer.alloc(len, 0x61) : undefined }));
}
export function udpFrame(F: Family, src: string, dst: string, sport: number, dport: number, payload?: Buffer): Buffer {
  return F.frame(src, dst, PROTO.UDP, udp({ sport, dport, payload }));
}
