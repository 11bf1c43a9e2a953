// A load the verifier refuses: the promise rejects with a BpfError carrying libbpf's captured
// output (the verifier log) and a one-line summary in the message.
import t from 'tap';
import { BpfObject, XdpAction } from '../../src/dataplane/native';
import { OBJ, OBJ_REJECT, expectBpfError, expectBpfReject, ipv4Packet, requireRoot, tempPinRoot } from './helpers/env';

requireRoot(t);

t.test('the fixture loads when its unsafe branch is dead', async (t) => {
  const obj = BpfObject.open(OBJ_REJECT);
  t.teardown(() => obj.close());
  await obj.load();
  const p = obj.program('tn_reject_xdp');
  t.equal(p.testRun(ipv4Packet({ proto: 17 })).retval, XdpAction.PASS);
  p.close();
});

t.test('verifier rejection carries the log', async (t) => {
  const obj = BpfObject.open(OBJ_REJECT);
  t.teardown(() => obj.close());
  obj.setConstant('tn_reject', 1);
  const e = await expectBpfReject(t, obj.load(), { code: 'ERR_BPF_OBJECT_LOAD', errnoName: 'EACCES' });
  if (!e) return;
  t.equal(e.op, 'bpf_object__load');
  t.match(e.log, /-- BEGIN PROG LOAD LOG --/);
  t.match(e.log, /invalid access to packet/, 'the verifier\'s complaint is in the log');
  t.match(e.log, /tnative_reject\.bpf\.c/, 'with source line info from BTF');
  t.match(e.verifierSummary ?? '', /tn_reject_xdp: R1 offset is outside of the packet/);
  t.match(e.message, /load of BPF object .*tnative_reject\.bpf\.o failed: bpf_object__load failed \(EACCES.*verifier: program tn_reject_xdp: R1 offset is outside of the packet/);
  t.equal(obj.loaded, false);
});

t.test('logs are per call: a later failure does not carry an earlier log', async (t) => {
  const a = BpfObject.open(OBJ_REJECT);
  const b = BpfObject.open(OBJ_REJECT);
  t.teardown(() => { a.close(); b.close(); });
  a.setConstant('tn_reject', 1);
  await expectBpfReject(t, a.load(), { errnoName: 'EACCES' });
  await b.load(); // succeeds
  await expectBpfReject(t, b.load(), { errnoName: 'EINVAL' }, 'second load of b');
  try { await b.load(); } catch (e) {
    t.notMatch((e as Error & { log: string }).log, /PROG LOAD LOG/, 'no verifier log from the other object');
  }
});

t.test('verifier statistics on a successful load when asked', async (t) => {
  const plain = BpfObject.open(OBJ, { pinRoot: tempPinRoot(t, 'vs1') });
  const withStats = BpfObject.open(OBJ, { pinRoot: tempPinRoot(t, 'vs2'), verifierLog: 'stats' });
  t.teardown(() => { plain.close(); withStats.close(); });
  t.same((await plain.load()).stats, [], 'no verifier log by default');
  const r = await withStats.load();
  t.same(r.stats.map((s) => s.program).sort(), ['tn_tc', 'tn_xdp']);
  for (const s of r.stats) {
    t.ok(s.insnsProcessed > 10 && s.insnsProcessed < 1_000_000, `${s.program}: ${s.insnsProcessed} insns processed`);
    t.ok(s.verificationTimeUs !== undefined, `${s.program}: verification time reported`);
  }
  const full = BpfObject.open(OBJ_REJECT, { verifierLog: 'normal' });
  t.teardown(() => full.close());
  const f = await full.load();
  t.match(f.log, /tn_reject_xdp/, 'normal level: the whole log of the accepted program');
  t.equal(f.stats.length, 1);
  expectBpfError(t, () => BpfObject.open(OBJ, { verifierLog: 'loud' as 'stats' }), { code: 'ERR_BPF_INVALID_OPTION', message: /verifierLog must be one of none, stats, normal, verbose/ });
});
