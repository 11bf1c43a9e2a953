import t from 'tap';
import { bigIntOf } from '../../src/datastore/keys';
import {
  allocate, checkBlock, cidrToSegment, inUse, newBlock, ordinalToIp, ordinalsOfHandle, parseV4Net,
  releaseHandle, segmentToCidr,
} from '../../src/ipam/block';

t.test('a new block has every address free, network and broadcast included', async (t) => {
  const b = newBlock('192.168.1.0/30', 'host:a');
  t.equal(b.allocations.length, 4);
  t.same(b.unallocated, [0, 1, 2, 3]);
  const { block, ordinals } = allocate(b, 4, 'h1', { pod: 'p' });
  t.same(ordinals.map((o) => ordinalToIp(block, o)), ['192.168.1.0', '192.168.1.1', '192.168.1.2', '192.168.1.3']);
  t.equal(inUse(block), 4);
  t.equal(allocate(block, 1, 'h2', {}).ordinals.length, 0, 'full block gives nothing');
  t.equal(inUse(b), 0, 'input not mutated');
  checkBlock(block, 'k');
});

t.test('host bits of a block cidr are masked; bad cidrs rejected', async (t) => {
  t.equal(newBlock('10.0.0.77/26', null).cidr, '10.0.0.64/26');
  t.equal(newBlock('fd00:10::7/122', null).cidr, 'fd00:10::/122', 'an IPv6 block: host bits masked, Go\'s text form');
  t.equal(newBlock('fd00:10::7/122', null).allocations.length, 64);
  t.throws(() => newBlock('fd00::/64', null), { code: 'ERR_IPAM_INVALID_ARGUMENT', message: /more than 4096 addresses/ });
  t.throws(() => newBlock('10.0.0.0/16', null), { code: 'ERR_IPAM_INVALID_ARGUMENT', message: /more than 4096 addresses/ });
  t.throws(() => newBlock('fd00::1', null), { code: 'ERR_IPAM_INVALID_ARGUMENT', message: /not an IPv4 or IPv6 CIDR/ });
  t.throws(() => parseV4Net('10.0.0.0'), { code: 'ERR_IPAM_INVALID_ARGUMENT', message: /10\.0\.0\.0/ });
});

t.test('release frees only the handle\'s ordinals, appends them last and compacts attributes', async (t) => {
  let b = newBlock('10.1.0.0/29', 'host:a');
  b = allocate(b, 2, 'h1', { pod: 'one' }).block;
  b = allocate(b, 1, 'h2', { pod: 'two' }).block;
  b = allocate(b, 1, 'h3', { pod: 'three' }).block;
  t.same(ordinalsOfHandle(b, 'h1'), [0, 1]);
  const r = releaseHandle(b, 'h1');
  t.same(r.ordinals, [0, 1]);
  t.same(r.block.unallocated, [4, 5, 6, 7, 0, 1], 'freed addresses reused last');
  t.equal(r.block.attributes.length, 2);
  t.same(r.block.attributes.map((a) => a.handle_id), ['h2', 'h3']);
  t.same(ordinalsOfHandle(r.block, 'h3'), [3]);
  t.equal(r.block.attributes[r.block.allocations[3]!]!.secondary!.pod, 'three');
  checkBlock(r.block, 'k');
  t.equal(releaseHandle(r.block, 'nobody').block, r.block, 'unknown handle: unchanged');
  t.ok(bigIntOf(r.block.sequenceNumber)! > bigIntOf(b.sequenceNumber)!);
});

t.test('checkBlock names what is wrong', async (t) => {
  const good = allocate(newBlock('10.1.0.0/30', 'host:a'), 1, 'h', {}).block;
  t.throws(() => checkBlock({ ...good, unallocated: [0, 1, 2, 3] }, '/k'), { code: 'ERR_IPAM_CORRUPT', message: /ordinal 0 is both allocated and unallocated/ });
  t.throws(() => checkBlock({ ...good, unallocated: [1, 2] }, '/k'), { message: /ordinal 3 is neither/ });
  t.throws(() => checkBlock({ ...good, allocations: [0] }, '/k'), { message: /allocations must have 4 entries/ });
  t.doesNotThrow(() => checkBlock({ ...good, attributes: [...good.attributes, { handle_id: 'x', secondary: {} }] }, '/k'), 'an unreferenced attribute entry (Calico leaves them) is valid');
  t.throws(() => checkBlock({ ...good, sequenceNumber: 'x' }, '/k'), { message: /sequenceNumber is not an integer/ });
  t.throws(() => checkBlock({ ...good, attributes: [{ handle_id: 7 }] }, '/k'), { message: /attribute 0: handle_id is not a string/ });
  t.throws(() => checkBlock('nope', '/k'), { message: /\/k is invalid: not an object/ });
});

t.test('cidr key segments round-trip', async (t) => {
  t.equal(cidrToSegment('192.168.0.64/26'), '192.168.0.64-26');
  t.equal(segmentToCidr('192.168.0.64-26'), '192.168.0.64/26');
});
