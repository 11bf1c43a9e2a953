/**
 * Rule pre-compilation: each policy/profile rule turned once (per resource version) into the
 * parts the compiler needs — protocol/ICMP constraints, the remote side as atoms (selector,
 * notSelector, CIDRs, named ports) and the local side as predicates to resolve per endpoint.
 *
 * Contract: `precompile*` results are cached per resource object (resources are treated as
 * immutable; an update is a new object). `resolveLocal` decides a rule's local side for one
 * endpoint: undefined = the rule can never match there (omitted from its table), otherwise the
 * resolved local port constraints. Rules that can never match an IPv4 packet (ipVersion 6,
 * unknown protocol, IPv6-only nets) are marked `never`.
 */
import { createHash } from 'node:crypto';
import type { EntityRule, Profile, Rule, WorkloadEndpoint } from '../model';
import type { Selector } from '../selector';
import { cidr4Contains, cidr4Covers, formatCidr4, type Cidr4 } from '../primitives';
import {
  entityNotSelector,
  entitySelector,
  icmpRanges,
  parseNets,
  parsePorts,
  policyNamespace,
  policyTier,
  protocolNumber,
  ruleAction,
  selectorOf,
  type AnyPolicy,
  type PortSpec,
  type Ranges,
} from './semantics';
import type { PortMatchDef, StepMatch } from './table';
import type { Direction, PolicyKind, RuleInfo } from './types';

export interface SideParts {
  sel?: Selector;
  notSel?: Selector;
  nets?: Cidr4[];
  notNets?: Cidr4[];
  ports?: PortSpec;
  notPorts?: PortSpec;
}

export interface PreRule {
  index: number;
  action: 'allow' | 'deny' | 'pass' | 'log';
  ruleKey: string;
  info: Omit<RuleInfo, 'id'>;
  never: boolean;
  protocol?: number;
  notProtocol?: number;
  icmp?: Ranges;
  notIcmp?: Ranges;
  local: SideParts;
  remote: SideParts;
}

export interface PreCompiled {
  /** Content hash of the resource's policy-relevant fields. */
  hash: string;
  ingress: PreRule[];
  egress: PreRule[];
}

const cache = new WeakMap<object, PreCompiled>();

function sideParts(er: EntityRule | undefined, ns: string | undefined): { parts: SideParts; never: boolean } {
  const parts: SideParts = {};
  let never = false;
  if (er === undefined) return { parts, never };
  const sel = entitySelector(er, ns);
  if (sel !== undefined) parts.sel = sel;
  const notSel = entityNotSelector(er);
  if (notSel !== undefined) parts.notSel = notSel;
  const nets = parseNets(er.nets);
  if (nets !== undefined) {
    if (nets.v4.length === 0) never = true;
    parts.nets = nets.v4;
  }
  const notNets = parseNets(er.notNets);
  if (notNets !== undefined && notNets.v4.length > 0) parts.notNets = notNets.v4;
  const ports = parsePorts(er.ports);
  if (ports !== undefined) parts.ports = ports;
  const notPorts = parsePorts(er.notPorts);
  if (notPorts !== undefined) parts.notPorts = notPorts;
  return { parts, never };
}

function preRule(r: Rule, index: number, dir: Direction, ns: string | undefined, info: Omit<RuleInfo, 'id'>, ruleKey: string): PreRule {
  const action = ruleAction(r);
  const out: PreRule = {
    index,
    action: action === 'Allow' ? 'allow' : action === 'Deny' ? 'deny' : action === 'Pass' ? 'pass' : 'log',
    ruleKey,
    info,
    never: r.ipVersion === 6,
    local: {},
    remote: {},
  };
  if (r.protocol !== undefined) {
    const p = protocolNumber(r.protocol);
    if (p === undefined) out.never = true;
    else out.protocol = p;
  }
  if (r.notProtocol !== undefined) {
    const p = protocolNumber(r.notProtocol);
    if (p !== undefined) out.notProtocol = p;
  }
  if (r.icmp !== undefined) out.icmp = icmpRanges(r.icmp);
  if (r.notICMP !== undefined) out.notIcmp = icmpRanges(r.notICMP);
  const ingress = dir === 'ingress';
  const local = sideParts(ingress ? r.destination : r.source, ns);
  const remote = sideParts(ingress ? r.source : r.destination, ns);
  out.local = local.parts;
  out.remote = remote.parts;
  if (local.never || remote.never) out.never = true;
  return out;
}

