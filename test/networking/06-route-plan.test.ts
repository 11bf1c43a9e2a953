// The Calico routing rules, without a kernel: next hop node, same subnet by this node's prefix,
// IPIP per pool mode (Always / CrossSubnet / Never), longest-prefix pool, and what is skipped;
// then the map entries and kernel routes planned from that (planNetworking).
import t from 'tap';
import { planNetworking, planRoutes, planRoutes6, poolOf, underlayTargets } from '../../src/dataplane/routing';
import { NODE_F, POOL_F, RT_F } from '../../src/dataplane/bpf/net-codecs';
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

t.test('underlayTargets: nodes outside the subnet, once each, in route order', async (t) => {
  t.same(underlayTargets(planRoutes('a', routing, wl)), [{ node: 'c', nodeIp: '198.18.2.10' }]);
  t.same(underlayTargets(planRoutes('c', routing, wl)).map((x) => x.nodeIp), ['198.18.1.11', '198.18.1.10']);
});

t.test('planNetworking: maps and kernel routes of node a', async (t) => {
  const withPools = { ...routing, pools: [...routing.pools, { ...pool('off', '10.66.1.7/16', 'Never', true), disabled: true }, pool('v6', 'fd00::/48', 'Always')] };
  const plan = planRoutes('a', withPools, wl);
  const d = planNetworking({ nodeName: 'a', routing: withPools, plan, uplink: { ifindex: 7 }, ipipMtu: 1480, gateways: new Map([['198.18.2.10', '198.18.1.1']]) });
  t.same(d.netcfg, { node_ip: '198.18.1.10', uplink_ifindex: 7, ipip_mtu: 1480, snat_ip: '0.0.0.0' });
  t.same(d.nodes, [
    { addr: '198.18.1.10', flags: NODE_F.SELF | NODE_F.SAME_SUBNET }, { addr: '198.18.1.11', flags: NODE_F.SAME_SUBNET },
    { addr: '198.18.2.10', flags: 0 },
  ], 'every node with an address; d has none');
  t.same(d.pools, [
    { cidr: '192.168.0.0/16', flags: POOL_F.NAT_OUT }, { cidr: '192.168.128.0/17', flags: 0 }, { cidr: '10.65.0.0/16', flags: 0 },
    { cidr: '10.66.0.0/16', flags: POOL_F.NAT_OUT | POOL_F.DISABLED },
  ], 'IPv4 pools, host bits cleared; the IPv6 pool is not in the IPv4 map');
  t.same(d.routes, [
    { cidr: '192.168.1.5/32', nextHop: '198.18.1.11', flags: RT_F.WORKLOAD },
    { cidr: '192.168.3.5/32', nextHop: '198.18.2.10', flags: RT_F.WORKLOAD | RT_F.ENCAP },
    { cidr: '192.168.130.1/32', nextHop: '198.18.1.11', flags: RT_F.WORKLOAD | RT_F.ENCAP },
    { cidr: '10.65.0.9/32', nextHop: '198.18.2.10', flags: RT_F.WORKLOAD },
    { cidr: '172.16.0.1/32', nextHop: '198.18.2.10', flags: RT_F.WORKLOAD },
  ], 'the route map names the node, whatever the underlay next hop');
  t.same([...d.kernel], [
    ['192.168.1.5/32', { via: '198.18.1.11' }],
    ['192.168.3.5/32', { via: '198.18.1.1', mtu: 1480 }],
    ['192.168.130.1/32', { via: '198.18.1.11', mtu: 1480 }],
    ['10.65.0.9/32', { via: '198.18.1.1' }],
    ['172.16.0.1/32', { via: '198.18.1.1' }],
  ], 'kernel: same subnet via the node, other subnets via the underlay next hop; IPIP routes carry the IPIP MTU');
  const snat = planNetworking({ nodeName: 'a', routing: withPools, plan, uplink: { ifindex: 7 }, ipipMtu: 1480, snatIp: '198.18.1.99', gateways: new Map() });
  t.equal(snat.netcfg.snat_ip, '198.18.1.99', 'natOutgoingAddress is the SNAT source in netcfg');
});

t.test('planNetworking: an unknown next hop holds back only its node\'s routes', async (t) => {
  const d = planNetworking({ nodeName: 'a', routing, plan: planRoutes('a', routing, wl), uplink: { ifindex: 7 }, ipipMtu: 8980, gateways: new Map() });
  t.same(d.routes.map((r) => r.cidr), ['192.168.1.5/32', '192.168.130.1/32']);
  t.same([...d.kernel], [['192.168.1.5/32', { via: '198.18.1.11' }], ['192.168.130.1/32', { via: '198.18.1.11', mtu: 8980 }]]);
});

