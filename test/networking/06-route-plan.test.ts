// The Calico routing rules, without a kernel: next hop node, same subnet by this node's prefix,
// IPIP per pool mode (Always / CrossSubnet / Never), longest-prefix pool, and what is skipped.
import t from 'tap';
import { planRoutes, poolOf } from '../../src/dataplane/routes';
import type { RoutingState } from '../../src/calc/types';

const pool = (name: string, cidr: string, ipipMode: string, natOutgoing = false) =>
  ({ name, cidr, ipipMode, vxlanMode: 'Never', natOutgoing, disabled: false, blockSize: 26 });

const routing: RoutingState = {
  pools: [pool('cross', '192.168.0.0/16', 'CrossSubnet', true), pool('always', '192.168.128.0/17', 'Always'), pool('never', '10.65.0.0/16', 'Never')],
  nodes: [
    { name: 'a', ipv4Address: '198.18.1.10/24' }, { name: 'b', ipv4Address: '198.18.1.11/24' },
    { name: 'c', ipv4Address: '198.18.2.10/24' }, { name: 'd' },
  ],
  workloadRoutes: [],
};

const wl: [string, string][] = [
  ['192.168.1.5/32', 'b'], ['192.168.3.5/32', 'c'], ['192.168.130.1/32', 'b'], ['10.65.0.9/32', 'c'],
  ['192.168.1.6/32', 'a'], ['192.168.1.7/32', 'd'], ['192.168.1.8/32', 'gone'], ['172.16.0.1/32', 'c'],
];

t.test('node a', async (t) => {
  const p = planRoutes('a', routing, wl);
  t.equal(p.nodeIp, '198.18.1.10');
  t.same(p.routes.map((r) => [r.cidr, r.nodeIp, r.sameSubnet, r.encap]), [
    ['192.168.1.5/32', '198.18.1.11', true, false],  // CrossSubnet, same subnet: direct
    ['192.168.3.5/32', '198.18.2.10', false, true],  // CrossSubnet, other subnet: IPIP
    ['192.168.130.1/32', '198.18.1.11', true, true], // Always (longest prefix wins over the /16)
    ['10.65.0.9/32', '198.18.2.10', false, false],   // Never: routed, not encapsulated
    ['172.16.0.1/32', '198.18.2.10', false, false],  // in no pool: as Never
  ]);
  t.same(p.skipped.map((s) => [s.cidr, s.reason]), [['192.168.1.7/32', 'node has no IPv4 address'], ['192.168.1.8/32', 'node not known']]);
});

t.test('node c sees a and b across subnets', async (t) => {
  const p = planRoutes('c', routing, wl);
  t.same(p.routes.filter((r) => r.node === 'b').map((r) => [r.cidr, r.encap]), [['192.168.1.5/32', true], ['192.168.130.1/32', true]]);
  t.notOk(p.routes.some((r) => r.node === 'c'), 'own workloads are the CNI plugin\'s');
});

t.test('a node without an address (policy-only) plans nothing; a /32 address is its own subnet', async (t) => {
  t.same(planRoutes('d', routing, wl), { routes: [], skipped: [] });
  t.same(planRoutes('nobody', routing, wl), { routes: [], skipped: [] });
  const bare = { ...routing, nodes: [{ name: 'a', ipv4Address: '198.18.1.10' }, { name: 'b', ipv4Address: '198.18.1.11/24' }] };
  t.same(planRoutes('a', bare, [['192.168.1.5/32', 'b']]).routes.map((r) => [r.sameSubnet, r.encap]), [[false, true]]);
});

t.test('poolOf: longest prefix, IPv6 pools ignored', async (t) => {
  const pools = [...routing.pools, pool('v6', 'fd00::/48', 'Never')];
  t.equal(poolOf(pools, '192.168.200.1/32')?.name, 'always');
  t.equal(poolOf(pools, '192.168.0.0/32')?.name, 'cross');
  t.equal(poolOf(pools, '192.169.0.1/32'), undefined);
});
