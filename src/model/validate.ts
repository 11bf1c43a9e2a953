/**
 * Per-kind validation of projectcalico.org/v3 resources, with Calico's defaults applied.
 *
 * Contract:
 *   validateResource(input)   any JSON value → a validated Resource, or throws
 *                             ValidationError listing every problem (never anything else)
 *   checkResource(input)      the same without throwing: { resource } or { problems }
 * The returned resource is a fresh object: nothing in it aliases the input.
 * Only v3 input is accepted here; v1 and Kubernetes documents go through src/model/convert.
 */
import { createHash } from 'node:crypto';
import { bgpConfigNameProblem, bgpConfiguration, bgpPeer } from './bgp';
import { Issues, ValidationError, type Problem } from './errors';
import { MAX_RULES, asResourceName, validateRules } from './rules';
import { checkSelector } from './selectors';
import { felixField } from './felix-fields';
import {
  API_VERSION_V3,
  NAMESPACED_KINDS,
  RESOURCE_KINDS,
  type EncapMode,
  type GlobalNetworkPolicy,
  type GlobalNetworkPolicySpec,
  type GlobalNetworkSet,
  type HostEndpoint,
  type HostEndpointPort,
  type HostEndpointSpec,
  type NetworkSet,
  type NetworkSetSpec,
  type IPReservation,
  type IPReservationSpec,
  type ClusterInformation,
  type ClusterInformationSpec,
  type FelixConfiguration,
  type FelixConfigurationSpec,
  type IPNAT,
  type IPPool,
  type IPPoolSpec,
  type Namespace,
  type NetworkPolicy,
  type NetworkPolicySpec,
  type Node,
  type NodeAddress,
  type NodeBGPSpec,
  type NodeSpec,
  type ObjectMeta,
  type OrchRef,
  type PolicyType,
  type Profile,
  type ProfileSpec,
  type Resource,
  type ResourceKind,
  type Rule,
  type Tier,
  type TierSpec,
  type WorkloadEndpoint,
  type WorkloadEndpointPort,
  type WorkloadEndpointSpec,
} from './types';
import {
  asAnnotations,
  asArray,
  asBoolean,
  asCidr,
  asFiniteNumber,
  asInteger,
  asLabels,
  asObject,
  asString,
  asStringArray,
  checkKnownFields,
  describe,
  dnsLabelProblem,
  dnsSubdomainProblem,
  field,
  has,
  index,
  isObject,
  isSorted,
  own,
  parseMac,
  parseProtocol,
  portNameProblem,
  protocolSupportsPorts,
  quote,
  setOwn,
  type JsonObject,
} from './values';
import {
  type Cidr,
  cidrContains,
  DEFAULT_ALLOW_PROFILE,
  DEFAULT_TIER,
  formatCidr,
  formatIP,
  defaultBlockSize,
  IPPOOL_BLOCK_SIZE_RANGE,
  IPPOOL_DEFAULTS,
  IPV4_LINK_LOCAL,
  IPV6_LINK_LOCAL,
  isMasked,
  LABEL_NAMESPACE,
  LABEL_ORCHESTRATOR,
  LABEL_SERVICE_ACCOUNT,
  LABEL_TIER,
  maskCidr,
  tryParseCidr,
  tryParseCidrOrIp,
  tryParseIP,
} from '../primitives';

/** Fields of Kubernetes ObjectMeta that are accepted but not kept (no meaning for tortie). */
export const IGNORED_META_FIELDS = [
  'generation',
  'generateName',
  'finalizers',
  'ownerReferences',
  'managedFields',
  'selfLink',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
];
export const META_FIELDS = [
  'name',
  'namespace',
  'labels',
  'annotations',
  'resourceVersion',
  'uid',
  'creationTimestamp',
  ...IGNORED_META_FIELDS,
];

/**
 * Calico kinds tortie refuses, and why (instead of "unknown kind"): Kubernetes-only ones, and
 * ones tortie could not enforce end to end yet.
 */
export const UNSUPPORTED_KINDS: Readonly<Record<string, string>> = {
  KubeControllersConfiguration:
    'it configures calico-kube-controllers, which runs against the Kubernetes API; tortie has no Kubernetes API datastore and runs no kube-controllers',
  CalicoNodeStatus: 'it is a Kubernetes-only status request served by calico-node through the Kubernetes API; use tortiectl node status',
  IPAMConfiguration: "tortie's IPAM has no configurable strict affinity or block limits yet",
  BlockAffinity: 'it is IPAM bookkeeping written by the IPAM itself, not by users',
  StagedNetworkPolicy: 'staged (audit-only) policies are not evaluated by tortie',
  StagedGlobalNetworkPolicy: 'staged (audit-only) policies are not evaluated by tortie',
  StagedKubernetesNetworkPolicy: 'staged (audit-only) policies are not evaluated by tortie',
};

export type CheckResult = { resource: Resource; problems?: undefined } | { resource?: undefined; problems: Problem[] };

export function validateResource(input: unknown): Resource {
  const r = checkResource(input);
  if (r.problems !== undefined) throw new ValidationError(r.problems);
  return r.resource;
}

/** Identify kind and name of a (possibly invalid) input, for messages. */
export function describeInput(input: unknown): { kind?: string; name?: string } {
  if (!isObject(input)) return {};
  const k = own(input, 'kind');
  const m = own(input, 'metadata');
  const kind = typeof k === 'string' ? k : undefined;
  let name: string | undefined;
  if (isObject(m)) {
    const n = own(m, 'name');
    const ns = own(m, 'namespace');
    if (typeof n === 'string') {
      name = typeof ns === 'string' && ns !== '' ? `${ns}/${n}` : n;
    } else if (kind === 'ipPool' && typeof own(m, 'cidr') === 'string') {
      name = own(m, 'cidr') as string;
    }
  }
  return { kind, name };
}

export function checkResource(input: unknown): CheckResult {
  const issues = new Issues();
  const { kind: rawKind } = describeInput(input);
  const o = asObject(input, '', issues);
  if (o === undefined) return { problems: issues.toProblems(undefined, undefined) };

  const apiVersion = own(o, 'apiVersion');
  if (apiVersion === undefined) {
    issues.add('apiVersion', `is required (${API_VERSION_V3})`);
  } else if (apiVersion !== API_VERSION_V3) {
    issues.add('apiVersion', `must be ${API_VERSION_V3}, got ${describe(apiVersion)}`);
  }
  let kind: ResourceKind | undefined;
  if (typeof rawKind === 'string' && (RESOURCE_KINDS as readonly string[]).includes(rawKind)) {
    kind = rawKind as ResourceKind;
  } else if (typeof rawKind === 'string' && Object.prototype.hasOwnProperty.call(UNSUPPORTED_KINDS, rawKind)) {
    issues.add('kind', `${rawKind} is not supported by tortie: ${UNSUPPORTED_KINDS[rawKind]}`);
  } else {
    const hint =
      typeof rawKind === 'string' ? RESOURCE_KINDS.find((k) => k.toLowerCase() === rawKind.toLowerCase()) : undefined;
    issues.add(
      'kind',
      hint !== undefined
        ? `unknown kind ${quote(rawKind as string)}; did you mean ${hint}?`
        : own(o, 'kind') === undefined
          ? `is required (one of ${RESOURCE_KINDS.join(', ')})`
          : `must be one of ${RESOURCE_KINDS.join(', ')}, got ${describe(own(o, 'kind'))}`,
    );
  }
  const allowedTop = ['apiVersion', 'kind', 'metadata', 'spec'];
  if (kind === 'IPPool' || kind === 'Node' || kind === 'Tier') allowedTop.push('status');
  checkKnownFields(o, allowedTop, '', issues);

  const meta = validateMeta(own(o, 'metadata'), kind, issues);
  const displayName = meta?.namespace !== undefined ? `${meta.namespace}/${meta.name}` : meta?.name;

  if (kind === undefined || meta === undefined) {
    return { problems: issues.toProblems(kind ?? rawKind, displayName ?? describeInput(input).name) };
  }

  const spec = own(o, 'spec');
  let resource: Resource | undefined;
  switch (kind) {
    case 'IPPool':
      resource = ippool(meta, spec, issues);
      break;
    case 'Node':
      resource = node(meta, spec, issues);
      break;
    case 'WorkloadEndpoint':
      resource = workloadEndpoint(meta, spec, issues);
      break;
    case 'Profile':
      resource = profile(meta, spec, issues);
      break;
    case 'Tier':
      resource = tier(meta, spec, issues);
      break;
    case 'NetworkPolicy':
      resource = networkPolicy(meta, spec, issues);
      break;
    case 'GlobalNetworkPolicy':
      resource = globalNetworkPolicy(meta, spec, issues);
      break;
    case 'Namespace':
      resource = namespace(meta, spec, issues);
      break;
    case 'BGPConfiguration': {
      const s = specObject(spec, issues, false);
      if (s !== undefined) resource = bgpConfiguration(meta, s, issues);
      break;
    }
    case 'BGPPeer': {
      const s = specObject(spec, issues, true);
      if (s !== undefined) resource = bgpPeer(meta, s, issues);
      break;
    }
    case 'GlobalNetworkSet':
    case 'NetworkSet':
      resource = networkSet(kind, meta, spec, issues);
      break;
    case 'HostEndpoint':
      resource = hostEndpoint(meta, spec, issues);
      break;
    case 'IPReservation':
      resource = ipReservation(meta, spec, issues);
      break;
    case 'ClusterInformation':
      resource = clusterInformation(meta, spec, issues);
      break;
    case 'FelixConfiguration':
      resource = felixConfiguration(meta, spec, issues);
      break;
  }
  if (!issues.empty || resource === undefined) {
    const shown = resource?.metadata.name === '' ? '(no name)' : resource?.metadata.name;
    const name =
      resource !== undefined && resource.metadata.namespace !== undefined
        ? `${resource.metadata.namespace}/${shown}`
        : (shown ?? displayName);
    return { problems: issues.toProblems(kind, name) };
  }
  return { resource };
}