function ruleKeyOf(info: Omit<RuleInfo, 'id'>): string {
  const p = info.policy;
  return `r|${info.direction}|${info.tier ?? ''}|${p?.kind ?? ''}|${p?.namespace ?? ''}/${p?.name ?? ''}|${info.index ?? ''}`;
}

export function endOfTierKey(dir: Direction, tier: string): string {
  return `t|${dir}|${tier}`;
}

export function finalKey(dir: Direction): string {
  return `n|${dir}`;
}

function hashOf(v: unknown): string {
  return createHash('sha1').update(JSON.stringify(v)).digest('hex');
}

export function precompilePolicy(p: AnyPolicy): PreCompiled {
  const hit = cache.get(p);
  if (hit !== undefined) return hit;
  const ns = policyNamespace(p);
  const tier = policyTier(p);
  const policy =
    p.kind === 'NetworkPolicy'
      ? { kind: 'NetworkPolicy' as PolicyKind, namespace: ns, name: p.metadata.name }
      : { kind: 'GlobalNetworkPolicy' as PolicyKind, name: p.metadata.name };
  const build = (dir: Direction): PreRule[] =>
    ((dir === 'ingress' ? p.spec.ingress : p.spec.egress) ?? []).map((r, i) => {
      const info: Omit<RuleInfo, 'id'> = { kind: 'rule', direction: dir, tier, policy, index: i, action: ruleAction(r) };
      return preRule(r, i, dir, ns, info, ruleKeyOf(info));
    });
  const out: PreCompiled = {
    hash: hashOf([p.kind, ns, p.metadata.name, tier, p.spec.ingress ?? [], p.spec.egress ?? []]),
    ingress: build('ingress'),
    egress: build('egress'),
  };
  cache.set(p, out);
  return out;
}

export function precompileProfile(p: Profile): PreCompiled {
  const hit = cache.get(p);
  if (hit !== undefined) return hit;
  const build = (dir: Direction): PreRule[] =>
    ((dir === 'ingress' ? p.spec.ingress : p.spec.egress) ?? []).map((r, i) => {
      const info: Omit<RuleInfo, 'id'> = {
        kind: 'rule',
        direction: dir,
        policy: { kind: 'Profile', name: p.metadata.name },
        index: i,
        action: ruleAction(r),
      };
      return preRule(r, i, dir, undefined, info, ruleKeyOf(info));
    });
  const out: PreCompiled = {
    hash: hashOf(['Profile', p.metadata.name, p.spec.ingress ?? [], p.spec.egress ?? []]),
    ingress: build('ingress'),
    egress: build('egress'),
  };
  cache.set(p, out);
  return out;
}

// ------------------------------------------------------------------------------ local side

/** What the calc graph knows about a local endpoint for resolving rules' local side. */
export interface LocalView {
  labels: Record<string, string>;
  ip: number | undefined;
  /**
   * A host endpoint: its local address varies (any of the node's, or a workload's or another
   * host's when forwarded), so local-side nets/notNets are resolved for one region of the local
   * address space at a time (`localNet`, a net no rule's net cuts: each rule's net either covers
   * it or is disjoint from it or inside it) — the datapath picks the region per packet.
   */
  host?: boolean;
  localNet?: Cidr4;
  ports: { name: string; protocol: number; port: number }[];
}

export interface LocalResolution {
  src?: PortMatchDef;
  srcNot?: PortMatchDef;
  dst?: PortMatchDef;
  dstNot?: PortMatchDef;
}

function localPorts(spec: PortSpec, view: LocalView): PortMatchDef {
  const out: PortMatchDef = { ranges: spec.ranges };
  if (spec.named.length > 0) {
    const byProto: Record<string, [number, number][]> = {};
    for (const name of spec.named) {
      for (const p of view.ports) {
        if (p.name !== name) continue;
        (byProto[String(p.protocol)] ??= []).push([p.port, p.port]);
      }
    }
    for (const k of Object.keys(byProto)) byProto[k] = byProto[k]!.sort((a, b) => a[0] - b[0]);
    out.byProto = byProto;
  }
  return out;
}

