import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CompactedError, CorruptError, EmbeddedDatastore, UnavailableError, type WatchEvent } from '../../src/datastore';
import { Collector, WORKER, sleep, until } from './helpers/conformance';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-store-dur-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(root, `s${n++}`);
const walFiles = (dir: string) => fs.readdirSync(dir).filter((f) => f.startsWith('wal-')).sort();

t.test('state and revisions survive a reopen', async (t) => {
  const dir = freshDir();
  const a = new EmbeddedDatastore({ dir });
  for (let i = 0; i < 20; i++) await a.put(`/k/${i % 7}`, { i });
  await a.delete('/k/3');
  const before = await a.list('/');
  await a.close();
  const b = new EmbeddedDatastore({ dir });
  t.same(await b.list('/'), before, 'same items and revision');
  const next = await b.create('/k/new', 1);
  t.equal(next.modRevision, before.revision + 1, 'revisions continue');
  await b.close();
});

t.test('automatic compaction keeps the log small and loses nothing; a tailing watcher follows it', async (t) => {
  const dir = freshDir();
  const writer = new EmbeddedDatastore({ dir, maxLogBytes: 4096 });
  const reader = new EmbeddedDatastore({ dir, pollMs: 20 });
  const col = new Collector();
  const w = reader.watch('/c/', col, { fromRevision: 1 });
  await w.ready;
  const revs: number[] = [];
  for (let i = 0; i < 300; i++) revs.push((await writer.put(`/c/${i % 13}`, { i, pad: 'p'.repeat(40) })).modRevision);
  await until(() => col.events.length >= 300, 10_000, 'watcher caught up');
  t.strictSame(col.events.map((e) => e.revision), revs, 'every revision delivered once, in order, across compactions');
  t.equal(col.error, undefined);
  t.ok(fs.readdirSync(dir).some((f) => f.startsWith('snap-')), 'a snapshot exists');
  t.ok(fs.statSync(path.join(dir, walFiles(dir).at(-1)!)).size <= 4096 + 200, 'log bounded by maxLogBytes');
  t.ok(walFiles(dir).length <= 8, 'at most retainLogs logs kept');
  const fresh = new EmbeddedDatastore({ dir });
  t.same(await fresh.list('/'), await writer.list('/'), 'a new opener sees the same state');
  const late = new Collector();
  fresh.watch('/c/', late, { fromRevision: 1 });
  await until(() => late.error !== undefined, 2000, 'compacted');
  t.ok(late.error instanceof CompactedError, 'watching from before the snapshot: CompactedError');
  await w.close();
  await Promise.all([writer.close(), reader.close(), fresh.close()]);
});

t.test('a torn tail is ignored by readers and truncated by the next writer', async (t) => {
  const dir = freshDir();
  const a = new EmbeddedDatastore({ dir });
  for (let i = 0; i < 5; i++) await a.put(`/t/${i}`, i);
  const rev = (await a.list('/')).revision;
  await a.close();
  const wal = path.join(dir, walFiles(dir)[0]);
  const good = fs.readFileSync(wal);
  const lastLine = good.subarray(good.lastIndexOf(0x0a, good.length - 2) + 1);

  for (const [name, tail] of [
    ['half a record, no newline', lastLine.subarray(0, Math.floor(lastLine.length / 2))],
    ['a whole line with a bad checksum', Buffer.from(`00000000${lastLine.subarray(8).toString()}`)],
  ] as const) {
    fs.writeFileSync(wal, Buffer.concat([good, tail]));
    const r = new EmbeddedDatastore({ dir });
    t.equal((await r.list('/')).revision, rev, `${name}: opens, damaged record ignored`);
    const w = new EmbeddedDatastore({ dir });
    const kv = await w.put('/t/after', name);
    t.equal(kv.modRevision, rev + 1, `${name}: next write takes the next revision`);
    const now = fs.readFileSync(wal);
    t.equal(now.indexOf(0x0a, good.length), now.length - 1, `${name}: the damaged bytes are gone, one new record follows`);
    t.ok(fs.readFileSync(wal).subarray(0, good.length).equals(good), `${name}: good records kept`);
    t.same((await r.get('/t/after'))?.value, name, `${name}: the reader that saw the torn tail reads the new record`);
    await r.close();
    await w.close();
    fs.writeFileSync(wal, good); // reset for the next case
  }

  fs.writeFileSync(wal, Buffer.concat([good.subarray(0, 20), Buffer.from('garbage'), good.subarray(27)]));
  t.throws(() => new EmbeddedDatastore({ dir }), CorruptError, 'damage followed by valid records is corruption, not a torn tail');
});

