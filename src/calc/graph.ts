/**
 * CalcGraph: the incremental policy compiler for one node — a facade over the calc graph's nodes
 * (one per file; each file's header states its contract), wired here the way Felix's calc graph
 * is: updates fan out by kind to the nodes that read them, the nodes reference each other
 * directly, and flush() runs them in a fixed order.
 *
 *   onUpdate / onDelete ──> ResourceState (store.ts) + marks by kind (markFor: the dispatcher)
 *   ┌────────────────────┬───────────────────────┬─────────────────────┬──────────────────┐
 *   WorkloadEndpoint,    NetworkPolicy,          Tier, Node,           IPPool, Node,
 *   (Global)NetworkSet,  GlobalNetworkPolicy,    doNotTrack / preDNAT  WorkloadEndpoint
 *   HostEndpoint,        Tier                    policies
 *   Profile, Namespace
 *   ▼                    ▼                       ▼                     ▼
 *   1 LabelIndex ──────> 2 EndpointPolicies      PrefilterCalc         RouteCalculator
 *   │  ▲   local          │ bind(endpoint|dir,    │ ref                 (routing: apart from
 *   │  │   endpoints      ▼   definition)         ▼                      the policy compiler)
 *   │  └─ selectors ─ Atoms <── TableContexts ──ref──> RuleIds
 *   │                  │ CIDRs      ▲ 4 propagate(classes added / removed)
 *   ▼                  ▼            │
 *   3 ClassIndex: prefix nodes → signatures → global classes
 *
 *   5 Delta: classes, prefixes · prefilter · rules · tables, projections · endpoints · routes ──> CalcDelta
 *   (numbers: the order of flush(); snapshot() reads the same nodes)
 *
 *   label-index.ts       LabelIndex       items (endpoints, network sets), label index, selector memberships
 *   atoms.ts             Atoms            reference-counted selector / named-port / CIDR atoms
 *   classes.ts           ClassIndex       prefix nodes → signatures → global classes; per-class hashing
 *   endpoint-policies.ts EndpointPolicies policies per local endpoint → table definitions
 *   table-contexts.ts    TableContexts    one context per definition: class → rows map, assembled table
 *   rule-ids.ts          RuleIds          rule registry and ids
 *   prefilter.ts         PrefilterCalc    doNotTrack deny list
 *   routes.ts            RouteCalculator  pools, nodes, remote workload routes (not policy: apart)
 *   delta.ts             Delta            what was emitted; the delta and the snapshot
 *
 * Contract: `onUpdate(resource)` / `onDelete(kind, key)` accept events in any order, including
 * references to resources not yet seen (a missing profile contributes nothing, a missing tier is
 * ordered last with defaultAction Deny); they only mark state dirty. `flush()` brings the output
 * up to date and returns what changed; `snapshot()` returns the whole current output. Output is
 * a function of the current resources only (except 32-bit id collisions, see types.ts). No I/O.
 * Keys: `namespace/name` for WorkloadEndpoint and NetworkPolicy, `name` for everything else.
 *
 * Every index add has one matching remove: atoms are reference-counted by table contexts,
 * contexts by (endpoint, direction), classes by prefix nodes, rules by contexts and the prefilter.
 */
import type { Logger } from 'pino';
import type { Resource, ResourceKind } from '../model';
import { Atoms } from './atoms';
import { ClassIndex } from './classes';
import { Delta, emptyDelta } from './delta';
import { EndpointPolicies } from './endpoint-policies';
import { LabelIndex } from './label-index';
import { PrefilterCalc } from './prefilter';
import { RouteCalculator } from './routes';
import { RuleIds } from './rule-ids';
import { policyKey, resourceKey, ResourceState } from './store';
import { TableContexts } from './table-contexts';
import type { CalcDelta, CompiledState } from './types';

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

export class CalcGraph {
  readonly resources = new ResourceState();
  private readonly nodeName: string;
  private readonly log: Logger | undefined;

  private readonly labels: LabelIndex;
  private readonly classIndex: ClassIndex;
  private readonly atoms: Atoms;
  private readonly endpoints: EndpointPolicies;
  private readonly ruleIds = new RuleIds();
  private readonly tables: TableContexts;
  private readonly prefilter: PrefilterCalc;
  private readonly out: Delta;
  /** Routing is its own node: it shares the resources and the delta, nothing else. */
  readonly routes: RouteCalculator;

  constructor(opts: CalcGraphOptions) {
    this.nodeName = opts.nodeName;
    this.log = opts.logger;
    const r = this.resources;
    this.labels = new LabelIndex(r, this.nodeName);
    this.classIndex = new ClassIndex(this.labels);
    this.atoms = new Atoms(this.labels, this.classIndex);
    this.endpoints = new EndpointPolicies(r, this.labels);
    this.tables = new TableContexts(this.classIndex, this.atoms, this.ruleIds, opts.partMemoSlack ?? 1024);
    this.labels.classes = this.classIndex;
    this.labels.endpoints = this.endpoints;
    this.endpoints.tables = this.tables;
    this.endpoints.log = this.log;
    this.prefilter = new PrefilterCalc(r, this.nodeName, this.ruleIds);
    this.out = new Delta(r, this.classIndex, this.tables, this.endpoints, this.ruleIds);
    this.routes = new RouteCalculator(r, this.nodeName);
  }

