/**
 * RouteCalculator — calc graph node, apart from the policy compiler: the routing inputs of the
 * node's dataplane (src/dataplane/routing/plan.ts plans kernel and BPF routes from them).
 *
 *   IPPool, Node ──mark──────> pools (with Calico's defaults), nodes (BGP IPv4/IPv6 address, IPIP tunnel address)
 *   WorkloadEndpoint ──mark──> remote workload routes: endpoint → its CIDRs; CIDR → owners (an
 *                              address owned by several endpoints routes to the smallest key's node)
 *                     │ emit(): only what was marked
 *                     ▼
 *   delta.routingChanged / routing (pools + nodes in full), workloadRoutesUpserted / Removed (by CIDR)
 *
 * It reads the shared ResourceState and nothing of the policy compiler; CalcGraph runs it in its
 * flush so one delta carries both (the agent applies one delta at a time).
 *
 * Contract: marks in any order, for resources that may not exist; output depends only on the
 * current resources: `routing` = the pools and nodes sorted by name, `workloadRoutes` = for every
 * address (IPv4 /32, IPv6 /128) of a WorkloadEndpoint on another node, that node; CIDRs sorted IPv4
 * first, then by address and length. Every owner add has one
 * matching remove (an endpoint's previous CIDRs are released before its current ones are taken).
 */
import type { ResourceKind } from '../model';
import { fewAdd, fewDelete, fewValues, type Few } from './compact';
import { defaultBlockSize, formatCidr, IPPOOL_DEFAULTS, maskCidr, tryParseCidrOrIp, type Cidr } from '../primitives';
import type { ResourceState } from './store';
import type { CalcDelta, RoutingState } from './types';

/** The part of a CalcDelta this node writes. */
export type RouteDelta = Pick<CalcDelta, 'routingChanged' | 'routing' | 'workloadRoutesUpserted' | 'workloadRoutesRemoved'>;

/** Route order: IPv4 before IPv6, then by address bytes, then by prefix length. */
function compareRouteCidr(a: Cidr, b: Cidr): number {
  if (a.ip.version !== b.ip.version) return a.ip.version - b.ip.version;
  for (let i = 0; i < a.ip.bytes.length; i++) {
    const d = a.ip.bytes[i]! - b.ip.bytes[i]!;
    if (d !== 0) return d;
  }
  return a.prefix - b.prefix;
}

export class RouteCalculator {
  private routingDirty = true;
  private routing: RoutingState = { pools: [], nodes: [], workloadRoutes: [] };
  private emittedRouting = '';
  private readonly dirtyRoutes = new Set<string>();
  /** Endpoint key → its route CIDRs; CIDR → the endpoints that have it (usually one each). */
  private readonly routesOf = new Map<string, Few<string>>();
  private readonly routeOwners = new Map<string, Few<string>>();
  /** CIDR → node, as last emitted. */
  private readonly emittedRoutes = new Map<string, string>();

  constructor(
    private readonly resources: ResourceState,
    private readonly nodeName: string,
  ) {}

  /**
   * A resource changed (call before and after the store changes it, or either: marks are
   * idempotent): IPPool and Node mark the routing state, a WorkloadEndpoint (key
   * `namespace/name`) its routes; other kinds are not read here.
   */
  mark(kind: ResourceKind, key: string): void {
    if (kind === 'WorkloadEndpoint') this.dirtyRoutes.add(key);
    else if (kind === 'IPPool' || kind === 'Node') this.routingDirty = true;
  }

  /**
   * Routing state when marked, then the remote workload routes of the marked endpoints. `quiet`
   * (a flush whose delta is discarded for a snapshot): the state moves as it would, but the
   * delta's route lists are not built (at 100,000 endpoints, every remote address sorted once
   * for nothing before the snapshot sorts them again).
   */
  emit(delta: RouteDelta, quiet = false): void {
    if (this.routingDirty) {
      this.routingDirty = false;
      this.routing = this.computeRouting();
      const s = JSON.stringify(this.routing);
      if (s !== this.emittedRouting) {
        this.emittedRouting = s;
        delta.routingChanged = true;
        delta.routing = { ...this.routing, workloadRoutes: [] };
      }
    }
    this.flushRoutes(delta, quiet);
  }