t.test('planNetworking: no address or no uplink programs nothing', async (t) => {
  const empty = (node: string, uplink?: { ifindex: number }) =>
    planNetworking({ nodeName: node, routing, plan: planRoutes(node, routing, wl), uplink, ipipMtu: 1480, snatIp: '198.18.1.99', gateways: new Map() });
  for (const d of [empty('d', { ifindex: 3 }), empty('a')]) {
    t.same([d.nodes, d.pools, d.routes, [...d.kernel]], [[], [], [], []]);
    t.same([d.netcfg.node_ip, d.netcfg.ipip_mtu, d.netcfg.snat_ip], ['0.0.0.0', 0, '0.0.0.0'], 'netcfg off: the programs neither encapsulate nor NAT');
  }
});

t.test('VXLAN: vxlanMode Always / CrossSubnet by the same subnet rule, its MTU, vxcfg on only while a v4 pool uses it', async (t) => {
  const vx = (name: string, cidr: string, vxlanMode: string) => ({ ...pool(name, cidr, 'Never'), vxlanMode });
  const r: RoutingState = { ...routing, pools: [vx('vcross', '192.168.0.0/16', 'CrossSubnet'), vx('valways', '192.168.128.0/17', 'Always'), pool('ipip', '10.65.0.0/16', 'Always')] };
  const plan = planRoutes('a', r, wl);
  t.same(plan.routes.map((x) => [x.cidr, x.encap, x.vxlan]), [
    ['192.168.1.5/32', false, false],   // CrossSubnet, same subnet: direct
    ['192.168.3.5/32', true, true],     // CrossSubnet, other subnet: VXLAN
    ['192.168.130.1/32', true, true],   // Always, same subnet: VXLAN
    ['10.65.0.9/32', true, false],      // an IPIP pool beside: IPIP
    ['172.16.0.1/32', false, false],
  ]);
  const d = planNetworking({ nodeName: 'a', routing: r, plan, uplink: { ifindex: 7 }, ipipMtu: 1480, vxlanMtu: 1450, gateways: new Map([['198.18.2.10', '198.18.1.1']]) });
  t.same(d.vxcfg, { vni: 4096, port: 4789, mtu: 1450 }, "Calico's VNI and port by default");
  t.same(d.routes.map((x) => [x.cidr, x.flags]), [
    ['192.168.1.5/32', RT_F.WORKLOAD], ['192.168.3.5/32', RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN],
    ['192.168.130.1/32', RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN], ['10.65.0.9/32', RT_F.WORKLOAD | RT_F.ENCAP], ['172.16.0.1/32', RT_F.WORKLOAD],
  ]);
  t.same([...d.kernel].map(([c, k]) => [c, k.mtu]), [
    ['192.168.1.5/32', undefined], ['192.168.3.5/32', 1450], ['192.168.130.1/32', 1450], ['10.65.0.9/32', 1480], ['172.16.0.1/32', undefined],
  ], 'VXLAN routes carry the VXLAN MTU, IPIP ones the IPIP MTU');
  const custom = planNetworking({ nodeName: 'a', routing: r, plan, uplink: { ifindex: 7 }, ipipMtu: 1480, vxlanMtu: 8950, vxlan: { vni: 77, port: 8472 }, gateways: new Map() });
  t.same(custom.vxcfg, { vni: 77, port: 8472, mtu: 8950 });
  const off = planNetworking({ nodeName: 'a', routing, plan: planRoutes('a', routing, wl), uplink: { ifindex: 7 }, ipipMtu: 1480, vxlanMtu: 1450, gateways: new Map() });
  t.same(off.vxcfg, { vni: 0, port: 0, mtu: 0 }, 'no pool uses VXLAN: off (UDP to 4789 is not decapsulated)');
  const v6only = { ...routing, pools: [...routing.pools, vx('v6', 'fd00::/48', 'Always')] };
  t.equal(planNetworking({ nodeName: 'a', routing: v6only, plan: planRoutes('a', v6only, wl), uplink: { ifindex: 7 }, ipipMtu: 1480, gateways: new Map() }).vxcfg.vni, 0,
    'an IPv6 pool does not turn IPv4 VXLAN on');
});

