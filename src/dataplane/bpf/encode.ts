/**
 * Encoder: the compiler's datapath-agnostic form (src/calc/types.ts) → tortie map entries.
 *
 * Contract:
 *   - classes: one tortie_cls4_v1 LPM entry per IPv4 ClassPrefix (absent prefix = class 0).
 *   - a VerdictTable under a numeric table id N becomes
 *       tortie_proj_v1  (N, global class) → local class       (projection entries, all ≥ 1)
 *       tortie_spc_v1   (N, proto, sport prefix) → sport class (ranges split into prefixes)
 *       tortie_pol_v1   (N, local class, proto, sport class, dport prefix) → verdict
 *                        (each cell's [portMin, portMax] split into aligned prefixes)
 *       tortie_tbl_v1   N → {flags, miss_rule, hash}        written LAST, deleted FIRST
 *     Cells of a table partition the port space, so the prefixes never overlap and the LPM
 *     returns exactly the cell the compiler meant.
 *   - Log rules beyond TORTIE_MAX_LOG_RULES per cell are dropped from the map value (events
 *     carry the first four) and counted in `EncodedTable.truncatedLogs`.
 * Pure: no map I/O here (apply.ts writes).
 */
import { endianness } from 'node:os';
import type { ClassPrefix, VerdictTable, Prefilter } from '../../calc/types';
import {
  ACT_ALLOW, ACT_DENY, MAX_LOG_RULES, POL_FIXED_BITS, SPC_FIXED_BITS, TBL_F_SPORT, TBL_F_PASS, PF_FIXED_BITS, PF_SRC,
  PF_KIND_DNT, PF_KIND_DENYLIST, cls4KeyCodec, cls6KeyCodec, polKeyCodec, projKeyCodec, spcKeyCodec, tableCodec, u32Value,
  u32Key, verdictCodec, pf4KeyCodec, pfValueCodec, fs4KeyCodec, fs6KeyCodec, pf6KeyCodec, FS_FIXED_BITS, FS_IN, FS_OUT,
} from './codecs';
import { EncodeError } from './encode-error';
import { C_ACTION, C_LOCAL, C_LOG_START, C_PORT_MAX, C_PORT_MIN, C_PROTO, C_RULE, C_SPC, CELL_WORDS, PackedTable, type AnyTable } from './packed-table';
import { formatIP, maskCidr, parseCidrOrIp4, tryParseCidrOrIp, tryParseCidrOrIp4, u32ToIpv4, type Cidr4, type IpParseError } from '../../primitives';
import type { FailsafePort } from '../../model/failsafe';

export { EncodeError };

export interface Entry { key: Buffer; value: Buffer }

export interface PortPrefix { value: number; bits: number }

/** Splits the inclusive range [min, max] of 16-bit values into the fewest aligned prefixes. */
export function portRangeToPrefixes(min: number, max: number): PortPrefix[] {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max > 0xffff || min > max) {
    throw new EncodeError(`port range [${min}, ${max}] is not within 0..65535 with min <= max`);
  }
  const out: PortPrefix[] = [];
  let lo = min;
  while (lo <= max) {
    // Largest block starting at lo that is aligned and fits in [lo, max].
    let size = lo === 0 ? 0x10000 : lo & -lo;
    while (lo + size - 1 > max) size >>= 1;
    out.push({ value: lo, bits: 16 - Math.log2(size) });
    lo += size;
  }
  return out;
}

/**
 * `a.b.c.d/len` or a bare address (= /32) → host-order network and length, host bits cleared
 * (src/primitives' rules); throws EncodeError naming the input.
 */
export function cidr4ForMap(cidr: string): Cidr4 {
  const c = tryParseCidrOrIp4(cidr);
  if (c === undefined) {
    let why = '';
    try { parseCidrOrIp4(cidr); } catch (e) { why = `: ${(e as IpParseError).reason}`; }
    throw new EncodeError(`"${cidr}" is not an IPv4 CIDR${why}`);
  }
  return c;
}

/** `a.b.c.d/len` → the network as text (host bits cleared) and the length; throws EncodeError. */
export function prefix4(cidr: string): { addr: string; len: number } {
  const { addr, len } = cidr4ForMap(cidr);
  return { addr: u32ToIpv4(addr), len };
}

/** An IPv6 `addr/len` (or bare address) → the network as text and the length; throws EncodeError. */
export function prefix6(cidr: string): { addr: string; len: number } {
  const c = tryParseCidrOrIp(cidr);
  if (c === undefined || c.ip.version !== 6) throw new EncodeError(`"${cidr}" is not an IPv6 CIDR`);
  const m = maskCidr(c);
  return { addr: formatIP(m.ip), len: m.prefix };
}

