// The agent's control loop over the real embedded datastore, with a recording calc and dataplane
// (the real ones have their own tests and are composed in the end-to-end tests).
import t from 'tap';
import { pool } from '../../src/testbed/fixtures';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatastore } from '../../src/datastore';
import { ResourceClient, keyOf, resourceViewOfKv } from '../../src/client/resources';
import { checkResource } from '../../src/model';
import type { CalcDelta, CompiledState } from '../../src/calc/types';
import type { Resource, ResourceKind } from '../../src/model';
import { Agent, type PolicyCalc, type Dataplane } from '../../src/node/agent';
import { NodeMetrics } from '../../src/node/metrics';
import { silentLogger } from '../../src/util/log';
import { boundPort } from '../../src/node/http';

function emptyDelta(): CalcDelta {
  return { classesAdded: [], classesRemoved: [], prefixesUpserted: [], prefixesRemoved: [], tablesAdded: [], tablesRemoved: [],
    projectionAdded: [], projectionRemoved: [], endpointsUpserted: [], endpointsRemoved: [], rulesUpserted: [], rulesRemoved: [],
    prefilterChanged: false, routingChanged: false, workloadRoutesUpserted: [], workloadRoutesRemoved: [] };
}

class RecordingCalc implements PolicyCalc {
  readonly live = new Map<string, Resource>();
  pending: string[] = [];
  onUpdate(r: Resource): void { this.live.set(`${r.kind}/${r.metadata.name}`, r); this.pending.push(`+${r.kind}/${r.metadata.name}`); }
  onDelete(kind: ResourceKind, name: string): void { this.live.delete(`${kind}/${name}`); this.pending.push(`-${kind}/${name}`); }
  flush(): CalcDelta {
    const d = emptyDelta();
    d.rulesRemoved = this.pending.map((_, i) => i);
    d.routingChanged = this.pending.length > 0;
    (d as unknown as { names: string[] }).names = this.pending;
    this.pending = [];
    return d;
  }
  snapshot(): CompiledState {
    return { nodeName: 'n1', classes: { prefixes: [], classes: [] }, tables: [], endpoints: [], rules: [],
      prefilter: { deny: [], skipped: [] }, routing: { pools: [...this.live.values()].filter((r) => r.kind === 'IPPool').map((r) => ({ name: r.metadata.name, cidr: '', ipipMode: '', vxlanMode: '', natOutgoing: false, disabled: false, blockSize: 26 })), nodes: [], workloadRoutes: [] } };
  }
}

class RecordingDataplane implements Dataplane {
  reconciles: CompiledState[] = [];
  deltas: string[][] = [];
  failNext = 0;
  closed = false;
  async reconcile(s: CompiledState): Promise<void> {
    if (this.failNext > 0) { this.failNext--; throw new Error('injected failure'); }
    this.reconciles.push(s);
  }
  async apply(d: CalcDelta): Promise<void> {
    if (this.failNext > 0) { this.failNext--; throw new Error('injected failure'); }
    this.deltas.push((d as unknown as { names: string[] }).names);
  }
  async close(): Promise<void> { this.closed = true; }
}