// IPv6: direct routes to the node's bgp.ipv6Address within this node's IPv6 subnet; every other
// case is skipped with a reason (across subnets Calico would use VXLAN, not implemented for IPv6).
const routing6: RoutingState = {
  pools: [pool('v4', '192.168.0.0/16', 'Always'), { ...pool('v6', 'fd00:10::/48', 'Never', true), blockSize: 122 }],
  nodes: [
    { name: 'a', ipv4Address: '198.18.1.10/24', ipv6Address: 'fd00:198:18:1::10/64' },
    { name: 'b', ipv4Address: '198.18.1.11/24', ipv6Address: 'FD00:198:18:1:0::11/64' }, // not in the canonical form
    { name: 'c', ipv4Address: '198.18.2.10/24', ipv6Address: 'fd00:198:18:2::10/64' },   // another IPv6 subnet
    { name: 'd', ipv4Address: '198.18.1.12/24' },                                      // no IPv6 address
    { name: 'v6only', ipv6Address: 'fd00:198:18:1::20/64' },
  ],
  workloadRoutes: [],
};
const wl6: [string, string][] = [
  ['192.168.1.5/32', 'b'], ['fd00:10:0:1::5/128', 'b'], ['fd00:10:0:1::1:0/122', 'v6only'], ['fd00:10:0:3::5/128', 'c'],
  ['fd00:10:0:4::5/128', 'd'], ['fd00:10:0:5::5/128', 'gone'], ['fd00:10:0:0::9/128', 'a'],
];

t.test('IPv6 routes: same IPv6 subnet direct, the rest skipped with the reason', async (t) => {
  const p = planRoutes6('a', routing6, wl6);
  t.equal(p.nodeIp, 'fd00:198:18:1::10');
  t.same(p.routes, [
    { cidr: 'fd00:10:0:1::5/128', node: 'b', nodeIp: 'fd00:198:18:1::11', vxlan: false, sameSubnet: true },
    { cidr: 'fd00:10:0:1::1:0/122', node: 'v6only', nodeIp: 'fd00:198:18:1::20', vxlan: false, sameSubnet: true },
  ], 'next hop in the canonical form; own routes left to the CNI plugin');
  t.same(p.skipped.map((s) => [s.cidr, s.reason]), [
    ['fd00:10:0:3::5/128', "node fd00:198:18:2::10 is outside this node's IPv6 subnet fd00:198:18:1::/64 and the route's IPv6 pool has no vxlanMode (Always or CrossSubnet): IPv6 across subnets needs VXLAN"],
    ['fd00:10:0:4::5/128', 'node has no IPv6 address'],
    ['fd00:10:0:5::5/128', 'node not known'],
  ]);
  t.same(planRoutes('a', routing6, wl6).routes.map((r) => r.cidr), ['192.168.1.5/32'], 'the IPv4 plan takes no IPv6 route');
  const d = planNetworking({ nodeName: 'a', routing: routing6, plan: planRoutes('a', routing6, wl6), plan6: p, uplink: { ifindex: 7 }, ipipMtu: 1480, gateways: new Map() });
  t.same([...d.kernel6], [
    ['fd00:10:0:1::5/128', { via: 'fd00:198:18:1::11' }],
    ['fd00:10:0:1::1:0/122', { via: 'fd00:198:18:1::20' }],
  ], 'IPv6 kernel routes via the node, no route MTU (no overlay)');
  t.same(d.pools.map((x) => x.cidr), ['192.168.0.0/16'], 'the IPv4 pool map holds no IPv6 pool');
  t.same(d.routes.map((x) => x.cidr), ['192.168.1.5/32']);
});

t.test('IPv6 routes: a node with only an IPv6 address; a node without one', async (t) => {
  const p = planRoutes6('v6only', routing6, wl6);
  t.same(p.routes.map((r) => [r.cidr, r.nodeIp]), [['fd00:10:0:1::5/128', 'fd00:198:18:1::11'], ['fd00:10::9/128', 'fd00:198:18:1::10']]);
  const d = planNetworking({ nodeName: 'v6only', routing: routing6, plan: planRoutes('v6only', routing6, wl6), plan6: p, uplink: { ifindex: 7 }, ipipMtu: 1480, gateways: new Map() });
  t.equal(d.kernel6.size, 2, 'IPv6 routes without an IPv4 node address');
  t.same([d.nodes, d.routes, d.netcfg.node_ip], [[], [], '0.0.0.0'], 'and nothing of IPv4');
  const none = planRoutes6('d', routing6, wl6);
  t.equal(none.nodeIp, undefined);
  t.equal(none.routes.length, 0);
  t.match(none.skipped[0], { reason: 'this node has no IPv6 address (spec.bgp.ipv6Address)' });
  const noUplink = planNetworking({ nodeName: 'a', routing: routing6, plan: planRoutes('a', routing6, wl6), plan6: planRoutes6('a', routing6, wl6), ipipMtu: 1480, gateways: new Map() });
  t.equal(noUplink.kernel6.size, 0, 'no uplink: nothing');
  const bare = planRoutes6('a', { ...routing6, nodes: routing6.nodes.map((n) => (n.name === 'a' ? { ...n, ipv6Address: 'fd00:198:18:1::10' } : n)) }, wl6);
  t.same(bare.routes, [], 'a bare address is a /128: every other node is in another subnet');
});

