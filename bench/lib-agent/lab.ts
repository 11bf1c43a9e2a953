/**
 * The benchmark's namespaces (src/testbed SingleNode, built by the outer process):
 *
 *   out ──eth0══eth0── node (198.18.0.10/16, default route via out's .1, forwarding)
 *                        ├─ calilatcli ══ eth0 of `cli` (probe client, /32, gw 169.254.1.1)
 *                        ├─ calilatsrv ══ eth0 of `srv` (probe server)
 *                        └─ calilat0002 … (filler endpoints: host sides, peers in one namespace)
 *
 * Workloads are wired by the CNI plugin's own steps; fillers only need a host side the agent can
 * program. `destroy()` (also run on exit and on signals) removes the namespaces, the processes in
 * them and the bpffs pin root.
 */
import { SingleNode, addFillerEndpoints, pinRoot as newPinRoot, removePinRoot, type Netns, type Topology } from '../../src/testbed';
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

/** Builds the lab for `local` (probe client, probe server, then fillers). */
export async function buildLab(local: readonly LocalEndpoint[]): Promise<BenchLab> {
  if (local.length < 2) throw new Error('buildLab: need at least the probe client and server');
  // A /16 uplink: the remote nodes' addresses (fixtures remoteNodeAddress) are then on-link at
  // every scale. At Felix's (500 nodes) they leave 198.18.0.0/24, and the kernel refuses a route
  // via a gateway it cannot reach ("Nexthop has invalid gateway"), which kept the agent unready.
  const bed = await SingleNode.create('agentlat', { nodeIp: NODE_ADDRESS.split('/')[0], prefix: 16 });
  const pinRoot = newPinRoot('agentlat', { create: false });
  bed.onDestroy(() => removePinRoot(pinRoot));
  try {
    const client = await bed.addWorkload('cli', local[0]!.ip, { hostIf: local[0]!.hostIf });
    const server = await bed.addWorkload('srv', local[1]!.ip, { hostIf: local[1]!.hostIf });
    await addFillerEndpoints(bed.topo, bed.node, local.slice(2), 'fill');
    return { topo: bed.topo, node: bed.node, outside: bed.outside, client: client.ns, server: server.ns, pinRoot, destroy: () => bed.destroySync() };
  } catch (e) {
    bed.destroySync();
    throw e;
  }
}