// ---------------------------------------------------------------- metadata

function validateMeta(v: unknown, kind: ResourceKind | undefined, issues: Issues): ObjectMeta | undefined {
  if (v === undefined) {
    issues.add('metadata', 'is required (with at least metadata.name)');
    return undefined;
  }
  const m = asObject(v, 'metadata', issues);
  if (m === undefined) return undefined;
  checkKnownFields(m, META_FIELDS, 'metadata', issues);
  const meta: ObjectMeta = { name: '' };
  let ok = true;

  // WorkloadEndpoint names may be left empty: they are derived from the spec.
  const n = own(m, 'name');
  if (n === undefined || n === null || n === '') {
    if (kind !== 'WorkloadEndpoint') {
      issues.add('metadata.name', 'is required');
      ok = false;
    }
  } else if (typeof n !== 'string') {
    issues.add('metadata.name', `must be a string, got ${describe(n)}`);
    ok = false;
  } else {
    meta.name = n;
    const prob = kind === undefined ? null : nameProblem(kind, n);
    if (prob !== null) {
      issues.add('metadata.name', prob);
    }
  }

  const namespaced = kind !== undefined && NAMESPACED_KINDS.has(kind);
  const ns = own(m, 'namespace');
  if (ns !== undefined && ns !== null && ns !== '') {
    if (!namespaced) {
      issues.add('metadata.namespace', `${kind ?? 'this kind'} is not namespaced; remove metadata.namespace`);
    } else if (typeof ns !== 'string') {
      issues.add('metadata.namespace', `must be a string, got ${describe(ns)}`);
    } else {
      const prob = dnsLabelProblem(ns);
      if (prob !== null) issues.add('metadata.namespace', prob);
      else meta.namespace = ns;
    }
  } else if (namespaced) {
    meta.namespace = 'default';
  }

  if (has(m, 'labels')) {
    const l = asLabels(own(m, 'labels'), 'metadata.labels', issues);
    if (l !== undefined && Object.keys(l).length > 0) meta.labels = l;
  }
  if (has(m, 'annotations')) {
    const a = asAnnotations(own(m, 'annotations'), 'metadata.annotations', issues);
    if (a !== undefined && Object.keys(a).length > 0) meta.annotations = a;
  }
  for (const [key, path] of META_STRING_FIELDS) {
    if (!has(m, key)) continue;
    const s = asString(own(m, key), path, issues);
    if (s !== undefined && s !== '') meta[key] = s;
  }
  return ok ? meta : undefined;
}

/** The string fields of ObjectMeta kept as they are, with their paths for messages. */
const META_STRING_FIELDS = [
  ['resourceVersion', 'metadata.resourceVersion'],
  ['uid', 'metadata.uid'],
  ['creationTimestamp', 'metadata.creationTimestamp'],
] as const;

const LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const SUBDOMAIN_FMT = `${LABEL_FMT}(\\.${LABEL_FMT})*`;
const NP_NAME_RE = new RegExp(`^((${LABEL_FMT})(\\.${LABEL_FMT})?|((knp|ossg)\\.default\\.(${SUBDOMAIN_FMT})))$`);
const GNP_NAME_RE = new RegExp(`^(${LABEL_FMT}\\.)?${LABEL_FMT}$`);

/**
 * Calico's name rules per kind: DNS subdomain for most; a single DNS label for Tier (tier
 * names appear inside other names) and Namespace; policies allow at most one '.', except
 * converted Kubernetes/OpenStack policies (`knp.default.<name>`, `ossg.default.<name>`).
 * Policy names need no tier prefix (Calico dropped that requirement in 2025), but a
 * `tier.name` form remains valid.
 */
export function nameProblem(kind: ResourceKind, name: string): string | null {
  switch (kind) {
    case 'Tier':
    case 'Namespace':
      return dnsLabelProblem(name);
    case 'BGPConfiguration':
      return bgpConfigNameProblem(name);
    case 'NetworkPolicy':
      if (name.length > 253) return `${quote(name)} is longer than 253 characters`;
      return NP_NAME_RE.test(name)
        ? null
        : `${quote(name)} must be a lower-case DNS label (letters, digits, '-') with at most one '.', or knp.default.<name>`;
    case 'GlobalNetworkPolicy':
      if (name.length > 253) return `${quote(name)} is longer than 253 characters`;
      return GNP_NAME_RE.test(name)
        ? null
        : `${quote(name)} must be a lower-case DNS label (letters, digits, '-') with at most one '.'`;
    default:
      return dnsSubdomainProblem(name);
  }
}

function specObject(v: unknown, issues: Issues, required: boolean): JsonObject | undefined {
  if (v === undefined || v === null) {
    if (required) issues.add('spec', 'is required');
    return required ? undefined : {};
  }
  return asObject(v, 'spec', issues);
}

// ---------------------------------------------------------------- IPPool

const IPPOOL_FIELDS = [
  'cidr',
  'vxlanMode',
  'ipipMode',
  'natOutgoing',
  'disabled',
  'disableBGPExport',
  'blockSize',
  'nodeSelector',
  'namespaceSelector',
  'allowedUses',
  'assignmentMode',
  'ipip',
  'nat-outgoing',
];
const ENCAP_MODES: readonly EncapMode[] = ['Never', 'Always', 'CrossSubnet'];
const ALLOWED_USES = ['Workload', 'Tunnel', 'LoadBalancer'] as const;

