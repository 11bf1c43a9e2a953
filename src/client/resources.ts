/**
 * ResourceClient: typed v3 resources over a Datastore (Calico's clientv3, in small).
 *
 * Contract:
 * - Every write validates the whole resource first (src/model), including that tortie enforces
 *   every field in it (unenforcedProblems); an invalid one is rejected with the model's
 *   ValidationError and nothing is written.
 * - Stored value = the validated resource as libcalico-go's clientv3 stores it (resources.go,
 *   etcdv3 backend), under `resourceKey(plural, name, namespace)` (Calico's key layout):
 *   `kind`, `apiVersion`, `metadata` (name, namespace, uid, creationTimestamp, labels,
 *   annotations, in Go's ObjectMeta order), `spec`; no `metadata.resourceVersion`. `uid` (a
 *   random UUID) and `creationTimestamp` (RFC 3339, seconds) are set on create and kept from
 *   the stored resource on every update, as clientv3 requires them. Policies (GNP, NP) carry
 *   the annotation `projectcalico.org/metadata: {"name":…}` Calico ≥ 3.30 writes; it is removed
 *   on read. On read, `metadata.resourceVersion` is the key's modRevision as a decimal string,
 *   so `update` of a read resource is a compare-and-swap (as calicoctl `replace`); without a
 *   resourceVersion, `update` replaces whatever is stored (still a compare-and-swap against the
 *   revision it read, so the kept uid is the stored one).
 * - Namespaced kinds default to namespace `default` (calicoctl's behaviour).
 * - Resources Calico has without anyone writing them are read as if stored (src/model/derived):
 *   the `default` Tier, the `projectcalico-default-allow` Profile (allow all; nothing stored
 *   under its name replaces it, and validation refuses writing it), and a `kns.<ns>` Profile per
 *   Namespace (a stored profile of that name wins). None can be deleted: the tier and the
 *   default-allow profile are built in, a kns profile goes with its Namespace.
 * - A Tier still holding policies cannot be deleted (Calico: "Cannot delete a non-empty tier").
 */
import { randomUUID } from 'node:crypto';
import type { Datastore, JsonValue, KeyValue } from '../datastore/types';
import { resourceKey, resourcePrefix } from '../datastore/keys';
import { casLoop } from '../datastore/cas';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../datastore/errors';
import { NAMESPACED_KINDS, type Resource, type ResourceKind, type ResourceOfKind } from '../model/types';
import { validateResource } from '../model/validate';
import { metaTimestamp } from '../model/values';
import { unenforcedProblems } from '../model/enforced';
import { ValidationError } from '../model/errors';
import { builtinProfile, builtinTier, namespaceOfProfile, namespaceProfile, ALWAYS_PRESENT_TIERS, BUILTIN_PROFILES } from '../model/derived';
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
  HostEndpoint: 'hostendpoints',
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

/** The annotation Calico's etcd backend (≥ 3.30) adds to policies: their v3 name, as JSON. */
export const POLICY_METADATA_ANNOTATION = 'projectcalico.org/metadata';
const POLICY_KINDS: ReadonlySet<string> = new Set(['GlobalNetworkPolicy', 'NetworkPolicy']);

/** A datastore kv of the resource layout → the resource with its resourceVersion. */
export function resourceFromKv<R extends Resource = Resource>(kv: KeyValue): R {
  return withStoreMeta(structuredClone(kv.value) as unknown as R, kv);
}

/**
 * resourceFromKv without the deep copy: only the top level and the metadata are new, everything
 * below is the stored value's own objects. For a reader that copies what it keeps and changes
 * nothing (checkResource: its result aliases nothing of its input). A 100,000-item first list
 * spent ~1 s in the copy, and as much again collecting it.
 */
export function resourceViewOfKv(kv: KeyValue): unknown {
  return withStoreMeta(copyOwn(kv.value) as unknown as Resource, kv);
}

/**
 * A shallow copy of `o`'s own enumerable properties, as `{ ...o }` makes it. Object.assign onto a
 * fresh object is several times faster than a spread for a first list's values, but it would run
 * Object.prototype's `__proto__` setter for an own `__proto__` key (JSON.parse makes those):
 * such an object is spread.
 */
function copyOwn(o: unknown): Record<string, unknown> {
  return o !== null && o !== undefined && Object.prototype.hasOwnProperty.call(o, '__proto__') ? { ...(o as object) } : Object.assign({}, o);
}

/** `r` (a copy of kv.value at least at its top level) with resourceVersion set and Calico's metadata annotation dropped. */
function withStoreMeta<R extends Resource>(r: R, kv: KeyValue): R {
  const meta = copyOwn(r.metadata) as unknown as R['metadata'];
  meta.resourceVersion = String(kv.modRevision);
  const ann = meta.annotations;
  if (POLICY_KINDS.has(r.kind) && ann && Object.prototype.hasOwnProperty.call(ann, POLICY_METADATA_ANNOTATION)) {
    const rest = { ...ann };
    delete rest[POLICY_METADATA_ANNOTATION];
    if (Object.keys(rest).length > 0) meta.annotations = rest;
    else delete meta.annotations;
  }
  r.metadata = meta;
  return r;
}

