import { readFileSync } from 'node:fs';

/**
 * The process exists and is running: `kill(pid, 0)` succeeds and /proc does not show it as a
 * zombie (an exited child not yet reaped still answers kill 0).
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \([^)]*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Waits up to `graceMs` for `pid` to exit (after `signal`, when given; pass none when the process
 * was already asked another way), then kills it.
 */
export async function stopProcess(pid: number, opts: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<void> {
  if (opts.signal) {
    try { process.kill(pid, opts.signal); } catch { /* gone */ }
  }
  const until = Date.now() + (opts.graceMs ?? 10_000);
  while (isProcessAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  if (isProcessAlive(pid)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}
