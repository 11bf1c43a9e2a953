// Batch update/lookup/delete, key iteration, whole-map entries (with the per-element fallback
// for map types without batch support), and per-CPU values.
import t from 'tap';
import { BpfMap, possibleCpus } from '../../src/dataplane/native';
import { expectBpfError, requireRoot } from './helpers/env';
import { ipv4ToU32 } from '../../src/primitives';

requireRoot(t);

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const val = (n: number): Buffer => { const b = Buffer.alloc(16); b.writeUInt32LE(n, 0); b.writeUInt32LE(n * 3, 12); return b; };
const sortedNums = (bufs: Buffer[]): number[] => bufs.map((b) => b.readUInt32LE(0)).sort((a, b) => a - b);

t.test('batch update, lookup, delete on a hash map', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 16, maxEntries: 1000, name: 'tt_batch' });
  t.teardown(() => m.close());
  const ids = Array.from({ length: 500 }, (_, i) => i * 7 + 1);
  t.equal(m.updateBatch(ids.map(u32), ids.map(val)), 500);
  const all = m.lookupBatch({ chunk: 64 });
  t.equal(all.keys.length, 500, 'every entry comes back across several chunks');
  t.same(sortedNums(all.keys), ids);
  all.keys.forEach((k, i) => {
    if (!all.values[i]!.equals(val(k.readUInt32LE(0)))) t.fail(`value of key ${k.readUInt32LE(0)} differs`);
  });
  t.same(sortedNums(m.keys()), ids, 'keys() agrees');
  t.equal(m.deleteBatch(ids.slice(0, 250).map(u32)), 250);
  t.same(sortedNums(m.entries().keys), ids.slice(250));
  expectBpfError(t, () => m.deleteBatch([u32(1)]), { code: 'ERR_BPF_MAP_DELETE_BATCH', errnoName: 'ENOENT' }, 'deleting an absent key');
  const drained = m.lookupBatch({ delete: true });
  t.equal(drained.keys.length, 250, 'lookup-and-delete returns the rest');
  t.same(m.keys(), [], 'and empties the map');
});

t.test('batch input sizes are checked', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 16, maxEntries: 8 });
  t.teardown(() => m.close());
  expectBpfError(t, () => m.updateBatch([u32(1)], []), { message: /1 keys but 0 values/ });
  expectBpfError(t, () => m.updateBatch([u32(1)], [Buffer.alloc(15)]), { errnoName: 'EINVAL', message: /value 0 is 15 bytes; expected 16/ });
  t.equal(m.updateBatch([], []), 0, 'empty batch is a no-op');
  expectBpfError(t, () => m.updateBatchPacked(Buffer.alloc(8), Buffer.alloc(16), 2), { message: /2 entries need 8 key and 32 value bytes; got 8 and 16/ });
  expectBpfError(t, () => m.deleteBatchPacked(Buffer.alloc(6), 2), { message: /2 keys need 8 bytes; got 6/ });
  t.same(m.keys(), [], 'nothing was written');
});

t.test('packed batches: entries side by side in one key and one value buffer', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 16, maxEntries: 1000, name: 'tt_batchp' });
  t.teardown(() => m.close());
  const ids = Array.from({ length: 300 }, (_, i) => i * 5 + 2);
  t.equal(m.updateBatchPacked(Buffer.concat(ids.map(u32)), Buffer.concat(ids.map(val)), ids.length), 300);
  const all = m.entries();
  t.same(sortedNums(all.keys), ids);
  all.keys.forEach((k, i) => {
    if (!all.values[i]!.equals(val(k.readUInt32LE(0)))) t.fail(`value of key ${k.readUInt32LE(0)} differs`);
  });
  t.equal(m.deleteBatchPacked(Buffer.concat(ids.slice(0, 100).map(u32)), 100), 100);
  t.same(sortedNums(m.keys()), ids.slice(100));
});