function ippool(meta: ObjectMeta, v: unknown, issues: Issues): IPPool | undefined {
  const s = specObject(v, issues, true);
  if (s === undefined) return undefined;
  checkKnownFields(s, IPPOOL_FIELDS, 'spec', issues);
  if (has(s, 'ipip')) issues.add('spec.ipip', 'is the v1 form; in projectcalico.org/v3 use spec.ipipMode');
  if (has(s, 'nat-outgoing')) issues.add('spec.nat-outgoing', 'is the v1 form; in projectcalico.org/v3 use spec.natOutgoing');

  let cidr;
  const rawCidr = own(s, 'cidr');
  if (rawCidr === undefined || rawCidr === null || rawCidr === '') {
    issues.add('spec.cidr', 'is required');
  } else if (typeof rawCidr !== 'string') {
    issues.add('spec.cidr', `must be a string, got ${describe(rawCidr)}`);
  } else {
    const c = tryParseCidr(rawCidr);
    if (c === undefined) issues.add('spec.cidr', `${quote(rawCidr)} is not a valid CIDR (e.g. 192.168.0.0/16)`);
    else cidr = maskCidr(c); // Calico stores the pool's network address, dropping host bits.
  }

  const spec: IPPoolSpec = { cidr: cidr === undefined ? '' : formatCidr(cidr) };
  if (cidr !== undefined) {
    const ll = cidr.ip.version === 4 ? IPV4_LINK_LOCAL : IPV6_LINK_LOCAL;
    if (cidrContains(ll, cidr) || cidrContains(cidr, ll)) {
      issues.add('spec.cidr', `${spec.cidr} overlaps the link-local range ${formatCidr(ll)}`);
    }
  }

  const modes: Partial<Record<'ipipMode' | 'vxlanMode', EncapMode>> = {};
  for (const key of ['vxlanMode', 'ipipMode'] as const) {
    const m = own(s, key);
    if (m === undefined || m === null || m === '') {
      modes[key] = IPPOOL_DEFAULTS[key];
    } else if (typeof m === 'string' && (ENCAP_MODES as readonly string[]).includes(m)) {
      modes[key] = m as EncapMode;
    } else {
      issues.add(`spec.${key}`, `must be one of ${ENCAP_MODES.join(', ')}, got ${describe(m)}`);
    }
  }
  spec.vxlanMode = modes.vxlanMode;
  spec.ipipMode = modes.ipipMode;
  const ipipOn = modes.ipipMode !== undefined && modes.ipipMode !== 'Never';
  const vxlanOn = modes.vxlanMode !== undefined && modes.vxlanMode !== 'Never';
  if (ipipOn && vxlanOn) issues.add('spec', 'ipipMode and vxlanMode cannot both be enabled');
  if (ipipOn && cidr?.ip.version === 6) issues.add('spec.ipipMode', 'IPIP is not supported on IPv6 pools');

  for (const key of ['natOutgoing', 'disabled', 'disableBGPExport'] as const) {
    if (!has(s, key)) continue;
    const b = asBoolean(own(s, key), `spec.${key}`, issues);
    if (b === true) spec[key] = true;
  }

  const v6 = cidr?.ip.version === 6;
  let blockSize = defaultBlockSize(v6 ? 6 : 4);
  if (has(s, 'blockSize') && own(s, 'blockSize') !== 0) {
    const [lo, hi] = IPPOOL_BLOCK_SIZE_RANGE[v6 ? 6 : 4];
    const b = asInteger(own(s, 'blockSize'), 'spec.blockSize', issues, lo, hi);
    if (b !== undefined) blockSize = b;
  }
  spec.blockSize = blockSize;
  if (cidr !== undefined && cidr.prefix > blockSize && spec.disabled !== true) {
    issues.add(
      'spec.cidr',
      `/${cidr.prefix} is smaller than one block (/${blockSize}); use a pool of at least the block size or a larger blockSize`,
    );
  }

  spec.nodeSelector = IPPOOL_DEFAULTS.nodeSelector;
  if (has(s, 'nodeSelector')) {
    const sel = checkSelector(own(s, 'nodeSelector'), 'spec.nodeSelector', issues, 'forbidden');
    if (sel.text !== undefined) spec.nodeSelector = sel.text;
  }
  if (has(s, 'namespaceSelector')) {
    const sel = checkSelector(own(s, 'namespaceSelector'), 'spec.namespaceSelector', issues, 'forbidden');
    if (sel.text !== undefined) spec.namespaceSelector = sel.text;
  }

  let uses: IPPoolSpec['allowedUses'] = [...IPPOOL_DEFAULTS.allowedUses];
  if (has(s, 'allowedUses')) {
    const arr = asStringArray(own(s, 'allowedUses'), 'spec.allowedUses', issues);
    if (arr !== undefined) {
      if (arr.length > 10) issues.add('spec.allowedUses', `has ${arr.length} entries, more than 10`);
      const good: typeof uses = [];
      arr.forEach((u, i) => {
        if ((ALLOWED_USES as readonly string[]).includes(u)) {
          if (!good.includes(u as (typeof ALLOWED_USES)[number])) good.push(u as (typeof ALLOWED_USES)[number]);
        } else {
          issues.add(index('spec.allowedUses', i), `unknown use ${quote(u)} (expected ${ALLOWED_USES.join(', ')})`);
        }
      });
      if (good.length > 0) uses = good;
    }
  }
  spec.allowedUses = uses;
  if (uses.includes('LoadBalancer')) {
    if (uses.includes('Workload') || uses.includes('Tunnel')) {
      issues.add('spec.allowedUses', 'LoadBalancer cannot be combined with Workload or Tunnel');
    }
    if (ipipOn || vxlanOn) issues.add('spec.allowedUses', 'a LoadBalancer pool cannot have IPIP or VXLAN enabled');
    if (spec.disableBGPExport === true) issues.add('spec.disableBGPExport', 'a LoadBalancer pool cannot disable BGP export');
    if (spec.nodeSelector !== 'all()') issues.add('spec.nodeSelector', 'a LoadBalancer pool must have nodeSelector all()');
  }
  if (uses.includes('Tunnel') && spec.namespaceSelector !== undefined) {
    issues.add('spec.namespaceSelector', 'a pool with allowed use Tunnel cannot have a namespaceSelector');
  }

  spec.assignmentMode = IPPOOL_DEFAULTS.assignmentMode;
  if (has(s, 'assignmentMode')) {
    const am = own(s, 'assignmentMode');
    if (am === 'Automatic' || am === 'Manual') spec.assignmentMode = am;
    else issues.add('spec.assignmentMode', `must be Automatic or Manual, got ${describe(am)}`);
  }

  return { apiVersion: API_VERSION_V3, kind: 'IPPool', metadata: meta, spec };
}

// ---------------------------------------------------------------- Node

const NODE_FIELDS = [
  'bgp',
  'ipv4VXLANTunnelAddr',
  'ipv6VXLANTunnelAddr',
  'vxlanTunnelMACAddr',
  'vxlanTunnelMACAddrV6',
  'orchRefs',
  'addresses',
];
const BGP_FIELDS = ['asNumber', 'ipv4Address', 'ipv6Address', 'ipv4IPIPTunnelAddr', 'routeReflectorClusterID'];

