// The datastore-driven side on real parts: BgpDriver renders from resources and IPAM blocks in an
// embedded store and drives a bird2 per node namespace; the routes bird learns (kernel table 122)
// become, through LearnedRoutes and the route manager in routeSource 'bgp', kernel routes with
// tortie's protocol and BPF route-map entries per block — IPIP-flagged where the pool says Always.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlatCluster, type Netns } from '../../src/testbed';
import { EmbeddedDatastore } from '../../src/datastore';
import { ResourceClient } from '../../src/client/resources';
import { IpamClient, blockKey } from '../../src/ipam';
import { BirdDaemon } from '../../src/bgp/bird';
import { BgpDriver } from '../../src/bgp/driver';
import { LearnedRoutes } from '../../src/bgp/learned';
import { bgpPeers, parseBirdProtocols } from '../../src/bgp/status';
import { RouteManager } from '../../src/dataplane/routing';
import { lpm4Key, lpm4KeyCidr, routeCodec, RT_F } from '../../src/dataplane/bpf/net-codecs';
import { silentLogger } from '../../src/util/log';
import type { RoutingState } from '../../src/calc/types';
import type { JsonValue } from '../../src/datastore/types';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { waitFor } from './helpers/cluster';
import { bgpConfig, node, pool } from './helpers/state';
import { parseCidr4, u32ToIpv4 } from '../../src/primitives';

