// Policy map capacities: sized for Felix's design target by default, set by the agent's
// configuration for every object sharing them, a resized map replaces its pin (libbpf cannot
// reuse a pin of another size), and a full map is an error that names it.
import t from 'tap';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_POLICY_MAP_SIZES, MapFullError, loadHep, loadUplink, loadWep, mapOps } from '../../src/dataplane/bpf/loader';
import { MAP } from '../../src/dataplane/bpf/codecs';
import { EndpointPolicyWriter } from '../../src/dataplane/bpf/apply';
import { BpfMap } from '../../src/dataplane/native';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import type { VerdictTable } from '../../src/calc/types';

t.test('defaults fit Felix’s scale and every object sharing the maps gets the same size', async (t) => {
  const pinRoot = uniquePinRoot('mapsz');
  const sizes = { proj: 1 << 16, pol: 1 << 15 };
  const wep = await loadWep({ pinRoot, ctMaxEntries: 4096, hostRouting: 'off', mapSizes: sizes });
  const hep = await loadHep({ pinRoot, mapSizes: sizes });
  const up = await loadUplink({ pinRoot, mapSizes: sizes });
  t.teardown(() => { wep.close(); hep.close(); up.close(); removePinRoot(pinRoot); });
  t.ok(DEFAULT_POLICY_MAP_SIZES.proj >= 3_395_199, 'default projection map holds the 3.4 M entries measured at 100,000 × 2,000 (compile-bench with its generator fixed; 2.8 M before)');
  t.ok(DEFAULT_POLICY_MAP_SIZES.pol >= 1_095_275, 'default verdict map holds the 1.1 M prefixes measured at 100,000 × 2,000 (agent fixtures)');
  t.equal(wep.maps.proj!.maxEntries, 1 << 16);
  t.equal(wep.maps.pol!.maxEntries, 1 << 15);
  t.equal(wep.maps.tbl!.maxEntries, DEFAULT_POLICY_MAP_SIZES.tbl, 'a map not configured keeps its default');
  t.equal(up.maps.rt4.maxEntries, 262_144, 'the route map holds one route per remote workload at 100,000 endpoints (Calico bpfMapSizeRoute default)');
  for (const [what, obj] of [['hep', hep.obj], ['uplink', up.obj]] as const) {
    t.equal(obj.map(MAP.proj).info.id, wep.maps.proj!.info.id, `${what} object shares the workload object's projection map`);
  }
});

t.test('a configured size that differs from the pinned map replaces the policy maps', async (t) => {
  const pinRoot = uniquePinRoot('mapsz2');
  t.teardown(() => removePinRoot(pinRoot));
  const a = await loadWep({ pinRoot, ctMaxEntries: 4096, hostRouting: 'off' });
  t.equal(a.maps.proj!.maxEntries, DEFAULT_POLICY_MAP_SIZES.proj);
  const oldIds = { proj: a.maps.proj!.info.id, ep: a.maps.ep!.info.id };
  a.maps.tbl!.update(Buffer.alloc(4, 1), Buffer.alloc(a.maps.tbl!.valueSize));
  a.close();
  const b = await loadWep({ pinRoot, ctMaxEntries: 4096, hostRouting: 'off', mapSizes: { proj: 1 << 17 } });
  t.teardown(() => b.close());
  t.equal(b.maps.proj!.maxEntries, 1 << 17, 'the new size is in force (a reused pin would have failed the load)');
  t.not(b.maps.proj!.info.id, oldIds.proj, 'a new projection map');
  t.equal(b.maps.tbl!.lookup(Buffer.alloc(4, 1)), undefined, 'the table map is replaced with it (no table id outlives its projection)');
  t.equal(b.maps.ep!.info.id, oldIds.ep, 'the endpoint map is kept');
  const pinned = BpfMap.openPinned(path.join(pinRoot, MAP.proj));
  t.equal(pinned.maxEntries, 1 << 17, 'the pin is the new map');
  pinned.close();
  const c = await loadWep({ pinRoot, ctMaxEntries: 4096, hostRouting: 'off', mapSizes: { proj: 1 << 17 } });
  t.equal(c.maps.proj!.info.id, b.maps.proj!.info.id, 'the same size reuses the pin');
  c.close();
  const up = await loadUplink({ pinRoot, mapSizes: { proj: 1 << 17, rt4: 1 << 17 } });
  t.equal(up.maps.rt4.maxEntries, 1 << 17, 'the route map resized on its own');
  t.equal(up.obj.map(MAP.proj).info.id, b.maps.proj!.info.id, 'a resized route map leaves the policy maps in place');
  up.close();
  t.ok(existsSync(path.join(pinRoot, MAP.pol)));
});

t.test('a full policy map is an error naming the map and its setting; nothing half-written stays', async (t) => {
  const pinRoot = uniquePinRoot('mapsz3');
  const dp = await loadWep({ pinRoot, ctMaxEntries: 4096, hostRouting: 'off', mapSizes: { proj: 4096, pol: 1 << 15 } });
  t.teardown(() => { dp.close(); removePinRoot(pinRoot); });
  const maps = {
    ep: mapOps(dp.maps.ep!), epaddr: mapOps(dp.maps.epaddr!), tbl: mapOps(dp.maps.tbl!),
    proj: mapOps(dp.maps.proj!), spc: mapOps(dp.maps.spc!), pol: mapOps(dp.maps.pol!),
  };
  const projection = new Uint32Array(10000).map((_, i) => (i % 2 === 0 ? i / 2 + 1 : 1));
  const table: VerdictTable = {
    id: '00000000000000bb', direction: 'ingress', localClassCount: 2, projection, protocols: [], srcPortClasses: [],
    cells: [{ localClass: 0, protocol: 256, srcPortClass: 0, portMin: 0, portMax: 65535, action: 'deny', ruleId: 1, logRuleIds: [] },
      { localClass: 1, protocol: 256, srcPortClass: 0, portMin: 0, portMax: 65535, action: 'allow', ruleId: 2, logRuleIds: [] }],
  };
  const w = new EndpointPolicyWriter(maps);
  const err = (() => { try { w.tables.acquire(table); return undefined; } catch (e) { return e; } })();
  t.ok(err instanceof MapFullError, 'MapFullError');
  t.match((err as Error).message, /BPF map tortie_proj_v1 is full \(max_entries 4096\): raise it with --bpf-map-sizes proj=N \(TORTIE_BPF_MAP_SIZES\)/);
  t.equal(dp.maps.proj!.keys().length, 0, 'the partly written projection is removed');
  t.equal(dp.maps.tbl!.keys().length, 0, 'no table entry: the table is not usable');
  const single = mapOps(dp.maps.pol!);
  const k = (i: number) => { const b = Buffer.alloc(dp.maps.pol!.keySize); b.writeUInt32LE(dp.maps.pol!.keySize * 8 - 32, 0); b.writeUInt32LE(i, 4); return b; };
  t.throws(() => { for (let i = 0; i < (1 << 15) + 1; i++) single.update(k(i), Buffer.alloc(dp.maps.pol!.valueSize)); }, /BPF map tortie_pol_v1 is full \(max_entries 32768\)/, 'LPM trie (ENOSPC) too');
});
