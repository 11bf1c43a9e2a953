/**
 * Which datastore a process opens: the one resolver behind tortiectl (src/cli/datastore-config),
 * tortie-node (src/node/config) and the CNI plugins (src/cni/context), so that the same
 * environment selects the same store in all three.
 *
 * Each entry point hands over its settings as layers, highest precedence first:
 *
 *   tortiectl   flags > calicoctl config file (-c) > environment
 *   tortie-node flags > environment
 *   CNI plugin  network configuration (datastore_type, datastore_path, etcd_*) > environment
 *
 * Each setting comes from the highest layer that has it. The environment layer uses Calico's
 * names — DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE — and
 * tortie's TORTIE_DATASTORE_DIR for the embedded store, with TORTIE_STORE_DIR as an alias. Both
 * dir variables set to different directories is an error naming both (which store was meant
 * cannot be guessed), raised when the embedded store's directory is taken from them.
 *
 * The type: the first layer's DATASTORE_TYPE equivalent; without one, etcdv3 when etcd endpoints
 * are configured anywhere (calicoctl's default is etcd), else embedded in /var/lib/tortie/store.
 * Every given setting is checked (type, endpoint URLs, certificate and key given together) even
 * when the other backend is chosen; with `cwd`, relative paths are resolved against it and the
 * etcd TLS files of a chosen etcd store must be readable.
 *
 * Contract: pure apart from that readability check; every problem is a DatastoreConfigError
 * (ERR_DATASTORE_CONFIG) whose message starts with where the value came from (`--etcd-ca`,
 * `ETCD_ENDPOINTS`, `/etc/tortie/tortiectl.cfg: spec.etcdEndpoints`, `network configuration
 * field datastore_path`), so each entry point can re-raise it as its own error unchanged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_EMBEDDED_DIR } from './embedded';
import { DatastoreConfigError } from './errors';

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

export const DEFAULT_ETCD_ENDPOINT = 'http://127.0.0.1:2379';

/** One value and where it came from (used in messages). */
export interface DatastoreSetting {
  value: string;
  source: string;
  /** Set when this layer cannot tell which value was meant: the message raised if it is used. */
  conflict?: string;
}

/** The datastore settings one source (flags, a file, the environment, a CNI config) gives. */
export interface DatastoreLayer {
  type?: DatastoreSetting;
  storeDir?: DatastoreSetting;
  endpoints?: DatastoreSetting;
  ca?: DatastoreSetting;
  cert?: DatastoreSetting;
  key?: DatastoreSetting;
}

