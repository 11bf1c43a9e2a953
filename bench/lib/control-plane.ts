/**
 * Control-plane benchmarks, all against real components:
 *   - compile: bench/compile-bench.ts (the policy compiler's own benchmark) run as a child
 *     process, its figures parsed;
 *   - the real `tortie-node` agent in a node namespace with an embedded store preloaded with
 *     `storeEndpoints` endpoints (most on other nodes) and `storePolicies` policies:
 *       · initial sync: agent spawn → every local endpoint present in the pinned endpoint map;
 *       · RSS of the agent after sync (VmRSS);
 *       · apply-to-enforced: a policy update written to the store → the first UDP probe packet
 *         it admits arrives at the server (probes every millisecond, each from a new source
 *         port so conntrack never carries an old verdict) — observed in the datapath;
 *       · `bulkEndpoints` new endpoints (interfaces already there) written to the store → all
 *         of them in the endpoint map.
 *
 * Contract: everything is created under a unique namespace prefix, store directory and bpffs
 * root, and removed on return, failure, exit or signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EmbeddedDatastore } from '../../src/datastore';
import { ResourceClient } from '../../src/client/resources';
import { BpfMap } from '../../src/dataplane/native';
import { MAP } from '../../src/dataplane/bpf/codecs';
import { type GlobalNetworkPolicy, type Resource, type Rule, type WorkloadEndpoint } from '../../src/model';
import { BenchTopology, NODE_IP } from './topology';
import { BENCH_NS, CLIENT, SERVER } from './scenarios';
import { addFigure, addSample, type RunResult, type FigureDef } from './results';
import { percentile } from './stats';
import { tempDir } from './tools';
import { parseCompileBench } from './children';
import { agentCommand } from '../../src/node/launch';
import { u32ToIpv4 } from '../../src/primitives';
import { pinRoot as newPinRoot, removePinRoot } from '../../src/testbed/pins';
import { k8sWep } from '../../src/testbed/fixtures';

export interface ControlSettings {
  storeEndpoints: number;
  storePolicies: number;
  localEndpoints: number;
  applyRepeats: number;
  bulkEndpoints: number;
  /** Arguments of bench/compile-bench.js: endpoints, policies, locals, repeats. */
  compileArgs: string[];
  /** Per compile-bench run; a run past it is killed and noted. */
  compileTimeoutMs: number;
}

const V3 = 'projectcalico.org/v3' as const;
const NODE = 'bench-cp';
const GATE_PORT = 9999;
const CONTROL_PORT = 9998;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const wep = (pod: string, node: string, ip: string, labels: Record<string, string>, iface: string): WorkloadEndpoint =>
  k8sWep({ node, pod, ip, iface, namespace: BENCH_NS, labels, profiles: [`kns.${BENCH_NS}`] });

/** Local endpoint i: 192.168.128.0/17; remote endpoint i: 192.168.0.0/17 (never configured anywhere). */
const localIp = (i: number) => u32ToIpv4(((192 << 24) | (168 << 16) | 0x8000) + 1 + i >>> 0);
const remoteIp = (i: number) => u32ToIpv4(((192 << 24) | (168 << 16)) + 1 + i >>> 0);

function loadPolicy(i: number): GlobalNetworkPolicy {
  const app = (k: number) => `app${k % 200}`;
  const ingress: Rule[] = [
    { action: 'Allow', protocol: 'TCP', source: { selector: `app == '${app(i + 1)}'` }, destination: { ports: [80, `${8000 + (i % 100)}:${8100 + (i % 100)}`] } },
    { action: 'Allow', protocol: 'UDP', destination: { ports: [53] } },
    { action: 'Deny', source: { nets: [`10.${i % 250}.${(i * 7) % 250}.0/24`] } },
    { action: 'Allow', protocol: 'ICMP', source: { selector: `tier == 't${i % 5}'` } },
  ];
  const egress: Rule[] = [{ action: 'Allow', protocol: 'TCP', destination: { selector: `app == '${app(i + 2)}'`, ports: [443] } }];
  return { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: `load-${i}` }, spec: { order: 1000 + i, selector: `app == '${app(i)}'`, types: ['Ingress', 'Egress'], ingress, egress } };
}

