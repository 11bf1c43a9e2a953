/**
 * Table programs: a table's verdict function as a fold of its parts' functions.
 *
 * A table (one endpoint definition and direction) is the sequence
 *   tier₁: policy parts…, tier end; tier₂: …; profile parts (each followed by a profile end); final.
 * Each part's function (table.ts computePartRows) depends only on the part's own rules and the
 * signature restricted to the part's atoms, so it is memoised per part — and parts are shared by
 * every table that contains the same policy with the same local resolution.
 *
 * Folding state per (protocol, source slab, destination segment): undecided or decided (verdict,
 * rule), the Log rules hit so far, and whether a Pass is skipping the rest of the tier/profile.
 * Parts that do nothing for a signature and protocol (the common case: their rules' selectors do
 * not match it) cost one memo lookup; states are shared, not copied, when nothing changes.
 *
 * Contract: `foldRows(prog, sig)` equals evaluating the table's rules in order for every packet
 * of the signature (the differential test checks it against the reference evaluator).
 */
import {
  bucketOf,
  computePartRows,
  NO_LOGS,
  NOOP_SLABS,
  rowsKeyOfTexts,
  sameSlabs,
  slabsText,
  textHash,
  type PartRows,
  type PartSlab,
  type Rows,
  type Seg,
  type Signature,
  type Slab,
  type TableDef,
} from './table';
import { PROTO_OTHER, type Direction } from './types';

export interface PartRec {
  key: string;
  def: TableDef;
  /** Restricted signature key → the part's function (bounded by TableContexts.boundPartMemos). */
  memo: Map<string, PartRows>;
  refs: number;
}

export type Op =
  | { kind: 'part'; part: PartRec }
  /** End of a tier: undecided and not passed → deny (if `deny`); clears Pass. */
  | { kind: 'tierEnd'; deny: boolean; rule: string }
  /** End of a profile: clears Pass. */
  | { kind: 'profileEnd' }
  /** Undecided → deny. */
  | { kind: 'final'; rule: string };

interface St {
  d: 0 | 1 | 2;
  pass: boolean;
  rule: string;
  logs: readonly string[];
}
interface SSeg {
  min: number;
  max: number;
  s: St;
}
interface SSlab {
  min: number;
  max: number;
  segs: SSeg[];
}
/** Per protocol of the table (TableProgram.protoList order), its slabs. Never mutated once built. */
type FoldState = SSlab[][];

export interface TableProgram {
  key: string;
  direction: Direction;
  ops: Op[];
  protocols: number[];
  atoms: Set<string>;
  /** `[...protocols, PROTO_OTHER]`: the fold state's protocol order. */
  protoList: number[];
  /** Fold state before the first op: everything undecided. */
  initial: FoldState;
  /**
   * Hash-consing of the per-protocol slabs of this table's rows (memory: the table's rows differ
   * in a few protocols each, so most slab lists repeat): 32-bit hash of slabsText → the first
   * slab list with it (shared only if equal). Cleared when the table's rows cache is pruned.
   */
  slabIntern: Map<number, Slab[]>;
  /** The ops each signature must visit (planOf), made on the first fold. */
  plan?: FoldPlan;
  /**
   * Set while a table's class → rows map is built in full (TableContexts.rebuildCtx, then
   * cleared): the fold steps met so far, shared by the build's folds (see FoldTrie).
   */
  trie?: FoldTrie;
}

/**
 * The folds of one table build as a trie: a node is a fold state reached from a start state
 * (the empty signature's prefix where a fold starts) by a sequence of steps — a part's function
 * that does something (a PartRows object: hash-consed per part, so equal objects are equal
 * functions of the same part, applied the same way) or a tier / profile end / final op. A
 * state depends only on its start and steps, so a fold that takes a step already taken from the
 * same node reuses its result, and a fold ending at a node already finished reuses its rows
 * (the final slabs, their texts and the rows key are not made again). At 100,000 endpoints a
 * table's thousands of signatures share most of their steps: they differ in a few parts.
 * Only for the duration of one build (memory: the nodes hold intermediate states).
 */
export class FoldTrie {
  readonly roots = new Map<FoldState, FoldNode>();
}

