/**
 * The `tortie` CNI plugin (spec 1.0.0; also answers 0.3.0, 0.3.1 and 0.4.0 configurations).
 *
 * ADD   IPAM (`ipam.type`: tortie-ipam in-process, anything else delegated), meanwhile the veth
 *       `cali<hash>` created down with its peer directly in CNI_NETNS → WorkloadEndpoint
 *       written (before any link is up, so the agent knows the endpoint before its first
 *       packet) → host side: MAC ee:ee:ee:ee:ee:ee, proxy_arp=1, proxy_delay=0, forwarding=1,
 *       route <ip>/32 dev cali…, and container side: <ip>/32, 169.254.1.1 scope link, default
 *       via 169.254.1.1, MTU. On failure everything it did is undone and the addresses released.
 *       Idempotent: a repeated ADD converges on the same interfaces, address and endpoint.
 * DEL   releases the handle's addresses, deletes the host veth (taking its peer and routes) and
 *       the WorkloadEndpoint. Missing pieces (or an unknown container) are not errors. When the
 *       endpoint now belongs to a newer container of the same pod, only the addresses of the
 *       container being deleted are released.
 * CHECK verifies interfaces, addresses, routes, sysctls, endpoint and IPAM against prevResult.
 * VERSION prints the supported versions.
 * Policy-only mode (`policy_only: true`, chained after another plugin such as ptp, bridge or the
 *       AWS VPC CNI): no IPAM, no interfaces, no routes — ADD writes the WorkloadEndpoint for the
 *       host interface that plugin made (the peer of CNI_IFNAME / prevResult's host interface,
 *       see chainedHostInterface), with the addresses of prevResult, and passes prevResult
 *       through; DEL deletes the endpoint. The agent's FELIX_INTERFACEPREFIX must cover that
 *       interface's name (e.g. "cali,veth").
 * Workload identity: a Kubernetes pod only with both K8S_POD_NAMESPACE and K8S_POD_NAME in
 *       CNI_ARGS; otherwise (podman, plain CNI) the container, as Calico does.
 *
 * All interface work is relative to the network namespace this process runs in (the node's).
 * Errors: the spec's error object on stdout, exit status 1 (codes in errors.ts).
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ResourceClient } from '../client/resources';
import type { Datastore } from '../datastore/types';
import { IpamClient } from '../ipam/client';
import { familyBits, formatAddr, netContains, tryParseAddr } from '../ipam/net';
import { workloadEndpointName } from '../model/validate';
import type { WorkloadEndpoint } from '../model/types';
import { ENCAP_OVERHEAD, LABEL_NAMESPACE, LABEL_ORCHESTRATOR } from '../primitives';
import { CNI_OWNER, CONTAINER_NAME_LABEL, OWNER_ANNOTATION } from '../model/wep-labels';
import { createLogger, lazyLogger, type Logger } from '../util/log';
import { formatResult, type CniEnv, type CniResult, type NetConf } from './config';
import { hostVethName, nodeName, openStore, toCniError, workloadIdentity, type WorkloadIdentity } from './context';
import { delegateIpam, type DelegateContext } from './delegate';
import { CNI_ERR, CniError } from './errors';
import { cniMain, cniRun } from './io';
import {
  GATEWAY, GATEWAY6, HOST_MAC, configureContainerSide, configureHostLink, deleteLink, ensureVeth, getAddrs, getLink, getLinkByIndex,
  getRoutes, hostSysctls, netnsExists, randomMac, type LinkInfo,
} from './netlink';

export const DEFAULT_MTU = 1500;

interface Ctx extends DelegateContext {
  node: string;
  id: WorkloadIdentity;
  hostName: string;
}

function makeCtx(conf: NetConf, env: CniEnv, procEnv: NodeJS.ProcessEnv, log: Logger): Ctx & { close(): Promise<void> } {
  let ds: Datastore | undefined;
  const id = workloadIdentity(env);
  return {
    conf, env, procEnv, log, id,
    node: nodeName(conf, procEnv),
    hostName: hostVethName(id.workloadId, conf.interface_prefix ?? 'cali'),
    ds: () => (ds ??= openStore(conf, procEnv, log)),
    async close() { if (ds) await ds.close().catch(() => undefined); },
  };
}

const WORKLOAD_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function wepSpecIds(ctx: Ctx): Pick<WorkloadEndpoint['spec'], 'orchestrator' | 'node' | 'pod' | 'containerID' | 'endpoint' | 'workload'> {
  return {
    orchestrator: ctx.id.orchestrator,
    node: ctx.node,
    // The container id as the workload (tortiectl's WORKLOAD column) where it is a valid one;
    // the CNI spec allows ids (with '_', upper case) that are not.
    ...(ctx.id.pod ? { pod: ctx.id.pod } : WORKLOAD_RE.test(ctx.id.workload) ? { workload: ctx.id.workload } : {}),
    containerID: ctx.env.containerId,
    endpoint: ctx.env.ifname,
  };
}

function wepName(ctx: Ctx): string {
  const n = workloadEndpointName(wepSpecIds(ctx));
  if (typeof n !== 'string') throw new CniError(CNI_ERR.INVALID_ENV, `cannot name the workload endpoint: ${n.path} ${n.reason}`);
  return n;
}

const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * The endpoint an ADD writes, whole: the runtime owns it (contract in src/model/wep-labels.ts).
 * Labels: the configuration's `labels` and `args.cni.labels`, the container's name from a
 * plain-CNI runtime (podman) when it is a valid label value, and Calico's own.
 */
