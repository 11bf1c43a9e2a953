/**
 * The testbed's layouts, all built from src/util/netns (unique namespace names, interfaces created
 * inside namespaces, teardown on success, failure, exit and signals):
 *
 * SingleNode — one node and the world outside it:
 *
 *     out 198.18.0.1/24 ══ eth0 ── node 198.18.0.10/24 (default route via out)
 *         fd00:198:18::1/64            fd00:198:18::10/64 (with `ipv6`; default route via out)
 *                                   ├─ cali<w> ══ eth0 of workload w (/32, via 169.254.1.1;
 *                                   │             its /128 via fe80::ecee:eeff:feee:eeee with `ip6`)
 *                                   └─ …
 *
 * ThreeNodeCluster — the lab's cluster (README):
 *
 *             198.18.1.0/24 (br1 in rtr)             198.18.2.0/24 (br2)
 *   node-a .10 ──┐                                ┌── node-c .10
 *   node-b .11 ──┴── rtr (.1 / .1 / .1) ──────────┘
 *                          │ 198.18.3.0/24
 *                       outside .10  (default route via rtr; no routes to the pools)
 *
 * FlatCluster — N nodes (node-<i>, 198.18.1.<10+i>/24) on one bridge in namespace `sw`, and other
 *   hosts of that segment (`attach`: a ToR, a route reflector).
 *
 * Every node gets NODE_SYSCTLS (src/testbed/wire.ts); workloads are wired by the CNI plugin's own
 * steps. Owners register what they make outside the namespaces (pins, directories) with
 * `onDestroy`, which also runs from the exit and signal hooks.
 */
import { Topology, type Netns } from '../util/netns';
import { configureNode, wireWorkload, type Workload, type WorkloadSpec } from './wire';
import { programWorkloads, type ProgrammedNode } from './agent';
import type { WepDatapath } from '../dataplane/bpf/loader';
import type { Resource } from '../model';

export const NODE_IP = '198.18.0.10';
export const OUTSIDE_IP = '198.18.0.1';
export const POOL_CIDR = '192.168.0.0/16';
/** SingleNode's IPv6 (ULA) underlay with `ipv6: true`, and the IPv6 pool the outside routes to the node. */
export const NODE_IP6 = 'fd00:198:18::10';
export const OUTSIDE_IP6 = 'fd00:198:18::1';
export const POOL6_CIDR = 'fd00:10::/32';

/** What every layout has: its topology, workloads by name, teardown. */
abstract class Layout {
  readonly workloads = new Map<string, Workload>();
  constructor(readonly topo: Topology) {}
  onDestroy(fn: () => void): void { this.topo.onDestroy(fn); }
  async destroy(): Promise<void> { this.topo.destroySync(); }
  destroySync(): void { this.topo.destroySync(); }

  /**
   * Builds with `make` on a new topology, or on `topo` (one the caller created to know its names
   * early or to hold more of its own). If building fails the topology is destroyed, either way.
   */
  protected static async building<T extends Layout>(label: string, make: (topo: Topology) => Promise<T>, topo = Topology.create(label)): Promise<T> {
    try {
      return await make(topo);
    } catch (e) {
      topo.destroySync();
      throw e;
    }
  }

  protected async wire(node: Netns, name: string, ip: string, o: Omit<WorkloadSpec, 'name' | 'ip'>): Promise<Workload> {
    if (this.workloads.has(name)) throw new Error(`workload ${name} exists already`);
    const w = await wireWorkload(this.topo, node, { name, ip, ...o });
    this.workloads.set(name, w);
    return w;
  }
}

export interface SingleNodeOptions {
  nodeIp?: string;
  outsideIp?: string;
  /** Prefix length of the node–outside link (default 24). */
  prefix?: number;
  /** The outside host routes the pools to the node (default false: replies need SNAT). */
  outsideRoutesPools?: boolean;
  /**
   * Dual-stack underlay (default false): NODE_IP6/64 and OUTSIDE_IP6/64 on the link (no DAD), the
   * node's IPv6 default route via the outside; with `outsideRoutesPools`, POOL6_CIDR via the node.
   */
  ipv6?: boolean;
  /** The node forwards globally (default true; see NodeNetOptions.forwarding). */
  forwarding?: boolean;
  /** Build in this topology (one the caller made to hold more of its own). */
  topo?: Topology;
}

