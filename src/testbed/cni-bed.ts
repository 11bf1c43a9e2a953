/**
 * A node for CNI plugin tests: a SingleNode whose node does not forward globally (what the tests
 * see on a workload interface is then the plugin's doing), an embedded store with a pool, the
 * plugins on a private CNI_PATH, and the netconf a runtime would pass.
 */
import { SingleNode } from './layouts';
import { makeCniPath } from './cni';
import { openTestStore, type TestStore } from './store';
import { pool } from './fixtures';
import type { Netns, Topology } from '../util/netns';

export interface CniBed {
  topo: Topology;
  node: Netns;
  nodeIp: string;
  store: TestStore;
  cniPath: string;
  conf(extra?: Record<string, unknown>): Record<string, unknown>;
  /** An empty workload namespace (the plugin wires it). */
  addWorkload(short: string): Promise<Netns>;
  destroy(): Promise<void>;
}

export async function cniBed(label: string, poolCidr = '192.168.0.0/16', poolSpec: Record<string, unknown> = {}): Promise<CniBed> {
  const bed = await SingleNode.create(label, { forwarding: false });
  const store = openTestStore(label);
  const cp = makeCniPath();
  bed.onDestroy(() => cp.cleanup());
  try {
    await store.rc.create(pool('default-ipv4-ippool', poolCidr, poolSpec));
  } catch (e) {
    bed.destroySync();
    await store.close();
    throw e;
  }
  return {
    topo: bed.topo, node: bed.node, nodeIp: bed.nodeIp, store, cniPath: cp.dir,
    conf: (extra = {}) => ({
      cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tortie',
      datastore_type: 'embedded', datastore_path: store.dir, nodename: 'node-a',
      ipam: { type: 'tortie-ipam' },
      ...extra,
    }),
    addWorkload: (short) => bed.topo.addNetns(short),
    async destroy() { bed.destroySync(); await store.close(); },
  };
}