function node(meta: ObjectMeta, v: unknown, issues: Issues): Node | undefined {
  const s = specObject(v, issues, false);
  if (s === undefined) return undefined;
  checkKnownFields(s, NODE_FIELDS, 'spec', issues);
  const spec: NodeSpec = {};

  if (has(s, 'bgp')) {
    const b = asObject(own(s, 'bgp'), 'spec.bgp', issues);
    if (b !== undefined) {
      checkKnownFields(b, BGP_FIELDS, 'spec.bgp', issues);
      const bgp: NodeBGPSpec = {};
      if (has(b, 'asNumber')) {
        const asn = parseAsNumber(own(b, 'asNumber'));
        if (typeof asn === 'string') issues.add('spec.bgp.asNumber', asn);
        else bgp.asNumber = asn;
      }
      if (has(b, 'ipv4Address')) {
        const a = hostWithSubnet(own(b, 'ipv4Address'), 4, 'spec.bgp.ipv4Address', issues);
        if (a !== undefined) bgp.ipv4Address = a;
      }
      if (has(b, 'ipv6Address')) {
        const a = hostWithSubnet(own(b, 'ipv6Address'), 6, 'spec.bgp.ipv6Address', issues);
        if (a !== undefined) bgp.ipv6Address = a;
      }
      for (const key of ['ipv4IPIPTunnelAddr', 'routeReflectorClusterID'] as const) {
        if (!has(b, key)) continue;
        const a = ipOfVersion(own(b, key), 4, `spec.bgp.${key}`, issues);
        if (a !== undefined) bgp[key] = a;
      }
      if (Object.keys(b).length === 0) issues.add('spec.bgp', 'must not be empty (omit it instead)');
      spec.bgp = bgp;
    }
  }
  for (const [key, ver] of [
    ['ipv4VXLANTunnelAddr', 4],
    ['ipv6VXLANTunnelAddr', 6],
  ] as const) {
    if (!has(s, key)) continue;
    const a = ipOfVersion(own(s, key), ver, `spec.${key}`, issues);
    if (a !== undefined) spec[key] = a;
  }
  for (const key of ['vxlanTunnelMACAddr', 'vxlanTunnelMACAddrV6'] as const) {
    if (!has(s, key)) continue;
    const m = mac(own(s, key), `spec.${key}`, issues);
    if (m !== undefined) spec[key] = m;
  }
  if (has(s, 'orchRefs')) {
    const arr = asArray(own(s, 'orchRefs'), 'spec.orchRefs', issues);
    if (arr !== undefined) {
      const refs: OrchRef[] = [];
      arr.forEach((e, i) => {
        const p = index('spec.orchRefs', i);
        const o = asObject(e, p, issues);
        if (o === undefined) return;
        checkKnownFields(o, ['nodeName', 'orchestrator'], p, issues);
        const orch = asString(own(o, 'orchestrator'), field(p, 'orchestrator'), issues);
        if (orch === undefined) return;
        const ref: OrchRef = { orchestrator: orch };
        if (has(o, 'nodeName')) {
          const nn = asString(own(o, 'nodeName'), field(p, 'nodeName'), issues);
          if (nn !== undefined && nn !== '') ref.nodeName = nn;
        }
        refs.push(ref);
      });
      if (refs.length > 0) spec.orchRefs = refs;
    }
  }
  if (has(s, 'addresses')) {
    const arr = asArray(own(s, 'addresses'), 'spec.addresses', issues);
    if (arr !== undefined) {
      const addrs: NodeAddress[] = [];
      arr.forEach((e, i) => {
        const p = index('spec.addresses', i);
        const o = asObject(e, p, issues);
        if (o === undefined) return;
        checkKnownFields(o, ['address', 'type'], p, issues);
        const a = maskedNetOrIP(own(o, 'address'), field(p, 'address'), issues);
        if (a === undefined) return;
        const na: NodeAddress = { address: a };
        if (has(o, 'type')) {
          const t = own(o, 'type');
          if (t === 'InternalIP' || t === 'ExternalIP' || t === 'CalicoNodeIP') na.type = t;
          else issues.add(field(p, 'type'), `must be InternalIP, ExternalIP or CalicoNodeIP, got ${describe(t)}`);
        }
        addrs.push(na);
      });
      if (addrs.length > 0) spec.addresses = addrs;
    }
  }
  return { apiVersion: API_VERSION_V3, kind: 'Node', metadata: meta, spec };
}

/** Calico's ASNumber: a uint32, or `"a.b"` (asdot, each part 16-bit). Returns a reason on error. */
export function parseAsNumber(v: unknown): number | string {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
    return `${v} is not a valid AS number (0 to 4294967295)`;
  }
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return parseAsNumber(Number(v));
    const m = /^(\d+)\.(\d+)$/.exec(v);
    if (m !== null) {
      const hi = Number(m[1]);
      const lo = Number(m[2]);
      if (hi <= 0xffff && lo <= 0xffff) return hi * 65536 + lo;
    }
    return `${quote(v)} is not a valid AS number (a number or asdot "a.b")`;
  }
  return `must be a number, got ${describe(v)}`;
}

/** `10.0.2.10/24`: address and subnet both kept; a bare address gets a full-length prefix. */
function hostWithSubnet(v: unknown, ver: 4 | 6, path: string, issues: Issues): string | undefined {
  const s = asString(v, path, issues);
  if (s === undefined) return undefined;
  const c = tryParseCidrOrIp(s);
  if (c === undefined || c.ip.version !== ver) {
    issues.add(path, `${quote(s)} is not an IPv${ver} address with optional prefix (e.g. ${ver === 4 ? '10.0.2.10/24' : 'fd00::10/64'})`);
    return undefined;
  }
  return formatCidr(c);
}

function ipOfVersion(v: unknown, ver: 4 | 6, path: string, issues: Issues): string | undefined {
  const s = asString(v, path, issues);
  if (s === undefined) return undefined;
  const ip = tryParseIP(s);
  if (ip === undefined || ip.version !== ver) {
    issues.add(path, `${quote(s)} is not an IPv${ver} address`);
    return undefined;
  }
  return formatIP(ip);
}

/** Calico's `net` rule: an address or a strictly masked CIDR. Kept as written if valid. */
function maskedNetOrIP(v: unknown, path: string, issues: Issues): string | undefined {
  const s = asString(v, path, issues);
  if (s === undefined) return undefined;
  const c = tryParseCidrOrIp(s);
  if (c === undefined) {
    issues.add(path, `${quote(s)} is not an IP address or CIDR`);
    return undefined;
  }
  if (!isMasked(c)) {
    issues.add(path, `${quote(s)} has host bits set`);
    return undefined;
  }
  return s.includes('/') ? formatCidr(c) : formatIP(c.ip);
}

function mac(v: unknown, path: string, issues: Issues): string | undefined {
  const s = asString(v, path, issues);
  if (s === undefined) return undefined;
  const m = parseMac(s);
  if (m === null) issues.add(path, `${quote(s)} is not a MAC address (e.g. ee:ee:ee:ee:ee:ee)`);
  return m ?? undefined;
}

// ---------------------------------------------------------------- WorkloadEndpoint

const WEP_FIELDS = [
  'orchestrator',
  'workload',
  'node',
  'containerID',
  'pod',
  'endpoint',
  'serviceAccountName',
  'ipNetworks',
  'ipNATs',
  'ipv4Gateway',
  'ipv6Gateway',
  'profiles',
  'interfaceName',
  'mac',
  'ports',
  'allowSpoofedSourcePrefixes',
];
// The CNI spec's container id (alphanumerics, '-', '_', '.'): any runtime's id must fit; the
// endpoint's name makes it name-safe (nameSafePart).
/** The WorkloadEndpoint spec's name fields, with their paths for messages. */
const WEP_NAME_FIELDS = [
  ['orchestrator', 'spec.orchestrator'],
  ['workload', 'spec.workload'],
  ['node', 'spec.node'],
  ['pod', 'spec.pod'],
  ['endpoint', 'spec.endpoint'],
  ['serviceAccountName', 'spec.serviceAccountName'],
] as const;
const CONTAINER_ID_RE = /^[a-zA-Z0-9][-_.a-zA-Z0-9]*$/;
const INTERFACE_RE = /^[a-zA-Z0-9_.-]{1,15}$/;

