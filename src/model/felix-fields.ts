/**
 * FelixConfiguration, field by field: the one table the rest derives from (README, "FelixConfiguration
 * fields", lists the same; change both together).
 *
 *   honoured — in force on every tortie-node: `live` as soon as the resource changes, `restart`
 *              when the agent restarts (it restarts itself on such a change, as Felix does for
 *              every field: src/node/felix-live.ts). `parse` validates and normalises the value
 *              (src/model/validate.ts; its return type is the field's type in
 *              FelixConfigurationSpec), `setting` is the NodeConfig setting it reaches
 *              (src/node/config.ts withFelixConfiguration; a flag or `env` for that setting wins,
 *              as in Felix), `env` the environment variable tortie-node reads for it.
 *   vacuous  — what tortie does anyway: accepted with `value` only (src/model/enforced.ts).
 *   warned   — a hint of Felix machinery tortie does not have: accepted with a printed warning,
 *              never with an effect; `quiet` is a value accepted without the warning.
 * Any other field is refused at apply, naming it.
 */
import { parseDuration } from './bgp';
import type { Issues } from './errors';
import { failsafeListProblems, type FailsafePort } from './failsafe';
import type { FelixConntrackTimer } from './types';
import { asBoolean, asInteger, asObject, asString, describe, quote } from './values';
import { formatIP, tryParseIP } from '../primitives';

/** Calico's logSeverityScreen values. */
export const FELIX_LOG_SEVERITIES = ['Debug', 'Info', 'Warning', 'Error', 'Fatal'] as const;

/** Calico's bpfConntrackTimeouts keys. */
export const FELIX_CONNTRACK_TIMERS = ['creationGracePeriod', 'tcpSynSent', 'tcpEstablished', 'tcpFinsSeen', 'tcpResetSeen', 'udpTimeout', 'genericTimeout', 'icmpTimeout'] as const;

/** Calico's defaultEndpointToHostAction values (Return: host endpoint policy decides; tortie has none, so it acts as Accept). */
export const FELIX_ENDPOINT_TO_HOST_ACTIONS = ['Drop', 'Accept', 'Return'] as const;

type Parse<T> = (val: unknown, path: string, issues: Issues) => T | undefined;

interface Honoured<T, S extends string> { kind: 'honoured'; apply: 'live' | 'restart'; setting: S; env?: string; parse: Parse<T> }
interface Vacuous { kind: 'vacuous'; value: unknown; why: string }
interface Warned { kind: 'warned'; why: string; quiet?: unknown }
export type FelixField = Honoured<unknown, string> | Vacuous | Warned;

const honoured = <T, S extends string>(apply: 'live' | 'restart', setting: S, env: string | undefined, parse: Parse<T>): Honoured<T, S> =>
  (env !== undefined ? { kind: 'honoured', apply, setting, env, parse } : { kind: 'honoured', apply, setting, parse });
const vacuous = (value: unknown, why: string): Vacuous => ({ kind: 'vacuous', value, why });
const warned = (why: string, quiet?: unknown): Warned => (quiet !== undefined ? { kind: 'warned', why, quiet } : { kind: 'warned', why });

