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
import { NO_V6, type Problem } from './errors';
import { FELIX_FIELDS, felixField, type FelixField } from './felix-fields';
import type { EntityRule, FelixConfigurationSpec, GlobalNetworkPolicy, HostEndpoint, IPPool, Resource, Rule, WorkloadEndpoint } from './types';
import { protocolNumber } from './values';
import { tryParseCidrOrIp } from '../primitives';


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
  // vxlanMode on an IPv6 pool is VXLAN in outer IPv6 (bpf/lib/vxlan6.h). A pool with both
  // ipipMode and vxlanMode on is the validator's refusal.
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
 * FelixConfiguration fields tortie-node honours, `live` or on `restart` (src/model/felix-fields.ts
 * is the table; this is its view for the CLI and src/node/felix-live.ts).
 */
export const FELIX_HONOURED: Readonly<Record<string, 'live' | 'restart'>> = Object.fromEntries(
  Object.entries(FELIX_FIELDS as Record<string, FelixField>).flatMap(([k, f]) => (f.kind === 'honoured' ? [[k, f.apply]] : [])));

/** Tuning hints of Felix's machinery tortie does not have: accepted with this warning, never with an effect. */
export const FELIX_WARNED: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(FELIX_FIELDS as Record<string, FelixField>).flatMap(([k, f]) => (f.kind === 'warned' ? [[k, f.why]] : [])));

/** The warnings for a FelixConfiguration's hint fields (empty for other kinds): printed, not refused. */
export function unenforcedWarnings(r: Resource): Problem[] {
  if (r.kind !== 'FelixConfiguration') return [];
  const out: Problem[] = [];
  for (const key of Object.keys(r.spec)) {
    const f = felixField(key);
    if (f?.kind !== 'warned') continue;
    if ('quiet' in f && r.spec[key] === f.quiet) continue; // what tortie does anyway
    out.push({ kind: r.kind, name: r.metadata.name, path: `spec.${key}`, reason: `accepted but ignored: ${f.why}` });
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
    const f = felixField(key);
    if (f?.kind === 'honoured' || f?.kind === 'warned') continue;
    if (f?.kind === 'vacuous') {
      if (spec[key] !== f.value) add(`spec.${key}`, `only ${JSON.stringify(f.value)} is supported: ${f.why}`);
      continue;
    }
    add(`spec.${key}`, 'is not supported by tortie (README, "FelixConfiguration fields", lists what tortie-node honours)');
  }
  // Calico's natOutgoingAddress is IPv4 only (Felix reads it as an IPv4 address, libcalico-go
  // validates it so); NAT66 leaves with the node's IPv6 address. A refusal of its own, not NO_V6:
  // it stays when the IPv6 gate is lifted.
  if (spec.natOutgoingAddress !== undefined && isV6(spec.natOutgoingAddress)) {
    add('spec.natOutgoingAddress', `${spec.natOutgoingAddress} is not an IPv4 address: natOutgoingAddress is IPv4 only, as in Calico (NAT66 of IPv6 pools uses the node's IPv6 address)`);
  }
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
