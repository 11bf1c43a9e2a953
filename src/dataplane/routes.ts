/**
 * RouteManager: Calico networking on this host — routes to other nodes' workloads, IPIP and NAT
 * outgoing. Input is the compiler's RoutingState (pools, nodes with their address and
 * subnet, remote workload /32s and their node); output is kernel routes and the BPF maps the
 * workload and uplink programs read (bpf/lib/route.h), plus the uplink's tc programs.
 *
 *   setState(nodeName, routing) ─┐                     ┌─> tortie_netcfg_v1  (node address, uplink)
 *   applyDelta(delta) ───────────┼─> desired (pure) ───┼─> tortie_node4_v1 / tortie_pool4_v1
 *                                │   planRoutes()      ├─> tortie_rt4_v1     (cidr → node, ENCAP)
 *   apply() ─────────────────────┘                     ├─> ip route <cidr> via <next hop> dev <uplink>
 *                                                      │       proto 122 [mtu <IPIP MTU>]
 *                                                      └─> tc ingress/egress on the uplink (tortie_uplink)
 *
 * Contract:
 * - Remote routes are the compiler's remote workload /32s (routeSource `datastore`, the default)
 *   or, with routeSource `bgp`, the blocks bird learned (setLearnedRoutes, from src/bgp); both
 *   are planned the same way below.
 * - Per remote workload route: the node's address comes from its Node resource
 *   (`bgp.ipv4Address`, with its subnet). Same subnet as this node (decided by this node's prefix)
 *   → next hop is the node itself; otherwise the underlay next hop towards it (`ip route get`).
 *   IPIP when the workload's pool says `Always`, or `CrossSubnet` and the node is in another
 *   subnet; such routes carry `mtu <IPIP MTU>` so the kernel answers frag-needed (or
 *   fragments) before the uplink program adds the outer header. Routes to this node's own
 *   workloads are the CNI plugin's, never touched here.
 * - The IPIP MTU is Felix's: `ipipMTU` when set, else detected — the smallest MTU of the host
 *   interfaces matching `mtuIfacePattern` (the uplink's when none matches), less the 20-byte
 *   IPIP header (AWS: 9001 → 8981). It is also in tortie_netcfg_v1 (the workload program's fast
 *   path leaves bigger packets to the kernel route) and, as Calico's /var/lib/calico/mtu, in the
 *   MTU file the CNI plugin sizes new workloads by: the IPIP MTU when a pool encapsulates, else
 *   the host MTU. setMtu() and setNatOutgoingAddress() change them while running.
 * - Everything this manager writes is recognisable after a restart: kernel routes by protocol
 *   `routeProtocol` (default 122, "tortie"), maps by their pinned names. reconcile() reads the
 *   kernel, writes the differences and sweeps what is not wanted (mark-and-sweep); apply() after
 *   deltas writes only differences against what it last wrote. Any failure throws and leaves the
 *   manager dirty; the agent answers with a reconcile.
 * - Without an address of its own, the node programs nothing (netcfg stays zero: the programs
 *   neither encapsulate nor NAT nor decapsulate) — policy-only mode ends up here.
 * - VXLAN modes are not implemented: such pools route without encapsulation (warned once).
 */
import type { CalcDelta, RoutingState } from '../calc/types';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import { run } from '../util/netns';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadUplink, resolveNatOptions, type NatOptions, type UplinkDatapath } from './bpf/loader';
import { cidr4ForMap } from './bpf/encode';
import {
  lpm4Key, lpm4KeyCidr, netcfgCodec, nodeInfoCodec, nodeKeyCodec, poolCodec, routeCodec, readNetStats,
  NETCFG_KEY, NODE_F, POOL_F, RT_F, type NetStats,
} from './bpf/net-codecs';
import { tcAttach, type BpfMap } from './native';
import { ctAcceptedClose, readNatQuota, sweepNatEntries, type CtCloseLookup, type NatStatus } from './bpf/nat';
import { TortieError } from '../util/errors';
import { BACKOFF, backoffMs } from '../util/retry';
import { cidr4Contains } from '../primitives';

