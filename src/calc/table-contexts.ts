/**
 * TableContexts — calc graph node: one context per distinct table definition, holding the
 * table's class → rows map and its assembled form.
 *
 *   EndpointPolicies ──bind(endpoint|direction, definition) / unref──> contexts (refs: endpoint-directions)
 *        create: parts (one policy's function, shared) ─ Atoms.acquire(remote atoms) ─ RuleIds.ref(rules)
 *        destroy (sweep(): no refs left): the matching releases
 *   ClassIndex ──added / removed classes, templates──> propagate():
 *        a class in a table's atoms → its rows (memoised per restricted signature; a new class
 *        whose template is in the table and differs only in atoms the table ignores takes the
 *        template's rows) → a projection add/remove, or a reassembly when a group appears/empties;
 *        new tables are built (from their predecessor's map when only a few parts changed)
 *   ──> Delta: assembled tables, projection changes of this flush (Ctx.proj)
 *
 * Hot paths (per class × table): ctxClassAdded/Removed, rowsOfKey, rebuild's loop over
 * ClassIndex.accumulate. Keep them monomorphic: plain methods on this class and on ClassIndex,
 * no callbacks or interfaces with several implementations on them (see README, Benchmark).
 *
 * Contract: bind/unref arrive in any order within a flush step; a context lives while some
 * endpoint-direction refers to it (sweep() destroys the others, releasing exactly the atoms,
 * rules and parts create() acquired). After propagate(), every live context's map holds exactly
 * the classes with one of its atoms, each with the rows a fresh fold gives (verifyTables()), and
 * Ctx.proj holds the projection changes against the table as last emitted.
 */
import type { Atoms, AtomNeeds } from './atoms';
import { ClassRowsMap, ProjLog, SigMemo } from './class-map';
import { memberDiff, sigNumber, signatureOfMembers, memberAtom, type ClassIndex, type ClassRec } from './classes';
import { stageEndKey, tierEndDenies, type Definition, type PlanPart } from './endpoint-policies';
import { FoldTrie, foldRows, isNoop, makeProgram, partRows, partSigKey, type Op, type PartRec, type TableProgram } from './fold';
import type { RuleIds } from './rule-ids';
import { endOfTierKey, finalKey, stepMatch } from './rules';
import { assembleTable, makeTableDef, remoteMatches, type AssembledTable, type Rows, type Signature, type Step } from './table';
import type { Direction, RuleInfo } from './types';

export interface Ctx {
  def: TableProgram;
  /** preDNAT / doNotTrack tables of host endpoints: the rule key of "no policy decided, next stage". */
  passThrough?: string;
  refs: Set<string>;
  /** Rules this context's steps reference (rule key → info). */
  rules: Map<string, Omit<RuleInfo, 'id'>>;
  /** Atom acquisitions to release when the context dies. */
  acquired: AtomNeeds;
  /** Restricted signature key → rows key (the rows themselves live in `rowsCache`). */
  memo: SigMemo;
  /** Rows by rows key, for the groups present (and recently seen). */
  rowsCache: Map<string, Rows>;
  /** Rows of the empty signature (lazy: `zeroOf`; a table built from its predecessor shares the predecessor's). */
  zero?: Rows;
  /**
   * Global class → its rows key, for every class with a non-empty restricted signature. The
   * projection is derived from it: class → assembled.localOf(rows key), 0 (the default class)
   * left out. Between flushes every rows key here is in `assembled.localOf`; within a flush it
   * may not be (then `needReassemble`).
   */
  classRows: ClassRowsMap;
  /**
   * This flush only: the rows key each class changed in it had at the start of the flush
   * (undefined: absent), so the projection last emitted can be rebuilt for the diff: a log, the
   * first entry of a class being its state at the start (emittedProjection). Classes added in the
   * flush are not journalled (they were in no table before it).
   */
  before?: { ids: number[]; rks: (string | undefined)[] };
  assembled?: AssembledTable;
  /** The set of groups changed: renumber local classes and re-emit (no row recomputation). */
  needReassemble: boolean;
  /** Never assembled yet. */
  fresh: boolean;
  /**
   * The table this one replaces for some endpoint, when both have the same protocols and
   * non-part ops and differ only in the parts of `changed`: rows of signatures for which those
   * parts behave the same are taken from it instead of folding again (cleared after the first
   * build).
   */
  pred?: Pred;
  /** Dense index of the context (its bit in TableContexts.atomCtxBits). */
  slot: number;
  /**
   * This flush only: projection changes against the table as last emitted (class → local class,
   * a log resolved by Delta), when the table keeps its id (TableContexts.projTouched lists the
   * contexts that have them).
   */
  proj?: ProjLog;
  /** Whether the context is in TableContexts.projTouched (this flush). */
  projListed: boolean;
}

/**
 * The atoms of the steps in which two versions of a part differ, when every such step (old and
 * new) is a rule that matches only addresses holding one of its atoms (a positive selector or
 * nets on the remote side): then on a signature with none of those atoms both versions have the
 * same active rules, so the same function, and only classes with one of these atoms can differ.
 * Undefined when the step lists differ in length or a differing step matches such addresses
 * (then the caller compares the whole parts).
 */