/** A class prefix as its tortie_cls4_v1 (family 4) or tortie_cls6_v1 (family 6) entry. */
export function encodeClassPrefix(p: ClassPrefix): Entry | null {
  if (p.family === 6) {
    const { addr, len } = prefix6(p.cidr);
    return { key: cls6KeyCodec.encode({ prefixlen: len, addr }), value: u32Value(p.classId) };
  }
  const { addr, len } = prefix4(p.cidr);
  return { key: cls4KeyCodec.encode({ prefixlen: len, addr }), value: u32Value(p.classId) };
}

export function cls6KeyOf(cidr: string): Buffer {
  const { addr, len } = prefix6(cidr);
  return cls6KeyCodec.encode({ prefixlen: len, addr });
}

export function cls4KeyOf(cidr: string): Buffer {
  const { addr, len } = prefix4(cidr);
  return cls4KeyCodec.encode({ prefixlen: len, addr });
}

export interface EncodedTable {
  id: number;
  meta: Entry;
  proj: Entry[];
  spc: Entry[];
  pol: Entry[];
  truncatedLogs: number;
}

function hashBytes(hexId: string): Buffer {
  const b = Buffer.alloc(8);
  if (/^[0-9a-f]{16}$/.test(hexId)) Buffer.from(hexId, 'hex').copy(b);
  else Buffer.from(hexId, 'utf8').subarray(0, 8).copy(b);
  return b;
}

const HOST_LE = endianness() === 'LE';

/**
 * One projection entry: struct tortie_proj_key {u32 table; u32 gclass} and a u32 value, in host
 * order as projKeyCodec writes them. Written by hand into one pooled 12-byte slice (a table
 * switch at 100,000 endpoints writes and deletes ~18,000 of these; the codec's two zero-filled
 * buffers per entry were most of the agent's allocations during a toggle). Callers do not keep
 * the buffers (they go into a batch and are dropped), so pooling retains nothing.
 */
export function encodeProjection(id: number, globalClass: number, localClass: number): Entry {
  const b = Buffer.allocUnsafe(12);
  if (HOST_LE) {
    b.writeUInt32LE(id, 0);
    b.writeUInt32LE(globalClass, 4);
    b.writeUInt32LE(localClass, 8);
  } else {
    b.writeUInt32BE(id, 0);
    b.writeUInt32BE(globalClass, 4);
    b.writeUInt32BE(localClass, 8);
  }
  return { key: b.subarray(0, 8), value: b.subarray(8, 12) };
}

/**
 * Fixed-size entries side by side, as BPF_MAP_UPDATE_BATCH takes them: entry i's key is
 * keys[i·keySize, (i+1)·keySize), its value values[i·valueSize, …). A table's projection and
 * cells are encoded this way (one buffer per kind instead of three Buffer views per entry: at
 * 100,000 endpoints a first sync writes ~2.3 million such entries).
 */
export interface PackedEntries { count: number; keySize: number; valueSize: number; keys: Buffer; values: Buffer }

/** The entries as key/value views into the packed buffers (no copy). */
export function entriesOf(p: PackedEntries): Entry[] {
  const out: Entry[] = new Array<Entry>(p.count);
  for (let i = 0; i < p.count; i++) {
    out[i] = { key: p.keys.subarray(i * p.keySize, (i + 1) * p.keySize), value: p.values.subarray(i * p.valueSize, (i + 1) * p.valueSize) };
  }
  return out;
}

/** The keys as views into the packed buffer (no copy). */
export function keysOf(p: PackedEntries): Buffer[] {
  const out: Buffer[] = new Array<Buffer>(p.count);
  for (let i = 0; i < p.count; i++) out[i] = p.keys.subarray(i * p.keySize, (i + 1) * p.keySize);
  return out;
}

/** A table as packed entries (encodeTable's content; its projection and cells packed). */
export interface PackedTableEntries {
  id: number;
  meta: Entry;
  proj: PackedEntries;
  spc: Entry[];
  pol: PackedEntries;
  truncatedLogs: number;
}

const PROJ_KEY = 8;
const U32 = 4;
const POL_KEY = 20;
const VERDICT = 8 + 4 * MAX_LOG_RULES;
if (polKeyCodec.size !== POL_KEY || verdictCodec.size !== VERDICT || projKeyCodec.size !== PROJ_KEY) {
  throw new Error(`encode: hand-written layouts disagree with the codecs (pol key ${polKeyCodec.size}, verdict ${verdictCodec.size}, proj key ${projKeyCodec.size})`);
}

/**
 * struct tortie_proj_key {u32 table; u32 gclass} → u32 local class, for every projection pair
 * [global, local, …], in host order as projKeyCodec writes them.
 */
