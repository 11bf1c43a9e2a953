/**
 * Datastore layer: the public entry. Contract of the store in types.ts, key layout in keys.ts,
 * errors in errors.ts, list+watch helper in syncer.ts; backends: embedded.ts (default, a
 * directory shared by the processes of one host) and etcd.ts (etcd v3).
 *
 * Configuration follows Calico's names: DATASTORE_TYPE=etcdv3|embedded, ETCD_ENDPOINTS
 * (comma-separated), ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE; plus
 * TORTIE_DATASTORE_DIR for the embedded store (default /var/lib/tortie/store). CLI flags
 * (--etcd-endpoints, --etcd-ca, --etcd-cert, --etcd-key) map onto the same DatastoreConfig.
 */
import type { Logger } from 'pino';
import { ConfigError } from './errors';
import { DEFAULT_EMBEDDED_DIR, EmbeddedDatastore } from './embedded';
import type { Datastore } from './types';

export * from './types';
export * from './errors';
export * from './keys';
export { Syncer } from './syncer';
export type { SyncUpdate, SyncerCallbacks, SyncerOptions } from './syncer';
export { EmbeddedDatastore, DEFAULT_EMBEDDED_DIR } from './embedded';
export type { EmbeddedOptions } from './embedded';
// The etcd backend loads gRPC and protobuf definitions (~100 ms): required only when used,
// so the CLI and the CNI plugin on the embedded store start fast. Import the class from
// './etcd' directly when needed.
export type { EtcdDatastore, EtcdOptions } from './etcd';

export type DatastoreConfig =
  | { type: 'embedded'; dir?: string; maxLogBytes?: number; pollMs?: number }
  | {
      type: 'etcdv3';
      endpoints: string[];
      caFile?: string;
      certFile?: string;
      keyFile?: string;
      requestTimeoutMs?: number;
    };

export function openDatastore(config: DatastoreConfig, logger?: Logger): Datastore {
  switch (config.type) {
    case 'embedded':
      return new EmbeddedDatastore({ ...config, logger });
    case 'etcdv3':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return new (require('./etcd') as typeof import('./etcd')).EtcdDatastore({ ...config, logger });
    default:
      throw new ConfigError(`unknown datastore type ${JSON.stringify((config as { type: unknown }).type)} (expected etcdv3 or embedded)`);
  }
}

/**
 * DatastoreConfig from Calico-style environment variables. DATASTORE_TYPE defaults to
 * etcdv3 when ETCD_ENDPOINTS is set, else embedded. `kubernetes` is not supported.
 */
export function datastoreConfigFromEnv(env: NodeJS.ProcessEnv = process.env): DatastoreConfig {
  const type = (env.DATASTORE_TYPE ?? (env.ETCD_ENDPOINTS ? 'etcdv3' : 'embedded')).trim().toLowerCase();
  if (type === 'embedded') return { type: 'embedded', dir: env.TORTIE_DATASTORE_DIR || DEFAULT_EMBEDDED_DIR };
  if (type === 'etcdv3' || type === 'etcd') {
    const endpoints = (env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean);
    return {
      type: 'etcdv3',
      endpoints,
      caFile: env.ETCD_CA_CERT_FILE || undefined,
      certFile: env.ETCD_CERT_FILE || undefined,
      keyFile: env.ETCD_KEY_FILE || undefined,
    };
  }
  throw new ConfigError(`DATASTORE_TYPE=${JSON.stringify(env.DATASTORE_TYPE)} is not supported (expected etcdv3 or embedded)`);
}
