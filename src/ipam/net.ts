/**
 * IPAM address arithmetic for both families: an address is a `bigint` with its family, a
 * network is a masked `IpNet`. Parsing and text forms are the primitives' (src/primitives/ip.ts:
 * Go's rules; IPv6 printed as Go's net.IP.String, RFC 5952), so a block CIDR written here is
 * byte for byte the one libcalico-go writes (`fd00:10::40/122`).
 */
import { formatIP, tryParseCidr, tryParseIP, type IPAddr, type IpFamily } from '../primitives';
import { IpamError } from './errors';

export interface IpNum {
  family: IpFamily;
  value: bigint;
}

export interface IpNet {
  family: IpFamily;
  /** The network address (host bits zero). */
  base: bigint;
  prefix: number;
}

export function familyBits(f: IpFamily): number {
  return f === 4 ? 32 : 128;
}

function bytesToBig(ip: IPAddr): bigint {
  let v = 0n;
  for (const b of ip.bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function bigToBytes(family: IpFamily, v: bigint): number[] {
  const n = family === 4 ? 4 : 16;
  const out = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function hostMask(family: IpFamily, prefix: number): bigint {
  return (1n << BigInt(familyBits(family) - prefix)) - 1n;
}

export function tryParseAddr(text: string): IpNum | undefined {
  const ip = typeof text === 'string' ? tryParseIP(text) : undefined;
  return ip === undefined ? undefined : { family: ip.version, value: bytesToBig(ip) };
}

/** An address of either family; throws ERR_IPAM_INVALID_ARGUMENT naming `what`. */
export function parseAddr(text: string, what = 'address'): IpNum {
  const a = tryParseAddr(text);
  if (a === undefined) throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `${what} ${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  return a;
}

export function formatAddr(a: IpNum): string {
  return formatIP({ version: a.family, bytes: bigToBytes(a.family, a.value) });
}

/** A CIDR of either family, host bits masked off; undefined when it is not one. */
export function tryParseNet(text: string): IpNet | undefined {
  const c = typeof text === 'string' ? tryParseCidr(text) : undefined;
  if (c === undefined) return undefined;
  const family = c.ip.version;
  return { family, base: bytesToBig(c.ip) & ~hostMask(family, c.prefix), prefix: c.prefix };
}

/** A CIDR of either family (host bits masked off); throws ERR_IPAM_INVALID_ARGUMENT naming `what`. */
export function parseNet(text: string, what = 'cidr'): IpNet {
  const n = tryParseNet(text);
  if (n === undefined) throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `${what} ${JSON.stringify(text)} is not an IPv4 or IPv6 CIDR`);
  return n;
}

/** An address or a CIDR (an address is its own full-length network), as IPReservation entries are. */
export function tryParseNetOrAddr(text: string): IpNet | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.includes('/')) return tryParseNet(text);
  const a = tryParseAddr(text);
  return a === undefined ? undefined : { family: a.family, base: a.value, prefix: familyBits(a.family) };
}

export function formatNet(n: IpNet): string {
  return `${formatAddr({ family: n.family, value: n.base })}/${n.prefix}`;
}

/** Address count of a network (exact). */
export function netSize(n: IpNet): bigint {
  return 1n << BigInt(familyBits(n.family) - n.prefix);
}

export function netContains(outer: IpNet, a: IpNum): boolean {
  return outer.family === a.family && (a.value & ~hostMask(a.family, outer.prefix)) === outer.base;
}

export function netCovers(outer: IpNet, inner: IpNet): boolean {
  return inner.prefix >= outer.prefix && netContains(outer, { family: inner.family, value: inner.base });
}

/** The `prefix`-long network holding `a`. */
export function netOf(a: IpNum, prefix: number): IpNet {
  return { family: a.family, base: a.value & ~hostMask(a.family, prefix), prefix };
}

/** IPv4 before IPv6, then by address, then shorter prefix first. */
export function compareNets(a: IpNet, b: IpNet): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.base !== b.base) return a.base < b.base ? -1 : 1;
  return a.prefix - b.prefix;
}

export function compareAddrText(x: string, y: string): number {
  const a = tryParseAddr(x), b = tryParseAddr(y);
  if (a === undefined || b === undefined) return x < y ? -1 : x > y ? 1 : 0;
  return compareNets({ family: a.family, base: a.value, prefix: 0 }, { family: b.family, base: b.value, prefix: 0 });
}

/** How many `len`-long subnets `n` holds. */
export function subnetCount(n: IpNet, len: number): bigint {
  return 1n << BigInt(len - n.prefix);
}

export function nthSubnet(n: IpNet, len: number, i: bigint): IpNet {
  return { family: n.family, base: n.base + (i << BigInt(familyBits(n.family) - len)), prefix: len };
}
