/**
 * CalcGraph: the incremental policy compiler for one node.
 *
 *   onUpdate / onDelete ──> ResourceState ──(dirty marks)──> flush():
 *     1. items (every WorkloadEndpoint): effective labels → selector-atom memberships via the label
 *        index (label (k, v) / key → selectors that need it; endpoints by label), → prefix nodes;
 *     2. local endpoints: policies that select them (policy → local endpoints index), per direction
 *        a table definition key; equal definitions share one table context; contexts acquire the
 *        atoms (selectors, CIDRs, named ports) their remote sides use;
 *     3. prefix nodes whose membership changed get a new signature → global class (hash id);
 *     4. table contexts hear about classes appearing/disappearing that contain their atoms: a
 *        class behaving like an existing local class is a projection add/remove; otherwise the
 *        table is rebuilt (rows memoised per restricted signature);
 *     5. the delta against the previous flush.
 *
 * Contract: `onUpdate(resource)` / `onDelete(kind, key)` accept events in any order, including
 * references to resources not yet seen (a missing profile contributes nothing, a missing tier is
 * ordered last with defaultAction Deny); they only mark state dirty. `flush()` brings the output
 * up to date and returns what changed; `snapshot()` returns the whole current output. Output is
 * a function of the current resources only (except 32-bit id collisions, see types.ts). No I/O.
 * Keys: `namespace/name` for WorkloadEndpoint and NetworkPolicy, `name` for everything else.
 *
 * Every index add has one matching remove: atoms are reference-counted by table contexts,
 * contexts by (endpoint, direction), classes by prefix nodes, rules by contexts.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Resource, ResourceKind, WorkloadEndpoint } from '../model';
import type { Selector } from '../selector';
import { cidrCovers, cidrKey, compareCidr4, formatCidr4, maskOf, parseCidr4, type Cidr4 } from './ipv4';
import { computePrefilter } from './prefilter';
import {
  cidrAtomId,
  endOfTierKey,
  finalKey,
  npAtomId,
  precompilePolicy,
  precompileProfile,
  remoteAtomNeeds,
  resolveLocal,
  selAtomId,
  stepMatch,
  type LocalResolution,
  type LocalView,
  type PreRule,
} from './rules';
import {
  appliesToWorkloads,
  comparePolicies,
  compareTiers,
  effectiveLabels,
  networkSetLabels,
  policyEndpointSelector,
  policyTier,
  policyTypes,
  protocolNumber,
  tierInfo,
  type AnyPolicy,
  type TierInfo,
} from './semantics';
import { policyKey, resourceKey, ResourceState } from './store';
import { NAMESPACE_PROFILE_PREFIX } from '../model/derived';
import { ClassRowsMap, SigMemo, unpackId, unpackValue } from './class-map';
import { fewAdd, fewDelete, fewSize, fewValues, type Few } from './compact';
import { foldRows, makeProgram, partRows, partSigKey, type Op, type PartRec, type TableProgram } from './fold';
import { assembleTable, cellAt, makeTableDef, type AssembledTable, type Rows, type Signature, type Step } from './table';
import {
  DIRECTIONS,
  type CalcDelta,
  type ClassPrefix,
  type CompiledState,
  type Direction,
  type GlobalClassInfo,
  type LocalEndpoint,
  type Prefilter,
  type ProjectionEntry,
  type RoutingState,
  type RuleInfo,
  type VerdictTable,
} from './types';

/** Item-key prefixes of network sets (workload endpoint keys are `namespace/name`). */
const GNS_ITEM = 'GlobalNetworkSet:';
const NS_ITEM = 'NetworkSet:';

function samePrefixes(a: readonly Cidr4[], b: readonly Cidr4[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.addr !== b[i]!.addr || a[i]!.len !== b[i]!.len) return false;
  return true;
}

export interface CalcGraphOptions {
  /** This node's name: WorkloadEndpoints with spec.node equal to it are local. */
  nodeName: string;
  logger?: Logger;
  /**
   * Part-memo entries allowed beyond 2 × (live classes + parts) before all part memos are
   * cleared (default 1024). They are caches, so output never depends on it; tests set -Infinity
   * to clear after every flush.
   */
  partMemoSlack?: number;
}

interface Item {
  key: string;
  labels: Record<string, string>;
  prefixes: Cidr4[];
  ports: { name: string; protocol: number; port: number }[];
  /** Selector atoms this item is a member of. */
  sels: Set<string>;
  profiles: string[];
  namespace: string;
  local: boolean;
}

interface SelAtom {
  id: string;
  sel: Selector;
  refs: number;
  members: Set<string>;
  /** Named-port atoms over this selector: port name → atom id. */
  np: Map<string, string>;
  index: { kind: 'kv'; keys: string[] } | { kind: 'k'; key: string } | { kind: 'none' };
}

interface PNode {
  key: string;
  cidr: Cidr4;
  /** CIDR atoms of exactly this prefix (usually none). */
  cidrAtoms: Set<string> | undefined;
  /** Keys of the items with this prefix (usually one). */
  items: Few<string>;
  classId: number;
}

interface ClassRec {
  id: number;
  sig: string;
  members: string[];
  /**
   * Named-port atom id → hash pair of its member string (`id=values`, values differ per class);
   * absent when the class has no named-port member. A plain atom's member string is the atom id
   * itself, so its hash is the same in every class (CalcGraph.plainHash).
   */
  npHash?: Map<string, [number, number]>;
  refs: number;
  /** Dense internal index for scratch arrays. */
  slot: number;
}

/** FNV-1a over UTF-16 code units with a seed; two seeds give a 64-bit member fingerprint. */
function fnv(str: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Signature map and member strings of a list of signature members. */
/** Atom id of a class member (named-port members carry `=<ports>` after the id). */
function memberAtom(m: string): string {
  return m.startsWith('n:') ? m.slice(0, m.lastIndexOf('=')) : m;
}

/** A class's membership signature, optionally restricted to the atoms `keep` accepts. */
function signatureOfMembers(members: string[], keep?: (atom: string) => boolean): { sig: Signature; member: Map<string, string> } {
  const sig: Signature = new Map();
  const member = new Map<string, string>();
  for (const m of members) {
    const id = memberAtom(m);
    if (keep && !keep(id)) continue;
    if (id !== m) {
      sig.set(id, m.slice(id.length + 1).split(',').map((v) => v.split(':').map(Number) as [number, number]));
    } else {
      sig.set(m, true);
    }
    member.set(id, m);
  }
  return { sig, member };
}

/**
 * Whether `next` can reuse rows of `prev`: same protocols and op structure, parts equal except
 * at some positions. Returns those positions, or undefined when the shapes differ.
 */
function alignPredecessor(prev: Ctx, next: Ctx): { ctx: Ctx; changed: number[] } | undefined {
  const a = prev.def;
  const b = next.def;
  if (a.ops.length !== b.ops.length || a.protocols.join(',') !== b.protocols.join(',')) return undefined;
  const changed: number[] = [];
  for (let i = 0; i < a.ops.length; i++) {
    const x = a.ops[i]!;
    const y = b.ops[i]!;
    if (x.kind !== y.kind) return undefined;
    if (x.kind === 'part') {
      // A part's key names its resource version, so an edit of a policy's ingress rules changes
      // the key of its egress part too; steps equal ⇒ the same function (not a change).
      const yp = (y as typeof x).part;
      if (x.part !== yp && x.part.key !== yp.key && JSON.stringify(x.part.def.steps) !== JSON.stringify(yp.def.steps)) changed.push(i);
    } else if (JSON.stringify(x) !== JSON.stringify(y)) return undefined;
  }
  return changed.length <= 4 ? { ctx: prev, changed } : undefined;
}

/** Atoms whose membership differs between two signatures (`changed`), and those only in `b`. */
function memberDiff(a: string[], b: string[]): { changed: string[]; gained: string[] } {
  const am = new Map(a.map((m) => [memberAtom(m), m]));
  const bm = new Map(b.map((m) => [memberAtom(m), m]));
  const changed: string[] = [];
  const gained: string[] = [];
  for (const [k, m] of bm) {
    const o = am.get(k);
    if (o === undefined) {
      gained.push(k);
      changed.push(k);
    } else if (o !== m) changed.push(k);
  }
  for (const k of am.keys()) if (!bm.has(k)) changed.push(k);
  return { changed, gained };
}

/** A 53-bit number from two 32-bit hashes (a Map key without string allocation). */
function sigNumber(h1: number, h2: number): number {
  return h1 * 2097152 + (h2 >>> 11);
}

function memberHash(m: string): [number, number] {
  return [fnv(m, 0x811c9dc5), fnv(m, 0x2f6b3c1d)];
}

interface Ctx {
  def: TableProgram;
  refs: Set<string>;
  /** Rules this context's steps reference (rule key → info). */
  rules: Map<string, Omit<RuleInfo, 'id'>>;
  /** Atom acquisitions to release when the context dies. */
  acquired: { sels: Selector[]; cidrs: Cidr4[]; named: { sel: Selector; name: string }[] };
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
   * (undefined: absent), so the projection last emitted can be rebuilt for the diff.
   */
  before?: Map<number, string | undefined>;
  assembled?: AssembledTable;
  /** The set of groups changed: renumber local classes and re-emit (no row recomputation). */
  needReassemble: boolean;
  /** Never assembled yet. */
  fresh: boolean;
  /**
   * The table this one replaces for some endpoint, when both have the same shape and differ only
   * in the parts at `changed`: rows of signatures for which those parts behave the same are
   * taken from it instead of folding again (cleared after the first build).
   */
  pred?: { ctx: Ctx; changed: number[] };
  /** Scratch stamps of a flush (CalcGraph.ctxMarkGen): visited in the current walk; live. */
  mark: number;
  live: number;
}

interface DefinitionExtras {
  rules: Map<string, Omit<RuleInfo, 'id'>>;
  needs: Ctx['acquired'];
}

/** One policy's or profile's rules as resolved for an endpoint, and the key they share by. */
interface PlanPart {
  key: string;
  rules: { r: PreRule; loc: LocalResolution }[];
}

type PlanEntry = { kind: 'tier'; tier: TierInfo; policies: PlanPart[] } | { kind: 'profile'; part: PlanPart };

interface Definition {
  key: string;
  plan: PlanEntry[];
  extras: () => DefinitionExtras;
}

interface LocalEp {
  key: string;
  policies: Set<string>;
  defs: Partial<Record<Direction, string>>;
  out?: LocalEndpoint;
}

const kv = (k: string, v: string): string => `${k}\u0000${v}`;

function addTo<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  s.add(v);
}

