// RingBuffer: records pushed by the program reach the JS callback in order, as Buffers; close()
// stops delivery; an exception in the callback goes to onError.
import t, { type Test } from 'tap';
import { BpfObject, RingBuffer, type BpfMap, type BpfProgram } from '../../src/dataplane/native';
import { IPPROTO, OBJ, expectBpfError, ipv4Packet, requireRoot, tempPinRoot } from './helpers/env';
import { tnEvent } from './helpers/layouts';

requireRoot(t);

async function setup(t: Test, eventsOn: boolean): Promise<{ prog: BpfProgram; events: BpfMap }> {
  const obj = BpfObject.open(OBJ, { pinRoot: tempPinRoot(t, 'rb') });
  obj.setConstant('tn_events_on', eventsOn);
  await obj.load();
  const prog = obj.program('tn_tc');
  const events = obj.map('tn_events');
  obj.close();
  t.teardown(() => { prog.close(); events.close(); });
  return { prog, events };
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

t.test('one record per packet, decoded', async (t) => {
  const { prog, events } = await setup(t, true);
  const got: Buffer[] = [];
  const rb = RingBuffer.open(events, (r) => got.push(r));
  t.teardown(() => rb.close());
  const N = 2000;
  const pkts = Array.from({ length: N }, (_, i) => ipv4Packet({ proto: i % 2 ? IPPROTO.UDP : IPPROTO.TCP, src: `198.18.1.${i % 250}`, payload: 20 + (i % 7) }));
  prog.testRunBatch(pkts);
  t.ok(await until(() => got.length >= N, 5000), `all ${N} records delivered (${got.length})`);
  t.equal(got.length, N, 'no extra records');
  const ev = got.map((b) => tnEvent.decode(b));
  let bad = 0;
  ev.forEach((e, i) => {
    if (e.proto !== (i % 2 ? IPPROTO.UDP : IPPROTO.TCP) || e.hook !== 2 || e.len !== pkts[i]!.length || e.saddr !== `198.18.1.${i % 250}` || e.daddr !== '198.18.0.2') bad++;
  });
  t.equal(bad, 0, 'records arrive in order with the right fields');
  t.ok(ev.every((e, i) => i === 0 || e.seq >= ev[i - 1]!.seq), 'timestamps non-decreasing');
  const s = rb.stats();
  t.equal(s.records, N);
  t.ok(s.batches >= 1 && s.batches <= N, `delivered in ${s.batches} batches`);
});

t.test('close stops delivery; callback errors go to onError', async (t) => {
  const { prog, events } = await setup(t, true);
  const errors: unknown[] = [];
  let n = 0;
  const rb = RingBuffer.open(events, () => { n++; if (n === 3) throw new Error('boom'); }, { onError: (e) => errors.push(e) });
  prog.testRunBatch(Array.from({ length: 5 }, () => ipv4Packet({ proto: IPPROTO.UDP })));
  t.ok(await until(() => n >= 5, 3000), 'the batch continues after a throwing callback');
  t.equal(errors.length, 1);
  t.match(String(errors[0]), /boom/);
  rb.close();
  rb.close(); // idempotent
  t.equal(rb.open, false);
  prog.testRunBatch(Array.from({ length: 5 }, () => ipv4Packet({ proto: IPPROTO.UDP })));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(n, 5, 'nothing delivered after close');
});

t.test('with events off nothing arrives; wrong map types are refused', async (t) => {
  const { prog, events } = await setup(t, false);
  let n = 0;
  const rb = RingBuffer.open(events, () => { n++; });
  t.teardown(() => rb.close());
  prog.testRunBatch([ipv4Packet({ proto: IPPROTO.UDP })]);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(n, 0);
  const { BpfMap } = await import('../../src/dataplane/native');
  const h = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 4, maxEntries: 1 });
  t.teardown(() => h.close());
  expectBpfError(t, () => RingBuffer.open(h, () => undefined), { code: 'ERR_BPF_INVALID_OPTION', message: /is HASH, not RINGBUF/ });
});
