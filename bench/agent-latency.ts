/**
 * Agent benchmark: policy apply → enforcement latency as observed by the
 * datapath (real packets changing verdict), agent RSS and initial sync time, with 10,000
 * WorkloadEndpoints and 1,000 GlobalNetworkPolicies in the store and 100 local endpoints, on
 * both datastore backends. Prints figures; asserts nothing. --scale felix: Felix's design target
 * instead (100,000 endpoints, 100 local, 2,000 policies; bench/lib-agent/fixtures FELIX_SCALE).
 *
 *   node dist/bench/agent-latency.js [--quick] [--scale quick|full|felix] [--backends embedded,etcd] [--toggles N]
 *        [--cli-toggles M] [--interval-ms 5] [--timeout-ms 100] [--hold-ms 250] [--no-realtime]
 *        [--no-calc] [--out FILE] [--heap-snapshot DIR] [--agent-node-flags "FLAGS"] [--flood PPS] [--agent-log-level L]
 *
 * --flood PPS (docs/security.md, "Event budgets"): the same toggles while the probe client floods the server with
 * new denied UDP flows (bench/lib-agent/flooder.ts, at most PPS datagrams/s, 0 = as fast as it
 * can; a flood policy denies them). The goal is unchanged: apply → enforced median < 100 ms,
 * p99 < 250 ms. The table adds the flood's figures (datagrams sent, the agent's flow-event
 * metrics: received, logged, suppressed in the kernel, lost in a full ring). The agent logs at
 * info there (a node's default: each denied flow is a log line), at warn otherwise;
 * --agent-log-level overrides both.
 *
 * After the backends, unless --no-calc: the same fixtures through src/calc alone in a child
 * process (bench/lib-agent/calc-cost.ts --agent-sync: the first flush as the agent's, no delta
 * built), to attribute the agent's sync time, heap and per-toggle time to the calculation graph.
 *
 * Shape: this (outer) process builds the namespaces from the root namespace (bench/lib-agent/
 * lab.ts), then re-executes itself with `--inner` inside the node's network namespace
 * (`nsenter --net`, keeping the mount namespace so bpffs is visible), where the datastore, the
 * agent and the writer meet (bench/lib-agent/measure.ts). One fresh lab per backend. The outer
 * process removes everything on exit, failure and Ctrl-C: namespaces and every process in them,
 * the bpffs pin root, the work directory (the embedded store and etcd's data dir live there).
 * --heap-snapshot DIR: after the toggles, the agent writes a V8 heap snapshot into DIR (it is
 * started with --heapsnapshot-signal; bench/heap-summary.js reads the file).
 * --agent-node-flags: extra V8/Node flags for the agent process (space-separated), e.g. to see
 * what --max-semi-space-size does to its RSS.
 * Results: a table on stdout and JSON in bench/results/agent-latency-<date>-<time>.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { FELIX_SCALE, FULL_SCALE, QUICK_SCALE, generateFixtures, type FixtureScale } from './lib-agent/fixtures';
import { buildLab } from './lib-agent/lab';
import { measureBackend, ROOT, type BackendName, type BackendResult, type MeasureConfig } from './lib-agent/measure';
import { slope, type Summary } from './lib-agent/latency';
import type { CalcCost } from './lib-agent/calc-cost';
import { STARTUP_PHASES, type StartupPhase } from '../src/node/metrics';

interface Options {
  quick: boolean;
  /** Store size: quick (1,000 × 100), full (10,000 × 1,000, the default) or felix (100,000 × 2,000). */
  scale?: 'quick' | 'full' | 'felix';
  backends: BackendName[];
  toggles: number;
  cliToggles: number;
  intervalMs: number;
  timeoutMs: number;
  holdMs: number;
  out?: string;
  realtime: boolean;
  calc: boolean;
  heapSnapshotDir?: string;
  agentNodeFlags: string[];
  floodPps?: number;
  agentLogLevel?: string;
}