function removeFrom<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (s === undefined) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

/** 32-bit id of a key, ≥ 1, probing past ids taken by other keys. */
function hashId(key: string, taken: (id: number) => boolean): number {
  for (let salt = 0; ; salt++) {
    const h = createHash('sha1').update(salt === 0 ? key : `${salt}\u0000${key}`).digest().readUInt32BE(0);
    if (h !== 0 && !taken(h)) return h;
  }
}

export class CalcGraph {
  readonly resources = new ResourceState();
  private readonly nodeName: string;
  private readonly partMemoSlack: number;
  private readonly log: Logger | undefined;

  // items and the label index
  private readonly items = new Map<string, Item>();
  private readonly itemsByKV = new Map<string, Set<string>>();
  /**
   * Label key → the values some item has for it. Items with a key are the union of their
   * itemsByKV sets (no per-key item set: every item has the namespace/orchestrator keys).
   */
  private readonly valuesByK = new Map<string, Set<string>>();
  private readonly itemsByProfile = new Map<string, Set<string>>();
  private readonly itemsByNamespace = new Map<string, Set<string>>();
  private readonly dirtyItems = new Set<string>();

  // atoms
  private readonly selAtoms = new Map<string, SelAtom>();
  private readonly selByKV = new Map<string, Set<string>>();
  private readonly selByK = new Map<string, Set<string>>();
  private readonly selUnindexed = new Set<string>();
  private readonly npAtoms = new Map<string, { sel: string; name: string; refs: number }>();
  private readonly cidrAtoms = new Map<string, { cidr: Cidr4; refs: number }>();

  // prefixes and classes
  private readonly pnodes = new Map<string, PNode>();
  private readonly lenCount = new Array<number>(33).fill(0);
  private readonly dirtyNodes = new Set<string>();
  private readonly classes = new Map<number, ClassRec>();
  private readonly classBySig = new Map<string, number>();
  private readonly classesByAtom = new Map<string, Set<ClassRec>>();
  /** Dense slots of live classes (internal only) for scratch arrays; freed slots are reused. */
  private readonly freeSlots: number[] = [];
  private slotCount = 0;
  private acc1 = new Uint32Array(1024);
  private acc2 = new Uint32Array(1024);
  private stamp = new Int32Array(1024);
  private stampGen = 0;

  // local endpoints, policies, contexts, rules
  private readonly localEps = new Map<string, LocalEp>();
  private readonly dirtyLocal = new Set<string>();
  /** Local endpoints whose labels may have changed: their policy set is re-evaluated in full. */
  private readonly relabelledLocal = new Set<string>();
  private readonly policyLocal = new Map<string, Set<string>>();
  private readonly dirtyPolicies = new Set<string>();
  private readonly ctxs = new Map<string, Ctx>();
  private readonly ctxByAtom = new Map<string, Set<Ctx>>();
  /** Generation for Ctx.mark (dedupe in walks over ctxByAtom). */
  private ctxMarkGen = 0;
  private readonly rules = new Map<string, { info: Omit<RuleInfo, 'id'>; id: number; refs: number }>();
  private readonly ruleIds = new Map<number, string>();
  private allLocalDirty = false;
  private prefilterDirty = true;
  private routingDirty = true;

  // delta tracking
  private prefilter: Prefilter = { deny: [], skipped: [] };
  private routing: RoutingState = { pools: [], nodes: [], workloadRoutes: [] };
  private emitted = {
    /** Prefix node key (cidrKey) → class id last emitted for it. */
    prefixes: new Map<string, number>(),
    classes: new Set<number>(),
    tables: new Map<string, string>(),
    /** Rule key → the id and info last emitted (info objects are internal and never mutated). */
    rules: new Map<string, { id: number; info: Omit<RuleInfo, 'id'> }>(),
    prefilter: '',
    routing: '',
  };

  constructor(opts: CalcGraphOptions) {
    this.nodeName = opts.nodeName;
    this.log = opts.logger;
    this.partMemoSlack = opts.partMemoSlack ?? 1024;
  }

  /** The figures behind the agent's felix_active_local_* and felix_cluster_* metrics; O(1). */
  activityStats(): { localEndpoints: number; activeLocalPolicies: number; activeSelectors: number; hosts: number; workloadEndpoints: number; policies: number; profiles: number } {
    const r = this.resources;
    return {
      localEndpoints: this.localEps.size, activeLocalPolicies: this.policyLocal.size, activeSelectors: this.selAtoms.size,
      hosts: r.nodes.size, workloadEndpoints: r.endpoints.size, policies: r.policies.size, profiles: r.profiles.size,
    };
  }

  // =========================================================================== input

  onUpdate(r: Resource): void {
    const key = resourceKey(r);
    this.markFor(r.kind, key, this.resourcesOf(r.kind, key));
    this.resources.upsert(r);
    this.markFor(r.kind, key, r);
  }

  /**
   * Deletes by key (`namespace/name` for namespaced kinds, `name` otherwise), or by name plus
   * namespace. A namespaced kind given a bare name without namespace means namespace `default`.
   */
  onDelete(kind: ResourceKind, key: string, namespace?: string): void {
    const namespaced = kind === 'WorkloadEndpoint' || kind === 'NetworkPolicy' || kind === 'NetworkSet';
    if (namespaced && namespace !== undefined) key = `${namespace}/${key}`;
    else if (namespaced && !key.includes('/')) key = `default/${key}`;
    this.markFor(kind, key, this.resourcesOf(kind, key));
    this.resources.delete(kind, key);
  }

  private resourcesOf(kind: ResourceKind, key: string): Resource | undefined {
    const s = this.resources;
    switch (kind) {
      case 'WorkloadEndpoint':
        return s.endpoints.get(key);
      case 'Profile':
        return s.profiles.get(key);
      case 'Tier':
        return s.tiers.get(key);
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy':
        return s.policies.get(policyKey(kind, key));
      case 'Namespace':
        return s.namespaces.get(key);
      case 'Node':
        return s.nodes.get(key);
      case 'IPPool':
        return s.pools.get(key);
      case 'GlobalNetworkSet':
        return s.globalNetworkSets.get(key);
      case 'NetworkSet':
        return s.networkSets.get(key);
    }
  }

  /** Marks what a resource (old or new version) influences. */
  private markFor(kind: ResourceKind, key: string, r: Resource | undefined): void {
    switch (kind) {
      case 'WorkloadEndpoint':
        this.dirtyItems.add(key);
        this.dirtyRoutes.add(key);
        break;
      case 'Profile':
        // Items referencing the profile (even before it existed) re-read labels and, if local, rules.
        for (const k of this.itemsByProfile.get(key) ?? []) this.dirtyItems.add(k);
        break;
      case 'Namespace':
        for (const k of this.itemsByNamespace.get(key) ?? []) this.dirtyItems.add(k);
        // …and items naming the kns.<ns> profile derived from it (from any namespace).
        for (const k of this.itemsByProfile.get(NAMESPACE_PROFILE_PREFIX + key) ?? []) this.dirtyItems.add(k);
        break;
      case 'Tier':
        this.allLocalDirty = true;
        this.prefilterDirty = true;
        break;
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy':
        this.dirtyPolicies.add(policyKey(kind, key));
        if (r !== undefined && r.kind === 'GlobalNetworkPolicy' && (r.spec.doNotTrack || r.spec.preDNAT || r.spec.applyOnForward)) {
          this.prefilterDirty = true;
        }
        break;
      case 'Node':
        this.prefilterDirty = true;
        this.routingDirty = true;
        break;
      case 'IPPool':
        this.routingDirty = true;
        break;
      case 'GlobalNetworkSet':
        this.dirtyItems.add(GNS_ITEM + key);
        break;
      case 'NetworkSet':
        this.dirtyItems.add(NS_ITEM + key);
        break;
    }
  }

  // =========================================================================== flush

  flush(): CalcDelta {
    const delta: CalcDelta = {
      classesAdded: [],
      classesRemoved: [],
      prefixesUpserted: [],
      prefixesRemoved: [],
      tablesAdded: [],
      tablesRemoved: [],
      projectionAdded: [],
      projectionRemoved: [],
      endpointsUpserted: [],
      endpointsRemoved: [],
      rulesUpserted: [],
      rulesRemoved: [],
      prefilterChanged: false,
      routingChanged: false,
      workloadRoutesUpserted: [],
      workloadRoutesRemoved: [],
    };
    const started = process.hrtime.bigint();

    // 1. items
    for (const key of [...this.dirtyItems].sort()) this.recomputeItem(key);
    this.dirtyItems.clear();

    // 2. policies → local endpoints; local endpoints → definitions / contexts
    for (const pk of [...this.dirtyPolicies].sort()) this.recomputePolicy(pk);
    this.dirtyPolicies.clear();
    if (this.allLocalDirty) for (const k of this.localEps.keys()) this.dirtyLocal.add(k);
    this.allLocalDirty = false;
    const projAdd = this.projAdd;
    const projDel = this.projDel;
    projAdd.clear();
    projDel.clear();
    const newCtxs = new Set<string>();
    for (const key of this.dirtyLocal) this.touchedLocal.add(key);
    for (const key of [...this.dirtyLocal].sort()) this.recomputeLocal(key, newCtxs);
    this.dirtyLocal.clear();
    this.relabelledLocal.clear();
    for (const [k, c] of [...this.ctxs]) if (c.refs.size === 0) this.destroyCtx(k);

    // 3. prefix nodes → classes
    const addedClasses = new Set<number>();
    const removedClasses = new Set<number>();
    const changedPrefixes = new Set<string>();
    this.updateClasses(addedClasses, removedClasses, changedPrefixes);

    // 4. contexts hear about classes
    this.propagateClasses(newCtxs, addedClasses, removedClasses);

    // 5. delta
    this.emitClasses(delta, addedClasses, removedClasses, changedPrefixes);
    this.emitPrefilter(delta);
    this.emitRules(delta);
    const liveTables = this.emitTables(delta);
    this.emitEndpoints(delta, liveTables);
    this.emitRouting(delta);
    this.flushRoutes(delta);
    this.boundPartMemos();
    this.log?.debug(
      {
        ms: Number(process.hrtime.bigint() - started) / 1e6,
        classesAdded: delta.classesAdded.length,
        classesRemoved: delta.classesRemoved.length,
        prefixes: delta.prefixesUpserted.length + delta.prefixesRemoved.length,
        tablesAdded: delta.tablesAdded.length,
        tablesRemoved: delta.tablesRemoved.length,
        endpoints: delta.endpointsUpserted.length + delta.endpointsRemoved.length,
      },
      'calc flush',
    );
    return delta;
  }

