/**
 * The `tortie-ipam` CNI IPAM plugin (spec 1.0.0 IPAM: ADD, DEL, CHECK, VERSION), over src/ipam.
 *
 * - ADD: assigns, as Calico's calico-ipam, one IPv4 address (unless `ipam.assign_ipv4` is
 *   "false") and one IPv6 address (when `ipam.assign_ipv6` is "true") for the handle
 *   `<network name>.<CNI_CONTAINERID>` on this node (config `nodename`, …) from the usable pools
 *   of each family (optionally `ipam.ipv4_pools` / `ipam.ipv6_pools`), or the exact addresses
 *   asked for with CNI_ARGS `IP=a.b.c.d[,fd00::5]` (Calico's convention: one per family, and
 *   then only those); returns `{cniVersion, ips: [{address: …}, …]}`, IPv4 first, each address
 *   with its block's prefix as libcalico-go's AutoAssign returns it (`192.168.0.5/26`,
 *   `fd00::5/122`), or /32 and /128 for requested ones (its AssignIP path). When one family fails after the other succeeded, what this
 *   call assigned is released again, as Calico does. Repeating it returns the same addresses.
 * - DEL: releases the handle's addresses (both families); unknown handle: success.
 * - CHECK: fails (code 103) unless the handle owns exactly the addresses in prevResult (both families).
 * It is exec'd by the `tortie` plugin per the spec's delegation rules, and the same functions
 * (`ipamAdd`, `ipamDel`, `ipamCheck`) are called in-process when the binary is not on CNI_PATH.
 */
import type { Datastore } from '../datastore/types';
import { IpamClient, type AssignedIp } from '../ipam/client';
import { formatAddr, tryParseAddr, type IpNum } from '../ipam/net';
import { createLogger, lazyLogger, silentLogger, type Logger } from '../util/log';
import type { CniEnv, CniResult, NetConf } from './config';
import { handleIdFor, nodeName, openStore, toCniError, workloadIdentity } from './context';
import { CNI_ERR, CniError } from './errors';
import { cniMain, cniRun } from './io';

export async function ipamAdd(ds: Datastore, conf: NetConf, env: CniEnv, procEnv: NodeJS.ProcessEnv, log: Logger = silentLogger): Promise<CniResult> {
  const ipam = new IpamClient(ds, { logger: log });
  const id = workloadIdentity(env);
  const attrs: Record<string, string> = { node: nodeName(conf, procEnv), containerID: env.containerId, namespace: id.namespace };
  if (id.pod) attrs.pod = id.pod;
  const handleId = handleIdFor(conf, env);
  const result = (ips: readonly AssignedIp[], withBlockPrefix: boolean): CniResult => ({
    cniVersion: conf.cniVersion,
    ips: [...ips].sort((a, b) => a.family - b.family).map((x) => ({ address: withBlockPrefix ? `${x.ip}/${x.block.split('/')[1]}` : x.cidr })),
    routes: [],
  });
  const requested = env.args.IP;
  if (requested) return result(await assignRequested(ipam, requested, handleId, attrs), false);

  const want: { family: 4 | 6; pools?: string[] }[] = [];
  if (conf.ipam?.assign_ipv4 !== 'false') want.push({ family: 4, pools: conf.ipam?.ipv4_pools });
  if (conf.ipam?.assign_ipv6 === 'true') want.push({ family: 6, pools: conf.ipam?.ipv6_pools });
  const got: AssignedIp[] = [];
  const taken: string[] = [];
  for (const w of want) {
    try {
      const res = await ipam.assign({ handleId, node: attrs.node!, attrs, pools: w.pools, family: w.family });
      got.push(...res.ips);
      if (!res.existing) taken.push(...res.ips.map((x) => x.ip));
    } catch (err) {
      // The other family's addresses this call took go back (Calico releases them by address).
      if (taken.length > 0) await ipam.releaseAddresses(handleId, taken).catch((e: unknown) => log.warn({ err: e, taken }, 'releasing after a failed assign'));
      throw toCniError(err, `assigning an IPv${w.family} address`);
    }
  }
  return result(got, true);
}

