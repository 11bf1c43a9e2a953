/**
 * etcd v3 backend of the Datastore contract (types.ts), over the `etcd3` client.
 *
 * Connection behaviour (why it differs from etcd3's defaults):
 * - etcd3 guards each host with a circuit breaker that, after three failures, refuses every call
 *   for five seconds, and its watch manager backs off up to 30 s. After an etcd restart that
 *   means seconds of refused calls. Here the breaker and the global retry are replaced with
 *   no-ops and every call is sent with gRPC "wait for ready" (added by a client interceptor):
 *   a call made while the connection is down waits for it (bounded by `requestTimeoutMs`)
 *   instead of failing. gRPC's reconnect backoff is capped at `reconnectBackoffMaxMs`.
 * - A single endpoint, or several plaintext IP endpoints, go into ONE gRPC channel
 *   (`ipv4:a:p,b:p,…`, pick_first): when the member in use dies the channel moves to the next
 *   and waiting calls follow it. Several TLS or named endpoints get one channel each (each
 *   member's certificate is checked against its own name); there a member that refuses
 *   connections is skipped for 300 ms and calls that reached no member are retried within the
 *   deadline (perHostFaultHandling).
 * - Reads (get, list) are retried on UnavailableError within the request deadline. Writes are
 *   not retried: a write that fails in flight may or may not have been applied, so it surfaces
 *   as UnavailableError (recoverable: "outcome unknown, re-read and retry").
 * - Watches are an explicit state machine per watch (EtcdWatch) over its own gRPC watch
 *   stream: connecting → watching → (stream error) backoff → connecting, always resuming at
 *   the revision after the last one delivered; a compaction ends it with CompactedError.
 *
 * Values are stored as their JSON text (Calico stores JSON too; keys.ts decodeValue keeps its
 * uint64 integers exact), keys as UTF-8.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type * as GrpcTypes from '@grpc/grpc-js';
import {
  Etcd3, IOptions, IKeyValue, IRangeResponse, IWatchResponse, ITxnResponse, IDuplexStream, IWatchRequest,
} from 'etcd3';
import type { Logger } from 'pino';
import {
  AlreadyExistsError, ClosedError, CompactedError, DatastoreConfigError, ConflictError, DatastoreError,
  NotFoundError, PermissionError, UnavailableError,
} from './errors';
import { BACKOFF, backoffMs } from '../util/retry';
import { checkKey, decodeValue, encodeValue, prefixEnd } from './keys';
import type {
  Datastore, JsonValue, KeyValue, ListResult, Watch, WatchCallbacks, WatchEvent, WatchOptions, WriteOptions,
} from './types';
import { Subscription, WatchDispatcher } from './watch-dispatcher';

// @grpc/grpc-js is etcd3's dependency: load the very copy etcd3 uses.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const grpc = require(require.resolve('@grpc/grpc-js', { paths: [require.resolve('etcd3')] })) as typeof GrpcTypes;
// cockatiel likewise: its policies replace etcd3's default circuit breaker and retry.
type FaultHandling = NonNullable<IOptions['faultHandling']>;
type PolicyT = NonNullable<FaultHandling['global']>;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cockatiel = require(require.resolve('cockatiel', { paths: [require.resolve('etcd3')] })) as {
  noop: PolicyT;
  handleWhen(pred: (e: Error) => boolean): unknown;
  circuitBreaker(policy: unknown, opts: { halfOpenAfter: number; breaker: unknown }): PolicyT;
  retry(policy: unknown, opts: { maxAttempts: number; backoff: unknown }): PolicyT;
  ConsecutiveBreaker: new (n: number) => unknown;
  ConstantBackoff: new (ms: number) => unknown;
  isBrokenCircuitError(e: unknown): boolean;
};
const noopPolicy = cockatiel.noop;

/**
 * grpc-js passes an IP endpoint's address as the TLS server name, which makes Node print a
 * DEP0123 deprecation warning on every TLS connection to an IP (`https://10.0.0.1:2379`, the
 * usual etcd endpoint): noise on every tortiectl run. Filter exactly that warning, once per
 * process, leaving every other warning alone.
 */
let tlsIpWarningFiltered = false;
function filterTlsIpServernameWarning(): void {
  if (tlsIpWarningFiltered) return;
  tlsIpWarningFiltered = true;
  const original = process.emitWarning.bind(process) as (...a: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123' && /TLS ServerName to an IP address/.test(String((warning as Error)?.message ?? warning))) return;
    original(warning, ...rest);
  }) as typeof process.emitWarning;
}

