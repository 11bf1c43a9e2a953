import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClosedError, CorruptError, EmbeddedDatastore } from '../../src/datastore';

// A store opened from a snapshot keeps its values in the snapshot file, not in memory: they are
// read back through the open descriptor, also after another process's compaction removed it.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-store-snapvals-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(root, `s${n++}`);
const snapFiles = (dir: string) => fs.readdirSync(dir).filter((f) => f.startsWith('snap-')).sort();
const value = (i: number, gen: number) => ({ i, gen, pad: 'v'.repeat(i % 17), text: `é✓ ${i}` });

t.test('values loaded from a snapshot are read back after the snapshot is compacted away', async (t) => {
  const dir = freshDir();
  const w = new EmbeddedDatastore({ dir, maxLogBytes: 2048 });
  for (let i = 0; i < 120; i++) await w.put(`/v/${String(i).padStart(3, '0')}`, value(i, 0));
  await w.close();
  const loaded = snapFiles(dir);
  t.ok(loaded.length === 1, 'the writer left a snapshot');

  const r = new EmbeddedDatastore({ dir, maxLogBytes: 1 << 30 });
  const w2 = new EmbeddedDatastore({ dir, maxLogBytes: 2048 });
  // Rewrite a third of the keys and add others until the snapshot the reader loaded is gone.
  for (let round = 1; snapFiles(w2.dir).includes(loaded[0]!) || round < 3; round++) {
    for (let i = 0; i < 120; i += 3) await w2.put(`/v/${String(i).padStart(3, '0')}`, value(i, round));
    for (let i = 0; i < 40; i++) await w2.put(`/x/${round}/${i}`, { round, i });
    t.ok(round < 50, 'the loaded snapshot is compacted away');
    r.currentRevision(); // the reader follows the logs (it never falls behind and reloads)
  }
  t.notOk(fs.existsSync(path.join(dir, loaded[0]!)), 'the snapshot the reader loaded no longer exists');
  const openSnaps = () => fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  }).filter((l) => l.startsWith(path.join(dir, loaded[0]!)));
  const held = openSnaps();
  t.ok(held.length >= 1 && held.every((l) => l.endsWith(' (deleted)')), `the reader (and the writer, opened after it) hold the removed snapshot open: ${held.length}`);
  const want = await w2.list('/');
  t.same(await r.list('/'), want, 'list: every value, old ones read from the removed file');
  for (const i of [1, 2, 4, 119]) {
    const k = `/v/${String(i).padStart(3, '0')}`;
    t.same(await r.get(k), await w2.get(k), `get ${k}`);
  }
  // The reader compacts (writes a snapshot holding the values it never read from disk).
  const r2 = new EmbeddedDatastore({ dir, maxLogBytes: 1 });
  await r2.put('/y/1', { last: true });
  const fresh = new EmbeddedDatastore({ dir });
  t.same(await fresh.list('/'), await r2.list('/'), 'a snapshot written from file-backed values is complete');
  await Promise.all([r.close(), w2.close(), r2.close()]);
  t.same(openSnaps(), [], 'closing the reader closed the removed snapshot');
  await t.rejects(r.get('/v/001'), ClosedError, 'closed: reads fail with ClosedError');
  await fresh.close();
});

t.test('a damaged snapshot line is reported, not loaded', async (t) => {
  const dir = freshDir();
  const w = new EmbeddedDatastore({ dir, maxLogBytes: 1024 });
  for (let i = 0; i < 60; i++) await w.put(`/d/${i}`, value(i, 0));
  await w.close();
  const file = path.join(dir, snapFiles(dir).at(-1)!);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines[2] = lines[2]!.replace(/\t\d+\t/, '\t1x\t');
  fs.writeFileSync(file, lines.join('\n'));
  t.throws(() => new EmbeddedDatastore({ dir }), CorruptError, 'a revision that is not a number: CorruptError');
});

