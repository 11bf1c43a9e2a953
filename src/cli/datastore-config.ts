/**
 * Which datastore tortiectl talks to, decided as calicoctl decides it, plus tortie's embedded
 * store:
 *
 *   flags (--datastore-type, --store-dir, --etcd-endpoints, --etcd-ca, --etcd-cert, --etcd-key)
 *     > config file (-c/--config, calicoctl's CalicoAPIConfig; default /etc/tortie/tortiectl.cfg
 *       when it exists)
 *     > environment (DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE,
 *       ETCD_KEY_FILE, TORTIE_STORE_DIR or TORTIE_DATASTORE_DIR)
 *     > defaults (embedded store in /var/lib/tortie/store).
 *
 * The datastore type defaults to `embedded` (as tortie-node does, so that the CLI and the agent
 * agree when nothing is configured), except that etcd endpoints given anywhere (flag, config
 * file, ETCD_ENDPOINTS) without a type mean etcdv3 — calicoctl's default — in tortiectl,
 * tortie-node and the CNI plugin alike.
 *
 * Contract: `resolveDatastoreConfig` is pure apart from reading the config file and checking
 * that named certificate files are readable; every problem is a ConfigFileError whose message
 * names the flag, variable or file field, the value, and what was expected.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import type { DatastoreConfig } from '../datastore';
import { DEFAULT_EMBEDDED_DIR, EmbeddedDatastore } from '../datastore/embedded';
import type { Datastore } from '../datastore/types';
import type { ParsedArgs } from './args';
import { CliError, type CliIO } from './io';

export const DEFAULT_CONFIG_PATH = '/etc/tortie/tortiectl.cfg';

export class ConfigFileError extends CliError {
  constructor(message: string) {
    super(message, 'ERR_CLI_CONFIG');
    this.name = 'ConfigFileError';
  }
}

interface Setting {
  value: string;
  /** Where it came from, for messages: `--etcd-ca`, `ETCD_CA_CERT_FILE`, `/path/cfg: spec.etcdCACertFile`. */
  source: string;
}

interface Layer {
  type?: Setting;
  storeDir?: Setting;
  endpoints?: Setting;
  ca?: Setting;
  cert?: Setting;
  key?: Setting;
}

const FILE_SPEC_FIELDS: Record<string, keyof Layer> = {
  datastoreType: 'type',
  etcdEndpoints: 'endpoints',
  etcdCACertFile: 'ca',
  etcdCertFile: 'cert',
  etcdKeyFile: 'key',
  storeDir: 'storeDir',
};

/** calicoctl config fields tortie knows but cannot honour: named in the error. */
const UNSUPPORTED_SPEC_FIELDS = new Set([
  'etcdUsername', 'etcdPassword', 'etcdDiscoverySrv', 'etcdKey', 'etcdCert', 'etcdCACert',
  'kubeconfig', 'k8sAPIEndpoint', 'k8sKeyFile', 'k8sCertFile', 'k8sCAFile', 'k8sAPIToken',
  'k8sInsecureSkipTLSVerify', 'k8sDisableNodePoll', 'k8sClientQPS', 'kubeconfigInline',
]);

function setting(value: string | undefined, source: string): Setting | undefined {
  return value === undefined || value === '' ? undefined : { value, source };
}

function fromFlags(args: ParsedArgs): Layer {
  return {
    type: setting(args.get('datastore-type'), '--datastore-type'),
    storeDir: setting(args.get('store-dir'), '--store-dir'),
    endpoints: setting(args.get('etcd-endpoints'), '--etcd-endpoints'),
    ca: setting(args.get('etcd-ca'), '--etcd-ca'),
    cert: setting(args.get('etcd-cert'), '--etcd-cert'),
    key: setting(args.get('etcd-key'), '--etcd-key'),
  };
}

function fromEnv(env: NodeJS.ProcessEnv): Layer {
  const pick = (...names: string[]): Setting | undefined => {
    for (const n of names) {
      const s = setting(env[n], n);
      if (s) return s;
    }
    return undefined;
  };
  return {
    type: pick('DATASTORE_TYPE'),
    storeDir: pick('TORTIE_STORE_DIR', 'TORTIE_DATASTORE_DIR'),
    endpoints: pick('ETCD_ENDPOINTS'),
    ca: pick('ETCD_CA_CERT_FILE'),
    cert: pick('ETCD_CERT_FILE'),
    key: pick('ETCD_KEY_FILE'),
  };
}

