/**
 * Verdict-table construction: from a table definition (the ordered steps of one endpoint and
 * direction, local side already resolved) and the restricted membership signatures of the global
 * classes, the cells of a VerdictTable.
 *
 * Contract:
 *   - `computeRows(def, sig)` is the verdict function of one restricted signature as per-protocol
 *     source-port slabs, each a partition of [0, 65535] of destination port values into segments
 *     with (action, rule, logs); adjacent equal segments/slabs are merged, so `rowsKey` is a
 *     canonical fingerprint: two signatures with equal rowsKeys behave identically.
 *   - `assembleTable(def, groups)` numbers local classes (the group of the empty signature is 0,
 *     the rest by rowsKey), derives source-port classes as the common refinement of all groups'
 *     slabs, and emits complete, sorted cells (see types.ts for the lookup contract).
 * Cost: per signature, O(protocols × source slabs × destination intervals × active steps).
 */
import { createHash } from 'node:crypto';
import { ICMP_PROTOCOLS, isIcmpProtocol, isPortProtocol, PORT_PROTOCOLS } from '../primitives';
import { inRanges, normaliseRanges, type Ranges } from './semantics';
import { PROTO_OTHER, type Direction, type SrcPortRange, type VerdictCell } from './types';

/** Port constraint of one side after local resolution. */
export interface PortMatchDef {
  /** Numeric ranges, any port-carrying protocol. */
  ranges: Ranges;
  /** Local named ports resolved to numbers, per protocol number. */
  byProto?: Record<string, Ranges>;
  /** Remote named-port atoms (their per-class values come from the signature). */
  np?: string[];
}

export interface StepMatch {
  protocol?: number;
  notProtocol?: number;
  icmp?: Ranges;
  notIcmp?: Ranges;
  src?: PortMatchDef;
  srcNot?: PortMatchDef;
  dst?: PortMatchDef;
  dstNot?: PortMatchDef;
  /** Remote side: positive selector atom, negative selector atom, CIDR atoms. */
  sel?: string;
  notSel?: string;
  nets?: string[];
  notNets?: string[];
}

export type Step =
  | { kind: 'rule'; rule: string; action: 'allow' | 'deny' | 'pass' | 'log'; passTo: number; m: StepMatch }
  /** End of a tier whose default is Deny. */
  | { kind: 'end'; rule: string }
  /** No profile decided: deny. Always the last step. */
  | { kind: 'final'; rule: string };

export interface TableDef {
  key: string;
  direction: Direction;
  steps: Step[];
  /** Protocols the steps distinguish, sorted. */
  protocols: number[];
  /** Every atom the steps reference (sel, notSel, nets, np). */
  atoms: Set<string>;
  /** The same, sorted. */
  atomList: string[];
  /** Protocol → its index in `protocols`. */
  protocolIndex: Map<number, number>;
  /**
   * Hash-consing of computePartRows' results for this definition (memory: many signatures give
   * the same function, and functions share buckets): 32-bit hash of a bucket's text → the first
   * bucket with that hash (reused only if equal: a collision just isn't shared), key → function.
   */
  interned?: { buckets: Map<number, PartSlab[]>; fns: Map<string, PartRows> };
}

/** Signature restricted to a table's atoms: atom id → true (member) or named-port values. */
export type Signature = Map<string, true | NpValues>;
/** Named-port values of an address: (protocol, port) pairs. */
export type NpValues = [number, number][];

export interface Seg {
  min: number;
  max: number;
  allow: boolean;
  rule: string;
  logs: string[];
}

export interface Slab {
  min: number;
  max: number;
  segs: Seg[];
}

export interface Rows {
  key: string;
  /** Per protocol (def.protocols then PROTO_OTHER), slabs covering [0, 65535]. */
  byProto: Map<number, Slab[]>;
}

