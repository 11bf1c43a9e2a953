/**
 * EndpointPolicies — calc graph node: which policies apply to each local endpoint, and the
 * definition of each local endpoint's table per direction.
 *
 *   NetworkPolicy, GlobalNetworkPolicy ──markPolicy──┐   LabelIndex ──markLocal / markRelabelled──┐
 *   Tier ──markAllLocal──────────────────────────────┤                                            │
 *                                                    ▼                                            ▼
 *                  policy → local endpoints (policyLocal) ⇄ endpoint → policies (LocalEp.policies)
 *                                                    │ recompute(): dirty policies, then endpoints, by key
 *                                                    ▼
 *      per endpoint and direction: tiers by order then name, policies by order then name, then
 *      profiles, each with its local side resolved → a Definition (key + plan)
 *                                                    │
 *                            TableContexts.bind(endpoint|direction, definition) / unref
 *
 * Contract: marks arrive in any order, for policies, tiers and endpoints that may not exist (a
 * missing tier is ordered last with defaultAction Deny, a missing profile contributes nothing).
 * After recompute(), `localEps` holds exactly the local WorkloadEndpoints with an item, each with
 * the set of policies whose endpoint selector selects it (`policyLocal` is its inverse: every
 * add of one has the matching add of the other, and the same for removes), and each bound to the
 * table context of its current definition in each direction. Equal definitions have equal keys
 * (a hash of per-policy content hashes and each rule's local resolution).
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Selector } from '../selector';
import type { AtomNeeds } from './atoms';
import { addTo, removeFrom } from './graph-util';
import { ALL6, formatCidr4, formatCidr6, isCidr6, type AnyCidr, type Cidr4 } from '../primitives';
import type { LabelIndex } from './label-index';
import {
  endOfTierKey,
  finalKey,
  precompilePolicy,
  precompileProfile,
  remoteAtomNeeds,
  resolveLocal,
  type LocalResolution,
  type LocalView,
  type PreRule,
} from './rules';
import { appliesToWorkloads, comparePolicies, compareTiers, policyEndpointSelector, policyTier, policyTypes, tierInfo, type AnyPolicy, type TierInfo } from './semantics';
import type { ResourceState } from './store';
import type { TableContexts } from './table-contexts';
import type { Direction, HostSlot, LocalEndpoint, RuleInfo } from './types';
import { HEP_ITEM } from './label-index';

/**
 * How a table slot of a local endpoint is built (Calico's host endpoint stages, felix's
 * HostEndpointTo*Chains): which policies it takes, whether profiles follow, and what is left
 * undecided becomes.
 *   normal    — workload tables; a host endpoint's traffic to/from the host itself: every
 *               policy but doNotTrack/preDNAT ones, then the profiles, then deny;
 *   forward   — a host endpoint's forwarded traffic: applyOnForward policies only, no profiles,
 *               end of tier and the end deny; no such policy in the direction = no table (allow);
 *   preDNAT   — preDNAT policies (ingress), untracked — doNotTrack policies: tiers do not end in
 *               a deny and nothing decided = the next stage (the table's passThroughRule).
 */
export type SlotMode = 'normal' | 'forward' | 'preDNAT' | 'untracked';
export type Slot = 'ingress' | 'egress' | HostSlot;
const WEP_SLOTS: readonly { slot: Slot; d: Direction; mode: SlotMode }[] = [
  { slot: 'ingress', d: 'ingress', mode: 'normal' },
  { slot: 'egress', d: 'egress', mode: 'normal' },
];
export const HEP_SLOTS: readonly { slot: Slot; d: Direction; mode: SlotMode }[] = [
  ...WEP_SLOTS,
  { slot: 'forwardIngress', d: 'ingress', mode: 'forward' },
  { slot: 'forwardEgress', d: 'egress', mode: 'forward' },
  { slot: 'preDNAT', d: 'ingress', mode: 'preDNAT' },
  { slot: 'untrackedIngress', d: 'ingress', mode: 'untracked' },
  { slot: 'untrackedEgress', d: 'egress', mode: 'untracked' },
];

/** Whether a policy's stage is `mode` (on a host endpoint; workloads take only 'normal' ones). */
function policyInMode(p: AnyPolicy, mode: SlotMode): boolean {
  const g = p.kind === 'GlobalNetworkPolicy' ? p.spec : undefined;
  switch (mode) {
    case 'normal':
      return g?.doNotTrack !== true && g?.preDNAT !== true;
    case 'forward':
      return g?.applyOnForward === true && g.doNotTrack !== true && g.preDNAT !== true;
    case 'preDNAT':
      return g?.preDNAT === true;
    case 'untracked':
      return g?.doNotTrack === true;
  }
}

