// IPv6 BGP on real parts: three bird2s (configured by the renderer) on one bridge with ULA node
// addresses, plus FRR as an independent IPv6 peer (a BGPPeer with an IPv6 peerIP). IPv6 mesh
// sessions next to the IPv4 ones; each node's IPv6 blocks reach the others' learned table (kernel
// table 122) via the node's IPv6 address, and FRR; FRR's pool prefix reaches the nodes; the route
// manager (routeSource bgp) installs the learned IPv6 blocks and real ICMPv6 crosses; withdrawals
// remove them; `node status` prints the IPv6 section as calicoctl does.
import t from 'tap';
import { BirdCluster, waitFor, type BirdNode } from './helpers/cluster';
import { peer, pool } from './helpers/state';
import { bgpPeers, renderBgpStatus } from '../../src/bgp/status';
import { renderBird } from '../../src/bgp/render';
import { parseBirdRoutes, showLearnedTables } from '../../src/bgp/learned';
import { FrrTor } from '../../src/lab/tor';
import { RouteManager } from '../../src/dataplane/routing';
import type { RoutingState } from '../../src/calc/types';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';


const ip6 = (i: number) => `fd00:198:18:1::${10 + i}`;
const block6 = (i: number) => `fd00:10:0:${i}::/122`;
const TOR6 = 'fd00:198:18:1::1';
const TOR_NET = 'fd00:10:0:99::/64'; // inside the IPv6 pool: bird imports only pool routes

