// The route manager's apply loop (src/dataplane/routing/apply-loop.ts), without a kernel: calls
// never overlap, a failure reaches its caller and is retried on its own with a growing delay
// until a call succeeds, a success resets the schedule, and close() stops the retries.
import t from 'tap';
import { ApplyLoop } from '../../src/dataplane/routing/apply-loop';
import { silentLogger } from '../../src/util/log';

const backoff = { initialMs: 2, multiplier: 2, maxMs: 20 };

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

t.test('calls are serialised', async (t) => {
  let active = 0, maxActive = 0, calls = 0;
  const loop = new ApplyLoop(async () => {
    calls++;
    maxActive = Math.max(maxActive, ++active);
    await new Promise((r) => setTimeout(r, 2));
    active--;
  }, { backoff, log: silentLogger, what: 'test' });
  t.teardown(() => loop.close());
  await Promise.all([loop.run(), loop.run(), loop.run()]);
  t.equal(calls, 3);
  t.equal(maxActive, 1, 'never two at once');
});

t.test('a failure is rethrown, then retried by the loop itself until it succeeds', async (t) => {
  const at: number[] = [];
  let failLeft = 3;
  const loop = new ApplyLoop(async () => {
    at.push(Date.now());
    if (failLeft-- > 0) throw new Error(`failure ${3 - failLeft}`);
  }, { backoff, log: silentLogger, what: 'test' });
  t.teardown(() => loop.close());
  await t.rejects(loop.run(), /failure 1/, 'the caller sees the failure');
  await until(() => at.length === 4, 'three retries');
  const gaps = at.slice(1).map((x, i) => x - at[i]!);
  t.ok(gaps[0]! >= 1 && gaps[1]! >= 3 && gaps[2]! >= 7, `delays follow the backoff (2, 4, 8 ms; Date.now() may round 1 ms off): ${gaps.join(', ')}`);
  await new Promise((r) => setTimeout(r, 40)); // a window for a retry that must not come (one scheduled would run within 16 ms)
  t.equal(at.length, 4, 'no retry after a success');
});

t.test('close() stops the retries', async (t) => {
  let calls = 0;
  const loop = new ApplyLoop(async () => { calls++; throw new Error('always'); }, { backoff: { initialMs: 5, maxMs: 5 }, log: silentLogger, what: 'test' });
  await t.rejects(loop.run(), /always/);
  loop.close();
  await new Promise((r) => setTimeout(r, 30)); // six times the retry delay
  t.equal(calls, 1, 'the scheduled retry did not run');
});