function workloadEndpoint(meta: ObjectMeta, v: unknown, issues: Issues): WorkloadEndpoint | undefined {
  const s = specObject(v, issues, true);
  if (s === undefined) return undefined;
  checkKnownFields(s, WEP_FIELDS, 'spec', issues);
  const spec: WorkloadEndpointSpec = {};

  for (const [key, path] of WEP_NAME_FIELDS) {
    if (!has(s, key) || own(s, key) === '') continue;
    const n = asResourceName(own(s, key), path, issues);
    if (n !== undefined) spec[key] = n;
  }
  if (has(s, 'containerID') && own(s, 'containerID') !== '') {
    const c = asString(own(s, 'containerID'), 'spec.containerID', issues);
    if (c !== undefined) {
      if (CONTAINER_ID_RE.test(c)) spec.containerID = c;
      else issues.add('spec.containerID', `${quote(c)} must be letters, digits, '-', '_' and '.', starting with a letter or digit`);
    }
  }

  const nets: { net: string; cidr: Cidr }[] = [];
  if (has(s, 'ipNetworks')) {
    const arr = asStringArray(own(s, 'ipNetworks'), 'spec.ipNetworks', issues);
    arr?.forEach((n, i) => {
      const c = tryParseCidrOrIp(n);
      if (c === undefined) issues.add(index('spec.ipNetworks', i), `${quote(n)} is not an IP address or CIDR`);
      else if (c.prefix !== (c.ip.version === 4 ? 32 : 128)) {
        issues.add(index('spec.ipNetworks', i), `${quote(n)} contains several addresses; a workload network must be a single address (/32 or /128)`);
      } else nets.push({ net: formatCidr(c), cidr: c });
    });
    if (nets.length > 0) spec.ipNetworks = nets.map((n) => n.net);
  }
  if (has(s, 'ipNATs')) {
    const arr = asArray(own(s, 'ipNATs'), 'spec.ipNATs', issues);
    if (arr !== undefined) {
      const nats: IPNAT[] = [];
      arr.forEach((e, i) => {
        const p = index('spec.ipNATs', i);
        const o = asObject(e, p, issues);
        if (o === undefined) return;
        checkKnownFields(o, ['internalIP', 'externalIP'], p, issues);
        const ii = asString(own(o, 'internalIP'), field(p, 'internalIP'), issues);
        const ei = asString(own(o, 'externalIP'), field(p, 'externalIP'), issues);
        const iip = ii === undefined ? undefined : tryParseIP(ii);
        const eip = ei === undefined ? undefined : tryParseIP(ei);
        if (ii !== undefined && iip === undefined) issues.add(field(p, 'internalIP'), `${quote(ii)} is not an IP address`);
        if (ei !== undefined && eip === undefined) issues.add(field(p, 'externalIP'), `${quote(ei)} is not an IP address`);
        if (iip === undefined || eip === undefined) return;
        if (iip.version !== eip.version) issues.add(p, 'internalIP and externalIP must be the same IP version');
        if (!nets.some((n) => cidrContains(n.cidr, { ip: iip, prefix: iip.version === 4 ? 32 : 128 }))) {
          issues.add(field(p, 'internalIP'), `${formatIP(iip)} is not one of the endpoint's ipNetworks`);
        }
        nats.push({ internalIP: formatIP(iip), externalIP: formatIP(eip) });
      });
      if (nats.length > 0) spec.ipNATs = nats;
    }
  }
  if (has(s, 'ipv4Gateway') && own(s, 'ipv4Gateway') !== '') {
    const g = ipOfVersion(own(s, 'ipv4Gateway'), 4, 'spec.ipv4Gateway', issues);
    if (g !== undefined) spec.ipv4Gateway = g;
  }
  if (has(s, 'ipv6Gateway') && own(s, 'ipv6Gateway') !== '') {
    const g = ipOfVersion(own(s, 'ipv6Gateway'), 6, 'spec.ipv6Gateway', issues);
    if (g !== undefined) spec.ipv6Gateway = g;
  }
  if (has(s, 'profiles')) {
    const arr = asStringArray(own(s, 'profiles'), 'spec.profiles', issues);
    arr?.forEach((p, i) => {
      const prob = dnsSubdomainProblem(p);
      if (prob !== null) issues.add(index('spec.profiles', i), prob);
    });
    if (arr !== undefined && arr.length > 0) spec.profiles = arr;
  }
  const ifn = own(s, 'interfaceName');
  if (ifn === undefined || ifn === null || ifn === '') {
    issues.add('spec.interfaceName', 'is required (the host-side interface, e.g. cali0123456789a)');
  } else {
    const n = asString(ifn, 'spec.interfaceName', issues);
    if (n !== undefined) {
      if (INTERFACE_RE.test(n)) spec.interfaceName = n;
      else issues.add('spec.interfaceName', `${quote(n)} must be 1 to 15 characters of letters, digits, '_', '.' or '-'`);
    }
  }
  if (has(s, 'mac') && own(s, 'mac') !== '') {
    const m = mac(own(s, 'mac'), 'spec.mac', issues);
    if (m !== undefined) spec.mac = m;
  }
  if (has(s, 'ports')) {
    const arr = asArray(own(s, 'ports'), 'spec.ports', issues);
    if (arr !== undefined) {
      const ports: WorkloadEndpointPort[] = [];
      arr.forEach((e, i) => {
        const wp = wepPort(e, index('spec.ports', i), issues);
        if (wp !== undefined) ports.push(wp);
      });
      if (ports.length > 0) spec.ports = ports;
    }
  }
  if (has(s, 'allowSpoofedSourcePrefixes')) {
    const arr = asStringArray(own(s, 'allowSpoofedSourcePrefixes'), 'spec.allowSpoofedSourcePrefixes', issues);
    const out: string[] = [];
    arr?.forEach((n, i) => {
      const c = asCidr(n, index('spec.allowSpoofedSourcePrefixes', i), issues);
      if (c !== undefined) out.push(formatCidr(c.cidr));
    });
    if (out.length > 0) spec.allowSpoofedSourcePrefixes = out;
  }

  // Calico derives the name from the identifiers and insists they agree.
  const expected = workloadEndpointName(spec);
  if (typeof expected !== 'string') {
    issues.add(expected.path, expected.reason);
  } else if (meta.name === '') {
    meta.name = expected;
  } else if (meta.name !== expected) {
    issues.add('metadata.name', `${quote(meta.name)} does not match the spec's identifiers; expected ${quote(expected)}`);
  }

  // Labels Calico maintains itself; user values for them are overwritten. When they are there
  // already (as stored by tortie), meta.labels — a fresh object, keys sorted — stays as it is.
  const ml = meta.labels;
  const nsLabel = meta.namespace ?? 'default';
  if (ml === undefined || !Object.prototype.hasOwnProperty.call(ml, LABEL_NAMESPACE) || ml[LABEL_NAMESPACE] !== nsLabel ||
    (spec.orchestrator !== undefined && (!Object.prototype.hasOwnProperty.call(ml, LABEL_ORCHESTRATOR) || ml[LABEL_ORCHESTRATOR] !== spec.orchestrator)) ||
    (spec.serviceAccountName !== undefined && (!Object.prototype.hasOwnProperty.call(ml, LABEL_SERVICE_ACCOUNT) || ml[LABEL_SERVICE_ACCOUNT] !== spec.serviceAccountName))) {
    const labels: Record<string, string> = { ...(ml ?? {}) };
    labels[LABEL_NAMESPACE] = nsLabel;
    if (spec.orchestrator !== undefined) labels[LABEL_ORCHESTRATOR] = spec.orchestrator;
    if (spec.serviceAccountName !== undefined) labels[LABEL_SERVICE_ACCOUNT] = spec.serviceAccountName;
    meta.labels = sortKeys(labels);
  }

  return { apiVersion: API_VERSION_V3, kind: 'WorkloadEndpoint', metadata: meta, spec };
}

/**
 * Calico's WorkloadEndpoint name: `<node>-<orchestrator>-<id>-<endpoint>` with '-' inside
 * each part doubled; `<id>` is the pod (k8s), containerID (cni), the orchestrator again
 * (libnetwork) or the workload (anything else).
 */
export function workloadEndpointName(spec: WorkloadEndpointSpec): string | { path: string; reason: string } {
  const orch = spec.orchestrator;
  let idKey: 'pod' | 'containerID' | 'orchestrator' | 'workload';
  switch (orch) {
    case 'k8s':
      idKey = 'pod';
      break;
    case 'cni':
      idKey = 'containerID';
      break;
    case 'libnetwork':
      idKey = 'orchestrator';
      break;
    default:
      idKey = 'workload';
  }
  let out = '';
  for (let i = 0; i < 4; i++) {
    const key = i === 0 ? 'node' : i === 1 ? 'orchestrator' : i === 2 ? idKey : 'endpoint';
    const val = i === 0 ? spec.node : i === 1 ? orch : i === 2 ? spec[idKey] : spec.endpoint;
    if (val === undefined || val === '') {
      return { path: `spec.${key}`, reason: `is required to name the workload endpoint` };
    }
    // Outside Kubernetes (whose pod names are DNS labels already) the runtime's ids — any CNI
    // container id, interface names — are made name-safe rather than refused.
    const part = orch !== 'k8s' && (key === idKey || key === 'endpoint') ? nameSafePart(val) : val;
    if (part.startsWith('-') || part.endsWith('-')) {
      return { path: `spec.${key}`, reason: `must not begin or end with '-'` };
    }
    const doubled = part.includes('-') ? part.replaceAll('-', '--') : part;
    out = i === 0 ? doubled : `${out}-${doubled}`;
  }
  return out;
}