function gatePolicy(open: boolean): GlobalNetworkPolicy {
  return { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'bench-gate' },
    spec: { order: 1, selector: "app == 'server'", types: ['Ingress'], ingress: [
      { action: 'Allow', protocol: 'UDP', destination: { ports: [CONTROL_PORT] } },
      { action: open ? 'Allow' : 'Deny', protocol: 'UDP', destination: { ports: [GATE_PORT] } },
    ] } };
}

/**
 * Probe sender (client namespace): every millisecond one datagram to the gated port and one to
 * the control port (always allowed: proves the stream is alive), each from a fresh socket, so
 * every datagram is a new flow that takes the policy path.
 */
const SENDER = `const d=require('dgram');const [ip,gp,cp]=process.argv.slice(1);
const one=(p)=>{const s=d.createSocket('udp4');s.send(Buffer.from('p'),+p,ip,()=>s.close());};
setInterval(()=>{one(gp);one(cp);},1);`;

/**
 * Probe receiver (server namespace). All times on its own monotonic clock, so no clock is compared
 * across processes. stdin commands → stdout replies:
 *   quiet <ms> → "quiet" once the gated port has been silent for <ms> while the control port
 *                received ≥ 10 datagrams in that window ("stuck <n>" after 10 s);
 *   arm        → "armed"; then "first <ms>" at the first gated datagram, ms after the arm.
 */
const RECEIVER = `const d=require('dgram');const rl=require('readline');const [ip,gp,cp]=process.argv.slice(1);
let lastG=-1e9,ctl=[],armAt=0,fired=true;const now=()=>performance.now();const out=(x)=>process.stdout.write(x+'\\n');
const g=d.createSocket('udp4');g.on('message',()=>{const t=now();lastG=t;if(!fired){fired=true;out('first '+(t-armAt).toFixed(3));}});
const c=d.createSocket('udp4');c.on('message',()=>{ctl.push(now());if(ctl.length>20000)ctl=ctl.slice(-5000);});
let n=0;const up=()=>{if(++n===2)out('ready');};g.bind(+gp,ip,up);c.bind(+cp,ip,up);
rl.createInterface({input:process.stdin}).on('line',(l)=>{const [cmd,arg]=l.split(' ');
if(cmd==='arm'){armAt=now();fired=false;out('armed');}
if(cmd==='quiet'){const ms=+arg;const t0=now();const iv=setInterval(()=>{const t=now();const alive=ctl.filter((x)=>x>t-ms).length;
if(t-lastG>=ms&&alive>=10){clearInterval(iv);out('quiet');}else if(t-t0>10000){clearInterval(iv);out('stuck '+alive);}},5);}});`;

/** Lines of a child's stdout, awaited one reply at a time. */
class Replies {
  private readonly lines: string[] = [];
  private wake?: () => void;
  constructor(stream: NodeJS.ReadableStream) {
    createInterface({ input: stream }).on('line', (l) => { this.lines.push(l); this.wake?.(); });
  }
  async next(timeoutMs: number, what: string): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (this.lines.length === 0) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`probe receiver: no reply (${what}) within ${timeoutMs} ms`);
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, Math.min(left, 50)); });
    }
    return this.lines.shift()!;
  }
}



/** Runs node with args; resolves stdout and how it ended (a crash after printing still yields its figures). */
function runNode(args: string[], timeoutMs: number): Promise<{ out: string; failure?: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => { out += String(d); });
    c.stderr.on('data', (d) => { err = (err + String(d)).slice(-4000); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; c.kill('SIGKILL'); }, timeoutMs);
    c.on('exit', (code) => {
      clearTimeout(timer);
      const firstErr = err.split('\n').find((l) => /Error|error/.test(l))?.trim() ?? err.trim().split('\n')[0];
      resolve({ out, failure: timedOut ? `did not finish within ${timeoutMs / 1000} s (killed)` : code === 0 ? undefined : `exited ${code}: ${firstErr}` });
    });
  });
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

