/**
 * Agents on a testbed node, two ways:
 * - AgentProcess: the real `tortie-node` as a process inside the node's network namespace
 *   (`nsenter --net` only, so its pins land in the host's bpffs), started and awaited with the
 *   same launch helpers as `tortiectl node run` (src/node/launch.ts: command line, /readyz wait);
 * - InProcessNode: what the agent does, in this process — the real CalcGraph over the given
 *   resources and the real BpfDataplane opened on the node's namespace — for tests and benches
 *   that drive resources directly.
 * `programWorkloads` is the step below both: compile, write with PolicyDataplane and attach the
 * workload programs of an already loaded datapath.
 */
import { appendFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { agentCommand, agentExit, waitForReady, type ReadyProbe } from '../node/launch';
import { BpfDataplane, type BpfDataplaneOptions } from '../dataplane/dataplane';
import { mapOps, type WepDatapath } from '../dataplane/bpf/loader';
import { PolicyDataplane } from '../dataplane/bpf/policy-sync';
import { tcAttach } from '../dataplane/native';
import { CalcGraph } from '../calc';
import type { Resource } from '../model';
import { testHostRouting } from './modes';
import type { Netns } from '../util/netns';
import type { Workload } from './wire';

/** The checkout (or installed package) this module runs from: bin/, packaging/, … */
export const PROJECT_ROOT = resolve(__dirname, '..', '..', '..');
export const binPath = (name: string): string => join(PROJECT_ROOT, 'bin', name);

/** Environment for child processes: no NODE_OPTIONS (a test runner's loaders stay out of agents). */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, NODE_OPTIONS: '', ...extra };
}

/**
 * A free-looking health port in [base, base + span) (agents in different namespaces may share one),
 * below Linux's ephemeral range (32768–60999): a port in it can be the source port of a connection
 * in the node's namespace, and the agent's listen then failed with EADDRINUSE (seen once in CI).
 */
export function randomPort(base = 12000, span = 20000): number {
  return base + Math.floor(Math.random() * span);
}

export interface AgentProcessOptions {
  /** Arguments after the launcher, e.g. ['run', '--nodename', …]; `--health-port` is added. */
  args: string[];
  healthPort?: number;
  env?: NodeJS.ProcessEnv;
  nodeFlags?: string[];
  /** Also append the agent's output to this file (e.g. a lab log directory). */
  logFile?: string;
  /** A command the agent's command line is appended to (e.g. `setpriv --bounding-set …`). */
  wrap?: string[];
  /** Pass `--health-port` (default true; false: the port comes from FelixConfiguration, `healthPort` is where to probe). */
  healthPortFlag?: boolean;
}

/** The real agent as a process in a node namespace; killed with the namespace's topology. */
export class AgentProcess {
  readonly child: ChildProcess;
  readonly healthPort: number;
  log = '';

  constructor(readonly ns: Netns, o: AgentProcessOptions) {
    this.healthPort = o.healthPort ?? randomPort();
    this.child = ns.spawn([...(o.wrap ?? []), ...agentCommand([...o.args, ...(o.healthPortFlag === false ? [] : ['--health-port', String(this.healthPort)])], o.nodeFlags)],
      { netOnly: true, env: o.env ?? childEnv() });
    const add = (d: Buffer) => {
      this.log += String(d);
      if (o.logFile) appendFileSync(o.logFile, d);
    };
    this.child.stdout?.on('data', add);
    this.child.stderr?.on('data', add);
  }

  get running(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }
  get exitCode(): number | null { return this.child.exitCode; }
  get pid(): number | undefined { return this.child.pid; }

  /**
   * /readyz asked from inside the node namespace (127.0.0.1 there is the agent's), with curl: a
   * probe runs every 100 ms while agents start, and a node process per probe cost start-ups a
   * tenth of a CPU second each, taken from the agents being awaited.
   */
  probe(): Promise<ReadyProbe> {
    return this.ns.exec(['curl', '-sS', '--max-time', '1', '-w', '\n%{http_code}', `http://127.0.0.1:${this.healthPort}/readyz`], { allowFail: true, timeoutMs: 10_000 })
      .then((r) => {
        const m = /^([\s\S]*)\n(\d{3})$/.exec(r.stdout);
        if (r.code === 0 && m && m[2] !== '000') return { status: Number(m[2]), body: m[1]!.trim() };
        return { error: r.stderr.trim().replace(/^curl: /, '') || `curl exit ${r.code}` };
      });
  }

