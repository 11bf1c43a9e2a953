/**
 * RouteManager: Calico networking on this host — routes to other nodes' workloads, IPIP, VXLAN
 * and NAT outgoing. Input is the compiler's RoutingState (pools, nodes with their address and subnet,
 * remote workload /32s and their node); output is kernel routes, the BPF maps the workload and
 * uplink programs read (bpf/lib/route.h) and the uplink's tc programs. Felix's manager shape:
 * the update calls only record the input and mark the manager dirty; apply() does the kernel I/O.
 *
 *   setState(node, routing) ─┐ mark dirty   apply() ── ApplyLoop (apply-loop.ts): serialised,
 *   applyDelta(delta) ───────┤                          a failure retries itself with backoff
 *   setLearnedRoutes(bgp) ───┘                  │
 *                                               ▼ in this order:
 *     1. planRoutes(), planRoutes6()  plan.ts         pure: next hop node, same subnet, IPIP/VXLAN
 *     2. checkPortRange()             sweep.ts        NAT range ∩ ip_local_port_range → refuse
 *     3. resolve() the uplink         uplink.ts       (on reconcile / node address / MTU change)
 *        detect() the MTU             mtu.ts          ipipMTU / vxlanMTU, or the links' smallest MTU − 20 / − 50
 *     4. read() kernel and maps       kernel-routes.ts, route-map.ts   (on reconcile)
 *     5. nextHop() per other subnet   kernel-routes.ts `ip route get`, cached
 *     6. planNetworking()             plan.ts         pure: map entries + kernel routes
 *     7. writeNodes(), writePools(),  route-map.ts    what the programs consult to decide …
 *        writeVxcfg() (VXLAN on)                      (VNI, port, VXLAN MTU)
 *     8. sync() kernel routes         kernel-routes.ts  `ip -batch`, proto 122 [mtu <IPIP/VXLAN MTU>];
 *                                                     IPv6 routes through a second instance (`ip -6`)
 *     9. writeRoutes()                route-map.ts    … before the routes that make them act
 *        writeVxcfg() (VXLAN off)                     after the routes that used it
 *    10. writeNetcfg()                route-map.ts    node address last: nothing acts half-written
 *    11. attach()                     uplink.ts       tc ingress/egress, once per ifindex
 *    12. writeFile()                  mtu.ts          the MTU file new workloads are sized by
 *   sweepNat(), natStatus()           sweep.ts        NAT mappings of finished flows; metrics
 *
 * Contract:
 * - Remote routes are the compiler's remote workload /32s (routeSource `datastore`, the default)
 *   or, with routeSource `bgp`, the blocks bird learned (setLearnedRoutes, from src/bgp); both
 *   are planned the same way (plan.ts states the Calico rules).
 * - Everything this manager writes is recognisable after a restart: kernel routes by protocol
 *   `routeProtocol` (default 122, "tortie"), maps by their pinned names. A reconcile (setState,
 *   or a partly refused batch) reads the kernel, writes the differences and sweeps what is not
 *   wanted (mark-and-sweep); apply() after deltas writes only differences against what it last
 *   wrote.
 * - Failures do not stall what can be done: a node the underlay cannot reach and routes the
 *   kernel refuses are left out, everything else is written, and the first such error is thrown
 *   at the end. Any failure leaves the manager dirty (the agent answers with a reconcile; the
 *   ApplyLoop retries on its own too).
 * - Without an address of its own, the node programs nothing (netcfg stays zero: the programs
 *   neither encapsulate nor NAT nor decapsulate) — policy-only mode ends up here.
 * - VXLAN (vxlanMode) is encapsulated by the programs (bpf/lib/vxlan.h) with `vxlan` (VNI, port;
 *   Calico's 4096 and 4789 by default); IPv6 pools' vxlanMode by bpf/lib/vxlan6.h (outer IPv6,
 *   the same VNI and port, routes with `mtu lock <vxlanMTUV6>`).
 * - NAT66: natOutgoing IPv6 pools are SNATed to this node's IPv6 address on the uplink
 *   (bpf/lib/nat6.h) once the node has one: tortie_pool6_v1 / tortie_node6_v1 / tortie_netcfg6_v1
 *   are written beside their IPv4 counterparts, the same port-range check guards both, and the
 *   sweep returns both tables' memory.
 * - IPv6: remote workload /128s (or learned IPv6 blocks) route directly to the node's
 *   `bgp.ipv6Address` within this node's IPv6 subnet, or over VXLAN (vxlanMode of the IPv6 pool;
 *   across subnets through the underlay next hop `ip route get` gives); other IPv6 routes are
 *   skipped with a warning naming why (plan.ts). The uplink is found by the IPv4 node address, or by the IPv6
 *   one on a node that has only that.
 */
