/**
 * Test helper: runs the real `tortie` / `tortie-ipam` executables the way a CNI runtime does
 * (the ones installed on CNI_PATH),
 * inside a test namespace acting as the node (`ip netns exec <node-ns> env CNI_…=… tortie`),
 * with CNI_PATH pointing at a temp directory that holds both plugins under their CNI names.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Netns } from '../../../src/util/netns';
import { installCni } from '../../../src/cni/install';


export interface CniRun { code: number; out: Record<string, unknown> | undefined; stdout: string; stderr: string }

export function makeCniPath(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-cnipath-'));
  // A socket of its own that nobody serves: the plugin runs as a process, never through a
  // resident server that might listen at the default path.
  installCni({ binDir: dir, socket: join(dir, 'no-server.sock') });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function runPlugin(node: Netns, plugin: 'tortie' | 'tortie-ipam', env: Record<string, string>, stdin: string | object,
  cniPath: string): Promise<CniRun> {
  // TORTIE_MTU_FILE: no agent's MTU file (a tortie-node on this host writes /run/tortie/mtu) unless a test gives one.
  const vars = Object.entries({ CNI_PATH: cniPath, TORTIE_MTU_FILE: join(cniPath, 'no-agent-mtu'), ...env }).map(([k, v]) => `${k}=${v}`);
  // The installed executable, as a runtime runs it (the shell wrapper, or a launcher symlink).
  const r = await node.exec(['env', ...vars, join(cniPath, plugin)],
    { input: typeof stdin === 'string' ? stdin : JSON.stringify(stdin), allowFail: true, timeoutMs: 60_000 });
  let out: Record<string, unknown> | undefined;
  try { out = r.stdout.trim() ? JSON.parse(r.stdout) : undefined; } catch { out = undefined; }
  return { code: r.code, out, stdout: r.stdout, stderr: r.stderr };
}
