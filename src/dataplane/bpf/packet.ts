/**
 * Packet builder for BPF_PROG_TEST_RUN tests and benchmarks: composable Ethernet / VLAN /
 * IPv4 / TCP / UDP / ICMP builders producing wire-format Buffers. Defaults produce valid
 * packets (lengths and IPv4 header checksum computed); every field a malformed-input test
 * needs to lie about (IHL, total length, version, data offset, fragment offset) can be
 * overridden, and `truncate()` cuts a packet short. IPv6: `ipv6()` with a chain of extension
 * headers (`ext6`, `frag6`), `icmp6()`.
 */
import { IPPROTO, tryIpv4ToU32, tryParseIPv6 } from '../../primitives';

export interface EthOpts {
  src?: string;          // MAC, default 02:00:00:00:00:01
  dst?: string;          // MAC, default ee:ee:ee:ee:ee:ee (Calico host side)
  ethertype?: number;    // default 0x0800
  vlans?: number[];      // 802.1Q tags, outermost first
}

export interface Ipv4Opts {
  src: string;
  dst: string;
  proto: number;
  ttl?: number;
  id?: number;
  tos?: number;
  /** More-fragments flag. */
  mf?: boolean;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
  dontFragment?: boolean;
  /** Raw option bytes (padded to 4 bytes with End-of-Options); IHL grows accordingly. */
  options?: Buffer;
  /** Overrides (for malformed-input tests). */
  ihl?: number;
  totalLength?: number;
  version?: number;
}

export interface TcpOpts {
  sport: number;
  dport: number;
  /** Any of 'F','S','R','P','A','U' (e.g. 'SA'); default 'S'. */
  flags?: string;
  seq?: number;
  ack?: number;
  /** Data offset in 32-bit words (default 5). */
  doff?: number;
  payload?: Buffer;
}

export interface UdpOpts { sport: number; dport: number; payload?: Buffer }
export interface IcmpOpts { type: number; code?: number; id?: number; seq?: number; payload?: Buffer }

export const PROTO = IPPROTO;
export const ETH_P = { IPV4: 0x0800, ARP: 0x0806, IPV6: 0x86dd, VLAN: 0x8100, QINQ: 0x88a8 } as const;

export function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6) throw new TypeError(`packet: MAC "${mac}" is not six colon-separated bytes`);
  return Buffer.from(parts.map((p) => {
    const v = parseInt(p, 16);
    if (!/^[0-9a-fA-F]{1,2}$/.test(p) || Number.isNaN(v)) throw new TypeError(`packet: MAC "${mac}" has a bad byte "${p}"`);
    return v;
  }));
}

export function ipv4Bytes(ip: string): Buffer {
  const v = tryIpv4ToU32(ip);
  if (v === undefined) throw new TypeError(`packet: "${ip}" is not a dotted-quad IPv4 address`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v, 0);
  return b;
}

export { ipv4ToU32, u32ToIpv4 } from '../../primitives';