/** One of `values` in any case, as the table spells it. */
const oneOf = <V extends string>(values: readonly V[], shown: string): Parse<V> => (val, p, issues) => {
  const str = asString(val, p, issues);
  const hit = values.find((x) => x.toLowerCase() === str?.toLowerCase());
  if (str !== undefined && hit === undefined) issues.add(p, `must be one of ${shown}, got ${quote(str)}`);
  return hit;
};
const bool: Parse<boolean> = (val, p, issues) => asBoolean(val, p, issues);
const port: Parse<number> = (val, p, issues) => asInteger(val, p, issues, 1, 65535);
/** A non-empty string (empty = absent). */
const text: Parse<string> = (val, p, issues) => {
  const str = asString(val, p, issues);
  return str !== undefined && str !== '' ? str : undefined;
};
/** 0 = detect (Calico's default); otherwise what IPv4 allows, from its minimum datagram to `max`. */
const mtu = (max: number): Parse<number> => (val, p, issues) => {
  const n = asInteger(val, p, issues, 0, max);
  if (n !== undefined && n !== 0 && n < 576) { issues.add(p, `must be 0 (detect) or at least 576 (IPv4's minimum datagram), got ${n}`); return undefined; }
  return n;
};
/** vxlanMTUV6: 0 = detect; otherwise at least IPv6's minimum link MTU (1280), at most `max`. */
const mtu6 = (max: number): Parse<number> => (val, p, issues) => {
  const n = asInteger(val, p, issues, 0, max);
  if (n !== undefined && n !== 0 && n < 1280) { issues.add(p, `must be 0 (detect) or at least 1280 (IPv6's minimum link MTU), got ${n}`); return undefined; }
  return n;
};
const failsafe: Parse<FailsafePort[]> = (val, p, issues) => {
  const r = failsafeListProblems(val, p);
  for (const pr of r.problems) issues.add(pr.path, pr.reason);
  return r.list;
};

const IPTABLES = 'tortie programs no iptables rules';
const REPORTS = 'tortie-node writes no Felix status reports';