t.test('IPv6 VXLAN (vxlanMode of the IPv6 pool): across subnets via the underlay next hop with mtu vxlanMTUV6', async (t) => {
  const withMode = (mode: string): RoutingState => ({ ...routing6, pools: [routing6.pools[0]!, { ...routing6.pools[1]!, vxlanMode: mode }] });
  const cross = withMode('CrossSubnet');
  const p = planRoutes6('a', cross, wl6);
  t.same(p.routes.map((r) => [r.cidr, r.vxlan, r.sameSubnet]), [
    ['fd00:10:0:1::5/128', false, true], ['fd00:10:0:1::1:0/122', false, true], ['fd00:10:0:3::5/128', true, false],
  ], 'CrossSubnet: the node in another IPv6 subnet over VXLAN, the others direct');
  t.same(p.skipped.map((s) => s.cidr), ['fd00:10:0:4::5/128', 'fd00:10:0:5::5/128']);
  const gw = new Map([['fd00:198:18:2::10', 'fd00:198:18:1::1']]);
  const d = planNetworking({ nodeName: 'a', routing: cross, plan: planRoutes('a', cross, wl6), plan6: p, uplink: { ifindex: 7 }, ipipMtu: 1480, vxlanMtu: 1450, vxlan6Mtu: 1430, vxlan: { vni: 77, port: 8472 }, gateways: gw });
  t.same(d.kernel6.get('fd00:10:0:3::5/128'), { via: 'fd00:198:18:1::1', mtu: 1430 }, 'via the underlay next hop, with the IPv6 VXLAN MTU');
  t.same(d.kernel6.get('fd00:10:0:1::5/128'), { via: 'fd00:198:18:1::11' }, 'same subnet: direct, no MTU');
  t.same(d.routes6, [
    { cidr: 'fd00:10:0:1::5/128', nextHop: 'fd00:198:18:1::11', flags: RT_F.WORKLOAD },
    { cidr: 'fd00:10:0:1::1:0/122', nextHop: 'fd00:198:18:1::20', flags: RT_F.WORKLOAD },
    { cidr: 'fd00:10:0:3::5/128', nextHop: 'fd00:198:18:2::10', flags: RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN },
  ], 'tortie_rt6_v1: every IPv6 route (the decapsulator judges inner sources by it), the tunnelled one flagged');
  t.same(d.vxcfg, { vni: 77, port: 8472, mtu: 1450 }, 'VXLAN on for an IPv6 pool alone: one VNI and port for both families');
  const noGw = planNetworking({ nodeName: 'a', routing: cross, plan: planRoutes('a', cross, wl6), plan6: p, uplink: { ifindex: 7 }, ipipMtu: 1480, vxlan6Mtu: 1430, gateways: new Map() });
  t.notOk(noGw.kernel6.has('fd00:10:0:3::5/128'), 'the underlay next hop unknown: the route waits');
  t.notOk(noGw.routes6.some((r) => r.cidr === 'fd00:10:0:3::5/128'), 'in the map too');
  const always = withMode('Always');
  const pa = planRoutes6('a', always, wl6);
  t.ok(pa.routes.every((r) => r.vxlan), 'Always: every IPv6 route over VXLAN');
  const da = planNetworking({ nodeName: 'a', routing: always, plan: planRoutes('a', always, wl6), plan6: pa, uplink: { ifindex: 7 }, ipipMtu: 1480, vxlan6Mtu: 1430, gateways: gw });
  t.same(da.kernel6.get('fd00:10:0:1::5/128'), { via: 'fd00:198:18:1::11', mtu: 1430 }, 'same subnet: to the node, with the MTU');
  const v6only = planRoutes6('v6only', cross, wl6);
  const dv = planNetworking({ nodeName: 'v6only', routing: cross, plan: planRoutes('v6only', cross, wl6), plan6: v6only, uplink: { ifindex: 7 }, ipipMtu: 1480, vxlan6Mtu: 1430, gateways: gw });
  t.equal(dv.vxcfg.vni, 4096, 'an IPv6-only node turns VXLAN on too');
  t.equal(dv.netcfg.node_ip, '0.0.0.0', 'and nothing of IPv4');
});
