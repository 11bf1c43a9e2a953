/**
 * ResourceClient: typed v3 resources over a Datastore (Calico's clientv3, in small).
 *
 * Contract:
 * - Every write validates the whole resource first (src/model), including that tortie enforces
 *   every field in it (unenforcedProblems); an invalid one is rejected with the model's
 *   ValidationError and nothing is written.
 * - Stored value = the validated resource as JSON, minus `metadata.resourceVersion`, under
 *   `resourceKey(plural, name, namespace)`. On read, `metadata.resourceVersion` is the key's
 *   modRevision as a decimal string, so `update` of a read resource is a compare-and-swap (as
 *   calicoctl `replace`); without a resourceVersion, `update` replaces unconditionally.
 * - Namespaced kinds default to namespace `default` (calicoctl's behaviour).
 * - Resources Calico has without anyone writing them are read as if stored (src/model/derived):
 *   the `default` Tier, and a `kns.<ns>` Profile per Namespace (a stored profile of that name
 *   wins). Neither can be deleted: the tier is built in, the profile goes with its Namespace.
 * - A Tier still holding policies cannot be deleted (Calico: "Cannot delete a non-empty tier").
 */
import type { Datastore, JsonValue, KeyValue } from '../datastore/types';
import { resourceKey, resourcePrefix } from '../datastore/keys';
import { NotFoundError } from '../datastore/errors';
import { NAMESPACED_KINDS, type Resource, type ResourceKind, type ResourceOfKind } from '../model/types';
import { validateResource } from '../model/validate';
import { unenforcedProblems } from '../model/enforced';
import { ValidationError } from '../model/errors';
import { builtinTier, namespaceOfProfile, namespaceProfile, ALWAYS_PRESENT_TIERS } from '../model/derived';
import { TortieError } from '../util/errors';

export const KIND_PLURAL: Readonly<Record<ResourceKind, string>> = {
  IPPool: 'ippools',
  Node: 'nodes',
  WorkloadEndpoint: 'workloadendpoints',
  Profile: 'profiles',
  Tier: 'tiers',
  NetworkPolicy: 'networkpolicies',
  GlobalNetworkPolicy: 'globalnetworkpolicies',
  Namespace: 'namespaces',
  BGPConfiguration: 'bgpconfigurations',
  BGPPeer: 'bgppeers',
  GlobalNetworkSet: 'globalnetworksets',
  NetworkSet: 'networksets',
  IPReservation: 'ipreservations',
  ClusterInformation: 'clusterinformations',
  FelixConfiguration: 'felixconfigurations',
};

const PLURAL_KIND: ReadonlyMap<string, ResourceKind> = new Map(
  Object.entries(KIND_PLURAL).map(([k, p]) => [p, k as ResourceKind]));

export function kindOfPlural(plural: string): ResourceKind | undefined {
  return PLURAL_KIND.get(plural);
}

export function isNamespaced(kind: ResourceKind): boolean {
  return NAMESPACED_KINDS.has(kind);
}

function namespaceOf(kind: ResourceKind, namespace: string | undefined): string | undefined {
  return isNamespaced(kind) ? (namespace || 'default') : undefined;
}

export function keyOf(kind: ResourceKind, name: string, namespace?: string): string {
  return resourceKey(KIND_PLURAL[kind], name, namespaceOf(kind, namespace));
}

export function keyOfResource(r: Resource): string {
  return keyOf(r.kind, r.metadata.name, r.metadata.namespace);
}

/** A datastore kv of the resource layout → the resource with its resourceVersion. */
export function resourceFromKv<R extends Resource = Resource>(kv: KeyValue): R {
  const r = structuredClone(kv.value) as unknown as R;
  r.metadata = { ...r.metadata, resourceVersion: String(kv.modRevision) };
  return r;
}

function toStored(r: Resource): JsonValue {
  const copy = structuredClone(r) as Resource;
  const meta = { ...copy.metadata };
  delete meta.resourceVersion;
  if (isNamespaced(copy.kind)) meta.namespace = meta.namespace || 'default';
  copy.metadata = meta;
  return copy as unknown as JsonValue;
}

