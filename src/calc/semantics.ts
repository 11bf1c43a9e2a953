/**
 * Calico policy semantics shared by the compiler and the reference evaluator: how a rule's
 * entity fields become selectors, which labels an endpoint is matched with, how protocols,
 * ports and ICMP fields read, and the order of tiers and policies.
 *
 * Contract: pure functions over validated src/model resources; unparseable selectors, ports or
 * CIDRs never throw here — a selector that does not parse matches nothing, a port or CIDR that
 * does not parse is ignored (the syncer rejects such resources before they reach the calc graph,
 * so this only keeps hand-built input from crashing the agent).
 *
 * Selector composition follows libcalico-go's getEndpointSelector: for a rule side, the
 * serviceAccounts match (names → `projectcalico.org/serviceaccount in {…}`, selector keys
 * prefixed `pcsa.`) and the selector are ANDed; as soon as any of selector / notSelector /
 * namespaceSelector / serviceAccounts is used, the result is further restricted to the
 * namespaceSelector's namespaces (keys prefixed `pcns.`, all() → any namespace, global() → no
 * namespace) or, in a namespaced NetworkPolicy, to the policy's own namespace. notSelector is
 * used as written.
 */
import {
  namespaceSelectorToEndpointSelector,
  parseSelector,
  prefixLabels,
  selectorFromAst,
  type Selector,
  type SelectorNode,
} from '../selector';
import type {
  EntityRule,
  GlobalNetworkPolicy,
  GlobalNetworkSet,
  ICMPFields,
  Namespace,
  NetworkPolicy,
  NetworkSet,
  Port,
  Profile,
  Protocol,
  Rule,
  ServiceAccountMatch,
  Tier,
  WorkloadEndpoint,
} from '../model';
import { NAMESPACE_PROFILE_PREFIX } from '../model/derived';
import {
  DEFAULT_TIER,
  DEFAULT_TIER_ORDER,
  LABEL_NAME,
  LABEL_NAMESPACE,
  LABEL_ORCHESTRATOR,
  LABEL_SERVICE_ACCOUNT,
  NAMESPACE_LABEL_PREFIX,
  SERVICE_ACCOUNT_LABEL_PREFIX,
  protocolNumberOfName,
  tryParseCidrOrIp4,
  tryParseCidrOrIp6,
  type Cidr6,
  type Cidr4,
} from '../primitives';


// ------------------------------------------------------------------------------ selectors

const MATCH_NOTHING: SelectorNode = { kind: 'not', operand: { kind: 'all' } };

/** Parses selector text; undefined/blank = all(); unparseable = matches nothing. */
export function selectorOf(text: string | undefined): Selector {
  if (text === undefined) return parseSelector('all()');
  try {
    return parseSelector(text);
  } catch {
    return selectorFromAst(MATCH_NOTHING);
  }
}

function and(nodes: SelectorNode[]): SelectorNode {
  return nodes.length === 1 ? nodes[0]! : { kind: 'and', operands: nodes };
}

function serviceAccountNode(sam: ServiceAccountMatch): SelectorNode | undefined {
  const parts: SelectorNode[] = [];
  if (sam.selector !== undefined && sam.selector !== '') {
    parts.push(prefixLabels(selectorOf(sam.selector), SERVICE_ACCOUNT_LABEL_PREFIX).root);
  }
  if (sam.names !== undefined && sam.names.length > 0) {
    parts.push({ kind: 'in', label: LABEL_SERVICE_ACCOUNT, values: [...new Set(sam.names)].sort() });
  }
  return parts.length === 0 ? undefined : and(parts);
}

/**
 * The positive endpoint selector of one rule side (see file header), or undefined when the side
 * has no selector-like field (then it matches any address, subject to nets).
 */