const SAFE_PART_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/**
 * A workload id as it goes into a name: unchanged when it already fits a DNS subdomain (and is at
 * most 64 characters), else lower-cased, each run of other characters turned into one '-', cut
 * to 48 characters and suffixed with 10 hex characters of its sha256, so that distinct ids
 * (`Web_1`, `web-1`) keep distinct names.
 */
export function nameSafePart(id: string): string {
  if (id.length <= 64 && SAFE_PART_RE.test(id)) return id;
  const base = id.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 48).replace(/^-+|-+$/g, '');
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 10);
  return base ? `${base}-${hash}` : hash;
}

function wepPort(e: unknown, p: string, issues: Issues): WorkloadEndpointPort | undefined {
  const o = asObject(e, p, issues);
  if (o === undefined) return undefined;
  checkKnownFields(o, ['name', 'protocol', 'port', 'hostPort', 'hostIP'], p, issues);
  const before = issues.list.length;
  let name = '';
  if (has(o, 'name') && own(o, 'name') !== '') {
    const n = asString(own(o, 'name'), field(p, 'name'), issues);
    if (n !== undefined) {
      const prob = portNameProblem(n);
      if (prob !== null) issues.add(field(p, 'name'), prob);
      else name = n;
    }
  }
  const pr = parseProtocol(own(o, 'protocol'));
  let protocol;
  if (!has(o, 'protocol')) issues.add(field(p, 'protocol'), 'is required (TCP, UDP or SCTP)');
  else if ('error' in pr) issues.add(field(p, 'protocol'), pr.error);
  else if (!protocolSupportsPorts(pr.value)) issues.add(field(p, 'protocol'), `${pr.value} has no ports; use TCP, UDP or SCTP`);
  else protocol = pr.value;
  const port = asInteger(own(o, 'port'), field(p, 'port'), issues, 1, 65535);
  const out: WorkloadEndpointPort = { name, protocol: protocol ?? 'TCP', port: port ?? 0 };
  if (has(o, 'hostPort') && own(o, 'hostPort') !== 0) {
    const hp = asInteger(own(o, 'hostPort'), field(p, 'hostPort'), issues, 1, 65535);
    if (hp !== undefined) out.hostPort = hp;
  }
  if (has(o, 'hostIP') && own(o, 'hostIP') !== '') {
    const h = maskedNetOrIP(own(o, 'hostIP'), field(p, 'hostIP'), issues);
    if (h !== undefined) out.hostIP = h;
  }
  if (name === '' && out.hostPort === undefined && issues.list.length === before) {
    issues.add(field(p, 'name'), 'is required unless a hostPort is given');
  }
  return issues.list.length === before ? out : undefined;
}

// ---------------------------------------------------------------- Profile

function profile(meta: ObjectMeta, v: unknown, issues: Issues): Profile | undefined {
  const s = specObject(v, issues, false);
  if (s === undefined) return undefined;
  checkKnownFields(s, ['ingress', 'egress', 'labelsToApply'], 'spec', issues);
  if (meta.name === DEFAULT_ALLOW_PROFILE) {
    issues.add('metadata.name', `${DEFAULT_ALLOW_PROFILE} is Calico's built-in profile (allow all ingress and egress); it cannot be created, replaced or deleted`);
  }
  const spec: ProfileSpec = {};
  for (const key of ['ingress', 'egress'] as const) {
    if (!has(s, key)) continue;
    const rules = validateRules(own(s, key), `spec.${key}`, issues);
    if (rules !== undefined && rules.length > 0) spec[key] = rules;
  }
  if (has(s, 'labelsToApply')) {
    const l = asLabels(own(s, 'labelsToApply'), 'spec.labelsToApply', issues);
    if (l !== undefined && Object.keys(l).length > 0) spec.labelsToApply = l;
  }
  return { apiVersion: API_VERSION_V3, kind: 'Profile', metadata: meta, spec };
}

// ---------------------------------------------------------------- Tier

/** Built-in tiers and the order / default action Calico fixes for them. */
export const BUILTIN_TIERS: Readonly<Record<string, { order: number; defaultAction: 'Deny' | 'Pass' }>> = {
  default: { order: 1000000, defaultAction: 'Deny' },
  'kube-admin': { order: 1000, defaultAction: 'Pass' },
  'kube-baseline': { order: 10000000, defaultAction: 'Pass' },
};

function tier(meta: ObjectMeta, v: unknown, issues: Issues): Tier | undefined {
  const s = specObject(v, issues, false);
  if (s === undefined) return undefined;
  checkKnownFields(s, ['order', 'defaultAction'], 'spec', issues);
  const spec: TierSpec = {};
  if (has(s, 'order')) {
    const o = asFiniteNumber(own(s, 'order'), 'spec.order', issues);
    if (o !== undefined) spec.order = o;
  }
  spec.defaultAction = 'Deny';
  if (has(s, 'defaultAction')) {
    const a = own(s, 'defaultAction');
    if (a === 'Deny' || a === 'Pass') spec.defaultAction = a;
    else issues.add('spec.defaultAction', `must be Deny or Pass, got ${describe(a)}`);
  }
  const builtin = Object.prototype.hasOwnProperty.call(BUILTIN_TIERS, meta.name) ? BUILTIN_TIERS[meta.name] : undefined;
  if (builtin !== undefined) {
    if (spec.order === undefined) spec.order = builtin.order;
    else if (spec.order !== builtin.order) {
      issues.add('spec.order', `the ${meta.name} tier's order must be ${builtin.order}`);
    }
    if (!has(s, 'defaultAction')) spec.defaultAction = builtin.defaultAction;
    else if (spec.defaultAction !== builtin.defaultAction) {
      issues.add('spec.defaultAction', `the ${meta.name} tier's defaultAction must be ${builtin.defaultAction}`);
    }
  }
  return { apiVersion: API_VERSION_V3, kind: 'Tier', metadata: meta, spec };
}

// ---------------------------------------------------------------- policies

const NP_FIELDS = ['tier', 'order', 'ingress', 'egress', 'selector', 'types', 'serviceAccountSelector', 'performanceHints'];
const GNP_FIELDS = [...NP_FIELDS, 'doNotTrack', 'preDNAT', 'applyOnForward', 'namespaceSelector'];