/** RFC 1071 ones'-complement sum over `buf`. */
export function inetChecksum(buf: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length & 1) sum += buf[buf.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function eth(o: EthOpts, payload: Buffer): Buffer {
  const vlans = o.vlans ?? [];
  const hdr = Buffer.alloc(14 + 4 * vlans.length);
  macBytes(o.dst ?? 'ee:ee:ee:ee:ee:ee').copy(hdr, 0);
  macBytes(o.src ?? '02:00:00:00:00:01').copy(hdr, 6);
  let off = 12;
  for (const tag of vlans) {
    hdr.writeUInt16BE(ETH_P.VLAN, off);
    hdr.writeUInt16BE(tag & 0x0fff, off + 2);
    off += 4;
  }
  hdr.writeUInt16BE(o.ethertype ?? ETH_P.IPV4, off);
  return Buffer.concat([hdr, payload]);
}

export function ipv4(o: Ipv4Opts, payload: Buffer): Buffer {
  let opts = o.options ?? Buffer.alloc(0);
  if (opts.length % 4) opts = Buffer.concat([opts, Buffer.alloc(4 - (opts.length % 4))]);
  const hlen = 20 + opts.length;
  const hdr = Buffer.alloc(hlen);
  const ihl = o.ihl ?? hlen / 4;
  hdr[0] = ((o.version ?? 4) << 4) | (ihl & 0xf);
  hdr[1] = o.tos ?? 0;
  hdr.writeUInt16BE(o.totalLength ?? hlen + payload.length, 2);
  hdr.writeUInt16BE(o.id ?? 0x1234, 4);
  const flags = (o.dontFragment ? 0x4000 : 0) | (o.mf ? 0x2000 : 0);
  hdr.writeUInt16BE(flags | ((o.fragOffset ?? 0) & 0x1fff), 6);
  hdr[8] = o.ttl ?? 64;
  hdr[9] = o.proto;
  ipv4Bytes(o.src).copy(hdr, 12);
  ipv4Bytes(o.dst).copy(hdr, 16);
  opts.copy(hdr, 20);
  hdr.writeUInt16BE(inetChecksum(hdr), 10);
  return Buffer.concat([hdr, payload]);
}

const TCP_FLAG_BITS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10, U: 0x20, E: 0x40, C: 0x80 };

export function tcpFlags(flags: string): number {
  let v = 0;
  for (const c of flags) {
    const b = TCP_FLAG_BITS[c];
    if (b === undefined) throw new TypeError(`packet: unknown TCP flag "${c}" in "${flags}"`);
    v |= b;
  }
  return v;
}

/** TCP header (checksum left 0: tc/XDP programs here never verify L4 checksums). */
export function tcp(o: TcpOpts): Buffer {
  const doff = o.doff ?? 5;
  const hdr = Buffer.alloc(Math.max(20, doff * 4));
  hdr.writeUInt16BE(o.sport, 0);
  hdr.writeUInt16BE(o.dport, 2);
  hdr.writeUInt32BE((o.seq ?? 1000) >>> 0, 4);
  hdr.writeUInt32BE((o.ack ?? 0) >>> 0, 8);
  hdr[12] = (doff & 0xf) << 4;
  hdr[13] = tcpFlags(o.flags ?? 'S');
  hdr.writeUInt16BE(65535, 14);
  return Buffer.concat([hdr, o.payload ?? Buffer.alloc(0)]);
}

export function udp(o: UdpOpts): Buffer {
  const payload = o.payload ?? Buffer.alloc(0);
  const hdr = Buffer.alloc(8);
  hdr.writeUInt16BE(o.sport, 0);
  hdr.writeUInt16BE(o.dport, 2);
  hdr.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([hdr, payload]);
}

/** VXLAN header (RFC 7348): flags (default I only), 24-bit VNI, reserved bytes `reserved` (default 0). */
export function vxlanHeader(o: { vni: number; flags?: number; reserved?: number }): Buffer {
  const hdr = Buffer.alloc(8);
  hdr[0] = o.flags ?? 0x08;
  hdr.writeUInt32BE(((o.vni & 0xffffff) << 8 | ((o.reserved ?? 0) & 0xff)) >>> 0, 4);
  return hdr;
}

export function icmp(o: IcmpOpts): Buffer {
  const hdr = Buffer.alloc(8);
  hdr[0] = o.type;
  hdr[1] = o.code ?? 0;
  hdr.writeUInt16BE(o.id ?? 0, 4);
  hdr.writeUInt16BE(o.seq ?? 0, 6);
  const all = Buffer.concat([hdr, o.payload ?? Buffer.alloc(0)]);
  all.writeUInt16BE(inetChecksum(all), 2);
  return all;
}

export function ipv6Bytes(ip: string): Buffer {
  const a = tryParseIPv6(ip);
  if (a === undefined) throw new TypeError(`packet: "${ip}" is not IPv6 text`);
  return Buffer.from(a.bytes);
}

