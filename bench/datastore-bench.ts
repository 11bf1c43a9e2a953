/**
 * Datastore benchmark: put / get / list / watch-latency figures for the embedded store and a
 * real single-member etcd (started on 127.0.0.1 with a temp dir, always killed), plus the cost
 * of a CLI-style "open the store, apply one resource, exit" in a fresh process.
 *
 *   node dist/bench/datastore-bench.js [--n 1000] [--json]
 *
 * Prints figures only (no assertions). Watch latency = from the start of the write to the event
 * reaching a watcher on a second client (embedded: a second store instance tailing the files,
 * as another process would; etcd: a second gRPC client).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedDatastore, type Datastore, type JsonValue } from '../src/datastore';
import { EtcdDatastore } from '../src/datastore/etcd';
import { EtcdCluster } from '../src/testbed/etcd';

const args = process.argv.slice(2);
const N = Number(args[args.indexOf('--n') + 1]) > 0 && args.includes('--n') ? Number(args[args.indexOf('--n') + 1]) : 1000;
const asJson = args.includes('--json');

interface Stats { n: number; median: number; p99: number; max: number; perSec: number }
function stats(samples: number[], wallMs?: number): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const total = wallMs ?? s.reduce((a, b) => a + b, 0);
  return { n: s.length, median: q(0.5), p99: q(0.99), max: s[s.length - 1], perSec: (s.length / total) * 1000 };
}
const fmt = (x: Stats) => `median ${x.median.toFixed(3)} ms  p99 ${x.p99.toFixed(3)} ms  max ${x.max.toFixed(2)} ms  ${x.perSec.toFixed(0)}/s (n=${x.n})`;
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** A Calico-sized resource (~600 bytes of JSON). */
function resource(i: number): JsonValue {
  return {
    apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint',
    metadata: { name: `node1-k8s-pod${i}-eth0`, namespace: 'default', labels: { app: `app${i % 50}`, tier: 'web', 'projectcalico.org/namespace': 'default' } },
    spec: { node: 'node1', orchestrator: 'k8s', pod: `pod${i}`, endpoint: 'eth0', interfaceName: `cali${i.toString(16).padStart(11, '0')}`,
      ipNetworks: [`192.168.${(i >> 8) & 255}.${i & 255}/32`], profiles: ['kns.default'], mac: 'ee:ee:ee:ee:ee:ee' },
  };
}

async function measure(name: string, open: () => Datastore): Promise<Record<string, Stats>> {
  const ds = open();
  const watcherDs = open();
  const out: Record<string, Stats> = {};
  const prefix = `/bench/${Date.now()}/`;

  let t0 = now();
  const put: number[] = [];
  for (let i = 0; i < N; i++) {
    const s = now();
    await ds.put(`${prefix}wep/${i}`, resource(i));
    put.push(now() - s);
  }
  out.put = stats(put, now() - t0);

  t0 = now();
  const conc: number[] = [];
  await Promise.all([0, 1, 2, 3].map(async (w) => {
    for (let i = 0; i < N / 4; i++) {
      const s = now();
      await ds.put(`${prefix}conc/${w}/${i}`, resource(i));
      conc.push(now() - s);
    }
  }));
  out['put x4 concurrent'] = stats(conc, now() - t0);

  const cas: number[] = [];
  let cur = await ds.create(`${prefix}cas`, { count: 0 });
  t0 = now();
  for (let i = 0; i < N / 2; i++) {
    const s = now();
    cur = await ds.update(`${prefix}cas`, { count: i + 1 }, { expectedRevision: cur.modRevision });
    cas.push(now() - s);
  }
  out['CAS update'] = stats(cas, now() - t0);

  const get: number[] = [];
  t0 = now();
  for (let i = 0; i < N; i++) {
    const s = now();
    await ds.get(`${prefix}wep/${(i * 7919) % N}`);
    get.push(now() - s);
  }
  out.get = stats(get, now() - t0);

  const list: number[] = [];
  for (let i = 0; i < 20; i++) {
    const s = now();
    const r = await ds.list(`${prefix}wep/`);
    if (r.items.length !== N) throw new Error(`list returned ${r.items.length}`);
    list.push(now() - s);
  }
  out[`list ${N}`] = stats(list);

  const lat: number[] = [];
  const pending = new Map<string, number>();
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const w = watcherDs.watch(`${prefix}watch/`, {
    onEvents: (events) => {
      const t = now();
      for (const e of events) {
        const s = pending.get(e.key);
        if (s !== undefined) { lat.push(t - s); pending.delete(e.key); }
      }
      if (lat.length >= Math.min(N, 500)) resolveDone();
    },
    onError: (e) => { throw e; },
  });
  await w.ready;
  for (let i = 0; i < Math.min(N, 500); i++) {
    const key = `${prefix}watch/${i}`;
    pending.set(key, now());
    await ds.put(key, resource(i));
    await new Promise((r) => setTimeout(r, 2)); // paced: latency, not queueing
  }
  await done;
  out['watch latency (write start → event at 2nd client)'] = stats(lat);
  await w.close();
  await watcherDs.close();
  await ds.close();
  if (!asJson) {
    console.log(`\n${name}`);
    for (const [k, v] of Object.entries(out)) console.log(`  ${k.padEnd(52)} ${fmt(v)}`);
  }
  return out;
}