export async function runControlPlane(run: RunResult, s: ControlSettings, root: string, log: (m: string) => void): Promise<void> {
  const G = 'Control plane (tortie only)';
  const reps = Number((run.meta.settings.repeats as number | undefined) ?? 3);
  const fig = (d: Omit<FigureDef, 'group'>) => addFigure(run, { ...d, group: G, labels: { tortie: d.labels?.tortie ?? 'tortie' } });

  // ---- compiler (bench/compile-bench.ts)
  const [eps, pols, locals] = s.compileArgs;
  const fInit = fig({ id: 'compile-initial', title: `Initial compile: ${eps} endpoints (${locals} local) × ${pols} policies`, unit: 'ms', better: 'lower', goal: '< 3 s at 10,000 × 1,000' });
  const fDelta = fig({ id: 'compile-policy-delta', title: 'One policy update (delta), median', unit: 'ms', better: 'lower', goal: '< 5 ms' });
  const fRss = fig({ id: 'compile-rss', title: 'Compiler RSS after the initial compile', unit: 'MB', better: 'lower', goal: '< 500 MB' });
  const script = join(root, 'dist/bench/compile-bench.js');
  for (let rep = 0; rep < reps; rep++) {
    try {
      log(`control: compile-bench ${rep + 1}/${reps}`);
      const res = await runNode(['--expose-gc', script, ...s.compileArgs], s.compileTimeoutMs);
      if (res.failure) run.notes.push({ figure: fInit.id, text: `compile-bench run ${rep + 1} ${res.failure}${res.out ? ' (figures it printed before are kept)' : ''}` });
      const r = parseCompileBench(res.out);
      push(run, fInit, rep, r.initialMs);
      if (r.policyUpdateMs !== undefined) push(run, fDelta, rep, r.policyUpdateMs);
      if (r.rssAfterMb !== undefined) push(run, fRss, rep, r.rssAfterMb);
    } catch (e) {
      run.notes.push({ figure: fInit.id, text: `compile-bench failed: ${(e as Error).message.slice(0, 300)}` });
      break;
    }
  }

  // ---- the agent: one store, preloaded once; each round a fresh topology, pin root and agent.
  const fSync = fig({ id: 'agent-initial-sync', title: `Agent start → ${s.localEndpoints} local endpoints enforced (${s.storeEndpoints} endpoints, ${s.storePolicies} policies in the store)`, unit: 'ms', better: 'lower' });
  const fAgentRss = fig({ id: 'agent-rss', title: 'Agent RSS after sync', unit: 'MB', better: 'lower', goal: '< 300 MB at 10,000 endpoints × 1,000 policies' });
  const fApply = fig({ id: 'apply-to-enforced', title: 'Policy update in the store → first packet it admits reaches the server', unit: 'ms', better: 'lower', goal: 'median < 100 ms, p99 < 250 ms' });
  const fBulk = fig({ id: 'program-endpoints', title: `${s.bulkEndpoints} new endpoints written → all in the endpoint map`, unit: 'ms', better: 'lower' });

  const store = tempDir('tortie-bench-store-');
  const storeDir = store.path;
  const ds = new EmbeddedDatastore({ dir: storeDir });
  try {
    const client = new ResourceClient(ds);
    const w0 = performance.now();
    const n = await preload(client, s);
    log(`control: store preloaded with ${n} resources in ${((performance.now() - w0) / 1000).toFixed(1)} s`);
    const allApply: number[] = [];
    const allAck: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      log(`control: agent round ${rep + 1}/${reps}`);
      const r = await agentRound(s, root, storeDir, client, log).catch((e: Error) => {
        run.notes.push({ figure: fSync.id, text: `agent round ${rep + 1} failed: ${e.message.split('\n')[0]!.slice(0, 300)}` });
        return undefined;
      });
      if (!r) continue;
      push(run, fSync, rep, r.syncMs);
      push(run, fAgentRss, rep, r.rssMb);
      if (r.bulkMs !== undefined) push(run, fBulk, rep, r.bulkMs, { storeWriteMs: r.bulkWriteMs });
      // Every apply-to-enforced measurement is a sample (repeat numbers unique across rounds).
      r.applyMs.forEach((v, i) => push(run, fApply, rep * 1000 + i, v, { storeAckMs: r.ackMs[i] }));
      allApply.push(...r.applyMs);
      allAck.push(...r.ackMs);
    }
    if (allApply.length > 0) {
      run.notes.push({ figure: fApply.id, text: `${allApply.length} updates over ${reps} agent runs: median ${percentile(allApply, 50).toFixed(1)} ms, p99 ${percentile(allApply, 99).toFixed(1)} ms, max ${Math.max(...allApply).toFixed(1)} ms, timed by the receiver's own clock from just before the write. The store is the embedded one, on disk; the write itself (until fdatasync returned) took median ${percentile(allAck, 50).toFixed(1)} ms — the agent, watching the log, can enforce before the writer's fsync returns. Probes every 1 ms bound the resolution.` });
    }
  } finally {
    await ds.close().catch(() => undefined);
    store.done();
  }
}

