// IPv6 and dual stack in the compiler: one class partition of both families' addresses feeding
// the same tables, Felix's per-family rendering of rules (ipVersion; nets/notNets of one family
// only make a rule of that family; selectors match the addresses of either family), network
// sets with IPv6 nets, local-side nets per family. Verdicts from the compiled tables (TableIndex,
// the datapath's lookup in TS), and from the reference evaluator, for both families.
import t from 'tap';
import { CalcGraph, evaluate, TableIndex, type PolicyPacket } from '../../src/calc';
import type { Resource, Rule } from '../../src/model';
import { gnp, gns, wep } from '../../src/testbed/fixtures';

const DB = ['192.168.0.10', 'fd00:10::10'];
const WEB = ['192.168.1.5', 'fd00:10::5'];
const OTHER = ['192.168.2.7', 'fd00:10::7'];

function build(rs: Resource[]): CalcGraph {
  const g = new CalcGraph({ nodeName: 'node1' });
  for (const r of rs) g.onUpdate(r);
  g.flush();
  return g;
}

const pkt = (remoteIP: string, o: Partial<PolicyPacket> = {}): PolicyPacket =>
  ({ endpoint: 'prod/db', direction: 'ingress', remoteIP, protocol: 6, srcPort: 40000, dstPort: 80, ...o });

type T = { equal: (a: unknown, b: unknown, m: string) => unknown };
function check(t: T, g: CalcGraph, cases: [string, 'allow' | 'deny', Partial<PolicyPacket>?][]): void {
  g.flush();
  const idx = new TableIndex(g.snapshot());
  for (const [ip, want, o] of cases) {
    const p = pkt(ip, o);
    t.equal(idx.lookup(p).action, want, `compiled: ${p.direction} ${p.protocol}/${p.dstPort} ${ip}`);
    t.equal(evaluate(p, g.resources).action, want, `reference: ${ip}`);
  }
}

const base = (rules: Rule[]): Resource[] => [
  wep('prod/db', { ip: DB, labels: { app: 'db' } }),
  wep('prod/web', { ip: WEB, labels: { app: 'web' }, node: 'node2' }),
  wep('prod/other', { ip: OTHER, labels: { app: 'other' }, node: 'node2' }),
  gnp('db-in', { selector: "app == 'db'", ingress: rules }),
];

t.test('a selector matches the remote endpoint\'s addresses of both families', async (t) => {
  const g = build(base([{ action: 'Allow', source: { selector: "app == 'web'" } }]));
  check(t, g, [[WEB[0]!, 'allow'], [WEB[1]!, 'allow'], [OTHER[0]!, 'deny'], [OTHER[1]!, 'deny'], ['fd00:99::1', 'deny']]);
  const snap = g.snapshot();
  t.ok(snap.classes.prefixes.some((p) => p.family === 6 && p.cidr === 'fd00:10::5/128'), 'the IPv6 address is a class prefix of family 6');
});

t.test('nets: IPv6 CIDRs, mixed lists, and a list of one family makes a rule of that family', async (t) => {
  let g = build(base([{ action: 'Allow', source: { nets: ['fd00:20::/64'] } }]));
  check(t, g, [['fd00:20::1', 'allow'], ['fd00:20:0:1::1', 'deny'], ['192.168.5.5', 'deny']]);
  g = build(base([{ action: 'Allow', source: { nets: ['fd00:20::/64', '10.0.0.0/8'] } }]));
  check(t, g, [['fd00:20::1', 'allow'], ['10.1.2.3', 'allow'], ['11.0.0.1', 'deny'], ['fd00:21::1', 'deny']]);
  // notNets of IPv4 only: Felix renders no IPv6 version of the rule.
  g = build(base([{ action: 'Allow', source: { notNets: ['10.0.0.0/8'] } }]));
  check(t, g, [['11.0.0.1', 'allow'], ['10.0.0.1', 'deny'], ['fd00:20::1', 'deny']]);
  g = build(base([{ action: 'Allow', source: { notNets: ['fd00:20::/64'] } }]));
  check(t, g, [['fd00:21::1', 'allow'], ['fd00:20::1', 'deny'], ['11.0.0.1', 'deny']]);
});

t.test('ipVersion restricts a rule to one family', async (t) => {
  let g = build(base([{ action: 'Allow', ipVersion: 6 }]));
  check(t, g, [['fd00:99::1', 'allow'], [WEB[1]!, 'allow'], ['10.0.0.1', 'deny'], [WEB[0]!, 'deny']]);
  g = build(base([{ action: 'Allow', ipVersion: 4 }]));
  check(t, g, [['10.0.0.1', 'allow'], [WEB[0]!, 'allow'], ['fd00:99::1', 'deny'], [WEB[1]!, 'deny']]);
  g = build(base([{ action: 'Allow', ipVersion: 6, protocol: 'TCP', source: { selector: "app == 'web'" }, destination: { ports: [80] } }]));
  check(t, g, [[WEB[1]!, 'allow'], [WEB[1]!, 'deny', { dstPort: 81 }], [WEB[0]!, 'deny'], [OTHER[1]!, 'deny']]);
});

t.test('dual stack: IPv4 allowed and IPv6 denied by an IPv6-only rule', async (t) => {
  const g = build(base([
    { action: 'Deny', ipVersion: 6, source: { selector: "app == 'web'" } },
    { action: 'Allow', source: { selector: "app == 'web'" } },
  ]));
  check(t, g, [[WEB[0]!, 'allow'], [WEB[1]!, 'deny'], [OTHER[0]!, 'deny']]);
});

t.test('ICMPv6 rules match ICMPv6 type and code', async (t) => {
  const g = build(base([{ action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128 } }]));
  check(t, g, [
    ['fd00:99::1', 'allow', { protocol: 58, icmpType: 128, icmpCode: 0 }],
    ['fd00:99::1', 'deny', { protocol: 58, icmpType: 129, icmpCode: 0 }],
    ['fd00:99::1', 'deny', { protocol: 1, icmpType: 8, icmpCode: 0 }],
  ]);
});

t.test('network sets with IPv6 nets', async (t) => {
  const g = build([...base([{ action: 'Allow', source: { selector: "role == 'partner'" } }]),
    gns('partners', ['fd00:40::/48', '198.18.5.0/24'], { role: 'partner' })]);
  check(t, g, [['fd00:40::9', 'allow'], ['198.18.5.1', 'allow'], ['fd00:41::9', 'deny']]);
  g.onUpdate(gns('partners', ['fd00:41::/48'], { role: 'partner' }));
  check(t, g, [['fd00:40::9', 'deny'], ['fd00:41::9', 'allow'], ['198.18.5.1', 'deny']]);
});

t.test('local-side nets are resolved per family on a dual-stack endpoint', async (t) => {
  // destination (local) nets hold the endpoint's IPv6 address only: the rule exists for IPv6.
  let g = build(base([{ action: 'Allow', destination: { nets: ['fd00:10::/64'] } }]));
  check(t, g, [['fd00:99::1', 'allow'], ['10.0.0.1', 'deny']]);
  g = build(base([{ action: 'Allow', destination: { nets: ['192.168.0.0/16', 'fd00:99::/64'] } }]));
  check(t, g, [['10.0.0.1', 'allow'], ['fd00:99::1', 'deny']]);
  g = build(base([{ action: 'Allow', destination: { notNets: ['fd00:10::/64'] } }]));
  check(t, g, [['10.0.0.1', 'deny'], ['fd00:99::1', 'deny']]);
});
