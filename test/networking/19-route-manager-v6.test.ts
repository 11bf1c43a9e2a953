// RouteManager's IPv6 routes against a real kernel: two nodes on one segment with ULA addresses
// (fd00:198:18:1::/64); node-1's manager routes node-2's workload /128 (an address on node-2's
// lo standing for the workload) directly via node-2's bgp.ipv6Address, and real ICMPv6 echo
// crosses; a node in another IPv6 subnet is skipped (VXLAN would be needed); stale IPv6 routes of
// tortie's protocol are swept while other protocols' routes and tortie's IPv4 routes stay; a
// removed workload's route is withdrawn; an IPv6-only node finds its uplink by its IPv6 address.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlatCluster } from '../../src/testbed';
import { RouteManager } from '../../src/dataplane/routing';
import type { CalcDelta, RoutingState } from '../../src/calc/types';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';

const emptyDelta = (): CalcDelta => ({
  classesAdded: [], classesRemoved: [], prefixesUpserted: [], prefixesRemoved: [], tablesAdded: [], tablesRemoved: [],
  projectionAdded: [], projectionRemoved: [], endpointsUpserted: [], endpointsRemoved: [], rulesUpserted: [], rulesRemoved: [],
  prefilterChanged: false, routingChanged: false, workloadRoutesUpserted: [], workloadRoutesRemoved: [],
});