/** The call never reached a server (refused / no connection): safe to retry, writes included. */
function neverSent(e: Error): boolean {
  return cockatiel.isBrokenCircuitError(e) || /No connection established|ECONNREFUSED|Connection refused|failed to connect/i.test(e?.message ?? '');
}

/**
 * For one channel per member: a member whose connection fails is skipped for 300 ms (a
 * breaker that opens on the first never-sent failure; etcd3 then tries the next member), and
 * calls that never reached any member are retried every 50 ms within the request deadline.
 * Calls that reached a member are never retried here (a write's outcome would be unknown).
 */
function perHostFaultHandling(requestTimeoutMs: number): FaultHandling {
  return {
    host: () => cockatiel.circuitBreaker(cockatiel.handleWhen(neverSent), { halfOpenAfter: 300, breaker: new cockatiel.ConsecutiveBreaker(1) }),
    global: cockatiel.retry(cockatiel.handleWhen(neverSent), { maxAttempts: Math.max(1, Math.ceil(requestTimeoutMs / 50)), backoff: new cockatiel.ConstantBackoff(50) }),
  };
}

export interface EtcdOptions {
  /** e.g. ['http://127.0.0.1:2379'] or ['https://10.0.0.1:2379', …] (Calico's ETCD_ENDPOINTS). */
  endpoints: string[];
  /** PEM files: CA to verify the servers (TLS), client cert + key (mTLS). */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Or the PEM contents directly. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Deadline of each unary call, including waiting for a connection. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** Cap of gRPC's reconnect backoff. Default 500 ms. */
  reconnectBackoffMaxMs?: number;
  /** Page size of list(); pages are read at one revision, so the result is consistent. */
  listPageSize?: number;
  logger?: Logger;
}

const DELAY = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function encode(key: string, value: JsonValue): Buffer {
  return Buffer.from(encodeValue(key, value), 'utf8');
}

function toKv(kv: IKeyValue): KeyValue {
  const key = kv.key.toString('utf8');
  let value: JsonValue;
  try {
    value = decodeValue(kv.value.toString('utf8'));
  } catch {
    value = kv.value.toString('utf8'); // written by something else than tortie: hand the raw text over
  }
  return { key, value, createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision), version: Number(kv.version) };
}

/** Maps etcd3/gRPC errors onto the datastore's error classes. */
export function mapEtcdError(e: unknown, what: string): Error {
  if (e instanceof DatastoreError) return e;
  const err = e as Error & { code?: number; details?: string };
  const msg = err?.message ?? String(e);
  if (/required revision has been compacted/.test(msg)) return new CompactedError(NaN, NaN);
  const name = err?.constructor?.name ?? '';
  if (/Unauthenticated|PermissionDenied|AuthenticationFailed/.test(name) || /PERMISSION_DENIED|UNAUTHENTICATED|permission denied/i.test(msg)) {
    return new PermissionError(`etcd ${what}: ${msg}`, e);
  }
  if (/Unavailable|DeadlineExceeded|Cancelled|ClientRuntime|WatchStreamEnded|BrokenCircuit/.test(name) ||
      /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|ECONNRESET|No connection|leader|timed out|Deadline/i.test(msg)) {
    return new UnavailableError(`etcd ${what}: ${msg}`, e);
  }
  return new DatastoreError('ERR_DATASTORE_UNAVAILABLE', `etcd ${what} failed: ${msg}`, { cause: e });
}

export class EtcdDatastore implements Datastore {
  readonly type = 'etcdv3' as const;
  readonly client: Etcd3;
  private readonly log?: Logger;
  private readonly requestTimeoutMs: number;
  private readonly pageSize: number;
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;