/** Rule key of the cells of a preDNAT/doNotTrack table where no policy decided. */
export function stageEndKey(d: Direction, mode: SlotMode): string {
  return `s|${d}|${mode}`;
}

/** A doNotTrack/preDNAT stage's tiers end without a deny and its end is "next stage" (felix NoEndTierDrop). */
export function tierEndDenies(mode: SlotMode): boolean {
  return mode === 'normal' || mode === 'forward';
}

/** NetworkPolicies select workloads only; GlobalNetworkPolicies both (workloads: not doNotTrack/preDNAT ones). */
function policyAppliesTo(p: AnyPolicy, host: boolean): boolean {
  return host ? p.kind === 'GlobalNetworkPolicy' : appliesToWorkloads(p);
}

export interface DefinitionExtras {
  rules: Map<string, Omit<RuleInfo, 'id'>>;
  needs: AtomNeeds;
}

/** One policy's or profile's rules as resolved for an endpoint, and the key they share by. */
export interface PlanPart {
  key: string;
  rules: { r: PreRule; loc: LocalResolution }[];
}

export type PlanEntry = { kind: 'tier'; tier: TierInfo; policies: PlanPart[] } | { kind: 'profile'; part: PlanPart };

/** A local endpoint's table in one direction, as a key and a plan (its steps built on demand). */
export interface Definition {
  key: string;
  plan: PlanEntry[];
  mode: SlotMode;
  extras: () => DefinitionExtras;
}

export interface LocalEp {
  key: string;
  /** A HostEndpoint (item key `HostEndpoint:<name>`). */
  host: boolean;
  policies: Set<string>;
  /**
   * Definition key of its table per slot (workloads: ingress, egress); a host endpoint slot
   * split by local-side nets also has `<slot>@<net>` entries, one per region but 0.0.0.0/0.
   */
  defs: Record<string, string>;
  /** What was last emitted for it (Delta). */
  out?: LocalEndpoint;
}

export class EndpointPolicies {
  readonly localEps = new Map<string, LocalEp>();
  /** Policy key → the local endpoints it selects (only policies selecting some). */
  private readonly policyLocal = new Map<string, Set<string>>();
  private readonly dirtyPolicies = new Set<string>();
  private readonly dirtyLocal = new Set<string>();
  /** Local endpoints whose labels may have changed: their policy set is re-evaluated in full. */
  private readonly relabelledLocal = new Set<string>();
  private allLocalDirty = false;
  /** Endpoints recomputed since the last emit (Delta re-checks their output). */
  private readonly touchedLocal = new Set<string>();
  /** Endpoints that had an output and went, since the last emit. */
  private readonly removedEps = new Set<string>();

  /** Wired by the graph. */
  tables!: TableContexts;
  log?: Logger;

  constructor(
    private readonly resources: ResourceState,
    private readonly labels: LabelIndex,
  ) {}

  get activePolicyCount(): number {
    return this.policyLocal.size;
  }

  /** The endpoints recomputed since the last call (for Delta: their output may have changed). */
  takeTouched(): Set<string> {
    const touched = new Set<string>(this.touchedLocal);
    this.touchedLocal.clear();
    return touched;
  }

  /** The endpoints that had an output and went since the last call, by key. */
  takeRemoved(): string[] {
    const removed = [...this.removedEps].sort();
    this.removedEps.clear();
    return removed;
  }

  // ---------------------------------------------------------------- input marks

  markPolicy(pk: string): void {
    this.dirtyPolicies.add(pk);
  }

  /** Tiers changed: every local endpoint's definitions are rebuilt. */
  markAllLocal(): void {
    this.allLocalDirty = true;
  }

  markLocal(key: string): void {
    this.dirtyLocal.add(key);
  }

  markRelabelled(key: string): void {
    this.dirtyLocal.add(key);
    this.relabelledLocal.add(key);
  }

  // ---------------------------------------------------------------- flush

  /** Flush step 2: dirty policies → local endpoints; dirty endpoints → definitions, bound to contexts. */
  recompute(newCtxs: Set<string>): void {
    for (const pk of [...this.dirtyPolicies].sort()) this.recomputePolicy(pk);
    this.dirtyPolicies.clear();
    if (this.allLocalDirty) for (const k of this.localEps.keys()) this.dirtyLocal.add(k);
    this.allLocalDirty = false;
    for (const key of this.dirtyLocal) this.touchedLocal.add(key);
    for (const key of [...this.dirtyLocal].sort()) this.recomputeLocal(key, newCtxs);
    this.dirtyLocal.clear();
    this.relabelledLocal.clear();
  }

