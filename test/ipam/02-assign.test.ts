import t from 'tap';
import { IpamClient, ipamShow, renderIpamShow, renderBorrowed, checkBlock, blockKey, affinityKey, handleKey } from '../../src/ipam';
import { openTestStore } from '../../src/testbed/store';
import { pool } from '../../src/testbed/fixtures';
import { parseCidr4, u32ToIpv4 } from '../../src/primitives';

t.test('assign claims a block of the pool blockSize for the node, then fills it', async (t) => {
  const s = openTestStore('ipam-assign');
  t.teardown(() => s.close());
  await s.rc.create(pool('p1', '192.168.0.0/24', { blockSize: 28 }));
  const ipam = new IpamClient(s.ds);
  const r1 = await ipam.assign({ handleId: 'net.c1', node: 'node-a', attrs: { pod: 'one', namespace: 'default' } });
  t.equal(r1.ips.length, 1);
  t.equal(r1.existing, false);
  t.match(r1.ips[0]!.cidr, /^192\.168\.0\.\d+\/32$/);
  t.match(r1.ips[0]!.block, /\/28$/);
  t.equal(r1.ips[0]!.pool, 'p1');
  const blocks = await ipam.affineBlockCidrs('node-a');
  t.same(blocks, [r1.ips[0]!.block], 'one block claimed, nothing pre-allocated beyond it');
  t.ok(await s.ds.get(affinityKey('node-a', blocks[0]!)));
  const kv = await s.ds.get(blockKey(blocks[0]!));
  const b = checkBlock(kv!.value, kv!.key);
  t.equal(b.affinity, 'host:node-a');
  t.equal(b.attributes[0]!.secondary!.pod, 'one');
  t.equal(b.attributes[0]!.secondary!.node, 'node-a', 'the node is recorded with every allocation');

  // Fill the block: 16 addresses, first one included. The 17th needs a second block.
  const ips = new Set([r1.ips[0]!.ip]);
  for (let i = 2; i <= 17; i++) ips.add((await ipam.assign({ handleId: `net.c${i}`, node: 'node-a' })).ips[0]!.ip);
  t.equal(ips.size, 17, 'all distinct');
  const all = await ipam.affineBlockCidrs('node-a');
  t.equal(all.length, 2, 'a second block claimed when the first is full');
  const base = parseCidr4(blocks[0]!).addr;
  t.ok(ips.has(u32ToIpv4(base)), 'block network address handed out');
  t.ok(ips.has(u32ToIpv4(base + 15)), 'block last address handed out');
});

t.test('assign is idempotent by handle; release frees; release of unknown handle is a no-op', async (t) => {
  const s = openTestStore('ipam-idem');
  t.teardown(() => s.close());
  await s.rc.create(pool('p1', '10.10.0.0/24'));
  const ipam = new IpamClient(s.ds);
  const a = await ipam.assign({ handleId: 'h1', node: 'n1' });
  const again = await ipam.assign({ handleId: 'h1', node: 'n1' });
  t.same(again.ips, a.ips);
  t.equal(again.existing, true);
  t.same(await ipam.ipsByHandle('h1'), a.ips);
  t.same(await ipam.releaseByHandle('h1'), [a.ips[0]!.ip]);
  t.same(await ipam.ipsByHandle('h1'), []);
  t.same(await ipam.releaseByHandle('h1'), [], 'second release: nothing');
  t.same(await ipam.releaseByHandle('never-seen'), []);
  const b = await ipam.assign({ handleId: 'h2', node: 'n1' });
  t.not(b.ips[0]!.ip, a.ips[0]!.ip, 'a freed address is not reused immediately');
  const two = await ipam.assign({ handleId: 'h3', node: 'n1', num: 2 });
  t.equal(two.ips.length, 2);
  t.same((await ipam.releaseByHandle('h3')).sort(), two.ips.map((x) => x.ip).sort());
  await t.rejects(ipam.assign({ handleId: 'bad/handle', node: 'n1' }), { code: 'ERR_IPAM_INVALID_ARGUMENT', message: /bad\/handle/ });
  await t.rejects(ipam.assign({ handleId: 'h4', node: '' }), { code: 'ERR_IPAM_INVALID_ARGUMENT' });
});