function packProjection(pairs: Uint32Array, id: number): PackedEntries {
  const n = pairs.length / 2;
  const keys = Buffer.allocUnsafe(n * PROJ_KEY);
  const values = Buffer.allocUnsafe(n * U32);
  const kv = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
  const vv = new DataView(values.buffer, values.byteOffset, values.byteLength);
  for (let i = 0; i < n; i++) {
    kv.setUint32(i * PROJ_KEY, id, HOST_LE);
    kv.setUint32(i * PROJ_KEY + 4, pairs[2 * i]!, HOST_LE);
    vv.setUint32(i * U32, pairs[2 * i + 1]!, HOST_LE);
  }
  return { count: n, keySize: PROJ_KEY, valueSize: U32, keys, values };
}

/**
 * Every cell's [portMin, portMax] split into aligned prefixes, each a tortie_pol_key
 * {u32 prefixlen; u32 table; u32 lclass; u16 proto; u16 sclass; be16 port; u8 pad[2]} → struct
 * tortie_verdict {u8 action; u8 nlog; u16 flags; u32 rule; u32 log_rules[MAX_LOG_RULES]}, as
 * polKeyCodec and verdictCodec write them (host order, port in network order, zero padding).
 * `cells`/`logs`: a PackedTable's columns (all values u32 already).
 */
function packCells(tableId: string, cells: Uint32Array, logs: Uint32Array, id: number): { pol: PackedEntries; truncatedLogs: number } {
  const count = cells.length / CELL_WORDS;
  const prefixes: PortPrefix[][] = new Array<PortPrefix[]>(count);
  let n = 0;
  for (let i = 0; i < count; i++) {
    const o = i * CELL_WORDS;
    if (cells[o + C_SPC]! > 0xffff) throw new EncodeError(`table ${tableId}: cell class (${cells[o + C_LOCAL]}, ${cells[o + C_SPC]}) out of range`);
    if (cells[o + C_PROTO]! > 0xffff) throw new EncodeError(`table ${tableId}: cell protocol ${cells[o + C_PROTO]} is not a u16`);
    prefixes[i] = portRangeToPrefixes(cells[o + C_PORT_MIN]!, cells[o + C_PORT_MAX]!);
    n += prefixes[i]!.length;
  }
  const keys = Buffer.alloc(n * POL_KEY);
  const values = Buffer.alloc(n * VERDICT);
  const kv = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
  const vv = new DataView(values.buffer, values.byteOffset, values.byteLength);
  let truncatedLogs = 0;
  let e = 0;
  for (let i = 0; i < count; i++) {
    const o = i * CELL_WORDS;
    const logStart = cells[o + C_LOG_START]!;
    const logEnd = i + 1 < count ? cells[o + CELL_WORDS + C_LOG_START]! : logs.length;
    const nlog = Math.min(logEnd - logStart, MAX_LOG_RULES);
    truncatedLogs += logEnd - logStart - nlog;
    const first = e * VERDICT;
    vv.setUint8(first, cells[o + C_ACTION] === 1 ? ACT_ALLOW : ACT_DENY);
    vv.setUint8(first + 1, nlog);
    vv.setUint16(first + 2, 0, HOST_LE);
    vv.setUint32(first + 4, cells[o + C_RULE]!, HOST_LE);
    for (let l = 0; l < nlog; l++) vv.setUint32(first + 8 + 4 * l, logs[logStart + l]!, HOST_LE);
    for (const pp of prefixes[i]!) {
      const k = e * POL_KEY;
      kv.setUint32(k, POL_FIXED_BITS + pp.bits, HOST_LE);
      kv.setUint32(k + 4, id, HOST_LE);
      kv.setUint32(k + 8, cells[o + C_LOCAL]!, HOST_LE);
      kv.setUint16(k + 12, cells[o + C_PROTO]!, HOST_LE);
      kv.setUint16(k + 14, cells[o + C_SPC]!, HOST_LE);
      kv.setUint16(k + 16, pp.value, false);
      // Every prefix of the cell carries its verdict (copyWithin: the TypedArray builtin; Buffer#copy
      // took ~0.4 s of samples at 1.1 M prefixes in an agent profile).
      if (e * VERDICT !== first) values.copyWithin(e * VERDICT, first, first + VERDICT);
      e++;
    }
  }
  return { pol: { count: n, keySize: POL_KEY, valueSize: VERDICT, keys, values }, truncatedLogs };
}

/**
 * A table's entries, the projection and cells packed (what TableRegistry writes), from its
 * packed form (a VerdictTable is packed first: PackedTable.pack checks every field is a u32).
 */
