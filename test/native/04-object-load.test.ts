// BpfObject: open, list constants, set a .rodata constant that changes the program's behaviour,
// load off the event loop, list programs and maps with their fds, hand out independent handles.
import t from 'tap';
import { BpfMap, BpfObject, ProgType, MapType, XdpAction, native } from '../../src/dataplane/native';
import { IPPROTO, OBJ, expectBpfError, expectBpfReject, ipv4Packet, requireRoot, tempPinRoot } from './helpers/env';

requireRoot(t);

t.test('open lists constants; load fills programs and maps', async (t) => {
  const pinRoot = tempPinRoot(t, 'load');
  const obj = BpfObject.open(OBJ, { pinRoot });
  t.teardown(() => obj.close());
  const consts = Object.fromEntries(obj.constants().map((c) => [c.name, c]));
  t.match(consts, {
    tn_drop_protos: { section: '.rodata', size: 32 },
    tn_events_on: { section: '.rodata', size: 1 },
    tn_set_tos: { section: '.rodata', size: 1 },
  });
  t.notOk('tn_counts' in consts, 'map definitions are not constants');
  t.same(obj.programs().map((p) => [p.name, p.fd]), [['tn_xdp', -1], ['tn_tc', -1]], 'no fds before load');

  const pending = obj.load();
  t.ok(pending instanceof Promise, 'load returns a promise (runs on a worker thread)');
  await pending;
  t.equal(obj.loaded, true);
  const progs = Object.fromEntries(obj.programs().map((p) => [p.name, p]));
  t.match(progs, { tn_xdp: { type: ProgType.XDP, section: 'xdp' }, tn_tc: { type: ProgType.SCHED_CLS, section: 'tc' } });
  for (const p of Object.values(progs)) {
    t.ok(p.fd >= 0 && p.id > 0, `${p.name} has an fd and an id`);
  }
  const maps = Object.fromEntries(obj.maps().map((m) => [m.name, m]));
  t.match(maps, {
    tn_counts: { type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 16, maxEntries: 256, pinned: false },
    tn_flows: { type: MapType.HASH, keySize: 12, valueSize: 24, maxEntries: 1024, pinned: true, pinPath: `${pinRoot}/tn_flows` },
    tn_events: { type: MapType.RINGBUF },
  });
  t.ok(obj.maps().some((m) => m.internal && m.name.endsWith('.rodata')), 'the .rodata internal map is listed');

  // Handles outlive the object.
  const prog = obj.program('tn_xdp');
  const counts = obj.map('tn_counts');
  t.teardown(() => { prog.close(); counts.close(); });
  obj.close();
  t.equal(prog.testRun(ipv4Packet({ proto: IPPROTO.UDP })).retval, XdpAction.PASS, 'program handle works after obj.close()');
  t.equal(counts.info.name, 'tn_counts');
  expectBpfError(t, () => obj.programs(), { code: 'ERR_BPF_OBJECT_PROGRAMS', errnoName: 'EBADF', message: /is closed/ });
});

t.test('a .rodata constant changes behaviour', async (t) => {
  const pinRoot = tempPinRoot(t, 'const');
  const plain = BpfObject.open(OBJ, { pinRoot });
  const dropping = BpfObject.open(OBJ, { pinRoot });
  t.teardown(() => { plain.close(); dropping.close(); });
  const bitmap = Buffer.alloc(32);
  bitmap[0] = 1 << IPPROTO.ICMP; // bit 1 of word 0: ICMP
  dropping.setConstant('tn_drop_protos', bitmap);
  await Promise.all([plain.load(), dropping.load()]);
  const p1 = plain.program('tn_xdp');
  const p2 = dropping.program('tn_xdp');
  t.teardown(() => { p1.close(); p2.close(); });
  const icmp = ipv4Packet({ proto: IPPROTO.ICMP });
  const udp = ipv4Packet({ proto: IPPROTO.UDP });
  t.equal(p1.testRun(icmp).retval, XdpAction.PASS, 'default: ICMP passes');
  t.equal(p2.testRun(icmp).retval, XdpAction.DROP, 'with ICMP in tn_drop_protos: dropped');
  t.equal(p2.testRun(udp).retval, XdpAction.PASS, 'UDP still passes');
});