/** IPv6 next-header values. */
export const NH6 = { HOP: 0, TCP: 6, UDP: 17, ROUTING: 43, FRAGMENT: 44, ESP: 50, AUTH: 51, ICMP6: 58, NONE: 59, DEST: 60 } as const;

/** One extension header: its next-header value in the chain and its bytes after the first two
 * (next header, length), which ipv6() fills in. */
export interface Ext6 { type: number; body: Buffer; /** Override of the length byte. */ lenByte?: number }

/** Hop-by-hop / destination options / routing header with `body` padded to a multiple of 8 (with
 * the 2 leading bytes); routing: `body` starts with routing type and segments left. */
export function ext6(type: number, body: Buffer = Buffer.alloc(6)): Ext6 {
  const total = Math.ceil((body.length + 2) / 8) * 8;
  return { type, body: Buffer.concat([body, Buffer.alloc(total - 2 - body.length)]) };
}

/** Routing header (type 4 by default) with `segmentsLeft` and one 16-byte address. */
export function routing6(segmentsLeft: number, routingType = 4): Ext6 {
  const body = Buffer.alloc(6 + 16);
  body[0] = routingType;
  body[1] = segmentsLeft;
  return { type: NH6.ROUTING, body };
}

/** Fragment header: offset in 8-byte units, more-fragments flag, identification. */
export function frag6(o: { offset?: number; mf?: boolean; id?: number }): Ext6 {
  const body = Buffer.alloc(6);
  body.writeUInt16BE((((o.offset ?? 0) & 0x1fff) << 3) | (o.mf ? 1 : 0), 0);
  body.writeUInt32BE((o.id ?? 0x1234) >>> 0, 2);
  return { type: NH6.FRAGMENT, body };
}

/** Authentication header with `words` 32-bit words in all (length byte = words - 2). */
export function auth6(words = 4): Ext6 {
  return { type: NH6.AUTH, body: Buffer.alloc(words * 4 - 2), lenByte: words - 2 };
}

export interface Ipv6Opts {
  src: string;
  dst: string;
  /** Upper-layer protocol after the extension headers. */
  proto: number;
  hopLimit?: number;
  exts?: Ext6[];
  /** Overrides (for malformed-input tests). */
  payloadLength?: number;
  version?: number;
}

export function ipv6(o: Ipv6Opts, payload: Buffer): Buffer {
  const exts = o.exts ?? [];
  const parts: Buffer[] = [];
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i]!;
    const h = Buffer.alloc(2);
    h[0] = i + 1 < exts.length ? exts[i + 1]!.type : o.proto;
    h[1] = e.lenByte ?? (e.type === NH6.FRAGMENT ? 0 : (e.body.length + 2) / 8 - 1);
    parts.push(h, e.body);
  }
  const rest = Buffer.concat([...parts, payload]);
  const hdr = Buffer.alloc(40);
  hdr.writeUInt32BE(((o.version ?? 6) << 28) >>> 0, 0);
  hdr.writeUInt16BE(o.payloadLength ?? rest.length, 4);
  hdr[6] = exts.length ? exts[0]!.type : o.proto;
  hdr[7] = o.hopLimit ?? 64;
  ipv6Bytes(o.src).copy(hdr, 8);
  ipv6Bytes(o.dst).copy(hdr, 24);
  return Buffer.concat([hdr, rest]);
}

/** ICMPv6 message (checksum left 0: the programs do not verify it; real-stack tests use scapy).
 * `rest` is the 4 bytes after the checksum (echo: id and seq; else 0 unless given). */
export function icmp6(o: IcmpOpts & { rest?: Buffer }): Buffer {
  const hdr = Buffer.alloc(8);
  hdr[0] = o.type;
  hdr[1] = o.code ?? 0;
  if (o.rest) o.rest.copy(hdr, 4, 0, 4);
  else {
    hdr.writeUInt16BE(o.id ?? 0, 4);
    hdr.writeUInt16BE(o.seq ?? 0, 6);
  }
  return Buffer.concat([hdr, o.payload ?? Buffer.alloc(0)]);
}

