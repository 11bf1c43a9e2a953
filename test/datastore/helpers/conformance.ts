/**
 * The one conformance suite of the Datastore contract (src/datastore/types.ts), run against
 * every backend by 10-conformance-embedded.test.ts and 20-conformance-etcd.test.ts.
 * Each subtest works under its own random key prefix, so the backends' stores can be shared.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  AlreadyExistsError, CompactedError, ConflictError, InvalidKeyError, InvalidValueError, NotFoundError, Syncer,
  type Datastore, type DatastoreConfig, type JsonValue, type KeyValue, type SyncUpdate, type Watch, type WatchCallbacks,
  type WatchEvent, type WatchOptions,
} from '../../../src/datastore';

import type { Test } from 'tap';

export interface Backend {
  name: string;
  /** A new client / instance on the same store. */
  open(): Datastore;
  /** Config a child process uses to open the same store. */
  config: DatastoreConfig;
  /** Rounds of the kill -9 test (default 6). */
  crashLoops?: number;
}

export const WORKER = path.join(__dirname, 'worker.js');
/** Workers run without the test runner's coverage hooks (inherited through NODE_OPTIONS): faster start-up. */
export const WORKER_ENV = { ...process.env, NODE_OPTIONS: '' };

export function uniquePrefix(label: string): string {
  return `/conf/${randomBytes(4).toString('hex')}/${label}/`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]);
}

/** Collects a watch's events and its terminal error. */
export class Collector implements WatchCallbacks {
  events: WatchEvent[] = [];
  error?: Error;
  onEvents(events: WatchEvent[]): void {
    this.events.push(...events);
  }
  onError(err: Error): void {
    this.error = err;
  }
}

/** Runs a child worker to completion; resolves with its stdout. */
export function runWorker(job: object, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [WORKER, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'], env: WORKER_ENV });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`worker exited ${code}: ${err}`));
    });
  });
}

function expectKv(t: Test, kv: KeyValue | undefined, key: string, value: JsonValue, msg: string): void {
  t.ok(kv, `${msg}: present`);
  if (!kv) return;
  t.equal(kv.key, key, `${msg}: key`);
  t.same(kv.value, value, `${msg}: value`);
}

