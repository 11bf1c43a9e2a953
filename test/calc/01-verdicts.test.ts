import t from 'tap';
import { CalcGraph, evaluate, TableIndex, type PolicyPacket } from '../../src/calc';
import type { Resource } from '../../src/model';
import { gnp, namespace, np, profile, tier, wep } from '../../src/testbed/fixtures';

/** Compiles `resources` for node1 and returns a checker comparing table lookup and reference. */
function setup(resources: Resource[]) {
  const g = new CalcGraph({ nodeName: 'node1' });
  for (const r of resources) g.onUpdate(r);
  g.flush();
  const idx = new TableIndex(g.snapshot());
  return {
    g,
    check(p: PolicyPacket) {
      const ref = evaluate(p, g.resources);
      const got = idx.lookup(p);
      const rule = g.snapshot().rules.find((r) => r.id === got.ruleId);
      return { ref, got, rule };
    },
  };
}

const tcp = (endpoint: string, direction: 'ingress' | 'egress', remoteIP: string, dstPort: number, srcPort = 40000): PolicyPacket => ({
  endpoint,
  direction,
  remoteIP,
  protocol: 6,
  srcPort,
  dstPort,
});

t.test('no policy and no profile: deny (no-profile-match)', async (t) => {
  const s = setup([wep('ns1/a', { ip: '192.168.0.1' })]);
  const r = s.check(tcp('ns1/a', 'ingress', '10.0.0.1', 80));
  t.equal(r.ref.action, 'deny');
  t.equal(r.ref.decidedBy.kind, 'no-profile-match');
  t.equal(r.got.action, 'deny');
  t.equal(r.rule?.kind, 'no-profile-match');
});

t.test('profile allow-all applies when no policy selects the endpoint', async (t) => {
  const s = setup([
    wep('ns1/a', { ip: '192.168.0.1', profiles: ['kns.ns1'] }),
    profile('kns.ns1', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }),
    gnp('other', { selector: 'app == "x"', ingress: [{ action: 'Deny' }] }),
  ]);
  const r = s.check(tcp('ns1/a', 'ingress', '10.0.0.1', 80));
  t.equal(r.ref.action, 'allow');
  t.equal(r.got.action, 'allow');
  t.same(r.rule?.policy, { kind: 'Profile', name: 'kns.ns1' });
});

t.test('a selecting policy isolates: end-of-tier deny, then rule allow by selector and port', async (t) => {
  const s = setup([
    wep('ns1/a', { ip: '192.168.0.1', labels: { app: 'web' }, profiles: ['allow'] }),
    wep('ns1/b', { ip: '192.168.0.2', labels: { app: 'db' }, node: 'node2' }),
    wep('ns2/c', { ip: '192.168.0.3', labels: { app: 'db' }, node: 'node2' }),
    profile('allow', { ingress: [{ action: 'Allow' }] }),
    np('ns1/web', {
      selector: 'app == "web"',
      types: ['Ingress'],
      ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: 'app == "db"' }, destination: { ports: ['80:90'] } }],
    }),
  ]);
  for (const [ip, port, want] of [
    ['192.168.0.2', 85, 'allow'],
    ['192.168.0.2', 91, 'deny'],
    ['192.168.0.3', 85, 'deny'], // other namespace: namespaced selector
    ['10.1.1.1', 85, 'deny'],
  ] as const) {
    const r = s.check(tcp('ns1/a', 'ingress', ip, port));
    t.equal(r.ref.action, want, `ref ${ip}:${port}`);
    t.equal(r.got.action, want, `table ${ip}:${port}`);
  }
  const r = s.check(tcp('ns1/a', 'ingress', '10.1.1.1', 85));
  t.equal(r.rule?.kind, 'end-of-tier');
  t.equal(r.rule?.tier, 'default');
  // egress is not governed by the ingress-only policy: no profile egress rule → deny
  t.equal(s.check(tcp('ns1/a', 'egress', '10.1.1.1', 85)).got.action, 'deny');
});

