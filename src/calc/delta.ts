/**
 * Delta — calc graph node at the end of a flush (Felix's event sequencer): what the dataplane
 * was last told, and the difference to the current state.
 *
 *   ClassIndex (added / removed classes, changed prefixes) ──emitClasses──┐
 *   TableContexts (assembled tables, Ctx.proj) ──emitTables──────────────────┤
 *   EndpointPolicies (touched / removed endpoints) ──emitEndpoints────────┴──> CalcDelta
 *   RuleIds (rule ids of cells) — PrefilterCalc, RuleIds and RouteCalculator emit their own parts
 *
 * Contract: emitting after each flush, the deltas applied in order to an empty state give the
 * snapshot (test/calc/03-replay). Lists in a delta are sorted (by id, key or CIDR), so the delta
 * depends only on the previous and current states, not on the order updates arrived in. Each
 * emitted entry (prefix → class, class, table id → context, context → table id) is removed when
 * its source goes.
 */
import type { ClassIndex } from './classes';
import { HEP_SLOTS, type EndpointPolicies, type LocalEp, type Slot } from './endpoint-policies';
import { HEP_ITEM } from './label-index';
import { compareCidr4, formatCidr4, formatCidr6, isCidr6, tryParseCidrOrIp4, type AnyCidr, type Cidr4, type Cidr6 } from '../primitives';
import type { RuleIds } from './rule-ids';
import type { ResourceState } from './store';
import type { AssembledTable } from './table';
import type { Ctx, TableContexts } from './table-contexts';
import type { CalcDelta, ClassPrefix, GlobalClassInfo, HostSlot, LocalEndpoint, LocalHostEndpoint, VerdictTable } from './types';