export const DEFAULT_ROUTE_PROTOCOL = 122;
export const IPIP_OVERHEAD = 20;
/** Felix's default MTUIfacePattern: the usual names of physical NICs. */
export const DEFAULT_MTU_PATTERN = '^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)';

export class RouteError extends TortieError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

export interface RouteManagerOptions {
  pinRoot: string;
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
  /** Felix's natOutgoingAddress: SNAT source instead of the node address (undefined/'' = the node's). */
  natOutgoingAddress?: string;
  /** The workloads' conntrack (tortie_ct4_v3): the NAT sweep's judge of RSTs from outside. */
  ct4?: BpfMap;
  objectDir?: string;
  log?: Logger;
}

export interface MtuOptions {
  ipipMtu: number;
  ifacePattern: string;
  file?: string;
}

/** Felix's MTU detection: the smallest MTU of the links whose name matches `pattern`; undefined when none does. */
export function smallestMatchingMtu(links: readonly { ifname: string; mtu: number }[], pattern: string): number | undefined {
  const re = new RegExp(pattern);
  let best: number | undefined;
  for (const l of links) if (re.test(l.ifname) && (best === undefined || l.mtu < best)) best = l.mtu;
  return best;
}

// ------------------------------------------------------------------ pure planning

export interface PlannedRoute {
  cidr: string;
  node: string;
  nodeIp: string;
  encap: boolean;
  sameSubnet: boolean;
}

export interface RoutePlan {
  /** This node's address (no prefix), or undefined: nothing is programmed. */
  nodeIp?: string;
  routes: PlannedRoute[];
  /** Routes that could not be planned (unknown node, node without an address). */
  skipped: { cidr: string; node: string; reason: string }[];
}

function addrOf(cidrOrIp: string): string { return cidrOrIp.split('/')[0]!; }

function inPrefix(ip: string, cidr: string): boolean {
  return cidr4Contains(cidr4ForMap(cidr), cidr4ForMap(addrOf(ip)).addr);
}

/** The pool holding `cidr`'s first address: longest prefix wins. */
export function poolOf<P extends { cidr: string }>(pools: readonly P[], cidr: string): P | undefined {
  let best: P | undefined, bestLen = -1;
  for (const p of pools) {
    if (!p.cidr.includes('.')) continue; // IPv6 pools
    const len = cidr4ForMap(p.cidr).len;
    if (len > bestLen && inPrefix(addrOf(cidr), p.cidr)) { best = p; bestLen = len; }
  }
  return best;
}

/**
 * Decides next hop node, same-subnet and IPIP for every remote workload route. Pure: the
 * Calico rules in one place (tested without a kernel).
 */
export function planRoutes(nodeName: string, routing: RoutingState, workloadRoutes: Iterable<[string, string]>): RoutePlan {
  const me = routing.nodes.find((n) => n.name === nodeName);
  const plan: RoutePlan = { routes: [], skipped: [] };
  if (!me?.ipv4Address) return plan;
  plan.nodeIp = addrOf(me.ipv4Address);
  const mySubnet = me.ipv4Address.includes('/') ? me.ipv4Address : `${me.ipv4Address}/32`;
  const nodes = new Map(routing.nodes.map((n) => [n.name, n]));
  for (const [cidr, node] of workloadRoutes) {
    if (node === nodeName) continue;
    const n = nodes.get(node);
    if (!n) { plan.skipped.push({ cidr, node, reason: 'node not known' }); continue; }
    if (!n.ipv4Address) { plan.skipped.push({ cidr, node, reason: 'node has no IPv4 address' }); continue; }
    const nodeIp = addrOf(n.ipv4Address);
    const sameSubnet = inPrefix(nodeIp, mySubnet);
    const pool = poolOf(routing.pools, cidr);
    const mode = pool?.ipipMode ?? 'Never';
    const encap = mode === 'Always' || (mode === 'CrossSubnet' && !sameSubnet);
    plan.routes.push({ cidr, node, nodeIp, encap, sameSubnet });
  }
  return plan;
}