  constructor(readonly opts: EtcdOptions) {
    if (!opts.endpoints?.length) throw new DatastoreConfigError('etcd: no endpoints given (ETCD_ENDPOINTS / --etcd-endpoints)');
    this.log = opts.logger?.child({ datastore: 'etcdv3' });
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
    this.pageSize = opts.listPageSize ?? 500;
    const ca = opts.ca ?? (opts.caFile ? readPem(opts.caFile, 'CA') : undefined);
    const cert = opts.cert ?? (opts.certFile ? readPem(opts.certFile, 'client certificate') : undefined);
    const key = opts.key ?? (opts.keyFile ? readPem(opts.keyFile, 'client key') : undefined);
    if ((cert === undefined) !== (key === undefined)) {
      throw new DatastoreConfigError('etcd: a client certificate and a client key must be given together (--etcd-cert, --etcd-key)');
    }
    const parsed = opts.endpoints.map(parseEndpoint);
    const secure = parsed.some((p) => p.secure) || ca !== undefined;
    if (secure && parsed.some((p) => net.isIP(p.host))) filterTlsIpServernameWarning();
    if (parsed.some((p) => p.secure !== parsed[0].secure)) throw new DatastoreConfigError('etcd: endpoints mix http:// and https://');
    if (secure && ca === undefined && cert === undefined) this.log?.debug('TLS with the system CA store');
    // One channel (wait-for-ready, pick_first over the addresses) when that is safe: a single
    // endpoint, or plaintext IP endpoints. With several TLS or named endpoints each member's
    // certificate must be checked against its own name, so each gets its own channel.
    const oneChannel = parsed.length === 1 || (!secure && parsed.every((p) => net.isIP(p.host)));
    const hosts = oneChannel
      ? [parsed.length === 1 ? parsed[0].address : `${net.isIP(parsed[0].host) === 6 ? 'ipv6' : 'ipv4'}:${parsed.map((p) => p.address).join(',')}`]
      : parsed.map((p) => p.address);

    const waitForReady: GrpcTypes.Interceptor = (options, nextCall) => new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.setOptions({ ...metadata.getOptions(), waitForReady: true });
        next(metadata, listener);
      },
    });
    const options: IOptions = {
      hosts,
      credentials: secure ? { rootCertificate: ca ?? (undefined as unknown as Buffer), privateKey: key, certChain: cert } : undefined,
      grpcOptions: {
        ...(oneChannel ? { interceptors: [waitForReady] } : {}),
        'grpc.initial_reconnect_backoff_ms': 50,
        'grpc.min_reconnect_backoff_ms': 50,
        'grpc.max_reconnect_backoff_ms': opts.reconnectBackoffMaxMs ?? 500,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
      },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.requestTimeoutMs }),
      faultHandling: oneChannel
        ? { host: () => noopPolicy, global: noopPolicy }
        : perHostFaultHandling(this.requestTimeoutMs),
    };
    this.client = new Etcd3(options);
  }

  private async read<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError();
    const deadline = Date.now() + this.requestTimeoutMs;
    let wait = 10;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        const err = mapEtcdError(e, what);
        if (!(err instanceof UnavailableError) || this.closed || Date.now() + wait > deadline) throw err;
        this.log?.debug({ err: err.message, what }, 'retrying read');
        await DELAY(wait);
        wait = Math.min(wait * 2, 200);
      }
    }
  }

  private async write<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError();
    try {
      return await fn();
    } catch (e) {
      throw mapEtcdError(e, what);
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    const res = await this.read(`get ${key}`, () => this.client.kv.range({ key: Buffer.from(key) }));
    return res.kvs.length ? toKv(res.kvs[0]) : undefined;
  }

  async list(prefix: string): Promise<ListResult> {
    const p = Buffer.from(prefix);
    const end = prefix === '' ? Buffer.from([0]) : prefixEnd(p);
    return this.read(`list ${prefix}`, async () => {
      const items: KeyValue[] = [];
      let start = prefix === '' ? Buffer.from([0]) : p;
      let revision: string | undefined;
      for (;;) {
        const res: IRangeResponse = await this.client.kv.range({ key: start, range_end: end, limit: this.pageSize, revision });
        revision ??= res.header.revision;
        for (const kv of res.kvs) items.push(toKv(kv));
        if (!res.more || res.kvs.length === 0) break;
        start = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
      }
      return { items, revision: Number(revision) };
    });
  }

  /** Runs a txn; on failure reads the key's current state to say why. */
  private async txn(what: string, key: string, compare: 'absent' | 'exists' | number, op: 'put' | 'delete', value?: Buffer): Promise<{ res: ITxnResponse; prev?: IKeyValue }> {
    const k = Buffer.from(key);
    const cmp = compare === 'absent'
      ? { key: k, target: 'Create' as const, result: 'Equal' as const, create_revision: 0 }
      : compare === 'exists'
        ? { key: k, target: 'Create' as const, result: 'Greater' as const, create_revision: 0 }
        : { key: k, target: 'Mod' as const, result: 'Equal' as const, mod_revision: compare };
    const success = op === 'put'
      ? [{ request_put: { key: k, value, prev_kv: true } }]
      : [{ request_delete_range: { key: k, prev_kv: true } }];
    const res = await this.write(what, () => this.client.kv.txn({ compare: [cmp], success, failure: [{ request_range: { key: k } }] }));
    if (res.succeeded) {
      const r = res.responses[0];
      const prev = op === 'put' ? r.response_put?.prev_kv : r.response_delete_range?.prev_kvs?.[0];
      return { res, prev: prev ?? undefined };
    }
    const cur = res.responses[0].response_range.kvs[0];
    if (compare === 'absent') throw new AlreadyExistsError(key, Number(cur.mod_revision));
    if (!cur) throw new NotFoundError(key);
    throw new ConflictError(key, compare as number, Number(cur.mod_revision));
  }

  async create(key: string, value: JsonValue): Promise<KeyValue> {
    checkKey(key);
    const v = encode(key, value);
    const { res } = await this.txn(`create ${key}`, key, 'absent', 'put', v);
    const rev = Number(res.header.revision);
    return { key, value: decodeValue(v.toString('utf8')), createRevision: rev, modRevision: rev, version: 1 };
  }

  async update(key: string, value: JsonValue, opts: WriteOptions = {}): Promise<KeyValue> {
    checkKey(key);
    const v = encode(key, value);
    const { res, prev } = await this.txn(`update ${key}`, key, opts.expectedRevision ?? 'exists', 'put', v);
    const rev = Number(res.header.revision);
    return { key, value: decodeValue(v.toString('utf8')), createRevision: Number(prev!.create_revision), modRevision: rev, version: Number(prev!.version) + 1 };
  }

  async put(key: string, value: JsonValue): Promise<KeyValue> {
    checkKey(key);
    const v = encode(key, value);
    const res = await this.write(`put ${key}`, () => this.client.kv.put({ key: Buffer.from(key), value: v, prev_kv: true }));
    const rev = Number(res.header.revision);
    const prev = res.prev_kv;
    return {
      key, value: decodeValue(v.toString('utf8')),
      createRevision: prev ? Number(prev.create_revision) : rev, modRevision: rev, version: prev ? Number(prev.version) + 1 : 1,
    };
  }

  async delete(key: string, opts: WriteOptions = {}): Promise<{ prevKv: KeyValue; revision: number }> {
    checkKey(key);
    const { res, prev } = await this.txn(`delete ${key}`, key, opts.expectedRevision ?? 'exists', 'delete');
    return { prevKv: toKv(prev!), revision: Number(res.header.revision) };
  }

  async compact(revision?: number): Promise<void> {
    const rev = revision ?? Number((await this.read('revision', () => this.client.kv.range({ key: Buffer.from('/'), limit: 1, count_only: true }))).header.revision);
    try {
      await this.write(`compact ${rev}`, () => this.client.kv.compact({ revision: rev, physical: true }));
    } catch (e) {
      if (e instanceof CompactedError) return; // already compacted at or beyond rev
      throw e;
    }
  }

  watch(prefix: string, callbacks: WatchCallbacks, opts: WatchOptions = {}): Watch {
    if (this.closed) throw new ClosedError();
    const w = new EtcdWatch(this.client, prefix, callbacks, opts.fromRevision, this.log, () => this.watches.delete(w));
    this.watches.add(w);
    return w;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.end(new ClosedError());
    this.client.close();
  }
}

