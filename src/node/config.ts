/**
 * tortie-node configuration: command-line flags first, then Calico's environment variable names,
 * then defaults. Every value is checked here; a bad one is a ConfigError naming the flag or
 * variable, the value, and what was expected.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { datastoreEnvLayer, datastoreSetting, resolveDatastoreSettings } from '../datastore/config';
import { DatastoreConfigError } from '../datastore/errors';
import {
  DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND, FELIX_ENDPOINT_TO_HOST_ACTIONS, FELIX_FIELDS, FELIX_HONOURED_FIELDS, felixEnv, parseDuration, parseFailsafeText,
  type FailsafePort, type FelixConfigurationSpec, type FelixConntrackTimer, type FelixHonouredField, type FelixSettable as ModelFelixSettable,
} from '../model';
import { CALICO_CT_TIMEOUTS, type CtTimeouts } from '../dataplane/bpf/conntrack';
import { DEFAULT_MTU_PATTERN } from '../dataplane/routing';
import { TortieError } from '../util/errors';
import { tryParseCidrOrIp, tryParseCidrOrIp4, VXLAN_DEFAULTS } from '../primitives';
import { DEFAULT_HOST_ROUTING, HOST_ROUTING_MODES, type HostRoutingMode } from '../dataplane/bpf/host-routing';
import { DEFAULT_POLICY_MAP_SIZES, POLICY_MAP_KEYS, type PolicyMapKey } from '../dataplane/bpf/map-sizes';

export type DatastoreType = 'embedded' | 'etcdv3';
export type LogFormat = 'json' | 'text';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface EtcdConfig {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface NodeConfig {
  nodeName: string;
  /** `autodetect`, `none`, or an address with its subnet (`10.0.2.10/24`). */
  ip: string;
  ipAutodetectionMethod: string;
  /**
   * Calico's IP6: `none` (default: no IPv6 address is detected and the Node's stored one is
   * kept), `autodetect`, or an IPv6 address with optional /prefix.
   */
  ip6: string;
  /** IP6_AUTODETECTION_METHOD (the methods of IP_AUTODETECTION_METHOD, over IPv6 addresses). */
  ip6AutodetectionMethod: string;
  datastoreType: DatastoreType;
  storeDir: string;
  etcd: EtcdConfig;
  /** Screen (stderr) log level: --log-level, FELIX_LOGSEVERITYSCREEN. */
  logLevel: LogLevel;
  /** Screen format: JSON lines (default) or Felix-like text lines. */
  logFormat: LogFormat;
  /** Log file (FELIX_LOGFILEPATH; empty or "none" = no file), always JSON lines. */
  logFile: string;
  /** FELIX_LOGSEVERITYFILE. */
  logLevelFile: LogLevel;
  /** Flow logs (denied flows, Log rules): '' = in the main log; a path = JSON lines in that file; '-' = stdout. */
  flowLogFile: string;
  bpffsRoot: string;
  /** Pid and state files (TORTIE_RUN_DIR). */
  runDir: string;
  /** FELIX_PROMETHEUSMETRICSENABLED (tortie default: true). */
  metricsEnabled: boolean;
  metricsHost: string;
  metricsPort: number;
  healthPort: number;
  healthHost: string;
  /** Interface-name prefix(es) of workload interfaces, comma-separated (Calico's FELIX_INTERFACEPREFIX). */
  interfacePrefix: string;
  /** Policy-only mode: enforce policy on workload interfaces, no IPAM/routes/encap. */
  policyOnly: boolean;
  /** The host uplink the XDP prefilter and IPIP/NAT programs attach to (empty = from the node IP). */
  uplink: string;
  /** Largest number of kernel writes per apply batch. */
  maxBatch: number;
  /**
   * V8's old-generation growing factor as a percentage (the heap may grow to live × (1 + p/100)
   * before the next full collection); 0 leaves V8's own heuristics, which let a heap of ~150 MB
   * live data sit at 250+ MB. Lower = smaller RSS, more frequent full collections.
   */
  heapGrowingPercent: number;
  /** NAT outgoing: port range (Calico's natPortRange), per-workload quota, table size. */
  nat: { portMin: number; portMax: number; quota: number; maxEntries: number };
  /**
   * Felix's defaultEndpointToHostAction (FELIX_DEFAULTENDPOINTTOHOSTACTION): new flows from a
   * workload to the node's own addresses, after its egress policy: Drop (default), Accept, or
   * Return (= Accept: host endpoint policy does not police workload-to-host traffic).
   */
  endpointToHostAction: 'Drop' | 'Accept' | 'Return';
  /** BPF host routing from workloads (--bpf-host-routing, TORTIE_BPF_HOST_ROUTING): auto | off. */
  hostRouting: HostRoutingMode;
  /** max_entries of policy maps set by --bpf-map-sizes / TORTIE_BPF_MAP_SIZES (others: DEFAULT_POLICY_MAP_SIZES). */
  mapSizes: Partial<Record<PolicyMapKey, number>>;
  /** Conntrack table size (undefined: derived from memory), per-workload quota (undefined: size / 8), timeouts (Calico's). */
  ct: { maxEntries?: number; quota?: number; timeouts: CtTimeouts };
  /** Felix's ipipMTU: the MTU of IPIP routes and of workloads in IPIP pools; 0 = detected (see mtuIfacePattern). */
  ipipMtu: number;
  /** Felix's mtuIfacePattern: host interfaces whose smallest MTU, less the IPIP header, is the detected MTU. */
  mtuIfacePattern: string;
  /** Felix's vxlanMTU: the MTU of VXLAN routes and of workloads in VXLAN pools; 0 = detected (less 50). */
  vxlanMtu: number;
  /** Felix's vxlanMTUV6: the same for IPv6 VXLAN (outer IPv6); 0 = detected (less 70). */
  vxlanMtuV6: number;
  /** Felix's vxlanPort and vxlanVNI (Calico's 4789 and 4096). */
  vxlanPort: number;
  vxlanVni: number;
  /** Where the agent writes the workload MTU for the CNI plugin (Calico: /var/lib/calico/mtu); '' = not written. */
  mtuFile: string;
  /**
   * Felix's ipv6Support (default true): false = the agent programs no IPv6 — IPv6 pools, workload
   * and host endpoint IPv6 addresses and nodes' IPv6 addresses are left out of what it compiles,
   * routes and advertises (src/model/ipv6-off.ts), so a workload's IPv6 traffic is dropped.
   */
  ipv6Support: boolean;
  /** Felix's natOutgoingAddress: SNAT source for natOutgoing pools ('' = the node address). */
  natOutgoingAddress: string;
  /** Felix's failsafe ports (FELIX_FAILSAFEINBOUNDHOSTPORTS / …OUTBOUND…; Calico's defaults). */
  failsafe: { inbound: FailsafePort[]; outbound: FailsafePort[] };
  /**
   * The unix socket on which the agent answers the installed CNI wrappers (src/cni/server.ts);
   * '' = not served (the wrappers then start a plugin process per call). Default
   * `<run dir>/cni.sock`, the run dir being TORTIE_RUN_DIR or /run/tortie.
   */
  cniSocket: string;
  /** Run bird2 for BGP (CALICO_NETWORKING_BACKEND=bird or --bgp); see src/bgp. */
  bgp: boolean;
  /**
   * Where remote routes come from: `datastore` (one per remote workload, from the datastore) or
   * `bgp` (the blocks bird learned from its peers). Default: bgp when bird runs, else datastore.
   */
  routeSource: 'datastore' | 'bgp';
  /** Password secrets for BGP peers: `<dir>/<secret name>/<key>` (as Kubernetes mounts a Secret). */
  bgpSecretsDir: string;
  /** Calico's CLUSTER_TYPE, recorded in ClusterInformation (default `tortie`). */
  clusterType: string;
  /** Settings a FelixConfiguration may also set that came from a flag or the environment (which win, as in Felix). */
  explicit: FelixSettable[];
}

