/**
 * The one retry utility (src/util/retry.ts): what is retried (recoverable errors only), how often,
 * what is thrown at the end, and the backoff schedules.
 */
import t from 'tap';
import { ConflictError, UnavailableError } from '../../src/datastore/errors';
import { IpamError } from '../../src/ipam/errors';
import { TortieError } from '../../src/util/errors';
import { BACKOFF, backoffMs, withRetry, type Backoff } from '../../src/util/retry';

const fast: Backoff = { initialMs: 1, maxMs: 1 };

t.test('recoverable errors are retried until success', async (t) => {
  const calls: number[] = [];
  const r = await withRetry(async (attempt) => {
    calls.push(attempt);
    if (attempt < 3) throw new UnavailableError('etcd down');
    return 'ok';
  }, { attempts: 5, backoff: fast });
  t.equal(r, 'ok');
  t.same(calls, [0, 1, 2, 3]);
});

t.test('after the last attempt the last error is thrown unchanged', async (t) => {
  const thrown: Error[] = [];
  const retries: [number, number][] = [];
  const err = await withRetry(async () => {
    const e = new IpamError('ERR_IPAM_CONTENTION', `busy ${thrown.length}`, { recoverable: true });
    thrown.push(e);
    throw e;
  }, { attempts: 4, backoff: { initialMs: 1, multiplier: 2, maxMs: 3 }, onRetry: (_e, n, ms) => retries.push([n, ms]) }).catch((e: unknown) => e);
  t.equal(thrown.length, 4, 'attempts counts every call');
  t.equal(err, thrown[3], 'the very last error');
  t.same(retries, [[0, 1], [1, 2], [2, 3]], 'waits follow the schedule, capped');
});

t.test('non-recoverable errors are never retried', async (t) => {
  for (const e of [new ConflictError('/k', 1, 2), new Error('plain'), new TortieError('ERR_X_Y', 'no'), Object.assign(new Error('x'), { recoverable: 'true' })]) {
    let calls = 0;
    const got = await withRetry(async () => { calls++; throw e; }, { attempts: 10, backoff: fast }).catch((x: unknown) => x);
    t.equal(got, e, `${e.message}: thrown as is`);
    t.equal(calls, 1, `${e.message}: one call`);
  }
});

t.test('`only` narrows what is retried, never widens it', async (t) => {
  let calls = 0;
  const unavailable = new UnavailableError('down');
  t.equal(await withRetry(async () => { calls++; throw unavailable; }, { attempts: 5, backoff: fast, only: (e) => e instanceof IpamError }).catch((e: unknown) => e), unavailable);
  t.equal(calls, 1, 'a recoverable error `only` rejects is not retried');
  calls = 0;
  const conflict = new ConflictError('/k', 1, 2);
  await withRetry(async () => { calls++; throw conflict; }, { attempts: 5, backoff: fast, only: () => true }).catch(() => undefined);
  t.equal(calls, 1, 'a non-recoverable error `only` accepts is still not retried');
});

t.test('attempts must be a positive integer', async (t) => {
  await t.rejects(withRetry(async () => 1, { attempts: 0, backoff: fast }), RangeError);
});

t.test('backoff schedules', async (t) => {
  const mid = () => 0.5;
  t.same([0, 1, 2, 3, 10].map((n) => backoffMs(BACKOFF.relist, n)), [25, 50, 100, 200, 2000], 'relist: doubling from 25 ms, capped at 2 s');
  t.same([0, 1, 5, 6].map((n) => backoffMs(BACKOFF.rewatch, n)), [25, 50, 800, 1000], 'rewatch: capped at 1 s');
  t.same([0, 1, 4, 5].map((n) => backoffMs(BACKOFF.routeApply, n)), [500, 1000, 8000, 10_000]);
  t.same([0, 6, 7].map((n) => backoffMs(BACKOFF.dataplaneApply, n)), [50, 3200, 5000]);
  t.same([0, 1, 38, 100].map((n) => backoffMs(BACKOFF.resourceConflict, n, mid)), [5, 10, 195, 200], 'resource conflicts: linear, jitter ×[0.5, 1.5)');
  t.equal(backoffMs(BACKOFF.resourceConflict, 0, () => 0), 2.5);
  t.same([0, 1, 16, 50].map((n) => backoffMs(BACKOFF.ipamConflict, n, () => 1)), [2, 5, 50, 50], 'IPAM conflicts: linear, full jitter below the bound');
  t.equal(backoffMs(BACKOFF.ipamConflict, 3, () => 0), 0);
});