function readPem(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new DatastoreConfigError(`etcd: cannot read the ${what} ${file}: ${(e as Error).message}`);
  }
}

function parseEndpoint(ep: string): { secure: boolean; host: string; address: string } {
  const m = /^(?:(https?):\/\/)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(ep.trim());
  if (!m) throw new DatastoreConfigError(`etcd: invalid endpoint ${JSON.stringify(ep)} (expected http[s]://host:port)`);
  const host = m[2].replace(/^\[|\]$/g, '');
  const port = m[3] ?? '2379';
  return { secure: m[1] === 'https', host, address: net.isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}

type WatchState = 'connecting' | 'watching' | 'backoff' | 'ended';

/**
 * One watch over its own gRPC stream.
 *
 *   connecting ──created──> watching ──events──> watching
 *       ^                      │ stream error/end
 *       └──── backoff <────────┘            compacted / closed ──> ended
 *
 * `nextRev` is the first revision not yet delivered; every (re)connect asks etcd to start there,
 * so a reconnect neither repeats nor skips a revision.
 */
class EtcdWatch implements Watch {
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private state: WatchState = 'connecting';
  private stream?: IDuplexStream<IWatchRequest, IWatchResponse>;
  /** Consecutive stream failures: the reconnect delay (BACKOFF.rewatch) grows with them. */
  private failures = 0;
  private readonly sub: Subscription;
  private readonly key: Buffer;
  private readonly rangeEnd: Buffer;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly callbacks: WatchCallbacks,
    private nextRev: number | undefined,
    private readonly log: Logger | undefined,
    private readonly onEnd: () => void,
  ) {
    this.ready = new Promise((r) => (this.resolveReady = r));
    this.sub = new WatchDispatcher(log).subscribe(prefix, callbacks);
    this.key = prefix === '' ? Buffer.from([0]) : Buffer.from(prefix);
    this.rangeEnd = prefix === '' ? Buffer.from([0]) : prefixEnd(Buffer.from(prefix));
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.state = 'connecting';
    let stream: IDuplexStream<IWatchRequest, IWatchResponse>;
    try {
      stream = await this.client.watchClient.watch();
    } catch (e) {
      this.onStreamError(e);
      return;
    }
    if ((this.state as WatchState) === 'ended') {
      stream.cancel();
      return;
    }
    this.stream = stream;
    stream.on('data', (res: IWatchResponse) => this.onResponse(stream, res));
    stream.on('error', (e: Error) => this.stream === stream && this.onStreamError(e));
    stream.on('end', () => this.stream === stream && this.onStreamError(new Error('watch stream ended')));
    stream.write({
      create_request: { key: this.key, range_end: this.rangeEnd, start_revision: this.nextRev ?? 0, prev_kv: true },
    });
  }

  private onResponse(stream: IDuplexStream<IWatchRequest, IWatchResponse>, res: IWatchResponse): void {
    if (this.stream !== stream || this.state === 'ended') return;
    const compactRev = Number(res.compact_revision ?? 0);
    if (compactRev > 0) {
      this.end(new CompactedError(this.nextRev ?? NaN, compactRev), true);
      return;
    }
    if (res.canceled) {
      this.onStreamError(new Error(`watch canceled by etcd: ${res.cancel_reason || 'no reason given'}`));
      return;
    }
    if (res.created) {
      this.state = 'watching';
      this.failures = 0;
      if (this.nextRev === undefined) this.nextRev = Number(res.header.revision) + 1;
      this.resolveReady();
    }
    if (!res.events?.length) return;
    const events: WatchEvent[] = [];
    for (const ev of res.events) {
      const rev = Number(ev.kv.mod_revision);
      if (this.nextRev !== undefined && rev < this.nextRev) continue; // already delivered before a reconnect
      const key = ev.kv.key.toString('utf8');
      if (ev.type === 'Delete') events.push({ type: 'delete', key, revision: rev, prevKv: ev.prev_kv ? toKv(ev.prev_kv) : undefined });
      else events.push({ type: 'put', key, kv: toKv(ev.kv), revision: rev });
    }
    if (!events.length) return;
    this.nextRev = events[events.length - 1].revision + 1;
    this.sub.push(events);
  }

  private onStreamError(e: unknown): void {
    if (this.state === 'ended' || this.state === 'backoff') return;
    const err = mapEtcdError(e, `watch ${this.prefix}`);
    const s = this.stream;
    this.stream = undefined; // handlers check identity, so the old stream's events are ignored
    if (s) {
      s.on('error', () => undefined);
      s.cancel();
    }
    this.state = 'backoff';
    const wait = backoffMs(BACKOFF.rewatch, this.failures++);
    this.log?.info({ prefix: this.prefix, nextRev: this.nextRev, err: err.message, retryMs: wait }, 'watch stream lost; resuming');
    try {
      this.callbacks.onReconnect?.(err);
    } catch {
      /* a metrics hook must not break the watch */
    }
    const t = setTimeout(() => {
      if (this.state === 'backoff') void this.connect();
    }, wait);
    t.unref();
  }

  /** Ends the watch; with `notify` the subscriber gets the error after the queued events. */
  end(err: Error, notify = true): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    const s = this.stream;
    this.stream = undefined;
    if (s) {
      s.on('error', () => undefined);
      s.cancel();
    }
    if (notify) this.sub.fail(err);
    else this.sub.close();
    this.resolveReady();
    this.onEnd();
  }

  async close(): Promise<void> {
    this.end(new ClosedError(), false);
  }
}