function expectedRevisionOf(r: Resource): number | undefined {
  const rv = r.metadata.resourceVersion;
  if (rv === undefined || rv === '') return undefined;
  const n = Number(rv);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** Valid in Calico's model and enforced by tortie, or a ValidationError naming each field. */
export function validateEnforced(obj: unknown): Resource {
  const r = validateResource(obj);
  const problems = unenforcedProblems(r);
  if (problems.length > 0) throw new ValidationError(problems);
  return r;
}

export class ResourceClient {
  constructor(readonly ds: Datastore, private readonly validate: (obj: unknown) => Resource = validateEnforced) {}

  async get<K extends ResourceKind>(kind: K, name: string, namespace?: string): Promise<ResourceOfKind<K> | undefined> {
    const kv = await this.ds.get(keyOf(kind, name, namespace));
    if (kv) return resourceFromKv<ResourceOfKind<K>>(kv);
    return (await this.derived(kind, name)) as ResourceOfKind<K> | undefined;
  }

  /** The resource Calico would have under this name without it being stored, if any. */
  private async derived(kind: ResourceKind, name: string): Promise<Resource | undefined> {
    if (kind === 'Tier') return builtinTier(name);
    if (kind === 'Profile') {
      const ns = namespaceOfProfile(name);
      if (ns === undefined) return undefined;
      const kv = await this.ds.get(keyOf('Namespace', ns));
      return kv ? namespaceProfile(resourceFromKv(kv)) : undefined;
    }
    return undefined;
  }

  /** All resources of a kind (in one namespace, or all namespaces when `namespace` is undefined). */
  async list<K extends ResourceKind>(kind: K, namespace?: string): Promise<{ items: ResourceOfKind<K>[]; revision: number }> {
    const prefix = isNamespaced(kind) && namespace ? resourcePrefix(KIND_PLURAL[kind], namespace) : resourcePrefix(KIND_PLURAL[kind]);
    const res = await this.ds.list(prefix);
    const items = res.items.map((kv) => resourceFromKv<ResourceOfKind<K>>(kv));
    const have = new Set(items.map((r) => r.metadata.name));
    if (kind === 'Tier') {
      for (const t of ALWAYS_PRESENT_TIERS) if (!have.has(t)) items.push(builtinTier(t) as ResourceOfKind<K>);
    } else if (kind === 'Profile') {
      // The namespaces as of a revision no older than the profiles' list.
      const nss = await this.ds.list(resourcePrefix(KIND_PLURAL.Namespace));
      for (const kv of nss.items) {
        const p = namespaceProfile(resourceFromKv(kv));
        if (!have.has(p.metadata.name)) items.push(p as ResourceOfKind<K>);
      }
      items.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
      return { items, revision: Math.max(res.revision, nss.revision) };
    }
    return { items, revision: res.revision };
  }

  async create<R extends Resource>(obj: R): Promise<R> {
    const r = this.validate(obj) as R;
    const kv = await this.ds.create(keyOfResource(r), toStored(r));
    return resourceFromKv<R>(kv);
  }

  /** Replace an existing resource; a compare-and-swap when it carries a resourceVersion. */
  async update<R extends Resource>(obj: R): Promise<R> {
    const r = this.validate(obj) as R;
    const kv = await this.ds.update(keyOfResource(r), toStored(r), { expectedRevision: expectedRevisionOf(obj) });
    return resourceFromKv<R>(kv);
  }

  /** Create or replace (calicoctl apply). */
  async apply<R extends Resource>(obj: R): Promise<R> {
    const r = this.validate(obj) as R;
    const expected = expectedRevisionOf(obj);
    const key = keyOfResource(r);
    const kv = expected === undefined ? await this.ds.put(key, toStored(r)) : await this.ds.update(key, toStored(r), { expectedRevision: expected });
    return resourceFromKv<R>(kv);
  }

  async delete<K extends ResourceKind>(kind: K, name: string, namespace?: string, resourceVersion?: string): Promise<ResourceOfKind<K>> {
    const key = keyOf(kind, name, namespace);
    const expected = resourceVersion ? Number(resourceVersion) : undefined;
    if (kind === 'Tier') await this.checkTierDeletable(name);
    try {
      const { prevKv } = await this.ds.delete(key, { expectedRevision: expected });
      return resourceFromKv<ResourceOfKind<K>>(prevKv);
    } catch (e) {
      if (e instanceof NotFoundError) {
        if (kind === 'Profile' && (await this.derived(kind, name)) !== undefined) {
          throw new DeleteRefusedError(`Profile(${name}) is derived from Namespace(${namespaceOfProfile(name)}); delete the namespace instead`);
        }
        throw new ResourceNotFoundError(kind, name, namespaceOf(kind, namespace));
      }
      throw e;
    }
  }

  /** Calico refuses to delete the default tier and any tier that still holds policies. */
  private async checkTierDeletable(name: string): Promise<void> {
    if (ALWAYS_PRESENT_TIERS.includes(name)) {
      throw new DeleteRefusedError(`Tier(${name}): cannot delete the ${name} tier (it is built in)`);
    }
    const users: string[] = [];
    for (const kind of ['GlobalNetworkPolicy', 'NetworkPolicy'] as const) {
      for (const p of (await this.list(kind)).items) {
        if ((p.spec.tier ?? 'default') === name) users.push(`${kind}(${p.metadata.namespace ? `${p.metadata.namespace}/` : ''}${p.metadata.name})`);
      }
    }
    if (users.length > 0) {
      const shown = users.length > 5 ? `${users.slice(0, 5).join(', ')} and ${users.length - 5} more` : users.join(', ');
      throw new DeleteRefusedError(`Tier(${name}): Cannot delete a non-empty tier (it holds ${shown})`);
    }
  }
}

/** A delete Calico refuses (built-in tier, non-empty tier, derived profile). */
export class DeleteRefusedError extends TortieError {
  declare readonly code: 'ERR_RESOURCE_DELETE_REFUSED';
  constructor(message: string) {
    super('ERR_RESOURCE_DELETE_REFUSED', message);
  }
}

export class ResourceNotFoundError extends TortieError {
  declare readonly code: 'ERR_RESOURCE_NOT_FOUND';
  constructor(readonly kind: ResourceKind, readonly resourceName: string, readonly namespace?: string) {
    super('ERR_RESOURCE_NOT_FOUND', `resource does not exist: ${kind}(${namespace ? `${namespace}/` : ''}${resourceName})`);
  }
}