t.test('packed batch update off the JS thread: same entries, same errors as a rejection', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 16, maxEntries: 400, name: 'tt_batcha' });
  t.teardown(() => m.close());
  const ids = Array.from({ length: 300 }, (_, i) => i * 3 + 1);
  const keys = Buffer.concat(ids.map(u32));
  const pending = m.updateBatchPackedAsync(keys, Buffer.concat(ids.map(val)), ids.length);
  t.ok(pending instanceof Promise, 'a promise');
  t.equal(await pending, 300);
  const all = m.entries();
  t.same(sortedNums(all.keys), ids);
  all.keys.forEach((k, i) => {
    if (!all.values[i]!.equals(val(k.readUInt32LE(0)))) t.fail(`value of key ${k.readUInt32LE(0)} differs`);
  });
  t.equal(await m.updateBatchPackedAsync(Buffer.alloc(0), Buffer.alloc(0), 0), 0, 'empty batch resolves 0');
  // Sizes are checked before anything is queued: a synchronous throw.
  expectBpfError(t, () => m.updateBatchPackedAsync(Buffer.alloc(8), Buffer.alloc(16), 2), { message: /2 entries need 8 key and 32 value bytes; got 8 and 16/ });
  // The map holds 400: 200 more new keys fill it part way, and the promise rejects with E2BIG.
  const more = Array.from({ length: 200 }, (_, i) => 10_000 + i);
  let err: unknown;
  await m.updateBatchPackedAsync(Buffer.concat(more.map(u32)), Buffer.concat(more.map(val)), more.length).catch((e) => { err = e; });
  t.match(err, { code: 'ERR_BPF_MAP_UPDATE_BATCH', errnoName: 'E2BIG', message: /stopped after 100 of 200 entries/ }, 'a full map rejects, saying how far it got');
  t.equal(m.keys().length, 400);
  // Several in flight on different maps at once, settled in any order.
  const n = BpfMap.create({ type: 'LPM_TRIE', keySize: 8, valueSize: 4, maxEntries: 1000, flags: 1, name: 'tt_batcha_lpm' });
  t.teardown(() => n.close());
  const lpmKeys = Buffer.alloc(500 * 8);
  for (let i = 0; i < 500; i++) { lpmKeys.writeUInt32LE(32, i * 8); lpmKeys.writeUInt32BE(0x0a000000 + i, i * 8 + 4); }
  const m2 = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 16, maxEntries: 1000 });
  t.teardown(() => m2.close());
  const [a, b] = await Promise.all([n.updateBatchPackedAsync(lpmKeys, Buffer.alloc(500 * 4, 7), 500), m2.updateBatchPackedAsync(keys, Buffer.concat(ids.map(val)), ids.length)]);
  t.same([a, b], [500, 300]);
  t.equal(n.entries().keys.length, 500);
  t.equal(m2.keys().length, 300);
});

t.test('nextKey walks every key once', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 4, maxEntries: 64 });
  t.teardown(() => m.close());
  for (let i = 0; i < 40; i++) m.update(u32(i * 11), u32(i));
  const seen: number[] = [];
  for (let k = m.nextKey(null); k; k = m.nextKey(k)) seen.push(k.readUInt32LE(0));
  t.same(seen.sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i * 11));
  t.equal(m.keys(10).length, 10, 'keys() honours its limit');
});

t.test('LPM trie: entries() falls back to per-key lookups', async (t) => {
  const m = BpfMap.create({ type: 'LPM_TRIE', keySize: 8, valueSize: 4, maxEntries: 16, flags: 1 /* NO_PREALLOC */ });
  t.teardown(() => m.close());
  const key = (plen: number, ip: string): Buffer => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(plen, 0);
    b.writeUInt32BE(ipv4ToU32(ip), 4);
    return b;
  };
  m.update(key(16, '192.168.0.0'), u32(1));
  m.update(key(24, '192.168.7.0'), u32(2));
  t.same(m.get(key(32, '192.168.7.9')), u32(2), 'longest prefix wins');
  t.same(m.get(key(32, '192.168.9.9')), u32(1));
  const e = m.entries();
  t.equal(e.keys.length, 2);
  t.same(e.values.map((v) => v.readUInt32LE(0)).sort(), [1, 2]);
});

t.test('per-CPU array: one Buffer for all CPUs, split and joined', async (t) => {
  const m = BpfMap.create({ type: 'PERCPU_ARRAY', keySize: 4, valueSize: 12, maxEntries: 4, name: 'tt_pcpu' });
  t.teardown(() => m.close());
  const n = possibleCpus();
  t.ok(n >= 1);
  t.equal(m.valueBufSize, n * 16, 'value size rounded up to 8 per CPU');
  const perCpu = Array.from({ length: n }, (_, i) => { const b = Buffer.alloc(12); b.writeUInt32LE(100 + i, 0); b.writeUInt32LE(7, 8); return b; });
  m.update(u32(2), m.joinPerCpu(perCpu));
  const got = m.splitPerCpu(m.get(u32(2)));
  t.equal(got.length, n);
  t.same(got, perCpu);
  const batch = m.lookupBatch();
  t.equal(batch.keys.length, 4, 'arrays batch-lookup every index');
  t.equal(batch.values[2]!.length, n * 16);
  expectBpfError(t, () => m.joinPerCpu([Buffer.alloc(11)]), { message: /is 11 bytes; map tt_pcpu has value_size 12/ });
});
