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
import { resolve } from 'node:path';

export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/** bin/tortie-node.js of this checkout. */
export const AGENT_BIN = resolve(__dirname, '..', '..', '..', 'bin', 'tortie-node.js');

/** `node <flags> bin/tortie-node.js <args…>`, `extraNodeFlags` after ours (the last one wins). */
export function agentCommand(args: readonly string[], extraNodeFlags: readonly string[] = []): string[] {
  return [process.execPath, ...AGENT_NODE_FLAGS, ...extraNodeFlags, AGENT_BIN, ...args];
}
