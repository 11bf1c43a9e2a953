/**
 * The stateless uplink prefilter: doNotTrack GlobalNetworkPolicies that select this node's
 * implicit host endpoint (the Node resource's labels) compiled into deny-listed CIDRs.
 *
 * Contract: walking the selected doNotTrack policies in tier/policy order, an ingress Deny rule
 * whose only match is `source.nets` becomes deny entries as long as no earlier rule could have
 * decided differently (an Allow/Pass rule, or one the prefilter cannot express); every other
 * doNotTrack rule, and every preDNAT rule, is listed in `skipped` with the reason (the agent
 * logs them): they are not enforced on the implicit endpoint, only on the HostEndpoints a policy
 * selects (bpf/lib/hostep.h, as Calico, which knows no implicit host endpoint). Pure; ids come
 * from the caller so they share the graph's id space.
 *
 * `PrefilterCalc` (below) is the calc graph node around it:
 *
 *   Tier, Node, GlobalNetworkPolicy with doNotTrack / preDNAT / applyOnForward ──markDirty──>
 *     emit(): computePrefilter, its rules ref'd in RuleIds (then the previous ones unref'd)
 *     ──> delta.prefilter when it differs from what was last emitted
 *
 * Emit it before RuleIds.emit (its rules are in the same registry).
 */
import type { GlobalNetworkPolicy, Rule } from '../model';
import { formatCidr4, formatCidr6, tryParseCidrOrIp4, tryParseCidrOrIp6 } from '../primitives';
import { comparePolicies, compareTiers, policyTier, selectorOf, tierInfo } from './semantics';
import type { RuleIds } from './rule-ids';
import type { ResourceState } from './store';
import type { CalcDelta, Prefilter, RuleInfo } from './types';

const ONLY_NETS_KEYS = new Set(['action', 'source', 'metadata', 'ipVersion']);

function onlySourceNets(r: Rule): boolean {
  for (const k of Object.keys(r)) if (!ONLY_NETS_KEYS.has(k)) return false;
  const s = r.source;
  if (s === undefined || s.nets === undefined || s.nets.length === 0) return false;
  return Object.keys(s).every((k) => k === 'nets');
}

export function computePrefilter(
  state: ResourceState,
  nodeName: string,
  idOf: (info: Omit<RuleInfo, 'id'>) => number,
): Prefilter {
  const labels = state.nodes.get(nodeName)?.metadata.labels ?? {};
  const selected: GlobalNetworkPolicy[] = [];
  for (const p of state.policies.values()) {
    if (p.kind !== 'GlobalNetworkPolicy') continue;
    if (!p.spec.doNotTrack && !p.spec.preDNAT) continue;
    if (!selectorOf(p.spec.selector).evaluate(labels)) continue;
    selected.push(p);
  }
  selected.sort((a, b) => {
    const ta = tierInfo(policyTier(a), state.tiers.get(policyTier(a)));
    const tb = tierInfo(policyTier(b), state.tiers.get(policyTier(b)));
    return compareTiers(ta, tb) || comparePolicies(a, b);
  });
  const out: Prefilter = { deny: [], skipped: [] };
  let blocked = false;
  for (const p of selected) {
    const tier = policyTier(p);
    for (const dir of ['ingress', 'egress'] as const) {
      const rules = (dir === 'ingress' ? p.spec.ingress : p.spec.egress) ?? [];
      rules.forEach((r, index) => {
        const info: Omit<RuleInfo, 'id'> = {
          kind: 'rule',
          direction: dir,
          tier,
          policy: { kind: 'GlobalNetworkPolicy', name: p.metadata.name },
          index,
          action: r.action,
        };
        const id = idOf(info);
        if (p.spec.preDNAT) {
          out.skipped.push({ ruleId: id, reason: 'preDNAT policies are not enforced on the node\'s implicit endpoint (only on HostEndpoints)' });
          return;
        }
        if (dir === 'egress') {
          out.skipped.push({ ruleId: id, reason: 'egress doNotTrack rules are not enforced on the node\'s implicit endpoint (only on HostEndpoints)' });
          return;
        }
        if (r.action === 'Log') return;
        if (r.action === 'Deny' && onlySourceNets(r) && !blocked) {
          // Per family, as Felix renders the rule: ipVersion keeps one family's nets only.
          for (const n of r.source!.nets!) {
            const c4 = tryParseCidrOrIp4(n);
            const c6 = c4 === undefined ? tryParseCidrOrIp6(n) : undefined;
            if (c4 !== undefined && r.ipVersion !== 6) out.deny.push({ family: 4, cidr: formatCidr4(c4), ruleId: id });
            if (c6 !== undefined && r.ipVersion !== 4) out.deny.push({ family: 6, cidr: formatCidr6(c6), ruleId: id });
          }
          return;
        }
        if (r.action === 'Deny') {
          out.skipped.push({
            ruleId: id,
            reason: blocked ? 'follows a doNotTrack rule the prefilter cannot express' : 'matches more than source.nets',
          });
          return;
        }
        blocked = true;
        out.skipped.push({ ruleId: id, reason: `${r.action} doNotTrack rules are not enforced on the node's implicit endpoint (only on HostEndpoints)` });
      });
    }
  }
  return out;
}

/**
 * The prefilter as a calc graph node. Contract: marks in any order; after emit() the prefilter
 * is computePrefilter of the current resources, and it holds one rule reference per rule of that
 * output (the previous output's released after the new one's are taken, so a kept rule keeps its id).
 */
export class PrefilterCalc {
  /** The current output (as last emitted). */
  state: Prefilter = { deny: [], skipped: [] };
  private dirty = true;
  private ruleKeys: string[] = [];
  private emitted = '';

  constructor(
    private readonly resources: ResourceState,
    private readonly nodeName: string,
    private readonly ruleIds: RuleIds,
  ) {}

  markDirty(): void {
    this.dirty = true;
  }

  emit(delta: CalcDelta): void {
    if (this.dirty) {
      this.dirty = false;
      const old = this.ruleKeys;
      this.ruleKeys = [];
      this.state = computePrefilter(this.resources, this.nodeName, (info) => {
        const key = `p|${info.direction}|${info.tier ?? ''}|${info.policy?.name ?? ''}|${info.index ?? ''}`;
        this.ruleIds.ref(key, info);
        this.ruleKeys.push(key);
        return this.ruleIds.id(key);
      });
      for (const k of old) this.ruleIds.unref(k);
      const s = JSON.stringify(this.state);
      if (s !== this.emitted) {
        this.emitted = s;
        delta.prefilterChanged = true;
        delta.prefilter = this.state;
      }
    }
  }
}
