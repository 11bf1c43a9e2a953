// TableRegistry bookkeeping over in-memory maps (the real maps are exercised by 02/08/11): a released
// table leaves no entry behind, including projection entries added after it was written, and
// a shared table survives until its last reference goes.
import t from 'tap';
import { TableRegistry, type MapOps, type PolicyMaps } from '../../src/dataplane/bpf/apply';
import type { VerdictTable } from '../../src/calc/types';

class MemMap implements MapOps {
  readonly m = new Map<string, Buffer>();
  lookup(k: Buffer) { return this.m.get(k.toString('hex')); }
  update(k: Buffer, v: Buffer) { this.m.set(k.toString('hex'), Buffer.from(v)); }
  delete(k: Buffer) { this.m.delete(k.toString('hex')); }
}

function table(id: string, ports: [number, number][]): VerdictTable {
  const cells = [];
  let lo = 0;
  for (const [a, b] of ports) {
    if (a > lo) cells.push({ localClass: 0, protocol: 6, srcPortClass: 0, portMin: lo, portMax: a - 1, action: 'deny' as const, ruleId: 2, logRuleIds: [] });
    cells.push({ localClass: 0, protocol: 6, srcPortClass: 0, portMin: a, portMax: b, action: 'allow' as const, ruleId: 1, logRuleIds: [] });
    lo = b + 1;
  }
  if (lo <= 65535) cells.push({ localClass: 0, protocol: 6, srcPortClass: 0, portMin: lo, portMax: 65535, action: 'deny' as const, ruleId: 2, logRuleIds: [] });
  cells.push({ localClass: 0, protocol: 256, srcPortClass: 0, portMin: 0, portMax: 65535, action: 'deny' as const, ruleId: 2, logRuleIds: [] });
  return { id, direction: 'ingress', localClassCount: 1, projection: Uint32Array.of(7, 0), protocols: [6], srcPortClasses: [], cells };
}

t.test('release removes every entry a table wrote, extra projections included', async (t) => {
  const maps: PolicyMaps = { ep: new MemMap(), epaddr: new MemMap(), tbl: new MemMap(), proj: new MemMap(), spc: new MemMap(), pol: new MemMap() };
  const reg = new TableRegistry(maps);
  const a = reg.acquire(table('00000000000000aa', [[80, 80], [1000, 2000]]));
  const b = reg.acquire(table('00000000000000bb', [[443, 443]]));
  const sizes = () => ({ tbl: (maps.tbl as MemMap).m.size, pol: (maps.pol as MemMap).m.size, proj: (maps.proj as MemMap).m.size });
  const withBoth = sizes();
  t.equal(withBoth.tbl, 2);
  t.ok(withBoth.pol > 4, `${withBoth.pol} verdict entries`);
  reg.addProjection('00000000000000aa', [{ globalClass: 99, localClass: 0 }, { globalClass: 100, localClass: 0 }]);
  t.equal(sizes().proj, withBoth.proj + 2);
  t.equal(reg.acquire(table('00000000000000aa', [[80, 80], [1000, 2000]])), a, 'same content, same id, one more reference');
  reg.release(a);
  t.same(sizes(), { ...withBoth, proj: withBoth.proj + 2 }, 'still referenced: nothing removed');
  reg.release(a);
  reg.release(b);
  t.same(sizes(), { tbl: 0, pol: 0, proj: 0 }, 'all entries of both tables removed');
  t.equal(reg.size, 0);
});
