/**
 * The kernel side of the CNI plugin, through iproute2 (`ip -j` for reads).
 *
 * Contract: "host" operations act on the network namespace this process runs in (the node's;
 * in tests a test namespace entered with `ip netns exec`), never on any other. Container
 * operations run `nsenter --net=<CNI_NETNS> ip …`, so the workload namespace can be given as
 * any path (a /run/netns bind mount or /proc/<pid>/ns/net). The veth is created with one
 * command whose peer lands directly in the container namespace, so no workload interface ever
 * appears in the host namespace. Every command is bounded by a timeout, and started without
 * blocking a big host process's event loop on fork/exec where it asked for that (src/util/spawner.ts).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { CNI_ERR, CniError } from './errors';
import { spawnerRun, type RunResult } from '../util/spawner';
import { WORKLOAD_HOST_MAC } from '../primitives';

export const HOST_MAC = WORKLOAD_HOST_MAC;
export const GATEWAY = '169.254.1.1';
/** The IPv6 gateway of every workload: the link-local address the kernel derives (EUI-64) from
 * the host side's MAC ee:ee:ee:ee:ee:ee, so no address is read back from the host side. */
export const GATEWAY6 = 'fe80::ecee:eeff:feee:eeee';

export interface LinkInfo {
  ifindex: number;
  link_index?: number;
  ifname: string;
  address: string;
  mtu: number;
  flags: string[];
  operstate?: string;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
}

export interface AddrInfo { ifname: string; addr_info: { family: string; local: string; prefixlen: number; scope?: string }[] }
export interface RouteInfo { dst: string; gateway?: string; dev?: string; scope?: string; protocol?: string }

/** Runs argv (directly, or through the spawn helper in a host process that started one). */
function run(argv: string[], input?: string, timeoutMs = 10_000): Promise<RunResult> {
  return spawnerRun(argv, input, timeoutMs);
}

/** Runs `ip` in the host namespace (this process's) or, with `netns`, in the container's. */
async function ip(args: string[], netns?: string, input?: string): Promise<RunResult> {
  const argv = netns ? ['nsenter', `--net=${netns}`, 'ip', ...args] : ['ip', ...args];
  return run(argv, input);
}