  // Parts of flush(), in order (separate methods: smaller optimisation units for the JIT).

  /** Step 3: dirty prefix nodes get their classes; classes no prefix uses any more are dropped. */
  private updateClasses(addedClasses: Set<number>, removedClasses: Set<number>, changedPrefixes: Set<string>): void {
    for (const nk of [...this.dirtyNodes].sort()) this.recomputeNode(nk, addedClasses, changedPrefixes);
    this.dirtyNodes.clear();
    for (const id of this.zeroRefClasses) {
      const c = this.classes.get(id);
      if (c === undefined || c.refs > 0) continue;
      this.classes.delete(id);
      this.classBySig.delete(c.sig);
      for (const a of this.atomsOfMembers(c.members)) removeFrom(this.classesByAtom, a, c);
      this.freeSlots.push(c.slot);
      if (addedClasses.has(id)) addedClasses.delete(id);
      else removedClasses.add(id);
    }

  }

  /** Step 4: live tables hear about classes that appeared or disappeared; new tables are built. */
  private propagateClasses(newCtxs: Set<string>, addedClasses: Set<number>, removedClasses: Set<number>): void {
    const projAdd = this.projAdd;
    const projDel = this.projDel;
    const touch = (id: number, added: boolean): void => {
      const c = added ? this.classes.get(id) : undefined;
      const members = c?.members ?? this.removedMembers.get(id) ?? [];
      const gen = ++this.ctxMarkGen;
      for (const a of this.atomsOfMembers(members)) {
        for (const ctx of this.ctxByAtom.get(a) ?? []) {
          const ck = ctx.def.key;
          if (ctx.mark === gen || newCtxs.has(ck)) continue;
          ctx.mark = gen;
          if (added) this.ctxClassAdded(ck, ctx, id, projAdd, projDel);
          else this.ctxClassRemoved(ck, ctx, id, projAdd, projDel);
        }
      }
    };
    // Additions first: an address that moved from class A to a new class B keeps A's rows in every
    // table that uses none of the atoms A and B differ in (no re-evaluation, just a projection
    // entry); A's removal then never empties a group that B refills.
    const live = [...this.ctxs].filter(([k, c]) => !newCtxs.has(k) && !c.fresh);
    const liveGen = ++this.ctxMarkGen;
    for (const [, c] of live) c.live = liveGen;
    /**
     * The live contexts with any of these atoms: a class is in a context's map iff the context
     * has one of the class's atoms, so this finds the tables a class is in (or may join) without
     * probing every table's map.
     */
    const liveWith = (...atomLists: string[][]): [string, Ctx][] => {
      const out: [string, Ctx][] = [];
      const gen = ++this.ctxMarkGen;
      for (const atoms of atomLists) {
        for (const a of atoms) {
          for (const ctx of this.ctxByAtom.get(a) ?? []) {
            if (ctx.mark === gen) continue;
            ctx.mark = gen;
            if (ctx.live === liveGen) out.push([ctx.def.key, ctx]);
          }
        }
      }
      return out;
    };
    for (const id of [...addedClasses].sort((a, b) => a - b)) {
      const aId = this.classTemplate.get(id);
      const aMembers = aId !== undefined && !addedClasses.has(aId) ? (this.classes.get(aId)?.members ?? this.removedMembers.get(aId)) : undefined;
      if (aId === undefined || aMembers === undefined) {
        touch(id, true);
        continue;
      }
      const b = this.classes.get(id)!;
      const { changed, gained } = memberDiff(aMembers, b.members);
      for (const [ck, ctx] of liveWith(this.atomsOfMembers(aMembers), gained)) {
        const rk = ctx.classRows.get(aId);
        if (rk !== undefined) {
          const same = !changed.some((a) => ctx.def.atoms.has(a));
          this.ctxClassAdded(ck, ctx, id, projAdd, projDel, same ? rk : undefined);
        } else if (gained.some((a) => ctx.def.atoms.has(a))) {
          this.ctxClassAdded(ck, ctx, id, projAdd, projDel);
        }
      }
    }
    for (const id of [...removedClasses].sort((a, b) => a - b)) {
      const members = this.removedMembers.get(id);
      const where = members !== undefined ? liveWith(this.atomsOfMembers(members)) : live;
      for (const [ck, ctx] of where) if (ctx.classRows.has(id)) this.ctxClassRemoved(ck, ctx, id, projAdd, projDel);
    }
    this.classTemplate.clear();
    this.removedMembers.clear();
    this.zeroRefClasses.clear();
    for (const [k, ctx] of this.ctxs) {
      if (newCtxs.has(k) || ctx.fresh) this.rebuildCtx(ctx, addedClasses, removedClasses);
      else if (ctx.needReassemble) this.reassemble(ctx);
      delete ctx.before;
    }

  }

  /** Classes and prefixes of the delta. */
  private emitClasses(delta: CalcDelta, addedClasses: Set<number>, removedClasses: Set<number>, changedPrefixes: Set<string>): void {
    for (const id of [...removedClasses].sort((a, b) => a - b)) {
      if (this.emitted.classes.delete(id)) delta.classesRemoved.push(id);
    }
    for (const id of [...addedClasses].sort((a, b) => a - b)) {
      const c = this.classes.get(id)!;
      this.emitted.classes.add(id);
      delta.classesAdded.push({ classId: id, members: [...c.members] });
    }
    for (const nk of [...changedPrefixes].sort()) {
      const node = this.pnodes.get(nk);
      const prev = this.emitted.prefixes.get(nk);
      if (node === undefined || node.classId === 0) {
        if (prev !== undefined) {
          this.emitted.prefixes.delete(nk);
          const slash = nk.indexOf('/');
          delta.prefixesRemoved.push({ family: 4, cidr: formatCidr4({ addr: Number(nk.slice(0, slash)), len: Number(nk.slice(slash + 1)) }) });
        }
      } else if (prev !== node.classId) {
        this.emitted.prefixes.set(nk, node.classId);
        delta.prefixesUpserted.push({ family: 4, cidr: formatCidr4(node.cidr), classId: node.classId });
      }
    }
  }

  /** The uplink prefilter, when dirty (before rules: its rules are in the same registry). */
  private emitPrefilter(delta: CalcDelta): void {
    if (this.prefilterDirty) {
      this.prefilterDirty = false;
      const old = this.prefilterRuleKeys;
      this.prefilterRuleKeys = [];
      this.prefilter = computePrefilter(this.resources, this.nodeName, (info) => {
        const key = `p|${info.direction}|${info.tier ?? ''}|${info.policy?.name ?? ''}|${info.index ?? ''}`;
        this.refRule(key, info);
        this.prefilterRuleKeys.push(key);
        return this.ruleId(key);
      });
      for (const k of old) this.unrefRule(k);
      const s = JSON.stringify(this.prefilter);
      if (s !== this.emitted.prefilter) {
        this.emitted.prefilter = s;
        delta.prefilterChanged = true;
        delta.prefilter = this.prefilter;
      }
    }
  }

  /** Tables added/removed and projection changes; returns the live tables by id. */
  private emitTables(delta: CalcDelta): Map<string, Ctx> {
    const projAdd = this.projAdd;
    const projDel = this.projDel;
    const liveTables = new Map<string, Ctx>();
    for (const ctx of this.ctxs.values()) if (ctx.assembled) liveTables.set(ctx.assembled.id, ctx);
    for (const [id] of this.emitted.tables) {
      if (!liveTables.has(id)) {
        this.emitted.tables.delete(id);
        delta.tablesRemoved.push(id);
      }
    }
    for (const [id, ctx] of [...liveTables].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (!this.emitted.tables.has(id)) {
        this.emitted.tables.set(id, ctx.def.key);
        delta.tablesAdded.push(this.tableOut(ctx));
        continue;
      }
      const add = projAdd.get(ctx.def.key);
      const del = projDel.get(ctx.def.key);
      if (add !== undefined && add.size > 0) {
        delta.projectionAdded.push({
          tableId: id,
          entries: [...add].sort((a, b) => a[0] - b[0]).map(([globalClass, localClass]) => ({ globalClass, localClass })),
        });
      }
      if (del !== undefined && del.size > 0) {
        delta.projectionRemoved.push({ tableId: id, globalClasses: [...del.keys()].sort((a, b) => a - b) });
      }
    }
    delta.tablesRemoved.sort();
    return liveTables;
  }

  /** Endpoints whose tables or fields changed, and those removed. */
  private emitEndpoints(delta: CalcDelta, liveTables: Map<string, Ctx>): void {
    const touchedEps = new Set<string>(this.touchedLocal);
    this.touchedLocal.clear();
    for (const [id, ctx] of liveTables) {
      if (this.emittedTableOfCtx.get(ctx.def.key) === id) continue;
      this.emittedTableOfCtx.set(ctx.def.key, id);
      for (const ref of ctx.refs) touchedEps.add(ref.slice(0, ref.lastIndexOf('|')));
    }
    for (const k of [...this.emittedTableOfCtx.keys()]) if (!this.ctxs.has(k)) this.emittedTableOfCtx.delete(k);
    for (const key of [...touchedEps].sort()) {
      const ep = this.localEps.get(key);
      if (ep === undefined) continue;
      const out = this.endpointOut(key, ep);
      if (out === undefined) continue;
      if (ep.out === undefined || JSON.stringify(ep.out) !== JSON.stringify(out)) {
        ep.out = out;
        delta.endpointsUpserted.push(out);
      }
    }
    for (const key of [...this.removedEps].sort()) delta.endpointsRemoved.push(key);
    this.removedEps.clear();
  }

