/**
 * The `tortie-ipam` CNI IPAM plugin (spec 1.0.0 IPAM: ADD, DEL, CHECK, VERSION), over src/ipam.
 *
 * - ADD: assigns one IPv4 address for the handle `<network name>.<CNI_CONTAINERID>` on this
 *   node (config `nodename`, …) from the usable pools (optionally `ipam.ipv4_pools`), or the
 *   exact address asked for with CNI_ARGS `IP=a.b.c.d` (Calico's convention); returns
 *   `{cniVersion, ips: [{address: "a.b.c.d/32"}]}`. Repeating it returns the same address.
 * - DEL: releases the handle's addresses; unknown handle: success.
 * - CHECK: fails (code 103) unless the handle owns exactly the addresses in prevResult.
 * It is exec'd by the `tortie` plugin per the spec's delegation rules, and the same functions
 * (`ipamAdd`, `ipamDel`, `ipamCheck`) are called in-process when the binary is not on CNI_PATH.
 */
import type { Datastore } from '../datastore/types';
import { IpamClient } from '../ipam/client';
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
  try {
    const requested = env.args.IP;
    if (requested) {
      // Calico's CNI_ARGS IP=: this exact address (comma-separated lists take the IPv4 one).
      const ip = requested.split(',').map((x) => x.trim()).find((x) => !x.includes(':'));
      if (!ip) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS IP=${requested} names no IPv4 address`);
      const held = await ipam.ipsByHandle(handleId);
      if (held.length > 0 && !held.some((h) => h.ip === ip)) {
        throw new CniError(CNI_ERR.IPAM_FAILURE, `container already holds ${held.map((h) => h.ip).join(', ')}, not the requested ${ip}`);
      }
      const got = await ipam.assignIp({ ip, handleId, node: attrs.node!, attrs });
      return { cniVersion: conf.cniVersion, ips: [{ address: got.cidr }], routes: [] };
    }
    const res = await ipam.assign({ handleId, node: attrs.node!, attrs, pools: conf.ipam?.ipv4_pools });
    return { cniVersion: conf.cniVersion, ips: res.ips.map((x) => ({ address: x.cidr })), routes: [] };
  } catch (err) {
    throw toCniError(err, 'assigning an IPv4 address');
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
    owned = (await new IpamClient(ds).ipsByHandle(handle)).map((x) => x.cidr).sort();
  } catch (err) {
    throw toCniError(err, 'reading the container\'s addresses');
  }
  const expected = (conf.prevResult?.ips ?? []).map((x) => x.address).filter((a) => !a.includes(':')).sort();
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