function changedStepAtoms(next: Step[], prev: Step[], d: Direction): Set<string> | undefined {
  if (next.length !== prev.length) return undefined;
  const empty: Signature = new Map();
  const differing: Step[] = [];
  for (let k = 0; k < next.length; k++) {
    const a = next[k]!;
    const b = prev[k]!;
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    for (const s of [a, b]) {
      if (s.kind !== 'rule' || remoteMatches(s.m, empty)) return undefined;
      differing.push(s);
    }
  }
  return makeTableDef(d, differing).atoms;
}

/**
 * A changed part of a table built from its predecessor: the new table's part and the old one's at
 * the same place (`np` and `op`, an edit), or a part only the new table has (`op` undefined) or
 * only the old one (`np` undefined).
 */
interface PartChange {
  np: PartRec | undefined;
  op: PartRec | undefined;
}

interface Pred {
  ctx: Ctx;
  changed: PartChange[];
}

/** One table's build from its predecessor (classRowsFromPredecessor): what its per-class steps share. */
interface PredWalk {
  ctx: Ctx;
  changed: PartChange[];
  /** Atoms of the changed parts, old and new. */
  partAtoms: Set<string>;
  /** A class's restriction to partAtoms (ClassIndex.restrictor). */
  partKey: (c: ClassRec) => number;
  /** The new table's atoms. */
  tableAtoms: ReadonlySet<string>;
  /** partKey → whether the changed parts agree on it. */
  agree: Map<number, boolean>;
  /** The new table's class → rows map. */
  map: ClassRowsMap;
}

/** Whether two parts at the same place compute the same function (equal steps). */
function samePart(x: PartRec, y: PartRec): boolean {
  // A part's key names its policy version and direction; steps equal ⇒ the same function.
  return x === y || x.key === y.key || JSON.stringify(x.def.steps) === JSON.stringify(y.def.steps);
}

/**
 * Whether `next` can reuse rows of `prev`: same protocols and the same non-part ops in the same
 * order (tier ends, profile ends, final). Between two non-part ops, the parts are compared
 * position by position when both tables have as many there (an edit of a policy), else as
 * sequences: the parts both have (by key) must keep their order, the others are insertions or
 * removals (a relabelled endpoint's policies coming and going). Returns the changed parts, or
 * undefined when the shapes differ or over `maxChanged` parts changed.
 */
function alignPredecessor(prev: Ctx, next: Ctx, maxChanged = 64): Pred | undefined {
  const a = prev.def;
  const b = next.def;
  if (a.protocols.join(',') !== b.protocols.join(',')) return undefined;
  const changed: PartChange[] = [];
  let i = 0;
  let j = 0;
  for (;;) {
    // One segment: the parts up to the next non-part op of each table.
    const xs: PartRec[] = [];
    const ys: PartRec[] = [];
    while (i < a.ops.length && a.ops[i]!.kind === 'part') xs.push((a.ops[i++] as Extract<Op, { kind: 'part' }>).part);
    while (j < b.ops.length && b.ops[j]!.kind === 'part') ys.push((b.ops[j++] as Extract<Op, { kind: 'part' }>).part);
    if (xs.length === ys.length) {
      for (let k = 0; k < xs.length; k++) if (!samePart(xs[k]!, ys[k]!)) changed.push({ np: ys[k], op: xs[k] });
    } else {
      const inX = new Set(xs.map((p) => p.key));
      const inY = new Set(ys.map((p) => p.key));
      const commonX = xs.filter((p) => inY.has(p.key));
      const commonY = ys.filter((p) => inX.has(p.key));
      for (let k = 0; k < commonX.length; k++) if (commonX[k] !== commonY[k]) return undefined;
      for (const p of xs) if (!inY.has(p.key)) changed.push({ np: undefined, op: p });
      for (const p of ys) if (!inX.has(p.key)) changed.push({ np: p, op: undefined });
    }
    if (changed.length > maxChanged) return undefined;
    if (i >= a.ops.length || j >= b.ops.length) {
      if (i < a.ops.length || j < b.ops.length) return undefined;
      break;
    }
    if (JSON.stringify(a.ops[i]) !== JSON.stringify(b.ops[j])) return undefined;
    i++;
    j++;
  }
  return { ctx: prev, changed };
}

/**
 * Whether a change acts the same on a signature (`sig`, `member`: any superset of the parts'
 * atoms): both parts give the same function, or the one part there does nothing (a fold skips a
 * part that does nothing, so inserting or removing it leaves every fold as it was).
 */
function changeAgrees(ch: PartChange, sig: Signature, member: Map<string, string>): boolean {
  const n = ch.np !== undefined ? partRows(ch.np, partSigKey(ch.np, sig, member), sig) : undefined;
  const o = ch.op !== undefined ? partRows(ch.op, partSigKey(ch.op, sig, member), sig) : undefined;
  if (n !== undefined && o !== undefined) return n.key === o.key;
  return isNoop((n ?? o)!);
}