interface FoldNode {
  state: FoldState;
  /** settled(state), once asked. */
  settled: boolean | undefined;
  /** Step (PartRows or Op) → the node it leads to (this node when the step changes nothing). */
  next: Map<object, FoldNode> | undefined;
  rows: Rows | undefined;
}

function foldNode(state: FoldState): FoldNode {
  return { state, settled: undefined, next: undefined, rows: undefined };
}

const UNDECIDED: St = { d: 0, pass: false, rule: '', logs: [] };

export function makeProgram(key: string, direction: Direction, ops: Op[]): TableProgram {
  const protocols = new Set<number>();
  const atoms = new Set<string>();
  for (const op of ops) {
    if (op.kind !== 'part') continue;
    for (const p of op.part.def.protocols) protocols.add(p);
    for (const a of op.part.def.atoms) atoms.add(a);
  }
  const protos = [...protocols].sort((a, b) => a - b);
  const protoList = [...protos, PROTO_OTHER];
  const state: FoldState = protoList.map(() => [{ min: 0, max: 65535, segs: [{ min: 0, max: 65535, s: UNDECIDED }] }]);
  // plan and trie are in the literal (undefined) so that setting and clearing them keeps the
  // object's shape (a delete would turn it into a dictionary).
  return { key, direction, ops, protocols: protos, protoList, atoms, initial: state, slabIntern: new Map(), plan: undefined, trie: undefined };
}

function sameSt(a: St, b: St): boolean {
  if (a === b) return true;
  if (a.d !== b.d || a.pass !== b.pass || a.rule !== b.rule || a.logs.length !== b.logs.length) return false;
  for (let i = 0; i < a.logs.length; i++) if (a.logs[i] !== b.logs[i]) return false;
  return true;
}

function sameSegs(a: SSeg[], b: SSeg[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.min !== y.min || x.max !== y.max || !sameSt(x.s, y.s)) return false;
  }
  return true;
}

function pushSeg(out: SSeg[], min: number, max: number, s: St): void {
  const last = out[out.length - 1];
  if (last !== undefined && sameSt(last.s, s)) last.max = max;
  else out.push({ min, max, s });
}

function pushSlab(out: SSlab[], min: number, max: number, segs: SSeg[]): void {
  const last = out[out.length - 1];
  if (last !== undefined && sameSegs(last.segs, segs)) last.max = max;
  else out.push({ min, max, segs });
}

function combine(s: St, o: number, rule: string, logs: readonly string[]): St {
  if (s.d !== 0 || s.pass) return s;
  const l = logs.length === 0 ? s.logs : s.logs.concat(logs);
  switch (o) {
    case 1:
      return { d: 1, pass: false, rule, logs: l };
    case 2:
      return { d: 2, pass: false, rule, logs: l };
    case 3:
      return { d: 0, pass: true, rule: '', logs: l };
    default:
      return l === s.logs ? s : { d: 0, pass: false, rule: '', logs: l };
  }
}

function overlaySegs(a: SSeg[], b: PartSlab['segs']): SSeg[] {
  const out: SSeg[] = [];
  let i = 0;
  let j = 0;
  let lo = 0;
  while (lo <= 65535) {
    const x = a[i]!;
    const y = b[j]!;
    const hi = Math.min(x.max, y.max);
    pushSeg(out, lo, hi, combine(x.s, y.o, y.rule, y.logs));
    lo = hi + 1;
    if (x.max === hi) i++;
    if (y.max === hi) j++;
  }
  return out;
}

/**
 * Whether overlaying `b` on `a` changes any state: only an undecided, not passed state under an
 * allow/deny/pass or a Log changes (combine). Most overlays at scale change nothing (the ports a
 * part decides are already decided), and then the fold keeps `a` without allocating.
 */
function overlayChanges(a: SSlab[], b: PartSlab[]): boolean {
  let i = 0;
  let j = 0;
  let lo = 0;
  while (lo <= 65535) {
    const x = a[i]!;
    const y = b[j]!;
    const hi = Math.min(x.max, y.max);
    if (segsChange(x.segs, y.segs)) return true;
    lo = hi + 1;
    if (x.max === hi) i++;
    if (y.max === hi) j++;
  }
  return false;
}

