/**
 * Policy-compiler benchmark (prints figures, asserts nothing):
 *   - initial compile of 10,000 endpoints (100 local) × 1,000 policies of 5 rules each (mixed
 *     selectors, namespace selectors, nets, port ranges, named ports, ICMP);
 *   - deltas: one remote label change, one local label change, one policy update = an edit of
 *     one rule (median of N), for any policy and for policies that are in a local table;
 *   - RSS and table entries per local endpoint.
 *
 *   npx tsc -p tsconfig.json && node --expose-gc dist/bench/compile-bench.js [endpoints] [policies] [locals] [repeats]
 *
 * TORTIE_BENCH_DIGEST=1 also prints a SHA-1 of every delta and the final snapshot (hashing is
 * then inside the timings): two compiler versions that print the same digest gave the same output.
 * TORTIE_BENCH_PROFILE=FILE writes a V8 CPU profile (.cpuprofile) of the deltas alone (after the
 * initial compile), for `node --cpu-prof`-style reading of where a delta's time goes;
 * TORTIE_BENCH_INITIAL_PROFILE=FILE one of the initial compile alone.
 * TORTIE_BENCH_INITIAL_HEAP_PROFILE=FILE: the same sampling heap profile of the initial compile.
 * TORTIE_BENCH_HEAP_PROFILE=FILE writes a V8 sampling heap profile (.heapprofile, every 16 KiB
 * allocated, objects collected since included) of the local-table edits alone: what they allocate.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { CalcGraph, compiledJson, type CompiledState } from '../src/calc';
import { encodeTable } from '../src/dataplane/bpf/encode';
import type { GlobalNetworkPolicy, NetworkPolicy, Resource, Rule, WorkloadEndpoint } from '../src/model';
import { median } from './lib/stats';

const N_EPS = Number(process.argv[2] ?? 10_000);
const N_POL = Number(process.argv[3] ?? 1_000);
const N_LOCAL = Number(process.argv[4] ?? 100);
const REPEATS = Number(process.argv[5] ?? 51);
/**
 * Mix: `k8s` (default) — 30 % GlobalNetworkPolicies selecting one app, the rest namespaced;
 * `broad` — 30 % GlobalNetworkPolicies, a third of them selecting by tier or `has(monitored)`
 * (10–20 % of all endpoints each): a stress case for table size.
 */
const MIX = process.argv[6] ?? 'k8s';
const V3 = 'projectcalico.org/v3' as const;

let seed = 12345;
function rand(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
}
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const TIERS = ['web', 'api', 'db', 'cache', 'queue'];
const ENVS = ['prod', 'staging', 'dev'];
const N_APPS = 200;
const N_TEAMS = 20;
const N_NS = 50;

/**
 * Endpoint i's /32: 192.168.0.0/16 holds the first 65,536; past that (Felix's 100,000-endpoint
 * scale) the benchmarking range 198.19.0.0/16 (never configured anywhere: this is a compile).
 */
function endpointAddress(i: number): string {
  if (i >= 131_072) throw new Error(`endpoint ${i}: at most 131,072 endpoints have an address`);
  const hi = i < 65_536 ? '192.168' : '198.19';
  const j = i & 65_535;
  return `${hi}.${j >> 8}.${j & 255}/32`;
}

function endpoint(i: number, labels?: Record<string, string>): WorkloadEndpoint {
  const ns = `ns${i % N_NS}`;
  const l = labels ?? {
    app: `app${int(N_APPS)}`,
    tier: pick(TIERS),
    env: pick(ENVS),
    team: `team${int(N_TEAMS)}`,
    ...(rand() < 0.1 ? { monitored: 'true' } : {}),
  };
  return {
    apiVersion: V3,
    kind: 'WorkloadEndpoint',
    metadata: { name: `pod${i}`, namespace: ns, labels: l },
    spec: {
      orchestrator: 'k8s',
      node: i < N_LOCAL ? 'node1' : `node${2 + (i % 50)}`,
      ipNetworks: [endpointAddress(i)],
      interfaceName: `cali${i}`,
      profiles: [`kns.${ns}`],
      ports: rand() < 0.5 ? [{ name: 'http', protocol: 'TCP', port: pick([80, 8080, 8000]) }] : [],
    },
  };
}