  async waitReady(timeoutMs = 30_000, what = 'agent'): Promise<void> {
    const o = await waitForReady(() => this.probe(), agentExit(this.child), timeoutMs, 100);
    if (o.ready) return;
    if (o.exited) throw new Error(`${what} exited (${o.exited.signal ?? o.exited.code}):\n${this.log}`);
    throw new Error(`${what} not ready after ${timeoutMs} ms (last /readyz: ${o.last}):\n${this.log}`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    const done = agentExit(this.child);
    this.child.kill(signal);
    await done;
  }
}

/** The agent's flags for a testbed node: identity, datastore, pins, ports. */
export function agentRunArgs(o: { nodeName: string; ip: string; storeDir: string; pinRoot: string; runDir?: string; extra?: string[] }): string[] {
  return ['run', '--nodename', o.nodeName, '--ip', o.ip, '--store-dir', o.storeDir, '--bpffs-root', o.pinRoot,
    ...(o.runDir ? ['--run-dir', o.runDir] : []), '--metrics-port', '0', ...(o.extra ?? [])];
}

/** Per-agent log files in `dir` (the lab's TORTIE_LAB_AGENT_LOGS). */
export function agentLogFile(dir: string | undefined, nodeName: string): string | undefined {
  return dir ? join(dir, `${nodeName}.log`) : undefined;
}

/** The real compiler and policy writer over a loaded datapath; `update` applies a delta. */
export interface ProgrammedNode { pd: PolicyDataplane; graph: CalcGraph; update(...rs: Resource[]): void }

/**
 * What the agent does for a node, without the agent: compiles `resources` with the real CalcGraph
 * (as `nodeName`), writes the snapshot into `dp`'s maps with PolicyDataplane (endpoints bound by
 * interface name) and attaches the workload programs to every workload's host side in `node`.
 */
export function programWorkloads(node: Netns, workloads: Iterable<Workload>, dp: WepDatapath, resources: Resource[], nodeName = 'node1'): ProgrammedNode {
  const list = [...workloads];
  const byIface = new Map(list.map((x) => [x.hostIf, x.ifindex]));
  const pd = new PolicyDataplane({ ...dp.policyMaps, cls4: mapOps(dp.maps.cls4!), cls6: mapOps(dp.maps.cls6!) }, (ep) => byIface.get(ep.interfaceName ?? ''));
  const graph = new CalcGraph({ nodeName });
  for (const r of resources) graph.onUpdate(r);
  graph.flush();
  pd.applySnapshot(graph.snapshot());
  for (const x of list) {
    tcAttach({ iface: x.hostIf, netns: node.path, direction: 'ingress', program: dp.fromWep });
    tcAttach({ iface: x.hostIf, netns: node.path, direction: 'egress', program: dp.toWep });
  }
  return {
    pd, graph,
    update: (...rs) => {
      for (const r of rs) graph.onUpdate(r);
      pd.applyDelta(graph.flush());
    },
  };
}

export type InProcessRouting = Exclude<BpfDataplaneOptions['routing'], false | undefined>;

/** A node's in-process agent: its CalcGraph over the current resources and its BpfDataplane. */
/** tortie-node's housekeeping period (src/node/agent.ts, housekeepingMs): conntrack and NAT sweeps. */
export const AGENT_HOUSEKEEPING_MS = 5000;

export class InProcessNode {
  graph: CalcGraph;
  dp?: BpfDataplane;
  private housekeepingTimer?: NodeJS.Timeout;

  /** `routing`: the dataplane's routing options (Felix's MTU settings, …); `objectDir`: the BPF
   *  objects' directory (default bpf/out), e.g. another build's for a benchmark. */
  constructor(readonly name: string, readonly ns: Netns, readonly pinRoot: string, private readonly routing?: InProcessRouting,
    private readonly objectDir?: string) {
    this.graph = new CalcGraph({ nodeName: name });
  }

  /** Compiles `resources` afresh and reconciles the dataplane with it (opening it on first use). */
  async sync(resources: Iterable<Resource>): Promise<void> {
    const g = new CalcGraph({ nodeName: this.name });
    for (const r of resources) g.onUpdate(r);
    g.flush();
    this.graph = g;
    if (!this.dp) {
      this.dp = await BpfDataplane.open({ pinRoot: this.pinRoot, interfacePrefix: 'cali', uplink: 'eth0', routing: this.routing,
        netns: { name: this.ns.name, path: this.ns.path }, linkResyncMs: 60_000, hostRouting: testHostRouting(), objectDir: this.objectDir });
      // The agent's housekeeping as deployed (conntrack and NAT sweeps), so benchmarks measure the product.
      const dp = this.dp;
      this.housekeepingTimer = setInterval(() => { try { dp.housekeeping(); } catch { /* as the agent: retried next period */ } }, AGENT_HOUSEKEEPING_MS);
      this.housekeepingTimer.unref();
    }
    await this.dp.reconcile(g.snapshot());
  }

  async close(): Promise<void> {
    clearInterval(this.housekeepingTimer);
    await this.dp?.close().catch(() => undefined);
  }
}