export class SingleNode extends Layout {
  private constructor(topo: Topology, readonly node: Netns, readonly outside: Netns, readonly nodeIp: string, readonly outsideIp: string) {
    super(topo);
  }

  static create(label: string, o: SingleNodeOptions = {}): Promise<SingleNode> {
    const nodeIp = o.nodeIp ?? NODE_IP, outsideIp = o.outsideIp ?? OUTSIDE_IP;
    return Layout.building(label, async (topo) => {
      const node = await topo.addNetns('node');
      const outside = await topo.addNetns('out');
      await topo.addVeth(node, 'eth0', outside, 'eth0');
      const prefix = o.prefix ?? 24;
      await outside.sh(`ip addr add ${outsideIp}/${prefix} dev eth0${o.outsideRoutesPools ? ` && ip route add ${POOL_CIDR} via ${nodeIp}` : ''}`);
      // The default route matters: proxy ARP answers for 169.254.1.1 only when the node has a
      // route to it through another interface.
      await configureNode(node, { address: `${nodeIp}/${prefix}`, gateway: outsideIp, forwarding: o.forwarding });
      if (o.ipv6) {
        await outside.sh(`ip -6 addr add ${OUTSIDE_IP6}/64 dev eth0 nodad${o.outsideRoutesPools ? ` && ip -6 route add ${POOL6_CIDR} via ${NODE_IP6}` : ''}`);
        await node.sh(`ip -6 addr add ${NODE_IP6}/64 dev eth0 nodad && ip -6 route add default via ${OUTSIDE_IP6} dev eth0`);
      }
      return new SingleNode(topo, node, outside, nodeIp, outsideIp);
    }, o.topo);
  }

  /** A workload behind `cali<name>` (or `hostIf`), wired by the CNI plugin's steps. */
  addWorkload(name: string, ip: string, o: Omit<WorkloadSpec, 'name' | 'ip'> = {}): Promise<Workload> {
    return this.wire(this.node, name, ip, o);
  }

  /** Compiles `resources`, writes them into `dp` and attaches it to every workload (programWorkloads). */
  program(dp: WepDatapath, resources: Resource[], nodeName?: string): ProgrammedNode {
    return programWorkloads(this.node, this.workloads.values(), dp, resources, nodeName);
  }
}

export interface BedNode { name: string; ns: Netns; ip: string; prefix: number; gateway?: string }

export class ThreeNodeCluster extends Layout {
  readonly nodes = new Map<string, BedNode>();
  readonly outsideIp = '198.18.3.10';
  private constructor(topo: Topology, readonly router: Netns, readonly outside: Netns) {
    super(topo);
  }

  /** `underlayMtu`: MTU of the whole underlay (node uplinks, router ports, the outside link); default the veths' 1500. */
  static create(label: string, o: { topo?: Topology; underlayMtu?: number } = {}): Promise<ThreeNodeCluster> {
    return Layout.building(label, async (topo) => {
      const router = await topo.addNetns('rtr');
      await router.sh('sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 && ' +
        'ip link add br1 type bridge && ip link add br2 type bridge && ip link set br1 up && ip link set br2 up && ' +
        'ip addr add 198.18.1.1/24 dev br1 && ip addr add 198.18.2.1/24 dev br2');
      const outside = await topo.addNetns('outside');
      const c = new ThreeNodeCluster(topo, router, outside);
      const mtu = o.underlayMtu ? { mtu: o.underlayMtu } : {};
      await topo.addVeth(router, 'o', outside, 'eth0', mtu);
      await router.sh('ip addr add 198.18.3.1/24 dev o');
      await outside.sh(`ip addr add ${c.outsideIp}/24 dev eth0 && ip route add default via 198.18.3.1`);
      for (const [name, ip, br] of [['node-a', '198.18.1.10', 'br1'], ['node-b', '198.18.1.11', 'br1'], ['node-c', '198.18.2.10', 'br2']] as const) {
        const ns = await topo.addNetns(name);
        const leg = `p${name.slice(-1)}`;
        await topo.addVeth(ns, 'eth0', router, leg, mtu);
        await router.sh(`ip link set ${leg} master ${br}`);
        const gateway = ip.replace(/\.\d+$/, '.1');
        await configureNode(ns, { address: `${ip}/24`, gateway });
        c.nodes.set(name, { name, ns, ip, prefix: 24, gateway });
      }
      return c;
    }, o.topo);
  }