/** Builds the definition record (protocols and atoms) from steps. */
export function makeTableDef(direction: Direction, steps: Step[]): TableDef {
  const protocols = new Set<number>();
  const atoms = new Set<string>();
  for (const s of steps) {
    if (s.kind !== 'rule') continue;
    const m = s.m;
    if (m.protocol !== undefined) protocols.add(m.protocol);
    if (m.notProtocol !== undefined) protocols.add(m.notProtocol);
    const hasPorts = m.src !== undefined || m.srcNot !== undefined || m.dst !== undefined || m.dstNot !== undefined;
    if (hasPorts && m.protocol === undefined) for (const p of PORT_PROTOCOLS) protocols.add(p);
    if ((m.icmp !== undefined || m.notIcmp !== undefined) && m.protocol === undefined) {
      for (const p of ICMP_PROTOCOLS) protocols.add(p);
    }
    if (m.sel !== undefined) atoms.add(m.sel);
    if (m.notSel !== undefined) atoms.add(m.notSel);
    for (const a of m.nets ?? []) atoms.add(a);
    for (const a of m.notNets ?? []) atoms.add(a);
    for (const pm of [m.src, m.srcNot, m.dst, m.dstNot]) for (const a of pm?.np ?? []) atoms.add(a);
  }
  const json = JSON.stringify([direction, steps]);
  const key = createHash('sha1').update(json).digest('hex');
  const sorted = [...protocols].sort((a, b) => a - b);
  return { key, direction, steps, protocols: sorted, atoms, atomList: [...atoms].sort(), protocolIndex: new Map(sorted.map((p, i) => [p, i])) };
}

// ------------------------------------------------------------------------------ ranges

const FULL: Ranges = [[0, 65535]];

function complement(r: Ranges): Ranges {
  const out: Ranges = [];
  let next = 0;
  for (const [a, b] of r) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= 65535) out.push([next, 65535]);
  return out;
}

function intersect(x: Ranges, y: Ranges): Ranges {
  const out: Ranges = [];
  let i = 0;
  let j = 0;
  while (i < x.length && j < y.length) {
    const a = Math.max(x[i]![0], y[j]![0]);
    const b = Math.min(x[i]![1], y[j]![1]);
    if (a <= b) out.push([a, b]);
    if (x[i]![1] < y[j]![1]) i++;
    else j++;
  }
  return out;
}

/** The ranges a port match allows for protocol `proto` and signature `sig`. */
function portSet(pm: PortMatchDef, proto: number, sig: Signature): Ranges {
  const parts: [number, number][] = [...pm.ranges];
  const local = pm.byProto?.[String(proto)];
  if (local !== undefined) parts.push(...local);
  for (const a of pm.np ?? []) {
    const v = sig.get(a);
    if (v === undefined || v === true) continue;
    for (const [p, port] of v) if (p === proto) parts.push([port, port]);
  }
  return normaliseRanges(parts);
}

interface Active {
  idx: number;
  src: Ranges | null;
  dst: Ranges | null;
}

/** Remote-side predicate of a rule for a signature. */
/** Whether a rule's remote side (selector, notSelector, nets, notNets) matches a signature. */
export function remoteMatches(m: StepMatch, sig: Signature): boolean {
  if (m.sel !== undefined && !sig.has(m.sel)) return false;
  if (m.notSel !== undefined && sig.has(m.notSel)) return false;
  if (m.nets !== undefined && !m.nets.some((a) => sig.has(a))) return false;
  if (m.notNets !== undefined && m.notNets.some((a) => sig.has(a))) return false;
  return true;
}

/** Protocol and port predicate of a rule for one protocol bucket: null = never matches. */
function protoPorts(m: StepMatch, proto: number, sig: Signature): { src: Ranges | null; dst: Ranges | null } | null {
  if (m.protocol !== undefined && m.protocol !== proto) return null;
  if (m.notProtocol !== undefined && m.notProtocol === proto) return null;
  let src: Ranges | null = null;
  let dst: Ranges | null = null;
  if (m.icmp !== undefined || m.notIcmp !== undefined) {
    if (proto === PROTO_OTHER || !isIcmpProtocol(proto)) return null;
    dst = m.icmp ?? FULL;
    if (m.notIcmp !== undefined) dst = intersect(dst, complement(m.notIcmp));
    if (dst.length === 0) return null;
  }
  if (m.src !== undefined || m.srcNot !== undefined || m.dst !== undefined || m.dstNot !== undefined) {
    if (proto === PROTO_OTHER || !isPortProtocol(proto)) return null;
    if (m.src !== undefined || m.srcNot !== undefined) {
      let s = m.src !== undefined ? portSet(m.src, proto, sig) : FULL;
      if (m.srcNot !== undefined) s = intersect(s, complement(portSet(m.srcNot, proto, sig)));
      if (s.length === 0) return null;
      src = s;
    }
    if (m.dst !== undefined || m.dstNot !== undefined) {
      let d = m.dst !== undefined ? portSet(m.dst, proto, sig) : FULL;
      if (m.dstNot !== undefined) d = intersect(d, complement(portSet(m.dstNot, proto, sig)));
      if (d.length === 0) return null;
      dst = dst === null ? d : intersect(dst, d);
      if (dst.length === 0) return null;
    }
  }
  return { src, dst };
}

