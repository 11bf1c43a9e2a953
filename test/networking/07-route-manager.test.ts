// RouteManager against a real kernel (a node namespace): kernel routes with tortie's protocol,
// the route/pool/node/netcfg maps, the uplink programs attached; mark-and-sweep of stale routes
// and map entries a previous run left (other protocols' routes untouched); a restart on the same
// pins writes nothing; deltas write only differences; policy-only (no address) programs nothing.
import t from 'tap';
import { SingleNode } from '../../src/testbed';
import { RouteManager, RouteError } from '../../src/dataplane/routing';
import { loadUplink } from '../../src/dataplane/bpf/loader';
import {
  lpm4Key, lpm4KeyCidr, routeCodec, netcfgCodec, nodeKeyCodec, poolCodec, NETCFG_KEY, RT_F, POOL_F,
} from '../../src/dataplane/bpf/net-codecs';
import { tcQuery } from '../../src/dataplane/native';
import type { CalcDelta, RoutingState } from '../../src/calc/types';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';

const routing = (workloadRoutes: { cidr: string; node: string }[], ipipMode = 'CrossSubnet'): RoutingState => ({
  pools: [{ name: 'p', cidr: '192.168.0.0/16', ipipMode, vxlanMode: 'Never', natOutgoing: true, disabled: false, blockSize: 26 }],
  nodes: [{ name: 'a', ipv4Address: '198.18.1.10/24' }, { name: 'b', ipv4Address: '198.18.1.11/24' }, { name: 'c', ipv4Address: '198.18.2.10/24' }],
  workloadRoutes,
});

const emptyDelta = (): CalcDelta => ({
  classesAdded: [], classesRemoved: [], prefixesUpserted: [], prefixesRemoved: [], tablesAdded: [], tablesRemoved: [],
  projectionAdded: [], projectionRemoved: [], endpointsUpserted: [], endpointsRemoved: [], rulesUpserted: [], rulesRemoved: [],
  prefilterChanged: false, routingChanged: false, workloadRoutesUpserted: [], workloadRoutesRemoved: [],
});