export const FELIX_FIELDS = {
  logSeverityScreen: honoured('live', 'logLevel', 'FELIX_LOGSEVERITYSCREEN', oneOf(FELIX_LOG_SEVERITIES, FELIX_LOG_SEVERITIES.join(', '))),
  logSeverityFile: honoured('live', 'logLevelFile', 'FELIX_LOGSEVERITYFILE', oneOf([...FELIX_LOG_SEVERITIES, 'None'], `${FELIX_LOG_SEVERITIES.join(', ')}, None`)),
  healthHost: honoured('live', 'healthHost', 'FELIX_HEALTHHOST', text),
  healthPort: honoured('live', 'healthPort', 'FELIX_HEALTHPORT', port),
  /** false: no health listener (healthPort 0); after healthPort, which it overrides. */
  healthEnabled: honoured('live', 'healthPort', undefined, bool),
  prometheusMetricsEnabled: honoured('live', 'metricsEnabled', 'FELIX_PROMETHEUSMETRICSENABLED', bool),
  prometheusMetricsPort: honoured('live', 'metricsPort', 'FELIX_PROMETHEUSMETRICSPORT', port),
  prometheusMetricsHost: honoured('live', 'metricsHost', 'FELIX_PROMETHEUSMETRICSHOST', text),
  /** MTU of IPIP routes and workloads (0: detected, the smallest MTU of the host interfaces matching mtuIfacePattern less 20). */
  ipipMTU: honoured('live', 'ipipMtu', 'FELIX_IPIPMTU', mtu(65515)),
  /** MTU of VXLAN routes and workloads (0: detected, as ipipMTU, less 50). */
  vxlanMTU: honoured('live', 'vxlanMtu', 'FELIX_VXLANMTU', mtu(65485)),
  /** MTU of IPv6 VXLAN routes and workloads (0: detected, as vxlanMTU, less 70). */
  vxlanMTUV6: honoured('live', 'vxlanMtuV6', 'FELIX_VXLANMTUV6', mtu6(65465)),
  /** UDP port of VXLAN (Calico's default 4789). */
  vxlanPort: honoured('restart', 'vxlanPort', 'FELIX_VXLANPORT', port),
  /** VXLAN network identifier (Calico's default 4096); 24 bits, 0 would be "VXLAN off" in the programs' configuration. */
  vxlanVNI: honoured('restart', 'vxlanVni', 'FELIX_VXLANVNI', (val, p, issues) => asInteger(val, p, issues, 1, 0xffffff)),
  /** Regular expression of the host interfaces MTU detection considers (Calico's default when absent). */
  mtuIfacePattern: honoured('live', 'mtuIfacePattern', 'FELIX_MTUIFACEPATTERN', (val, p, issues) => {
    const str = asString(val, p, issues);
    if (str === undefined) return undefined;
    try { new RegExp(str); return str; } catch (e) { issues.add(p, `${quote(str)} is not a regular expression: ${(e as Error).message}`); return undefined; }
  }),
  /** SNAT source address for natOutgoing pools instead of the node address. */
  natOutgoingAddress: honoured('live', 'natOutgoingAddress', 'FELIX_NATOUTGOINGADDRESS', (val, p, issues) => {
    const str = asString(val, p, issues);
    if (str === undefined || str === '') return undefined;
    const ip = tryParseIP(str.trim());
    if (!ip) { issues.add(p, `must be an IP address, got ${quote(str)}`); return undefined; }
    return formatIP(ip);
  }),
  /** Interface-name prefix of workloads, or Calico's comma list (`cali,tap`). */
  interfacePrefix: honoured('restart', 'interfacePrefix', 'FELIX_INTERFACEPREFIX', text),
  /** SNAT source ports, `min:max` (a single port as `p`). */
  natPortRange: honoured('restart', 'natPortRange', 'FELIX_NATPORTRANGE', (val, p, issues) => {
    const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(typeof val === 'number' ? String(val) : typeof val === 'string' ? val.trim() : '');
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo < 1 || hi > 65535 || lo > hi) { issues.add(p, `must be a port or a range min:max with 1 <= min <= max <= 65535, got ${describe(val)}`); return undefined; }
    return lo === hi ? String(lo) : `${lo}:${hi}`;
  }),
  /** Conntrack table entries (1024–67108864). */
  bpfMapSizeConntrack: honoured('restart', 'ctMaxEntries', 'TORTIE_CT_MAX_ENTRIES', (val, p, issues) => asInteger(val, p, issues, 1024, 2 ** 26)),
  /** Felix's BPF conntrack timers: each a duration (`20s`, `1h30m`) or `Auto` (tortie's default). */
  bpfConntrackTimeouts: honoured('restart', 'ctTimeouts', 'FELIX_BPFCONNTRACKTIMEOUTS', (val, p, issues) => {
    const o = asObject(val, p, issues);
    if (o === undefined) return undefined;
    const out: Partial<Record<FelixConntrackTimer, string>> = {};
    for (const [k, v] of Object.entries(o)) {
      const kp = `${p}.${k}`;
      if (!(FELIX_CONNTRACK_TIMERS as readonly string[]).includes(k)) {
        issues.add(kp, `is not a conntrack timer (one of ${FELIX_CONNTRACK_TIMERS.join(', ')})`);
        continue;
      }
      if (v === undefined || v === null) continue;
      const str = asString(v, kp, issues);
      if (str === undefined) continue;
      const secs = str === 'Auto' ? 0 : parseDuration(str.trim());
      if (secs === undefined || (str !== 'Auto' && (secs < 1 || secs > 86400 * 365))) issues.add(kp, `must be "Auto" or a duration from 1s to 8760h (e.g. 20s, 1h), got ${quote(str)}`);
      else out[k as FelixConntrackTimer] = str === 'Auto' ? 'Auto' : str.trim();
    }
    return out;
  }),
  /** Drop (Calico's default), Accept, Return (host endpoint policy does not police workload→host traffic, as Felix: as Accept). */
  defaultEndpointToHostAction: honoured('restart', 'endpointToHostAction', 'FELIX_DEFAULTENDPOINTTOHOSTACTION',
    oneOf(FELIX_ENDPOINT_TO_HOST_ACTIONS, FELIX_ENDPOINT_TO_HOST_ACTIONS.join(', '))),
  /** Ports host endpoint policy never blocks (src/model/failsafe.ts; [] = none). */
  failsafeInboundHostPorts: honoured('restart', 'failsafeInbound', 'FELIX_FAILSAFEINBOUNDHOSTPORTS', failsafe),
  failsafeOutboundHostPorts: honoured('restart', 'failsafeOutbound', 'FELIX_FAILSAFEOUTBOUNDHOSTPORTS', failsafe),
  /** false: the agent programs no IPv6 (src/model/ipv6-off.ts): workloads' IPv6 is dropped, no IPv6 routes, NAT66 or BGP. */
  ipv6Support: honoured('restart', 'ipv6Support', 'FELIX_IPV6SUPPORT', bool),

  bpfEnabled: vacuous(true, 'tortie is an eBPF dataplane'),
  usageReportingEnabled: vacuous(false, 'tortie reports no usage'),
  logSeveritySys: vacuous('None', 'tortie-node does not log to syslog (stderr and FELIX_LOGFILEPATH)'),
  chainInsertMode: vacuous('Insert', "tortie's tc programs see every packet before any iptables rule (as Insert)"),

  iptablesRefreshInterval: warned(IPTABLES),
  iptablesPostWriteCheckInterval: warned(IPTABLES),
  iptablesLockTimeout: warned(IPTABLES),
  iptablesLockProbeInterval: warned(IPTABLES),
  iptablesBackend: warned(IPTABLES),
  ipsetsRefreshInterval: warned('tortie uses no ipsets (BPF maps)'),
  maxIpsetSize: warned('tortie uses no ipsets (BPF maps: sets have no size limit but memory)'),
  routeRefreshInterval: warned('tortie reconciles routes on events and on every resync, not on a timer'),
  interfaceRefreshInterval: warned('tortie follows interfaces with ip monitor and a periodic re-list of its own'),
  netlinkTimeout: warned('tortie has no netlink timeout to tune'),
  // calico/node writes reportingInterval 0s into the default FelixConfiguration of every etcd
  // cluster: accepted silently so a Calico cluster's configuration can be edited and written
  // back; another value is warned.
  reportingInterval: warned(REPORTS, '0s'),
  reportingTTL: warned(REPORTS),
  dataplaneWatchdogTimeout: warned("tortie-node's liveness is its own (/liveness: the event loop's last turn)"),
  healthTimeoutOverrides: warned("tortie-node's health has no per-component timeouts"),
  bpfLogLevel: warned('tortie\'s programs have no debug log (drops are counted and flow-logged)'),
  logPrefix: warned('tortie has no iptables LOG rules (Log rules go to the flow log)'),
  prometheusGoMetricsEnabled: warned('tortie-node is not a Go program'),
  prometheusProcessMetricsEnabled: warned("prom-client's process metrics are not served"),
} satisfies Record<string, FelixField>;

