/**
 * Deltas carry what changed and nothing else: a remote label change that lands an address in an
 * existing class moves one prefix; a policy update swaps tables of the endpoints it selects only;
 * deletions clean up.
 */
import t from 'tap';
import { CalcGraph } from '../../src/calc';
import { gnp, np, profile, wep } from '../../src/testbed/fixtures';

function base(): CalcGraph {
  const g = new CalcGraph({ nodeName: 'node1' });
  g.onUpdate(profile('allow', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }));
  g.onUpdate(wep('ns1/a', { ip: '192.168.0.1', labels: { app: 'web' }, profiles: ['allow'] }));
  g.onUpdate(wep('ns1/b', { ip: '192.168.0.2', labels: { app: 'api' }, profiles: ['allow'] }));
  g.onUpdate(wep('ns1/r1', { ip: '192.168.1.1', labels: { app: 'db' }, node: 'node2' }));
  g.onUpdate(wep('ns1/r2', { ip: '192.168.1.2', labels: { app: 'cache' }, node: 'node2' }));
  g.onUpdate(gnp('web-in', { selector: 'app == "web"', ingress: [{ action: 'Allow', source: { selector: 'app == "db"' } }] }));
  g.onUpdate(gnp('api-in', { selector: 'app == "api"', ingress: [{ action: 'Allow', source: { selector: 'app == "cache"' } }] }));
  return g;
}

t.test('first flush carries the whole state; an idle flush carries nothing', async (t) => {
  const g = base();
  const d1 = g.flush();
  const snap = g.snapshot();
  t.equal(d1.tablesAdded.length, snap.tables.length);
  t.equal(d1.endpointsUpserted.length, 2);
  t.same(
    d1.prefixesUpserted.map((p) => p.cidr),
    snap.classes.prefixes.map((p) => p.cidr),
  );
  t.same(d1.workloadRoutesUpserted, [
    { cidr: '192.168.1.1/32', node: 'node2' },
    { cidr: '192.168.1.2/32', node: 'node2' },
  ]);
  const d2 = g.flush();
  for (const [k, v] of Object.entries(d2)) {
    if (Array.isArray(v)) t.equal(v.length, 0, `${k} empty`);
  }
  t.equal(d2.prefilterChanged, false);
  t.equal(d2.routingChanged, false);
});

t.test('remote label change into an existing class: one prefix moves, no table changes', async (t) => {
  const g = base();
  g.onUpdate(wep('ns1/r0', { ip: '192.168.1.9', labels: { app: 'db' }, node: 'node2' }));
  g.flush();
  const before = g.snapshot();
  const cacheClass = before.classes.prefixes.find((p) => p.cidr === '192.168.1.2/32')!.classId;
  // r1 becomes a cache: it joins r2's class; r0 keeps the db class alive
  g.onUpdate(wep('ns1/r1', { ip: '192.168.1.1', labels: { app: 'cache' }, node: 'node2' }));
  const d = g.flush();
  t.same(d.prefixesUpserted, [{ family: 4, cidr: '192.168.1.1/32', classId: cacheClass }]);
  t.same(d.tablesAdded, []);
  t.same(d.tablesRemoved, []);
  t.same(d.endpointsUpserted, []);
  t.same(d.classesRemoved, []);
  t.same(d.classesAdded, []);
  t.same(d.projectionAdded, []);
  t.same(d.projectionRemoved, []);
});

t.test('the last address of a class leaving: the class goes, tables that relied on it are rebuilt', async (t) => {
  const g = base();
  g.flush();
  const web = g.snapshot().endpoints.find((e) => e.key === 'ns1/a')!.tables.ingress;
  g.onUpdate(wep('ns1/r1', { ip: '192.168.1.1', labels: { app: 'cache' }, node: 'node2' }));
  const d = g.flush();
  t.equal(d.classesRemoved.length, 1, "r1's old class (db) is gone");
  t.same(d.tablesRemoved, [web], "web's table had a local class for db; it now has one class fewer");
  t.equal(d.tablesAdded.length, 1);
  t.equal(d.tablesAdded[0]!.localClassCount, 1);
  t.same(d.endpointsUpserted.map((e) => e.key), ['ns1/a']);
});

t.test('remote label change into a new class: projection grows in place', async (t) => {
  const g = base();
  g.flush();
  g.onUpdate(wep('ns1/r3', { ip: '192.168.1.3', labels: { app: 'db', extra: 'x' }, node: 'node2' }));
  g.flush();
  const tablesBefore = g.snapshot().tables.map((x) => x.id);
  g.onUpdate(wep('ns1/r3', { ip: '192.168.1.3', labels: { app: 'cache', extra: 'x' }, node: 'node2' }));
  const d = g.flush();
  t.same(d.tablesAdded, [], 'no table is rebuilt');
  t.same(
    g.snapshot().tables.map((x) => x.id),
    tablesBefore,
  );
  t.equal(d.prefixesUpserted.length, 1);
});