/**
 * Calico's CNI_ARGS `IP=`: these exact addresses, at most one per family. The handle may already
 * hold them (a repeated ADD); holding others is an error.
 */
async function assignRequested(ipam: IpamClient, requested: string, handleId: string, attrs: Record<string, string>): Promise<AssignedIp[]> {
  const addrs: IpNum[] = [];
  for (const part of requested.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    const a = tryParseAddr(part);
    if (a === undefined) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS IP=${requested}: ${JSON.stringify(part)} is not an IPv4 or IPv6 address`);
    if (addrs.some((x) => x.family === a.family)) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS IP=${requested} names more than one IPv${a.family} address`);
    addrs.push(a);
  }
  if (addrs.length === 0) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS IP=${requested} names no address`);
  const wanted = addrs.map(formatAddr);
  const taken: string[] = [];
  try {
    const held = await ipam.ipsByHandle(handleId);
    const others = held.filter((h) => !wanted.includes(h.ip));
    if (others.length > 0) {
      throw new CniError(CNI_ERR.IPAM_FAILURE, `container already holds ${held.map((h) => h.ip).join(', ')}, not the requested ${wanted.join(', ')}`);
    }
    const out: AssignedIp[] = [];
    for (const ip of wanted) {
      const before = held.some((h) => h.ip === ip);
      out.push(await ipam.assignIp({ ip, handleId, node: attrs.node!, attrs }));
      if (!before) taken.push(ip);
    }
    return out;
  } catch (err) {
    if (taken.length > 0) await ipam.releaseAddresses(handleId, taken).catch(() => undefined);
    throw toCniError(err, `assigning the requested address${wanted.length > 1 ? 'es' : ''} ${wanted.join(', ')}`);
  }
}

export async function ipamDel(ds: Datastore, conf: NetConf, env: CniEnv, log: Logger = silentLogger): Promise<string[]> {
  try {
    return await new IpamClient(ds, { logger: log }).releaseByHandle(handleIdFor(conf, env));
  } catch (err) {
    throw toCniError(err, 'releasing the container\'s addresses');
  }
}

export async function ipamCheck(ds: Datastore, conf: NetConf, env: CniEnv): Promise<void> {
  const handle = handleIdFor(conf, env);
  let owned: string[];
  try {
    owned = (await new IpamClient(ds).ipsByHandle(handle)).map((x) => x.ip).sort();
  } catch (err) {
    throw toCniError(err, 'reading the container\'s addresses');
  }
  // Addresses of both families (their prefix is the block's or /32, /128: not compared), in the
  // canonical text the handle's addresses are printed in.
  const expected = (conf.prevResult?.ips ?? []).map((x) => {
    const ip = x.address.split('/')[0] ?? '';
    const a = tryParseAddr(ip);
    return a === undefined ? ip : formatAddr(a);
  }).sort();
  if (owned.join(',') !== expected.join(',')) {
    throw new CniError(CNI_ERR.CHECK_FAILED, `IPAM handle ${handle} owns [${owned.join(', ')}] but prevResult lists [${expected.join(', ')}]`);
  }
}

async function run(env: CniEnv, conf: NetConf, vars: NodeJS.ProcessEnv): Promise<CniResult | void> {
  const level = conf.log_level;
  const log = level ? lazyLogger(() => createLogger({ level, name: 'tortie-ipam' }), level) : silentLogger;
  const ds = openStore(conf, vars, log);
  try {
    if (env.command === 'ADD') return await ipamAdd(ds, conf, env, vars, log);
    if (env.command === 'DEL') await ipamDel(ds, conf, env, log);
    else await ipamCheck(ds, conf, env);
  } finally {
    await ds.close().catch(() => undefined);
  }
}

const toError = (err: unknown): CniError => toCniError(err, 'tortie-ipam');

export async function main(_argv: string[]): Promise<number> {
  return cniMain(run, toError);
}

/** One invocation from an environment and stdin (the resident server's entry). */
export function handle(vars: NodeJS.ProcessEnv, stdin: string): Promise<{ code: number; stdout: string }> {
  return cniRun(vars, stdin, run, toError);
}