export class TableContexts {
  /** Definition key → context. */
  readonly ctxs = new Map<string, Ctx>();
  /**
   * Atom → the contexts whose atoms include it, as a bitset over context slots (`slotCtx`): the
   * live tables a class is in are the union of its atoms' bitsets, found in O(atoms × words)
   * instead of walking every atom's list of tables (a class has tens of atoms, each in up to
   * every table, so the lists overlap heavily).
   */
  private readonly atomCtxBits = new Map<string, Uint32Array>();
  /** Words per bitset (32 contexts each; doubled when the slots outgrow them). */
  private ctxWords = 8;
  private readonly slotCtx: (Ctx | undefined)[] = [];
  private readonly freeCtxSlots: number[] = [];
  private readonly parts = new Map<string, PartRec>();
  /** The classes added in this flush (propagate()): in no projection emitted before it. */
  private flushAdded: ReadonlySet<number> = new Set();
  /** The contexts that got projection changes in this flush (`Ctx.proj`). */
  private readonly projTouched: Ctx[] = [];
  /** rebuildCtx's memo value index → class map index (reused by every full build). */
  private mapIdxScratch = new Int32Array(1024);
  /** Cumulative: tables built from a predecessor's class → rows map. */
  tablesFromPredecessor = 0;
  /** Cumulative: of those, tables whose predecessor had parts the new one lacks or the reverse. */
  tablesFromPredecessorIndel = 0;
  /**
   * Cumulative, in tables built from a predecessor: classes with an atom only the old table had
   * that stay in the new one with the old rows (the changed parts agree on them), and classes
   * not in the old table that join the new one with the default rows (likewise).
   */
  predClassesKept = 0;
  predClassesDefault = 0;

  constructor(
    private readonly classIndex: ClassIndex,
    private readonly atoms: Atoms,
    private readonly ruleIds: RuleIds,
    private readonly partMemoSlack: number,
  ) {}

  has(defKey: string): boolean {
    return this.ctxs.has(defKey);
  }

  /**
   * Points an endpoint-direction (`ref`) at the context of `built`, created if new (then added to
   * `newCtxs`), and away from its `old` one. A new context replacing an assembled one of the same
   * shape remembers it as its predecessor.
   */
  bind(ref: string, d: Direction, built: Definition, old: string | undefined, newCtxs: Set<string>): void {
    let ctx = this.ctxs.get(built.key);
    if (ctx === undefined) {
      ctx = this.create(built.key, d, built);
      newCtxs.add(built.key);
    }
    ctx.refs.add(ref);
    if (ctx.fresh && ctx.pred === undefined && old !== undefined) {
      const prev = this.ctxs.get(old);
      if (prev !== undefined && prev.assembled !== undefined) ctx.pred = alignPredecessor(prev, ctx);
    }
    this.unref(old, ref);
  }

  unref(defKey: string | undefined, ref: string): void {
    if (defKey === undefined) return;
    this.ctxs.get(defKey)?.refs.delete(ref);
  }

  /** Start of a flush: the projection changes of the previous one are forgotten. */
  beginFlush(): void {
    // The logs are kept for the next flush (three typed arrays each, costly to allocate for the
    // ~100 live tables a split class touches), but not large ones.
    for (const c of this.projTouched) {
      c.projListed = false;
      if (c.proj!.capacity > 4096) c.proj = undefined;
      else c.proj!.clear();
    }
    this.projTouched.length = 0;
  }

  /** The context's projection changes of this flush (listed in projTouched on first use). */
  private projLog(ctx: Ctx): ProjLog {
    let log = ctx.proj;
    if (log === undefined) log = ctx.proj = new ProjLog();
    if (!ctx.projListed) {
      ctx.projListed = true;
      this.projTouched.push(ctx);
    }
    return log;
  }

  /** Destroys the contexts no endpoint-direction refers to any more. */
  sweep(): void {
    for (const [k, c] of [...this.ctxs]) if (c.refs.size === 0) this.destroy(k);
  }

  /** The assembled table id of a context, if it has one. */
  assembledId(defKey: string): string | undefined {
    return this.ctxs.get(defKey)?.assembled?.id;
  }

