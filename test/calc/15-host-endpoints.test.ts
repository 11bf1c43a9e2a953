import t from 'tap';
import { CalcGraph, TableIndex, validateCompiled, type PolicyPacket } from '../../src/calc';
import type { CompiledState, LocalEndpoint } from '../../src/calc/types';
import type { Resource } from '../../src/model';
import { gnp, hep, np, profile, wep } from '../../src/testbed/fixtures';

// HostEndpoints in the compiler: one local endpoint with a table per stage (Calico's host
// endpoint chains): normal ingress/egress (to/from the host: every policy but doNotTrack/preDNAT,
// then profiles, then deny), forward (applyOnForward only; absent = allowed), preDNAT and
// doNotTrack (absent = next stage; in a table, "no policy decided" is the passThroughRule).

function build(rs: Resource[]): CalcGraph {
  const g = new CalcGraph({ nodeName: 'node1' });
  for (const r of rs) g.onUpdate(r);
  g.flush();
  return g;
}

const pkt = (direction: 'ingress' | 'egress', remoteIP: string, dstPort: number, protocol = 6): PolicyPacket =>
  ({ endpoint: '', direction, remoteIP, protocol, srcPort: 40000, dstPort });

function hepOf(s: CompiledState, name: string): LocalEndpoint {
  const e = s.endpoints.find((x) => x.key === `HostEndpoint:${name}`);
  if (e === undefined) throw new Error(`no local host endpoint ${name}`);
  return e;
}

/** 'allow' | 'deny' | 'next' (a passThroughRule cell) of one table. */
function verdictIn(s: CompiledState, tableId: string, p: PolicyPacket): 'allow' | 'deny' | 'next' {
  const r = new TableIndex(s).lookupIn(tableId, p);
  const t = s.tables.find((x) => x.id === tableId)!;
  if (t.passThroughRule !== undefined && r.ruleId === t.passThroughRule) return 'next';
  return r.action;
}

t.test('a host endpoint with no policy and no profile denies to and from the host; no other stage', async (t) => {
  const g = build([hep('eth0', { iface: 'eth0' })]);
  const s = g.snapshot();
  t.same(validateCompiled(s), []);
  const e = hepOf(s, 'eth0');
  t.same(e.host, { interfaceName: 'eth0', expectedIPs: [], tables: {} });
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.0.9', 8080)), 'deny');
  t.equal(verdictIn(s, e.tables.egress, pkt('egress', '198.18.0.9', 53, 17)), 'deny');
  const rule = s.rules.find((r) => r.id === new TableIndex(s).lookupIn(e.tables.ingress, pkt('ingress', '198.18.0.9', 1)).ruleId);
  t.equal(rule?.kind, 'no-profile-match');
});

t.test('host endpoints of other nodes are not local; NetworkPolicies never select host endpoints', async (t) => {
  const g = build([
    hep('other', { iface: 'eth0', node: 'node2', labels: { role: 'host' } }),
    hep('mine', { iface: 'eth0', labels: { role: 'host' } }),
    np('default/allow-all', { selector: 'all()', ingress: [{ action: 'Allow' }] }),
  ]);
  const s = g.snapshot();
  t.same(s.endpoints.map((e) => e.key), ['HostEndpoint:mine']);
  t.equal(verdictIn(s, hepOf(s, 'mine').tables.ingress, pkt('ingress', '198.18.0.9', 80)), 'deny');
});

t.test('normal policy: to/from the host only; applyOnForward policy: both, forwarded traffic denied where it does not allow', async (t) => {
  const g = build([
    hep('eth0', { iface: 'eth0', labels: { role: 'host' } }),
    gnp('ssh-in', { selector: "role == 'host'", ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [8080] } }] }),
  ]);
  let s = g.snapshot();
  let e = hepOf(s, 'eth0');
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.0.9', 8080)), 'allow');
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.0.9', 8081)), 'deny', 'end of tier');
  t.equal(e.host!.tables.forwardIngress, undefined, 'no applyOnForward policy: forwarded traffic is not policed');
  g.onUpdate(gnp('fwd', { selector: "role == 'host'", applyOnForward: true, ingress: [{ action: 'Allow', source: { nets: ['198.18.1.0/24'] } }] }));
  g.flush();
  s = g.snapshot();
  t.same(validateCompiled(s), []);
  e = hepOf(s, 'eth0');
  const fwd = e.host!.tables.forwardIngress!;
  t.ok(fwd);
  t.equal(e.host!.tables.forwardEgress, undefined, 'ingress-only policy: no forward egress stage');
  t.equal(verdictIn(s, fwd, pkt('ingress', '198.18.1.7', 9999)), 'allow');
  t.equal(verdictIn(s, fwd, pkt('ingress', '198.18.0.9', 8080)), 'deny', 'the normal-only policy does not apply to forwarded traffic');
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.1.7', 9999)), 'allow', 'applyOnForward policies apply to host traffic too');
  g.onDelete('GlobalNetworkPolicy', 'fwd');
  g.flush();
  t.equal(hepOf(g.snapshot(), 'eth0').host!.tables.forwardIngress, undefined);
});

