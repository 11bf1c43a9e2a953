/**
 * The part memos and their hash-consed functions are caches: a graph that clears them after
 * every flush (partMemoSlack -Infinity) gives exactly the same deltas and snapshots as one that
 * keeps them, over random scenarios replayed with updates, variants and deletions.
 */
import t from 'tap';
import { CalcGraph, resourceKey } from '../../src/calc';
import type { Resource } from '../../src/model';
import { Gen, rng, rule, scenario, selector } from '../../src/testbed/fuzz/random';

const SEED = Number(process.env.TORTIE_CALC_SEED ?? 20261121);

function variant(gen: Gen, r: Resource): Resource {
  const c = structuredClone(r);
  if (c.kind === 'WorkloadEndpoint') {
    c.metadata.labels = { app: gen.pick(['a', 'b', 'c']), role: gen.pick(['a', 'b']) };
    if (gen.chance(0.3)) c.spec.ipNetworks = [`192.168.7.${gen.int(256)}/32`];
  } else if (c.kind === 'GlobalNetworkPolicy' || c.kind === 'NetworkPolicy') {
    c.spec.selector = selector(gen);
    c.spec.ingress = [rule(gen), rule(gen)];
  }
  return c;
}

t.test('clearing the part memos after every flush changes no output', async (t) => {
  let differing = 0;
  let flushes = 0;
  for (let s = 0; s < 150; s++) {
    const gen = new Gen(rng((SEED ^ Math.imul(s + 11, 0x9e3779b1)) >>> 0));
    const sc = scenario(gen);
    const keep = new CalcGraph({ nodeName: 'node1' });
    const clear = new CalcGraph({ nodeName: 'node1', partMemoSlack: -Infinity });
    const both = (f: (g: CalcGraph) => void): void => {
      f(keep);
      f(clear);
    };
    const flush = (): void => {
      flushes++;
      if (JSON.stringify(keep.flush()) !== JSON.stringify(clear.flush())) differing++;
    };
    for (const r of sc.resources) {
      both((g) => g.onUpdate(r));
      if (gen.chance(0.3)) flush();
    }
    flush();
    for (let k = 0; k < 10; k++) {
      const r = gen.pick(sc.resources);
      if (gen.chance(0.15)) both((g) => g.onDelete(r.kind, resourceKey(r)));
      else {
        const v = gen.chance(0.5) ? variant(gen, r) : r;
        both((g) => g.onUpdate(v));
      }
      if (gen.chance(0.6)) flush();
    }
    flush();
    if (JSON.stringify(keep.snapshot()) !== JSON.stringify(clear.snapshot())) differing++;
  }
  t.ok(flushes > 1000, `${flushes} flushes compared`);
  t.equal(differing, 0);
});
