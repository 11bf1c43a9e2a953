// A three-node Calico-shaped cluster in network namespaces, for the networking tests and benches:
//
//   node A 198.18.1.10/24 ─┐                         ┌─ outside host 198.18.3.20/24
//   node B 198.18.1.11/24 ─┴─ br1 [router] br3/o ────┘
//   node C 198.18.2.10/24 ─── br2 [198.18.1.1 | 198.18.2.1 | 198.18.3.1]
//
// Each node runs tortie's BpfDataplane in-process (netns option, its own bpffs pin root) fed by
// its own CalcGraph from the same resources, exactly as tortie-node would; workloads hang off
// cali* veths the way the CNI plugin wires them. Neither the router nor the outside host knows
// any pool route: only IPIP and SNAT get pool traffic across. Everything is torn down by destroy().
import { Topology, type Netns } from '../../../src/util/netns';
import { BpfDataplane, type BpfDataplaneOptions } from '../../../src/dataplane/dataplane';
import { CalcGraph } from '../../../src/calc';
import type { Resource, IPPool, WorkloadEndpoint } from '../../../src/model';
import { readNetStats, type NetStats } from '../../../src/dataplane/bpf/net-codecs';
import { uniquePinRoot, removePinRoot } from '../../datapath/helpers/harness';

const V3 = 'projectcalico.org/v3' as const;

export interface ClusterNode { name: string; ns: Netns; ip: string; subnet: string; dp?: BpfDataplane; graph: CalcGraph; pinRoot: string }
export interface ClusterWorkload { name: string; ns: Netns; ip: string; node: ClusterNode; hostIf: string }

export interface ClusterOptions {
  /** MTU of the whole underlay (node uplinks, router ports and bridges, the outside link); default the veths' 1500. */
  underlayMtu?: number;
  /** Routing options of each node's dataplane (by node name), e.g. Felix's MTU settings. */
  routing?: (node: string) => Exclude<BpfDataplaneOptions['routing'], false | undefined>;
}

export class Cluster {
  readonly nodes = new Map<string, ClusterNode>();
  readonly workloads = new Map<string, ClusterWorkload>();
  readonly resources = new Map<string, Resource>();
  router!: Netns;
  outside!: Netns;
  readonly outsideIp = '198.18.3.20';

  private constructor(readonly topo: Topology, private readonly opts: ClusterOptions) {}

  static async create(label: string, opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(Topology.create(label), opts);
    try {
      await c.build();
    } catch (e) {
      await c.destroy();
      throw e;
    }
    return c;
  }

  private async build(): Promise<void> {
    const t = this.topo;
    const quiet = 'sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0';
    this.router = await t.addNetns('rtr');
    this.outside = await t.addNetns('out');
    await this.router.sh(`${quiet} net.ipv4.ip_forward=1 && ip link add br1 type bridge && ip link add br2 type bridge && ` +
      'ip link set br1 up && ip link set br2 up && ip addr add 198.18.1.1/24 dev br1 && ip addr add 198.18.2.1/24 dev br2');
    const mtu = this.opts.underlayMtu ? { mtu: this.opts.underlayMtu } : {};
    await t.addVeth(this.router, 'o', this.outside, 'eth0', mtu);
    await this.router.sh('ip addr add 198.18.3.1/24 dev o');
    await this.outside.sh(`${quiet} && ip addr add ${this.outsideIp}/24 dev eth0 && ip route add 198.18.0.0/15 via 198.18.3.1`);
    for (const [name, short, ip, br, gw] of [
      ['node-a', 'a', '198.18.1.10', 'br1', '198.18.1.1'], ['node-b', 'b', '198.18.1.11', 'br1', '198.18.1.1'],
      ['node-c', 'c', '198.18.2.10', 'br2', '198.18.2.1']] as const) {
      const ns = await t.addNetns(`n${short}`);
      await t.addVeth(ns, 'eth0', this.router, `p${short}`, mtu);
      await this.router.sh(`ip link set p${short} master ${br}`);
      await ns.sh(`${quiet} net.ipv4.ip_forward=1 && ip addr add ${ip}/24 dev eth0 && ip route add default via ${gw}`);
      this.nodes.set(name, { name, ns, ip, subnet: `${ip}/24`, graph: new CalcGraph({ nodeName: name }), pinRoot: uniquePinRoot(`cl-${short}`) });
      this.put({ apiVersion: V3, kind: 'Node', metadata: { name }, spec: { bgp: { ipv4Address: `${ip}/24` } } } as Resource);
    }
    this.put({ apiVersion: V3, kind: 'Namespace', metadata: { name: 'ns1', labels: {} } } as Resource);
    this.put({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'allow-all' },
      spec: { selector: 'all()', types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] } } as Resource);
  }

  /** The seed's pool by default: 192.168.0.0/16, IPIP cross-subnet, NAT outgoing. */
  setPool(spec: Partial<IPPool['spec']> = {}): void {
    this.put({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'default-ipv4-ippool' },
      spec: { cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', natOutgoing: true, blockSize: 26, ...spec } } as Resource);
  }

  put(r: Resource): void {
    const key = `${r.kind}/${(r.metadata as { namespace?: string }).namespace ?? ''}/${r.metadata.name}`;
    this.resources.set(key, r);
  }

  async addWorkload(name: string, nodeName: string, ip: string, mtu = 1480): Promise<ClusterWorkload> {
    const node = this.nodes.get(nodeName)!;
    const ns = await this.topo.addNetns(name);
    const hostIf = `cali${name}`.slice(0, 15);
    await this.topo.addVeth(node.ns, hostIf, ns, 'eth0', { aMac: 'ee:ee:ee:ee:ee:ee', mtu });
    await node.ns.sh(`sysctl -qw net.ipv4.conf.${hostIf}.proxy_arp=1 net.ipv4.neigh.${hostIf}.proxy_delay=0 ` +
      `net.ipv4.conf.${hostIf}.forwarding=1 net.ipv4.conf.${hostIf}.rp_filter=0 && ip route add ${ip}/32 dev ${hostIf}`);
    await ns.sh(`ip addr add ${ip}/32 dev eth0 && ip route add 169.254.1.1 dev eth0 scope link && ip route add default via 169.254.1.1 dev eth0 onlink`);
    const w: ClusterWorkload = { name, ns, ip, node, hostIf };
    this.workloads.set(name, w);
    this.put({ apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { name, namespace: 'ns1', labels: { app: name } },
      spec: { orchestrator: 'k8s', node: nodeName, ipNetworks: [`${ip}/32`], interfaceName: hostIf, profiles: [] } } as WorkloadEndpoint as Resource);
    return w;
  }

  /** Starts (first call) or reconciles every node's dataplane with the current resources. */
  async sync(): Promise<void> {
    for (const n of this.nodes.values()) {
      const g = new CalcGraph({ nodeName: n.name });
      for (const r of this.resources.values()) g.onUpdate(r);
      g.flush();
      n.graph = g;
      if (!n.dp) {
        n.dp = await BpfDataplane.open({ pinRoot: n.pinRoot, interfacePrefix: 'cali', uplink: 'eth0', routing: this.opts.routing?.(n.name),
          netns: { name: n.ns.name, path: n.ns.path }, linkResyncMs: 60_000 });
      }
      await n.dp.reconcile(g.snapshot());
    }
  }

  stats(node: string): NetStats {
    return readNetStats(this.nodes.get(node)!.dp!.routing!.maps.netstat);
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes.values()) await n.dp?.close().catch(() => undefined);
    await this.topo.destroy();
    for (const n of this.nodes.values()) removePinRoot(n.pinRoot);
  }
}
