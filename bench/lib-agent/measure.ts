/**
 * The measurement phase of the agent benchmark, for one datastore backend. Runs inside the
 * node's network namespace (entered with `nsenter --net`, so bpffs stays visible), where the
 * agent, the datastore (etcd on 127.0.0.1, or the embedded store's directory) and this writer
 * all meet:
 *
 *   start backend ─> bulk-load fixtures (+ probe policy = Allow) ─> spawn tortie-node
 *     ─> initial sync = spawn → first /readyz 200; RSS from /proc/<pid>/status
 *     ─> prober in the client namespace (a new connection every intervalMs)
 *     ─> N toggles Deny ↔ Allow through ResourceClient.apply (what tortiectl calls), each held
 *        until the probes show the new verdict for `holdMs`; then M toggles by spawning
 *        `tortiectl apply -f` (process start included)
 *     ─> analyse (latency.ts), RSS again, stop everything it started.
 *
 * Contract: returns the figures; never asserts a goal. Every process it starts is stopped before
 * it returns or throws (the outer process additionally kills whatever is left in the
 * namespaces and removes the work directory and pins).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { EmbeddedDatastore, openDatastore, type Datastore } from '../../src/datastore';
import { ResourceClient } from '../../src/client/resources';
import type { Resource } from '../../src/model';
import { EtcdCluster, freePort } from '../../src/testbed/etcd';
import { BENCH_NODE, NODE_ADDRESS, PROBE_PORT, PROBE_SERVER, floodPolicy, generateFixtures, probePolicy, type FixtureScale } from './fixtures';
import { ProbeStream, analyse, heldSince, parseGcTrace, promValue, summarize, type Summary, type Toggle, type ToggleResult } from './latency';
import { agentCommand } from '../../src/node/launch';
import { BpfMap } from '../../src/dataplane/native';
import { SIZED_MAPS, SIZED_MAP_KEYS } from '../../src/dataplane/bpf/map-sizes';
import { STARTUP_PHASES, type StartupPhase } from '../../src/node/metrics';

/** The agent's own start-up phase stamps from a /metrics text (ms since its process started). */
export function startupPhases(metrics: string): Partial<Record<StartupPhase, { wallMs: number; cpuMs: number; jsCpuMs?: number }>> {
  const out: Partial<Record<StartupPhase, { wallMs: number; cpuMs: number; jsCpuMs?: number }>> = {};
  for (const phase of STARTUP_PHASES) {
    const wall = promValue(metrics, `tortie_node_startup_phase_seconds{phase="${phase}"}`);
    const cpu = promValue(metrics, `tortie_node_startup_phase_cpu_seconds{phase="${phase}"}`);
    const js = promValue(metrics, `tortie_node_startup_phase_js_thread_cpu_seconds{phase="${phase}"}`);
    if (wall !== undefined && cpu !== undefined) out[phase] = { wallMs: wall * 1000, cpuMs: cpu * 1000, ...(js !== undefined ? { jsCpuMs: js * 1000 } : {}) };
  }
  return out;
}

export const ROOT = resolve(__dirname, '../../..');
const CTL_BIN = join(ROOT, 'bin/tortiectl.js');
const PROBER = join(__dirname, 'prober.js');
const FLOODER = join(__dirname, 'flooder.js');

export type BackendName = 'embedded' | 'etcd';

export interface MeasureConfig {
  backend: BackendName;
  workDir: string;
  pinRoot: string;
  clientNs: string;
  serverNs: string;
  scale: FixtureScale;
  toggles: number;
  cliToggles: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  /** How long the new verdict must hold before the next toggle. */
  holdMs: number;
  /** Give up on a toggle after this long (it is then reported as not enforced). */
  toggleTimeoutMs: number;
  loadConcurrency: number;
  /** Run the prober at real-time priority (chrt -f 10) so its send stamps stay tight under load. */
  realtimeProber: boolean;
  /** Write a V8 heap snapshot of the agent into this directory after the toggles. */
  heapSnapshotDir?: string;
  /** Extra Node/V8 flags for the agent process. */
  agentNodeFlags?: string[];
  /**
   * Event budgets (docs/security.md): during the toggles, a hostile workload (the probe client's namespace) floods
   * new denied UDP flows at the server (flooder.ts, at most `floodPps` datagrams/s, 0 = as fast
   * as it can), with the flood policy (fixtures.floodPolicy) loaded. Undefined = no flood.
   */
  flood?: { pps: number };
  /** The agent's --log-level (default warn; the flood run uses info, a node's default, since
   *  logging each denied flow is what slowed the agent). */
  agentLogLevel?: string;
}

