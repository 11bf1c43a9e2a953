/**
 * Which datastore tortiectl talks to, decided as calicoctl decides it, plus tortie's embedded
 * store:
 *
 *   flags (--datastore-type, --store-dir, --etcd-endpoints, --etcd-ca, --etcd-cert, --etcd-key)
 *     > config file (-c/--config, calicoctl's CalicoAPIConfig; default /etc/tortie/tortiectl.cfg
 *       when it exists)
 *     > environment (DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE,
 *       ETCD_KEY_FILE, TORTIE_DATASTORE_DIR or its alias TORTIE_STORE_DIR)
 *     > defaults (embedded store in /var/lib/tortie/store).
 *
 * The layers are merged by the one resolver the agent and the CNI plugin use too
 * (src/datastore/config.ts: type defaults, TORTIE_STORE_DIR vs TORTIE_DATASTORE_DIR, checks);
 * this file reads the flags and calicoctl's config file into layers.
 *
 * Contract: `resolveDatastoreConfig` is pure apart from reading the config file and checking
 * that named certificate files are readable; every problem is a ConfigFileError whose message
 * names the flag, variable or file field, the value, and what was expected.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import {
  datastoreEnvLayer, datastoreSetting as setting, resolveDatastore, type DatastoreConfig, type DatastoreLayer as Layer,
} from '../datastore/config';
import { EmbeddedDatastore } from '../datastore/embedded';
import { DatastoreConfigError } from '../datastore/errors';
import type { Datastore } from '../datastore/types';
import type { ParsedArgs } from './args';
import { CliError, type CliIO } from './io';

export const DEFAULT_CONFIG_PATH = '/etc/tortie/tortiectl.cfg';

export class ConfigFileError extends CliError {
  constructor(message: string, cause?: unknown) {
    super(message, 'ERR_CLI_CONFIG', 1, { cause });
    this.name = 'ConfigFileError';
  }
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

/** The effective datastore configuration for a command's parsed arguments. */
export function resolveDatastoreConfig(args: ParsedArgs, io: CliIO): DatastoreConfig {
  const explicitFile = args.get('config');
  let file: Layer = {};
  if (explicitFile !== undefined) {
    file = readConfigFile(path.resolve(io.cwd, explicitFile));
  } else if (fs.existsSync(DEFAULT_CONFIG_PATH)) {
    file = readConfigFile(DEFAULT_CONFIG_PATH);
  }
  try {
    return resolveDatastore([fromFlags(args), file, datastoreEnvLayer(io.env)], { cwd: io.cwd });
  } catch (e) {
    if (e instanceof DatastoreConfigError) throw new ConfigFileError(e.message, e);
    throw e;
  }
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
