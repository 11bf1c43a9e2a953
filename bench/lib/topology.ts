/**
 * The benchmark's namespace topology: one Calico-shaped node and what is around it.
 *
 *   out (198.18.0.1/24, 198.18.1.2/32) ──eth0── node (198.18.0.10/24, forwarding)
 *                                               ├─ calibenchcli ── client (192.168.255.1/32)
 *                                               ├─ calibenchsrv ── server (192.168.255.2/32)
 *                                               └─ cali<n>… ── pods (extra endpoints, peers only)
 *
 * Contract: built on src/util/netns (unique namespace names, everything created inside them,
 * nothing in the root namespace); workloads are wired the way Calico's CNI does it (/32, gateway
 * 169.254.1.1 answered by proxy ARP from a host side with MAC ee:ee:ee:ee:ee:ee). `destroy()`
 * (also run on exit and signals by the Topology) removes the namespaces, their processes and veths.
 */
import { Topology, type Netns } from '../../src/util/netns';
import { CLIENT, SERVER } from './scenarios';

export const NODE_IP = '198.18.0.10';
export const OUT_IP = '198.18.0.1';
export const FLOOD_SRC = '198.18.1.2';

export interface BenchWorkload { ns: Netns; ip: string; hostIf: string }

export class BenchTopology {
  private constructor(
    readonly topo: Topology,
    readonly node: Netns,
    readonly out: Netns,
    readonly client: BenchWorkload,
    readonly server: BenchWorkload,
  ) {}

  static async create(label = 'bench'): Promise<BenchTopology> {
    const topo = Topology.create(label);
    try {
      const node = await topo.addNetns('node');
      const out = await topo.addNetns('out');
      await topo.addVeth(node, 'eth0', out, 'eth0');
      await node.sh([
        'sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0',
        `ip addr add ${NODE_IP}/24 dev eth0`, `ip route add default via ${OUT_IP}`,
      ].join(' && '));
      await out.sh([
        `ip addr add ${OUT_IP}/24 dev eth0`, `ip addr add ${FLOOD_SRC}/32 dev eth0`,
        `ip route add 192.168.0.0/16 via ${NODE_IP} src ${FLOOD_SRC}`,
      ].join(' && '));
      const client = await BenchTopology.workload(topo, node, 'client', CLIENT.ip, CLIENT.hostIf);
      const server = await BenchTopology.workload(topo, node, 'server', SERVER.ip, SERVER.hostIf);
      return new BenchTopology(topo, node, out, client, server);
    } catch (e) {
      topo.destroySync();
      throw e;
    }
  }

  private static async workload(topo: Topology, node: Netns, name: string, ip: string, hostIf: string): Promise<BenchWorkload> {
    const ns = await topo.addNetns(name);
    await topo.addVeth(node, hostIf, ns, 'eth0', { aMac: 'ee:ee:ee:ee:ee:ee' });
    await node.sh([
      `sysctl -qw net.ipv4.conf.${hostIf}.proxy_arp=1 net.ipv4.neigh.${hostIf}.proxy_delay=0 net.ipv4.conf.${hostIf}.forwarding=1 net.ipv4.conf.${hostIf}.rp_filter=0`,
      `ip route add ${ip}/32 dev ${hostIf}`,
    ].join(' && '));
    await ns.sh([
      `ip addr add ${ip}/32 dev eth0`, 'ip route add 169.254.1.1 dev eth0 scope link',
      'ip route add default via 169.254.1.1 dev eth0 onlink',
      // Connection-rate runs open tens of thousands of short connections.
      'sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 60999"',
    ].join(' && '));
    return { ns, ip, hostIf };
  }

  /**
   * `count` extra endpoints' host-side veths (`<prefix><i>`, routed /32s from `firstIp`), peers in
   * one shared namespace: enough for the agent to program, without a namespace per endpoint.
   * Uses `ip -batch` so a thousand interfaces take seconds, not minutes.
   */
  async addHostEndpoints(count: number, prefix: string, ipOf: (i: number) => string): Promise<{ pods: Netns; names: string[] }> {
    const pods = await this.topo.addNetns(`pods-${prefix.toLowerCase().replace(/[^a-z0-9]/g, '')}`);
    const names: string[] = [];
    const links: string[] = [];
    const routes: string[] = [];
    for (let i = 0; i < count; i++) {
      const name = `${prefix}${i}`;
      if (name.length > 15) throw new Error(`interface name too long: ${name}`);
      names.push(name);
      links.push(`link add ${name} address ee:ee:ee:ee:ee:ee type veth peer name p${i} netns ${pods.name}`, `link set ${name} up`);
      routes.push(`route add ${ipOf(i)}/32 dev ${name}`);
    }
    await this.node.exec(['ip', '-batch', '-'], { input: links.join('\n') + '\n', timeoutMs: 300_000 });
    await this.node.exec(['ip', '-batch', '-'], { input: routes.join('\n') + '\n', timeoutMs: 300_000 });
    return { pods, names };
  }

  destroy(): void {
    this.topo.destroySync();
  }
}
