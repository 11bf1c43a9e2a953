/**
 * Network-namespace topologies for tests, the lab and benchmarks.
 *
 * Contract (the project's network-safety rules live here):
 * - Every namespace is created by this process with a unique name (`tt<label>-<random>-<short>`),
 *   and every interface is created *inside* a namespace (`ip -n A link add … peer … netns B`), so
 *   nothing is ever created in, moved through, or addressed in the root namespace.
 * - A Topology owns its namespaces and the processes it spawned; `destroy()` kills the processes
 *   (and anything else still running in its namespaces) and deletes the namespaces, which takes
 *   their veths with them. It runs on success, failure, process exit, SIGINT and SIGTERM.
 * - Commands are bounded: `exec` has a timeout (default 30 s).
 */
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CommandError, killRunningSync, run, type ExecOptions, type ExecResult } from './exec';

// The command runner lives in util/exec (production code uses it without this harness); re-exported
// for the tests, the lab and the benchmarks that take it from here.
export { run, type ExecOptions, type ExecResult };

export interface SpawnOptions {
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
  /**
   * Enter only the network namespace (`nsenter --net`), keeping this process's mounts. Needed by
   * anything that pins BPF objects: `ip netns exec` mounts a fresh /sys, which hides the host's
   * bpffs at /sys/fs/bpf (and a bpffs mounted there would be a private, short-lived instance).
   */
  netOnly?: boolean;
}
export interface VethOptions { aMac?: string; bMac?: string; mtu?: number }

/** A namespace command or set-up step failed (the one command error, util/exec). */
export const NetnsError = CommandError;
export type NetnsError = CommandError;

const live = new Set<Topology>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => { for (const t of live) t.destroySync(); });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      // Commands still running die first: a CNI ADD or an `ip` call finishing after the teardown
      // would recreate what it just removed.
      killRunningSync();
      for (const t of live) t.destroySync();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

export class Netns {
  readonly path: string;
  private readonly procs = new Set<ChildProcess>();

  constructor(readonly name: string) {
    this.path = `/run/netns/${name}`;
  }

  /** Runs argv inside this namespace (`ip netns exec`, which also remounts /sys for it). */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(['ip', 'netns', 'exec', this.name, ...argv], opts);
  }

  /** Runs a shell snippet inside this namespace. */
  sh(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.exec(['sh', '-c', script], opts);
  }

  /** Starts a long-running process inside this namespace; killed by the topology's teardown. */
  spawn(argv: string[], opts: SpawnOptions = {}): ChildProcess {
    const [cmd, args] = opts.netOnly ? ['nsenter', [`--net=${this.path}`, '--', ...argv]] : ['ip', ['netns', 'exec', this.name, ...argv]];
    const child = spawn(cmd, args, {
      stdio: opts.stdio ?? 'pipe', env: opts.env ?? process.env, detached: true,
    });
    this.procs.add(child);
    child.once('exit', () => this.procs.delete(child));
    return child;
  }

  async ifindex(dev: string): Promise<number> {
    const { stdout } = await this.exec(['cat', `/sys/class/net/${dev}/ifindex`]);
    const n = Number.parseInt(stdout.trim(), 10);
    if (!Number.isInteger(n) || n <= 0) throw new NetnsError(`no ifindex for ${dev} in ${this.name}`);
    return n;
  }

  /** Kills what this namespace's handle spawned (process groups), then anything left inside it. */
  killAllSync(): void {
    for (const p of this.procs) {
      if (p.pid !== undefined && p.exitCode === null) {
        try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    this.procs.clear();
    try {
      const pids = execFileSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
      }
    } catch { /* namespace already removed */ }
  }
}

export class Topology {
  readonly prefix: string;
  private readonly namespaces: Netns[] = [];
  private readonly cleanups: (() => void)[] = [];
  private destroyed = false;

  private constructor(label: string) {
    const clean = label.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 10) || 't';
    this.prefix = `tt${clean}-${randomBytes(3).toString('hex')}`;
  }

  static create(label: string): Topology {
    installExitHooks();
    const t = new Topology(label);
    live.add(t);
    return t;
  }

  get all(): readonly Netns[] { return this.namespaces; }

  /**
   * Runs `fn` (synchronously, errors ignored) in destroySync after the processes are killed and
   * the namespaces deleted — also from the exit and signal hooks — for what the owner made
   * outside the namespaces (bpffs pins, temporary directories, pid files).
   */
  onDestroy(fn: () => void): void {
    this.cleanups.push(fn);
  }

  async addNetns(short: string): Promise<Netns> {
    if (this.destroyed) throw new NetnsError('topology already destroyed');
    if (!/^[a-z0-9-]{1,20}$/.test(short)) throw new NetnsError(`bad namespace short name "${short}"`);
    const ns = new Netns(`${this.prefix}-${short}`);
    // Synchronous (a few ms): a signal handled while `ip netns add` ran asynchronously would tear
    // down before the namespace was known here, and leave it behind.
    try {
      execFileSync('ip', ['netns', 'add', ns.name], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    } catch (e) {
      throw new NetnsError(`command failed: ip netns add ${ns.name}\n${String((e as { stderr?: unknown }).stderr ?? (e as Error).message).trim()}`);
    }
    this.namespaces.push(ns);
    await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A veth pair with one end in each namespace; both ends up. */
  async addVeth(a: Netns, aDev: string, b: Netns, bDev: string, opts: VethOptions = {}): Promise<void> {
    for (const d of [aDev, bDev]) {
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(d)) throw new NetnsError(`bad interface name "${d}" (1–15 chars)`);
    }
    await run(['ip', '-n', a.name, 'link', 'add', aDev, 'type', 'veth', 'peer', 'name', bDev, 'netns', b.name]);
    if (opts.aMac) await a.exec(['ip', 'link', 'set', aDev, 'address', opts.aMac]);
    if (opts.bMac) await b.exec(['ip', 'link', 'set', bDev, 'address', opts.bMac]);
    if (opts.mtu) {
      await a.exec(['ip', 'link', 'set', aDev, 'mtu', String(opts.mtu)]);
      await b.exec(['ip', 'link', 'set', bDev, 'mtu', String(opts.mtu)]);
    }
    await a.exec(['ip', 'link', 'set', aDev, 'up']);
    await b.exec(['ip', 'link', 'set', bDev, 'up']);
  }

  async destroy(): Promise<void> {
    this.destroySync();
  }

  /** Synchronous so it can run from 'exit' and signal handlers. Idempotent. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const ns of this.namespaces) ns.killAllSync();
    for (const ns of this.namespaces) {
      try { execFileSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore' }); } catch { /* gone */ }
    }
    for (const fn of this.cleanups.splice(0)) {
      try { fn(); } catch { /* best effort: the rest still runs */ }
    }
  }
}

/** Names of namespaces a topology with this label prefix left behind (for leak checks in tests). */
export function leftoverNamespaces(prefix: string): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n && n.startsWith(prefix));
}