function buildWep(ctx: Ctx, ips: string[], mac: string | undefined, hostName = ctx.hostName): WorkloadEndpoint {
  const { conf, id } = ctx;
  const labels: Record<string, string> = { ...(conf.labels ?? {}) };
  if (id.containerName && id.containerName.length <= 63 && LABEL_VALUE_RE.test(id.containerName)) {
    labels[CONTAINER_NAME_LABEL] = id.containerName;
  }
  labels[LABEL_NAMESPACE] = id.namespace;
  labels[LABEL_ORCHESTRATOR] = id.orchestrator;
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'WorkloadEndpoint',
    metadata: { name: wepName(ctx), namespace: id.namespace, labels, annotations: { [OWNER_ANNOTATION]: CNI_OWNER } },
    spec: {
      ...wepSpecIds(ctx),
      ipNetworks: ips.map(hostCidr),
      profiles: conf.profiles ?? (id.orchestrator === 'k8s' ? [`kns.${id.namespace}`] : [conf.name]),
      interfaceName: hostName,
      ...(mac ? { mac } : {}),
      ...(conf.ports ? { ports: conf.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port })) } : {}),
    },
  };
}

async function writeWep(ctx: Ctx, wep: WorkloadEndpoint): Promise<void> {
  try {
    await new ResourceClient(ctx.ds()).apply(wep);
  } catch (err) {
    throw toCniError(err, `writing WorkloadEndpoint ${wep.metadata.namespace}/${wep.metadata.name}`);
  }
}

async function readWep(ctx: Ctx): Promise<WorkloadEndpoint | undefined> {
  try {
    return await new ResourceClient(ctx.ds()).get('WorkloadEndpoint', wepName(ctx), ctx.id.namespace);
  } catch (err) {
    throw toCniError(err, 'reading the WorkloadEndpoint');
  }
}

async function deleteWep(ctx: Ctx): Promise<void> {
  try {
    await new ResourceClient(ctx.ds()).delete('WorkloadEndpoint', wepName(ctx), ctx.id.namespace);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_RESOURCE_NOT_FOUND') return;
    throw toCniError(err, 'deleting the WorkloadEndpoint');
  }
}

/** The MTU tortie-node detected (src/dataplane/routes.ts writes it), if it wrote a sane one. */
function agentMtu(conf: { mtu_file?: string }, vars: NodeJS.ProcessEnv): number | undefined {
  const file = conf.mtu_file ?? vars.TORTIE_MTU_FILE ?? join(vars.TORTIE_RUN_DIR || '/run/tortie', 'mtu');
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch { return undefined; }
  const n = Number(text.trim());
  return Number.isInteger(n) && n >= 576 && n <= 65535 ? n : undefined;
}