function segsChange(a: SSeg[], b: PartSlab['segs']): boolean {
  let i = 0;
  let j = 0;
  let lo = 0;
  while (lo <= 65535) {
    const x = a[i]!;
    const y = b[j]!;
    const s = x.s;
    if (s.d === 0 && !s.pass && (y.o !== 0 || y.logs.length !== 0)) return true;
    const hi = Math.min(x.max, y.max);
    lo = hi + 1;
    if (x.max === hi) i++;
    if (y.max === hi) j++;
  }
  return false;
}

/** Every state decided: no later op changes anything (parts, tier/profile ends and final keep decided states). */
function settled(state: FoldState): boolean {
  for (const slabs of state) {
    for (const sl of slabs) for (const g of sl.segs) if (g.s.d === 0) return false;
  }
  return true;
}

function overlaySlabs(a: SSlab[], b: PartSlab[]): SSlab[] {
  if (!overlayChanges(a, b)) return a;
  const out: SSlab[] = [];
  let i = 0;
  let j = 0;
  let lo = 0;
  while (lo <= 65535) {
    const x = a[i]!;
    const y = b[j]!;
    const hi = Math.min(x.max, y.max);
    pushSlab(out, lo, hi, overlaySegs(x.segs, y.segs));
    lo = hi + 1;
    if (x.max === hi) i++;
    if (y.max === hi) j++;
  }
  return out;
}

/** Applies f to every state; returns the same object when nothing changes. */
function mapStates(state: FoldState, f: (s: St) => St): FoldState {
  let out: FoldState | undefined;
  for (let k = 0; k < state.length; k++) {
    const slabs = state[k]!;
    let changed = false;
    for (const sl of slabs) {
      for (const g of sl.segs) {
        if (f(g.s) !== g.s) {
          changed = true;
          break;
        }
      }
      if (changed) break;
    }
    if (!changed) continue;
    const ns: SSlab[] = [];
    for (const sl of slabs) {
      const segs: SSeg[] = [];
      for (const g of sl.segs) pushSeg(segs, g.min, g.max, f(g.s));
      pushSlab(ns, sl.min, sl.max, segs);
    }
    out ??= state.slice();
    out[k] = ns;
  }
  return out ?? state;
}

/** `buckets`: for a part op, the part's bucket of each of the table's protocols (protoList order). */
function applyOp(prog: TableProgram, state: FoldState, op: Op, fn: PartRows | undefined, buckets?: Int32Array): FoldState {
  switch (op.kind) {
    case 'part': {
      let out: FoldState | undefined;
      const fs = fn!.slabs;
      for (let k = 0; k < state.length; k++) {
        const part = fs[buckets![k]!]!;
        if (part === NOOP_SLABS) continue;
        const slabs = state[k]!;
        const next = overlaySlabs(slabs, part);
        if (next === slabs) continue;
        out ??= state.slice();
        out[k] = next;
      }
      return out ?? state;
    }
    case 'tierEnd': {
      const { deny, rule } = op;
      return mapStates(state, (s) => {
        if (s.d !== 0) return s;
        if (s.pass) return { d: 0, pass: false, rule: '', logs: s.logs };
        return deny ? { d: 2, pass: false, rule, logs: s.logs } : s;
      });
    }
    case 'profileEnd':
      return mapStates(state, (s) => (s.pass ? { d: 0, pass: false, rule: '', logs: s.logs } : s));
    case 'final': {
      const { rule } = op;
      void prog;
      return mapStates(state, (s) => (s.d === 0 ? { d: 2, pass: false, rule, logs: s.logs } : s));
    }
  }
}

/** Part functions that do nothing in any protocol bucket (memoised per function object). */
export function isNoop(fn: PartRows): boolean {
  // A field of the function (a WeakMap lookup per part per fold was ~5 % of a first build's folds).
  return (fn.noop ??= fn.slabs.every((b) => b === NOOP_SLABS));
}

const EMPTY_SIG: Signature = new Map();

/**
 * Which ops a fold must visit (speed: at 100,000 endpoints a table has ~100 ops and a class's
 * signature reaches a handful). A part whose atoms the signature has none of is evaluated on
 * the empty restriction (partSigKey ''), the same function for every such signature: when that
 * function does nothing, skipping the part is exact. Every other op is visited.
 */
