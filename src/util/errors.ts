/**
 * The one error base of tortie. Every error class tortie throws derives from TortieError and so
 * carries:
 *
 *   code         a stable `ERR_<AREA>_<WHAT>` string callers and tests branch on (never the message)
 *   recoverable  true when the same call may succeed later unchanged (a store unreachable or busy,
 *                contention that outlasted a retry budget, EAGAIN from the kernel); the retry
 *                utility (util/retry.ts) retries exactly these, and nothing else
 *   cause        the error this one wraps, when there is one (standard `Error.cause`)
 *   name         the class name, unless a class keeps an older name users already see
 *
 * Areas group their codes in a union type next to their classes (datastore/errors.ts,
 * ipam/errors.ts, …); a class may narrow `code` with `declare readonly code: TheirCodes`.
 */

export interface TortieErrorOptions {
  recoverable?: boolean;
  cause?: unknown;
}

export class TortieError extends Error {
  readonly code: string;
  readonly recoverable: boolean;

  constructor(code: string, message: string, opts: TortieErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.recoverable = opts.recoverable ?? false;
    this.name = new.target.name;
  }
}

/**
 * Whether retrying the same call later may succeed: only errors that say so (`recoverable:
 * true`; the etcd backend turns etcd3's recoverable errors into recoverable DatastoreErrors);
 * everything else — bad input, conflicts a caller must re-read for, programming errors — is not.
 */
export function isRecoverable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { recoverable?: unknown }).recoverable === true;
}