/**
 * Config `mtu`; else, as Calico's plugin, the MTU the agent wrote (the smallest MTU of the
 * encapsulations enabled pools use: the host's detected MTU less 20 for IPIP, 50 for VXLAN); else
 * 1500 less the header of the address's pool's encapsulation (ENCAP_OVERHEAD).
 */
async function workloadMtu(ctx: Ctx, ips: string[]): Promise<number> {
  if (ctx.conf.mtu !== undefined) return ctx.conf.mtu;
  const fromAgent = agentMtu(ctx.conf, ctx.procEnv);
  if (fromAgent !== undefined) return fromAgent;
  try {
    const pools = await new IpamClient(ctx.ds()).listPools();
    // IPIP and VXLAN (the overlays here) are IPv4's: the IPv4 address's pool decides.
    const addr = tryParseAddr((ips.find((a) => !a.includes(':')) ?? '').split('/')[0]!);
    const pool = addr === undefined ? undefined : pools.find((p) => netContains(p.net, addr));
    if (pool && pool.vxlanMode !== 'Never') return DEFAULT_MTU - ENCAP_OVERHEAD.vxlan;
    return pool && pool.ipipMode !== 'Never' ? DEFAULT_MTU - ENCAP_OVERHEAD.ipip : DEFAULT_MTU;
  } catch (err) {
    throw toCniError(err, 'reading IP pools for the MTU');
  }
}

/** Every address of a result, both families, IPv4 first (as Calico's plugin orders them). */
function resultAddresses(res: CniResult | undefined): string[] {
  const all = (res?.ips ?? []).map((x) => x.address).filter((a) => typeof a === 'string' && a !== '');
  return [...all.filter((a) => !a.includes(':')), ...all.filter((a) => a.includes(':'))];
}

/** An address (with or without a prefix) as the endpoint's host network: /32 or /128, canonical text. */
function hostCidr(address: string): string {
  const bare = address.split('/')[0]!;
  const a = tryParseAddr(bare);
  return a === undefined ? `${bare}/32` : `${formatAddr(a)}/${familyBits(a.family)}`;
}

async function requireNetns(env: CniEnv, code: number = CNI_ERR.INVALID_ENV): Promise<void> {
  if (!(await netnsExists(env.netns))) throw new CniError(code, `CNI_NETNS=${JSON.stringify(env.netns)} does not exist`);
}

// ---------------------------------------------------------------- ADD

