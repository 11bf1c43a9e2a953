/**
 * The three-node cluster (ThreeNodeCluster) with an in-process agent per node: each node's
 * BpfDataplane (opened on its namespace, its own pin root) fed by its own CalcGraph from the same
 * resources, exactly as tortie-node would. Workloads are wired by the CNI plugin's steps and get a
 * WorkloadEndpoint (namespace ns1, label app=<name>); a Namespace ns1, a Node per node and an
 * allow-all policy exist from the start. Neither the router nor the outside host knows any pool
 * route: only IPIP and SNAT get pool traffic across. Everything goes with destroy().
 */
import { ThreeNodeCluster, type BedNode } from './layouts';
import { InProcessNode, type InProcessRouting } from './agent';
import { pinRoot, removePinRoot } from './pins';
import { gnp, namespace, node, pool, wep } from './fixtures';
import { readNetStats, type NetStats } from '../dataplane/bpf/net-codecs';
import type { IPPool, Resource } from '../model';
import type { Netns, Topology } from '../util/netns';
import type { Workload } from './wire';

export class ClusterNode extends InProcessNode {
  readonly ip: string;
  readonly subnet: string;
  constructor(n: BedNode, routing?: InProcessRouting, objectDir?: string) {
    super(n.name, n.ns, pinRoot(`test-cl-${n.name.slice(-1)}`), routing, objectDir);
    this.ip = n.ip;
    this.subnet = `${n.ip}/${n.prefix}`;
  }
}

export interface InProcessClusterOptions {
  /** MTU of the whole underlay (node uplinks, router ports, the outside link); default the veths' 1500. */
  underlayMtu?: number;
  /** Routing options of each node's dataplane (by node name), e.g. Felix's MTU settings. */
  routing?: (node: string) => InProcessRouting;
  /** Every node's BPF objects from this directory (default bpf/out): another build, for benchmarks. */
  objectDir?: string;
}

export type ClusterWorkload = Workload & { node: ClusterNode };

export class InProcessCluster {
  readonly nodes = new Map<string, ClusterNode>();
  readonly workloads = new Map<string, ClusterWorkload>();
  readonly resources = new Map<string, Resource>();

  private constructor(readonly bed: ThreeNodeCluster, opts: InProcessClusterOptions) {
    for (const n of bed.nodes.values()) this.nodes.set(n.name, new ClusterNode(n, opts.routing?.(n.name), opts.objectDir));
    bed.onDestroy(() => { for (const n of this.nodes.values()) removePinRoot(n.pinRoot); });
    for (const n of this.nodes.values()) this.put(node(n.name, {}, n.subnet));
    this.put(namespace('ns1'));
    this.put(gnp('allow-all', { selector: 'all()', types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }));
  }

  static async create(label: string, opts: InProcessClusterOptions = {}): Promise<InProcessCluster> {
    return new InProcessCluster(await ThreeNodeCluster.create(label, { underlayMtu: opts.underlayMtu }), opts);
  }

  get topo(): Topology { return this.bed.topo; }
  get router(): Netns { return this.bed.router; }
  get outside(): Netns { return this.bed.outside; }
  get outsideIp(): string { return this.bed.outsideIp; }

  /** The seed's pool by default: 192.168.0.0/16, IPIP cross-subnet, NAT outgoing. */
  setPool(spec: Partial<IPPool['spec']> = {}): void {
    this.put(pool('default-ipv4-ippool', '192.168.0.0/16', { ipipMode: 'CrossSubnet', natOutgoing: true, blockSize: 26, ...spec }));
  }

  put(r: Resource): void {
    const key = `${r.kind}/${(r.metadata as { namespace?: string }).namespace ?? ''}/${r.metadata.name}`;
    this.resources.set(key, r);
  }

  async addWorkload(name: string, nodeName: string, ip: string, mtu = 1480): Promise<ClusterWorkload> {
    const n = this.nodes.get(nodeName);
    if (!n) throw new Error(`no node ${nodeName}`);
    const w = Object.assign(await this.bed.addWorkload(name, nodeName, ip, { mtu }), { node: n });
    this.workloads.set(name, w);
    this.put(wep(`ns1/${name}`, { labels: { app: name }, node: nodeName, ip, iface: w.hostIf }));
    return w;
  }

  /**
   * Dual stack: a ULA /64 beside each IPv4 subnet (fd00:198:18:<n>::/64, the router ::1, the
   * outside host fd00:198:18:3::10), each node `fd00:198:18:<n>::<h>` (its IPv4 address's last
   * number) with a default route via the router, its Node resource's `bgp.ipv6Address`. Returns
   * node name → IPv6 address.
   */
  async addIpv6(): Promise<Map<string, string>> {
    await this.router.sh('sysctl -qw net.ipv6.conf.all.forwarding=1 && ip -6 addr add fd00:198:18:1::1/64 dev br1 nodad && ' +
      'ip -6 addr add fd00:198:18:2::1/64 dev br2 nodad && ip -6 addr add fd00:198:18:3::1/64 dev o nodad');
    await this.outside.sh(`ip -6 addr add ${this.outsideIp6}/64 dev eth0 nodad && ip -6 route add default via fd00:198:18:3::1`);
    const out = new Map<string, string>();
    for (const [name, n] of this.nodes) {
      const [, , subnet, host] = n.ip.split('.');
      const ip6 = `fd00:198:18:${subnet}::${host}`;
      await n.ns.sh(`ip -6 addr add ${ip6}/64 dev eth0 nodad && ip -6 route add default via fd00:198:18:${subnet}::1`);
      const res = node(name, {}, n.subnet);
      res.spec.bgp = { ...res.spec.bgp, ipv6Address: `${ip6}/64` };
      this.put(res);
      out.set(name, ip6);
    }
    return out;
  }

  readonly outsideIp6 = 'fd00:198:18:3::10';

  /** A dual-stack workload (addIpv6 first): wired with both addresses, its endpoint holding both. */
  async addWorkload6(name: string, nodeName: string, ip: string, ip6: string, mtu = 1480): Promise<ClusterWorkload> {
    const n = this.nodes.get(nodeName);
    if (!n) throw new Error(`no node ${nodeName}`);
    const w = Object.assign(await this.bed.addWorkload(name, nodeName, ip, { mtu, ip6 }), { node: n });
    this.workloads.set(name, w);
    this.put(wep(`ns1/${name}`, { labels: { app: name }, node: nodeName, ip: [ip, ip6], iface: w.hostIf }));
    return w;
  }

  /** Starts (first call) or reconciles every node's dataplane with the current resources. */
  async sync(): Promise<void> {
    for (const n of this.nodes.values()) await n.sync(this.resources.values());
  }

  stats(nodeName: string): NetStats {
    return readNetStats(this.nodes.get(nodeName)!.dp!.routing!.maps.netstat);
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes.values()) await n.close();
    this.bed.destroySync();
  }
}
