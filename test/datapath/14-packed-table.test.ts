// PackedTable (the dataplane's compact copy of a VerdictTable): lossless round trip, projection
// edits, range checks, and the writer producing byte-identical map entries from either form.
// The packed copies are what PolicyDataplane binds late endpoints from (exercised on real maps
// by 08-netns-e2e and 11-restart).
import t from 'tap';
import { PackedTable } from '../../src/dataplane/bpf/packed-table';
import { TableRegistry, type MapOps, type PolicyMaps } from '../../src/dataplane/bpf/apply';
import type { ProjectionEntry, VerdictCell, VerdictTable } from '../../src/calc/types';
import { packProjection, projectionEntries } from '../../src/calc/lookup';

/** Deterministic PRNG (mulberry32) so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function randomTable(r: () => number, i: number): VerdictTable {
  const int = (n: number) => Math.floor(r() * n);
  const locals = 1 + int(20);
  const globals = new Set<number>();
  const nproj = int(300);
  while (globals.size < nproj) globals.add(1 + int(0xfffffffe));
  const projection = packProjection([...globals].map((g) => ({ globalClass: g, localClass: 1 + int(locals - 1 || 1) })));
  const cells: VerdictCell[] = [];
  for (let c = 0; c < int(50); c++) {
    const lo = int(65536);
    cells.push({
      localClass: int(locals), protocol: [1, 6, 17, 256][int(4)]!, srcPortClass: int(4), portMin: lo, portMax: lo + int(65536 - lo),
      action: r() < 0.5 ? 'allow' : 'deny', ruleId: int(1 << 20), logRuleIds: Array.from({ length: int(5) }, () => int(1 << 20)),
    });
  }
  return {
    id: i.toString(16).padStart(16, '0'), direction: r() < 0.5 ? 'ingress' : 'egress', localClassCount: locals, projection,
    protocols: [6, 17], srcPortClasses: r() < 0.3 ? [{ protocol: 6, ranges: [{ portMin: 0, portMax: 1023, srcPortClass: 1 }, { portMin: 1024, portMax: 65535, srcPortClass: 0 }] }] : [],
    cells,
  };
}

t.test('pack then unpack gives the same table', async (t) => {
  const r = rng(7);
  for (let i = 0; i < 300; i++) {
    const tb = randomTable(r, i);
    const p = PackedTable.pack(tb);
    t.same(p.unpack(), tb, `table ${i}`);
    t.equal(p.projectionSize, tb.projection.length / 2);
    t.equal(p.cellCount, tb.cells.length);
    // The packed copy does not alias the input.
    if (tb.cells[0]) { tb.cells[0].logRuleIds.push(1); tb.cells[0].portMin = 1; }
    if (tb.srcPortClasses[0]) tb.srcPortClasses[0].ranges[0]!.srcPortClass = 9;
    if (tb.projection.length > 0) tb.projection[1] = tb.projection[1]! + 1;
    t.not(JSON.stringify(p.unpack()), JSON.stringify(tb), 'later edits of the input do not reach the packed copy');
  }
});

t.test('withProjection adds, replaces and removes, keeps order, leaves the receiver alone', async (t) => {
  const r = rng(11);
  for (let i = 0; i < 200; i++) {
    const tb = randomTable(r, i);
    const p = PackedTable.pack(tb);
    const before = JSON.stringify(p.unpack());
    const add: ProjectionEntry[] = Array.from({ length: Math.floor(r() * 20) }, () => ({ globalClass: 1 + Math.floor(r() * 0xfffffffe), localClass: Math.floor(r() * 9) }));
    const entries = projectionEntries(tb.projection);
    if (entries.length > 0) add.push({ globalClass: entries[0]!.globalClass, localClass: 77 });
    const remove = entries.filter(() => r() < 0.2).map((e) => e.globalClass);
    const want = new Map(entries.map((e) => [e.globalClass, e.localClass]));
    for (const g of remove) want.delete(g);
    for (const e of add) want.set(e.globalClass, e.localClass);
    const got = p.withProjection(add, remove);
    t.same(got.projection(), [...want].sort((a, b) => a[0] - b[0]).map(([globalClass, localClass]) => ({ globalClass, localClass })), `table ${i}`);
    t.same(got.unpack().cells, tb.cells, 'cells unchanged');
    t.equal(JSON.stringify(p.unpack()), before, 'receiver unchanged');
  }
});

t.test('values that do not fit the u32 fields are refused, naming the table and field', async (t) => {
  const base = randomTable(rng(3), 1);
  const cell: VerdictCell = { localClass: 0, protocol: 6, srcPortClass: 0, portMin: 0, portMax: 65535, action: 'allow', ruleId: 1, logRuleIds: [] };
  const bad: [VerdictTable, RegExp][] = [
    [{ ...base, projection: Uint32Array.of(5, 1, 6) }, /projection of odd length 3/],
    [{ ...base, projection: Uint32Array.of(6, 1, 5, 1) }, /projection not sorted by global class at 5/],
    [{ ...base, cells: [{ ...cell, ruleId: 1.5 }] }, /cell rule id 1.5 is not a u32/],
    [{ ...base, cells: [{ ...cell, logRuleIds: [2 ** 33] }] }, /log rule id 8589934592 is not a u32/],
  ];
  for (const [tb, re] of bad) t.throws(() => PackedTable.pack(tb), { code: 'ERR_DATAPATH_ENCODE', message: new RegExp(`table ${base.id}: .*${re.source}`) }, re.source);
});

class MemMap implements MapOps {
  readonly m = new Map<string, string>();
  lookup(k: Buffer) { const v = this.m.get(k.toString('hex')); return v === undefined ? undefined : Buffer.from(v, 'hex'); }
  update(k: Buffer, v: Buffer) { this.m.set(k.toString('hex'), v.toString('hex')); }
  delete(k: Buffer) { this.m.delete(k.toString('hex')); }
}

const memMaps = (): PolicyMaps => ({ ep: new MemMap(), epaddr: new MemMap(), tbl: new MemMap(), proj: new MemMap(), spc: new MemMap(), pol: new MemMap() });
const dump = (m: PolicyMaps) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, [...(v as MemMap).m].sort()]));

t.test('the registry writes and erases the same entries from a packed table as from the object', async (t) => {
  const r = rng(5);
  const tables = Array.from({ length: 20 }, (_, i) => randomTable(r, i + 1));
  const a = memMaps();
  const b = memMaps();
  const ra = new TableRegistry(a);
  const rb = new TableRegistry(b);
  const ids = tables.map((tb) => [ra.acquire(tb), rb.acquire(PackedTable.pack(tb))] as const);
  t.same(dump(b), dump(a), 'same entries written');
  t.ok(Object.values(dump(a)).some((e) => e.length > 0));
  for (const [ia, ib] of ids.slice(0, 10)) { ra.release(ia); rb.release(ib); }
  t.same(dump(b), dump(a), 'same entries left after releasing half');
  for (const [ia, ib] of ids.slice(10)) { ra.release(ia); rb.release(ib); }
  t.same(dump(b), { ep: [], epaddr: [], tbl: [], proj: [], spc: [], pol: [] }, 'nothing left behind');
});