t.test('IPv6 routes in node namespaces', async (t) => {
  const bed = await FlatCluster.create('rt6');
  const pinRoot = uniquePinRoot('rt6');
  const pinRoot2 = uniquePinRoot('rt6b');
  const stops: (() => void)[] = [];
  t.teardown(() => { for (const s of stops) s(); bed.destroySync(); removePinRoot(pinRoot); removePinRoot(pinRoot2); });
  const n1 = await bed.addNode(1);
  const n2 = await bed.addNode(2);
  await n1.ns.sh('ip -6 addr add fd00:198:18:1::11/64 dev eth0 nodad');
  await n2.ns.sh('ip -6 addr add fd00:198:18:1::12/64 dev eth0 nodad && ip -6 addr add fd00:10:0:2::5/128 dev lo');
  // A previous run's leftover IPv6 route, an IPv4 route of tortie and an IPv6 route of another protocol.
  await n1.ns.sh('ip -6 route add fd00:10:0:9::9/128 via fd00:198:18:1::99 dev eth0 proto 122 && ' +
    'ip -6 route add fd00:99::/64 via fd00:198:18:1::99 dev eth0 proto static');

  const routing: RoutingState = {
    pools: [
      { name: 'v4', cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, disabled: false, blockSize: 26 },
      { name: 'v6', cidr: 'fd00:10::/48', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, disabled: false, blockSize: 122 },
    ],
    nodes: [
      { name: 'node-1', ipv4Address: '198.18.1.11/24', ipv6Address: 'fd00:198:18:1::11/64' },
      { name: 'node-2', ipv4Address: '198.18.1.12/24', ipv6Address: 'fd00:198:18:1::12/64' },
      { name: 'node-3', ipv4Address: '198.18.1.13/24', ipv6Address: 'fd00:198:18:3::13/64' },
    ],
    workloadRoutes: [
      { cidr: '192.168.2.5/32', node: 'node-2' }, { cidr: 'fd00:10:0:2::5/128', node: 'node-2' },
      { cidr: 'fd00:10:0:3::5/128', node: 'node-3' },
    ],
  };
  const routes6 = async () => (await n1.ns.exec(['ip', '-6', 'route', 'show', 'proto', '122'])).stdout.trim().split('\n').filter(Boolean).map((l) => l.trim().replace(/ metric \d+.*$/, '')).sort();
  const routes4 = async () => (await n1.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122'])).stdout.trim().split('\n').filter(Boolean).map((l) => l.trim());
  const ping = (to: string) => n1.ns.exec(['ping', '-6', '-c', '1', '-W', '2', to], { allowFail: true });

  t.equal((await ping('fd00:10:0:2::5')).code !== 0, true, 'no route yet: the workload address is unreachable');
  const m = await RouteManager.open({ pinRoot, netns: { name: n1.ns.name, path: n1.ns.path } });
  stops.push(() => m.close());

  await t.test('direct IPv6 route via the node\'s IPv6 address; other subnet skipped; leftovers swept', async (t) => {
    m.setState('node-1', routing);
    await m.apply();
    t.same(await routes6(), ['fd00:10:0:2::5 via fd00:198:18:1::12 dev eth0'], 'node-3 (other IPv6 subnet) has no route; the stale one is gone');
    t.same(await routes4(), ['192.168.2.5 via 198.18.1.12 dev eth0'], 'the IPv4 route alongside');
    t.match((await n1.ns.exec(['ip', '-6', 'route', 'show', 'fd00:99::/64'])).stdout, /proto static/, 'another protocol\'s route stays');
    const r = await ping('fd00:10:0:2::5');
    t.equal(r.code, 0, `ICMPv6 echo to the remote workload address: ${r.stdout}${r.stderr}`);
    const s = m.status();
    t.match(s, { nodeIp6: 'fd00:198:18:1::11', routes6: 1, skipped: 1 });
  });

  await t.test('a delta removes the IPv6 route, another adds a block', async (t) => {
    const d = emptyDelta();
    d.workloadRoutesRemoved = ['fd00:10:0:2::5/128'];
    d.workloadRoutesUpserted = [{ cidr: 'fd00:10:0:2::47/122', node: 'node-2' }];
    t.ok(m.applyDelta(d));
    await m.apply();
    t.same(await routes6(), ['fd00:10:0:2::40/122 via fd00:198:18:1::12 dev eth0']);
    t.equal((await ping('fd00:10:0:2::5')).code !== 0, true, 'withdrawn: unreachable again');
    t.same(await routes4(), ['192.168.2.5 via 198.18.1.12 dev eth0'], 'IPv4 untouched');
  });

  await t.test('a restart on the same pins reads the IPv6 routes back and writes nothing', async (t) => {
    const again = await RouteManager.open({ pinRoot, netns: { name: n1.ns.name, path: n1.ns.path } });
    stops.push(() => again.close());
    const r = { ...routing, workloadRoutes: [{ cidr: '192.168.2.5/32', node: 'node-2' }, { cidr: 'fd00:10:0:2::40/122', node: 'node-2' }] };
    again.setState('node-1', r);
    await again.apply();
    t.equal(again.status().writes.routes, 0, 'no route written');
    t.same(await routes6(), ['fd00:10:0:2::40/122 via fd00:198:18:1::12 dev eth0']);
  });

  await t.test('an IPv6-only node finds its uplink by its IPv6 address and routes', async (t) => {
    await n2.ns.sh('ip -6 addr add fd00:10:0:1::7/128 dev lo');
    const mtuFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-rt6-')), 'mtu');
    stops.push(() => fs.rmSync(path.dirname(mtuFile), { recursive: true, force: true }));
    const m2 = await RouteManager.open({ pinRoot: pinRoot2, netns: { name: n2.ns.name, path: n2.ns.path }, mtu: { ipipMtu: 0, ifacePattern: '^eth', file: mtuFile } });
    stops.push(() => m2.close());
    const r: RoutingState = {
      ...routing,
      nodes: [{ name: 'node-1', ipv6Address: 'fd00:198:18:1::11/64' }, { name: 'node-2', ipv6Address: 'fd00:198:18:1::12/64' }],
      workloadRoutes: [{ cidr: 'fd00:10:0:1::8/128', node: 'node-1' }],
    };
    m2.setState('node-2', r);
    await m2.apply();
    t.match(m2.status(), { nodeIp: undefined, nodeIp6: 'fd00:198:18:1::12', uplink: 'eth0', routes6: 1 });
    t.match((await n2.ns.exec(['ip', '-6', 'route', 'show', 'proto', '122'])).stdout, /^fd00:10:0:1::8 via fd00:198:18:1::11 dev eth0/);
    t.equal(fs.readFileSync(mtuFile, 'utf8'), '1500\n', 'the MTU file for the CNI plugin: the host MTU (nothing encapsulates IPv6)');
  });
});
