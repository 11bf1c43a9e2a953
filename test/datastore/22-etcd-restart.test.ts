import t from 'tap';
import { Etcd3 } from 'etcd3';
import { EtcdDatastore } from '../../src/datastore/etcd';
import { Syncer } from '../../src/datastore';
import { Collector, sleep, until, withTimeout } from './helpers/conformance';
import { EtcdCluster } from '../../src/testbed/etcd';

interface Probe { start: number; end: number; ok: boolean; err?: string }

/** Calls `call` back to back until stopped; records every outcome. */
function probeLoop(call: () => Promise<unknown>): { probes: Probe[]; stop: () => Promise<Probe[]> } {
  const probes: Probe[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const start = Date.now();
      try {
        await call();
        probes.push({ start, end: Date.now(), ok: true });
      } catch (e) {
        probes.push({ start, end: Date.now(), ok: false, err: (e as Error).message.slice(0, 80) });
        await sleep(5);
      }
    }
  })();
  return { probes, stop: async () => { running = false; await done; return probes; } };
}

t.test('etcd restarted on the same data dir: calls wait and resume at once, the watch resumes', async (t) => {
  const cluster = await EtcdCluster.start(1);
  t.teardown(() => cluster.stop());
  const endpoints = cluster.endpoints();
  const ds = new EtcdDatastore({ endpoints });
  t.teardown(() => ds.close());
  // etcd3 with its default fault handling, for comparison.
  const plain = new Etcd3({ hosts: endpoints });
  t.teardown(() => plain.close());

  const col = new Collector();
  let reconnects = 0;
  const w = ds.watch('/rs/', { ...col, onEvents: (e) => col.onEvents(e), onError: (e) => col.onError(e), onReconnect: () => reconnects++ });
  await w.ready;
  const before = await ds.put('/rs/before', 1);
  await plain.put('/rs-plain/x').value('1');

  const ours = probeLoop(() => ds.get('/rs/before'));
  const theirs = probeLoop(() => plain.get('/rs/before').string());
  await until(() => ours.probes.some((p) => p.ok) && theirs.probes.some((p) => p.ok), 5000, 'both clients answering before the kill');
  await cluster.killMember(0);
  const killedAt = Date.now();
  await sleep(500);
  await cluster.startMember(0);
  const readyAt = Date.now();
  // Until our client has answered after the restart and etcd3's has too (or 3 s have passed, the
  // window the comparison figures were always measured over).
  const okAfterReady = (ps: Probe[]) => ps.some((p) => p.ok && p.end >= readyAt);
  await until(() => okAfterReady(ours.probes) && (okAfterReady(theirs.probes) || Date.now() - readyAt >= 3000), 10_000, 'calls after the restart')
    .catch(async (e: unknown) => { await Promise.all([ours.stop(), theirs.stop()]); throw e; });
  const [p1, p2] = await Promise.all([ours.stop(), theirs.stop()]);

  const firstOk = (ps: Probe[]) => ps.find((p) => p.ok && p.end >= readyAt)?.end ?? NaN;
  const failures = (ps: Probe[]) => ps.filter((p) => !p.ok && p.end >= killedAt);
  const refusedAfterReady = (ps: Probe[]) => ps.filter((p) => !p.ok && p.end >= readyAt).length;
  const lastFail = (ps: Probe[]) => Math.max(readyAt, ...failures(ps).map((p) => p.end));
  const oursLatency = firstOk(p1) - readyAt;
  t.comment(`tortie client: ${failures(p1).length} failed calls, first success ${oursLatency} ms after etcd was ready (down ${readyAt - killedAt} ms)`);
  t.comment(`etcd3 defaults: ${failures(p2).length} failed calls (${refusedAfterReady(p2)} after etcd was ready), calls failing until ${lastFail(p2) - readyAt} ms after ready, first success ${firstOk(p2) - readyAt} ms after ready`);
  t.equal(failures(p1).length, 0, 'no call failed: calls made while etcd was down waited for it');
  t.ok(oursLatency < 1000, `first call completes within 1 s of etcd being ready (${oursLatency} ms)`);

  const after = await ds.put('/rs/after', 2);
  await until(() => col.events.length >= 2, 5000, 'watch after the restart');
  t.strictSame(col.events.map((e) => [e.key, e.revision]), [['/rs/before', before.modRevision], ['/rs/after', after.modRevision]],
    'the watch resumed: every change once');
  t.ok(reconnects >= 1, `the watch reported its reconnection (${reconnects})`);
  t.equal(col.error, undefined);
  await w.close();
});

t.test('calls fail as Unavailable (recoverable) when etcd stays down past the deadline', async (t) => {
  const cluster = await EtcdCluster.start(1);
  t.teardown(() => cluster.stop());
  const ds = new EtcdDatastore({ endpoints: cluster.endpoints(), requestTimeoutMs: 600 });
  t.teardown(() => ds.close());
  await ds.put('/down/a', 1);
  await cluster.killMember(0);
  const t0 = Date.now();
  const err = (await ds.get('/down/a').catch((e: unknown) => e)) as { code?: string; recoverable?: boolean };
  const took = Date.now() - t0;
  t.equal(err.code, 'ERR_DATASTORE_UNAVAILABLE');
  t.equal(err.recoverable, true);
  t.ok(took >= 500 && took < 3000, `failed after about the deadline (${took} ms)`);
  const werr = (await ds.put('/down/b', 1).catch((e: unknown) => e)) as { code?: string };
  t.equal(werr.code, 'ERR_DATASTORE_UNAVAILABLE', 'writes too');
});

t.test('Syncer across an etcd outage: started while etcd is down, in sync once it is back', async (t) => {
  const cluster = await EtcdCluster.start(1);
  t.teardown(() => cluster.stop());
  const ds = new EtcdDatastore({ endpoints: cluster.endpoints(), requestTimeoutMs: 400 });
  t.teardown(() => ds.close());
  await ds.put('/out/a', 1);
  await cluster.killMember(0);
  const view = new Map<string, unknown>();
  const statuses: string[] = [];
  let reconnects = 0;
  const s = new Syncer(ds, '/out/', {
    onUpdate: (u) => (u.type === 'put' ? view.set(u.key, u.kv.value) : view.delete(u.key)),
    onInSync: () => statuses.push('in-sync-callback'),
    onStatus: (st) => statuses.push(st),
    onReconnect: () => reconnects++,
  }, { maxBackoffMs: 200 });
  const started = s.start();
  await sleep(1200); // several list attempts fail meanwhile
  t.notOk(s.isInSync, 'not in sync while etcd is down');
  await cluster.startMember(0);
  await withTimeout(started, 10_000, 'syncer start');
  t.ok(s.isInSync);
  t.same([...view], [['/out/a', 1]], 'initial state listed once etcd is back');
  await ds.put('/out/b', 2);
  await until(() => view.has('/out/b'), 5000, 'stream after the outage');
  // A second outage while watching: the Syncer's watch resumes by itself and reports it.
  await cluster.killMember(0);
  await sleep(300);
  await cluster.startMember(0);
  await ds.put('/out/c', 3);
  await until(() => view.has('/out/c'), 5000, 'stream after the second outage');
  t.ok(reconnects >= 1, `reconnection reported through the Syncer (${reconnects})`);
  t.same([...view.keys()].sort(), ['/out/a', '/out/b', '/out/c']);
  t.equal(statuses.filter((x) => x === 'in-sync-callback').length, 1);
  await s.stop();
});
