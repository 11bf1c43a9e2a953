/**
 * Conntrack housekeeping, agent side. The BPF programs treat an entry older than its state's
 * timeout as absent, so expiry is exact without this module; the sweep returns memory (the table
 * is not LRU: nothing else frees it) and keeps the per-workload counts of the quota exact.
 *
 *   sweepConntrack(map, timeouts, now) — one pass over tortie_ct4_v3 or tortie_ct6_v1 (the key's
 *     size tells which) read with batch lookups,
 *     deleting expired entries (batch delete); returns scanned/expired/live counts.
 *   defaultCtMaxEntries(totalMem) — the table size derived from memory when not configured.
 *
 * Timeouts must be the ones the programs were loaded with (loader.ts passes the same object
 * to both). `now` is CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns (Node's
 * process.hrtime.bigint() reads the same clock on Linux).
 */
import { endianness } from 'node:os';
import type { BpfMap, PackedEntries } from '../native';
import { CTF, CtState, ct4KeyCodec, ct6KeyCodec, ctValueCodec, type CtValue } from './codecs';
import { readQuota, writeReleased } from './quota';

export interface CtTimeouts {
  synSec: number;
  establishedSec: number;
  finSec: number;
  rstSec: number;
  udpSec: number;
  icmpSec: number;
  otherSec: number;
}

/** Calico's defaults (Felix BPF conntrack timeouts). */
export const CALICO_CT_TIMEOUTS: Readonly<CtTimeouts> = Object.freeze({
  synSec: 20, establishedSec: 3600, finSec: 30, rstSec: 40, udpSec: 60, icmpSec: 5, otherSec: 600,
});

/** The `const volatile` names in bpf/lib/conntrack.h, for the loader. */
export function ctTimeoutConstants(t: CtTimeouts): Record<string, bigint> {
  const ns = (s: number): bigint => BigInt(Math.round(s * 1e9));
  return {
    ct_timeout_syn_ns: ns(t.synSec),
    ct_timeout_est_ns: ns(t.establishedSec),
    ct_timeout_fin_ns: ns(t.finSec),
    ct_timeout_rst_ns: ns(t.rstSec),
    ct_timeout_udp_ns: ns(t.udpSec),
    ct_timeout_icmp_ns: ns(t.icmpSec),
    ct_timeout_other_ns: ns(t.otherSec),
  };
}

export function ctTimeoutNs(state: number, t: CtTimeouts): bigint {
  const s = ((): number => {
    switch (state) {
      case CtState.SYN_SENT: case CtState.SYN_RECV: return t.synSec;
      case CtState.ESTABLISHED: return t.establishedSec;
      case CtState.FIN_WAIT: case CtState.CLOSING: return t.finSec;
      case CtState.RST: return t.rstSec;
      case CtState.UDP: return t.udpSec;
      case CtState.ICMP: return t.icmpSec;
      default: return t.otherSec;
    }
  })();
  return BigInt(Math.round(s * 1e9));
}

/** Same rule as ct_live() in bpf/lib/conntrack.h. */
export function ctExpired(v: CtValue, now: bigint, t: CtTimeouts): boolean {
  return v.last_seen_ns < now && now - v.last_seen_ns > ctTimeoutNs(v.state, t);
}

/** Entries per GiB of RAM, and bounds: Calico's 512k default on a typical node, never below 64k. */
export function defaultCtMaxEntries(totalMemBytes: number): number {
  const gib = totalMemBytes / 2 ** 30;
  const n = Math.round(gib * 32768);
  return Math.min(4 * 1024 * 1024, Math.max(65536, 2 ** Math.round(Math.log2(Math.max(n, 1)))));
}

export interface CtMapOps {
  /** All entries, one Buffer pair each (for tests and tools; the sweep reads dump()). */
  entries(): Iterable<[Buffer, Buffer]>;
  /** All entries side by side as the kernel's batch lookup wrote them (no per-entry Buffers). */
  dump(): PackedEntries;
  /** Deletes many keys (batch delete; missing keys ignored). */
  deleteMany(keys: Buffer[]): void;
}

export interface SweepResult {
  scanned: number;
  expired: number;
  live: number;
  byState: Record<number, number>;
  /** Live entries per owning workload address (ctOwner), when a quota map was given. */
  byOwner?: Map<string, number>;
}

/** Same rule as ct_owner() in bpf/lib/conntrack.h: the initiator if its egress point approved
 *  the flow, else the responder. */
export function ctOwner(k: { addr_a: string; addr_b: string }, flags: bigint | number): string {
  const f = BigInt(flags);
  const initA = (f & BigInt(CTF.A_IS_INIT)) !== 0n;
  const ownerA = (f & BigInt(CTF.SRC_OK)) !== 0n ? initA : !initA;
  return ownerA ? k.addr_a : k.addr_b;
}

const LE = endianness() === 'LE';
const field = (layout: { fields: readonly { name: string; offset: number; size: number }[] }, name: string): { offset: number; size: number } =>
  layout.fields.find((f) => f.name === name)!;
