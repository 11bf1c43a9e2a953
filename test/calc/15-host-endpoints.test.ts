import t from 'tap';
import { CalcGraph, hostStageTable, TableIndex, validateCompiled, type PolicyPacket } from '../../src/calc';
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

t.test('a rule\'s local-side nets/notNets on a host endpoint: the stage is compiled per region of those nets', async (t) => {
  const g = build([
    hep('eth0', { iface: 'eth0', labels: { role: 'host' }, ips: ['198.18.0.1'] }),
    gnp('local-nets', { selector: "role == 'host'", types: ['Ingress', 'Egress'], ingress: [
      { action: 'Allow', protocol: 'TCP', destination: { nets: ['198.18.0.1/32'], ports: [80] } },
      { action: 'Allow', protocol: 'TCP', destination: { notNets: ['198.18.0.0/24'], ports: [81] } },
      { action: 'Allow', protocol: 'TCP', destination: { ports: [82] } },
    ], egress: [{ action: 'Allow', source: { nets: ['198.18.0.2/32'] } }] }),
  ]);
  const s = g.snapshot();
  t.same(validateCompiled(s), []);
  const e = hepOf(s, 'eth0');
  t.same(Object.keys(e.host!.local ?? {}).sort(), ['egress', 'ingress'], 'both normal slots dispatch on the local address');
  t.same(e.host!.local!.ingress!.map((r) => r.cidr).sort(), ['0.0.0.0/0', '198.18.0.0/24', '198.18.0.1/32', '::/0'], 'the nets, and each family\'s rest');
  const inAt = (local: string, port: number) => verdictIn(s, hostStageTable(e, 'ingress', local)!, pkt('ingress', '198.51.100.9', port));
  t.equal(inAt('198.18.0.1', 80), 'allow', 'destination.nets: the named address');
  t.equal(inAt('198.18.0.2', 80), 'deny', 'destination.nets: another address of the node');
  t.equal(inAt('198.18.0.1', 81), 'deny', 'destination.notNets: an address in the net');
  t.equal(inAt('198.18.0.2', 81), 'deny', 'destination.notNets: in the /24 (region of the /24, not of the /32)');
  t.equal(inAt('10.1.2.3', 81), 'allow', 'destination.notNets: outside the net');
  t.equal(inAt('10.1.2.3', 80), 'deny');
  for (const a of ['198.18.0.1', '198.18.0.2', '10.1.2.3']) t.equal(inAt(a, 82), 'allow', `a rule without local nets: ${a}`);
  const outAt = (local: string) => verdictIn(s, hostStageTable(e, 'egress', local)!, pkt('egress', '198.51.100.9', 53, 17));
  t.equal(outAt('198.18.0.2'), 'allow', 'source.nets: the named address');
  t.equal(outAt('198.18.0.1'), 'deny', 'source.nets: the other address');
  t.equal(e.tables.ingress, hostStageTable(e, 'ingress', '10.1.2.3'), 'the slot table is the 0.0.0.0/0 region');
});

t.test('local-side nets in preDNAT, doNotTrack and applyOnForward stages; nets that decide nothing make no dispatch', async (t) => {
  const g = build([
    hep('eth0', { iface: 'eth0', labels: { role: 'host' }, ips: ['198.18.0.1'] }),
    gnp('pre', { selector: "role == 'host'", preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny', destination: { nets: ['192.168.7.0/24'] } }] }),
    gnp('dnt', { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, types: ['Egress'], egress: [{ action: 'Allow', source: { notNets: ['198.18.0.1/32'] } }] }),
    gnp('fwd', { selector: "role == 'host'", applyOnForward: true, ingress: [{ action: 'Allow', destination: { nets: ['0.0.0.0/0', '::/0'] } }] }),
  ]);
  const s = g.snapshot();
  t.same(validateCompiled(s), []);
  const e = hepOf(s, 'eth0');
  t.equal(verdictIn(s, hostStageTable(e, 'preDNAT', '192.168.7.5')!, pkt('ingress', '198.51.100.9', 80)), 'deny', 'preDNAT: to the net');
  t.equal(verdictIn(s, hostStageTable(e, 'preDNAT', '198.18.0.1')!, pkt('ingress', '198.51.100.9', 80)), 'next', 'preDNAT: elsewhere, next stage');
  t.equal(verdictIn(s, hostStageTable(e, 'untrackedEgress', '198.18.0.1')!, pkt('egress', '198.51.100.9', 80)), 'next', 'doNotTrack notNets: from the net');
  t.equal(verdictIn(s, hostStageTable(e, 'untrackedEgress', '198.18.0.2')!, pkt('egress', '198.51.100.9', 80)), 'allow', 'doNotTrack notNets: elsewhere');
  t.equal(e.host!.local?.forwardIngress, undefined, '0.0.0.0/0 and ::/0 hold every address: one table');
  t.equal(verdictIn(s, e.host!.tables.forwardIngress!, pkt('ingress', '198.51.100.9', 80)), 'allow');
});

t.test('local-side nets: regions follow policy changes, and tables of dropped regions go', async (t) => {
  const g = build([
    hep('eth0', { iface: 'eth0', labels: { role: 'host' }, ips: ['198.18.0.1'] }),
    gnp('p', { selector: "role == 'host'", ingress: [{ action: 'Allow', destination: { nets: ['198.18.0.1/32', '198.18.1.0/24'] } }] }),
  ]);
  t.same(hepOf(g.snapshot(), 'eth0').host!.local!.ingress!.map((r) => r.cidr).sort(), ['0.0.0.0/0', '198.18.0.1/32', '198.18.1.0/24', '::/0']);
  const before = g.snapshot().tables.length;
  g.onUpdate(gnp('p', { selector: "role == 'host'", ingress: [{ action: 'Allow', destination: { ports: [22] }, protocol: 'TCP' }] }));
  g.flush();
  const s = g.snapshot();
  t.same(validateCompiled(s), []);
  t.equal(hepOf(s, 'eth0').host!.local, undefined, 'no local nets: no dispatch');
  t.ok(s.tables.length < before, `the region tables are gone (${before} → ${s.tables.length})`);
});

t.test('IPv6-only nets on a host endpoint never match its IPv4 traffic (the rule is IPv6 only, as Felix renders it)', async (t) => {
  const g = build([
    hep('eth0', { iface: 'eth0', labels: { role: 'host' } }),
    gnp('v6-local', { selector: "role == 'host'", order: 1, ingress: [{ action: 'Allow', destination: { nets: ['fd00:1::/64'] } }] }),
    gnp('v6-remote', { selector: "role == 'host'", order: 2, ingress: [{ action: 'Allow', source: { nets: ['fd00:2::/64'] } }] }),
    gnp('v6-not', { selector: "role == 'host'", order: 3, egress: [{ action: 'Allow', source: { notNets: ['fd00:3::/64'] } }] }),
  ]);
  const s = g.snapshot();
  t.same(validateCompiled(s), []);
  const e = hepOf(s, 'eth0');
  for (const local of ['198.18.0.1', '10.1.2.3']) {
    const tbl = hostStageTable(e, 'ingress', local) ?? e.tables.ingress;
    t.equal(verdictIn(s, tbl, pkt('ingress', '198.18.0.9', 80)), 'deny', `ingress to ${local}: the IPv6 rules do not match IPv4`);
    const out = hostStageTable(e, 'egress', local) ?? e.tables.egress;
    t.equal(verdictIn(s, out, pkt('egress', '198.18.0.9', 53, 17)), 'deny', `egress from ${local}: an IPv6 notNets does not match IPv4`);
  }
});
