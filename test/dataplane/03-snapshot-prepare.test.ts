// The snapshot's policy writes with their large batches off the JS thread
// (PolicyDataplane.prepareSnapshot, TableRegistry.prepare), over in-memory maps whose async batch
// writes land later, in a shuffled order across maps: whatever the timing, a table's content is
// complete before its tortie_tbl_v1 entry, every table an endpoint names has its entry and the
// class prefixes are all written before the endpoint's flip, and content prepared for nothing (an
// interface gone before the flip, a failed batch) is erased again, leaving no entry behind.
import t from 'tap';
import { PolicyDataplane, type PolicyDataplaneMaps } from '../../src/dataplane/bpf/policy-sync';
import type { MapOps } from '../../src/dataplane/bpf/apply';
import type { Entry, PackedEntries } from '../../src/dataplane/bpf/encode';
import { endpointCodec } from '../../src/dataplane/bpf/codecs';
import { buildTable, allowAll, denyAll } from '../../src/testbed/tables';
import type { CompiledState, LocalEndpoint, VerdictTable } from '../../src/calc/types';

const PROTO_TCP = 6;

/** What the maps held when something was written, for the checks. */
type Event = { map: string; op: 'update' | 'delete'; key: Buffer; value?: Buffer };

class World {
  readonly log: Event[] = [];
  readonly maps: Record<string, MemMap> = {};
  /** Pending async batches: resolved in a shuffled order by settle(). */
  readonly pending: { run: () => void }[] = [];
  failPol?: (count: number) => boolean;
  check: (map: string, k: Buffer, v: Buffer) => void = () => undefined;
  checks: Checks = { violations: [], contentAtMeta: new Map() };
  constructor(private seed: number) {}
  rand(): number { this.seed = (this.seed * 1103515245 + 12345) % 2147483648; return this.seed / 2147483648; }
  map(name: string, async = false): MemMap {
    const m = new MemMap(this, name, async);
    this.maps[name] = m;
    return m;
  }
  /** Lets the async batches land, one at a time in a random order, until none is left. */
  async settle(done: () => boolean): Promise<void> {
    for (let spins = 0; !done() && spins < 100_000; spins++) {
      if (this.pending.length > 0) {
        const i = Math.floor(this.rand() * this.pending.length);
        const [p] = this.pending.splice(i, 1);
        p!.run();
      }
      await new Promise((r) => setImmediate(r));
    }
  }
}

class MemMap implements MapOps {
  readonly m = new Map<string, Buffer>();
  updatePackedAsync?: (p: PackedEntries) => Promise<void>;
  constructor(private readonly w: World, readonly name: string, async: boolean) {
    if (async) {
      this.updatePackedAsync = (p) => new Promise<void>((resolve, reject) => {
        this.w.pending.push({
          run: () => {
            if (this.name === 'pol' && this.w.failPol?.(p.count)) { reject(Object.assign(new Error('E2BIG: map full'), { code: 'E2BIG' })); return; }
            for (let i = 0; i < p.count; i++) {
              this.update(p.keys.subarray(i * p.keySize, (i + 1) * p.keySize), p.values.subarray(i * p.valueSize, (i + 1) * p.valueSize));
            }
            resolve();
          },
        });
      });
    }
  }
  lookup(k: Buffer) { return this.m.get(k.toString('hex')); }
  update(k: Buffer, v: Buffer) {
    this.m.set(k.toString('hex'), Buffer.from(v));
    this.w.log.push({ map: this.name, op: 'update', key: Buffer.from(k), value: Buffer.from(v) });
    this.w.check(this.name, k, v);
  }
  delete(k: Buffer) { this.m.delete(k.toString('hex')); this.w.log.push({ map: this.name, op: 'delete', key: Buffer.from(k) }); }
  updateMany(entries: readonly Entry[]) { for (const e of entries) this.update(e.key, e.value); }
  entries() { return [...this.m].map(([k, v]) => ({ key: Buffer.from(k, 'hex'), value: v })); }
}

/** Entries keyed by table `id` (projection: id at 0; source-port classes and cells: at 4). */
function ofTable(w: World, id: number): number {
  let n = 0;
  for (const k of w.maps.proj!.m.keys()) if (Buffer.from(k, 'hex').readUInt32LE(0) === id) n++;
  for (const name of ['spc', 'pol']) for (const k of w.maps[name]!.m.keys()) if (Buffer.from(k, 'hex').readUInt32LE(4) === id) n++;
  return n;
}

