// errno mapping: a missing key is ENOENT, a wrong-size key/value is EINVAL raised before the
// syscall with both sizes in the message, a bad fd is EBADF; all are BpfError instances.
import t from 'tap';
import { BpfError, BpfMap, native, possibleCpus } from '../../src/dataplane/native';
import { requireRoot } from './helpers/env';

requireRoot(t);

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };

t.test('missing key: ENOENT', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 8, maxEntries: 4, name: 'tt_err' });
  t.teardown(() => m.close());
  const e = t.throws(() => m.get(u32(9))) as BpfError;
  t.ok(e instanceof BpfError);
  t.equal(e.code, 'ERR_BPF_MAP_LOOKUP');
  t.equal(e.errno, 2);
  t.equal(e.errnoName, 'ENOENT');
  t.equal(e.op, 'bpf_map_lookup_elem');
  t.match(e.message, /no such key in map tt_err/);
  const d = t.throws(() => m.delete(u32(9))) as BpfError;
  t.equal(d.errnoName, 'ENOENT');
  t.equal(d.code, 'ERR_BPF_MAP_DELETE');
});

t.test('wrong-size value or key: EINVAL before the syscall', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 8, maxEntries: 4, name: 'tt_size' });
  t.teardown(() => m.close());
  const e = t.throws(() => m.update(u32(1), Buffer.alloc(6))) as BpfError;
  t.equal(e.errnoName, 'EINVAL');
  t.equal(e.code, 'ERR_BPF_MAP_UPDATE');
  t.match(e.message, /value is 6 bytes; map tt_size \(fd \d+\) has value_size 8/);
  t.equal(m.lookup(u32(1)), undefined, 'nothing was written');
  const k = t.throws(() => m.lookup(Buffer.alloc(3))) as BpfError;
  t.equal(k.errnoName, 'EINVAL');
  t.match(k.message, /key is 3 bytes; map tt_size .* has key_size 4/);
  const big = t.throws(() => m.update(u32(1), Buffer.alloc(9))) as BpfError;
  t.match(big.message, /value is 9 bytes/);
});

t.test('per-CPU maps want all CPUs in one Buffer', async (t) => {
  const m = BpfMap.create({ type: 'PERCPU_ARRAY', keySize: 4, valueSize: 4, maxEntries: 2, name: 'tt_pcpu' });
  t.teardown(() => m.close());
  const e = t.throws(() => m.update(u32(0), Buffer.alloc(4))) as BpfError;
  t.equal(e.errnoName, 'EINVAL');
  t.match(e.message, new RegExp(`expects ${possibleCpus() * 8} \\(per-CPU: ${possibleCpus()} CPUs x 8\\)`));
});

t.test('bad fd: EBADF', async (t) => {
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 4, maxEntries: 4 });
  const fd = m.fd;
  m.close();
  const e = t.throws(() => native().mapLookup(fd, u32(1), 0, false)) as BpfError;
  t.ok(e instanceof BpfError, 'raw addon calls throw BpfError too');
  t.equal(e.errnoName, 'EBADF');
  t.match(e.message, new RegExp(`fd ${fd} is not open`));
  const d = t.throws(() => BpfMap.fromFd(1_000_000)) as BpfError;
  t.equal(d.errnoName, 'EBADF');
  const c = t.throws(() => native().fdClose(0)) as BpfError;
  t.equal(c.errnoName, 'EBADF', 'the addon only closes fds it handed out');
  t.match(c.message, /not owned by the addon/);
});

t.test('a non-map fd is rejected with EINVAL', async (t) => {
  const e = t.throws(() => native().mapLookup(0, u32(1), 0, false)) as BpfError;
  t.equal(e.errnoName, 'EINVAL');
  t.match(e.message, /fd 0 is not a BPF map/);
});

t.test('argument types are checked natively as well', async (t) => {
  const e = t.throws(() => (native().mapLookup as unknown as (...a: unknown[]) => unknown)('x', null, 0, false)) as BpfError;
  t.ok(e instanceof BpfError);
  t.equal(e.code, 'ERR_BPF_INVALID_ARG');
  t.match(e.message, /argument 0 \(fd\) must be a number/);
});