t.test('preDNAT and doNotTrack stages: only their policies, no end-of-tier deny, undecided = next stage', async (t) => {
  const g = build([
    hep('eth0', { iface: 'eth0', labels: { role: 'host' } }),
    wep('prod/web', { ip: '192.168.0.5', labels: { role: 'host' } }),
    gnp('pre', { selector: "role == 'host'", preDNAT: true, applyOnForward: true, ingress: [
      { action: 'Deny', source: { nets: ['198.18.66.0/24'] } },
      { action: 'Allow', protocol: 'TCP', destination: { ports: [443] } },
    ] }),
    gnp('dnt', { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, types: ['Egress'], egress: [{ action: 'Deny', protocol: 'UDP', destination: { ports: [9999] } }] }),
  ]);
  const s = g.snapshot();
  t.same(validateCompiled(s), []);
  const e = hepOf(s, 'eth0');
  const pre = e.host!.tables.preDNAT!;
  t.equal(verdictIn(s, pre, pkt('ingress', '198.18.66.3', 22)), 'deny');
  t.equal(verdictIn(s, pre, pkt('ingress', '198.18.0.1', 443)), 'allow');
  t.equal(verdictIn(s, pre, pkt('ingress', '198.18.0.1', 80)), 'next');
  t.equal(s.rules.find((r) => r.id === s.tables.find((x) => x.id === pre)!.passThroughRule)?.kind, 'stage-end');
  const dnt = e.host!.tables.untrackedEgress!;
  t.equal(verdictIn(s, dnt, pkt('egress', '198.18.0.1', 9999, 17)), 'deny');
  t.equal(verdictIn(s, dnt, pkt('egress', '198.18.0.1', 53, 17)), 'next');
  t.equal(e.host!.tables.untrackedIngress, undefined);
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.66.3', 443)), 'deny', 'preDNAT policies are not normal policies');
  // A workload with the same labels is not selected by doNotTrack/preDNAT policies.
  const idx = new TableIndex(s);
  t.equal(idx.lookup({ ...pkt('ingress', '198.18.66.3', 443), endpoint: 'prod/web' }).action, 'deny');
  const w = s.endpoints.find((x) => x.key === 'prod/web')!;
  t.equal(w.host, undefined);
});

t.test('profiles apply to normal traffic only; their labelsToApply label the host endpoint', async (t) => {
  const g = build([
    profile('hosts', { labelsToApply: { tier: 'infra' }, ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [9100] } }] }),
    hep('eth0', { iface: 'eth0', profiles: ['hosts'] }),
    gnp('fwd-infra', { selector: "tier == 'infra'", applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [9101] } }] }),
  ]);
  const s = g.snapshot();
  const e = hepOf(s, 'eth0');
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.0.9', 9100)), 'deny', 'a tier with a policy ends in deny before the profile');
  g.onDelete('GlobalNetworkPolicy', 'fwd-infra');
  g.flush();
  const s2 = g.snapshot();
  const e2 = hepOf(s2, 'eth0');
  t.equal(verdictIn(s2, e2.tables.ingress, pkt('ingress', '198.18.0.9', 9100)), 'allow', 'profile rule');
  t.equal(verdictIn(s2, e2.tables.ingress, pkt('ingress', '198.18.0.9', 9101)), 'deny');
});