t.test('BgpDriver + LearnedRoutes + route manager (routeSource bgp)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-bgpdrv-'));
  const ds = new EmbeddedDatastore({ dir: path.join(dir, 'store') });
  const bed = await FlatCluster.create('bgpdrv');
  const pinRoot = uniquePinRoot('bgpdrv');
  const stops: (() => Promise<void> | void)[] = [];
  t.teardown(async () => {
    for (const s of stops.reverse()) await s();
    bed.destroySync();
    removePinRoot(pinRoot);
    await ds.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const rc = new ResourceClient(ds);
  await rc.create(pool('direct', { cidr: '192.168.0.0/17' }));
  await rc.create(pool('tunnelled', { cidr: '192.168.128.0/17', ipipMode: 'Always' }));
  await rc.create(node('node-1', { ipv4Address: '198.18.1.11/24' }));
  await rc.create(node('node-2', { ipv4Address: '198.18.1.12/24' }));
  const ipam = new IpamClient(ds);
  const a1 = await ipam.assign({ handleId: 'h1', node: 'node-1', pools: ['direct'] });
  const a2 = await ipam.assign({ handleId: 'h2', node: 'node-2', pools: ['direct'] });
  const a3 = await ipam.assign({ handleId: 'h3', node: 'node-2', pools: ['tunnelled'] });
  const [b1, b2, b3] = [a1.ips[0]!.block, a2.ips[0]!.block, a3.ips[0]!.block];
  // node-1 uses an address of node-2's block (as after borrowing): the block record says so.
  const kv = await ds.get(blockKey(b2));
  const rec = structuredClone(kv!.value) as { allocations: (number | null)[]; unallocated: number[]; attributes: { handle_id: string; secondary: Record<string, string> }[] };
  rec.attributes.push({ handle_id: 'hb', secondary: { node: 'node-1' } });
  rec.allocations[9] = rec.attributes.length - 1;
  rec.unallocated = rec.unallocated.filter((o) => o !== 9);
  await ds.put(blockKey(b2), rec as unknown as JsonValue);
  const borrowed = u32ToIpv4(parseCidr4(b2).addr + 9);

  const secrets = path.join(dir, 'secrets');
  fs.mkdirSync(path.join(secrets, 'bgp'), { recursive: true });
  fs.writeFileSync(path.join(secrets, 'bgp', 'mesh'), 'mesh-secret\n');
  const nodes: { name: string; ns: Netns; driver: BgpDriver; bird: BirdDaemon }[] = [];
  for (const i of [1, 2]) {
    const { ns } = await bed.addNode(i);
    const bird = new BirdDaemon({ dir: path.join(dir, `node-${i}.bird`), netnsPath: ns.path });
    const driver = new BgpDriver({ nodeName: `node-${i}`, datastore: ds, bird, log: silentLogger, secretsDir: secrets, debounceMs: 5 });
    await driver.start();
    stops.push(() => driver.stop('down'));
    nodes.push({ name: `node-${i}`, ns, driver, bird });
  }
  const [n1, n2] = nodes;
  const established = async (n: typeof n1) =>
    bgpPeers(parseBirdProtocols(await n.bird.birdc(['show', 'protocols']))).some((p) => p.info.startsWith('Established'));

  await t.test('the driver renders this node\'s blocks and borrowed addresses from IPAM', async (t) => {
    await n1.driver.settled();
    const s1 = n1.driver.state();
    t.same(s1.blocks, [b1]);
    t.same(s1.borrowed, [borrowed]);
    t.same([...n2.driver.state().blocks].sort(), [b2, b3].sort());
    t.equal(n1.driver.nodeOfAddress('198.18.1.12'), 'node-2');
    for (const n of nodes) await waitFor(`${n.name} established`, () => established(n));
  });

  const learnedAt1 = new Map<string, string>();
  let routesSeen = 0;
  const learned = new LearnedRoutes({
    netns: n1.ns.name, log: silentLogger,
    showRoutes: () => n1.bird.birdc(['show', 'route', 'table', 'tortie_learned4', 'all']),
    nodeOfAddress: (ip) => n1.driver.nodeOfAddress(ip),
    onRoutes: (m) => { learnedAt1.clear(); for (const [k, v] of m) learnedAt1.set(k, v); routesSeen++; },
  });
  await learned.start();
  stops.push(() => learned.stop());

  const netns = { name: n1.ns.name, path: n1.ns.path };
  const m = await RouteManager.open({ pinRoot, netns, routeSource: 'bgp' });
  stops.push(() => m.close());
  const routing: RoutingState = {
    pools: [
      { name: 'direct', cidr: '192.168.0.0/17', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, disabled: false, blockSize: 26 },
      { name: 'tunnelled', cidr: '192.168.128.0/17', ipipMode: 'Always', vxlanMode: 'Never', natOutgoing: false, disabled: false, blockSize: 26 },
    ],
    nodes: [{ name: 'node-1', ipv4Address: '198.18.1.11/24' }, { name: 'node-2', ipv4Address: '198.18.1.12/24' }],
    // The compiler's per-workload routes are ignored in routeSource 'bgp'.
    workloadRoutes: [{ cidr: '192.168.0.200/32', node: 'node-2' }],
  };
  const kernel = async () => (await n1.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122'])).stdout.trim().split('\n').filter(Boolean).map((l) => l.trim()).sort();

  await t.test('learned blocks become kernel routes and route-map entries, IPIP by pool', async (t) => {
    await waitFor('node-2 blocks learned at node-1', async () => learnedAt1.get(b2) === 'node-2' && learnedAt1.get(b3) === 'node-2');
    t.same([...learnedAt1].sort(), [[b2, 'node-2'], [b3, 'node-2']].sort(), 'exactly node-2\'s blocks (own borrowed /32 is ours)');
    m.setState('node-1', routing);
    m.setLearnedRoutes(learnedAt1);
    await m.apply();
    t.same(await kernel(), [`${b2} via 198.18.1.12 dev eth0`, `${b3} via 198.18.1.12 dev eth0 mtu 1480`].sort());
    t.same(m.maps.rt4.keys().map(lpm4KeyCidr).sort(), [b2, b3].sort(), 'one route-map entry per block, none per workload');
    t.same(routeCodec.decode(m.maps.rt4.lookup(lpm4Key(b3))!), { next_hop: '198.18.1.12', flags: RT_F.WORKLOAD | RT_F.ENCAP });
    t.same(routeCodec.decode(m.maps.rt4.lookup(lpm4Key(b2))!), { next_hop: '198.18.1.12', flags: RT_F.WORKLOAD });
  });

  await t.test('node-2 sees node-1\'s block and the borrowed /32', async (t) => {
    const rows = await waitFor('routes at node-2', async () => {
      const r = JSON.parse((await n2.ns.exec(['ip', '-j', '-4', 'route', 'show', 'table', '122'])).stdout || '[]') as { dst: string; gateway: string }[];
      return r.length === 2 ? r : false;
    });
    t.same(rows.map((r) => [r.dst, r.gateway]).sort(), [[b1, '198.18.1.11'], [borrowed, '198.18.1.11']].sort());
  });

  await t.test('a released block is withdrawn: route and map entry swept', async (t) => {
    await ipam.releaseByHandle('h3');
    await ds.delete(blockKey(b3)); // the empty block's removal, as IPAM's node clean-up does
    await waitFor('block b3 gone from node-1', async () => !learnedAt1.has(b3));
    m.setLearnedRoutes(learnedAt1);
    await m.apply();
    t.same(await kernel(), [`${b2} via 198.18.1.12 dev eth0`]);
    t.same(m.maps.rt4.keys().map(lpm4KeyCidr), [b2]);
  });

  await t.test('mesh password from the secrets directory (TCP MD5 on both sides)', async (t) => {
    await rc.create(bgpConfig('default', { nodeMeshPassword: { secretKeyRef: { name: 'bgp', key: 'mesh' } } }));
    for (const n of nodes) {
      await waitFor(`${n.name}: password configured`, async () => fs.readFileSync(n.bird.confPath, 'utf8').includes('password "mesh-secret";'));
    }
    for (const n of nodes) await waitFor(`${n.name} established with the password`, () => established(n), 60_000);
    const info = await n1.bird.birdc(['show', 'protocols', 'all', 'Mesh_198_18_1_12']);
    t.match(info, /Established/);
  });
});