t.test('policy update: only the selected endpoint switches tables', async (t) => {
  const g = base();
  g.flush();
  const before = new Map(g.snapshot().endpoints.map((e) => [e.key, e.tables]));
  g.onUpdate(gnp('web-in', { selector: 'app == "web"', ingress: [{ action: 'Deny', protocol: 'TCP', source: { selector: 'app == "db"' } }] }));
  const d = g.flush();
  t.same(
    d.endpointsUpserted.map((e) => e.key),
    ['ns1/a'],
  );
  const a = d.endpointsUpserted[0]!;
  t.not(a.tables.ingress, before.get('ns1/a')!.ingress);
  t.equal(a.tables.egress, before.get('ns1/a')!.egress);
  t.same(d.tablesAdded.map((x) => x.id), [a.tables.ingress]);
  t.same(d.tablesRemoved, [before.get('ns1/a')!.ingress]);
  t.ok(d.rulesUpserted.some((r) => r.policy?.name === 'web-in' && r.index === 0 && r.action === 'Deny'), 'changed rule re-announced');
});

t.test('an edit of one direction\'s rules keeps the other direction\'s table', async (t) => {
  const g = base();
  const both = (ingressAction: 'Allow' | 'Deny', egressPort: number) =>
    gnp('web-both', {
      selector: 'app == "web"',
      ingress: [{ action: ingressAction, protocol: 'TCP', source: { selector: 'app == "db"' } }],
      egress: [{ action: 'Allow', protocol: 'TCP', destination: { selector: 'app == "cache"', ports: [egressPort] } }],
    });
  g.onUpdate(both('Allow', 80));
  g.flush();
  const s0 = g.snapshot().endpoints.find((e) => e.key === 'ns1/a')!.tables;
  g.onUpdate(both('Deny', 80));
  const d1 = g.flush();
  t.same(d1.endpointsUpserted.map((e) => e.key), ['ns1/a']);
  const s1 = d1.endpointsUpserted[0]!.tables;
  t.not(s1.ingress, s0.ingress, 'ingress edit: new ingress table');
  t.equal(s1.egress, s0.egress, 'ingress edit: egress table kept');
  t.same(d1.tablesAdded.map((x) => x.id), [s1.ingress]);
  t.same(d1.tablesRemoved, [s0.ingress]);
  g.onUpdate(both('Deny', 443));
  const d2 = g.flush();
  const s2 = d2.endpointsUpserted[0]!.tables;
  t.equal(s2.ingress, s1.ingress, 'egress edit: ingress table kept');
  t.not(s2.egress, s1.egress, 'egress edit: new egress table');
  t.same(d2.tablesAdded.map((x) => x.id), [s2.egress]);
  // and the result is the table a fresh graph builds from the same resources
  const fresh = base();
  fresh.onUpdate(both('Deny', 443));
  fresh.flush();
  t.same(fresh.snapshot().endpoints.find((e) => e.key === 'ns1/a')!.tables, s2);
});

t.test('identical definitions share one table', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  for (const n of ['x', 'y', 'z']) g.onUpdate(wep(`ns1/${n}`, { ip: `192.168.0.${n.charCodeAt(0) - 100}`, labels: { app: 'same' } }));
  g.onUpdate(np('ns1/p', { selector: 'app == "same"', ingress: [{ action: 'Allow', source: { nets: ['10.0.0.0/8'] } }] }));
  g.flush();
  const s = g.snapshot();
  t.equal(s.endpoints.length, 3);
  t.equal(new Set(s.endpoints.map((e) => e.tables.ingress)).size, 1);
  t.equal(s.tables.length, 2);
});

t.test('deleting endpoints and policies cleans everything up', async (t) => {
  const g = base();
  g.flush();
  g.onDelete('WorkloadEndpoint', 'a', 'ns1'); // name + namespace form
  const d = g.flush();
  t.same(d.endpointsRemoved, ['ns1/a']);
  t.ok(d.tablesRemoved.length >= 1);
  for (const k of ['ns1/b', 'ns1/r1', 'ns1/r2']) g.onDelete('WorkloadEndpoint', k);
  for (const k of ['web-in', 'api-in']) g.onDelete('GlobalNetworkPolicy', k);
  g.onDelete('Profile', 'allow');
  const d2 = g.flush();
  t.same(d2.workloadRoutesRemoved, ['192.168.1.1/32', '192.168.1.2/32']);
  const s = g.snapshot();
  t.same([s.tables, s.endpoints, s.rules, s.classes.prefixes, s.classes.classes], [[], [], [], [], []]);
  const st = g.stats();
  t.same(st, { items: 0, selectorAtoms: 0, cidrAtoms: 0, namedPortAtoms: 0, prefixes: 0, classes: 0, tables: 0, localEndpoints: 0 });
});

t.test('an endpoint moving to this node becomes local; moving away removes it', async (t) => {
  const g = base();
  g.flush();
  g.onUpdate(wep('ns1/r1', { ip: '192.168.1.1', labels: { app: 'db' }, node: 'node1' }));
  const d = g.flush();
  t.same(d.endpointsUpserted.map((e) => e.key), ['ns1/r1']);
  t.same(d.workloadRoutesRemoved, ['192.168.1.1/32']);
  g.onUpdate(wep('ns1/r1', { ip: '192.168.1.1', labels: { app: 'db' }, node: 'node3' }));
  const d2 = g.flush();
  t.same(d2.endpointsRemoved, ['ns1/r1']);
  t.same(d2.workloadRoutesUpserted, [{ cidr: '192.168.1.1/32', node: 'node3' }]);
});