t.test('disabled pools and nodeSelector decide which pools a node may use', async (t) => {
  const s = openTestStore('ipam-pools');
  t.teardown(() => s.close());
  const ipam = new IpamClient(s.ds);
  await t.rejects(ipam.assign({ handleId: 'h0', node: 'n1' }), { code: 'ERR_IPAM_NO_POOLS', message: /n1/ });
  await s.rc.create(pool('off', '10.20.0.0/24', { disabled: true }));
  await s.rc.create(pool('rack1', '10.21.0.0/24', { nodeSelector: "rack == 'r1'" }));
  await s.rc.create(pool('rack2', '10.22.0.0/24', { nodeSelector: "rack == 'r2'" }));
  await t.rejects(ipam.assign({ handleId: 'h1', node: 'n1' }), { code: 'ERR_IPAM_NO_POOLS' }, 'no labels: no pool matches');
  await s.rc.create({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'n1', labels: { rack: 'r2' } }, spec: {} });
  const r = await ipam.assign({ handleId: 'h1', node: 'n1' });
  t.equal(r.ips[0]!.pool, 'rack2');
  t.match(r.ips[0]!.ip, /^10\.22\.0\./);
  await t.rejects(ipam.assign({ handleId: 'h2', node: 'n1', pools: ['off'] }), { code: 'ERR_IPAM_NO_POOLS', message: /disabled/ });
  await t.rejects(ipam.assign({ handleId: 'h2', node: 'n1', pools: ['nope'] }), { code: 'ERR_IPAM_NO_POOLS', message: /nope/ });
  await t.rejects(ipam.assign({ handleId: 'h2', node: 'n1', pools: ['rack1'] }), { code: 'ERR_IPAM_NO_POOLS' }, 'requested pool the node may not use');
  const byCidr = await ipam.assign({ handleId: 'h2', node: 'n1', pools: ['10.22.0.0/24'] });
  t.equal(byCidr.ips[0]!.pool, 'rack2');
});

t.test('when no block is left, nodes borrow from others\' blocks: every pool address usable; then exhausted', async (t) => {
  const s = openTestStore('ipam-borrow');
  t.teardown(() => s.close());
  await s.rc.create(pool('tiny', '10.30.0.0/29', { blockSize: 30 })); // 2 blocks of 4
  const ipam = new IpamClient(s.ds);
  const got: string[] = [];
  for (let i = 0; i < 3; i++) got.push((await ipam.assign({ handleId: `a${i}`, node: 'a' })).ips[0]!.ip);
  for (let i = 0; i < 5; i++) got.push((await ipam.assign({ handleId: `b${i}`, node: 'b' })).ips[0]!.ip);
  t.same([...got].sort(), ['10.30.0.0', '10.30.0.1', '10.30.0.2', '10.30.0.3', '10.30.0.4', '10.30.0.5', '10.30.0.6', '10.30.0.7']);
  t.equal((await ipam.affineBlockCidrs('a')).length, 1);
  t.equal((await ipam.affineBlockCidrs('b')).length, 1, 'b borrowed one address from a\'s block');
  const aBlock = (await ipam.listBlocks()).find((x) => x.affinity === 'host:a')!;
  t.same(aBlock.attributes.map((x) => x.secondary!.node).sort(), ['a', 'a', 'a', 'b'], 'the borrowed address records the node using it');
  await t.rejects(ipam.assign({ handleId: 'c0', node: 'c' }), { code: 'ERR_IPAM_EXHAUSTED', message: /10\.30\.0\.0\/29/ });
  t.same(await ipam.ipsByHandle('c0'), [], 'failed assign leaves nothing');
  await ipam.releaseByHandle('a1');
  t.equal((await ipam.assign({ handleId: 'c0', node: 'c' })).ips.length, 1, 'a freed address can be assigned again');

  const show = await ipamShow(s.ds);
  t.equal(show.pools[0]!.size, 8);
  t.equal(show.pools[0]!.inUse, 8);
  t.equal(show.pools[0]!.free, 0);
  t.same(show.nodes.map((n) => n.node), ['a', 'b']);
  const text = renderIpamShow(show, { showBlocks: true });
  t.match(text, /\| GROUPING \|\s+CIDR\s+\| IPS TOTAL \| IPS IN USE \|\s+IPS FREE\s+\|/);
  t.match(text, /\| IP Pool\s+\| 10\.30\.0\.0\/29\s+\|\s+8 \| 8 \(100%\)\s+\| 0 \(0%\)\s+\|/);
  t.match(text, /\| Block\s+\| 10\.30\.0\.0\/30/);
  t.match(text, /\| a\s+\| 10\.30\.0\.\d\/30/);
  t.same(show.borrowed.map((x) => x.node).sort(), ['b', 'c'], 'b and c borrowed from a');
  const fromB = show.borrowed.find((x) => x.node === 'b')!;
  t.match(fromB, { blockOwner: 'a', block: aBlock.cidr, handleId: 'b4' });
  t.match(renderBorrowed(show), new RegExp(`\\| ${fromB.ip.replace(/\./g, '\\.')}\\s+\\| b\\s+\\| ${aBlock.cidr.replace(/[./]/g, '\\$&')}\\s+\\| a\\s+\\|`));
  const lines = text.trim().split('\n');
  t.ok(lines.every((l) => l.length === lines[0]!.length || l.startsWith('+') || l.startsWith('|')), 'table lines');
});

