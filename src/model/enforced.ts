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
import { FELIX_FIELDS, felixField, type FelixField } from './felix-fields';
import type { FelixConfigurationSpec, IPPool, Resource, WorkloadEndpoint } from './types';
import { tryParseCidrOrIp } from '../primitives';

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
    case 'FelixConfiguration':
      felix(r.spec, add);
      break;
    case 'ClusterInformation':
      if (r.spec.datastoreReady === false) {
        add('spec.datastoreReady', 'false is not supported: tortie-node does not pause its dataplane updates on it (Calico Felix does)');
      }
      break;
    case 'GlobalNetworkSet':
    case 'NetworkSet':
      if (r.spec.allowedEgressDomains !== undefined) {
        add('spec.allowedEgressDomains', 'is not supported: tortie does not implement DNS-based policy (a Calico Enterprise feature)');
      }
      break;
    default:
      break;
  }
  const name = r.metadata.namespace !== undefined ? `${r.metadata.namespace}/${r.metadata.name}` : r.metadata.name;
  return out.map((o) => ({ kind: r.kind, name, path: o.path, reason: o.reason }));
}

type Add = (path: string, reason: string) => void;

function isV6(cidr: string): boolean {
  return tryParseCidrOrIp(cidr)?.ip.version === 6;
}

function pool(p: IPPool, add: Add): void {
  // IPv6 pools are whole: IPAM (/122 blocks), routes, BGP, NAT66, and vxlanMode as VXLAN in outer
  // IPv6 (bpf/lib/vxlan6.h). IPIP on an IPv6 pool, or both modes on, is the validator's refusal.
  if (p.spec.namespaceSelector !== undefined) {
    add('spec.namespaceSelector', "is not supported: tortie's IPAM does not choose pools by namespace");
  }
  if (p.spec.assignmentMode === 'Manual') {
    add('spec.assignmentMode', "Manual is not supported: tortie's IPAM assigns from every matching pool (Automatic)");
  }
}

function workloadEndpoint(w: WorkloadEndpoint, add: Add): void {
  if (w.spec.ipNATs !== undefined) add('spec.ipNATs', 'is not supported: tortie does not implement floating IPs (1:1 NAT)');
  if (w.spec.allowSpoofedSourcePrefixes !== undefined) {
    add('spec.allowSpoofedSourcePrefixes', "is not supported: tortie's source-address check allows only the endpoint's own addresses");
  }
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
  // validates it so); NAT66 leaves with the node's IPv6 address.
  if (spec.natOutgoingAddress !== undefined && isV6(spec.natOutgoingAddress)) {
    add('spec.natOutgoingAddress', `${spec.natOutgoingAddress} is not an IPv4 address: natOutgoingAddress is IPv4 only, as in Calico (NAT66 of IPv6 pools uses the node's IPv6 address)`);
  }
}
