// BpfMap basics on throwaway maps: create, info, lookup/get/has, update flags, delete, close.
import t from 'tap';
import { BpfMap, MapType, UpdateFlag, native } from '../../src/dataplane/native';
import { expectBpfError, requireRoot } from './helpers/env';

requireRoot(t);

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const u64 = (n: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(n); return b; };

t.test('create reports the kernel map info', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 8, maxEntries: 64, name: 'tt_crud' });
  t.teardown(() => m.close());
  t.equal(m.info.type, MapType.HASH);
  t.equal(m.info.typeName, 'HASH');
  t.equal(m.keySize, 4);
  t.equal(m.valueSize, 8);
  t.equal(m.maxEntries, 64);
  t.equal(m.name, 'tt_crud');
  t.ok(m.info.id > 0, 'kernel id assigned');
  t.equal(m.info.perCpu, false);
  t.same(m.refreshInfo(), m.info, 'info is stable');
});

t.test('hash: update, lookup, get, has, delete', async (t) => {
  const m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 8 });
  t.teardown(() => m.close());
  t.equal(m.lookup(u32(1)), undefined, 'absent key: lookup gives undefined');
  t.equal(m.has(u32(1)), false);
  m.update(u32(1), u64(100n));
  m.update(u32(2), u64(200n));
  t.same(m.get(u32(1)), u64(100n));
  t.same(m.lookup(u32(2)), u64(200n));
  t.equal(m.has(u32(2)), true);
  m.update(u32(1), u64(101n), UpdateFlag.EXIST);
  t.same(m.get(u32(1)), u64(101n), 'EXIST overwrites a present key');
  expectBpfError(t, () => m.update(u32(1), u64(0n), UpdateFlag.NOEXIST), { errnoName: 'EEXIST', code: 'ERR_BPF_MAP_UPDATE' });
  expectBpfError(t, () => m.update(u32(3), u64(0n), UpdateFlag.EXIST), { errnoName: 'ENOENT' });
  m.delete(u32(1));
  t.equal(m.lookup(u32(1)), undefined, 'deleted');
  t.equal(m.tryDelete(u32(1)), false, 'tryDelete of an absent key');
  t.equal(m.tryDelete(u32(2)), true);
  t.same(m.keys(), [], 'empty again');
});

t.test('hash full: E2BIG on the entry past max_entries', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 4, maxEntries: 2 });
  t.teardown(() => m.close());
  m.update(u32(1), u32(1));
  m.update(u32(2), u32(2));
  expectBpfError(t, () => m.update(u32(3), u32(3)), { errnoName: 'E2BIG' });
});

t.test('array: preallocated zero values, index bounds', async (t) => {
  const m = BpfMap.create({ type: 'ARRAY', keySize: 4, valueSize: 12, maxEntries: 4 });
  t.teardown(() => m.close());
  t.same(m.get(u32(3)), Buffer.alloc(12), 'every index exists, zeroed');
  m.update(u32(3), Buffer.from('0102030405060708090a0b0c', 'hex'));
  t.same(m.get(u32(3)), Buffer.from('0102030405060708090a0b0c', 'hex'));
  t.equal(m.lookup(u32(4)), undefined, 'index past the end is absent');
  expectBpfError(t, () => m.update(u32(4), Buffer.alloc(12)), { errnoName: 'E2BIG' });
  expectBpfError(t, () => m.delete(u32(0)), { errnoName: 'EINVAL' }, 'array elements cannot be deleted');
});

t.test('close releases the fd and later use fails clearly', async (t) => {
  const before = native().ownedFdCount();
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 4, maxEntries: 2 });
  t.equal(native().ownedFdCount(), before + 1, 'the addon tracks the new fd');
  m.close();
  m.close(); // idempotent
  t.equal(native().ownedFdCount(), before, 'fd closed');
  t.equal(m.closed, true);
  expectBpfError(t, () => m.lookup(u32(1)), { code: 'ERR_BPF_MAP_CLOSED', errnoName: 'EBADF' });
});

t.test('create validates options before any syscall', async (t) => {
  expectBpfError(t, () => BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 4, maxEntries: 2, name: 'this-name-is-too-long' }), { code: 'ERR_BPF_INVALID_OPTION', message: /map name/ });
  expectBpfError(t, () => BpfMap.create({ type: 'HASH', keySize: -1, valueSize: 4, maxEntries: 2 }), { message: /keySize must be an integer/ });
  expectBpfError(t, () => BpfMap.create({ type: 'NOPE' as 'HASH', keySize: 4, valueSize: 4, maxEntries: 2 }), { message: /not a known map type/ });
  expectBpfError(t, () => BpfMap.create({ type: 'HASH', keySize: 0, valueSize: 4, maxEntries: 2 }), { code: 'ERR_BPF_MAP_CREATE', errnoName: 'EINVAL' }, 'kernel refusal is a BpfError too');
});
