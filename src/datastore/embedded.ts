/**
 * Embedded datastore: the default backend, needing no service. A directory on local disk
 * (default /var/lib/tortie/store) shared by any number of processes on the host (CLI, agents,
 * CNI plugin), with the Datastore contract of types.ts (revisions, CAS, watch with resume).
 *
 * On disk:
 *   wal-<R>.log      append-only log; its records carry revisions R, R+1, … in order
 *   snap-<R-1>.kv    the full state at revision R-1 (absent for R = 1); written to a temp file,
 *                    fsynced and renamed, so it is complete or absent
 *   lock             writer lock (file-lock.ts)
 * The current log is the wal with the highest R. A compaction keeps the newest `retainLogs`
 * wals (readers a few compactions behind follow the chain wal-R → wal-(last+1)) and only the
 * newest snapshot; a reader that falls further behind reloads from the snapshot and ends its
 * watches with CompactedError.
 *
 * A snapshot is a header line {"format":"tortie-snap-v2","revision":R,"count":N} and N lines
 * `<key>\t<createRevision>\t<modRevision>\t<version>\t<value JSON>` (keys have no control
 * characters; line splitting is several times faster to load than one big JSON document),
 * written in key order (a reader takes any order).
 *
 * A record is one line: `<crc32 hex8>\t<meta JSON>\t<value JSON>\n`, meta = {"r":rev,"k":key}
 * for a put and {"r":rev,"k":key,"d":1} for a delete (value empty). JSON text never contains a
 * raw tab or newline, so the line splits unambiguously; the CRC covers both JSON parts.
 *
 * Writes (one record per write, one revision each), in batches (group commit, see write()):
 *   in-process queue → take the lock → catch up with the log (truncating a torn tail, i.e. an
 *   incomplete or CRC-failing last line left by a writer that died mid-append) → check the
 *   precondition against the now-current state → append → fdatasync → apply in memory →
 *   release. The write is acknowledged only after the fdatasync, so `kill -9` at any point
 *   loses no acknowledged write. After a write that makes the log exceed `maxLogBytes`, the
 *   writer compacts: snapshot of the current revision, new empty wal, old files removed.
 *
 * Durability as seen by other processes: a reader may consume a record once it is in the page
 * cache, i.e. just before the writer's fdatasync returns. That is safe for a store whose
 * readers are all on this host: a process crash (`kill -9` of the writer) loses nothing, the
 * page cache survives it and the record is on disk later; the only failures that can lose the
 * record (power, kernel crash) also take down every reader and the kernel state (BPF maps,
 * routes) they derived from it, and the restarted agents re-read the log as it is on disk.
 *
 * Reads catch up with the log first (no lock: a reader only consumes complete, CRC-valid
 * lines, so it never sees a write in progress), then answer from memory. A reader at the end
 * of a wal whose successor exists re-reads it to its end and moves on; an unlinked wal stays
 * readable through the open descriptor, so a process that is behind never misses records.
 *
 * Watches are fed by a tailer that catches up on fs.watch notifications of the directory plus
 * a poll every `pollMs` (default 50 ms) as a fallback; a process's own writes are delivered
 * without waiting for either. History kept for resuming watches is the current wal's
 * (compactRevision = its first revision − 1).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import {
  AlreadyExistsError, ClosedError, CompactedError, ConflictError, CorruptError, DatastoreError,
  NotFoundError, PermissionError, UnavailableError,
} from './errors';
import { FileLock } from './file-lock';
import { checkKey, decodeValue, encodeValue } from './keys';
import type {
  Datastore, JsonValue, KeyValue, LazyKeyValue, LazyListResult, ListResult, Watch, WatchCallbacks, WatchEvent, WatchOptions, WriteOptions,
} from './types';
import { WatchDispatcher } from './watch-dispatcher';

export const DEFAULT_EMBEDDED_DIR = '/var/lib/tortie/store';

export interface EmbeddedOptions {
  /** Store directory; created (with parents) if missing. */
  dir?: string;
  logger?: Logger;
  /** Compact (snapshot + new log) once the log is larger than this. Default 4 MiB. */
  maxLogBytes?: number;
  /** Poll interval of the watch tailer, a fallback for missed fs.watch notifications. */
  pollMs?: number;
  /** How long a write waits for the writer lock before failing with UnavailableError. */
  lockTimeoutMs?: number;
  /** Compacted logs kept for readers that are behind (default 8). */
  retainLogs?: number;
}

