/**
 * NAT outgoing, agent side (the datapath is bpf/lib/nat.h): the mapping timeouts, given to the
 * program as load-time constants and to the sweep (one object for both, as conntrack does), the
 * sweep that returns the memory of finished flows, and the per-workload mapping counts.
 *
 *   natTimeoutConstants(t)          the `const volatile` names of nat.h for the loader
 *   sweepNatEntries(maps, t, now)   deletes expired mappings; credits each deleted FWD entry to
 *                                   its workload's RELEASED count (tortie_natq4_v1)
 *   ctAcceptedClose(ct4)            the sweep's view of the workload's conntrack: did it accept a
 *                                   RST on a mapping's flow (a RST from outside only counts then),
 *                                   or both FINs (a FIN from outside only counts then)
 *   ctAcceptedClose6(ct6)           the same for NAT66 mappings (the workloads' IPv6 conntrack)
 *   readNatQuota(natq4)             live mappings per workload address (CREATED - RELEASED - MOVED)
 *
 * `now` is CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns (process.hrtime.bigint()).
 * FWD entries are deleted by the sweep (which credits RELEASED, its kind alone) and by the program
 * at a verified TCP close (which credits MOVED, atomically); each side credits only the deletes
 * that succeeded for it, so a workload's count is exact (bpf/lib/nat.h explains the program's half).
 */
import type { BpfMap } from '../native';
import { NAT_DIR, NATF, QUOTA, nat4KeyCodec, nat4ValueCodec, nat6KeyCodec, nat6ValueCodec, type Nat4Key, type Nat4Value } from './net-codecs';
import { CtState, ct4KeyCodec, ct6KeyCodec, ctValueCodec } from './codecs';
import { ipv4ToU32, parseIP } from '../../primitives';
import { readQuota, readQuotaCounter, writeReleased } from './quota';

/** One NAT table's encodings: tortie_nat4_v2 with tortie_natq4_v1, or NAT66's tortie_nat6_v1 with tortie_natq6_v1. */
export interface NatFamily {
  key: { encode(k: Nat4Key): Buffer; decode(b: Buffer): Nat4Key };
  value: { decode(b: Buffer): Nat4Value };
  /** The ICMP protocol number of the family (echo mappings have no remote port). */
  icmp: number;
}
export const NAT4: NatFamily = { key: nat4KeyCodec, value: nat4ValueCodec, icmp: 1 };
export const NAT6: NatFamily = { key: nat6KeyCodec, value: nat6ValueCodec, icmp: 58 };

export interface NatTimeouts {
  tcpSec: number;
  /** A TCP flow after RST, or FIN both ways. */
  tcpClosedSec: number;
  udpSec: number;
  icmpSec: number;
  otherSec: number;
}

/** The defaults of bpf/lib/nat.h (netfilter's order of magnitude). */
export const DEFAULT_NAT_TIMEOUTS: Readonly<NatTimeouts> = Object.freeze({
  tcpSec: 3600, tcpClosedSec: 10, udpSec: 60, icmpSec: 30, otherSec: 600,
});

/** Default per-workload quota of NAT mappings (flows) and table size (two entries per flow). */
export const DEFAULT_NAT_QUOTA = 8192;
export const DEFAULT_NAT_MAX_ENTRIES = 131072;

const ns = (s: number): bigint => BigInt(Math.round(s * 1e9));

export function validateNatTimeouts(t: NatTimeouts): void {
  for (const [k, v] of Object.entries(t)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 7 * 86400) {
      throw new RangeError(`nat timeout ${k} ${String(v)}: need seconds in (0, 604800]`);
    }
  }
}

/** The `const volatile` names in bpf/lib/nat.h, for the loader. */
export function natTimeoutConstants(t: NatTimeouts): Record<string, bigint> {
  return {
    nat_timeout_tcp_ns: ns(t.tcpSec),
    nat_timeout_tcp_closed_ns: ns(t.tcpClosedSec),
    nat_timeout_udp_ns: ns(t.udpSec),
    nat_timeout_icmp_ns: ns(t.icmpSec),
    nat_timeout_other_ns: ns(t.otherSec),
  };
}

/**
 * nat_live()'s rule in bpf/lib/nat.h (flags: the FWD entry's; REV entries carry none), plus what
 * only the sweep knows.
 * `ct`: what the workload's conntrack accepted on this flow — the sweep's knowledge only; the
 * program never shortens a mapping on a RST or FIN from outside. A RST from outside (NATF.RST_IN)
 * counts once conntrack accepted a RST; FIN both ways (NATF.FIN_OUT with NATF.FIN_IN_SEEN, or the
 * FIN_IN of older programs) once conntrack accepted both FINs.
 */
