/**
 * The benchmark's node: src/testbed's SingleNode with what the suite adds to it.
 *
 *   out (198.18.0.1/24, 198.18.1.2/32) ──eth0── node (198.18.0.10/24, forwarding)
 *                                               ├─ calibenchcli ── client (192.168.255.1/32[, fd00:255::1/128])
 *                                               ├─ calibenchsrv ── server (192.168.255.2/32[, fd00:255::2/128])
 *                                               └─ cali<n>… ── pods (extra endpoints, peers only)
 *
 * Added here: the flood source address on the outside host (pool traffic routed from it), and
 * connection-rate sysctls in the workloads. Workloads are wired by the CNI plugin's own steps;
 * with `v6` they are dual stack as the plugin wires them (the ULA /128 without DAD, the default
 * IPv6 route via the host side's link-local fe80::ecee:eeff:feee:eeee; the node forwards IPv6).
 * `destroy()` (also run on exit and signals by the Topology) removes everything.
 */
import { SingleNode, addFillerEndpoints, NODE_IP, OUTSIDE_IP, POOL_CIDR, type Netns, type Topology } from '../../src/testbed';
import { CLIENT, SERVER } from './scenarios';

export { NODE_IP };
export const OUT_IP = OUTSIDE_IP;
export const FLOOD_SRC = '198.18.1.2';

/** `mac`: the workload's eth0's, which its endpoint names (as the CNI plugin writes it). */
export interface BenchWorkload { ns: Netns; ip: string; ip6?: string; hostIf: string; mac: string }

export class BenchTopology {
  private constructor(private readonly bed: SingleNode, readonly client: BenchWorkload, readonly server: BenchWorkload) {}

  get topo(): Topology { return this.bed.topo; }
  get node(): Netns { return this.bed.node; }
  get out(): Netns { return this.bed.outside; }

  static async create(label = 'bench', o: { v6?: boolean } = {}): Promise<BenchTopology> {
    const bed = await SingleNode.create(label);
    try {
      await bed.outside.sh(`ip addr add ${FLOOD_SRC}/32 dev eth0 && ip route add ${POOL_CIDR} via ${NODE_IP} src ${FLOOD_SRC}`);
      const ws: BenchWorkload[] = [];
      for (const [name, w] of [['client', CLIENT], ['server', SERVER]] as const) {
        const x = await bed.addWorkload(name, w.ip, o.v6 ? { hostIf: w.hostIf, ip6: w.ip6 } : { hostIf: w.hostIf });
        // Connection-rate runs open tens of thousands of short connections.
        await x.ns.sh('sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 60999"');
        const mac = (await x.ns.exec(['cat', '/sys/class/net/eth0/address'])).stdout.trim();
        ws.push({ ns: x.ns, ip: x.ip, hostIf: x.hostIf, mac, ...(x.ip6 ? { ip6: x.ip6 } : {}) });
      }
      return new BenchTopology(bed, ws[0]!, ws[1]!);
    } catch (e) {
      bed.destroySync();
      throw e;
    }
  }

  /**
   * `count` extra endpoints' host-side veths (`<prefix><i>`, routed /32s from `ipOf`), peers in
   * one shared namespace: enough for the agent to program, without a namespace per endpoint.
   */
  async addHostEndpoints(count: number, prefix: string, ipOf: (i: number) => string): Promise<{ pods: Netns; names: string[] }> {
    const eps = Array.from({ length: count }, (_, i) => ({ hostIf: `${prefix}${i}`, ip: ipOf(i) }));
    const pods = await addFillerEndpoints(this.topo, this.node, eps, `pods-${prefix.toLowerCase().replace(/[^a-z0-9]/g, '')}`);
    return { pods, names: eps.map((e) => e.hostIf) };
  }

  destroy(): void {
    this.bed.destroySync();
  }
}