export interface EtcdSettings {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface ResolveOptions {
  /** Resolve relative paths against this directory and require the chosen etcd TLS files to be readable. */
  cwd?: string;
}

/** A setting, or nothing for an absent or empty value. */
export function datastoreSetting(value: string | undefined, source: string): DatastoreSetting | undefined {
  return value === undefined || value === '' ? undefined : { value, source };
}

/** The environment's layer (Calico's names, tortie's embedded-store directory and its alias). */
export function datastoreEnvLayer(env: NodeJS.ProcessEnv): DatastoreLayer {
  const s = (name: string) => datastoreSetting(env[name], name);
  const primary = s('TORTIE_DATASTORE_DIR');
  const alias = s('TORTIE_STORE_DIR');
  let storeDir = primary ?? alias;
  if (primary && alias && path.resolve(primary.value) !== path.resolve(alias.value)) {
    storeDir = {
      ...primary,
      source: 'TORTIE_DATASTORE_DIR, TORTIE_STORE_DIR',
      conflict: `TORTIE_DATASTORE_DIR=${primary.value} and TORTIE_STORE_DIR=${alias.value} name different embedded stores `
        + '(TORTIE_STORE_DIR is an alias of TORTIE_DATASTORE_DIR): set only one of them',
    };
  }
  return { type: s('DATASTORE_TYPE'), storeDir, endpoints: s('ETCD_ENDPOINTS'), ca: s('ETCD_CA_CERT_FILE'), cert: s('ETCD_CERT_FILE'), key: s('ETCD_KEY_FILE') };
}

function parseType(s: DatastoreSetting): 'embedded' | 'etcdv3' {
  const v = s.value.trim().toLowerCase();
  if (v === 'embedded' || v === 'local') return 'embedded';
  if (v === 'etcdv3' || v === 'etcd') return 'etcdv3';
  if (v === 'kubernetes') {
    throw new DatastoreConfigError(`${s.source}: datastore type "kubernetes" is not supported by tortie (expected "etcdv3" or "embedded")`);
  }
  throw new DatastoreConfigError(`${s.source}: datastore type ${JSON.stringify(s.value)} is not supported (expected "etcdv3" or "embedded")`);
}

function parseEndpoints(s: DatastoreSetting): string[] {
  const eps = s.value.split(',').map((e) => e.trim()).filter(Boolean);
  if (eps.length === 0) throw new DatastoreConfigError(`${s.source}: no etcd endpoint given`);
  for (const e of eps) {
    let u: URL;
    try {
      u = new URL(e);
    } catch {
      throw new DatastoreConfigError(`${s.source}: etcd endpoint ${JSON.stringify(e)} is not a URL (e.g. ${DEFAULT_ETCD_ENDPOINT})`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new DatastoreConfigError(`${s.source}: etcd endpoint ${JSON.stringify(e)} must use http or https`);
    }
  }
  return eps;
}

function readableFile(s: DatastoreSetting | undefined, opts: ResolveOptions): string | undefined {
  if (!s) return undefined;
  if (opts.cwd === undefined) return s.value;
  const p = path.resolve(opts.cwd, s.value);
  try {
    fs.accessSync(p, fs.constants.R_OK);
  } catch (e) {
    throw new DatastoreConfigError(`${s.source}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return p;
}

/** The layers' settings merged: each from the highest layer that has it. */
function merge(layers: readonly DatastoreLayer[]): DatastoreLayer {
  const out: DatastoreLayer = {};
  for (const k of ['type', 'storeDir', 'endpoints', 'ca', 'cert', 'key'] as const) {
    for (const l of layers) {
      if (l[k]) {
        out[k] = l[k];
        break;
      }
    }
  }
  return out;
}

/**
 * Every datastore setting resolved: the chosen type, the embedded store's directory (undefined
 * when etcd is chosen and the directory settings conflict: it is not used) and the etcd settings
 * (defaults where none are given). tortie-node keeps all three in its NodeConfig.
 */
export function resolveDatastoreSettings(layers: readonly DatastoreLayer[], opts: ResolveOptions = {}): { type: 'embedded' | 'etcdv3'; dir: string; etcd: EtcdSettings } {
  const m = merge(layers);
  const type = m.type ? parseType(m.type) : m.endpoints ? 'etcdv3' : 'embedded';
  const endpoints = m.endpoints ? parseEndpoints(m.endpoints) : [DEFAULT_ETCD_ENDPOINT];
  if ((m.cert === undefined) !== (m.key === undefined)) {
    const given = (m.cert ?? m.key) as DatastoreSetting;
    throw new DatastoreConfigError(`${given.source}: an etcd client certificate and key must be given together (--etcd-cert and --etcd-key, ETCD_CERT_FILE and ETCD_KEY_FILE)`);
  }
  let dir = DEFAULT_EMBEDDED_DIR;
  if (m.storeDir) {
    if (m.storeDir.conflict && type === 'embedded') throw new DatastoreConfigError(m.storeDir.conflict);
    if (!m.storeDir.conflict) dir = opts.cwd === undefined ? m.storeDir.value : path.resolve(opts.cwd, m.storeDir.value);
  }
  const etcd: EtcdSettings = type === 'etcdv3'
    ? { endpoints, caFile: readableFile(m.ca, opts), certFile: readableFile(m.cert, opts), keyFile: readableFile(m.key, opts) }
    : { endpoints, caFile: m.ca?.value, certFile: m.cert?.value, keyFile: m.key?.value };
  return { type, dir, etcd };
}

/** The DatastoreConfig the layers select (see the top of this file). */
export function resolveDatastore(layers: readonly DatastoreLayer[], opts: ResolveOptions = {}): DatastoreConfig {
  const r = resolveDatastoreSettings(layers, opts);
  if (r.type === 'embedded') return { type: 'embedded', dir: r.dir };
  return { type: 'etcdv3', endpoints: r.etcd.endpoints, caFile: r.etcd.caFile, certFile: r.etcd.certFile, keyFile: r.etcd.keyFile };
}

/** DatastoreConfig from the environment alone (Calico's names; see datastoreEnvLayer). */
export function datastoreConfigFromEnv(env: NodeJS.ProcessEnv = process.env): DatastoreConfig {
  return resolveDatastore([datastoreEnvLayer(env)]);
}
