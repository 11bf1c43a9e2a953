// IPv6 in the block IPAM: Calico's keys and values for v6 blocks, affinities and handles;
// dual-stack handles (one address per family under one handle); exhaustion, reservations,
// explicit requests and releases per family. Concurrency in v6: 03-concurrency.
import t from 'tap';
import { IpamClient, ipamCheck, ipamShow, renderIpamShow, blockKey, affinityKey, handleKey, blockPrefix, affinityPrefix } from '../../src/ipam';
import type { Resource } from '../../src/model';
import { openTestStore } from '../../src/testbed/store';
import { pool } from '../../src/testbed/fixtures';


const reservation = (name: string, reservedCIDRs: string[]): Resource =>
  ({ apiVersion: 'projectcalico.org/v3', kind: 'IPReservation', metadata: { name }, spec: { reservedCIDRs } } as Resource);

t.test('an IPv6 assignment is stored under Calico\'s v6 keys, with its values', async (t) => {
  const s = openTestStore('ipam-v6-keys');
  t.teardown(() => s.close());
  await s.rc.create(pool('v6', 'fd00:10::/120')); // blockSize left out: Calico's default /122
  t.equal((await s.rc.get('IPPool', 'v6'))!.spec.blockSize, 122, 'the v6 default block size is stored');
  const ipam = new IpamClient(s.ds);
  const r = await ipam.assign({ handleId: 'net.c1', node: 'node-a', family: 6 });
  t.equal(r.ips.length, 1);
  const got = r.ips[0]!;
  t.equal(got.family, 6);
  t.match(got.ip, /^fd00:10::[0-9a-f]*$/, 'Go\'s text form: lower case, zeros compressed');
  t.equal(got.cidr, `${got.ip}/128`);
  t.match(got.block, /^fd00:10::([0-9a-f]+)?\/122$/);
  t.equal(blockKey(got.block), `/calico/ipam/v2/assignment/ipv6/block/${got.block.replace('/', '-')}`);
  const stored = await s.ds.get(blockKey(got.block));
  t.ok(stored, 'the block is at /calico/ipam/v2/assignment/ipv6/block/<cidr with - for />');
  const b = stored!.value as Record<string, unknown>;
  t.same(Object.keys(b), ['cidr', 'affinity', 'affinity_claim_time', 'allocations', 'unallocated', 'attributes', 'sequenceNumber', 'sequenceNumberForAllocation', 'deleted'],
    'AllocationBlock\'s fields in libcalico-go\'s order');
  t.equal(b.cidr, got.block);
  t.equal(b.affinity, 'host:node-a');
  t.equal((b.allocations as unknown[]).length, 64, 'a /122 holds 64 addresses');
  t.same(b.attributes, [{ handle_id: 'net.c1', secondary: { node: 'node-a' } }]);
  t.same((await s.ds.get(affinityKey('node-a', got.block)))?.value, { state: 'confirmed', deleted: false });
  t.equal(affinityKey('node-a', got.block), `/calico/ipam/v2/host/node-a/ipv6/block/${got.block.replace('/', '-')}`);
  t.same((await s.ds.get(handleKey('net.c1')))?.value, { block: { [got.block]: 1 }, deleted: false });
  t.same((await s.ds.list(blockPrefix(4))).items, [], 'nothing under the v4 prefix');
  t.same(await ipam.affineBlockCidrs('node-a', 6), [got.block]);
  t.same(await ipam.affineBlockCidrs('node-a', 4), [], 'v4 affinities are another index');
  t.equal((await s.ds.list(affinityPrefix('node-a', 6))).items.length, 1);
});