export function entitySelector(er: EntityRule | undefined, policyNamespace: string | undefined): Selector | undefined {
  if (er === undefined) return undefined;
  const hasSel = er.selector !== undefined && er.selector !== '';
  const hasNot = er.notSelector !== undefined && er.notSelector !== '';
  const hasNs = er.namespaceSelector !== undefined && er.namespaceSelector !== '';
  const sa = er.serviceAccounts !== undefined ? serviceAccountNode(er.serviceAccounts) : undefined;
  const parts: SelectorNode[] = [];
  if (sa !== undefined) parts.push(sa);
  if (hasSel) parts.push(selectorOf(er.selector).root);
  let nsNode: SelectorNode | undefined;
  if (hasNs) nsNode = namespaceSelectorToEndpointSelector(selectorOf(er.namespaceSelector)).root;
  else if (policyNamespace !== undefined) nsNode = { kind: 'eq', label: LABEL_NAMESPACE, value: policyNamespace };
  if (nsNode !== undefined && (parts.length > 0 || hasNot || hasNs)) parts.unshift(nsNode);
  if (parts.length === 0) return undefined;
  return canonicalSelector(and(parts));
}

/** The negative selector of a rule side, or undefined. */
export function entityNotSelector(er: EntityRule | undefined): Selector | undefined {
  if (er === undefined || er.notSelector === undefined || er.notSelector === '') return undefined;
  return selectorOf(er.notSelector);
}

function canonicalSelector(node: SelectorNode): Selector {
  const built = selectorFromAst(node);
  try {
    return parseSelector(built.canonical);
  } catch {
    return built;
  }
}

export type AnyPolicy = NetworkPolicy | GlobalNetworkPolicy;

const policySelectorCache = new WeakMap<AnyPolicy, Selector>();

/** The selector of the endpoints a policy applies to (namespace and service accounts folded in). */
export function policyEndpointSelector(p: AnyPolicy): Selector {
  let sel = policySelectorCache.get(p);
  if (sel === undefined) {
    sel = buildPolicySelector(p);
    policySelectorCache.set(p, sel);
  }
  return sel;
}

function buildPolicySelector(p: AnyPolicy): Selector {
  const parts: SelectorNode[] = [];
  if (p.kind === 'NetworkPolicy') {
    parts.push({ kind: 'eq', label: LABEL_NAMESPACE, value: p.metadata.namespace ?? 'default' });
  } else if (p.spec.namespaceSelector !== undefined && p.spec.namespaceSelector !== '') {
    parts.push(namespaceSelectorToEndpointSelector(selectorOf(p.spec.namespaceSelector)).root);
  }
  if (p.spec.serviceAccountSelector !== undefined && p.spec.serviceAccountSelector !== '') {
    parts.push(prefixLabels(selectorOf(p.spec.serviceAccountSelector), SERVICE_ACCOUNT_LABEL_PREFIX).root);
  }
  parts.push(selectorOf(p.spec.selector).root);
  return canonicalSelector(and(parts));
}

// ------------------------------------------------------------------------------ labels

/**
 * The labels Calico matches a workload endpoint with: labels inherited from its profiles'
 * labelsToApply (earlier profiles win), its namespace's labels as `pcns.<key>` plus
 * `pcns.projectcalico.org/name`, then its own labels, then the labels Calico always sets:
 * `projectcalico.org/namespace`, `projectcalico.org/orchestrator` and (with a service account)
 * `projectcalico.org/serviceaccount` and `pcsa.projectcalico.org/name`.
 */
export function effectiveLabels(
  wep: WorkloadEndpoint,
  profileOf: (name: string) => Profile | undefined,
  namespaceOf: (name: string) => Namespace | undefined,
): Record<string, string> {
  // No prototype (label keys are data), created as an ordinary object so V8 keeps it in fast
  // mode: Object.create(null) starts in dictionary mode, ~3× the memory (one per endpoint).
  const out = Object.setPrototypeOf({}, null) as Record<string, string>;
  const profiles = wep.spec.profiles ?? [];
  for (let i = profiles.length - 1; i >= 0; i--) {
    const lta = profileOf(profiles[i]!)?.spec.labelsToApply;
    if (lta !== undefined) for (const [k, v] of Object.entries(lta)) out[k] = v;
  }
  const ns = wep.metadata.namespace ?? 'default';
  const nsLabels = namespaceOf(ns)?.metadata.labels;
  // for-in, not Object.entries: no [k, v] arrays per label of 100,000 endpoints (own enumerable
  // string keys in the same order; label maps inherit nothing enumerable).
  if (nsLabels !== undefined) for (const k in nsLabels) out[NAMESPACE_LABEL_PREFIX + k] = nsLabels[k]!;
  out[NAMESPACE_LABEL_PREFIX + LABEL_NAME] = ns;
  const own = wep.metadata.labels;
  if (own !== undefined) for (const k in own) out[k] = own[k]!;
  out[LABEL_NAMESPACE] = ns;
  if (wep.spec.orchestrator !== undefined) out[LABEL_ORCHESTRATOR] = wep.spec.orchestrator;
  if (wep.spec.serviceAccountName !== undefined && wep.spec.serviceAccountName !== '') {
    out[LABEL_SERVICE_ACCOUNT] = wep.spec.serviceAccountName;
    out[SERVICE_ACCOUNT_LABEL_PREFIX + LABEL_NAME] = wep.spec.serviceAccountName;
  }
  return out;
}

