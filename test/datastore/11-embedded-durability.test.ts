import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CompactedError, CorruptError, EmbeddedDatastore, UnavailableError, type WatchEvent } from '../../src/datastore';
import { FileLock } from '../../src/datastore/file-lock';
import { Collector, sleep, until } from './helpers/conformance';

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

t.test('writes issued together are committed together, with per-write semantics in issue order', async (t) => {
  const dir = freshDir();
  const ds = new EmbeddedDatastore({ dir });
  await ds.put('/g/warm', 0);
  const r = await Promise.allSettled([
    ds.create('/g/k', 1), ds.create('/g/k', 2), ds.update('/g/k', 3), ds.delete('/g/k'), ds.update('/g/k', 4), ds.put('/g/k', 5),
  ]);
  t.strictSame(r.map((x) => x.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  const v = (i: number) => (r[i] as PromiseFulfilledResult<{ modRevision?: number; revision?: number; version?: number; createRevision?: number }>).value;
  t.equal((r[1] as PromiseRejectedResult).reason.code, 'ERR_DATASTORE_EXISTS', 'second create sees the first');
  t.equal((r[4] as PromiseRejectedResult).reason.code, 'ERR_DATASTORE_NOT_FOUND', 'update after the delete sees the delete');
  const revs = [v(0).modRevision!, v(2).modRevision!, v(3).revision!, v(5).modRevision!];
  t.strictSame(revs, [revs[0], revs[0] + 1, revs[0] + 2, revs[0] + 3], 'consecutive revisions in issue order');
  t.equal(v(2).version, 2);
  t.equal(v(5).version, 1, 'put after delete re-creates');
  t.equal(v(5).createRevision, v(5).modRevision);
  const reopened = new EmbeddedDatastore({ dir });
  t.same(await reopened.get('/g/k'), await ds.get('/g/k'), 'durable as reported');
  t.equal((await reopened.get('/g/k'))?.value, 5);
  await reopened.close();
  await ds.close();
});

t.test('a user without write access can read; writes fail with PermissionError', async (t) => {
  const dir = freshDir();
  const ds = new EmbeddedDatastore({ dir });
  await ds.put('/perm/a', { ok: 1 });
  await ds.close();
  fs.chmodSync(root, 0o755); // mkdtemp made it 0700
  const script = `
    const { EmbeddedDatastore } = require(${JSON.stringify(path.resolve(__dirname, '../../src/datastore'))});
    (async () => {
      const ds = new EmbeddedDatastore({ dir: ${JSON.stringify(dir)} });
      const got = await ds.get('/perm/a');
      const err = await ds.put('/perm/b', 1).catch((e) => e);
      process.stdout.write(JSON.stringify({ readOnly: ds.readOnly, value: got && got.value, code: err && err.code, message: err && err.message }));
    })();`;
  const out = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
  t.equal(out.status, 0, out.stderr);
  const r = JSON.parse(out.stdout) as { readOnly: boolean; value: unknown; code: string; message: string };
  t.equal(r.readOnly, true, 'opened read-only');
  t.same(r.value, { ok: 1 }, 'reads work');
  t.equal(r.code, 'ERR_DATASTORE_PERMISSION', 'write refused with a typed error');
  t.match(r.message, dir, 'the message names the store');
});

t.test('two lock holders in one process exclude each other (the owner tag is shared)', async (t) => {
  const dir = freshDir();
  fs.mkdirSync(dir, { recursive: true });
  const a = new FileLock(path.join(dir, 'lock'));
  const b = new FileLock(path.join(dir, 'lock'));
  t.ok(a.tryAcquire(), 'a takes the lock');
  t.notOk(b.tryAcquire(), 'b does not');
  t.notOk(b.tryAcquire(), 'b still does not: a live holder in this process is not a stale lock');
  t.ok(fs.existsSync(path.join(dir, 'lock')), "a's lock file intact");
  a.release();
  t.ok(b.tryAcquire(), 'b takes it once a releases');
  b.release();
  // A leftover with this process's tag that nobody here holds is stale.
  fs.writeFileSync(path.join(dir, 'lock'), a.ownerTag);
  b.tryAcquire();
  t.ok(b.tryAcquire() || b.isHeld, 'a leftover of this process is recovered');
  b.release();
});
