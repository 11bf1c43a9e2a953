/**
 * IP addresses and CIDRs: the one parser and the one set of prefix arithmetic of tortie.
 *
 * Rules (those of Go's net.ParseIP / net.ParseCIDR, which Calico uses through libcalico-go's
 * cnet, so tortie accepts exactly what calicoctl and Felix accept):
 *   - IPv4 is a dotted quad: four decimal octets 0–255; a leading zero (`010`) is refused, as
 *     Go ≥ 1.17 does (octal or decimal would be a guess); no whitespace, sign, hex or shorthand.
 *   - IPv6 follows RFC 4291 text (ipaddr.js does the grammar); no zone (`%eth0`), no brackets.
 *     An IPv4-mapped address (`::ffff:1.2.3.4`) is IPv6 here.
 *   - A CIDR is `address/length`, length decimal (leading zeros allowed, as Go's ParseCIDR) and
 *     at most 32 or 128. `…OrIp` variants also take a bare address as a full-length prefix
 *     (Calico's ParseCIDROrIP).
 *   - Host bits: a parsed `Cidr` keeps the address as written (`isMasked` / `maskCidr`), so each
 *     field decides (src/model): an IPPool's cidr (as libcalico-go's pool client stores it) and a
 *     network set's nets are normalised to their network; rule `nets`, BGP service CIDRs and a v1
 *     `net` with host bits are refused, naming the masked form where it helps. A `Cidr4` (the u32
 *     form the compiler and the BPF map encoders use) is always a network: parsing masks it.
 *
 * Every parse has two entry points: `parseX` throws an `IpParseError` naming the input and what
 * is wrong with it; `tryParseX` returns `undefined` and never throws (for hot paths and for
 * callers that report their own message).
 *
 * Two representations, one set of rules:
 *   - `IPAddr` / `Cidr`: family-carrying (`version: 4 | 6`, bytes in network order): resource
 *     validation, IPAM, autodetection; IPv6 works here today.
 *   - u32 IPv4 (`ipv4ToU32`, `Cidr4`): host-order unsigned 32-bit numbers for the compiler's
 *     and the datapath codecs' hot paths (at 100,000 endpoints the compiler parses a few hundred
 *     thousand addresses: one pass over the characters, no split, no regular expression). When
 *     the datapath parses IPv6, a `Cidr6` with bigint or 4×u32 words takes the same shape.
 */
import ipaddr from 'ipaddr.js';
import { IpParseError } from './errors';

export type IpFamily = 4 | 6;

export interface IPAddr {
  version: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: number[];
}

export interface Cidr {
  ip: IPAddr;
  prefix: number;
}

/** An IPv4 network as numbers: `addr` host-order u32 with its host bits zero, `len` 0–32. */
export interface Cidr4 {
  addr: number;
  len: number;
}

// ------------------------------------------------------------------ IPv4 as an unsigned 32-bit number

/** The smallest octet value written with n digits and no leading zero (index = n). */
const LEAD = [0, 0, 10, 100];

/** `a.b.c.d` → host-order u32, or undefined (never throws). One pass over the characters. */
export function tryIpv4ToU32(text: string): number | undefined {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return undefined;
      part = part * 10 + (c - 48);
    } else if (c === 46) {
      // part < 10^(digits-1): the octet had a leading zero
      if (digits === 0 || part > 255 || part < LEAD[digits]! || ++dots > 3) return undefined;
      v = v * 256 + part;
      part = 0;
      digits = 0;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255 || part < LEAD[digits]!) return undefined;
  return v * 256 + part;
}

/** `a.b.c.d` → host-order u32; throws IpParseError. */
export function ipv4ToU32(text: string): number {
  const v = tryIpv4ToU32(text);
  if (v === undefined) throw new IpParseError('IPv4 address', text, ipv4Problem(text));
  return v;
}

/** Host-order u32 → `a.b.c.d`. */
export function u32ToIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** The netmask of a prefix length 0–32 as a host-order u32. */
export function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Why `text` is not a dotted quad (for messages; only called on refused input). */
function ipv4Problem(text: string): string {
  if (text === '') return 'it is empty';
  if (/\s/.test(text)) return 'it contains whitespace';
  if (text.includes(':')) return 'it is IPv6 text, where an IPv4 address is expected';
  const parts = text.split('.');
  if (parts.length !== 4) return `it has ${parts.length} dot-separated parts, not 4`;
  for (const p of parts) {
    if (p === '') return 'an octet is empty';
    if (!/^[0-9]+$/.test(p)) return `octet ${JSON.stringify(p)} is not a decimal number`;
    if (p.length > 1 && p[0] === '0') return `octet ${JSON.stringify(p)} has a leading zero (octal or decimal would be a guess)`;
    if (Number(p) > 255) return `octet ${p} is greater than 255`;
  }
  return 'it is not a dotted quad';
}

/** The prefix length after the slash, or undefined (decimal digits only, ≤ max). */
function prefixLength(text: string, from: number, max: number): number | undefined {
  if (from >= text.length) return undefined;
  let n = 0;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    n = n * 10 + (c - 48);
    if (n > max) return undefined;
  }
  return n;
}