/** Namespace, profile, probe workloads, the closed gate, local + remote endpoints, load policies. */
async function preload(client: ResourceClient, s: ControlSettings): Promise<number> {
  const base: Resource[] = [
    { apiVersion: V3, kind: 'Namespace', metadata: { name: BENCH_NS, labels: {} } } as Resource,
    { apiVersion: V3, kind: 'Profile', metadata: { name: `kns.${BENCH_NS}` }, spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] } } as Resource,
    wep('client', NODE, CLIENT.ip, { app: 'client' }, CLIENT.hostIf),
    wep('server', NODE, SERVER.ip, { app: 'server' }, SERVER.hostIf),
    gatePolicy(false),
  ];
  for (let i = 0; i < s.localEndpoints; i++) base.push(wep(`local-${i}`, NODE, localIp(i), { app: `app${i % 200}`, tier: `t${i % 5}` }, `calil${i}`));
  for (let i = 0; i < s.storeEndpoints - s.localEndpoints; i++) base.push(wep(`remote-${i}`, `bench-remote-${i % 50}`, remoteIp(i), { app: `app${i % 200}`, tier: `t${i % 5}` }, `calir${i}`));
  for (let i = 0; i < s.storePolicies; i++) base.push(loadPolicy(i));
  for (const r of base) await client.apply(r as never);
  return base.length;
}

function push(run: RunResult, f: FigureDef, repeat: number, value: number, extra?: Record<string, unknown>): void {
  addSample(run, f, 'tortie', repeat, value, undefined, extra);
}

interface RoundResult { syncMs: number; rssMb: number; applyMs: number[]; ackMs: number[]; bulkMs?: number; bulkWriteMs?: number }

