/**
 * Parsing and validation of what a CNI runtime hands the plugins: the CNI_* environment and the
 * network configuration JSON on stdin. Every problem becomes a `CniError` with the spec's code
 * (4 for the environment, 6 for undecodable JSON, 7 for an invalid configuration, 1 for an
 * unsupported cniVersion) and a message naming the variable or field, its value and why.
 *
 * Configuration fields follow Calico's CNI plugin where Calico has one:
 *   cniVersion, name, type                     required by the spec
 *   datastore_type        "embedded" | "etcdv3" (default: DATASTORE_TYPE env, else embedded)
 *   etcd_endpoints        "http://127.0.0.1:2379,…" (etcdv3)
 *   etcd_ca_cert_file, etcd_cert_file, etcd_key_file
 *   datastore_path        embedded store directory (tortie; default TORTIE_DATASTORE_DIR env
 *                         or its alias TORTIE_STORE_DIR, else /var/lib/tortie/store; the
 *                         choice is src/datastore/config.ts's, shared with tortiectl and the agent)
 *   nodename, nodename_file   this node's name (default NODENAME env, else the hostname)
 *   mtu                   workload MTU (default: what tortie-node wrote to mtu_file, as Calico's plugin
 *                         reads /var/lib/calico/mtu; without that file 1500, or 1480 when the
 *                         address's pool uses IPIP)
 *   mtu_file              where tortie-node writes the detected MTU (default: TORTIE_MTU_FILE env,
 *                         else <TORTIE_RUN_DIR or /run/tortie>/mtu)
 *   ipam                  {type: "tortie-ipam", ipv4_pools?: [name|cidr…], ipv6_pools?: [name|cidr…],
 *                         assign_ipv4?: "true" | "false" (default "true"), assign_ipv6?: "true" |
 *                         "false" (default "false")} — Calico's calico-ipam fields, strings as
 *                         Calico's; for another IPAM type the object is passed on unread
 *   policy                {type: "k8s" | "none"} (recorded; policy comes from the datastore)
 *   policy_only           true: beside another CNI plugin — no IPAM, veth or routes; only the
 *                         WorkloadEndpoint for the interface the other plugin made (chained:
 *                         addresses from prevResult)
 *   interface_prefix      host-side interface name prefix (default "cali")
 *   labels, profiles      WorkloadEndpoint labels / profiles (default profile: kns.<namespace>
 *                         for Kubernetes pods, the network name otherwise)
 *   args.cni.labels       CNI conventions: [{key, value}]; args.cni.ports: [{name, protocol, port}]
 *   log_level             pino level for stderr logs (default "warn")
 */
import { CNI_ERR, CniError } from './errors';

import { SUPPORTED_VERSIONS } from './version';

export { SUPPORTED_VERSIONS };

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  args: Record<string, string>;
  path: string[];
}

export interface PortSpec { name: string; protocol: string; port: number }

export interface IpamConf {
  type: string;
  ipv4_pools?: string[];
  ipv6_pools?: string[];
  assign_ipv4?: 'true' | 'false';
  assign_ipv6?: 'true' | 'false';
  [k: string]: unknown;
}

export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  datastore_type?: 'embedded' | 'etcdv3';
  etcd_endpoints?: string;
  etcd_ca_cert_file?: string;
  etcd_cert_file?: string;
  etcd_key_file?: string;
  datastore_path?: string;
  nodename?: string;
  nodename_file?: string;
  mtu?: number;
  ipam?: IpamConf;
  policy?: { type: string };
  policy_only?: boolean;
  mtu_file?: string;
  interface_prefix?: string;
  labels?: Record<string, string>;
  profiles?: string[];
  ports?: PortSpec[];
  log_level?: string;
  prevResult?: CniResult;
  /** The raw object, for handing on to a delegated IPAM plugin unchanged. */
  raw: Record<string, unknown>;
}

export interface CniInterface { name: string; mac?: string; sandbox?: string }
export interface CniIpConfig { address: string; gateway?: string; interface?: number; version?: string }
export interface CniRoute { dst: string; gw?: string }
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: Record<string, unknown>;
}