function cidr4(text: string, bare: boolean): Cidr4 | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) {
    if (!bare) return undefined;
    const ip = tryIpv4ToU32(text);
    return ip === undefined ? undefined : { addr: ip, len: 32 };
  }
  const ip = tryIpv4ToU32(text.slice(0, slash));
  if (ip === undefined) return undefined;
  const len = prefixLength(text, slash + 1, 32);
  if (len === undefined) return undefined;
  return { addr: (ip & prefixMask(len)) >>> 0, len };
}

function cidrProblem(text: string, bare: boolean, family: IpFamily | undefined): string {
  const slash = text.indexOf('/');
  if (slash < 0) {
    if (!bare) return 'it has no "/prefix-length"';
    return family === 4 ? ipv4Problem(text) : ipProblem(text);
  }
  const addr = text.slice(0, slash);
  const ip = family === 4 ? tryIpv4ToU32(addr) : tryParseIP(addr);
  if (ip === undefined) return `address part: ${family === 4 ? ipv4Problem(addr) : ipProblem(addr)}`;
  const max = typeof ip === 'number' || ip.version === 4 ? 32 : 128;
  const p = text.slice(slash + 1);
  if (!/^[0-9]+$/.test(p)) return `prefix length ${JSON.stringify(p)} is not a decimal number`;
  return `prefix length ${p} is greater than ${max}`;
}

/** `a.b.c.d/len` → network (host bits masked), or undefined. */
export function tryParseCidr4(text: string): Cidr4 | undefined {
  return cidr4(text, false);
}

/** `a.b.c.d/len` → network (host bits masked); throws IpParseError. */
export function parseCidr4(text: string): Cidr4 {
  const c = cidr4(text, false);
  if (c === undefined) throw new IpParseError('IPv4 CIDR', text, cidrProblem(text, false, 4));
  return c;
}

/** `a.b.c.d/len` or a bare `a.b.c.d` (= /32) → network (host bits masked), or undefined. */
export function tryParseCidrOrIp4(text: string): Cidr4 | undefined {
  return cidr4(text, true);
}

/** `a.b.c.d/len` or a bare `a.b.c.d` (= /32) → network; throws IpParseError. */
export function parseCidrOrIp4(text: string): Cidr4 {
  const c = cidr4(text, true);
  if (c === undefined) throw new IpParseError('IPv4 address or CIDR', text, cidrProblem(text, true, 4));
  return c;
}

export function formatCidr4(c: Cidr4): string {
  return `${u32ToIpv4(c.addr)}/${c.len}`;
}

/** Whether `ip` (host-order u32) is inside `c`. */
export function cidr4Contains(c: Cidr4, ip: number): boolean {
  return ((ip & prefixMask(c.len)) >>> 0) === c.addr;
}

/** Whether `outer` contains every address of `inner`. */
export function cidr4Covers(outer: Cidr4, inner: Cidr4): boolean {
  return outer.len <= inner.len && cidr4Contains(outer, inner.addr);
}

export function cidr4Overlaps(a: Cidr4, b: Cidr4): boolean {
  return cidr4Covers(a, b) || cidr4Covers(b, a);
}

/** A compact map key for a prefix. */
export function cidr4Key(c: Cidr4): string {
  return `${c.addr}/${c.len}`;
}

/** By address, then by length (shorter first). */
export function compareCidr4(a: Cidr4, b: Cidr4): number {
  return a.addr - b.addr || a.len - b.len;
}

/** Number of addresses in a /len (2^32 for /0). */
export function cidr4Size(len: number): number {
  return 2 ** (32 - len);
}

/** The /len network holding `ip` (e.g. the IPAM block of an address). */
export function cidr4Of(ip: number, len: number): Cidr4 {
  return { addr: (ip & prefixMask(len)) >>> 0, len };
}

/** How many /len subnets (blocks) `c` holds; 0 when len is shorter than c's. */
export function subnetCount4(c: Cidr4, len: number): number {
  return len < c.len ? 0 : 2 ** (len - c.len);
}

/** The i-th /len subnet (block) of `c`, 0-based in address order. */
export function nthSubnet4(c: Cidr4, len: number, i: number): Cidr4 {
  return { addr: c.addr + i * cidr4Size(len), len };
}

// ------------------------------------------------------------------ family-carrying addresses

/** A dotted quad as an `IPAddr`, or undefined. */
export function tryParseIPv4(s: string): IPAddr | undefined {
  const v = tryIpv4ToU32(s);
  return v === undefined ? undefined : u32ToIP(v);
}

const IPV6_CHARS_RE = /^[0-9a-fA-F:.]+$/;

/** IPv6 text as an `IPAddr`, or undefined (no zone, no brackets). */
export function tryParseIPv6(s: string): IPAddr | undefined {
  if (!s.includes(':') || !IPV6_CHARS_RE.test(s) || s.length > 45) return undefined;
  if (!ipaddr.IPv6.isValid(s)) return undefined;
  try {
    return { version: 6, bytes: ipaddr.IPv6.parse(s).toByteArray() };
  } catch {
    return undefined;
  }
}