/** What the flood run saw: datagrams sent, and the agent's event metrics over the toggles. */
export interface FloodResult {
  sent: number;
  seconds: number;
  /** The agent's flow-event metrics, totals since it started (undefined: not exported). */
  eventsReceived?: number;
  eventsLogged?: number;
  eventsSuppressedKernel?: number;
  /** Lost in the kernel: the ring buffer was full. */
  eventsLost?: number;
  /** tortie_dropped_packets{reason="policy_deny"} delta. */
  policyDenyDrops?: number;
}

/** From /proc/PID/status: resident total, peak, and the anonymous (heaps) / file-backed (code) parts. */
export interface RssKb { rss: number; hwm: number; anon: number; file: number }

export interface AgentMemory { heapUsedMiB?: number; heapTotalMiB?: number; externalMiB?: number }

function memory(metrics: string): AgentMemory {
  const mib = (name: string) => {
    const v = promValue(metrics, `tortie_node_nodejs_${name}`);
    return v === undefined ? undefined : v / 1048576;
  };
  return { heapUsedMiB: mib('heap_size_used_bytes'), heapTotalMiB: mib('heap_size_total_bytes'), externalMiB: mib('external_memory_bytes') };
}

/** What the agent's own histograms saw between two scrapes: flushes, and their mean times. */
export interface AgentDelta { flushes: number; programmingMs?: number; applyMs?: number }

function agentDelta(before: string, after: string): AgentDelta | undefined {
  const d = (name: string) => {
    const a = promValue(after, name);
    const b = promValue(before, name);
    return a === undefined || b === undefined ? undefined : a - b;
  };
  const n = d('tortie_policy_programming_seconds_count');
  if (n === undefined) return undefined;
  const mean = (base: string) => {
    const c = d(`${base}_count`);
    const sum = d(`${base}_sum`);
    return c && sum !== undefined ? (sum * 1000) / c : undefined;
  };
  return { flushes: n, programmingMs: mean('tortie_policy_programming_seconds'), applyMs: mean('tortie_dataplane_apply_seconds') };
}