interface Checks { violations: string[]; contentAtMeta: Map<number, number>; clsAtFirstFlip?: number }

function setup(seed: number, resolve: (e: LocalEndpoint) => number | undefined) {
  const w = new World(seed);
  const maps: PolicyDataplaneMaps = {
    ep: w.map('ep'), epaddr: w.map('epaddr'), tbl: w.map('tbl'), proj: w.map('proj', true), spc: w.map('spc'), pol: w.map('pol', true),
    cls4: w.map('cls4', true), cls6: w.map('cls6'),
  };
  w.check = (map, k, v) => {
    if (map === 'tbl') w.checks.contentAtMeta.set(k.readUInt32LE(0), ofTable(w, k.readUInt32LE(0)));
    if (map === 'ep') {
      const ep = endpointCodec.decode(v);
      for (const id of ep.table) if (id !== 0 && !w.maps.tbl!.m.has(Buffer.from(Uint32Array.of(id).buffer).toString('hex'))) w.checks.violations.push(`endpoint ${k.readUInt32LE(0)} flipped to table ${id} before its tortie_tbl_v1 entry`);
      w.checks.clsAtFirstFlip ??= w.maps.cls4!.m.size;
    }
  };
  const pd = new PolicyDataplane(maps, resolve);
  return { w, pd };
}

function tableSet(n: number): VerdictTable[] {
  const out: VerdictTable[] = [];
  for (let i = 0; i < n; i++) {
    const id = (0xa000 + i).toString(16).padStart(16, '0');
    out.push(buildTable({ id, direction: 'ingress', projection: Array.from({ length: 20 + i }, (_, g) => [100 + g * 3 + i, 1 + (g % 3)] as [number, number]), protocols: [PROTO_TCP],
      rules: [{ lclass: 1, proto: PROTO_TCP, portMin: 80 + i, portMax: 90 + i, action: 'allow', ruleId: 10 + i }, { lclass: 2, proto: PROTO_TCP, portMin: 1000, portMax: 2000 + i, action: 'allow', ruleId: 11 }], defaultRule: 2 }));
  }
  return out;
}

function stateOf(tables: VerdictTable[], egress: VerdictTable, eps: [string, number][]): CompiledState {
  const prefixes = Array.from({ length: 50 }, (_, i) => ({ family: 4 as const, cidr: `10.${i}.0.0/16`, classId: 100 + i }));
  return {
    nodeName: 'node1', classes: { prefixes, classes: [] }, tables: [...tables, egress],
    endpoints: eps.map(([key, ti]): LocalEndpoint => ({ key, namespace: 'ns', name: key.slice(3), interfaceName: `cali${key.slice(3)}`, ipNetworks: [`192.168.0.${ti + 1}/32`],
      tables: { ingress: tables[ti]!.id, egress: egress.id } })),
    rules: [], prefilter: { deny: [], skipped: [] }, routing: { pools: [], nodes: [], workloadRoutes: [] },
  };
}

t.test('content before the table entry before the flip, whatever order the batches land in', async (t) => {
  for (const seed of [1, 2, 3, 7, 42]) {
    const ifx: Record<string, number> = {};
    const eps: [string, number][] = [];
    for (let i = 0; i < 24; i++) { eps.push([`ns/e${i}`, i % 12]); ifx[`ns/e${i}`] = 10 + i; }
    const { w, pd } = setup(seed, (e) => ifx[e.key]);
    const s = stateOf(tableSet(12), allowAll('eeeeeeeeeeeeeee1', 'egress', 3), eps);
    let done = false;
    const p = pd.prepareSnapshot(s).then(() => { done = true; });
    await w.settle(() => done);
    await p;
    t.equal(w.maps.tbl!.m.size, 0, `seed ${seed}: no table has its tortie_tbl_v1 entry before applySnapshot`);
    t.equal(w.maps.ep!.m.size, 0, `seed ${seed}: no endpoint flipped while preparing`);
    t.equal(w.maps.cls4!.m.size, 50, `seed ${seed}: class prefixes written while preparing`);
    pd.applySnapshot(s);
    await w.settle(() => w.pending.length === 0); // a write still in flight would land now (it must not be one)
    t.same(w.checks.violations, [], `seed ${seed}: every flip named complete tables`);
    t.equal(w.checks.clsAtFirstFlip, 50, `seed ${seed}: every class prefix before the first flip`);
    t.equal(w.maps.ep!.m.size, 24);
    t.equal(w.maps.tbl!.m.size, 13, 'twelve ingress tables and the shared egress one');
    for (const [id, atMeta] of w.checks.contentAtMeta) t.equal(atMeta, ofTable(w, id), `seed ${seed}: table ${id} was complete when its tortie_tbl_v1 entry was written`);
    t.equal(pd.writer.tables.preparedCount, 0);
  }
});

