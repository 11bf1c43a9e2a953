/**
 * IPv6 prefixes in the compiler's arithmetic form: the address as a 128-bit bigint, masked to the
 * prefix length (the IPv6 counterpart of `Cidr4`). `AnyCidr` is what the compiler's address
 * partition holds: IPv4 (`Cidr4`, u32) or IPv6 (`Cidr6`), told apart by `isCidr6`.
 */
import { tryParseCidrOrIp, formatIP, type Cidr4 } from './ip';

export interface Cidr6 {
  addr6: bigint;
  len: number;
}

export type AnyCidr = Cidr4 | Cidr6;

const ALL = (1n << 128n) - 1n;

export function isCidr6(c: AnyCidr): c is Cidr6 {
  return (c as Cidr6).addr6 !== undefined;
}

export function mask6(len: number): bigint {
  return len === 0 ? 0n : (ALL << BigInt(128 - len)) & ALL;
}

export function bytesToBigint(bytes: readonly number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function bigintToBytes(v: bigint): number[] {
  const out = new Array<number>(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** IPv6 `addr/len` or a bare IPv6 address (/128), host bits cleared; undefined for anything else. */
export function tryParseCidrOrIp6(s: string): Cidr6 | undefined {
  const c = tryParseCidrOrIp(s);
  if (c === undefined || c.ip.version !== 6) return undefined;
  return { addr6: bytesToBigint(c.ip.bytes) & mask6(c.prefix), len: c.prefix };
}

export function cidr6Key(c: Cidr6): string {
  return `6:${c.addr6.toString(16)}/${c.len}`;
}

/** Canonical text (RFC 5952 address, host bits zero). */
export function formatCidr6(c: Cidr6): string {
  return `${formatIP({ version: 6, bytes: bigintToBytes(c.addr6) })}/${c.len}`;
}

export function cidr6Covers(outer: Cidr6, inner: Cidr6): boolean {
  return inner.len >= outer.len && (inner.addr6 & mask6(outer.len)) === outer.addr6;
}

export function cidr6Contains(c: Cidr6, ip: bigint): boolean {
  return (ip & mask6(c.len)) === c.addr6;
}

/** ::/0, every IPv6 address: the compiler's family atom. */
export const ALL6: Cidr6 = Object.freeze({ addr6: 0n, len: 0 });
