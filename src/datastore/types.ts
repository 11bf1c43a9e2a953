/**
 * The Datastore contract, shared by the etcd v3 and embedded backends (one conformance suite,
 * test/datastore, holds both to it).
 *
 * - Keys are strings starting with '/'; see keys.ts for the resource layout.
 * - Values are JSON values (objects, arrays, strings, numbers, booleans, null), stored as their
 *   JSON text; what `get` returns is an equal, freshly parsed copy. Integer literals beyond 2^53
 *   (Calico's uint64 sequence numbers) come back as keys.ts BIG_INT_MARK strings and are written
 *   back as the same literal, so a read-modify-write never rounds them.
 * - The store has one revision counter. Every successful write bumps it by one and stamps the key
 *   with it (`modRevision`); `createRevision` is the revision of the write that created the key,
 *   `version` counts writes since then (1 after create). Revisions only grow; a deleted then
 *   re-created key gets new create/mod revisions. Numbers are safe integers.
 * - Reads are linearizable: a read started after a write was acknowledged (in any process or
 *   client) sees that write.
 * - Watches deliver, in revision order and exactly once, every change with revision >=
 *   `fromRevision` under the prefix, then keep streaming. Transient disconnections are handled
 *   inside the backend (resume from the last delivered revision); a watch that cannot continue
 *   (history compacted, store closed) ends with one `onError` call. A write is acknowledged only
 *   after it is durable (etcd: raft-committed; embedded: fsynced).
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface KeyValue<V extends JsonValue = JsonValue> {
  key: string;
  value: V;
  createRevision: number;
  modRevision: number;
  version: number;
}

/** A listed key whose value is decoded only when asked for (each call decodes anew). */
export interface LazyKeyValue {
  key: string;
  value(): JsonValue;
  createRevision: number;
  modRevision: number;
  version: number;
}

export interface LazyListResult {
  /** Sorted by key, as ListResult's. */
  items: LazyKeyValue[];
  revision: number;
}

export interface ListResult<V extends JsonValue = JsonValue> {
  /** Sorted by key (byte order of the UTF-8 encoding). */
  items: KeyValue<V>[];
  /** Store revision the list is consistent with; watch from `revision + 1` to follow it. */
  revision: number;
}

export interface WriteOptions {
  /** Compare-and-swap: the write only happens if the key's modRevision equals this. */
  expectedRevision?: number;
}

export type WatchEvent =
  | { type: 'put'; key: string; kv: KeyValue; revision: number }
  | { type: 'delete'; key: string; revision: number; prevKv?: KeyValue };

export interface WatchOptions {
  /** First revision to deliver. Absent: only changes after the watch is established. */
  fromRevision?: number;
}

export interface WatchCallbacks {
  /** A batch of events, all with increasing revisions. Called asynchronously, never re-entered. */
  onEvents(events: WatchEvent[]): void;
  /**
   * The watch has ended and will deliver nothing more (`CompactedError` when `fromRevision` is
   * older than the retained history; `ClosedError` when the store closes). Not called after
   * `Watch.close()`.
   */
  onError(err: Error): void;
  /** Optional: the backend lost its connection and is resuming (for metrics and logs). */
  onReconnect?(err: Error): void;
}

/**
 * A watch of the embedded store does not by itself keep the Node process alive (its file
 * watcher and poll timer are unref'd); an etcd watch holds a gRPC stream, which does.
 */
export interface Watch {
  /**
   * Resolves once the watch is registered: every write acknowledged after this is delivered.
   * While the store is unreachable it waits (it never rejects; failures go to onError).
   */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export interface Datastore {
  readonly type: 'etcdv3' | 'embedded';
  get(key: string): Promise<KeyValue | undefined>;
  /** Prefix scan; the prefix is matched byte-wise ('' lists everything). */
  list(prefix: string): Promise<ListResult>;
  /**
   * list() with the values left encoded until each is asked for (optional): for a reader of a
   * large store that hands them on one at a time (the Syncer's first list), so that they are
   * never all decoded at once.
   */
  listLazy?(prefix: string): Promise<LazyListResult>;
  /** Create if absent, else `AlreadyExistsError`. */
  create(key: string, value: JsonValue): Promise<KeyValue>;
  /**
   * Replace an existing key's value (`NotFoundError` if absent). With `expectedRevision`, only
   * if the key is still at that revision (`ConflictError` otherwise).
   */
  update(key: string, value: JsonValue, opts?: WriteOptions): Promise<KeyValue>;
  /** Unconditional upsert. */
  put(key: string, value: JsonValue): Promise<KeyValue>;
  /**
   * Delete (`NotFoundError` if absent; `ConflictError` on a failed `expectedRevision`). Returns the
   * deleted kv as it was, and the revision of the deletion.
   */
  delete(key: string, opts?: WriteOptions): Promise<{ prevKv: KeyValue; revision: number }>;
  watch(prefix: string, callbacks: WatchCallbacks, opts?: WatchOptions): Watch;
  /** Drop history before `revision` (default: the current revision). Watches from older revisions then fail with `CompactedError`. */
  compact(revision?: number): Promise<void>;
  close(): Promise<void>;
}
