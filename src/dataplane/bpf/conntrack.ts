/**
 * Conntrack housekeeping, agent side. The BPF programs treat an entry older than its state's
 * timeout as absent, so expiry is exact without this module; the sweep only returns memory
 * (LRU would evict stale entries anyway, but only under pressure, and occupancy would lie).
 *
 *   sweepConntrack(map, timeouts, now) — one pass over tortie_ct4_v1 with batch lookups,
 *     deleting expired entries (batch delete); returns scanned/expired/live counts.
 *   defaultCtMaxEntries(totalMem) — the table size derived from memory when not configured.
 *
 * Timeouts must be the ones the programs were loaded with (loader.ts passes the same object
 * to both). `now` is CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns (Node's
 * process.hrtime.bigint() reads the same clock on Linux).
 */
import { CtState, ct4KeyCodec, ctValueCodec, type Ct4Key, type CtValue } from './codecs';

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
  /** All entries (the adapter uses batch lookups). */
  entries(): Iterable<[Buffer, Buffer]>;
  /** Deletes many keys (batch delete; missing keys ignored). */
  deleteMany(keys: Buffer[]): void;
}

export interface SweepResult { scanned: number; expired: number; live: number; byState: Record<number, number> }

export function sweepConntrack(map: CtMapOps, t: CtTimeouts, now: bigint = process.hrtime.bigint()): SweepResult {
  const dead: Buffer[] = [];
  const byState: Record<number, number> = {};
  let scanned = 0;
  for (const [k, v] of map.entries()) {
    scanned++;
    const val = ctValueCodec.decode(v);
    if (ctExpired(val, now, t)) dead.push(k);
    else byState[val.state] = (byState[val.state] ?? 0) + 1;
  }
  if (dead.length) map.deleteMany(dead);
  return { scanned, expired: dead.length, live: scanned - dead.length, byState };
}

export function decodeCtEntry(k: Buffer, v: Buffer): { key: Ct4Key; value: CtValue } {
  return { key: ct4KeyCodec.decode(k), value: ctValueCodec.decode(v) };
}
