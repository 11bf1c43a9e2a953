/**
 * Fan-out of watch events to subscribers, shared by the backends. Contract: each subscriber
 * gets only events under its prefix, in publish order, in batches, always asynchronously
 * (never inside publish()/push() and never re-entered); after fail() or close() it gets
 * nothing more. A callback that throws does not affect other subscribers.
 */
import type { Logger } from 'pino';
import type { WatchCallbacks, WatchEvent } from './types';
import { ClosedError } from './errors';

export class Subscription {
  private queue: WatchEvent[] = [];
  private scheduled = false;
  private ended = false;
  private pendingError?: Error;

  constructor(
    readonly prefix: string,
    private readonly callbacks: WatchCallbacks,
    private readonly onEnd: (s: Subscription) => void,
    private readonly log?: Logger,
  ) {}

  get isEnded(): boolean {
    return this.ended;
  }

  /** Queues events already filtered for this subscriber. */
  push(events: WatchEvent[]): void {
    if (this.ended || this.pendingError) return;
    for (const e of events) this.queue.push(e);
    this.schedule();
  }

  /** Ends the watch with an error, after the events already queued. */
  fail(err: Error): void {
    if (this.ended || this.pendingError) return;
    this.pendingError = err;
    this.schedule();
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.queue = [];
    this.onEnd(this);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    if (this.ended) return;
    const batch = this.queue;
    this.queue = [];
    if (batch.length) {
      try {
        this.callbacks.onEvents(batch);
      } catch (e) {
        this.log?.error({ err: e, prefix: this.prefix }, 'watch callback threw');
      }
    }
    if (this.ended) return;
    if (this.pendingError) {
      const err = this.pendingError;
      this.ended = true;
      this.onEnd(this);
      try {
        this.callbacks.onError(err);
      } catch (e) {
        this.log?.error({ err: e, prefix: this.prefix }, 'watch error callback threw');
      }
    } else if (this.queue.length) {
      this.schedule();
    }
  }
}

export class WatchDispatcher {
  private readonly subs = new Set<Subscription>();
  constructor(private readonly log?: Logger) {}

  get size(): number {
    return this.subs.size;
  }

  subscribe(prefix: string, callbacks: WatchCallbacks): Subscription {
    const s = new Subscription(prefix, callbacks, (x) => this.subs.delete(x), this.log);
    this.subs.add(s);
    return s;
  }

  publish(events: WatchEvent[]): void {
    for (const s of this.subs) {
      const mine = events.filter((e) => e.key.startsWith(s.prefix));
      if (mine.length) s.push(mine);
    }
  }

  failAll(err: Error): void {
    for (const s of [...this.subs]) s.fail(err);
  }

  /** Store closing: every open watch ends with ClosedError. */
  closeAll(): void {
    this.failAll(new ClosedError());
  }
}