  /** Flush step 4: live tables hear about classes that appeared or disappeared; new tables are built. */
  propagate(newCtxs: Set<string>, addedClasses: Set<number>, removedClasses: Set<number>): void {
    this.flushAdded = addedClasses;
    // Live: assembled before this flush and not new in it (new ones are built below).
    const live: Ctx[] = [];
    for (const [k, c] of this.ctxs) if (!c.fresh && c.assembled !== undefined && !newCtxs.has(k)) live.push(c);
    const words = this.ctxWords;
    const orInto = (dst: Uint32Array, at: number, atom: string): void => {
      const bits = this.atomCtxBits.get(atom);
      if (bits !== undefined) for (let w = 0; w < words; w++) dst[at + w] = dst[at + w]! | bits[w]!;
    };
    // Per class, bitsets over context slots (a class is in a context's map iff the context has
    // one of its atoms): `where` the tables it is in or may join; for a class with a template
    // (the class its first address came from), `changed` the tables holding an atom whose
    // membership differs between the two, `gained` those holding an atom only the new class has.
    // No live table (a first build: every table is new and built below from all classes): no
    // class needs to know which tables it is in.
    const added = live.length === 0 ? [] : [...addedClasses].sort((a, b) => a - b);
    const removed = live.length === 0 ? [] : [...removedClasses].sort((a, b) => a - b);
    const addWhere = new Uint32Array(added.length * words);
    const addChanged = new Uint32Array(added.length * words);
    const addGained = new Uint32Array(added.length * words);
    /** The template's id, -1 when the class is computed in each table from scratch. */
    const template = new Float64Array(added.length).fill(-1);
    const changed: string[] = [];
    const gained: string[] = [];
    for (let k = 0; k < added.length; k++) {
      const id = added[k]!;
      const b = this.classIndex.classes.get(id)!;
      const at = k * words;
      const aId = this.classIndex.classTemplate.get(id);
      const aMembers = aId !== undefined && !addedClasses.has(aId) ? (this.classIndex.classes.get(aId)?.members ?? this.classIndex.removedMembers.get(aId)) : undefined;
      if (aId === undefined || aMembers === undefined) {
        for (const m of b.members) orInto(addWhere, at, memberAtom(m));
        continue;
      }
      template[k] = aId;
      memberDiff(aMembers, b.members, changed, gained);
      for (const m of aMembers) orInto(addWhere, at, memberAtom(m));
      for (const a of gained) {
        orInto(addWhere, at, a);
        orInto(addGained, at, a);
      }
      for (const a of changed) orInto(addChanged, at, a);
    }
    const remWhere = new Uint32Array(removed.length * words);
    for (let k = 0; k < removed.length; k++) {
      const members = this.classIndex.removedMembers.get(removed[k]!);
      if (members === undefined) remWhere.fill(0xffffffff, k * words, (k + 1) * words);
      else for (const m of members) orInto(remWhere, k * words, memberAtom(m));
    }
    // Table by table (its class map's arrays stay in cache), classes in id order. Additions
    // first: an address that moved from class A to a new class B keeps A's rows in every table
    // that uses none of the atoms A and B differ in (no re-evaluation, just a projection entry);
    // A's removal then never empties a group that B refills.
    for (const ctx of live) {
      const w = ctx.slot >>> 5;
      const bit = 1 << (ctx.slot & 31);
      for (let k = 0; k < added.length; k++) {
        const at = k * words + w;
        if ((addWhere[at]! & bit) === 0) continue;
        const aId = template[k]!;
        if (aId === -1) {
          this.ctxClassAdded(ctx, added[k]!);
          continue;
        }
        // No atom of this table tells them apart: the template's rows, if it is in the table
        // (atoms it gained are among the changed ones); else computed, if the template is in
        // the table or the class gained one of the table's atoms.
        if ((addChanged[at]! & bit) === 0) this.ctxClassAddedAs(ctx, added[k]!, aId);
        else if ((addGained[at]! & bit) !== 0 || ctx.classRows.has(aId)) this.ctxClassAdded(ctx, added[k]!);
      }
      for (let k = 0; k < removed.length; k++) {
        if ((remWhere[k * words + w]! & bit) === 0) continue;
        this.ctxClassRemoved(ctx, removed[k]!);
      }
    }
    this.classIndex.endFlush();
    for (const [k, ctx] of this.ctxs) {
      if (newCtxs.has(k) || ctx.fresh) this.rebuildCtx(ctx, addedClasses, removedClasses);
      else if (ctx.needReassemble) this.reassemble(ctx);
      delete ctx.before;
    }
    this.classIndex.dropAtomArrays();
  }

  /** The shared part for a resolved policy/profile (reference-counted by table contexts). */
  private acquirePart(d: Direction, pp: PlanPart): PartRec {
    let rec = this.parts.get(pp.key);
    if (rec === undefined) {
      const steps: Step[] = pp.rules.map(({ r, loc }) => ({ kind: 'rule', rule: r.ruleKey, action: r.action, passTo: -1, m: stepMatch(r, d, loc) }));
      const def = makeTableDef(d, steps);
      def.key = pp.key;
      rec = { key: pp.key, def, memo: new Map(), refs: 0 };
      this.parts.set(pp.key, rec);
    }
    rec.refs++;
    return rec;
  }

  private releasePart(rec: PartRec): void {
    if (--rec.refs === 0) this.parts.delete(rec.key);
  }

  /**
   * Bounds the part memos (each part's function per restricted signature; entries are small,
   * functions and their buckets being shared): entries of classes that died stay until the memos
   * hold more than twice as many entries as there are live classes and parts, then all are
   * cleared (a leak guard: at steady state they hold about half a live class per part). Not
   * tighter: a label change folds the new class's signature through every part of the tables it
   * touches, and a warm memo is what keeps that cheap.
   */
  boundPartMemos(): void {
    let entries = 0;
    for (const p of this.parts.values()) entries += p.memo.size;
    if (entries <= 2 * (this.classIndex.classes.size + this.parts.size) + this.partMemoSlack) return;
    for (const p of this.parts.values()) {
      p.memo.clear();
      delete p.def.interned;
    }
  }

  /** A context for a new definition: its parts, atoms and rules are acquired (destroy() releases them). */
  private create(key: string, d: Direction, built: Definition): Ctx {
    const ops: Op[] = [];
    for (const entry of built.plan) {
      if (entry.kind === 'tier') {
        for (const pp of entry.policies) ops.push({ kind: 'part', part: this.acquirePart(d, pp) });
        ops.push({ kind: 'tierEnd', deny: entry.tier.defaultAction === 'Deny' && tierEndDenies(built.mode), rule: endOfTierKey(d, entry.tier.name) });
      } else {
        ops.push({ kind: 'part', part: this.acquirePart(d, entry.part) });
        ops.push({ kind: 'profileEnd' });
      }
    }
    const passThrough = tierEndDenies(built.mode) ? undefined : stageEndKey(d, built.mode);
    ops.push({ kind: 'final', rule: passThrough ?? finalKey(d) });
    const def = makeProgram(key, d, ops);
    const extra = built.extras();
    this.atoms.acquire(extra.needs);
    const ctx: Ctx = {
      def,
      passThrough,
      refs: new Set(),
      rules: extra.rules,
      acquired: extra.needs,
      memo: new SigMemo(),
      rowsCache: new Map(),
      classRows: new ClassRowsMap(),
      needReassemble: false,
      fresh: true,
      slot: this.freeCtxSlots.pop() ?? this.slotCtx.length,
      proj: undefined,
      projListed: false,
    };
    this.ctxs.set(key, ctx);
    if (ctx.slot >= this.ctxWords * 32) this.growCtxBits();
    this.slotCtx[ctx.slot] = ctx;
    const w = ctx.slot >>> 5;
    const bit = 1 << (ctx.slot & 31);
    for (const a of def.atoms) {
      let bits = this.atomCtxBits.get(a);
      if (bits === undefined) this.atomCtxBits.set(a, (bits = new Uint32Array(this.ctxWords)));
      bits[w] = bits[w]! | bit;
    }
    for (const [rk, info] of ctx.rules) this.ruleIds.ref(rk, info);
    return ctx;
  }

