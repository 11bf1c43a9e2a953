// Agent restart: a new PolicyDataplane over the pinned maps adopts what the previous one wrote.
// Tables the compiler produces again keep their ids (endpoints are not switched), changed
// tables get fresh ids above every old one, and what is no longer wanted (tables, prefixes,
// endpoints) is removed. Traffic is checked before and after, in both families: A is dual stack,
// IPv6 prefixes are adopted and swept like IPv4 ones, and flows of both families opened before
// the restart keep their conntrack state across it.
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { buildTable, allowAll, denyAll } from '../../src/testbed/tables';
import { loadWep, mapOps } from '../../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../../src/dataplane/bpf/policy-sync';
import { flowPacket, PROTO } from '../../src/dataplane/bpf/packet';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { u32Key } from '../../src/dataplane/bpf/codecs';
import type { CompiledState, LocalEndpoint, VerdictTable } from '../../src/calc/types';

const A = '192.168.1.10';
const A6 = 'fd00:10::a';
const ifx: Record<string, number> = { 'ns/a': 1, 'ns/b': 1001, 'ns/c': 1002 };

function state(prefixes: [string, number][], tables: VerdictTable[], eps: [string, string | string[], string, string][]): CompiledState {
  const host = (ip: string) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`);
  return {
    nodeName: 'node1',
    classes: { prefixes: prefixes.map(([cidr, classId]) => ({ family: (cidr.includes(':') ? 6 : 4) as 4 | 6, cidr, classId })), classes: [] },
    tables,
    endpoints: eps.map(([key, ip, ingress, egress]): LocalEndpoint => ({
      key, namespace: 'ns', name: key.slice(3), interfaceName: `cali${key.slice(3)}`, ipNetworks: (Array.isArray(ip) ? ip : [ip]).map(host), tables: { ingress, egress } })),
    rules: [], prefilter: { deny: [], skipped: [] }, routing: { pools: [], nodes: [], workloadRoutes: [] },
  };
}

t.test('restart adopts, switches only what changed, sweeps the rest', async (t) => {
  const h = await WepHarness.create('restart');
  t.teardown(() => h.close());
  const Ai = buildTable({ id: 'aaaaaaaaaaaaaaa1', direction: 'ingress', projection: [[5, 1]], protocols: [PROTO.TCP],
    rules: [{ lclass: 1, proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 1 }], defaultRule: 2 });
  const E = allowAll('eeeeeeeeeeeeeee1', 'egress', 3);
  const Bi = denyAll('bbbbbbbbbbbbbbb1', 'ingress', 4);
  const Bi2 = buildTable({ id: 'bbbbbbbbbbbbbbb2', direction: 'ingress', protocols: [PROTO.TCP],
    rules: [{ proto: PROTO.TCP, portMin: 22, portMax: 22, action: 'allow', ruleId: 5 }], defaultRule: 4 });
  const s1 = state([['10.0.0.0/8', 5], ['198.18.0.0/15', 6], ['fd0a::/16', 5], ['fd18::/16', 6]], [Ai, E, Bi],
    [['ns/a', [A, A6], Ai.id, E.id], ['ns/b', '192.168.1.11', Bi.id, E.id], ['ns/c', '192.168.1.12', Bi.id, E.id]]);
  const s2 = state([['10.0.0.0/8', 5], ['172.16.0.0/12', 7], ['fd0a::/16', 5], ['fd17::/16', 7]], [Ai, E, Bi2],
    [['ns/a', [A, A6], Ai.id, E.id], ['ns/b', '192.168.1.11', Bi2.id, E.id]]);

  const maps = (dp: typeof h.dp) => ({ ...dp.policyMaps, cls4: mapOps(dp.maps.cls4!), cls6: mapOps(dp.maps.cls6!) });
  const pd1 = new PolicyDataplane(maps(h.dp), (e) => ifx[e.key]);
  pd1.applySnapshot(s1);
  let sport = 5555;
  const web = () => h.run('to', flowPacket({ src: '10.1.1.1', dst: A, proto: PROTO.TCP, sport: sport++, dport: 80, flags: 'S' }));
  const web6 = () => h.run('to', flowPacket({ src: 'fd0a:1::1', dst: A6, proto: PROTO.TCP, sport: sport++, dport: 80, flags: 'S' }));
  t.equal(web().reason, R.FORWARD, 'before: A accepts 10/8 on 80');
  t.equal(web6().reason, R.FORWARD, 'and fd0a::/16 on 80');
  // Flows A opens before the restart (egress allows all; A's ingress would deny their replies).
  for (const [src, dst] of [[A, '10.1.1.1'], [A6, 'fd0a:1::1']]) {
    t.equal(h.run('from', flowPacket({ src, dst, proto: PROTO.TCP, sport: 47000, dport: 443, flags: 'S' })).reason, R.FORWARD, `${src} opens a flow to ${dst}:443`);
  }
  const a1 = h.writer.current(1) ?? pd1.writer.current(1)!;
  const oldIds = new Set([...pd1.writer.current(1)!.table, ...pd1.writer.current(1001)!.table]);
  const oldBi = pd1.writer.current(1001)!.table[0];

  // "Restart": a second load over the same pins, a fresh PolicyDataplane.
  const dp2 = await loadWep({ pinRoot: h.pinRoot, ctMaxEntries: 65536 });
  t.teardown(() => dp2.close());
  const pd2 = new PolicyDataplane(maps(dp2), (e) => ifx[e.key]);
  t.same(pd2.recover(), { endpoints: 3, tables: 3, prefixes: 4 }, 'found 3 endpoints, 3 tables, 4 prefixes (2 IPv6)');
  pd2.applySnapshot(s2);

  const a2 = pd2.writer.current(1)!;
  t.same(a2.table, a1.table, 'A keeps its table ids: its tables were adopted, not rewritten');
  const b2 = pd2.writer.current(1001)!;
  t.not(b2.table[0], oldBi, 'B switched to a new ingress table');
  t.ok(b2.table[0] > Math.max(...oldIds), 'new id above every id of the previous agent');
  t.notOk(dp2.maps.tbl!.lookup(u32Key(oldBi)), 'B\'s old table deleted (meta)');
  t.notOk(dp2.maps.pol!.keys().some((k) => k.readUInt32LE(4) === oldBi), '... and its cells');
  t.notOk(pd2.writer.current(1002), 'C, gone from the snapshot, removed');
  t.equal(pd2.writer.tables.orphanCount, 0, 'no orphan left');
  const cls = dp2.maps.cls4!.keys().map((k) => `${k.readUInt32BE(4) >>> 24}/${k.readUInt32LE(0)}`).sort();
  t.same(cls, ['10/8', '172/12'], 'stale prefix removed, new one added');
  const cls6 = dp2.maps.cls6!.keys().map((k) => `${k.readUInt16BE(4).toString(16)}/${k.readUInt32LE(0)}`).sort();
  t.same(cls6, ['fd0a/16', 'fd17/16'], 'IPv6: stale prefix removed, new one added');
  t.equal(web().reason, R.FORWARD, 'after: A still accepts 10/8 on 80');
  t.equal(web6().reason, R.FORWARD, 'and fd0a::/16 on 80');
  for (const [src, dst] of [['10.1.1.1', A], ['fd0a:1::1', A6]]) {
    t.equal(h.run('to', flowPacket({ src, dst, proto: PROTO.TCP, sport: 443, dport: 47000, flags: 'SA' })).reason, R.FORWARD,
      `the reply of ${dst}'s flow opened before the restart passes (conntrack kept)`);
  }
  t.equal(h.run('to', flowPacket({ src: '10.1.1.1', dst: A, proto: PROTO.TCP, sport: 6000, dport: 81, flags: 'S' })).reason, R.POLICY_DENY,
    'and still denies 81');
  // The adopted table is released normally when A moves off it.
  pd2.applySnapshot(state([['10.0.0.0/8', 5]], [Bi2, E], [['ns/a', A, Bi2.id, E.id]]));
  t.notOk(dp2.maps.tbl!.lookup(u32Key(a1.table[0])), 'adopted table deleted once unreferenced');
  t.equal(web().reason, R.POLICY_DENY, 'A now on the new table (new connections)');
  t.equal(web6().reason, R.POLICY_DENY, 'in IPv6 too');
});