t.test('dual stack: one handle holds an address of each family; repeat, release and check cover both', async (t) => {
  const s = openTestStore('ipam-v6-dual');
  t.teardown(() => s.close());
  await s.rc.create(pool('v4', '192.168.40.0/24'));
  await s.rc.create(pool('v6', 'fd00:40::/64'));
  const ipam = new IpamClient(s.ds);
  const a4 = await ipam.assign({ handleId: 'net.d1', node: 'node-a', family: 4 });
  const a6 = await ipam.assign({ handleId: 'net.d1', node: 'node-a', family: 6 });
  t.equal(a4.ips[0]!.family, 4);
  t.equal(a6.ips[0]!.family, 6);
  t.notOk(a6.existing, 'holding an IPv4 address does not satisfy an IPv6 request');
  t.equal(a6.ips[0]!.pool, 'v6');
  const again = await ipam.assign({ handleId: 'net.d1', node: 'node-a', family: 6 });
  t.ok(again.existing);
  t.same(again.ips.map((x) => x.ip), [a6.ips[0]!.ip], 'a repeated v6 assign returns the same address');
  t.same((await ipam.ipsByHandle('net.d1')).map((x) => x.ip), [a4.ips[0]!.ip, a6.ips[0]!.ip], 'both, IPv4 first');
  const h = (await s.ds.get(handleKey('net.d1')))!.value as { block: Record<string, number> };
  t.same(Object.keys(h.block), [a4.ips[0]!.block, a6.ips[0]!.block], 'the handle counts one address in each family\'s block');

  // ipam show: the v6 pool's size as calicoctl prints it (beyond 2^53: %.5g).
  const show = await ipamShow(s.ds);
  t.same(show.pools.map((p) => [p.name, p.inUse]), [['v4', 1], ['v6', 1]]);
  const text = renderIpamShow(show, { showBlocks: true });
  t.match(text, /\| IP Pool +\| fd00:40::\/64 +\| 1\.8447e\+19 \| 1 \(0%\) +\| 1\.8447e\+19 \(100%\) \|/);
  t.match(text, new RegExp(`\\| Block +\\| ${a6.ips[0]!.block.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} +\\| +64 \\| 1 \\(2%\\)`));

  // ipam check sees a v6 leak like a v4 one (an allocation with a containerID and no endpoint).
  await ipam.assign({ handleId: 'net.leak', node: 'node-a', family: 6, attrs: { containerID: 'gone', namespace: 'default' } });
  const report = await ipamCheck(s.ds);
  t.same(report.leaked.map((l) => l.handleId), ['net.leak']);

  const freed = await ipam.releaseByHandle('net.d1');
  t.same(freed.sort(), [a4.ips[0]!.ip, a6.ips[0]!.ip].sort(), 'release by handle frees both families');
  t.equal(await s.ds.get(handleKey('net.d1')), undefined);
});

t.test('an IPv6 pool is used to its last address, then the error names it; IPv4 is unaffected', async (t) => {
  const s = openTestStore('ipam-v6-exhaust');
  t.teardown(() => s.close());
  await s.rc.create(pool('v4', '192.168.41.0/29', { blockSize: 29 }));
  await s.rc.create(pool('tiny6', 'fd00:41::/125', { blockSize: 126 })); // two blocks of 4
  const ipam = new IpamClient(s.ds);
  const got = new Set<string>();
  for (let i = 0; i < 8; i++) got.add((await ipam.assign({ handleId: `h${i}`, node: i < 4 ? 'node-a' : 'node-b', family: 6 })).ips[0]!.ip);
  t.same([...got].sort(), ['fd00:41::', 'fd00:41::1', 'fd00:41::2', 'fd00:41::3', 'fd00:41::4', 'fd00:41::5', 'fd00:41::6', 'fd00:41::7'],
    'every address, the block\'s first (::) included');
  await t.rejects(ipam.assign({ handleId: 'h8', node: 'node-c', family: 6 }), { code: 'ERR_IPAM_EXHAUSTED', message: /fd00:41::\/125/ });
  t.equal(await s.ds.get(handleKey('h8')), undefined, 'a failed assign leaves no handle');
  t.equal((await ipam.assign({ handleId: 'h8', node: 'node-c', family: 4 })).ips[0]!.family, 4, 'IPv4 still assigns');
  // A dual-stack handle whose v6 request fails keeps its v4 address: only what the failed call took goes.
  await t.rejects(ipam.assign({ handleId: 'h8', node: 'node-c', family: 6 }), { code: 'ERR_IPAM_EXHAUSTED' });
  t.equal((await ipam.ipsByHandle('h8')).length, 1);
});

t.test('pool choice per family: no v6 pool, a v4 pool requested for v6, a v6 pool by CIDR', async (t) => {
  const s = openTestStore('ipam-v6-pools');
  t.teardown(() => s.close());
  await s.rc.create(pool('v4', '192.168.42.0/24'));
  const ipam = new IpamClient(s.ds);
  await t.rejects(ipam.assign({ handleId: 'x', node: 'a', family: 6 }), { code: 'ERR_IPAM_NO_POOLS', message: /no enabled IPv6 pool is usable by node "a"/ });
  await s.rc.create(pool('v6', 'fd00:42::/120', { blockSize: 124 }));
  await s.rc.create(pool('v6b', 'fd00:43::/120', { nodeSelector: 'zone == "x"' }));
  await t.rejects(ipam.assign({ handleId: 'x', node: 'a', family: 6, pools: ['v4'] }), { code: 'ERR_IPAM_NO_POOLS', message: /"v4" \(192\.168\.42\.0\/24\) is not an IPv6 pool/ });
  await t.rejects(ipam.assign({ handleId: 'x', node: 'a', family: 4, pools: ['fd00:42::/120'] }), { code: 'ERR_IPAM_NO_POOLS', message: /is not an IPv4 pool/ });
  const r = await ipam.assign({ handleId: 'x', node: 'a', family: 6, pools: ['FD00:42:0::/120'] });
  t.match(r.ips[0]!.block, /\/124$/, 'a pool named by CIDR in any text form; its blockSize used');
  t.equal(r.ips[0]!.pool, 'v6');
  t.equal((await ipam.usablePools('a', undefined, 'Workload', 6)).map((p) => p.name).join(','), 'v6', 'nodeSelector applies to v6 pools');
});

