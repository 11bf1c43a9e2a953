/**
 * Datastore layer: the public entry. Contract of the store in types.ts, key layout in keys.ts,
 * errors in errors.ts, list+watch helper in syncer.ts; backends: embedded.ts (default, a
 * directory shared by the processes of one host) and etcd.ts (etcd v3).
 *
 * Which store to open (flags, config files and Calico's environment names → DatastoreConfig)
 * is decided in one place for every entry point: config.ts.
 */
import type { Logger } from 'pino';
import type { DatastoreConfig } from './config';
import { DatastoreConfigError } from './errors';
import { EmbeddedDatastore } from './embedded';
import type { Datastore } from './types';

export * from './types';
export * from './errors';
export * from './keys';
export * from './config';
export { Syncer } from './syncer';
export type { SyncUpdate, SyncerCallbacks, SyncerOptions } from './syncer';
export { EmbeddedDatastore, DEFAULT_EMBEDDED_DIR } from './embedded';
export type { EmbeddedOptions } from './embedded';
// The etcd backend loads gRPC and protobuf definitions (~100 ms): required only when used,
// so the CLI and the CNI plugin on the embedded store start fast. Import the class from
// './etcd' directly when needed.
export type { EtcdDatastore, EtcdOptions } from './etcd';

export function openDatastore(config: DatastoreConfig, logger?: Logger): Datastore {
  switch (config.type) {
    case 'embedded':
      return new EmbeddedDatastore({ ...config, logger });
    case 'etcdv3':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return new (require('./etcd') as typeof import('./etcd')).EtcdDatastore({ ...config, logger });
    default:
      throw new DatastoreConfigError(`unknown datastore type ${JSON.stringify((config as { type: unknown }).type)} (expected etcdv3 or embedded)`);
  }
}

/** Where tortie before Calico's layout kept its resources and IPAM records. */
export const PRE_CALICO_LAYOUT_ROOT = '/tortie/';

/**
 * Refuses a store that still holds tortie's pre-Calico layout (`/tortie/v3/…`,
 * `/tortie/ipam/…`): an agent reading it as Calico's would see no resources and program an
 * empty policy over its workloads. Nothing is read or changed beyond the check.
 */
export async function assertNoPreCalicoLayout(ds: Datastore): Promise<void> {
  const old = await ds.list(PRE_CALICO_LAYOUT_ROOT);
  if (old.items.length === 0) return;
  throw new DatastoreConfigError(
    `the datastore holds ${old.items.length} key(s) under ${PRE_CALICO_LAYOUT_ROOT} (e.g. ${old.items[0]!.key}), written by an ` +
    "older tortie before it used Calico's layout (/calico/resources/v3/…, /calico/ipam/v2/…); this tortie does not read them " +
    `and does not migrate them: export them with the older tortiectl, re-apply them, then delete the ${PRE_CALICO_LAYOUT_ROOT} keys`);
}
