/**
 * How the agent process is started: the Node/V8 flags it runs with, and the command line every
 * launcher in this repository uses (tortiectl node run, the lab, tests, benchmarks).
 *
 * `--max-semi-space-size=8` (MiB): V8's default young generation (16 MiB semi-spaces on this
 * machine) is sized for throughput; the agent's allocation comes in bursts (initial list, full
 * compiles) and its RSS peak is set by those bursts. With 8 MiB the peak at 10,000 endpoints
 * drops by ~30 MiB for a few hundred more scavenges during the initial sync
 * (bench/agent-latency.js --agent-node-flags compares settings). Young-generation size can only
 * be set when the process starts, so it is a flag here and on bin/tortie-node.js's `#!` line;
 * the old-generation headroom is set at run time (NodeConfig.heapGrowingPercent).
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/** bin/tortie-node.js of this checkout. */
export const AGENT_BIN = resolve(__dirname, '..', '..', '..', 'bin', 'tortie-node.js');

/** `node <flags> bin/tortie-node.js <args…>`, `extraNodeFlags` after ours (the last one wins). */
export function agentCommand(args: readonly string[], extraNodeFlags: readonly string[] = []): string[] {
  return [process.execPath, ...AGENT_NODE_FLAGS, ...extraNodeFlags, AGENT_BIN, ...args];
}

/** One answer of the agent's /readyz: its status and body, or why there was none. */
export type ReadyProbe = { status: number; body: string } | { error: string };
/** How a started agent process ended. */
export interface AgentExit { code: number | null; signal: NodeJS.Signals | null; error?: Error }
export type ReadyOutcome = { ready: true } | { ready: false; exited?: AgentExit; last: string };

/** Resolves when `child` exits (or fails to start); never rejects. */
export function agentExit(child: ChildProcess): Promise<AgentExit> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
}

/**
 * The one start-and-wait-ready loop (`tortiectl node run`, the lab, tests, benchmarks): asks
 * `probe` for /readyz until it answers 200, the agent exits, or `timeoutMs` passes. `probe` is
 * how the caller reaches 127.0.0.1:<health port> — directly, or from inside the agent's network
 * namespace. Waits between probes end early when the agent exits.
 */
export async function waitForReady(probe: () => Promise<ReadyProbe>, exit: Promise<AgentExit>, timeoutMs: number, intervalMs = 200): Promise<ReadyOutcome> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  let exited: AgentExit | undefined;
  void exit.then((r) => { exited = r; });
  while (Date.now() < deadline) {
    if (exited) break;
    const p = await probe();
    if (exited) break;
    if (!('error' in p)) {
      last = p.body;
      if (p.status === 200) return { ready: true };
    } else {
      last = p.error;
    }
    await Promise.race([new Promise((r) => setTimeout(r, intervalMs)), exit]);
  }
  return { ready: false, exited, last };
}
