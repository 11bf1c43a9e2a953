/**
 * Running commands (`ip`, `tc`, `birdc`, …) from production code: one bounded `run()` with the
 * result as data.
 *
 * Contract:
 * - `run(argv)` executes argv directly (no shell), in the caller's namespaces, with a timeout
 *   (default 30 s) and a 64 MiB output cap; a non-zero exit rejects with a CommandError naming the
 *   command and its stderr, unless `allowFail` (then the result carries the exit code).
 * - Every command still running is known here: `killRunningSync()` kills them all (the namespace
 *   harness calls it from its signal hooks, so a command finishing after a teardown cannot
 *   recreate what the teardown removed).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { TortieError } from './errors';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Why the command did not run or finish (not found, output over maxBuffer, timed out, killed): Node's message. Absent for an exit status. */
  error?: string;
}
export interface ExecOptions {
  timeoutMs?: number; input?: string; allowFail?: boolean; env?: NodeJS.ProcessEnv;
  /** Output cap in bytes (default 64 MiB); beyond it the command is killed (code 1, `error` says so). */
  maxBuffer?: number;
}

/**
 * A command failed. Its code, `ERR_NETNS_COMMAND`, and the alias NetnsError (util/netns) predate
 * this module: callers and tests match them, so both stay.
 */
export class CommandError extends TortieError {
  declare readonly code: 'ERR_NETNS_COMMAND';
  constructor(message: string, readonly result?: ExecResult) {
    super('ERR_NETNS_COMMAND', message);
    this.name = 'NetnsError';
  }
}

const running = new Set<ChildProcess>();

/** Kills every command run() started that has not finished (signal hooks; synchronous). */
export function killRunningSync(): void {
  for (const c of running) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  running.clear();
}

/** Runs argv (no shell) and collects its output; see the contract for failures and bounds. */
export function run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(argv[0]!, argv.slice(1), { timeout: opts.timeoutMs ?? 30_000, maxBuffer: opts.maxBuffer ?? 64 << 20, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        const exited = typeof (err as { code?: unknown } | null)?.code === 'number';
        const code = err ? (exited ? (err as unknown as { code: number }).code : 1) : 0;
        const res: ExecResult = { code, stdout: String(stdout), stderr: String(stderr) };
        if (err && !exited) res.error = err.message;
        if (code !== 0 && !opts.allowFail) {
          const killed = (err as { killed?: boolean } | null)?.killed ? ' (timed out)' : '';
          reject(new CommandError(`command failed${killed} (exit ${code}): ${argv.join(' ')}\n${res.stderr.trim()}`, res));
        } else resolve(res);
      });
    running.add(child);
    child.once('exit', () => running.delete(child));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * `ip -j …` (with `-n <netns>` when given) parsed as JSON; no output is an empty list. A failed
 * command rejects with a CommandError, output that is not JSON with a SyntaxError.
 */
export async function ipJson<T>(args: string[], opts: { netns?: string; timeoutMs?: number } = {}): Promise<T> {
  const r = await run(['ip', ...(opts.netns ? ['-n', opts.netns] : []), '-j', ...args], { timeoutMs: opts.timeoutMs });
  return (r.stdout.trim() ? JSON.parse(r.stdout) : []) as T;
}