t.test('a lock left by a dead process is broken; a live owner is waited for', async (t) => {
  const dir = freshDir();
  const ds = new EmbeddedDatastore({ dir, lockTimeoutMs: 400 });
  const dead = spawnSync('true');
  fs.writeFileSync(path.join(dir, 'lock'), `${dead.pid} 12345\n`);
  const t0 = Date.now();
  await ds.put('/l/a', 1);
  t.ok(Date.now() - t0 < 300, `stale lock broken quickly (${Date.now() - t0} ms)`);
  t.notOk(fs.existsSync(path.join(dir, 'lock')), 'lock released after the write');

  const live = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => { live.kill('SIGKILL'); });
  const stat = fs.readFileSync(`/proc/${live.pid}/stat`, 'utf8');
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  fs.writeFileSync(path.join(dir, 'lock'), `${live.pid} ${start}\n`);
  const err = await ds.put('/l/b', 2).catch((e: unknown) => e);
  t.ok(err instanceof UnavailableError, 'a live owner makes the write wait, then fail as Unavailable');
  t.equal((err as UnavailableError).recoverable, true);
  const pending = ds.put('/l/c', 3);
  await sleep(50);
  live.kill('SIGKILL');
  await new Promise((r) => live.once('exit', r));
  const kv = await pending;
  t.ok(kv.modRevision > 0, 'write proceeds once the owner is gone');
  await ds.close();
});

t.test('kill -9 of writers mid-append: the store opens and no acknowledged write is lost', async (t) => {
  const dir = freshDir();
  const acked = new Set<string>();
  const loops = 12;
  let totalAcks = 0;
  for (let loop = 0; loop < loops; loop++) {
    const prefix = `/crash/${loop}/`;
    // Two writers at once, so kills also land while the other waits for or holds the lock.
    const kids = [0, 1].map((k) => spawn(process.execPath, [WORKER, JSON.stringify({ mode: 'append', config: { type: 'embedded', dir }, prefix: `${prefix}${k}-` })],
      { stdio: ['ignore', 'pipe', 'pipe'] }));
    const exited = kids.map((p) => new Promise((r) => p.once('exit', r)));
    let errText = '';
    for (const [k, p] of kids.entries()) {
      let buf = '';
      p.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const m = /^ack (\d+)$/.exec(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (m) acked.add(`${prefix}${k}-${m[1]}`);
        }
      });
      p.stderr!.on('data', (d: Buffer) => (errText += d.toString()));
    }
    // Kill at a random moment once both are writing (node + module start-up takes a while).
    await until(() => [0, 1].every((k) => [...acked].some((a) => a.startsWith(`${prefix}${k}-`))), 15_000, 'writers started');
    await sleep(Math.random() * 60);
    for (const p of kids) p.kill('SIGKILL');
    await Promise.all(exited);
    t.equal(errText, '', `loop ${loop}: writers ran without errors until killed`);
    const check = new EmbeddedDatastore({ dir });
    const items = new Map((await check.list('/crash/')).items.map((i) => [i.key, i.value]));
    const missing = [...acked].filter((k) => !items.has(k));
    t.same(missing, [], `loop ${loop}: every acknowledged write present (${acked.size} so far)`);
    await check.put(`/crash-after/${loop}`, loop); // and the store accepts writes again (stale lock recovered)
    await check.close();
    totalAcks = acked.size;
  }
  t.ok(totalAcks > loops * 4, `writers made progress (${totalAcks} acknowledged writes)`);
  const final = new EmbeddedDatastore({ dir });
  const revs = (await final.list('/')).items.map((i) => i.modRevision);
  t.equal(new Set(revs).size, revs.length, 'no two keys share a revision');
  await final.close();
});

t.test('watch events carry what a Syncer needs across processes', async (t) => {
  const dir = freshDir();
  const a = new EmbeddedDatastore({ dir, pollMs: 1000 }); // slow poll: delivery must come from fs.watch
  const col = new Collector();
  const w = a.watch('/x/', col);
  await w.ready;
  const out = spawnSync(process.execPath, ['-e', `
    const { EmbeddedDatastore } = require(${JSON.stringify(path.resolve(__dirname, '../../src/datastore'))});
    const ds = new EmbeddedDatastore({ dir: ${JSON.stringify(dir)} });
    ds.create('/x/from-child', { ok: true }).then(() => ds.close());
  `]);
  t.equal(out.status, 0, String(out.stderr));
  const t0 = Date.now();
  await until(() => col.events.length === 1, 3000, 'event from another process');
  const ev = col.events[0] as WatchEvent & { type: 'put' };
  t.equal(ev.key, '/x/from-child');
  t.same(ev.kv.value, { ok: true });
  t.ok(Date.now() - t0 < 500, `delivered by fs.watch without waiting for the 1 s poll (${Date.now() - t0} ms)`);
  await w.close();
  await a.close();
});
