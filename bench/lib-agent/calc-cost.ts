/**
 * The calculation graph's share of the agent's costs, at the benchmark's scale, with no kernel
 * and no datastore: the same fixtures fed to src/calc's CalcGraph in a process of its own
 * (started with --expose-gc so heap figures are after a full collection).
 *
 *   node --expose-gc calc-cost.js '<FixtureScale JSON>' <toggles> [--heap-snapshot FILE] [--with-resources]
 *     → one JSON line (CalcCost) on stdout
 *
 * --agent-sync: the first flush is the agent's (flushForSnapshot(): no delta built, a snapshot
 * follows), as at the agent's start; the digest then covers the toggles and the snapshots only.
 * --heap-snapshot FILE writes a V8 heap snapshot after the first flush (before snapshot(), so
 * only the graph's own state is in it); read it with bench/heap-summary.js --under CalcGraph.
 * --with-resources adds `heapWithResourcesMiB`, measured in a fresh process (module caches warmed
 * by one graph would hide part of another's cost): a graph fed the same resources as the agent
 * gets them (parsed from JSON and validated, held by nothing else), heap after its first flush —
 * the graph's retained size as a heap snapshot of the agent shows it.
 * TORTIE_BENCH_DIGEST=1 adds `digest`: a SHA-1 of every delta and both snapshots (computed
 * outside the timings), to check that a compiler change leaves the output unchanged.
 *
 * It shows where a toggle's time goes (calc flush vs. the rest: datastore, watch delivery,
 * kernel writes) and how much of the agent's heap is calc state. Single-threaded; no I/O.
 */
import { execFileSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { writeHeapSnapshot } from 'node:v8';
import { CalcGraph } from '../../src/calc/graph';
import { compiledJson } from '../../src/calc/lookup';
import type { CalcDelta } from '../../src/calc/types';
import { validateResource, type Node, type Resource } from '../../src/model';
import { BENCH_NODE, NODE_ADDRESS, generateFixtures, probePolicy, type FixtureScale } from './fixtures';
import { summarize, type Summary } from './latency';

export interface CalcCost {
  resources: number;
  /** onUpdate of every resource (the agent's initial list), then the first flush + snapshot. */
  ingestMs: number;
  firstFlushMs: number;
  snapshotMs: number;
  /** V8 heap used after ingest + snapshot minus before, after full GCs (MiB). */
  heapMiB?: number;
  /** The same after ingest + first flush, without the snapshot() result alive (MiB). */
  heapGraphMiB?: number;
  /** Graph plus the resources only it holds, parsed from JSON (--with-resources; MiB). */
  heapWithResourcesMiB?: number;
  /** Flush after one probe-policy toggle (onUpdate + flush). */
  toggleMs?: Summary;
  /** What one toggle's delta holds (the last one). */
  toggleDelta: { tablesAdded: number; tablesRemoved: number; cellsAdded: number; projectionEntriesAdded: number; endpointsUpserted: number };
  tables: number;
  classes: number;
  digest?: string;
}

const gc = (globalThis as { gc?: () => void }).gc;

function heapUsed(): number | undefined {
  if (!gc) return undefined;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** ms of g.flush(); the delta is hashed (if asked) and dropped, so heap figures exclude it. */
function timedFlush(g: CalcGraph, digest: Hash | undefined): number {
  const t = performance.now();
  const d = g.flush();
  const ms = performance.now() - t;
  digest?.update(JSON.stringify(d, compiledJson));
  return ms;
}

/** Heap (MiB) of a graph after its first flush, plus the resources it alone holds, fed as JSON. */
function heapWithResources(texts: string[]): number | undefined {
  const before = heapUsed();
  const g = new CalcGraph({ nodeName: BENCH_NODE });
  for (const t of texts) g.onUpdate(validateResource(JSON.parse(t) as Resource));
  g.flush();
  const after = heapUsed();
  // Keep g alive up to the measurement.
  return before !== undefined && after !== undefined && g.stats().items >= 0 ? (after - before) / 1048576 : undefined;
}

/** The resources of a scale, in the order the agent's initial list hands them over. */
function benchResources(scale: FixtureScale): Resource[] {
  const fx = generateFixtures(scale);
  const self: Node = { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: BENCH_NODE }, spec: { bgp: { ipv4Address: NODE_ADDRESS } } } as Node;
  return [self, fx.profile, ...fx.namespaces, ...fx.nodes, ...fx.policies, probePolicy('Allow'), ...fx.endpoints];
}

export function measureCalc(scale: FixtureScale, toggles: number, heapSnapshotFile?: string, agentSync = false): CalcCost {
  const resources = benchResources(scale).map((r) => validateResource(r));
  const allow = validateResource(probePolicy('Allow'));
  const deny = validateResource(probePolicy('Deny'));
  const digest = process.env.TORTIE_BENCH_DIGEST === '1' ? createHash('sha1') : undefined;
  const before = heapUsed();
  const g = new CalcGraph({ nodeName: BENCH_NODE });
  let t = performance.now();
  for (const r of resources) g.onUpdate(r);
  const ingestMs = performance.now() - t;
  t = performance.now();
  const firstFlushMs = agentSync ? (g.flushForSnapshot(), performance.now() - t) : timedFlush(g, digest);
  const afterFlush = heapUsed();
  if (heapSnapshotFile !== undefined) writeHeapSnapshot(heapSnapshotFile);
  t = performance.now();
  const snap = g.snapshot();
  const snapshotMs = performance.now() - t;
  const after = heapUsed();
  const times: number[] = [];
  let last: CalcDelta | undefined;
  for (let i = 0; i < toggles; i++) {
    t = performance.now();
    g.onUpdate(i % 2 === 0 ? deny : allow);
    last = g.flush();
    times.push(performance.now() - t);
    digest?.update(JSON.stringify(last, compiledJson));
  }
  if (digest !== undefined) {
    digest.update(JSON.stringify(snap, compiledJson));
    digest.update(JSON.stringify(g.snapshot(), compiledJson));
  }
  return {
    resources: resources.length, ingestMs, firstFlushMs, snapshotMs,
    heapMiB: before !== undefined && after !== undefined ? (after - before) / 1048576 : undefined,
    heapGraphMiB: before !== undefined && afterFlush !== undefined ? (afterFlush - before) / 1048576 : undefined,
    toggleMs: summarize(times),
    toggleDelta: {
      tablesAdded: last?.tablesAdded.length ?? 0, tablesRemoved: last?.tablesRemoved.length ?? 0,
      cellsAdded: last?.tablesAdded.reduce((a, tb) => a + tb.cells.length, 0) ?? 0,
      projectionEntriesAdded: (last?.tablesAdded.reduce((a, tb) => a + tb.projection.length / 2, 0) ?? 0) +
        (last?.projectionAdded.reduce((a, p) => a + p.entries.length, 0) ?? 0),
      endpointsUpserted: last?.endpointsUpserted.length ?? 0,
    },
    tables: snap.tables.length,
    classes: snap.classes.classes.length,
    ...(digest !== undefined ? { digest: digest.digest('hex') } : {}),
  };
}

if (require.main === module) {
  const scale = JSON.parse(process.argv[2] ?? '') as FixtureScale;
  const toggles = Number(process.argv[3] ?? 20);
  const i = process.argv.indexOf('--heap-snapshot');
  const file = i >= 0 ? process.argv[i + 1] : undefined;
  if (process.argv.includes('--resources-only')) {
    process.stdout.write(`${JSON.stringify({ heapWithResourcesMiB: heapWithResources(benchResources(scale).map((r) => JSON.stringify(r))) })}\n`);
  } else {
    const cost = measureCalc(scale, toggles, file, process.argv.includes('--agent-sync'));
    if (process.argv.includes('--with-resources')) {
      const out = execFileSync(process.execPath, ['--expose-gc', __filename, JSON.stringify(scale), '0', '--resources-only'], { encoding: 'utf8' });
      cost.heapWithResourcesMiB = (JSON.parse(out) as { heapWithResourcesMiB?: number }).heapWithResourcesMiB;
    }
    process.stdout.write(`${JSON.stringify(cost)}\n`);
  }
}