t.test('releaseHostAffinities deletes empty blocks and orphans used ones', async (t) => {
  const s = openTestStore('ipam-host');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.40.0.0/28', { blockSize: 30 }));
  const ipam = new IpamClient(s.ds);
  for (let i = 0; i < 5; i++) await ipam.assign({ handleId: `h${i}`, node: 'gone' });
  const blocks = await ipam.affineBlockCidrs('gone');
  t.equal(blocks.length, 2);
  for (let i = 4; i < 5; i++) await ipam.releaseByHandle(`h${i}`);
  const released = await ipam.releaseHostAffinities('gone');
  t.same(released.sort(), [...blocks].sort());
  t.same(await ipam.affineBlockCidrs('gone'), []);
  const left = await ipam.listBlocks();
  t.equal(left.length, 1, 'empty block deleted');
  t.equal(left[0]!.affinity, null, 'used block kept without affinity');
  t.equal((await ipam.ipsByHandle('h0')).length, 1, 'its addresses stay allocated');
});

t.test('allowedUses and the IPIP tunnel address', async (t) => {
  const s = openTestStore('ipam-tunnel');
  t.teardown(() => s.close());
  const ipam = new IpamClient(s.ds);
  await s.rc.create(pool('plain', '10.50.0.0/24'));
  t.equal(await ipam.assignTunnelAddress('n1'), undefined, 'no IPIP pool: no tunnel address');
  await s.rc.create(pool('tunnels', '10.51.0.0/24', { ipipMode: 'Always', allowedUses: ['Tunnel'] }));
  const tun = await ipam.assignTunnelAddress('n1');
  t.match(tun, /^10\.51\.0\.\d+$/);
  t.equal(await ipam.assignTunnelAddress('n1'), tun, 'idempotent');
  t.match((await ipam.ipsByHandle('ipip-tunnel-addr-n1'))[0], { ip: tun, pool: 'tunnels' });
  for (let i = 0; i < 5; i++) t.match((await ipam.assign({ handleId: `w${i}`, node: 'n1' })).ips[0]!.ip, /^10\.50\.0\./, 'workloads never get Tunnel-only pool addresses');
  await t.rejects(ipam.assign({ handleId: 'w9', node: 'n1', pools: ['tunnels'] }), { code: 'ERR_IPAM_NO_POOLS', message: /"tunnels" does not allow Workload use/ });
});

t.test('a stale affinity entry (block owned by another node) is dropped on the next assign', async (t) => {
  const s = openTestStore('ipam-stale');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.70.0.0/28', { blockSize: 30 }));
  const ipam = new IpamClient(s.ds);
  const first = await ipam.assign({ handleId: 'x1', node: 'x' });
  await s.ds.create(affinityKey('y', first.ips[0]!.block), { state: 'pending' });
  t.same(await ipam.affineBlockCidrs('y'), [first.ips[0]!.block]);
  const r = await ipam.assign({ handleId: 'y1', node: 'y' });
  t.not(r.ips[0]!.block, first.ips[0]!.block, 'y did not use x\'s block through the stale entry');
  t.same(await ipam.affineBlockCidrs('y'), [r.ips[0]!.block], 'stale entry removed');
});

