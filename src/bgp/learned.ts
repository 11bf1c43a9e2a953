/**
 * LearnedRoutes: what bird learned from its peers, mapped to the nodes that advertised it, for
 * the route manager (routeSource `bgp`).
 *
 *   ip monitor route ──(any event; bursts coalesce)──> birdc show route table tortie_learned4 all
 *   (bird mirrors that table into kernel table N,         (and tortie_learned6 on a node with IPv6)
 *    IPv4 and IPv6)                                          └─> BGP.next_hop → node (Node bgp.ipv4Address
 *                                                                 or bgp.ipv6Address)
 *    render.ts: `tortie_kernel_learned[6]`)                    └─> onRoutes(Map<cidr, node>)
 *
 * The BGP next hop is read from bird, not from the kernel table: for a multihop iBGP route (a node
 * in another subnet) the kernel's gateway is the resolved underlay hop, not the node.
 *
 * Contract: onRoutes gets the complete current set each time it changes (never a delta); it is
 * re-read after `resyncMs` without events too (a lost monitor event cannot leave it stale).
 * Routes whose next hop is no known node (a ToR's own prefixes) are left out and counted in
 * `foreign`. Only the first (best) route of a prefix counts. An IPv6 route's BGP next hop is its
 * global address (bird shows the link-local one after it, which is ignored).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../util/log';

/** `show route … all` of bird2 → prefix → BGP next hop (the first route shown per prefix). */
export function parseBirdRoutes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let net: string | undefined;
  let first = false;
  for (const line of text.split('\n')) {
    const head = /^(\d+\.\d+\.\d+\.\d+\/\d+|[0-9a-f]*:[0-9a-f:.]*\/\d+)\s+\S/i.exec(line);
    if (head !== null) {
      net = head[1];
      first = !out.has(net);
      continue;
    }
    if (/^\s+(unicast|blackhole|unreachable|prohibited)\s/.test(line)) {
      first = false; // another route of the same prefix
      continue;
    }
    const nh = /^\s+BGP\.next_hop:\s+(\S+)/.exec(line);
    if (nh !== null && net !== undefined && first) {
      out.set(net, nh[1]);
      first = false;
    }
  }
  return out;
}

/**
 * The text LearnedRoutes reads: bird's learned IPv4 table, then the IPv6 one (rendered only on a
 * node with an IPv6 address: its absence is no error).
 */
export async function showLearnedTables(birdc: (args: string[]) => Promise<string>): Promise<string> {
  const v4 = await birdc(['show', 'route', 'table', 'tortie_learned4', 'all']);
  const v6 = await birdc(['show', 'route', 'table', 'tortie_learned6', 'all']).catch(() => '');
  return `${v4}\n${v6}`;
}

export interface LearnedRoutesOptions {
  /** bird's `show route table tortie_learned4 all` output, and tortie_learned6's (showLearnedTables). */
  showRoutes: () => Promise<string>;
  /** Node address (no prefix) → node name, as of now. */
  nodeOfAddress: (ip: string) => string | undefined;
  onRoutes: (routes: Map<string, string>) => void;
  log: Logger;
  /** `ip -n <name>` (tests); default: this process's namespace. */
  netns?: string;
  resyncMs?: number;
}

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
    const [cmd, ...args] = [...this.ip(), 'monitor', 'route'];
    this.monitor = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitor.stdout?.on('data', () => this.kick());
    this.monitor.once('exit', () => {
      if (!this.stopped) this.o.log.warn('ip monitor exited; learned routes fall back to periodic reads');
    });
    this.resync = setInterval(() => this.kick(), this.o.resyncMs ?? 10_000);
    this.resync.unref();
    // bird may not be up yet (its first configuration is being written): the kick after each
    // render and the periodic re-read catch up.
    await this.read().catch((e: unknown) => this.o.log.debug({ err: e }, 'first read of learned routes failed; will retry'));
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
    const routes = parseBirdRoutes(await this.o.showRoutes());
    const out = new Map<string, string>();
    let foreign = 0;
    for (const [dst, gw] of routes) {
      const node = this.o.nodeOfAddress(gw);
      if (node === undefined) {
        foreign++;
        continue;
      }
      out.set(dst, node);
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
