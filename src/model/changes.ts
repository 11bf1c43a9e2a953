/**
 * Checks that need more than one resource: what Calico's clientv3 refuses on update or
 * because of other stored resources. Pure functions over validated resources; the
 * datastore client / tortiectl calls them with what it read.
 *
 * Contract: each returns the list of problems (empty = allowed), in the same Problem shape
 * as validation, so callers can throw `new ValidationError(problems)`.
 */
import type { Problem } from './errors';
import type { GlobalNetworkPolicy, IPPool, NetworkPolicy, Resource } from './types';
import { DEFAULT_TIER, cidrsOverlap, tryParseCidr } from '../primitives';

/** Problems with replacing `old` by `next` (same kind and name). */
export function checkUpdate(old: Resource, next: Resource): Problem[] {
  const out: Problem[] = [];
  const at = (path: string, reason: string) => out.push({ kind: next.kind, name: displayName(next), path, reason });
  if (old.kind !== next.kind) {
    at('kind', `cannot change kind from ${old.kind} to ${next.kind}`);
    return out;
  }
  if (old.kind === 'IPPool' && next.kind === 'IPPool') {
    // Blocks already handed out are carved from the old CIDR and block size.
    if (old.spec.cidr !== next.spec.cidr) {
      at('spec.cidr', `cannot be changed (was ${old.spec.cidr}); create a new pool and migrate`);
    }
    if (old.spec.blockSize !== next.spec.blockSize) {
      at('spec.blockSize', `cannot be changed (was ${old.spec.blockSize}); create a new pool and migrate`);
    }
    const wasLB = old.spec.allowedUses?.includes('LoadBalancer') ?? false;
    const isLB = next.spec.allowedUses?.includes('LoadBalancer') ?? false;
    if (wasLB && !isLB) at('spec.allowedUses', 'cannot change from LoadBalancer to Workload or Tunnel');
  }
  return out;
}

/** Problems if `pool` overlaps any other pool (a pool never conflicts with its own old version). */
export function checkPoolOverlaps(pool: IPPool, existing: readonly IPPool[]): Problem[] {
  const mine = tryParseCidr(pool.spec.cidr);
  if (mine === undefined) return [];
  const out: Problem[] = [];
  for (const other of existing) {
    if (other.metadata.name === pool.metadata.name) continue;
    const theirs = tryParseCidr(other.spec.cidr);
    if (theirs !== undefined && cidrsOverlap(mine, theirs)) {
      out.push({
        kind: 'IPPool',
        name: pool.metadata.name,
        path: 'spec.cidr',
        reason: `${pool.spec.cidr} overlaps IPPool ${other.metadata.name} (${other.spec.cidr})`,
      });
    }
  }
  return out;
}

/**
 * Calico refuses to create a policy in a tier that does not exist. The `default` tier
 * always exists (Calico creates it at start-up), whether or not it is stored.
 */
export function checkPolicyTier(policy: NetworkPolicy | GlobalNetworkPolicy, tierNames: Iterable<string>): Problem[] {
  const tier = policy.spec.tier ?? DEFAULT_TIER;
  if (tier === DEFAULT_TIER) return [];
  for (const t of tierNames) if (t === tier) return [];
  return [{ kind: policy.kind, name: displayName(policy), path: 'spec.tier', reason: `tier ${tier} does not exist; create the Tier first` }];
}

function displayName(r: Resource): string {
  return r.metadata.namespace !== undefined ? `${r.metadata.namespace}/${r.metadata.name}` : r.metadata.name;
}