async function ipOk(args: string[], what: string, netns?: string, input?: string): Promise<string> {
  const r = await ip(args, netns, input);
  if (r.code !== 0) {
    throw new CniError(CNI_ERR.INTERFACE_FAILURE, `${what} failed: ip ${args.join(' ')}${netns ? ` (in ${netns})` : ''}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
  return r.stdout;
}

export async function netnsExists(path: string): Promise<boolean> {
  try {
    await fsp.access(path);
    return true;
  } catch {
    return false;
  }
}

/** The link, or undefined when there is no such device. */
export async function getLink(dev: string, netns?: string): Promise<LinkInfo | undefined> {
  const r = await ip(['-j', '-d', 'link', 'show', 'dev', dev], netns);
  if (r.code !== 0) {
    if (/does not exist|Cannot find device/i.test(r.stderr)) return undefined;
    throw new CniError(CNI_ERR.INTERFACE_FAILURE, `reading link ${dev}${netns ? ` in ${netns}` : ''} failed: ${r.stderr.trim()}`);
  }
  const arr = JSON.parse(r.stdout || '[]') as LinkInfo[];
  return arr[0];
}

/** The host-namespace link with this ifindex, or undefined. */
export async function getLinkByIndex(ifindex: number): Promise<LinkInfo | undefined> {
  const out = await ipOk(['-j', 'link', 'show'], 'listing links');
  return (JSON.parse(out || '[]') as LinkInfo[]).find((l) => l.ifindex === ifindex);
}

export async function getAddrs(dev: string, netns?: string, family: 4 | 6 = 4): Promise<string[]> {
  const out = await ipOk(['-j', `-${family}`, 'addr', 'show', 'dev', dev], `reading addresses of ${dev}`, netns);
  const arr = JSON.parse(out || '[]') as AddrInfo[];
  return arr.flatMap((a) => a.addr_info.map((x) => `${x.local}/${x.prefixlen}`));
}

export async function getRoutes(netns?: string, dev?: string, family: 4 | 6 = 4): Promise<RouteInfo[]> {
  const args = ['-j', `-${family}`, 'route', 'show'];
  if (dev) args.push('dev', dev);
  const out = await ipOk(args, 'reading routes', netns);
  const arr = JSON.parse(out || '[]') as RouteInfo[];
  return dev ? arr.map((r) => ({ ...r, dev })) : arr;
}

export async function deleteLink(dev: string, netns?: string): Promise<boolean> {
  const r = await ip(['link', 'del', 'dev', dev], netns);
  if (r.code === 0) return true;
  if (/does not exist|Cannot find device/i.test(r.stderr)) return false;
  throw new CniError(CNI_ERR.INTERFACE_FAILURE, `deleting ${dev}${netns ? ` in ${netns}` : ''} failed: ${r.stderr.trim()}`);
}

export async function writeSysctl(path: string, value: string): Promise<void> {
  try {
    await fsp.writeFile(path, value);
  } catch (err) {
    throw new CniError(CNI_ERR.INTERFACE_FAILURE, `setting ${path} to ${value} failed: ${(err as Error).message}`);
  }
}

export interface VethSpec {
  hostName: string;
  contName: string;
  netns: string;
  mtu: number;
}

/** A random locally administered unicast MAC for the container side. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * One kernel step of wiring a workload, as data. The plugin and the testbed (src/testbed) execute
 * the same list, so a test workload is wired exactly as a CNI ADD wires one:
 * - `ip`: one `ip` command (args after `ip`), in the host (node) or the container namespace;
 * - `batch`: `ip -batch -` lines, in the host or the container namespace;
 * - `sysctl`: a host-namespace sysctl, by its /proc/sys path (`net/ipv4/conf/<if>/proxy_arp`).
 */
export type WireStep =
  | { kind: 'ip'; ns: 'host' | 'container'; args: string[] }
  | { kind: 'batch'; ns: 'host' | 'container'; lines: string[] }
  | { kind: 'sysctl'; key: string; value: string };

export interface WorkloadWiring extends VethSpec { contMac: string; ips: string[] }

/** The veth pair in one command: host side here (MAC ee:ee:…), peer created in the container namespace. */
export function vethStep(spec: VethSpec & { contMac: string }): WireStep & { kind: 'ip' } {
  return {
    kind: 'ip', ns: 'host', args: ['link', 'add', spec.hostName, 'mtu', String(spec.mtu), 'address', HOST_MAC, 'type', 'veth',
      'peer', 'name', spec.contName, 'mtu', String(spec.mtu), 'address', spec.contMac, 'netns', spec.netns],
  };
}

/**
 * Host side, Calico's way: the host answers ARP for the workload's gateway 169.254.1.1 by proxy
 * ARP without delay and forwards (they need only the interface: an ADD writes them while IPAM works).
 */
export function hostSysctlSteps(hostName: string): WireStep[] {
  return [
    { kind: 'sysctl', key: `net/ipv4/conf/${hostName}/proxy_arp`, value: '1' },
    { kind: 'sysctl', key: `net/ipv4/neigh/${hostName}/proxy_delay`, value: '0' },
    { kind: 'sysctl', key: `net/ipv4/conf/${hostName}/forwarding`, value: '1' },
  ];
}

/**
 * Host side of a workload with an IPv6 address, as Calico's CNI plugin sets it: IPv6 on, router
 * advertisements ignored (accept_ra=0), proxy NDP, forwarding, and no duplicate address detection
 * (accept_dad=0, before the link is up), so its link-local gateway address GATEWAY6 answers
 * neighbour solicitations at once.
 */
export function hostSysctl6Steps(hostName: string): WireStep[] {
  return [
    { kind: 'sysctl', key: `net/ipv6/conf/${hostName}/disable_ipv6`, value: '0' },
    { kind: 'sysctl', key: `net/ipv6/conf/${hostName}/accept_dad`, value: '0' },
    { kind: 'sysctl', key: `net/ipv6/conf/${hostName}/accept_ra`, value: '0' },
    { kind: 'sysctl', key: `net/ipv6/conf/${hostName}/proxy_ndp`, value: '1' },
    { kind: 'sysctl', key: `net/ipv6/conf/${hostName}/forwarding`, value: '1' },
  ];
}

function isV6(cidr: string): boolean {
  return hostAddr(cidr).includes(':');
}

/** The host side's MTU, MAC, up and its /32 (IPv6: /128) routes to the workload, once the addresses are known. */
export function hostLinkStep(hostName: string, mtu: number, ips: string[]): WireStep {
  const lines = [`link set dev ${hostName} mtu ${mtu} address ${HOST_MAC} up`];
  for (const a of ips) {
    if (isV6(a)) lines.push(`route replace ${hostAddr(a)}/128 dev ${hostName}`);
    else lines.push(`route replace ${hostAddr(a)}/32 dev ${hostName} scope link`);
  }
  return { kind: 'batch', ns: 'host', lines };
}

/**
 * Container side: the /32s, a link-scope route to the gateway and the default route via it; with
 * IPv6, the /128s without duplicate address detection and the IPv6 default route via GATEWAY6.
 */
export function containerStep(ifname: string, mtu: number, ips: string[]): WireStep {
  const lines = [`link set dev ${ifname} mtu ${mtu} up`];
  for (const a of ips) {
    if (isV6(a)) lines.push(`addr replace ${hostAddr(a)}/128 dev ${ifname} nodad`);
    else lines.push(`addr replace ${hostAddr(a)}/32 dev ${ifname}`);
  }
  if (ips.some((a) => !isV6(a))) {
    lines.push(`route replace ${GATEWAY} dev ${ifname} scope link`);
    lines.push(`route replace default via ${GATEWAY} dev ${ifname}`);
  }
  if (ips.some(isV6)) lines.push(`route replace ::/0 via ${GATEWAY6} dev ${ifname}`);
  return { kind: 'batch', ns: 'container', lines };
}

/** Every step of wiring a new workload, in the order the plugin runs them. */
export function wireSteps(w: WorkloadWiring): WireStep[] {
  const v6 = w.ips.some(isV6) ? hostSysctl6Steps(w.hostName) : [];
  return [vethStep(w), ...hostSysctlSteps(w.hostName), ...v6, hostLinkStep(w.hostName, w.mtu, w.ips), containerStep(w.contName, w.mtu, w.ips)];
}

/** Runs steps the plugin's way: `ip` here or under `nsenter --net=<netns>`, sysctls through /proc/sys. */
async function runSteps(steps: WireStep[], netns: string, what: string): Promise<void> {
  await Promise.all(steps.map(async (s) => {
    if (s.kind === 'sysctl') return writeSysctl(`/proc/sys/${s.key}`, s.value);
    const where = s.ns === 'container' ? netns : undefined;
    if (s.kind === 'ip') return void await ipOk(s.args, what, where);
    return void await ipOk(['-batch', '-'], what, where, s.lines.join('\n') + '\n');
  }));
}

/**
 * Makes sure the veth pair exists (host side here, peer in the container named `contName`),
 * re-creating it when a same-named host device is not our pair. Returns the container side's
 * MAC. The common case (nothing there yet) is one `ip link add`, the container MAC chosen here;
 * anything else (a repeated ADD, a leftover) takes the slow path that looks first.
 */
export async function ensureVeth(spec: VethSpec & { contMac?: string }): Promise<{ contMac: string; created: boolean }> {
  const mac = spec.contMac ?? randomMac();
  const add = vethStep({ ...spec, contMac: mac }).args;
  const fast = await ip(add);
  if (fast.code === 0) return { contMac: mac, created: true };
  if (!/File exists/i.test(fast.stderr)) {
    throw new CniError(CNI_ERR.INTERFACE_FAILURE, `creating veth ${spec.hostName}/${spec.contName} failed: ip ${add.join(' ')}: ${fast.stderr.trim() || `exit ${fast.code}`}`);
  }
  const existing = await getLink(spec.hostName);
  if (existing) {
    const cont = await getLink(spec.contName, spec.netns);
    if (existing.linkinfo?.info_kind === 'veth' && cont && cont.link_index === existing.ifindex && existing.link_index === cont.ifindex) {
      return { contMac: cont.address, created: false };
    }
    // A leftover from an earlier container with the same workload id: replace it.
    await deleteLink(spec.hostName);
  }
  if (await getLink(spec.contName, spec.netns)) {
    throw new CniError(CNI_ERR.INTERFACE_FAILURE, `interface ${spec.contName} already exists in ${spec.netns}`);
  }
  await ipOk(add, `creating veth ${spec.hostName}/${spec.contName}`);
  return { contMac: mac, created: true };
}

/** The host side's sysctls (hostSysctlSteps). */
export async function hostSysctls(hostName: string): Promise<void> {
  await runSteps(hostSysctlSteps(hostName), '', `setting sysctls of ${hostName}`);
}

/** The host side's link and routes (hostLinkStep); with IPv6, its IPv6 sysctls first (before the link is up). */
export async function configureHostLink(hostName: string, mtu: number, ips: string[]): Promise<void> {
  if (ips.some(isV6)) await runSteps(hostSysctl6Steps(hostName), '', `setting IPv6 sysctls of ${hostName}`);
  await runSteps([hostLinkStep(hostName, mtu, ips)], '', `configuring ${hostName}`);
}

/** The container side (containerStep) in the namespace at `netns`. */
export async function configureContainerSide(netns: string, ifname: string, mtu: number, ips: string[]): Promise<void> {
  await runSteps([containerStep(ifname, mtu, ips)], netns, `configuring ${ifname}`);
}

function hostAddr(cidr: string): string {
  return cidr.split('/')[0]!;
}