function mapEntries(metrics: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(/^tortie_bpf_map_entries\{map="([^"]+)"\} (\S+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

export interface ToggleRecord extends ToggleResult {
  via: 'api' | 'tortiectl';
  agent?: AgentDelta;
  /** The agent's GC pauses (V8 --trace-gc) overlapping [issued, enforced]. */
  gcPauseMs: number;
  /** The agent's RSS and V8 heap used once this toggle had settled (its own metrics). */
  rssMiB: number;
  heapUsedMiB?: number;
}

/** scavengeMs: pauses of young-generation collections; markCompacts: full collections. */
export interface GcSummary { collections: number; totalMs: number; maxMs: number; over50ms: number; scavengeMs: number; markCompacts: number }

export interface BackendResult {
  backend: BackendName;
  scale: FixtureScale;
  resources: number;
  loadMs: number;
  /** tortie-node spawn → first /readyz 200. */
  syncMs: number;
  /**
   * The agent's start-up phases as it recorded them (tortie_node_startup_phase_seconds and
   * _cpu_seconds, src/node/metrics.ts STARTUP_PHASES): when each ended, wall and process CPU
   * time since the agent process started (ms), and the agent's JS thread's own CPU (jsCpuMs,
   * _js_thread_cpu_seconds). Absent phases or fields: not reported (an older agent).
   */
  syncPhases: Partial<Record<StartupPhase, { wallMs: number; cpuMs: number; jsCpuMs?: number }>>;
  /** RSS once the agent's heap compaction after the sync is done (rssAtReady: at /readyz 200, before it). */
  rssAfterSync: RssKb;
  rssAtReady: RssKb;
  /** The agent's heap compaction (tortie_node_heap_compact_seconds) and ready → its end seen here. */
  heapCompact: { ms?: number; readyToDoneMs: number };
  rssAfterToggles: RssKb;
  toggles: ToggleRecord[];
  api: { latency?: Summary; write?: Summary; ackToEnforced?: Summary; notEnforced: number; flaps: number };
  cli: { latency?: Summary; notEnforced: number; errors: string[] };
  /** 1/5/15-minute load averages when this backend's run started and ended (noise indicator). */
  loadAvg: { atStart: number[]; atEnd: number[] };
  /** The agent's GC pauses (V8 --trace-gc) until ready, and from the heap compaction after it to the end of the toggles. */
  gc: { untilReady: GcSummary; toggles: GcSummary };
  /** wideStamps: probes whose send time is uncertain by more than 1 ms (maxStampGapMs the worst). */
  probes: { total: number; failedOther: number; wideStamps: number; maxStampGapMs: number; realtime: boolean };
  /**
   * The agent's own histograms over the toggle phase (mean per flush): change received →
   * kernel written (tortie_policy_programming_seconds), and the flush itself, calc flush plus
   * kernel writes (tortie_dataplane_apply_seconds). For attribution only; not the figure.
   */
  agentReported: {
    programming?: { meanMs: number; count: number };
    apply?: { meanMs: number; count: number };
    /** Where the RSS is: V8 heap used / total and memory held outside the heap (Buffers, addon). */
    memoryAfterSync: AgentMemory;
    memoryAfterToggles: AgentMemory;
    /** tortie_bpf_map_entries by map after the toggles (as of the agent's last housekeeping). */
    mapEntries: Record<string, number>;
  };
  agentLogTail: string;
  flood?: FloodResult;
}

const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type Progress = (msg: string) => void;

interface Backend {
  ds: Datastore;
  /** Flags that point tortie-node and tortiectl at this store. */
  flags: string[];
  stop(): Promise<void>;
}

async function startBackend(name: BackendName, workDir: string): Promise<Backend> {
  if (name === 'embedded') {
    const dir = join(workDir, 'store');
    const ds = new EmbeddedDatastore({ dir });
    return { ds, flags: ['--datastore-type', 'embedded', '--store-dir', dir], stop: () => ds.close() };
  }
  const etcd = await EtcdCluster.start(1);
  const endpoints = etcd.endpoints();
  const ds = openDatastore({ type: 'etcdv3', endpoints });
  return {
    ds, flags: ['--datastore-type', 'etcdv3', '--etcd-endpoints', endpoints.join(',')],
    stop: async () => { await ds.close().catch(() => undefined); await etcd.stop(); },
  };
}

/** Applies every resource, `concurrency` writes in flight. */
async function bulkLoad(client: ResourceClient, resources: readonly Resource[], concurrency: number, progress: Progress): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < resources.length) {
      const r = resources[next++]!;
      await client.apply(r as never);
      if (++done % 2000 === 0) progress(`  loaded ${done}/${resources.length}`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
}

/**
 * Entries in the pinned maps the agent sizes for the cluster (src/dataplane/bpf/map-sizes.ts),
 * counted in the kernel after the agent stopped (its datapath state stays pinned until the lab
 * goes): what the node needed, against each map's max_entries.
 */
function pinnedMapEntries(pinRoot: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of SIZED_MAP_KEYS) {
    const name = SIZED_MAPS[k].name;
    try {
      const m = BpfMap.openPinned(join(pinRoot, name));
      out[name] = m.keys().length;
      m.close();
    } catch { /* not pinned (the object that has it did not load) */ }
  }
  return out;
}

function readRss(pid: number): RssKb {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? NaN);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
}

function tail(s: string, n = 4000): string {
  return s.length > n ? s.slice(-n) : s;
}

function killGroup(p: ChildProcess | undefined, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (p?.pid !== undefined && p.exitCode === null && p.signalCode === null) {
    try { process.kill(-p.pid, sig); } catch { /* gone */ }
  }
}

function exited(p: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
  return new Promise((res) => {
    const timer = setTimeout(() => res(false), timeoutMs);
    p.once('exit', () => { clearTimeout(timer); res(true); });
  });
}

async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await sleep(stepMs);
  }
  return true;
}

