/**
 * ResourceState: the current v3 resources the calc graph and the reference evaluator read.
 *
 * Contract: keys are `namespace/name` for namespaced kinds (WorkloadEndpoint, NetworkPolicy,
 * NetworkSet) and
 * `name` otherwise; `policies` holds both policy kinds under `<kind>/<key>`. Upsert replaces,
 * delete of an absent key is a no-op. No validation here: resources are expected to come from
 * src/model's validation (the syncer drops invalid ones).
 */
import type {
  GlobalNetworkPolicy,
  GlobalNetworkSet,
  HostEndpoint,
  NetworkSet,
  IPPool,
  Namespace,
  NetworkPolicy,
  Node,
  Profile,
  Resource,
  ResourceKind,
  Tier,
  WorkloadEndpoint,
  WorkloadEndpointPort,
} from '../model';
import { builtinProfile, namespaceOfProfile, namespaceProfile, DEFAULT_ALLOW_PROFILE } from '../model/derived';

/** The built-in default-allow profile, one object for every endpoint naming it. */
const DEFAULT_ALLOW = builtinProfile(DEFAULT_ALLOW_PROFILE)!;

export type AnyPolicy = NetworkPolicy | GlobalNetworkPolicy;

/** The key of a resource within its kind. */
export function resourceKey(r: Resource): string {
  if (r.kind === 'WorkloadEndpoint' || r.kind === 'NetworkPolicy' || r.kind === 'NetworkSet') {
    return `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
  }
  return r.metadata.name;
}

export function policyKey(kind: 'NetworkPolicy' | 'GlobalNetworkPolicy', key: string): string {
  return `${kind}/${key}`;
}

/**
 * The endpoints as the graph keeps them: only the fields the graph and the reference evaluator
 * read (name, namespace, labels; node, orchestrator, service account, addresses, profiles,
 * interface, MAC, named ports), with one copy of each equal value. Parsed from JSON, every
 * endpoint has its own copies of its label values, namespace, node and profile names, and
 * fields nothing here reads (uid, timestamps, resourceVersion, annotations, pod, container id):
 * at 100,000 endpoints ~1 KB each. Shared values are strings, `profiles` lists, label maps
 * (endpoints with equal own labels share one object) and `ports` lists; they are never mutated
 * (the graph replaces, never edits, a resource). Values only, never keys of objects (V8
 * internalises those already); a cache, cleared when it holds more entries than the endpoints
 * could need.
 */
class EndpointInterner {
  private readonly strs = new Map<string, string>();
  private readonly lists = new Map<string, string[]>();
  private readonly labelMaps = new Map<string, Record<string, string>>();
  private readonly portLists = new Map<string, WorkloadEndpointPort[]>();

  str(x: string): string {
    const y = this.strs.get(x);
    if (y !== undefined) return y;
    this.strs.set(x, x);
    return x;
  }

  list(xs: string[]): string[] {
    const k = xs.join('\u0000');
    const y = this.lists.get(k);
    if (y !== undefined && y.length === xs.length) return y;
    const own = xs.map((x) => this.str(x));
    this.lists.set(k, own);
    return own;
  }

  /** One object per distinct label map (same keys in the same order, same values). */
  labels(m: Record<string, string>): Record<string, string> {
    let k = '';
    for (const [lk, lv] of Object.entries(m)) k += `${lk}\u0000${lv}\u0000`;
    const y = this.labelMaps.get(k);
    if (y !== undefined) return y;
    const own: Record<string, string> = {};
    for (const [lk, lv] of Object.entries(m)) own[lk] = this.str(lv);
    this.labelMaps.set(k, own);
    return own;
  }

  ports(ps: WorkloadEndpointPort[]): WorkloadEndpointPort[] {
    const k = JSON.stringify(ps);
    const y = this.portLists.get(k);
    if (y !== undefined) return y;
    const own = ps.map((p) => ({ ...p, name: this.str(p.name) }));
    this.portLists.set(k, own);
    return own;
  }

  /** The compact equal (for what is read here) of an endpoint; the input is not changed. */
  endpoint(r: WorkloadEndpoint, live: number): WorkloadEndpoint {
    if (this.strs.size + this.lists.size + this.labelMaps.size + this.portLists.size > 16 * live + 4096) {
      this.strs.clear();
      this.lists.clear();
      this.labelMaps.clear();
      this.portLists.clear();
    }
    const m = r.metadata;
    const metadata: WorkloadEndpoint['metadata'] = { name: m.name };
    if (m.namespace !== undefined) metadata.namespace = this.str(m.namespace);
    if (m.labels !== undefined) metadata.labels = this.labels(m.labels);
    const s = r.spec;
    const spec: WorkloadEndpoint['spec'] = {};
    if (s.node !== undefined) spec.node = this.str(s.node);
    if (s.orchestrator !== undefined) spec.orchestrator = this.str(s.orchestrator);
    if (s.serviceAccountName !== undefined) spec.serviceAccountName = this.str(s.serviceAccountName);
    if (s.ipNetworks !== undefined) spec.ipNetworks = s.ipNetworks.slice();
    if (s.profiles !== undefined) spec.profiles = this.list(s.profiles);
    if (s.interfaceName !== undefined) spec.interfaceName = s.interfaceName;
    if (s.mac !== undefined) spec.mac = s.mac;
    if (s.ports !== undefined) spec.ports = this.ports(s.ports);
    return { apiVersion: r.apiVersion, kind: r.kind, metadata, spec };
  }
}

export class ResourceState {
  readonly endpoints = new Map<string, WorkloadEndpoint>();
  private readonly interner = new EndpointInterner();
  readonly profiles = new Map<string, Profile>();
  readonly tiers = new Map<string, Tier>();
  readonly policies = new Map<string, AnyPolicy>();
  readonly namespaces = new Map<string, Namespace>();
  readonly nodes = new Map<string, Node>();
  readonly pools = new Map<string, IPPool>();
  /** GlobalNetworkSets by name, NetworkSets by `namespace/name`. */
  readonly globalNetworkSets = new Map<string, GlobalNetworkSet>();
  readonly networkSets = new Map<string, NetworkSet>();
  readonly hostEndpoints = new Map<string, HostEndpoint>();
  /** kns.<ns> profiles derived from namespaces, made on first use (one object per namespace version). */
  private readonly derivedProfiles = new Map<string, Profile>();

  /**
   * The profile an endpoint's `profiles` entry names: the built-in `projectcalico-default-allow`
   * (whatever is stored under that name), the stored one, else the `kns.<ns>` profile derived
   * from Namespace `<ns>` as Calico's Kubernetes datastore does.
   */
  profile(name: string): Profile | undefined {
    if (name === DEFAULT_ALLOW_PROFILE) return DEFAULT_ALLOW;
    const stored = this.profiles.get(name);
    if (stored !== undefined) return stored;
    const ns = namespaceOfProfile(name);
    if (ns === undefined) return undefined;
    let derived = this.derivedProfiles.get(ns);
    if (derived === undefined) {
      const n = this.namespaces.get(ns);
      if (n === undefined) return undefined;
      derived = namespaceProfile(n);
      this.derivedProfiles.set(ns, derived);
    }
    return derived;
  }

  upsert(r: Resource): void {
    const key = resourceKey(r);
    switch (r.kind) {
      case 'WorkloadEndpoint':
        this.endpoints.set(key, this.interner.endpoint(r, this.endpoints.size));
        break;
      case 'Profile':
        this.profiles.set(key, r);
        break;
      case 'Tier':
        this.tiers.set(key, r);
        break;
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy':
        this.policies.set(policyKey(r.kind, key), r);
        break;
      case 'Namespace':
        this.namespaces.set(key, r);
        this.derivedProfiles.delete(key);
        break;
      case 'Node':
        this.nodes.set(key, r);
        break;
      case 'IPPool':
        this.pools.set(key, r);
        break;
      case 'GlobalNetworkSet':
        this.globalNetworkSets.set(key, r);
        break;
      case 'NetworkSet':
        this.networkSets.set(key, r);
        break;
      case 'HostEndpoint':
        this.hostEndpoints.set(key, r);
        break;
    }
  }

  delete(kind: ResourceKind, key: string): void {
    switch (kind) {
      case 'WorkloadEndpoint':
        this.endpoints.delete(key);
        break;
      case 'Profile':
        this.profiles.delete(key);
        break;
      case 'Tier':
        this.tiers.delete(key);
        break;
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy':
        this.policies.delete(policyKey(kind, key));
        break;
      case 'Namespace':
        this.namespaces.delete(key);
        this.derivedProfiles.delete(key);
        break;
      case 'Node':
        this.nodes.delete(key);
        break;
      case 'IPPool':
        this.pools.delete(key);
        break;
      case 'GlobalNetworkSet':
        this.globalNetworkSets.delete(key);
        break;
      case 'NetworkSet':
        this.networkSets.delete(key);
        break;
      case 'HostEndpoint':
        this.hostEndpoints.delete(key);
        break;
    }
  }

  /** Every resource, in a fixed order (for replay tests). */
  all(): Resource[] {
    return [
      ...this.pools.values(),
      ...this.nodes.values(),
      ...this.namespaces.values(),
      ...this.tiers.values(),
      ...this.profiles.values(),
      ...this.policies.values(),
      ...this.endpoints.values(),
      ...this.globalNetworkSets.values(),
      ...this.networkSets.values(),
    ];
  }
}