t.test('agent: in-sync → reconcile, then coalesced deltas; invalid resources are absent; retries as reconcile', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ds = new EmbeddedDatastore({ dir });
  const writer = new EmbeddedDatastore({ dir });
  t.teardown(() => writer.close());
  const client = new ResourceClient(writer);
  await client.create(pool('p1', '192.168.0.0/16') as never);

  const calc = new RecordingCalc();
  const dp = new RecordingDataplane();
  const agent = new Agent({ nodeName: 'n1', datastore: ds, calc, dataplane: dp, log: silentLogger, metrics: new NodeMetrics(false),
    health: { host: '127.0.0.1', port: 0 } });
  await agent.start();
  await agent.settled();
  t.equal(dp.reconciles.length, 1, 'one reconcile after in-sync');
  t.same(dp.reconciles[0]!.routing.pools.map((p) => p.name), ['p1']);
  t.ok(agent.ready().ok, agent.ready().detail);

  await client.create(pool('p2', '10.10.0.0/16') as never);
  await client.create(pool('p3', '10.11.0.0/16') as never);
  for (let i = 0; i < 100 && dp.deltas.flat().length < 2; i++) { await new Promise((r) => setTimeout(r, 20)); await agent.settled(); }
  t.same(dp.deltas.flat(), ['+IPPool/p2', '+IPPool/p3'], 'updates reach the dataplane as deltas');
  await client.create({ apiVersion: 'projectcalico.org/v3', kind: 'HostEndpoint', metadata: { name: 'n1-eth0', labels: { role: 'host' } },
    spec: { node: 'n1', interfaceName: 'eth0' } } as never);
  for (let i = 0; i < 100 && !dp.deltas.flat().includes('+HostEndpoint/n1-eth0'); i++) { await new Promise((r) => setTimeout(r, 20)); await agent.settled(); }
  t.ok(calc.live.has('HostEndpoint/n1-eth0'), 'a HostEndpoint written through the client reaches the compiler');

  // An invalid resource written behind the client's back is treated as absent.
  await writer.put(keyOf('IPPool', 'p2'), { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p2' }, spec: { cidr: 'not-a-cidr' } });
  for (let i = 0; i < 100 && !dp.deltas.flat().includes('-IPPool/p2'); i++) { await new Promise((r) => setTimeout(r, 20)); await agent.settled(); }
  t.ok(dp.deltas.flat().includes('-IPPool/p2'), 'invalid p2 deleted from the calc');
  t.notOk(calc.live.has('IPPool/p2'));

  // A failed apply is retried as a full reconcile.
  dp.failNext = 1;
  await client.delete('IPPool', 'p3');
  for (let i = 0; i < 200 && dp.reconciles.length < 2; i++) { await new Promise((r) => setTimeout(r, 20)); }
  await agent.settled();
  t.equal(dp.reconciles.length, 2, 'reconciled after the failure');
  t.same(dp.reconciles[1]!.routing.pools.map((p) => p.name), ['p1'], 'the reconcile carries the full current state');
  t.ok(agent.ready().ok);

  await agent.stop();
  t.ok(dp.closed, 'dataplane closed (programs stay attached: close() must not detach)');
});

t.test('agent health endpoints (Felix\'s paths too) and metrics on the metrics port', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dp = new RecordingDataplane();
  dp.failNext = 1000;
  const metrics = new NodeMetrics(false);
  const agent = new Agent({ nodeName: 'n1', datastore: new EmbeddedDatastore({ dir }), calc: new RecordingCalc(), dataplane: dp,
    log: silentLogger, metrics, health: { host: '127.0.0.1', port: 0 }, metricsListen: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => agent.stop());
  await agent.start();
  const [port, metricsPort] = agent.listeners.map(boundPort) as [number, number];
  t.not(port, metricsPort, 'two listeners');
  await new Promise((r) => setTimeout(r, 100));
  for (const path of ['/readyz', '/readiness']) {
    const ready = await fetch(`http://127.0.0.1:${port}${path}`);
    t.equal(ready.status, 503, `${path}: not ready while the dataplane keeps failing`);
    t.match(await ready.text(), /injected failure/);
  }
  t.equal((await fetch(`http://127.0.0.1:${port}/livez`)).status, 200);
  t.equal((await fetch(`http://127.0.0.1:${port}/liveness`)).status, 200);
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404, 'metrics are on the metrics port, not the health port');
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, 404, 'health is on the health port only');
  const m = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  t.match(m, /tortie_dataplane_apply_failures_total\{manager="dataplane"\} [1-9]/);
  t.match(m, /^felix_int_dataplane_failures [1-9]/m, 'Felix\'s name for the same figure');
  t.match(m, /^# TYPE felix_int_dataplane_apply_time_seconds summary/m);
  t.match(m, /^felix_resyncs_started 1$/m);
  t.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
  dp.failNext = 0;
  for (let i = 0; i < 200 && !agent.ready().ok; i++) await new Promise((r) => setTimeout(r, 25));
  t.equal((await fetch(`http://127.0.0.1:${port}/readiness`)).status, 200, 'ready once an apply succeeds');
  await agent.stop();
});

t.test('health and metrics on one port when the two ports are the same', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((r) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => r(p)); }); });
  const agent = new Agent({ nodeName: 'n1', datastore: new EmbeddedDatastore({ dir }), calc: new RecordingCalc(), dataplane: new RecordingDataplane(),
    log: silentLogger, metrics: new NodeMetrics(false), health: { host: '127.0.0.1', port }, metricsListen: { host: '127.0.0.1', port } });
  t.teardown(() => agent.stop());
  await agent.start();
  t.equal(agent.listeners.length, 1, 'one listener');
  t.equal((await fetch(`http://127.0.0.1:${port}/liveness`)).status, 200);
  t.match(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), /^# TYPE felix_resyncs_started counter$/m);
  await agent.stop();
});

