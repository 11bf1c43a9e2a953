/**
 * Output depends only on current state: each random scenario is replayed forward, reversed, one
 * flush per event (split), through intermediate versions of its resources (squashed), and with
 * empty states inserted; every replay must give the identical snapshot. Deltas applied to a
 * mirror must rebuild the same snapshot, and keep the datapath invariants after every flush.
 *
 *   TORTIE_CALC_SEED=<n>  base seed (default 20261121)
 */
import t from 'tap';
import { CalcGraph, evaluate, packProjection, projectionEntries, resourceKey, TableIndex, validateCompiled, type CalcDelta, type CompiledState, type VerdictTable } from '../../src/calc';
import type { Resource } from '../../src/model';
import { Gen, packet, rng, rule, scenario, selector } from '../../src/testbed/fuzz/random';
import { compareCidr4, parseCidr4, tryParseCidrOrIp6 } from '../../src/primitives';

const SEED = Number(process.env.TORTIE_CALC_SEED ?? 20261121);
const SCENARIOS = Number(process.env.TORTIE_CALC_REPLAYS ?? 60);

/** A mirror of the datapath's state built only from deltas. */
class Mirror {
  prefixes = new Map<string, number>();
  classes = new Set<number>();
  tables = new Map<string, VerdictTable>();
  projections = new Map<string, Map<number, number>>();
  endpoints = new Map<string, CompiledState['endpoints'][number]>();
  rules = new Map<number, CompiledState['rules'][number]>();
  routes = new Map<string, string>();
  routing: CompiledState['routing'] | undefined;
  problems: string[] = [];

  apply(d: CalcDelta): void {
    for (const r of d.rulesUpserted) this.rules.set(r.id, r);
    for (const c of d.classesAdded) this.classes.add(c.classId);
    for (const tb of d.tablesAdded) {
      this.tables.set(tb.id, tb);
      this.projections.set(tb.id, new Map(projectionEntries(tb.projection).map((e) => [e.globalClass, e.localClass])));
    }
    for (const pa of d.projectionAdded) {
      const m = this.projections.get(pa.tableId);
      if (m === undefined) this.problems.push(`projection add for unknown table ${pa.tableId}`);
      else for (const e of pa.entries) m.set(e.globalClass, e.localClass);
    }
    for (const p of d.prefixesUpserted) this.prefixes.set(p.cidr, p.classId);
    for (const p of d.prefixesRemoved) this.prefixes.delete(p.cidr);
    for (const e of d.endpointsUpserted) this.endpoints.set(e.key, e);
    for (const k of d.endpointsRemoved) this.endpoints.delete(k);
    for (const pr of d.projectionRemoved) for (const c of pr.globalClasses) this.projections.get(pr.tableId)?.delete(c);
    for (const id of d.tablesRemoved) {
      this.tables.delete(id);
      this.projections.delete(id);
    }
    for (const c of d.classesRemoved) this.classes.delete(c);
    for (const id of d.rulesRemoved) this.rules.delete(id);
    for (const r of d.workloadRoutesUpserted) this.routes.set(r.cidr, r.node);
    for (const c of d.workloadRoutesRemoved) this.routes.delete(c);
    if (d.routingChanged) this.routing = d.routing;
    // invariants the datapath relies on
    for (const [cidr, c] of this.prefixes) if (!this.classes.has(c)) this.problems.push(`prefix ${cidr} → dead class ${c}`);
    for (const e of this.endpoints.values()) {
      for (const id of [e.tables.ingress, e.tables.egress]) if (!this.tables.has(id)) this.problems.push(`endpoint ${e.key} → missing table ${id}`);
    }
    for (const [id, m] of this.projections) {
      const tb = this.tables.get(id)!;
      for (const [g, l] of m) {
        if (!this.classes.has(g)) this.problems.push(`table ${id} projects dead class ${g}`);
        if (l <= 0 || l >= tb.localClassCount) this.problems.push(`table ${id} projects to bad local class ${l}`);
      }
      for (const c of tb.cells) {
        if (!this.rules.has(c.ruleId)) this.problems.push(`table ${id} cell names unknown rule ${c.ruleId}`);
      }
    }
  }

  asState(nodeName: string, snap: CompiledState): CompiledState {
    return {
      nodeName,
      classes: {
        prefixes: snap.classes.prefixes.filter(() => true).length >= 0
          ? [...this.prefixes].map(([cidr, classId]) => ({ family: (cidr.includes(':') ? 6 : 4) as 4 | 6, cidr, classId })).sort((a, b) => cmpCidr(a.cidr, b.cidr))
          : [],
        classes: snap.classes.classes.filter((c) => this.classes.has(c.classId)),
      },
      tables: [...this.tables.values()]
        .map((tb) => ({
          ...tb,
          projection: packProjection([...this.projections.get(tb.id)!].map(([globalClass, localClass]) => ({ globalClass, localClass }))),
        }))
        .sort((a, b) => (a.id < b.id ? -1 : 1)),
      endpoints: [...this.endpoints.values()].sort((a, b) => (a.key < b.key ? -1 : 1)),
      rules: [...this.rules.values()].sort((a, b) => a.id - b.id),
      prefilter: snap.prefilter,
      routing: {
        pools: this.routing?.pools ?? [],
        nodes: this.routing?.nodes ?? [],
        workloadRoutes: [...this.routes].map(([cidr, node]) => ({ cidr, node })).sort((a, b) => cmpCidr(a.cidr, b.cidr)),
      },
    };
  }
}

