// Pins under a unique bpffs root: LIBBPF_PIN_BY_NAME maps are created and pinned by the first
// load and reused by the next; explicit pin/unpin of maps and programs; a mismatching pinned
// definition fails the load; everything is removed at the end.
import * as fs from 'node:fs';
import t from 'tap';
import { BpfMap, BpfObject, BpfProgram } from '../../src/dataplane/native';
import { OBJ, expectBpfError, expectBpfReject, requireRoot, tempPinRoot } from './helpers/env';

requireRoot(t);

const flowKey = (a: number, b: number, proto: number): Buffer => {
  const k = Buffer.alloc(12);
  k.writeUInt32BE(a, 0);
  k.writeUInt32BE(b, 4);
  k[8] = proto;
  return k;
};

t.test('pin by name: created by the first load, reused by the second', async (t) => {
  const root = tempPinRoot(t, 'pin');
  const o1 = BpfObject.open(OBJ, { pinRoot: root });
  t.teardown(() => o1.close());
  await o1.load();
  t.ok(fs.existsSync(`${root}/tn_flows`), 'tn_flows pinned at <root>/<name>');
  t.notOk(fs.existsSync(`${root}/tn_counts`), 'unpinned maps are not');
  const m1 = o1.map('tn_flows');
  t.teardown(() => m1.close());
  m1.update(flowKey(0xc6120001, 0xc6120002, 17), Buffer.alloc(24, 1));

  const o2 = BpfObject.open(OBJ, { pinRoot: root });
  t.teardown(() => o2.close());
  await o2.load();
  const m2 = o2.map('tn_flows');
  t.teardown(() => m2.close());
  t.equal(m2.info.id, m1.info.id, 'same kernel map');
  t.same(m2.get(flowKey(0xc6120001, 0xc6120002, 17)), Buffer.alloc(24, 1), 'state survives across loads');

  const opened = BpfMap.openPinned(`${root}/tn_flows`);
  t.teardown(() => opened.close());
  t.equal(opened.info.id, m1.info.id, 'openPinned finds it too');
  expectBpfError(t, () => BpfMap.openPinned(`${root}/nope`), { code: 'ERR_BPF_OBJ_GET', errnoName: 'ENOENT' });
});

t.test('a pinned map with another definition makes load fail', async (t) => {
  const root = tempPinRoot(t, 'mism');
  const o1 = BpfObject.open(OBJ, { pinRoot: root });
  t.teardown(() => o1.close());
  await o1.load();
  const o2 = BpfObject.open(OBJ, { pinRoot: root });
  t.teardown(() => o2.close());
  o2.setMapMaxEntries('tn_flows', 2048);
  const e = await expectBpfReject(t, o2.load(), { code: 'ERR_BPF_OBJECT_LOAD', errnoName: 'EINVAL' });
  t.match(e?.log ?? '', /tn_flows/, 'libbpf names the map it could not reuse');
});

t.test('explicit pin and unpin of maps and programs', async (t) => {
  const root = tempPinRoot(t, 'expl');
  const obj = BpfObject.open(OBJ, { pinRoot: root });
  t.teardown(() => obj.close());
  obj.setMapPinPath('tn_flows', null); // opt out of pin-by-name for this object
  await obj.load();
  t.notOk(fs.existsSync(`${root}/tn_flows`), 'pin path cleared: not pinned');
  obj.pinMap('tn_counts', `${root}/counts`);
  obj.pinProgram('tn_tc', `${root}/tc`);
  const p = BpfProgram.openPinned(`${root}/tc`);
  t.teardown(() => p.close());
  t.equal(p.id, obj.programs().find((x) => x.name === 'tn_tc')!.id, 'pinned program reopens by path');
  expectBpfError(t, () => BpfProgram.openPinned(`${root}/counts`), { code: 'ERR_BPF_OBJ_GET', errnoName: 'EINVAL', message: /not a BPF prog/ });
  const c = obj.map('tn_counts');
  c.pin(`${root}/counts2`);
  c.close();
  t.ok(fs.existsSync(`${root}/counts2`), 'BpfMap.pin');
  obj.unpinMap('tn_counts', `${root}/counts`);
  obj.unpinProgram('tn_tc', `${root}/tc`);
  fs.unlinkSync(`${root}/counts2`);
  t.same(fs.readdirSync(root), [], 'all pins removed');
  const byId = BpfProgram.fromId(p.id);
  t.equal(byId.name, 'tn_tc', 'programs can be reopened by id');
  byId.close();
});

t.test('pinMaps/unpinMaps pin every map under a directory', async (t) => {
  const root = tempPinRoot(t, 'all');
  const obj = BpfObject.open(OBJ, { pinRoot: root });
  t.teardown(() => obj.close());
  obj.setMapPinPath('tn_flows', null);
  await obj.load();
  const dir = `${root}/sub`;
  fs.mkdirSync(dir);
  obj.pinMaps(dir);
  t.same(fs.readdirSync(dir).sort(), ['tn_counts', 'tn_events', 'tn_flows', 'tnative_rodata'].sort(), 'libbpf pins internal maps with . replaced by _');
  obj.unpinMaps(dir);
  t.same(fs.readdirSync(dir), []);
});