t.test('a dataplane still opening (ready pending): the calc is fed but not flushed, and nothing is written, until it is ready', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const writer = new EmbeddedDatastore({ dir });
  t.teardown(() => writer.close());
  await new ResourceClient(writer).create(pool('p1', '192.168.0.0/16') as never);

  const run = async (stopBeforeReady: boolean): Promise<{ calc: RecordingCalc; dp: RecordingDataplane & { ready(): Promise<void> } }> => {
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    const dp = Object.assign(new RecordingDataplane(), { ready: () => opened });
    const calc = new RecordingCalc();
    let flushes = 0;
    const flush = calc.flush.bind(calc);
    calc.flush = () => { flushes++; return flush(); };
    const agent = new Agent({ nodeName: 'n1', datastore: new EmbeddedDatastore({ dir }), calc, dataplane: dp, log: silentLogger, metrics: new NodeMetrics(false) });
    await agent.start();
    for (let i = 0; i < 100 && !calc.live.has('IPPool/p1'); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50)); // past the agent's flush delay
    t.ok(calc.live.has('IPPool/p1'), 'the store was listed into the calc');
    t.equal(flushes, 0, 'no flush while the dataplane opens');
    t.equal(dp.reconciles.length, 0, 'nothing written');
    t.notOk(agent.ready().ok, 'not ready');
    if (stopBeforeReady) {
      const stopping = agent.stop();
      open();
      await stopping;
      t.equal(flushes, 0, 'stopped while opening: never flushed');
      t.equal(dp.reconciles.length, 0, 'stopped while opening: nothing written');
    } else {
      open();
      for (let i = 0; i < 100 && dp.reconciles.length === 0; i++) { await new Promise((r) => setTimeout(r, 10)); await agent.settled(); }
      t.equal(dp.reconciles.length, 1, 'one reconcile once the dataplane is ready');
      t.same(dp.reconciles[0]!.routing.pools.map((p) => p.name), ['p1']);
      t.ok(agent.ready().ok, agent.ready().detail);
      await agent.stop();
    }
    return { calc, dp };
  };
  await run(false);
  await run(true);
});