  node(name: string): BedNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** A workload on `node`, wired by the CNI plugin's steps. */
  addWorkload(name: string, node: string, ip: string, o: Omit<WorkloadSpec, 'name' | 'ip'> = {}): Promise<Workload & { node: BedNode }> {
    const n = this.node(node);
    return this.wire(n.ns, name, ip, o).then((w) => Object.assign(w, { node: n }));
  }
}

export class FlatCluster extends Layout {
  readonly nodes: BedNode[] = [];
  private constructor(topo: Topology, readonly sw: Netns) {
    super(topo);
  }

  static create(label: string, count = 0): Promise<FlatCluster> {
    return Layout.building(label, async (topo) => {
      const sw = await topo.addNetns('sw');
      await sw.sh('ip link add br0 type bridge && ip link set br0 up');
      const c = new FlatCluster(topo, sw);
      for (let i = 1; i <= count; i++) await c.addNode(i);
      return c;
    });
  }

  /** node-<i> at 198.18.1.<10+i>/24 on the bridge (no default route: the segment is the network). */
  async addNode(i: number): Promise<BedNode> {
    if (!Number.isInteger(i) || i < 0 || i > 240) throw new Error(`node index ${i} out of range (0-240)`);
    const name = `node-${i}`;
    const ip = `198.18.1.${10 + i}`;
    const ns = await this.attach(`n${i}`, `p${i}`);
    await configureNode(ns, { address: `${ip}/24` });
    const n: BedNode = { name, ns, ip, prefix: 24 };
    this.nodes.push(n);
    return n;
  }

  /**
   * Another host on the segment (a ToR, a route reflector): namespace `short`, its eth0 on the
   * bridge through `leg`, with `address` (198.18.1.1-9 are free of nodes) when given.
   */
  async attach(short: string, leg = `p${short}`, address?: string): Promise<Netns> {
    const ns = await this.topo.addNetns(short);
    await this.topo.addVeth(ns, 'eth0', this.sw, leg);
    await this.sw.sh(`ip link set ${leg} master br0`);
    if (address) await ns.sh(`ip addr add ${address} dev eth0`);
    return ns;
  }
}

/**
 * The NAT66 tests' three namespaces: `node` (IPv6 forwarding, `node6`/64 on eth0 towards `out`,
 * the workload's gateway `gw6`/128 on caliwl and a /128 route to the workload), the outside host
 * `out` (`out6`/64) and the workload `wl` (`wl6`/128, default route via `gw6`); no DAD anywhere.
 * `mtu`: both ends' links (out's eth0, wl's eth0) at that MTU, so each sender fragments its own
 * datagrams.
 */
export async function nat66Triangle(topo: Topology, a: { node6: string; out6: string; wl6: string; gw6: string; mtu?: number }): Promise<{ node: Netns; out: Netns; wl: Netns }> {
  const node = await topo.addNetns('node');
  const out = await topo.addNetns('out');
  const wl = await topo.addNetns('wl');
  await topo.addVeth(node, 'eth0', out, 'eth0');
  await topo.addVeth(node, 'caliwl', wl, 'eth0');
  await node.sh([
    'sysctl -qw net.ipv6.conf.all.forwarding=1',
    `ip -6 addr add ${a.node6}/64 dev eth0 nodad`,
    `ip -6 addr add ${a.gw6}/128 dev caliwl nodad`,
    `ip -6 route add ${a.wl6}/128 dev caliwl`,
  ].join(' && '));
  const mtu = a.mtu === undefined ? '' : `ip link set eth0 mtu ${a.mtu} && `;
  await out.sh(`${mtu}ip -6 addr add ${a.out6}/64 dev eth0 nodad`);
  await wl.sh(`${mtu}ip -6 addr add ${a.wl6}/128 dev eth0 nodad && ip -6 route add ${a.gw6}/128 dev eth0 && ip -6 route add default via ${a.gw6} dev eth0`);
  return { node, out, wl };
}
