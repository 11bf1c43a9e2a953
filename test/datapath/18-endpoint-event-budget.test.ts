// Event budgets (docs/security.md), kernel side: a workload's flood of new denied flows produces at most its
// event budget in ring-buffer events (token bucket per endpoint and CPU), every packet is still
// counted as a drop, and what was not emitted is counted per endpoint (tortie_evbud_v1
// `suppressed`). Another endpoint's budget is its own. The ring-buffer consumer delivers
// bounded batches, one at a time, with the event loop running in between. The kernel side runs in
// IPv4 and in IPv6 (the IPv6 deny path charges the same budget).
import t from 'tap';
import { WepHarness, TEST_IFINDEX } from '../../src/testbed/wep-harness';
import { denyAll } from '../../src/testbed/tables';
import { PROTO } from '../../src/dataplane/bpf/packet';
import { FAMILIES, V4 } from '../../src/testbed/family';
import { readEventBudgets, decodeEvent } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { eventBudgetConstants } from '../../src/dataplane/bpf/loader';
import { RingBuffer, possibleCpus } from '../../src/dataplane/native';
import { EventBudgetTotals, FlowLogLimiter } from '../../src/dataplane/bpf/observe';

const FLOWS = 2000;

for (const F of FAMILIES) t.test(`${F.label}: per-endpoint event budget in the kernel`, async (t) => {
  const WL = F.EP, FAR = F.v === 4 ? '198.18.9.9' : 'fd00:18::9:9';
  const flowPacket = F.flow;
  const budget = { perSec: 2, burst: 20 };
  const h = await WepHarness.create(`evbud${F.v}`, { eventBudget: budget });
  t.teardown(() => h.close());
  h.setEndpoint([F.host(WL)], denyAll('i00000000000000e', 'ingress', 41), denyAll('e00000000000000e', 'egress', 42));
  let events = 0;
  const rb = RingBuffer.open(h.dp.maps.events!, (rec) => { if (decodeEvent(rec).ifindex === TEST_IFINDEX) events++; });
  t.teardown(() => rb.close());

  const t0 = performance.now();
  let notDropped = 0;
  for (let i = 0; i < FLOWS; i++) {
    const r = h.dp.fromWep.testRun(flowPacket({ src: WL, dst: FAR, proto: PROTO.UDP, sport: 1024 + i, dport: 53 }));
    if (r.retval !== 2) notDropped++; // TC_ACT_SHOT
  }
  t.equal(notDropped, 0, 'every flow denied');
  const seconds = (performance.now() - t0) / 1000;
  const drops = h.counters().filter((c) => c.ifindex === TEST_IFINDEX && c.dir === Dir.EGRESS && c.reason === R.POLICY_DENY)
    .reduce((s, c) => s + c.packets, 0n);
  t.equal(drops, BigInt(FLOWS), 'every denied packet is counted');
  for (let i = 0; i < 50 && events === 0; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
  // Bound from the mechanism: a full bucket per CPU the test ran on, plus the refill over the
  // time the flood took (measured, so no assumption about speed).
  const bound = possibleCpus() * (budget.burst + Math.ceil(seconds * budget.perSec) + 1);
  t.ok(events >= 1, `some events emitted (${events})`);
  t.ok(events <= bound, `events bounded by the budget: ${events} ≤ ${bound} for ${FLOWS} new denied flows`);
  const row = readEventBudgets(h.dp.maps.evbud!).find((r) => r.ifindex === TEST_IFINDEX)!;
  t.ok(row, 'the endpoint has a budget entry');
  t.equal(row.emitted, BigInt(events), 'emitted = events the ring delivered');
  t.equal(row.emitted + row.suppressed, BigInt(FLOWS), 'every would-be event is either emitted or counted as suppressed');
  t.equal(row.lost, 0n, 'nothing lost to a full ring');

  // A retransmission of a flow reported within the interval costs no budget and emits nothing.
  const e0 = events;
  h.dp.toWep.testRun(flowPacket({ src: FAR, dst: WL, proto: PROTO.TCP, sport: 5000, dport: 80 }));
  await new Promise((r) => setTimeout(r, 50));
  t.ok(events <= e0 + 1, 'the same endpoint, other direction: at most one more event');
});

t.test('budget constants: validation and derivation', async (t) => {
  t.same(eventBudgetConstants({ perSec: 50, burst: 100 }), { costNs: 20_000_000n, burstNs: 2_000_000_000n });
  t.same(eventBudgetConstants({ perSec: 0, burst: 1 }), { costNs: 0n, burstNs: 0n }, 'rate 0 = no budget');
  t.throws(() => eventBudgetConstants({ perSec: -1, burst: 10 }), /perSec: -1/);
  t.throws(() => eventBudgetConstants({ perSec: 10, burst: 0 }), /burst: 0/);
});

t.test('ring buffer: bounded batches, one in flight, the event loop runs between them', async (t) => {
  const h = await WepHarness.create('evbatch', { eventBudget: { perSec: 0, burst: 1 } }); // no budget: a burst of events
  t.teardown(() => h.close());
  h.setEndpoint([V4.host(V4.EP)], denyAll('i00000000000000f', 'ingress', 41), denyAll('e00000000000000f', 'egress', 42));
  for (let i = 0; i < 1000; i++) h.dp.fromWep.testRun(V4.flow({ src: V4.EP, dst: '198.18.9.9', proto: PROTO.UDP, sport: 1024 + i, dport: 53 }));
  // One loop iteration = one tick (a self-rescheduling setImmediate); each record notes the tick
  // it was delivered in. One unbounded batch would deliver all of them in a single tick.
  let tick = 0;
  let running = true;
  const spin = (): void => { tick++; if (running) setImmediate(spin); };
  setImmediate(spin);
  const ticksSeen = new Set<number>();
  let got = 0;
  const rb = RingBuffer.open(h.dp.maps.events!, () => { ticksSeen.add(tick); got++; }, { maxBatch: 50 });
  t.teardown(() => { running = false; rb.close(); });
  for (let i = 0; i < 1000 && got < 1000; i++) await new Promise((r) => setTimeout(r, 5));
  running = false;
  t.equal(got, 1000, 'every record delivered');
  const { records, batches } = rb.stats();
  t.equal(records, 1000);
  t.ok(batches >= 20, `at most 50 records per batch: ${batches} batches for 1000 records`);
  t.ok(ticksSeen.size >= 2, `the event loop ran between batches (records delivered in ${ticksSeen.size} loop iterations)`);
  t.throws(() => RingBuffer.open(h.dp.maps.events!, () => undefined, { maxBatch: 0 }), /maxBatch/);
});

t.test('agent-side accounting (pure): flow-log sampling and budget totals', async (t) => {
  let now = 0;
  const l = new FlowLogLimiter({ perSec: 10, burst: 5 }, () => now);
  const admitted = Array.from({ length: 100 }, () => l.admit('deny policy_deny cali1')).filter(Boolean).length;
  t.equal(admitted, 5, 'a burst, then nothing while no time passes');
  now += 1000;
  t.equal(Array.from({ length: 100 }, () => l.admit('deny policy_deny cali1')).filter(Boolean).length, 5, 'refill capped at the burst');
  now += 200;
  t.equal(Array.from({ length: 10 }, () => l.admit('log - cali2')).filter(Boolean).length, 2, '10/s over 200 ms');
  t.same(l.totals, { received: 210, logged: 12, aggregated: 198 });
  const s = l.takeSummary()!;
  t.same(s, { total: 198, byKey: [['deny policy_deny cali1', 190], ['log - cali2', 8]] });
  t.equal(l.takeSummary(), undefined, 'a summary is taken once');

  const b = new EventBudgetTotals();
  b.update([{ ifindex: 3, emitted: 10n, suppressed: 100n, lost: 0n }]);
  const inc = b.update([{ ifindex: 3, emitted: 12n, suppressed: 150n, lost: 1n }]);
  t.same([...inc], [[3, { suppressed: 50n, lost: 1n }]]);
  b.update([{ ifindex: 3, emitted: 1n, suppressed: 5n, lost: 0n }]); // evicted and recreated
  t.same(b.totals, { emitted: 13n, suppressed: 155n, lost: 1n }, 'totals only grow');
});
