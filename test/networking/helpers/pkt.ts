// Packet checks for the networking tests: checksums recomputed from the bytes (so incremental
// updates in BPF are verified independently), field readers, and frames with valid L4 checksums.
import { inetChecksum, eth, ipv4, tcp, udp, icmp, PROTO, type EthOpts } from '../../../src/dataplane/bpf/packet';

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