/**
 * Go's struct field order (json names) of the specs libcalico-go marshals, per kind and for the
 * nested structs whose order tortie's model does not keep. Fields not listed (tortie knows them,
 * Go's order is unknown here) follow in tortie's order; a JSON reader takes either.
 */
const RULE_ORDER = ['action', 'ipVersion', 'protocol', 'icmp', 'notProtocol', 'notICMP', 'source', 'destination', 'http', 'metadata'];
const ENTITY_ORDER = ['nets', 'selector', 'namespaceSelector', 'services', 'ports', 'notNets', 'notSelector', 'notPorts', 'serviceAccounts'];
const SPEC_ORDER: Partial<Record<string, readonly string[]>> = {
  WorkloadEndpoint: ['orchestrator', 'workload', 'node', 'containerID', 'pod', 'endpoint', 'serviceAccountName', 'ipNetworks', 'ipNATs',
    'ipv4Gateway', 'ipv6Gateway', 'profiles', 'interfaceName', 'mac', 'ports', 'allowSpoofedSourcePrefixes', 'qosControls'],
  IPPool: ['cidr', 'vxlanMode', 'ipipMode', 'natOutgoing', 'disabled', 'disableBGPExport', 'blockSize', 'nodeSelector', 'namespaceSelector', 'allowedUses', 'assignmentMode'],
  Node: ['bgp', 'ipv4VXLANTunnelAddr', 'vxlanTunnelMACAddr', 'ipv6VXLANTunnelAddr', 'vxlanTunnelMACAddrV6', 'orchRefs', 'wireguard', 'addresses', 'interfaces'],
  NetworkPolicy: ['tier', 'order', 'ingress', 'egress', 'selector', 'types', 'serviceAccountSelector', 'performanceHints'],
  GlobalNetworkPolicy: ['tier', 'order', 'ingress', 'egress', 'selector', 'types', 'doNotTrack', 'preDNAT', 'applyOnForward', 'serviceAccountSelector', 'namespaceSelector', 'performanceHints'],
  Profile: ['ingress', 'egress', 'labelsToApply'],
  Tier: ['order', 'defaultAction'],
  ClusterInformation: ['clusterGUID', 'clusterType', 'calicoVersion', 'datastoreReady', 'variant'],
};
const NODE_BGP_ORDER = ['asNumber', 'ipv4Address', 'ipv6Address', 'ipv4IPIPTunnelAddr', 'routeReflectorClusterID'];

function inOrder(o: unknown, order: readonly string[]): unknown {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return o;
  const src = o as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of order) if (src[k] !== undefined) out[k] = src[k];
  for (const [k, v] of Object.entries(src)) if (!(k in out)) out[k] = v;
  return out;
}

function specInGoOrder(kind: string, spec: unknown): unknown {
  const order = SPEC_ORDER[kind];
  if (order === undefined || typeof spec !== 'object' || spec === null) return spec;
  const out = inOrder(spec, order) as Record<string, unknown>;
  for (const dir of ['ingress', 'egress']) {
    if (!Array.isArray(out[dir])) continue;
    out[dir] = (out[dir] as unknown[]).map((r) => {
      const rule = inOrder(r, RULE_ORDER) as Record<string, unknown>;
      for (const side of ['source', 'destination']) if (rule[side] !== undefined) rule[side] = inOrder(rule[side], ENTITY_ORDER);
      return rule;
    });
  }
  if (kind === 'Node' && out.bgp !== undefined) out.bgp = inOrder(out.bgp, NODE_BGP_ORDER);
  return out;
}

/** Go's ObjectMeta field order (json names), for the fields tortie stores. */
const META_ORDER = ['name', 'generateName', 'namespace', 'selfLink', 'uid', 'generation', 'creationTimestamp', 'labels', 'annotations'];

/**
 * The stored form (see the contract above). `identity` is the stored resource's uid and
 * creationTimestamp when there is one (they win over the written resource's); otherwise the
 * written resource's, else new ones.
 */
