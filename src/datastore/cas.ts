/**
 * The one compare-and-swap loop over the datastore: read, decide, write with the revision read
 * (`expectedRevision`, or a resource's `resourceVersion`), and when another writer got there
 * first, wait a little and start again from the read.
 *
 * Contract of `casLoop(step, opts)`:
 * - `step(attempt)` does one read → modify → conditional write and returns the result; it may
 *   decide to stop early (return) or fail (throw) like any function.
 * - An error of one of the `conflicts` classes from a step (default: ConflictError — the key
 *   moved between the read and the write) restarts the step after `opts.backoff`. Any other error
 *   is thrown unchanged.
 * - After `opts.attempts` steps that all conflicted, `opts.exhausted(lastConflict)` is thrown
 *   (for IPAM: a recoverable ERR_IPAM_CONTENTION, which the CNI plugin reports as "try again
 *   later"; for resources: the last conflict itself).
 * The waiting and counting is util/retry.ts's `withRetry`: a conflict becomes a recoverable
 * CasConflict for it (re-running the step re-reads, so it may succeed), which is unwrapped here;
 * it retries nothing else (a recoverable error from below, such as an unavailable store or a
 * nested loop's contention, is the caller's to handle, as before).
 */
import { TortieError } from '../util/errors';
import { BACKOFF, withRetry, type Backoff } from '../util/retry';
import { ConflictError } from './errors';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ErrorClass = abstract new (...args: any[]) => Error;

export interface CasOptions {
  /** Steps at most (the first included). */
  attempts: number;
  /** Errors meaning "someone else wrote first: read again". Default [ConflictError]. */
  conflicts?: readonly ErrorClass[];
  /** The error thrown when every attempt conflicted. Default: the last conflict. */
  exhausted?: (lastConflict: Error) => Error;
  /** Default BACKOFF.resourceConflict. */
  backoff?: Backoff;
}

/** A step lost a race: recoverable by re-running the step (internal to casLoop). */
class CasConflict extends TortieError {
  constructor(readonly conflict: Error) {
    super('ERR_DATASTORE_CAS_CONFLICT', conflict.message, { recoverable: true, cause: conflict });
  }
}

export async function casLoop<T>(step: (attempt: number) => Promise<T>, opts: CasOptions): Promise<T> {
  const conflicts = opts.conflicts ?? [ConflictError];
  try {
    return await withRetry(async (attempt) => {
      try {
        return await step(attempt);
      } catch (e) {
        if (conflicts.some((c) => e instanceof c)) throw new CasConflict(e as Error);
        throw e;
      }
    }, { attempts: opts.attempts, backoff: opts.backoff ?? BACKOFF.resourceConflict, only: (e) => e instanceof CasConflict });
  } catch (e) {
    if (e instanceof CasConflict) throw opts.exhausted ? opts.exhausted(e.conflict) : e.conflict;
    throw e;
  }
}
