/**
 * Routing plan: what the networking side of this node should look like, computed from the
 * compiler's RoutingState alone. Pure — no kernel, no maps, no clock — so the Calico rules are
 * tested without a kernel (test/networking/06-route-plan).
 *
 *   planRoutes(node, routing, workloadRoutes) → RoutePlan        per remote route: node, next
 *                                                                hop node, same subnet, IPIP
 *                                                                or VXLAN
 *   planRoutes6(node, routing, workloadRoutes) → RoutePlan6     per remote IPv6 route: node,
 *                                                                its IPv6 address (direct only)
 *   underlayTargets(plan)                     → node addresses   the ones whose underlay next
 *                                                                hop the kernel must tell
 *   planNetworking({ plan, uplink, gateways … }) → DesiredNetworking
 *                                                                the entries of tortie_node4_v1,
 *                                                                tortie_pool4_v1, tortie_rt4_v1,
 *                                                                tortie_netcfg_v1, tortie_vxcfg_v1
 *                                                                and the kernel
 *                                                                routes (cidr → via, mtu)
 *
 * Rules (Calico's):
 * - Per remote workload route, the node's address comes from its Node resource
 *   (`bgp.ipv4Address`, with its subnet). Same subnet as this node (decided by this node's
 *   prefix; a bare address is a /32) → the next hop is the node itself; otherwise the underlay
 *   next hop towards it. IPIP when the route's pool (longest prefix) has ipipMode `Always`, or
 *   `CrossSubnet` and the node is in another subnet; VXLAN by the same rule on vxlanMode (the
 *   validator refuses a pool with both on); a route in no pool is as `Never`. Encapsulated
 *   routes carry `mtu <IPIP MTU>` or `mtu <VXLAN MTU>` (mtu.ts) so the kernel answers
 *   frag-needed (or fragments) before the uplink program adds the outer headers. Routes to this
 *   node's own workloads are the CNI plugin's.
 * - VXLAN is on (tortie_vxcfg_v1's VNI non-zero: the uplink decapsulates) while any IPv4 pool,
 *   disabled ones too, has a vxlanMode other than Never, as Felix turns VXLAN on.
 * - Without an address of its own, or without its uplink, the node programs nothing: no routes,
 *   no map entries, netcfg zero (the programs neither encapsulate nor NAT nor decapsulate).
 * - A route whose underlay next hop is not known (absent from `gateways`) is left out of both the
 *   kernel and the route map: it waits for the next attempt, the others do not.
 * - IPv6 (planRoutes6): per remote workload /128 (or learned block), the node is known by its
 *   `bgp.ipv6Address`; same IPv6 subnet is judged on this node's own `bgp.ipv6Address` with its
 *   prefix (a bare address is a /128). VXLAN over IPv6 (Calico's vxlan-v6.calico,
 *   bpf/lib/vxlan6.h) when the route's IPv6 pool (longest prefix) has vxlanMode `Always`, or
 *   `CrossSubnet` and the node is in another IPv6 subnet: the kernel route goes to the node (same
 *   subnet) or to the underlay next hop towards it, with `mtu lock <vxlanMTUV6>`, and
 *   tortie_rt6_v1 says ENCAP|VXLAN with the node's IPv6 address as outer destination. Otherwise
 *   native routing to the node without overlay and without route MTU; a node in another IPv6
 *   subnet without VXLAN is skipped with a reason, as are routes when either node has no IPv6
 *   address. `ipipMode` never applies to IPv6 (IPIP carries IPv4 only). IPv6 routes do not depend
 *   on an IPv4 node address: a node with only `bgp.ipv6Address` programs its IPv6 routes.
 * - VXLAN is on (tortie_vxcfg_v1) also while an IPv6 pool has a vxlanMode and this node has an
 *   IPv6 address: one VNI and port for both families, as Felix's vxlanVNI / vxlanPort.
 */
import type { RoutingState } from '../../calc/types';
import { cidr4ForMap, prefix4 } from '../bpf/encode';
import { cidr4Contains, cidrContains, ENCAP_OVERHEAD, formatCidr, formatIP, maskCidr, parseCidrOrIp, parseIP, VXLAN_DEFAULTS } from '../../primitives';
import { NODE_F, POOL_F, RT_F } from '../bpf/net-codecs';

export const IPIP_OVERHEAD = ENCAP_OVERHEAD.ipip;

