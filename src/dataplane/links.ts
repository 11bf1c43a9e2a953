/**
 * LinkWatcher: which network interfaces exist (name ↔ ifindex), kept current from
 * `ip -o monitor link` with a periodic full re-list to heal anything missed.
 *
 * Contract:
 * - `start()` resolves once the initial list is known; 'add' is emitted for every link present
 *   then (when `emitInitial`) and for each new one later, 'remove' when one goes away, 'change'
 *   when an ifindex keeps its name but its oper state changes. Events are de-duplicated against
 *   the current view, so a link seen by both the monitor and a re-list is reported once.
 * - Runs in the caller's network namespace, or in `netns` (`ip -n <netns>`), so tests and the lab
 *   can watch a node namespace without entering it.
 */
import { EventEmitter } from 'node:events';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';

export interface LinkInfo {
  name: string;
  ifindex: number;
  up: boolean;
  mac?: string;
}

export interface LinkWatcherOptions {
  netns?: string;
  /** Only links whose name matches are tracked. */
  filter?: (name: string) => boolean;
  resyncMs?: number;
  log?: Logger;
}

interface IpJsonLink { ifindex: number; ifname: string; operstate?: string; flags?: string[]; address?: string }

export function parseLinkList(json: string): LinkInfo[] {
  const arr = JSON.parse(json) as IpJsonLink[];
  return arr.map((l) => ({
    name: l.ifname,
    ifindex: l.ifindex,
    up: (l.flags ?? []).includes('UP'),
    mac: l.address,
  }));
}

export class LinkWatcher extends EventEmitter {
  private readonly links = new Map<number, LinkInfo>();
  private readonly names = new Map<string, LinkInfo>();
  private monitor?: ChildProcess;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly opts: LinkWatcherOptions = {}) {
    super();
    this.log = opts.log ?? silentLogger;
  }

  private ipArgs(...args: string[]): string[] {
    return this.opts.netns ? ['-n', this.opts.netns, ...args] : args;
  }

  private listNow(): Promise<LinkInfo[]> {
    return new Promise((resolve, reject) => {
      execFile('ip', this.ipArgs('-j', 'link', 'show'), { timeout: 10_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`ip link show failed: ${String(stderr).trim() || err.message}`));
        else {
          try { resolve(parseLinkList(String(stdout))); } catch (e) { reject(e); }
        }
      });
    });
  }

  async start(): Promise<void> {
    this.monitor = spawn('ip', this.ipArgs('-o', 'monitor', 'link'), { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitor.once('exit', (code) => {
      if (!this.stopped) this.log.warn({ code }, 'ip monitor exited; relying on periodic re-list');
    });
    const rl = createInterface({ input: this.monitor.stdout! });
    // Any monitor line means "something changed": re-list (cheap) rather than parse every format.
    let pending = false;
    rl.on('line', () => {
      if (pending || this.stopped) return;
      pending = true;
      setImmediate(() => { pending = false; void this.resync(); });
    });
    await this.resync();
    this.timer = setInterval(() => void this.resync(), this.opts.resyncMs ?? 10_000);
    this.timer.unref();
  }

  /** Re-lists links and emits the differences. */
  async resync(): Promise<void> {
    let now: LinkInfo[];
    try {
      now = await this.listNow();
    } catch (e) {
      this.log.warn({ err: e }, 'listing links failed');
      return;
    }
    if (this.stopped) return;
    const filter = this.opts.filter ?? (() => true);
    const seen = new Set<number>();
    for (const l of now) {
      if (!filter(l.name)) continue;
      seen.add(l.ifindex);
      const old = this.links.get(l.ifindex);
      if (!old || old.name !== l.name) {
        if (old) this.forget(old);
        this.remember(l);
        this.emit('add', l);
      } else if (old.up !== l.up || old.mac !== l.mac) {
        this.remember(l);
        this.emit('change', l);
      }
    }
    for (const [idx, l] of this.links) if (!seen.has(idx)) this.forget(l);
  }

  private remember(l: LinkInfo): void {
    this.links.set(l.ifindex, l);
    this.names.set(l.name, l);
  }

  private forget(l: LinkInfo): void {
    this.links.delete(l.ifindex);
    if (this.names.get(l.name) === l) this.names.delete(l.name);
    this.emit('remove', l);
  }

  byName(name: string): LinkInfo | undefined {
    return this.names.get(name);
  }

  byIndex(ifindex: number): LinkInfo | undefined {
    return this.links.get(ifindex);
  }

  list(): LinkInfo[] {
    return [...this.links.values()];
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.monitor?.kill('SIGKILL');
  }
}