/**
 * A key's current value and revisions. The value is either its JSON text (written or read from
 * a log record) or where it is in the snapshot file this state was loaded from: a reader of a
 * large store (an agent at 100,000 endpoints: ~80 MiB of values) keeps no copy of values it has
 * passed on; they are read back from the file when asked for (get, list, watch backlog,
 * compaction).
 */
interface Entry {
  valueText?: string;
  snap?: SnapFile;
  /** Byte offset and length of the value in `snap`. */
  off?: number;
  len?: number;
  create: number;
  mod: number;
  version: number;
}

/** An open snapshot file's descriptor, closed by the store's close() or once nothing points into it. */
interface SnapFd {
  fd: number;
}

const snapFds = new FinalizationRegistry<SnapFd>((h) => {
  if (h.fd >= 0) fs.closeSync(h.fd);
  h.fd = -1;
});

/**
 * The snapshot file a state was loaded from, open for as long as entries point into it (a
 * compaction by any process unlinks the file, the descriptor keeps it readable).
 */
class SnapFile {
  private readonly h: SnapFd;
  /** The whole file while bulk() runs: one read instead of one per value. */
  private whole?: Buffer;

  constructor(fd: number, readonly file: string) {
    this.h = { fd };
    snapFds.register(this, this.h, this);
  }

  read(off: number, len: number): string {
    if (this.whole !== undefined) return this.whole.toString('utf8', off, off + len);
    if (this.h.fd < 0) throw new ClosedError();
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(this.h.fd, buf, got, len - got, off + got);
      if (n === 0) throw new CorruptError(`${this.file}: ends before the value at offset ${off}`);
      got += n;
    }
    return buf.toString('utf8');
  }

  /** The whole file (positional reads: the descriptor's offset is never used). */
  readAll(): Buffer {
    if (this.h.fd < 0) throw new ClosedError();
    const buf = Buffer.allocUnsafe(fs.fstatSync(this.h.fd).size);
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(this.h.fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === buf.length ? buf : buf.subarray(0, got);
  }

  /** Runs f with the file read once into memory (for loops over many values). */
  bulk<T>(f: () => T): T {
    if (this.whole !== undefined || this.h.fd < 0) return f();
    this.whole = this.readAll();
    try {
      return f();
    } finally {
      this.whole = undefined;
    }
  }

  close(): void {
    snapFds.unregister(this);
    if (this.h.fd >= 0) fs.closeSync(this.h.fd);
    this.h.fd = -1;
  }
}

function textOf(e: Entry): string {
  return e.valueText ?? e.snap!.read(e.off!, e.len!);
}

interface PendingWrite {
  key: string;
  valueText: string | undefined;
  check: (cur: Entry | undefined) => void;
  done: (rev: number, prev: Entry | undefined) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

interface HistoryRecord {
  rev: number;
  key: string;
  /** The entry after a put; undefined for a delete. */
  entry?: Entry;
  /** The entry before a delete. */
  prev?: Entry;
}

interface SnapshotHeader {
  format: 'tortie-snap-v2';
  revision: number;
  count: number;
}

const WAL_RE = /^wal-(\d{16})\.log$/;
const SNAP_RE = /^snap-(\d{16})\.kv$/;
const pad = (n: number) => String(n).padStart(16, '0');
const NL = 0x0a;
const TAB = 0x09;

function isPermission(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
}

function permissionOr(e: unknown, what: string): unknown {
  return isPermission(e) ? new PermissionError(`${what}: ${(e as Error).message}`, e) : e;
}

function toKv(key: string, e: Entry): KeyValue {
  return { key, value: decodeValue(textOf(e)), createRevision: e.create, modRevision: e.mod, version: e.version };
}

function encodeRecord(rev: number, key: string, valueText: string | undefined): Buffer {
  const meta = valueText === undefined ? JSON.stringify({ r: rev, k: key, d: 1 }) : JSON.stringify({ r: rev, k: key });
  const body = `${meta}\t${valueText ?? ''}`;
  const crc = crc32(body).toString(16).padStart(8, '0');
  return Buffer.from(`${crc}\t${body}\n`, 'utf8');
}

/** Parses one line (without '\n'); undefined if it is damaged. */
function decodeRecord(line: string): { rev: number; key: string; valueText?: string } | undefined {
  if (line.length < 10 || line[8] !== '\t') return undefined;
  const body = line.slice(9);
  if (crc32(body).toString(16).padStart(8, '0') !== line.slice(0, 8)) return undefined;
  const tab = body.indexOf('\t');
  if (tab < 0) return undefined;
  try {
    const meta = JSON.parse(body.slice(0, tab)) as { r: number; k: string; d?: number };
    if (meta.d) return { rev: meta.r, key: meta.k };
    return { rev: meta.r, key: meta.k, valueText: body.slice(tab + 1) };
  } catch {
    return undefined;
  }
}

export class EmbeddedDatastore implements Datastore {
  readonly type = 'embedded' as const;
  readonly dir: string;
  private readonly log?: Logger;
  private readonly maxLogBytes: number;
  private readonly pollMs: number;
  private readonly retainLogs: number;
  private readonly lock: FileLock;