class UsageError extends Error {
  readonly code = 'ERR_BENCH_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, backends: ['embedded', 'etcd'], toggles: 0, cliToggles: 0, intervalMs: 5, timeoutMs: 100, holdMs: 250, realtime: true, calc: true, agentNodeFlags: [] };
  let toggles: number | undefined;
  let cli: number | undefined;
  const num = (v: string | undefined, flag: string, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`${flag}: "${v}" is not a number ≥ ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--quick': o.quick = true; break;
      case '--scale': {
        const v = argv[++i];
        if (v !== 'quick' && v !== 'full' && v !== 'felix') throw new UsageError(`--scale: "${v}" is not quick, full or felix`);
        o.scale = v;
        break;
      }
      case '--backends': {
        const list = (argv[++i] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        for (const b of list) if (b !== 'embedded' && b !== 'etcd') throw new UsageError(`--backends: "${b}" is not embedded or etcd`);
        if (list.length === 0) throw new UsageError('--backends: empty list');
        o.backends = list as BackendName[];
        break;
      }
      case '--toggles': toggles = Math.floor(num(argv[++i], a, 2)); break;
      case '--cli-toggles': cli = Math.floor(num(argv[++i], a, 0)); break;
      case '--interval-ms': o.intervalMs = num(argv[++i], a, 1); break;
      case '--timeout-ms': o.timeoutMs = num(argv[++i], a, 10); break;
      case '--hold-ms': o.holdMs = num(argv[++i], a, 10); break;
      case '--out': o.out = argv[++i]; break;
      case '--no-realtime': o.realtime = false; break;
      case '--no-calc': o.calc = false; break;
      case '--agent-log-level': o.agentLogLevel = argv[++i]; break;
      case '--flood': o.floodPps = Math.floor(num(argv[++i], a, 0)); break;
      case '--agent-node-flags': o.agentNodeFlags = (argv[++i] ?? '').split(/\s+/).filter(Boolean); break;
      case '--heap-snapshot': {
        const dir = argv[++i];
        if (!dir) throw new UsageError('--heap-snapshot: needs a directory');
        o.heapSnapshotDir = dir;
        break;
      }
      case '-h': case '--help':
        process.stdout.write('usage: agent-latency [--quick] [--scale quick|full|felix] [--backends embedded,etcd] [--toggles N] [--cli-toggles M] [--interval-ms 5] [--timeout-ms 100] [--hold-ms 250] [--no-realtime] [--no-calc] [--out FILE] [--heap-snapshot DIR] [--agent-node-flags "FLAGS"] [--flood PPS] [--agent-log-level L]\n');
        process.exit(0);
        break;
      default: throw new UsageError(`unknown argument "${a}"`);
    }
  }
  o.toggles = toggles ?? (o.quick ? 10 : 100);
  o.cliToggles = cli ?? (o.quick ? 2 : 4);
  return o;
}

const progress = (msg: string): void => { process.stderr.write(`${msg}\n`); };

const ms = (x: number | undefined, digits = 1): string => (x === undefined ? '—' : x.toFixed(digits));
const mib = (kb: number): string => (kb / 1024).toFixed(0);
const fmt = (s: Summary | undefined): string => (s ? `${ms(s.median)} / ${ms(s.p99)} / ${ms(s.min)} / ${ms(s.max)} (n=${s.n})` : '—');

/**
 * One start-up phase as the agent recorded it: when it ended (wall, the process's CPU time and, where
 * reported, its JS thread's own CPU, since process start) and the step from the phase that ended before it.
 */
function phaseCell(r: BackendResult, phase: StartupPhase): string {
  const p = r.syncPhases[phase];
  if (p === undefined) return '—';
  const before = Object.values(r.syncPhases).filter((q) => q.wallMs < p.wallMs).sort((a, b) => b.wallMs - a.wallMs)[0];
  const s = (x: number) => (x / 1000).toFixed(2);
  const js = (q: { jsCpuMs?: number }, minus?: { jsCpuMs?: number }): string =>
    (q.jsCpuMs === undefined || (minus !== undefined && minus.jsCpuMs === undefined) ? '' : ` / ${s(q.jsCpuMs - (minus?.jsCpuMs ?? 0))}`);
  return `${s(p.wallMs)} / ${s(p.cpuMs)}${js(p)}; ${before ? `${s(p.wallMs - before.wallMs)} / ${s(p.cpuMs - before.cpuMs)}${js(p, before)}` : '—'}`;
}

function table(results: BackendResult[]): string {
  const rows: [string, ...string[]][] = [
    ['', ...results.map((r) => r.backend)],
    ['store: endpoints / policies (× rules) / local', ...results.map((r) => `${r.scale.endpoints} / ${r.scale.policies} (×${r.scale.rulesPerPolicy}) / ${r.scale.localEndpoints}`)],
    ['fixture load (s, not a goal)', ...results.map((r) => (r.loadMs / 1000).toFixed(1))],
    ['initial sync: spawn → /readyz 200 (s)', ...results.map((r) => (r.syncMs / 1000).toFixed(2))],
    ...STARTUP_PHASES.map((phase): [string, ...string[]] => [`  agent's ${phase}: ends at wall / CPU [/ JS thread's CPU] (s); step from the phase before, the same`, ...results.map((r) => phaseCell(r, phase))]),
    ['agent RSS after sync / after toggles / peak (MiB); goal < 300 (< 500 at felix scale)', ...results.map((r) => `${mib(r.rssAfterSync.rss)} / ${mib(r.rssAfterToggles.rss)} / ${mib(r.rssAfterToggles.hwm)}`)],
    ['  RSS at /readyz 200, before the heap compaction (MiB) / compaction (ms) / ready → compacted (ms)', ...results.map((r) => `${mib(r.rssAtReady.rss)} / ${ms(r.heapCompact.ms, 0)} / ${ms(r.heapCompact.readyToDoneMs, 0)}`)],
    ['  RSS after toggles: anonymous / file-backed (MiB)', ...results.map((r) => `${mib(r.rssAfterToggles.anon)} / ${mib(r.rssAfterToggles.file)}`)],
    ['  growth over the toggles: RSS / V8 heap used (MiB per 100 toggles, least squares)', ...results.map((r) => {
      const per100 = (f: (x: BackendResult['toggles'][number]) => number | undefined) => {
        const pts = r.toggles.map((x, i) => [i, f(x)] as const).filter((p): p is readonly [number, number] => Number.isFinite(p[1]));
        const k = slope(pts.map((p) => p[0]), pts.map((p) => p[1]));
        return k === undefined ? '—' : (k * 100).toFixed(0);
      };
      return `${per100((x) => x.rssMiB)} / ${per100((x) => x.heapUsedMiB)}`;
    })],
    ['  of which V8 heap used / heap total / external after toggles (MiB)', ...results.map((r) => {
      const m = r.agentReported.memoryAfterToggles;
      return `${ms(m.heapUsedMiB, 0)} / ${ms(m.heapTotalMiB, 0)} / ${ms(m.externalMiB, 0)}`;
    })],
    ['  BPF map entries after the toggles', ...results.map((r) =>
      Object.entries(r.agentReported.mapEntries).filter(([, n]) => n > 0).map(([k, n]) => `${k.replace(/^tortie_/, '')}=${n}`).join(' ') || '—')],
    ['apply → enforced (ms) median / p99 / min / max; goal < 100 / < 250', ...results.map((r) => fmt(r.api.latency))],
    ['  of which the datastore write (ms), median / p99 / min / max', ...results.map((r) => fmt(r.api.write))],
    ['  write acknowledged → enforced (ms)', ...results.map((r) => fmt(r.api.ackToEnforced))],
    ['  toggles over 250 ms: latency (agent-reported calc flush + kernel write, agent GC pauses) ms', ...results.map((r) => {
      const slow = r.toggles.filter((x) => x.via === 'api' && (x.latencyMs ?? Infinity) > 250);
      return slow.length === 0 ? 'none' : slow.map((x) => `${ms(x.latencyMs, 0)} (${ms(x.agent?.applyMs, 0)}, ${ms(x.gcPauseMs, 0)})`).join(', ');
    })],
    ['  toggles not enforced in time / verdict flaps', ...results.map((r) => `${r.api.notEnforced} / ${r.api.flaps}`)],
    ['  agent-reported per flush (its histograms): change received → kernel / calc flush + kernel write (ms, mean)', ...results.map((r) =>
      `${ms(r.agentReported.programming?.meanMs)} / ${ms(r.agentReported.apply?.meanMs)} (${r.agentReported.programming?.count ?? 0} flushes)`)],
    ['agent GC until ready: collections / total / max pause (ms); of the total, young generation (ms) / full collections', ...results.map((r) =>
      `${r.gc.untilReady.collections} / ${ms(r.gc.untilReady.totalMs, 0)} / ${ms(r.gc.untilReady.maxMs, 0)}; ${ms(r.gc.untilReady.scavengeMs, 0)} / ${r.gc.untilReady.markCompacts ?? '—'}`)],
    ['agent GC during toggles: collections / pauses > 50 ms / max pause (ms)', ...results.map((r) => `${r.gc.toggles.collections} / ${r.gc.toggles.over50ms} / ${ms(r.gc.toggles.maxMs, 0)}`)],
    ['`tortiectl apply -f` (process start) → enforced (ms)', ...results.map((r) => fmt(r.cli.latency))],
    ['  tortiectl failures', ...results.map((r) => String(r.cli.errors.length))],
    ['probes (new TCP connections) / errors other than timeout', ...results.map((r) => `${r.probes.total} / ${r.probes.failedOther}`)],
    ['probes with a send time uncertain by > 1 ms / worst (ms)', ...results.map((r) => `${r.probes.wideStamps} / ${ms(r.probes.maxStampGapMs)}${r.probes.realtime ? '' : ' (prober not real-time)'}`)],
    ...(results.some((r) => r.flood) ? [
      ['flood: UDP datagrams sent (new denied flows) / seconds / per second', ...results.map((r) => (r.flood ? `${r.flood.sent} / ${r.flood.seconds.toFixed(1)} / ${(r.flood.sent / r.flood.seconds).toFixed(0)}` : '—'))],
      ['  policy_deny drops counted over the toggles (agent gauge, 5 s cadence)', ...results.map((r) => String(r.flood?.policyDenyDrops ?? '—'))],
      ['  flow events since the agent started (its gauges, 5 s cadence): received by the agent / logged / suppressed in the kernel / lost (ring full)', ...results.map((r) => (r.flood
        ? [r.flood.eventsReceived, r.flood.eventsLogged, r.flood.eventsSuppressedKernel, r.flood.eventsLost].map((x) => (x === undefined ? '—' : String(x))).join(' / ') : '—'))],
    ] as [string, ...string[]][] : []),
    ['load average (1 min) at start / end', ...results.map((r) => `${r.loadAvg.atStart[0]!.toFixed(1)} / ${r.loadAvg.atEnd[0]!.toFixed(1)}`)],
  ];
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(w[c]!)).join(' | ')).join('\n');
}

function gitCommit(): string | undefined {
  try { return execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return undefined; }
}

async function outer(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  if (process.getuid?.() !== 0) {
    process.stderr.write('agent-latency: needs root (network namespaces, BPF)\n');
    return 1;
  }
  const scale: FixtureScale = { quick: QUICK_SCALE, full: FULL_SCALE, felix: FELIX_SCALE }[o.scale ?? (o.quick ? 'quick' : 'full')];
  const startedAt = new Date();
  const meta = {
    startedAt: startedAt.toISOString(), argv, mode: o.quick ? 'quick' : 'full',
    host: { hostname: os.hostname(), cpus: os.cpus()[0]?.model ?? '?', cores: os.cpus().length, memoryBytes: os.totalmem(), kernel: os.release() },
    loadAvgAtStart: os.loadavg(), node: process.version, gitCommit: gitCommit(),
    settings: { scale, floodPps: o.floodPps, agentLogLevel: o.agentLogLevel, realtimeProber: o.realtime, toggles: o.toggles, cliToggles: o.cliToggles, probeIntervalMs: o.intervalMs, probeTimeoutMs: o.timeoutMs, holdMs: o.holdMs, agentNodeFlags: o.agentNodeFlags },
  };
  const local = generateFixtures(scale).local;
  const results: BackendResult[] = [];
  const failures: { backend: BackendName | 'calc'; error: string }[] = [];
  const workDirs = new Set<string>();
  process.on('exit', () => { for (const d of workDirs) rmSync(d, { recursive: true, force: true }); });

  for (const backend of o.backends) {
    const workDir = mkdtempSync(join(os.tmpdir(), 'tortie-bench-agent-'));
    workDirs.add(workDir);
    progress(`[${backend}] building the lab (${local.length} local endpoints)`);
    const lab = await buildLab(local);
    try {
      const cfg: MeasureConfig = {
        backend, workDir, pinRoot: lab.pinRoot, clientNs: lab.client.name, serverNs: lab.server.name, scale,
        toggles: o.toggles, cliToggles: o.cliToggles, probeIntervalMs: o.intervalMs, probeTimeoutMs: o.timeoutMs,
        holdMs: o.holdMs, toggleTimeoutMs: 10_000, loadConcurrency: 64, realtimeProber: o.realtime, heapSnapshotDir: o.heapSnapshotDir === undefined ? undefined : resolvePath(o.heapSnapshotDir), agentNodeFlags: o.agentNodeFlags,
        flood: o.floodPps === undefined ? undefined : { pps: o.floodPps }, agentLogLevel: o.agentLogLevel ?? (o.floodPps === undefined ? 'warn' : 'info'),
      };
      const cfgFile = join(workDir, 'config.json');
      const resultFile = join(workDir, 'result.json');
      writeFileSync(cfgFile, JSON.stringify({ cfg, resultFile }));
      const inner = lab.node.spawn([process.execPath, __filename, '--inner', cfgFile], {
        netOnly: true, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, TMPDIR: workDir },
      });
      const code = await new Promise<number | null>((r) => inner.once('exit', (c) => r(c)));
      if (code === 0 && existsSync(resultFile)) {
        results.push(JSON.parse(readFileSync(resultFile, 'utf8')) as BackendResult);
      } else {
        const err = existsSync(join(workDir, 'error.txt')) ? readFileSync(join(workDir, 'error.txt'), 'utf8') : `inner run exited ${code}`;
        failures.push({ backend, error: err });
        progress(`[${backend}] FAILED: ${err}`);
      }
    } finally {
      lab.destroy();
      rmSync(workDir, { recursive: true, force: true });
      workDirs.delete(workDir);
    }
  }

  let calc: CalcCost | undefined;
  if (o.calc) {
    progress('[calc] the same fixtures through src/calc alone');
    try {
      const outText = execFileSync(process.execPath, ['--expose-gc', join(__dirname, 'lib-agent/calc-cost.js'), JSON.stringify(scale), '20', '--agent-sync'],
        { encoding: 'utf8', timeout: 1_800_000, maxBuffer: 16 << 20 });
      calc = JSON.parse(outText.trim().split('\n').pop()!) as CalcCost;
    } catch (e) {
      failures.push({ backend: 'calc', error: (e as Error).message });
    }
  }
  const calcText = calc ? `\nsrc/calc alone, same fixtures (no kernel, no datastore; ${calc.tables} tables, ${calc.classes} address classes):\n` +
    `  ingest ${calc.resources} resources ${ms(calc.ingestMs, 0)} ms, first flush as the agent's (no delta) ${ms(calc.firstFlushMs, 0)} ms, snapshot ${ms(calc.snapshotMs, 0)} ms; ` +
    `heap for its state ${ms(calc.heapMiB, 0)} MiB\n` +
    `  one probe-policy toggle: flush ${fmt(calc.toggleMs)} ms (median / p99 / min / max); its delta: ${calc.toggleDelta.tablesAdded} table(s) added ` +
    `with ${calc.toggleDelta.cellsAdded} cells and ${calc.toggleDelta.projectionEntriesAdded} projection entries, ${calc.toggleDelta.tablesRemoved} removed, ` +
    `${calc.toggleDelta.endpointsUpserted} endpoint(s) switched\n` : '';
  const text = `${results.length > 0 ? `${table(results)}\n` : ''}${calcText}\nLatency = send time of the first probe (new TCP connection client → server, one every ` +
    `${o.intervalMs} ms, ${o.timeoutMs} ms timeout) from which the new verdict holds, minus the start of the apply call; p99 is nearest-rank (with fewer than 100 toggles it is the maximum). ` +
    `Machine: ${meta.host.cores} × ${meta.host.cpus}, kernel ${meta.host.kernel}, node ${meta.node}, commit ${meta.gitCommit?.slice(0, 10) ?? '?'}; ` +
    `shared with other work (load average at start ${meta.loadAvgAtStart.map((x) => x.toFixed(1)).join(' ')}): figures are noisy.\n` +
    failures.map((f) => `FAILED ${f.backend}: ${f.error.split('\n')[0]}\n`).join('');
  process.stdout.write(`\n${text}`);
  const stamp = startedAt.toISOString().replace(/:/g, '').replace(/\..*$/, '').replace('T', '-');
  const out = o.out ?? join(ROOT, 'bench/results', `agent-latency-${stamp}${o.quick ? '-quick' : ''}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ format: 'tortie-bench-agent/1', meta: { ...meta, finishedAt: new Date().toISOString() }, results, calc, failures }, null, 1)}\n`);
  const md = out.replace(/\.json$/, '') + '.md';
  writeFileSync(md, `# tortie-node: apply → enforcement latency, RSS, initial sync (${meta.mode})\n\n` +
    `Run ${meta.startedAt}: \`node dist/bench/agent-latency.js ${argv.join(' ')}\`\n\n\`\`\`\n${text}\`\`\`\n`);
  process.stdout.write(`JSON: ${out}\nTable: ${md}\n`);
  return failures.length === 0 ? 0 : 1;
}

async function inner(cfgFile: string): Promise<number> {
  const { cfg, resultFile } = JSON.parse(readFileSync(cfgFile, 'utf8')) as { cfg: MeasureConfig; resultFile: string };
  try {
    const res = await measureBackend(cfg, progress);
    writeFileSync(resultFile, JSON.stringify(res));
    return 0;
  } catch (e) {
    writeFileSync(join(cfg.workDir, 'error.txt'), (e as Error).stack ?? String(e));
    return 1;
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const run = argv[0] === '--inner' ? inner(argv[1]!) : outer(argv);
  run.then((code) => process.exit(code), (e: unknown) => {
    process.stderr.write(`agent-latency: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  });
}