/**
 * The labels Calico matches a network set with. A GlobalNetworkSet: its own labels, nothing
 * else (it is in no namespace, so only `global()` or un-namespaced selectors reach it). A
 * NetworkSet: as an endpoint of its namespace with the `kns.<ns>` profile as parent (libcalico-go
 * gives it that profile and the `projectcalico.org/namespace` label): profile labelsToApply,
 * `pcns.*` namespace labels, its own labels, then `projectcalico.org/namespace`.
 */
export function networkSetLabels(
  set: GlobalNetworkSet | NetworkSet,
  profileOf: (name: string) => Profile | undefined,
  namespaceOf: (name: string) => Namespace | undefined,
): Record<string, string> {
  const out = Object.setPrototypeOf({}, null) as Record<string, string>;
  if (set.kind === 'GlobalNetworkSet') {
    for (const [k, v] of Object.entries(set.metadata.labels ?? {})) out[k] = v;
    return out;
  }
  const ns = set.metadata.namespace ?? 'default';
  const lta = profileOf(NAMESPACE_PROFILE_PREFIX + ns)?.spec.labelsToApply;
  if (lta !== undefined) for (const [k, v] of Object.entries(lta)) out[k] = v;
  const nsLabels = namespaceOf(ns)?.metadata.labels;
  if (nsLabels !== undefined) for (const [k, v] of Object.entries(nsLabels)) out[NAMESPACE_LABEL_PREFIX + k] = v;
  out[NAMESPACE_LABEL_PREFIX + LABEL_NAME] = ns;
  for (const [k, v] of Object.entries(set.metadata.labels ?? {})) out[k] = v;
  out[LABEL_NAMESPACE] = ns;
  return out;
}

// ------------------------------------------------------------------------------ protocols

/** Protocol number of a name (any case) or number; undefined if it is neither. */
export function protocolNumber(p: Protocol | undefined): number | undefined {
  if (p === undefined) return undefined;
  if (typeof p === 'number') return Number.isInteger(p) && p >= 0 && p <= 255 ? p : undefined;
  const named = protocolNumberOfName(p, true);
  if (named !== undefined) return named;
  if (/^[0-9]{1,3}$/.test(p)) {
    const n = Number(p);
    return n <= 255 ? n : undefined;
  }
  return undefined;
}


// ------------------------------------------------------------------------------ ports

/** A sorted list of disjoint inclusive [min, max] ranges within [0, 65535]. */
export type Ranges = [number, number][];

export interface PortSpec {
  ranges: Ranges;
  /** Named ports, sorted, unique. */
  named: string[];
}

/** Numeric ranges and names of a ports list. */
export function parsePorts(ports: Port[] | undefined): PortSpec | undefined {
  if (ports === undefined || ports.length === 0) return undefined;
  const raw: [number, number][] = [];
  const named = new Set<string>();
  for (const p of ports) {
    if (typeof p === 'number') {
      if (Number.isInteger(p) && p >= 0 && p <= 65535) raw.push([p, p]);
      continue;
    }
    const m = /^([0-9]{1,5})(?::([0-9]{1,5}))?$/.exec(p);
    if (m) {
      const a = Number(m[1]);
      const b = m[2] === undefined ? a : Number(m[2]);
      if (a <= b && b <= 65535) raw.push([a, b]);
      continue;
    }
    if (p !== '') named.add(p);
  }
  return { ranges: normaliseRanges(raw), named: [...named].sort() };
}