export interface PlannedRoute {
  cidr: string;
  node: string;
  nodeIp: string;
  encap: boolean;
  /** With encap: the encapsulation is VXLAN (vxlanMode), else IPIP. */
  vxlan: boolean;
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

/** `a.b.c.d/len` with host bits cleared (how the kernel and the LPM maps show a prefix). */
export function canonicalCidr4(cidr: string): string {
  const { addr, len } = prefix4(cidr);
  return `${addr}/${len}`;
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

/** Decides next hop node, same subnet and IPIP for every remote workload route. */
export function planRoutes(nodeName: string, routing: RoutingState, workloadRoutes: Iterable<[string, string]>): RoutePlan {
  const me = routing.nodes.find((n) => n.name === nodeName);
  const plan: RoutePlan = { routes: [], skipped: [] };
  if (!me?.ipv4Address) return plan;
  plan.nodeIp = addrOf(me.ipv4Address);
  const mySubnet = me.ipv4Address.includes('/') ? me.ipv4Address : `${me.ipv4Address}/32`;
  const nodes = new Map(routing.nodes.map((n) => [n.name, n]));
  for (const [cidr, node] of workloadRoutes) {
    if (node === nodeName || cidr.includes(':')) continue; // IPv6: planRoutes6
    const n = nodes.get(node);
    if (!n) { plan.skipped.push({ cidr, node, reason: 'node not known' }); continue; }
    if (!n.ipv4Address) { plan.skipped.push({ cidr, node, reason: 'node has no IPv4 address' }); continue; }
    const nodeIp = addrOf(n.ipv4Address);
    const sameSubnet = inPrefix(nodeIp, mySubnet);
    const pool = poolOf(routing.pools, cidr);
    const on = (mode: string | undefined) => mode === 'Always' || (mode === 'CrossSubnet' && !sameSubnet);
    const vxlan = on(pool?.vxlanMode);
    const encap = vxlan || on(pool?.ipipMode);
    plan.routes.push({ cidr, node, nodeIp, encap, vxlan, sameSubnet });
  }
  return plan;
}

export interface PlannedRoute6 {
  cidr: string; node: string; nodeIp: string;
  /** VXLAN over IPv6 (vxlanMode of the route's IPv6 pool). */
  vxlan: boolean;
  sameSubnet: boolean;
}

/** The IPv6 pool holding `cidr`'s first address: longest prefix wins. */
export function poolOf6<P extends { cidr: string }>(pools: readonly P[], cidr: string): P | undefined {
  let best: P | undefined, bestLen = -1;
  const at = parseCidrOrIp(addrOf(cidr));
  for (const p of pools) {
    if (!p.cidr.includes(':')) continue;
    const c = parseCidrOrIp(p.cidr);
    if (c.prefix > bestLen && cidrContains(c, at)) { best = p; bestLen = c.prefix; }
  }
  return best;
}

export interface RoutePlan6 {
  /** This node's IPv6 address (no prefix), or undefined: no IPv6 route is programmed. */
  nodeIp?: string;
  routes: PlannedRoute6[];
  skipped: { cidr: string; node: string; reason: string }[];
}

/** `addr/len` of an IPv6 CIDR or address, host bits cleared, in the kernel's text form. */
export function canonicalCidr6(cidr: string): string {
  return formatCidr(maskCidr(parseCidrOrIp(cidr)));
}

/** Node, same subnet and VXLAN for every remote IPv6 workload route (see the header). */
export function planRoutes6(nodeName: string, routing: RoutingState, workloadRoutes: Iterable<[string, string]>): RoutePlan6 {
  const me = routing.nodes.find((n) => n.name === nodeName);
  const plan: RoutePlan6 = { routes: [], skipped: [] };
  const v6 = [...workloadRoutes].filter(([cidr, node]) => cidr.includes(':') && node !== nodeName);
  if (!me?.ipv6Address) {
    for (const [cidr, node] of v6) plan.skipped.push({ cidr, node, reason: 'this node has no IPv6 address (spec.bgp.ipv6Address)' });
    return plan;
  }
  plan.nodeIp = formatIP(parseIP(addrOf(me.ipv6Address)));
  const mySubnet = parseCidrOrIp(me.ipv6Address); // a bare address is a /128
  const nodes = new Map(routing.nodes.map((n) => [n.name, n]));
  for (const [cidr, node] of v6) {
    const n = nodes.get(node);
    if (!n) { plan.skipped.push({ cidr, node, reason: 'node not known' }); continue; }
    if (!n.ipv6Address) { plan.skipped.push({ cidr, node, reason: 'node has no IPv6 address' }); continue; }
    const nodeIp = formatIP(parseIP(addrOf(n.ipv6Address)));
    const sameSubnet = cidrContains(mySubnet, parseCidrOrIp(nodeIp));
    const mode = poolOf6(routing.pools, cidr)?.vxlanMode;
    const vxlan = mode === 'Always' || (mode === 'CrossSubnet' && !sameSubnet);
    if (!sameSubnet && !vxlan) {
      plan.skipped.push({ cidr, node, reason: `node ${nodeIp} is outside this node's IPv6 subnet ${formatCidr(maskCidr(mySubnet))} and the route's IPv6 pool has no vxlanMode (Always or CrossSubnet): IPv6 across subnets needs VXLAN` });
      continue;
    }
    plan.routes.push({ cidr: canonicalCidr6(cidr), node, nodeIp, vxlan, sameSubnet });
  }
  return plan;
}

/** Addresses of the nodes outside this node's subnet (IPv4 plan) or IPv6 subnet (IPv6 plan), in route order, each once. */
export function underlayTargets(plan: { routes: readonly { sameSubnet: boolean; node: string; nodeIp: string }[] }): { node: string; nodeIp: string }[] {
  const seen = new Set<string>();
  const out: { node: string; nodeIp: string }[] = [];
  for (const r of plan.routes) {
    if (r.sameSubnet || seen.has(r.nodeIp)) continue;
    seen.add(r.nodeIp);
    out.push({ node: r.node, nodeIp: r.nodeIp });
  }
  return out;
}

export interface KernelRoute { via: string; mtu?: number }

export interface NetworkingInput {
  nodeName: string;
  routing: RoutingState;
  plan: RoutePlan;
  /** IPv6 routes (planRoutes6); absent: none. */
  plan6?: RoutePlan6;
  /** This node's uplink as resolved; undefined: nothing is programmed. */
  uplink?: { ifindex: number };
  /** The IPIP MTU in force (mtu.ts): tunnelled routes and the workload program's fast path. */
  ipipMtu: number;
  /** The VXLAN MTU in force (mtu.ts; 0: none detected yet), VNI and UDP port (Calico's defaults when absent). */
  vxlanMtu?: number;
  /** The IPv6 VXLAN MTU in force (vxlanMTUV6 or detected; 0: none detected yet). */
  vxlan6Mtu?: number;
  vxlan?: { vni: number; port: number };
  /** Felix's natOutgoingAddress, the SNAT source ('' or undefined: the node address). */
  snatIp?: string;
  /** Underlay next hop per node address (IPv4 or IPv6) outside this node's subnet (underlayTargets). */
  gateways: ReadonlyMap<string, string>;
}

/** Map entries (decoded) and kernel routes this node should have. */
export interface DesiredNetworking {
  /** tortie_node4_v1: every node with an address; flags NODE_F. */
  nodes: { addr: string; flags: number }[];
  /** tortie_pool4_v1: every IPv4 pool; flags POOL_F. */
  pools: { cidr: string; flags: number }[];
  /** tortie_rt4_v1: remote workload prefix → its node's address; flags RT_F. */
  routes: { cidr: string; nextHop: string; flags: number }[];
  /** tortie_rt6_v1: remote IPv6 workload prefix → its node's IPv6 address; flags RT_F. */
  routes6: { cidr: string; nextHop: string; flags: number }[];
  /** Kernel routes with tortie's protocol, by canonical prefix. */
  kernel: Map<string, KernelRoute>;
  /** IPv6 kernel routes with tortie's protocol, by canonical prefix (the kernel's text form). */
  kernel6: Map<string, KernelRoute>;
  /** NAT66 (bpf/lib/nat6.h): tortie_node6_v1 (every node's IPv6 address), tortie_pool6_v1 (every
   *  IPv6 pool), tortie_netcfg6_v1 (this node's IPv6 address; '::' keeps NAT66 off). */
  nodes6: { addr: string; flags: number }[];
  pools6: { cidr: string; flags: number }[];
  netcfg6: { node_ip6: string; snat_ip6: string };
  /** tortie_netcfg_v1 (node address 0.0.0.0: the programs stay off). */
  netcfg: { node_ip: string; uplink_ifindex: number; ipip_mtu: number; snat_ip: string };
  /** tortie_vxcfg_v1 (vni 0: VXLAN off). */
  vxcfg: { vni: number; port: number; mtu: number };
}

/** Whether any IPv4 pool (family 6: IPv6 pool) asks for VXLAN (Felix turns VXLAN on for it). */
export function vxlanInUse(pools: RoutingState['pools'], family: 4 | 6 = 4): boolean {
  return pools.some((p) => p.cidr.includes(family === 4 ? '.' : ':') && p.vxlanMode !== 'Never' && p.vxlanMode !== '');
}

export function planNetworking(i: NetworkingInput): DesiredNetworking {
  const out: DesiredNetworking = {
    nodes: [], pools: [], routes: [], routes6: [], kernel: new Map(), kernel6: new Map(), nodes6: [], pools6: [],
    netcfg6: { node_ip6: '::', snat_ip6: '::' },
    netcfg: { node_ip: '0.0.0.0', uplink_ifindex: i.uplink?.ifindex ?? 0, ipip_mtu: 0, snat_ip: '0.0.0.0' },
    vxcfg: { vni: 0, port: 0, mtu: 0 },
  };
  const { plan, uplink } = i;
  if (!uplink) return out;
  // IPv6: direct routes to nodes of this node's IPv6 subnet (the kernel resolves the neighbour),
  // and NAT66's view: pools, nodes, this node's IPv6 address (the SNAT source).
  const vxcfg = { vni: i.vxlan?.vni ?? VXLAN_DEFAULTS.vni, port: i.vxlan?.port ?? VXLAN_DEFAULTS.port, mtu: i.vxlanMtu ?? 0 };
  if (i.plan6?.nodeIp) {
    const vxlan6 = vxlanInUse(i.routing.pools, 6);
    if (vxlan6) out.vxcfg = vxcfg;
    for (const r of i.plan6.routes) {
      if (!r.vxlan) {
        out.kernel6.set(r.cidr, { via: r.nodeIp });
        out.routes6.push({ cidr: r.cidr, nextHop: r.nodeIp, flags: RT_F.WORKLOAD });
        continue;
      }
      const via = r.sameSubnet ? r.nodeIp : i.gateways.get(r.nodeIp);
      if (via === undefined || !vxlan6 || !i.vxlan6Mtu) continue; // waits for the underlay next hop / the MTU
      out.kernel6.set(r.cidr, { via, mtu: i.vxlan6Mtu });
      out.routes6.push({ cidr: r.cidr, nextHop: r.nodeIp, flags: RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN });
    }
    const mySubnet6 = parseCidrOrIp(i.routing.nodes.find((n) => n.name === i.nodeName)!.ipv6Address!);
    for (const n of i.routing.nodes) {
      if (!n.ipv6Address) continue;
      const ip = formatIP(parseIP(addrOf(n.ipv6Address)));
      const flags = (n.name === i.nodeName ? NODE_F.SELF : 0) | (cidrContains(mySubnet6, parseCidrOrIp(ip)) ? NODE_F.SAME_SUBNET : 0);
      out.nodes6.push({ addr: ip, flags });
    }
    for (const p of i.routing.pools) {
      if (!p.cidr.includes(':')) continue;
      out.pools6.push({ cidr: canonicalCidr6(p.cidr), flags: (p.natOutgoing ? POOL_F.NAT_OUT : 0) | (p.disabled ? POOL_F.DISABLED : 0) });
    }
    out.netcfg6 = { node_ip6: i.plan6.nodeIp, snat_ip6: '::' };
  }
  if (!plan.nodeIp) return out;
  out.netcfg = { node_ip: plan.nodeIp, uplink_ifindex: uplink.ifindex, ipip_mtu: i.ipipMtu, snat_ip: i.snatIp || '0.0.0.0' };
  const vxlanMtu = i.vxlanMtu ?? 0;
  if (vxlanInUse(i.routing.pools)) out.vxcfg = vxcfg;
  const mySubnet = i.routing.nodes.find((n) => n.name === i.nodeName)!.ipv4Address!;
  for (const n of i.routing.nodes) {
    if (!n.ipv4Address) continue;
    const ip = addrOf(n.ipv4Address);
    const flags = (n.name === i.nodeName ? NODE_F.SELF : 0) | (mySubnet.includes('/') && inPrefix(ip, mySubnet) ? NODE_F.SAME_SUBNET : 0);
    out.nodes.push({ addr: ip, flags });
  }
  for (const p of i.routing.pools) {
    if (!p.cidr.includes('.')) continue;
    out.pools.push({ cidr: canonicalCidr4(p.cidr), flags: (p.natOutgoing ? POOL_F.NAT_OUT : 0) | (p.disabled ? POOL_F.DISABLED : 0) });
  }
  for (const r of plan.routes) {
    const via = r.sameSubnet ? r.nodeIp : i.gateways.get(r.nodeIp);
    if (via === undefined) continue;
    const cidr = canonicalCidr4(r.cidr);
    const vxlan = r.encap && r.vxlan && out.vxcfg.vni !== 0;
    out.routes.push({ cidr, nextHop: r.nodeIp, flags: RT_F.WORKLOAD | (r.encap ? RT_F.ENCAP : 0) | (vxlan ? RT_F.VXLAN : 0) });
    out.kernel.set(cidr, r.encap ? { via, mtu: vxlan ? vxlanMtu : i.ipipMtu } : { via });
  }
  return out;
}
