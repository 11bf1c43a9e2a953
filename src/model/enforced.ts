/**
 * What tortie enforces of what Calico's model accepts: the fields and values a valid v3
 * resource may carry that tortie's dataplane, IPAM or agent would not honour. They are refused
 * where resources are written (tortiectl, ResourceClient), never silently stored: "Successfully
 * applied" must mean "in force".
 *
 * Contract: `unenforcedProblems(resource)` takes a *validated* resource and returns one Problem
 * per field tortie does not implement (path and reason name the field and what is missing);
 * empty = everything in it is enforced. Pure. The list is the one in README.md ("Not
 * enforced, so refused"); change both together.
 */
import type { Problem } from './errors';
import type { EntityRule, FelixConfigurationSpec, GlobalNetworkPolicy, HostEndpoint, IPPool, Resource, Rule, WorkloadEndpoint } from './types';
import { protocolNumber } from './values';
import { tryParseCidrOrIp } from '../primitives';

const NO_V6 = 'IPv6 is not implemented by tortie (its datapath, routes and IPAM are IPv4-only)';

/**
 * IPv6 is being built part by part (IPAM, datapath, routing); until every part works the v6
 * fields stay refused. TORTIE_EXPERIMENTAL_IPV6=1 lifts those refusals (and only those) so the
 * parts can be tested end to end before the whole is in force; it is read per call so a test
 * can set it for one process.
 */
export function ipv6Experimental(): boolean {
  return process.env.TORTIE_EXPERIMENTAL_IPV6 === '1';
}

export function unenforcedProblems(r: Resource): Problem[] {
  const out: { path: string; reason: string }[] = [];
  const add = (path: string, reason: string) => out.push({ path, reason });
  switch (r.kind) {
    case 'IPPool':
      pool(r, add);
      break;
    case 'WorkloadEndpoint':
      workloadEndpoint(r, add);
      break;
    case 'Profile':
      rules(r.spec.ingress, 'spec.ingress', add);
      rules(r.spec.egress, 'spec.egress', add);
      break;
    case 'NetworkPolicy':
      rules(r.spec.ingress, 'spec.ingress', add);
      rules(r.spec.egress, 'spec.egress', add);
      break;
    case 'GlobalNetworkPolicy':
      globalPolicy(r, add);
      break;
    case 'FelixConfiguration':
      felix(r.spec, add);
      break;
    case 'HostEndpoint':
      hostEndpoint(r, add);
      break;
    case 'ClusterInformation':
      if (r.spec.datastoreReady === false) {
        add('spec.datastoreReady', 'false is not supported: tortie-node does not pause its dataplane updates on it (Calico Felix does)');
      }
      break;
    case 'GlobalNetworkSet':
    case 'NetworkSet':
      (r.spec.nets ?? []).forEach((n, i) => {
        if (isV6(n)) add(`spec.nets[${i}]`, `${n}: ${NO_V6}`);
      });
      if (r.spec.allowedEgressDomains !== undefined) {
        add('spec.allowedEgressDomains', 'is not supported: tortie does not implement DNS-based policy (a Calico Enterprise feature)');
      }
      break;
    default:
      break;
  }
  const name = r.metadata.namespace !== undefined ? `${r.metadata.namespace}/${r.metadata.name}` : r.metadata.name;
  const kept = ipv6Experimental() ? out.filter((o) => !o.reason.includes(NO_V6)) : out;
  return kept.map((o) => ({ kind: r.kind, name, path: o.path, reason: o.reason }));
}

type Add = (path: string, reason: string) => void;

function isV6(cidr: string): boolean {
  return tryParseCidrOrIp(cidr)?.ip.version === 6;
}

function pool(p: IPPool, add: Add): void {
  if (isV6(p.spec.cidr)) add('spec.cidr', `${p.spec.cidr}: IPv6 pools are not supported: ${NO_V6}`);
  // VXLAN is built by tortie's programs for IPv4 (bpf/lib/vxlan.h); IPv6 inner packets are not
  // encapsulated yet. A pool with both ipipMode and vxlanMode on is the validator's refusal.
  if (isV6(p.spec.cidr) && p.spec.vxlanMode !== undefined && p.spec.vxlanMode !== 'Never') {
    add('spec.vxlanMode', `${p.spec.vxlanMode} is not supported on an IPv6 pool: tortie encapsulates only IPv4 in VXLAN (use vxlanMode Never)`);
  }
  if (p.spec.namespaceSelector !== undefined) {
    add('spec.namespaceSelector', "is not supported: tortie's IPAM does not choose pools by namespace");
  }
  if (p.spec.assignmentMode === 'Manual') {
    add('spec.assignmentMode', "Manual is not supported: tortie's IPAM assigns from every matching pool (Automatic)");
  }
}