  /** Routing state, when dirty. */
  private emitRouting(delta: CalcDelta): void {
    if (this.routingDirty) {
      this.routingDirty = false;
      this.routing = this.computeRouting();
      const s = JSON.stringify(this.routing);
      if (s !== this.emitted.routing) {
        this.emitted.routing = s;
        delta.routingChanged = true;
        delta.routing = { ...this.routing, workloadRoutes: [] };
      }
    }
  }

  /** Projection changes of this flush per context (def key → class → local class). */
  private readonly projAdd = new Map<string, Map<number, number>>();
  private readonly projDel = new Map<string, Map<number, number>>();
  private readonly removedMembers = new Map<number, string[]>();
  /** New class → the class its first address came from (this flush only). */
  private readonly classTemplate = new Map<number, number>();
  private readonly zeroRefClasses = new Set<number>();
  private readonly touchedLocal = new Set<string>();
  private readonly emittedTableOfCtx = new Map<string, string>();
  private readonly removedEps = new Set<string>();

  // =========================================================================== items

  /**
   * What an item is made of: a WorkloadEndpoint (key `namespace/name`), or a network set (keys
   * `GlobalNetworkSet:<name>`, `NetworkSet:<namespace>/<name>`: labels and CIDRs, never local,
   * no ports) — rule selectors match both alike, through the prefix nodes of their addresses.
   */
  private itemSource(key: string): Omit<Item, 'key' | 'sels'> | undefined {
    if (key.startsWith(GNS_ITEM) || key.startsWith(NS_ITEM)) {
      const set = key.startsWith(GNS_ITEM)
        ? this.resources.globalNetworkSets.get(key.slice(GNS_ITEM.length))
        : this.resources.networkSets.get(key.slice(NS_ITEM.length));
      if (set === undefined) return undefined;
      const labels = networkSetLabels(set, (n) => this.resources.profile(n), (n) => this.resources.namespaces.get(n));
      const prefixes: Cidr4[] = [];
      const seen = new Set<string>();
      for (const n of set.spec.nets ?? []) {
        const c = parseCidr4(n);
        if (c === undefined) continue;
        const k = cidrKey(c);
        if (!seen.has(k)) {
          seen.add(k);
          prefixes.push(c);
        }
      }
      const ns = set.kind === 'NetworkSet' ? (set.metadata.namespace ?? 'default') : '';
      return { labels, prefixes, ports: [], profiles: ns === '' ? [] : [NAMESPACE_PROFILE_PREFIX + ns], namespace: ns, local: false };
    }
    const wep = this.resources.endpoints.get(key);
    if (wep === undefined) return undefined;
    const labels = effectiveLabels(
      wep,
      (n) => this.resources.profile(n),
      (n) => this.resources.namespaces.get(n),
    );
    const prefixes: Cidr4[] = [];
    for (const n of wep.spec.ipNetworks ?? []) {
      const c = parseCidr4(n);
      if (c !== undefined && !prefixes.some((p) => p.addr === c.addr && p.len === c.len)) prefixes.push(c);
    }
    const ports: Item['ports'] = [];
    for (const p of wep.spec.ports ?? []) {
      const proto = protocolNumber(p.protocol);
      if (proto !== undefined) ports.push({ name: p.name, protocol: proto, port: p.port });
    }
    return {
      labels,
      prefixes,
      ports,
      profiles: wep.spec.profiles ?? [],
      namespace: wep.metadata.namespace ?? 'default',
      local: wep.spec.node === this.nodeName,
    };
  }

  private recomputeItem(key: string): void {
    const src = this.itemSource(key);
    const old = this.items.get(key);
    if (src === undefined) {
      if (old === undefined) return;
      this.setItemLabels(old, {});
      for (const s of old.sels) this.selAtoms.get(s)?.members.delete(key);
      old.sels.clear();
      this.setItemPrefixes(old, []);
      for (const p of old.profiles) removeFrom(this.itemsByProfile, p, key);
      removeFrom(this.itemsByNamespace, old.namespace, key);
      this.items.delete(key);
      if (old.local) this.dirtyLocal.add(key);
      return;
    }
    const { labels, prefixes, ports, local, profiles, namespace } = src;
    let item = old;
    if (item === undefined) {
      item = { key, labels: {}, prefixes: [], ports: [], sels: new Set(), profiles: [], namespace, local };
      this.items.set(key, item);
      addTo(this.itemsByNamespace, namespace, key);
    }
    for (const p of item.profiles) removeFrom(this.itemsByProfile, p, key);
    for (const p of profiles) addTo(this.itemsByProfile, p, key);
    item.profiles = [...profiles];
    if (item.namespace !== namespace) {
      removeFrom(this.itemsByNamespace, item.namespace, key);
      addTo(this.itemsByNamespace, namespace, key);
      item.namespace = namespace;
    }
    if (item.local || local) {
      this.dirtyLocal.add(key);
      this.relabelledLocal.add(key);
    }
    item.local = local;
    let changed = JSON.stringify(item.ports) !== JSON.stringify(ports);
    // Exact-length copies: arrays grown by push keep spare capacity (×10,000 items).
    item.ports = ports.slice();
    this.setItemLabels(item, labels);
    // memberships: candidates from the label index plus current memberships
    const cands = new Set<string>(this.selUnindexed);
    for (const [k, v] of Object.entries(labels)) {
      for (const s of this.selByKV.get(kv(k, v)) ?? []) cands.add(s);
      for (const s of this.selByK.get(k) ?? []) cands.add(s);
    }
    for (const s of item.sels) cands.add(s);
    for (const s of cands) {
      const atom = this.selAtoms.get(s)!;
      const m = atom.sel.evaluate(labels);
      if (m !== item.sels.has(s)) {
        changed = true;
        if (m) {
          item.sels.add(s);
          atom.members.add(key);
        } else {
          item.sels.delete(s);
          atom.members.delete(key);
        }
      }
    }
    const prefChanged = !samePrefixes(item.prefixes, prefixes);
    if (changed && !prefChanged) this.markItemNodes(item);
    if (prefChanged) this.setItemPrefixes(item, prefixes);
  }

  private setItemLabels(item: Item, labels: Record<string, string>): void {
    const old = item.labels;
    for (const [k, v] of Object.entries(old)) {
      if (labels[k] === v) continue;
      const key = kv(k, v);
      removeFrom(this.itemsByKV, key, item.key);
      if (!this.itemsByKV.has(key)) removeFrom(this.valuesByK, k, v);
    }
    for (const [k, v] of Object.entries(labels)) {
      if (old[k] === v) continue;
      addTo(this.itemsByKV, kv(k, v), item.key);
      addTo(this.valuesByK, k, v);
    }
    item.labels = labels;
  }

  private setItemPrefixes(item: Item, prefixes: Cidr4[]): void {
    this.markItemNodes(item);
    for (const c of item.prefixes) {
      const n = this.pnodes.get(cidrKey(c));
      if (n === undefined) continue;
      n.items = fewDelete(n.items, item.key);
      this.maybeDropNode(n);
    }
    item.prefixes = prefixes.slice();
    for (const c of prefixes) {
      const n = this.nodeAt(c);
      n.items = fewAdd(n.items, item.key);
    }
    this.markItemNodes(item);
  }

  private markItemNodes(item: Item): void {
    for (const c of item.prefixes) this.markNode(c);
  }

  // =========================================================================== prefix nodes

  private nodeAt(c: Cidr4): PNode {
    const k = cidrKey(c);
    let n = this.pnodes.get(k);
    if (n === undefined) {
      n = { key: k, cidr: c, cidrAtoms: undefined, items: undefined, classId: 0 };
      this.pnodes.set(k, n);
      this.lenCount[c.len]!++;
      if (c.len >= 24) addTo(this.nodesBy24, c.addr >>> 8, k);
      else this.shortNodes.add(k);
      this.dirtyNodes.add(k);
    }
    return n;
  }

  private maybeDropNode(n: PNode): void {
    if (fewSize(n.items) > 0 || n.cidrAtoms !== undefined) return;
    // Keep it until recomputeNode releases its class; it is deleted there.
    this.dirtyNodes.add(n.key);
  }

  /** Marks a prefix and every prefix under it. */
  private markNode(c: Cidr4): void {
    const k = cidrKey(c);
    if (this.pnodes.has(k)) this.dirtyNodes.add(k);
    if (c.len === 32) return;
    const visit = (nk: string): void => {
      const n = this.pnodes.get(nk)!;
      if (n.cidr.len > c.len && cidrCovers(c, n.cidr)) this.dirtyNodes.add(nk);
    };
    for (const nk of this.shortNodes) visit(nk);
    if (c.len >= 24) {
      for (const nk of this.nodesBy24.get(c.addr >>> 8) ?? []) visit(nk);
      return;
    }
    const lo = c.addr >>> 8;
    const hi = lo + 2 ** (24 - c.len) - 1;
    if (hi - lo < this.nodesBy24.size) {
      for (let b = lo; b <= hi; b++) for (const nk of this.nodesBy24.get(b) ?? []) visit(nk);
    } else {
      for (const [b, set] of this.nodesBy24) if (b >= lo && b <= hi) for (const nk of set) visit(nk);
    }
  }

  /** Prefix nodes of length ≥ 24 by their first 24 bits, and the shorter ones (for subtree scans). */
  private readonly nodesBy24 = new Map<number, Set<string>>();
  private readonly shortNodes = new Set<string>();