  private state = new Map<string, Entry>();
  private revision = 0;
  /** First revision of the current wal; history before it is compacted. */
  private walStart = 1;
  private walFd = -1;
  private walReadOnly = false;
  /** Byte offset in the current wal up to which records are applied. */
  private walOffset = 0;
  private history: HistoryRecord[] = [];
  /** The snapshot the state was loaded from (values of its entries are read from it). */
  private snap?: SnapFile;

  /** Serialises commits and compactions of this process. */
  private writeQueue: Promise<unknown> = Promise.resolve();
  /** The batch the next commit will write; new writes join it until that commit starts. */
  private nextBatch?: PendingWrite[];
  private readonly dispatcher = new WatchDispatcher();
  private fsWatcher?: fs.FSWatcher;
  private pollTimer?: NodeJS.Timeout;
  private refreshScheduled = false;
  private closed = false;

  constructor(opts: EmbeddedOptions = {}) {
    this.dir = path.resolve(opts.dir ?? DEFAULT_EMBEDDED_DIR);
    this.log = opts.logger?.child({ datastore: 'embedded', dir: this.dir });
    this.maxLogBytes = opts.maxLogBytes ?? 4 * 1024 * 1024;
    this.pollMs = opts.pollMs ?? 50;
    this.retainLogs = Math.max(1, opts.retainLogs ?? 8);
    this.lock = new FileLock(path.join(this.dir, 'lock'), { timeoutMs: opts.lockTimeoutMs });
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      this.openCurrent();
    } catch (e) {
      throw permissionOr(e, `cannot open the datastore directory ${this.dir}`);
    }
  }

  /** Whether this process could only open the store read-only (writes fail with PermissionError). */
  get readOnly(): boolean {
    return this.walReadOnly;
  }

  // ---- opening and catching up -------------------------------------------------------------

  private walPath(start: number): string {
    return path.join(this.dir, `wal-${pad(start)}.log`);
  }

  private snapPath(rev: number): string {
    return path.join(this.dir, `snap-${pad(rev)}.kv`);
  }

