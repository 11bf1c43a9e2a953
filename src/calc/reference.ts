/**
 * Reference evaluator: the verdict of Calico's policy model for one packet, computed straight
 * from the resources (no classes, no tables). It is deliberately simple and slow (it scans every
 * endpoint for the remote address); its only job is to be obviously right so the compiler can be
 * checked against it.
 *
 * Contract: `evaluate(packet, state)` returns the verdict and the rule that decided it, plus the
 * Log rules matched before, in order. Semantics (the compiler must agree):
 *   - policies that apply to the endpoint in the direction (selector matches its effective
 *     labels, `types` includes the direction, not doNotTrack/preDNAT) are grouped by tier; tiers
 *     by order (unset last) then name, policies by order (unset last) then name;
 *   - within a policy, rules in order: Allow/Deny decide, Log records and continues, Pass skips
 *     the rest of the tier; a tier in which a policy applied and nothing decided or passed ends
 *     with its defaultAction (Deny decides, Pass continues);
 *   - then the endpoint's profiles in order (Pass skips to the next profile), then deny;
 *   - a rule side's selector matches if some endpoint owning the remote address, or some
 *     network set with a CIDR containing it, matches it, notSelector if none does; nets/notNets test the address; ports/notPorts test the side's
 *     port (numbers, ranges, named ports of the local endpoint or of a remote endpoint owning
 *     the address and matching the side's selector) and only match port-carrying protocols;
 *     icmp/notICMP only match ICMP; the local side is tested against the local endpoint and its
 *     address (`packet.localIP`, default its first address of the packet's family); a rule exists
 *     for the families its ipVersion allows, and nets/notNets holding no CIDR of the packet's
 *     family mean the rule has no version of that family (Felix renders a rule per family).
 *     Addresses are IPv4 (`number`, u32) or IPv6 (`bigint`, 128 bits).
 */
import type { EntityRule, Rule, WorkloadEndpoint } from '../model';
import { BadPacketError, UnknownEndpointError } from './errors';
import { cidr4Contains, cidr6Contains, isIcmpProtocol, isPortProtocol, tryParseCidrOrIp4, tryParseCidrOrIp6, tryIpv4ToU32 } from '../primitives';
import {
  appliesToWorkloads,
  comparePolicies,
  compareTiers,
  effectiveLabels,
  entityNotSelector,
  networkSetLabels,
  entitySelector,
  icmpRanges,
  inRanges,
  parseNets,
  parsePorts,
  policyEndpointSelector,
  policyNamespace,
  policyTier,
  policyTypes,
  protocolNumber,
  ruleAction,
  selectorOf,
  tierInfo,
  type AnyPolicy,
} from './semantics';
import type { ResourceState } from './store';
import type { Direction, EvalResult, PolicyPacket, RuleInfo } from './types';

type Decider = Omit<RuleInfo, 'id'>;

interface Ctx {
  state: ResourceState;
  dir: Direction;
  local: WorkloadEndpoint;
  localLabels: Record<string, string>;
  localIP: Addr | undefined;
  remoteIP: Addr;
  /** Endpoints owning the remote address and network sets containing it, with their labels. */
  remotes: { wep?: WorkloadEndpoint; labels: Record<string, string> }[];
  protocol: number;
  srcPort: number;
  dstPort: number;
}

function labelsOf(state: ResourceState, wep: WorkloadEndpoint): Record<string, string> {
  return effectiveLabels(
    wep,
    (n) => state.profile(n),
    (n) => state.namespaces.get(n),
  );
}

/** An address of either family: IPv4 as a u32 number, IPv6 as a 128-bit bigint. */
type Addr = number | bigint;

function parseAddr(text: string): Addr | undefined {
  const v4 = tryIpv4ToU32(text);
  if (v4 !== undefined) return v4;
  const v6 = tryParseCidrOrIp6(text);
  return v6 !== undefined && v6.len === 128 && !text.includes('/') ? v6.addr6 : undefined;
}

function firstOfFamily(wep: WorkloadEndpoint, v6: boolean): Addr | undefined {
  for (const n of wep.spec.ipNetworks ?? []) {
    const c = v6 ? tryParseCidrOrIp6(n)?.addr6 : tryParseCidrOrIp4(n)?.addr;
    if (c !== undefined) return c;
  }
  return undefined;
}

function ownsAddress(wep: WorkloadEndpoint, ip: Addr): boolean {
  for (const n of wep.spec.ipNetworks ?? []) {
    if (typeof ip === 'bigint') {
      const c = tryParseCidrOrIp6(n);
      if (c !== undefined && cidr6Contains(c, ip)) return true;
    } else {
      const c = tryParseCidrOrIp4(n);
      if (c !== undefined && cidr4Contains(c, ip)) return true;
    }
  }
  return false;
}

function checkPort(name: string, v: unknown, max: number): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new BadPacketError(name, v, `is not an integer in [0, ${max}]`);
  }
  return v;
}