  /** The figures behind the agent's felix_active_local_* and felix_cluster_* metrics; O(1). */
  activityStats(): { localEndpoints: number; activeLocalPolicies: number; activeSelectors: number; hosts: number; workloadEndpoints: number; policies: number; profiles: number } {
    const r = this.resources;
    return {
      localEndpoints: this.endpoints.localEps.size, activeLocalPolicies: this.endpoints.activePolicyCount, activeSelectors: this.atoms.selectorCount,
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
      case 'HostEndpoint':
        return s.hostEndpoints.get(key);
    }
  }

  /** The dispatcher: marks, in the nodes that read it, what a resource (old or new version) influences. */
  private markFor(kind: ResourceKind, key: string, r: Resource | undefined): void {
    switch (kind) {
      case 'WorkloadEndpoint':
        this.labels.markItem(key);
        this.routes.mark(kind, key);
        break;
      case 'Profile':
        this.labels.markProfile(key);
        break;
      case 'Namespace':
        this.labels.markNamespace(key);
        break;
      case 'Tier':
        this.endpoints.markAllLocal();
        this.prefilter.markDirty();
        break;
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy':
        this.endpoints.markPolicy(policyKey(kind, key));
        if (r !== undefined && r.kind === 'GlobalNetworkPolicy' && (r.spec.doNotTrack || r.spec.preDNAT || r.spec.applyOnForward)) {
          this.prefilter.markDirty();
        }
        break;
      case 'Node':
        this.prefilter.markDirty();
        this.routes.mark(kind, key);
        break;
      case 'IPPool':
        this.routes.mark(kind, key);
        break;
      case 'GlobalNetworkSet':
      case 'NetworkSet':
      case 'HostEndpoint':
        this.labels.markItem(LabelIndex.itemKey(kind, key)!);
        break;
    }
  }

  // =========================================================================== flush

  flush(): CalcDelta {
    return this.flushInto(false);
  }

  /**
   * A flush whose delta the caller would discard because it takes a snapshot next (the agent's
   * reconcile): the graph's state, and what it records as emitted, are exactly as after flush(),
   * but the tables, classes, prefixes and projection changes are not built as output objects (at
   * 100,000 endpoints that is the whole compiled state a second time).
   */
  flushForSnapshot(): void {
    this.flushInto(true);
  }

  private flushInto(quiet: boolean): CalcDelta {
    const delta = emptyDelta();
    const started = process.hrtime.bigint();

    // 1. items
    this.labels.recompute();

    // 2. policies → local endpoints; local endpoints → definitions / contexts
    this.tables.beginFlush();
    const newCtxs = new Set<string>();
    this.endpoints.recompute(newCtxs);
    this.tables.sweep();

    // 3. prefix nodes → classes
    const addedClasses = new Set<number>();
    const removedClasses = new Set<number>();
    const changedPrefixes = new Set<string>();
    this.classIndex.update(addedClasses, removedClasses, changedPrefixes);

    // 4. contexts hear about classes
    this.tables.propagate(newCtxs, addedClasses, removedClasses);

    // 5. delta
    this.out.emitClasses(delta, addedClasses, removedClasses, changedPrefixes, quiet);
    this.prefilter.emit(delta);
    this.ruleIds.emit(delta);
    const liveTables = this.out.emitTables(delta, quiet);
    this.out.emitEndpoints(delta, liveTables);
    this.routes.emit(delta, quiet);
    this.tables.boundPartMemos();
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

  /** The whole current output (call after flush()). */
  snapshot(): CompiledState {
    const prefixes = this.out.prefixesSnapshot();
    const classes = this.out.classesSnapshot();
    const tables = this.out.tablesSnapshot();
    const endpoints = this.out.endpointsSnapshot();
    const rules = this.ruleIds.snapshot();
    const routing = this.routes.snapshot();
    return { nodeName: this.nodeName, classes: { prefixes, classes }, tables, endpoints, rules, prefilter: this.prefilter.state, routing };
  }

  /**
   * Consistency check for tests (cost: every live table × every class, folds without memos): each
   * table's class → rows map must hold exactly the classes with one of the table's atoms, each
   * with the rows key a fresh fold of its restricted signature gives. Returns the problems found.
   */
  verifyTables(): string[] {
    return this.tables.verifyTables();
  }

  /** Counters for metrics and benchmarks. */
  stats(): { items: number; selectorAtoms: number; cidrAtoms: number; namedPortAtoms: number; prefixes: number; classes: number; tables: number; localEndpoints: number } {
    return {
      items: this.labels.items.size,
      selectorAtoms: this.atoms.selectorCount,
      cidrAtoms: this.atoms.cidrCount,
      namedPortAtoms: this.atoms.namedPortCount,
      prefixes: [...this.classIndex.pnodes.values()].filter((n) => n.classId !== 0).length,
      classes: this.classIndex.classes.size,
      tables: this.tables.ctxs.size,
      localEndpoints: this.endpoints.localEps.size,
    };
  }

  /**
   * Cumulative work counters (tests, benchmarks): tables built from a predecessor's class → rows
   * map, and of those the ones whose predecessor had other policies (a relabelled endpoint);
   * in those, classes that kept the old rows though an atom of theirs left the table, and classes
   * that joined the table with its default rows without a fold (TableContexts.predClassesKept /
   * predClassesDefault).
   */
  counters(): { tablesFromPredecessor: number; tablesFromPredecessorIndel: number; predClassesKept: number; predClassesDefault: number } {
    const t = this.tables;
    return { tablesFromPredecessor: t.tablesFromPredecessor, tablesFromPredecessorIndel: t.tablesFromPredecessorIndel, predClassesKept: t.predClassesKept, predClassesDefault: t.predClassesDefault };
  }
}