t.test('after the first reconcile only, the agent runs its after-sync step once it is ready, and exports its duration', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const writer = new EmbeddedDatastore({ dir });
  t.teardown(() => writer.close());
  const client = new ResourceClient(writer);
  await client.create(pool('p1', '192.168.0.0/16') as never);
  const dp = new RecordingDataplane();
  dp.failNext = 1; // the first reconcile fails: the step waits for the one that succeeds
  const metrics = new NodeMetrics(false);
  const calls: { readyAtCall: boolean; reconciles: number }[] = [];
  let agent: Agent | undefined;
  agent = new Agent({ nodeName: 'n1', datastore: new EmbeddedDatastore({ dir }), calc: new RecordingCalc(), dataplane: dp, log: silentLogger, metrics,
    afterFirstSync: () => {
      calls.push({ readyAtCall: agent!.ready().ok, reconciles: dp.reconciles.length });
      return 12.5;
    } });
  await agent.start();
  for (let i = 0; i < 200 && calls.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  await agent.settled();
  t.same(calls, [{ readyAtCall: true, reconciles: 1 }], 'called once, after the successful reconcile, the agent ready');
  t.match(await metrics.registry.getSingleMetricAsString('tortie_node_heap_compact_seconds'), /tortie_node_heap_compact_seconds 0\.0125\b/);
  dp.failNext = 1;
  await client.create(pool('p2', '10.10.0.0/16') as never);
  for (let i = 0; i < 200 && dp.reconciles.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  await agent.settled();
  t.equal(dp.reconciles.length, 2, 'a later reconcile (after a failed apply)');
  t.equal(calls.length, 1, 'does not run the step again');
  await agent.stop();
});

t.test('the agent records its start-up phases itself, in order, once each, the kernel written only after a successful reconcile', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const writer = new EmbeddedDatastore({ dir });
  t.teardown(() => writer.close());
  const client = new ResourceClient(writer);
  for (let i = 0; i < 5; i++) await client.create(pool(`p${i}`, `10.${i}.0.0/16`) as never);
  const metrics = new NodeMetrics(false);
  const phases = async (): Promise<Record<string, { wall: number; cpu: number; js: number }>> => {
    const text = await metrics.registry.metrics();
    const out: Record<string, { wall: number; cpu: number; js: number }> = {};
    for (const m of text.matchAll(/^tortie_node_startup_phase_seconds\{phase="([a-z_]+)"\} (\S+)$/gm)) {
      const cpu = new RegExp(`^tortie_node_startup_phase_cpu_seconds\\{phase="${m[1]}"\\} (\\S+)$`, 'm').exec(text);
      const js = new RegExp(`^tortie_node_startup_phase_js_thread_cpu_seconds\\{phase="${m[1]}"\\} (\\S+)$`, 'm').exec(text);
      out[m[1]!] = { wall: Number(m[2]), cpu: Number(cpu?.[1]), js: Number(js?.[1]) };
    }
    return out;
  };
  const seenAtReconcile: string[][] = [];
  const dp = new RecordingDataplane();
  dp.failNext = 1;
  const orig = dp.reconcile.bind(dp);
  dp.reconcile = async (s) => { seenAtReconcile.push(Object.keys(await phases()).sort()); return orig(s); };
  const calc = new RecordingCalc();
  const agent = new Agent({ nodeName: 'n1', datastore: new EmbeddedDatastore({ dir }), calc, dataplane: dp, log: silentLogger, metrics,
    health: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => agent.stop());
  await agent.start();
  t.same(Object.keys(await phases()).sort(), ['http_up', 'in_sync', 'listed'], 'in sync once start() resolves: listed and fed, nothing compiled yet');
  t.equal(calc.live.size, 5, 'every listed item was fed before in_sync');
  for (let i = 0; i < 400 && !agent.ready().ok; i++) await new Promise((r) => setTimeout(r, 25));
  await agent.settled();
  t.ok(agent.ready().ok, agent.ready().detail);
  t.same(seenAtReconcile, [['compiled', 'http_up', 'in_sync', 'listed'], ['compiled', 'http_up', 'in_sync', 'listed']],
    'each reconcile runs after compiled, and the failed one did not record the kernel as written');
  const p = await phases();
  const order = ['http_up', 'listed', 'in_sync', 'compiled', 'kernel_written'];
  t.same(Object.keys(p).sort(), [...order].sort(), 'kernel_written after the successful reconcile');
  for (let i = 1; i < order.length; i++) {
    t.ok(p[order[i]!]!.wall >= p[order[i - 1]!]!.wall, `${order[i]} ends after ${order[i - 1]} (wall)`);
    t.ok(p[order[i]!]!.cpu >= p[order[i - 1]!]!.cpu, `${order[i]} ends after ${order[i - 1]} (CPU)`);
    t.ok(p[order[i]!]!.js >= p[order[i - 1]!]!.js, `${order[i]} ends after ${order[i - 1]} (JS thread's CPU)`);
  }
  // The JS thread's CPU is part of the process's (10 ms ticks: allow one tick of rounding).
  for (const k of order) t.ok(Number.isFinite(p[k]!.js) && p[k]!.js <= p[k]!.cpu + 0.011, `${k}: JS thread's CPU ${p[k]!.js} s within the process's ${p[k]!.cpu} s`);
  t.ok(p.http_up!.wall > 0 && p.http_up!.cpu > 0, 'since process start');
  const text = await metrics.registry.metrics();
  t.match(text, /^felix_calc_graph_updates_processed 5$/m, 'every listed item counted');
  t.match(text, /^felix_calc_graph_update_time_seconds_count 1$/m, 'the first list timed as one batch');
  // A later change is a new batch; it records no start-up phase again.
  const before = JSON.stringify(p);
  await client.create(pool('p9', '10.9.0.0/16') as never);
  for (let i = 0; i < 200 && !calc.live.has('IPPool/p9'); i++) await new Promise((r) => setTimeout(r, 10));
  await agent.settled();
  const after = await metrics.registry.metrics();
  t.match(after, /^felix_calc_graph_updates_processed 6$/m);
  t.match(after, /^felix_calc_graph_update_time_seconds_count 2$/m, 'one watch response, one more batch');
  t.equal(JSON.stringify(await phases()), before, 'phases are recorded once');
});

t.test('the agent reads a stored value without copying it: the value is left as it was, the checked resource aliases none of it', async (t) => {
  const value = {
    apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy',
    metadata: { name: 'p', labels: { a: 'b' }, annotations: { 'projectcalico.org/metadata': '{}', keep: 'x' } },
    spec: { selector: 'a == "b"', ingress: [{ action: 'Allow', source: { nets: ['10.0.0.0/8'] } }], types: ['Ingress'] },
  };
  const before = JSON.stringify(value);
  const view = resourceViewOfKv({ key: keyOf('GlobalNetworkPolicy', 'p'), value: value as never, createRevision: 3, modRevision: 7, version: 2 });
  const checked = checkResource(view);
  t.equal(checked.problems, undefined, JSON.stringify(checked.problems));
  t.equal(JSON.stringify(value), before, 'the stored value is unchanged');
  t.equal(checked.resource!.metadata.resourceVersion, '7');
  t.same(checked.resource!.metadata.annotations, { keep: 'x' }, "Calico's metadata annotation dropped, as resourceFromKv does");
  const objectsOf = (o: unknown, into = new Set<unknown>()): Set<unknown> => {
    if (o !== null && typeof o === 'object') { into.add(o); for (const v of Object.values(o)) objectsOf(v, into); }
    return into;
  };
  const stored = objectsOf(value);
  t.equal([...objectsOf(checked.resource)].filter((o) => stored.has(o)).length, 0, 'no object of the stored value in the resource');
  for (const bad of [null, 'text', 42, [1, 2]]) {
    const c = checkResource(resourceViewOfKv({ key: 'k', value: bad as never, createRevision: 1, modRevision: 1, version: 1 }));
    t.ok(c.problems !== undefined, `a stored ${JSON.stringify(bad)} is refused (treated as absent), not thrown`);
  }
});

t.test('a dataplane at its last load (lastLoad before ready): the first snapshot is compiled meanwhile, nothing is written until ready, later changes follow as deltas', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const writer = new EmbeddedDatastore({ dir });
  t.teardown(() => writer.close());
  const client = new ResourceClient(writer);
  await client.create(pool('p1', '192.168.0.0/16') as never);
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  let last!: () => void;
  const lastLoad = new Promise<void>((r) => (last = r));
  const dp = Object.assign(new RecordingDataplane(), { ready: () => opened, lastLoad: () => lastLoad });
  const calc = new RecordingCalc();
  let flushes = 0;
  const flush = calc.flush.bind(calc);
  calc.flush = () => { flushes++; return flush(); };
  const agent = new Agent({ nodeName: 'n1', datastore: new EmbeddedDatastore({ dir }), calc, dataplane: dp, log: silentLogger, metrics: new NodeMetrics(false) });
  t.teardown(() => agent.stop());
  await agent.start();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(flushes, 0, 'in sync, earlier loads still running: no flush yet');
  last();
  for (let i = 0; i < 200 && flushes === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(flushes, 1, 'compiled as soon as the last load started');
  t.equal(dp.reconciles.length, 0, 'nothing written before ready');
  t.notOk(agent.ready().ok, 'not ready');
  // A change after the compile: not in the snapshot, applied as a delta after the reconcile.
  await client.create(pool('p2', '10.2.0.0/16') as never);
  for (let i = 0; i < 200 && !calc.live.has('IPPool/p2'); i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 30));
  t.equal(flushes, 1, 'no second flush while the first reconcile waits');
  open();
  for (let i = 0; i < 200 && !(dp.reconciles.length === 1 && dp.deltas.flat().includes('+IPPool/p2')); i++) { await new Promise((r) => setTimeout(r, 10)); await agent.settled(); }
  t.equal(dp.reconciles.length, 1, 'one reconcile once ready');
  t.same(dp.reconciles[0]!.routing.pools.map((p) => p.name), ['p1'], 'the snapshot compiled before ready');
  t.same(dp.deltas.flat(), ['+IPPool/p2'], 'the later change as a delta after it');
  t.ok(agent.ready().ok, agent.ready().detail);
});

t.test('lastLoad after ready changes nothing: the compile follows ready', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const writer = new EmbeddedDatastore({ dir });
  t.teardown(() => writer.close());
  await new ResourceClient(writer).create(pool('p1', '192.168.0.0/16') as never);
  const order: string[] = [];
  const dp = Object.assign(new RecordingDataplane(), { ready: async () => { order.push('ready'); }, lastLoad: () => new Promise<void>(() => undefined) });
  const calc = new RecordingCalc();
  const snap = calc.snapshot.bind(calc);
  calc.snapshot = () => { order.push('compiled'); return snap(); };
  const agent = new Agent({ nodeName: 'n1', datastore: new EmbeddedDatastore({ dir }), calc, dataplane: dp, log: silentLogger, metrics: new NodeMetrics(false) });
  t.teardown(() => agent.stop());
  await agent.start();
  for (let i = 0; i < 200 && dp.reconciles.length === 0; i++) { await new Promise((r) => setTimeout(r, 10)); await agent.settled(); }
  t.same(order, ['ready', 'compiled'], 'a last load that never starts does not hold the reconcile');
  t.equal(dp.reconciles.length, 1);
});