  private destroy(key: string): void {
    const ctx = this.ctxs.get(key)!;
    this.ctxs.delete(key);
    const w = ctx.slot >>> 5;
    const bit = 1 << (ctx.slot & 31);
    for (const a of ctx.def.atoms) {
      const bits = this.atomCtxBits.get(a)!;
      bits[w] = bits[w]! & ~bit;
      if (bits.every((x) => x === 0)) this.atomCtxBits.delete(a);
    }
    this.slotCtx[ctx.slot] = undefined;
    this.freeCtxSlots.push(ctx.slot);
    this.atoms.release(ctx.acquired);
    for (const rk of ctx.rules.keys()) this.ruleIds.unref(rk);
    for (const op of ctx.def.ops) if (op.kind === 'part') this.releasePart(op.part);
  }

  /** Doubles the words of every atom's context bitset. */
  private growCtxBits(): void {
    this.ctxWords *= 2;
    for (const [a, bits] of this.atomCtxBits) {
      const wider = new Uint32Array(this.ctxWords);
      wider.set(bits);
      this.atomCtxBits.set(a, wider);
    }
  }

  /** The context's rows of the empty signature, folded on first use. */
  private zeroOf(ctx: Ctx): Rows {
    return (ctx.zero ??= foldRows(ctx.def, new Map(), new Map()));
  }

  /**
   * `key`: the restricted signature's number (sigNumber), -1 for the empty signature.
   * `tryPred`: false when the predecessor is known not to have the class's rows (its changed
   * parts disagree on it), to skip that check.
   */
  private rowsOfKey(ctx: Ctx, key: number, cls: ClassRec, tryPred = true): Rows {
    if (key === -1) return this.zeroOf(ctx);
    const rk = ctx.memo.get(key);
    let rows = rk !== undefined ? ctx.rowsCache.get(rk) : undefined;
    if (rows === undefined) {
      const { sig, member } = signatureOfMembers(cls.members, (atom) => ctx.def.atoms.has(atom));
      rows = tryPred && ctx.pred !== undefined ? this.rowsFromPredecessor(ctx, ctx.pred, cls) : undefined;
      rows ??= foldRows(ctx.def, sig, member);
      ctx.memo.set(key, rows.key);
      ctx.rowsCache.set(rows.key, rows);
    }
    return rows;
  }

  /**
   * The predecessor's rows for a class, if the changed parts act identically on it. Both tables
   * are pure functions of the class's current memberships restricted to their atoms; when the
   * parts that differ give equal functions on those memberships, the folds are equal. (Parts are
   * evaluated on all of the class's memberships: a part only reads its own atoms.)
   */
  private rowsFromPredecessor(ctx: Ctx, pred: NonNullable<Ctx['pred']>, cls: ClassRec): Rows | undefined {
    const rk = pred.ctx.memo.get(this.classIndex.restrictedKey(pred.ctx.def.atoms, cls));
    const rows = rk !== undefined ? pred.ctx.rowsCache.get(rk) : undefined;
    if (rows === undefined) return undefined;
    const { sig, member } = signatureOfMembers(cls.members);
    for (const ch of pred.changed) if (!changeAgrees(ch, sig, member)) return undefined;
    return rows;
  }

