/**
 * One node running the real `tortie-node` as a process: a SingleNode layout, a temporary embedded
 * store (with a ResourceClient for the test to write resources), a pin root (the agent creates it)
 * and a private run directory (pid and state files never land in /run/tortie). `destroy()` kills
 * the agent and removes all of it; the topology's exit and signal hooks do too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SingleNode, type SingleNodeOptions } from './layouts';
import { AgentProcess, agentRunArgs, childEnv, randomPort } from './agent';
import { openTestStore, type TestStore } from './store';
import { pinRoot, removePinRoot } from './pins';
import type { Workload } from './wire';

export class AgentBed {
  readonly store: TestStore;
  readonly pinRoot: string;
  readonly runDir: string;
  readonly healthPort = randomPort();
  agent?: AgentProcess;

  private constructor(readonly bed: SingleNode, readonly nodeName: string) {
    this.store = openTestStore('agentbed-store');
    this.pinRoot = pinRoot('e2e', { create: false });
    this.runDir = mkdtempSync(join(tmpdir(), 'tortie-agentbed-run-'));
    bed.onDestroy(() => {
      rmSync(this.store.dir, { recursive: true, force: true });
      rmSync(this.runDir, { recursive: true, force: true });
      removePinRoot(this.pinRoot);
    });
  }

  static async create(label: string, o: SingleNodeOptions & { nodeName?: string } = {}): Promise<AgentBed> {
    return new AgentBed(await SingleNode.create(label, o), o.nodeName ?? 'node-a');
  }

  get topo() { return this.bed.topo; }
  get node() { return this.bed.node; }
  get outside() { return this.bed.outside; }
  get nodeIp() { return this.bed.nodeIp; }
  get client() { return this.store.rc; }
  get ds() { return this.store.ds; }
  get storeDir() { return this.store.dir; }
  get agentLog(): string { return this.agent?.log ?? ''; }

  /** A workload behind `hostIf`, wired by the CNI plugin's steps (dual stack with `ip6`). */
  addWorkload(name: string, ip: string, hostIf?: string, ip6?: string): Promise<Workload> {
    return this.bed.addWorkload(name, ip, ip6 ? { hostIf, ip6 } : { hostIf });
  }

  /**
   * Starts the agent (node address the node's uplink /24) with `extra` flags. `omit`: default flags
   * left out (`--log-level`, `--health-port`, `--metrics-port`: FelixConfiguration decides); `env`: added to
   * the agent's environment; `wrap`: a command the agent runs under (setpriv …).
   */
  startAgent(extra: string[] = [], o: { wrap?: string[]; omit?: string[]; env?: NodeJS.ProcessEnv } = {}): AgentProcess {
    const args = agentRunArgs({ nodeName: this.nodeName, ip: `${this.nodeIp}/24`, storeDir: this.storeDir, pinRoot: this.pinRoot, runDir: this.runDir,
      extra: ['--log-level', 'info', ...extra] });
    for (const f of o.omit ?? []) {
      const i = args.indexOf(f);
      if (i >= 0) args.splice(i, 2);
    }
    this.agent = new AgentProcess(this.node, { args, healthPort: this.healthPort, env: childEnv(o.env), wrap: o.wrap,
      healthPortFlag: !(o.omit ?? []).includes('--health-port') });
    return this.agent;
  }

  waitReady(timeoutMs = 60_000): Promise<void> {
    if (!this.agent) throw new Error('no agent started');
    return this.agent.waitReady(timeoutMs);
  }

  async killAgent(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.agent?.kill(signal);
  }

  async destroy(): Promise<void> {
    await this.killAgent();
    await this.store.ds.close().catch(() => undefined);
    this.bed.destroySync();
  }
}