  /** The whole current routing input (as of the last emit). */
  snapshot(): RoutingState {
    const workloadRoutes = [...this.emittedRoutes]
      .map(([cidr, node]) => ({ cidr, node, c: tryParseCidrOrIp(cidr)! }))
      .sort((a, b) => compareRouteCidr(a.c, b.c))
      .map(({ cidr, node }) => ({ cidr, node }));
    return { ...this.routing, workloadRoutes };
  }

  /** Remote workload routes of the dirty endpoints, diffed per address. */
  private flushRoutes(delta: RouteDelta, quiet: boolean): void {
    const upserts = new Map<string, string>();
    const removals = new Set<string>();
    // Any order: the owner of an address is chosen by sorting its owners, and the delta's lists are sorted below.
    for (const key of this.dirtyRoutes) {
      const w = this.resources.endpoints.get(key);
      const now: string[] = [];
      if (w !== undefined && w.spec.node !== undefined && w.spec.node !== this.nodeName) {
        for (const n of w.spec.ipNetworks ?? []) {
          const c = tryParseCidrOrIp(n);
          if (c !== undefined) now.push(formatCidr(maskCidr(c)));
        }
      }
      for (const cidr of fewValues(this.routesOf.get(key))) {
        const owners = fewDelete(this.routeOwners.get(cidr), key);
        if (owners === undefined) this.routeOwners.delete(cidr);
        else this.routeOwners.set(cidr, owners);
        removals.add(cidr);
      }
      let mine: Few<string>;
      for (const cidr of now) {
        mine = fewAdd(mine, cidr);
        this.routeOwners.set(cidr, fewAdd(this.routeOwners.get(cidr), key));
        removals.add(cidr);
      }
      if (mine !== undefined) this.routesOf.set(key, mine);
      else this.routesOf.delete(key);
    }
    this.dirtyRoutes.clear();
    // An address owned by several endpoints routes to the smallest key's node (deterministic).
    for (const cidr of removals) {
      const owners = this.routeOwners.get(cidr);
      const prev = this.emittedRoutes.get(cidr);
      if (owners === undefined) {
        if (prev !== undefined) {
          this.emittedRoutes.delete(cidr);
          delta.workloadRoutesRemoved.push(cidr);
        }
        continue;
      }
      const owner = owners instanceof Set ? [...owners].sort()[0]! : owners;
      const node = this.resources.endpoints.get(owner)!.spec.node!;
      if (prev !== node) {
        this.emittedRoutes.set(cidr, node);
        if (!quiet) upserts.set(cidr, node);
      }
    }
    if (quiet) return;
    const byCidr = <T>(xs: T[], cidrOf: (x: T) => string): T[] =>
      xs
        .map((x) => ({ x, c: tryParseCidrOrIp(cidrOf(x))! }))
        .sort((a, b) => compareRouteCidr(a.c, b.c))
        .map((e) => e.x);
    delta.workloadRoutesUpserted = byCidr([...upserts].map(([cidr, node]) => ({ cidr, node })), (r) => r.cidr);
    delta.workloadRoutesRemoved = byCidr(delta.workloadRoutesRemoved, (c) => c);
  }

  private computeRouting(): RoutingState {
    const s = this.resources;
    const pools = [...s.pools.values()]
      .map((p) => ({
        name: p.metadata.name,
        cidr: p.spec.cidr,
        ipipMode: p.spec.ipipMode ?? IPPOOL_DEFAULTS.ipipMode,
        vxlanMode: p.spec.vxlanMode ?? IPPOOL_DEFAULTS.vxlanMode,
        natOutgoing: p.spec.natOutgoing ?? IPPOOL_DEFAULTS.natOutgoing,
        disabled: p.spec.disabled ?? false,
        blockSize: p.spec.blockSize ?? (p.spec.cidr.includes(':') ? defaultBlockSize(6) : IPPOOL_DEFAULTS.blockSizeV4),
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const nodes = [...s.nodes.values()]
      .map((n) => {
        const o: RoutingState['nodes'][number] = { name: n.metadata.name };
        if (n.spec.bgp?.ipv4Address !== undefined) o.ipv4Address = n.spec.bgp.ipv4Address;
        if (n.spec.bgp?.ipv6Address !== undefined) o.ipv6Address = n.spec.bgp.ipv6Address;
        if (n.spec.bgp?.ipv4IPIPTunnelAddr !== undefined) o.ipv4IPIPTunnelAddr = n.spec.bgp.ipv4IPIPTunnelAddr;
        return o;
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { pools, nodes, workloadRoutes: [] };
  }
}
