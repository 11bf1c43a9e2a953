/**
 * LearnedRoutes: what bird learned from its peers, read from the kernel table bird writes it to
 * (render.ts: `tortie_kernel_learned`, table DEFAULT_LEARNED_TABLE), mapped to the nodes that
 * advertised it, for the route manager (routeSource `bgp`).
 *
 *   ip -4 monitor route ──(any event; bursts coalesce)──> ip -j -4 route show table N
 *                                                          └─> next hop → node (by Node bgp.ipv4Address)
 *                                                              └─> onRoutes(Map<cidr, node>)
 *
 * Contract: onRoutes gets the complete current set each time it changes (never a delta), also
 * after `resyncMs` without events (a lost monitor event cannot leave the set stale). Routes
 * whose next hop is no known node (a ToR's own prefixes) are left out and counted in `foreign`.
 * Multipath routes use their first next hop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { run } from '../util/netns';
import type { Logger } from '../util/log';
import { DEFAULT_LEARNED_TABLE } from './render';

export interface LearnedRoutesOptions {
  /** Node address (no prefix) → node name, as of now. */
  nodeOfAddress: (ip: string) => string | undefined;
  onRoutes: (routes: Map<string, string>) => void;
  log: Logger;
  table?: number;
  /** `ip -n <name>` (tests); default: this process's namespace. */
  netns?: string;
  resyncMs?: number;
}

interface RouteRow { dst: string; gateway?: string; nexthops?: { gateway?: string }[] }

export class LearnedRoutes {
  private monitor?: ChildProcess;
  private timer?: NodeJS.Timeout;
  private resync?: NodeJS.Timeout;
  private reading: Promise<void> = Promise.resolve();
  private last = '';
  private stopped = false;
  foreign = 0;

  constructor(private readonly o: LearnedRoutesOptions) {}

  private ip(): string[] {
    return this.o.netns ? ['ip', '-n', this.o.netns] : ['ip'];
  }

  async start(): Promise<void> {
    const [cmd, ...args] = [...this.ip(), '-4', 'monitor', 'route'];
    this.monitor = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitor.stdout?.on('data', () => this.kick());
    this.monitor.once('exit', () => {
      if (!this.stopped) this.o.log.warn('ip monitor exited; learned routes fall back to periodic reads');
    });
    this.resync = setInterval(() => this.kick(), this.o.resyncMs ?? 10_000);
    this.resync.unref();
    await this.read();
  }

  /** Re-reads soon (the node list changed, or the kernel did). */
  kick(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reading = this.reading.then(() => this.read()).catch((e: unknown) => this.o.log.warn({ err: e }, 'reading learned routes failed'));
    }, 5);
  }

  private async read(): Promise<void> {
    const r = await run([...this.ip(), '-j', '-4', 'route', 'show', 'table', String(this.o.table ?? DEFAULT_LEARNED_TABLE)]);
    const rows = (r.stdout.trim() ? JSON.parse(r.stdout) : []) as RouteRow[];
    const out = new Map<string, string>();
    let foreign = 0;
    for (const row of rows) {
      const gw = row.gateway ?? row.nexthops?.[0]?.gateway;
      const node = gw === undefined ? undefined : this.o.nodeOfAddress(gw);
      if (node === undefined) {
        foreign++;
        continue;
      }
      out.set(row.dst.includes('/') ? row.dst : `${row.dst}/32`, node);
    }
    this.foreign = foreign;
    const key = JSON.stringify([...out].sort());
    if (key === this.last) return;
    this.last = key;
    this.o.onRoutes(out);
  }

  /** Resolves when the reads triggered so far are done (tests). */
  async settled(): Promise<void> {
    while (this.timer) await new Promise((r) => setTimeout(r, 5));
    await this.reading;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.resync) clearInterval(this.resync);
    this.monitor?.kill();
  }
}