/** An empty delta (field order is part of the output: digests hash its JSON). */
export function emptyDelta(): CalcDelta {
  return {
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
}

function classPrefix(c: AnyCidr, classId: number): ClassPrefix {
  return isCidr6(c) ? { family: 6, cidr: formatCidr6(c), classId } : { family: 4, cidr: formatCidr4(c), classId };
}

export class Delta {
  /** Prefix node key (cidr4Key) → class id last emitted for it. */
  private readonly prefixes = new Map<string, number>();
  private readonly classes = new Set<number>();
  /** Table id → definition key of the context last emitted with it. */
  private readonly tables = new Map<string, string>();
  /** Definition key → the table id last emitted for its endpoints. */
  private readonly tableOfCtx = new Map<string, string>();

  constructor(
    private readonly resources: ResourceState,
    private readonly classIndex: ClassIndex,
    private readonly tableCtxs: TableContexts,
    private readonly endpoints: EndpointPolicies,
    private readonly ruleIds: RuleIds,
  ) {}

  /**
   * Classes and prefixes of the delta. `quiet`: what was emitted is recorded as usual but the
   * delta's class and prefix lists are left empty (the caller takes a snapshot instead).
   */
  emitClasses(delta: CalcDelta, addedClasses: Set<number>, removedClasses: Set<number>, changedPrefixes: Set<string>, quiet = false): void {
    for (const id of [...removedClasses].sort((a, b) => a - b)) {
      if (this.classes.delete(id) && !quiet) delta.classesRemoved.push(id);
    }
    if (quiet) {
      for (const id of addedClasses) this.classes.add(id);
      for (const nk of changedPrefixes) {
        const node = this.classIndex.pnodes.get(nk);
        if (node === undefined || node.classId === 0) this.prefixes.delete(nk);
        else this.prefixes.set(nk, node.classId);
      }
      return;
    }
    for (const id of [...addedClasses].sort((a, b) => a - b)) {
      const c = this.classIndex.classes.get(id)!;
      this.classes.add(id);
      delta.classesAdded.push({ classId: id, members: [...c.members] });
    }
    for (const nk of [...changedPrefixes].sort()) {
      const node = this.classIndex.pnodes.get(nk);
      const prev = this.prefixes.get(nk);
      if (node === undefined || node.classId === 0) {
        if (prev !== undefined) {
          this.prefixes.delete(nk);
          const slash = nk.indexOf('/');
          if (nk.startsWith('6:')) {
            delta.prefixesRemoved.push({ family: 6, cidr: formatCidr6({ addr6: BigInt(`0x${nk.slice(2, slash)}`), len: Number(nk.slice(slash + 1)) }) });
          } else {
            delta.prefixesRemoved.push({ family: 4, cidr: formatCidr4({ addr: Number(nk.slice(0, slash)), len: Number(nk.slice(slash + 1)) }) });
          }
        }
      } else if (prev !== node.classId) {
        this.prefixes.set(nk, node.classId);
        delta.prefixesUpserted.push(classPrefix(node.cidr, node.classId));
      }
    }
  }

  /**
   * Tables added/removed and projection changes; returns the live tables by id. `quiet`: tables
   * are recorded as emitted, but neither they nor projection changes are put into the delta.
   */
  emitTables(delta: CalcDelta, quiet = false): Map<string, Ctx> {
    const liveTables = new Map<string, Ctx>();
    for (const ctx of this.tableCtxs.ctxs.values()) if (ctx.assembled) liveTables.set(ctx.assembled.id, ctx);
    for (const [id] of this.tables) {
      if (!liveTables.has(id)) {
        this.tables.delete(id);
        delta.tablesRemoved.push(id);
      }
    }
    // Only the tables new to the output or with projection changes are emitted: those sorted by
    // id (not every live table each flush).
    const pending: [string, Ctx][] = [];
    for (const e of liveTables) if (!this.tables.has(e[0]) || (e[1].proj !== undefined && e[1].proj.size > 0)) pending.push(e);
    for (const [id, ctx] of pending.sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (!this.tables.has(id)) {
        this.tables.set(id, ctx.def.key);
        if (!quiet) delta.tablesAdded.push(this.tableOut(ctx));
        continue;
      }
      if (quiet) continue;
      if (ctx.proj === undefined || ctx.proj.size === 0) continue;
      // The log's net changes, sorted by class id (typed arrays: no comparator calls).
      const { addIds, addLcs, delIds } = ctx.proj.resolve();
      if (addIds.length > 0) {
        const entries: { globalClass: number; localClass: number }[] = new Array(addIds.length);
        for (let i = 0; i < addIds.length; i++) entries[i] = { globalClass: addIds[i]!, localClass: addLcs[i]! };
        delta.projectionAdded.push({ tableId: id, entries });
      }
      if (delIds.length > 0) delta.projectionRemoved.push({ tableId: id, globalClasses: Array.from(delIds) });
    }
    delta.tablesRemoved.sort();
    return liveTables;
  }

  /** Endpoints whose tables or fields changed, and those removed. */
  emitEndpoints(delta: CalcDelta, liveTables: Map<string, Ctx>): void {
    const touchedEps = this.endpoints.takeTouched();
    for (const [id, ctx] of liveTables) {
      if (this.tableOfCtx.get(ctx.def.key) === id) continue;
      this.tableOfCtx.set(ctx.def.key, id);
      for (const ref of ctx.refs) touchedEps.add(ref.slice(0, ref.lastIndexOf('|')));
    }
    for (const k of [...this.tableOfCtx.keys()]) if (!this.tableCtxs.has(k)) this.tableOfCtx.delete(k);
    for (const key of [...touchedEps].sort()) {
      const ep = this.endpoints.localEps.get(key);
      if (ep === undefined) continue;
      const out = this.endpointOut(key, ep);
      if (out === undefined) continue;
      if (ep.out === undefined || JSON.stringify(ep.out) !== JSON.stringify(out)) {
        ep.out = out;
        delta.endpointsUpserted.push(out);
      }
    }
    for (const key of this.endpoints.takeRemoved()) delta.endpointsRemoved.push(key);
  }

  // ---------------------------------------------------------------- the whole output

  prefixesSnapshot(): ClassPrefix[] {
    const nodes = [...this.classIndex.pnodes.values()].filter((n) => n.classId !== 0);
    const v4 = nodes.filter((n) => !isCidr6(n.cidr)).sort((a, b) => compareCidr4(a.cidr as Cidr4, b.cidr as Cidr4));
    const v6 = nodes.filter((n) => isCidr6(n.cidr)).sort((a, b) => {
      const x = a.cidr as Cidr6, y = b.cidr as Cidr6;
      return x.addr6 < y.addr6 ? -1 : x.addr6 > y.addr6 ? 1 : x.len - y.len;
    });
    return [...v4, ...v6].map((n) => classPrefix(n.cidr, n.classId));
  }

  classesSnapshot(): GlobalClassInfo[] {
    return [...this.classIndex.classes.values()]
      .sort((a, b) => a.id - b.id)
      .map((c) => ({ classId: c.id, members: [...c.members] }));
  }

  tablesSnapshot(): VerdictTable[] {
    return [...this.tableCtxs.ctxs.values()]
      .filter((c) => c.assembled !== undefined && c.refs.size > 0)
      .map((c) => this.tableOut(c))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  endpointsSnapshot(): LocalEndpoint[] {
    return [...this.endpoints.localEps]
      .map(([k, ep]) => this.endpointOut(k, ep))
      .filter((e): e is LocalEndpoint => e !== undefined)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private tableOut(ctx: Ctx): VerdictTable {
    const a = ctx.assembled!;
    const projection = this.tableCtxs.projectionEntries(ctx);
    return {
      id: a.id,
      direction: ctx.def.direction,
      localClassCount: a.localClassCount,
      projection,
      protocols: [...a.protocols],
      srcPortClasses: a.srcPortClasses,
      cells: this.cellsOut(a),
      ...(ctx.passThrough !== undefined ? { passThroughRule: this.ruleIds.id(ctx.passThrough) } : {}),
    };
  }

  /**
   * The cells as output objects, each built as one literal from the columns (field order as
   * VerdictCell's: it is part of the output), a rule's id looked up once per rule key.
   */
  private cellsOut(a: AssembledTable): VerdictTable['cells'] {
    const c = a.cells;
    const out: VerdictTable['cells'] = new Array<VerdictTable['cells'][number]>(c.count);
    const ids = new Map<string, number>();
    const idOf = (key: string): number => {
      let id = ids.get(key);
      if (id === undefined) ids.set(key, (id = this.ruleIds.id(key)));
      return id;
    };
    for (let i = 0; i < c.count; i++) {
      const logs = c.logs[i]!;
      const logRuleIds: number[] = [];
      for (let k = 0; k < logs.length; k++) logRuleIds.push(idOf(logs[k]!));
      out[i] = {
        localClass: c.localClass[i]!,
        protocol: c.protocol[i]!,
        srcPortClass: c.srcPortClass[i]!,
        portMin: c.portMin[i]!,
        portMax: c.portMax[i]!,
        action: c.allow[i] === 1 ? 'allow' : 'deny',
        ruleId: idOf(c.rule[i]!),
        logRuleIds,
      };
    }
    return out;
  }

  private endpointOut(key: string, ep: LocalEp): LocalEndpoint | undefined {
    const tableOf = (slot: Slot): string | undefined => {
      const def = ep.defs[slot];
      return def !== undefined ? this.tableCtxs.assembledId(def) : undefined;
    };
    const ing = tableOf('ingress');
    const eg = tableOf('egress');
    if (ep.host) {
      const hep = this.resources.hostEndpoints.get(key.slice(HEP_ITEM.length));
      if (hep === undefined || ing === undefined || eg === undefined) return undefined;
      const tables: Partial<Record<HostSlot, string>> = {};
      for (const { slot } of HEP_SLOTS) {
        if (slot === 'ingress' || slot === 'egress' || ep.defs[slot] === undefined) continue;
        const id = tableOf(slot);
        if (id === undefined) return undefined;
        tables[slot] = id;
      }
      const local: NonNullable<LocalHostEndpoint['local']> = {};
      for (const k of Object.keys(ep.defs).sort()) {
        const at = k.indexOf('@');
        if (at < 0) continue;
        const slot = k.slice(0, at) as Slot;
        const id = this.tableCtxs.assembledId(ep.defs[k]!);
        const root = tableOf(slot);
        if (id === undefined || root === undefined) return undefined;
        (local[slot] ??= [{ cidr: '0.0.0.0/0', table: root }]).push({ cidr: k.slice(at + 1), table: id });
      }
      const out: LocalEndpoint = {
        key, namespace: '', name: hep.metadata.name, ipNetworks: [], tables: { ingress: ing, egress: eg },
        host: { expectedIPs: [...(hep.spec.expectedIPs ?? [])], tables, ...(Object.keys(local).length > 0 ? { local } : {}) },
      };
      if (hep.spec.interfaceName !== undefined) out.host!.interfaceName = hep.spec.interfaceName;
      return out;
    }
    const wep = this.resources.endpoints.get(key);
    if (wep === undefined || ing === undefined || eg === undefined) return undefined;
    const out: LocalEndpoint = {
      key,
      namespace: wep.metadata.namespace ?? 'default',
      name: wep.metadata.name,
      ipNetworks: (wep.spec.ipNetworks ?? []).map((n) => {
        const c = tryParseCidrOrIp4(n);
        return c !== undefined ? formatCidr4(c) : n;
      }),
      tables: { ingress: ing, egress: eg },
    };
    if (wep.spec.interfaceName !== undefined) out.interfaceName = wep.spec.interfaceName;
    if (wep.spec.mac !== undefined) out.mac = wep.spec.mac;
    return out;
  }
}