function policyCommon(s: JsonObject, issues: Issues): NetworkPolicySpec {
  const spec: NetworkPolicySpec = {};
  spec.tier = DEFAULT_TIER;
  if (has(s, 'tier') && own(s, 'tier') !== '') {
    const t = asString(own(s, 'tier'), 'spec.tier', issues);
    if (t !== undefined) {
      const prob = dnsLabelProblem(t);
      if (prob !== null) issues.add('spec.tier', prob);
      else spec.tier = t;
    }
  }
  if (has(s, 'order')) {
    const o = asFiniteNumber(own(s, 'order'), 'spec.order', issues);
    if (o !== undefined) spec.order = o;
  }
  let ingress: Rule[] | undefined;
  let egress: Rule[] | undefined;
  if (has(s, 'ingress')) ingress = validateRules(own(s, 'ingress'), 'spec.ingress', issues);
  if (has(s, 'egress')) egress = validateRules(own(s, 'egress'), 'spec.egress', issues);
  if (ingress !== undefined && ingress.length > 0) spec.ingress = ingress;
  if (egress !== undefined && egress.length > 0) spec.egress = egress;

  spec.selector = 'all()';
  if (has(s, 'selector')) {
    const sel = checkSelector(own(s, 'selector'), 'spec.selector', issues, 'forbidden');
    if (sel.text !== undefined) spec.selector = sel.text;
  }
  if (has(s, 'serviceAccountSelector')) {
    const sel = checkSelector(own(s, 'serviceAccountSelector'), 'spec.serviceAccountSelector', issues, 'forbidden');
    if (sel.text !== undefined) spec.serviceAccountSelector = sel.text;
  }

  // Calico's defaulting: from which rule lists are present (length counts, [] is absent).
  const ingressRaw = own(s, 'ingress');
  const egressRaw = own(s, 'egress');
  const nIngress = Array.isArray(ingressRaw) ? ingressRaw.length : 0;
  const nEgress = Array.isArray(egressRaw) ? egressRaw.length : 0;
  let types: PolicyType[] | undefined;
  if (has(s, 'types') && !(Array.isArray(own(s, 'types')) && (own(s, 'types') as unknown[]).length === 0)) {
    const arr = asArray(own(s, 'types'), 'spec.types', issues);
    if (arr !== undefined) {
      types = [];
      if (arr.length > 2) issues.add('spec.types', `has ${arr.length} entries; at most Ingress and Egress`);
      arr.forEach((t, i) => {
        if (t !== 'Ingress' && t !== 'Egress') {
          issues.add(index('spec.types', i), `must be Ingress or Egress, got ${describe(t)}`);
        } else if (types!.includes(t)) {
          issues.add(index('spec.types', i), `${t} is listed more than once`);
        } else types!.push(t);
      });
    }
  }
  if (types === undefined) {
    if (nEgress === 0) types = ['Ingress'];
    else if (nIngress === 0) types = ['Egress'];
    else types = ['Ingress', 'Egress'];
  }
  spec.types = types;

  if (has(s, 'performanceHints')) {
    const arr = asStringArray(own(s, 'performanceHints'), 'spec.performanceHints', issues);
    const hints: string[] = [];
    arr?.forEach((h, i) => {
      if (h !== 'AssumeNeededOnEveryNode') {
        issues.add(index('spec.performanceHints', i), `unknown hint ${quote(h)} (expected AssumeNeededOnEveryNode)`);
      } else if (hints.includes(h)) issues.add(index('spec.performanceHints', i), `${h} is listed more than once`);
      else hints.push(h);
    });
    if (hints.length > 0) spec.performanceHints = hints;
  }
  return spec;
}

function tierLabel(meta: ObjectMeta, tierName: string): void {
  meta.labels = sortKeys({ ...(meta.labels ?? {}), [LABEL_TIER]: tierName });
}

function networkPolicy(meta: ObjectMeta, v: unknown, issues: Issues): NetworkPolicy | undefined {
  const s = specObject(v, issues, false);
  if (s === undefined) return undefined;
  const gnpOnly = GNP_FIELDS.filter((f) => !NP_FIELDS.includes(f));
  checkKnownFields(s, GNP_FIELDS, 'spec', issues);
  for (const key of gnpOnly) {
    if (own(s, key) !== undefined) issues.add(`spec.${key}`, 'unknown field (it exists only on GlobalNetworkPolicy)');
  }
  const spec = policyCommon(s, issues);
  tierLabel(meta, spec.tier ?? DEFAULT_TIER);
  return { apiVersion: API_VERSION_V3, kind: 'NetworkPolicy', metadata: meta, spec };
}

function globalNetworkPolicy(meta: ObjectMeta, v: unknown, issues: Issues): GlobalNetworkPolicy | undefined {
  const s = specObject(v, issues, false);
  if (s === undefined) return undefined;
  checkKnownFields(s, GNP_FIELDS, 'spec', issues);
  const spec: GlobalNetworkPolicySpec = policyCommon(s, issues);
  for (const key of ['doNotTrack', 'preDNAT', 'applyOnForward'] as const) {
    if (!has(s, key)) continue;
    const b = asBoolean(own(s, key), `spec.${key}`, issues);
    if (b === true) spec[key] = true;
  }
  if (has(s, 'namespaceSelector')) {
    const sel = checkSelector(own(s, 'namespaceSelector'), 'spec.namespaceSelector', issues, 'forbidden');
    if (sel.text !== undefined) spec.namespaceSelector = sel.text;
  }
  if (spec.doNotTrack === true && spec.preDNAT === true) {
    issues.add('spec', 'preDNAT and doNotTrack cannot both be true');
  }
  if (spec.preDNAT === true) {
    if (spec.egress !== undefined) issues.add('spec.egress', 'a preDNAT policy cannot have egress rules');
    if (spec.types?.includes('Egress')) issues.add('spec.types', 'a preDNAT policy cannot have type Egress');
  }
  if ((spec.doNotTrack === true || spec.preDNAT === true) && spec.applyOnForward !== true) {
    issues.add('spec.applyOnForward', 'must be true when preDNAT or doNotTrack is true');
  }
  // Keep Calico's field order for readability of `get -o yaml` (keys are sorted on output anyway).
  tierLabel(meta, spec.tier ?? DEFAULT_TIER);
  return { apiVersion: API_VERSION_V3, kind: 'GlobalNetworkPolicy', metadata: meta, spec };
}

// ---------------------------------------------------------------- Namespace

function namespace(meta: ObjectMeta, v: unknown, issues: Issues): Namespace | undefined {
  if (v !== undefined && v !== null) {
    const s = asObject(v, 'spec', issues);
    if (s !== undefined) checkKnownFields(s, [], 'spec', issues);
  }
  return { apiVersion: API_VERSION_V3, kind: 'Namespace', metadata: meta };
}

// ---------------------------------------------------------------- network sets

/** Calico's limit on a set's size is the datastore's; tortie's compiler is sized for 100,000+. */
const MAX_SET_NETS = 1_000_000;

function networkSet(kind: 'GlobalNetworkSet' | 'NetworkSet', meta: ObjectMeta, v: unknown, issues: Issues): GlobalNetworkSet | NetworkSet | undefined {
  const s = specObject(v, issues, false);
  if (s === undefined) return undefined;
  checkKnownFields(s, ['nets', 'allowedEgressDomains'], 'spec', issues);
  const spec: NetworkSetSpec = {};
  if (has(s, 'nets')) {
    const out = cidrList(own(s, 'nets'), 'spec.nets', issues, MAX_SET_NETS);
    if (out.length > 0) spec.nets = out;
  }
  if (has(s, 'allowedEgressDomains')) {
    const arr = asStringArray(own(s, 'allowedEgressDomains'), 'spec.allowedEgressDomains', issues);
    if (arr !== undefined && arr.length > 0) spec.allowedEgressDomains = arr;
  }
  return kind === 'GlobalNetworkSet'
    ? { apiVersion: API_VERSION_V3, kind, metadata: meta, spec }
    : { apiVersion: API_VERSION_V3, kind, metadata: meta, spec };
}

// ---------------------------------------------------------------- HostEndpoint

/**
 * libcalico-go's HostEndpoint rules: node required; interfaceName (a Linux interface name, or
 * `*` for all of the host's interfaces) and/or expectedIPs required; profiles are resource
 * names; named ports as a workload's (unique names, TCP/UDP/SCTP, 1–65535).
 */