export async function cmdAdd(ctx: Ctx): Promise<CniResult> {
  const { conf, env } = ctx;
  await requireNetns(env);
  if (conf.policy_only) return addPolicyOnly(ctx);

  // The (still down) veth is made while IPAM assigns: it needs no address, and its MTU is set
  // again once the address's pool is known. The container MAC is chosen here, so the endpoint
  // can name it; a repeated ADD that finds the pair keeps the pair and its MAC.
  // Its host-side sysctls follow at once, also while IPAM works.
  const made = ensureVeth({ hostName: ctx.hostName, contName: env.ifname, netns: env.netns, mtu: conf.mtu ?? DEFAULT_MTU, contMac: randomMac() });
  const veth = made.then(async (v) => { await hostSysctls(ctx.hostName); return v; });
  made.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
  veth.catch(() => undefined);
  const dropNewVeth = async (): Promise<void> => {
    const v = await made.catch(() => undefined);
    if (v?.created) await deleteLink(ctx.hostName).catch(() => undefined);
  };
  let ipamRes: CniResult;
  try {
    ipamRes = await delegateIpam('ADD', ctx);
  } catch (err) {
    await dropNewVeth();
    throw err;
  }
  // Every address goes to the wiring and the endpoint; the wiring handles each family.
  const ips = resultAddresses(ipamRes);
  if (ips.length === 0) {
    await dropNewVeth();
    await delegateIpam('DEL', ctx).catch(() => undefined);
    throw new CniError(CNI_ERR.IPAM_FAILURE, `IPAM plugin ${conf.ipam!.type} returned no address`);
  }
  try {
    const [mtu, { contMac }] = await Promise.all([workloadMtu(ctx, ips), veth]);
    // Both sides are configured while the endpoint is written (the datastore commit overlaps the
    // `ip` commands): until the agent has the endpoint, the workload's programs fail closed, so
    // an interface up before its endpoint exists carries no traffic. Every step is awaited
    // before the answer, and a failure of any undoes all of them below.
    const steps = await Promise.allSettled([
      configureHostLink(ctx.hostName, mtu, ips),
      configureContainerSide(env.netns, env.ifname, mtu, ips),
      writeWep(ctx, buildWep(ctx, ips, contMac)),
    ]);
    const failed = steps.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    ctx.log.info({ container: env.containerId, iface: ctx.hostName, ips }, 'workload networked');
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: ctx.hostName, mac: HOST_MAC },
        { name: env.ifname, mac: contMac, sandbox: env.netns },
      ],
      ips: ips.map((address) => ({ address: hostCidr(address), interface: 1 })),
      routes: [
        ...(ips.some((a) => !a.includes(':')) ? [{ dst: '0.0.0.0/0', gw: GATEWAY }] : []),
        ...(ips.some((a) => a.includes(':')) ? [{ dst: '::/0', gw: GATEWAY6 }] : []),
      ],
      // The spec's `dns` from the network configuration, passed on as Calico does.
      dns: typeof conf.raw.dns === 'object' && conf.raw.dns !== null && !Array.isArray(conf.raw.dns) ? conf.raw.dns as Record<string, unknown> : {},
    };
  } catch (err) {
    ctx.log.warn({ err }, 'ADD failed; undoing');
    await deleteLink(ctx.hostName).catch(() => undefined);
    await deleteWep(ctx).catch(() => undefined);
    await delegateIpam('DEL', ctx).catch(() => undefined);
    throw err;
  }
}

async function addPolicyOnly(ctx: Ctx): Promise<CniResult> {
  const { conf, env } = ctx;
  const prev = conf.prevResult;
  const ips = resultAddresses(prev);
  if (!prev || ips.length === 0) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, 'network configuration field prevResult: policy_only mode needs the result of the plugin before tortie in the chain, with at least one address');
  }
  const cont = await getLink(env.ifname, env.netns);
  const host = await chainedHostInterface(ctx, prev, cont);
  const mac = prev.interfaces?.find((i) => i.name === env.ifname && i.sandbox)?.mac ?? cont?.address;
  await writeWep(ctx, buildWep(ctx, ips, mac, host));
  ctx.log.info({ container: env.containerId, iface: host, ips }, 'chained workload recorded');
  return formatResult(prev, conf.cniVersion);
}

/**
 * The node-side interface of a chained workload, as the plugin before tortie made it: the peer
 * of CNI_IFNAME (a veth's link index), checked against the host interfaces prevResult names
 * (ptp: the veth; bridge: the bridge and the veth); else the one host interface of prevResult
 * that exists; else, as before, `<interface_prefix><hash>` (the AWS VPC CNI's naming).
 */
async function chainedHostInterface(ctx: Ctx, prev: CniResult, cont: LinkInfo | undefined): Promise<string> {
  const named = (prev.interfaces ?? []).filter((i) => !i.sandbox && typeof i.name === 'string' && i.name !== '').map((i) => i.name);
  if (cont?.link_index !== undefined && cont.link_netnsid !== undefined) {
    const peer = await getLinkByIndex(cont.link_index);
    if (peer && (named.length === 0 || named.includes(peer.ifname))) return peer.ifname;
  }
  const existing: string[] = [];
  for (const n of named) if (await getLink(n)) existing.push(n);
  if (existing.length === 1) return existing[0]!;
  if (await getLink(ctx.hostName)) return ctx.hostName;
  throw new CniError(CNI_ERR.INTERFACE_FAILURE, `policy_only: cannot tell the host interface of ${ctx.env.ifname}: it is not a veth whose peer is in this namespace, prevResult names ${named.length ? named.join(', ') : 'no host interface'}${existing.length > 1 ? ' (more than one exists)' : ''}, and ${ctx.hostName} (interface_prefix ${JSON.stringify(ctx.conf.interface_prefix ?? 'cali')} + hash of ${ctx.id.workloadId}) does not exist`);
}

