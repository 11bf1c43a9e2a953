/**
 * `tortie-node cleanup`: takes tortie's datapath off this host (the network namespace it runs
 * in) after the agent has stopped — programs stay attached on purpose while it is down.
 *
 * Order, so that no hook ever points at a program whose tables were emptied (the Calico eBPF
 * failure that cut nodes off until reboot):
 *   1. refuse while an agent of this host is running (it would attach everything again);
 *   2. detach every tortie program (name `tortie_*`) from tc ingress/egress and XDP on every
 *      interface; a clsact qdisc left without filters is removed (tc attach created it);
 *   3. BGP mode: stop the bird the agent drove (its pid file under `<run dir>/<node>.bird/`;
 *      bird is left running on purpose for a graceful restart, and `persist` keeps its routes),
 *      flush its private learned-routes table (DEFAULT_LEARNED_TABLE) and, only when such a bird
 *      directory was found, the `proto bird` routes of the main table (the own blocks'
 *      blackholes), then remove the directory;
 *   4. delete the routes the agent wrote (protocol 122, or the one given);
 *   5. only then unpin the maps and programs under the bpffs root — nothing is emptied in place:
 *      the kernel frees each map when its last program is gone.
 * The agent sets no global sysctls; the CNI plugin's per-interface ones go with the interfaces.
 *
 * Idempotent: a second run finds nothing and says so.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../util/exec';
import { BpfProgram, tcDestroyHook, tcDetach, tcQuery, xdpDetach, xdpQuery, type TcDirection } from '../dataplane/native';
import { DEFAULT_ROUTE_PROTOCOL } from '../dataplane/routing';
import { liveAgents } from './agents';
import { isBpffsMounted } from './doctor';
import { DEFAULT_LEARNED_TABLE } from '../bgp/render';
import { isProcessAlive, stopProcess } from '../util/process';
import { TortieError } from '../util/errors';

export interface CleanupOptions {
  bpffsRoot: string;
  runDir: string;
  routeProtocol?: number;
}

export interface CleanupReport {
  detached: string[];
  qdiscsRemoved: string[];
  routesRemoved: string[];
  pinsRemoved: boolean;
  /** BGP mode: birds stopped (pid and directory) and bird directories removed. */
  birdsStopped: string[];
}

export class CleanupRefused extends TortieError {
  declare readonly code: 'ERR_CLEANUP_AGENT_RUNNING';
  constructor(message: string) {
    super('ERR_CLEANUP_AGENT_RUNNING', message);
  }
}

function progName(id: number): string {
  try {
    const p = BpfProgram.fromId(id);
    try { return p.info().name; } finally { p.close(); }
  } catch {
    return '';
  }
}

const isOurs = (id: number): boolean => id > 0 && progName(id).startsWith('tortie_');

async function tcFilterCount(dev: string, dir: TcDirection): Promise<number> {
  const r = await run(['tc', '-j', 'filter', 'show', 'dev', dev, dir], { allowFail: true });
  if (r.code !== 0 || r.stdout.trim() === '') return 0;
  return (JSON.parse(r.stdout) as unknown[]).length;
}

async function hasClsact(dev: string): Promise<boolean> {
  const r = await run(['tc', '-j', 'qdisc', 'show', 'dev', dev], { allowFail: true });
  if (r.code !== 0 || r.stdout.trim() === '') return false;
  return (JSON.parse(r.stdout) as { kind?: string }[]).some((q) => q.kind === 'clsact');
}