t.test('setConstant: numbers in host order, precise errors', async (t) => {
  const obj = BpfObject.open(OBJ, { pinRoot: tempPinRoot(t, 'cerr') });
  t.teardown(() => obj.close());
  obj.setConstant('tn_set_tos', 0x10).setConstant('tn_events_on', true);
  expectBpfError(t, () => obj.setConstant('tn_nope', 1), { code: 'ERR_BPF_OBJECT_CONSTANT', errnoName: 'ENOENT', message: /no global variable 'tn_nope'.*globals: .*tn_drop_protos/ });
  expectBpfError(t, () => obj.setConstant('tn_drop_protos', Buffer.alloc(8)), { errnoName: 'EINVAL', message: /constant 'tn_drop_protos' is 32 bytes; got 8/ });
  expectBpfError(t, () => obj.setConstant('tn_set_tos', 300), { code: 'ERR_BPF_INVALID_OPTION', message: /does not fit in 1 bytes/ });
  await obj.load();
  expectBpfError(t, () => obj.setConstant('tn_set_tos', 1), { errnoName: 'EINVAL', message: /already loaded; configure before load/ });
  await expectBpfReject(t, obj.load(), { code: 'ERR_BPF_OBJECT_LOAD', errnoName: 'EINVAL' }, 'a second load');
});

t.test('configuration errors name what exists', async (t) => {
  const obj = BpfObject.open(OBJ, { pinRoot: tempPinRoot(t, 'cfg') });
  t.teardown(() => obj.close());
  expectBpfError(t, () => obj.setMapMaxEntries('tn_nope', 4), { code: 'ERR_BPF_OBJECT_CONFIG', errnoName: 'ENOENT', message: /no map named 'tn_nope'.*maps: tn_counts, tn_flows, tn_events/ });
  expectBpfError(t, () => obj.setAutoload('nope', false), { errnoName: 'ENOENT', message: /programs: tn_xdp, tn_tc/ });
  expectBpfError(t, () => obj.program('tn_xdp'), { code: 'ERR_BPF_OBJECT_PROGRAMS', message: /not loaded/ });
  expectBpfError(t, () => BpfObject.open('/nonexistent/x.bpf.o'), { code: 'ERR_BPF_OBJECT_OPEN', errnoName: 'ENOENT' });
  expectBpfError(t, () => BpfObject.open(OBJ, { pinRoot: 'relative/dir' }), { code: 'ERR_BPF_INVALID_OPTION', message: /pinRoot must be an absolute path/ });
});

t.test('pin-by-name maps never land in the bpffs root by default', async (t) => {
  const fs = await import('node:fs');
  const existed = fs.existsSync('/sys/fs/bpf/tn_flows');
  const obj = BpfObject.open(OBJ);
  t.teardown(() => obj.close());
  await expectBpfReject(t, obj.load(), { code: 'ERR_BPF_INVALID_OPTION', message: /pins maps by name \(tn_flows\); pass OpenOptions\.pinRoot/ });
  t.equal(fs.existsSync('/sys/fs/bpf/tn_flows'), existed, 'nothing pinned');
  const explicit = BpfObject.open(OBJ);
  t.teardown(() => explicit.close());
  explicit.setMapPinPath('tn_flows', null);
  await explicit.load();
  t.ok(explicit.loaded, 'loads once the pin path is cleared');
});

t.test('autoload off and max_entries on, then load', async (t) => {
  const obj = BpfObject.open(OBJ, { pinRoot: tempPinRoot(t, 'auto') });
  t.teardown(() => obj.close());
  obj.setAutoload('tn_tc', false).setMapMaxEntries('tn_counts', 512);
  await obj.load();
  const progs = Object.fromEntries(obj.programs().map((p) => [p.name, p]));
  t.ok(progs.tn_xdp!.fd >= 0);
  t.equal(progs.tn_tc!.fd, -1, 'autoload off: not loaded');
  t.equal(obj.maps().find((m) => m.name === 'tn_counts')!.maxEntries, 512);
  const m = obj.map('tn_counts');
  t.equal(m.refreshInfo().maxEntries, 512, 'the kernel map has the new size');
  m.close();
});

t.test('no fds leak across open/load/close', async (t) => {
  const before = native().ownedFdCount();
  const obj = BpfObject.open(OBJ, { pinRoot: tempPinRoot(t, 'leak') });
  await obj.load();
  const p = obj.program('tn_tc');
  const m = obj.map('tn_flows');
  p.close();
  m.close();
  obj.close();
  t.equal(native().ownedFdCount(), before);
});

t.test('a program lists the ids of its maps; maps reopen by id', async (t) => {
  const obj = BpfObject.open(OBJ, { pinRoot: tempPinRoot(t, 'ids') });
  t.teardown(() => obj.close());
  await obj.load();
  const p = obj.program('tn_tc');
  t.teardown(() => p.close());
  const byName = Object.fromEntries(obj.maps().map((m) => [m.name, m.id]));
  const ids = p.info().mapIds;
  for (const name of ['tn_counts', 'tn_flows', 'tn_events']) t.ok(ids.includes(byName[name]!), `${name} is used by tn_tc`);
  const m = BpfMap.fromId(byName.tn_flows!);
  t.teardown(() => m.close());
  t.equal(m.name, 'tn_flows');
  expectBpfError(t, () => BpfMap.fromId(0x7ffffff0), { code: 'ERR_BPF_MAP_GET', errnoName: 'ENOENT' });
});