/** NodeConfig settings FelixConfiguration can set (each honoured field's `setting` in src/model/felix-fields.ts). */
export type FelixSettable = ModelFelixSettable;

/** Felix's bpfConntrackTimeouts timers → tortie's conntrack timeouts (creationGracePeriod has no equivalent). */
const CT_TIMER_KEYS: Readonly<Partial<Record<FelixConntrackTimer, keyof CtTimeouts>>> = {
  tcpSynSent: 'synSec', tcpEstablished: 'establishedSec', tcpFinsSeen: 'finSec', tcpResetSeen: 'rstSec',
  udpTimeout: 'udpSec', icmpTimeout: 'icmpSec', genericTimeout: 'otherSec',
};

/** A bpfConntrackTimeouts map over Calico's defaults: a timer absent or `Auto` keeps its default. */
export function ctTimeoutsFrom(timers: Partial<Record<string, string>>, source: string): CtTimeouts {
  const out: CtTimeouts = { ...CALICO_CT_TIMEOUTS };
  for (const [name, v] of Object.entries(timers)) {
    const timer = (Object.keys(CT_TIMER_KEYS) as FelixConntrackTimer[]).find((k) => k.toLowerCase() === name.toLowerCase());
    if (name.toLowerCase() === 'creationgraceperiod' || v === undefined || v === 'Auto') continue;
    if (!timer) throw new ConfigError(`${source}: "${name}" is not a conntrack timer (${[...Object.keys(CT_TIMER_KEYS), 'creationGracePeriod'].join(', ')})`);
    const secs = parseDuration(v.trim());
    if (secs === undefined || secs < 1) throw new ConfigError(`${source}: ${name}="${v}" is not a duration of at least 1s (e.g. 20s, 1h) or Auto`);
    out[CT_TIMER_KEYS[timer]!] = secs;
  }
  return out;
}

/**
 * How each honoured FelixConfiguration field sets NodeConfig, in the table's order
 * (FELIX_HONOURED_FIELDS: healthEnabled after healthPort, which it overrides). Returns false when
 * the value sets nothing, or the text to log as where the setting came from.
 */
