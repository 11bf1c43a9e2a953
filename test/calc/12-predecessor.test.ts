/**
 * Tables rebuilt from a predecessor (table-contexts.ts classRowsFromPredecessor): an endpoint's new table
 * that differs from its old one in a few parts copies the old class → rows map and recomputes
 * only the classes the changed parts treat differently. Random scenarios get one-rule edits of
 * their policies (same shape, so the shortcut applies), some together with endpoint label/address
 * changes in the same flush (classes appearing and disappearing meanwhile); after every flush
 * the snapshot must equal a fresh graph's for the same resources, every table's class → rows
 * map must be what a fresh fold gives (CalcGraph.verifyTables: also the classes the output does
 * not show, those behaving as the default class), and the deltas applied to the previous
 * snapshot's tables must give the current tables and projections.
 *
 *   TORTIE_CALC_SEED=<n>  base seed (default 20261121)
 */
import t from 'tap';
import { CalcGraph, projectionEntries, resourceKey, type CalcDelta, type CompiledState } from '../../src/calc';
import type { GlobalNetworkPolicy, NetworkPolicy, Resource, Rule, WorkloadEndpoint } from '../../src/model';
import { Gen, rng, rule, scenario, selector } from '../../src/testbed/fuzz/random';

const SEED = Number(process.env.TORTIE_CALC_SEED ?? 20261121);
const SCENARIOS = 120;
const STEPS = 10;

type Tables = Map<string, { projection: Map<number, number>; rest: string }>;

function tablesOf(s: CompiledState): Tables {
  const m: Tables = new Map();
  for (const tb of s.tables) {
    const { projection, ...rest } = tb;
    m.set(tb.id, { projection: new Map(projectionEntries(projection).map((e) => [e.globalClass, e.localClass])), rest: JSON.stringify(rest) });
  }
  return m;
}

/** The previous tables with a delta's table and projection changes applied. */
function applyTables(prev: Tables, d: CalcDelta): Tables {
  const m: Tables = new Map([...prev].map(([id, tb]) => [id, { projection: new Map(tb.projection), rest: tb.rest }]));
  for (const id of d.tablesRemoved) m.delete(id);
  for (const tb of d.tablesAdded) {
    const { projection, ...rest } = tb;
    m.set(tb.id, { projection: new Map(projectionEntries(projection).map((e) => [e.globalClass, e.localClass])), rest: JSON.stringify(rest) });
  }
  for (const pr of d.projectionRemoved) for (const c of pr.globalClasses) m.get(pr.tableId)?.projection.delete(c);
  for (const pa of d.projectionAdded) for (const e of pa.entries) m.get(pa.tableId)?.projection.set(e.globalClass, e.localClass);
  return m;
}

function sameTables(a: Tables, b: Tables): string | undefined {
  if (a.size !== b.size) return `${a.size} tables vs ${b.size}`;
  for (const [id, x] of a) {
    const y = b.get(id);
    if (y === undefined) return `table ${id} missing`;
    if (x.rest !== y.rest) return `table ${id} differs`;
    const px = JSON.stringify([...x.projection].sort((p, q) => p[0] - q[0]));
    const py = JSON.stringify([...y.projection].sort((p, q) => p[0] - q[0]));
    if (px !== py) return `table ${id} projection differs`;
  }
  return undefined;
}

/** A random rule, mostly limited by a remote selector or nets (it then acts on some classes only). */
function remoteLimited(g: Gen, dir: 'ingress' | 'egress'): Rule {
  const r = rule(g);
  const peer = dir === 'ingress' ? 'source' : 'destination';
  if (g.chance(0.5)) r[peer] = { ...r[peer], selector: selector(g) };
  else if (g.chance(0.7)) r[peer] = { ...r[peer], nets: [g.pick(['192.168.1.0/28', '192.168.0.0/16', '192.168.2.0/24', '192.168.3.4/32'])] };
  return r;
}

function fresh(resources: Iterable<Resource>): CompiledState {
  const g = new CalcGraph({ nodeName: 'node1' });
  for (const r of resources) g.onUpdate(r);
  g.flush();
  return g.snapshot();
}

/**
 * How a step changes the resources: policy edits (the default), local endpoints relabelled, or
 * swaps: 40 more remote endpoints (more classes, so that the changed parts' classes are a small
 * share of a table's), every rule limited by an equality selector of its own (`k == "v"` over 4
 * keys × 6 values), and edits that replace one rule by another such rule: the old rule's atom
 * often leaves the table, and its classes either leave, stay with the old rows (the parts agree
 * on them) or are refolded; the new rule's classes join, with the default rows when the parts
 * agree on them.
 */