const V_LAST = field(ctValueCodec.layout, 'last_seen_ns').offset;
const V_FLAGS = field(ctValueCodec.layout, 'flags').offset;
const V_STATE = field(ctValueCodec.layout, 'state').offset;
/** The byte of the u64 flags holding CTF.A_IS_INIT and CTF.SRC_OK (its least significant). */
const V_FLAGS_LOW = LE ? V_FLAGS : V_FLAGS + 7;

/**
 * Deletes expired entries. With `quota` (tortie_ctq4_v1), also brings every workload's count to
 * the entries this pass saw: the programs' CREATED and MOVED are read before the scan and
 * RELEASED is set to CREATED - MOVED - live. Entries created during the scan can only make a
 * count too high (conservative) until the next pass, never too low.
 * The dump is read in place (last_seen_ns, state and flags at the codec's offsets; an owner is
 * counted by its address bytes and named once at the end): only the expired keys get a Buffer of
 * their own, since the table holds tens of thousands of entries under churn and this runs every
 * few seconds.
 */
export function sweepConntrack(map: CtMapOps, t: CtTimeouts, now: bigint = process.hrtime.bigint(), quota?: BpfMap): SweepResult {
  const before = quota ? readQuota(quota) : undefined;
  const { keys, values, count, keySize, valueSize } = map.dump();
  const keyCodec = keySize === ct4KeyCodec.size ? ct4KeyCodec : ct6KeyCodec;
  const A = field(keyCodec.layout, 'addr_a').offset, B = field(keyCodec.layout, 'addr_b').offset;
  const aLen = field(keyCodec.layout, 'addr_a').size;
  const dead: Buffer[] = [];
  const byStateN = new Array<number>(256).fill(0);
  const limit = new Array<bigint | undefined>(256);
  // Owner counts by the owner's address bytes: a number for IPv4, text for IPv6; with the offset
  // of one key owned by it, to name it at the end with the codec.
  const owned = new Map<number | string, { n: number; key: number; side: number }>();
  for (let i = 0; i < count; i++) {
    const vo = i * valueSize, ko = i * keySize;
    const state = values[vo + V_STATE]!;
    const lim = limit[state] ?? (limit[state] = ctTimeoutNs(state, t));
    const last = LE ? values.readBigUInt64LE(vo + V_LAST) : values.readBigUInt64BE(vo + V_LAST);
    if (last < now && now - last > lim) { dead.push(Buffer.from(keys.subarray(ko, ko + keySize))); continue; }
    byStateN[state]!++;
    if (quota) {
      const f = values[vo + V_FLAGS_LOW]!;
      const initA = (f & CTF.A_IS_INIT) !== 0;
      const side = ((f & CTF.SRC_OK) !== 0 ? initA : !initA) ? A : B;
      const at = ko + side;
      const id = aLen === 4 ? keys.readUInt32BE(at) : keys.toString('hex', at, at + aLen);
      const o = owned.get(id);
      if (o) o.n++;
      else owned.set(id, { n: 1, key: ko, side });
    }
  }
  if (dead.length) map.deleteMany(dead);
  const byOwner = new Map<string, number>();
  for (const o of owned.values()) {
    const k = keyCodec.decode(keys.subarray(o.key, o.key + keySize));
    byOwner.set(o.side === A ? k.addr_a : k.addr_b, o.n);
  }
  if (quota && before) {
    for (const r of before) {
      const want = r.created - r.moved - BigInt(byOwner.get(r.addr) ?? 0);
      if (want !== r.released) writeReleased(quota, r.addr, want);
    }
  }
  const byState: Record<number, number> = {};
  byStateN.forEach((n, st) => { if (n) byState[st] = n; });
  return { scanned: count, expired: dead.length, live: count - dead.length, byState, byOwner: quota ? byOwner : undefined };
}

/** Two sweeps (the IPv4 and IPv6 tables) as one: counts added, owners kept apart by address. */
export function mergeSweeps(a: SweepResult, b: SweepResult): SweepResult {
  const byState: Record<number, number> = { ...a.byState };
  for (const [k, n] of Object.entries(b.byState)) byState[Number(k)] = (byState[Number(k)] ?? 0) + n;
  const byOwner = a.byOwner || b.byOwner ? new Map([...(a.byOwner ?? []), ...(b.byOwner ?? [])]) : undefined;
  return { scanned: a.scanned + b.scanned, expired: a.expired + b.expired, live: a.live + b.live, byState, byOwner };
}

/** Conntrack table use for metrics (NodeMetrics.recordConntrack). */
export interface CtStatus {
  entries: number;
  capacity: number;
  quota: number;
  /** Workload addresses owning their whole quota, and the most entries one owns. */
  workloadsAtQuota: number;
  maxWorkloadEntries: number;
  /** Entries the sweeps deleted since start (the table never evicts). */
  expiredTotal: number;
}

export function ctStatus(sweep: SweepResult, capacity: number, quota: number, expiredTotal: number): CtStatus {
  const owned = [...(sweep.byOwner?.values() ?? [])];
  return {
    entries: sweep.live, capacity, quota, expiredTotal,
    workloadsAtQuota: quota ? owned.filter((n) => n >= quota).length : 0,
    maxWorkloadEntries: owned.reduce((a, n) => Math.max(a, n), 0),
  };
}