const FROM_FELIX: { [K in FelixHonouredField]-?: (out: NodeConfig, v: NonNullable<FelixConfigurationSpec[K]>, src: string) => void | false | string } = {
  logSeverityScreen: (out, v, src) => { out.logLevel = parseLogLevel(String(v), src); },
  logSeverityFile: (out, v, src) => { out.logLevelFile = parseLogLevel(String(v), src); },
  healthHost: (out, v) => { out.healthHost = String(v); },
  healthPort: (out, v) => { out.healthPort = Number(v); },
  healthEnabled: (out, v, src) => {
    if (v !== false) return false;
    out.healthPort = 0;
    return `${src} (healthEnabled: false)`;
  },
  prometheusMetricsEnabled: (out, v) => { out.metricsEnabled = v === true; },
  prometheusMetricsPort: (out, v) => { out.metricsPort = Number(v); },
  prometheusMetricsHost: (out, v) => { out.metricsHost = String(v); },
  ipipMTU: (out, v) => { out.ipipMtu = Number(v); },
  mtuIfacePattern: (out, v) => { out.mtuIfacePattern = String(v); },
  vxlanMTU: (out, v) => { out.vxlanMtu = Number(v); },
  vxlanMTUV6: (out, v) => { out.vxlanMtuV6 = Number(v); },
  vxlanPort: (out, v) => { out.vxlanPort = Number(v); },
  vxlanVNI: (out, v) => { out.vxlanVni = Number(v); },
  natOutgoingAddress: (out, v) => { out.natOutgoingAddress = String(v); },
  ipv6Support: (out, v) => { out.ipv6Support = v === true; },
  interfacePrefix: (out, v) => { out.interfacePrefix = String(v).trim(); },
  natPortRange: (out, v) => {
    const [lo, hi] = String(v).split(':').map(Number);
    out.nat = { ...out.nat, portMin: lo!, portMax: hi ?? lo! };
  },
  bpfMapSizeConntrack: (out, v) => { out.ct = { ...out.ct, maxEntries: Number(v) }; },
  // One parameter in Felix: the winning layer's map, over the defaults (not merged across layers).
  bpfConntrackTimeouts: (out, v, src) => { out.ct = { ...out.ct, timeouts: ctTimeoutsFrom(v ?? {}, src) }; },
  defaultEndpointToHostAction: (out, v) => { out.endpointToHostAction = v; },
  failsafeInboundHostPorts: (out, v) => { out.failsafe = { ...out.failsafe, inbound: v }; },
  failsafeOutboundHostPorts: (out, v) => { out.failsafe = { ...out.failsafe, outbound: v }; },
};

/**
 * Felix's precedence: flags and environment, then FelixConfiguration `node.<name>`, then
 * `default`, then tortie's defaults. `layers` is [node.<name> spec, default spec] (either may be
 * absent); values were validated by src/model. Returns the effective config and, per setting,
 * where it came from (for the log).
 */
export function withFelixConfiguration(c: NodeConfig, layers: readonly (FelixConfigurationSpec | undefined)[]): { config: NodeConfig; from: Record<string, string> } {
  const out: NodeConfig = { ...c };
  const from: Record<string, string> = {};
  const names = ['node', 'default'];
  const first = <K extends keyof FelixConfigurationSpec>(key: K): [FelixConfigurationSpec[K], string] | undefined => {
    for (let i = 0; i < layers.length; i++) {
      const v = layers[i]?.[key];
      if (v !== undefined) return [v as FelixConfigurationSpec[K], `FelixConfiguration ${names[i] === 'node' ? `node.${c.nodeName}` : 'default'}`];
    }
    return undefined;
  };
  const settable = (k: FelixSettable) => !c.explicit.includes(k);
  for (const key of FELIX_HONOURED_FIELDS) {
    const hit = first(key);
    const setting = FELIX_FIELDS[key].setting;
    if (hit === undefined || !settable(setting)) continue;
    const note = (FROM_FELIX[key] as (out: NodeConfig, v: unknown, src: string) => void | false | string)(out, hit[0], hit[1]);
    if (note !== false) from[setting] = typeof note === 'string' ? note : hit[1];
  }
  return { config: out, from };
}

/**
 * `proj=8388608,pol=4194304`: max_entries per policy map (keys of POLICY_MAP_KEYS), each at
 * least its default's 1/64 (a map smaller than what one table needs only fails later) and at
 * most 2^26.
 */
