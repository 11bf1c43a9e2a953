/**
 * The benchmark's namespaces (built from the root namespace, by the outer process):
 *
 *   out ──eth0══eth0── node (198.18.0.10/24, default route via out's .1, ip_forward)
 *                        ├─ calilatcli ══ eth0 of `cli` (probe client, /32, gw 169.254.1.1)
 *                        ├─ calilatsrv ══ eth0 of `srv` (probe server)
 *                        └─ calilat0002 … ══ tlp0002 … (filler endpoints: both ends in `node`)
 *
 * Workloads are wired as Calico's CNI does (host side ee:ee:ee:ee:ee:ee, proxy ARP, /32 route
 * to the host interface). The node needs the uplink with a default route, or proxy ARP does
 * not answer for 169.254.1.1. Every interface is created inside a namespace of this topology;
 * nothing touches the root namespace. `destroy()` (also run on exit and on signals by
 * Topology) removes the namespaces, the processes in them and the bpffs pin root.
 */
import { existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Topology, run, type Netns } from '../../src/util/netns';
import { NODE_ADDRESS, type LocalEndpoint } from './fixtures';

export interface BenchLab {
  topo: Topology;
  node: Netns;
  outside: Netns;
  client: Netns;
  server: Netns;
  /** Unique bpffs pin root for this lab's agent. */
  pinRoot: string;
  destroy(): void;
}

const pinRoots = new Set<string>();
let exitHook = false;

function removePins(root: string): void {
  if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  pinRoots.delete(root);
}

async function wireWorkload(topo: Topology, node: Netns, ep: LocalEndpoint, short: string): Promise<Netns> {
  const ns = await topo.addNetns(short);
  await topo.addVeth(node, ep.hostIf, ns, 'eth0', { aMac: 'ee:ee:ee:ee:ee:ee' });
  await node.sh(`sysctl -qw net.ipv4.conf.${ep.hostIf}.proxy_arp=1 net.ipv4.neigh.${ep.hostIf}.proxy_delay=0 ` +
    `net.ipv4.conf.${ep.hostIf}.forwarding=1 && ip route add ${ep.ip}/32 dev ${ep.hostIf}`);
  await ns.sh(`ip addr add ${ep.ip}/32 dev eth0 && ip route add 169.254.1.1 dev eth0 scope link && ip route add default via 169.254.1.1 dev eth0`);
  return ns;
}

/** Builds the lab for `local` (probe client, probe server, then fillers). */
export async function buildLab(local: readonly LocalEndpoint[]): Promise<BenchLab> {
  if (local.length < 2) throw new Error('buildLab: need at least the probe client and server');
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const r of [...pinRoots]) removePins(r); });
  }
  const topo = Topology.create('agentlat');
  const pinRoot = `/sys/fs/bpf/tortie-agentlat-${randomBytes(4).toString('hex')}`;
  pinRoots.add(pinRoot);
  const destroy = (): void => {
    topo.destroySync();
    removePins(pinRoot);
  };
  try {
    const node = await topo.addNetns('node');
    const outside = await topo.addNetns('out');
    await topo.addVeth(node, 'eth0', outside, 'eth0');
    await outside.sh('ip addr add 198.18.0.1/24 dev eth0');
    await node.sh(`sysctl -qw net.ipv4.ip_forward=1 && ip addr add ${NODE_ADDRESS} dev eth0 && ip route add default via 198.18.0.1`);
    const client = await wireWorkload(topo, node, local[0]!, 'cli');
    const server = await wireWorkload(topo, node, local[1]!, 'srv');
    // Fillers: one `ip -batch` for all of them (a few ms instead of seconds of forks).
    const cmds: string[] = [];
    for (const ep of local.slice(2)) {
      const peer = `tlp${ep.hostIf.slice(-4)}`;
      cmds.push(`link add ${ep.hostIf} address ee:ee:ee:ee:ee:ee type veth peer name ${peer}`,
        `link set ${peer} up`, `link set ${ep.hostIf} up`, `route add ${ep.ip}/32 dev ${ep.hostIf}`);
    }
    if (cmds.length > 0) await run(['ip', '-n', node.name, '-batch', '-'], { input: `${cmds.join('\n')}\n`, timeoutMs: 60_000 });
    return { topo, node, outside, client, server, pinRoot, destroy };
  } catch (e) {
    destroy();
    throw e;
  }
}
