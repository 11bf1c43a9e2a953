/**
 * BgpDriver: keeps this node's bird2 configured from the datastore (Calico's confd, in small).
 *
 *   datastore ─Syncer(/tortie/v3/: Node, BGPConfiguration, BGPPeer, IPPool)─┐
 *             ─Syncer(IPAM blocks, IPv4 and IPv6)────────────────────────────┼─> renderBird ─> BirdDaemon.apply
 *   secrets dir (<dir>/<secret name>/<key>, as Kubernetes mounts a Secret) ──┘   (only when the text changed)
 *
 * Contract:
 * - Nothing is rendered before both syncers are in sync; then every change re-renders after
 *   `debounceMs` (bursts coalesce) and bird is reconfigured only if the text changed.
 * - Invalid resources are treated as absent (logged), like the agent does.
 * - This node's blocks are the blocks whose affinity is `host:<node>`; its borrowed addresses
 *   are allocations in other nodes' blocks whose attributes name this node (`secondary.node`).
 * - Render problems (missing secret, …) are logged once per distinct text; an apply bird rejects
 *   is logged and retried on the next change or after `retryMs`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Syncer, RESOURCE_ROOT, parseResourceKey, type Datastore, type SyncUpdate } from '../datastore';
import { kindOfPlural, resourceFromKv } from '../client/resources';
import { blockPrefix } from '../ipam';
import { checkResource, type BGPConfiguration, type BGPPeer, type IPPool, type Node } from '../model';
import type { BlockRecord } from '../ipam';
import type { Logger } from '../util/log';
import { renderBird, type BgpState } from './render';
import type { BirdDaemon } from './bird';
import { formatIP, tryParseCidr, tryParseIP, type IPAddr } from '../primitives';
import { nodeIPv6 } from './render';
import { withoutIpv6 } from '../model/ipv6-off';

/** The address `ordinal` places after `base` (IPv4 or IPv6), in its text form. */
function nthAddress(base: IPAddr, ordinal: number): string {
  const bytes = [...base.bytes];
  let carry = ordinal;
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const v = bytes[i]! + (carry % 256);
    bytes[i] = v % 256;
    carry = Math.floor(carry / 256) + Math.floor(v / 256);
  }
  return formatIP({ version: base.version, bytes });
}

export interface BgpDriverOptions {
  nodeName: string;
  datastore: Datastore;
  bird: BirdDaemon;
  log: Logger;
  /** Directory of password secrets: `<dir>/<name>/<key>` holds the password. */
  secretsDir?: string;
  learnedTable?: number;
  debounceMs?: number;
  retryMs?: number;
  /** Called after each render (the node list may have changed: LearnedRoutes re-maps next hops). */
  onRender?: () => void;
  /** Felix's ipv6Support (default true); false: IPv6 pools, blocks and node addresses are left out (src/model/ipv6-off.ts). */
  ipv6?: boolean;
}

export class BgpDriver {
  private readonly nodes = new Map<string, Node>();
  private readonly configs = new Map<string, BGPConfiguration>();
  private readonly peers = new Map<string, BGPPeer>();
  private readonly pools = new Map<string, IPPool>();
  private readonly blocks = new Map<string, BlockRecord>();
  private readonly syncers: Syncer[] = [];
  private inSync = 0;
  private timer?: NodeJS.Timeout;
  private applying: Promise<void> = Promise.resolve();
  private lastText?: string;
  private lastProblems = '';
  private stopped = false;
  private readonly log: Logger;
  /** Renders that reached bird (for tests and metrics). */
  applied = 0;

  constructor(private readonly o: BgpDriverOptions) {
    this.log = o.log.child({ component: 'bgp' });
  }

  async start(): Promise<void> {
    const mk = (prefix: string, on: (u: SyncUpdate) => void): Syncer =>
      new Syncer(this.o.datastore, prefix, {
        onUpdate: (u) => {
          on(u);
          this.schedule();
        },
        onInSync: () => {
          this.inSync++;
          this.schedule();
        },
      }, { logger: this.log });
    this.syncers.push(
      mk(RESOURCE_ROOT, (u) => this.onResource(u)),
      mk(blockPrefix(4), (u) => this.onBlock(u)),
      ...(this.o.ipv6 === false ? [] : [mk(blockPrefix(6), (u) => this.onBlock(u))]),
    );
    await Promise.all(this.syncers.map((s) => s.start()));
  }