t.test('route manager in a node namespace', async (t) => {
  const bed = await SingleNode.create('rtmgr', { nodeIp: '198.18.1.10', outsideIp: '198.18.1.1' });
  const pinRoot = uniquePinRoot('rtmgr');
  t.teardown(async () => { await bed.destroy(); removePinRoot(pinRoot); });
  const n = bed.node;
  // A previous run's leftovers, and a route that is not tortie's.
  await n.sh('ip route add 192.168.77.7/32 via 198.18.1.1 dev eth0 proto 122 && ip route add 10.9.0.0/16 via 198.18.1.1 dev eth0 proto static');
  const stale = await loadUplink({ pinRoot });
  stale.maps.rt4.update(lpm4Key('192.168.77.7/32'), routeCodec.encode({ next_hop: '198.18.1.99', flags: RT_F.WORKLOAD | RT_F.ENCAP }));
  stale.close();

  const netns = { name: n.name, path: n.path };
  const routes = async () => (await n.exec(['ip', '-4', 'route', 'show', 'proto', '122'])).stdout.trim().split('\n').map((l) => l.trim()).sort();
  const rtKeys = (m: RouteManager) => m.maps.rt4.keys().map(lpm4KeyCidr).sort();

  let m = await RouteManager.open({ pinRoot, netns });
  const wl = [{ cidr: '192.168.1.5/32', node: 'b' }, { cidr: '192.168.3.5/32', node: 'c' }, { cidr: '192.168.0.9/32', node: 'a' }];

  t.test('first apply: routes, maps, programs; leftovers swept', async (t) => {
    m.setState('a', routing(wl));
    await m.apply();
    t.same(await routes(), ['192.168.1.5 via 198.18.1.11 dev eth0', '192.168.3.5 via 198.18.1.1 dev eth0 mtu 1480']);
    t.match((await n.exec(['ip', 'route', 'show', '10.9.0.0/16'])).stdout, /proto static/, 'a route of another protocol stays');
    t.same(rtKeys(m), ['192.168.1.5/32', '192.168.3.5/32'], 'stale route map entry swept');
    t.same(routeCodec.decode(m.maps.rt4.lookup(lpm4Key('192.168.3.5/32'))!), { next_hop: '198.18.2.10', flags: RT_F.WORKLOAD | RT_F.ENCAP });
    t.same(routeCodec.decode(m.maps.rt4.lookup(lpm4Key('192.168.1.5/32'))!), { next_hop: '198.18.1.11', flags: RT_F.WORKLOAD });
    t.same(poolCodec.decode(m.maps.pool4.lookup(lpm4Key('192.168.0.0/16'))!), { flags: POOL_F.NAT_OUT });
    t.equal(m.maps.node4.keys().length, 3);
    t.ok(m.maps.node4.lookup(nodeKeyCodec.encode({ addr: '198.18.2.10' })), 'node C known');
    const ifindex = await n.ifindex('eth0');
    t.same(netcfgCodec.decode(m.maps.netcfg.lookup(NETCFG_KEY)!), { node_ip: '198.18.1.10', uplink_ifindex: ifindex, ipip_mtu: 1480, snat_ip: '0.0.0.0' });
    for (const direction of ['ingress', 'egress'] as const) {
      t.ok(tcQuery({ iface: 'eth0', netns: n.path, direction }), `uplink tc ${direction} attached`);
    }
    t.same(m.status().routes, 2);
  });

  t.test('restart on the same pins: reconcile writes nothing', async (t) => {
    m.close();
    m = await RouteManager.open({ pinRoot, netns });
    m.setState('a', routing(wl));
    await m.apply();
    t.same(m.status().writes, { routes: 0, maps: 0 });
    t.same(await routes(), ['192.168.1.5 via 198.18.1.11 dev eth0', '192.168.3.5 via 198.18.1.1 dev eth0 mtu 1480']);
  });

  t.test('deltas: only the differences', async (t) => {
    const w0 = m.status().writes;
    const d = emptyDelta();
    d.workloadRoutesRemoved = ['192.168.1.5/32'];
    d.workloadRoutesUpserted = [{ cidr: '192.168.1.6/32', node: 'b' }];
    t.ok(m.applyDelta(d));
    await m.apply();
    t.same(await routes(), ['192.168.1.6 via 198.18.1.11 dev eth0', '192.168.3.5 via 198.18.1.1 dev eth0 mtu 1480']);
    t.same(m.status().writes, { routes: w0.routes + 2, maps: w0.maps + 2 }, 'one route and one map entry in, one of each out');
    t.notOk(m.applyDelta(emptyDelta()), 'an unrelated delta changes nothing');
    const always = emptyDelta();
    always.routingChanged = true;
    always.routing = { ...routing([], 'Always') };
    m.applyDelta(always);
    await m.apply();
    t.same(await routes(), ['192.168.1.6 via 198.18.1.11 dev eth0 mtu 1480', '192.168.3.5 via 198.18.1.1 dev eth0 mtu 1480'], 'Always: every route has the tunnel MTU');
    t.equal(routeCodec.decode(m.maps.rt4.lookup(lpm4Key('192.168.1.6/32'))!).flags, RT_F.WORKLOAD | RT_F.ENCAP);
  });

  t.test('a route the kernel refuses does not hold back the others; apply reports it', async (t) => {
    // The Node resource claims a /16, the kernel has a /24: node C "in the same subnet" is not on-link.
    const r = routing(wl);
    r.nodes = r.nodes.map((x) => (x.name === 'a' ? { name: 'a', ipv4Address: '198.18.1.10/16' } : x));
    m.setState('a', r);
    const err = await m.apply().then(() => undefined, (e: unknown) => e);
    t.match(err, { code: 'ERR_ROUTES_KERNEL' });
    t.same(await routes(), ['192.168.1.5 via 198.18.1.11 dev eth0', '192.168.3.5 via 198.18.1.1 dev eth0 mtu 1480'],
      'the route to B is written, the one to C keeps its previous value');
    t.same(rtKeys(m), ['192.168.1.5/32', '192.168.3.5/32'], 'the route map is written');
    m.setState('a', routing(wl));
    await m.apply();
    t.same(await routes(), ['192.168.1.5 via 198.18.1.11 dev eth0', '192.168.3.5 via 198.18.1.1 dev eth0 mtu 1480'], 'next reconcile repairs');
  });

  t.test('a node the underlay cannot reach does not stall the others', async (t) => {
    await n.sh('ip route del default');
    t.teardown(() => n.sh('ip route add default via 198.18.1.1'));
    m.setState('a', routing(wl));
    const err = await m.apply().then(() => undefined, (e: unknown) => e);
    t.match(err, { code: 'ERR_ROUTES_UNREACHABLE', message: /198\.18\.2\.10/ });
    t.same(await routes(), ['192.168.1.5 via 198.18.1.11 dev eth0'], 'the same-subnet route is programmed');
    t.same(rtKeys(m), ['192.168.1.5/32'], 'the unreachable node\'s workload is not in the route map');
  });

  t.test('a node without an address programs nothing and clears what it had', async (t) => {
    const r = routing(wl);
    r.nodes = r.nodes.map((x) => (x.name === 'a' ? { name: 'a' } : x));
    m.setState('a', r);
    await m.apply();
    t.same(await routes(), [''], 'no tortie routes');
    t.same(rtKeys(m), []);
    t.equal(netcfgCodec.decode(m.maps.netcfg.lookup(NETCFG_KEY)!).node_ip, '0.0.0.0', 'programs switched off');
  });

  t.test('errors name what is wrong', async (t) => {
    const bad = await RouteManager.open({ pinRoot, netns, uplink: 'nosuch0' });
    t.teardown(() => bad.close());
    bad.setState('a', routing(wl));
    await t.rejects(bad.apply(), { code: 'ERR_NETNS_COMMAND' });
    const other = routing(wl);
    other.nodes = [{ name: 'a', ipv4Address: '198.18.9.9/24' }];
    const m2 = await RouteManager.open({ pinRoot, netns });
    t.teardown(() => m2.close());
    m2.setState('a', other);
    const err = await m2.apply().then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof RouteError, 'a RouteError');
    t.match(err, { code: 'ERR_ROUTES_NO_UPLINK', message: /198\.18\.9\.9/ });
    await t.rejects(RouteManager.open({ pinRoot, routeProtocol: 300 }), /routeProtocol 300/);
  });

  t.teardown(() => m.close());
});
