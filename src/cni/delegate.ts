/**
 * IPAM delegation (spec 1.0.0 "Delegated plugins"): the plugin named by `ipam.type` is found on
 * CNI_PATH and exec'd with the same CNI_* environment and the network configuration on stdin;
 * its stdout is its result or its error object. When `ipam.type` is tortie-ipam, tortie runs the
 * same code in-process instead (no second Node start, one datastore connection).
 */
import { execFile } from 'node:child_process';
import { constants, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Datastore } from '../datastore/types';
import type { Logger } from '../util/log';
import type { CniCommand, CniEnv, CniResult, NetConf } from './config';
import { CNI_ERR, CniError } from './errors';
import { ipamAdd, ipamCheck, ipamDel } from './ipam-plugin';

export const TORTIE_IPAM = 'tortie-ipam';

export async function findPlugin(type: string, path: readonly string[]): Promise<string | undefined> {
  if (type.includes('/')) return undefined;
  for (const dir of path) {
    const candidate = join(dir, type);
    try {
      await fsp.access(candidate, constants.X_OK);
      return candidate;
    } catch { /* next */ }
  }
  return undefined;
}

function execPlugin(file: string, command: CniCommand, conf: NetConf, procEnv: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, [], { env: { ...procEnv, CNI_COMMAND: command }, timeout: timeoutMs, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        if (!err) return resolve(String(stdout));
        let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
        try { parsed = JSON.parse(String(stdout)); } catch { parsed = undefined; }
        if (parsed && typeof parsed.code === 'number' && typeof parsed.msg === 'string') {
          return reject(new CniError(parsed.code, `IPAM plugin ${conf.ipam!.type} ${command}: ${parsed.msg}`, typeof parsed.details === 'string' ? parsed.details : ''));
        }
        const killed = (err as { killed?: boolean }).killed ? ` (killed after ${timeoutMs} ms)` : '';
        reject(new CniError(CNI_ERR.IPAM_FAILURE, `IPAM plugin ${file} ${command} failed${killed}: ${String(stderr).trim() || err.message}`));
      });
    // A plugin may exit without reading its stdin: EPIPE then is not an error of ours (and an
    // unhandled one would end the process, the agent's when it serves the plugins).
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(JSON.stringify(conf.raw));
  });
}

export interface DelegateContext {
  conf: NetConf;
  env: CniEnv;
  procEnv: NodeJS.ProcessEnv;
  /** Opened lazily: only the in-process path needs it. */
  ds: () => Datastore;
  log: Logger;
}

export async function delegateIpam(command: 'ADD', ctx: DelegateContext): Promise<CniResult>;
export async function delegateIpam(command: 'DEL' | 'CHECK', ctx: DelegateContext): Promise<void>;
export async function delegateIpam(command: 'ADD' | 'DEL' | 'CHECK', ctx: DelegateContext): Promise<CniResult | void> {
  const type = ctx.conf.ipam?.type;
  if (!type) throw new CniError(CNI_ERR.INVALID_CONFIG, 'network configuration field ipam.type: is required');
  if (type === TORTIE_IPAM) {
    // The same code as the tortie-ipam executable, without a second Node process and a second
    // datastore connection (the spec lets a plugin implement its delegate however it likes).
    if (command === 'ADD') return ipamAdd(ctx.ds(), ctx.conf, ctx.env, ctx.procEnv, ctx.log);
    if (command === 'DEL') { await ipamDel(ctx.ds(), ctx.conf, ctx.env, ctx.log); return; }
    await ipamCheck(ctx.ds(), ctx.conf, ctx.env);
    return;
  }
  const file = await findPlugin(type, ctx.env.path);
  if (!file) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `IPAM plugin ${JSON.stringify(type)} not found on CNI_PATH (${ctx.env.path.join(':') || 'empty'})`);
  }
  const out = await execPlugin(file, command, ctx.conf, ctx.procEnv, 60_000);
  if (command !== 'ADD') return;
  try {
    return JSON.parse(out) as CniResult;
  } catch {
    throw new CniError(CNI_ERR.IPAM_FAILURE, `IPAM plugin ${file} ADD printed something that is not a JSON result: ${out.slice(0, 200)}`);
  }
}