t.test('IPReservation in IPv6: never assigned automatically, refused by address', async (t) => {
  const s = openTestStore('ipam-v6-reserve');
  t.teardown(() => s.close());
  await s.rc.create(pool('v6', 'fd00:44::/125', { blockSize: 125 }));
  await s.rc.create(reservation('r', ['fd00:44::/127', 'fd00:44::5', '192.168.44.0/24']));
  const ipam = new IpamClient(s.ds);
  const got: string[] = [];
  for (let i = 0; i < 5; i++) got.push((await ipam.assign({ handleId: `r${i}`, node: 'node-a', family: 6 })).ips[0]!.ip);
  t.same(got.sort(), ['fd00:44::2', 'fd00:44::3', 'fd00:44::4', 'fd00:44::6', 'fd00:44::7'], 'every unreserved address, no reserved one');
  await t.rejects(ipam.assign({ handleId: 'r5', node: 'node-a', family: 6 }), { code: 'ERR_IPAM_EXHAUSTED' });
  await t.rejects(ipam.assignIp({ ip: 'fd00:44::5', handleId: 'r6', node: 'node-a' }), { code: 'ERR_IPAM_RESERVED', message: /fd00:44::5\/128/ });
  await t.rejects(ipam.assignIp({ ip: 'fd00:44:0::1', handleId: 'r6', node: 'node-a' }), { code: 'ERR_IPAM_RESERVED', message: /fd00:44::\/127/ });
  await s.rc.delete('IPReservation', 'r');
  t.equal((await ipam.assign({ handleId: 'r5', node: 'node-a', family: 6 })).ips.length, 1, 'lifting the reservation frees its addresses');
});

t.test('IPv6 by address: assignIp, releaseIp and releaseAddresses', async (t) => {
  const s = openTestStore('ipam-v6-ip');
  t.teardown(() => s.close());
  await s.rc.create(pool('v4', '192.168.45.0/24'));
  await s.rc.create(pool('v6', 'fd00:45::/64'));
  const ipam = new IpamClient(s.ds);
  const a = await ipam.assignIp({ ip: 'fd00:45:0:0::abcd', handleId: 'p1', node: 'node-a' });
  t.same([a.ip, a.cidr, a.block], ['fd00:45::abcd', 'fd00:45::abcd/128', 'fd00:45::abc0/122'], 'the address\'s /122 block is claimed');
  t.same(await ipam.affineBlockCidrs('node-a', 6), ['fd00:45::abc0/122']);
  t.equal((await ipam.assignIp({ ip: 'fd00:45::abcd', handleId: 'p1', node: 'node-a' })).ip, 'fd00:45::abcd', 'repeat: same handle succeeds');
  await t.rejects(ipam.assignIp({ ip: 'fd00:45::abcd', handleId: 'p2', node: 'node-a' }), { code: 'ERR_IPAM_IN_USE', message: /handle p1/ });
  await t.rejects(ipam.assignIp({ ip: 'fd00:46::1', handleId: 'p2', node: 'node-a' }), { code: 'ERR_IPAM_NO_POOLS' });
  await t.rejects(ipam.assignIp({ ip: 'fd00::zz', handleId: 'p2', node: 'node-a' }), { code: 'ERR_IPAM_INVALID_ARGUMENT', message: /not an IPv4 or IPv6 address/ });
  const v4 = await ipam.assign({ handleId: 'p1', node: 'node-a' });
  t.same(await ipam.releaseAddresses('p1', ['fd00:45::abcd']), ['fd00:45::abcd'], 'releaseAddresses frees only what it names');
  t.same((await ipam.ipsByHandle('p1')).map((x) => x.ip), [v4.ips[0]!.ip], 'the v4 address stays with the handle');
  t.same((await s.ds.get(handleKey('p1')))!.value, { block: { [v4.ips[0]!.block]: 1 }, deleted: false });
  await ipam.assignIp({ ip: 'fd00:45::1', handleId: 'p3', node: 'node-b' });
  t.equal(await ipam.releaseIp('fd00:45::1'), 'p3');
  t.equal(await ipam.releaseIp('fd00:45::1'), undefined, 'not assigned any more');
  t.equal(await s.ds.get(handleKey('p3')), undefined);
  // node removal gives up v6 affinities too
  t.same((await ipam.releaseHostAffinities('node-b')).sort(), ['fd00:45::/122']);
  t.same(await ipam.affineBlockCidrs('node-b', 6), []);
});