t.test('expectedIPs are the host endpoint\'s addresses for rule selectors; named ports resolve on the host endpoint', async (t) => {
  const g = build([
    hep('gw', { iface: 'eth1', node: 'node2', ips: ['198.18.3.4'], labels: { role: 'gateway' } }),
    hep('eth0', { iface: 'eth0', labels: { role: 'host' }, ports: [{ name: 'metrics', protocol: 'TCP', port: 9090 }] }),
    wep('prod/db', { ip: '192.168.0.10', labels: { app: 'db' } }),
    gnp('db-from-gw', { selector: "app == 'db'", ingress: [{ action: 'Allow', source: { selector: "role == 'gateway'" } }] }),
    gnp('metrics', { selector: "role == 'host'", ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['metrics'] } }] }),
  ]);
  let s = g.snapshot();
  const idx = new TableIndex(s);
  t.equal(idx.lookup({ ...pkt('ingress', '198.18.3.4', 5432), endpoint: 'prod/db' }).action, 'allow');
  t.equal(idx.lookup({ ...pkt('ingress', '198.18.3.5', 5432), endpoint: 'prod/db' }).action, 'deny');
  const e = hepOf(s, 'eth0');
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.0.9', 9090)), 'allow');
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.0.9', 9091)), 'deny');
  g.onUpdate(hep('gw', { iface: 'eth1', node: 'node2', ips: ['198.18.3.5'], labels: { role: 'gateway' } }));
  g.flush();
  s = g.snapshot();
  t.equal(new TableIndex(s).lookup({ ...pkt('ingress', '198.18.3.4', 5432), endpoint: 'prod/db' }).action, 'deny', 'address moved');
  t.equal(new TableIndex(s).lookup({ ...pkt('ingress', '198.18.3.5', 5432), endpoint: 'prod/db' }).action, 'allow');
  g.onDelete('HostEndpoint', 'gw');
  g.onDelete('HostEndpoint', 'eth0');
  const d = g.flush();
  t.same(d.endpointsRemoved, ['HostEndpoint:eth0']);
  t.equal(new TableIndex(g.snapshot()).lookup({ ...pkt('ingress', '198.18.3.5', 5432), endpoint: 'prod/db' }).action, 'deny');
});

t.test('deltas rebuild the snapshot: host endpoint slots appear and disappear', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  const mirror = new Map<string, LocalEndpoint>();
  const steps: (() => void)[] = [
    () => g.onUpdate(hep('eth0', { iface: '*', labels: { role: 'host' } })),
    () => g.onUpdate(gnp('pre', { selector: "role == 'host'", preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny', source: { nets: ['198.18.66.0/24'] } }] })),
    () => g.onUpdate(gnp('dnt', { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] })),
    () => g.onDelete('GlobalNetworkPolicy', 'pre'),
    () => g.onUpdate(hep('eth0', { iface: '*', labels: { role: 'other' } })),
  ];
  for (const step of steps) {
    step();
    const d = g.flush();
    for (const k of d.endpointsRemoved) mirror.delete(k);
    for (const e of d.endpointsUpserted) mirror.set(e.key, e);
    const s = g.snapshot();
    t.same(validateCompiled(s), []);
    t.same([...mirror.values()].sort((a, b) => (a.key < b.key ? -1 : 1)), s.endpoints);
  }
  t.same(hepOf(g.snapshot(), 'eth0').host!.tables, {});
});

t.test('a rule\'s local-side nets or notNets never match on a host endpoint (its local address varies)', async (t) => {
  const g = build([
    hep('eth0', { iface: 'eth0', labels: { role: 'host' }, ips: ['198.18.0.1'] }),
    gnp('local-nets', { selector: "role == 'host'", ingress: [
      { action: 'Allow', protocol: 'TCP', destination: { nets: ['198.18.0.1/32'], ports: [80] } },
      { action: 'Allow', protocol: 'TCP', destination: { notNets: ['10.0.0.0/8'], ports: [81] } },
      { action: 'Allow', protocol: 'TCP', destination: { ports: [82] } },
    ] }),
  ]);
  const s = g.snapshot();
  const e = hepOf(s, 'eth0');
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.0.9', 80)), 'deny', 'local nets: never');
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.0.9', 81)), 'deny', 'local notNets: never (not "always")');
  t.equal(verdictIn(s, e.tables.ingress, pkt('ingress', '198.18.0.9', 82)), 'allow', 'the rest of the policy applies');
});
