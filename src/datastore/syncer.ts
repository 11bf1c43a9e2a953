/**
 * Syncer: list + watch of one prefix, the agent's view of the datastore (Felix's syncer shape).
 *
 *   start ─> list ─> onUpdate(put) per item ─> onInSync(rev) ─> watch(from rev+1) ─> onUpdate…
 *                ^                                                   │ CompactedError / watch ended
 *                └── re-list, emit only the differences ─────────────┘   (deletes for vanished keys,
 *                    (puts for new or changed keys), then watch again      puts for new/changed)
 *
 * Contract:
 * - onUpdate is called once per change, in revision order per key; after onInSync the consumer's
 *   view equals the store at that revision, and stays equal to the store as it advances.
 * - onInSync is called exactly once, after the initial list has been emitted. A later re-list
 *   (after compaction or a failed watch) emits only differences and calls onResync, not
 *   onInSync again.
 * - Unavailable stores are retried with backoff (25 ms doubling to `maxBackoffMs`); onStatus
 *   reports 'resyncing' / 'in-sync' transitions for metrics and readiness.
 * - Callbacks are never re-entered; a throwing callback is logged and skipped.
 * - The first list is emitted in slices of `LIST_SLICE` items with a turn of the event loop
 *   between them, so that work started beside the syncer (the agent loading and attaching its
 *   BPF programs, mostly kernel time) goes on while a large store is fed; nothing is in sync
 *   until the whole list is out. A re-list (already in sync) is emitted in one go, so a
 *   consumer never acts on half of it.
 * - The first list is taken with `listLazy` where the store has it: each value is decoded when
 *   its put is emitted, so the decoded list is never in memory at once (at 100,000 endpoints
 *   ~170 MiB when it was).
 */
import type { Logger } from 'pino';
import { BACKOFF, backoffMs, sleep } from '../util/retry';
import { ClosedError } from './errors';
import type { Datastore, KeyValue, LazyKeyValue, Watch, WatchEvent } from './types';

export type SyncUpdate =
  | { type: 'put'; key: string; kv: KeyValue; revision: number }
  | { type: 'delete'; key: string; revision: number };

export interface SyncerCallbacks {
  onUpdate(update: SyncUpdate): void;
  onInSync(revision: number): void;
  /**
   * After each batch of onUpdate calls: a slice of the first list, a re-list, one watch
   * response (Felix times its calculation graph per such batch).
   */
  onBatchEnd?(updates: number): void;
  /** The first list has been received from the store (`items` keys), before any of it is emitted. */
  onListed?(items: number): void;
  /** A re-list after the watch could not resume has been applied (differences emitted). */
  onResync?(revision: number, reason: Error): void;
  onStatus?(status: 'listing' | 'in-sync' | 'resyncing', err?: Error): void;
  /** The watch lost its connection and is resuming by itself (for a reconnects metric). */
  onReconnect?(err: Error): void;
}

/** A listed item, its value decoded already or on demand (Datastore.listLazy). */
type Listed = KeyValue | LazyKeyValue;

/** Items of the first list emitted between two turns of the event loop. */
const LIST_SLICE = 2000;

export interface SyncerOptions {
  logger?: Logger;
  maxBackoffMs?: number;
}

export class Syncer {
  /** key → modRevision of what the consumer has seen. */
  private readonly seen = new Map<string, number>();
  private watch?: Watch;
  private stopped = false;
  private inSync = false;
  private generation = 0;
  private readonly log?: Logger;

  constructor(
    private readonly ds: Datastore,
    readonly prefix: string,
    private readonly cb: SyncerCallbacks,
    private readonly opts: SyncerOptions = {},
  ) {
    this.log = opts.logger?.child({ syncer: prefix });
  }

  get isInSync(): boolean {
    return this.inSync;
  }

  /** Starts listing in the background; resolves once the first list has been emitted (in sync). */
  start(): Promise<void> {
    return this.listAndWatch(undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    await this.watch?.close();
    this.watch = undefined;
  }

  private safe(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log?.error({ err: e }, 'syncer callback threw');
    }
  }