  private onResource(u: SyncUpdate): void {
    const parsed = parseResourceKey(u.key);
    const kind = parsed && kindOfPlural(parsed.plural);
    if (!parsed || !kind) return;
    const maps: Partial<Record<string, Map<string, unknown>>> = {
      Node: this.nodes, BGPConfiguration: this.configs, BGPPeer: this.peers, IPPool: this.pools,
    };
    const m = maps[kind];
    if (m === undefined) return;
    if (u.type === 'delete') {
      m.delete(parsed.name);
      return;
    }
    const checked = checkResource(resourceFromKv(u.kv));
    if (checked.problems !== undefined) {
      this.log.error({ key: u.key, problems: checked.problems }, 'invalid resource in the datastore; treating it as absent');
      m.delete(parsed.name);
    } else {
      const r = this.o.ipv6 === false ? withoutIpv6(checked.resource) : checked.resource;
      if (r === undefined) m.delete(parsed.name);
      else m.set(parsed.name, r);
    }
  }

  private onBlock(u: SyncUpdate): void {
    if (u.type === 'delete') this.blocks.delete(u.key);
    else this.blocks.set(u.key, u.kv.value as unknown as BlockRecord);
  }

  /** The node whose BGP IPv4 or IPv6 address is `ip` (no prefix), if any. */
  nodeOfAddress(ip: string): string | undefined {
    const v6 = ip.includes(':') ? tryParseIP(ip) : undefined;
    for (const n of this.nodes.values()) {
      if (v6 === undefined ? n.spec.bgp?.ipv4Address?.split('/')[0] === ip : nodeIPv6(n) === formatIP(v6)) return n.metadata.name;
    }
    return undefined;
  }

  /** The renderer's input as of now. */
  state(): BgpState {
    const me = `host:${this.o.nodeName}`;
    const blocks: string[] = [];
    const borrowed: string[] = [];
    for (const b of this.blocks.values()) {
      if (b.affinity === me) {
        blocks.push(b.cidr);
        continue;
      }
      const base = tryParseCidr(b.cidr);
      if (base === undefined) continue;
      b.allocations.forEach((a, ordinal) => {
        if (a !== null && b.attributes[a]?.secondary?.node === this.o.nodeName) borrowed.push(nthAddress(base.ip, ordinal));
      });
    }
    return {
      nodeName: this.o.nodeName,
      nodes: [...this.nodes.values()],
      bgpConfigurations: [...this.configs.values()],
      bgpPeers: [...this.peers.values()],
      pools: [...this.pools.values()],
      blocks,
      borrowed,
      learnedTable: this.o.learnedTable,
      secret: (name, key) => this.secret(name, key),
    };
  }

  private secret(name: string, key: string): string | undefined {
    if (this.o.secretsDir === undefined) return undefined;
    try {
      return readFileSync(join(this.o.secretsDir, name, key), 'utf8').replace(/\r?\n$/, '');
    } catch {
      return undefined;
    }
  }

  private schedule(delay = this.o.debounceMs ?? 10): void {
    if (this.stopped || this.inSync < this.syncers.length || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.applying = this.applying.then(() => this.render());
    }, delay);
  }

  private async render(): Promise<void> {
    if (this.stopped) return;
    const r = renderBird(this.state());
    const problems = r.problems.join('\n');
    if (problems !== this.lastProblems) {
      for (const p of r.problems) this.log.warn({ problem: p }, 'BGP configuration');
      this.lastProblems = problems;
    }
    if (r.config === '' && this.lastText !== undefined && !this.nodes.has(this.o.nodeName)) {
      // This node left (its Node resource was deleted): stop advertising now, not after the
      // peers' graceful-restart timers.
      this.log.warn('this node\'s Node resource is gone: stopping bird');
      await this.o.bird.halt();
      this.lastText = undefined;
      return;
    }
    if (r.config === '' || r.config === this.lastText) {
      this.o.onRender?.();
      return;
    }
    try {
      await this.o.bird.apply(r.config);
      this.o.onRender?.();
      this.lastText = r.config;
      this.applied++;
      this.log.info({ peers: r.peers.length, blocks: this.state().blocks.length }, 'bird configured');
    } catch (e) {
      this.log.error({ err: e }, 'bird configuration failed; will retry');
      const t = setTimeout(() => this.schedule(0), this.o.retryMs ?? 2000);
      t.unref();
    }
  }

  /** Resolves when every change seen so far has reached bird (tests). */
  async settled(): Promise<void> {
    for (let i = 0; i < 1000 && (this.timer !== undefined || this.inSync < this.syncers.length); i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.applying;
  }

  async stop(mode: 'graceful' | 'down' | 'leave'): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.all(this.syncers.map((s) => s.stop()));
    await this.applying;
    await this.o.bird.stop(mode);
  }
}