type Fields = typeof FELIX_FIELDS;
/** The FelixConfiguration fields tortie-node honours. */
export type FelixHonouredField = { [K in keyof Fields]: Fields[K] extends { kind: 'honoured' } ? K : never }[keyof Fields];
/** The honoured fields with their validated types (FelixConfigurationSpec is this plus what apply refuses or warns about). */
export type FelixHonouredSpec = { [K in FelixHonouredField]?: Fields[K] extends Honoured<infer T, string> ? T : never };
/** NodeConfig settings FelixConfiguration can set. */
export type FelixSettable = Fields[FelixHonouredField]['setting'];

/** The field's entry, or undefined for a field tortie does not know (own properties only). */
export function felixField(key: string): FelixField | undefined {
  return Object.prototype.hasOwnProperty.call(FELIX_FIELDS, key) ? (FELIX_FIELDS as Record<string, FelixField>)[key] : undefined;
}

/** The honoured fields in the table's order (withFelixConfiguration applies them in it). */
export const FELIX_HONOURED_FIELDS = (Object.keys(FELIX_FIELDS) as (keyof Fields)[])
  .filter((k): k is FelixHonouredField => FELIX_FIELDS[k].kind === 'honoured');

/** The environment variable tortie-node reads for an honoured field (it wins over the resource). */
export function felixEnv(key: FelixHonouredField): string {
  const env = (FELIX_FIELDS[key] as Honoured<unknown, string>).env;
  if (env === undefined) throw new Error(`FelixConfiguration ${key} has no environment variable`);
  return env;
}