function hostEndpoint(meta: ObjectMeta, v: unknown, issues: Issues): HostEndpoint | undefined {
  const s = specObject(v, issues, true);
  if (s === undefined) return undefined;
  checkKnownFields(s, ['node', 'interfaceName', 'expectedIPs', 'profiles', 'ports'], 'spec', issues);
  const spec: HostEndpointSpec = {};
  if (!has(s, 'node') || own(s, 'node') === '' || own(s, 'node') === null) {
    issues.add('spec.node', 'is required: no node has been specified');
  } else {
    const n = asResourceName(own(s, 'node'), 'spec.node', issues);
    if (n !== undefined) spec.node = n;
  }
  if (has(s, 'interfaceName') && own(s, 'interfaceName') !== '' && own(s, 'interfaceName') !== null) {
    const n = asString(own(s, 'interfaceName'), 'spec.interfaceName', issues);
    if (n !== undefined) {
      if (n === '*' || INTERFACE_RE.test(n)) spec.interfaceName = n;
      else issues.add('spec.interfaceName', `${quote(n)} must be '*' or 1 to 15 characters of letters, digits, '_', '.' or '-'`);
    }
  }
  if (has(s, 'expectedIPs')) {
    const arr = asStringArray(own(s, 'expectedIPs'), 'spec.expectedIPs', issues);
    const out: string[] = [];
    arr?.forEach((n, i) => {
      const ip = tryParseIP(n);
      if (ip === undefined) issues.add(index('spec.expectedIPs', i), `${quote(n)} is not an IP address`);
      else out.push(formatIP(ip));
    });
    if (out.length > 0) spec.expectedIPs = out;
  }
  if (spec.interfaceName === undefined && spec.expectedIPs === undefined && !issues.list.some((i) => i.path.startsWith('spec.interfaceName') || i.path.startsWith('spec.expectedIPs'))) {
    issues.add('spec.interfaceName', 'no interface or expected IPs have been specified (one of interfaceName, expectedIPs is required)');
  }
  if (has(s, 'profiles')) {
    const arr = asStringArray(own(s, 'profiles'), 'spec.profiles', issues);
    arr?.forEach((p, i) => {
      const prob = dnsSubdomainProblem(p);
      if (prob !== null) issues.add(index('spec.profiles', i), prob);
    });
    if (arr !== undefined && arr.length > 0) spec.profiles = arr;
  }
  if (has(s, 'ports')) {
    const arr = asArray(own(s, 'ports'), 'spec.ports', issues);
    if (arr !== undefined) {
      const ports: HostEndpointPort[] = [];
      const seen = new Set<string>();
      arr.forEach((e, i) => {
        const p = index('spec.ports', i);
        const o = asObject(e, p, issues);
        if (o === undefined) return;
        checkKnownFields(o, ['name', 'protocol', 'port'], p, issues);
        const before = issues.list.length;
        const name = asString(own(o, 'name'), field(p, 'name'), issues);
        if (name !== undefined) {
          const prob = name === '' ? 'is required' : portNameProblem(name);
          if (prob !== null) issues.add(field(p, 'name'), prob);
          else if (seen.has(name)) issues.add(field(p, 'name'), `${quote(name)}: the ports list contains a duplicate named port`);
          seen.add(name);
        }
        const pr = parseProtocol(own(o, 'protocol'));
        if (!has(o, 'protocol')) issues.add(field(p, 'protocol'), 'is required (TCP, UDP or SCTP)');
        else if ('error' in pr) issues.add(field(p, 'protocol'), pr.error);
        else if (!protocolSupportsPorts(pr.value)) issues.add(field(p, 'protocol'), `${pr.value} has no ports; use TCP, UDP or SCTP`);
        const port = asInteger(own(o, 'port'), field(p, 'port'), issues, 1, 65535);
        if (issues.list.length === before && name !== undefined && port !== undefined && !('error' in pr)) {
          ports.push({ name, protocol: pr.value, port });
        }
      });
      if (ports.length > 0) spec.ports = ports;
    }
  }
  return { apiVersion: API_VERSION_V3, kind: 'HostEndpoint', metadata: meta, spec };
}

// ---------------------------------------------------------------- IPReservation

/** Address or CIDR strings → masked CIDRs (bare addresses as host routes), problems by index. */
function cidrList(v: unknown, path: string, issues: Issues, max: number): string[] {
  const arr = asArray(v, path, issues);
  if (arr !== undefined && arr.length > max) issues.add(path, `has ${arr.length} entries, more than ${max}`);
  const out: string[] = [];
  arr?.forEach((n, i) => {
    if (typeof n !== 'string') {
      issues.add(index(path, i), `must be a string, got ${describe(n)}`);
      return;
    }
    const c = tryParseCidrOrIp(n);
    if (c === undefined) issues.add(index(path, i), `${quote(n)} is not an IP address or CIDR`);
    else out.push(formatCidr(maskCidr(c)));
  });
  return out;
}

function ipReservation(meta: ObjectMeta, v: unknown, issues: Issues): IPReservation | undefined {
  const s = specObject(v, issues, false);
  if (s === undefined) return undefined;
  checkKnownFields(s, ['reservedCIDRs'], 'spec', issues);
  const spec: IPReservationSpec = {};
  if (has(s, 'reservedCIDRs')) {
    const out = cidrList(own(s, 'reservedCIDRs'), 'spec.reservedCIDRs', issues, MAX_SET_NETS);
    if (out.length > 0) spec.reservedCIDRs = out;
  }
  return { apiVersion: API_VERSION_V3, kind: 'IPReservation', metadata: meta, spec };
}

// ---------------------------------------------------------------- ClusterInformation

export const CLUSTER_INFORMATION_NAME = 'default';

function clusterInformation(meta: ObjectMeta, v: unknown, issues: Issues): ClusterInformation | undefined {
  const s = specObject(v, issues, false);
  if (s === undefined) return undefined;
  if (meta.name !== CLUSTER_INFORMATION_NAME) issues.add('metadata.name', `must be ${quote(CLUSTER_INFORMATION_NAME)} (there is one ClusterInformation)`);
  checkKnownFields(s, ['clusterGUID', 'clusterType', 'calicoVersion', 'datastoreReady', 'variant'], 'spec', issues);
  const spec: ClusterInformationSpec = {};
  for (const key of ['clusterGUID', 'clusterType', 'calicoVersion', 'variant'] as const) {
    if (!has(s, key)) continue;
    const str = asString(own(s, key), `spec.${key}`, issues);
    if (str !== undefined && str !== '') spec[key] = str;
  }
  if (spec.clusterGUID !== undefined && !/^[0-9a-f]{32}$/.test(spec.clusterGUID)) {
    issues.add('spec.clusterGUID', `${quote(spec.clusterGUID)} must be 32 lower-case hex digits`);
  }
  if (has(s, 'datastoreReady')) {
    const b = asBoolean(own(s, 'datastoreReady'), 'spec.datastoreReady', issues);
    if (b !== undefined) spec.datastoreReady = b;
  }
  return { apiVersion: API_VERSION_V3, kind: 'ClusterInformation', metadata: meta, spec };
}

// ---------------------------------------------------------------- FelixConfiguration

export { FELIX_CONNTRACK_TIMERS, FELIX_ENDPOINT_TO_HOST_ACTIONS, FELIX_LOG_SEVERITIES } from './felix-fields';

function felixConfiguration(meta: ObjectMeta, v: unknown, issues: Issues): FelixConfiguration | undefined {
  const s = specObject(v, issues, false);
  if (s === undefined) return undefined;
  const spec: FelixConfigurationSpec = {};
  for (const key of Object.keys(s)) {
    const val = own(s, key);
    if (val === undefined || val === null) continue;
    const p = `spec.${key}`;
    const f = felixField(key);
    if (f?.kind === 'honoured') {
      const parsed = f.parse(val, p, issues);
      if (parsed !== undefined) setOwn(spec as Record<string, unknown>, key, parsed);
    } else {
      // A Felix field tortie does not honour: kept as written for unenforcedProblems to refuse
      // or warn about (never stored: every write path refuses what it refuses).
      setOwn(spec as Record<string, unknown>, key, structuredClone(val));
    }
  }
  if (spec.interfacePrefix !== undefined && !spec.interfacePrefix.split(',').every((x) => /^[A-Za-z0-9_.-]{1,10}$/.test(x.trim()))) {
    issues.add('spec.interfacePrefix', `${quote(spec.interfacePrefix)} must be interface-name prefixes of 1–10 characters (comma-separated)`);
  }
  return { apiVersion: API_VERSION_V3, kind: 'FelixConfiguration', metadata: meta, spec };
}

// ---------------------------------------------------------------- helpers

function sortKeys(o: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const keys = Object.keys(o);
  if (!isSorted(keys)) keys.sort();
  for (const k of keys) setOwn(out, k, o[k] as string);
  return out;
}

export { MAX_RULES };