interface FoldPlan {
  always: number[];
  /** The first op index of any part with an atom (from there the fold depends on it). */
  firstOp: Map<string, number>;
  /** prefix[i]: the empty signature's fold state before op i (prefix[ops.length]: after all). */
  prefix: FoldState[];
  /** Per op: a part's bucket of each table protocol (protoList order); undefined for other ops. */
  buckets: (Int32Array | undefined)[];
  /** Per op: a part's function on the empty restriction (what it is for a signature with none of its atoms). */
  emptyFn: (PartRows | undefined)[];
  /** Every part op index with an atom (always visited or not), by atom. */
  atomOps: Map<string, number[]>;
  /** visitOf()'s array (foldRowsTrie). */
  visit?: Uint8Array;
}

function planOf(prog: TableProgram): FoldPlan {
  const always: number[] = [];
  const firstOp = new Map<string, number>();
  prog.ops.forEach((op, i) => {
    if (op.kind === 'part') for (const a of op.part.def.atomList) if (!firstOp.has(a)) firstOp.set(a, i);
    if (op.kind !== 'part' || !isNoop(partRows(op.part, '', EMPTY_SIG))) always.push(i);
  });
  const buckets: (Int32Array | undefined)[] = [];
  const emptyFn: (PartRows | undefined)[] = [];
  const atomOps = new Map<string, number[]>();
  prog.ops.forEach((op, i) => {
    if (op.kind !== 'part') {
      buckets.push(undefined);
      emptyFn.push(undefined);
      return;
    }
    buckets.push(Int32Array.from(prog.protoList, (p) => bucketOf(op.part.def, p)));
    emptyFn.push(partRows(op.part, '', EMPTY_SIG));
    for (const a of new Set(op.part.def.atomList)) {
      let l = atomOps.get(a);
      if (l === undefined) atomOps.set(a, (l = []));
      l.push(i);
    }
  });
  const prefix: FoldState[] = [prog.initial];
  let state = prog.initial;
  const isAlways = new Set(always);
  prog.ops.forEach((op, i) => {
    if (isAlways.has(i)) state = applyOp(prog, state, op, emptyFn[i], buckets[i]);
    prefix.push(state);
  });
  return { always, firstOp, prefix, buckets, emptyFn, atomOps, visit: undefined };
}

/** Key of a signature restricted to a part's atoms. */
export function partSigKey(part: PartRec, sig: Signature, member: Map<string, string>): string {
  let key = '';
  for (const a of part.def.atomList) if (sig.has(a)) key += (key === '' ? '' : '\n') + member.get(a)!;
  return key;
}

export function partRows(part: PartRec, key: string, sig: Signature): PartRows {
  let r = part.memo.get(key);
  if (r === undefined) {
    r = computePartRows(part.def, sig);
    part.memo.set(key, r);
  }
  return r;
}

/**
 * A protocol's final slabs and their text, per fold state object: the states are immutable and
 * shared between folds (a protocol no part of the signature touches keeps the prefix's object),
 * so most folds convert only the protocols they changed.
 */
interface Final {
  p: number;
  out: Slab[];
  text: string;
  h: number;
}
const finals = new WeakMap<SSlab[], Final>();
function finalSlabs(p: number, slabs: SSlab[]): Final {
  const hit = finals.get(slabs);
  if (hit !== undefined && hit.p === p) return hit;
  const out = slabs.map((sl) => ({
    min: sl.min,
    max: sl.max,
    segs: sl.segs.map((g): Seg => ({ min: g.min, max: g.max, allow: g.s.d === 1, rule: g.s.rule, logs: g.s.logs.length === 0 ? NO_LOGS : [...g.s.logs] })),
  }));
  const text = slabsText(p, out);
  const f: Final = { p, out, text, h: textHash(text) };
  finals.set(slabs, f);
  return f;
}

/**
 * The table's final rows for a signature (member: atom id → its signature member string).
 * A straight fold: each part's function comes from the part's memo (shared by all tables using
 * the part); parts that do nothing for this signature and protocol cost one lookup.
 */