async function agentRound(s: ControlSettings, root: string, storeDir: string, client: ResourceClient, log: (m: string) => void): Promise<RoundResult> {
  const pinRoot = newPinRoot('bench-cp', { create: false });
  // A private run dir: the agent's pid, state and CNI socket never land in the host's /run/tortie.
  const runDir = tempDir('tortie-bench-run-');
  const dropPins = () => { removePinRoot(pinRoot); runDir.done(); };
  process.once('exit', dropPins);
  let topo: BenchTopology | undefined;
  let agent: ChildProcess | undefined;
  const bulkNames: string[] = [];
  try {
    topo = await BenchTopology.create('benchcp');
    await topo.addHostEndpoints(s.localEndpoints, 'calil', localIp);
    await client.apply(gatePolicy(false) as never);

    // Agent.
    const healthPort = 20000 + Math.floor(Math.random() * 20000);
    const t0 = performance.now();
    agent = topo.node.spawn(agentCommand(['run', '--nodename', NODE, '--ip', `${NODE_IP}/24`,
      '--store-dir', storeDir, '--bpffs-root', pinRoot, '--run-dir', runDir.path, '--cni-socket', 'none',
      '--health-port', String(healthPort), '--metrics-port', '0', '--log-level', 'warn',
      '--policy-only']), { netOnly: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let agentErr = '';
    agent.stderr?.on('data', (d) => { agentErr = (agentErr + String(d)).slice(-4000); });
    const want = s.localEndpoints + 2;
    const epCount = await waitEndpoints(pinRoot, want, 120_000, agent, () => agentErr);
    const syncMs = performance.now() - t0;
    await sleep(500);
    const rssMbV = rssMb(agent.pid!);
    log(`control: agent synced ${epCount} endpoints in ${syncMs.toFixed(0)} ms, RSS ${rssMbV.toFixed(0)} MB`);

    // Apply-to-enforced.
    const rx = topo.server.ns.spawn([process.execPath, '-e', RECEIVER, SERVER.ip, String(GATE_PORT), String(CONTROL_PORT)], { stdio: ['pipe', 'pipe', 'ignore'] });
    const replies = new Replies(rx.stdout!);
    const say = (l: string) => rx.stdin!.write(`${l}\n`);
    if ((await replies.next(10_000, 'ready')) !== 'ready') throw new Error('probe receiver did not start');
    topo.client.ns.spawn([process.execPath, '-e', SENDER, SERVER.ip, String(GATE_PORT), String(CONTROL_PORT)], { stdio: 'ignore' });
    const applyMs: number[] = [];
    const ackMs: number[] = [];
    for (let k = 0; k < s.applyRepeats; k++) {
      await client.apply(gatePolicy(false) as never);
      say('quiet 300');
      const q = await replies.next(15_000, 'quiet');
      if (q !== 'quiet') throw new Error(`gate never closed (${q}): gated probes still arrive 10 s after the deny was written, or the probe stream stopped`);
      say('arm');
      if ((await replies.next(5000, 'armed')) !== 'armed') throw new Error('probe receiver did not arm');
      const w0 = performance.now();
      await client.apply(gatePolicy(true) as never);
      ackMs.push(performance.now() - w0);
      const first = await replies.next(10_000, 'first gated datagram after the allow');
      const m = /^first ([\d.]+)$/.exec(first);
      if (!m) throw new Error(`probe receiver: unexpected reply "${first}"`);
      applyMs.push(Number(m[1]));
    }

    // Bulk endpoints.
    let bulkMs: number | undefined;
    let bulkWriteMs: number | undefined;
    if (s.bulkEndpoints > 0) {
      const bulk = await topo.addHostEndpoints(s.bulkEndpoints, 'calib', (i) => localIp(s.localEndpoints + i));
      bulkNames.push(...bulk.names);
      await sleep(1000); // the agent sees the links and attaches fail-closed programs first
      const b0 = performance.now();
      for (let i = 0; i < s.bulkEndpoints; i++) {
        await client.apply(bulkWep(i, s, bulk.names[i]!) as never);
      }
      bulkWriteMs = performance.now() - b0;
      await waitEndpoints(pinRoot, want + s.bulkEndpoints, 300_000, agent, () => agentErr);
      bulkMs = performance.now() - b0;
      log(`control: ${s.bulkEndpoints} endpoints programmed in ${bulkMs.toFixed(0)} ms (store writes ${bulkWriteMs.toFixed(0)} ms)`);
    }
    return { syncMs, rssMb: rssMbV, applyMs, ackMs, bulkMs, bulkWriteMs };
  } finally {
    if (agent && agent.exitCode === null) {
      const gone = new Promise((r) => agent!.once('exit', r));
      agent.kill('SIGTERM');
      await Promise.race([gone, sleep(5000)]);
    }
    topo?.destroy();
    // The next round starts from the preloaded store: remove this round's endpoints.
    for (let i = 0; i < bulkNames.length; i++) {
      const w = bulkWep(i, s, bulkNames[i]!);
      await client.delete('WorkloadEndpoint', w.metadata.name, BENCH_NS).catch(() => undefined);
    }
    dropPins();
    process.removeListener('exit', dropPins);
  }
}

function bulkWep(i: number, s: ControlSettings, iface: string): WorkloadEndpoint {
  return wep(`bulk-${i}`, NODE, localIp(s.localEndpoints + i), { app: `app${i % 200}`, tier: `t${i % 5}` }, iface);
}

/** Polls the agent's pinned endpoint map until it holds `want` entries. */
async function waitEndpoints(pinRoot: string, want: number, timeoutMs: number, agent: ChildProcess, errs: () => string): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let map: BpfMap | undefined;
  try {
    for (;;) {
      if (agent.exitCode !== null) throw new Error(`agent exited (${agent.exitCode}): ${errs().slice(-600)}`);
      if (!map && existsSync(join(pinRoot, MAP.ep))) map = BpfMap.openPinned(join(pinRoot, MAP.ep));
      const n = map ? map.keys().length : 0;
      if (n >= want) return n;
      if (performance.now() > deadline) throw new Error(`only ${n}/${want} endpoints in the map after ${timeoutMs} ms: ${errs().slice(-600)}`);
      await sleep(10);
    }
  } finally {
    map?.close();
  }
}