  private recomputePolicy(pk: string): void {
    const p = this.resources.policies.get(pk);
    const prev = this.policyLocal.get(pk) ?? new Set<string>();
    const now = new Set<string>();
    if (p !== undefined) {
      const sel = policyEndpointSelector(p);
      for (const [k, ep] of this.localEps) {
        if (!policyAppliesTo(p, ep.host)) continue;
        const it = this.labels.items.get(k);
        if (it !== undefined && sel.evaluate(it.labels)) {
          now.add(k);
          ep.policies.add(pk);
        }
      }
    }
    for (const k of prev) {
      if (!now.has(k)) this.localEps.get(k)?.policies.delete(pk);
      this.dirtyLocal.add(k);
    }
    for (const k of now) this.dirtyLocal.add(k);
    if (now.size > 0) this.policyLocal.set(pk, now);
    else this.policyLocal.delete(pk);
  }

  private recomputeLocal(key: string, newCtxs: Set<string>): void {
    const it = this.labels.items.get(key);
    let ep = this.localEps.get(key);
    if (it === undefined || !it.local) {
      if (ep === undefined) return;
      for (const pk of ep.policies) removeFrom(this.policyLocal, pk, key);
      for (const [slot, def] of Object.entries(ep.defs)) this.tables.unref(def, `${key}|${slot}`);
      this.localEps.delete(key);
      if (ep.out !== undefined) this.removedEps.add(key);
      return;
    }
    let fresh = false;
    if (ep === undefined) {
      ep = { key, host: key.startsWith(HEP_ITEM), policies: new Set(), defs: {} };
      this.localEps.set(key, ep);
      fresh = true;
    }
    if (fresh || this.relabelledLocal.has(key)) {
      // Labels may have changed: re-evaluate every policy for this endpoint.
      for (const pk of ep.policies) removeFrom(this.policyLocal, pk, key);
      ep.policies.clear();
      for (const [pk, p] of this.resources.policies) {
        if (!policyAppliesTo(p, ep.host)) continue;
        if (policyEndpointSelector(p).evaluate(it.labels)) {
          ep.policies.add(pk);
          addTo(this.policyLocal, pk, key);
        }
      }
    }
    // A host endpoint's local address is not one (any address of the node, or a workload's when
    // forwarded): a slot whose rules use local-side nets is defined once per region of those nets
    // (defs `slot` = the 0.0.0.0/0 region, `slot@<net>` the others); the datapath picks per packet.
    const first4 = it.prefixes.find((c) => !isCidr6(c)) as Cidr4 | undefined;
    const first6 = it.prefixes.find(isCidr6);
    const view: LocalView = { labels: it.labels, ip: ep.host ? undefined : first4?.addr, ports: it.ports, host: ep.host };
    if (!ep.host && first6 !== undefined) view.ip6 = first6.addr6;
    for (const { slot, d, mode } of ep.host ? HEP_SLOTS : WEP_SLOTS) {
      const want = new Map<string, Definition>();
      const regions = ep.host ? this.localRegions(ep, it.profiles, d, mode) : [];
      if (regions.length === 0) {
        const built = this.definition(ep, it.profiles, view, d, mode);
        if (built !== undefined) want.set(slot, built);
      } else {
        for (const net of regions) {
          const built = this.definition(ep, it.profiles, { ...view, localNet: net }, d, mode);
          if (built !== undefined) want.set(net.len === 0 && !isCidr6(net) ? slot : `${slot}@${isCidr6(net) ? formatCidr6(net) : formatCidr4(net)}`, built);
        }
        // Every region alike (the nets decide nothing here): one table, no dispatch.
        const root = want.get(slot);
        if (root !== undefined && [...want.values()].every((b) => b.key === root.key)) {
          want.clear();
          want.set(slot, root);
        }
      }
      for (const k of Object.keys(ep.defs)) {
        if ((k === slot || k.startsWith(`${slot}@`)) && !want.has(k)) {
          this.tables.unref(ep.defs[k], `${key}|${k}`);
          delete ep.defs[k];
        }
      }
      for (const [k, built] of want) {
        const old = ep.defs[k];
        if (old === built.key && this.tables.has(old)) continue;
        this.tables.bind(`${key}|${k}`, d, built, old, newCtxs);
        ep.defs[k] = built.key;
      }
    }
  }