t.test('IPv6 BGP: bird2 mesh and an FRR peer', async (t) => {
  const c = new BirdCluster('bgp6');
  const pinRoot = uniquePinRoot('bgp6');
  let tor: FrrTor | undefined;
  const stops: (() => Promise<void> | void)[] = [];
  t.teardown(async () => {
    for (const s of stops.reverse()) await s();
    await tor?.stop();
    tor?.cleanup();
    await c.destroy();
    removePinRoot(pinRoot);
  });
  c.bed = await (await import('../../src/testbed')).FlatCluster.create(c.label);
  for (const i of [1, 2, 3]) {
    const n = await c.addNode(i, undefined, { ipv6Address: `${ip6(i)}/64` });
    await n.ns.sh(`ip -6 addr add ${ip6(i)}/64 dev eth0 nodad`);
  }
  c.pools = [pool('pods', { cidr: '192.168.0.0/16' }), pool('pods6', { cidr: 'fd00:10::/48' })];
  c.peers = [];
  const blocks = new Map<BirdNode, string[]>(c.nodes.map((n, i) => [n, [n.block, block6(i + 1)]]));
  const apply = async () => {
    for (const n of c.nodes) {
      if (!c.nodeResources.some((r) => r.metadata.name === n.name)) continue;
      const r = renderBird(c.state(n, { blocks: blocks.get(n)! }));
      t.same(r.problems, [], `${n.name}: rendered without problems`);
      await n.bird.apply(r.config);
    }
  };
  // The ToR first, passive (see TorOptions.passive): no session of bird's fails during its recovery.
  const torNs = await c.bed.attach('tor6', 'ptor6');
  await torNs.sh(`ip -6 addr add ${TOR6}/64 dev eth0 nodad && ip link set lo up`);
  tor = new FrrTor(torNs, '198.18.1.1', 65001);
  await tor.start(c.nodes.map((n, i) => ({ ip: ip6(i + 1), asNumber: 64512 })), { networks6: [TOR_NET], passive: true });
  const [n1, n2, n3] = c.nodes as [BirdNode, BirdNode, BirdNode];
  const learned6 = async (n: BirdNode) => {
    const r = await n.ns.exec(['ip', '-j', '-6', 'route', 'show', 'table', '122'], { allowFail: true });
    return new Map((JSON.parse(r.stdout || '[]') as { dst: string; gateway?: string }[]).map((x) => [x.dst, x.gateway ?? '']));
  };
  // The mesh first, the FRR peer once every bird finished its graceful-restart recovery: a session
  // failing during that recovery can hold bird's kernel exports for up to 240 s (docs/bgp.md).
  await apply();
  for (const n of c.nodes) {
    await waitFor(`${n.name}: recovery done, mesh routes installed`, async () => {
      const l = await learned6(n);
      return c.nodes.every((o, i) => o === n || l.has(block6(i + 1)));
    }, 60_000);
  }
  c.peers = [peer('tor6', { peerIP: TOR6, asNumber: 65001 })];
  await apply();

  await t.test('IPv6 and IPv4 mesh sessions and the FRR session are established', async (t) => {
    for (const n of c.nodes) {
      const peers = await waitFor(`${n.name}: all sessions up`, async () => {
        const p = bgpPeers(await c.protocols(n));
        return p.length === 5 && p.every((x) => x.info.startsWith('Established')) ? p : false;
      }, 60_000);
      t.same(peers.filter((p) => p.version === 6).map((p) => [p.address, p.type]).sort(),
        [...c.nodes.filter((o) => o !== n).map((o, _, all) => [ip6(c.nodes.indexOf(o) + 1), 'node-to-node mesh']), [TOR6, 'global']].sort(),
        `${n.name}: IPv6 peers by address and type`);
    }
    const s = await waitFor('FRR sees three IPv6 sessions', async () => {
      const m = await tor!.sessions(6);
      return [...m.values()].filter((v) => v === 'Established').length === 3 ? m : false;
    }, 60_000);
    t.same([...s.keys()].sort(), [ip6(1), ip6(2), ip6(3)].sort());
  });

  await t.test('each node learns the others\' IPv6 blocks via their IPv6 addresses, and FRR\'s pool prefix', async (t) => {
    for (const n of c.nodes) {
      const me = c.nodes.indexOf(n) + 1;
      const want = new Map(c.nodes.filter((o) => o !== n).map((o) => [block6(c.nodes.indexOf(o) + 1), ip6(c.nodes.indexOf(o) + 1)]));
      const got = await waitFor(`${n.name}: IPv6 routes in table 122`, async () => {
        const l = await learned6(n);
        return [...want].every(([b, gw]) => l.get(b) === gw) && l.has(TOR_NET) ? l : false;
      }, 60_000);
      // eBGP from a neighbour on the link: the kernel route goes via its link-local next hop.
      t.match(got.get(TOR_NET), /^fe80:/, `${n.name}: FRR's prefix via FRR's link-local address`);
      got.delete(TOR_NET);
      t.same(new Map([...got].filter(([d]) => d.startsWith('fd00:10:'))), want, `${n.name}: table 122 (IPv6), the nodes' blocks via their global addresses`);
      const main = (await n.ns.exec(['ip', '-6', 'route', 'show', 'proto', 'bird'])).stdout;
      t.match(main, new RegExp(`blackhole ${block6(me).replace(/[.:/]/g, '\\$&')}`), `${n.name}: own IPv6 block blackholed`);
      t.notMatch(main, /fd00:10:0:\d::\/122 via/, `${n.name}: no learned IPv6 route in the main table`);
      const four = await c.learned(n);
      t.same([...four.keys()].filter((d) => d.startsWith('192.168.')).sort(), c.nodes.filter((o) => o !== n).map((o) => o.block).sort(), `${n.name}: IPv4 blocks alongside`);
    }
    const tr = await waitFor('FRR has the nodes\' IPv6 blocks', async () => {
      const r = await tor!.routes(6);
      return [1, 2, 3].every((i) => r.has(block6(i))) ? r : false;
    }, 60_000);
    t.notOk([...tr.keys()].some((p) => p.startsWith('192.168.')), 'no IPv4 prefix over the IPv6 sessions');
  });

  await t.test('LearnedRoutes\' parser maps bird\'s IPv6 routes to nodes; the route manager installs them; ICMPv6 crosses', async (t) => {
    const text = await showLearnedTables((args) => n1.bird.birdc(args));
    const routes = parseBirdRoutes(text);
    t.equal(routes.get(block6(2)), ip6(2), 'BGP next hop: the global address (the link-local one after it is ignored)');
    t.equal(routes.get(block6(3)), ip6(3));
    t.equal(routes.get(TOR_NET), TOR6);
    t.equal(routes.get(n2.block), n2.ip, 'IPv4 routes from the same reading');
    const nodeOf = new Map(c.nodes.flatMap((n, i) => [[n.ip, n.name], [ip6(i + 1), n.name]] as [string, string][]));
    const byNode = new Map([...routes].filter(([, gw]) => nodeOf.has(gw)).map(([d, gw]) => [d, nodeOf.get(gw)!]));
    t.notOk(byNode.has(TOR_NET), 'the ToR\'s prefix is foreign (no node advertised it)');

    const m = await RouteManager.open({ pinRoot, netns: { name: n1.ns.name, path: n1.ns.path }, routeSource: 'bgp' });
    stops.push(() => m.close());
    const routing: RoutingState = {
      pools: [
        { name: 'pods', cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, disabled: false, blockSize: 26 },
        { name: 'pods6', cidr: 'fd00:10::/48', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, disabled: false, blockSize: 122 },
      ],
      nodes: c.nodes.map((n, i) => ({ name: n.name, ipv4Address: `${n.ip}/24`, ipv6Address: `${ip6(i + 1)}/64` })),
      workloadRoutes: [],
    };
    m.setState(n1.name, routing);
    m.setLearnedRoutes(byNode);
    await m.apply();
    const k6 = (await n1.ns.exec(['ip', '-6', 'route', 'show', 'proto', '122'])).stdout.trim().split('\n').map((l) => l.trim().replace(/ metric.*$/, '')).sort();
    t.same(k6, [`${block6(2)} via ${ip6(2)} dev eth0`, `${block6(3)} via ${ip6(3)} dev eth0`]);
    await n2.ns.sh('ip -6 addr add fd00:10:0:2::5/128 dev lo');
    const ping = await n1.ns.exec(['ping', '-6', '-c', '1', '-W', '2', 'fd00:10:0:2::5'], { allowFail: true });
    t.equal(ping.code, 0, `ICMPv6 echo to an address of node-2's block: ${ping.stdout}${ping.stderr}`);

    await t.test('a withdrawn IPv6 block leaves bird\'s table and the route manager\'s routes', async (t) => {
      blocks.set(n3, [n3.block]);
      await apply();
      await waitFor('node-3\'s IPv6 block withdrawn at node-1', async () => !(await learned6(n1)).has(block6(3)), 60_000);
      const after = parseBirdRoutes(await showLearnedTables((args) => n1.bird.birdc(args)));
      t.notOk(after.has(block6(3)));
      m.setLearnedRoutes(new Map([...after].filter(([, gw]) => nodeOf.has(gw)).map(([d, gw]) => [d, nodeOf.get(gw)!])));
      await m.apply();
      t.notMatch((await n1.ns.exec(['ip', '-6', 'route', 'show', 'proto', '122'])).stdout, /fd00:10:0:3::/, 'kernel route removed');
      t.ok((await learned6(n2)).has(block6(1)), 'the others stay');
    });

    await t.test('FRR withdraws its prefix: gone from every node', async (t) => {
      await tor!.configure(['router bgp 65001', 'address-family ipv6 unicast', `no network ${TOR_NET}`]);
      for (const n of c.nodes) await waitFor(`${n.name}: ${TOR_NET} withdrawn`, async () => !(await learned6(n)).has(TOR_NET), 60_000);
      t.pass('withdrawn everywhere');
    });
  });

  await t.test('node status: the IPv6 section in calicoctl\'s format', async (t) => {
    const text = renderBgpStatus(await c.protocols(n2));
    t.match(text, /IPv4 BGP status\n\+-+/);
    t.match(text, /IPv6 BGP status\n\+-+\+-+\+-+\+-+\+-+\+\n\|\s+PEER ADDRESS\s+\|\s+PEER TYPE\s+\| STATE \|  SINCE   \|    INFO     \|\n/);
    t.match(text, /\| fd00:198:18:1::11 \| node-to-node mesh \| up    \| \d\d:\d\d:\d\d \| Established \|/);
    t.match(text, /\| fd00:198:18:1::13 \| node-to-node mesh \| up    \| \d\d:\d\d:\d\d \| Established \|/);
    t.match(text, /\| fd00:198:18:1::1  \| global            \| up    \| \d\d:\d\d:\d\d \| Established \|/);
    t.notMatch(text, /No IPv6 peers found/);
  });
});