// ---------------------------------------------------------------- DEL

export async function cmdDel(ctx: Ctx): Promise<void> {
  const wep = await readWep(ctx);
  if (wep && wep.spec.containerID && wep.spec.containerID !== ctx.env.containerId) {
    // The endpoint (and the veth, named after the pod) belong to a newer container of the same
    // pod: leave them, give back only what this container held.
    ctx.log.info({ container: ctx.env.containerId, owner: wep.spec.containerID }, 'DEL for a replaced container');
    if (!ctx.conf.policy_only) await delegateIpam('DEL', ctx);
    return;
  }
  if (!ctx.conf.policy_only) {
    await delegateIpam('DEL', ctx);
    await deleteLink(ctx.hostName);
  }
  await deleteWep(ctx);
}

// ---------------------------------------------------------------- CHECK

export async function cmdCheck(ctx: Ctx): Promise<void> {
  const { conf, env } = ctx;
  const prev = conf.prevResult;
  if (!prev) throw new CniError(CNI_ERR.INVALID_CONFIG, 'network configuration field prevResult: is required for CHECK');
  await requireNetns(env, CNI_ERR.UNKNOWN_CONTAINER);
  const ips = resultAddresses(prev).map(hostCidr).sort();
  const fail = (what: string): never => { throw new CniError(CNI_ERR.CHECK_FAILED, `CHECK ${env.containerId}: ${what}`); };

  const wep = await readWep(ctx);
  if (!wep) fail(`WorkloadEndpoint ${ctx.id.namespace}/${wepName(ctx)} does not exist`);
  if (wep!.spec.containerID !== env.containerId) fail(`WorkloadEndpoint belongs to container ${wep!.spec.containerID}`);
  const wepIps = [...(wep!.spec.ipNetworks ?? [])].sort();
  if (wepIps.join(',') !== ips.join(',')) fail(`WorkloadEndpoint ipNetworks [${wepIps.join(', ')}] differ from prevResult [${ips.join(', ')}]`);
  if (conf.policy_only) {
    const iface = wep!.spec.interfaceName ?? '';
    if (!iface || !(await getLink(iface))) fail(`host interface ${iface || '(none recorded)'} of the WorkloadEndpoint does not exist`);
    return;
  }
  if (wep!.spec.interfaceName !== ctx.hostName) fail(`WorkloadEndpoint interfaceName ${wep!.spec.interfaceName} is not ${ctx.hostName}`);

  const host = await getLink(ctx.hostName);
  if (!host) return fail(`host interface ${ctx.hostName} does not exist`);

  if (host.linkinfo?.info_kind !== 'veth') fail(`host interface ${ctx.hostName} is not a veth`);
  if (host.address !== HOST_MAC) fail(`host interface ${ctx.hostName} has MAC ${host.address}, expected ${HOST_MAC}`);
  if (!host.flags.includes('UP')) fail(`host interface ${ctx.hostName} is down`);
  const cont = await getLink(env.ifname, env.netns);
  if (!cont) return fail(`interface ${env.ifname} does not exist in ${env.netns}`);
  if (cont.link_index !== host.ifindex || host.link_index !== cont.ifindex) fail(`${env.ifname} in the container is not the peer of ${ctx.hostName}`);
  if (!cont.flags.includes('UP')) fail(`container interface ${env.ifname} is down`);
  if (wep!.spec.mac && wep!.spec.mac !== cont.address) fail(`container MAC ${cont.address} differs from the WorkloadEndpoint's ${wep!.spec.mac}`);
  // Each family's wiring: the container's addresses and default route, the host's routes and sysctls.
  const v4 = ips.filter((a) => !a.includes(':'));
  const v6 = ips.filter((a) => a.includes(':'));
  const sysctls: [string, string][] = [];
  if (v4.length > 0) {
    const addrs = await getAddrs(env.ifname, env.netns);
    for (const a of v4) if (!addrs.includes(a)) fail(`address ${a} missing on ${env.ifname} (has ${addrs.join(', ') || 'none'})`);
    const croutes = await getRoutes(env.netns);
    if (!croutes.some((r) => r.dst === GATEWAY && r.dev === env.ifname && r.scope === 'link')) fail(`container route ${GATEWAY} scope link dev ${env.ifname} missing`);
    if (!croutes.some((r) => r.dst === 'default' && r.gateway === GATEWAY && r.dev === env.ifname)) fail(`container default route via ${GATEWAY} dev ${env.ifname} missing`);
    const hroutes = await getRoutes(undefined, ctx.hostName);
    for (const a of v4) {
      const bare = a.split('/')[0];
      if (!hroutes.some((r) => r.dst === bare || r.dst === a)) fail(`host route ${a} dev ${ctx.hostName} missing`);
    }
    sysctls.push([`/proc/sys/net/ipv4/conf/${ctx.hostName}/proxy_arp`, '1'], [`/proc/sys/net/ipv4/neigh/${ctx.hostName}/proxy_delay`, '0'],
      [`/proc/sys/net/ipv4/conf/${ctx.hostName}/forwarding`, '1']);
  }
  if (v6.length > 0) {
    const addrs = await getAddrs(env.ifname, env.netns, 6);
    for (const a of v6) if (!addrs.includes(a)) fail(`address ${a} missing on ${env.ifname} (has ${addrs.join(', ') || 'none'})`);
    const croutes = await getRoutes(env.netns, undefined, 6);
    if (!croutes.some((r) => r.dst === 'default' && r.gateway === GATEWAY6 && r.dev === env.ifname)) fail(`container default route via ${GATEWAY6} dev ${env.ifname} missing`);
    const hroutes = await getRoutes(undefined, ctx.hostName, 6);
    for (const a of v6) {
      const bare = a.split('/')[0];
      if (!hroutes.some((r) => r.dst === bare || r.dst === a)) fail(`host route ${a} dev ${ctx.hostName} missing`);
    }
    sysctls.push([`/proc/sys/net/ipv6/conf/${ctx.hostName}/accept_ra`, '0'], [`/proc/sys/net/ipv6/conf/${ctx.hostName}/proxy_ndp`, '1'],
      [`/proc/sys/net/ipv6/conf/${ctx.hostName}/forwarding`, '1']);
  }
  for (const [path, want] of sysctls) {
    const got = (await readFile(path, 'utf8')).trim();
    if (got !== want) fail(`${path} is ${got}, expected ${want}`);
  }
  await delegateIpam('CHECK', ctx);
}

