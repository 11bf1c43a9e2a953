/**
 * Rule pre-compilation: each policy/profile rule turned once (per resource version) into the
 * parts the compiler needs — protocol/ICMP constraints, the remote side as atoms (selector,
 * notSelector, CIDRs, named ports) and the local side as predicates to resolve per endpoint.
 *
 * Contract: `precompile*` results are cached per resource object (resources are treated as
 * immutable; an update is a new object). `resolveLocal` decides a rule's local side for one
 * endpoint: undefined = the rule can never match there (omitted from its table), otherwise the
 * resolved local port constraints. Rules that can never match (unknown protocol, nets of no
 * family, families that exclude each other) are marked `never`.
 *
 * IPv6 and dual stack: one table serves both families (the class partition holds IPv4 and IPv6
 * prefixes). As Felix renders a rule once per family with that family's CIDRs and drops the
 * version whose nets/notNets list has none of that family (and the version ipVersion excludes),
 * a rule carries the set of families it exists for (`families`, from ipVersion and every
 * nets/notNets list) and, per endpoint, the families its local side allows. When only one family
 * remains and the remote nets do not already imply it, the step match restricts the remote
 * address by the family atom `c:::/0` (IPv6: member; IPv4: not a member).
 */
import { createHash } from 'node:crypto';
import type { EntityRule, Profile, Rule, WorkloadEndpoint } from '../model';
import type { Selector } from '../selector';
import { ALL6, cidr4Contains, cidr4Covers, cidr6Contains, cidr6Covers, formatCidr4, formatCidr6, isCidr6, type AnyCidr } from '../primitives';
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
  nets?: AnyCidr[];
  notNets?: AnyCidr[];
  ports?: PortSpec;
  notPorts?: PortSpec;
}

export interface PreRule {
  index: number;
  action: 'allow' | 'deny' | 'pass' | 'log';
  ruleKey: string;
  info: Omit<RuleInfo, 'id'>;
  never: boolean;
  /** The families the rule exists for (Felix's per-family rendering): 4, 6 or both. */
  families: Fam;
  protocol?: number;
  notProtocol?: number;
  icmp?: Ranges;
  notIcmp?: Ranges;
  local: SideParts;
  remote: SideParts;
}

export interface PreCompiled {
  /**
   * Content hash per direction of the resource's fields that the direction's rules depend on
   * (identity, tier, that direction's rules): an edit of the ingress rules leaves the egress hash,
   * so the endpoints' egress tables keep their definitions (no rebuild, no new table).
   */
  hash: Record<Direction, string>;
  ingress: PreRule[];
  egress: PreRule[];
}

const cache = new WeakMap<object, PreCompiled>();

/** A set of address families as bits: 1 = IPv4, 2 = IPv6. */
export type Fam = 0 | 1 | 2 | 3;
export const FAM4: Fam = 1;
export const FAM6: Fam = 2;
export const FAM_BOTH: Fam = 3;

/** Families a nets/notNets list has CIDRs of. */
function famOf(list: readonly AnyCidr[]): Fam {
  let f = 0;
  for (const c of list) f |= isCidr6(c) ? FAM6 : FAM4;
  return f as Fam;
}

function sideParts(er: EntityRule | undefined, ns: string | undefined): { parts: SideParts; never: boolean; fams: Fam } {
  const parts: SideParts = {};
  let never = false;
  let fams: Fam = FAM_BOTH;
  if (er === undefined) return { parts, never, fams };
  const sel = entitySelector(er, ns);
  if (sel !== undefined) parts.sel = sel;
  const notSel = entityNotSelector(er);
  if (notSel !== undefined) parts.notSel = notSel;
  const nets = parseNets(er.nets);
  if (nets !== undefined) {
    parts.nets = [...nets.v4, ...nets.v6];
    fams = (fams & famOf(parts.nets)) as Fam;
    if (parts.nets.length === 0) never = true;
  }
  const notNets = parseNets(er.notNets);
  if (notNets !== undefined && notNets.v4.length + notNets.v6.length > 0) {
    parts.notNets = [...notNets.v4, ...notNets.v6];
    fams = (fams & famOf(parts.notNets)) as Fam;
  }
  const ports = parsePorts(er.ports);
  if (ports !== undefined) parts.ports = ports;
  const notPorts = parsePorts(er.notPorts);
  if (notPorts !== undefined) parts.notPorts = notPorts;
  return { parts, never, fams };
}