t.test('assignIp: a specific address, claiming its block; idempotent; in use is an error', async (t) => {
  const s = openTestStore('ipam-static');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.90.0.0/24', { blockSize: 28 }));
  await s.rc.create(pool('off', '10.91.0.0/24', { disabled: true }));
  const ipam = new IpamClient(s.ds);
  const a = await ipam.assignIp({ ip: '10.90.0.77', handleId: 'static1', node: 'n1', attrs: { pod: 'db-0' } });
  t.match(a, { ip: '10.90.0.77', cidr: '10.90.0.77/32', block: '10.90.0.64/28', pool: 'p' });
  t.same(await ipam.affineBlockCidrs('n1'), ['10.90.0.64/28'], 'its block claimed for the node');
  t.same(await ipam.assignIp({ ip: '10.90.0.77', handleId: 'static1', node: 'n1' }), a, 'repeat');
  await t.rejects(ipam.assignIp({ ip: '10.90.0.77', handleId: 'other', node: 'n1' }), { code: 'ERR_IPAM_IN_USE', message: /10\.90\.0\.77 is already assigned \(handle static1\)/ });
  await t.rejects(ipam.assignIp({ ip: '10.91.0.5', handleId: 'x', node: 'n1' }), { code: 'ERR_IPAM_NO_POOLS', message: /not in any enabled IP pool/ });
  await t.rejects(ipam.assignIp({ ip: '10.99.0.5', handleId: 'x', node: 'n1' }), { code: 'ERR_IPAM_NO_POOLS' });
  await t.rejects(ipam.assignIp({ ip: 'nope', handleId: 'x', node: 'n1' }), { code: 'ERR_IPAM_INVALID_ARGUMENT' });
  // Automatic assignment on the same node fills the rest of that block around it.
  const auto = new Set<string>();
  for (let i = 0; i < 15; i++) auto.add((await ipam.assign({ handleId: `auto${i}`, node: 'n1' })).ips[0]!.ip);
  t.equal(auto.size, 15);
  t.notOk(auto.has('10.90.0.77'), 'never hands out the static address again');
  t.same(await ipam.affineBlockCidrs('n1'), ['10.90.0.64/28'], '15 more fit in the same block');
  const b = await ipam.assignIp({ ip: '10.90.0.70', handleId: 'static2', node: 'n2' }).catch((e: Error) => e);
  t.match(b, { code: 'ERR_IPAM_IN_USE' }, 'full block: every address taken');
  t.same(await ipam.releaseByHandle('static1'), ['10.90.0.77']);
});

t.test('releaseIp frees one address whoever holds it and tidies the handle', async (t) => {
  const s = openTestStore('ipam-relip');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.95.0.0/24'));
  const ipam = new IpamClient(s.ds);
  const two = (await ipam.assign({ handleId: 'h2', node: 'n', num: 2 })).ips.map((x) => x.ip);
  const one = (await ipam.assign({ handleId: 'h1', node: 'n' })).ips[0]!.ip;
  t.equal(await ipam.releaseIp(two[0]!), 'h2');
  t.same((await ipam.ipsByHandle('h2')).map((x) => x.ip), [two[1]], 'the other address of the handle stays');
  t.ok(await s.ds.get(handleKey('h2')), 'handle kept while it holds something');
  t.equal(await ipam.releaseIp(one), 'h1');
  t.equal(await s.ds.get(handleKey('h1')), undefined, 'empty handle deleted');
  t.equal(await ipam.releaseIp(one), undefined, 'not allocated: nothing to do');
  t.equal(await ipam.releaseIp('10.96.0.1'), undefined, 'no block');
  await t.rejects(ipam.releaseIp('x'), { code: 'ERR_IPAM_INVALID_ARGUMENT' });
});