export function parseMapSizes(raw: string, source: string): Partial<Record<PolicyMapKey, number>> {
  const out: Partial<Record<PolicyMapKey, number>> = {};
  for (const kv of raw.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([a-z0-9]+)\s*=\s*(\d+)$/i.exec(kv);
    if (!m) throw new ConfigError(`${source}: "${kv}" is not map=entries (maps: ${POLICY_MAP_KEYS.join(', ')})`);
    const key = m[1]!.toLowerCase() as PolicyMapKey;
    if (!POLICY_MAP_KEYS.includes(key)) throw new ConfigError(`${source}: "${m[1]}" is not a map sized by this setting (maps: ${POLICY_MAP_KEYS.join(', ')})`);
    const n = Number(m[2]);
    const min = Math.max(1, DEFAULT_POLICY_MAP_SIZES[key] / 64);
    if (n < min || n > 2 ** 26) throw new ConfigError(`${source}: ${key}=${m[2]} is not an integer in ${min}–67108864`);
    if (out[key] !== undefined) throw new ConfigError(`${source}: ${key} given twice`);
    out[key] = n;
  }
  return out;
}

/** A bad tortie-node setting (the datastore's own are DatastoreConfigError, re-raised as this). */
export class ConfigError extends TortieError {
  declare readonly code: 'ERR_CONFIG_INVALID';
  constructor(message: string, cause?: unknown) {
    super('ERR_CONFIG_INVALID', message, { cause });
  }
}