/** Sorted unique interval starts (always including 0) induced by the ranges. */
function cutPoints(sets: (Ranges | null)[]): number[] {
  const pts = new Set<number>([0]);
  for (const r of sets) {
    if (r === null) continue;
    for (const [a, b] of r) {
      pts.add(a);
      if (b < 65535) pts.add(b + 1);
    }
  }
  return [...pts].sort((a, b) => a - b);
}

/** Outcome of a policy (part) for a packet: 0 = no rule decided (fall through), 1 allow, 2 deny, 3 pass. */
export type Outcome = 0 | 1 | 2 | 3;

/** A segment of a part's function: the outcome, the rule that produced it, Log rules hit before. */
export interface PartSeg {
  min: number;
  max: number;
  o: Outcome;
  rule: string;
  logs: string[];
}

export interface PartSlab {
  min: number;
  max: number;
  segs: PartSeg[];
}

/**
 * One policy's (or profile's) function for one restricted signature, per protocol bucket.
 * Memoised per part and signature, so kept small: buckets are an array aligned with the part's
 * `[...protocols, PROTO_OTHER]`, a bucket that does nothing is the shared NOOP_SLABS, and equal
 * buckets and equal functions of one part are one object each (TableDef.interned). Shared:
 * never mutated.
 */
export interface PartRows {
  /** Per protocol bucket (def.protocols then PROTO_OTHER), slabs covering [0, 65535]. */
  slabs: PartSlab[][];
  /** Canonical fingerprint: equal keys ⇔ equal functions (for reuse across table versions). */
  key: string;
  /** Whether every bucket is NOOP_SLABS (fold.ts isNoop; set when made, or on first ask). */
  noop?: boolean;
}

/** Shared log list of segments that hit no Log rule (never mutated). */
export const NO_LOGS: string[] = [];

/** The bucket of a part that does nothing there (falls through, logs nothing); shared, never mutated. */
export const NOOP_SLABS: PartSlab[] = [{ min: 0, max: 65535, segs: [{ min: 0, max: 65535, o: 0, rule: '', logs: NO_LOGS }] }];

/** Index of protocol `p`'s bucket in a part's PartRows.slabs (its own protocol, else PROTO_OTHER's). */
export function bucketOf(def: TableDef, p: number): number {
  return def.protocolIndex.get(p) ?? def.protocols.length;
}

function samePartSeg(a: PartSeg, b: PartSeg): boolean {
  return a.o === b.o && a.rule === b.rule && a.logs.length === b.logs.length && a.logs.every((l, i) => l === b.logs[i]);
}

function samePartSegs(a: PartSeg[], b: PartSeg[]): boolean {
  return a.length === b.length && a.every((s, i) => s.min === b[i]!.min && s.max === b[i]!.max && samePartSeg(s, b[i]!));
}

function samePartSlabs(a: PartSlab[], b: PartSlab[]): boolean {
  return a.length === b.length && a.every((s, i) => s.min === b[i]!.min && s.max === b[i]!.max && samePartSegs(s.segs, b[i]!.segs));
}

/** FNV-1a over UTF-16 code units, as a small integer (a Map key without a heap number). */
export function textHash(str: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >> 1;
}

/**
 * The function of one part (a policy's or profile's resolved rules, in order) for one signature:
 * per protocol bucket of the part, source-port slabs of destination-port segments, each with the
 * first deciding outcome (Allow/Deny/Pass) or fall-through, and the Log rules hit before it.
 */
