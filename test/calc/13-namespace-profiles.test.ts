import t from 'tap';
import { CalcGraph, evaluate, TableIndex, type PolicyPacket } from '../../src/calc';
import type { Resource } from '../../src/model';
import { gnp, namespace, profile, wep } from '../../src/testbed/fixtures';

// kns.<ns> profiles derived from Namespace objects as Calico's Kubernetes datastore does:
// allow-all both ways, labelsToApply pcns.*; a stored profile of the same name wins.

const tcp = (endpoint: string, direction: 'ingress' | 'egress', remoteIP: string, dstPort: number): PolicyPacket => ({
  endpoint, direction, remoteIP, protocol: 6, srcPort: 40000, dstPort,
});

function verdict(g: CalcGraph, p: PolicyPacket) {
  g.flush();
  const snap = g.snapshot();
  const got = new TableIndex(snap).lookup(p);
  const ref = evaluate(p, g.resources);
  return { action: got.action, ref: ref.action, rule: snap.rules.find((r) => r.id === got.ruleId) };
}

t.test('a Namespace alone makes its kns profile: traffic of a workload in a fresh namespace flows', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  g.onUpdate(wep('shop/a', { ip: '192.168.0.1', profiles: ['kns.shop'] }));
  let v = verdict(g, tcp('shop/a', 'ingress', '10.0.0.1', 80));
  t.same([v.action, v.ref, v.rule?.kind], ['deny', 'deny', 'no-profile-match'], 'no namespace yet: nothing allows');

  g.onUpdate(namespace('shop', { team: 'blue' }));
  for (const dir of ['ingress', 'egress'] as const) {
    v = verdict(g, tcp('shop/a', dir, '10.0.0.1', 80));
    t.same([v.action, v.ref], ['allow', 'allow'], `${dir}: allowed by the derived profile`);
    t.same(v.rule?.policy, { kind: 'Profile', name: 'kns.shop' });
  }

  g.onDelete('Namespace', 'shop');
  v = verdict(g, tcp('shop/a', 'ingress', '10.0.0.1', 80));
  t.same([v.action, v.ref], ['deny', 'deny'], 'namespace deleted: its profile went with it');
});

t.test('a stored profile of the same name takes precedence; deleting it falls back to the derived one', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  const rs: Resource[] = [
    namespace('shop'),
    wep('shop/a', { ip: '192.168.0.1', profiles: ['kns.shop'] }),
    profile('kns.shop', { ingress: [{ action: 'Deny' }] }),
  ];
  for (const r of rs) g.onUpdate(r);
  let v = verdict(g, tcp('shop/a', 'ingress', '10.0.0.1', 80));
  t.same([v.action, v.ref], ['deny', 'deny'], 'stored deny profile wins');
  g.onDelete('Profile', 'kns.shop');
  v = verdict(g, tcp('shop/a', 'ingress', '10.0.0.1', 80));
  t.same([v.action, v.ref], ['allow', 'allow'], 'derived allow-all again');
});

t.test('the derived labels (pcns.*) are what policies select, from any namespace referencing the profile', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  // A workload in namespace other naming kns.shop gets shop's pcns labels through the profile.
  g.onUpdate(wep('other/b', { ip: '192.168.0.2', profiles: ['kns.shop'] }));
  g.onUpdate(gnp('team-blue-deny', { selector: "pcns.team == 'blue'", ingress: [{ action: 'Deny' }] }));
  let v = verdict(g, tcp('other/b', 'ingress', '10.0.0.1', 80));
  t.same([v.action, v.ref], ['deny', 'deny']);
  t.equal(v.rule?.kind, 'no-profile-match', 'before the namespace exists: no profile');
  g.onUpdate(namespace('shop', { team: 'blue' }));
  v = verdict(g, tcp('other/b', 'ingress', '10.0.0.1', 80));
  t.same([v.action, v.ref], ['deny', 'deny']);
  t.same(v.rule?.policy, { kind: 'GlobalNetworkPolicy', name: 'team-blue-deny' }, 'selected through the labels the derived profile applies');
  g.onUpdate(namespace('shop', { team: 'red' }));
  v = verdict(g, tcp('other/b', 'ingress', '10.0.0.1', 80));
  t.same([v.action, v.ref], ['allow', 'allow'], 'relabelled namespace: no longer selected, profile allows');
});

t.test("Calico's built-in projectcalico-default-allow: an endpoint naming it is allowed when no policy decides; nothing stored replaces it", async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  g.onUpdate(wep('shop/a', { ip: '192.168.0.1', profiles: ['projectcalico-default-allow'] }));
  for (const dir of ['ingress', 'egress'] as const) {
    const v = verdict(g, tcp('shop/a', dir, '10.0.0.1', 80));
    t.same([v.action, v.ref], ['allow', 'allow'], `${dir}: allowed by the built-in profile, with no namespace and no policy`);
    t.same(v.rule?.policy, { kind: 'Profile', name: 'projectcalico-default-allow' });
  }
  // A profile of that name reaching the graph (written to etcd behind the client's back) does not replace it.
  g.onUpdate(profile('projectcalico-default-allow', { ingress: [{ action: 'Deny' }] }));
  let v = verdict(g, tcp('shop/a', 'ingress', '10.0.0.1', 80));
  t.same([v.action, v.ref], ['allow', 'allow'], 'the built-in wins over a stored one');
  g.onUpdate(gnp('deny-a', { selector: 'all()', ingress: [{ action: 'Deny' }] }));
  v = verdict(g, tcp('shop/a', 'ingress', '10.0.0.1', 80));
  t.same([v.action, v.ref], ['deny', 'deny'], 'a policy that decides comes before the profile');
  g.onUpdate(wep('shop/b', { ip: '192.168.0.2', profiles: [] }));
  v = verdict(g, tcp('shop/b', 'egress', '10.0.0.1', 80));
  t.same([v.action, v.ref, v.rule?.kind], ['deny', 'deny', 'no-profile-match'], 'an endpoint not naming it: nothing allows');
});