export async function conformance(t: Test, b: Backend): Promise<void> {
  const ds = b.open();
  t.teardown(() => ds.close());

  await t.test('create, get, create-if-absent', async (t) => {
    const p = uniquePrefix('create');
    t.equal(await ds.get(`${p}a`), undefined, 'absent key reads as undefined');
    const kv = await ds.create(`${p}a`, { spec: { cidr: '192.168.0.0/16' } });
    t.equal(kv.version, 1);
    t.equal(kv.createRevision, kv.modRevision, 'create stamps createRevision = modRevision');
    const got = await ds.get(`${p}a`);
    t.same(got, kv, 'get returns what create reported');
    const err = await ds.create(`${p}a`, { other: 1 }).catch((e: unknown) => e);
    t.ok(err instanceof AlreadyExistsError, 'second create fails with AlreadyExistsError');
    t.equal((err as AlreadyExistsError).code, 'ERR_DATASTORE_EXISTS');
    t.equal((err as AlreadyExistsError).actualRevision, kv.modRevision);
    t.same((await ds.get(`${p}a`))!.value, { spec: { cidr: '192.168.0.0/16' } }, 'value unchanged by the failed create');
    const kv2 = await ds.create(`${p}b`, 'x');
    t.ok(kv2.modRevision > kv.modRevision, 'revisions grow');
  });

  await t.test('update with and without compare-and-swap', async (t) => {
    const p = uniquePrefix('update');
    const nf = await ds.update(`${p}missing`, 1).catch((e: unknown) => e);
    t.ok(nf instanceof NotFoundError, 'update of an absent key: NotFoundError');
    t.equal((nf as NotFoundError).code, 'ERR_DATASTORE_NOT_FOUND');
    const c = await ds.create(`${p}k`, { n: 1 });
    const u1 = await ds.update(`${p}k`, { n: 2 });
    t.equal(u1.version, 2);
    t.equal(u1.createRevision, c.createRevision, 'createRevision kept');
    t.ok(u1.modRevision > c.modRevision);
    const conflict = await ds.update(`${p}k`, { n: 99 }, { expectedRevision: c.modRevision }).catch((e: unknown) => e);
    t.ok(conflict instanceof ConflictError, 'stale expectedRevision: ConflictError');
    t.equal((conflict as ConflictError).code, 'ERR_DATASTORE_CONFLICT');
    t.equal((conflict as ConflictError).actualRevision, u1.modRevision, 'conflict reports the current revision');
    t.same((await ds.get(`${p}k`))!.value, { n: 2 }, 'value unchanged by the failed CAS');
    const u2 = await ds.update(`${p}k`, { n: 3 }, { expectedRevision: u1.modRevision });
    t.equal(u2.version, 3);
    t.same(await ds.get(`${p}k`), u2, 'get returns what update reported');
    const nf2 = await ds.update(`${p}missing`, 1, { expectedRevision: 5 }).catch((e: unknown) => e);
    t.ok(nf2 instanceof NotFoundError, 'CAS on an absent key: NotFoundError');
  });

  await t.test('put upserts', async (t) => {
    const p = uniquePrefix('put');
    const a = await ds.put(`${p}k`, 'one');
    t.equal(a.version, 1);
    const b2 = await ds.put(`${p}k`, 'two');
    t.equal(b2.version, 2);
    t.equal(b2.createRevision, a.createRevision);
    t.same(await ds.get(`${p}k`), b2);
  });

  await t.test('delete', async (t) => {
    const p = uniquePrefix('delete');
    const nf = await ds.delete(`${p}missing`).catch((e: unknown) => e);
    t.ok(nf instanceof NotFoundError, 'delete of an absent key: NotFoundError');
    const c = await ds.create(`${p}k`, { v: 1 });
    const u = await ds.update(`${p}k`, { v: 2 });
    const conflict = await ds.delete(`${p}k`, { expectedRevision: c.modRevision }).catch((e: unknown) => e);
    t.ok(conflict instanceof ConflictError, 'delete with a stale expectedRevision: ConflictError');
    t.ok(await ds.get(`${p}k`), 'still there after the failed delete');
    const d = await ds.delete(`${p}k`, { expectedRevision: u.modRevision });
    t.same(d.prevKv, u, 'delete returns the deleted kv');
    t.ok(d.revision > u.modRevision, 'the delete has its own revision');
    t.equal(await ds.get(`${p}k`), undefined, 'gone');
    const again = await ds.create(`${p}k`, { v: 3 });
    t.equal(again.version, 1, 're-created key starts at version 1');
    t.ok(again.createRevision > d.revision, 're-created key has a new createRevision');
    await ds.delete(`${p}k`);
    t.equal(await ds.get(`${p}k`), undefined, 'unconditional delete');
  });

  await t.test('list: prefix scans, sorted, with the store revision', async (t) => {
    const p = uniquePrefix('list');
    const keys = [`${p}pools/b`, `${p}pools/a`, `${p}pools/c/x`, `${p}poolsx/d`, `${p}nodes/n1`];
    let maxRev = 0;
    for (const k of keys) maxRev = Math.max(maxRev, (await ds.create(k, { k })).modRevision);
    const pools = await ds.list(`${p}pools/`);
    t.strictSame(pools.items.map((i) => i.key), [`${p}pools/a`, `${p}pools/b`, `${p}pools/c/x`], 'only keys under the prefix, sorted');
    t.ok(pools.revision >= maxRev, 'list revision covers every item');
    t.same(pools.items[0].value, { k: `${p}pools/a` });
    const all = await ds.list(p);
    t.equal(all.items.length, 5);
    t.equal((await ds.list(`${p}nothing/`)).items.length, 0, 'empty prefix result');
    const everything = await ds.list('');
    t.ok(everything.items.length >= 5, "'' lists everything");
    t.ok(keys.every((k) => everything.items.some((i) => i.key === k)));
  });

  await t.test('values round-trip; bad keys and values are rejected', async (t) => {
    const p = uniquePrefix('values');
    const values: JsonValue[] = ['plain string', '', 42, 0.5, true, null, [1, 'two', { three: 3 }], { nested: { deep: ['x'] }, 'ü-ñ': '✓ emoji 🐢' }];
    for (const [i, v] of values.entries()) {
      await ds.create(`${p}${i}`, v);
      expectKv(t, await ds.get(`${p}${i}`), `${p}${i}`, v, `value ${JSON.stringify(v)}`);
    }
    const copy = (await ds.get(`${p}7`))!.value as { nested: { deep: string[] } };
    copy.nested.deep.push('mutated');
    t.same((await ds.get(`${p}7`))!.value, values[7], 'get returns a copy');
    t.ok(await ds.create('no-slash', 1).catch((e: unknown) => e) instanceof InvalidKeyError, 'key without leading / rejected');
    t.ok(await ds.get('/a\nb').catch((e: unknown) => e) instanceof InvalidKeyError, 'control character rejected');
    t.ok(await ds.create(`${p}undef`, undefined as unknown as JsonValue).catch((e: unknown) => e) instanceof InvalidValueError, 'undefined value rejected');
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    t.ok(await ds.create(`${p}cyc`, cyc as JsonValue).catch((e: unknown) => e) instanceof InvalidValueError, 'cyclic value rejected');
  });

  await t.test('reads are linearizable across clients', async (t) => {
    const p = uniquePrefix('linear');
    const other = b.open();
    try {
      for (let i = 0; i < 20; i++) {
        const w = await ds.put(`${p}k`, i);
        const r = await other.get(`${p}k`);
        t.equal(r?.modRevision, w.modRevision, `read ${i} from another client sees the acknowledged write`);
        const l = await other.list(p);
        t.ok(l.revision >= w.modRevision);
      }
    } finally {
      await other.close();
    }
  });

  await t.test('watch streams puts and deletes under the prefix, in order', async (t) => {
    const p = uniquePrefix('watch');
    const here = new Collector();
    const otherDs = b.open();
    const there = new Collector();
    const w1 = ds.watch(p, here);
    const w2 = otherDs.watch(p, there);
    await Promise.all([w1.ready, w2.ready]);
    const c = await ds.create(`${p}a`, { v: 1 });
    await ds.create(`/conf-outside${p}a`, 1); // outside the prefix
    const u = await ds.update(`${p}a`, { v: 2 });
    const d = await ds.delete(`${p}a`);
    const c2 = await ds.put(`${p}b`, 'bee');
    for (const [name, col] of [['same client', here], ['another client', there]] as const) {
      await until(() => col.events.length >= 4, 5000, `${name} events`);
      t.strictSame(col.events.map((e) => [e.type, e.key, e.revision]), [
        ['put', `${p}a`, c.modRevision], ['put', `${p}a`, u.modRevision], ['delete', `${p}a`, d.revision], ['put', `${p}b`, c2.modRevision],
      ], `${name}: every change, in order, nothing outside the prefix`);
      const put = col.events[1];
      t.same(put.type === 'put' && put.kv, u, `${name}: put carries the kv`);
      const del = col.events[2];
      t.same(del.type === 'delete' && del.prevKv?.value, { v: 2 }, `${name}: delete carries the previous kv`);
    }
    await w1.close();
    await w2.close();
    await ds.put(`${p}c`, 1);
    await sleep(150);
    t.equal(here.events.length, 4, 'nothing delivered after close');
    t.equal(here.error, undefined, 'close does not call onError');
    await otherDs.close();
  });

  await t.test('watch resumes from a revision', async (t) => {
    const p = uniquePrefix('resume');
    const revs: number[] = [];
    for (let i = 0; i < 5; i++) revs.push((await ds.put(`${p}k${i % 2}`, i)).modRevision);
    const col = new Collector();
    const w = ds.watch(p, col, { fromRevision: revs[2] });
    await w.ready;
    const last = await ds.put(`${p}k9`, 9);
    await until(() => col.events.length >= 4, 5000, 'resumed events');
    t.strictSame(col.events.map((e) => e.revision), [revs[2], revs[3], revs[4], last.modRevision], 'history from the revision, then live');
    t.same(col.events.map((e) => (e.type === 'put' ? e.kv.value : null)), [2, 3, 4, 9]);
    await w.close();
  });

  await t.test('watch from a compacted revision fails with CompactedError', async (t) => {
    const p = uniquePrefix('compacted');
    const first = await ds.put(`${p}k`, 0);
    for (let i = 1; i < 5; i++) await ds.put(`${p}k`, i);
    const last = await ds.put(`${p}k`, 5);
    await ds.compact(last.modRevision);
    const col = new Collector();
    const w = ds.watch(p, col, { fromRevision: first.modRevision });
    await until(() => col.error !== undefined, 5000, 'compacted error');
    t.ok(col.error instanceof CompactedError, 'CompactedError');
    t.equal((col.error as CompactedError).code, 'ERR_DATASTORE_COMPACTED');
    t.equal(col.events.length, 0, 'no events before the error');
    await w.close();
    const ok = new Collector();
    const w2 = ds.watch(p, ok, { fromRevision: last.modRevision + 1 });
    await w2.ready;
    const after = await ds.put(`${p}k`, 6);
    await until(() => ok.events.length === 1, 5000, 'event after compaction');
    t.equal(ok.events[0].revision, after.modRevision, 'watching after the compaction point works');
    await w2.close();
  });

  await t.test('Syncer: initial list, in-sync, then the stream', async (t) => {
    const p = uniquePrefix('syncer');
    for (let i = 0; i < 10; i++) await ds.create(`${p}item${i}`, { i });
    const view = new Map<string, JsonValue>();
    const log: string[] = [];
    let inSyncRev = -1;
    const s = new Syncer(ds, p, {
      onUpdate: (u: SyncUpdate) => {
        log.push(u.type);
        if (u.type === 'put') view.set(u.key, u.kv.value);
        else view.delete(u.key);
      },
      onInSync: (rev) => {
        log.push('in-sync');
        inSyncRev = rev;
      },
    });
    await s.start();
    t.equal(log.indexOf('in-sync'), 10, 'ten puts, then in-sync');
    t.equal(view.size, 10);
    t.ok(inSyncRev > 0);
    await ds.delete(`${p}item3`);
    await ds.update(`${p}item4`, { i: 44 });
    await ds.create(`${p}new`, { i: 100 });
    await until(() => view.size === 10 && view.has(`${p}new`) && (view.get(`${p}item4`) as { i: number }).i === 44, 5000, 'syncer stream');
    const truth = await ds.list(p);
    t.same(new Map(truth.items.map((i) => [i.key, i.value])), view, 'consumer view equals the store');
    t.equal(log.filter((x) => x === 'in-sync').length, 1, 'in-sync once');
    await s.stop();
  });

  await t.test('Syncer behind a compaction re-lists, emits the differences, and watches again', async (t) => {
    const p = uniquePrefix('resync');
    for (let i = 0; i < 6; i++) await ds.create(`${p}item${i}`, { i });
    // Holds the Syncer's watch until the test releases it: the Syncer falls behind while the
    // store moves on and compacts (as after a long disconnection).
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let held = true;
    const slow: Datastore = {
      type: ds.type,
      get: (k) => ds.get(k), list: (pr) => ds.list(pr), create: (k, v) => ds.create(k, v), update: (k, v, o) => ds.update(k, v, o),
      put: (k, v) => ds.put(k, v), delete: (k, o) => ds.delete(k, o), compact: (r) => ds.compact(r), close: () => ds.close(),
      watch: (prefix: string, cb: WatchCallbacks, opts?: WatchOptions): Watch => {
      if (!held) return ds.watch(prefix, cb, opts);
      held = false;
      let inner: Watch | undefined;
      const ready = gate.then(() => { inner = ds.watch(prefix, cb, opts); return inner.ready; });
        return { ready, close: async () => { await ready; await inner?.close(); } };
      },
    };
    const view = new Map<string, JsonValue>();
    const deletes: string[] = [];
    let inSyncCalls = 0;
    let resyncs = 0;
    const s = new Syncer(slow, p, {
      onUpdate: (u) => {
        if (u.type === 'put') view.set(u.key, u.kv.value);
        else { view.delete(u.key); deletes.push(u.key); }
      },
      onInSync: () => inSyncCalls++,
      onResync: () => resyncs++,
    });
    await s.start();
    t.equal(view.size, 6);
    await ds.delete(`${p}item0`);
    await ds.delete(`${p}item1`);
    await ds.update(`${p}item2`, { i: 22 });
    await ds.create(`${p}fresh`, { i: 7 });
    await ds.create(`${p}gone`, { i: 8 });
    await ds.delete(`${p}gone`);
    const marker = await ds.put(`/conf-outside${p}marker`, 1);
    await ds.compact(marker.modRevision);
    release();
    await until(() => resyncs === 1, 10_000, 'resync');
    const after = await ds.create(`${p}after`, { i: 9 });
    await until(() => view.has(`${p}after`), 5000, 'watching again after the resync');
    const truth = await ds.list(p);
    t.same(new Map(truth.items.map((i) => [i.key, i.value])), view, 'view equals the store: nothing missed');
    t.same(deletes.sort(), [`${p}item0`, `${p}item1`], 'deletes emitted for the keys that vanished while behind');
    t.equal(inSyncCalls, 1, 'in-sync not repeated');
    t.ok(after.modRevision > marker.modRevision);
    await s.stop();
  });

  await t.test('concurrent CAS increments from several processes are exact', async (t) => {
    const key = `${uniquePrefix('cas')}counter`;
    await ds.create(key, { count: 0 });
    const procs = 4;
    const n = 40;
    const outs = await Promise.all(Array.from({ length: procs }, () => runWorker({ mode: 'cas-inc', config: b.config, key, n })));
    const conflicts = outs.reduce((s, o) => s + Number(/done (\d+)/.exec(o)?.[1] ?? NaN), 0);
    t.same((await ds.get(key))!.value, { count: procs * n }, `final count exact (${conflicts} conflicts retried)`);
    // And from this process, two clients racing.
    const other = b.open();
    const inc = async (store: Datastore) => {
      for (let i = 0; i < 20; ) {
        const cur = (await store.get(key))!;
        try {
          await store.update(key, { count: (cur.value as { count: number }).count + 1 }, { expectedRevision: cur.modRevision });
          i++;
        } catch (e) {
          if (!(e instanceof ConflictError)) throw e;
        }
      }
    };
    await Promise.all([inc(ds), inc(other), inc(ds), inc(other)]);
    t.same((await ds.get(key))!.value, { count: procs * n + 80 }, 'in-process racing clients exact too');
    await other.close();
  });

  await t.test('kill -9 of writers mid-append: the store opens and no acknowledged write is lost', async (t) => {
    const base = uniquePrefix('crash');
    const acked = new Set<string>();
    const loops = b.crashLoops ?? 6;
    let totalAcks = 0;
    for (let loop = 0; loop < loops; loop++) {
      const prefix = `${base}${loop}/`;
      // Two writers at once, so kills also land while the other waits for or holds the lock.
      const kids = [0, 1].map((k) => spawn(process.execPath, [WORKER, JSON.stringify({ mode: 'append', config: b.config, prefix: `${prefix}${k}-` })],
        { stdio: ['ignore', 'pipe', 'pipe'], env: WORKER_ENV }));
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
      const check = b.open(); // a fresh opener, after the crash
      const items = new Map((await check.list(base)).items.map((i) => [i.key, i.value]));
      const missing = [...acked].filter((k) => !items.has(k));
      t.same(missing, [], `loop ${loop}: every acknowledged write present (${acked.size} so far)`);
      await check.put(`${base}after/${loop}`, loop); // and the store accepts writes again (a dead writer's lock is recovered)
      await check.close();
      totalAcks = acked.size;
    }
    t.ok(totalAcks > loops * 4, `writers made progress (${totalAcks} acknowledged writes)`);
    const revs = (await ds.list(base)).items.map((i) => i.modRevision);
    t.equal(new Set(revs).size, revs.length, 'no two keys share a revision');
  });
}