function net(): string {
  switch (int(3)) {
    case 0:
      return `10.${int(256)}.${int(256)}.0/24`;
    case 1:
      return `172.${16 + int(16)}.0.0/16`;
    default:
      return `192.168.${int(40)}.${int(8) * 32}/27`;
  }
}

/**
 * A rule's remote side (source on ingress, destination on egress) with destination ports: on
 * egress both are one `destination` object (two keys of one literal would keep only the last).
 */
function peerWithPorts(ingress: boolean, peer: NonNullable<Rule['source']>, ports: NonNullable<NonNullable<Rule['destination']>['ports']>): Pick<Rule, 'source' | 'destination'> {
  return ingress ? { source: peer, destination: { ports } } : { destination: { ...peer, ports } };
}

function rule(ingress: boolean): Rule {
  const peer = ingress ? 'source' : 'destination';
  switch (int(7)) {
    case 0:
      return { action: 'Allow', protocol: 'TCP', ...peerWithPorts(ingress, { selector: `app == "app${int(N_APPS)}"` }, [80, '8000:8100']) };
    case 1:
      return { action: 'Allow', protocol: 'TCP', ...peerWithPorts(ingress, { namespaceSelector: `team == "team${int(N_TEAMS)}"` }, [443]) };
    case 2:
      return { action: 'Deny', [peer]: { nets: [net(), net()] } };
    case 3:
      return { action: 'Allow', protocol: 'UDP', destination: { ports: [53], ...(ingress ? {} : { nets: [net()] }) } };
    case 4:
      return { action: 'Allow', protocol: 'ICMP', icmp: { type: 8 }, [peer]: { selector: `tier == "${pick(TIERS)}"` } };
    case 5:
      return { action: 'Allow', protocol: 'TCP', ...peerWithPorts(ingress, { selector: `tier == "${pick(TIERS)}" && env == "${pick(ENVS)}"` }, ['http', '9000:9100']) };
    default:
      return { action: pick(['Allow', 'Deny'] as const), protocol: 'TCP', [peer]: { nets: [net()] }, destination: { ports: [`${1000 + int(5000)}:${7000 + int(1000)}`] } };
  }
}

function policySelector(i: number): string {
  switch (i % 10) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
      return `app == "app${int(N_APPS)}"`;
    case 5:
    case 6:
      return `tier == "${pick(TIERS)}" && env == "${pick(ENVS)}"`;
    case 7:
      return `team == "team${int(N_TEAMS)}"`;
    case 8:
      return `tier == "${pick(TIERS)}"`;
    default:
      return 'has(monitored)';
  }
}

/** An edit of one rule: the policy's first ingress rule becomes a new nets + port rule. */
function editFirstRule(p: NetworkPolicy | GlobalNetworkPolicy, version: number): NetworkPolicy | GlobalNetworkPolicy {
  const q = structuredClone(p);
  q.spec.ingress![0] = { action: 'Allow', protocol: 'TCP', source: { nets: [net()] }, destination: { ports: [1000 + version] } };
  return q;
}

function policy(i: number): NetworkPolicy | GlobalNetworkPolicy {
  const ingress = [rule(true), rule(true), rule(true)];
  const egress = [rule(false), rule(false)];
  const spec = { order: int(1000), selector: policySelector(i), ingress, egress, types: ['Ingress', 'Egress'] as ('Ingress' | 'Egress')[] };
  const global = MIX === 'broad' ? i % 10 === 0 || i % 10 >= 8 : i % 10 < 3;
  if (global) return { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: `gnp${i}` }, spec };
  return { apiVersion: V3, kind: 'NetworkPolicy', metadata: { name: `np${i}`, namespace: `ns${i % N_NS}` }, spec: { ...spec, selector: spec.selector } };
}

