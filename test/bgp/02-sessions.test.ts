import t from 'tap';
import * as fs from 'node:fs';
import { BirdCluster, waitFor } from './helpers/cluster';
import { bgpPeers, renderBgpStatus } from '../../src/bgp/status';
import { renderBird } from '../../src/bgp/render';
import { BirdDaemon } from '../../src/bgp/bird';

// Three bird2s in namespaces on one bridge, configured by the renderer through BirdDaemon.
t.test('node-to-node mesh with real bird2 sessions', async (t) => {
  const c = new BirdCluster('bgpmesh');
  t.teardown(() => c.destroy());
  await c.build(3);
  await c.applyAll();
  const [n1, n2, n3] = c.nodes;

  const established = async (n: typeof n1, count: number) => {
    const peers = bgpPeers(await c.protocols(n));
    return peers.length === count && peers.every((p) => p.info.startsWith('Established'));
  };
  for (const n of c.nodes) await waitFor(`${n.name}: mesh established`, () => established(n, 2));

  await t.test('every node learns the other nodes\' blocks via their addresses', async (t) => {
    for (const n of c.nodes) {
      const want = new Map(c.nodes.filter((o) => o !== n).map((o) => [o.block, o.ip]));
      const got = await waitFor(`${n.name}: learned routes`, async () => {
        const l = await c.learned(n);
        return [...want].every(([b, gw]) => l.get(b) === gw) ? l : false;
      });
      t.same(new Map([...got].filter(([d]) => d.startsWith('192.168.'))), want, `${n.name}: table 122`);
      const main = await n.ns.exec(['ip', '-4', 'route', 'show', 'proto', 'bird']);
      t.match(main.stdout, new RegExp(`blackhole ${n.block.replace(/[./]/g, '\\$&')}`), `${n.name}: own block blackholed`);
      t.notMatch(main.stdout, /192\.168\.[123]\.0\/26 via/, `${n.name}: bird puts no learned route in the main table`);
    }
  });

  await t.test("Calico's passive rule: only the node with the lower address string connects", async (t) => {
    // "198.18.1.11" < "198.18.1.12" < "198.18.1.13": n1 is passive towards both, so both sessions
    // at n1 have local port 179; at n3 (active towards both) the remote port is 179.
    const ss = async (n: typeof n1, filter: string) =>
      (await n.ns.exec(['ss', '-Htn', 'state', 'established', filter])).stdout.trim().split('\n').filter(Boolean).length;
    t.equal(await ss(n1, '( sport = :179 )'), 2, 'n1 accepted both');
    t.equal(await ss(n1, '( dport = :179 )'), 0, 'n1 connected to none');
    t.equal(await ss(n3, '( dport = :179 )'), 2, 'n3 connected to both');
    t.equal(await ss(n3, '( sport = :179 )'), 0);
  });

  await t.test('node status from bird2 show protocols', async (t) => {
    const text = renderBgpStatus(await c.protocols(n2));
    t.match(text, /^IPv4 BGP status\n\+-+\+-+\+-+\+-+\+-+\+\n\| PEER ADDRESS \|     PEER TYPE     \| STATE \|  SINCE   \|    INFO     \|\n/);
    t.match(text, /\| 198\.18\.1\.11  \| node-to-node mesh \| up    \| \d\d:\d\d:\d\d \| Established \|/);
    t.match(text, /\| 198\.18\.1\.13  \| node-to-node mesh \| up    \| \d\d:\d\d:\d\d \| Established \|/);
    t.match(text, /IPv6 BGP status\nNo IPv6 peers found\.\n/);
  });

  await t.test('a bird crash: restarted by BirdDaemon, peers keep its routes meanwhile (graceful restart)', async (t) => {
    const pid = n2.bird.pid!;
    const missing: string[] = [];
    let polling = true;
    const t0 = Date.now();
    const watcher = (async () => {
      while (polling) {
        for (const n of [n1, n3]) {
          const l = await c.learned(n);
          if (l.get(n2.block) !== n2.ip) missing.push(`${n.name}@${Date.now() - t0}ms: ${JSON.stringify([...l])}`);
        }
      }
    })();
    process.kill(pid, 'SIGKILL');
    await waitFor('bird restarted', async () => n2.bird.pid !== undefined && n2.bird.pid !== pid);
    t.equal(n2.bird.restarts, 1);
    await n2.bird.ready();
    for (const n of [n1, n3]) {
      await waitFor(`${n.name}: session to n2 back`, async () => {
        const p = bgpPeers(await c.protocols(n)).find((x) => x.address === n2.ip);
        return p?.info.startsWith('Established');
      });
    }
    polling = false;
    await watcher;
    t.same(missing, [], "n2's block never left n1's and n3's tables");
    const log = await n1.bird.birdc(['show', 'protocols', 'all', 'Mesh_198_18_1_12']);
    t.match(log, /Neighbor graceful restart:\s+Yes|Restart time:\s+120/, 'graceful restart negotiated');
  });

  await t.test('an agent restart adopts the running bird (sessions untouched)', async (t) => {
    const pid = n1.bird.pid!;
    await n1.bird.stop('leave');
    const again = new BirdDaemon({ dir: n1.dir, netnsPath: n1.ns.path });
    await again.apply(renderBird(c.state(n1)).config);
    t.equal(again.pid, pid, 'same bird process');
    n1.bird = again;
  });

  await t.test('a configuration bird rejects is refused and the running one kept', async (t) => {
    const before = fs.readFileSync(n1.bird.confPath, 'utf8');
    await t.rejects(n1.bird.apply('protocol bgp broken { neighbor as; }\n'), { code: 'ERR_BIRD_CONFIG', message: /bird rejected the rendered configuration/ });
    t.equal(fs.readFileSync(n1.bird.confPath, 'utf8'), before);
    t.ok(await established(n1, 2), 'sessions unaffected');
  });

  await t.test('a node leaving: its peers drop it and its routes are withdrawn', async (t) => {
    c.nodeResources = c.nodeResources.filter((r) => r.metadata.name !== 'node-3');
    await n3.bird.stop('down');
    await c.applyAll();
    for (const n of [n1, n2]) {
      await waitFor(`${n.name}: n3's block withdrawn`, async () => !(await c.learned(n)).has(n3.block));
      const peers = bgpPeers(await c.protocols(n));
      t.same(peers.map((p) => p.address), [n1, n2].filter((o) => o !== n).map((o) => o.ip), `${n.name}: mesh without n3`);
    }
  });
});
