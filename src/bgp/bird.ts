/**
 * BirdDaemon: one bird2 process for this node, supervised.
 *
 *   apply(text) ─> dir/bird.conf.new ─ bird -p -c ─ rename ─> dir/bird.conf ─┬─ not running: start
 *                                                                            └─ running: birdc configure
 *   bird -f -c dir/bird.conf -s dir/bird.ctl -P dir/bird.pid     (its own control socket)
 *
 * Contract:
 * - `dir` is this node's private run directory (nothing else writes there); the control socket,
 *   pid file and configuration live in it, so several nodes' birds on one machine (the lab, the
 *   tests) never meet. bird runs in the caller's network namespace.
 * - A configuration is written atomically (write + fsync + rename) and only after `bird -p`
 *   accepted it; a rejected one throws BirdError(ERR_BIRD_CONFIG) with bird's message and leaves
 *   the running configuration untouched.
 * - If bird exits on its own it is started again (backoff 0.2 s → 10 s, reset after 30 s up);
 *   `restarts` counts it. `stop('graceful')` asks bird to shut down for a graceful restart (its
 *   peers keep our routes for the restart time; the kernel keeps bird's routes: `persist`), and
 *   `stop('down')` terminates it normally (peers withdraw at once).
 * - A bird left running by an earlier agent (pid file alive, socket answering) is adopted:
 *   configured, not restarted, so an agent restart does not touch the BGP sessions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../util/exec';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import { isProcessAlive, stopProcess } from '../util/process';
import { TortieError } from '../util/errors';

export class BirdError extends TortieError {
  declare readonly code: 'ERR_BIRD_CONFIG' | 'ERR_BIRD_CONTROL' | 'ERR_BIRD_START';
  constructor(code: 'ERR_BIRD_CONFIG' | 'ERR_BIRD_CONTROL' | 'ERR_BIRD_START', message: string) {
    super(code, message);
  }
}

export interface BirdOptions {
  dir: string;
  birdBin?: string;
  birdcBin?: string;
  /** Run bird in this network namespace (`/run/netns/<name>`); default: the caller's. */
  netnsPath?: string;
  log?: Logger;
}

const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 10_000;

export class BirdDaemon {
  readonly confPath: string;
  readonly socketPath: string;
  readonly pidPath: string;
  private child?: ChildProcess;
  private adoptedPid?: number;
  private watchTimer?: NodeJS.Timeout;
  private restartTimer?: NodeJS.Timeout;
  private backoffMs = BACKOFF_MIN_MS;
  private startedAt = 0;
  private stopping = false;
  private current?: string;
  private readonly log: Logger;
  restarts = 0;

  constructor(private readonly o: BirdOptions) {
    this.confPath = join(o.dir, 'bird.conf');
    this.socketPath = join(o.dir, 'bird.ctl');
    this.pidPath = join(o.dir, 'bird.pid');
    this.log = (o.log ?? silentLogger).child({ component: 'bird' });
  }

  /** The pid of the running bird, if any. */
  get pid(): number | undefined {
    if (this.child?.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) return this.child.pid;
    return this.adoptedPid !== undefined && isProcessAlive(this.adoptedPid) ? this.adoptedPid : undefined;
  }

  /** Checks `text` with bird's parser, installs it atomically and makes bird use it. */
  async apply(text: string): Promise<void> {
    mkdirSync(this.o.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.confPath}.new`;
    writeAtomic(tmp, text);
    const check = await run([this.o.birdBin ?? 'bird', '-p', '-c', tmp], { allowFail: true });
    if (check.code !== 0) {
      rmSync(tmp, { force: true });
      throw new BirdError('ERR_BIRD_CONFIG', `bird rejected the rendered configuration: ${(check.stderr || check.stdout).trim()}`);
    }
    renameSync(tmp, this.confPath);
    const changed = this.current !== text;
    this.current = text;
    if (this.pid === undefined && !this.adopt()) {
      this.start();
      return;
    }
    if (changed) await this.configure();
  }

  /** `birdc configure`: bird re-reads the file; sessions whose options did not change stay up. */
  async configure(): Promise<void> {
    const out = await this.birdc(['configure']);
    if (!/Reconfigured|Reconfiguration in progress|Reconfiguration already in progress/.test(out)) {
      throw new BirdError('ERR_BIRD_CONTROL', `birdc configure: ${out.trim()}`);
    }
  }

  /** Runs a birdc command on this bird's socket; returns its output. */
  async birdc(args: string[]): Promise<string> {
    const r = await run([this.o.birdcBin ?? 'birdc', '-s', this.socketPath, ...args], { allowFail: true, timeoutMs: 10_000 });
    if (r.code !== 0) throw new BirdError('ERR_BIRD_CONTROL', `birdc ${args.join(' ')}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  }

