/**
 * Resources that exist without being written, as in Calico:
 *
 *   namespaceProfile(ns)   the `kns.<ns>` Profile Calico's Kubernetes datastore derives from
 *                          every Namespace (libcalico-go's NamespaceToProfile): allow-all
 *                          ingress and egress, labelsToApply `pcns.<key>: value` for each
 *                          namespace label plus `pcns.projectcalico.org/name: <ns>`, uid and
 *                          creationTimestamp of the namespace.
 *   builtinTier(name)      the built-in `default` tier Calico creates at start-up (order
 *                          1000000, defaultAction Deny); it always exists and cannot be deleted.
 *   builtinProfile(name)   `projectcalico-default-allow`, the profile Calico always provides
 *                          (libcalico-go's DefaultAllowProfile): ingress and egress one Allow
 *                          rule each, no labels, no labelsToApply. It cannot be written or
 *                          deleted (validation refuses the name), and nothing stored under its
 *                          name replaces it.
 *
 * A stored Profile of a `kns.<ns>` name takes precedence over the derived one (an etcd-mode
 * Calico cluster keeps such profiles as written resources).
 */
import { API_VERSION_V3, type Namespace, type Profile, type Tier } from './types';
import { BUILTIN_TIERS } from './validate';
import { DEFAULT_ALLOW_PROFILE, DEFAULT_TIER, LABEL_NAME, NAMESPACE_LABEL_PREFIX } from '../primitives';

export { DEFAULT_ALLOW_PROFILE };

export const NAMESPACE_PROFILE_PREFIX = 'kns.';

/** The namespace a `kns.<ns>` profile name is derived from, or undefined. */
export function namespaceOfProfile(name: string): string | undefined {
  return name.startsWith(NAMESPACE_PROFILE_PREFIX) && name.length > NAMESPACE_PROFILE_PREFIX.length
    ? name.slice(NAMESPACE_PROFILE_PREFIX.length)
    : undefined;
}

export function namespaceProfile(ns: Namespace): Profile {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(ns.metadata.labels ?? {})) labels[NAMESPACE_LABEL_PREFIX + k] = v;
  labels[NAMESPACE_LABEL_PREFIX + LABEL_NAME] = ns.metadata.name;
  const metadata: Profile['metadata'] = { name: NAMESPACE_PROFILE_PREFIX + ns.metadata.name };
  if (ns.metadata.uid !== undefined) metadata.uid = ns.metadata.uid;
  if (ns.metadata.creationTimestamp !== undefined) metadata.creationTimestamp = ns.metadata.creationTimestamp;
  if (ns.metadata.resourceVersion !== undefined) metadata.resourceVersion = ns.metadata.resourceVersion;
  return {
    apiVersion: API_VERSION_V3,
    kind: 'Profile',
    metadata,
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply: labels },
  };
}

/** Tiers that exist even when not stored (only `default`: Calico creates it at start-up). */
export const ALWAYS_PRESENT_TIERS: readonly string[] = [DEFAULT_TIER];

export function builtinTier(name: string): Tier | undefined {
  if (!ALWAYS_PRESENT_TIERS.includes(name)) return undefined;
  const b = BUILTIN_TIERS[name]!;
  return { apiVersion: API_VERSION_V3, kind: 'Tier', metadata: { name }, spec: { order: b.order, defaultAction: b.defaultAction } };
}

/** Profiles that exist even when not stored, and win over a stored one of the same name. */
export const BUILTIN_PROFILES: readonly string[] = [DEFAULT_ALLOW_PROFILE];

/** The built-in profile of this name (a new object each call), or undefined. */
export function builtinProfile(name: string): Profile | undefined {
  if (name !== DEFAULT_ALLOW_PROFILE) return undefined;
  return {
    apiVersion: API_VERSION_V3,
    kind: 'Profile',
    metadata: { name: DEFAULT_ALLOW_PROFILE },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
  };
}
