/**
 * RingBuffer: consumes a BPF_MAP_TYPE_RINGBUF map. A native thread waits on the ring (epoll)
 * and hands records to the event loop in batches; `onRecord` is called once per record, in
 * order, with a Buffer copy of it, in batches of at most `maxBatch` with one batch in flight at a
 * time (backpressure to the kernel ring). Keeps the process alive while open unless unref()'d.
 * An exception from onRecord goes to `onError` (default: rethrown as uncaught); the rest of the
 * batch is still delivered. close() stops the thread; records delivered after close are dropped.
 */
import { native, type NativeRingBuffer } from './addon';
import { invalidOption } from './errors';
import { BpfMap, MapType } from './map';

export interface RingBufferOptions {
  onError?: (err: unknown) => void;
  /**
   * At most this many records per onRecord batch (default 256). The next batch is read from the
   * ring only after the previous one was delivered and the event loop had a turn, so it never
   * queues more than one batch: a producer faster than the callback fills the kernel ring (whose overflow the
   * BPF programs count) instead of the process's memory, and other work runs between batches.
   */
  maxBatch?: number;
}

export class RingBuffer {
  #rb: NativeRingBuffer;
  #open = true;

  private constructor(rb: NativeRingBuffer) {
    this.#rb = rb;
  }

  static open(map: BpfMap, onRecord: (record: Buffer) => void, opts: RingBufferOptions = {}): RingBuffer {
    if (!(map instanceof BpfMap)) throw invalidOption('map', 'must be a BpfMap');
    if (map.info.type !== MapType.RINGBUF) throw invalidOption('map', `${map.name} is ${map.info.typeName}, not RINGBUF`);
    if (typeof onRecord !== 'function') throw invalidOption('onRecord', 'must be a function');
    if (opts.maxBatch !== undefined && !(Number.isInteger(opts.maxBatch) && opts.maxBatch >= 1 && opts.maxBatch <= 1 << 20)) {
      throw invalidOption('maxBatch', `must be an integer in 1..1048576, got ${String(opts.maxBatch)}`);
    }
    let self: RingBuffer | undefined;
    const deliver = (records: Buffer[]): void => {
      if (self && !self.#open) return;
      // The next batch only after the loop has had a turn (I/O, timers): setImmediate runs
      // after the poll phase. Scheduled first so a throwing callback cannot stall the ring.
      const me = self;
      if (me) setImmediate(() => { if (me.#open) me.#rb.next(); });
      let failure: { err: unknown } | undefined;
      for (const r of records) {
        try {
          onRecord(r);
        } catch (err) {
          if (opts.onError) opts.onError(err);
          else failure ??= { err };
        }
      }
      if (failure) throw failure.err;
    };
    const A = native().RingBuffer;
    self = new RingBuffer(new A(map.fd, deliver, opts.maxBatch));
    return self;
  }

  get open(): boolean { return this.#open; }

  /** Records delivered to the event loop so far, and consume rounds. */
  stats(): { records: number; batches: number } {
    const s = this.#rb.stats();
    return { records: s.records, batches: s.batches };
  }

  ref(): this { this.#rb.ref(); return this; }
  unref(): this { this.#rb.unref(); return this; }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#rb.close();
  }
}