/** Reads calicoctl's CalicoAPIConfig (YAML or JSON). Relative paths inside are relative to the file. */
export function readConfigFile(file: string): Layer {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigFileError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new ConfigFileError(`config file ${file} is not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigFileError(`config file ${file}: must be a CalicoAPIConfig object`);
  const o = doc as Record<string, unknown>;
  if (o.kind !== undefined && o.kind !== 'CalicoAPIConfig') {
    throw new ConfigFileError(`config file ${file}: kind: expected "CalicoAPIConfig", got ${JSON.stringify(o.kind)}`);
  }
  if (o.apiVersion !== undefined && o.apiVersion !== 'projectcalico.org/v3') {
    throw new ConfigFileError(`config file ${file}: apiVersion: expected "projectcalico.org/v3", got ${JSON.stringify(o.apiVersion)}`);
  }
  const spec = o.spec ?? {};
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new ConfigFileError(`config file ${file}: spec: must be an object`);
  const layer: Layer = {};
  for (const [k, v] of Object.entries(spec as Record<string, unknown>)) {
    if (v === null || v === undefined || v === '') continue;
    if (UNSUPPORTED_SPEC_FIELDS.has(k)) {
      throw new ConfigFileError(`config file ${file}: spec.${k}: not supported by tortie (etcd v3 with optional TLS, or the embedded store)`);
    }
    const target = FILE_SPEC_FIELDS[k];
    if (!target) throw new ConfigFileError(`config file ${file}: spec.${k}: unknown field`);
    if (typeof v !== 'string') throw new ConfigFileError(`config file ${file}: spec.${k}: must be a string, got ${JSON.stringify(v)}`);
    let value = v;
    if ((target === 'ca' || target === 'cert' || target === 'key' || target === 'storeDir') && !path.isAbsolute(value)) {
      value = path.resolve(path.dirname(file), value);
    }
    layer[target] = { value, source: `${file}: spec.${k}` };
  }
  if (!layer.type && layer.endpoints) layer.type = { value: 'etcdv3', source: `${file} (etcdEndpoints without datastoreType)` };
  return layer;
}

function parseType(s: Setting): 'embedded' | 'etcdv3' {
  const v = s.value.trim().toLowerCase();
  if (v === 'embedded') return 'embedded';
  if (v === 'etcdv3' || v === 'etcd') return 'etcdv3';
  if (v === 'kubernetes') {
    throw new ConfigFileError(`${s.source}: datastore type "kubernetes" is not supported by tortie (expected "etcdv3" or "embedded")`);
  }
  throw new ConfigFileError(`${s.source}: datastore type ${JSON.stringify(s.value)} is not supported (expected "etcdv3" or "embedded")`);
}

function parseEndpoints(s: Setting): string[] {
  const eps = s.value.split(',').map((e) => e.trim()).filter(Boolean);
  if (eps.length === 0) throw new ConfigFileError(`${s.source}: no etcd endpoint given`);
  for (const e of eps) {
    let u: URL;
    try {
      u = new URL(e);
    } catch {
      throw new ConfigFileError(`${s.source}: etcd endpoint ${JSON.stringify(e)} is not a URL (e.g. http://127.0.0.1:2379)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new ConfigFileError(`${s.source}: etcd endpoint ${JSON.stringify(e)} must use http or https`);
    }
  }
  return eps;
}

function readableFile(s: Setting | undefined, cwd: string): string | undefined {
  if (!s) return undefined;
  const p = path.resolve(cwd, s.value);
  try {
    fs.accessSync(p, fs.constants.R_OK);
  } catch (e) {
    throw new ConfigFileError(`${s.source}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return p;
}

/** The effective datastore configuration for a command's parsed arguments. */
export function resolveDatastoreConfig(args: ParsedArgs, io: CliIO): DatastoreConfig {
  const explicitFile = args.get('config');
  let file: Layer = {};
  if (explicitFile !== undefined) {
    file = readConfigFile(path.resolve(io.cwd, explicitFile));
  } else if (fs.existsSync(DEFAULT_CONFIG_PATH)) {
    file = readConfigFile(DEFAULT_CONFIG_PATH);
  }
  const flags = fromFlags(args);
  const env = fromEnv(io.env);
  // Each setting from the highest layer that has it.
  const get = (k: keyof Layer): Setting | undefined => flags[k] ?? file[k] ?? env[k];

  // No type anywhere: etcd when etcd endpoints are configured anywhere (as calicoctl, whose
  // default is etcd), else the embedded store. tortie-node and the CNI plugin decide the same way.
  const typeSetting = get('type');
  const type = typeSetting ? parseType(typeSetting) : get('endpoints') ? 'etcdv3' : 'embedded';
  if (type === 'embedded') {
    const dir = get('storeDir');
    return { type: 'embedded', dir: dir ? path.resolve(io.cwd, dir.value) : DEFAULT_EMBEDDED_DIR };
  }
  const eps = get('endpoints');
  const endpoints = eps ? parseEndpoints(eps) : ['http://127.0.0.1:2379'];
  const cert = get('cert');
  const key = get('key');
  if ((cert === undefined) !== (key === undefined)) {
    const given = (cert ?? key) as Setting;
    throw new ConfigFileError(`${given.source}: an etcd client certificate and key must be given together (--etcd-cert and --etcd-key, ETCD_CERT_FILE and ETCD_KEY_FILE)`);
  }
  return {
    type: 'etcdv3',
    endpoints,
    caFile: readableFile(get('ca'), io.cwd),
    certFile: readableFile(cert, io.cwd),
    keyFile: readableFile(key, io.cwd),
  };
}

/**
 * Opens the configured datastore; failures to open become calicoctl's "Failed to create …
 * client" error. The etcd client (gRPC) is loaded only when etcd is used: it is most of a
 * command's start-up time.
 */
export function openConfiguredDatastore(config: DatastoreConfig): Datastore {
  try {
    if (config.type === 'embedded') return new EmbeddedDatastore({ ...config });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { openDatastore } = require('../datastore') as typeof import('../datastore');
    return openDatastore(config);
  } catch (e) {
    throw new CliError(`Failed to create tortie API client: ${(e as Error).message}`, 'ERR_CLI_DATASTORE');
  }
}