/** Sorts and merges overlapping or adjacent ranges. */
export function normaliseRanges(raw: [number, number][]): Ranges {
  const sorted = [...raw].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Ranges = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

export function inRanges(r: Ranges, v: number): boolean {
  for (const [a, b] of r) {
    if (v < a) return false;
    if (v <= b) return true;
  }
  return false;
}

/** Destination-port-value ranges an ICMP match covers (type << 8 | code). */
export function icmpRanges(f: ICMPFields): Ranges {
  if (f.type === undefined) return [[0, 65535]];
  if (f.code === undefined) return [[f.type << 8, (f.type << 8) | 255]];
  const v = (f.type << 8) | f.code;
  return [[v, v]];
}

// ------------------------------------------------------------------------------ nets

/** IPv4 CIDRs of a nets list; other families and garbage are left out (`hadOther` says so). */
export function parseNets(nets: string[] | undefined): { v4: Cidr4[]; v6: Cidr6[]; hadOther: boolean } | undefined {
  if (nets === undefined || nets.length === 0) return undefined;
  const v4: Cidr4[] = [];
  const v6: Cidr6[] = [];
  let hadOther = false;
  for (const n of nets) {
    const c = tryParseCidrOrIp4(n);
    if (c !== undefined) {
      v4.push(c);
      continue;
    }
    const c6 = tryParseCidrOrIp6(n);
    if (c6 === undefined) hadOther = true;
    else v6.push(c6);
  }
  return { v4, v6, hadOther };
}

// ------------------------------------------------------------------------------ ordering

export interface TierInfo {
  name: string;
  order: number | undefined;
  defaultAction: 'Deny' | 'Pass';
}

export function tierInfo(name: string, tier: Tier | undefined): TierInfo {
  if (tier === undefined) {
    return { name, order: name === DEFAULT_TIER ? DEFAULT_TIER_ORDER : undefined, defaultAction: 'Deny' };
  }
  return { name, order: tier.spec.order, defaultAction: tier.spec.defaultAction === 'Pass' ? 'Pass' : 'Deny' };
}

function cmpOrder(a: number | undefined, b: number | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareTiers(a: TierInfo, b: TierInfo): number {
  return cmpOrder(a.order, b.order) || cmpStr(a.name, b.name);
}

export function policyTier(p: AnyPolicy): string {
  const t = p.spec.tier;
  return t === undefined || t === '' ? DEFAULT_TIER : t;
}

/** Policies by order (unset = last), then name, then namespace ('' for global policies). */
export function comparePolicies(a: AnyPolicy, b: AnyPolicy): number {
  return (
    cmpOrder(a.spec.order, b.spec.order) ||
    cmpStr(a.metadata.name, b.metadata.name) ||
    cmpStr(a.kind === 'NetworkPolicy' ? (a.metadata.namespace ?? 'default') : '', b.kind === 'NetworkPolicy' ? (b.metadata.namespace ?? 'default') : '')
  );
}

/** Policy types with Calico's defaulting when the model left them out. */
export function policyTypes(p: AnyPolicy): { ingress: boolean; egress: boolean } {
  const t = p.spec.types;
  if (t !== undefined && t.length > 0) return { ingress: t.includes('Ingress'), egress: t.includes('Egress') };
  const hasIngress = (p.spec.ingress?.length ?? 0) > 0;
  const hasEgress = (p.spec.egress?.length ?? 0) > 0;
  return { ingress: hasIngress || !hasEgress, egress: hasEgress };
}

/** doNotTrack and preDNAT policies apply to host endpoints only, never to workload tables. */
export function appliesToWorkloads(p: AnyPolicy): boolean {
  if (p.kind === 'NetworkPolicy') return true;
  return p.spec.doNotTrack !== true && p.spec.preDNAT !== true;
}

export function ruleAction(r: Rule): 'Allow' | 'Deny' | 'Pass' | 'Log' {
  return r.action === 'Deny' || r.action === 'Pass' || r.action === 'Log' ? r.action : 'Allow';
}

export function policyNamespace(p: AnyPolicy): string | undefined {
  return p.kind === 'NetworkPolicy' ? (p.metadata.namespace ?? 'default') : undefined;
}
