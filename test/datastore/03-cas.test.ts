/**
 * The one compare-and-swap loop (src/datastore/cas.ts) against the real embedded store:
 * concurrent writers on one key all land, exhaustion raises the caller's error, and nothing but
 * the configured conflicts restarts a step.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { casLoop } from '../../src/datastore/cas';
import { EmbeddedDatastore } from '../../src/datastore/embedded';
import { AlreadyExistsError, ConflictError, NotFoundError, UnavailableError } from '../../src/datastore/errors';
import { IpamError } from '../../src/ipam/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-cas-'));
const ds = new EmbeddedDatastore({ dir });
t.teardown(async () => {
  await ds.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One increment of the counter at `key` by read → modify → write-if-unchanged. */
function increment(key: string, steps: number[]) {
  return casLoop(async (attempt) => {
    steps.push(attempt);
    const kv = await ds.get(key);
    if (!kv) return (await ds.create(key, 1)).modRevision;
    return (await ds.update(key, (kv.value as number) + 1, { expectedRevision: kv.modRevision })).modRevision;
  }, { attempts: 200, conflicts: [ConflictError, AlreadyExistsError], backoff: { initialMs: 1, addMs: 1, maxMs: 5, jitter: 'full' } });
}

t.test('40 concurrent writers on one key: every increment lands once', async (t) => {
  const steps: number[] = [];
  await Promise.all(Array.from({ length: 40 }, () => increment('/t/counter', steps)));
  t.equal((await ds.get('/t/counter'))?.value, 40);
  t.ok(steps.some((a) => a > 0), `writers raced and re-read (${steps.length} steps for 40 writes)`);
});

t.test('every attempt conflicting: the caller\'s exhausted error, after exactly `attempts` steps', async (t) => {
  await ds.put('/t/moving', 0);
  let steps = 0;
  const err = await casLoop(async () => {
    steps++;
    const kv = (await ds.get('/t/moving'))!;
    await ds.put('/t/moving', steps); // another writer gets there first, every time
    await ds.update('/t/moving', -1, { expectedRevision: kv.modRevision });
  }, {
    attempts: 5, backoff: { initialMs: 1, maxMs: 1 },
    exhausted: (last) => new IpamError('ERR_IPAM_CONTENTION', `kept changing: ${last.message}`, { recoverable: true }),
  }).catch((e: unknown) => e);
  t.equal(steps, 5);
  t.match(err, { name: 'IpamError', code: 'ERR_IPAM_CONTENTION', recoverable: true, message: /kept changing: key "\/t\/moving" was modified concurrently/ });
  const plain = await casLoop(async () => { throw new ConflictError('/k', 1, 2); }, { attempts: 2, backoff: { initialMs: 1, maxMs: 1 } }).catch((e: unknown) => e);
  t.ok(plain instanceof ConflictError, 'without `exhausted`: the last conflict itself');
});

t.test('errors that are not conflicts stop the loop at once, recoverable or not', async (t) => {
  for (const e of [new NotFoundError('/k'), new UnavailableError('down'), new IpamError('ERR_IPAM_CONTENTION', 'nested loop gave up', { recoverable: true }), new Error('bug')]) {
    let steps = 0;
    const got = await casLoop(async () => { steps++; throw e; }, { attempts: 10 }).catch((x: unknown) => x);
    t.equal(got, e, `${e.message}: thrown unchanged`);
    t.equal(steps, 1, `${e.message}: one step`);
  }
  let steps = 0;
  await casLoop(async () => {
    if (steps++ === 0) throw new NotFoundError('/k');
  }, { attempts: 3, conflicts: [NotFoundError], backoff: { initialMs: 1, maxMs: 1 } });
  t.equal(steps, 2, 'a class listed in `conflicts` restarts the step');
});