/** IPv4 or IPv6 text, or undefined. */
export function tryParseIP(s: string): IPAddr | undefined {
  return tryParseIPv4(s) ?? tryParseIPv6(s);
}

function ipProblem(s: string): string {
  if (s === '') return 'it is empty';
  if (/\s/.test(s)) return 'it contains whitespace';
  if (s.includes('%')) return 'it has a zone (%…), which an address here may not carry';
  if (s.includes(':')) return 'it is not valid IPv6 text';
  return ipv4Problem(s);
}

/** IPv4 or IPv6 text; throws IpParseError. */
export function parseIP(s: string): IPAddr {
  const ip = tryParseIP(s);
  if (ip === undefined) throw new IpParseError('IP address', s, ipProblem(s));
  return ip;
}

/** A dotted quad as an `IPAddr`; throws IpParseError. */
export function parseIPv4(s: string): IPAddr {
  return u32ToIP(ipv4ToU32(s));
}

export function formatIP(ip: IPAddr): string {
  if (ip.version === 4) return ip.bytes.join('.');
  return ipaddr.fromByteArray(ip.bytes).toString();
}

export function bitLength(ip: IPAddr): number {
  return ip.version === 4 ? 32 : 128;
}

/** An IPv4 `IPAddr` as a host-order u32. */
export function ipToU32(ip: IPAddr): number {
  if (ip.version !== 4) throw new RangeError(`ipToU32: ${formatIP(ip)} is not IPv4`);
  return ((ip.bytes[0]! << 24) >>> 0) + (ip.bytes[1]! << 16) + (ip.bytes[2]! << 8) + ip.bytes[3]!;
}

export function u32ToIP(v: number): IPAddr {
  return { version: 4, bytes: [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255] };
}

export function maskIP(ip: IPAddr, prefix: number): IPAddr {
  const bytes = ip.bytes.map((b, i) => {
    const bitsHere = Math.max(0, Math.min(8, prefix - i * 8));
    const mask = bitsHere === 0 ? 0 : (0xff << (8 - bitsHere)) & 0xff;
    return b & mask;
  });
  return { version: ip.version, bytes };
}

export function ipEqual(a: IPAddr, b: IPAddr): boolean {
  return a.version === b.version && a.bytes.every((x, i) => x === b.bytes[i]);
}

// ------------------------------------------------------------------ family-carrying CIDRs

function cidr(s: string, bare: boolean): Cidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) {
    if (!bare) return undefined;
    const ip = tryParseIP(s);
    return ip === undefined ? undefined : { ip, prefix: bitLength(ip) };
  }
  const ip = tryParseIP(s.slice(0, slash));
  if (ip === undefined) return undefined;
  const prefix = prefixLength(s, slash + 1, bitLength(ip));
  return prefix === undefined ? undefined : { ip, prefix };
}

/** `addr/len` (IPv4 or IPv6; host bits kept), or undefined. */
export function tryParseCidr(s: string): Cidr | undefined {
  return cidr(s, false);
}

/** `addr/len` (IPv4 or IPv6; host bits kept); throws IpParseError. */
export function parseCidr(s: string): Cidr {
  const c = cidr(s, false);
  if (c === undefined) throw new IpParseError('CIDR', s, cidrProblem(s, false, undefined));
  return c;
}

/** `addr/len` or a bare address (full-length prefix), host bits kept; or undefined. */
export function tryParseCidrOrIp(s: string): Cidr | undefined {
  return cidr(s, true);
}

/** `addr/len` or a bare address (full-length prefix), host bits kept; throws IpParseError. */
export function parseCidrOrIp(s: string): Cidr {
  const c = cidr(s, true);
  if (c === undefined) throw new IpParseError('IP address or CIDR', s, cidrProblem(s, true, undefined));
  return c;
}

export function isMasked(c: Cidr): boolean {
  return ipEqual(c.ip, maskIP(c.ip, c.prefix));
}

export function maskCidr(c: Cidr): Cidr {
  return { ip: maskIP(c.ip, c.prefix), prefix: c.prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIP(c.ip)}/${c.prefix}`;
}

/** Whether `outer` contains every address of `inner` (never across families). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.ip.version !== inner.ip.version || inner.prefix < outer.prefix) return false;
  return ipEqual(maskIP(outer.ip, outer.prefix), maskIP(inner.ip, outer.prefix));
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** An IPv4 `Cidr` in the u32 form (host bits masked). */
export function toCidr4(c: Cidr): Cidr4 {
  return cidr4Of(ipToU32(c.ip), c.prefix);
}

export const IPV4_LINK_LOCAL: Cidr = { ip: { version: 4, bytes: [169, 254, 0, 0] }, prefix: 16 };
export const IPV6_LINK_LOCAL: Cidr = {
  ip: { version: 6, bytes: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
  prefix: 10,
};