type Mode = 'edits' | 'relabels' | 'swaps';

/** A rule limited by one equality selector on the remote side (swaps). */
function swapRule(g: Gen, dir: 'ingress' | 'egress'): Rule {
  const r = rule(g);
  const peer = dir === 'ingress' ? 'source' : 'destination';
  r[peer] = { ...r[peer], selector: `${g.pick(['app', 'tier', 'env', 'role'])} == "${g.pick(['a', 'b', 'c', 'd', 'e', 'f'])}"` };
  delete r[peer]!.notSelector;
  delete r[peer]!.nets;
  delete r[peer]!.notNets;
  return r;
}

/** Runs the scenarios; returns the problems, flushes, tables built from a predecessor, and those with parts inserted or removed. */
function run(mode: Mode): { problems: string[]; steps: number; reused: number; indel: number; kept: number; joinedDefault: number } {
  const problems: string[] = [];
  let steps = 0;
  let reused = 0;
  let indel = 0;
  let kept = 0;
  let joinedDefault = 0;
  for (let sc = 0; sc < SCENARIOS && problems.length === 0; sc++) {
    const g0 = new Gen(rng(SEED + 7919 * sc));
    const s = scenario(g0);
    // Policies whose rules are mostly remote-limited, so that edits keep the empty signature's
    // behaviour (else the new table is built in full and this checks nothing new).
    for (const r of s.resources) {
      if (r.kind !== 'GlobalNetworkPolicy' && r.kind !== 'NetworkPolicy') continue;
      for (const dir of ['ingress', 'egress'] as const) {
        r.spec[dir] = (r.spec[dir] ?? []).map(() => (mode === 'swaps' ? swapRule(g0, dir) : remoteLimited(g0, dir)));
        if (mode === 'swaps') {
          while (r.spec[dir]!.length < 3) r.spec[dir]!.push(swapRule(g0, dir));
          // A first rule that decides everything it matches: the later rules do nothing on those
          // classes, so old and new versions of them agree there (all of them, unrestricted).
          const peer = dir === 'ingress' ? 'source' : 'destination';
          r.spec[dir]![0] = { action: g0.pick(['Allow', 'Deny'] as const), ...(g0.chance(0.5) ? { [peer]: { selector: `has(${g0.pick(['app', 'tier'])})` } } : {}) };
        }
      }
    }
    if (mode === 'swaps') {
      const remote = s.resources.find((r): r is WorkloadEndpoint => r.kind === 'WorkloadEndpoint' && r.spec.node !== 'node1');
      for (let i = 0; remote !== undefined && i < 40; i++) {
        const w = structuredClone(remote);
        w.metadata.name = `swap${i}`;
        w.metadata.labels = {};
        for (const k of ['app', 'tier', 'env', 'role']) if (g0.chance(0.7)) w.metadata.labels[k] = g0.pick(['a', 'b', 'c', 'd', 'e', 'f']);
        w.spec.ipNetworks = [`192.168.9.${10 + i}/32`];
        s.resources.push(w);
      }
    }
    const current = new Map<string, Resource>();
    for (const r of s.resources) current.set(`${r.kind}|${resourceKey(r)}`, r);
    const g = new CalcGraph({ nodeName: 'node1' });
    for (const r of s.resources) g.onUpdate(r);
    g.flush();
    let prev = tablesOf(g.snapshot());
    for (let step = 0; step < (mode === 'swaps' ? 2 * STEPS : STEPS); step++) {
      const pols = [...current.values()].filter((r): r is GlobalNetworkPolicy | NetworkPolicy => r.kind === 'GlobalNetworkPolicy' || r.kind === 'NetworkPolicy');
      if (pols.length === 0) break;
      const events: Resource[] = [];
      const edits = mode === 'relabels' ? 0 : g0.chance(0.2) ? 2 : 1;
      if (mode === 'relabels') {
        // Local endpoints get other labels: their policies come and go (tables whose
        // predecessor has parts they lack, or the reverse).
        const locals = [...current.values()].filter((r): r is WorkloadEndpoint => r.kind === 'WorkloadEndpoint' && r.spec.node === 'node1');
        if (locals.length === 0) break;
        for (let e = g0.chance(0.2) ? 2 : 1; e > 0; e--) {
          const w = structuredClone(g0.pick(locals));
          w.metadata.labels = { ...w.metadata.labels, [g0.pick(['app', 'tier', 'env'])]: g0.pick(['a', 'b', 'c']) };
          if (g0.chance(0.1)) w.spec.ipNetworks = [`192.168.${g0.pick([0, 1, 2, 3])}.${1 + g0.int(40)}/32`];
          events.push(w);
        }
      }
      for (let e = 0; e < edits; e++) {
        const p = structuredClone(g0.pick(pols));
        const dir = g0.chance(0.5) ? 'ingress' : 'egress';
        const rules = p.spec[dir] ?? [];
        // Mostly rules limited by a remote selector or nets: they act only on some classes, so
        // the old and new parts agree on the empty signature and the shortcut applies.
        const r = mode === 'swaps' ? swapRule(g0, dir) : remoteLimited(g0, dir);
        if (rules.length === 0 || g0.chance(0.1)) rules.push(r);
        else if (mode === 'swaps' && rules.length > 1) rules[1 + g0.int(rules.length - 1)] = r;
        else rules[g0.int(rules.length)] = r;
        p.spec[dir] = rules;
        if (g0.chance(0.05)) p.spec.selector = selector(g0);
        events.push(p);
      }
      if (mode !== 'relabels' && g0.chance(0.35)) {
        // An endpoint changes labels or address in the same flush: classes come and go.
        const eps = [...current.values()].filter((r): r is WorkloadEndpoint => r.kind === 'WorkloadEndpoint');
        const w = structuredClone(g0.pick(eps));
        if (g0.chance(0.5)) w.metadata.labels = { ...w.metadata.labels, [g0.pick(['app', 'tier', 'env'])]: g0.pick(['a', 'b', 'c']) };
        else w.spec.ipNetworks = [`192.168.${g0.pick([0, 1, 2, 3])}.${1 + g0.int(40)}/32`];
        events.push(w);
      }
      for (const r of events) {
        current.set(`${r.kind}|${resourceKey(r)}`, r);
        g.onUpdate(r);
      }
      const d = g.flush();
      steps++;
      const snap = g.snapshot();
      const want = fresh(current.values());
      if (JSON.stringify(snap) !== JSON.stringify(want)) {
        problems.push(`scenario ${sc} step ${step}: snapshot differs from a fresh graph's`);
        break;
      }
      const inconsistent = g.verifyTables();
      if (inconsistent.length > 0) {
        problems.push(`scenario ${sc} step ${step}: ${inconsistent[0]}`);
        break;
      }
      const now = tablesOf(snap);
      const p = sameTables(applyTables(prev, d), now);
      if (p !== undefined) {
        problems.push(`scenario ${sc} step ${step}: deltas on the previous tables: ${p}`);
        break;
      }
      prev = now;
    }
    reused += g.counters().tablesFromPredecessor;
    indel += g.counters().tablesFromPredecessorIndel;
    kept += g.counters().predClassesKept;
    joinedDefault += g.counters().predClassesDefault;
  }
  return { problems, steps, reused, indel, kept, joinedDefault };
}