function preRule(r: Rule, index: number, dir: Direction, ns: string | undefined, info: Omit<RuleInfo, 'id'>, ruleKey: string): PreRule {
  const action = ruleAction(r);
  const out: PreRule = {
    index,
    action: action === 'Allow' ? 'allow' : action === 'Deny' ? 'deny' : action === 'Pass' ? 'pass' : 'log',
    ruleKey,
    info,
    never: false,
    families: r.ipVersion === 4 ? FAM4 : r.ipVersion === 6 ? FAM6 : FAM_BOTH,
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
  out.families = (out.families & local.fams & remote.fams) as Fam;
  if (local.never || remote.never || out.families === 0) out.never = true;
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
    hash: {
      ingress: hashOf([p.kind, ns, p.metadata.name, tier, 'ingress', p.spec.ingress ?? []]),
      egress: hashOf([p.kind, ns, p.metadata.name, tier, 'egress', p.spec.egress ?? []]),
    },
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
    hash: {
      ingress: hashOf(['Profile', p.metadata.name, 'ingress', p.spec.ingress ?? []]),
      egress: hashOf(['Profile', p.metadata.name, 'egress', p.spec.egress ?? []]),
    },
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
  /** The endpoint's first IPv6 address (a workload's), if any. */
  ip6?: bigint;
  /**
   * A host endpoint: its local address varies (any of the node's, or a workload's or another
   * host's when forwarded), so local-side nets/notNets are resolved for one region of the local
   * address space at a time (`localNet`, a net no rule's net cuts: each rule's net either covers
   * it or is disjoint from it or inside it) — the datapath picks the region per packet.
   */
  host?: boolean;
  localNet?: AnyCidr;
  ports: { name: string; protocol: number; port: number }[];
}

export interface LocalResolution {
  /** Only packets of this family can match here (the rule's families and the local side's). */
  family?: 4 | 6;
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
  let hostFamily: Fam | undefined;
  if (view.host) {
    // The region is the longest net holding the address: a net matches iff it covers the region.
    // A region is of one family (its packets' local address is), so a rule of the other family
    // only — by ipVersion or by nets/notNets of that family only — never matches there, and the
    // other family's nets of a rule hold none of its addresses (Felix renders a rule per family).
    // Without regions (no rule of the stage has local-side nets) one table serves both families:
    // a rule of one family is restricted to it on the remote side below.
    const at = view.localNet;
    if (at !== undefined) {
      const fam: Fam = isCidr6(at) ? FAM6 : FAM4;
      if ((r.families & fam) === 0) return undefined;
      const covers = (c: AnyCidr): boolean => (isCidr6(c) ? isCidr6(at) && cidr6Covers(c, at) : !isCidr6(at) && cidr4Covers(c, at));
      const netsF = l.nets?.filter((c) => isCidr6(c) === (fam === FAM6));
      const notNetsF = l.notNets?.filter((c) => isCidr6(c) === (fam === FAM6));
      if (netsF !== undefined && !netsF.some(covers)) return undefined;
      if (notNetsF !== undefined && notNetsF.some(covers)) return undefined;
      hostFamily = fam;
    } else if (l.nets !== undefined) {
      return undefined;
    }
  }
  // Per family: the local side's nets/notNets against the endpoint's address of that family. An
  // endpoint without an address of a family never has that family's packets judged as its own
  // (no route leads to it, anti-spoofing stops it sending them): no constraint for that family.
  const has4 = view.ip !== undefined;
  const has6 = view.ip6 !== undefined;
  const inList = (list: readonly AnyCidr[], f: Fam): boolean => list.some((c) => (isCidr6(c)
    ? f === FAM6 && cidr6Contains(c, view.ip6!) : f === FAM4 && cidr4Contains(c, view.ip!)));
  const ok = (f: Fam): boolean => {
    if (!(f === FAM4 ? has4 : has6)) return true;
    if (l.nets !== undefined && !inList(l.nets, f)) return false;
    if (l.notNets !== undefined && inList(l.notNets, f)) return false;
    return true;
  };
  let fams = r.families;
  if (!ok(FAM4)) fams = (fams & ~FAM4) as Fam;
  if (!ok(FAM6)) fams = (fams & ~FAM6) as Fam;
  if (fams === 0) return undefined;
  if (!view.host && l.nets !== undefined && !has4 && !has6) return undefined;
  const res: LocalResolution = {};
  // One family left: say so when it matters — the endpoint has an address of the other family
  // (a host endpoint outside regions: any) and the remote nets (if any) do not already hold only
  // addresses of this one. In a host endpoint's region the local address decides the family.
  if (fams !== FAM_BOTH && hostFamily === undefined && (view.host || (fams === FAM4 ? has6 : has4))) {
    const rn = r.remote.nets;
    if (rn === undefined || (famOf(rn) & ~fams) !== 0) res.family = fams === FAM4 ? 4 : 6;
  }
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

export function cidrAtomId(c: AnyCidr): string {
  return isCidr6(c) ? `c:${formatCidr6(c)}` : `c:${formatCidr4(c)}`;
}

/** The family atom: member = an IPv6 address. */
export const FAMILY6_ATOM = cidrAtomId(ALL6);

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
  const fam = loc.family;
  const nets = fam === undefined ? rem.nets : rem.nets?.filter((c) => isCidr6(c) === (fam === 6));
  if (nets !== undefined) m.nets = [...new Set(nets.map(cidrAtomId))].sort();
  if (rem.notNets !== undefined) m.notNets = [...new Set(rem.notNets.map(cidrAtomId))].sort();
  if (fam !== undefined && rem.nets === undefined) {
    if (fam === 6) m.nets = [FAMILY6_ATOM];
    else m.notNets = [...new Set([...(m.notNets ?? []), FAMILY6_ATOM])].sort();
  }
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
export function remoteAtomNeeds(r: PreRule): { sels: Selector[]; cidrs: AnyCidr[]; named: { sel: Selector; name: string }[] } {
  const rem = r.remote;
  const sels: Selector[] = [];
  if (rem.sel) sels.push(rem.sel);
  if (rem.notSel) sels.push(rem.notSel);
  const cidrs: AnyCidr[] = [...(rem.nets ?? []), ...(rem.notNets ?? [])];
  // The family atom, for step matches restricted to one family (resolveLocal's `family`) whose
  // remote nets do not imply it: a rule of one family, or one whose local side may leave one.
  const implied = rem.nets !== undefined && famOf(rem.nets) !== FAM_BOTH;
  const mayRestrict = r.families !== FAM_BOTH || r.local.nets !== undefined || r.local.notNets !== undefined;
  if (!implied && mayRestrict) cidrs.push(ALL6);
  const named: { sel: Selector; name: string }[] = [];
  const npSel = rem.sel ?? ALL_SELECTOR();
  for (const spec of [rem.ports, rem.notPorts]) for (const n of spec?.named ?? []) named.push({ sel: npSel, name: n });
  return { sels, cidrs, named };
}

export type { WorkloadEndpoint };