  /**
   * The regions of a host endpoint slot's local-side nets: every distinct net of its rules'
   * local nets/notNets (either family), and 0.0.0.0/0 and ::/0 (the rest of each family); none
   * when no rule has local-side nets.
   */
  private localRegions(ep: LocalEp, profiles: readonly string[], d: Direction, mode: SlotMode): AnyCidr[] {
    const nets = new Map<string, AnyCidr>();
    const add = (rules: PreRule[]): void => {
      for (const r of rules) for (const c of [...(r.local.nets ?? []), ...(r.local.notNets ?? [])]) nets.set(isCidr6(c) ? formatCidr6(c) : formatCidr4(c), c);
    };
    for (const pk of ep.policies) {
      const p = this.resources.policies.get(pk)!;
      if (policyTypes(p)[d] && policyInMode(p, mode)) add(precompilePolicy(p)[d]);
    }
    for (const name of mode === 'normal' ? profiles : []) {
      const prof = this.resources.profile(name);
      if (prof !== undefined) add(precompileProfile(prof)[d]);
    }
    if (nets.size === 0) return [];
    // Both families' roots: a packet of either finds its region (the datapath's LPM per family).
    nets.set('0.0.0.0/0', { addr: 0, len: 0 });
    nets.set('::/0', ALL6);
    return [...nets.values()];
  }

  /**
   * The definition key of an endpoint's table in one direction (cheap: per-policy content
   * hashes plus the local resolution of each rule) and a thunk building its steps.
   */
  private definition(ep: LocalEp, profiles: readonly string[], view: LocalView, d: Direction, mode: SlotMode): Definition | undefined {
    const byTier = new Map<string, AnyPolicy[]>();
    for (const pk of ep.policies) {
      const p = this.resources.policies.get(pk)!;
      if (!policyTypes(p)[d] || !policyInMode(p, mode)) continue;
      const t = policyTier(p);
      let l = byTier.get(t);
      if (l === undefined) byTier.set(t, (l = []));
      l.push(p);
    }
    // Stages other than the normal one exist only when a policy of theirs applies (Calico).
    if (mode !== 'normal' && byTier.size === 0) return undefined;
    const tiers: TierInfo[] = [...byTier.keys()].map((n) => tierInfo(n, this.resources.tiers.get(n))).sort(compareTiers);
    const plan: PlanEntry[] = [];
    const keyParts: string[] = mode === 'normal' ? [d] : [d, mode];
    const resolve = (kind: string, hash: string, rules: PreRule[]): PlanPart => {
      const part: PlanPart = { key: '', rules: [] };
      const res: string[] = [];
      for (const r of rules) {
        const loc = resolveLocal(r, d, view);
        if (loc === undefined) continue;
        part.rules.push({ r, loc });
        res.push(`${r.index}${Object.keys(loc).length > 0 ? JSON.stringify(loc) : ''}`);
      }
      part.key = `${d}${kind}${hash}:${res.join(',')}`;
      keyParts.push(part.key);
      return part;
    };
    for (const tier of tiers) {
      const policies = byTier.get(tier.name)!.sort(comparePolicies);
      keyParts.push(`T${tier.name}\u0001${tier.defaultAction}`);
      const parts: PlanPart[] = [];
      for (const p of policies) {
        const pre = precompilePolicy(p);
        parts.push(resolve('P', pre.hash[d], pre[d]));
      }
      plan.push({ kind: 'tier', tier, policies: parts });
    }
    for (const name of mode === 'normal' ? profiles : []) {
      const prof = this.resources.profile(name);
      if (prof === undefined) continue;
      const pre = precompileProfile(prof);
      plan.push({ kind: 'profile', part: resolve('R', pre.hash[d], pre[d]) });
    }
    const key = createHash('sha1').update(keyParts.join('\u0002')).digest('hex');
    const extras = (): DefinitionExtras => {
      const m = new Map<string, Omit<RuleInfo, 'id'>>();
      for (const entry of plan) {
        const parts = entry.kind === 'tier' ? entry.policies : [entry.part];
        for (const part of parts) for (const { r } of part.rules) m.set(r.ruleKey, r.info);
        if (entry.kind === 'tier' && entry.tier.defaultAction === 'Deny' && tierEndDenies(mode)) {
          m.set(endOfTierKey(d, entry.tier.name), { kind: 'end-of-tier', direction: d, tier: entry.tier.name, action: 'Deny' });
        }
      }
      if (tierEndDenies(mode)) m.set(finalKey(d), { kind: 'no-profile-match', direction: d, action: 'Deny' });
      else m.set(stageEndKey(d, mode), { kind: 'stage-end', direction: d, action: 'Pass' });
      const needs = { sels: [] as Selector[], cidrs: [] as AnyCidr[], named: [] as { sel: Selector; name: string }[] };
      for (const entry of plan) {
        const parts = entry.kind === 'tier' ? entry.policies : [entry.part];
        for (const part of parts) {
          for (const { r } of part.rules) {
            const n = remoteAtomNeeds(r);
            needs.sels.push(...n.sels);
            needs.cidrs.push(...n.cidrs);
            needs.named.push(...n.named);
          }
        }
      }
      return { rules: m, needs };
    };
    return { key, plan, mode, extras };
  }
}