/** Fills the TCP/UDP/ICMPv6 checksum of an IPv6 datagram without extension headers, in place. */
export function fillL4Checksum6(datagram: Buffer): Buffer {
  const nh = datagram[6]!;
  const l4 = datagram.subarray(40);
  const at = nh === NH6.TCP ? 16 : nh === NH6.UDP ? 6 : nh === NH6.ICMP6 ? 2 : -1;
  if (at < 0) throw new RangeError(`fillL4Checksum6: next header ${nh} is not TCP, UDP or ICMPv6`);
  l4.writeUInt16BE(0, at);
  const ph = Buffer.alloc(40);
  datagram.copy(ph, 0, 8, 40);
  ph.writeUInt32BE(l4.length, 32);
  ph[39] = nh;
  const sum = inetChecksum(Buffer.concat([ph, l4]));
  l4.writeUInt16BE(nh === NH6.UDP && sum === 0 ? 0xffff : sum, at);
  return datagram;
}

/** An Ethernet frame carrying `ipv6()`. */
export function eth6(o: Ipv6Opts, payload: Buffer, e: EthOpts = {}): Buffer {
  return eth({ ...e, ethertype: ETH_P.IPV6 }, ipv6(o, payload));
}

/** First `n` bytes of a packet (a copy). */
export function truncate(pkt: Buffer, n: number): Buffer { return Buffer.from(pkt.subarray(0, n)); }

/**
 * A whole Ethernet + IP + L4 frame from one flat description (the common test case): IPv6 when
 * the addresses are IPv6 text (ICMP then means ICMPv6, protocol 58; `ip` options are IPv4's).
 */
export interface FlowPacket {
  src: string;
  dst: string;
  proto: number;
  sport?: number;
  dport?: number;
  /** TCP flags, default 'S'. */
  flags?: string;
  /** TCP sequence and acknowledgement numbers (default 0). */
  seq?: number;
  ack?: number;
  icmpType?: number;
  icmpCode?: number;
  icmpId?: number;
  payload?: Buffer;
  ip?: Partial<Ipv4Opts>;
  eth?: EthOpts;
}

export function flowPacket(f: FlowPacket): Buffer {
  let l4: Buffer;
  switch (f.proto) {
    case PROTO.TCP: l4 = tcp({ sport: f.sport ?? 0, dport: f.dport ?? 0, flags: f.flags ?? 'S', seq: f.seq, ack: f.ack, payload: f.payload }); break;
    case PROTO.UDP: case PROTO.UDPLITE: l4 = udp({ sport: f.sport ?? 0, dport: f.dport ?? 0, payload: f.payload }); break;
    case PROTO.SCTP: {
      l4 = Buffer.alloc(12);
      l4.writeUInt16BE(f.sport ?? 0, 0);
      l4.writeUInt16BE(f.dport ?? 0, 2);
      if (f.payload) l4 = Buffer.concat([l4, f.payload]);
      break;
    }
    case PROTO.ICMP: l4 = icmp({ type: f.icmpType ?? 8, code: f.icmpCode ?? 0, id: f.icmpId ?? 1, payload: f.payload }); break;
    case NH6.ICMP6: // in IPv4, an unknown protocol
      l4 = f.src.includes(':') ? icmp6({ type: f.icmpType ?? 128, code: f.icmpCode ?? 0, id: f.icmpId ?? 1, payload: f.payload }) : f.payload ?? Buffer.alloc(8);
      break;
    default: l4 = f.payload ?? Buffer.alloc(8);
  }
  if (f.src.includes(':')) return eth6({ src: f.src, dst: f.dst, proto: f.proto }, l4, f.eth ?? {});
  return eth(f.eth ?? {}, ipv4({ src: f.src, dst: f.dst, proto: f.proto, ...f.ip }, l4));
}