  private async listAndWatch(reason: Error | undefined): Promise<void> {
    const gen = ++this.generation;
    let failures = 0;
    this.safe(() => this.cb.onStatus?.(this.inSync ? 'resyncing' : 'listing', reason));
    for (;;) {
      if (this.stopped || gen !== this.generation) return;
      try {
        // The first list lazily where the store can: each value is decoded as it is emitted.
        const { items, revision } = !this.inSync && this.ds.listLazy ? await this.ds.listLazy(this.prefix) : await this.ds.list(this.prefix);
        if (this.stopped || gen !== this.generation) return;
        if (!this.inSync) {
          this.safe(() => this.cb.onListed?.(items.length));
          for (let i = LIST_SLICE; i < items.length; i += LIST_SLICE) {
            this.batchEnd(this.applyPuts(items, i - LIST_SLICE, i));
            await new Promise<void>((r) => setImmediate(r));
            if (this.stopped || gen !== this.generation) return;
          }
        }
        this.applyList(items, revision);
        if (!this.inSync) {
          this.inSync = true;
          this.safe(() => this.cb.onInSync(revision));
        } else {
          this.safe(() => this.cb.onResync?.(revision, reason ?? new Error('resync')));
        }
        this.safe(() => this.cb.onStatus?.('in-sync'));
        this.startWatch(gen, revision + 1);
        return;
      } catch (e) {
        if (e instanceof ClosedError) return;
        const wait = backoffMs({ ...BACKOFF.relist, maxMs: this.opts.maxBackoffMs ?? BACKOFF.relist.maxMs }, failures++);
        this.log?.warn({ err: e, retryMs: wait }, 'listing failed; retrying');
        await sleep(wait);
      }
    }
  }

  /** Puts for items[from, to) that are new or changed (already emitted ones are skipped). */
  private applyPuts(items: Listed[], from: number, to: number): number {
    let n = 0;
    for (let i = from; i < to; i++) {
      const item = items[i]!;
      if (this.seen.get(item.key) !== item.modRevision) {
        this.seen.set(item.key, item.modRevision);
        const kv = typeof item.value === 'function'
          ? { key: item.key, value: item.value(), createRevision: item.createRevision, modRevision: item.modRevision, version: item.version }
          : item as KeyValue;
        this.safe(() => this.cb.onUpdate({ type: 'put', key: kv.key, kv, revision: kv.modRevision }));
        n++;
      }
    }
    return n;
  }

  private batchEnd(n: number): void {
    if (n > 0) this.safe(() => this.cb.onBatchEnd?.(n));
  }

  private applyList(items: Listed[], revision: number): void {
    let n = this.applyPuts(items, 0, items.length);
    const present = new Set<string>();
    for (const kv of items) present.add(kv.key);
    for (const key of [...this.seen.keys()]) {
      if (!present.has(key)) {
        this.seen.delete(key);
        this.safe(() => this.cb.onUpdate({ type: 'delete', key, revision }));
        n++;
      }
    }
    this.batchEnd(n);
  }

  private startWatch(gen: number, fromRevision: number): void {
    this.watch = this.ds.watch(this.prefix, {
      onEvents: (events: WatchEvent[]) => {
        if (gen !== this.generation) return;
        let n = 0;
        for (const ev of events) {
          if (ev.type === 'put') {
            this.seen.set(ev.key, ev.kv.modRevision);
            this.safe(() => this.cb.onUpdate({ type: 'put', key: ev.key, kv: ev.kv, revision: ev.revision }));
            n++;
          } else if (this.seen.delete(ev.key)) {
            this.safe(() => this.cb.onUpdate({ type: 'delete', key: ev.key, revision: ev.revision }));
            n++;
          }
        }
        this.batchEnd(n);
      },
      onReconnect: (err: Error) => {
        if (gen === this.generation) this.safe(() => this.cb.onReconnect?.(err));
      },
      onError: (err: Error) => {
        if (gen !== this.generation || this.stopped || err instanceof ClosedError) return;
        this.log?.info({ err: err.message }, 'watch ended; re-listing');
        this.watch = undefined;
        void this.listAndWatch(err);
      },
    }, { fromRevision });
  }
}