  private recomputeNode(nk: string, added: Set<number>, changed: Set<string>): void {
    const n = this.pnodes.get(nk);
    if (n === undefined) return;
    const empty = fewSize(n.items) === 0 && n.cidrAtoms === undefined;
    let newId = 0;
    let sig = '';
    if (!empty) {
      const members = this.signatureOf(n);
      sig = members.join('\n');
      if (sig !== '') {
        const existing = this.classBySig.get(sig);
        if (existing !== undefined) newId = existing;
        else {
          newId = hashId(sig, (id) => this.classes.has(id));
          let npHash: ClassRec['npHash'];
          for (const m of members) {
            if (m.startsWith('n:')) (npHash ??= new Map()).set(memberAtom(m), memberHash(m));
            else if (!this.atomHashes.has(m)) this.atomHashes.set(m, memberHash(m));
          }
          const slot = this.freeSlots.pop() ?? this.slotCount++;
          if (slot >= this.stamp.length) {
            const grow = <T extends Uint32Array | Int32Array>(a: T): T => {
              const b = new (a.constructor as new (n: number) => T)(a.length * 2);
              b.set(a);
              return b;
            };
            this.acc1 = grow(this.acc1);
            this.acc2 = grow(this.acc2);
            this.stamp = grow(this.stamp);
          }
          const rec: ClassRec = { id: newId, sig, members, refs: 0, slot };
          if (npHash !== undefined) rec.npHash = npHash;
          this.classes.set(newId, rec);
          this.zeroRefClasses.add(newId);
          this.classBySig.set(sig, newId);
          for (const a of this.atomsOfMembers(members)) addTo(this.classesByAtom, a, rec);
          added.add(newId);
        }
      }
    }
    if (newId !== n.classId) {
      if (newId !== 0 && n.classId !== 0 && added.has(newId) && !this.classTemplate.has(newId)) this.classTemplate.set(newId, n.classId);
      if (n.classId !== 0) {
        const oc = this.classes.get(n.classId)!;
        oc.refs--;
        if (oc.refs === 0) {
          this.removedMembers.set(oc.id, oc.members);
          this.zeroRefClasses.add(oc.id);
        }
      }
      if (newId !== 0) this.classes.get(newId)!.refs++;
      n.classId = newId;
      changed.add(nk);
    }
    if (empty) {
      this.pnodes.delete(nk);
      this.lenCount[n.cidr.len]!--;
      if (n.cidr.len >= 24) removeFrom(this.nodesBy24, n.cidr.addr >>> 8, nk);
      else this.shortNodes.delete(nk);
      changed.add(nk);
    }
  }

  private signatureOf(n: PNode): string[] {
    const members = new Set<string>();
    const np = new Map<string, Set<string>>();
    for (let len = 0; len <= n.cidr.len; len++) {
      if (this.lenCount[len] === 0) continue;
      const anc = len === n.cidr.len ? n : this.pnodes.get(`${(n.cidr.addr & maskOf(len)) >>> 0}/${len}`);
      if (anc === undefined) continue;
      if (anc.cidrAtoms !== undefined) for (const a of anc.cidrAtoms) members.add(a);
      for (const ik of fewValues(anc.items)) {
        const it = this.items.get(ik)!;
        for (const s of it.sels) {
          members.add(s);
          const atom = this.selAtoms.get(s)!;
          if (atom.np.size === 0) continue;
          for (const [name, npId] of atom.np) {
            for (const p of it.ports) {
              if (p.name !== name) continue;
              let set = np.get(npId);
              if (set === undefined) np.set(npId, (set = new Set()));
              set.add(`${p.protocol}:${p.port}`);
            }
          }
        }
      }
    }
    for (const [npId, vals] of np) members.add(`${npId}=${[...vals].sort().join(',')}`);
    return [...members].sort();
  }

  /** Atom ids of signature members (named-port members carry `=values`). */
  private atomsOfMembers(members: string[]): string[] {
    return members.map(memberAtom);
  }

  // =========================================================================== atoms

  private acquireSel(sel: Selector): string {
    const id = selAtomId(sel);
    const a = this.selAtoms.get(id);
    if (a !== undefined) {
      a.refs++;
      return id;
    }
    const atom: SelAtom = { id, sel, refs: 1, members: new Set(), np: new Map(), index: { kind: 'none' } };
    // Index by the most selective restriction: a value set, else a required key.
    let best: SelAtom['index'] = { kind: 'none' };
    let bestSize = Infinity;
    for (const [k, r] of sel.labelRestrictions()) {
      if (r.mustHaveOneOfValues !== undefined && r.mustHaveOneOfValues.length < bestSize && r.mustHaveOneOfValues.length > 0) {
        best = { kind: 'kv', keys: r.mustHaveOneOfValues.map((v) => kv(k, v)) };
        bestSize = r.mustHaveOneOfValues.length;
      } else if (r.mustBePresent && best.kind === 'none') {
        best = { kind: 'k', key: k };
      }
    }
    atom.index = best;
    let cands: Iterable<string>;
    if (best.kind === 'kv') {
      for (const k of best.keys) addTo(this.selByKV, k, id);
      const c = new Set<string>();
      for (const k of best.keys) for (const i of this.itemsByKV.get(k) ?? []) c.add(i);
      cands = c;
    } else if (best.kind === 'k') {
      addTo(this.selByK, best.key, id);
      const c: string[] = [];
      for (const v of this.valuesByK.get(best.key) ?? []) for (const i of this.itemsByKV.get(kv(best.key, v))!) c.push(i);
      cands = c;
    } else {
      this.selUnindexed.add(id);
      cands = [...this.items.keys()];
    }
    this.selAtoms.set(id, atom);
    for (const ik of cands) {
      const it = this.items.get(ik)!;
      if (sel.evaluate(it.labels)) {
        atom.members.add(ik);
        it.sels.add(id);
        this.markItemNodes(it);
      }
    }
    return id;
  }

  private releaseSel(sel: Selector): void {
    const id = selAtomId(sel);
    const a = this.selAtoms.get(id);
    if (a === undefined) return;
    if (--a.refs > 0) return;
    for (const ik of a.members) {
      const it = this.items.get(ik);
      if (it === undefined) continue;
      it.sels.delete(id);
      this.markItemNodes(it);
    }
    if (a.index.kind === 'kv') for (const k of a.index.keys) removeFrom(this.selByKV, k, id);
    else if (a.index.kind === 'k') removeFrom(this.selByK, a.index.key, id);
    else this.selUnindexed.delete(id);
    this.selAtoms.delete(id);
    this.atomHashes.delete(id);
  }

  private acquireNamed(sel: Selector, name: string): void {
    const sid = this.acquireSel(sel);
    const id = npAtomId(sid, name);
    const a = this.npAtoms.get(id);
    if (a !== undefined) {
      a.refs++;
      return;
    }
    this.npAtoms.set(id, { sel: sid, name, refs: 1 });
    const atom = this.selAtoms.get(sid)!;
    atom.np.set(name, id);
    for (const ik of atom.members) {
      const it = this.items.get(ik)!;
      if (it.ports.some((p) => p.name === name)) this.markItemNodes(it);
    }
  }

  private releaseNamed(sel: Selector, name: string): void {
    const sid = selAtomId(sel);
    const id = npAtomId(sid, name);
    const a = this.npAtoms.get(id);
    if (a !== undefined && --a.refs === 0) {
      this.npAtoms.delete(id);
      const atom = this.selAtoms.get(sid);
      if (atom !== undefined) {
        atom.np.delete(name);
        for (const ik of atom.members) {
          const it = this.items.get(ik)!;
          if (it.ports.some((p) => p.name === name)) this.markItemNodes(it);
        }
      }
    }
    this.releaseSel(sel);
  }

  private acquireCidr(c: Cidr4): void {
    const id = cidrAtomId(c);
    const a = this.cidrAtoms.get(id);
    if (a !== undefined) {
      a.refs++;
      return;
    }
    this.cidrAtoms.set(id, { cidr: c, refs: 1 });
    const n = this.nodeAt(c);
    (n.cidrAtoms ??= new Set()).add(id);
    this.markNode(c);
  }

  private releaseCidr(c: Cidr4): void {
    const id = cidrAtomId(c);
    const a = this.cidrAtoms.get(id);
    if (a === undefined || --a.refs > 0) return;
    this.cidrAtoms.delete(id);
    this.atomHashes.delete(id);
    const n = this.pnodes.get(cidrKey(c));
    if (n !== undefined) {
      n.cidrAtoms?.delete(id);
      if (n.cidrAtoms?.size === 0) n.cidrAtoms = undefined;
      this.markNode(c);
      this.maybeDropNode(n);
    }
  }

  // =========================================================================== policies / local endpoints

  private recomputePolicy(pk: string): void {
    const p = this.resources.policies.get(pk);
    const prev = this.policyLocal.get(pk) ?? new Set<string>();
    const now = new Set<string>();
    if (p !== undefined && appliesToWorkloads(p)) {
      const sel = policyEndpointSelector(p);
      for (const [k, ep] of this.localEps) {
        const it = this.items.get(k);
        if (it !== undefined && sel.evaluate(it.labels)) {
          now.add(k);
          ep.policies.add(pk);
        }
      }
    }
    for (const k of prev) {
      if (!now.has(k)) this.localEps.get(k)?.policies.delete(pk);
      this.dirtyLocal.add(k);
    }
    for (const k of now) this.dirtyLocal.add(k);
    if (now.size > 0) this.policyLocal.set(pk, now);
    else this.policyLocal.delete(pk);
  }

  private recomputeLocal(key: string, newCtxs: Set<string>): void {
    const it = this.items.get(key);
    let ep = this.localEps.get(key);
    if (it === undefined || !it.local) {
      if (ep === undefined) return;
      for (const pk of ep.policies) removeFrom(this.policyLocal, pk, key);
      for (const d of DIRECTIONS) this.unrefCtx(ep.defs[d], `${key}|${d}`);
      this.localEps.delete(key);
      if (ep.out !== undefined) this.removedEps.add(key);
      return;
    }
    let fresh = false;
    if (ep === undefined) {
      ep = { key, policies: new Set(), defs: {} };
      this.localEps.set(key, ep);
      fresh = true;
    }
    if (fresh || this.relabelledLocal.has(key)) {
      // Labels may have changed: re-evaluate every policy for this endpoint.
      for (const pk of ep.policies) removeFrom(this.policyLocal, pk, key);
      ep.policies.clear();
      for (const [pk, p] of this.resources.policies) {
        if (!appliesToWorkloads(p)) continue;
        if (policyEndpointSelector(p).evaluate(it.labels)) {
          ep.policies.add(pk);
          addTo(this.policyLocal, pk, key);
        }
      }
    }
    const wep = this.resources.endpoints.get(key)!;
    const view: LocalView = { labels: it.labels, ip: it.prefixes[0]?.addr, ports: it.ports };
    for (const d of DIRECTIONS) {
      const built = this.definition(ep, wep, view, d);
      const old = ep.defs[d];
      if (old === built.key && this.ctxs.has(old)) continue;
      let ctx = this.ctxs.get(built.key);
      if (ctx === undefined) {
        ctx = this.createCtx(built.key, d, built);
        newCtxs.add(built.key);
      }
      ctx.refs.add(`${key}|${d}`);
      ep.defs[d] = built.key;
      if (ctx.fresh && ctx.pred === undefined && old !== undefined) {
        const prev = this.ctxs.get(old);
        if (prev !== undefined && prev.assembled !== undefined) ctx.pred = alignPredecessor(prev, ctx);
      }
      this.unrefCtx(old, `${key}|${d}`);
    }
  }