t.test('tiers, Pass, Log and tier defaultAction Pass', async (t) => {
  const s = setup([
    tier('sec', 10),
    tier('soft', 20, 'Pass'),
    wep('ns1/a', { ip: '192.168.0.1', labels: { app: 'web' }, profiles: ['p'] }),
    profile('p', { ingress: [{ action: 'Deny', source: { nets: ['10.9.0.0/16'] } }, { action: 'Allow' }] }),
    gnp('s1', {
      tier: 'sec',
      order: 1,
      selector: 'all()',
      ingress: [
        { action: 'Log', source: { nets: ['10.0.0.0/8'] } },
        { action: 'Deny', source: { nets: ['10.66.0.0/16'] } },
        { action: 'Pass', source: { nets: ['10.0.0.0/8'] } },
      ],
    }),
    gnp('soft1', { tier: 'soft', selector: 'all()', ingress: [{ action: 'Deny', source: { nets: ['10.7.0.0/16'] } }] }),
  ]);
  const cases: [string, string, string][] = [
    ['10.66.1.1', 'deny', 'rule'], // Deny in tier sec after Log
    ['10.9.1.1', 'deny', 'rule'], // Pass → soft: no match → Pass default → profile deny
    ['10.7.1.1', 'deny', 'rule'], // Pass → soft: Deny
    ['10.1.1.1', 'allow', 'rule'], // Pass → soft → profile allow
    ['11.1.1.1', 'deny', 'end-of-tier'], // sec tier: nothing matched → end of tier deny
  ];
  for (const [ip, want, kind] of cases) {
    const r = s.check(tcp('ns1/a', 'ingress', ip, 80));
    t.equal(r.ref.action, want, `ref ${ip}`);
    t.equal(r.got.action, want, `table ${ip}`);
    t.equal(r.rule?.kind, kind, `rule kind ${ip}`);
    t.equal(r.ref.decidedBy.kind, kind);
    t.equal(r.got.logRuleIds.length, ip.startsWith('10.') ? 1 : 0, `log hits ${ip}`);
    t.equal(r.ref.logs.length, r.got.logRuleIds.length);
  }
});

t.test('named ports: ingress resolves the local endpoint, egress the remote endpoints', async (t) => {
  const s = setup([
    wep('ns1/a', { ip: '192.168.0.1', labels: { app: 'a' }, ports: [{ name: 'http', protocol: 'TCP', port: 8080 }] }),
    wep('ns1/b', { ip: '192.168.0.2', labels: { app: 'b' }, node: 'node2', ports: [{ name: 'http', protocol: 'TCP', port: 9090 }] }),
    wep('ns1/c', { ip: '192.168.0.3', labels: { app: 'c' }, node: 'node2', ports: [{ name: 'http', protocol: 'UDP', port: 9090 }] }),
    gnp('in', { selector: 'all()', ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['http'] } }] }),
    gnp('out', { selector: 'all()', types: ['Egress'], egress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['http'] } }] }),
  ]);
  t.equal(s.check(tcp('ns1/a', 'ingress', '10.0.0.1', 8080)).got.action, 'allow');
  t.equal(s.check(tcp('ns1/a', 'ingress', '10.0.0.1', 9090)).got.action, 'deny');
  t.equal(s.check(tcp('ns1/a', 'egress', '192.168.0.2', 9090)).got.action, 'allow');
  t.equal(s.check(tcp('ns1/a', 'egress', '192.168.0.2', 8080)).got.action, 'deny');
  t.equal(s.check(tcp('ns1/a', 'egress', '192.168.0.3', 9090)).got.action, 'deny', 'UDP named port does not match TCP');
  for (const [ip, port] of [['192.168.0.2', 9090], ['192.168.0.3', 9090], ['192.168.0.2', 8080]] as const) {
    const r = s.check(tcp('ns1/a', 'egress', ip, port));
    t.equal(r.got.action, r.ref.action, `agree ${ip}:${port}`);
  }
});

t.test('namespaceSelector, serviceAccounts, notSelector, ICMP and protocol numbers', async (t) => {
  const s = setup([
    namespace('prod', { env: 'prod' }),
    namespace('dev', { env: 'dev' }),
    wep('prod/a', { ip: '192.168.0.1', labels: { app: 'a' }, sa: 'front' }),
    wep('prod/b', { ip: '192.168.0.2', labels: { app: 'b' }, node: 'node2', sa: 'back' }),
    wep('dev/c', { ip: '192.168.0.3', labels: { app: 'b' }, node: 'node2', sa: 'back' }),
    gnp('g', {
      selector: 'all()',
      ingress: [
        { action: 'Allow', protocol: 'ICMP', icmp: { type: 8 }, source: { namespaceSelector: 'env == "prod"' } },
        { action: 'Allow', protocol: 6, source: { serviceAccounts: { names: ['back'] }, notSelector: 'projectcalico.org/namespace == "dev"' } },
      ],
    }),
  ]);
  const icmp = (ip: string, type: number): PolicyPacket => ({ endpoint: 'prod/a', direction: 'ingress', remoteIP: ip, protocol: 1, icmpType: type, icmpCode: 0 });
  for (const [p, want] of [
    [icmp('192.168.0.2', 8), 'allow'],
    [icmp('192.168.0.2', 0), 'deny'],
    [icmp('192.168.0.3', 8), 'deny'],
    [tcp('prod/a', 'ingress', '192.168.0.2', 22), 'allow'],
    [tcp('prod/a', 'ingress', '192.168.0.3', 22), 'deny'],
  ] as const) {
    const r = s.check(p);
    t.equal(r.ref.action, want, `ref ${JSON.stringify(p)}`);
    t.equal(r.got.action, want, `table ${JSON.stringify(p)}`);
  }
});