export function computePartRows(def: TableDef, sig: Signature): PartRows {
  const steps = def.steps;
  const remoteOk = steps.map((s) => s.kind === 'rule' && remoteMatches(s.m, sig));
  const buckets: PartSlab[][] = [];
  for (const proto of [...def.protocols, PROTO_OTHER]) {
    const active: Active[] = [];
    for (let i = 0; i < steps.length; i++) {
      if (!remoteOk[i]) continue;
      const pp = protoPorts((steps[i] as Extract<Step, { kind: 'rule' }>).m, proto, sig);
      if (pp !== null) active.push({ idx: i, src: pp.src, dst: pp.dst });
    }
    if (active.length === 0) {
      buckets.push(NOOP_SLABS);
      continue;
    }
    const srcCuts = cutPoints(active.map((a) => a.src));
    const slabs: PartSlab[] = [];
    for (let c = 0; c < srcCuts.length; c++) {
      const min = srcCuts[c]!;
      const max = c + 1 < srcCuts.length ? srcCuts[c + 1]! - 1 : 65535;
      const list = active.filter((a) => a.src === null || inRanges(a.src, min));
      const segs = partSegments(steps, list);
      const last = slabs[slabs.length - 1];
      if (last !== undefined && samePartSegs(last.segs, segs)) last.max = max;
      else slabs.push({ min, max, segs });
    }
    const only = slabs.length === 1 && slabs[0]!.segs.length === 1 ? slabs[0]!.segs[0]! : undefined;
    if (only !== undefined && only.o === 0 && only.logs.length === 0) {
      buckets.push(NOOP_SLABS);
      continue;
    }
    // Exact-length copy: arrays grown by push keep spare capacity, and these live in the memo.
    buckets.push(slabs.slice());
  }
  const interned = (def.interned ??= { buckets: new Map(), fns: new Map() });
  const texts: string[] = [];
  for (let i = 0; i < buckets.length; i++) {
    const slabs = buckets[i]!;
    const text = `${def.protocols[i] ?? PROTO_OTHER}:${slabs.map((sl) => `${sl.min}-${sl.max}[${sl.segs.map((g) => `${g.min}-${g.max}/${g.o}${g.rule}${g.logs.length ? '+' + g.logs.join('+') : ''}`).join(',')}]`).join(';')}`;
    texts.push(text);
    if (slabs === NOOP_SLABS) continue;
    const h = textHash(text);
    const same = interned.buckets.get(h);
    if (same === undefined) interned.buckets.set(h, slabs);
    else if (samePartSlabs(same, slabs)) buckets[i] = same;
  }
  const key = createHash('sha1').update(texts.join('|')).digest('hex').slice(0, 16);
  const fn = interned.fns.get(key);
  if (fn !== undefined) return fn;
  const rows: PartRows = { slabs: buckets, key, noop: buckets.every((b) => b === NOOP_SLABS) };
  interned.fns.set(key, rows);
  return rows;
}

function partSegments(steps: Step[], list: Active[]): PartSeg[] {
  const cuts = cutPoints(list.map((a) => a.dst));
  const segs: PartSeg[] = [];
  for (let c = 0; c < cuts.length; c++) {
    const min = cuts[c]!;
    const max = c + 1 < cuts.length ? cuts[c + 1]! - 1 : 65535;
    let logs: string[] | undefined;
    let seg: PartSeg | undefined;
    for (const a of list) {
      if (a.dst !== null && !inRanges(a.dst, min)) continue;
      const s = steps[a.idx] as Extract<Step, { kind: 'rule' }>;
      if (s.action === 'log') {
        (logs ??= []).push(s.rule);
        continue;
      }
      seg = { min, max, o: s.action === 'allow' ? 1 : s.action === 'deny' ? 2 : 3, rule: s.rule, logs: logs?.slice() ?? NO_LOGS };
      break;
    }
    seg ??= { min, max, o: 0, rule: '', logs: logs?.slice() ?? NO_LOGS };
    const last = segs[segs.length - 1];
    if (last !== undefined && samePartSeg(last, seg)) last.max = max;
    else segs.push(seg);
  }
  return segs.slice();
}

/** Canonical text of one protocol's final slabs (part of the rows key). */
export function slabsText(proto: number, slabs: Slab[]): string {
  return `${proto}:${slabs.map((sl) => `${sl.min}-${sl.max}[${sl.segs.map((g) => `${g.min}-${g.max}${g.allow ? 'A' : 'D'}${g.rule}${g.logs.length ? '+' + g.logs.join('+') : ''}`).join(',')}]`).join(';')}`;
}

