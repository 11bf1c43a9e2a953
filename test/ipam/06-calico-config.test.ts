// Calico's IPAM configuration (/calico/ipam/v2/config, libcalico-go model.IPAMConfig) and the
// record details shared with Calico: handle counts, release cooldown, sanitised handles, and
// fields tortie does not know carried through its writes.
import t from 'tap';
import {
  IPAM_CONFIG_KEY, IpamClient, blockKey, checkBlock, decodeHandle, encodeIpamConfig, handleKey, type BlockRecord,
} from '../../src/ipam';
import { collectCooldown, newBlock, releaseHandle, allocate } from '../../src/ipam/block';
import type { JsonValue } from '../../src/datastore';
import { openTestStore } from '../../src/testbed/store';
import { pool } from '../../src/testbed/fixtures';

t.test('strict_affinity: no borrowing from another node\'s block, and the refusal says why', async (t) => {
  const s = openTestStore('ipam-strict');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.80.0.0/29', { blockSize: 29 })); // one block of 8
  const ipam = new IpamClient(s.ds);
  for (let i = 0; i < 4; i++) await ipam.assign({ handleId: `a${i}`, node: 'a' });
  // Non-strict (Calico's default): b borrows from a's block.
  t.equal((await ipam.assign({ handleId: 'b0', node: 'b' })).ips[0]!.block, '10.80.0.0/29');
  await s.ds.put(IPAM_CONFIG_KEY, encodeIpamConfig({ strictAffinity: true, autoAllocateBlocks: true, maxBlocksPerHost: 0, ipCooldownSeconds: 0 }));
  t.same((await s.ds.get(IPAM_CONFIG_KEY))!.value, { strict_affinity: true, auto_allocate_blocks: true });
  await t.rejects(ipam.assign({ handleId: 'b1', node: 'b' }), { code: 'ERR_IPAM_EXHAUSTED', message: /strict_affinity/ });
  await t.rejects(ipam.assignIp({ ip: '10.80.0.7', handleId: 'b2', node: 'b' }), { code: 'ERR_IPAM_IN_USE', message: /strict_affinity/ });
  t.equal((await ipam.assign({ handleId: 'a9', node: 'a' })).ips[0]!.block, '10.80.0.0/29', 'the owner still assigns from it');
});

t.test('auto_allocate_blocks off: no new block; maxBlocksPerHost: at most that many per node', async (t) => {
  const s = openTestStore('ipam-autoalloc');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.81.0.0/28', { blockSize: 30 })); // four blocks of 4
  const ipam = new IpamClient(s.ds);
  // A stored config omits false fields: {"strict_affinity":true} means auto_allocate_blocks false.
  await s.ds.put(IPAM_CONFIG_KEY, { strict_affinity: true });
  await t.rejects(ipam.assign({ handleId: 'x', node: 'a' }), { code: 'ERR_IPAM_EXHAUSTED', message: /auto_allocate_blocks is off/ });
  t.same(await ipam.affineBlockCidrs('a'), [], 'nothing claimed');
  await s.ds.put(IPAM_CONFIG_KEY, { strict_affinity: true, auto_allocate_blocks: true, maxBlocksPerHost: 2 });
  for (let i = 0; i < 8; i++) await ipam.assign({ handleId: `h${i}`, node: 'a' });
  t.equal((await ipam.affineBlockCidrs('a')).length, 2);
  await t.rejects(ipam.assign({ handleId: 'h8', node: 'a' }), { message: /maxBlocksPerHost 2/ });
  t.equal((await ipam.assign({ handleId: 'b', node: 'b' })).ips.length, 1, 'another node still claims its own');
});

t.test('handles count addresses per block, as Calico\'s IPAMHandle; releaseIp counts down', async (t) => {
  const s = openTestStore('ipam-handle');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.82.0.0/24', { blockSize: 29 }));
  const ipam = new IpamClient(s.ds);
  const r = await ipam.assign({ handleId: 'multi', node: 'a', num: 10 });
  t.equal(r.ips.length, 10);
  const raw = (await s.ds.get(handleKey('multi')))!.value as { block: Record<string, number>; deleted: boolean };
  t.same(Object.keys(raw), ['block', 'deleted'], 'Calico\'s field names and order');
  t.equal(Object.values(raw.block).reduce((a, b) => a + b, 0), 10);
  t.same(Object.keys(raw.block), [...Object.keys(raw.block)].sort(), 'keys sorted, as Go writes a map');
  t.equal(await ipam.releaseIp(r.ips[0]!.ip), 'multi');
  t.equal(Object.values(decodeHandle((await s.ds.get(handleKey('multi')))!.value, 'k').block).reduce((a, b) => a + b, 0), 9);
  t.equal((await ipam.releaseByHandle('multi')).length, 9);
  t.equal(await s.ds.get(handleKey('multi')), undefined);
});