/** A fresh node process that opens the store, applies one resource, closes — timed inside and out. */
function cliApply(dir: string): { inProcessMs: number; moduleLoadMs: number; wallMs: number } {
  const mod = path.resolve(__dirname, '../src/datastore');
  const script = `
    const t0 = process.hrtime.bigint();
    const { EmbeddedDatastore } = require(${JSON.stringify(mod)});
    const t1 = process.hrtime.bigint();
    const ds = new EmbeddedDatastore({ dir: ${JSON.stringify(dir)} });
    ds.put('/calico/resources/v3/projectcalico.org/ippools/bench-' + process.pid, { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', natOutgoing: true } })
      .then(() => ds.close()).then(() => {
        const t2 = process.hrtime.bigint();
        process.stdout.write(JSON.stringify({ load: Number(t1 - t0) / 1e6, apply: Number(t2 - t1) / 1e6 }));
      });`;
  const s = now();
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  const wallMs = now() - s;
  if (r.status !== 0) throw new Error(r.stderr);
  const j = JSON.parse(r.stdout) as { load: number; apply: number };
  return { inProcessMs: j.apply, moduleLoadMs: j.load, wallMs };
}

async function main(): Promise<void> {
  const results: Record<string, unknown> = { n: N, host: { cpus: os.cpus().length, kernel: os.release(), node: process.version } };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-ds-bench-'));
  let cluster: EtcdCluster | undefined;
  try {
    const dir = path.join(root, 'store');
    results.embedded = await measure(`embedded store (${dir}, ext4, fdatasync per write)`, () => new EmbeddedDatastore({ dir }));

    const cli: Record<string, unknown> = {};
    for (const existing of [1000, 10000]) {
      const d = path.join(root, `cli-${existing}`);
      const ds = new EmbeddedDatastore({ dir: d, maxLogBytes: 64 * 1024 * 1024 });
      for (let i = 0; i < existing; i++) await ds.put(`/calico/resources/v3/projectcalico.org/workloadendpoints/default/wep${i}`, resource(i));
      await ds.close();
      const runs = [0, 1, 2, 3, 4].map(() => cliApply(d));
      const med = (k: 'inProcessMs' | 'moduleLoadMs' | 'wallMs') => [...runs.map((r) => r[k])].sort((a, b) => a - b)[2];
      cli[`${existing} resources in the log`] = { openApplyCloseMs: med('inProcessMs'), moduleLoadMs: med('moduleLoadMs'), processWallMs: med('wallMs') };
      // The same store after a compaction (snapshot + empty log), as it normally is.
      const c = new EmbeddedDatastore({ dir: d });
      await c.compact();
      await c.close();
      const runs2 = [0, 1, 2, 3, 4].map(() => cliApply(d));
      const med2 = (k: 'inProcessMs' | 'moduleLoadMs' | 'wallMs') => [...runs2.map((r) => r[k])].sort((a, b) => a - b)[2];
      cli[`${existing} resources in a snapshot`] = { openApplyCloseMs: med2('inProcessMs'), moduleLoadMs: med2('moduleLoadMs'), processWallMs: med2('wallMs') };
    }
    results.cliApply = cli;
    if (!asJson) {
      console.log('\nCLI-style apply of one resource in a fresh process (embedded store; medians of 5)');
      for (const [k, v] of Object.entries(cli)) {
        const x = v as { openApplyCloseMs: number; moduleLoadMs: number; processWallMs: number };
        console.log(`  ${k.padEnd(34)} open+apply+close ${x.openApplyCloseMs.toFixed(1)} ms, datastore module load ${x.moduleLoadMs.toFixed(1)} ms, whole process ${x.processWallMs.toFixed(0)} ms`);
      }
    }

    cluster = await EtcdCluster.start(1);
    const endpoints = cluster.endpoints();
    results.etcd = await measure(`etcd 3.4 single member (${endpoints[0]}, data in ${os.tmpdir()})`, () => new EtcdDatastore({ endpoints }));
  } finally {
    await cluster?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  if (asJson) console.log(JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