function mb(n: number): string {
  return `${(n / 1048576).toFixed(0)} MB`;
}

/**
 * CPU ns of the calling (JavaScript) thread so far, from /proc/thread-self/schedstat (Linux; NaN
 * elsewhere). Process CPU also counts V8's GC helper and compiler threads, whose share moves with
 * the machine's load; the JS thread's CPU time is what the flush itself did (its own collections
 * included), the steadiest figure on a shared machine.
 */
function threadNs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]);
  } catch {
    return NaN;
  }
}

/**
 * Wall-clock ms of fn; its CPU ms (user + system) are added to `cpu` (the machine is shared), its
 * JS thread's CPU ms to `thread`.
 */
const cpu: number[] = [];
const thread: number[] = [];
function timeMs(fn: () => void): number {
  const th0 = threadNs();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  thread.push((threadNs() - th0) / 1e6);
  cpu.push((c.user + c.system) / 1000);
  return wall;
}

/**
 * TORTIE_BENCH_UNDO=R: each local label change and local-table edit is, after its timed flush,
 * undone and redone R times (2R more flushes of the same change, each way), so that every draw
 * gets a median of 2R + 1 samples: the draws are few and unlike each other (0.5–30 ms), and one
 * GC pause or one busy moment of the machine moves a median of single samples. The draws and the
 * state after each are those of a run without it (the generator is not called for the undo).
 */
const UNDO = Number(process.env.TORTIE_BENCH_UNDO ?? 0);

/** Wall, CPU and JS-thread CPU ms of fn, not recorded in `cpu` / `thread`. */
function sample(fn: () => void): { wall: number; cpu: number; thread: number } {
  const th0 = threadNs();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000, thread: (threadNs() - th0) / 1e6 };
}

/** Per draw (UNDO > 0): the medians of its samples. */
interface DrawFigures {
  wall: number[];
  cpu: number[];
  thread: number[];
}

/**
 * The draw's undo/redo samples (UNDO > 0): `undo` and `redo` feed the graph the previous and the
 * new version; the draw's own sample (its last entries in `walls` and `cpu`) is included.
 */
function undoRedo(g: CalcGraph, walls: number[], undo: () => void, redo: () => void, out: DrawFigures): void {
  if (UNDO <= 0) return;
  const w = [walls[walls.length - 1]!];
  const c = [cpu[cpu.length - 1]!];
  const th = [thread[thread.length - 1]!];
  for (let r = 0; r < UNDO; r++) {
    for (const step of [undo, redo]) {
      step();
      let d: ReturnType<CalcGraph['flush']> | undefined;
      const t = sample(() => (d = flushOf(g)));
      mirror?.apply(d!);
      w.push(t.wall);
      c.push(t.cpu);
      th.push(t.thread);
    }
  }
  out.wall.push(median(w));
  out.cpu.push(median(c));
  out.thread.push(median(th));

}

function lastCpu(n: number): number[] {
  return cpu.slice(cpu.length - n);
}