  /**
   * A new context's class → rows map from its predecessor's, when the changed parts (old and new)
   * act the same on the empty signature: then every class with none of those parts' atoms has
   * the same restriction to both tables' atoms and the same rows (rowsFromPredecessor's argument),
   * so the predecessor's map is copied wholesale. The changed atoms are those of the edited rules
   * when changedStepAtoms allows (the same argument, per rule), else all of the changed parts'.
   * Of the classes with a changed atom, only those on whose restriction to the changed parts'
   * atoms the old and new parts differ (one part evaluation per distinct restriction) are
   * computed, as are those that appeared in this flush (a predecessor that died in it did not
   * hear of them); classes that disappeared are dropped. A class with an atom only the old parts
   * had leaves the table when it has none of the new table's atoms (one walk, stopping at the
   * first hit), else keeps the old rows where the parts agree; a class not in the predecessor's
   * map on which they agree joins with the default rows. Cost: O(map capacity) copying plus Σ |classes of the changed atoms| hash
   * accumulations, instead of Σ |class ∩ table atoms| lookups.
   * Returns false (nothing changed) when the shortcut does not apply.
   */
  private classRowsFromPredecessor(ctx: Ctx, pred: NonNullable<Ctx['pred']>, added: ReadonlySet<number>, removed: ReadonlySet<number>): boolean {
    const old = pred.ctx;
    const empty: Signature = new Map();
    // changedAtoms: a class with none of them has the same rows in both tables; partAtoms: all
    // atoms of the changed parts (what their functions read, for `agrees`).
    const changedAtoms = new Set<string>();
    const partAtoms = new Set<string>();
    for (const ch of pred.changed) {
      const { np, op } = ch;
      for (const a of np?.def.atoms ?? []) partAtoms.add(a);
      for (const a of op?.def.atoms ?? []) partAtoms.add(a);
      const narrow = np !== undefined && op !== undefined ? changedStepAtoms(np.def.steps, op.def.steps, ctx.def.direction) : undefined;
      if (narrow !== undefined) {
        for (const a of narrow) changedAtoms.add(a);
        continue;
      }
      if (!changeAgrees(ch, empty, new Map())) return false;
      for (const a of np?.def.atoms ?? []) changedAtoms.add(a);
      for (const a of op?.def.atoms ?? []) changedAtoms.add(a);
    }
    // Equal on the empty signature and elsewhere the same program: the same default rows.
    const zero = this.zeroOf(old);
    if (ctx.zero !== undefined && ctx.zero.key !== zero.key) return false;
    // Not worth it when the changed parts' classes are a large share of the table's (a local
    // label change swapping policies): the full build walks each class once, this up to thrice.
    let changedCost = 0;
    for (const a of changedAtoms) changedCost += this.classIndex.classesByAtom.get(a)?.size ?? 0;
    let fullCost = 0;
    for (const a of ctx.def.atoms) fullCost += this.classIndex.classesByAtom.get(a)?.size ?? 0;
    if (changedCost * 2 > fullCost) return false;
    const map = old.classRows.clone();
    const rowsCache = new Map<string, Rows>();
    for (const rk of map.groups()) {
      const rows = rk === zero.key ? zero : old.rowsCache.get(rk);
      if (rows === undefined) return false;
      rowsCache.set(rk, rows);
    }
    for (const id of removed) map.delete(id);
    ctx.zero ??= zero;
    ctx.classRows = map;
    for (const [rk, rows] of rowsCache) ctx.rowsCache.set(rk, rows);
    // Each class with a changed part's atom: its restriction to those atoms, hashed atom by atom.
    const touched = this.classIndex.accumulate(changedAtoms);
    // Classes with an atom only the old parts had may leave the table (checked below).
    const leaving = new Uint8Array(this.classIndex.slotCount);
    for (const a of changedAtoms) {
      if (ctx.def.atoms.has(a)) continue;
      for (const c of this.classIndex.classesByAtom.get(a) ?? []) leaving[c.slot] = 1;
    }
    // Per distinct restriction to the changed parts' atoms (a part reads them all): do the old
    // and new parts give the same functions on it?
    const walk: PredWalk = {
      ctx,
      changed: pred.changed,
      partAtoms,
      partKey: this.classIndex.restrictor(partAtoms),
      tableAtoms: ctx.def.atoms,
      agree: new Map(),
      map,
    };
    // A class keeps the predecessor's rows if it was in its map, stays in this one and the
    // changed parts agree on it (the fold then meets equal functions in both tables: the other
    // parts read only atoms both tables have). One that was not in the predecessor's map (none of
    // its atoms: the predecessor's default rows) and on which they agree gets the default rows,
    // which both tables share (checked above). Classes new in this flush are recomputed below.
    const zeroKey = zero.key;
    for (const c of touched) {
      if (added.has(c.id)) continue;
      if (leaving[c.slot] === 1) {
        // It has an atom only the old parts had: it leaves unless it has one of the new table's.
        if (!this.classIndex.hasAnyAtom(ctx.def.atoms, c)) map.delete(c.id);
        else if (!map.has(c.id) || !this.predAgrees(walk, c)) this.predRedo(walk, c, false);
        else this.predClassesKept++;
      } else if (!map.has(c.id)) {
        // Only a changed part's atom can bring it in, so it has one of the new table's atoms.
        if (this.predAgrees(walk, c)) {
          map.set(c.id, zeroKey);
          this.predClassesDefault++;
        } else this.predRedo(walk, c, false);
      } else if (!this.predAgrees(walk, c)) this.predRedo(walk, c, false);
    }
    for (const id of added) {
      const c = this.classIndex.classes.get(id);
      if (c !== undefined) this.predRedo(walk, c, true);
    }
    return true;
  }

  /** Whether the changed parts of a table built from its predecessor agree on a class (memoised per restriction). */
  private predAgrees(w: PredWalk, c: ClassRec): boolean {
    const k = w.partKey(c);
    let v = w.agree.get(k);
    if (v === undefined) {
      const partAtoms = w.partAtoms;
      const { sig, member } = signatureOfMembers(c.members, (atom) => partAtoms.has(atom));
      v = true;
      for (const ch of w.changed) {
        if (!changeAgrees(ch, sig, member)) {
          v = false;
          break;
        }
      }
      w.agree.set(k, v);
    }
    return v;
  }

  /** A class's rows in a table built from its predecessor, computed (or its removal, if it has none of the table's atoms). */
  private predRedo(w: PredWalk, c: ClassRec, tryPred: boolean): void {
    const key = this.classIndex.restrictedKey(w.tableAtoms, c);
    if (key === -1) w.map.delete(c.id);
    else w.map.set(c.id, this.rowsOfKey(w.ctx, key, c, tryPred).key);
  }