// ------------------------------------------------------------------ NAT sweep

export { sweepNatEntries } from './bpf/nat';

/** net.ipv4.ip_local_port_range of the node's namespace (the given one in tests). */
export async function readLocalPortRange(netns?: string): Promise<{ min: number; max: number }> {
  const file = '/proc/sys/net/ipv4/ip_local_port_range';
  const text = netns ? (await run(['ip', 'netns', 'exec', netns, 'cat', file])).stdout : readFileSync(file, 'utf8');
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) throw new RouteError('ERR_ROUTES_NAT_PORT_RANGE', `cannot parse ${file}: "${text.trim()}"`);
  return { min: Number(m[1]), max: Number(m[2]) };
}

// ------------------------------------------------------------------ the manager

interface KernelRoute { via: string; mtu?: number }

function routeSpec(r: KernelRoute): string { return `${r.via}|${r.mtu ?? ''}`; }

function hex(b: Buffer): string { return b.toString('hex'); }

export interface RouteStatus {
  nodeIp?: string;
  uplink?: string;
  routes: number;
  encapRoutes: number;
  skipped: number;
  natMappings: number;
  stats: NetStats;
  /** Kernel writes since open (route add/replace/del lines, map updates/deletes). */
  writes: { routes: number; maps: number };
}

export class RouteManager {
  private readonly log: Logger;
  private readonly proto: number;
  private dp!: UplinkDatapath;

  /** Desired inputs. */
  private nodeName?: string;
  private routing: RoutingState = { pools: [], nodes: [], workloadRoutes: [] };
  private readonly workloadRoutes = new Map<string, string>(); // cidr → node
  private dirty = true;
  private needKernelRead = true;
  private warnedVxlan = false;

  /** What this process last wrote (valid when !needKernelRead). */
  private kernelRoutes = new Map<string, string>();            // cidr → routeSpec
  private readonly mapState = new Map<BpfMap, Map<string, string>>(); // map → hex(key) → hex(value) (strings: ~10k entries, Buffers cost several times more heap)
  private uplink?: { name: string; ifindex: number; mtu: number };
  private mtuOpts: MtuOptions;
  private natOutgoingAddress: string;
  /** Host MTU (detected) and the IPIP MTU in force, as of the last uplink resolution. */
  private mtu?: { host: number; ipip: number; from: string };
  private writtenMtuFile?: string;
  private uplinkFor?: string;                                  // node address the uplink was resolved for
  private readonly gateways = new Map<string, string>();       // node address → underlay next hop
  private attachedIfindex?: number;
  private lastPlan?: RoutePlan;
  private readonly writes = { routes: 0, maps: 0 };
  private applyChain: Promise<void> = Promise.resolve();
  private retryTimer?: NodeJS.Timeout;
  /** Consecutive failed applies: the retry delay (BACKOFF.routeApply) grows with them. */
  private applyFailures = 0;
  private closed = false;
  private natEntries = 0;
  private natExpired = 0;

  private readonly ctRst: CtCloseLookup | undefined;

  private constructor(private readonly o: RouteManagerOptions) {
    this.ctRst = o.ct4 ? ctAcceptedClose(o.ct4) : undefined;
    this.mtuOpts = o.mtu ?? { ipipMtu: 0, ifacePattern: DEFAULT_MTU_PATTERN };
    this.natOutgoingAddress = o.natOutgoingAddress ?? '';
    this.log = (o.log ?? silentLogger).child({ component: 'routes' });
    this.proto = o.routeProtocol ?? DEFAULT_ROUTE_PROTOCOL;
    if (!Number.isInteger(this.proto) || this.proto < 1 || this.proto > 255) {
      throw new RouteError('ERR_ROUTES_BAD_OPTION', `routeProtocol ${o.routeProtocol}: need an integer 1..255`);
    }
  }