// ---------------------------------------------------------------- entry

export async function main(argv: string[]): Promise<number> {
  // Not a CNI call (runtimes pass no arguments): `tortie install [--bin-dir DIR]` puts the
  // VERSION-answering wrappers of tortie and tortie-ipam where a runtime looks for plugins.
  if (argv[0] === 'install') {
    const i = argv.indexOf('--bin-dir');
    const binDir = i >= 0 && argv[i + 1] ? argv[i + 1]! : '/opt/cni/bin';
    const { installCni } = await import('./install');
    for (const b of installCni({ binDir }).binaries) process.stdout.write(`installed ${b}\n`);
    return 0;
  }
  return cniMain(run, (err) => toError(err));
}

const toError = (err: unknown): CniError => toCniError(err, 'tortie');

async function run(env: CniEnv, conf: NetConf, vars: NodeJS.ProcessEnv): Promise<CniResult | void> {
  const level = conf.log_level ?? 'warn';
  const log = lazyLogger(() => createLogger({ level, name: 'tortie-cni' }), level).child({ container: env.containerId, command: env.command });
  const ctx = makeCtx(conf, env, vars, log);
  try {
    if (env.command === 'ADD') return await cmdAdd(ctx);
    if (env.command === 'DEL') await cmdDel(ctx);
    else await cmdCheck(ctx);
  } finally {
    await ctx.close();
  }
}

/** One invocation from an environment and stdin (the resident server's entry). */
export function handle(vars: NodeJS.ProcessEnv, stdin: string): Promise<{ code: number; stdout: string }> {
  return cniRun(vars, stdin, run, toError);
}
