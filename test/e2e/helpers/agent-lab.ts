/**
 * End-to-end harness: a node namespace running the real `tortie-node` (spawned inside it), with
 * workload namespaces behind cali* veths wired the way Calico's CNI does it, an embedded store in a
 * temp dir and a unique bpffs pin root. Everything is removed by `destroy()`.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Topology, type Netns } from '../../../src/util/netns';
import { EmbeddedDatastore } from '../../../src/datastore';
import { ResourceClient } from '../../../src/client/resources';
import { agentCommand } from '../../../src/node/launch';

export const ROOT = resolve(__dirname, '../../../..');

/** Child processes run without tap's loaders and coverage hooks (NODE_OPTIONS). */
export const CHILD_ENV: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };

export interface Workload { ns: Netns; ip: string; hostIf: string; name: string }

export class AgentLab {
  readonly topo: Topology;
  readonly storeDir = mkdtempSync(join(tmpdir(), 'tortie-e2e-store-'));
  readonly pinRoot = `/sys/fs/bpf/tortie-e2e-${randomBytes(4).toString('hex')}`;
  /** The agent's pid and state files: private, so a killed agent leaves nothing in /run/tortie. */
  readonly runDir = mkdtempSync(join(tmpdir(), 'tortie-e2e-run-'));
  readonly client: ResourceClient;
  readonly ds: EmbeddedDatastore;
  node!: Netns;
  agent?: ChildProcess;
  agentLog = '';
  readonly healthPort = 20000 + Math.floor(Math.random() * 20000);

  constructor(label: string, readonly nodeName = 'node-a') {
    this.topo = Topology.create(label);
    this.ds = new EmbeddedDatastore({ dir: this.storeDir });
    this.client = new ResourceClient(this.ds);
  }

  outside!: Netns;

  /** The node namespace with an uplink (198.18.0.10/24, default route via the outside host .1). */
  async init(): Promise<void> {
    this.node = await this.topo.addNetns('node');
    this.outside = await this.topo.addNetns('out');
    await this.topo.addVeth(this.node, 'eth0', this.outside, 'eth0');
    await this.outside.sh('ip addr add 198.18.0.1/24 dev eth0');
    await this.node.sh('sysctl -qw net.ipv4.ip_forward=1 && ip addr add 198.18.0.10/24 dev eth0 && ip route add default via 198.18.0.1');
  }

  /** A workload namespace behind a cali* veth: /32, 169.254.1.1 gateway, proxy ARP on the host side. */
  async addWorkload(name: string, ip: string, hostIf: string): Promise<Workload> {
    const ns = await this.topo.addNetns(name);
    await this.topo.addVeth(this.node, hostIf, ns, 'eth0', { aMac: 'ee:ee:ee:ee:ee:ee' });
    await this.node.sh(`sysctl -qw net.ipv4.conf.${hostIf}.proxy_arp=1 net.ipv4.neigh.${hostIf}.proxy_delay=0 net.ipv4.conf.${hostIf}.forwarding=1 && ip route add ${ip}/32 dev ${hostIf}`);
    await ns.sh(`ip addr add ${ip}/32 dev eth0 && ip route add 169.254.1.1 dev eth0 scope link && ip route add default via 169.254.1.1 dev eth0`);
    return { ns, ip, hostIf, name };
  }

  /** `omit`: default flags left out (say --log-level, so that FelixConfiguration decides); `env`: added to the agent's environment. */
  startAgent(extra: string[] = [], opts: { omit?: string[]; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const defaults: [string, string][] = [['--health-port', String(this.healthPort)], ['--metrics-port', '0'], ['--log-level', 'info']];
    const flags = defaults.filter(([f]) => !opts.omit?.includes(f)).flat();
    const child = this.node.spawn(agentCommand(['run', '--nodename', this.nodeName, '--ip', '198.18.0.10/24',
      '--store-dir', this.storeDir, '--bpffs-root', this.pinRoot, '--run-dir', this.runDir, ...flags, ...extra]),
    { netOnly: true, env: { ...CHILD_ENV, ...opts.env } });
    child.stdout?.on('data', (d) => { this.agentLog += String(d); });
    child.stderr?.on('data', (d) => { this.agentLog += String(d); });
    this.agent = child;
    return child;
  }

  async waitReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const probe = `fetch('http://127.0.0.1:${this.healthPort}/readyz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))`;
    while (Date.now() < deadline) {
      if (this.agent && this.agent.exitCode !== null) throw new Error(`agent exited (${this.agent.exitCode}):\n${this.agentLog}`);
      const r = await this.node.exec([process.execPath, '-e', probe], { allowFail: true });
      if (r.code === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`agent not ready after ${timeoutMs} ms:\n${this.agentLog}`);
  }

  async killAgent(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const a = this.agent;
    if (!a || a.exitCode !== null || a.signalCode !== null) return;
    const done = new Promise((r) => a.once('exit', r));
    a.kill(signal);
    await done;
  }

  async destroy(): Promise<void> {
    await this.killAgent();
    await this.ds.close().catch(() => undefined);
    this.topo.destroySync();
    rmSync(this.storeDir, { recursive: true, force: true });
    rmSync(this.runDir, { recursive: true, force: true });
    if (existsSync(this.pinRoot)) rmSync(this.pinRoot, { recursive: true, force: true });
  }
}

/** Succeeds if a TCP connection from `from` to ip:port is accepted within the timeout. */
export async function tcpConnects(from: Netns, ip: string, port: number, timeoutS = 1): Promise<boolean> {
  const r = await from.exec(['nc', '-z', '-w', String(timeoutS), ip, String(port)], { allowFail: true, timeoutMs: (timeoutS + 3) * 1000 });
  return r.code === 0;
}

export async function pings(from: Netns, ip: string): Promise<boolean> {
  const r = await from.exec(['ping', '-c', '1', '-W', '1', ip], { allowFail: true });
  return r.code === 0;
}

/** Retries `check` until it returns `want` (policy convergence), up to `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, want: boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await check()) === want) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