export function foldRows(prog: TableProgram, sig: Signature, member: Map<string, string>): Rows {
  const { ops } = prog;
  const plan = (prog.plan ??= planOf(prog));
  if (prog.trie !== undefined) return foldRowsTrie(prog, plan, prog.trie, sig, member);
  // The ops this signature can reach: those always applied, and the parts with one of its atoms.
  // Up to the first part with one of its atoms, the fold is the empty signature's: start there.
  // visit: 1 = an op applied as for the empty signature, 2 = a part with one of its atoms.
  const visit = new Uint8Array(ops.length);
  for (const i of plan.always) visit[i] = 1;
  let first = ops.length;
  for (const a of sig.keys()) {
    const f = plan.firstOp.get(a);
    if (f === undefined) continue;
    if (f < first) first = f;
    for (const i of plan.atomOps.get(a)!) visit[i] = 2;
  }
  let state = plan.prefix[first]!;
  for (let i = first; i < ops.length; i++) {
    if (visit[i] === 0) continue;
    const op = ops[i]!;
    const before = state;
    if (op.kind === 'part') {
      const fn = visit[i] === 2 ? partRows(op.part, partSigKey(op.part, sig, member), sig) : plan.emptyFn[i]!;
      // A part that does nothing for this signature leaves the state as it is.
      if (!isNoop(fn)) state = applyOp(prog, state, op, fn, plan.buckets[i]);
    } else {
      state = applyOp(prog, state, op, undefined);
    }
    // Once every packet of the signature has a verdict, the rest of the fold is the identity.
    if (state !== before && settled(state)) break;
  }
  return rowsOfState(prog, state);
}

/** The ops a signature visits (foldRows): 1 = as for the empty signature, 2 = a part with one of its atoms; and the first. */
function visitOf(plan: FoldPlan, n: number, sig: Signature): { visit: Uint8Array; first: number } {
  // One array per table, reused (folds do not nest).
  const visit = (plan.visit ??= new Uint8Array(n));
  visit.fill(0);
  for (const i of plan.always) visit[i] = 1;
  let first = n;
  for (const a of sig.keys()) {
    const f = plan.firstOp.get(a);
    if (f === undefined) continue;
    if (f < first) first = f;
    for (const i of plan.atomOps.get(a)!) visit[i] = 2;
  }
  return { visit, first };
}

/** foldRows through the build's trie (same result: the same steps from the same start). */
function foldRowsTrie(prog: TableProgram, plan: FoldPlan, trie: FoldTrie, sig: Signature, member: Map<string, string>): Rows {
  const { ops } = prog;
  const { visit, first } = visitOf(plan, ops.length, sig);
  const start = plan.prefix[first]!;
  let node: FoldNode | undefined = trie.roots.get(start);
  if (node === undefined) trie.roots.set(start, (node = foldNode(start)));
  for (let i = first; i < ops.length; i++) {
    if (visit[i] === 0) continue;
    const op = ops[i]!;
    let step: object = op;
    let fn: PartRows | undefined;
    if (op.kind === 'part') {
      fn = visit[i] === 2 ? partRows(op.part, partSigKey(op.part, sig, member), sig) : plan.emptyFn[i]!;
      // A part that does nothing for this signature leaves the state as it is.
      if (isNoop(fn)) continue;
      step = fn;
    }
    let next: FoldNode | undefined = node.next?.get(step);
    if (next === undefined) {
      const state = applyOp(prog, node.state, op, fn, plan.buckets[i]);
      next = state === node.state ? node : foldNode(state);
      (node.next ??= new Map()).set(step, next);
    }
    if (next === node) continue;
    node = next;
    if ((node.settled ??= settled(node.state))) break;
  }
  return (node.rows ??= rowsOfState(prog, node.state));
}

/** A fold's final state as the table's rows (slab lists hash-consed in prog.slabIntern). */
function rowsOfState(prog: TableProgram, state: FoldState): Rows {
  const byProto = new Map<number, Slab[]>();
  const texts: string[] = [];
  const protoList = prog.protoList;
  for (let k = 0; k < state.length; k++) {
    const p = protoList[k]!;
    const { out, text, h } = finalSlabs(p, state[k]!);
    texts.push(text);
    const same = prog.slabIntern.get(h);
    if (same === undefined) prog.slabIntern.set(h, out);
    byProto.set(p, same !== undefined && (same === out || sameSlabs(same, out)) ? same : out);
  }
  return { key: rowsKeyOfTexts(texts), byProto };
}
