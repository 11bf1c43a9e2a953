/**
 * The one retry utility: backoff schedules and `withRetry`, over cockatiel's retry policy (the
 * library etcd3 already uses for its own fault handling, so tortie adds no dependency of its own
 * kind).
 *
 * Contract:
 * - `withRetry(fn, opts)` calls `fn` up to `opts.attempts` times. It retries an error only when
 *   the error says it is recoverable (`isRecoverable`, util/errors.ts) — and, with `only`, that
 *   predicate accepts it too; any other error is thrown at once, unchanged. After the last
 *   attempt the last error is thrown, unchanged.
 * - Between attempts it waits `backoffMs(opts.backoff, n)` for the n-th retry (0-based): the
 *   schedule `min(maxMs, initialMs × multiplier^n + addMs × n)`, with optional jitter (`full`:
 *   uniform in [0, d); `half`: uniform in [d/2, 3d/2)) so that racing writers spread out.
 * - Loops that run for a process's lifetime (the syncer's list, the etcd watch stream, the route
 *   manager) keep their own loop and take only their delays from `backoffMs` and a named
 *   schedule in BACKOFF: there is no attempt limit for them to hit.
 */
import { DelegateBackoff, handleWhen, retry } from 'cockatiel';
import { isRecoverable } from './errors';

export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** Growth per retry, multiplied (default 1: no exponential growth). */
  multiplier?: number;
  /** Growth per retry, added (default 0). */
  addMs?: number;
  jitter?: 'none' | 'full' | 'half';
}

/** The schedules tortie uses, by situation. */
export const BACKOFF = {
  /** Writers racing on one resource (tortiectl replace/label/patch, the agent's own resources). */
  resourceConflict: { initialMs: 5, addMs: 5, maxMs: 200, jitter: 'half' },
  /** IPAM's compare-and-swap on blocks and handles: many short races between CNI calls. */
  ipamConflict: { initialMs: 2, addMs: 3, maxMs: 50, jitter: 'full' },
  /** The syncer re-listing a store that is unavailable. */
  relist: { initialMs: 25, multiplier: 2, maxMs: 2000 },
  /** The etcd watch stream reconnecting. */
  rewatch: { initialMs: 25, multiplier: 2, maxMs: 1000 },
  /** The agent's dataplane apply failing: retried as a full reconcile. */
  dataplaneApply: { initialMs: 50, multiplier: 2, maxMs: 5000 },
  /** The route manager's own retry (uplink back before its address, …). */
  routeApply: { initialMs: 500, multiplier: 2, maxMs: 10_000 },
} as const satisfies Record<string, Backoff>;

/** The delay before the n-th retry (n = 0 for the first retry). */
export function backoffMs(b: Backoff, n: number, random: () => number = Math.random): number {
  const d = Math.min(b.maxMs, b.initialMs * (b.multiplier ?? 1) ** n + (b.addMs ?? 0) * n);
  switch (b.jitter ?? 'none') {
    case 'full': return random() * d;
    case 'half': return d * (0.5 + random());
    default: return d;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface RetryOptions {
  /** Total calls of `fn`, the first included (>= 1). */
  attempts: number;
  backoff: Backoff;
  /**
   * Narrows what is retried (never widens it): an error is retried when it is recoverable and
   * this returns true. For a loop that must not retry recoverable errors of the calls below it.
   */
  only?: (err: unknown) => boolean;
  /** Called before each wait (logging). */
  onRetry?: (err: unknown, retry: number, delayMs: number) => void;
}

/** Calls `fn(attempt)` (attempt 0, 1, …) until it succeeds, throws a non-recoverable error, or `attempts` run out. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  if (!Number.isInteger(opts.attempts) || opts.attempts < 1) throw new RangeError(`retry attempts ${opts.attempts}: need an integer >= 1`);
  const only = opts.only;
  const policy = retry(handleWhen((e) => isRecoverable(e) && (only === undefined || only(e))), {
    maxAttempts: opts.attempts - 1,
    backoff: new DelegateBackoff<{ attempt: number; result: unknown }>((ctx) => backoffMs(opts.backoff, ctx.attempt - 1)),
  });
  if (opts.onRetry) {
    const onRetry = opts.onRetry;
    policy.onRetry((r) => onRetry('error' in r ? r.error : r.value, r.attempt - 1, r.delay));
  }
  return policy.execute(({ attempt }) => fn(attempt));
}