/** Linux's TCP_TIMEWAIT_LEN (fixed): how long a tombstone guards its port (TORTIE_NAT_TIMEWAIT_NS). */
export const NAT_TIMEWAIT_SEC = 60;

export function natTimeoutNs(proto: number, flags: number, t: NatTimeouts, ct: CtClose = CT_OPEN): bigint {
  const finIn = (flags & (NATF.FIN_IN | NATF.FIN_IN_SEEN)) !== 0;
  const closed = (flags & (NATF.RST | NATF.DONE)) !== 0 || (ct.rst && (flags & NATF.RST_IN) !== 0) ||
    (ct.fins && finIn && (flags & NATF.FIN_OUT) !== 0);
  return ns(proto === 6 ? (closed ? t.tcpClosedSec : t.tcpSec) : proto === 17 ? t.udpSec : proto === 1 || proto === 58 ? t.icmpSec : t.otherSec);
}

export interface NatSweepResult {
  deleted: number;
  remaining: number;
  /** FWD mappings (flows) deleted, by workload address. */
  released: Map<string, number>;
}

function hex(b: Buffer): string { return b.toString('hex'); }

/** What the workload's conntrack accepted on a flow: a RST (state RST), both FINs (CLOSING). */
export interface CtClose { rst: boolean; fins: boolean }
const CT_OPEN: CtClose = { rst: false, fins: false };

/** The workload's conntrack's view of a FWD mapping's flow. */
export type CtCloseLookup = (fwd: Nat4Key) => CtClose;

/**
 * The workload's conntrack (tortie_ct4_v3, keyed as ct4_key_make in bpf/lib/parse.h) as the
 * sweep's judge of a RST or FIN from outside: its entry is in state RST only if the workload's
 * program accepted a RST inside the flow's sequence window (bpf/lib/conntrack.h ct_seq_ok) or the
 * workload sent one, in state CLOSING only if it accepted both sides' FINs (each window-checked
 * the same way). A blind RST or FIN is dropped there and leaves the entry as it was.
 */
export function ctAcceptedClose(ct4: BpfMap): CtCloseLookup {
  return (k) => {
    if (k.proto !== 6) return CT_OPEN;
    const s = ipv4ToU32(k.saddr), d = ipv4ToU32(k.daddr);
    const a = s < d || (s === d && k.sport <= k.dport);
    return ctClose(ct4.lookup(ct4KeyCodec.encode(a
      ? { addr_a: k.saddr, addr_b: k.daddr, port_a: k.sport, port_b: k.dport, proto: 6 }
      : { addr_a: k.daddr, addr_b: k.saddr, port_a: k.dport, port_b: k.sport, proto: 6 })));
  };
}

/** The same judge for NAT66 mappings: the workloads' IPv6 conntrack (tortie_ct6_v1, keyed as
 *  ct6_key_make: side a the numerically smaller 128-bit address, then port; same states and
 *  window checks as tortie_ct4_v3). */
export function ctAcceptedClose6(ct6: BpfMap): CtCloseLookup {
  return (k) => {
    if (k.proto !== 6) return CT_OPEN;
    const c = Buffer.compare(Buffer.from(parseIP(k.saddr).bytes), Buffer.from(parseIP(k.daddr).bytes));
    const a = c < 0 || (c === 0 && k.sport <= k.dport);
    return ctClose(ct6.lookup(ct6KeyCodec.encode(a
      ? { addr_a: k.saddr, addr_b: k.daddr, port_a: k.sport, port_b: k.dport, proto: 6 }
      : { addr_a: k.daddr, addr_b: k.saddr, port_a: k.dport, port_b: k.sport, proto: 6 })));
  };
}

function ctClose(v: Buffer | undefined): CtClose {
  if (v === undefined) return CT_OPEN;
  const st = ctValueCodec.decode(v).state;
  return { rst: st === CtState.RST, fins: st === CtState.CLOSING || st === CtState.RST };
}


/**
 * Deletes NAT mappings whose flow is over: the FWD entry past its timeout together with its REV
 * entry, and REV entries whose FWD entry is gone and which are past the timeout themselves. The
 * program also reclaims expired ports on collision; this returns the memory (the table is not
 * LRU: nothing else frees it). Every FWD entry actually deleted is added to its workload's
 * RELEASED count.
 */