// IPv4 first (by address, then length), then IPv6 the same way: the snapshot's order.
function cmpCidr(a: string, b: string): number {
  const a6 = a.includes(':');
  const b6 = b.includes(':');
  if (a6 !== b6) return a6 ? 1 : -1;
  if (!a6) return compareCidr4(parseCidr4(a), parseCidr4(b));
  const x = tryParseCidrOrIp6(a)!;
  const y = tryParseCidrOrIp6(b)!;
  return x.addr6 < y.addr6 ? -1 : x.addr6 > y.addr6 ? 1 : x.len - y.len;
}

function del(g: CalcGraph, r: Resource): void {
  g.onDelete(r.kind, resourceKey(r));
}

/** A different version of a resource (labels, IPs, rules or selector changed). */
function variant(gen: Gen, r: Resource): Resource {
  const c = structuredClone(r);
  switch (c.kind) {
    case 'WorkloadEndpoint':
      c.metadata.labels = { app: gen.pick(['a', 'b', 'c']), role: gen.pick(['a', 'b']) };
      if (gen.chance(0.3)) c.spec.ipNetworks = [`192.168.7.${gen.int(256)}/32`];
      if (gen.chance(0.2)) c.spec.node = c.spec.node === 'node1' ? 'node2' : 'node1';
      break;
    case 'GlobalNetworkPolicy':
    case 'NetworkPolicy':
      c.spec.selector = selector(gen);
      c.spec.ingress = [rule(gen), rule(gen)];
      break;
    case 'Profile':
      c.spec.ingress = [rule(gen)];
      c.spec.labelsToApply = { tier: gen.pick(['a', 'b']) };
      break;
    case 'Namespace':
      c.metadata.labels = { env: gen.pick(['prod', 'dev', 'qa']) };
      break;
    case 'Tier':
      c.spec.order = gen.pick([1, 50, 5000]);
      break;
    default:
      break;
  }
  return c;
}

function shuffle<T>(gen: Gen, xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = gen.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

t.test('every replay of a scenario gives the same output; deltas rebuild it', async (t) => {
  let compared = 0;
  for (let s = 0; s < SCENARIOS; s++) {
    const gen = new Gen(rng((SEED ^ Math.imul(s + 7, 0x85ebca6b)) >>> 0));
    const sc = scenario(gen);
    const final = sc.resources;
    const run = (name: string, drive: (g: CalcGraph, flush: () => void) => void): void => {
      const g = new CalcGraph({ nodeName: 'node1' });
      const mirror = new Mirror();
      const flush = (): void => mirror.apply(g.flush());
      drive(g, flush);
      flush();
      const snap = g.snapshot();
      outputs.push([name, JSON.stringify(snap)]);
      const problems = validateCompiled(snap);
      if (problems.length > 0) t.fail(`scenario ${s} ${name}: ${problems.slice(0, 3).join('; ')}`);
      // The incrementally built tables must also agree with the reference evaluator.
      const idx = new TableIndex(snap);
      for (let i = 0; i < 30 && sc.locals.length > 0; i++) {
        const p = packet(gen, sc);
        const want = evaluate(p, g.resources).action;
        const got = idx.lookup(p).action;
        if (got !== want) t.fail(`scenario ${s} ${name}: ${JSON.stringify(p)}: tables ${got}, reference ${want}`);
      }
      const rebuilt = mirror.asState('node1', snap);
      if (JSON.stringify(rebuilt) !== JSON.stringify(snap)) {
        t.fail(`scenario ${s} ${name}: deltas do not rebuild the snapshot`);
        t.same(rebuilt, snap);
      }
      if (mirror.problems.length > 0) t.fail(`scenario ${s} ${name}: invariant broken: ${mirror.problems.slice(0, 3).join('; ')}`);
    };
    const outputs: [string, string][] = [];
    run('forward', (g) => final.forEach((r) => g.onUpdate(r)));
    run('reversed', (g) => [...final].reverse().forEach((r) => g.onUpdate(r)));
    run('split', (g, flush) => shuffle(gen, final).forEach((r) => (g.onUpdate(r), flush())));
    run('squashed', (g, flush) => {
      for (const r of shuffle(gen, final)) {
        for (let i = gen.int(3); i > 0; i--) {
          g.onUpdate(variant(gen, r));
          if (gen.chance(0.5)) flush();
        }
        if (gen.chance(0.2)) {
          g.onUpdate(r);
          flush();
          del(g, r);
          if (gen.chance(0.5)) flush();
        }
        g.onUpdate(r);
      }
    });
    run('empty-inserted', (g, flush) => {
      final.forEach((r) => g.onUpdate(r));
      flush();
      for (const r of shuffle(gen, final)) {
        del(g, r);
        if (gen.chance(0.3)) flush();
      }
      flush();
      const empty = g.snapshot();
      const st = g.stats();
      if (empty.tables.length + empty.endpoints.length + empty.classes.prefixes.length + empty.rules.length !== 0) {
        t.fail(`scenario ${s}: output not empty after deleting everything`);
      }
      if (st.items + st.selectorAtoms + st.cidrAtoms + st.namedPortAtoms + st.classes + st.tables + st.localEndpoints !== 0) {
        t.fail(`scenario ${s}: indexes not empty after deleting everything: ${JSON.stringify(st)}`);
      }
      shuffle(gen, final).forEach((r) => g.onUpdate(r));
      flush();
      // and deleting then re-adding unknown keys is harmless
      g.onDelete('WorkloadEndpoint', 'nope/none');
      g.onDelete('Tier', 'never-seen');
    });
    const [first, ...rest] = outputs;
    for (const [name, out] of rest) {
      compared++;
      if (out !== first![1]) {
        t.fail(`scenario ${s}: ${name} differs from ${first![0]}`);
        t.same(JSON.parse(out), JSON.parse(first![1]));
      }
    }
  }
  t.ok(compared >= SCENARIOS * 4, `${compared} replays compared`);
});
