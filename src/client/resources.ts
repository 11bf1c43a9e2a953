/**
 * ResourceClient: typed v3 resources over a Datastore (Calico's clientv3, in small).
 *
 * Contract:
 * - Every write validates the whole resource first (src/model); an invalid one is rejected with
 *   the model's ValidationError and nothing is written.
 * - Stored value = the validated resource as JSON, minus `metadata.resourceVersion`, under
 *   `resourceKey(plural, name, namespace)`. On read, `metadata.resourceVersion` is the key's
 *   modRevision as a decimal string, so `update` of a read resource is a compare-and-swap (as
 *   calicoctl `replace`); without a resourceVersion, `update` replaces unconditionally.
 * - Namespaced kinds default to namespace `default` (calicoctl's behaviour).
 */
import type { Datastore, JsonValue, KeyValue } from '../datastore/types';
import { resourceKey, resourcePrefix } from '../datastore/keys';
import { NotFoundError } from '../datastore/errors';
import { NAMESPACED_KINDS, type Resource, type ResourceKind, type ResourceOfKind } from '../model/types';
import { validateResource } from '../model/validate';

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

export class ResourceClient {
  constructor(readonly ds: Datastore, private readonly validate: (obj: unknown) => Resource = validateResource) {}

  async get<K extends ResourceKind>(kind: K, name: string, namespace?: string): Promise<ResourceOfKind<K> | undefined> {
    const kv = await this.ds.get(keyOf(kind, name, namespace));
    return kv ? resourceFromKv<ResourceOfKind<K>>(kv) : undefined;
  }

  /** All resources of a kind (in one namespace, or all namespaces when `namespace` is undefined). */
  async list<K extends ResourceKind>(kind: K, namespace?: string): Promise<{ items: ResourceOfKind<K>[]; revision: number }> {
    const prefix = isNamespaced(kind) && namespace ? resourcePrefix(KIND_PLURAL[kind], namespace) : resourcePrefix(KIND_PLURAL[kind]);
    const res = await this.ds.list(prefix);
    return { items: res.items.map((kv) => resourceFromKv<ResourceOfKind<K>>(kv)), revision: res.revision };
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
    try {
      const { prevKv } = await this.ds.delete(key, { expectedRevision: expected });
      return resourceFromKv<ResourceOfKind<K>>(prevKv);
    } catch (e) {
      if (e instanceof NotFoundError) {
        throw new ResourceNotFoundError(kind, name, namespaceOf(kind, namespace));
      }
      throw e;
    }
  }
}

export class ResourceNotFoundError extends Error {
  readonly code = 'ERR_RESOURCE_NOT_FOUND';
  constructor(readonly kind: ResourceKind, readonly resourceName: string, readonly namespace?: string) {
    super(`resource does not exist: ${kind}(${namespace ? `${namespace}/` : ''}${resourceName})`);
    this.name = 'ResourceNotFoundError';
  }
}