export async function cleanupHost(o: CleanupOptions): Promise<CleanupReport> {
  const { live } = liveAgents(o.runDir);
  if (live.length > 0) {
    throw new CleanupRefused(`tortie-node is running (${live.map((a) => `${a.node} pid ${a.pid}`).join(', ')}; run dir ${o.runDir}): stop it first, or it attaches everything again`);
  }
  const report: CleanupReport = { detached: [], qdiscsRemoved: [], routesRemoved: [], pinsRemoved: false, birdsStopped: [] };

  // 2. hooks
  const links = JSON.parse((await run(['ip', '-j', 'link', 'show'])).stdout) as { ifname: string; ifindex: number }[];
  for (const l of links) {
    const x = xdpQuery({ iface: l.ifindex });
    for (const [mode, id] of [['native', x.nativeProgId], ['generic', x.genericProgId]] as const) {
      if (isOurs(id)) {
        xdpDetach({ iface: l.ifindex, mode });
        report.detached.push(`${l.ifname} xdp (${mode}) ${progName(id) || id}`);
      }
    }
    if (!(await hasClsact(l.ifname))) continue;
    for (const direction of ['ingress', 'egress'] as const) {
      const f = tcQuery({ iface: l.ifindex, direction });
      if (f && isOurs(f.progId)) {
        const name = progName(f.progId);
        tcDetach({ iface: l.ifindex, direction });
        report.detached.push(`${l.ifname} tc ${direction} ${name}`);
      }
    }
    if ((await tcFilterCount(l.ifname, 'ingress')) === 0 && (await tcFilterCount(l.ifname, 'egress')) === 0 && report.detached.some((d) => d.startsWith(`${l.ifname} tc `))) {
      tcDestroyHook({ iface: l.ifindex });
      report.qdiscsRemoved.push(l.ifname);
    }
  }

  // 3. BGP: the bird the agent drove, its learned table, its blackholes
  await cleanupBird(o.runDir, report);

  // 4. routes
  const proto = String(o.routeProtocol ?? DEFAULT_ROUTE_PROTOCOL);
  const routes = (await run(['ip', '-4', 'route', 'show', 'proto', proto])).stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  if (routes.length > 0) {
    await run(['ip', '-4', 'route', 'flush', 'proto', proto]);
    report.routesRemoved.push(...routes);
  }

  // 5. pins
  if (existsSync(o.bpffsRoot)) {
    if (!isBpffsMounted(o.bpffsRoot)) throw new Error(`${o.bpffsRoot} is not on a bpf filesystem; not removing it`);
    rmSync(o.bpffsRoot, { recursive: true, force: true });
    report.pinsRemoved = true;
  }
  return report;
}


async function cleanupBird(runDir: string, report: CleanupReport): Promise<void> {
  const dirs = existsSync(runDir) ? readdirSync(runDir).filter((d) => d.endsWith('.bird')).map((d) => join(runDir, d)) : [];
  for (const dir of dirs) {
    const pidPath = join(dir, 'bird.pid');
    const pid = existsSync(pidPath) ? Number.parseInt(readFileSync(pidPath, 'utf8'), 10) : NaN;
    if (Number.isInteger(pid) && pid > 1 && isProcessAlive(pid)) {
      const comm = (() => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return ''; } })();
      if (comm !== 'bird') throw new Error(`${pidPath} names pid ${pid} (${comm || 'unknown'}), which is not bird; not stopping it`);
      await stopProcess(pid, { signal: 'SIGTERM' });
      report.birdsStopped.push(`bird pid ${pid} (${dir})`);
    }
  }
  const learned = (await run(['ip', '-4', 'route', 'show', 'table', String(DEFAULT_LEARNED_TABLE)], { allowFail: true })).stdout
    .split('\n').map((l) => l.trim()).filter(Boolean);
  if (learned.length > 0) {
    await run(['ip', '-4', 'route', 'flush', 'table', String(DEFAULT_LEARNED_TABLE)]);
    report.routesRemoved.push(...learned.map((l) => `${l} table ${DEFAULT_LEARNED_TABLE}`));
  }
  if (dirs.length > 0) {
    const own = (await run(['ip', '-4', 'route', 'show', 'proto', 'bird'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    if (own.length > 0) {
      await run(['ip', '-4', 'route', 'flush', 'proto', 'bird']);
      report.routesRemoved.push(...own);
    }
    for (const dir of dirs) {
      rmSync(dir, { recursive: true, force: true });
      report.birdsStopped.push(`removed ${dir}`);
    }
  }
}

export function formatCleanup(r: CleanupReport, o: CleanupOptions): string {
  const lines = [
    ...r.detached.map((d) => `detached ${d}`),
    ...r.birdsStopped.map((d) => (d.startsWith('removed ') ? d : `stopped ${d}`)),
    ...r.qdiscsRemoved.map((d) => `removed the clsact qdisc of ${d}`),
    ...r.routesRemoved.map((d) => `removed route ${d}`),
    r.pinsRemoved ? `removed pins under ${o.bpffsRoot}` : `no pins under ${o.bpffsRoot}`,
  ];
  if (r.detached.length === 0 && r.routesRemoved.length === 0 && !r.pinsRemoved && r.birdsStopped.length === 0) lines.unshift('nothing of tortie found in this network namespace');
  lines.push('sysctls: the agent sets none (the CNI plugin\'s per-interface ones went with the interfaces)');
  return lines.join('\n') + '\n';
}
