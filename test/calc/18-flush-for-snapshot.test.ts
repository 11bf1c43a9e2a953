/**
 * flushForSnapshot() (the agent's reconcile: a flush whose delta is discarded, then snapshot())
 * leaves the graph exactly as flush() does: two graphs fed the same changes, one flushing with
 * flushForSnapshot() at random points, give the same snapshot after every step and the same
 * delta at every step where both flush().
 *
 *   TORTIE_CALC_SEED=<n>  base seed (default 20261121)
 */
import t from 'tap';
import { CalcGraph, resourceKey } from '../../src/calc';
import type { Resource } from '../../src/model';
import { Gen, rng, rule, scenario, selector } from '../../src/testbed/fuzz/random';

const SEED = Number(process.env.TORTIE_CALC_SEED ?? 20261121);
const SCENARIOS = 40;
const STEPS = 12;

/** Another version of a resource: endpoints move address or labels, policies change rules. */
function variant(gen: Gen, r: Resource): Resource {
  const c = structuredClone(r);
  if (c.kind === 'WorkloadEndpoint') {
    c.metadata.labels = { app: gen.pick(['a', 'b', 'c']), role: gen.pick(['a', 'b']) };
    if (gen.chance(0.4)) c.spec.ipNetworks = [`192.168.7.${gen.int(256)}/32`];
  } else if (c.kind === 'GlobalNetworkPolicy' || c.kind === 'NetworkPolicy') {
    c.spec.selector = selector(gen);
    c.spec.ingress = [rule(gen), rule(gen)];
  }
  return c;
}

t.test('flushForSnapshot leaves the same state and emitted record as flush', async (t) => {
  let quietFlushes = 0;
  let comparedDeltas = 0;
  for (let s = 0; s < SCENARIOS; s++) {
    const gen = new Gen(rng((SEED ^ Math.imul(s + 11, 0x9e3779b1)) >>> 0));
    const sc = scenario(gen);
    const a = new CalcGraph({ nodeName: 'node1' });
    const b = new CalcGraph({ nodeName: 'node1' });
    const live = [...sc.resources];
    for (const r of live) {
      a.onUpdate(r);
      b.onUpdate(r);
    }
    for (let step = 0; step < STEPS; step++) {
      const da = a.flush();
      if (step === 0 || gen.chance(0.4)) {
        b.flushForSnapshot();
        quietFlushes++;
      } else {
        const db = b.flush();
        comparedDeltas++;
        if (JSON.stringify(db) !== JSON.stringify(da)) {
          t.fail(`scenario ${s} step ${step}: deltas differ after a flushForSnapshot`);
          t.same(db, da);
        }
      }
      if (JSON.stringify(b.snapshot()) !== JSON.stringify(a.snapshot())) t.fail(`scenario ${s} step ${step}: snapshots differ`);
      // Next step's changes: a new version, a delete or a re-add of a few resources.
      for (let k = 1 + gen.int(3); k > 0; k--) {
        const i = gen.int(live.length);
        const r = live[i]!;
        if (gen.chance(0.2)) {
          a.onDelete(r.kind, resourceKey(r));
          b.onDelete(r.kind, resourceKey(r));
        } else {
          const v = variant(gen, r);
          live[i] = v;
          a.onUpdate(v);
          b.onUpdate(v);
        }
      }
    }
  }
  t.ok(quietFlushes >= SCENARIOS, `${quietFlushes} quiet flushes`);
  t.ok(comparedDeltas > SCENARIOS * 3, `${comparedDeltas} deltas compared after quiet flushes`);
});

t.test('flushForSnapshot builds no delta objects but records what it would have emitted', async (t) => {
  const gen = new Gen(rng(SEED));
  const sc = scenario(gen);
  const g = new CalcGraph({ nodeName: 'node1' });
  for (const r of sc.resources) g.onUpdate(r);
  g.flushForSnapshot();
  // Nothing changed since: a flush now is empty of tables, classes and prefixes.
  const d = g.flush();
  t.same([d.tablesAdded.length, d.classesAdded.length, d.prefixesUpserted.length, d.endpointsUpserted.length, d.workloadRoutesUpserted.length], [0, 0, 0, 0, 0]);
  t.ok(g.snapshot().tables.length > 0 || sc.locals.length === 0, 'the snapshot still has the tables');
});

t.test('a quiet flush builds no remote workload route list, but the snapshot and the next delta have the routes', async (t) => {
  const ep = (name: string, node: string, ip: string): Resource => ({
    apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name, namespace: 'default', labels: { app: 'a' } },
    spec: { node, orchestrator: 'k8s', pod: name, endpoint: 'eth0', interfaceName: `cali${name}`, ipNetworks: [`${ip}/32`] },
  } as Resource);
  const g = new CalcGraph({ nodeName: 'node1' });
  g.onUpdate(ep('r1', 'node2', '192.168.2.1'));
  g.onUpdate(ep('r2', 'node3', '192.168.3.1'));
  g.onUpdate(ep('l1', 'node1', '192.168.1.1'));
  const d0 = (g as unknown as { flushInto(quiet: boolean): { workloadRoutesUpserted: unknown[] } }).flushInto(true);
  t.same(d0.workloadRoutesUpserted, [], 'no route list built by the quiet flush');
  t.same(g.snapshot().routing.workloadRoutes, [{ cidr: '192.168.2.1/32', node: 'node2' }, { cidr: '192.168.3.1/32', node: 'node3' }], 'the snapshot has every remote route');
  t.same(g.flush().workloadRoutesUpserted, [], 'nothing left over for the next flush');
  g.onUpdate(ep('r2', 'node4', '192.168.3.1'));
  t.same(g.flush().workloadRoutesUpserted, [{ cidr: '192.168.3.1/32', node: 'node4' }], 'a later move is a delta against what the quiet flush recorded');
});