t.test('release cooldown (ipCooldownSeconds): a released address is not reused until its time is over', async (t) => {
  const s = openTestStore('ipam-cooldown');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.83.0.0/30', { blockSize: 30 })); // 4 addresses
  await s.ds.put(IPAM_CONFIG_KEY, encodeIpamConfig({ strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0, ipCooldownSeconds: 3600 }));
  const ipam = new IpamClient(s.ds);
  const all = [];
  for (let i = 0; i < 4; i++) all.push((await ipam.assign({ handleId: `h${i}`, node: 'a' })).ips[0]!.ip);
  t.same(await ipam.releaseByHandle('h1'), [all[1]]);
  const b = checkBlock((await s.ds.get(blockKey('10.83.0.0/30')))!.value, 'k');
  const attr = b.attributes[b.allocations[1]!]!;
  t.match(attr, { releasedAt: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/ }, 'marked as Calico marks it');
  t.equal(attr.handle_id, undefined, 'owned by no handle');
  await t.rejects(ipam.assign({ handleId: 'h9', node: 'a' }), { code: 'ERR_IPAM_EXHAUSTED' }, 'not reused during the cooldown');
  await t.rejects(ipam.assignIp({ ip: all[1]!, handleId: 'h9', node: 'a' }), { code: 'ERR_IPAM_IN_USE', message: /cooldown/ });
  t.equal(await ipam.releaseIp(all[1]!), undefined, 'an address in cooldown is not released again');
  // Pure functions with a clock: collected once the cooldown is over, not before.
  const at = new Date(Date.parse(attr.releasedAt!) + 3599_000);
  t.equal(collectCooldown(b, 3600, at), b, 'still cooling down');
  const done = collectCooldown(b, 3600, new Date(Date.parse(attr.releasedAt!) + 3601_000));
  t.same(done.unallocated, [1]);
  t.equal(done.allocations[1], null);
  t.equal(done.attributes.length, 3, 'the cooldown entry is dropped');
  // With cooldown 0 (Calico's default), entries Calico left are freed at tortie's next write.
  await s.ds.put(IPAM_CONFIG_KEY, {});
  t.equal((await ipam.assign({ handleId: 'h9', node: 'a' })).ips[0]!.ip, all[1]);
});

t.test('fields tortie does not know survive its writes; Calico\'s malformed \\r handles are matched as Calico does', async (t) => {
  const s = openTestStore('ipam-unknown');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.84.0.0/30', { blockSize: 30 }));
  const b0: BlockRecord = { ...newBlock('10.84.0.0/30', 'host:a'), hostAffinity: 'a-legacy' };
  const taken = allocate(b0, 1, 'legacy\r\neth0', { node: 'a' }).block;
  taken.attributes[0]!.alternateOwnerAttrs = { pod: 'migrating' };
  await s.ds.create(blockKey('10.84.0.0/30'), taken as unknown as JsonValue);
  await s.ds.create('/calico/ipam/v2/host/a/ipv4/block/10.84.0.0-30', { state: 'confirmed', deleted: false });
  const ipam = new IpamClient(s.ds);
  await ipam.assign({ handleId: 'new', node: 'a' });
  const after = (await s.ds.get(blockKey('10.84.0.0/30')))!.value as BlockRecord;
  t.equal(after.hostAffinity, 'a-legacy', 'an unknown block field is kept');
  t.same(after.attributes[0]!.alternateOwnerAttrs, { pod: 'migrating' }, 'an unknown attribute field is kept');
  t.same(Object.keys(after).slice(0, 3), ['cidr', 'affinity', 'affinity_claim_time'], 'field order kept');
  t.same((await ipam.ipsByHandle('new')).length, 1);
  const r = releaseHandle(after, 'legacy');
  t.same(r.ordinals, [0], 'the handle is matched up to its \\r, as Calico\'s sanitizeHandle');
});