/** See NodeConfig.heapGrowingPercent; bench/agent-latency.js measures its effect on RSS. */
export const DEFAULT_HEAP_GROWING_PERCENT = 20;

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Calico's FELIX_LOGSEVERITYSCREEN values map onto pino levels. */
function parseLogLevel(v: string, source: string): LogLevel {
  const l = v.trim().toLowerCase();
  const mapped = l === 'warning' ? 'warn' : l === 'panic' ? 'fatal' : l === 'none' ? 'silent' : l;
  if (!(LOG_LEVELS as readonly string[]).includes(mapped)) {
    throw new ConfigError(`${source}: log level "${v}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return mapped as LogLevel;
}

function parseLogFormat(v: string, source: string): LogFormat {
  const l = v.trim().toLowerCase();
  if (l === 'json' || l === 'text') return l;
  throw new ConfigError(`${source}: log format "${v}" is not "json" or "text"`);
}

/** Calico's boolean spellings (true/false, 1/0, yes/no, on/off). */
function parseBool(v: string, source: string): boolean {
  const l = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(l)) return true;
  if (['false', '0', 'no', 'off'].includes(l)) return false;
  throw new ConfigError(`${source}: "${v}" is not a boolean (true or false)`);
}

function parsePort(v: string, source: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(`${source}: port "${v}" is not an integer in 0–65535 (0 disables)`);
  }
  return n;
}

function parseIp(v: string, source: string): string {
  const s = v.trim();
  if (s === '' || s.toLowerCase() === 'autodetect') return 'autodetect';
  if (s.toLowerCase() === 'none') return 'none';
  if (tryParseCidrOrIp4(s) === undefined) {
    throw new ConfigError(`${source}: "${v}" is not "autodetect", "none" or an IPv4 address with optional /prefix (e.g. 10.0.2.10/24)`);
  }
  // A bare address takes its prefix from the interface holding it (src/net/autodetect).
  return s;
}

function parseIp6(v: string, source: string): string {
  const s = v.trim();
  if (s === '' || s.toLowerCase() === 'none') return 'none';
  if (s.toLowerCase() === 'autodetect') return 'autodetect';
  if (tryParseCidrOrIp(s)?.ip.version !== 6) {
    throw new ConfigError(`${source}: "${v}" is not "autodetect", "none" or an IPv6 address with optional /prefix (e.g. fd00:2::10/64)`);
  }
  return s;
}

/** Raw option values as the CLI parser produced them (strings, undefined when absent). */
export interface RawNodeOptions {
  nodeName?: string;
  ip?: string;
  ipAutodetectionMethod?: string;
  ip6?: string;
  ip6AutodetectionMethod?: string;
  datastoreType?: string;
  storeDir?: string;
  etcdEndpoints?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  logLevel?: string;
  logFormat?: string;
  logFile?: string;
  logLevelFile?: string;
  flowLogFile?: string;
  bpffsRoot?: string;
  runDir?: string;
  metrics?: boolean | string;
  metricsHost?: string;
  metricsPort?: string;
  healthPort?: string;
  healthHost?: string;
  interfacePrefix?: string;
  policyOnly?: boolean | string;
  uplink?: string;
  maxBatch?: string;
  heapGrowingPercent?: string;
  natPortRange?: string;
  natOutgoingAddress?: string;
  ipipMtu?: string;
  mtuIfacePattern?: string;
  mtuFile?: string;
  defaultEndpointToHostAction?: string;
  failsafeInboundHostPorts?: string;
  failsafeOutboundHostPorts?: string;
  bpfHostRouting?: string;
  natQuota?: string;
  natMaxEntries?: string;
  ctMaxEntries?: string;
  bpfMapSizes?: string;
  ctQuota?: string;
  cniSocket?: string;
  bgp?: boolean | string;
  routeSource?: string;
  bgpSecretsDir?: string;
}

export function resolveConfig(opts: RawNodeOptions, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const pick = (flag: string, v: string | undefined, ...names: string[]): [string | undefined, string] => {
    if (v !== undefined) return [v, `--${flag}`];
    for (const n of names) if (env[n] !== undefined && env[n] !== '') return [env[n], n];
    return [undefined, `--${flag}`];
  };

  const [nodeName] = pick('nodename', opts.nodeName, 'NODENAME', 'HOSTNAME');
  const [ip, ipSrc] = pick('ip', opts.ip, 'IP');
  const [method] = pick('ip-autodetection-method', opts.ipAutodetectionMethod, 'IP_AUTODETECTION_METHOD');
  const [ip6, ip6Src] = pick('ip6', opts.ip6, 'IP6');
  const [method6] = pick('ip6-autodetection-method', opts.ip6AutodetectionMethod, 'IP6_AUTODETECTION_METHOD');
  const [level, levelSrc] = pick('log-level', opts.logLevel, 'TORTIE_LOGLEVEL', felixEnv('logSeverityScreen'), 'LOG_LEVEL');
  const [bpffs] = pick('bpffs-root', opts.bpffsRoot, 'TORTIE_BPFFS_ROOT');
  const [runDir] = pick('run-dir', opts.runDir, 'TORTIE_RUN_DIR');
  const [mport, mportSrc] = pick('metrics-port', opts.metricsPort, felixEnv('prometheusMetricsPort'));
  const [mhost] = pick('metrics-host', opts.metricsHost, felixEnv('prometheusMetricsHost'));
  const [menabled, menabledSrc] = pick('metrics', opts.metrics === undefined ? undefined : String(opts.metrics), felixEnv('prometheusMetricsEnabled'));
  const [lformat, lformatSrc] = pick('log-format', opts.logFormat, 'TORTIE_LOGFORMAT');
  const [lfile] = pick('log-file', opts.logFile, 'FELIX_LOGFILEPATH');
  const [lfileLevel, lfileLevelSrc] = pick('log-level-file', opts.logLevelFile, felixEnv('logSeverityFile'));
  const [flowFile] = pick('flow-log-file', opts.flowLogFile, 'TORTIE_FLOWLOGFILE');
  const [flowDir] = pick('flow-log-file', undefined, 'FELIX_FLOWLOGSFILEDIRECTORY');
  const [hport, hportSrc] = pick('health-port', opts.healthPort, felixEnv('healthPort'));
  const [hhost] = pick('health-host', opts.healthHost, felixEnv('healthHost'));
  const [prefix] = pick('interface-prefix', opts.interfacePrefix, felixEnv('interfacePrefix'));
  const [uplink] = pick('uplink', opts.uplink, 'TORTIE_UPLINK');
  const [batch, batchSrc] = pick('max-batch', opts.maxBatch, 'TORTIE_MAX_BATCH');
  const [growing, growingSrc] = pick('heap-growing-percent', opts.heapGrowingPercent, 'TORTIE_HEAP_GROWING_PERCENT');
  const [natRange, natRangeSrc] = pick('nat-port-range', opts.natPortRange, felixEnv('natPortRange'));
  const [natQuota, natQuotaSrc] = pick('nat-quota', opts.natQuota, 'TORTIE_NAT_QUOTA');
  const [natMax, natMaxSrc] = pick('nat-max-entries', opts.natMaxEntries, 'TORTIE_NAT_MAX_ENTRIES');
  const [ctMax, ctMaxSrc] = pick('ct-max-entries', opts.ctMaxEntries, felixEnv('bpfMapSizeConntrack'));
  const [sizesRaw, sizesSrc] = pick('bpf-map-sizes', opts.bpfMapSizes, 'TORTIE_BPF_MAP_SIZES');
  const mapSizes = sizesRaw === undefined ? {} : parseMapSizes(sizesRaw, sizesSrc);
  const [toHostRaw, toHostSrc] = pick('default-endpoint-to-host-action', opts.defaultEndpointToHostAction, felixEnv('defaultEndpointToHostAction'));
  const toHost = toHostRaw === undefined ? 'Drop' : FELIX_ENDPOINT_TO_HOST_ACTIONS.find((a) => a.toLowerCase() === toHostRaw.trim().toLowerCase());
  if (toHost === undefined) throw new ConfigError(`${toHostSrc}: "${toHostRaw}" is not one of ${FELIX_ENDPOINT_TO_HOST_ACTIONS.join(', ')}`);
  const [fsInRaw, fsInSrc] = pick('failsafe-inbound-host-ports', opts.failsafeInboundHostPorts, felixEnv('failsafeInboundHostPorts'));
  const [fsOutRaw, fsOutSrc] = pick('failsafe-outbound-host-ports', opts.failsafeOutboundHostPorts, felixEnv('failsafeOutboundHostPorts'));
  const failsafeOf = (raw: string | undefined, src: string, dflt: readonly FailsafePort[]): FailsafePort[] => {
    if (raw === undefined) return [...dflt];
    const r = parseFailsafeText(raw);
    if ('error' in r) throw new ConfigError(`${src}: ${r.error}`);
    return r;
  };
  const failsafe = { inbound: failsafeOf(fsInRaw, fsInSrc, DEFAULT_FAILSAFE_INBOUND), outbound: failsafeOf(fsOutRaw, fsOutSrc, DEFAULT_FAILSAFE_OUTBOUND) };
  const [hrRaw, hrSrc] = pick('bpf-host-routing', opts.bpfHostRouting, 'TORTIE_BPF_HOST_ROUTING');
  const hostRouting = hrRaw === undefined ? DEFAULT_HOST_ROUTING : HOST_ROUTING_MODES.find((m) => m === hrRaw.trim().toLowerCase());
  if (hostRouting === undefined) throw new ConfigError(`${hrSrc}: "${hrRaw}" is not one of ${HOST_ROUTING_MODES.join(', ')}`);
  const [ctQuota, ctQuotaSrc] = pick('ct-quota', opts.ctQuota, 'TORTIE_CT_QUOTA');
  const [ctTimers, ctTimersSrc] = pick('ct-timeouts', undefined, felixEnv('bpfConntrackTimeouts'));
  const [snatAddr, snatAddrSrc] = pick('nat-outgoing-address', opts.natOutgoingAddress, felixEnv('natOutgoingAddress'));
  const [ipipMtuRaw, ipipMtuSrc] = pick('ipip-mtu', opts.ipipMtu, felixEnv('ipipMTU'));
  const [mtuPattern, mtuPatternSrc] = pick('mtu-iface-pattern', opts.mtuIfacePattern, felixEnv('mtuIfacePattern'));
  const [vxMtuRaw, vxMtuSrc] = pick('vxlan-mtu', undefined, felixEnv('vxlanMTU'));
  const [vxMtu6Raw, vxMtu6Src] = pick('vxlan-mtu-v6', undefined, felixEnv('vxlanMTUV6'));
  const [vxPortRaw, vxPortSrc] = pick('vxlan-port', undefined, felixEnv('vxlanPort'));
  const [vxVniRaw, vxVniSrc] = pick('vxlan-vni', undefined, felixEnv('vxlanVNI'));
  const [v6Support, v6SupportSrc] = pick('ipv6-support', undefined, felixEnv('ipv6Support'));
  const [mtuFileRaw] = pick('mtu-file', opts.mtuFile, 'TORTIE_MTU_FILE');
  const [cniSock, cniSockSrc] = pick('cni-socket', opts.cniSocket, 'TORTIE_CNI_SOCKET');
  const [routeSourceRaw, routeSourceSrc] = pick('route-source', opts.routeSource, 'TORTIE_ROUTE_SOURCE');
  const [secretsDir] = pick('bgp-secrets-dir', opts.bgpSecretsDir, 'TORTIE_BGP_SECRETS_DIR');
  const backend = env.CALICO_NETWORKING_BACKEND;
  if (backend !== undefined && !['bird', 'none', ''].includes(backend)) {
    throw new ConfigError(`CALICO_NETWORKING_BACKEND: "${backend}" is not implemented by tortie (expected bird or none)`);
  }
  const bgp = opts.bgp !== undefined ? opts.bgp === true || opts.bgp === 'true' : backend === 'bird';
  const routeSource = (routeSourceRaw ?? (bgp ? 'bgp' : 'datastore')).trim();
  if (routeSource !== 'bgp' && routeSource !== 'datastore') {
    throw new ConfigError(`${routeSourceSrc}: "${routeSourceRaw}" is not a route source (expected datastore or bgp)`);
  }
  if (routeSource === 'bgp' && !bgp) {
    throw new ConfigError(`${routeSourceSrc}: route source "bgp" needs bird (--bgp or CALICO_NETWORKING_BACKEND=bird)`);
  }
  const policyOnlyRaw = opts.policyOnly !== undefined ? String(opts.policyOnly) : (env.TORTIE_POLICY_ONLY ?? env.CALICO_NETWORKING_BACKEND);

  // The same resolver as tortiectl's and the CNI plugin's (src/datastore/config.ts).
  let datastore: ReturnType<typeof resolveDatastoreSettings>;
  try {
    datastore = resolveDatastoreSettings([{
      type: datastoreSetting(opts.datastoreType, '--datastore-type'),
      storeDir: datastoreSetting(opts.storeDir, '--store-dir'),
      endpoints: datastoreSetting(opts.etcdEndpoints, '--etcd-endpoints'),
      ca: datastoreSetting(opts.etcdCa, '--etcd-ca'),
      cert: datastoreSetting(opts.etcdCert, '--etcd-cert'),
      key: datastoreSetting(opts.etcdKey, '--etcd-key'),
    }, datastoreEnvLayer(env)]);
  } catch (e) {
    throw e instanceof DatastoreConfigError ? new ConfigError(e.message, e) : e;
  }
  const maxBatch = batch === undefined ? 1000 : Number(batch);
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new ConfigError(`${batchSrc}: "${batch}" is not a positive integer`);
  const heapGrowingPercent = growing === undefined ? DEFAULT_HEAP_GROWING_PERCENT : Number(growing);
  if (growing !== undefined && (!/^\d+$/.test(growing.trim()) || heapGrowingPercent > 400)) {
    throw new ConfigError(`${growingSrc}: "${growing}" is not an integer in 0–400 (0 = V8's default)`);
  }
  const range = /^\s*(\d{1,5})\s*[:-]\s*(\d{1,5})\s*$/.exec(natRange ?? '20000:29999');
  const [portMin, portMax] = range ? [Number(range[1]), Number(range[2])] : [0, 0];
  if (!range || portMin < 1 || portMax > 65535 || portMin > portMax) {
    throw new ConfigError(`${natRangeSrc}: "${natRange}" is not a port range min:max with 1 <= min <= max <= 65535`);
  }
  const quota = natQuota === undefined ? 8192 : Number(natQuota);
  if (natQuota !== undefined && (!/^\d+$/.test(natQuota.trim()) || quota > 2 ** 31)) {
    throw new ConfigError(`${natQuotaSrc}: "${natQuota}" is not a non-negative integer (0 = no quota)`);
  }
  const maxEntries = natMax === undefined ? 131072 : Number(natMax);
  if (natMax !== undefined && (!/^\d+$/.test(natMax.trim()) || maxEntries < 2 || maxEntries > 2 ** 26)) {
    throw new ConfigError(`${natMaxSrc}: "${natMax}" is not an integer in 2–67108864`);
  }
  if (ctMax !== undefined && (!/^\d+$/.test(ctMax.trim()) || Number(ctMax) < 1024 || Number(ctMax) > 2 ** 26)) {
    throw new ConfigError(`${ctMaxSrc}: "${ctMax}" is not an integer in 1024–67108864`);
  }
  if (ctQuota !== undefined && (!/^\d+$/.test(ctQuota.trim()) || Number(ctQuota) > 2 ** 31)) {
    throw new ConfigError(`${ctQuotaSrc}: "${ctQuota}" is not a non-negative integer (0 = no quota)`);
  }
  const ipipMtu = ipipMtuRaw === undefined ? 0 : Number(ipipMtuRaw);
  if (ipipMtuRaw !== undefined && (!/^\d+$/.test(ipipMtuRaw.trim()) || (ipipMtu !== 0 && (ipipMtu < 576 || ipipMtu > 65515)))) {
    throw new ConfigError(`${ipipMtuSrc}: "${ipipMtuRaw}" is not 0 (detect) or an MTU in 576–65515`);
  }
  const vxInt = (raw: string | undefined, src: string, def: number, ok: (n: number) => boolean, what: string): number => {
    if (raw === undefined) return def;
    const n = Number(raw.trim());
    if (!/^\d+$/.test(raw.trim()) || !ok(n)) throw new ConfigError(`${src}: "${raw}" is not ${what}`);
    return n;
  };
  const vxlanMtu = vxInt(vxMtuRaw, vxMtuSrc, 0, (n) => n === 0 || (n >= 576 && n <= 65485), '0 (detect) or an MTU in 576–65485');
  const vxlanMtuV6 = vxInt(vxMtu6Raw, vxMtu6Src, 0, (n) => n === 0 || (n >= 1280 && n <= 65465), '0 (detect) or an MTU in 1280–65465');
  const vxlanPort = vxInt(vxPortRaw, vxPortSrc, VXLAN_DEFAULTS.port, (n) => n >= 1 && n <= 65535, 'a port in 1–65535');
  const vxlanVni = vxInt(vxVniRaw, vxVniSrc, VXLAN_DEFAULTS.vni, (n) => n >= 1 && n <= 0xffffff, 'a VNI in 1–16777215');
  if (mtuPattern !== undefined) {
    try { new RegExp(mtuPattern); } catch (e) { throw new ConfigError(`${mtuPatternSrc}: "${mtuPattern}" is not a regular expression: ${(e as Error).message}`); }
  }
  const natOutgoingAddress = (snatAddr ?? '').trim();
  if (natOutgoingAddress !== '' && (tryParseCidrOrIp(natOutgoingAddress)?.ip.version !== 4 || natOutgoingAddress.includes('/'))) {
    throw new ConfigError(`${snatAddrSrc}: "${snatAddr}" is not an IPv4 address`);
  }
  // Felix's keyvaluelist form: TCPEstablished=1h,UDPTimeout=30s (names in any case).
  const ctTimeouts = ctTimers === undefined ? { ...CALICO_CT_TIMEOUTS } : ctTimeoutsFrom(Object.fromEntries(ctTimers.split(',').map((kv) => kv.trim()).filter(Boolean).map((kv) => {
    const i = kv.indexOf('=');
    if (i < 1) throw new ConfigError(`${ctTimersSrc}: "${kv}" is not name=duration`);
    return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()];
  })), ctTimersSrc);
  const name = (nodeName ?? hostname()).trim();
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) {
    throw new ConfigError(`node name "${name}" is not a valid DNS subdomain (lower-case letters, digits, '-', '.')`);
  }
  // Calico's form: one prefix or a comma-separated list ("cali,veth" beside a chained plugin).
  const ifPrefix = (prefix ?? 'cali').split(',').map((p) => p.trim()).join(',');
  for (const p of ifPrefix.split(',')) {
    if (!/^[A-Za-z0-9_.-]{1,10}$/.test(p)) throw new ConfigError(`interface prefix "${p}" (of "${ifPrefix}") must be 1–10 interface-name characters`);
  }

  const cniOff = cniSock !== undefined && ['none', 'off', 'false', ''].includes(cniSock.trim().toLowerCase());
  const cniSocket = cniOff ? '' : (cniSock ?? join(runDir || '/run/tortie', 'cni.sock')).trim();
  if (!cniOff && (!cniSocket.startsWith('/') || Buffer.byteLength(cniSocket) > 107)) {
    throw new ConfigError(`${cniSockSrc}: "${cniSock ?? cniSocket}" must be an absolute path of at most 107 bytes (a unix socket), or "none"`);
  }
  const policyOnly = policyOnlyRaw === 'true' || policyOnlyRaw === 'none' || policyOnlyRaw === '1';
  if (policyOnly && bgp) throw new ConfigError('--policy-only and --bgp (CALICO_NETWORKING_BACKEND=bird) exclude each other');

  return {
    nodeName: name,
    ip: parseIp(ip ?? 'autodetect', ipSrc),
    ipAutodetectionMethod: (method ?? 'first-found').trim(),
    ip6: parseIp6(ip6 ?? 'none', ip6Src),
    ip6AutodetectionMethod: (method6 ?? 'first-found').trim(),
    datastoreType: datastore.type,
    storeDir: datastore.dir,
    etcd: datastore.etcd,
    logLevel: parseLogLevel(level ?? 'info', levelSrc),
    logFormat: parseLogFormat(lformat ?? 'json', lformatSrc),
    logFile: lfile === undefined || lfile.trim().toLowerCase() === 'none' ? '' : lfile.trim(),
    logLevelFile: parseLogLevel(lfileLevel ?? 'info', lfileLevelSrc),
    flowLogFile: flowFile?.trim() ?? (flowDir ? `${flowDir.trim().replace(/\/+$/, '')}/flows.log` : ''),
    bpffsRoot: bpffs ?? '/sys/fs/bpf/tortie',
    runDir: runDir ?? '/run/tortie',
    metricsEnabled: parseBool(menabled ?? 'true', menabledSrc),
    metricsHost: mhost ?? hhost ?? '127.0.0.1',
    metricsPort: parsePort(mport ?? '9091', mportSrc),
    healthPort: parsePort(hport ?? '9099', hportSrc),
    healthHost: hhost ?? '127.0.0.1',
    interfacePrefix: ifPrefix,
    policyOnly,
    uplink: uplink ?? '',
    maxBatch,
    heapGrowingPercent,
    nat: { portMin, portMax, quota, maxEntries },
    endpointToHostAction: toHost,
    hostRouting,
    mapSizes,
    ct: { maxEntries: ctMax === undefined ? undefined : Number(ctMax), quota: ctQuota === undefined ? undefined : Number(ctQuota), timeouts: ctTimeouts },
    ipipMtu,
    mtuIfacePattern: mtuPattern ?? DEFAULT_MTU_PATTERN,
    vxlanMtu,
    vxlanMtuV6,
    vxlanPort,
    vxlanVni,
    mtuFile: mtuFileRaw === undefined ? join(runDir || '/run/tortie', 'mtu') : ['', 'none'].includes(mtuFileRaw.trim().toLowerCase()) ? '' : mtuFileRaw.trim(),
    natOutgoingAddress,
    ipv6Support: parseBool(v6Support ?? 'true', v6SupportSrc),
    failsafe,
    cniSocket,
    bgp,
    routeSource,
    bgpSecretsDir: secretsDir ?? '/etc/tortie/bgp-secrets',
    clusterType: (env.CLUSTER_TYPE ?? '').trim() || 'tortie',
    explicit: ([['logLevel', level], ['healthPort', hport], ['healthHost', hhost], ['interfacePrefix', prefix], ['natPortRange', natRange], ['ctMaxEntries', ctMax], ['endpointToHostAction', toHostRaw],
      ['logLevelFile', lfileLevel], ['metricsEnabled', menabled], ['metricsPort', mport], ['metricsHost', mhost], ['ipipMtu', ipipMtuRaw], ['mtuIfacePattern', mtuPattern],
      ['natOutgoingAddress', snatAddr], ['ctTimeouts', ctTimers], ['failsafeInbound', fsInRaw], ['failsafeOutbound', fsOutRaw],
      ['vxlanMtu', vxMtuRaw], ['vxlanMtuV6', vxMtu6Raw], ['vxlanPort', vxPortRaw], ['vxlanVni', vxVniRaw], ['ipv6Support', v6Support]] as const)
      .filter(([, v]) => v !== undefined).map(([k]) => k),
  };
}
