/**
 * What both CNI plugins derive from their inputs: the datastore to open, this node's name, the
 * workload's identity (Kubernetes pod or plain CNI container), names (host veth, IPAM handle),
 * and the mapping of datastore/IPAM failures onto CNI error codes.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { DEFAULT_EMBEDDED_DIR, datastoreEnvLayer, datastoreSetting, openDatastore, resolveDatastore, type DatastoreConfig, type DatastoreLayer } from '../datastore';
import { DatastoreError } from '../datastore/errors';
import type { Datastore } from '../datastore/types';
import { IpamError } from '../ipam/errors';
import type { Logger } from '../util/log';
import type { CniEnv, NetConf } from './config';
import { CNI_ERR, CniError } from './errors';

/**
 * The network configuration's datastore fields over the environment, through the resolver
 * tortiectl and tortie-node use (src/datastore/config.ts). `etcd_endpoints` without a
 * `datastore_type` means etcdv3, as the same field in a calicoctl config file.
 */
export function datastoreConfig(conf: NetConf, env: NodeJS.ProcessEnv): DatastoreConfig {
  const field = (f: keyof NetConf) => datastoreSetting(conf[f] as string | undefined, `network configuration field ${f}`);
  const fromConf: DatastoreLayer = {
    type: field('datastore_type') ?? (conf.etcd_endpoints ? { value: 'etcdv3', source: 'network configuration field etcd_endpoints' } : undefined),
    storeDir: field('datastore_path'),
    endpoints: field('etcd_endpoints'),
    ca: field('etcd_ca_cert_file'),
    cert: field('etcd_cert_file'),
    key: field('etcd_key_file'),
  };
  return resolveDatastore([fromConf, datastoreEnvLayer(env)]);
}

/** Open datastores kept by the resident server (server.ts), by configuration. */
let storeCache: Map<string, Datastore> | undefined;
/** Those of them opened here (not seeded), closed by releaseStores(). */
const ownStores: Datastore[] = [];

/** One key per store: the embedded store by its directory, etcd by endpoints and credentials. */
function storeKey(c: DatastoreConfig): string {
  if (c.type === 'embedded') return JSON.stringify(['embedded', resolve(c.dir ?? DEFAULT_EMBEDDED_DIR)]);
  return JSON.stringify(['etcdv3', [...c.endpoints].sort(), c.caFile ?? '', c.certFile ?? '', c.keyFile ?? '']);
}