function lastThread(n: number): number[] {
  return thread.slice(thread.length - n);
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function entriesPerLocal(s: CompiledState): { cells: number; projection: number; srcPort: number } {
  const byId = new Map(s.tables.map((t) => [t.id, t]));
  let cells = 0;
  let projection = 0;
  let srcPort = 0;
  for (const e of s.endpoints) {
    for (const id of [e.tables.ingress, e.tables.egress]) {
      const t = byId.get(id)!;
      cells += t.cells.length;
      projection += t.projection.length / 2;
      srcPort += t.srcPortClasses.reduce((a, p) => a + p.ranges.length, 0);
    }
  }
  const n = Math.max(1, s.endpoints.length);
  return { cells: cells / n, projection: projection / n, srcPort: srcPort / n };
}

/**
 * Entries the agent writes into each policy map for this state (the tables encoded as the agent
 * encodes them), against the maps' default max_entries: what a node at this scale needs.
 */
function mapEntries(s: CompiledState, prefixes: number): string {
  let proj = 0;
  let pol = 0;
  let spc = 0;
  for (const t of s.tables) {
    const e = encodeTable(t, 1);
    proj += e.proj.length;
    pol += e.pol.length;
    spc += e.spc.length;
  }
  return `proj ${proj}, pol ${pol}, spc ${spc}, tbl ${s.tables.length}, cls4 ${prefixes}`;
}

const digest = process.env.TORTIE_BENCH_DIGEST === '1' ? createHash('sha1') : undefined;
const verbose = process.env.TORTIE_BENCH_VERBOSE === '1';

/**
 * The tables as the datapath holds them (TORTIE_BENCH_VERBOSE=1): each table's projection as a
 * global → local class map, and each local endpoint's table ids, kept by applying the deltas.
 */
class Mirror {
  private readonly proj = new Map<string, Map<number, number>>();
  private readonly eps = new Map<string, { ingress: string; egress: string }>();

  constructor(s: CompiledState) {
    for (const t of s.tables) this.proj.set(t.id, Mirror.map(t.projection));
    for (const e of s.endpoints) this.eps.set(e.key, e.tables);
  }

  private static map(p: Uint32Array): Map<number, number> {
    const m = new Map<number, number>();
    for (let i = 0; i < p.length; i += 2) m.set(p[i]!, p[i + 1]!);
    return m;
  }

  /**
   * Applies a delta; returns, per new table that replaces an endpoint's table, its projection
   * entries and how many of them a projection shared with the replaced table would have to
   * change: with the new table's local classes numbered after the old ones (each old local class
   * keeps its number for the new local class most of its global classes go to), the global
   * classes (of either projection, absent = local class 0) that go elsewhere.
   */
  apply(d: ReturnType<CalcGraph['flush']>): { entries: number; differ: number }[] {
    const added = new Map(d.tablesAdded.map((t) => [t.id, Mirror.map(t.projection)]));
    for (const pa of d.projectionAdded) {
      const m = this.proj.get(pa.tableId)!;
      for (const e of pa.entries) m.set(e.globalClass, e.localClass);
    }
    for (const pr of d.projectionRemoved) {
      const m = this.proj.get(pr.tableId)!;
      for (const gc of pr.globalClasses) m.delete(gc);
    }
    const out: { entries: number; differ: number }[] = [];
    for (const e of d.endpointsUpserted) {
      const old = this.eps.get(e.key);
      for (const dir of ['ingress', 'egress'] as const) {
        const np = added.get(e.tables[dir]);
        const op = old !== undefined ? this.proj.get(old[dir]) : undefined;
        if (np === undefined || op === undefined) continue;
        // old local class → new local class → global classes going there
        const to = new Map<number, Map<number, number>>();
        for (const gc of new Set([...op.keys(), ...np.keys()])) {
          const a = op.get(gc) ?? 0;
          const b = np.get(gc) ?? 0;
          let m = to.get(a);
          if (m === undefined) to.set(a, (m = new Map()));
          m.set(b, (m.get(b) ?? 0) + 1);
        }
        let differ = 0;
        for (const m of to.values()) {
          let all = 0;
          let most = 0;
          for (const n of m.values()) {
            all += n;
            most = Math.max(most, n);
          }
          differ += all - most;
        }
        out.push({ entries: np.size, differ });
      }
    }
    for (const [id, m] of added) this.proj.set(id, m);
    for (const id of d.tablesRemoved) this.proj.delete(id);
    for (const e of d.endpointsUpserted) this.eps.set(e.key, e.tables);
    for (const k of d.endpointsRemoved) this.eps.delete(k);
    return out;
  }

  /** Throws unless the mirror holds exactly the state's tables, projections and endpoints' tables. */
  check(s: CompiledState): void {
    const live = new Set(s.endpoints.flatMap((e) => [e.tables.ingress, e.tables.egress]));
    for (const t of s.tables) {
      const m = this.proj.get(t.id);
      const want = Mirror.map(t.projection);
      if (m === undefined || m.size !== want.size || [...want].some(([gc, lc]) => m.get(gc) !== lc)) {
        throw new Error(`compile-bench: the deltas do not rebuild table ${t.id}'s projection`);
      }
    }
    for (const e of s.endpoints) {
      const got = this.eps.get(e.key);
      if (got?.ingress !== e.tables.ingress || got.egress !== e.tables.egress) throw new Error(`compile-bench: the deltas do not give ${e.key}'s tables`);
    }
    for (const id of this.proj.keys()) if (!live.has(id)) throw new Error(`compile-bench: table ${id} outlived its endpoints in the deltas`);
  }
}

let mirror: Mirror | undefined;

/** One line per delta (TORTIE_BENCH_VERBOSE=1). */
let predSeen = 0;
function describe(what: string, d: ReturnType<CalcGraph['flush']>, g: CalcGraph): void {
  if (!verbose) return;
  const pred = g.counters().tablesFromPredecessor - predSeen;
  predSeen += pred;
  const projAdd = d.projectionAdded.reduce((a, x) => a + x.entries.length, 0);
  const projDel = d.projectionRemoved.reduce((a, x) => a + x.globalClasses.length, 0);
  const tableProj = d.tablesAdded.reduce((a, t) => a + t.projection.length / 2, 0);
  const replaced = mirror?.apply(d) ?? [];
  const vsOld = replaced.length === 0 ? '' : `; against the replaced table, entries that differ after renumbering: ${replaced.map((r) => `${r.differ} of ${r.entries}`).join(', ')}`;
  process.stdout.write(`  ${what}: ${lastCpu(1)[0]!.toFixed(2)} ms CPU, classes +${d.classesAdded.length} -${d.classesRemoved.length}, ` +
    `tables +${d.tablesAdded.length} (${pred} from a predecessor; ${tableProj} projection entries), projection in live tables +${projAdd} -${projDel}${vsOld}\n`);

}

/**
 * The inspector's CPU profiler around one phase of the deltas (TORTIE_BENCH_PHASE_PROFILE=FILE,
 * TORTIE_BENCH_PROFILE_PHASE=remote|local|policy|edit: remote label changes, local label changes,
 * edits of any policy, edits of policies in local tables); synchronous.
 */
function phaseProfiler(): { phase(name: string): void; stop(): void } {
  const file = process.env.TORTIE_BENCH_PHASE_PROFILE;
  const only = process.env.TORTIE_BENCH_PROFILE_PHASE ?? '';
  if (file === undefined || file === '' || only === '') return { phase: () => undefined, stop: () => undefined };
  const s = new Session();
  s.connect();
  s.post('Profiler.enable');
  s.post('Profiler.setSamplingInterval', { interval: 200 });
  let running = false;
  const stop = (): void => {
    if (!running) return;
    running = false;
    s.post('Profiler.stop', (err, r) => {
      if (err === null) writeFileSync(file, JSON.stringify(r.profile));
      s.disconnect();
    });
  };
  const phase = (name: string): void => {
    if (running) stop();
    else if (name === only) {
      s.post('Profiler.start');
      running = true;
    }
  };
  return { phase, stop };
}

/** g.flush(), its delta hashed into the digest when asked for. */
function flushOf(g: CalcGraph): ReturnType<CalcGraph['flush']> {
  const d = g.flush();
  digest?.update(JSON.stringify(d, compiledJson));
  return d;
}

/**
 * The inspector's CPU profiler around the deltas (TORTIE_BENCH_PROFILE=FILE) or the initial
 * compile (TORTIE_BENCH_INITIAL_PROFILE=FILE); synchronous.
 */
function deltaProfiler(env = 'TORTIE_BENCH_PROFILE'): { stop(): void } {
  const file = process.env[env];
  if (file === undefined || file === '') return { stop: () => undefined };
  const s = new Session();
  s.connect();
  s.post('Profiler.enable');
  s.post('Profiler.setSamplingInterval', { interval: 200 });
  s.post('Profiler.start');
  return {
    stop: () => s.post('Profiler.stop', (err, r) => {
      if (err === null) writeFileSync(file, JSON.stringify(r.profile));
      s.disconnect();
    }),
  };
}

/** The inspector's sampling heap profiler (TORTIE_BENCH_HEAP_PROFILE=FILE); synchronous. */
function heapProfiler(env = 'TORTIE_BENCH_HEAP_PROFILE'): { stop(): void } {
  const file = process.env[env];
  if (file === undefined || file === '') return { stop: () => undefined };
  const s = new Session();
  s.connect();
  s.post('HeapProfiler.enable');
  s.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  return {
    stop: () => s.post('HeapProfiler.stopSampling', (err, r) => {
      if (err === null) writeFileSync(file, JSON.stringify(r.profile));
      s.disconnect();
    }),
  };
}

function main(): void {
  const resources: Resource[] = [];
  for (let n = 0; n < N_NS; n++) {
    resources.push({ apiVersion: V3, kind: 'Namespace', metadata: { name: `ns${n}`, labels: { team: `team${n % N_TEAMS}` } } });
    resources.push({ apiVersion: V3, kind: 'Profile', metadata: { name: `kns.ns${n}` }, spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] } });
  }
  const eps: WorkloadEndpoint[] = [];
  for (let i = 0; i < N_EPS; i++) eps.push(endpoint(i));
  const pols: (NetworkPolicy | GlobalNetworkPolicy)[] = [];
  for (let i = 0; i < N_POL; i++) pols.push(policy(i));
  resources.push(...pols, ...eps);
  gc();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;

  const g = new CalcGraph({ nodeName: 'node1' });
  const initialProfiler = deltaProfiler('TORTIE_BENCH_INITIAL_PROFILE');
  const initialHeapProfiler = heapProfiler('TORTIE_BENCH_INITIAL_HEAP_PROFILE');
  const initial = timeMs(() => {
    for (const r of resources) g.onUpdate(r);
    flushOf(g);
  });
  initialProfiler.stop();
  initialHeapProfiler.stop();
  const initialCpu = lastCpu(1)[0]!;
  gc();
  const rss1 = process.memoryUsage().rss;
  const heap1 = process.memoryUsage().heapUsed;
  const snap = g.snapshot();
  const st = g.stats();
  const per = entriesPerLocal(snap);
  if (verbose) mirror = new Mirror(snap);

  const profiler = deltaProfiler();
  const phases = phaseProfiler();
  phases.phase('remote');
  // remote label change: an endpoint on another node gets another app label
  const remote: number[] = [];
  for (let k = 0; k < REPEATS; k++) {
    const i = N_LOCAL + int(N_EPS - N_LOCAL);
    const e = endpoint(i, { ...eps[i]!.metadata.labels!, app: `app${int(N_APPS)}` });
    eps[i] = e;
    g.onUpdate(e);
    let d: ReturnType<CalcGraph['flush']> | undefined;
    remote.push(timeMs(() => (d = flushOf(g))));
    mirror?.apply(d!);
  }
  const remoteCpu = lastCpu(REPEATS);
  const remoteThread = lastThread(REPEATS);
  phases.phase('local');
  // local label change: one of this node's endpoints changes tier (policy set changes)
  const local: number[] = [];
  const localDraws: DrawFigures = { wall: [], cpu: [], thread: [] };
  for (let k = 0; k < REPEATS; k++) {
    const i = int(N_LOCAL);
    const before = eps[i]!;
    const e = endpoint(i, { ...eps[i]!.metadata.labels!, tier: pick(TIERS) });
    eps[i] = e;
    g.onUpdate(e);
    let d: ReturnType<CalcGraph['flush']> | undefined;
    local.push(timeMs(() => (d = flushOf(g))));
    describe('local label change', d!, g);
    undoRedo(g, local, () => g.onUpdate(before), () => g.onUpdate(e), localDraws);
  }
  const localCpu = lastCpu(REPEATS);
  const localThread = lastThread(REPEATS);
  phases.phase('policy');
  // policy update: one rule of one policy changes
  const policyMs: number[] = [];
  let tablesTouched = 0;
  for (let k = 0; k < REPEATS; k++) {
    const i = int(N_POL);
    const p = editFirstRule(pols[i]!, k + 1);
    pols[i] = p;
    g.onUpdate(p);
    let d: ReturnType<CalcGraph['flush']> | undefined;
    policyMs.push(timeMs(() => (d = flushOf(g))));
    mirror?.apply(d!);
    tablesTouched += d!.tablesAdded.length;
  }
  const policyCpu = lastCpu(REPEATS);
  const policyThread = lastThread(REPEATS);
  phases.phase('edit');
  // policy update of a policy that selects at least one local endpoint (its rules are in a table)
  const active = new Set(snap.rules.map((r) => r.policy?.name).filter((n): n is string => n !== undefined));
  const activeIdx = pols.map((p, i) => (active.has(p.metadata.name) ? i : -1)).filter((i) => i >= 0);
  const broadMs: number[] = [];
  const broadDraws: DrawFigures = { wall: [], cpu: [], thread: [] };
  let broadTables = 0;
  let broadClasses = 0;
  let broadProj = 0;
  const heapProf = heapProfiler();
  for (let k = 0; k < REPEATS && activeIdx.length > 0; k++) {
    const i = pick(activeIdx);
    const before = pols[i]!;
    const p = editFirstRule(pols[i]!, k + 1000);
    pols[i] = p;
    g.onUpdate(p);
    let d: ReturnType<CalcGraph['flush']> | undefined;
    broadMs.push(timeMs(() => (d = flushOf(g))));
    describe('local-table edit', d!, g);
    undoRedo(g, broadMs, () => g.onUpdate(before), () => g.onUpdate(p), broadDraws);
    broadTables += d!.tablesAdded.length;
    broadClasses += d!.classesAdded.length + d!.classesRemoved.length;
    broadProj += d!.projectionAdded.reduce((a, x) => a + x.entries.length, 0) + d!.projectionRemoved.reduce((a, x) => a + x.globalClasses.length, 0);
  }
  const broadCpu = lastCpu(broadMs.length);
  const broadThread = lastThread(broadMs.length);
  heapProf.stop();
  profiler.stop();
  phases.stop();
  // The verbose figures come from the mirror: it must hold what a fresh snapshot says.
  mirror?.check(g.snapshot());
  gc();
  const rss2 = process.memoryUsage().rss;
  const heap2 = process.memoryUsage().heapUsed;

  const out = (k: string, v: string): void => void process.stdout.write(`${k.padEnd(44)} ${v}\n`);
  out('endpoints / local / policies × rules, mix', `${N_EPS} / ${N_LOCAL} / ${N_POL} × 5, ${MIX}`);
  out('initial compile (wall / CPU)', `${initial.toFixed(0)} ms / ${initialCpu.toFixed(0)} ms`);
  out('RSS before / after compile / after deltas', `${mb(rss0)} / ${mb(rss1)} / ${mb(rss2)}`);
  out('V8 heap used before / after compile / after deltas', `${mb(heap0)} / ${mb(heap1)} / ${mb(heap2)} (after a full GC)`);
  out('selector atoms / CIDR atoms / named-port atoms', `${st.selectorAtoms} / ${st.cidrAtoms} / ${st.namedPortAtoms}`);
  out('global classes / LPM prefixes', `${st.classes} / ${st.prefixes}`);
  out('tables (shared by local endpoint-directions)', `${snap.tables.length} for ${snap.endpoints.length * 2}`);
  out('policies selecting a local endpoint', `${activeIdx.length}`);
  out('policy map entries (tortie_*_v1)', mapEntries(snap, st.prefixes));
  out('per local endpoint: cells / projection / sport', `${per.cells.toFixed(0)} / ${per.projection.toFixed(0)} / ${per.srcPort.toFixed(1)} (both directions)`);
  const fig = (wall: number[], c: number[], th: number[]): string => wall.length === 0 ? 'no samples' :
    `${median(wall).toFixed(2)} ms wall / ${median(c).toFixed(2)} ms CPU / ${median(th).toFixed(2)} ms JS thread (max ${Math.max(...wall).toFixed(1)} wall)`;
  out(`remote label change, median of ${REPEATS}`, fig(remote, remoteCpu, remoteThread));
  out(`local label change, median of ${REPEATS}`, fig(local, localCpu, localThread));
  // The heavy ones (atoms appearing or vanishing: hundreds of classes) apart: their count and CPU.
  const heavy = localCpu.filter((c) => c >= 50);
  out(`  of which heavy (>= 50 ms CPU): n / sum CPU`, `${heavy.length} / ${heavy.reduce((a, c) => a + c, 0).toFixed(0)} ms`);
  out(`policy update (any policy), median of ${REPEATS}`, `${fig(policyMs, policyCpu, policyThread)}; ${(tablesTouched / REPEATS).toFixed(1)} tables rebuilt/update`);
  if (digest !== undefined) {
    digest.update(JSON.stringify(snap, compiledJson));
    digest.update(JSON.stringify(g.snapshot(), compiledJson));
  }
  out(`policy update (policy in a local table), median of ${broadMs.length}`, `${fig(broadMs, broadCpu, broadThread)}; per update: ${(broadTables / Math.max(1, broadMs.length)).toFixed(1)} tables rebuilt, ${(broadClasses / Math.max(1, broadMs.length)).toFixed(0)} classes added/removed, ${(broadProj / Math.max(1, broadMs.length)).toFixed(0)} projection changes`);
  if (UNDO > 0) {
    const perDraw = (f: DrawFigures): string => `${median(f.wall).toFixed(2)} ms wall / ${median(f.cpu).toFixed(2)} ms CPU / ${median(f.thread).toFixed(2)} ms JS thread; ` +
      `light (< 50 ms CPU) ${f.cpu.filter((c) => c < 50).length}: median ${median(f.cpu.filter((c) => c < 50)).toFixed(2)} ms CPU; heavy: sum ${f.cpu.filter((c) => c >= 50).reduce((a, c) => a + c, 0).toFixed(0)} ms CPU`;
    out(`local label change, median over draws of each's median of ${2 * UNDO + 1}`, perDraw(localDraws));
    out(`local-table edit, median over draws of each's median of ${2 * UNDO + 1}`, perDraw(broadDraws));
    process.stdout.write(`  per draw, CPU ms: label ${localDraws.cpu.map((c) => c.toFixed(2)).join(' ')}\n  per draw, CPU ms: edit ${broadDraws.cpu.map((c) => c.toFixed(2)).join(' ')}\n`);
    process.stdout.write(`  per draw, JS thread ms: label ${localDraws.thread.map((c) => c.toFixed(2)).join(' ')}\n  per draw, JS thread ms: edit ${broadDraws.thread.map((c) => c.toFixed(2)).join(' ')}\n`);
  }
  if (digest !== undefined) out('output digest (deltas + snapshots)', digest.digest('hex'));
}

main();