/** Canonical fingerprint of final rows from their per-protocol texts (slabsText, in order). */
export function rowsKeyOfTexts(texts: string[]): string {
  // A 64-bit hash keeps group keys short (they are sorted and compared a lot).
  return createHash('sha1').update(texts.join('|')).digest('hex').slice(0, 16);
}

export function sameSlabs(a: Slab[], b: Slab[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.min !== y.min || x.max !== y.max || x.segs.length !== y.segs.length) return false;
    for (let j = 0; j < x.segs.length; j++) {
      const g = x.segs[j]!;
      const h = y.segs[j]!;
      if (g.min !== h.min || g.max !== h.max || g.allow !== h.allow || g.rule !== h.rule || g.logs.length !== h.logs.length) return false;
      for (let k = 0; k < g.logs.length; k++) if (g.logs[k] !== h.logs[k]) return false;
    }
  }
  return true;
}

// ------------------------------------------------------------------------------ assembly

export interface AssembledTable {
  id: string;
  localClassCount: number;
  /** rowsKey → local class. */
  localOf: Map<string, number>;
  protocols: number[];
  srcPortClasses: { protocol: number; ranges: SrcPortRange[] }[];
  /** Cells with rule keys (the graph maps them to rule ids), column-wise (kept for the table's life). */
  cells: CellColumns;
}

/** A cell with its rule keys; the table's id hashes the list of these. */
export type KeyedCell = Omit<VerdictCell, 'ruleId' | 'logRuleIds'> & { rule: string; logs: string[] };

/**
 * Cells column by column: cell i is (localClass[i], protocol[i], srcPortClass[i], portMin[i],
 * portMax[i], allow[i] ? 'allow' : 'deny', rule[i], logs[i]). About a third of the memory of
 * one object per cell; `logs` entries are shared (never mutated).
 */
export interface CellColumns {
  count: number;
  localClass: Int32Array;
  srcPortClass: Int32Array;
  protocol: Uint16Array;
  portMin: Uint16Array;
  portMax: Uint16Array;
  allow: Uint8Array;
  rule: string[];
  logs: string[][];
}

export function toColumns(cells: KeyedCell[]): CellColumns {
  const n = cells.length;
  const out = emptyColumns(n);
  for (let i = 0; i < n; i++) {
    const c = cells[i]!;
    out.localClass[i] = c.localClass;
    out.srcPortClass[i] = c.srcPortClass;
    out.protocol[i] = c.protocol;
    out.portMin[i] = c.portMin;
    out.portMax[i] = c.portMax;
    out.allow[i] = c.action === 'allow' ? 1 : 0;
    out.rule[i] = c.rule;
    out.logs[i] = c.logs;
  }
  return out;
}

/** Columns for n cells, to be filled. */
function emptyColumns(n: number): CellColumns {
  return {
    count: n,
    localClass: new Int32Array(n),
    srcPortClass: new Int32Array(n),
    protocol: new Uint16Array(n),
    portMin: new Uint16Array(n),
    portMax: new Uint16Array(n),
    allow: new Uint8Array(n),
    rule: new Array<string>(n),
    logs: new Array<string[]>(n),
  };
}

/** Cell i of columns made by toColumns (the inverse, one cell at a time). */
export function cellAt(c: CellColumns, i: number): KeyedCell {
  return {
    localClass: c.localClass[i]!,
    protocol: c.protocol[i]!,
    srcPortClass: c.srcPortClass[i]!,
    portMin: c.portMin[i]!,
    portMax: c.portMax[i]!,
    action: c.allow[i] === 1 ? 'allow' : 'deny',
    rule: c.rule[i]!,
    logs: c.logs[i]!,
  };
}

