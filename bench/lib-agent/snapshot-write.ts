/**
 * The agent's first policy write at start-up, alone: a synthetic CompiledState shaped like Felix's
 * scale's (by default 55 tables of ~21,000 projection entries and ~20,000 verdict prefixes each,
 * 100 endpoints, 100,000 IPv4 class prefixes: the 1.16 M + 1.10 M policy map entries the agent
 * bench reports) written into freshly loaded workload maps, by the two paths PolicyDataplane has:
 *
 *   sync      applySnapshot(s) alone: every batch on the JS thread (what main did);
 *   prepared  prepareSnapshot(s) (class prefixes and table content on libuv workers, one batch in
 *             flight per map) then applySnapshot(s) (tables' entries, flips).
 *
 * The two alternate (fresh pin root and maps each run). Per run: wall, process CPU (all threads)
 * and the JS thread's own CPU (/proc/self/task/<pid>/stat): what the JS thread is not busy with
 * is free for the routes' planning and whatever else runs beside the writes in the agent
 * (BpfDataplane.reconcile). Under load the wall time says little; the JS thread's CPU does.
 *
 *   node dist/bench/lib-agent/snapshot-write.js [rounds=3] [tables=55] [projection=21000] [localClasses=300]
 */
import { readFileSync } from 'node:fs';
import { loadWep, mapOps } from '../../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../../src/dataplane/bpf/policy-sync';
import { pinRoot, removePinRoot } from '../../src/testbed/pins';
import type { CompiledState, LocalEndpoint, VerdictCell, VerdictTable } from '../../src/calc/types';

const TICK = 100; // USER_HZ

function threadCpuS(): number {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / TICK; // fields 14, 15: utime, stime
}
function processCpuS(): number { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; }

function hexId(n: number): string { return n.toString(16).padStart(16, '0'); }

function synthTable(i: number, direction: 'ingress' | 'egress', projection: number, localClasses: number): VerdictTable {
  const proj = new Uint32Array(projection * 2);
  for (let k = 0; k < projection; k++) { proj[2 * k] = 1 + k * 2 + (i % 2); proj[2 * k + 1] = 1 + ((k * 7 + i) % (localClasses - 1)); }
  const cells: VerdictCell[] = [];
  const bounds = [[0, 79], [80, 80], [81, 442], [443, 443], [444, 65535]] as const;
  for (let l = 0; l < localClasses; l++) {
    for (const protocol of [6, 17]) {
      bounds.forEach(([portMin, portMax], b) => cells.push({ localClass: l, protocol, srcPortClass: 0, portMin, portMax, action: (l + b + i) % 3 === 0 ? 'allow' : 'deny', ruleId: 1 + ((l + b) % 50), logRuleIds: [] }));
    }
    cells.push({ localClass: l, protocol: 256, srcPortClass: 0, portMin: 0, portMax: 65535, action: 'deny', ruleId: 2, logRuleIds: [] });
  }
  return { id: hexId(0xf000 + i), direction, localClassCount: localClasses, projection: proj, protocols: [6, 17], srcPortClasses: [], cells };
}

function synthState(tables: number, projection: number, localClasses: number): CompiledState {
  const ts: VerdictTable[] = [];
  for (let i = 0; i < tables; i++) ts.push(synthTable(i, i % 2 === 0 ? 'ingress' : 'egress', projection, localClasses));
  const ins = ts.filter((t) => t.direction === 'ingress');
  const egs = ts.filter((t) => t.direction === 'egress');
  const endpoints: LocalEndpoint[] = [];
  for (let e = 0; e < 100; e++) {
    endpoints.push({ key: `ns/w${e}`, namespace: 'ns', name: `w${e}`, interfaceName: `caliw${e}`, ipNetworks: [`192.168.0.${e + 1}/32`], tables: { ingress: ins[e % ins.length]!.id, egress: egs[e % egs.length]!.id } });
  }
  const prefixes = [];
  for (let p = 0; p < 100_000; p++) prefixes.push({ family: 4 as const, cidr: `10.${p >> 16}.${(p >> 8) & 255}.${p & 255}/32`, classId: 1 + (p % 40_000) });
  return { nodeName: 'bench', classes: { prefixes, classes: [] }, tables: ts, endpoints, rules: [], prefilter: { deny: [], skipped: [] }, routing: { pools: [], nodes: [], workloadRoutes: [] } };
}

async function once(variant: 'sync' | 'prepared', s: CompiledState): Promise<{ wall: number; cpu: number; js: number; entries: number }> {
  const root = pinRoot(`bench-snapwrite-${process.pid}-${variant}`);
  const dp = await loadWep({ pinRoot: root, hostRouting: 'off' });
  try {
    const ifx = new Map(s.endpoints.map((e, i) => [e.key, 1000 + i]));
    const pd = new PolicyDataplane({ ...dp.policyMaps, cls4: mapOps(dp.maps.cls4!), cls6: mapOps(dp.maps.cls6!) }, (e) => ifx.get(e.key));
    (globalThis as { gc?: () => void }).gc?.();
    const w0 = performance.now(), c0 = processCpuS(), j0 = threadCpuS();
    if (variant === 'prepared') await pd.prepareSnapshot(s);
    pd.applySnapshot(s);
    const r = { wall: (performance.now() - w0) / 1000, cpu: processCpuS() - c0, js: threadCpuS() - j0, entries: 0 };
    r.entries = dp.maps.proj!.keys().length + dp.maps.pol!.keys().length;
    return r;
  } finally {
    dp.close();
    removePinRoot(root);
  }
}

async function main(): Promise<void> {
  const [rounds = 3, tables = 55, projection = 21_000, localClasses = 300] = process.argv.slice(2).map(Number);
  const s = synthState(tables, projection, localClasses);
  console.log(`synthetic state: ${tables} tables × ${projection} projection entries, ${localClasses} local classes, 100 endpoints, ${s.classes.prefixes.length} class prefixes; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  for (let r = 0; r < rounds; r++) {
    for (const v of ['sync', 'prepared'] as const) {
      const x = await once(v, s);
      console.log(`${v.padEnd(8)} round ${r + 1}: wall ${x.wall.toFixed(2)} s, process CPU ${x.cpu.toFixed(2)} s, JS thread CPU ${x.js.toFixed(2)} s (proj + pol entries ${x.entries}); load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