import type { CalcDelta, RoutingState } from '../../calc/types';
import type { Logger } from '../../util/log';
import { silentLogger } from '../../util/log';
import { BACKOFF } from '../../util/retry';
import { loadUplink, resolveNatOptions, type LoadOptions, type NatOptions, type UplinkDatapath } from '../bpf/loader';
import { readNetStats, readVxStats, type NetStats, type VxStats } from '../bpf/net-codecs';
import type { BpfMap } from '../native';
import type { NatStatus } from '../bpf/nat';
import { planNetworking, planRoutes, planRoutes6, underlayTargets, type RoutePlan, type RoutePlan6 } from './plan';
import { KernelRoutes } from './kernel-routes';
import { RouteMaps } from './route-map';
import { Uplink } from './uplink';
import { NatUpkeep } from './sweep';
import { ApplyLoop } from './apply-loop';
import { Mtu, type MtuInForce, type MtuOptions } from './mtu';
import { prefix4 } from '../bpf/encode';
import { RouteError } from './errors';
import { VXLAN_DEFAULTS } from '../../primitives';

export const DEFAULT_ROUTE_PROTOCOL = 122;

interface PlanSummary {
  nodeIp?: string;
  routes: number;
  encap: number;
  vxlan: number;
  skipped: number;
}

function summarise(p: RoutePlan | RoutePlan6): PlanSummary {
  let encap = 0;
  let vxlan = 0;
  for (const r of p.routes as { encap?: unknown; vxlan?: unknown }[]) {
    if (r.encap) {
      encap++;
      if (r.vxlan) vxlan++;
    }
  }
  return { nodeIp: p.nodeIp, routes: p.routes.length, encap, vxlan, skipped: p.skipped.length };
}

export interface RouteManagerOptions {
  pinRoot: string;
  /** max_entries of the policy maps the uplink object shares with the workload object (loader mapSizes). */
  mapSizes?: LoadOptions['mapSizes'];
  /** Uplink interface name; default: the interface that holds this node's address. */
  uplink?: string;
  /** Operate on another network namespace (tests): name for `ip -n`, path for setns. */
  netns?: { name: string; path: string };
  /** Kernel route protocol number marking tortie's routes (default 122). */
  routeProtocol?: number;
  /**
   * Where the remote routes come from: `datastore` (default) — one per remote workload address,
   * from the compiler; `bgp` — what bird learned from its peers (per block), given with
   * setLearnedRoutes(); the compiler's workload routes are then ignored.
   */
  routeSource?: 'datastore' | 'bgp';
  nat?: NatOptions;
  /** IPIP MTU: Felix's ipipMTU (0 = detect), mtuIfacePattern, and the MTU file for the CNI plugin ('' = none). */
  mtu?: MtuOptions;
  /** VXLAN network identifier and UDP port (Felix's vxlanVNI, vxlanPort; default 4096, 4789). */
  vxlan?: { vni?: number; port?: number };
  /** Felix's natOutgoingAddress: SNAT source instead of the node address (undefined/'' = the node's). */
  natOutgoingAddress?: string;
  /** The workloads' conntrack (tortie_ct4_v3, tortie_ct6_v1): the NAT sweeps' judges of RSTs and FINs from outside. */
  ct4?: BpfMap;
  ct6?: BpfMap;
  objectDir?: string;
  log?: Logger;
}

export interface RouteStatus {
  nodeIp?: string;
  uplink?: string;
  routes: number;
  encapRoutes: number;
  /** This node's IPv6 address and its IPv6 routes programmed (direct). */
  nodeIp6?: string;
  routes6: number;
  skipped: number;
  natMappings: number;
  stats: NetStats;
  /** VXLAN packet counts (tortie_vxst_v1). */
  vxlan: VxStats;
  vxlanRoutes: number;
  /** Kernel writes since open (route add/replace/del lines, map updates/deletes). */
  writes: { routes: number; maps: number };
}

