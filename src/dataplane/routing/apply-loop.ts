/**
 * A manager's apply() as a loop that cannot lose a failure: calls are serialised (one kernel
 * writer at a time), and a failed call — rethrown to its caller as well — schedules a call of its
 * own after `backoffMs(backoff, consecutive failures)`, so that events nobody reports (an uplink
 * back before its address) converge without waiting for the next datastore change. A success
 * resets the schedule; close() stops it.
 */
import type { Logger } from '../../util/log';
import { backoffMs, type Backoff } from '../../util/retry';

export class ApplyLoop {
  private chain: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  /** Consecutive failed calls: the retry delay grows with them. */
  private failures = 0;
  private closed = false;

  constructor(private readonly step: () => Promise<void>, private readonly o: { backoff: Backoff; log: Logger; what: string }) {}

  run(): Promise<void> {
    const p = this.chain.then(() => this.step());
    this.chain = p.then(() => { this.failures = 0; }, (e: unknown) => {
      this.o.log.warn({ err: e, retryMs: backoffMs(this.o.backoff, this.failures) }, `${this.o.what} failed; will retry`);
      this.schedule();
    });
    return p;
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.failures++;
      this.run().catch(() => undefined); // logged and rescheduled by run()
    }, backoffMs(this.o.backoff, this.failures));
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