  /**
   * (Re)computes a context's class → rows map and assembles it. `added` / `removed`: the classes
   * that appeared / disappeared in this flush (a predecessor's map may predate them).
   */
  private rebuildCtx(ctx: Ctx, added: ReadonlySet<number>, removed: ReadonlySet<number>): void {
    ctx.fresh = false;
    ctx.needReassemble = false;
    // What was last emitted for this table, to diff against if the rebuild keeps its id.
    const prevId = ctx.assembled?.id;
    const prev = prevId !== undefined ? this.emittedProjection(ctx, ctx.assembled!.localOf) : undefined;
    if (ctx.pred !== undefined && ctx.assembled === undefined && this.classRowsFromPredecessor(ctx, ctx.pred, added, removed)) {
      this.tablesFromPredecessor++;
      if (ctx.pred.changed.some((ch) => ch.np === undefined || ch.op === undefined)) this.tablesFromPredecessorIndel++;
      if (ctx.memo.size > 4 * ctx.classRows.size + 64) ctx.memo.clear();
      delete ctx.pred;
      this.assemble(ctx, prevId, prev);
      return;
    }
    ctx.classRows.clear();
    // Restricted members per relevant class, gathered atom by atom (cost: Σ |class ∩ atoms|).
    const nTouched = this.classIndex.accumulateScratch(ctx.def.atoms);
    const { acc1, acc2, slotScratch, slotId, slotRec } = this.classIndex;
    const relevant = { size: nTouched };
    // The build's folds share their steps (FoldTrie), for this build only.
    ctx.def.trie = new FoldTrie();
    // Memo value index → the class map's index of the same rows key, once a class of this build
    // had it: a class whose restricted signature is already memoised costs no string lookup.
    const { memo, classRows } = ctx;
    classRows.reserve(nTouched);
    const need = memo.valueCount + nTouched;
    if (this.mapIdxScratch.length < need) this.mapIdxScratch = new Int32Array(Math.max(need, 2 * this.mapIdxScratch.length));
    const mapIdx = this.mapIdxScratch;
    mapIdx.fill(-1, 0, need);
    try {
      for (let j = 0; j < nTouched; j++) {
        const slot = slotScratch[j]!;
        const id = slotId[slot]!;
        const key = sigNumber(acc1[slot]!, acc2[slot]!);
        const vi = memo.valueIndexOf(key);
        const k = vi === -1 ? -1 : mapIdx[vi]!;
        if (k !== -1) {
          classRows.setIndexed(id, k);
          continue;
        }
        const rows = this.rowsOfKey(ctx, key, slotRec[slot]!);
        classRows.set(id, rows.key);
        mapIdx[memo.valueIndexOf(key)] = classRows.indexOf(rows.key);
      }
    } finally {
      ctx.def.trie = undefined;
    }
    if (ctx.memo.size > 4 * relevant.size + 64) ctx.memo.clear();
    delete ctx.pred;
    this.assemble(ctx, prevId, prev);
  }

  /** Renumbers and re-emits a table after its set of groups changed (rows are cached). */
  private reassemble(ctx: Ctx): void {
    ctx.needReassemble = false;
    // The projection last emitted is rebuilt only if the table keeps its id (rare: a new set of
    // groups almost always changes the cells); otherwise the whole table is re-emitted.
    this.assemble(ctx, ctx.assembled?.id, undefined);
  }

  /**
   * The projection as last emitted: the classes' rows keys at the start of this flush (current
   * ones corrected by the journal), mapped through `localOf` of the table as last assembled.
   */
  private emittedProjection(ctx: Ctx, localOf: Map<string, number>): Map<number, number> {
    let before: Map<number, string | undefined> | undefined;
    if (ctx.before !== undefined) {
      // The journal's first entry of a class is its rows key at the start of the flush.
      before = new Map();
      const { ids, rks } = ctx.before;
      for (let i = 0; i < ids.length; i++) if (!before.has(ids[i]!)) before.set(ids[i]!, rks[i]);
    }
    const added = this.flushAdded;
    const prev = new Map<number, number>();
    ctx.classRows.forEach((id, rk) => {
      if (before?.has(id) || added.has(id)) return;
      const lc = localOf.get(rk)!;
      if (lc !== 0) prev.set(id, lc);
    });
    if (before !== undefined) {
      for (const [id, rk] of before) {
        if (rk === undefined) continue;
        const lc = localOf.get(rk)!;
        if (lc !== 0) prev.set(id, lc);
      }
    }
    return prev;
  }

  /** The current projection (class → local class, default class left out), by class id. */
  private projectionOf(ctx: Ctx): Map<number, number> {
    const localOf = ctx.assembled!.localOf;
    const out = new Map<number, number>();
    ctx.classRows.forEach((id, rk) => {
      const lc = localOf.get(rk)!;
      if (lc !== 0) out.set(id, lc);
    });
    return out;
  }

  /** The current projection as output pairs (VerdictTable.projection), sorted by class id. */
  projectionEntries(ctx: Ctx): Uint32Array {
    const localOf = ctx.assembled!.localOf;
    // The map keeps ids in increasing order (ClassRowsMap): one scan, no sort, no object per entry.
    return ctx.classRows.pairsSorted((rk) => localOf.get(rk)!);
  }