  static async open(o: RouteManagerOptions): Promise<RouteManager> {
    const m = new RouteManager(o);
    m.dp = await loadUplink({ pinRoot: o.pinRoot, objectDir: o.objectDir, nat: resolveNatOptions(o.nat) });
    return m;
  }

  get maps(): UplinkDatapath['maps'] { return this.dp.maps; }

  /** Full routing input (snapshot): replaces everything, including the workload routes. */
  setState(nodeName: string, routing: RoutingState): void {
    this.nodeName = nodeName;
    this.routing = { ...routing, workloadRoutes: [] };
    if (this.o.routeSource !== 'bgp') {
      this.workloadRoutes.clear();
      for (const r of routing.workloadRoutes) this.workloadRoutes.set(r.cidr, r.node);
    }
    this.needKernelRead = true;
    this.dirty = true;
  }

  /** Incremental input from a CalcDelta; returns whether anything routing-related changed. */
  applyDelta(d: CalcDelta): boolean {
    let changed = false;
    if (d.routingChanged && d.routing) { this.routing = { ...d.routing, workloadRoutes: [] }; changed = true; }
    if (this.o.routeSource === 'bgp') {
      if (changed) this.dirty = true;
      return changed;
    }
    for (const cidr of d.workloadRoutesRemoved) changed = this.workloadRoutes.delete(cidr) || changed;
    for (const r of d.workloadRoutesUpserted) { this.workloadRoutes.set(r.cidr, r.node); changed = true; }
    if (changed) this.dirty = true;
    return changed;
  }

  /** Felix's ipipMTU / mtuIfacePattern / the MTU file changed (FelixConfiguration): re-detect and rewrite on apply(). */
  setMtu(m: MtuOptions): void {
    new RegExp(m.ifacePattern); // throws on a bad pattern before anything changes
    this.mtuOpts = { ...m };
    this.uplinkFor = undefined; // re-read the links
    this.dirty = true;
  }

  /** Felix's natOutgoingAddress changed ('' = the node address): new mappings use it after apply(). */
  setNatOutgoingAddress(ip: string): void {
    if (ip !== '') cidr4ForMap(`${ip}/32`); // throws on a bad address
    this.natOutgoingAddress = ip;
    this.dirty = true;
  }

  /** The uplink's MTU changed: detect again and rewrite routes, netcfg and the MTU file. */
  uplinkMtuChanged(): Promise<void> {
    this.uplinkFor = undefined;
    this.dirty = true;
    return this.apply();
  }

  /** The host and IPIP MTUs in force (after the first apply that found the uplink). */
  get mtuInForce(): { host: number; ipip: number; from: string } | undefined { return this.mtu; }

  /** routeSource 'bgp': the learned routes (cidr → node name), replacing the previous set. */
  setLearnedRoutes(routes: ReadonlyMap<string, string>): void {
    if (this.o.routeSource !== 'bgp') throw new RouteError('ERR_ROUTES_BAD_OPTION', 'learned routes need routeSource "bgp"');
    this.workloadRoutes.clear();
    for (const [cidr, node] of routes) this.workloadRoutes.set(cidr, node);
    this.dirty = true;
  }

