// A Calico-shaped node in network namespaces: one "node" namespace holding the host side of
// each workload's veth (cali*, MAC ee:ee:ee:ee:ee:ee, proxy ARP, /32 route), and one namespace
// per workload (its /32 from 192.168.0.0/16, default route via 169.254.1.1 onlink).
// Everything lives in namespaces this test created; nothing touches the root namespace.
import { Topology, type Netns } from '../../../src/util/netns';
import { mapOps, type WepDatapath } from '../../../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../../../src/dataplane/bpf/policy-sync';
import { tcAttach } from '../../../src/dataplane/native';
import { CalcGraph } from '../../../src/calc';
import type { Resource } from '../../../src/model';

/** The real compiler and policy writer over a loaded datapath; `update` applies a delta. */
export interface ProgrammedNode { pd: PolicyDataplane; graph: CalcGraph; update(...rs: Resource[]): void }

export interface Workload { name: string; ns: Netns; ip: string; hostIf: string; ifindex: number }

export const NODE_UPLINK_IP = '198.18.0.1';
export const EXT_IP = '198.18.0.2';

export class WepTopology {
  readonly workloads = new Map<string, Workload>();
  private constructor(readonly topo: Topology, readonly node: Netns, readonly ext: Netns) {}

  /** Node namespace with an uplink (eth0, 198.18.0.1/24) to an "outside" namespace (198.18.0.2)
   *  that is its default gateway: like a real host, the node then has a route for 169.254.1.1,
   *  which is what lets proxy ARP answer the workloads' gateway queries. */
  static async create(label: string): Promise<WepTopology> {
    const topo = Topology.create(label);
    try {
      const node = await topo.addNetns('node');
      const ext = await topo.addNetns('ext');
      await topo.addVeth(node, 'eth0', ext, 'eth0');
      await node.sh([
        'sysctl -qw net.ipv4.ip_forward=1', 'sysctl -qw net.ipv4.conf.all.rp_filter=0',
        'sysctl -qw net.ipv4.conf.default.rp_filter=0', 'ip link set lo up', 'ip link set eth0 up',
        `ip addr add ${NODE_UPLINK_IP}/24 dev eth0`, `ip route add default via ${EXT_IP}`,
      ].join(' && '));
      await ext.sh([
        'ip link set lo up', 'ip link set eth0 up', `ip addr add ${EXT_IP}/24 dev eth0`,
        'ip route add 192.168.0.0/16 via ' + NODE_UPLINK_IP,
      ].join(' && '));
      return new WepTopology(topo, node, ext);
    } catch (e) {
      await topo.destroy();
      throw e;
    }
  }

  async addWorkload(name: string, ip: string): Promise<Workload> {
    const ns = await this.topo.addNetns(name);
    const hostIf = `cali${name}`.slice(0, 15);
    await this.topo.addVeth(this.node, hostIf, ns, 'eth0', { aMac: 'ee:ee:ee:ee:ee:ee' });
    await this.node.sh([
      `ip link set ${hostIf} up`,
      `sysctl -qw net.ipv4.conf.${hostIf}.proxy_arp=1`,
      `sysctl -qw net.ipv4.neigh.${hostIf}.proxy_delay=0`,
      `sysctl -qw net.ipv4.conf.${hostIf}.rp_filter=0`,
      `ip route add ${ip}/32 dev ${hostIf}`,
    ].join(' && '));
    await ns.sh([
      'ip link set lo up',
      'ip link set eth0 up',
      `ip addr add ${ip}/32 dev eth0`,
      'ip route add 169.254.1.1 dev eth0 scope link',
      'ip route add default via 169.254.1.1 dev eth0 onlink',
    ].join(' && '));
    const w: Workload = { name, ns, ip, hostIf, ifindex: await this.node.ifindex(hostIf) };
    this.workloads.set(name, w);
    return w;
  }

  /**
   * What the agent does for this node, without the agent: compiles `resources` with the real
   * CalcGraph (node "node1"), writes the snapshot into `dp`'s maps with PolicyDataplane (endpoints
   * bound by interface name) and attaches the workload programs to every workload's host side.
   */
  program(dp: WepDatapath, resources: Resource[]): ProgrammedNode {
    const byIface = new Map([...this.workloads.values()].map((x) => [x.hostIf, x.ifindex]));
    const pd = new PolicyDataplane({ ...dp.policyMaps, cls4: mapOps(dp.maps.cls4!) }, (ep) => byIface.get(ep.interfaceName ?? ''));
    const graph = new CalcGraph({ nodeName: 'node1' });
    for (const r of resources) graph.onUpdate(r);
    graph.flush();
    pd.applySnapshot(graph.snapshot());
    for (const x of this.workloads.values()) {
      tcAttach({ iface: x.hostIf, netns: this.node.path, direction: 'ingress', program: dp.fromWep });
      tcAttach({ iface: x.hostIf, netns: this.node.path, direction: 'egress', program: dp.toWep });
    }
    return {
      pd, graph,
      update: (...rs) => {
        for (const r of rs) graph.onUpdate(r);
        pd.applyDelta(graph.flush());
      },
    };
  }

  async destroy(): Promise<void> { await this.topo.destroy(); }
}