function hostEndpoint(h: HostEndpoint, add: Add): void {
  (h.spec.expectedIPs ?? []).forEach((ip, i) => {
    if (ip.includes(':')) add(`spec.expectedIPs[${i}]`, `${ip}: ${NO_V6}`);
  });
}

function workloadEndpoint(w: WorkloadEndpoint, add: Add): void {
  (w.spec.ipNetworks ?? []).forEach((n, i) => {
    if (isV6(n)) add(`spec.ipNetworks[${i}]`, `${n}: ${NO_V6}`);
  });
  if (w.spec.ipv6Gateway !== undefined) add('spec.ipv6Gateway', NO_V6);
  if (w.spec.ipNATs !== undefined) add('spec.ipNATs', 'is not supported: tortie does not implement floating IPs (1:1 NAT)');
  if (w.spec.allowSpoofedSourcePrefixes !== undefined) {
    add('spec.allowSpoofedSourcePrefixes', "is not supported: tortie's source-address check allows only the endpoint's own addresses");
  }
}

function globalPolicy(p: GlobalNetworkPolicy, add: Add): void {
  rules(p.spec.ingress, 'spec.ingress', add);
  rules(p.spec.egress, 'spec.egress', add);
  // A rule's local-side nets on a host endpoint (doNotTrack and preDNAT policies select only
  // those) are matched per packet: src/calc/endpoint-policies.ts localRegions, lib/hostep.h.
}

/**
 * FelixConfiguration, field by field (README, "FelixConfiguration fields"; change both together).
 * Honoured fields are in force on every tortie-node: `live` ones as soon as the resource changes,
 * `restart` ones when the agent restarts (it restarts itself on such a change, as Felix does for
 * every field: src/node/felix-live.ts).
 */
export const FELIX_HONOURED: Readonly<Record<string, 'live' | 'restart'>> = {
  logSeverityScreen: 'live',
  logSeverityFile: 'live',
  healthEnabled: 'live',
  healthPort: 'live',
  healthHost: 'live',
  prometheusMetricsEnabled: 'live',
  prometheusMetricsPort: 'live',
  prometheusMetricsHost: 'live',
  ipipMTU: 'live',
  mtuIfacePattern: 'live',
  natOutgoingAddress: 'live',
  vxlanMTU: 'live',
  vxlanPort: 'restart',
  vxlanVNI: 'restart',
  interfacePrefix: 'restart',
  natPortRange: 'restart',
  bpfMapSizeConntrack: 'restart',
  bpfConntrackTimeouts: 'restart',
  defaultEndpointToHostAction: 'restart',
  failsafeInboundHostPorts: 'restart',
  failsafeOutboundHostPorts: 'restart',
};

/** Fields whose value is what tortie does anyway: accepted with that value only. */
const FELIX_VACUOUS: Readonly<Record<string, { value: unknown; why: string }>> = {
  bpfEnabled: { value: true, why: 'tortie is an eBPF dataplane' },
  ipv6Support: { value: false, why: NO_V6 },
  usageReportingEnabled: { value: false, why: 'tortie reports no usage' },
  // calico/node writes reportingInterval 0s into the default FelixConfiguration of every etcd
  // cluster: accepted (silently) so a Calico cluster's configuration can be edited and written
  // back; another value is a warned hint (FELIX_WARNED).
  reportingInterval: { value: '0s', why: 'tortie-node reports no status to the datastore' },
  logSeveritySys: { value: 'None', why: 'tortie-node does not log to syslog (stderr and FELIX_LOGFILEPATH)' },
  chainInsertMode: { value: 'Insert', why: "tortie's tc programs see every packet before any iptables rule (as Insert)" },
};

/**
 * Tuning hints of Felix's iptables/refresh/reporting machinery, which tortie does not have:
 * accepted with a warning (src/cli prints it), never with an effect.
 */
