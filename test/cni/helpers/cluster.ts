/** Test helper: a node namespace, an embedded store with a pool, and a netconf for it. */
import { Topology, type Netns } from '../../../src/util/netns';
import { openTestStore, pool, type TestStore } from '../../ipam/helpers/store';
import { makeCniPath } from './cni';

export interface CniBed {
  topo: Topology;
  node: Netns;
  store: TestStore;
  cniPath: string;
  conf(extra?: Record<string, unknown>): Record<string, unknown>;
  addWorkload(short: string): Promise<Netns>;
  destroy(): Promise<void>;
}

export async function cniBed(label: string, poolCidr = '192.168.0.0/16', poolSpec: Record<string, unknown> = {}): Promise<CniBed> {
  const topo = Topology.create(label);
  const store = openTestStore(label);
  const cp = makeCniPath();
  const node = await topo.addNetns('node');
  // Like a real node: an uplink with a default route. Proxy ARP only answers for 169.254.1.1
  // when the node has a route to it through another interface.
  const up = await topo.addNetns('up');
  await topo.addVeth(node, 'eth0', up, 'eth0');
  await node.exec(['ip', 'addr', 'add', '198.18.0.2/24', 'dev', 'eth0']);
  await up.exec(['ip', 'addr', 'add', '198.18.0.1/24', 'dev', 'eth0']);
  await node.exec(['ip', 'route', 'add', 'default', 'via', '198.18.0.1']);
  await store.rc.create(pool('default-ipv4-ippool', poolCidr, poolSpec));
  return {
    topo, node, store, cniPath: cp.dir,
    conf: (extra = {}) => ({
      cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tortie',
      datastore_type: 'embedded', datastore_path: store.dir, nodename: 'node-a',
      ipam: { type: 'tortie-ipam' },
      ...extra,
    }),
    addWorkload: (short) => topo.addNetns(short),
    async destroy() { await topo.destroy(); await store.close(); cp.cleanup(); },
  };
}
