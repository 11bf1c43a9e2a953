import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlatCluster, type Netns, type Topology } from '../../../src/testbed';
import { BirdDaemon } from '../../../src/bgp/bird';
import { renderBird, type BgpState } from '../../../src/bgp/render';
import { parseBirdProtocols, type BirdProtocol } from '../../../src/bgp/status';
import { node, pool } from './state';
import type { BGPConfiguration, BGPPeer, Node } from '../../../src/model';

export interface BirdNode { name: string; ip: string; block: string; ns: Netns; bird: BirdDaemon; dir: string }

/** The testbed's FlatCluster (nodes on one bridge, 198.18.1.0/24), each node with a bird2 driven by BirdDaemon. */
export class BirdCluster {
  bed!: FlatCluster;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-bgp-'));
  readonly nodes: BirdNode[] = [];
  nodeResources: Node[] = [];
  configs: BGPConfiguration[] = [];
  peers: BGPPeer[] = [];
  pools = [pool('pods', { cidr: '192.168.0.0/16' })];

  constructor(readonly label: string) {}

  get topo(): Topology { return this.bed.topo; }
  get sw(): Netns { return this.bed.sw; }

  async build(count: number): Promise<void> {
    this.bed = await FlatCluster.create(this.label);
    for (let i = 1; i <= count; i++) await this.addNode(i);
  }

  async addNode(i: number, labels?: Record<string, string>, bgp: Record<string, unknown> = {}): Promise<BirdNode> {
    const { name, ns, ip } = await this.bed.addNode(i);
    const dir = path.join(this.dir, name);
    const n: BirdNode = { name, ip, block: `192.168.${i}.0/26`, ns, dir, bird: new BirdDaemon({ dir, netnsPath: ns.path }) };
    this.nodes.push(n);
    this.nodeResources.push(node(name, { ipv4Address: `${ip}/24`, ...bgp }, labels));
    return n;
  }

  state(n: BirdNode, over: Partial<BgpState> = {}): BgpState {
    return {
      nodeName: n.name, nodes: this.nodeResources, bgpConfigurations: this.configs, bgpPeers: this.peers, pools: this.pools,
      blocks: [n.block], borrowed: [], ...over,
    };
  }

  async applyAll(): Promise<void> {
    for (const n of this.nodes) {
      if (!this.nodeResources.some((r) => r.metadata.name === n.name)) continue;
      await n.bird.apply(renderBird(this.state(n)).config);
    }
  }

  async protocols(n: BirdNode): Promise<BirdProtocol[]> {
    return parseBirdProtocols(await n.bird.birdc(['show', 'protocols']));
  }

  /** Routes in the learned table (122): dst → gateway. */
  async learned(n: BirdNode): Promise<Map<string, string>> {
    const r = await n.ns.exec(['ip', '-j', '-4', 'route', 'show', 'table', '122']);
    const rows = JSON.parse(r.stdout || '[]') as { dst: string; gateway?: string }[];
    return new Map(rows.map((x) => [x.dst, x.gateway ?? '']));
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) await n.bird.stop('down').catch(() => undefined);
    this.bed?.destroySync();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls `check` until it returns true (or a value), failing with `what` after timeoutMs. */
export async function waitFor<T>(what: string, check: () => Promise<T | false | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== false && v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
