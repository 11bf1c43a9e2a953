// BgpDriver with IPv6 IPAM blocks (Calico's `/calico/ipam/v2/assignment/ipv6/block/…` keys, as
// libcalico-go writes them) in an embedded store, driving a real bird2: the node's IPv6 blocks
// and an IPv6 address it uses from another node's block (borrowed /128) reach the rendered
// configuration, which bird accepts; nodeOfAddress maps IPv6 next hops in any spelling.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlatCluster } from '../../src/testbed';
import { EmbeddedDatastore } from '../../src/datastore';
import { blockKey } from '../../src/ipam';
import { ResourceClient } from '../../src/client/resources';
import { BirdDaemon } from '../../src/bgp/bird';
import { BgpDriver } from '../../src/bgp/driver';
import { silentLogger } from '../../src/util/log';
import type { JsonValue } from '../../src/datastore/types';
import { waitFor } from './helpers/cluster';
import { node, pool } from './helpers/state';


const block = (cidr: string, affinity: string, allocations: (number | null)[], attributes: unknown[]) => ({
  cidr, affinity, allocations, unallocated: [], attributes, sequenceNumber: 1, sequenceNumberForAllocation: {}, deleted: false,
});

t.test('BgpDriver renders IPv6 blocks and borrowed IPv6 addresses from IPAM', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-bgpdrv6-'));
  const ds = new EmbeddedDatastore({ dir: path.join(dir, 'store') });
  const bed = await FlatCluster.create('bgpdrv6');
  let driver: BgpDriver | undefined;
  t.teardown(async () => {
    await driver?.stop('down');
    bed.destroySync();
    await ds.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const rc = new ResourceClient(ds);
  await rc.create(pool('pods6', { cidr: 'fd00:10::/48' }));
  await rc.create(node('node-1', { ipv4Address: '198.18.1.11/24', ipv6Address: 'fd00:198:18:1::11/64' }));
  await rc.create(node('node-2', { ipv4Address: '198.18.1.12/24', ipv6Address: 'fd00:198:18:1::12/64' }));
  const sixKey = (cidr: string) => blockKey(cidr); // …/assignment/ipv6/block/<addr>-<len>, as libcalico-go
  // node-1's own IPv6 block; node-2's block whose ordinal 5 node-1 uses (a borrowed address).
  await ds.put(sixKey('fd00:10:0:1::/122'), block('fd00:10:0:1::/122', 'host:node-1', [0], [{ handle_id: 'h1', secondary: { node: 'node-1' } }]) as unknown as JsonValue);
  const alloc = Array<number | null>(64).fill(null);
  alloc[5] = 0;
  alloc[63] = 1;
  await ds.put(sixKey('fd00:10:0:2::ffc0/122'), block('fd00:10:0:2::ffc0/122', 'host:node-2', alloc, [
    { handle_id: 'hb', secondary: { node: 'node-1' } }, { handle_id: 'h2', secondary: { node: 'node-2' } },
  ]) as unknown as JsonValue);

  const { ns } = await bed.addNode(1);
  await ns.sh('ip -6 addr add fd00:198:18:1::11/64 dev eth0 nodad');
  const bird = new BirdDaemon({ dir: path.join(dir, 'node-1.bird'), netnsPath: ns.path });
  driver = new BgpDriver({ nodeName: 'node-1', datastore: ds, bird, log: silentLogger, debounceMs: 5 });
  await driver.start();
  await driver.settled();
  const s = driver.state();
  t.same(s.blocks, ['fd00:10:0:1::/122'], 'own IPv6 block');
  t.same(s.borrowed, ['fd00:10:0:2::ffc5'], 'the IPv6 address at ordinal 5 of node-2\'s block (carry across the group)');
  const conf = await waitFor('bird configured', async () => {
    const c = fs.existsSync(bird.confPath) ? fs.readFileSync(bird.confPath, 'utf8') : '';
    return c.includes('tortie_blocks6') ? c : false;
  });
  t.match(conf, /protocol static tortie_blocks6 \{\n  ipv6;\n  route fd00:10:0:1::\/122 blackhole;\n\}/);
  t.match(conf, /protocol static tortie_borrowed6 \{\n  ipv6;\n  route fd00:10:0:2::ffc5\/128 blackhole;/);
  t.match(conf, /protocol bgp Mesh_fd00_198_18_1__12 from tortie_peer6/);
  await waitFor('bird loaded the IPv6 block', async () => /fd00:10:0:1::\/122\s+blackhole/.test(await bird.birdc(['show', 'route', 'table', 'master6'])));
  t.pass('bird loaded it (the own IPv6 block is a blackhole in master6)');
  t.equal(driver.nodeOfAddress('fd00:198:18:1::12'), 'node-2');
  t.equal(driver.nodeOfAddress('FD00:198:18:1:0:0:0:12'), 'node-2', 'any spelling of the address');
  t.equal(driver.nodeOfAddress('198.18.1.12'), 'node-2');
  t.equal(driver.nodeOfAddress('fd00:198:18:1::99'), undefined);

  await t.test('a deleted IPv6 block leaves the configuration', async (t) => {
    await ds.delete(sixKey('fd00:10:0:1::/122'));
    const c = await waitFor('block gone from bird.conf', async () => {
      const x = fs.readFileSync(bird.confPath, 'utf8');
      return x.includes('fd00:10:0:1::/122') ? false : x;
    });
    t.match(c, /protocol static tortie_blocks6 \{\n  ipv6;\n\}/);
  });
});
