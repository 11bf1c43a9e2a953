/**
 * The compact containers the calc graph keeps its long-lived indexes in (src/calc/compact.ts),
 * checked against plain Sets on random operation sequences; a table's cells stored column-wise
 * give back every field; and effective labels, built as fast-mode prototype-less objects,
 * still behave as a pure dictionary.
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { fewAdd, fewDelete, fewHas, fewSize, fewValues, type Few } from '../../src/calc/compact';
import { effectiveLabels } from '../../src/calc/semantics';
import { assembleTable, cellAt, toColumns, type KeyedCell, type Rows, type Slab } from '../../src/calc/table';
import { PROTO_OTHER } from '../../src/calc/types';
import { namespace, profile, wep } from '../../src/testbed/fixtures';
import { rng } from '../../src/testbed/fuzz/random';

t.test('Few behaves as a Set under random adds and deletes', async (t) => {
  const rand = rng(20261121);
  let mismatches = 0;
  for (let run = 0; run < 200; run++) {
    let few: Few<string>;
    const model = new Set<string>();
    for (let op = 0; op < 40; op++) {
      const v = `v${Math.floor(rand() * 4)}`;
      if (rand() < 0.55) {
        few = fewAdd(few, v);
        model.add(v);
      } else {
        few = fewDelete(few, v);
        model.delete(v);
      }
      const got = [...fewValues(few)].sort();
      const want = [...model].sort();
      if (fewSize(few) !== model.size || JSON.stringify(got) !== JSON.stringify(want)) mismatches++;
      for (const x of ['v0', 'v1', 'v2', 'v3']) if (fewHas(few, x) !== model.has(x)) mismatches++;
      // The representation is the compact one: nothing for empty, the bare value for one.
      if (model.size === 0 && few !== undefined) mismatches++;
      if (model.size === 1 && typeof few !== 'string') mismatches++;
    }
  }
  t.equal(mismatches, 0);
});

t.test('fewDelete of an absent value leaves the container as it was', async (t) => {
  t.equal(fewDelete('a', 'b'), 'a');
  t.equal(fewDelete(undefined, 'b'), undefined);
  const s = fewAdd(fewAdd('a', 'b'), 'c');
  t.equal(fewSize(fewDelete(s, 'x')), 3);
});

t.test('effective labels have no prototype: keys such as toString or __proto__ are plain data', async (t) => {
  const own = JSON.parse('{"toString":"x","__proto__":"y","app":"a"}') as Record<string, string>;
  const w = wep('ns1/ep1', { labels: own, ip: '192.168.1.1' });
  const labels = effectiveLabels(
    w,
    (n) => (n === 'p1' ? profile('p1', { labelsToApply: { constructor: 'c' } }) : undefined),
    (n) => (n === 'ns1' ? namespace('ns1', { env: 'prod' }) : undefined),
  );
  t.equal(Object.getPrototypeOf(labels), null);
  t.equal(labels.app, 'a');
  t.notOk('hasOwnProperty' in labels, 'nothing inherited');
  t.equal(labels['pcns.env'], 'prod');
  t.equal(labels.toString, 'x');
  t.equal(Object.getOwnPropertyDescriptor(labels, '__proto__')?.value, 'y', '__proto__ is an own data property');
  t.ok(Object.keys(labels).includes('app'));
  t.notOk('constructor' in labels, 'profile not on the endpoint: no labels from it');
  const w2 = wep('ns1/ep2', { labels: {}, ip: '192.168.1.2', profiles: ['p1'] });
  const l2 = effectiveLabels(w2, (n) => (n === 'p1' ? profile('p1', { labelsToApply: { constructor: 'c' } }) : undefined), () => undefined);
  t.equal(l2.constructor, 'c');
});

t.test('cell columns hold every field of every cell', async (t) => {
  const rand = rng(7);
  const cells: KeyedCell[] = [];
  for (let i = 0; i < 500; i++) {
    cells.push({
      localClass: Math.floor(rand() * 5000),
      protocol: [1, 6, 17, 58, 132, 136, 256][Math.floor(rand() * 7)]!,
      srcPortClass: Math.floor(rand() * 40),
      portMin: Math.floor(rand() * 65536),
      portMax: 65535,
      action: rand() < 0.5 ? 'allow' : 'deny',
      rule: `r${i}`,
      logs: rand() < 0.3 ? [`l${i}`, 'l0'] : [],
    });
  }
  const c = toColumns(cells);
  t.equal(c.count, cells.length);
  const back: KeyedCell[] = [];
  for (let i = 0; i < c.count; i++) back.push(cellAt(c, i));
  t.same(back, cells);
  t.same(toColumns([]).count, 0);
});

t.test('ResourceState keeps an equal endpoint whose repeated values are one copy; the input is untouched', async (t) => {
  const { ResourceState } = await import('../../src/calc/store');
  const s = new ResourceState();
  // Values built at run time, as JSON.parse gives them: equal strings, distinct copies.
  const fresh = (x: string): string => [...x].join('');
  const mk = (i: number) => wep(`ns${i % 2}/pod${i}`, {
    labels: { app: fresh('web'), tier: fresh(i % 2 === 0 ? 'front' : 'back') }, node: fresh('node7'),
    profiles: [fresh(`kns.ns${i % 2}`), fresh('ksa.sa')], ip: `192.168.0.${i + 1}/32`, sa: fresh('sa'),
  });
  const inputs = [mk(0), mk(1), mk(2)];
  const copies = inputs.map((r) => structuredClone(r));
  for (const r of inputs) s.upsert(r);
  const got = inputs.map((r) => s.endpoints.get(`${r.metadata.namespace}/${r.metadata.name}`)!);
  t.same(got, copies, 'stored endpoints equal their input');
  t.same(inputs, copies, 'inputs not changed');
  t.ok(got[0]!.spec.profiles === got[2]!.spec.profiles, 'equal profiles lists: one array');
  t.ok(got[0]!.spec.profiles !== got[1]!.spec.profiles, 'different lists stay apart');
  t.same(got[1]!.spec.profiles, ['kns.ns1', 'ksa.sa']);
  // One copy per value: identity of strings is not observable in JS, but the structures holding
  // them are; an update of a stored endpoint replaces it and does not touch the others.
  s.upsert(wep('ns0/pod0', { labels: { app: 'db' }, node: 'node8', profiles: ['kns.ns0', 'ksa.sa'] }));
  t.equal(s.endpoints.get('ns0/pod0')!.metadata.labels!.app, 'db');
  t.equal(s.endpoints.get('ns0/pod2')!.metadata.labels!.app, 'web', 'other endpoints keep their values');
  t.same(s.endpoints.get('ns0/pod2')!.spec.profiles, ['kns.ns0', 'ksa.sa']);
  t.ok(s.endpoints.get('ns0/pod0')!.spec.profiles === s.endpoints.get('ns0/pod2')!.spec.profiles, 'the update shares the list too');
});

t.test("an assembled table's id is the hash of its whole cell list as JSON, and its columns hold every cell", async (t) => {
  // The id is written piece by piece into the hash; it must equal the hash of the one JSON text
  // of [key, local classes, protocols, source-port classes, cells] (rule keys needing escapes,
  // shared and empty log lists, source-port cuts splitting protocols).
  const rand = rng(20261207);
  const rules = ['r"quoted"', 'r\\back', 'ré\u2028', 'plain', ''];
  const logLists = [[], ['a"b'], ['x', 'y\n']];
  const seg = (min: number, max: number) => ({ min, max, allow: rand() < 0.5, rule: rules[Math.floor(rand() * rules.length)]!, logs: logLists[Math.floor(rand() * logLists.length)]! });
  const slabs = (): Slab[] => {
    const out: Slab[] = [];
    let min = 0;
    while (min <= 65535) {
      const max = rand() < 0.3 || min > 60000 ? 65535 : min + Math.floor(rand() * 2000);
      const segs = [];
      let s = 0;
      while (s <= 65535) {
        const e = rand() < 0.4 || s > 60000 ? 65535 : s + Math.floor(rand() * 3000);
        segs.push(seg(s, e));
        s = e + 1;
      }
      out.push({ min, max, segs });
      min = max + 1;
    }
    return out;
  };
  for (let run = 0; run < 30; run++) {
    const protocols = run % 3 === 0 ? [] : [6, 17];
    const groups = new Map<string, Rows>();
    const nGroups = 1 + Math.floor(rand() * 5);
    for (let g = 0; g < nGroups; g++) {
      const byProto = new Map<number, Slab[]>();
      for (const p of [...protocols, PROTO_OTHER]) byProto.set(p, slabs());
      groups.set(`g${g}`, { key: `g${g}`, byProto });
    }
    const def = { key: `def"${run}`, protocols };
    const table = assembleTable(def, groups, 'g0');
    const cells: KeyedCell[] = [];
    for (let i = 0; i < table.cells.count; i++) cells.push(cellAt(table.cells, i));
    const want = createHash('sha1')
      .update(JSON.stringify([def.key, table.localClassCount, protocols, table.srcPortClasses, cells]))
      .digest('hex')
      .slice(0, 16);
    t.equal(table.id, want, `run ${run}: id`);
    // Every group's slabs appear as cells of its local class, in protocol then source-port order.
    const perClass = new Map<number, number>();
    for (const c of cells) perClass.set(c.localClass, (perClass.get(c.localClass) ?? 0) + 1);
    t.equal(perClass.size, groups.size, `run ${run}: one local class per group`);
    t.equal(cells[0]!.localClass, 0, `run ${run}: the zero group is local class 0`);
  }
});
