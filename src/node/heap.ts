/**
 * One full, compacting garbage collection of the agent's own heap, for the moment after the
 * first reconcile. The initial sync allocates far more than it keeps (decoded list, validated
 * copies, the compiled snapshot and its encodings: at 100,000 endpoints the heap grows to
 * ~700 MiB for ~500 MiB live), and V8 keeps the pages it grew until it is idle for a while
 * (its memory reducer); the agent is rarely idle that long at this scale. An ordinary full
 * collection frees the dead objects but moves only the most fragmented pages, so the heap keeps
 * its size (a test process with 135 MiB live in a 340 MiB heap: 309 MiB committed after it);
 * this one compacts every page (`--compact-on-every-full-gc` for its duration: 154 MiB
 * committed, RSS 367 → 204 MiB; it took 0.9 s instead of 0.4 s) and the pages emptied go back to
 * the kernel.
 *
 * `gc` is V8's own; it is reachable without `--expose-gc` on the command line by setting the
 * flag at run time and reading it from a new context (the flag exposes it to contexts created
 * afterwards). Returns the time taken, or undefined when V8 refused (nothing happened).
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFn: (() => void) | null | undefined;

function v8Gc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  const own = (globalThis as { gc?: () => void }).gc;
  if (typeof own === 'function') return (gcFn = own);
  try {
    setFlagsFromString('--expose-gc');
    const f = runInNewContext('gc') as unknown;
    gcFn = typeof f === 'function' ? (f as () => void) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** Full collections now (blocking); the milliseconds they took, or undefined if unavailable. */
export function compactHeap(): number | undefined {
  const gc = v8Gc();
  if (gc === null) return undefined;
  const t0 = performance.now();
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
  return performance.now() - t0;
}
