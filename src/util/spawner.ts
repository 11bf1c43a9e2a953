/**
 * A small helper process that starts short commands (`ip`, `nsenter ip`: the CNI plugin served
 * in-process, the agent's link listing) for a big
 * host process: Node's spawn() is synchronous in the calling thread (fork/exec), and its cost
 * grows with the caller's memory. In tortie-node (a large heap, BPF maps mapped) it cost ~15 ms
 * of the agent's event loop per command, 3 per ADD; the helper, a Node process with a small heap,
 * starts them for a few ms of its own time while the agent only passes JSON messages.
 *
 * Contract:
 * - `startSpawner()` forks the helper once (in the caller's namespaces, which it keeps);
 *   `spawnerRun(argv, input, timeoutMs)` runs argv there with `execFile` semantics (timeout
 *   kills it, stdout/stderr captured up to 16 MiB) and resolves with its status and output.
 *   Without a running helper (never started, stopped) the caller runs the command itself.
 * - A helper that dies fails the commands in flight (status 1, saying so; a command is never
 *   started twice) and is started again on the next command.
 * - The helper leaves when its parent's channel closes: it never outlives the agent, and it
 *   keeps the agent's process alive only while commands are in flight.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';

export interface RunResult { code: number; stdout: string; stderr: string }

interface Request { id: number; argv: string[]; input?: string; timeoutMs: number }
interface Reply { id: number; code: number; stdout: string; stderr: string }

/** Runs argv as netlink.ts always did: status, stdout, stderr (with "(timed out)" when killed). */
export function runDirect(argv: string[], input: string | undefined, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + ((err as { killed?: boolean } | null)?.killed ? ' (timed out)' : '') });
    });
    child.stdin?.on('error', () => undefined);
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

let helper: ChildProcess | undefined;
let enabled = false;
let nextId = 1;
const pending = new Map<number, (r: RunResult) => void>();

/** The helper keeps the host process alive only while commands are in flight. */
function holdAlive(child: ChildProcess, hold: boolean): void {
  const channel = child.channel as { ref?: () => void; unref?: () => void } | undefined;
  if (hold) { child.ref(); channel?.ref?.(); } else { child.unref(); channel?.unref?.(); }
}

function settle(id: number, r: RunResult): void {
  const resolve = pending.get(id);
  if (!resolve) return;
  pending.delete(id);
  if (pending.size === 0 && helper) holdAlive(helper, false);
  resolve(r);
}

function failPending(why: string): void {
  for (const id of [...pending.keys()]) settle(id, { code: 1, stdout: '', stderr: why });
}

function ensureHelper(): ChildProcess | undefined {
  if (!enabled) return undefined;
  if (helper && helper.connected) return helper;
  const child = fork(__filename, ['--tortie-spawner'], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: ['--max-old-space-size=32'],
    env: { ...process.env, NODE_OPTIONS: '' },
    serialization: 'json',
  });
  child.on('message', (m: Reply) => settle(m.id, { code: m.code, stdout: m.stdout, stderr: m.stderr }));
  const gone = (): void => {
    if (helper !== child) return;
    failPending('the tortie CNI spawn helper exited while running this command');
    helper = undefined;
  };
  child.once('exit', gone);
  child.once('error', gone);
  holdAlive(child, false);
  helper = child;
  return child;
}

/** From now on commands go through the helper (started on first use). */
export function startSpawner(): void {
  enabled = true;
}

export function stopSpawner(): void {
  enabled = false;
  const h = helper;
  failPending('the tortie CNI spawn helper was stopped while running this command');
  helper = undefined;
  if (h) {
    if (h.connected) h.disconnect();
    h.kill('SIGTERM');
  }
}

/** The helper's pid while one runs (tests). */
export function spawnerPid(): number | undefined {
  return helper?.connected ? helper.pid : undefined;
}

export function spawnerRun(argv: string[], input: string | undefined, timeoutMs: number): Promise<RunResult> {
  const h = ensureHelper();
  if (!h) return runDirect(argv, input, timeoutMs);
  return new Promise((resolve) => {
    const id = nextId++;
    if (pending.size === 0) holdAlive(h, true);
    pending.set(id, resolve);
    const req: Request = { id, argv, input, timeoutMs };
    h.send(req, (err) => {
      if (err) settle(id, { code: 1, stdout: '', stderr: `the tortie CNI spawn helper did not take the command: ${err.message}` });
    });
  });
}

// The helper's side.
if (require.main === module && process.argv.includes('--tortie-spawner')) {
  process.on('message', (m: Request) => {
    void runDirect(m.argv, m.input, m.timeoutMs).then((r) => {
      if (process.connected) process.send!({ id: m.id, ...r } satisfies Reply);
    });
  });
  process.on('disconnect', () => process.exit(0));
}