/** SIGUSR2 → the agent (started with --heapsnapshot-signal) writes Heap.*.heapsnapshot; wait until its size settles. */
async function heapSnapshot(agent: ChildProcess, dir: string, progress: Progress): Promise<void> {
  const snaps = () => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot'));
  const before = new Set(snaps());
  agent.kill('SIGUSR2');
  let file: string | undefined;
  let size = -1;
  const deadline = performance.now() + 300_000;
  while (performance.now() < deadline) {
    await sleep(500);
    file ??= snaps().find((f) => !before.has(f));
    if (file === undefined) continue;
    const now = statSync(join(dir, file)).size;
    if (now === size && now > 0) {
      progress(`heap snapshot: ${join(dir, file)} (${(now / 1048576).toFixed(0)} MiB)`);
      return;
    }
    size = now;
  }
  progress('heap snapshot: none written within 300 s');
}

export async function measureBackend(cfg: MeasureConfig, progress: Progress): Promise<BackendResult> {
  mkdirSync(cfg.workDir, { recursive: true });
  const loadAtStart = loadavg();
  const children: ChildProcess[] = [];
  const backend = await startBackend(cfg.backend, cfg.workDir);
  let agentLog = '';
  try {
    const client = new ResourceClient(backend.ds);
    const fx = generateFixtures(cfg.scale);
    const resources: Resource[] = [fx.profile, ...fx.namespaces, ...fx.nodes, ...fx.policies, probePolicy('Allow'),
      ...(cfg.flood ? [floodPolicy()] : []), ...fx.endpoints];
    progress(`[${cfg.backend}] loading ${resources.length} resources (${fx.endpoints.length} endpoints, ${fx.policies.length} policies)`);
    const l0 = performance.now();
    // Both backends take concurrent writes (the embedded store commits them in groups, one
    // fdatasync per group): one write at a time took 8 minutes for Felix's scale.
    await bulkLoad(client, resources, cfg.loadConcurrency, progress);
    const loadMs = performance.now() - l0;
    progress(`[${cfg.backend}] loaded in ${(loadMs / 1000).toFixed(1)} s`);

    // Probe server in its workload namespace.
    const server = spawn('ip', ['netns', 'exec', cfg.serverNs, process.execPath, PROBER, 'serve', String(PROBE_PORT)], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    children.push(server);
    let serverOut = '';
    server.stdout!.on('data', (d) => { serverOut += String(d); });
    if (!(await waitFor(() => serverOut.includes('listening'), 10_000, 20))) throw new Error('probe server did not start');

    // The agent, in this (the node's) network namespace.
    const healthPort = await freePort();
    const t0 = performance.now();
    // --trace-gc: V8 prints each collection's pause on stdout; they are matched with toggles below.
    const snapFlags = cfg.heapSnapshotDir === undefined ? [] : ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${cfg.heapSnapshotDir}`];
    if (cfg.heapSnapshotDir !== undefined) mkdirSync(cfg.heapSnapshotDir, { recursive: true });
    const [node, ...agentArgv] = agentCommand(['run', '--nodename', BENCH_NODE, '--ip', NODE_ADDRESS, ...backend.flags,
      '--bpffs-root', cfg.pinRoot, '--run-dir', join(cfg.workDir, 'run'), '--cni-socket', 'none',
      '--health-port', String(healthPort), '--metrics-port', String(healthPort), '--log-level', cfg.agentLogLevel ?? 'warn'],
    ['--trace-gc', ...snapFlags, ...(cfg.agentNodeFlags ?? [])]);
    const agent = spawn(node!, agentArgv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.push(agent);
    const gcs: { endUs: number; kind: string; pauseMs: number }[] = [];
    let outBuf = '';
    agent.stdout!.on('data', (d) => {
      const at = nowUs();
      outBuf += String(d);
      let nl: number;
      while ((nl = outBuf.indexOf('\n')) >= 0) {
        const line = outBuf.slice(0, nl);
        outBuf = outBuf.slice(nl + 1);
        const gc = parseGcTrace(line);
        if (gc) gcs.push({ endUs: at, ...gc });
        else agentLog = tail(`${agentLog}${line}\n`, 64_000);
      }
    });
    agent.stderr!.on('data', (d) => { agentLog = tail(agentLog + String(d), 64_000); });
    // Ready = /readyz 200 (compiled and written to the kernel), polled every 25 ms. The phases
    // of the sync come from the agent itself (tortie_node_startup_phase_*: it records when each
    // ended, in wall and CPU time since its process started), read once it is ready: a poll
    // during the sync cannot be answered while the first flush holds the agent's event loop.
    let ready = false;
    while (!ready) {
      if (agent.exitCode !== null) throw new Error(`tortie-node exited (${agent.exitCode}) before ready:\n${tail(agentLog)}`);
      if (performance.now() - t0 > 600_000) throw new Error(`tortie-node not ready after 600 s:\n${tail(agentLog)}`);
      const status = await fetch(`http://127.0.0.1:${healthPort}/readyz`).then((r) => r.status, () => 0);
      ready = status === 200;
      if (!ready) await sleep(25);
    }
    const syncMs = performance.now() - t0;
    const readyUs = nowUs();
    const rssAtReady = readRss(agent.pid!);
    // The agent compacts its heap once after its first reconcile (src/node/heap.ts), right after
    // it reports ready: RSS after sync is read once that is done (up to 60 s) and settled.
    let heapCompactMs: number | undefined;
    let phaseText = '';
    for (const until = performance.now() + 60_000; performance.now() < until && agent.exitCode === null;) {
      const text = await fetch(`http://127.0.0.1:${healthPort}/metrics`).then((r) => r.text(), () => '');
      phaseText = text;
      const s = promValue(text, 'tortie_node_heap_compact_seconds') ?? 0;
      if (s > 0 || startupPhases(text).heap_compacted !== undefined) {
        heapCompactMs = s > 0 ? s * 1000 : undefined;
        break;
      }
      await sleep(100);
    }
    const phases = startupPhases(phaseText);
    const readyToCompactedMs = performance.now() - t0 - syncMs;
    const compactedUs = nowUs();
    // V8 returns the pages a compaction emptied from a background thread: RSS read 1 s later.
    if (heapCompactMs !== undefined) await sleep(1000);
    const rssAfterSync = readRss(agent.pid!);
    progress(`[${cfg.backend}] agent ready in ${(syncMs / 1000).toFixed(2)} s, RSS ${(rssAtReady.rss / 1024).toFixed(0)} MiB; heap compacted in ${heapCompactMs === undefined ? '—' : heapCompactMs.toFixed(0)} ms, RSS ${(rssAfterSync.rss / 1024).toFixed(0)} MiB`);

    // Prober; bounded by a generous duration, stopped explicitly below.
    const maxSeconds = Math.ceil((cfg.toggles + cfg.cliToggles + 2) * (cfg.toggleTimeoutMs + cfg.holdMs + 500) / 1000) + 60;
    const prober = spawn('ip', ['netns', 'exec', cfg.clientNs, ...(cfg.realtimeProber ? ['chrt', '-f', '10'] : []), process.execPath, PROBER, 'probe', PROBE_SERVER.ip, String(PROBE_PORT),
      String(cfg.probeIntervalMs), String(cfg.probeTimeoutMs), String(maxSeconds)], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    children.push(prober);
    const stream = new ProbeStream();
    prober.stdout!.on('data', (d) => stream.feed(String(d)));
    const holdUs = cfg.holdMs * 1000;
    const startUs = nowUs();
    if (!(await waitFor(() => heldSince(stream.sorted, startUs, true, holdUs), 60_000))) {
      throw new Error(`the probe flow never got through with the probe policy = Allow (${stream.sorted.length} probes, ${stream.failedOther} errors)\n${tail(agentLog)}`);
    }

    const metricsUrl = `http://127.0.0.1:${healthPort}/metrics`;
    const scrape = () => fetch(metricsUrl).then((r) => r.text(), () => '');
    // The flood (if any) starts before the first toggle and is bounded by the same duration as
    // the prober; stopped explicitly after the toggles.
    let flooder: ChildProcess | undefined;
    let floodOut = '';
    let floodT0 = 0;
    if (cfg.flood) {
      flooder = spawn('ip', ['netns', 'exec', cfg.clientNs, process.execPath, FLOODER, PROBE_SERVER.ip, String(maxSeconds), String(cfg.flood.pps)],
        { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
      children.push(flooder);
      flooder.stdout!.on('data', (d) => { floodOut += String(d); });
      floodT0 = performance.now();
      await sleep(1000); // the flood is in full swing before the first toggle
      progress(`[${cfg.backend}] flooding new denied UDP flows at the server during the toggles`);
    }
    const before = await scrape();
    const snaps: string[] = [before];
    const toggles: (Toggle & { via: 'api' | 'tortiectl' })[] = [];
    const settle = async (t: Toggle): Promise<void> => {
      await waitFor(() => heldSince(stream.sorted, t.issuedUs, t.wantOk, holdUs), cfg.toggleTimeoutMs);
      // Let probes still in flight report before the window closes; then a random pause so
      // toggles do not phase-lock with the agent's timers.
      await sleep(cfg.probeTimeoutMs + 20 + Math.random() * 100);
      // The agent's histograms after each toggle: their differences attribute each toggle's
      // time (scraped outside the measured window: the next toggle starts after this).
      snaps.push(await scrape());
    };
    let allow = true;
    for (let i = 0; i < cfg.toggles; i++) {
      allow = !allow;
      const issuedUs = nowUs();
      await client.apply(probePolicy(allow ? 'Allow' : 'Deny'));
      const t = { issuedUs, ackedUs: nowUs(), wantOk: allow, via: 'api' as const };
      toggles.push(t);
      await settle(t);
      if ((i + 1) % 10 === 0) progress(`[${cfg.backend}]   ${i + 1}/${cfg.toggles} toggles`);
    }
    const cliErrors: string[] = [];
    for (let i = 0; i < cfg.cliToggles; i++) {
      allow = !allow;
      const file = join(cfg.workDir, `probe-${allow ? 'allow' : 'deny'}.yaml`);
      writeFileSync(file, toYaml(probePolicy(allow ? 'Allow' : 'Deny')));
      const issuedUs = nowUs();
      const ctl = spawn(process.execPath, [CTL_BIN, 'apply', '-f', file, ...backend.flags], { stdio: ['ignore', 'pipe', 'pipe'] });
      let ctlOut = '';
      ctl.stdout!.on('data', (d) => { ctlOut += String(d); });
      ctl.stderr!.on('data', (d) => { ctlOut += String(d); });
      const code = await new Promise<number | null>((r) => ctl.once('exit', (c) => r(c)));
      if (code !== 0) {
        // Recorded, not fatal: the API toggles are the main figure and are already measured.
        cliErrors.push(`tortiectl apply exited ${code}: ${ctlOut.trim().slice(0, 500)}`);
        progress(`[${cfg.backend}] ${cliErrors[cliErrors.length - 1]}`);
        allow = !allow;
        await sleep(cfg.holdMs);
        continue;
      }
      const t = { issuedUs, ackedUs: nowUs(), wantOk: allow, via: 'tortiectl' as const };
      toggles.push(t);
      await settle(t);
    }
    const endUs = nowUs();
    const rssAfterToggles = readRss(agent.pid!);
    const after = await scrape();
    const delta = (name: string) => {
      const a = promValue(after, name);
      const b = promValue(before, name);
      return a === undefined || b === undefined ? undefined : a - b;
    };
    const meanMs = (base: string) => {
      const n = delta(`${base}_count`);
      const sum = delta(`${base}_sum`);
      return n && sum !== undefined ? { meanMs: (sum * 1000) / n, count: n } : undefined;
    };

    prober.stdin!.end();
    await exited(prober, 5000);
    let flood: FloodResult | undefined;
    if (flooder) {
      // SIGINT-free stop: closing stdin ends it; its last line is `sent N` only when it ran out
      // of time, so the count is estimated from the agent's deny counter otherwise.
      flooder.stdin!.end();
      await exited(flooder, 5000);
      const sentLine = /sent (\d+)/.exec(floodOut);
      flood = {
        sent: sentLine ? Number(sentLine[1]) : NaN, seconds: (performance.now() - floodT0) / 1000,
        // Totals since the agent started (its housekeeping may not have run before the flood).
        eventsReceived: promValue(after, 'tortie_flow_events{outcome="received"}'), eventsLogged: promValue(after, 'tortie_flow_events{outcome="logged"}'),
        eventsSuppressedKernel: promValue(after, 'tortie_flow_events{outcome="suppressed"}'), eventsLost: promValue(after, 'tortie_flow_events{outcome="lost"}'),
        policyDenyDrops: (promValue(after, 'tortie_dropped_packets{reason="policy_deny"}') ?? 0) - (promValue(before, 'tortie_dropped_packets{reason="policy_deny"}') ?? 0),
      };
    }
    if (cfg.heapSnapshotDir !== undefined) await heapSnapshot(agent, cfg.heapSnapshotDir, progress);
    // A pause is known by when its trace line arrived (≈ its end): [end − pause, end].
    const gcWithin = (fromUs: number, toUs: number) =>
      gcs.filter((g) => g.endUs >= fromUs && g.endUs - g.pauseMs * 1000 <= toUs).reduce((a, g) => a + g.pauseMs, 0);
    const results: ToggleRecord[] = analyse(stream.sorted, toggles, endUs).map((r, i) => ({
      ...r, via: toggles[i]!.via, agent: agentDelta(snaps[i] ?? '', snaps[i + 1] ?? ''),
      rssMiB: (promValue(snaps[i + 1] ?? '', 'tortie_node_process_resident_memory_bytes') ?? NaN) / 1048576,
      heapUsedMiB: memory(snaps[i + 1] ?? '').heapUsedMiB,
      gcPauseMs: gcWithin(r.issuedUs, r.enforcedUs ?? (toggles[i + 1]?.issuedUs ?? endUs)),
    }));
    const gcSummary = (sel: typeof gcs) => ({
      collections: sel.length, totalMs: sel.reduce((a, g) => a + g.pauseMs, 0), maxMs: Math.max(0, ...sel.map((g) => g.pauseMs)),
      over50ms: sel.filter((g) => g.pauseMs > 50).length,
      scavengeMs: sel.filter((g) => g.kind.startsWith('Scavenge')).reduce((a, g) => a + g.pauseMs, 0),
      markCompacts: sel.filter((g) => g.kind.startsWith('Mark')).length,
    });
    const api = results.filter((r) => r.via === 'api');
    const cli = results.filter((r) => r.via === 'tortiectl');
    const lat = (rs: ToggleRecord[]) => rs.filter((r) => r.latencyMs !== undefined).map((r) => r.latencyMs!);

    agent.kill('SIGTERM');
    if (!(await exited(agent, 15_000))) killGroup(agent);
    const pinned = pinnedMapEntries(cfg.pinRoot);
    return {
      backend: cfg.backend, scale: cfg.scale, resources: resources.length, loadMs, syncMs, syncPhases: phases, rssAfterSync, rssAtReady, heapCompact: { ms: heapCompactMs, readyToDoneMs: readyToCompactedMs }, rssAfterToggles,
      toggles: results,
      api: {
        latency: summarize(lat(api)), write: summarize(api.map((r) => r.writeMs)),
        ackToEnforced: summarize(api.filter((r) => r.enforcedUs !== undefined).map((r) => (r.enforcedUs! - r.ackedUs) / 1000)),
        notEnforced: api.filter((r) => r.latencyMs === undefined).length, flaps: api.reduce((a, r) => a + r.flaps, 0),
      },
      cli: { latency: summarize(lat(cli)), notEnforced: cli.filter((r) => r.latencyMs === undefined).length, errors: cliErrors },
      loadAvg: { atStart: loadAtStart, atEnd: loadavg() },
      gc: { untilReady: gcSummary(gcs.filter((g) => g.endUs <= readyUs)), toggles: gcSummary(gcs.filter((g) => g.endUs > compactedUs && g.endUs <= endUs)) },
      probes: { total: stream.sorted.length, failedOther: stream.failedOther, wideStamps: stream.wideStamps, maxStampGapMs: stream.maxGapUs / 1000, realtime: cfg.realtimeProber },
      agentReported: {
        programming: meanMs('tortie_policy_programming_seconds'), apply: meanMs('tortie_dataplane_apply_seconds'),
        memoryAfterSync: memory(before), memoryAfterToggles: memory(after), mapEntries: { ...mapEntries(after), ...pinned },
      },
      agentLogTail: tail(agentLog, 2000),
      flood,
    };
  } finally {
    // A failed run still stops the agent gracefully first, so what it writes at exit (a
    // --cpu-prof profile through --agent-node-flags, its last log lines) is not lost.
    const agentProc = children[1];
    if (agentProc !== undefined && agentProc.exitCode === null && agentProc.signalCode === null) {
      agentProc.kill('SIGTERM');
      await exited(agentProc, 15_000);
    }
    for (const c of children) killGroup(c);
    await backend.stop().catch(() => undefined);
  }
}