/** Evaluates Calico policy for one packet; see the file header for the semantics. */
export function evaluate(packet: PolicyPacket, state: ResourceState): EvalResult {
  const local = state.endpoints.get(packet.endpoint);
  if (local === undefined) throw new UnknownEndpointError(packet.endpoint);
  if (packet.direction !== 'ingress' && packet.direction !== 'egress') {
    throw new BadPacketError('direction', packet.direction, 'is not "ingress" or "egress"');
  }
  const remoteIP = parseAddr(packet.remoteIP);
  if (remoteIP === undefined) throw new BadPacketError('remoteIP', packet.remoteIP, 'is not an IPv4 or IPv6 address');
  const v6 = typeof remoteIP === 'bigint';
  let localIP = firstOfFamily(local, v6);
  if (packet.localIP !== undefined) {
    localIP = parseAddr(packet.localIP);
    if (localIP === undefined || typeof localIP !== typeof remoteIP) {
      throw new BadPacketError('localIP', packet.localIP, `is not an ${v6 ? 'IPv6' : 'IPv4'} address (the remote address's family)`);
    }
  }
  const protocol = checkPort('protocol', packet.protocol, 255);
  let srcPort = 0;
  let dstPort = 0;
  if (isPortProtocol(protocol)) {
    srcPort = checkPort('srcPort', packet.srcPort, 65535);
    dstPort = checkPort('dstPort', packet.dstPort, 65535);
  } else if (isIcmpProtocol(protocol)) {
    dstPort = (checkPort('icmpType', packet.icmpType, 255) << 8) | checkPort('icmpCode', packet.icmpCode, 255);
  }
  const remotes: Ctx['remotes'] = [];
  for (const wep of state.endpoints.values()) {
    if (ownsAddress(wep, remoteIP)) remotes.push({ wep, labels: labelsOf(state, wep) });
  }
  for (const set of [...state.globalNetworkSets.values(), ...state.networkSets.values()]) {
    if (netsMatch(set.spec.nets, remoteIP, false, v6) && (set.spec.nets?.length ?? 0) > 0) {
      remotes.push({ labels: networkSetLabels(set, (n) => state.profile(n), (n) => state.namespaces.get(n)) });
    }
  }
  const ctx: Ctx = {
    state,
    dir: packet.direction,
    local,
    localLabels: labelsOf(state, local),
    localIP,
    remoteIP,
    remotes,
    protocol,
    srcPort,
    dstPort,
  };
  return decide(ctx);
}

function decide(ctx: Ctx): EvalResult {
  const { state, dir } = ctx;
  const logs: Decider[] = [];
  const byTier = new Map<string, AnyPolicy[]>();
  for (const p of state.policies.values()) {
    if (!appliesToWorkloads(p)) continue;
    if (!policyTypes(p)[dir]) continue;
    if (!policyEndpointSelector(p).evaluate(ctx.localLabels)) continue;
    const t = policyTier(p);
    let list = byTier.get(t);
    if (list === undefined) byTier.set(t, (list = []));
    list.push(p);
  }
  const tiers = [...byTier.keys()].map((n) => tierInfo(n, state.tiers.get(n))).sort(compareTiers);
  for (const tier of tiers) {
    const policies = byTier.get(tier.name)!.sort(comparePolicies);
    let passed = false;
    for (const p of policies) {
      const rules = (dir === 'ingress' ? p.spec.ingress : p.spec.egress) ?? [];
      const pol = policyRef(p);
      for (let i = 0; i < rules.length && !passed; i++) {
        const r = rules[i]!;
        if (!matchRule(ctx, r, policyNamespace(p))) continue;
        const action = ruleAction(r);
        const who: Decider = { kind: 'rule', direction: dir, tier: tier.name, policy: pol, index: i, action };
        if (action === 'Allow' || action === 'Deny') return { action: action === 'Allow' ? 'allow' : 'deny', decidedBy: who, logs };
        if (action === 'Log') logs.push(who);
        else passed = true;
      }
      if (passed) break;
    }
    if (!passed && tier.defaultAction === 'Deny') {
      return { action: 'deny', decidedBy: { kind: 'end-of-tier', direction: dir, tier: tier.name, action: 'Deny' }, logs };
    }
  }
  for (const name of ctx.local.spec.profiles ?? []) {
    const prof = state.profile(name);
    if (prof === undefined) continue;
    const rules = (dir === 'ingress' ? prof.spec.ingress : prof.spec.egress) ?? [];
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!matchRule(ctx, r, undefined)) continue;
      const action = ruleAction(r);
      const who: Decider = { kind: 'rule', direction: dir, policy: { kind: 'Profile', name }, index: i, action };
      if (action === 'Allow' || action === 'Deny') return { action: action === 'Allow' ? 'allow' : 'deny', decidedBy: who, logs };
      if (action === 'Log') logs.push(who);
      else break;
    }
  }
  return { action: 'deny', decidedBy: { kind: 'no-profile-match', direction: dir, action: 'Deny' }, logs };
}