export const FELIX_WARNED: Readonly<Record<string, string>> = {
  iptablesRefreshInterval: 'tortie programs no iptables rules',
  iptablesPostWriteCheckInterval: 'tortie programs no iptables rules',
  iptablesLockTimeout: 'tortie programs no iptables rules',
  iptablesLockProbeInterval: 'tortie programs no iptables rules',
  iptablesBackend: 'tortie programs no iptables rules',
  ipsetsRefreshInterval: 'tortie uses no ipsets (BPF maps)',
  maxIpsetSize: 'tortie uses no ipsets (BPF maps: sets have no size limit but memory)',
  routeRefreshInterval: 'tortie reconciles routes on events and on every resync, not on a timer',
  interfaceRefreshInterval: 'tortie follows interfaces with ip monitor and a periodic re-list of its own',
  netlinkTimeout: 'tortie has no netlink timeout to tune',
  reportingInterval: 'tortie-node writes no Felix status reports',
  reportingTTL: 'tortie-node writes no Felix status reports',
  dataplaneWatchdogTimeout: "tortie-node's liveness is its own (/liveness: the event loop's last turn)",
  healthTimeoutOverrides: "tortie-node's health has no per-component timeouts",
  bpfLogLevel: 'tortie\'s programs have no debug log (drops are counted and flow-logged)',
  logPrefix: 'tortie has no iptables LOG rules (Log rules go to the flow log)',
  prometheusGoMetricsEnabled: 'tortie-node is not a Go program',
  prometheusProcessMetricsEnabled: "prom-client's process metrics are not served",
};

/** The warnings for a FelixConfiguration's hint fields (empty for other kinds): printed, not refused. */
export function unenforcedWarnings(r: Resource): Problem[] {
  if (r.kind !== 'FelixConfiguration') return [];
  const out: Problem[] = [];
  for (const key of Object.keys(r.spec)) {
    if (!Object.prototype.hasOwnProperty.call(FELIX_WARNED, key)) continue;
    if (Object.prototype.hasOwnProperty.call(FELIX_VACUOUS, key) && r.spec[key] === FELIX_VACUOUS[key]!.value) continue; // what tortie does anyway
    out.push({ kind: r.kind, name: r.metadata.name, path: `spec.${key}`, reason: `accepted but ignored: ${FELIX_WARNED[key]}` });
  }
  const ct = r.spec.bpfConntrackTimeouts ?? {};
  if (ct.creationGracePeriod !== undefined) {
    out.push({ kind: r.kind, name: r.metadata.name, path: 'spec.bpfConntrackTimeouts.creationGracePeriod', reason: 'accepted but ignored: tortie creates a conntrack entry only after policy allowed the packet, so there is no grace period' });
  }
  for (const [k, v] of Object.entries(ct)) {
    if (v === 'Auto' && k !== 'creationGracePeriod') {
      out.push({ kind: r.kind, name: r.metadata.name, path: `spec.bpfConntrackTimeouts.${k}`, reason: "Auto means tortie's default (Calico's fixed default), not the Linux conntrack sysctl" });
    }
  }
  return out;
}

function felix(spec: FelixConfigurationSpec, add: Add): void {
  for (const key of Object.keys(spec)) {
    if (Object.prototype.hasOwnProperty.call(FELIX_HONOURED, key) || Object.prototype.hasOwnProperty.call(FELIX_WARNED, key)) continue;
    const vac = Object.prototype.hasOwnProperty.call(FELIX_VACUOUS, key) ? FELIX_VACUOUS[key] : undefined;
    if (vac !== undefined) {
      if (spec[key] !== vac.value) add(`spec.${key}`, `only ${JSON.stringify(vac.value)} is supported: ${vac.why}`);
      continue;
    }
    add(`spec.${key}`, 'is not supported by tortie (README, "FelixConfiguration fields", lists what tortie-node honours)');
  }
  if (spec.natOutgoingAddress !== undefined && isV6(spec.natOutgoingAddress)) add('spec.natOutgoingAddress', `${spec.natOutgoingAddress}: ${NO_V6}`);
}

function rules(list: Rule[] | undefined, path: string, add: Add): void {
  (list ?? []).forEach((r, i) => {
    const p = `${path}[${i}]`;
    if (r.ipVersion === 6) add(`${p}.ipVersion`, `6 is not supported: ${NO_V6}`);
    if (r.protocol !== undefined && protocolNumber(r.protocol) === 58) add(`${p}.protocol`, `ICMPv6 is not supported: ${NO_V6}`);
    entity(r.source, `${p}.source`, add);
    entity(r.destination, `${p}.destination`, add);
  });
}

function entity(e: EntityRule | undefined, path: string, add: Add): void {
  for (const key of ['nets', 'notNets'] as const) {
    (e?.[key] ?? []).forEach((n, i) => {
      if (isV6(n)) add(`${path}.${key}[${i}]`, `${n}: ${NO_V6}`);
    });
  }
}