  /**
   * Assembles the table from its current groups and records the projection changes against
   * the table last emitted when the id stays the same (`prev`: that projection, or undefined to
   * rebuild it from the journal).
   */
  private assemble(ctx: Ctx, prevId: string | undefined, prev: Map<number, number> | undefined): void {
    const zero = this.zeroOf(ctx);
    const groups = new Map<string, Rows>([[zero.key, zero]]);
    for (const rk of ctx.classRows.groups()) if (rk !== zero.key) groups.set(rk, ctx.rowsCache.get(rk)!);
    // Keep only the rows of present groups (memory); evicted rows are recomputed if they return.
    if (ctx.rowsCache.size > 2 * groups.size + 64) {
      for (const rk of [...ctx.rowsCache.keys()]) if (!groups.has(rk)) ctx.rowsCache.delete(rk);
      ctx.def.slabIntern.clear();
    }
    const old = ctx.assembled;
    const table = (ctx.assembled = assembleTable(ctx.def, groups, zero.key));
    ctx.classRows.setTags((rk) => table.localOf.get(rk) ?? -1);
    ctx.proj?.clear();
    if (prevId !== undefined && prevId === ctx.assembled.id) {
      prev ??= this.emittedProjection(ctx, old!.localOf);
      const projection = this.projectionOf(ctx);
      const log = this.projLog(ctx);
      for (const [id, lc] of projection) if (prev.get(id) !== lc) log.setAdd(id, lc);
      for (const [id, lc] of prev) if (projection.get(id) !== lc) log.setDel(id, lc);
    }
    delete ctx.before;
  }

  /**
   * A class new in this flush enters a live table. Not journalled: a class added in this flush
   * was in no emitted projection (emittedProjection skips `flushAdded`).
   */
  private ctxClassAdded(ctx: Ctx, id: number): void {
    if (ctx.fresh || ctx.assembled === undefined) return;
    // A class with none of the table's atoms (one that lost them, added because its template
    // was in the table) is the default class: not in the map.
    const cls = this.classIndex.classes.get(id)!;
    const key = this.classIndex.restrictedKey(ctx.def.atoms, cls);
    if (key === -1) return;
    const rk = this.rowsOfKey(ctx, key, cls).key;
    ctx.classRows.set(id, rk);
    this.ctxClassEntered(ctx, id, ctx.assembled.localOf.get(rk) ?? -1);
  }

  /** A class new in this flush enters a live table with its template's rows (if the template is in it). */
  private ctxClassAddedAs(ctx: Ctx, id: number, template: number): void {
    if (ctx.fresh || ctx.assembled === undefined) return;
    const k = ctx.classRows.setAsIndex(id, template);
    if (k !== -1) this.ctxClassEntered(ctx, id, this.localClassOf(ctx, k));
  }

  /**
   * The projection change (or the reassembly) for a class that entered a live table with local
   * class `lc` in the table as last assembled (-1: that table lacks its rows).
   */
  private ctxClassEntered(ctx: Ctx, id: number, lc: number): void {
    if (lc === -1) {
      ctx.needReassemble = true;
      return;
    }
    if (ctx.needReassemble) return;
    if (lc !== 0) this.projLog(ctx).enter(id, lc);
  }

  private ctxClassRemoved(ctx: Ctx, id: number): void {
    if (ctx.fresh || ctx.assembled === undefined) return;
    const map = ctx.classRows;
    const k = map.indexOfId(id);
    if (k === -1) return;
    const rk = map.keyAt(k)!;
    const lc = this.localClassOf(ctx, k);
    // Journalled: its rows key as of the start of the flush, before its first change in it.
    const before = (ctx.before ??= { ids: [], rks: [] });
    before.ids.push(id);
    before.rks.push(rk);
    map.delete(id);
    if (map.countAt(k) === 0 && rk !== this.zeroOf(ctx).key) {
      ctx.needReassemble = true;
      return;
    }
    if (ctx.needReassemble) return;
    // Not reassembling, so every rows key is in the assembled table.
    if (lc !== 0) this.projLog(ctx).leave(id, lc);
  }

  /**
   * The local class of rows key index `k` in the table as last assembled (the map's tag, set by
   * assemble(); the string lookup for a key interned since), -1 when that table lacks the key.
   */
  private localClassOf(ctx: Ctx, k: number): number {
    const lc = ctx.classRows.tagAt(k);
    return lc !== -1 ? lc : (ctx.assembled!.localOf.get(ctx.classRows.keyAt(k)!) ?? -1);
  }

  /**
   * Consistency check for tests (cost: every live table × every class, folds without memos): each
   * table's class → rows map must hold exactly the classes with one of the table's atoms, each
   * with the rows key a fresh fold of its restricted signature gives. Returns the problems found.
   */
  verifyTables(): string[] {
    const problems: string[] = [];
    for (const ctx of this.ctxs.values()) {
      if (ctx.assembled === undefined || ctx.fresh) continue;
      let n = 0;
      for (const c of this.classIndex.classes.values()) {
        const got = ctx.classRows.get(c.id);
        if (!c.members.some((m) => ctx.def.atoms.has(memberAtom(m)))) {
          if (got !== undefined) problems.push(`table ${ctx.def.key}: class ${c.id} has none of its atoms but rows ${got}`);
          continue;
        }
        n++;
        const { sig, member } = signatureOfMembers(c.members, (atom) => ctx.def.atoms.has(atom));
        const want = foldRows(ctx.def, sig, member).key;
        if (got !== want) problems.push(`table ${ctx.def.key}: class ${c.id} rows ${got} instead of ${want}`);
      }
      if (ctx.classRows.size !== n) problems.push(`table ${ctx.def.key}: ${ctx.classRows.size} classes mapped instead of ${n}`);
    }
    return problems;
  }
}
