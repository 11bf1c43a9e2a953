import t from 'tap';
import { CalcGraph, evaluate, TableIndex, type PolicyPacket } from '../../src/calc';
import type { Resource } from '../../src/model';
import { gnp, gns, namespace, netset, np, wep } from '../../src/testbed/fixtures';

// GlobalNetworkSet / NetworkSet: labelled CIDRs that rule selectors match as Calico evaluates
// them (an address matches a selector when any endpoint owning it or any set containing it
// matches). Every verdict is checked twice: compiled table lookup and the reference evaluator.

const tcp = (endpoint: string, remoteIP: string, dstPort = 80): PolicyPacket => ({
  endpoint, direction: 'ingress', remoteIP, protocol: 6, srcPort: 40000, dstPort,
});

function build(rs: Resource[]): CalcGraph {
  const g = new CalcGraph({ nodeName: 'node1' });
  for (const r of rs) g.onUpdate(r);
  g.flush();
  return g;
}

function verdicts(t: { equal: (a: unknown, b: unknown, m: string) => unknown }, g: CalcGraph, cases: [string, string, 'allow' | 'deny'][]): void {
  g.flush();
  const idx = new TableIndex(g.snapshot());
  for (const [ep, ip, want] of cases) {
    const p = tcp(ep, ip);
    t.equal(evaluate(p, g.resources).action, want, `reference: ${ep} from ${ip}`);
    t.equal(idx.lookup(p).action, want, `compiled: ${ep} from ${ip}`);
  }
}

const allowFrom = (sel: string, extra: Record<string, unknown> = {}) => ({ selector: "app == 'db'", ingress: [{ action: 'Allow' as const, source: { selector: sel, ...extra } }] });

t.test('a GlobalNetworkSet is matched by a rule selector through its CIDRs; edits and deletes follow', async (t) => {
  const g = build([
    wep('prod/db', { ip: '192.168.0.10', labels: { app: 'db' } }),
    gns('partners', ['198.18.5.0/24', '198.18.7.7'], { role: 'partner' }),
    gnp('db-from-partners', allowFrom("role == 'partner'")),
  ]);
  verdicts(t, g, [
    ['prod/db', '198.18.5.1', 'allow'],
    ['prod/db', '198.18.5.255', 'allow'],
    ['prod/db', '198.18.7.7', 'allow'],
    ['prod/db', '198.18.7.8', 'deny'],
    ['prod/db', '198.18.6.1', 'deny'],
  ]);
  g.onUpdate(gns('partners', ['198.18.6.0/23'], { role: 'partner' }));
  verdicts(t, g, [['prod/db', '198.18.5.1', 'deny'], ['prod/db', '198.18.6.1', 'allow'], ['prod/db', '198.18.7.7', 'allow']]);
  g.onUpdate(gns('partners', ['198.18.6.0/23'], { role: 'other' }));
  verdicts(t, g, [['prod/db', '198.18.6.1', 'deny']]);
  g.onUpdate(gns('partners', ['198.18.6.0/23'], { role: 'partner' }));
  g.onDelete('GlobalNetworkSet', 'partners');
  verdicts(t, g, [['prod/db', '198.18.6.1', 'deny']]);
});

t.test('sets and endpoints overlap: an address inside a set carries the set\'s labels too (nested sets as well)', async (t) => {
  const g = build([
    wep('prod/db', { ip: '192.168.0.10', labels: { app: 'db' } }),
    wep('prod/web', { ip: '192.168.1.5', labels: { app: 'web' }, node: 'node2' }),
    gns('zone-a', ['192.168.1.0/24'], { zone: 'a' }),
    gns('big', ['192.168.0.0/16'], { wide: 'yes' }),
    gnp('db', { selector: "app == 'db'", ingress: [
      { action: 'Deny', source: { selector: "zone == 'a'", notSelector: "app == 'web'" } },
      { action: 'Allow', source: { selector: "wide == 'yes'" } },
    ] }),
  ]);
  verdicts(t, g, [
    ['prod/db', '192.168.1.5', 'allow'], // in zone-a but it is web: notSelector excludes; then in big
    ['prod/db', '192.168.1.6', 'deny'], // zone-a, not web
    ['prod/db', '192.168.2.1', 'allow'], // only big
    ['prod/db', '198.18.0.1', 'deny'],
  ]);
});

t.test('NetworkSet: same-namespace NetworkPolicy selectors, namespaceSelector on the namespace labels, global() only reaches global sets', async (t) => {
  const g = build([
    namespace('shop', { team: 'blue' }),
    namespace('other', { team: 'red' }),
    wep('shop/db', { ip: '192.168.0.10', labels: { app: 'db' } }),
    wep('other/db', { ip: '192.168.0.11', labels: { app: 'db' } }),
    netset('shop/ext', ['198.18.10.0/24'], { role: 'ext' }),
    gns('glob', ['198.18.20.0/24'], { role: 'ext' }),
    np('shop/np', allowFrom("role == 'ext'")),
    np('other/np', allowFrom("role == 'ext'")),
  ]);
  verdicts(t, g, [
    ['shop/db', '198.18.10.1', 'allow'], // the namespace's own set
    ['shop/db', '198.18.20.1', 'deny'], // a global set is in no namespace
    ['other/db', '198.18.10.1', 'deny'], // another namespace's set
  ]);
  g.onUpdate(np('other/np', allowFrom("role == 'ext'", { namespaceSelector: "team == 'blue'" })));
  verdicts(t, g, [['other/db', '198.18.10.1', 'allow'], ['other/db', '198.18.20.1', 'deny']]);
  g.onUpdate(namespace('shop', { team: 'green' }));
  verdicts(t, g, [['other/db', '198.18.10.1', 'deny']]);
  g.onUpdate(np('other/np', allowFrom("role == 'ext'", { namespaceSelector: 'global()' })));
  verdicts(t, g, [['other/db', '198.18.20.1', 'allow'], ['other/db', '198.18.10.1', 'deny']]);
  g.onUpdate(gnp('gnp', allowFrom("projectcalico.org/namespace == 'shop'")));
  verdicts(t, g, [['shop/db', '198.18.10.1', 'allow'], ['other/db', '198.18.10.1', 'allow']]);
  g.onDelete('NetworkSet', 'ext', 'shop');
  verdicts(t, g, [['other/db', '198.18.10.1', 'deny']]);
});

t.test('order does not matter: sets before or after the policies and endpoints give the same output', async (t) => {
  const rs: Resource[] = [
    namespace('shop', { team: 'blue' }),
    wep('shop/db', { ip: '192.168.0.10', labels: { app: 'db' } }),
    netset('shop/ext', ['198.18.10.0/24', '198.18.11.0/25'], { role: 'ext' }),
    gns('glob', ['198.18.20.0/24', '198.18.10.128/25'], { role: 'ext', tier: 'x' }),
    gnp('g', allowFrom("role == 'ext' && tier == 'x'")),
    np('shop/np', allowFrom("role == 'ext'")),
  ];
  const a = build(rs).snapshot();
  const b = build([...rs].reverse()).snapshot();
  t.same(b, a);
});