  /** Loads the newest snapshot + wal pair; retried if a compaction removes them meanwhile. */
  private openCurrent(): void {
    for (let attempt = 0; ; attempt++) {
      const wals = fs.readdirSync(this.dir).map((n) => WAL_RE.exec(n)).filter((m) => m !== null).map((m) => Number(m[1]));
      const start = wals.length ? Math.max(...wals) : 1;
      try {
        this.loadAt(start);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 20) throw e;
      }
    }
  }

  private loadAt(start: number): void {
    const state = new Map<string, Entry>();
    let snap: SnapFile | undefined;
    if (start > 1) {
      const file = this.snapPath(start - 1);
      // Opened first and read through the descriptor: a compaction may unlink the file meanwhile.
      snap = new SnapFile(fs.openSync(file, 'r'), file);
      try {
        this.loadSnapshot(snap, file, start, state);
      } catch (e) {
        snap.close();
        throw e;
      }
    }
    // O_CREAT without O_EXCL: creating the first wal concurrently from several processes is harmless.
    // Writes always give an explicit position (pwrite), so no descriptor is opened O_APPEND.
    const creating = start === 1 && !fs.existsSync(this.walPath(1));
    let fd: number;
    try {
      fd = fs.openSync(this.walPath(start), start === 1 ? fs.constants.O_RDWR | fs.constants.O_CREAT : fs.constants.O_RDWR, 0o644);
      this.walReadOnly = false;
    } catch (e) {
      // Not allowed to write (e.g. `tortiectl get` as a normal user): reads still work.
      if (!isPermission(e) || creating) throw e;
      fd = fs.openSync(this.walPath(start), 'r');
      this.walReadOnly = true;
    }
    if (creating) this.fsyncDir(); // the new store's first log must survive a crash too
    if (this.walFd >= 0) fs.closeSync(this.walFd);
    this.walFd = fd;
    this.walStart = start;
    this.walOffset = 0;
    this.state = state;
    // The previous snapshot's descriptor closes once nothing points into it (entries of a list
    // or of a write in progress may still).
    this.snap = snap;
    this.revision = start - 1;
    this.history = [];
    this.readWal(false);
  }

  /**
   * Reads snapshot `file` (open as `snap`) into `state`: keys and revisions copied out of the
   * file's bytes (no string keeps the file's text alive), values left in the file.
   */
  private loadSnapshot(snap: SnapFile, file: string, start: number, state: Map<string, Entry>): void {
    const buf = snap.readAll();
    let nl = buf.indexOf(NL);
    let header: SnapshotHeader | undefined;
    try {
      header = JSON.parse(buf.toString('utf8', 0, nl < 0 ? buf.length : nl)) as SnapshotHeader;
    } catch {
      /* reported below */
    }
    if (nl < 0 || header?.format !== 'tortie-snap-v2' || header.revision !== start - 1) {
      throw new CorruptError(`${file}: not a snapshot of revision ${start - 1}`);
    }
    const num = (a: number, b: number): number => {
      let n = 0;
      for (let i = a; i < b; i++) {
        const d = buf[i]! - 0x30;
        if (d < 0 || d > 9) return NaN;
        n = n * 10 + d;
      }
      return b > a ? n : NaN;
    };
    let pos = nl + 1;
    while (pos < buf.length) {
      nl = buf.indexOf(NL, pos);
      const t1 = buf.indexOf(TAB, pos);
      const t2 = buf.indexOf(TAB, t1 + 1);
      const t3 = buf.indexOf(TAB, t2 + 1);
      const t4 = buf.indexOf(TAB, t3 + 1);
      if (nl < 0 || t1 < 0 || t4 < 0 || t4 > nl) throw new CorruptError(`${file}: damaged line at offset ${pos}`);
      const create = num(t1 + 1, t2);
      const mod = num(t2 + 1, t3);
      const version = num(t3 + 1, t4);
      if (Number.isNaN(create) || Number.isNaN(mod) || Number.isNaN(version)) throw new CorruptError(`${file}: damaged line at offset ${pos}`);
      state.set(buf.toString('utf8', pos, t1), { snap, off: t4 + 1, len: nl - t4 - 1, create, mod, version });
      pos = nl + 1;
    }
    if (state.size !== header.count) throw new CorruptError(`${file}: ${state.size} entries, header says ${header.count}`);
  }

  /**
   * Applies complete, valid records after walOffset. With `truncateTorn` (only under the writer
   * lock) a damaged tail is cut off; without it the reader just stops before it.
   */
  private readWal(truncateTorn: boolean): HistoryRecord[] {
    const applied: HistoryRecord[] = [];
    const size = fs.fstatSync(this.walFd).size;
    if (size <= this.walOffset) {
      if (size < this.walOffset) this.walOffset = size; // truncated below us: the bytes were a torn tail we never applied
      return applied;
    }
    const buf = Buffer.allocUnsafe(size - this.walOffset);
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(this.walFd, buf, got, buf.length - got, this.walOffset + got);
      if (n === 0) break;
      got += n;
    }
    let pos = 0;
    while (pos < got) {
      const nl = buf.indexOf(NL, pos);
      if (nl < 0 || nl >= got) break;
      const rec = decodeRecord(buf.toString('utf8', pos, nl));
      if (!rec || rec.rev !== this.revision + 1) {
        if (buf.indexOf(NL, nl + 1) >= 0 && buf.indexOf(NL, nl + 1) < got) {
          throw new CorruptError(`${this.walPath(this.walStart)}: damaged record at byte ${this.walOffset + pos} followed by more records`);
        }
        break; // a damaged last line: a torn tail
      }
      applied.push(this.apply(rec));
      pos = nl + 1;
    }
    this.walOffset += pos;
    if (truncateTorn && this.walOffset < size) {
      this.log?.warn({ offset: this.walOffset, bytes: size - this.walOffset }, 'truncating torn tail of the log');
      fs.ftruncateSync(this.walFd, this.walOffset);
      fs.fdatasyncSync(this.walFd);
    }
    return applied;
  }

  private apply(rec: { rev: number; key: string; valueText?: string }): HistoryRecord {
    this.revision = rec.rev;
    const prev = this.state.get(rec.key);
    let h: HistoryRecord;
    if (rec.valueText === undefined) {
      this.state.delete(rec.key);
      h = { rev: rec.rev, key: rec.key, prev };
    } else {
      const entry: Entry = prev
        ? { valueText: rec.valueText, create: prev.create, mod: rec.rev, version: prev.version + 1 }
        : { valueText: rec.valueText, create: rec.rev, mod: rec.rev, version: 1 };
      this.state.set(rec.key, entry);
      h = { rev: rec.rev, key: rec.key, entry };
    }
    this.history.push(h);
    return h;
  }

  /** Brings memory up to date with the disk; returns the records applied. */
  private catchUp(truncateTorn = false): HistoryRecord[] {
    if (this.closed) throw new ClosedError();
    const applied = this.readWal(truncateTorn);
    // Another writer compacted: finish this wal (re-read after seeing the successor, which is
    // only created once this one is final), then follow the successor.
    for (;;) {
      const next = this.revision + 1;
      // (next === walStart: nothing in the current wal yet, and that file is the current one)
      if (next === this.walStart || !fs.existsSync(this.walPath(next))) break;
      applied.push(...this.readWal(false));
      if (this.revision + 1 !== next) continue;
      fs.closeSync(this.walFd);
      this.walFd = fs.openSync(this.walPath(next), this.walReadOnly ? 'r' : 'r+');
      this.walStart = next;
      this.walOffset = 0;
      this.history = [];
      applied.push(...this.readWal(truncateTorn));
    }
    // Fallen off the chain: our wal's successor is already gone (we were more than
    // `retainLogs` compactions behind). Watchers here cannot be given every change any more:
    // they end with CompactedError (a Syncer re-lists), and this process reloads.
    if (applied.length === 0 && !fs.existsSync(this.walPath(this.walStart))) {
      const seen = this.revision;
      this.openCurrent();
      this.log?.warn({ seen, now: this.revision }, 'fell behind the retained logs; reloaded from the snapshot');
      this.dispatcher.failAll(new CompactedError(seen + 1, this.walStart - 1));
      return [];
    }
    if (applied.length) this.dispatch(applied);
    return applied;
  }

  private dispatch(records: HistoryRecord[]): void {
    if (!this.dispatcher.size) return;
    this.dispatcher.publish(records.map((h): WatchEvent => h.entry
      ? { type: 'put', key: h.key, kv: toKv(h.key, h.entry), revision: h.rev }
      : { type: 'delete', key: h.key, revision: h.rev, prevKv: h.prev && toKv(h.key, h.prev) }));
  }

  // ---- reads --------------------------------------------------------------------------------

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    this.catchUp();
    const e = this.state.get(key);
    return e && toKv(key, e);
  }

  async list(prefix: string): Promise<ListResult> {
    this.catchUp();
    const { keys, entries } = this.inOrder(prefix);
    const items: KeyValue[] = new Array(keys.length);
    const all = () => {
      for (let i = 0; i < keys.length; i++) items[i] = toKv(keys[i]!, entries[i]!);
    };
    if (this.snap !== undefined) this.snap.bulk(all);
    else all();
    return { items, revision: this.revision };
  }

  /**
   * The keys under `prefix` in UTF-16 order, which equals UTF-8 byte order (etcd's) for keys
   * without surrogate pairs. Sorted as strings (no comparator: ~40 % cheaper at 100,000 keys),
   * and the state is mostly in that order already (snapshots are written in it, entries loaded
   * from one keep it), which V8's merge sort finds in one pass.
   */
  private inOrder(prefix: string): { keys: string[]; entries: Entry[] } {
    const keys: string[] = [];
    const entries: Entry[] = [];
    let sorted = true;
    for (const [k, e] of this.state) {
      if (!k.startsWith(prefix)) continue;
      if (sorted && keys.length > 0 && keys[keys.length - 1]! > k) sorted = false;
      keys.push(k);
      entries.push(e);
    }
    if (!sorted) {
      keys.sort();
      for (let i = 0; i < keys.length; i++) entries[i] = this.state.get(keys[i]!)!;
    }
    return { keys, entries };
  }

  async listLazy(prefix: string): Promise<LazyListResult> {
    this.catchUp();
    // The snapshot's bytes are read once and kept by the items (outside the V8 heap) until
    // they are dropped; each value is decoded from them when asked for.
    const whole = this.snap?.readAll();
    const { keys, entries } = this.inOrder(prefix);
    const items: LazyKeyValue[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const e = entries[i]!;
      const text = e.valueText;
      const off = e.off!;
      const end = off + e.len!;
      items[i] = {
        key: k, createRevision: e.create, modRevision: e.mod, version: e.version,
        value: text !== undefined ? () => decodeValue(text) : () => decodeValue(whole!.toString('utf8', off, end)),
      };
    }
    return { items, revision: this.revision };
  }

  /** Current revision after catching up (for tests and diagnostics). */
  currentRevision(): number {
    this.catchUp();
    return this.revision;
  }

  // ---- writes -------------------------------------------------------------------------------

  /**
   * Group commit: writes issued while a commit is in progress join the next batch, which is
   * checked in issue order against the state as the batch builds it, appended with one write
   * and made durable with one fdatasync, under one lock acquisition.
   */
  private write<T>(key: string, valueText: string | undefined, check: (cur: Entry | undefined) => void, done: (rev: number, prev: Entry | undefined) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const op: PendingWrite = { key, valueText, check, done, resolve: resolve as (v: unknown) => void, reject, settled: false };
      if (this.nextBatch) {
        this.nextBatch.push(op);
        return;
      }
      const batch = [op];
      this.nextBatch = batch;
      const run = async () => {
        if (this.nextBatch === batch) this.nextBatch = undefined; // closed to newcomers from here
        await this.commit(batch);
      };
      this.writeQueue = this.writeQueue.then(run, run).catch(() => undefined);
    });
  }

  private async commit(batch: PendingWrite[]): Promise<void> {
    const settle = (op: PendingWrite, err: unknown, value?: unknown) => {
      if (op.settled) return;
      op.settled = true;
      if (err) op.reject(err);
      else op.resolve(value);
    };
    if (this.closed) {
      batch.forEach((op) => settle(op, new ClosedError()));
      return;
    }
    if (this.walReadOnly) {
      batch.forEach((op) => settle(op, new PermissionError(`the datastore ${this.dir} is read-only for this user (uid ${process.getuid?.()})`)));
      return;
    }
    try {
      await this.lock.acquire();
    } catch (e) {
      batch.forEach((op) => settle(op, permissionOr(e, `cannot take the writer lock in ${this.dir}`)));
      return;
    }
    try {
      this.catchUp(true);
      const overlay = new Map<string, Entry | undefined>();
      const accepted: { op: PendingWrite; rev: number; prev: Entry | undefined; line: Buffer }[] = [];
      let rev = this.revision;
      for (const op of batch) {
        const cur = overlay.has(op.key) ? overlay.get(op.key) : this.state.get(op.key);
        try {
          op.check(cur);
        } catch (e) {
          settle(op, e);
          continue;
        }
        rev++;
        accepted.push({ op, rev, prev: cur, line: encodeRecord(rev, op.key, op.valueText) });
        overlay.set(op.key, op.valueText === undefined ? undefined
          : { valueText: op.valueText, create: cur ? cur.create : rev, mod: rev, version: cur ? cur.version + 1 : 1 });
      }
      if (!accepted.length) return;
      const buf = accepted.length === 1 ? accepted[0].line : Buffer.concat(accepted.map((a) => a.line));
      try {
        let off = 0;
        // Explicit position: the end of the valid log (we hold the lock and have caught up,
        // truncating any torn tail), never the descriptor's own file position.
        while (off < buf.length) off += fs.writeSync(this.walFd, buf, off, buf.length - off, this.walOffset + off);
        fs.fdatasyncSync(this.walFd);
      } catch (e) {
        // Records may be partly on disk: the next writer truncates them as a torn tail.
        const err = new UnavailableError(`appending to ${this.walPath(this.walStart)} failed: ${(e as Error).message}`, e);
        accepted.forEach((a) => settle(a.op, err));
        return;
      }
      this.walOffset += buf.length;
      this.dispatch(accepted.map((a) => this.apply({ rev: a.rev, key: a.op.key, valueText: a.op.valueText })));
      for (const a of accepted) settle(a.op, undefined, a.op.done(a.rev, a.prev));
      if (this.walOffset > this.maxLogBytes) {
        try {
          this.compactLocked();
        } catch (e) {
          this.log?.error({ err: e }, 'compaction failed; the log keeps growing until one succeeds');
        }
      }
    } catch (e) {
      batch.forEach((op) => settle(op, e));
    } finally {
      this.lock.release();
    }
  }

  async create(key: string, value: JsonValue): Promise<KeyValue> {
    checkKey(key);
    const text = encodeValue(key, value);
    return this.write(key, text, (cur) => {
      if (cur) throw new AlreadyExistsError(key, cur.mod);
    }, (rev) => ({ key, value: decodeValue(text), createRevision: rev, modRevision: rev, version: 1 }));
  }

  async update(key: string, value: JsonValue, opts: WriteOptions = {}): Promise<KeyValue> {
    checkKey(key);
    const text = encodeValue(key, value);
    return this.write(key, text, (cur) => {
      if (!cur) throw new NotFoundError(key);
      if (opts.expectedRevision !== undefined && cur.mod !== opts.expectedRevision) {
        throw new ConflictError(key, opts.expectedRevision, cur.mod);
      }
    }, (rev, prev) => ({ key, value: decodeValue(text), createRevision: prev!.create, modRevision: rev, version: prev!.version + 1 }));
  }

  async put(key: string, value: JsonValue): Promise<KeyValue> {
    checkKey(key);
    const text = encodeValue(key, value);
    return this.write(key, text, () => undefined, (rev, prev) => ({
      key, value: decodeValue(text), createRevision: prev ? prev.create : rev, modRevision: rev, version: prev ? prev.version + 1 : 1,
    }));
  }

  async delete(key: string, opts: WriteOptions = {}): Promise<{ prevKv: KeyValue; revision: number }> {
    checkKey(key);
    return this.write(key, undefined, (cur) => {
      if (!cur) throw new NotFoundError(key);
      if (opts.expectedRevision !== undefined && cur.mod !== opts.expectedRevision) {
        throw new ConflictError(key, opts.expectedRevision, cur.mod);
      }
    }, (rev, prev) => ({ prevKv: toKv(key, prev!), revision: rev }));
  }

  // ---- compaction ---------------------------------------------------------------------------

  /** Snapshot of the whole current state; the granularity is "everything up to now". */
  async compact(revision?: number): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.closed) throw new ClosedError();
      if (this.walReadOnly) throw new PermissionError(`the datastore ${this.dir} is read-only for this user`);
      try {
        await this.lock.acquire();
      } catch (e) {
        throw permissionOr(e, `cannot take the writer lock in ${this.dir}`);
      }
      try {
        this.catchUp(true);
        if (revision !== undefined && revision > this.revision) {
          throw new DatastoreError('ERR_DATASTORE_COMPACTED', `cannot compact to revision ${revision}: the store is at ${this.revision}`);
        }
        if (this.revision >= this.walStart) this.compactLocked();
      } finally {
        this.lock.release();
      }
    };
    const p = this.writeQueue.then(run, run);
    this.writeQueue = p.catch(() => undefined);
    return p;
  }

  private fsyncDir(): void {
    const dirFd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  }

  private isOldTemp(name: string): boolean {
    try {
      return Date.now() - fs.statSync(path.join(this.dir, name)).mtimeMs > 60_000;
    } catch {
      return false;
    }
  }

  /** Under the lock, caught up. */
  private compactLocked(): void {
    const rev = this.revision;
    const header: SnapshotHeader = { format: 'tortie-snap-v2', revision: rev, count: this.state.size };
    const parts: string[] = [JSON.stringify(header), '\n'];
    // In key order (a reader's state then is too, and its lists need no real sort).
    const { keys, entries } = this.inOrder('');
    const all = () => {
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        const e = entries[i]!;
        parts.push(k, '\t', String(e.create), '\t', String(e.mod), '\t', String(e.version), '\t', textOf(e), '\n');
      }
    };
    if (this.snap !== undefined) this.snap.bulk(all);
    else all();
    const tmp = `${this.snapPath(rev)}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(fd, parts.join(''));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.snapPath(rev));
    const walFd = fs.openSync(this.walPath(rev + 1), 'wx+', 0o644);
    this.fsyncDir();
    fs.closeSync(this.walFd);
    this.walFd = walFd;
    this.walStart = rev + 1;
    this.walOffset = 0;
    this.history = [];
    // Keep the newest `retainLogs` wals so readers that are a few compactions behind can still
    // follow the chain; snapshots other than the newest are never read again.
    const names = fs.readdirSync(this.dir);
    const wals = names.filter((f) => WAL_RE.test(f)).sort().reverse();
    const doomed = [
      ...wals.slice(this.retainLogs),
      ...names.filter((f) => { const m = SNAP_RE.exec(f); return m !== null && Number(m[1]) < rev; }),
      ...names.filter((f) => f.includes('.tmp-') && !f.endsWith(`.tmp-${process.pid}`) && this.isOldTemp(f)),
    ];
    for (const name of doomed) {
      try {
        fs.unlinkSync(path.join(this.dir, name));
      } catch {
        /* another process cleaned up */
      }
    }
    this.log?.info({ revision: rev, keys: header.count }, 'compacted the log into a snapshot');
  }

  // ---- watch --------------------------------------------------------------------------------

  watch(prefix: string, callbacks: WatchCallbacks, opts: WatchOptions = {}): Watch {
    if (this.closed) throw new ClosedError();
    this.startTailer();
    let backlog: WatchEvent[] = [];
    let error: Error | undefined;
    try {
      this.catchUp();
      if (opts.fromRevision !== undefined) {
        const from = Math.max(1, opts.fromRevision);
        if (from < this.walStart && from <= this.revision) {
          error = new CompactedError(from, this.walStart - 1);
        } else {
          backlog = this.history.filter((h) => h.rev >= from && h.key.startsWith(prefix)).map((h): WatchEvent => h.entry
            ? { type: 'put', key: h.key, kv: toKv(h.key, h.entry), revision: h.rev }
            : { type: 'delete', key: h.key, revision: h.rev, prevKv: h.prev && toKv(h.key, h.prev) });
        }
      }
    } catch (e) {
      error = e as Error;
    }
    // Synchronous from the catch-up to here: nothing is published in between, and the backlog
    // is queued before anything published later.
    const sub = this.dispatcher.subscribe(prefix, callbacks);
    if (error) sub.fail(error);
    else if (backlog.length) sub.push(backlog);
    return {
      ready: Promise.resolve(),
      close: async () => {
        sub.close();
        if (!this.dispatcher.size) this.stopTailer();
      },
    };
  }

  private startTailer(): void {
    if (this.pollTimer) return;
    const kick = () => this.scheduleRefresh();
    try {
      this.fsWatcher = fs.watch(this.dir, { persistent: false }, kick);
      this.fsWatcher.on('error', () => undefined); // the poll still runs
    } catch (e) {
      this.log?.warn({ err: e }, 'fs.watch unavailable; relying on polling');
    }
    this.pollTimer = setInterval(kick, this.pollMs);
    this.pollTimer.unref();
  }

  private stopTailer(): void {
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  private scheduleRefresh(): void {
    if (this.refreshScheduled || this.closed) return;
    this.refreshScheduled = true;
    setImmediate(() => {
      this.refreshScheduled = false;
      if (this.closed) return;
      try {
        this.catchUp();
      } catch (e) {
        this.log?.error({ err: e }, 'catching up with the log failed');
        if (e instanceof CorruptError) this.dispatcher.failAll(e);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.writeQueue;
    this.closed = true;
    this.stopTailer();
    this.dispatcher.closeAll();
    if (this.walFd >= 0) fs.closeSync(this.walFd);
    this.walFd = -1;
    this.snap?.close();
    this.snap = undefined;
  }
}
