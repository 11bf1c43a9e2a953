import t from 'tap';
import { CalcGraph } from '../../src/calc';
import type { IPPool } from '../../src/model';
import { gnp, node, tier, wep } from '../../src/testbed/fixtures';

t.test('doNotTrack deny-by-nets rules become prefilter CIDRs; the rest is listed as skipped', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  g.onUpdate(node('node1', { role: 'edge' }, '198.18.0.10/24'));
  g.onUpdate(
    gnp('dnt', {
      order: 1,
      selector: 'role == "edge"',
      doNotTrack: true,
      applyOnForward: true,
      types: ['Ingress', 'Egress'],
      ingress: [
        { action: 'Deny', source: { nets: ['198.51.100.0/24', '203.0.113.7'] } },
        { action: 'Deny', protocol: 'TCP', source: { nets: ['192.0.2.0/24'] } },
        { action: 'Allow', source: { nets: ['10.0.0.0/8'] } },
        { action: 'Deny', source: { nets: ['172.16.0.0/12'] } },
      ],
      egress: [{ action: 'Deny', destination: { nets: ['1.2.3.0/24'] } }],
    }),
  );
  g.onUpdate(gnp('other-node', { selector: 'role == "core"', doNotTrack: true, applyOnForward: true, ingress: [{ action: 'Deny', source: { nets: ['9.9.9.0/24'] } }] }));
  g.onUpdate(gnp('pre', { selector: 'all()', preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny', source: { nets: ['8.8.8.0/24'] } }] }));
  const d = g.flush();
  t.equal(d.prefilterChanged, true);
  const pf = g.snapshot().prefilter;
  t.same(
    pf.deny.map((x) => x.cidr),
    ['198.51.100.0/24', '203.0.113.7/32'],
  );
  t.equal(new Set(pf.deny.map((x) => x.ruleId)).size, 1, 'both CIDRs carry the rule id');
  const reasons = pf.skipped.map((s) => s.reason);
  t.ok(reasons.some((r) => /more than source\.nets/.test(r)));
  t.ok(reasons.some((r) => /Allow doNotTrack/.test(r)));
  t.ok(reasons.some((r) => /follows a doNotTrack rule/.test(r)), 'a deny after an allow is not deny-listed');
  t.ok(reasons.some((r) => /egress doNotTrack/.test(r)));
  t.ok(reasons.some((r) => /preDNAT/.test(r)));
  t.equal(pf.skipped.length, 5);
  // doNotTrack policies never reach workload tables
  g.onUpdate(wep('ns1/a', { ip: '192.168.0.1' }));
  g.flush();
  const snap = g.snapshot();
  const dntIds = new Set(snap.rules.filter((r) => r.policy?.name === 'dnt').map((r) => r.id));
  t.ok(snap.prefilter.deny.every((x) => dntIds.has(x.ruleId)), 'prefilter rule ids are in the rule table');
  t.notOk(
    snap.tables.some((tb) => tb.cells.some((c) => dntIds.has(c.ruleId))),
    'no workload table cell names a doNotTrack rule',
  );
  // the node's labels change: the policy no longer selects it
  g.onUpdate(node('node1', { role: 'core' }, '198.18.0.10/24'));
  const d2 = g.flush();
  t.equal(d2.prefilterChanged, true);
  t.same(
    g.snapshot().prefilter.deny.map((x) => x.cidr),
    ['9.9.9.0/24'],
  );
  g.onUpdate(tier('unused', 5));
  t.equal(g.flush().prefilterChanged, false, 'unchanged prefilter is not re-announced');
});

t.test('routing inputs: pools, nodes with subnets, remote workload routes', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  const pool: IPPool = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'pool1' },
    spec: { cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', natOutgoing: true, blockSize: 26 },
  };
  g.onUpdate(pool);
  g.onUpdate(node('node1', {}, '198.18.0.10/24'));
  g.onUpdate(node('node2', {}, '198.18.0.11/24'));
  g.onUpdate(wep('ns1/a', { ip: '192.168.0.1' }));
  g.onUpdate(wep('ns1/b', { ip: '192.168.0.65', node: 'node2' }));
  const d = g.flush();
  t.equal(d.routingChanged, true);
  const r = g.snapshot().routing;
  t.same(r.pools, [{ name: 'pool1', cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', vxlanMode: 'Never', natOutgoing: true, disabled: false, blockSize: 26 }]);
  t.same(r.nodes, [
    { name: 'node1', ipv4Address: '198.18.0.10/24' },
    { name: 'node2', ipv4Address: '198.18.0.11/24' },
  ]);
  t.same(r.workloadRoutes, [{ cidr: '192.168.0.65/32', node: 'node2' }]);
});
