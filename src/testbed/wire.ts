/**
 * How the testbed configures a node namespace and wires workloads into it.
 *
 * - A node gets one set of sysctls (NODE_SYSCTLS): it forwards (as a Calico node must; the CNI
 *   plugin only enables forwarding per workload interface), and reverse-path filtering is off
 *   explicitly — a new namespace starts with rp_filter 0 unless the host sets
 *   net.core.devconf_inherit_init_net, so this only pins the default the plugin relies on.
 * - A workload is wired by the very steps the CNI plugin runs (src/cni/netlink.ts `wireSteps`:
 *   veth with its host side ee:ee:ee:ee:ee:ee created inside the node namespace and its peer
 *   created directly in the workload's, proxy ARP without delay and forwarding on the host side,
 *   the /32 route, the workload's /32 with a link-scope route to 169.254.1.1 and the default route
 *   via it) — or by the real plugin (src/testbed/cni.ts).
 * Everything runs inside namespaces of a src/util/netns Topology; nothing touches the root namespace.
 */
import { wireSteps, randomMac, type WireStep } from '../cni/netlink';
import { run, type Netns, type Topology } from '../util/netns';

/** The node sysctls every layout sets (`forwarding: false` leaves out ip_forward). */
export const NODE_SYSCTLS = ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv6.conf.all.forwarding=1'] as const;

export interface NodeNetOptions {
  /** Address with prefix on `dev`, e.g. 198.18.0.10/24. */
  address: string;
  /** Default gateway (omitted: no default route). */
  gateway?: string;
  dev?: string;
  /**
   * Global forwarding (default true). The CNI tests turn it off so that what they observe on a
   * workload interface (forwarding=1) is the plugin's doing, not inherited from the node.
   */
  forwarding?: boolean;
}

/** Addresses the node's uplink and applies NODE_SYSCTLS. */
export async function configureNode(ns: Netns, o: NodeNetOptions): Promise<void> {
  const dev = o.dev ?? 'eth0';
  const sysctls = NODE_SYSCTLS.filter((s) => o.forwarding !== false || !(s.startsWith('net.ipv4.ip_forward') || s.startsWith('net.ipv6.conf.all.forwarding')));
  await ns.sh([
    `sysctl -qw ${sysctls.join(' ')}`,
    `ip addr add ${o.address} dev ${dev}`,
    ...(o.gateway ? [`ip route add default via ${o.gateway}`] : []),
  ].join(' && '));
}

export interface WorkloadSpec {
  /** Workload namespace short name (unique in the topology). */
  name: string;
  ip: string;
  /** An IPv6 address too (ULA fd00::/8 in tests): wired as Calico's CNI wires a dual-stack workload. */
  ip6?: string;
  /** Host-side interface (default `cali<name>`, cut to 15 characters). */
  hostIf?: string;
  /** Link MTU on both sides (default 1500, the plugin's default). */
  mtu?: number;
}

export interface Workload { name: string; ns: Netns; ip: string; ip6?: string; hostIf: string; ifindex: number }

/** Executes the plugin's wiring steps with `node` as the host namespace and `ws` as the container's. */
export async function runWireSteps(node: Netns, ws: Netns, steps: WireStep[]): Promise<void> {
  for (let i = 0; i < steps.length;) {
    const s = steps[i]!;
    if (s.kind === 'sysctl') {
      // Consecutive sysctls in one `sysctl` run (slash-separated keys: interface names may hold dots).
      const kv: string[] = [];
      for (let x = steps[i]; x?.kind === 'sysctl'; x = steps[++i]) kv.push(`${x.key}=${x.value}`);
      await node.exec(['sysctl', '-qw', ...kv]);
      continue;
    }
    const where = s.ns === 'host' ? node : ws;
    if (s.kind === 'ip') await run(['ip', '-n', where.name, ...s.args]);
    else await run(['ip', '-n', where.name, '-batch', '-'], { input: s.lines.join('\n') + '\n' });
    i++;
  }
}

/** A workload namespace wired into `node` by the plugin's steps. */
export async function wireWorkload(topo: Topology, node: Netns, spec: WorkloadSpec): Promise<Workload> {
  const hostIf = spec.hostIf ?? `cali${spec.name}`.slice(0, 15);
  const ns = await topo.addNetns(spec.name);
  const ips = [`${spec.ip}/32`, ...(spec.ip6 ? [`${spec.ip6}/128`] : [])];
  await runWireSteps(node, ns, wireSteps({ hostName: hostIf, contName: 'eth0', netns: ns.path, mtu: spec.mtu ?? 1500, contMac: randomMac(), ips }));
  const w: Workload = { name: spec.name, ns, ip: spec.ip, hostIf, ifindex: await node.ifindex(hostIf) };
  if (spec.ip6) w.ip6 = spec.ip6;
  return w;
}

/**
 * Extra endpoints' host sides (`hostIf`, MAC ee:ee:…, up, a /32 route to `ip`) with their peers
 * in one shared namespace: enough for an agent to program, without a namespace per endpoint.
 * Two `ip -batch` runs, so a thousand interfaces take seconds, not minutes.
 */
export async function addFillerEndpoints(topo: Topology, node: Netns, eps: readonly { hostIf: string; ip: string }[], peersName: string): Promise<Netns> {
  const pods = await topo.addNetns(peersName);
  const links: string[] = [];
  const routes: string[] = [];
  eps.forEach((ep, i) => {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ep.hostIf)) throw new Error(`bad interface name "${ep.hostIf}" (1–15 chars)`);
    links.push(`link add ${ep.hostIf} address ee:ee:ee:ee:ee:ee type veth peer name p${i} netns ${pods.name}`, `link set ${ep.hostIf} up`);
    routes.push(`route add ${ep.ip}/32 dev ${ep.hostIf}`);
  });
  if (eps.length > 0) {
    await node.exec(['ip', '-batch', '-'], { input: links.join('\n') + '\n', timeoutMs: 300_000 });
    await node.exec(['ip', '-batch', '-'], { input: routes.join('\n') + '\n', timeoutMs: 300_000 });
  }
  return pods;
}