function policyRef(p: AnyPolicy): NonNullable<RuleInfo['policy']> {
  return p.kind === 'NetworkPolicy'
    ? { kind: 'NetworkPolicy', namespace: p.metadata.namespace ?? 'default', name: p.metadata.name }
    : { kind: 'GlobalNetworkPolicy', name: p.metadata.name };
}

function matchRule(ctx: Ctx, r: Rule, ns: string | undefined): boolean {
  if (r.ipVersion !== undefined && r.ipVersion !== (typeof ctx.remoteIP === 'bigint' ? 6 : 4)) return false;
  const proto = ctx.protocol;
  if (r.protocol !== undefined) {
    const p = protocolNumber(r.protocol);
    if (p === undefined || p !== proto) return false;
  }
  if (r.notProtocol !== undefined && protocolNumber(r.notProtocol) === proto) return false;
  if (r.icmp !== undefined) {
    if (!isIcmpProtocol(proto) || !inRanges(icmpRanges(r.icmp), ctx.dstPort)) return false;
  }
  if (r.notICMP !== undefined) {
    if (!isIcmpProtocol(proto) || inRanges(icmpRanges(r.notICMP), ctx.dstPort)) return false;
  }
  const ingress = ctx.dir === 'ingress';
  const localEr = ingress ? r.destination : r.source;
  const remoteEr = ingress ? r.source : r.destination;
  const localPort = ingress ? ctx.dstPort : ctx.srcPort;
  const remotePort = ingress ? ctx.srcPort : ctx.dstPort;
  return matchLocal(ctx, localEr, ns, localPort) && matchRemote(ctx, remoteEr, ns, remotePort);
}

function netsMatch(nets: string[] | undefined, ip: Addr | undefined, negated: boolean, v6: boolean): boolean {
  const parsed = parseNets(nets);
  if (parsed === undefined) return true;
  // Felix renders a rule per family with that family's nets: none of the packet's family means
  // the rule has no version of that family, for nets and notNets alike.
  if ((v6 ? parsed.v6 : parsed.v4).length === 0) return false;
  const hit =
    ip !== undefined &&
    (typeof ip === 'bigint' ? parsed.v6.some((c) => cidr6Contains(c, ip)) : parsed.v4.some((c) => cidr4Contains(c, ip)));
  return negated ? !hit : hit;
}

function hasPortMatch(er: EntityRule | undefined): boolean {
  return (er?.ports?.length ?? 0) > 0 || (er?.notPorts?.length ?? 0) > 0;
}

function matchLocal(ctx: Ctx, er: EntityRule | undefined, ns: string | undefined, port: number): boolean {
  if (er === undefined) return true;
  const sel = entitySelector(er, ns);
  if (sel !== undefined && !sel.evaluate(ctx.localLabels)) return false;
  const notSel = entityNotSelector(er);
  if (notSel !== undefined && notSel.evaluate(ctx.localLabels)) return false;
  const v6 = typeof ctx.remoteIP === 'bigint';
  if (!netsMatch(er.nets, ctx.localIP, false, v6) || !netsMatch(er.notNets, ctx.localIP, true, v6)) return false;
  if (hasPortMatch(er) && !isPortProtocol(ctx.protocol)) return false;
  const named = (name: string): boolean =>
    (ctx.local.spec.ports ?? []).some((p) => p.name === name && protocolNumber(p.protocol) === ctx.protocol && p.port === port);
  return portsMatch(er, port, named);
}

function matchRemote(ctx: Ctx, er: EntityRule | undefined, ns: string | undefined, port: number): boolean {
  if (er === undefined) return true;
  const sel = entitySelector(er, ns);
  if (sel !== undefined && !ctx.remotes.some((r) => sel.evaluate(r.labels))) return false;
  const notSel = entityNotSelector(er);
  if (notSel !== undefined && ctx.remotes.some((r) => notSel.evaluate(r.labels))) return false;
  const v6 = typeof ctx.remoteIP === 'bigint';
  if (!netsMatch(er.nets, ctx.remoteIP, false, v6) || !netsMatch(er.notNets, ctx.remoteIP, true, v6)) return false;
  if (hasPortMatch(er) && !isPortProtocol(ctx.protocol)) return false;
  const namedSel = sel ?? selectorOf('all()');
  const named = (name: string): boolean =>
    ctx.remotes.some(
      (r) =>
        namedSel.evaluate(r.labels) &&
        (r.wep?.spec.ports ?? []).some((p) => p.name === name && protocolNumber(p.protocol) === ctx.protocol && p.port === port),
    );
  return portsMatch(er, port, named);
}

function portsMatch(er: EntityRule, port: number, named: (name: string) => boolean): boolean {
  const ports = parsePorts(er.ports);
  if (ports !== undefined && !(inRanges(ports.ranges, port) || ports.named.some(named))) return false;
  const notPorts = parsePorts(er.notPorts);
  if (notPorts !== undefined && (inRanges(notPorts.ranges, port) || notPorts.named.some(named))) return false;
  return true;
}
