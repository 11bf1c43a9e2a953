/**
 * LinkWatcher: which network interfaces exist (name ↔ ifindex), kept current from
 * `ip -o monitor link` with a periodic full re-list to heal anything missed.
 *
 * Cost: the agent is a large process, and forking `ip` from it blocks its event loop (~15 ms per
 * fork, measured in tortie-node serving the CNI plugins). So monitor lines are applied directly
 * where they are unambiguous (a deletion by ifindex; an up/down or MAC change of a link already
 * known), and only a link not seen before (or renamed) triggers a re-list; re-lists are coalesced
 * (one in flight, at most one queued behind it) and run through the spawn helper
 * (src/util/spawner.ts) when the host process started one.
 *
 * Contract:
 * - `start()` resolves once the initial list is known; 'add' is emitted for every link present
 *   then (when `emitInitial`) and for each new one later, 'remove' when one goes away, 'change'
 *   when an ifindex keeps its name but its oper state, MAC or MTU changes. Events are de-duplicated against
 *   the current view, so a link seen by both the monitor and a re-list is reported once.
 * - Runs in the caller's network namespace, or in `netns` (`ip -n <netns>`), so tests and the lab
 *   can watch a node namespace without entering it.
 */
import { EventEmitter } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import { spawnerRun } from '../util/spawner';

export interface LinkInfo {
  name: string;
  ifindex: number;
  up: boolean;
  mac?: string;
  mtu?: number;
}

export interface LinkWatcherOptions {
  netns?: string;
  /** Only links whose name matches are tracked. */
  filter?: (name: string) => boolean;
  resyncMs?: number;
  log?: Logger;
}

interface IpJsonLink { ifindex: number; ifname: string; operstate?: string; flags?: string[]; address?: string; mtu?: number }

export function parseLinkList(json: string): LinkInfo[] {
  const arr = JSON.parse(json) as IpJsonLink[];
  return arr.map((l) => ({
    name: l.ifname,
    ifindex: l.ifindex,
    up: (l.flags ?? []).includes('UP'),
    mac: l.address,
    mtu: l.mtu,
  }));
}

/** One line of `ip -o monitor link`, as far as it can be read without ambiguity. */
export interface MonitorLine {
  deleted: boolean;
  ifindex: number;
  /** "name" or "name@peer" as ip prints it (a name may itself contain '@'). */
  label: string;
  up: boolean;
  mac?: string;
  mtu?: number;
}

export function parseMonitorLine(line: string): MonitorLine | undefined {
  const m = /^(Deleted )?(\d+): (\S+): <([^>]*)>(?: mtu (\d+))?(?:.*?link\/\S+ ([0-9a-f]{2}(?::[0-9a-f]{2})+))?/.exec(line);
  if (!m) return undefined;
  return { deleted: !!m[1], ifindex: Number(m[2]), label: m[3]!, up: m[4]!.split(',').includes('UP'), mtu: m[5] === undefined ? undefined : Number(m[5]), mac: m[6] };
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

  private async listNow(): Promise<LinkInfo[]> {
    const r = await spawnerRun(['ip', ...this.ipArgs('-j', 'link', 'show')], undefined, 10_000);
    if (r.code !== 0) throw new Error(`ip link show failed: ${r.stderr.trim() || `exit status ${r.code}`}`);
    return parseLinkList(r.stdout);
  }

  async start(): Promise<void> {
    this.monitor = spawn('ip', this.ipArgs('-o', 'monitor', 'link'), { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitor.once('exit', (code) => {
      if (!this.stopped) this.log.warn({ code }, 'ip monitor exited; relying on periodic re-list');
    });
    const rl = createInterface({ input: this.monitor.stdout! });
    rl.on('line', (line) => { if (!this.stopped) this.onMonitorLine(line); });
    await this.resync();
    this.timer = setInterval(() => this.requestResync(), this.opts.resyncMs ?? 10_000);
    this.timer.unref();
  }

  /** Applies a monitor line when it is unambiguous; anything else asks for a re-list. */
  private onMonitorLine(line: string): void {
    const m = parseMonitorLine(line);
    const known = m ? this.links.get(m.ifindex) : undefined;
    if (m?.deleted) {
      if (known) this.forget(known);
      return;
    }
    if (m && known && (m.label === known.name || m.label.startsWith(`${known.name}@`))) {
      if (known.up !== m.up || (m.mac !== undefined && known.mac !== m.mac) || (m.mtu !== undefined && known.mtu !== m.mtu)) {
        const l: LinkInfo = { ...known, up: m.up, mac: m.mac ?? known.mac, mtu: m.mtu ?? known.mtu };
        this.remember(l);
        this.emit('change', l);
      }
      return;
    }
    if (m && !known) {
      // A new link: ip prints "name@peer" for links with a peer, and a name may contain '@'.
      const filter = this.opts.filter ?? (() => true);
      const candidates = [m.label, ...[...m.label.matchAll(/@/g)].map((a) => m.label.slice(0, a.index))];
      if (!candidates.some((n) => n !== '' && filter(n))) return; // not tracked whatever its name is
      if (!m.label.includes('@')) {
        const l: LinkInfo = { name: m.label, ifindex: m.ifindex, up: m.up, mac: m.mac, mtu: m.mtu };
        const clash = this.names.get(l.name);
        if (clash) this.forget(clash);
        this.remember(l);
        this.emit('add', l);
        return;
      }
    }
    // A link whose name is not certain from the line, a rename, or a line not understood.
    this.requestResync();
  }

  private resyncing?: Promise<void>;
  private resyncQueued = false;

  /** A re-list soon: at most one runs at a time and at most one waits behind it. */
  private requestResync(): void {
    if (this.resyncing) { this.resyncQueued = true; return; }
    this.resyncing = this.resync().finally(() => {
      this.resyncing = undefined;
      if (this.resyncQueued && !this.stopped) { this.resyncQueued = false; this.requestResync(); }
    });
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
      } else if (old.up !== l.up || old.mac !== l.mac || old.mtu !== l.mtu) {
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