t.test('the same maps as the synchronous path', async (t) => {
  const ifx: Record<string, number> = { 'ns/a': 1, 'ns/b': 2, 'ns/c': 3 };
  const eps: [string, number][] = [['ns/a', 0], ['ns/b', 1], ['ns/c', 1]];
  const tables = tableSet(3);
  const egress = denyAll('ddddddddddddddd1', 'egress', 4);
  const sync = setup(5, (e) => ifx[e.key]);
  sync.pd.applySnapshot(stateOf(tables, egress, eps));
  const async = setup(5, (e) => ifx[e.key]);
  const s = stateOf(tables, egress, eps);
  let done = false;
  const p = async.pd.prepareSnapshot(s).then(() => { done = true; });
  await async.w.settle(() => done);
  await p;
  async.pd.applySnapshot(s);
  for (const name of ['ep', 'epaddr', 'tbl', 'proj', 'spc', 'pol', 'cls4', 'cls6']) {
    t.same([...async.w.maps[name]!.m].sort(), [...sync.w.maps[name]!.m].sort(), `${name}: the same entries`);
  }
});

t.test('content prepared for an interface that went away before the flip is erased', async (t) => {
  const ifx: Record<string, number | undefined> = { 'ns/a': 1, 'ns/b': 2 };
  const { w, pd } = setup(9, (e) => ifx[e.key]);
  const tables = tableSet(2);
  const s = stateOf(tables, allowAll('eeeeeeeeeeeeeee1', 'egress', 3), [['ns/a', 0], ['ns/b', 1]]);
  let done = false;
  const p = pd.prepareSnapshot(s).then(() => { done = true; });
  await w.settle(() => done);
  await p;
  t.ok(w.maps.pol!.m.size > 0, 'content written');
  ifx['ns/b'] = undefined; // its interface is gone: b stays pending, its ingress table is not acquired
  pd.applySnapshot(s);
  t.equal(w.maps.ep!.m.size, 1);
  t.same(pd.pendingEndpoints, ['ns/b']);
  t.equal(w.maps.tbl!.m.size, 2, "a's two tables");
  const live = new Set([...w.maps.tbl!.m.keys()].map((k) => Buffer.from(k, 'hex').readUInt32LE(0)));
  for (const name of ['proj', 'spc', 'pol']) {
    for (const k of w.maps[name]!.m.keys()) {
      const id = Buffer.from(k, 'hex').readUInt32LE(name === 'proj' ? 0 : 4);
      t.ok(live.has(id), `${name} entry of table ${id}: a live table's`);
    }
  }
  t.equal(pd.writer.tables.preparedCount, 0);
  // The interface comes back: b's table is written in full then (the synchronous path).
  ifx['ns/b'] = 2;
  t.equal(pd.retryPending(), 1);
  t.same(w.checks.violations, []);
  t.equal(w.maps.tbl!.m.size, 3);
});

t.test('a failed batch: the reconcile fails, nothing prepared stays, a retry writes it all', async (t) => {
  const ifx: Record<string, number> = {};
  const eps: [string, number][] = [];
  for (let i = 0; i < 10; i++) { eps.push([`ns/e${i}`, i]); ifx[`ns/e${i}`] = 100 + i; }
  const { w, pd } = setup(11, (e) => ifx[e.key]);
  let polBatches = 0;
  w.failPol = () => ++polBatches === 4;
  const s = stateOf(tableSet(10), allowAll('eeeeeeeeeeeeeee1', 'egress', 3), eps);
  let done = false;
  let failure: Error | undefined;
  const p = pd.prepareSnapshot(s).then(() => { done = true; }, (e: Error) => { done = true; failure = e; });
  await w.settle(() => done);
  await p;
  t.match(failure?.message, /map full/, 'the failed batch is the reconcile\'s error');
  await w.settle(() => w.pending.length === 0);
  t.equal(w.maps.tbl!.m.size, 0, 'no table entry');
  t.equal(w.maps.ep!.m.size, 0, 'no flip');
  for (const name of ['proj', 'spc', 'pol']) t.equal(w.maps[name]!.m.size, 0, `${name}: the prepared content erased`);
  t.equal(pd.writer.tables.preparedCount, 0);
  w.failPol = undefined;
  done = false;
  const again = pd.prepareSnapshot(s).then(() => { done = true; });
  await w.settle(() => done);
  await again;
  pd.applySnapshot(s);
  t.same(w.checks.violations, []);
  t.equal(w.maps.ep!.m.size, 10);
  t.equal(w.maps.tbl!.m.size, 11);
  for (const [id, atMeta] of w.checks.contentAtMeta) t.equal(atMeta, ofTable(w, id), `table ${id} complete at its entry`);
});