t.test('listLazy: the same items as list, values decoded when asked; the Syncer first list emits them decoded', async (t) => {
  const dir = freshDir();
  const w = new EmbeddedDatastore({ dir, maxLogBytes: 2048 });
  for (let i = 0; i < 80; i++) await w.put(`/l/${String(i).padStart(3, '0')}`, value(i, 0));
  await w.close();
  const w2 = new EmbeddedDatastore({ dir, maxLogBytes: 1 << 30 });
  for (let i = 0; i < 80; i += 7) await w2.put(`/l/${String(i).padStart(3, '0')}`, value(i, 1)); // in the log, not the snapshot
  await w2.delete('/l/001');
  await w2.put('/m/other', 1);
  const r = new EmbeddedDatastore({ dir });
  const eager = await r.list('/l/');
  const lazy = await r.listLazy('/l/');
  t.equal(lazy.revision, eager.revision);
  t.same(lazy.items.map((i) => ({ key: i.key, value: i.value(), createRevision: i.createRevision, modRevision: i.modRevision, version: i.version })), eager.items,
    'same keys, order, revisions and values (snapshot and log entries)');
  t.not(lazy.items[0]!.value(), lazy.items[0]!.value(), 'each call decodes anew (nothing cached on the item)');
  t.equal(eager.items.length, 79);
  const { Syncer } = await import('../../src/datastore');
  const puts: unknown[] = [];
  const s = new Syncer(r, '/l/', { onUpdate: (u) => { if (u.type === 'put') puts.push(u.kv); }, onInSync: () => undefined });
  await s.start();
  t.same(puts, eager.items, 'the Syncer emits every item decoded, in order');
  await s.stop();
  await Promise.all([w2.close(), r.close()]);
});

t.test('snapshots are written in key order; lists are in key order from any snapshot order', async (t) => {
  const dir = freshDir();
  const w = new EmbeddedDatastore({ dir, maxLogBytes: 1 << 30 });
  // Written in an order unlike the keys' (revision order ≠ key order).
  const keys = Array.from({ length: 60 }, (_, i) => `/k/${String((i * 37) % 60).padStart(2, '0')}/${i % 7}`);
  for (const [i, k] of keys.entries()) await w.put(k, { i });
  await w.compact();
  const [snap] = snapFiles(dir);
  const lines = fs.readFileSync(path.join(dir, snap!), 'utf8').split('\n').slice(1).filter(Boolean).map((l) => l.slice(0, l.indexOf('\t')));
  t.same(lines, [...keys].sort(), 'the snapshot lists its keys in key order');
  // New keys after the snapshot come after it in the state; a list still comes in key order.
  await w.put('/k/00/zz', { late: true });
  await w.put('/a/first', { late: true });
  const sorted = [...keys, '/k/00/zz', '/a/first'].sort();
  t.same((await w.list('/')).items.map((kv) => kv.key), sorted, 'list: key order');
  t.same((await w.listLazy('/')).items.map((kv) => kv.key), sorted, 'listLazy: key order');
  await w.close();

  // A snapshot in another order (as older builds wrote them: revision order) lists the same.
  const text = fs.readFileSync(path.join(dir, snap!), 'utf8').split('\n');
  const body = text.slice(1).filter(Boolean).reverse();
  fs.writeFileSync(path.join(dir, snap!), `${[text[0], ...body].join('\n')}\n`);
  const r = new EmbeddedDatastore({ dir });
  const listed = await r.list('/');
  t.same(listed.items.map((kv) => kv.key), sorted, 'list of a reversed snapshot: key order');
  const lazy = await r.listLazy('/k/');
  t.same(lazy.items.map((kv) => [kv.key, kv.value()]), listed.items.filter((kv) => kv.key.startsWith('/k/')).map((kv) => [kv.key, kv.value]), 'listLazy of a reversed snapshot: key order, same values');
  await r.close();
});