  /**
   * Brings kernel routes, maps and the uplink programs to the desired state. Calls are
   * serialised. A failure leaves the manager dirty, is rethrown, and also schedules a retry of
   * its own (backoff 0.5 s → 10 s): events the agent does not see, such as an uplink that comes
   * back before its address, converge without waiting for the next datastore change.
   */
  apply(): Promise<void> {
    const p = this.applyChain.then(() => this.applyNow());
    this.applyChain = p.then(() => { this.applyFailures = 0; }, (e: unknown) => {
      this.log.warn({ err: e, retryMs: backoffMs(BACKOFF.routeApply, this.applyFailures) }, 'routing apply failed; will retry');
      this.scheduleRetry();
    });
    return p;
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.applyFailures++;
      this.apply().catch(() => undefined); // logged and rescheduled by apply()
    }, backoffMs(BACKOFF.routeApply, this.applyFailures));
    this.retryTimer.unref();
  }

  private async applyNow(): Promise<void> {
    if (!this.dirty || this.nodeName === undefined) return;
    if (!this.warnedVxlan && this.routing.pools.some((p) => p.vxlanMode !== 'Never' && p.vxlanMode !== '')) {
      this.warnedVxlan = true;
      this.log.warn('VXLAN pools are routed without encapsulation (VXLAN is not implemented)');
    }
    const plan = planRoutes(this.nodeName, this.routing, this.workloadRoutes);
    for (const s of plan.skipped) this.log.warn(s, 'workload route not programmed');
    if (plan.nodeIp) await this.checkNatPortRange();
    // Underlay facts (uplink, next hops towards other subnets) are re-read on every reconcile
    // and when this node's address changes; deltas reuse them.
    if (this.needKernelRead || plan.nodeIp !== this.uplinkFor) {
      this.gateways.clear();
      this.uplink = plan.nodeIp ? await this.resolveUplink(plan.nodeIp) : undefined;
      this.uplinkFor = plan.nodeIp;
      if (this.uplink) await this.detectMtu(this.uplink);
    }
    if (this.needKernelRead) await this.readKernel();

    // Order: what the programs consult to decide (nodes, pools) before the routes that make
    // them act, and the node address last so nothing acts on a half-written state.
    const nodes = new Map<string, Buffer>();
    const pools = new Map<string, Buffer>();
    const rt = new Map<string, Buffer>();
    const kernel = new Map<string, KernelRoute>();
    let deferred: RouteError | undefined;
    if (plan.nodeIp && this.uplink) {
      const mySubnet = this.routing.nodes.find((n) => n.name === this.nodeName)!.ipv4Address!;
      for (const n of this.routing.nodes) {
        if (!n.ipv4Address) continue;
        const ip = addrOf(n.ipv4Address);
        const flags = (n.name === this.nodeName ? NODE_F.SELF : 0) | (mySubnet.includes('/') && inPrefix(ip, mySubnet) ? NODE_F.SAME_SUBNET : 0);
        nodes.set(hex(nodeKeyCodec.encode({ addr: ip })), nodeInfoCodec.encode({ flags }));
      }
      for (const p of this.routing.pools) {
        if (!p.cidr.includes('.')) continue;
        const flags = (p.natOutgoing ? POOL_F.NAT_OUT : 0) | (p.disabled ? POOL_F.DISABLED : 0);
        pools.set(hex(lpm4Key(p.cidr)), poolCodec.encode({ flags }));
      }
      const unreachable = new Set<string>();
      for (const r of plan.routes) {
        let via = r.nodeIp;
        if (!r.sameSubnet) {
          if (!this.gateways.has(r.nodeIp) && !unreachable.has(r.nodeIp)) {
            try {
              this.gateways.set(r.nodeIp, await this.nextHop(r.nodeIp));
            } catch (e) {
              // One unreachable node must not stall the others: its routes wait for the retry.
              unreachable.add(r.nodeIp);
              deferred ??= e instanceof RouteError ? e : new RouteError('ERR_ROUTES_UNREACHABLE', `node ${r.node} (${r.nodeIp}): ${(e as Error).message}`);
            }
          }
          if (unreachable.has(r.nodeIp)) continue;
          via = this.gateways.get(r.nodeIp)!;
        }
        const key = lpm4Key(r.cidr);
        const cidr = lpm4KeyCidr(key);
        rt.set(hex(key), routeCodec.encode({ next_hop: r.nodeIp, flags: RT_F.WORKLOAD | (r.encap ? RT_F.ENCAP : 0) }));
        kernel.set(cidr, r.encap ? { via, mtu: this.mtu!.ipip } : { via });
      }
    }
    this.syncMap(this.dp.maps.node4, nodes);
    this.syncMap(this.dp.maps.pool4, pools);
    // A route the kernel refuses (say, a next hop that is not on-link) must not keep the others
    // from working: the batch continues past it, the maps are written, and the error is thrown
    // at the end so that the agent retries (as a reconcile).
    const routeError = await this.syncKernelRoutes(kernel);
    this.syncMap(this.dp.maps.rt4, rt);
    const on = plan.nodeIp !== undefined && this.uplink !== undefined;
    const cfg = netcfgCodec.encode({
      node_ip: on ? plan.nodeIp! : '0.0.0.0', uplink_ifindex: this.uplink?.ifindex ?? 0,
      ipip_mtu: on ? this.mtu!.ipip : 0, snat_ip: on && this.natOutgoingAddress ? this.natOutgoingAddress : '0.0.0.0',
    });
    this.syncMap(this.dp.maps.netcfg, new Map([[hex(NETCFG_KEY), cfg]]), false);
    this.attachUplink();
    if (on) this.writeMtuFile();
    this.lastPlan = plan;
    if (routeError ?? deferred) {
      this.dirty = true;
      throw routeError ?? deferred;
    }
    this.dirty = false;
    this.log.debug({ routes: plan.routes.length, encap: plan.routes.filter((r) => r.encap).length }, 'routes applied');
  }

  // ---------------------------------------------------------------- kernel I/O

  private ipArgs(): string[] { return this.o.netns ? ['ip', '-n', this.o.netns.name] : ['ip']; }

  private async ipJson<T>(args: string[]): Promise<T> {
    const r = await run([...this.ipArgs(), '-j', ...args]);
    return (r.stdout.trim() ? JSON.parse(r.stdout) : []) as T;
  }

  private async resolveUplink(nodeIp: string): Promise<{ name: string; ifindex: number; mtu: number }> {
    let name = this.o.uplink;
    if (!name) {
      const addrs = await this.ipJson<{ ifname: string; addr_info?: { family: string; local: string }[] }[]>(['-4', 'addr', 'show']);
      name = addrs.find((l) => l.addr_info?.some((a) => a.local === nodeIp))?.ifname;
      if (!name) throw new RouteError('ERR_ROUTES_NO_UPLINK', `no interface holds the node address ${nodeIp}; pass the uplink explicitly`);
    }
    const [link] = await this.ipJson<{ ifindex: number; ifname: string; mtu: number }[]>(['link', 'show', 'dev', name]);
    if (!link) throw new RouteError('ERR_ROUTES_NO_UPLINK', `uplink ${name} does not exist`);
    if (this.uplink && this.uplink.ifindex !== link.ifindex) this.attachedIfindex = undefined;
    return { name, ifindex: link.ifindex, mtu: link.mtu };
  }

  /** Felix's MTU detection over the node's links (see the contract); logs what changed. */
  private async detectMtu(uplink: { name: string; mtu: number }): Promise<void> {
    const links = await this.ipJson<{ ifname: string; mtu: number }[]>(['link', 'show']);
    const found = smallestMatchingMtu(links, this.mtuOpts.ifacePattern);
    const host = found ?? uplink.mtu;
    const ipip = this.mtuOpts.ipipMtu || host - IPIP_OVERHEAD;
    const from = this.mtuOpts.ipipMtu ? 'ipipMTU' : found !== undefined ? `smallest MTU of the interfaces matching ${this.mtuOpts.ifacePattern}` : `uplink ${uplink.name} (no interface matches ${this.mtuOpts.ifacePattern})`;
    if (this.mtu?.host !== host || this.mtu?.ipip !== ipip) this.log.info({ hostMtu: host, ipipMtu: ipip, from }, 'MTU');
    this.mtu = { host, ipip, from };
  }

  /** Calico's MTU file: what the CNI plugin gives new workloads (IPIP MTU when a pool encapsulates). */
  private writeMtuFile(): void {
    const file = this.mtuOpts.file;
    if (!file || !this.mtu) return;
    const encap = this.routing.pools.some((p) => p.cidr.includes('.') && p.ipipMode !== 'Never' && !p.disabled);
    const text = `${encap ? this.mtu.ipip : this.mtu.host}\n`;
    if (text === this.writtenMtuFile) return;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
    this.writtenMtuFile = text;
  }

  /** The underlay next hop towards a node outside this node's subnet. */
  private async nextHop(nodeIp: string): Promise<string> {
    let rows: { gateway?: string; dev?: string }[];
    try {
      rows = await this.ipJson<{ gateway?: string; dev?: string }[]>(['route', 'get', nodeIp]);
    } catch (e) {
      throw new RouteError('ERR_ROUTES_UNREACHABLE', `no underlay route to node address ${nodeIp}: ${(e as Error).message.split('\n').pop()}`);
    }
    const [r] = rows;
    if (!r) throw new RouteError('ERR_ROUTES_UNREACHABLE', `no underlay route to node address ${nodeIp}`);
    return r.gateway ?? nodeIp;
  }

  /**
   * The node's unbound connect()s take ports from ip_local_port_range without looking at the NAT
   * table: a NAT range overlapping it would let the node pick a mapped tuple later. Refused before
   * anything is programmed (the node address is written last), checked on every apply that
   * programs the node (the sysctl may change while the agent runs; one small file read).
   */
  private async checkNatPortRange(): Promise<void> {
    const { portMin, portMax } = this.dp.nat;
    const eph = await readLocalPortRange(this.o.netns?.name);
    if (portMin <= eph.max && eph.min <= portMax) {
      throw new RouteError('ERR_ROUTES_NAT_PORT_RANGE', `NAT port range ${portMin}-${portMax} overlaps the node's ` +
        `net.ipv4.ip_local_port_range ${eph.min}-${eph.max}: choose a NAT port range outside it (natPortRange) or narrow the sysctl`);
    }
  }

  /** Reads what a previous run left: tortie's kernel routes and the networking maps. */
  private async readKernel(): Promise<void> {
    const rows = await this.ipJson<{ dst: string; gateway?: string; metrics?: { mtu?: number }[] }[]>(
      ['-4', 'route', 'show', 'proto', String(this.proto)]);
    this.kernelRoutes = new Map();
    for (const r of rows) {
      const cidr = r.dst === 'default' ? '0.0.0.0/0' : r.dst.includes('/') ? r.dst : `${r.dst}/32`;
      const mtu = r.metrics?.find((m) => m.mtu !== undefined)?.mtu;
      this.kernelRoutes.set(cidr, routeSpec({ via: r.gateway ?? '', mtu }));
    }
    for (const m of [this.dp.maps.node4, this.dp.maps.pool4, this.dp.maps.rt4, this.dp.maps.netcfg]) {
      const { keys, values } = m.entries();
      this.mapState.set(m, new Map(keys.map((k, i) => [hex(k), hex(values[i]!)])));
    }
    this.needKernelRead = false;
  }

  private syncMap(m: BpfMap, want: Map<string, Buffer>, sweep = true): void {
    const have = this.mapState.get(m) ?? new Map<string, string>();
    for (const [h, v] of want) {
      const hv = hex(v);
      if (have.get(h) === hv) continue;
      m.update(Buffer.from(h, 'hex'), v);
      have.set(h, hv);
      this.writes.maps++;
    }
    if (sweep) {
      for (const h of [...have.keys()]) {
        if (want.has(h)) continue;
        m.tryDelete(Buffer.from(h, 'hex'));
        have.delete(h);
        this.writes.maps++;
      }
    }
    this.mapState.set(m, have);
  }

  private async syncKernelRoutes(want: Map<string, KernelRoute>): Promise<RouteError | undefined> {
    const lines: string[] = [];
    const dev = this.uplink?.name;
    const next = new Map<string, string>();
    for (const [cidr, r] of want) {
      const spec = routeSpec(r);
      next.set(cidr, spec);
      if (this.kernelRoutes.get(cidr) === spec) continue;
      lines.push(`route replace ${cidr} via ${r.via} dev ${dev} proto ${this.proto}${r.mtu ? ` mtu ${r.mtu}` : ''}`);
    }
    for (const cidr of this.kernelRoutes.keys()) {
      if (!want.has(cidr)) lines.push(`route del ${cidr} proto ${this.proto}`);
    }
    if (lines.length === 0) return undefined;
    this.writes.routes += lines.length;
    const r = await run([...this.ipArgs(), '-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
    if (r.code !== 0) {
      this.needKernelRead = true; // partly applied: re-read before the next attempt
      this.dirty = true;
      const err = new RouteError('ERR_ROUTES_KERNEL', `${lines.length} route change(s), some refused by the kernel: ${r.stderr.trim().split('\n').slice(0, 5).join('; ')}`);
      this.log.error({ err }, 'kernel routes');
      return err;
    }
    this.kernelRoutes = next;
    this.log.debug({ changes: lines.length }, 'kernel routes written');
  }

  private attachUplink(): void {
    if (!this.uplink || this.attachedIfindex === this.uplink.ifindex) return;
    const netns = this.o.netns?.path;
    tcAttach({ iface: this.uplink.ifindex, netns, direction: 'ingress', program: this.dp.ingress, replace: true });
    tcAttach({ iface: this.uplink.ifindex, netns, direction: 'egress', program: this.dp.egress, replace: true });
    this.attachedIfindex = this.uplink.ifindex;
    this.log.info({ uplink: this.uplink.name, ifindex: this.uplink.ifindex }, 'uplink programs attached');
  }

  /** The uplink (re)appeared: resolve it again, attach, and point the programs at its ifindex. */
  async uplinkAppeared(): Promise<void> {
    this.uplinkChanged();
    await this.apply();
  }

  /** The uplink's interface went away (or was recreated): attach again on the next apply. */
  uplinkChanged(): void {
    this.attachedIfindex = undefined;
    this.uplinkFor = undefined;
    this.needKernelRead = true; // the kernel dropped the routes through the old interface
    this.dirty = true;
  }

  // ---------------------------------------------------------------- housekeeping

  /** Deletes NAT mappings whose flow is over (see sweepNatEntries); returns how many. */
  sweepNat(now = process.hrtime.bigint()): number {
    const r = sweepNatEntries(this.dp.maps, this.dp.nat.timeouts, now, this.ctRst);
    this.natEntries = r.remaining;
    this.natExpired += r.deleted;
    return r.deleted;
  }

  /** Occupancy, quota use and sweep deletions of the NAT table (metrics; refusals are drop counters). */
  natStatus(): NatStatus {
    const rows = readNatQuota(this.dp.maps.natq4);
    const { quota, maxEntries } = this.dp.nat;
    return {
      flows: rows.reduce((a, r) => a + r.live, 0), entries: this.dp.maps.nat4.keys().length, capacity: maxEntries, quota,
      workloadsAtQuota: quota ? rows.filter((r) => r.live >= quota).length : 0,
      maxWorkloadFlows: rows[0]?.live ?? 0, expiredTotal: this.natExpired,
    };
  }

  /** Entry counts of the networking maps as of the last apply / NAT sweep (metrics). */
  mapEntries(): Record<string, number> {
    return {
      rt4: this.mapState.get(this.dp.maps.rt4)?.size ?? 0, pool4: this.mapState.get(this.dp.maps.pool4)?.size ?? 0,
      node4: this.mapState.get(this.dp.maps.node4)?.size ?? 0, nat4: this.natEntries,
    };
  }

  status(): RouteStatus {
    const plan = this.lastPlan;
    return {
      nodeIp: plan?.nodeIp, uplink: this.uplink?.name, routes: plan?.routes.length ?? 0,
      encapRoutes: plan?.routes.filter((r) => r.encap).length ?? 0, skipped: plan?.skipped.length ?? 0,
      natMappings: this.dp.maps.nat4.entries().keys.length / 2, stats: readNetStats(this.dp.maps.netstat),
      writes: { ...this.writes },
    };
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.dp?.close();
  }
}
