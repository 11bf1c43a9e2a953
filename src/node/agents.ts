/**
 * The agents of this host, as their run directory records them (default /run/tortie,
 * TORTIE_RUN_DIR): `tortie-node run` writes `<node>.pid` and `<node>.state.json` ({pid, healthPort,
 * metricsPort, bpffsRoot, logFile, …}); `tortiectl node run` also `<node>.tortiectl.json`
 * ({pid, healthPort, logFile, command}).
 *
 * liveAgents() is the one answer to "which agents are running here": a record counts only when
 * its process exists and is a tortie-node (a recycled pid or a zombie does not); stale records
 * are returned separately so callers can name them. Used by `tortiectl node status`,
 * `tortie-node cleanup` (refuses while an agent runs) and `tortiectl node diags`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DEFAULT_RUN_DIR = '/run/tortie';

export interface AgentRecord {
  node: string;
  pid?: number;
  healthPort?: number;
  metricsPort?: number;
  healthHost?: string;
  metricsHost?: string;
  bpffsRoot?: string;
  logFile?: string;
  pidFile: string;
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** What the run directory says about one node's agent (pid file, tortiectl side file). */
export function readAgent(runDir: string, node: string): AgentRecord {
  const pidFile = path.join(runDir, `${node}.pid`);
  const rec: AgentRecord = { node, pidFile };
  const side = readJson(path.join(runDir, `${node}.tortiectl.json`));
  if (side) {
    if (typeof side.healthPort === 'number') rec.healthPort = side.healthPort;
    if (typeof side.metricsPort === 'number') rec.metricsPort = side.metricsPort;
    if (typeof side.logFile === 'string') rec.logFile = side.logFile;
    // An agent that keeps its pid file elsewhere is still found through what node run recorded.
    if (typeof side.pid === 'number') rec.pid = side.pid;
  }
  const state = readJson(path.join(runDir, `${node}.state.json`));
  if (state) {
    for (const k of ['healthPort', 'metricsPort'] as const) if (typeof state[k] === 'number') rec[k] = state[k] as number;
    for (const k of ['healthHost', 'metricsHost', 'bpffsRoot', 'logFile'] as const) if (typeof state[k] === 'string') rec[k] = state[k] as string;
    if (typeof state.pid === 'number') rec.pid = state.pid;
  }
  try {
    const text = fs.readFileSync(pidFile, 'utf8').trim();
    if (text.startsWith('{')) {
      const j = readJson(pidFile) ?? {};
      if (typeof j.pid === 'number') rec.pid = j.pid;
      if (typeof j.healthPort === 'number') rec.healthPort = j.healthPort;
      if (typeof j.metricsPort === 'number') rec.metricsPort = j.metricsPort;
      if (typeof j.logFile === 'string') rec.logFile = j.logFile;
    } else {
      const n = Number(text.split(/\s+/)[0]);
      if (Number.isSafeInteger(n) && n > 0) rec.pid = n;
    }
  } catch {
    // no pid file: not running
  }
  return rec;
}

/** The process exists and is a tortie-node (guards against a recycled pid). */
export function isAgentAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    // A zombie has an empty cmdline: it is not running any more.
    return cmdline.includes('tortie-node') || cmdline.includes('tortie_node');
  } catch {
    return false;
  }
}

/** Node names with a record in the run directory (sorted; empty when the directory is absent). */
export function recordedNodes(runDir: string): string[] {
  try {
    const names = fs.readdirSync(runDir).map((f) => /^(.+)\.(pid|tortiectl\.json|state\.json)$/.exec(f)?.[1]).filter((n): n is string => n !== undefined);
    return [...new Set(names)].sort();
  } catch {
    return [];
  }
}

/** Running agents and stale records (a pid that is not a live tortie-node) among `nodes` (default: all recorded). */
export function liveAgents(runDir: string, nodes: string[] = recordedNodes(runDir)): { live: AgentRecord[]; stale: AgentRecord[] } {
  const records = nodes.map((n) => readAgent(runDir, n));
  return {
    live: records.filter((r) => isAgentAlive(r.pid)),
    stale: records.filter((r) => r.pid !== undefined && !isAgentAlive(r.pid)),
  };
}

/** The run directory a live tortie-node process uses: its --run-dir, else its TORTIE_RUN_DIR, else the default. */
function runDirOfProcess(pid: number): string | undefined {
  let argv: string[];
  try { argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { return undefined; }
  const at = argv.findIndex((a) => /tortie-node(\.js)?$/.test(a));
  if (at < 0) return undefined;
  const args = argv.slice(at + 1);
  if (args[0] !== undefined && args[0] !== '' && !args[0].startsWith('-') && args[0] !== 'run') return undefined; // doctor, cleanup, …
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--run-dir' && args[i + 1]) return args[i + 1];
    if (args[i]!.startsWith('--run-dir=')) return args[i]!.slice('--run-dir='.length);
  }
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('TORTIE_RUN_DIR='));
    if (env && env.length > 'TORTIE_RUN_DIR='.length) return env.slice('TORTIE_RUN_DIR='.length);
  } catch { /* not readable: assume the default */ }
  return DEFAULT_RUN_DIR;
}

/**
 * Run directories of the tortie-node agents running on this host (from /proc), so that tools
 * asked about "the agents" find those started with another run directory too.
 */
export function discoverRunDirs(): string[] {
  const dirs = new Set<string>();
  let pids: string[] = [];
  try { pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)); } catch { return []; }
  for (const p of pids) {
    const d = runDirOfProcess(Number(p));
    if (d === undefined) continue;
    if (path.isAbsolute(d)) { dirs.add(path.normalize(d)); continue; }
    try { dirs.add(path.resolve(fs.readlinkSync(`/proc/${p}/cwd`), d)); } catch { /* exited meanwhile */ }
  }
  return [...dirs].sort();
}