t.test('after a restart: recovered tables keep their ids, their projection rewrite goes off the JS thread, the maps end as without preparing', async (t) => {
  const ifx: Record<string, number> = {};
  const eps: [string, number][] = [];
  for (let i = 0; i < 8; i++) { eps.push([`ns/e${i}`, i % 4]); ifx[`ns/e${i}`] = 50 + i; }
  const tables = tableSet(5);
  const egress = allowAll('eeeeeeeeeeeeeee1', 'egress', 3);
  const s1 = stateOf(tables.slice(0, 4), egress, eps);
  // The second agent's state: e3 and e7 move to a new table; the others keep theirs.
  const s2 = stateOf([tables[0]!, tables[1]!, tables[2]!, tables[4]!], egress, eps);
  const runs: Record<string, World> = {};
  for (const path of ['sync', 'prepared'] as const) {
    const first = setup(21, (e) => ifx[e.key]);
    first.pd.applySnapshot(s1);
    const idsBefore = new Map([...first.w.maps.tbl!.m.keys()].map((k) => [k, true]));
    const w = first.w;
    // An entry the recovered table lacks (as after additions while no agent ran): the adoption's
    // projection rewrite puts it back, on either path.
    const lacking = [...w.maps.proj!.m.keys()].find((k) => Buffer.from(k, 'hex').readUInt32LE(0) === 1)!;
    w.maps.proj!.m.delete(lacking);
    const maps = { ep: w.maps.ep!, epaddr: w.maps.epaddr!, tbl: w.maps.tbl!, proj: w.maps.proj!, spc: w.maps.spc!, pol: w.maps.pol!, cls4: w.maps.cls4!, cls6: w.maps.cls6! };
    const pd2 = new PolicyDataplane(maps, (e) => ifx[e.key]);
    pd2.recover();
    w.checks.contentAtMeta.clear();
    if (path === 'prepared') {
      let done = false;
      const p = pd2.prepareSnapshot(s2).then(() => { done = true; });
      await w.settle(() => done);
      await p;
    }
    const mark = w.log.length;
    pd2.applySnapshot(s2);
    await w.settle(() => w.pending.length === 0);
    const projOnJs = w.log.slice(mark).filter((e) => e.map === 'proj' && e.op === 'update').length;
    if (path === 'prepared') t.equal(projOnJs, 0, 'no projection written on the JS thread by applySnapshot');
    else t.ok(projOnJs > 0, 'the synchronous path rewrites the recovered projections itself');
    t.same(w.checks.violations, [], `${path}: every flip named complete tables`);
    for (const [id, atMeta] of w.checks.contentAtMeta) t.equal(atMeta, ofTable(w, id), `${path}: table ${id} complete at its entry`);
    const kept = [...w.maps.tbl!.m.keys()].filter((k) => idsBefore.has(k)).length;
    t.equal(kept, 4, `${path}: the three ingress tables still used and the egress one keep their ids`);
    t.equal(w.maps.tbl!.m.size, 5, `${path}: the replaced table is gone, the new one is there`);
    t.ok(w.maps.proj!.m.has(lacking), `${path}: the recovered table's projection is complete again`);
    runs[path] = w;
  }
  for (const name of ['ep', 'epaddr', 'tbl', 'proj', 'spc', 'pol', 'cls4', 'cls6']) {
    t.same([...runs.prepared!.maps[name]!.m].sort(), [...runs.sync!.maps[name]!.m].sort(), `${name}: the same entries either way`);
  }
});