/** Resolves a rule's local side for one endpoint; undefined = never matches there. */
export function resolveLocal(r: PreRule, dir: Direction, view: LocalView): LocalResolution | undefined {
  if (r.never) return undefined;
  const l = r.local;
  if (l.sel !== undefined && !l.sel.evaluate(view.labels)) return undefined;
  if (l.notSel !== undefined && l.notSel.evaluate(view.labels)) return undefined;
  if (view.host) {
    // The region is the longest net holding the address: a net matches iff it covers the region.
    const at = view.localNet;
    if (l.nets !== undefined && (at === undefined || !l.nets.some((c) => cidr4Covers(c, at)))) return undefined;
    if (l.notNets !== undefined && at !== undefined && l.notNets.some((c) => cidr4Covers(c, at))) return undefined;
  } else {
    if (l.nets !== undefined && (view.ip === undefined || !l.nets.some((c) => cidr4Contains(c, view.ip!)))) return undefined;
    if (l.notNets !== undefined && view.ip !== undefined && l.notNets.some((c) => cidr4Contains(c, view.ip!))) return undefined;
  }
  const res: LocalResolution = {};
  const ports = l.ports !== undefined ? localPorts(l.ports, view) : undefined;
  const notPorts = l.notPorts !== undefined ? localPorts(l.notPorts, view) : undefined;
  if (dir === 'ingress') {
    if (ports) res.dst = ports;
    if (notPorts) res.dstNot = notPorts;
  } else {
    if (ports) res.src = ports;
    if (notPorts) res.srcNot = notPorts;
  }
  return res;
}

// ------------------------------------------------------------------------------ atoms

export function selAtomId(sel: Selector): string {
  return sel.uniqueId;
}

export function cidrAtomId(c: Cidr4): string {
  return `c:${formatCidr4(c)}`;
}

export function npAtomId(selId: string, name: string): string {
  return `n:${selId}:${name}`;
}

export const ALL_SELECTOR = (): Selector => selectorOf('all()');

/** The step match of a rule given its local resolution (remote side as atom ids). */
export function stepMatch(r: PreRule, dir: Direction, loc: LocalResolution): StepMatch {
  const m: StepMatch = {};
  if (r.protocol !== undefined) m.protocol = r.protocol;
  if (r.notProtocol !== undefined) m.notProtocol = r.notProtocol;
  if (r.icmp !== undefined) m.icmp = r.icmp;
  if (r.notIcmp !== undefined) m.notIcmp = r.notIcmp;
  const rem = r.remote;
  if (rem.sel !== undefined) m.sel = selAtomId(rem.sel);
  if (rem.notSel !== undefined) m.notSel = selAtomId(rem.notSel);
  if (rem.nets !== undefined) m.nets = [...new Set(rem.nets.map(cidrAtomId))].sort();
  if (rem.notNets !== undefined) m.notNets = [...new Set(rem.notNets.map(cidrAtomId))].sort();
  const npSel = selAtomId(rem.sel ?? ALL_SELECTOR());
  const remotePorts = (spec: PortSpec): PortMatchDef => {
    const pm: PortMatchDef = { ranges: spec.ranges };
    if (spec.named.length > 0) pm.np = spec.named.map((n) => npAtomId(npSel, n));
    return pm;
  };
  const rp = rem.ports !== undefined ? remotePorts(rem.ports) : undefined;
  const rnp = rem.notPorts !== undefined ? remotePorts(rem.notPorts) : undefined;
  if (dir === 'ingress') {
    if (rp) m.src = rp;
    if (rnp) m.srcNot = rnp;
    if (loc.dst) m.dst = loc.dst;
    if (loc.dstNot) m.dstNot = loc.dstNot;
  } else {
    if (rp) m.dst = rp;
    if (rnp) m.dstNot = rnp;
    if (loc.src) m.src = loc.src;
    if (loc.srcNot) m.srcNot = loc.srcNot;
  }
  return m;
}

/** Atoms a pre-rule's remote side needs: selectors (with their all() for named ports), CIDRs. */
export function remoteAtomNeeds(r: PreRule): { sels: Selector[]; cidrs: Cidr4[]; named: { sel: Selector; name: string }[] } {
  const rem = r.remote;
  const sels: Selector[] = [];
  if (rem.sel) sels.push(rem.sel);
  if (rem.notSel) sels.push(rem.notSel);
  const cidrs = [...(rem.nets ?? []), ...(rem.notNets ?? [])];
  const named: { sel: Selector; name: string }[] = [];
  const npSel = rem.sel ?? ALL_SELECTOR();
  for (const spec of [rem.ports, rem.notPorts]) for (const n of spec?.named ?? []) named.push({ sel: npSel, name: n });
  return { sels, cidrs, named };
}

export type { WorkloadEndpoint };
