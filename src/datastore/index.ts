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