/** The store with a close() that does nothing: it is shared by every call and outlives them. */
function shared(ds: Datastore): Datastore {
  return new Proxy(ds, {
    get(target, prop) {
      if (prop === 'close') return async () => undefined;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * For a long-lived process serving many calls: openStore hands out one shared connection per
 * datastore configuration, and closing what it returned leaves that connection open. `seed`:
 * stores the process already has open (the agent's own), used for requests that name them
 * instead of a second connection (and, for the embedded store, a second copy in memory).
 */
export function keepStoresOpen(seed: [DatastoreConfig, Datastore][] = []): void {
  storeCache ??= new Map();
  for (const [config, ds] of seed) storeCache.set(storeKey(config), shared(ds));
}

/** Ends keepStoresOpen(): closes the stores opened for calls (not the seeded ones). */
export async function releaseStores(): Promise<void> {
  storeCache = undefined;
  await Promise.all(ownStores.splice(0).map((ds) => ds.close().catch(() => undefined)));
}

export function openStore(conf: NetConf, env: NodeJS.ProcessEnv, log?: Logger): Datastore {
  try {
    const config = datastoreConfig(conf, env);
    if (!storeCache) return openDatastore(config, log);
    const key = storeKey(config);
    let ds = storeCache.get(key);
    if (!ds) {
      const own = openDatastore(config, log);
      ownStores.push(own);
      ds = shared(own);
      storeCache.set(key, ds);
    }
    return ds;
  } catch (err) {
    throw toCniError(err, 'opening the datastore');
  }
}

/** Calico's order: config `nodename`, then `nodename_file`, then NODENAME, then the hostname. */
export function nodeName(conf: NetConf, env: NodeJS.ProcessEnv): string {
  if (conf.nodename) return conf.nodename;
  if (conf.nodename_file) {
    try {
      const n = readFileSync(conf.nodename_file, 'utf8').trim();
      if (n) return n;
    } catch (err) {
      throw new CniError(CNI_ERR.INVALID_CONFIG, `network configuration field nodename_file: cannot read ${conf.nodename_file}: ${(err as Error).message}`);
    }
  }
  return env.NODENAME || hostname().toLowerCase();
}

export interface WorkloadIdentity {
  orchestrator: 'k8s' | 'cni';
  namespace: string;
  /** Pod name (k8s) or container id (cni). */
  workload: string;
  /** What the host veth name is hashed from: `<namespace>.<pod>` or the container id. */
  workloadId: string;
  pod?: string;
  /** A plain-CNI runtime's name for the container (podman's K8S_POD_NAME), kept as a label. */
  containerName?: string;
}

/**
 * Calico's rule (cni-plugin GetIdentifiers): a Kubernetes pod only when CNI_ARGS carries both
 * K8S_POD_NAMESPACE and K8S_POD_NAME; anything else is a plain CNI workload in namespace
 * "default", identified by the container id. podman sends `K8S_POD_NAME=<container name>` and no
 * namespace on every call: that is a plain CNI workload whose name tortie records as a label.
 */
export function workloadIdentity(env: CniEnv): WorkloadIdentity {
  const pod = env.args.K8S_POD_NAME;
  const ns = env.args.K8S_POD_NAMESPACE;
  if (pod && ns) return { orchestrator: 'k8s', namespace: ns, workload: pod, workloadId: `${ns}.${pod}`, pod };
  return {
    orchestrator: 'cni', namespace: 'default', workload: env.containerId, workloadId: env.containerId,
    ...(pod ? { containerName: pod } : {}),
  };
}

/** `<prefix>` + 11 hex characters of sha1(workload id): 15 characters with "cali", stable per workload. */
export function hostVethName(workloadId: string, prefix = 'cali'): string {
  return prefix + createHash('sha1').update(workloadId).digest('hex').slice(0, 11);
}

/** IPAM handle of a container on a network (Calico: `<network>.<containerID>`). */
export function handleIdFor(conf: NetConf, env: CniEnv): string {
  return `${conf.name}.${env.containerId}`;
}

/** Maps a failure from the layers below onto a CNI error with the right code. */
export function toCniError(err: unknown, doing: string): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof IpamError) {
    if (err.recoverable) return new CniError(CNI_ERR.TRY_AGAIN_LATER, `${doing}: ${err.message}`, err.code);
    if (err.code === 'ERR_IPAM_INVALID_ARGUMENT') return new CniError(CNI_ERR.INVALID_CONFIG, `${doing}: ${err.message}`, err.code);
    return new CniError(CNI_ERR.IPAM_FAILURE, `${doing}: ${err.message}`, err.code);
  }
  if (err instanceof DatastoreError) {
    if (err.recoverable) return new CniError(CNI_ERR.TRY_AGAIN_LATER, `${doing}: ${err.message}`, err.code);
    if (err.code === 'ERR_DATASTORE_CONFIG') return new CniError(CNI_ERR.INVALID_CONFIG, `${doing}: ${err.message}`, err.code);
    return new CniError(CNI_ERR.DATASTORE_FAILURE, `${doing}: ${err.message}`, err.code);
  }
  const e = err as { code?: unknown; message?: unknown };
  if (e && e.code === 'ERR_MODEL_INVALID') return new CniError(CNI_ERR.DATASTORE_FAILURE, `${doing}: ${String(e.message)}`, 'ERR_MODEL_INVALID');
  return new CniError(CNI_ERR.INTERNAL, `${doing}: ${err instanceof Error ? err.message : String(err)}`);
}
