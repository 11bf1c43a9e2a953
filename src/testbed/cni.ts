/**
 * The real CNI plugins, run the way a runtime runs them: the executables installed on a CNI_PATH
 * of the testbed's own (`tortie`, `tortie-ipam`, with a socket nobody serves, so the plugin runs
 * as a process), executed inside the node's network namespace with the CNI_* environment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { installCni } from '../cni/install';
import { run, type Netns } from '../util/netns';

export interface CniRun { code: number; out: Record<string, unknown> | undefined; stdout: string; stderr: string }

/** A CNI_PATH directory holding both plugins under their CNI names; `cleanup` removes it. */
export function makeCniPath(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-cnipath-'));
  installCni({ binDir: dir, socket: join(dir, 'no-server.sock') });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs an installed plugin in `node` with `env` (CNI_PATH added) and the netconf on stdin. */
export async function runPlugin(node: Netns, plugin: 'tortie' | 'tortie-ipam', env: Record<string, string>, stdin: string | object,
  cniPath: string, opts: { netOnly?: boolean; baseEnv?: NodeJS.ProcessEnv } = {}): Promise<CniRun> {
  // TORTIE_MTU_FILE: no agent's MTU file (a tortie-node on this host writes /run/tortie/mtu) unless the caller gives one.
  const mtuFile = opts.baseEnv?.TORTIE_MTU_FILE ?? join(cniPath, 'no-agent-mtu');
  const vars = Object.entries({ CNI_PATH: cniPath, TORTIE_MTU_FILE: mtuFile, ...env }).map(([k, v]) => `${k}=${v}`);
  const input = typeof stdin === 'string' ? stdin : JSON.stringify(stdin);
  // The installed executable, as a runtime runs it (the shell wrapper, or a launcher symlink).
  // netOnly: enter only the network namespace (`nsenter --net`), keeping the host's /sys mounts.
  const r = opts.netOnly
    ? await run(['nsenter', `--net=${node.path}`, '--', 'env', ...vars, join(cniPath, plugin)], { input, allowFail: true, timeoutMs: 60_000, env: opts.baseEnv })
    : await node.exec(['env', ...vars, join(cniPath, plugin)], { input, allowFail: true, timeoutMs: 60_000, env: opts.baseEnv });
  let out: Record<string, unknown> | undefined;
  try { out = r.stdout.trim() ? JSON.parse(r.stdout) : undefined; } catch { out = undefined; }
  return { code: r.code, out, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh container id, as a runtime makes one. */
export function containerId(): string {
  return randomBytes(16).toString('hex');
}
