/**
 * Syncer's first list over a store larger than one slice (src/datastore/syncer.ts): every item is
 * emitted once, in list order, before in-sync; the event loop turns between slices (work started
 * beside the syncer goes on while a large store is fed), and a stop between slices ends the
 * emission without in-sync. A real embedded store holds the items.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedDatastore, Syncer } from '../../src/datastore';

const N = 4500; // more than two slices of the first list

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-syncer-list-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const ds = new EmbeddedDatastore({ dir });
t.teardown(() => ds.close());

const key = (i: number): string => `/syncer-list/item${String(i).padStart(5, '0')}`;

t.before(async () => {
  for (let i = 0; i < N; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, N - i) }, (_, k) => ds.create(key(i + k), { i: i + k })));
  }
});

t.test('all items once, in list order, then in-sync; the event loop turns meanwhile', async (t) => {
  const seen: string[] = [];
  const events: string[] = [];
  let emittedAtTurn = -1;
  const s = new Syncer(ds, '/syncer-list/', {
    onUpdate: (u) => {
      if (u.type === 'put') seen.push(u.key);
    },
    onInSync: () => events.push(`in-sync after ${seen.length}`),
  });
  const started = s.start();
  // Queued after the list was asked for: runs at the syncer's first turn of the loop, not after it.
  const turned = new Promise<void>((resolve) => {
    const poll = (): void => {
      if (seen.length > 0) {
        emittedAtTurn = seen.length;
        events.push('other work');
        resolve();
      } else setImmediate(poll);
    };
    setImmediate(poll);
  });
  await started;
  await turned;
  t.same(seen, Array.from({ length: N }, (_, i) => key(i)), 'every item, once, in key order');
  t.ok(emittedAtTurn > 0 && emittedAtTurn < N, `other work ran while the list was emitted (after ${emittedAtTurn} of ${N})`);
  t.same(events, ['other work', `in-sync after ${N}`], 'in sync only after the whole list, once');
  await s.stop();
});

t.test('a stop between slices ends the first list: no more items, never in sync', async (t) => {
  let puts = 0;
  let inSync = false;
  const s = new Syncer(ds, '/syncer-list/', {
    onUpdate: () => {
      puts++;
    },
    onInSync: () => (inSync = true),
  });
  void s.start();
  await new Promise<void>((resolve) => {
    const poll = (): void => (puts > 0 ? resolve() : void setImmediate(poll));
    setImmediate(poll);
  });
  await s.stop();
  const atStop = puts;
  t.ok(atStop > 0 && atStop < N, `stopped part-way (${atStop} of ${N})`);
  for (let k = 0; k < 20; k++) await new Promise<void>((r) => setImmediate(r));
  t.equal(puts, atStop, 'nothing emitted after stop');
  t.equal(inSync, false, 'never in sync');
});