t.test('tables built from their predecessor equal tables built afresh', async (t) => {
  const { problems, steps, reused } = run('edits');
  t.same(problems, []);
  t.ok(steps > SCENARIOS * 5, `${steps} edit flushes`);
  // The shortcut must actually have been taken (else this test checks nothing new).
  t.ok(reused > steps / 4, `${reused} tables built from a predecessor in ${steps} flushes`);
});

t.test('a relabelled endpoint\'s tables built from its old ones (policies inserted and removed) equal tables built afresh', async (t) => {
  const { problems, steps, reused, indel } = run('relabels');
  t.same(problems, []);
  t.ok(steps > SCENARIOS * 3, `${steps} relabel flushes`);
  // The shortcut with inserted or removed parts must actually have been taken.
  t.ok(indel >= 20, `${indel} of ${reused} tables from a predecessor had parts inserted or removed, in ${steps} flushes`);
});

t.test('rules swapped for others: classes leaving, staying and joining a table built from its predecessor equal tables built afresh', async (t) => {
  const { problems, steps, reused, kept, joinedDefault } = run('swaps');
  t.same(problems, []);
  t.ok(steps > SCENARIOS * 5, `${steps} swap flushes`);
  // The shortcuts for classes of a rule's atom that left the table, and for classes joining it
  // with the default rows, must actually have been taken.
  t.ok(kept >= 10, `${kept} classes kept the old rows though an atom of theirs left the table (${reused} tables from a predecessor)`);
  t.ok(joinedDefault >= 10, `${joinedDefault} classes joined a table with its default rows`);
});