function toStored(r: Resource, identity?: { uid?: string; creationTimestamp?: string }): JsonValue {
  const copy = structuredClone(r) as Resource;
  const meta: Record<string, unknown> = { ...copy.metadata };
  delete meta.resourceVersion;
  if (isNamespaced(copy.kind)) meta.namespace = meta.namespace || 'default';
  meta.uid = identity?.uid || meta.uid || randomUUID();
  meta.creationTimestamp = identity?.creationTimestamp || meta.creationTimestamp || metaTimestamp();
  if (POLICY_KINDS.has(copy.kind)) {
    meta.annotations = { ...(meta.annotations as Record<string, string> | undefined), [POLICY_METADATA_ANNOTATION]: JSON.stringify({ name: copy.metadata.name }) };
  }
  const ordered: Record<string, unknown> = {};
  for (const k of META_ORDER) if (meta[k] !== undefined) ordered[k] = meta[k];
  for (const [k, v] of Object.entries(meta)) if (!(k in ordered) && v !== undefined) ordered[k] = v;
  // TypeMeta is inlined first in Go's structs: kind, then apiVersion; then metadata, spec and
  // (Node: a struct Go always writes, `{}` when empty) status.
  const { kind, apiVersion, metadata: _m, spec, ...rest } = copy as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { kind, apiVersion, metadata: ordered };
  if (spec !== undefined) out.spec = specInGoOrder(copy.kind, spec);
  if (copy.kind === 'Node' && rest.status === undefined) rest.status = {};
  return { ...out, ...rest } as unknown as JsonValue;
}

function identityOf(kv: KeyValue | undefined): { uid?: string; creationTimestamp?: string } | undefined {
  const m = (kv?.value as { metadata?: { uid?: unknown; creationTimestamp?: unknown } } | undefined)?.metadata;
  if (!m) return undefined;
  return {
    uid: typeof m.uid === 'string' ? m.uid : undefined,
    creationTimestamp: typeof m.creationTimestamp === 'string' ? m.creationTimestamp : undefined,
  };
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
    if (kind === 'Profile') {
      const b = builtinProfile(name);
      if (b !== undefined) return b as ResourceOfKind<K>;
    }
    const kv = await this.ds.get(keyOf(kind, name, namespace));
    if (kv) return resourceFromKv<ResourceOfKind<K>>(kv);
    return (await this.derived(kind, name)) as ResourceOfKind<K> | undefined;
  }

  /** The resource Calico would have under this name without it being stored, if any. */
  private async derived(kind: ResourceKind, name: string): Promise<Resource | undefined> {
    if (kind === 'Tier') return builtinTier(name);
    if (kind === 'Profile') {
      const b = builtinProfile(name);
      if (b !== undefined) return b;
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
    let items = res.items.map((kv) => resourceFromKv<ResourceOfKind<K>>(kv));
    if (kind === 'Profile') {
      items = items.filter((r) => !BUILTIN_PROFILES.includes(r.metadata.name));
      for (const b of BUILTIN_PROFILES) items.push(builtinProfile(b) as ResourceOfKind<K>);
    }
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

  /**
   * Writes `r` over whatever is stored under its key, keeping the stored uid and
   * creationTimestamp: read, then compare-and-swap against that read (create when absent),
   * again on a lost race. With `expected`, only over that revision (ConflictError otherwise).
   */
  private async replaceKeepingIdentity(r: Resource, expected: number | undefined, mustExist: boolean): Promise<KeyValue> {
    const key = keyOfResource(r);
    // Without the user's resourceVersion a lost race is read again (src/datastore/cas.ts); with
    // it, the conflict is the user's.
    return casLoop(async () => {
      const cur = await this.ds.get(key);
      if (!cur) {
        if (mustExist || expected !== undefined) return this.ds.update(key, toStored(r), { expectedRevision: expected }); // NotFoundError
        return this.ds.create(key, toStored(r));
      }
      return this.ds.update(key, toStored(r, identityOf(cur)), { expectedRevision: expected ?? cur.modRevision });
    }, {
      attempts: expected === undefined ? 100 : 1,
      conflicts: mustExist ? [ConflictError, AlreadyExistsError] : [ConflictError, AlreadyExistsError, NotFoundError],
    });
  }

  /** Replace an existing resource; a compare-and-swap when it carries a resourceVersion. */
  async update<R extends Resource>(obj: R): Promise<R> {
    const r = this.validate(obj) as R;
    return resourceFromKv<R>(await this.replaceKeepingIdentity(r, expectedRevisionOf(obj), true));
  }

  /** Create or replace (calicoctl apply). */
  async apply<R extends Resource>(obj: R): Promise<R> {
    const r = this.validate(obj) as R;
    return resourceFromKv<R>(await this.replaceKeepingIdentity(r, expectedRevisionOf(obj), false));
  }

  async delete<K extends ResourceKind>(kind: K, name: string, namespace?: string, resourceVersion?: string): Promise<ResourceOfKind<K>> {
    const key = keyOf(kind, name, namespace);
    const expected = resourceVersion ? Number(resourceVersion) : undefined;
    if (kind === 'Tier') await this.checkTierDeletable(name);
    if (kind === 'Profile' && BUILTIN_PROFILES.includes(name)) {
      throw new DeleteRefusedError(`Profile(${name}): cannot delete the ${name} profile (it is built in)`);
    }
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

/** A delete Calico refuses (built-in tier or profile, non-empty tier, derived profile). */
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