export class RouteManager {
  private readonly log: Logger;
  private readonly proto: number;
  private dp!: UplinkDatapath;
  private kernel!: KernelRoutes;
  private kernel6!: KernelRoutes;
  private rmaps!: RouteMaps;
  private uplink!: Uplink;
  private nat!: NatUpkeep;
  private readonly mtu: Mtu;
  private readonly loop: ApplyLoop;

  /** Desired inputs. */
  private nodeName?: string;
  private routing: RoutingState = { pools: [], nodes: [], workloadRoutes: [] };
  private readonly workloadRoutes = new Map<string, string>(); // cidr → node
  private dirty = true;
  /** Input changes so far: an apply that began before the latest change does not clear dirty. */
  private gen = 0;
  /** Reconcile: re-read the kernel's routes, the maps and the underlay before writing. */
  private needKernelRead = true;
  private uplinkFor?: string;                                  // node address the uplink was resolved for
  private natOutgoingAddress: string;
  private readonly vxlan: { vni: number; port: number };
  /** Counts of the last plans (status()); the plans themselves are not kept (~10 MiB at 100,000 routes). */
  private lastPlan?: PlanSummary;
  private lastPlan6?: PlanSummary;

  private constructor(private readonly o: RouteManagerOptions) {
    this.log = (o.log ?? silentLogger).child({ component: 'routes' });
    this.proto = o.routeProtocol ?? DEFAULT_ROUTE_PROTOCOL;
    if (!Number.isInteger(this.proto) || this.proto < 1 || this.proto > 255) {
      throw new RouteError('ERR_ROUTES_BAD_OPTION', `routeProtocol ${o.routeProtocol}: need an integer 1..255`);
    }
    this.mtu = new Mtu(o.mtu, { netns: o.netns?.name, log: this.log });
    this.natOutgoingAddress = o.natOutgoingAddress ?? '';
    const vni = o.vxlan?.vni ?? VXLAN_DEFAULTS.vni, port = o.vxlan?.port ?? VXLAN_DEFAULTS.port;
    if (!Number.isInteger(vni) || vni < 1 || vni > 0xffffff) throw new RouteError('ERR_ROUTES_BAD_OPTION', `vxlan vni ${vni}: need an integer 1..16777215`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RouteError('ERR_ROUTES_BAD_OPTION', `vxlan port ${port}: need an integer 1..65535`);
    this.vxlan = { vni, port };
    this.loop = new ApplyLoop(() => this.applyNow(), { backoff: BACKOFF.routeApply, log: this.log, what: 'routing apply' });
  }

  static async open(o: RouteManagerOptions): Promise<RouteManager> {
    const m = new RouteManager(o);
    m.dp = await loadUplink({ pinRoot: o.pinRoot, objectDir: o.objectDir, nat: resolveNatOptions(o.nat), mapSizes: o.mapSizes, ct4: o.ct4, ct6: o.ct6 });
    m.kernel = new KernelRoutes({ proto: m.proto, netns: o.netns?.name, log: m.log });
    m.kernel6 = new KernelRoutes({ proto: m.proto, netns: o.netns?.name, log: m.log, family: 6 });
    m.rmaps = new RouteMaps(m.dp.maps);
    m.uplink = new Uplink({ name: o.uplink, netns: o.netns, log: m.log });
    m.nat = new NatUpkeep(m.dp, { netns: o.netns?.name, ct4: o.ct4, ct6: o.ct6 });
    return m;
  }

  get maps(): UplinkDatapath['maps'] { return this.dp.maps; }

  // ---------------------------------------------------------------- input (marks dirty only)

  private markDirty(): void { this.dirty = true; this.gen++; }

  /** Full routing input (snapshot): replaces everything, including the workload routes. */
  setState(nodeName: string, routing: RoutingState): void {
    this.nodeName = nodeName;
    this.routing = { ...routing, workloadRoutes: [] };
    if (this.o.routeSource !== 'bgp') {
      this.workloadRoutes.clear();
      for (const r of routing.workloadRoutes) this.workloadRoutes.set(r.cidr, r.node);
    }
    this.needKernelRead = true;
    this.markDirty();
  }

  /** Incremental input from a CalcDelta; returns whether anything routing-related changed. */
  applyDelta(d: CalcDelta): boolean {
    let changed = false;
    if (d.routingChanged && d.routing) { this.routing = { ...d.routing, workloadRoutes: [] }; changed = true; }
    if (this.o.routeSource === 'bgp') {
      if (changed) this.markDirty();
      return changed;
    }
    for (const cidr of d.workloadRoutesRemoved) changed = this.workloadRoutes.delete(cidr) || changed;
    for (const r of d.workloadRoutesUpserted) { this.workloadRoutes.set(r.cidr, r.node); changed = true; }
    if (changed) this.markDirty();
    return changed;
  }

  /** routeSource 'bgp': the learned routes (cidr → node name), replacing the previous set. */
  setLearnedRoutes(routes: ReadonlyMap<string, string>): void {
    if (this.o.routeSource !== 'bgp') throw new RouteError('ERR_ROUTES_BAD_OPTION', 'learned routes need routeSource "bgp"');
    this.workloadRoutes.clear();
    for (const [cidr, node] of routes) this.workloadRoutes.set(cidr, node);
    this.markDirty();
  }

  /** Felix's ipipMTU / mtuIfacePattern / the MTU file changed (FelixConfiguration): re-detect and rewrite on apply(). */
  setMtu(m: MtuOptions): void {
    this.mtu.set(m); // throws on a bad pattern before anything changes
    this.uplinkFor = undefined; // re-read the links
    this.markDirty();
  }

  /** Felix's natOutgoingAddress changed ('' = the node address): new mappings use it after apply(). */
  setNatOutgoingAddress(ip: string): void {
    if (ip !== '') prefix4(`${ip}/32`); // throws on a bad address
    this.natOutgoingAddress = ip;
    this.markDirty();
  }

  /** The uplink's MTU changed: detect again and rewrite routes, netcfg and the MTU file. */
  uplinkMtuChanged(): Promise<void> {
    this.uplinkFor = undefined;
    this.markDirty();
    return this.apply();
  }

  /** The host and IPIP MTUs in force (after the first apply that found the uplink). */
  get mtuInForce(): MtuInForce | undefined { return this.mtu.current; }

  /** The uplink's interface went away (or was recreated): attach again on the next apply. */
  uplinkChanged(): void {
    this.uplink.changed();
    this.uplinkFor = undefined;
    this.needKernelRead = true; // the kernel dropped the routes through the old interface
    this.markDirty();
  }

  /** The uplink (re)appeared: resolve it again, attach, and point the programs at its ifindex. */
  async uplinkAppeared(): Promise<void> {
    this.uplinkChanged();
    await this.apply();
  }

  // ---------------------------------------------------------------- apply

  /**
   * Brings kernel routes, maps and the uplink programs to the desired state (the order in the
   * header). Calls are serialised; a failure leaves the manager dirty, is rethrown, and also
   * schedules a retry of its own (BACKOFF.routeApply).
   */
  apply(): Promise<void> { return this.loop.run(); }

  private async applyNow(): Promise<void> {
    if (!this.dirty || this.nodeName === undefined) return;
    const gen = this.gen;
    const plan = planRoutes(this.nodeName, this.routing, this.workloadRoutes);
    const plan6 = planRoutes6(this.nodeName, this.routing, this.workloadRoutes);
    for (const s of [...plan.skipped, ...plan6.skipped]) this.log.warn(s, 'workload route not programmed');
    const uplinkIp = plan.nodeIp ?? plan6.nodeIp;
    if (plan.nodeIp || plan6.nodeIp) await this.nat.checkPortRange();
    // Underlay facts (uplink, next hops towards other subnets) are re-read on every reconcile
    // and when this node's address changes; deltas reuse them.
    // A batch the kernel partly refused leaves its view stale: that is a reconcile too.
    const reconcile = this.needKernelRead || this.kernel.stale || this.kernel6.stale;
    if (reconcile || uplinkIp !== this.uplinkFor) {
      this.kernel.forgetNextHops();
      this.kernel6.forgetNextHops();
      const u = await this.uplink.resolve(uplinkIp);
      this.uplinkFor = uplinkIp;
      if (u) await this.mtu.detect(u);
    }
    if (reconcile) {
      await this.kernel.read();
      await this.kernel6.read();
      this.rmaps.read();
      this.needKernelRead = false;
    }
    const up = this.uplink.current;
    let deferred: RouteError | undefined;
    for (const [p, kernel] of [[plan, this.kernel], [plan6, this.kernel6]] as const) {
      if (!p.nodeIp || !up) continue;
      const targets = underlayTargets(p);
      await kernel.prefetchNextHops(targets.map((x) => x.nodeIp));
      for (const { node, nodeIp } of targets) {
        try {
          await kernel.nextHop(nodeIp);
        } catch (e) {
          // One unreachable node must not stall the others: its routes wait for the retry.
          deferred ??= e instanceof RouteError ? e : new RouteError('ERR_ROUTES_UNREACHABLE', `node ${node} (${nodeIp}): ${(e as Error).message}`);
        }
      }
    }
    const want = planNetworking({
      nodeName: this.nodeName, routing: this.routing, plan, plan6, uplink: up,
      gateways: new Map([...this.kernel.nextHops, ...this.kernel6.nextHops]),
      ipipMtu: this.mtu.current?.ipip ?? 0, snatIp: this.natOutgoingAddress,
      vxlanMtu: this.mtu.current?.vxlan ?? 0, vxlan6Mtu: this.mtu.current?.vxlan6 ?? 0, vxlan: this.vxlan,
    });
    this.rmaps.writeNodes(want);
    this.rmaps.writePools(want);
    // VXLAN's parameters before the routes that use them; when VXLAN goes off, after the routes
    // that used them are gone (a VXLAN route without them is dropped rather than sent bare).
    const vxlanOn = want.vxcfg.vni !== 0;
    if (vxlanOn) this.rmaps.writeVxcfg(want);
    // A route the kernel refuses (say, a next hop that is not on-link) must not keep the others
    // from working: the batch continues past it, the maps are written, and the error is thrown
    // at the end so that the agent retries (as a reconcile).
    const routeError4 = await this.kernel.sync(want.kernel, up?.name);
    const routeError = (await this.kernel6.sync(want.kernel6, up?.name)) ?? routeError4;
    this.rmaps.writeRoutes(want);
    if (!vxlanOn) this.rmaps.writeVxcfg(want);
    this.rmaps.writeNetcfg(want);
    this.uplink.attach(this.dp);
    if (uplinkIp !== undefined && up !== undefined) this.mtu.writeFile(this.routing.pools); // an IPv6-only node too
    this.lastPlan = summarise(plan);
    this.lastPlan6 = summarise(plan6);
    if (routeError ?? deferred) {
      this.markDirty();
      throw routeError ?? deferred;
    }
    if (this.gen === gen) this.dirty = false; // else an input changed meanwhile: the next apply writes it
    this.log.debug({ routes: plan.routes.length, encap: plan.routes.filter((r) => r.encap).length }, 'routes applied');
  }

  // ---------------------------------------------------------------- housekeeping and figures

  /** Deletes NAT mappings whose flow is over (see sweepNatEntries); returns how many. */
  sweepNat(now = process.hrtime.bigint()): number { return this.nat.sweep(now); }

  /** Occupancy, quota use and sweep deletions of the NAT table (metrics; refusals are drop counters). */
  natStatus(family: 4 | 6 = 4): NatStatus { return this.nat.status(family); }

  /** Entry counts of the networking maps as of the last apply / NAT sweep (metrics). */
  mapEntries(): Record<string, number> {
    return {
      rt4: this.rmaps.size(this.dp.maps.rt4), pool4: this.rmaps.size(this.dp.maps.pool4),
      node4: this.rmaps.size(this.dp.maps.node4), nat4: this.nat.entries,
      pool6: this.rmaps.size(this.dp.maps.pool6), node6: this.rmaps.size(this.dp.maps.node6), nat6: this.nat.entries6,
    };
  }

  status(): RouteStatus {
    const plan = this.lastPlan;
    return {
      nodeIp: plan?.nodeIp, uplink: this.uplink.current?.name, routes: plan?.routes ?? 0,
      encapRoutes: plan?.encap ?? 0,
      nodeIp6: this.lastPlan6?.nodeIp, routes6: this.lastPlan6?.nodeIp ? this.lastPlan6.routes : 0,
      skipped: (plan?.skipped ?? 0) + (this.lastPlan6?.skipped ?? 0),
      natMappings: this.dp.maps.nat4.entries().keys.length / 2, stats: readNetStats(this.dp.maps.netstat),
      vxlan: readVxStats(this.dp.maps.vxst), vxlanRoutes: plan?.vxlan ?? 0,
      writes: { routes: this.kernel.writes, maps: this.rmaps.writes },
    };
  }

  close(): void {
    this.loop.close();
    this.dp?.close();
  }
}
