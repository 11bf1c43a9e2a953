/**
 * ClusterInformation `default`, kept up to date by tortie-node at start-up as calico-node does:
 * created with a random cluster GUID and datastoreReady true when missing; on every start the
 * version and cluster type are set to this node's (the GUID is never changed, and an unset
 * datastoreReady becomes true). Concurrent starts race through the datastore's create and
 * compare-and-swap; the loser re-reads.
 */
import { randomUUID } from 'node:crypto';
import type { ResourceClient } from '../client/resources';
import { API_VERSION_V3, CLUSTER_INFORMATION_NAME, type ClusterInformation } from '../model';
import { casLoop } from '../datastore/cas';
import { AlreadyExistsError, ConflictError } from '../datastore/errors';
import type { Logger } from '../util/log';

export async function ensureClusterInformation(client: ResourceClient, version: string, clusterType: string, log: Logger): Promise<ClusterInformation> {
  return casLoop(async () => {
    const cur = await client.get('ClusterInformation', CLUSTER_INFORMATION_NAME);
    if (!cur) {
      const created = await client.create<ClusterInformation>({
        apiVersion: API_VERSION_V3, kind: 'ClusterInformation', metadata: { name: CLUSTER_INFORMATION_NAME },
        spec: { clusterGUID: randomUUID().replace(/-/g, ''), clusterType, calicoVersion: version, datastoreReady: true },
      });
      log.info({ clusterGUID: created.spec.clusterGUID }, 'created cluster information');
      return created;
    }
    const want = { ...cur.spec, calicoVersion: version, clusterType, datastoreReady: cur.spec.datastoreReady ?? true };
    if (!want.clusterGUID) want.clusterGUID = randomUUID().replace(/-/g, '');
    if (JSON.stringify(want) === JSON.stringify(cur.spec)) return cur;
    return await client.update<ClusterInformation>({ ...cur, spec: want });
  }, { attempts: 6, conflicts: [AlreadyExistsError, ConflictError] });
}