/** Builds a table from the distinct rows present; `zeroKey` is the empty signature's rowsKey. */
export function assembleTable(def: { key: string; protocols: number[] }, groups: Map<string, Rows>, zeroKey: string): AssembledTable {
  const others = [...groups.keys()].filter((k) => k !== zeroKey).sort();
  const order = [zeroKey, ...others];
  const localOf = new Map<string, number>(order.map((k, i) => [k, i]));
  const protos = [...def.protocols, PROTO_OTHER];
  const srcPortClasses: AssembledTable['srcPortClasses'] = [];
  // Per protocol: the source-port classes and, per class, each group's slab.
  const perProto = new Map<number, { classSlab: Slab[][] }>();
  for (const proto of protos) {
    const slabLists = order.map((k) => groups.get(k)!.byProto.get(proto)!);
    const cuts = new Set<number>();
    for (const sl of slabLists) for (const s of sl) cuts.add(s.min);
    const sorted = [...cuts].sort((a, b) => a - b);
    const classOfSig = new Map<string, number>();
    const classSlab: Slab[][] = [];
    const ranges: SrcPortRange[] = [];
    const idx = order.map(() => 0);
    for (let c = 0; c < sorted.length; c++) {
      const min = sorted[c]!;
      const max = c + 1 < sorted.length ? sorted[c + 1]! - 1 : 65535;
      const picks: Slab[] = [];
      for (let g = 0; g < order.length; g++) {
        const sl = slabLists[g]!;
        while (sl[idx[g]!]!.max < min) idx[g]!++;
        picks.push(sl[idx[g]!]!);
      }
      const sigKey = picks.map((p, g) => `${g}:${p.min}`).join(',');
      let cls = classOfSig.get(sigKey);
      if (cls === undefined) {
        cls = classSlab.length;
        classOfSig.set(sigKey, cls);
        classSlab.push(picks);
      }
      if (cls !== 0) {
        const last = ranges[ranges.length - 1];
        if (last !== undefined && last.srcPortClass === cls && last.portMax === min - 1) last.portMax = max;
        else ranges.push({ portMin: min, portMax: max, srcPortClass: cls });
      }
    }
    if (ranges.length > 0) srcPortClasses.push({ protocol: proto, ranges });
    perProto.set(proto, { classSlab });
  }
  // The cells go straight into columns (no object per cell), and the id hashes the same text
  // JSON.stringify([def.key, count, protocols, srcPortClasses, cells-as-KeyedCell-objects]) would
  // give, written piece by piece (rule keys and log lists escaped once per distinct value).
  const protoSlabs = protos.map((proto) => perProto.get(proto)!.classSlab);
  let n = 0;
  for (let lc = 0; lc < order.length; lc++) {
    for (const classSlab of protoSlabs) for (let spc = 0; spc < classSlab.length; spc++) n += classSlab[spc]![lc]!.segs.length;
  }
  const cells = emptyColumns(n);
  const hash = createHash('sha1');
  let text = JSON.stringify([def.key, order.length, def.protocols, srcPortClasses]);
  text = text.slice(0, -1) + ',[';
  const ruleJson = new Map<string, string>();
  const logsJson = new Map<string[], string>();
  let i = 0;
  for (let lc = 0; lc < order.length; lc++) {
    for (let p = 0; p < protos.length; p++) {
      const proto = protos[p]!;
      const classSlab = protoSlabs[p]!;
      for (let spc = 0; spc < classSlab.length; spc++) {
        for (const seg of classSlab[spc]![lc]!.segs) {
          cells.localClass[i] = lc;
          cells.protocol[i] = proto;
          cells.srcPortClass[i] = spc;
          cells.portMin[i] = seg.min;
          cells.portMax[i] = seg.max;
          cells.allow[i] = seg.allow ? 1 : 0;
          cells.rule[i] = seg.rule;
          cells.logs[i] = seg.logs;
          let rj = ruleJson.get(seg.rule);
          if (rj === undefined) ruleJson.set(seg.rule, (rj = JSON.stringify(seg.rule)));
          let lj = logsJson.get(seg.logs);
          if (lj === undefined) logsJson.set(seg.logs, (lj = JSON.stringify(seg.logs)));
          text +=
            (i === 0 ? '{"localClass":' : ',{"localClass":') +
            lc +
            ',"protocol":' +
            proto +
            ',"srcPortClass":' +
            spc +
            ',"portMin":' +
            seg.min +
            ',"portMax":' +
            seg.max +
            (seg.allow ? ',"action":"allow","rule":' : ',"action":"deny","rule":') +
            rj +
            ',"logs":' +
            lj +
            '}';
          i++;
          if (text.length > 1 << 15) {
            hash.update(text);
            text = '';
          }
        }
      }
    }
  }
  hash.update(text + ']]');
  const id = hash.digest('hex').slice(0, 16);
  return { id, localClassCount: order.length, localOf, protocols: def.protocols, srcPortClasses, cells };
}