const IFNAME_RE = /^[^/\s:]{1,15}$/;
const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The CNI_* variables, checked for what `command` needs (spec 1.0.0 "Parameters"). */
export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const cmd = env.CNI_COMMAND;
  if (cmd === undefined || cmd === '') throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_COMMAND is not set (expected ADD, DEL, CHECK or VERSION)');
  if (!['ADD', 'DEL', 'CHECK', 'VERSION'].includes(cmd)) {
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_COMMAND=${JSON.stringify(cmd)} is not a CNI command (expected ADD, DEL, CHECK or VERSION)`);
  }
  const command = cmd as CniCommand;
  const out: CniEnv = { command, containerId: '', netns: '', ifname: '', args: {}, path: [] };
  if (command === 'VERSION') return out;
  const need = (name: string): string => {
    const v = env[name];
    if (v === undefined || v === '') throw new CniError(CNI_ERR.INVALID_ENV, `${name} is required for CNI_COMMAND=${command} but is not set`);
    return v;
  };
  out.containerId = need('CNI_CONTAINERID');
  if (!CONTAINER_ID_RE.test(out.containerId)) {
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_CONTAINERID=${JSON.stringify(out.containerId)} must be letters, digits, '_', '.' or '-', starting with a letter or digit`);
  }
  out.netns = command === 'DEL' ? (env.CNI_NETNS ?? '') : need('CNI_NETNS');
  out.ifname = need('CNI_IFNAME');
  if (!IFNAME_RE.test(out.ifname)) {
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_IFNAME=${JSON.stringify(out.ifname)} is not a valid interface name (1–15 characters, no '/', ':' or spaces)`);
  }
  out.args = parseCniArgs(env.CNI_ARGS ?? '');
  out.path = (env.CNI_PATH ?? '').split(':').filter(Boolean);
  return out;
}

/** CNI_ARGS: `K=V;K=V` (as libcni's "IgnoreUnknown" convention; unknown keys are kept). */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (text.trim() === '') return out;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS: ${JSON.stringify(pair)} is not KEY=VALUE (pairs are separated by ';')`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The network configuration from stdin. */
export function parseNetConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CNI_ERR.DECODE_FAILURE, `network configuration on stdin is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObj(raw)) throw new CniError(CNI_ERR.DECODE_FAILURE, 'network configuration on stdin must be a JSON object');
  const bad = (field: string, why: string): never => {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `network configuration field ${field}: ${why}`);
  };
  const str = (field: string, required: boolean): string | undefined => {
    const v = raw[field];
    if (v === undefined || v === null) return required ? bad(field, 'is required') : undefined;
    if (typeof v !== 'string') return bad(field, `must be a string, got ${JSON.stringify(v)}`);
    if (required && v === '') bad(field, 'must not be empty');
    return v;
  };
  const conf: NetConf = { cniVersion: '', name: '', type: '', raw };
  const ver = raw.cniVersion;
  if (typeof ver !== 'string' || ver === '') {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `network configuration has no cniVersion; supported versions are ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(ver)) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `cniVersion ${JSON.stringify(ver)} is not supported; supported versions are ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  conf.cniVersion = ver;
  conf.name = str('name', true)!;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(conf.name)) bad('name', `${JSON.stringify(conf.name)} must be letters, digits, '_', '.' or '-', starting with a letter or digit`);
  conf.type = str('type', true)!;
  const dsType = str('datastore_type', false);
  if (dsType !== undefined && dsType !== '') {
    const t = dsType === 'etcd' ? 'etcdv3' : dsType;
    if (t !== 'embedded' && t !== 'etcdv3') bad('datastore_type', `${JSON.stringify(dsType)} is not supported (expected "etcdv3" or "embedded")`);
    conf.datastore_type = t as 'embedded' | 'etcdv3';
  }
  for (const f of ['etcd_endpoints', 'etcd_ca_cert_file', 'etcd_cert_file', 'etcd_key_file', 'datastore_path', 'nodename', 'nodename_file', 'interface_prefix', 'log_level'] as const) {
    const v = str(f, false);
    if (v !== undefined && v !== '') conf[f] = v;
  }
  if (conf.datastore_type === 'etcdv3' && conf.etcd_endpoints === undefined && process.env.ETCD_ENDPOINTS === undefined) {
    bad('etcd_endpoints', 'is required when datastore_type is "etcdv3"');
  }
  if (conf.interface_prefix !== undefined && !/^[A-Za-z][A-Za-z0-9]{0,3}$/.test(conf.interface_prefix)) {
    bad('interface_prefix', `${JSON.stringify(conf.interface_prefix)} must be 1–4 letters or digits, starting with a letter (the name is prefix + 11 hex characters, at most 15)`);
  }
  if (raw.mtu !== undefined) {
    if (typeof raw.mtu !== 'number' || !Number.isInteger(raw.mtu) || raw.mtu < 576 || raw.mtu > 65535) bad('mtu', `${JSON.stringify(raw.mtu)} must be an integer from 576 to 65535`);
    conf.mtu = raw.mtu as number;
  }
  if (raw.mtu_file !== undefined) {
    if (typeof raw.mtu_file !== 'string' || !raw.mtu_file.startsWith('/')) bad('mtu_file', `${JSON.stringify(raw.mtu_file)} must be an absolute path`);
    conf.mtu_file = raw.mtu_file as string;
  }
  if (raw.policy_only !== undefined) {
    if (typeof raw.policy_only !== 'boolean') bad('policy_only', `must be true or false, got ${JSON.stringify(raw.policy_only)}`);
    conf.policy_only = raw.policy_only as boolean;
  }
  if (raw.ipam !== undefined) {
    if (!isObj(raw.ipam)) bad('ipam', 'must be an object');
    const ipam = raw.ipam as Record<string, unknown>;
    if (typeof ipam.type !== 'string' || ipam.type === '') bad('ipam.type', 'is required (e.g. "tortie-ipam")');
    for (const key of ['ipv4_pools', 'ipv6_pools'] as const) {
      const v = ipam[key];
      if (v !== undefined && (!Array.isArray(v) || !v.every((p) => typeof p === 'string' && p !== ''))) bad(`ipam.${key}`, 'must be a list of pool names or CIDRs');
    }
    if (ipam.type === 'tortie-ipam') {
      // Calico reads these as strings (*string in its NetConf): a JSON boolean is refused there too.
      for (const key of ['assign_ipv4', 'assign_ipv6'] as const) {
        const v = ipam[key];
        if (v !== undefined && v !== 'true' && v !== 'false') bad(`ipam.${key}`, `must be the string "true" or "false", got ${JSON.stringify(v)}`);
      }
      if (ipam.assign_ipv4 === 'false' && ipam.assign_ipv6 !== 'true') {
        bad('ipam.assign_ipv4', '"false" with assign_ipv6 not "true" leaves no address to assign');
      }
    }
    conf.ipam = ipam as IpamConf;
  } else if (!conf.policy_only && conf.type !== 'tortie-ipam') {
    bad('ipam', 'is required unless policy_only is true (e.g. {"type": "tortie-ipam"})');
  }
  if (raw.policy !== undefined) {
    if (!isObj(raw.policy) || typeof raw.policy.type !== 'string') bad('policy', 'must be an object with a string "type"');
    conf.policy = { type: (raw.policy as { type: string }).type };
  }
  if (raw.labels !== undefined) {
    if (!isObj(raw.labels) || !Object.values(raw.labels).every((v) => typeof v === 'string')) bad('labels', 'must be an object of string values');
    conf.labels = raw.labels as Record<string, string>;
  }
  if (raw.profiles !== undefined) {
    if (!Array.isArray(raw.profiles) || !raw.profiles.every((p) => typeof p === 'string' && p !== '')) bad('profiles', 'must be a list of profile names');
    conf.profiles = raw.profiles as string[];
  }
  const ports: PortSpec[] = [];
  const argsCni = isObj(raw.args) && isObj(raw.args.cni) ? raw.args.cni : undefined;
  const addPorts = (v: unknown, field: string): void => {
    if (v === undefined) return;
    if (!Array.isArray(v)) bad(field, 'must be a list of {name, protocol, port}');
    (v as unknown[]).forEach((p, i) => {
      const f = `${field}[${i}]`;
      if (!isObj(p)) return bad(f, 'must be an object {name, protocol, port}');
      if (typeof p.name !== 'string' || p.name === '') bad(`${f}.name`, 'is required');
      const proto = p.protocol === undefined ? 'TCP' : p.protocol;
      if (typeof proto !== 'string' || !['TCP', 'UDP', 'SCTP'].includes(proto.toUpperCase())) bad(`${f}.protocol`, `${JSON.stringify(p.protocol)} must be TCP, UDP or SCTP`);
      if (typeof p.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) bad(`${f}.port`, `${JSON.stringify(p.port)} must be an integer from 1 to 65535`);
      ports.push({ name: p.name as string, protocol: (proto as string).toUpperCase(), port: p.port as number });
    });
  };
  addPorts(raw.ports, 'ports');
  addPorts(argsCni?.ports, 'args.cni.ports');
  if (ports.length > 0) conf.ports = ports;
  if (argsCni?.labels !== undefined) {
    if (!Array.isArray(argsCni.labels)) bad('args.cni.labels', 'must be a list of {key, value}');
    const labels = { ...(conf.labels ?? {}) };
    (argsCni.labels as unknown[]).forEach((l, i) => {
      if (!isObj(l) || typeof l.key !== 'string' || typeof l.value !== 'string') bad(`args.cni.labels[${i}]`, 'must be {"key": string, "value": string}');
      labels[(l as { key: string }).key] = (l as { value: string }).value;
    });
    conf.labels = labels;
  }
  if (raw.prevResult !== undefined) {
    if (!isObj(raw.prevResult)) bad('prevResult', 'must be an object');
    conf.prevResult = raw.prevResult as unknown as CniResult;
  }
  return conf;
}

/** A result in the shape of the configuration's cniVersion (0.3.x/0.4.0 IPs carry "version"). */
export function formatResult(result: CniResult, cniVersion: string): CniResult {
  const out: CniResult = { ...result, cniVersion };
  if (cniVersion !== '1.0.0' && out.ips) {
    out.ips = out.ips.map((ip) => ({ ...ip, version: ip.address.includes(':') ? '6' : '4' }));
  } else if (out.ips) {
    out.ips = out.ips.map(({ version: _v, ...rest }) => rest);
  }
  return out;
}