export function sweepNatEntries(maps: { nat4: BpfMap; natq4?: BpfMap }, t: NatTimeouts = DEFAULT_NAT_TIMEOUTS,
  now = process.hrtime.bigint(), ctRst?: CtCloseLookup, fam: NatFamily = NAT4): NatSweepResult {
  const { nat4, natq4 } = maps;
  const codec = fam.key;
  const { keys, values } = nat4.entries();
  const entries = keys.map((k, i) => ({ key: codec.decode(k), value: fam.value.decode(values[i]!) }));
  const expired = (last: bigint, timeout: bigint) => last < now && now - last > timeout;
  const liveRev = new Set<string>();
  const deadFwd: { key: Buffer; addr: string; created: bigint }[] = [];
  const deadRev: Buffer[] = [];
  const revOwner = new Map<string, { addr: string; port: number }>();
  for (const { key: k, value: v } of entries) if (k.dir === NAT_DIR.REV) revOwner.set(hex(codec.encode(k)), v);
  for (const { key: k, value: v } of entries) {
    if (k.dir !== NAT_DIR.FWD) continue;
    const rev = hex(codec.encode({ saddr: k.daddr, daddr: v.addr, sport: k.proto === fam.icmp ? 0 : k.dport, dport: v.port, proto: k.proto, dir: NAT_DIR.REV }));
    const owner = revOwner.get(rev);
    // The reply tuple may belong to a newer flow already (a reclaimed port): not ours to delete.
    const ours = owner !== undefined && owner.addr === k.saddr && owner.port === k.sport;
    // A RST or FIN from outside shortens the mapping only once the workload's conntrack accepted
    // it (looked up only for such mappings idle past the closed timeout: rare).
    const fromOutside = (v.flags & NATF.RST_IN) !== 0 ||
      ((v.flags & NATF.FIN_OUT) !== 0 && (v.flags & (NATF.FIN_IN | NATF.FIN_IN_SEEN)) !== 0);
    const ct = fromOutside && ctRst !== undefined && expired(v.last_seen_ns, ns(t.tcpClosedSec))
      ? ctRst(k) : CT_OPEN;
    if (expired(v.last_seen_ns, natTimeoutNs(k.proto, v.flags, t, ct))) {
      deadFwd.push({ key: codec.encode(k), addr: k.saddr, created: v.created_ns });
      if (ours) deadRev.push(Buffer.from(rev, 'hex'));
    } else if (ours) {
      liveRev.add(rev);
    }
  }
  for (const { key: k, value: v } of entries) {
    if (k.dir !== NAT_DIR.REV) continue;
    const kb = codec.encode(k);
    // A REV entry carries no flags but DONE (the tombstone of a verified close): it guards its
    // port for as long as the outside's TIME-WAIT may live (nat_tomb_live in bpf/lib/nat.h).
    const tomb = k.proto === 6 && (v.flags & NATF.DONE) !== 0;
    const limit = tomb ? ns(Math.max(t.tcpClosedSec, NAT_TIMEWAIT_SEC)) : natTimeoutNs(k.proto, v.flags & NATF.DONE, t);
    if (!liveRev.has(hex(kb)) && expired(v.last_seen_ns, limit)) deadRev.push(kb);
  }
  let deleted = 0;
  const released = new Map<string, number>();
  for (const { key, addr, created } of deadFwd) {
    // The program may have released this flow at its close since the dump, and a new flow of the
    // same tuple taken the key: that one is not ours to delete (narrows the race; the count stays
    // exact either way: only the deleter that succeeds credits).
    const cur = nat4.lookup(key);
    if (cur === undefined || fam.value.decode(cur).created_ns !== created) continue;
    if (!nat4.tryDelete(key)) continue; // released by the program meanwhile: it credited MOVED
    deleted++;
    released.set(addr, (released.get(addr) ?? 0) + 1);
  }
  const seen = new Set<string>();
  for (const k of deadRev) {
    if (seen.has(hex(k))) continue;
    seen.add(hex(k));
    if (nat4.tryDelete(k)) deleted++;
  }
  if (natq4) {
    for (const [addr, n] of released) {
      writeReleased(natq4, addr, readQuotaCounter(natq4, addr, QUOTA.RELEASED) + BigInt(n)); // the key's family follows the address
    }
  }
  return { deleted, remaining: entries.length - deleted, released };
}

/** Live mappings per workload address (tortie_natq4_v1), for metrics and tests. */
export const readNatQuota = readQuota;

/** NAT state for metrics (RouteManager.natStatus, NodeMetrics.recordNat). */
export interface NatStatus {
  /** Live FWD mappings (flows) and table entries (both directions) against the table's size. */
  flows: number;
  entries: number;
  capacity: number;
  quota: number;
  /** Workload addresses holding their whole quota, and the largest count any one holds. */
  workloadsAtQuota: number;
  maxWorkloadFlows: number;
  /** Mappings the sweep deleted since start (the table never evicts: this is the only way out). */
  expiredTotal: number;
}
