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
import { endianness } from 'node:os';
import type { BpfMap } from '../native';

type StructLayout = { size: number; fields: { name: string; offset: number; size: number }[] };
import { NAT_DIR, NATF, QUOTA, nat4KeyCodec, nat4ValueCodec, nat6KeyCodec, nat6ValueCodec, type Nat4Key, type Nat4Value } from './net-codecs';
import { CtState, ct4KeyCodec, ct6KeyCodec, ctValueCodec } from './codecs';
import { ipv4ToU32, parseIP } from '../../primitives';
import { readQuota, readQuotaCounter, writeReleased } from './quota';

/** One NAT table's encodings: tortie_nat4_v2 with tortie_natq4_v1, or NAT66's tortie_nat6_v1 with tortie_natq6_v1. */
export interface NatFamily {
  key: { encode(k: Nat4Key): Buffer; decode(b: Buffer): Nat4Key; layout: StructLayout };
  value: { decode(b: Buffer): Nat4Value; layout: StructLayout };
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
 * The dump is read in place (the fields at the codecs' offsets; a key's identity is its bytes up to
 * its padding): only what is deleted or judged by conntrack is decoded, since under connection
 * churn the table holds a tombstone for every port of the range and this runs every few seconds.
 */
export function sweepNatEntries(maps: { nat4: BpfMap; natq4?: BpfMap }, t: NatTimeouts = DEFAULT_NAT_TIMEOUTS,
  now = process.hrtime.bigint(), ctRst?: CtCloseLookup, fam: NatFamily = NAT4): NatSweepResult {
  const { nat4, natq4 } = maps;
  const K = fieldsOf(fam.key.layout), V = fieldsOf(fam.value.layout);
  const idLen = K.pad.offset; // saddr, daddr, sport, dport, proto, dir: the key without its padding
  const aLen = K.saddr.size;
  const { keys, values } = nat4.entries();
  const expired = (last: bigint, timeout: bigint) => last < now && now - last > timeout;
  const u64 = (b: Buffer, at: number): bigint => (LE ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at));
  const id = (k: Buffer): string => k.toString('hex', 0, idLen);
  // The REV key a FWD entry (k, v) owns: (remote, node address, remote port or 0 for ICMP echo,
  // the mapping's port, proto, REV), padding zero.
  const revOf = (k: Buffer, v: Buffer): Buffer => {
    const r = Buffer.alloc(fam.key.layout.size);
    k.copy(r, K.saddr.offset, K.daddr.offset, K.daddr.offset + aLen);
    v.copy(r, K.daddr.offset, V.addr.offset, V.addr.offset + aLen);
    if (k[K.proto.offset] !== fam.icmp) k.copy(r, K.sport.offset, K.dport.offset, K.dport.offset + 2);
    v.copy(r, K.dport.offset, V.port.offset, V.port.offset + 2);
    r[K.proto.offset] = k[K.proto.offset]!;
    r[K.dir.offset] = NAT_DIR.REV;
    return r;
  };
  // A REV entry's owner (workload address and port) and a FWD entry's own (source address and
  // port), as raw bytes: equal when the REV entry is that flow's.
  const ownerOf = (v: Buffer): string => v.toString('hex', V.addr.offset, V.addr.offset + aLen) + v.toString('hex', V.port.offset, V.port.offset + 2);
  const selfOf = (k: Buffer): string => k.toString('hex', K.saddr.offset, K.saddr.offset + aLen) + k.toString('hex', K.sport.offset, K.sport.offset + 2);
  const liveRev = new Set<string>();
  const deadFwd: { key: Buffer; created: bigint; rev?: Buffer }[] = [];
  const deadRev: Buffer[] = [];
  const revOwner = new Map<string, string>();
  const revValue = new Map<string, Buffer>();
  for (let i = 0; i < keys.length; i++) {
    if (keys[i]![K.dir.offset] !== NAT_DIR.REV) continue;
    revOwner.set(id(keys[i]!), ownerOf(values[i]!));
    revValue.set(id(keys[i]!), values[i]!);
  }
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!, v = values[i]!;
    if (k[K.dir.offset] !== NAT_DIR.FWD) continue;
    const rev = revOf(k, v), revId = id(rev);
    // The reply tuple may belong to a newer flow already (a reclaimed port): not ours to delete.
    const ours = revOwner.get(revId) === selfOf(k);
    const flags = v[V.flags.offset]!, proto = k[K.proto.offset]!, last = u64(v, V.last_seen_ns.offset);
    // A RST or FIN from outside shortens the mapping only once the workload's conntrack accepted
    // it (looked up only for such mappings idle past the closed timeout: rare).
    const fromOutside = (flags & NATF.RST_IN) !== 0 ||
      ((flags & NATF.FIN_OUT) !== 0 && (flags & (NATF.FIN_IN | NATF.FIN_IN_SEEN)) !== 0);
    const ct = fromOutside && ctRst !== undefined && expired(last, ns(t.tcpClosedSec))
      ? ctRst(fam.key.decode(k)) : CT_OPEN;
    if (expired(last, natTimeoutNs(proto, flags, t, ct))) {
      deadFwd.push({ key: k, created: u64(v, V.created_ns.offset), rev: ours ? rev : undefined });
    } else if (ours) {
      liveRev.add(revId);
    }
  }
  // A REV entry carries no flags but DONE (the tombstone of a verified close): it guards its port
  // for as long as the outside's TIME-WAIT may live (nat_tomb_live in bpf/lib/nat.h).
  const tombLimit = ns(Math.max(t.tcpClosedSec, NAT_TIMEWAIT_SEC));
  const revLimit = new Map<number, bigint>();
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!, v = values[i]!;
    if (k[K.dir.offset] !== NAT_DIR.REV) continue;
    const proto = k[K.proto.offset]!, done = v[V.flags.offset]! & NATF.DONE;
    let limit = proto === 6 && done !== 0 ? tombLimit : revLimit.get(proto << 8 | done);
    if (limit === undefined) revLimit.set(proto << 8 | done, limit = natTimeoutNs(proto, done, t));
    if (expired(u64(v, V.last_seen_ns.offset), limit) && !liveRev.has(id(k))) deadRev.push(k);
  }
  let deleted = 0;
  const released = new Map<string, number>();
  const seen = new Set<string>();
  // A REV entry is deleted only as the dump showed it: one the program changed since (a reply,
  // a new flow's claim of an expired port, a revived tombstone) is some live flow's now, and the
  // program skips looking up the REV entry of a flow that saw it lately (nat_rev_seen in
  // bpf/lib/nat.h). Read again right before the delete: narrows the race to two syscalls.
  const deleteRev = (k: Buffer): void => {
    const kid = id(k);
    if (seen.has(kid)) return;
    seen.add(kid);
    const was = revValue.get(kid), cur = nat4.lookup(k);
    if (was === undefined || cur === undefined || !cur.equals(was)) return;
    if (nat4.tryDelete(k)) deleted++;
  };
  for (const { key, created, rev } of deadFwd) {
    // The program may have released this flow at its close since the dump, and a new flow of the
    // same tuple taken the key, or a reply have come through its REV entry (created_ns is also
    // the last time the program saw that REV entry hold the flow): not ours to delete (the count
    // stays exact either way: only the deleter that succeeds credits). Its REV entry goes only
    // with it.
    const cur = nat4.lookup(key);
    if (cur === undefined || u64(cur, V.created_ns.offset) !== created) continue;
    if (!nat4.tryDelete(key)) continue; // released by the program meanwhile: it credited MOVED
    deleted++;
    const addr = fam.key.decode(key).saddr;
    released.set(addr, (released.get(addr) ?? 0) + 1);
    if (rev !== undefined) deleteRev(rev);
  }
  for (const k of deadRev) deleteRev(k);
  if (natq4) {
    for (const [addr, n] of released) {
      writeReleased(natq4, addr, readQuotaCounter(natq4, addr, QUOTA.RELEASED) + BigInt(n)); // the key's family follows the address
    }
  }
  return { deleted, remaining: keys.length - deleted, released };
}

const LE = endianness() === 'LE';

/** A codec's field offsets and sizes by name. */
function fieldsOf(layout: { fields: { name: string; offset: number; size: number }[] }): Record<string, { offset: number; size: number }> {
  return Object.fromEntries(layout.fields.map((f) => [f.name, f]));
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