  /** Waits until bird answers on its socket. */
  async ready(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.birdc(['show', 'status']);
        return;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private adopt(): boolean {
    if (!existsSync(this.pidPath) || !existsSync(this.socketPath)) return false;
    const pid = Number.parseInt(readFileSync(this.pidPath, 'utf8'), 10);
    if (!Number.isInteger(pid) || pid <= 1 || !isProcessAlive(pid)) return false;
    this.adoptedPid = pid;
    this.log.info({ pid }, 'adopted the running bird');
    this.watch();
    return true;
  }

  private start(): void {
    if (this.stopping) return;
    rmSync(this.socketPath, { force: true });
    // -R: start in graceful-restart recovery (as Calico runs bird): the OPEN says our forwarding
    // state was kept, so peers hold our routes until our End-of-RIB instead of dropping them
    // when the new session comes up (RFC 4724 §4.2).
    const argv = [this.o.birdBin ?? 'bird', '-R', '-f', '-c', this.confPath, '-s', this.socketPath, '-P', this.pidPath];
    // nsenter execs bird in place: the child's pid is bird's.
    const [cmd, ...args] = this.o.netnsPath ? ['nsenter', `--net=${this.o.netnsPath}`, '--', ...argv] : argv;
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      // Its own process group: bird outlives an agent restart (graceful restart keeps the routes).
      detached: true,
    });
    this.child = child;
    this.adoptedPid = undefined;
    this.startedAt = Date.now();
    let tail = '';
    child.stderr?.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).slice(-2000);
      for (const line of d.toString().split('\n')) if (line.trim()) this.log.debug({ bird: line.trim() }, 'bird');
    });
    child.once('error', (e) => this.log.error({ err: e }, 'bird could not be started'));
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.stopping) return;
      this.log.warn({ code, signal, stderr: tail.trim().split('\n').slice(-3) }, 'bird exited; restarting');
      this.scheduleRestart();
    });
    child.unref();
    this.log.info({ pid: child.pid, socket: this.socketPath }, 'bird started');
    this.watch();
  }

  /** An adopted bird is not our child: poll it. */
  private watch(): void {
    if (this.watchTimer) return;
    this.watchTimer = setInterval(() => {
      if (this.stopping || this.restartTimer || this.child !== undefined) return;
      if (this.adoptedPid !== undefined && !isProcessAlive(this.adoptedPid)) {
        this.log.warn({ pid: this.adoptedPid }, 'adopted bird exited; restarting');
        this.adoptedPid = undefined;
        this.scheduleRestart();
      }
    }, 1000);
    this.watchTimer.unref();
  }

  private scheduleRestart(): void {
    if (Date.now() - this.startedAt > 30_000) this.backoffMs = BACKOFF_MIN_MS;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restarts++;
      if (existsSync(this.confPath)) this.start();
    }, wait);
    this.restartTimer.unref();
  }

  /**
   * Terminates bird (peers withdraw at once) but keeps supervising: the next apply starts it
   * again. For a node that left the cluster (its Node resource is gone).
   */
  async halt(): Promise<void> {
    await this.stop('down');
    this.stopping = false;
    this.current = undefined;
  }

  /**
   * Stops supervising. 'graceful': bird shuts down for a graceful restart (peers keep routes);
   * 'down': a normal shutdown (peers withdraw); 'leave': bird keeps running (adopted next time).
   */
  async stop(mode: 'graceful' | 'down' | 'leave'): Promise<void> {
    this.stopping = true;
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.watchTimer = this.restartTimer = undefined;
    const pid = this.pid;
    if (pid === undefined || mode === 'leave') return;
    if (mode === 'graceful') {
      await this.birdc(['graceful', 'restart']).catch((e: unknown) => this.log.warn({ err: e }, 'graceful restart request failed'));
      await stopProcess(pid);
    } else {
      await stopProcess(pid, { signal: 'SIGTERM' });
    }
  }
}


function writeAtomic(path: string, text: string): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
