// compactHeap(): V8's full collection reached without --expose-gc, compacting every page.
import t from 'tap';
import { compactHeap } from '../../src/node/heap';

t.test('compactHeap frees dead objects and gives their pages back (heap total shrinks)', async (t) => {
  t.equal((globalThis as { gc?: unknown }).gc, undefined, 'this test runs without --expose-gc');
  // Live and dead objects interleaved on the same pages: an ordinary full collection keeps the pages.
  let dead: unknown[] | undefined = [];
  const live: unknown[] = [];
  for (let i = 0; i < 400_000; i++) {
    live.push({ i, s: `live-${i}` });
    dead.push({ i, s: `dead-${i}`, pad: [i, i, i, i] });
  }
  const before = process.memoryUsage();
  dead = undefined;
  const ms = compactHeap();
  t.type(ms, 'number', 'ran');
  t.ok(ms! >= 0);
  const after = process.memoryUsage();
  t.ok(after.heapUsed < before.heapUsed - 20 * 1048576, `heap used ${(before.heapUsed / 1048576).toFixed(0)} → ${(after.heapUsed / 1048576).toFixed(0)} MiB`);
  t.ok(after.heapTotal < before.heapTotal - 20 * 1048576, `heap total ${(before.heapTotal / 1048576).toFixed(0)} → ${(after.heapTotal / 1048576).toFixed(0)} MiB`);
  t.equal(live.length, 400_000, 'live data kept');
  t.equal((globalThis as { gc?: unknown }).gc, undefined, 'gc not left on the global object');
});