export function encodeTablePacked(table: AnyTable, id: number): PackedTableEntries {
  if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) throw new EncodeError(`table id ${id} is not in 1..2^32-1`);
  const t = table instanceof PackedTable ? table : PackedTable.pack(table);
  const cols = t.columns();
  const proj = packProjection(cols.proj, id);
  const spc: Entry[] = [];
  for (const sp of t.srcPortClasses) {
    for (const r of sp.ranges) {
      for (const pp of portRangeToPrefixes(r.portMin, r.portMax)) {
        spc.push({
          key: spcKeyCodec.encode({ prefixlen: SPC_FIXED_BITS + pp.bits, table: id, proto: sp.protocol, port: pp.value }),
          value: u32Value(r.srcPortClass),
        });
      }
    }
  }
  const { pol, truncatedLogs } = packCells(t.id, cols.cells, cols.logs, id);
  const meta = {
    key: u32Key(id),
    value: tableCodec.encode({
      flags: (t.srcPortClasses.length ? TBL_F_SPORT : 0) | (t.passThroughRule !== undefined ? TBL_F_PASS : 0),
      miss_rule: t.passThroughRule ?? 0, hash: hashBytes(t.id),
    }),
  };
  return { id, meta, proj, spc, pol, truncatedLogs };
}

export function encodeTable(t: VerdictTable, id: number): EncodedTable {
  const p = encodeTablePacked(t, id);
  return { id, meta: p.meta, proj: entriesOf(p.proj), spc: p.spc, pol: entriesOf(p.pol), truncatedLogs: p.truncatedLogs };
}

/** Prefilter CIDRs (doNotTrack deny, source side) plus operator deny-list CIDRs: tortie_pf4_v1's
 *  entries (IPv4), or with `v6` tortie_pf6_v1's (IPv6). */
export function encodePrefilter(pf: Prefilter, denyList: string[] = [], v6 = false): Entry[] {
  const out = new Map<string, Entry>();
  const add = (cidr: string, kind: number, rule: number): void => {
    if (cidr.includes(':') !== v6) return;
    let key: Buffer;
    if (v6) {
      const { addr, len } = prefix6(cidr);
      key = pf6KeyCodec.encode({ prefixlen: PF_FIXED_BITS + len, side: PF_SRC, addr });
    } else {
      const { addr, len } = prefix4(cidr);
      key = pf4KeyCodec.encode({ prefixlen: PF_FIXED_BITS + len, side: PF_SRC, addr });
    }
    out.set(key.toString('hex'), { key, value: pfValueCodec.encode({ kind, rule }) });
  };
  for (const c of denyList) add(c, PF_KIND_DENYLIST, 0);
  for (const d of pf.deny) if (d.family === (v6 ? 6 : 4)) add(d.cidr, PF_KIND_DNT, d.ruleId);
  return [...out.values()];
}

/** tortie_fs4_v1 entries of Felix's failsafe ports (IPv4 and any-address entries; IPv6 nets skipped). */
export function encodeFailsafe(inbound: readonly FailsafePort[], outbound: readonly FailsafePort[]): Entry[] {
  const out = new Map<string, Entry>();
  const proto = { TCP: 6, UDP: 17, SCTP: 132 } as const;
  const add = (dir: number, p: FailsafePort) => {
    let len = 0;
    let addr = '0.0.0.0';
    if (p.net !== undefined) {
      if (p.net.includes(':')) return;
      ({ addr, len } = prefix4(p.net));
    }
    const key = fs4KeyCodec.encode({ prefixlen: FS_FIXED_BITS + len, dir, proto: proto[p.protocol], port: p.port, addr });
    out.set(key.toString('hex'), { key, value: u32Value(0) });
  };
  for (const p of inbound) add(FS_IN, p);
  for (const p of outbound) add(FS_OUT, p);
  return [...out.values()];
}

/** tortie_fs6_v1 entries: Felix applies its failsafe ports to both families — an entry without a
 *  net holds for any IPv6 remote too, one with an IPv6 net for that net (IPv4 nets skipped). */
export function encodeFailsafe6(inbound: readonly FailsafePort[], outbound: readonly FailsafePort[]): Entry[] {
  const out = new Map<string, Entry>();
  const proto = { TCP: 6, UDP: 17, SCTP: 132 } as const;
  const add = (dir: number, p: FailsafePort) => {
    let len = 0;
    let addr = '::';
    if (p.net !== undefined) {
      if (!p.net.includes(':')) return;
      ({ addr, len } = prefix6(p.net));
    }
    const key = fs6KeyCodec.encode({ prefixlen: FS_FIXED_BITS + len, dir, proto: proto[p.protocol], port: p.port, addr });
    out.set(key.toString('hex'), { key, value: u32Value(0) });
  };
  for (const p of inbound) add(FS_IN, p);
  for (const p of outbound) add(FS_OUT, p);
  return [...out.values()];
}