  private unrefCtx(defKey: string | undefined, ref: string): void {
    if (defKey === undefined) return;
    this.ctxs.get(defKey)?.refs.delete(ref);
  }

  /**
   * The definition key of an endpoint's table in one direction (cheap: per-policy content
   * hashes plus the local resolution of each rule) and a thunk building its steps.
   */
  private definition(ep: LocalEp, wep: WorkloadEndpoint, view: LocalView, d: Direction): Definition {
    const byTier = new Map<string, AnyPolicy[]>();
    for (const pk of ep.policies) {
      const p = this.resources.policies.get(pk)!;
      if (!policyTypes(p)[d]) continue;
      const t = policyTier(p);
      let l = byTier.get(t);
      if (l === undefined) byTier.set(t, (l = []));
      l.push(p);
    }
    const tiers: TierInfo[] = [...byTier.keys()].map((n) => tierInfo(n, this.resources.tiers.get(n))).sort(compareTiers);
    const plan: PlanEntry[] = [];
    const keyParts: string[] = [d];
    const resolve = (kind: string, hash: string, rules: PreRule[]): PlanPart => {
      const part: PlanPart = { key: '', rules: [] };
      const res: string[] = [];
      for (const r of rules) {
        const loc = resolveLocal(r, d, view);
        if (loc === undefined) continue;
        part.rules.push({ r, loc });
        res.push(`${r.index}${Object.keys(loc).length > 0 ? JSON.stringify(loc) : ''}`);
      }
      part.key = `${d}${kind}${hash}:${res.join(',')}`;
      keyParts.push(part.key);
      return part;
    };
    for (const tier of tiers) {
      const policies = byTier.get(tier.name)!.sort(comparePolicies);
      keyParts.push(`T${tier.name}\u0001${tier.defaultAction}`);
      const parts: PlanPart[] = [];
      for (const p of policies) {
        const pre = precompilePolicy(p);
        parts.push(resolve('P', pre.hash, pre[d]));
      }
      plan.push({ kind: 'tier', tier, policies: parts });
    }
    for (const name of wep.spec.profiles ?? []) {
      const prof = this.resources.profile(name);
      if (prof === undefined) continue;
      const pre = precompileProfile(prof);
      plan.push({ kind: 'profile', part: resolve('R', pre.hash, pre[d]) });
    }
    const key = createHash('sha1').update(keyParts.join('\u0002')).digest('hex');
    const extras = (): DefinitionExtras => {
      const m = new Map<string, Omit<RuleInfo, 'id'>>();
      for (const entry of plan) {
        const parts = entry.kind === 'tier' ? entry.policies : [entry.part];
        for (const part of parts) for (const { r } of part.rules) m.set(r.ruleKey, r.info);
        if (entry.kind === 'tier' && entry.tier.defaultAction === 'Deny') {
          m.set(endOfTierKey(d, entry.tier.name), { kind: 'end-of-tier', direction: d, tier: entry.tier.name, action: 'Deny' });
        }
      }
      m.set(finalKey(d), { kind: 'no-profile-match', direction: d, action: 'Deny' });
      const needs = { sels: [] as Selector[], cidrs: [] as Cidr4[], named: [] as { sel: Selector; name: string }[] };
      for (const entry of plan) {
        const parts = entry.kind === 'tier' ? entry.policies : [entry.part];
        for (const part of parts) {
          for (const { r } of part.rules) {
            const n = remoteAtomNeeds(r);
            needs.sels.push(...n.sels);
            needs.cidrs.push(...n.cidrs);
            needs.named.push(...n.named);
          }
        }
      }
      return { rules: m, needs };
    };
    return { key, plan, extras };
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
  private boundPartMemos(): void {
    let entries = 0;
    for (const p of this.parts.values()) entries += p.memo.size;
    if (entries <= 2 * (this.classes.size + this.parts.size) + this.partMemoSlack) return;
    for (const p of this.parts.values()) {
      p.memo.clear();
      delete p.def.interned;
    }
  }

  private readonly parts = new Map<string, PartRec>();
  private tablesFromPredecessor = 0;

  private createCtx(key: string, d: Direction, built: Definition): Ctx {
    const ops: Op[] = [];
    for (const entry of built.plan) {
      if (entry.kind === 'tier') {
        for (const pp of entry.policies) ops.push({ kind: 'part', part: this.acquirePart(d, pp) });
        ops.push({ kind: 'tierEnd', deny: entry.tier.defaultAction === 'Deny', rule: endOfTierKey(d, entry.tier.name) });
      } else {
        ops.push({ kind: 'part', part: this.acquirePart(d, entry.part) });
        ops.push({ kind: 'profileEnd' });
      }
    }
    ops.push({ kind: 'final', rule: finalKey(d) });
    const def = makeProgram(key, d, ops);
    const extra = built.extras();
    for (const s of extra.needs.sels) this.acquireSel(s);
    for (const c of extra.needs.cidrs) this.acquireCidr(c);
    for (const n of extra.needs.named) this.acquireNamed(n.sel, n.name);
    const ctx: Ctx = {
      def,
      refs: new Set(),
      rules: extra.rules,
      acquired: extra.needs,
      memo: new SigMemo(),
      rowsCache: new Map(),
      classRows: new ClassRowsMap(),
      needReassemble: false,
      fresh: true,
      mark: 0,
      live: 0,
    };
    this.ctxs.set(key, ctx);
    for (const a of def.atoms) addTo(this.ctxByAtom, a, ctx);
    for (const [rk, info] of ctx.rules) this.refRule(rk, info);
    return ctx;
  }

  private destroyCtx(key: string): void {
    const ctx = this.ctxs.get(key)!;
    this.ctxs.delete(key);
    for (const a of ctx.def.atoms) removeFrom(this.ctxByAtom, a, ctx);
    for (const s of ctx.acquired.sels) this.releaseSel(s);
    for (const c of ctx.acquired.cidrs) this.releaseCidr(c);
    for (const n of ctx.acquired.named) this.releaseNamed(n.sel, n.name);
    for (const rk of ctx.rules.keys()) this.unrefRule(rk);
    for (const op of ctx.def.ops) if (op.kind === 'part') this.releasePart(op.part);
  }

  // =========================================================================== tables

  /**
   * Fingerprint of a class's members restricted to a context's atoms: an order-free 64-bit
   * combination (XOR and sum) of member hashes, so it can be accumulated atom by atom.
   */
  private restrictedKey(ctx: Ctx, cls: ClassRec): number {
    let h1 = 0;
    let h2 = 0;
    let any = false;
    const atoms = ctx.def.atoms;
    for (const m of cls.members) {
      // Named-port members (`n:…=values`) come from npHash below.
      if (!atoms.has(m) || m.startsWith('n:')) continue;
      const h = this.plainHash(m);
      any = true;
      h1 ^= h[0];
      h2 = (h2 + h[1]) >>> 0;
    }
    if (cls.npHash !== undefined) {
      for (const [atom, h] of cls.npHash) {
        if (!atoms.has(atom)) continue;
        any = true;
        h1 ^= h[0];
        h2 = (h2 + h[1]) >>> 0;
      }
    }
    return any ? sigNumber(h1 >>> 0, h2 >>> 0) : -1;
  }

  /** Hash pairs of plain atoms (selector and CIDR atoms), set when a class with the atom appears. */
  private readonly atomHashes = new Map<string, [number, number]>();

  /** Hash pair of a plain atom's member string (the atom id): cached, else computed. */
  private plainHash(atom: string): [number, number] {
    return this.atomHashes.get(atom) ?? memberHash(atom);
  }

  /**
   * The classes with any of `atoms`, each with the fingerprint of its members restricted to them
   * accumulated in acc1/acc2 at its slot (sigNumber(acc1[slot], acc2[slot])), until the next call.
   */
  private accumulate(atoms: Iterable<string>): ClassRec[] {
    const gen = ++this.stampGen;
    const { acc1, acc2, stamp } = this;
    const touched: ClassRec[] = [];
    for (const a of atoms) {
      const set = this.classesByAtom.get(a);
      if (set === undefined) continue;
      // Plain atoms hash the same in every class; named-port members carry per-class values.
      const shared = a.startsWith('n:') ? undefined : this.plainHash(a);
      for (const c of set) {
        const h = shared ?? c.npHash!.get(a)!;
        const i = c.slot;
        if (stamp[i] !== gen) {
          stamp[i] = gen;
          acc1[i] = h[0];
          acc2[i] = h[1];
          touched.push(c);
        } else {
          acc1[i] = acc1[i]! ^ h[0];
          acc2[i] = acc2[i]! + h[1];
        }
      }
    }
    return touched;
  }

  /** The context's rows of the empty signature, folded on first use. */
  private zeroOf(ctx: Ctx): Rows {
    return (ctx.zero ??= foldRows(ctx.def, new Map(), new Map()));
  }

  /** `key`: the restricted signature's number (sigNumber), -1 for the empty signature. */
  private rowsOfKey(ctx: Ctx, key: number, cls: ClassRec): Rows {
    if (key === -1) return this.zeroOf(ctx);
    const rk = ctx.memo.get(key);
    let rows = rk !== undefined ? ctx.rowsCache.get(rk) : undefined;
    if (rows === undefined) {
      const { sig, member } = signatureOfMembers(cls.members, (atom) => ctx.def.atoms.has(atom));
      rows = ctx.pred !== undefined ? this.rowsFromPredecessor(ctx, ctx.pred, cls) : undefined;
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
    const rk = pred.ctx.memo.get(this.restrictedKey(pred.ctx, cls));
    const rows = rk !== undefined ? pred.ctx.rowsCache.get(rk) : undefined;
    if (rows === undefined) return undefined;
    const { sig, member } = signatureOfMembers(cls.members);
    for (const i of pred.changed) {
      const np = (ctx.def.ops[i] as Extract<Op, { kind: 'part' }>).part;
      const op = (pred.ctx.def.ops[i] as Extract<Op, { kind: 'part' }>).part;
      if (partRows(np, partSigKey(np, sig, member), sig).key !== partRows(op, partSigKey(op, sig, member), sig).key) return undefined;
    }
    return rows;
  }

  /**
   * A new context's class → rows map from its predecessor's, when the changed parts (old and new)
   * act the same on the empty signature: then every class with none of those parts' atoms has
   * the same restriction to both tables' atoms and the same rows (rowsFromPredecessor's argument),
   * so the predecessor's map is copied wholesale. Of the classes with a changed part's atom, only
   * those on whose restriction to these atoms the old and new parts differ (one part evaluation
   * per distinct restriction), that were not in the predecessor's map, or that may leave the
   * table (an atom only the old parts had) are computed, as are those that appeared in this
   * flush (a predecessor that died in it did not hear of them); classes that disappeared are
   * dropped. Cost: O(map capacity) copying plus Σ |classes of the changed parts' atoms| hash
   * accumulations, instead of Σ |class ∩ table atoms| lookups.
   * Returns false (nothing changed) when the shortcut does not apply.
   */
  private classRowsFromPredecessor(ctx: Ctx, pred: NonNullable<Ctx['pred']>, added: ReadonlySet<number>, removed: ReadonlySet<number>): boolean {
    const old = pred.ctx;
    const empty: Signature = new Map();
    const changedAtoms = new Set<string>();
    for (const i of pred.changed) {
      const np = (ctx.def.ops[i] as Extract<Op, { kind: 'part' }>).part;
      const op = (old.def.ops[i] as Extract<Op, { kind: 'part' }>).part;
      if (partRows(np, '', empty).key !== partRows(op, '', empty).key) return false;
      for (const a of np.def.atoms) changedAtoms.add(a);
      for (const a of op.def.atoms) changedAtoms.add(a);
    }
    // Equal on the empty signature and elsewhere the same program: the same default rows.
    const zero = this.zeroOf(old);
    if (ctx.zero !== undefined && ctx.zero.key !== zero.key) return false;
    // Not worth it when the changed parts' classes are a large share of the table's (a local
    // label change swapping policies): the full build walks each class once, this up to thrice.
    let changedCost = 0;
    for (const a of changedAtoms) changedCost += this.classesByAtom.get(a)?.size ?? 0;
    let fullCost = 0;
    for (const a of ctx.def.atoms) fullCost += this.classesByAtom.get(a)?.size ?? 0;
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
    const touched = this.accumulate(changedAtoms);
    const { acc1, acc2 } = this;
    // Classes with an atom only the old parts had may leave the table: always recomputed.
    const leaving = new Uint8Array(this.slotCount);
    for (const a of changedAtoms) {
      if (ctx.def.atoms.has(a)) continue;
      for (const c of this.classesByAtom.get(a) ?? []) leaving[c.slot] = 1;
    }
    // Per distinct restriction: do the old and new parts give the same functions on it?
    const agree = new Map<number, boolean>();
    const agrees = (c: ClassRec): boolean => {
      const k = sigNumber(acc1[c.slot]!, acc2[c.slot]!);
      let v = agree.get(k);
      if (v === undefined) {
        const { sig, member } = signatureOfMembers(c.members, (atom) => changedAtoms.has(atom));
        v = true;
        for (const i of pred.changed) {
          const np = (ctx.def.ops[i] as Extract<Op, { kind: 'part' }>).part;
          const op = (old.def.ops[i] as Extract<Op, { kind: 'part' }>).part;
          if (partRows(np, partSigKey(np, sig, member), sig).key !== partRows(op, partSigKey(op, sig, member), sig).key) {
            v = false;
            break;
          }
        }
        agree.set(k, v);
      }
      return v;
    };
    const redo = (c: ClassRec): void => {
      const key = this.restrictedKey(ctx, c);
      if (key === -1) map.delete(c.id);
      else map.set(c.id, this.rowsOfKey(ctx, key, c).key);
    };
    // A class keeps the predecessor's rows if it was in its map, stays in this one and the
    // changed parts agree on it; classes new in this flush are recomputed below.
    for (const c of touched) {
      if (added.has(c.id)) continue;
      if (leaving[c.slot] === 1 || !map.has(c.id) || !agrees(c)) redo(c);
    }
    for (const id of added) {
      const c = this.classes.get(id);
      if (c !== undefined) redo(c);
    }
    return true;
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
      if (ctx.memo.size > 4 * ctx.classRows.size + 64) ctx.memo.clear();
      delete ctx.pred;
      this.assemble(ctx, prevId, prev);
      return;
    }
    ctx.classRows.clear();
    // Restricted members per relevant class, gathered atom by atom (cost: Σ |class ∩ atoms|).
    const touched = this.accumulate(ctx.def.atoms);
    const { acc1, acc2 } = this;
    const relevant = { size: touched.length };
    for (const c of touched) {
      const id = c.id;
      const rows = this.rowsOfKey(ctx, sigNumber(acc1[c.slot]!, acc2[c.slot]!), c);
      ctx.classRows.set(id, rows.key);
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
    const before = ctx.before;
    const prev = new Map<number, number>();
    ctx.classRows.forEach((id, rk) => {
      if (before?.has(id)) return;
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

  /** The current projection as output entries, sorted by class id. */
  private projectionEntries(ctx: Ctx): ProjectionEntry[] {
    const localOf = ctx.assembled!.localOf;
    const out: ProjectionEntry[] = [];
    // Sorted as packed numbers in a typed array: no comparator call per comparison, no object
    // until the order is known.
    const packed = ctx.classRows.packedSorted((rk) => localOf.get(rk)!);
    if (packed !== undefined) {
      for (let i = 0; i < packed.length; i++) {
        const p = packed[i]!;
        out.push({ globalClass: unpackId(p), localClass: unpackValue(p) });
      }
      return out;
    }
    ctx.classRows.forEach((globalClass, rk) => {
      const localClass = localOf.get(rk)!;
      if (localClass !== 0) out.push({ globalClass, localClass });
    });
    return out.sort((x, y) => x.globalClass - y.globalClass);
  }

  /** Records a class's rows key as of the start of the flush, before its first change in it. */
  private journal(ctx: Ctx, id: number): void {
    const before = (ctx.before ??= new Map());
    if (!before.has(id)) before.set(id, ctx.classRows.get(id));
  }

  /**
   * Assembles the table from its current groups and records the projection changes against
   * the table last emitted when the id stays the same (`prev`: that projection, or undefined to
   * rebuild it from the journal).
   */
  private assemble(ctx: Ctx, prevId: string | undefined, prev: Map<number, number> | undefined): void {
    const ck = ctx.def.key;
    const zero = this.zeroOf(ctx);
    const groups = new Map<string, Rows>([[zero.key, zero]]);
    for (const rk of ctx.classRows.groups()) if (rk !== zero.key) groups.set(rk, ctx.rowsCache.get(rk)!);
    // Keep only the rows of present groups (memory); evicted rows are recomputed if they return.
    if (ctx.rowsCache.size > 2 * groups.size + 64) {
      for (const rk of [...ctx.rowsCache.keys()]) if (!groups.has(rk)) ctx.rowsCache.delete(rk);
      ctx.def.slabIntern.clear();
    }
    const old = ctx.assembled;
    ctx.assembled = assembleTable(ctx.def, groups, zero.key);
    this.projAdd.delete(ck);
    this.projDel.delete(ck);
    if (prevId !== undefined && prevId === ctx.assembled.id) {
      prev ??= this.emittedProjection(ctx, old!.localOf);
      const projection = this.projectionOf(ctx);
      const add = new Map<number, number>();
      const del = new Map<number, number>();
      for (const [id, lc] of projection) if (prev.get(id) !== lc) add.set(id, lc);
      for (const [id, lc] of prev) if (projection.get(id) !== lc) del.set(id, lc);
      if (add.size > 0) this.projAdd.set(ck, add);
      if (del.size > 0) this.projDel.set(ck, del);
    }
    delete ctx.before;
  }

  private ctxClassAdded(
    ck: string,
    ctx: Ctx,
    id: number,
    projAdd: Map<string, Map<number, number>>,
    projDel: Map<string, Map<number, number>>,
    knownRowsKey?: string,
  ): void {
    if (ctx.fresh || ctx.assembled === undefined) return;
    let rk = knownRowsKey;
    if (rk === undefined) {
      // A class with none of the table's atoms (one that lost them, added because its template
      // was in the table) is the default class: not in the map.
      const cls = this.classes.get(id)!;
      const key = this.restrictedKey(ctx, cls);
      if (key === -1) return;
      rk = this.rowsOfKey(ctx, key, cls).key;
    }
    this.journal(ctx, id);
    ctx.classRows.set(id, rk);
    const lc = ctx.assembled.localOf.get(rk);
    if (lc === undefined) {
      ctx.needReassemble = true;
      return;
    }
    if (ctx.needReassemble) return;
    if (lc !== 0) {
      if (projDel.get(ck)?.delete(id) !== true) {
        let m = projAdd.get(ck);
        if (m === undefined) projAdd.set(ck, (m = new Map()));
        m.set(id, lc);
      }
    }
  }

  private ctxClassRemoved(
    ck: string,
    ctx: Ctx,
    id: number,
    projAdd: Map<string, Map<number, number>>,
    projDel: Map<string, Map<number, number>>,
  ): void {
    if (ctx.fresh || ctx.assembled === undefined) return;
    const rk = ctx.classRows.get(id);
    if (rk === undefined) return;
    this.journal(ctx, id);
    ctx.classRows.delete(id);
    const n = ctx.classRows.count(rk);
    if (n === 0 && rk !== this.zeroOf(ctx).key) {
      ctx.needReassemble = true;
      return;
    }
    if (ctx.needReassemble) return;
    // Not reassembling, so every rows key is in the assembled table.
    const lc = ctx.assembled.localOf.get(rk)!;
    if (lc !== 0) {
      if (projAdd.get(ck)?.delete(id) !== true) {
        let m = projDel.get(ck);
        if (m === undefined) projDel.set(ck, (m = new Map()));
        m.set(id, lc);
      }
    }
  }

  // =========================================================================== rules

  private readonly dirtyRules = new Set<string>();

  private refRule(key: string, info: Omit<RuleInfo, 'id'>): void {
    this.dirtyRules.add(key);
    const r = this.rules.get(key);
    if (r !== undefined) {
      r.refs++;
      r.info = info;
      return;
    }
    const id = hashId(key, (i) => this.ruleIds.has(i));
    this.rules.set(key, { info, id, refs: 1 });
    this.ruleIds.set(id, key);
  }

  private unrefRule(key: string): void {
    this.dirtyRules.add(key);
    const r = this.rules.get(key);
    if (r === undefined || --r.refs > 0) return;
    this.rules.delete(key);
    this.ruleIds.delete(r.id);
  }

  private ruleId(key: string): number {
    return this.rules.get(key)?.id ?? 0;
  }

  private prefilterRuleKeys: string[] = [];

  private emitRules(delta: CalcDelta): void {
    for (const key of this.dirtyRules) {
      const prev = this.emitted.rules.get(key);
      if (prev === undefined) continue;
      const r = this.rules.get(key);
      if (r === undefined) {
        this.emitted.rules.delete(key);
        delta.rulesRemoved.push(prev.id);
      }
    }
    for (const key of this.dirtyRules) {
      const r = this.rules.get(key);
      if (r === undefined) continue;
      const prev = this.emitted.rules.get(key);
      if (prev !== undefined && prev.id === r.id && (prev.info === r.info || JSON.stringify(prev.info) === JSON.stringify(r.info))) continue;
      this.emitted.rules.set(key, { id: r.id, info: r.info });
      delta.rulesUpserted.push({ id: r.id, ...r.info });
    }
    this.dirtyRules.clear();
    delta.rulesRemoved.sort((a, b) => a - b);
    delta.rulesUpserted.sort((a, b) => a.id - b.id);
  }

  // =========================================================================== output

  private tableOut(ctx: Ctx): VerdictTable {
    const a = ctx.assembled!;
    const projection = this.projectionEntries(ctx);
    return {
      id: a.id,
      direction: ctx.def.direction,
      localClassCount: a.localClassCount,
      projection,
      protocols: [...a.protocols],
      srcPortClasses: a.srcPortClasses,
      cells: this.cellsOut(a),
    };
  }

  private cellsOut(a: AssembledTable): VerdictTable['cells'] {
    const c = a.cells;
    const out: VerdictTable['cells'] = [];
    for (let i = 0; i < c.count; i++) {
      const { rule, logs, ...cell } = cellAt(c, i);
      out.push({ ...cell, ruleId: this.ruleId(rule), logRuleIds: logs.map((l) => this.ruleId(l)) });
    }
    return out;
  }

  private endpointOut(key: string, ep: LocalEp): LocalEndpoint | undefined {
    const wep = this.resources.endpoints.get(key);
    const ing = ep.defs.ingress !== undefined ? this.ctxs.get(ep.defs.ingress)?.assembled?.id : undefined;
    const eg = ep.defs.egress !== undefined ? this.ctxs.get(ep.defs.egress)?.assembled?.id : undefined;
    if (wep === undefined || ing === undefined || eg === undefined) return undefined;
    const out: LocalEndpoint = {
      key,
      namespace: wep.metadata.namespace ?? 'default',
      name: wep.metadata.name,
      ipNetworks: (wep.spec.ipNetworks ?? []).map((n) => {
        const c = parseCidr4(n);
        return c !== undefined ? formatCidr4(c) : n;
      }),
      tables: { ingress: ing, egress: eg },
    };
    if (wep.spec.interfaceName !== undefined) out.interfaceName = wep.spec.interfaceName;
    if (wep.spec.mac !== undefined) out.mac = wep.spec.mac;
    return out;
  }

  /** Remote workload routes of the dirty endpoints, diffed per address. */
  private flushRoutes(delta: CalcDelta): void {
    const upserts = new Map<string, string>();
    const removals = new Set<string>();
    // Any order: the owner of an address is chosen by sorting its owners, and the delta's lists are sorted below.
    for (const key of this.dirtyRoutes) {
      const w = this.resources.endpoints.get(key);
      const now: string[] = [];
      if (w !== undefined && w.spec.node !== undefined && w.spec.node !== this.nodeName) {
        for (const n of w.spec.ipNetworks ?? []) {
          const c = parseCidr4(n);
          if (c !== undefined) now.push(formatCidr4(c));
        }
      }
      for (const cidr of fewValues(this.routesOf.get(key))) {
        const owners = fewDelete(this.routeOwners.get(cidr), key);
        if (owners === undefined) this.routeOwners.delete(cidr);
        else this.routeOwners.set(cidr, owners);
        removals.add(cidr);
      }
      let mine: Few<string>;
      for (const cidr of now) {
        mine = fewAdd(mine, cidr);
        this.routeOwners.set(cidr, fewAdd(this.routeOwners.get(cidr), key));
        removals.add(cidr);
      }
      if (mine !== undefined) this.routesOf.set(key, mine);
      else this.routesOf.delete(key);
    }
    this.dirtyRoutes.clear();
    // An address owned by several endpoints routes to the smallest key's node (deterministic).
    for (const cidr of removals) {
      const owners = this.routeOwners.get(cidr);
      const prev = this.emittedRoutes.get(cidr);
      if (owners === undefined) {
        if (prev !== undefined) {
          this.emittedRoutes.delete(cidr);
          delta.workloadRoutesRemoved.push(cidr);
        }
        continue;
      }
      const owner = [...fewValues(owners)].sort()[0]!;
      const node = this.resources.endpoints.get(owner)!.spec.node!;
      if (prev !== node) {
        this.emittedRoutes.set(cidr, node);
        upserts.set(cidr, node);
      }
    }
    const byCidr = <T>(xs: T[], cidrOf: (x: T) => string): T[] =>
      xs
        .map((x) => ({ x, c: parseCidr4(cidrOf(x))! }))
        .sort((a, b) => compareCidr4(a.c, b.c))
        .map((e) => e.x);
    delta.workloadRoutesUpserted = byCidr([...upserts].map(([cidr, node]) => ({ cidr, node })), (r) => r.cidr);
    delta.workloadRoutesRemoved = byCidr(delta.workloadRoutesRemoved, (c) => c);
  }

  private readonly dirtyRoutes = new Set<string>();
  /** Endpoint key → its route CIDRs; CIDR → the endpoints that have it (usually one each). */
  private readonly routesOf = new Map<string, Few<string>>();
  private readonly routeOwners = new Map<string, Few<string>>();
  private readonly emittedRoutes = new Map<string, string>();

  private computeRouting(): RoutingState {
    const s = this.resources;
    const pools = [...s.pools.values()]
      .map((p) => ({
        name: p.metadata.name,
        cidr: p.spec.cidr,
        ipipMode: p.spec.ipipMode ?? 'Never',
        vxlanMode: p.spec.vxlanMode ?? 'Never',
        natOutgoing: p.spec.natOutgoing ?? false,
        disabled: p.spec.disabled ?? false,
        blockSize: p.spec.blockSize ?? 26,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const nodes = [...s.nodes.values()]
      .map((n) => {
        const o: RoutingState['nodes'][number] = { name: n.metadata.name };
        if (n.spec.bgp?.ipv4Address !== undefined) o.ipv4Address = n.spec.bgp.ipv4Address;
        if (n.spec.bgp?.ipv4IPIPTunnelAddr !== undefined) o.ipv4IPIPTunnelAddr = n.spec.bgp.ipv4IPIPTunnelAddr;
        return o;
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { pools, nodes, workloadRoutes: [] };
  }

  /** The whole current output (call after flush()). */
  snapshot(): CompiledState {
    const prefixes: ClassPrefix[] = [...this.pnodes.values()]
      .filter((n) => n.classId !== 0)
      .sort((a, b) => compareCidr4(a.cidr, b.cidr))
      .map((n) => ({ family: 4, cidr: formatCidr4(n.cidr), classId: n.classId }));
    const classes: GlobalClassInfo[] = [...this.classes.values()]
      .sort((a, b) => a.id - b.id)
      .map((c) => ({ classId: c.id, members: [...c.members] }));
    const tables = [...this.ctxs.values()]
      .filter((c) => c.assembled !== undefined && c.refs.size > 0)
      .map((c) => this.tableOut(c))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const endpoints = [...this.localEps]
      .map(([k, ep]) => this.endpointOut(k, ep))
      .filter((e): e is LocalEndpoint => e !== undefined)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const rules: RuleInfo[] = [...this.rules.values()].map((r) => ({ id: r.id, ...r.info })).sort((a, b) => a.id - b.id);
    const workloadRoutes = [...this.emittedRoutes]
      .map(([cidr, node]) => ({ cidr, node, c: parseCidr4(cidr)! }))
      .sort((a, b) => compareCidr4(a.c, b.c))
      .map(({ cidr, node }) => ({ cidr, node }));
    const routing: RoutingState = { ...this.routing, workloadRoutes };
    return { nodeName: this.nodeName, classes: { prefixes, classes }, tables, endpoints, rules, prefilter: this.prefilter, routing };
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
      for (const c of this.classes.values()) {
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

  /** Counters for metrics and benchmarks. */
  stats(): { items: number; selectorAtoms: number; cidrAtoms: number; namedPortAtoms: number; prefixes: number; classes: number; tables: number; localEndpoints: number } {
    return {
      items: this.items.size,
      selectorAtoms: this.selAtoms.size,
      cidrAtoms: this.cidrAtoms.size,
      namedPortAtoms: this.npAtoms.size,
      prefixes: [...this.pnodes.values()].filter((n) => n.classId !== 0).length,
      classes: this.classes.size,
      tables: this.ctxs.size,
      localEndpoints: this.localEps.size,
    };
  }

  /** Cumulative work counters (tests, benchmarks): tables built from a predecessor's class → rows map. */
  counters(): { tablesFromPredecessor: number } {
    return { tablesFromPredecessor: this.tablesFromPredecessor };
  }
}
