/**
 * BpfMap: a handle on one kernel BPF map through an fd this process owns (created, opened from a
 * pin, or duplicated from a loaded object), closed by close() or at exit by the addon.
 *
 * Keys and values are Buffers of exactly key_size / value size bytes (checked before the syscall;
 * a wrong size is a BpfError with errno EINVAL naming both sizes). Per-CPU maps take and return
 * one Buffer of possibleCpus() * round_up(value_size, 8) bytes; splitPerCpu/joinPerCpu convert.
 * Errors: ENOENT for a missing key (get/delete; lookup/tryDelete return undefined/false instead),
 * EEXIST/ENOENT for update flag conflicts, EBADF for a closed or bad fd.
 */
import { native, type NativeMapInfo } from './addon';
import { BpfError, invalidOption } from './errors';
import { FdHandle, adoptFd } from './handle';
import { U32_MAX, checkAbsPath, checkBuffer, checkInt } from './validate';

/** Map types (linux/bpf.h enum bpf_map_type). */
export const MapType = {
  HASH: 1, ARRAY: 2, PROG_ARRAY: 3, PERF_EVENT_ARRAY: 4, PERCPU_HASH: 5, PERCPU_ARRAY: 6,
  STACK_TRACE: 7, CGROUP_ARRAY: 8, LRU_HASH: 9, LRU_PERCPU_HASH: 10, LPM_TRIE: 11,
  ARRAY_OF_MAPS: 12, HASH_OF_MAPS: 13, DEVMAP: 14, SOCKMAP: 15, CPUMAP: 16, XSKMAP: 17,
  SOCKHASH: 18, CGROUP_STORAGE: 19, REUSEPORT_SOCKARRAY: 20, PERCPU_CGROUP_STORAGE: 21,
  QUEUE: 22, STACK: 23, SK_STORAGE: 24, DEVMAP_HASH: 25, STRUCT_OPS: 26, RINGBUF: 27,
} as const;
export type MapTypeName = keyof typeof MapType;

/** Update flags (BPF_ANY / BPF_NOEXIST / BPF_EXIST / BPF_F_LOCK). */
export const UpdateFlag = { ANY: 0, NOEXIST: 1, EXIST: 2, LOCK: 4 } as const;

/** Map creation flags (BPF_F_*). */
export const MapFlag = {
  NO_PREALLOC: 1, NO_COMMON_LRU: 2, NUMA_NODE: 4, RDONLY: 8, WRONLY: 16,
  RDONLY_PROG: 1 << 7, WRONLY_PROG: 1 << 8, MMAPABLE: 1 << 10,
} as const;

const PERCPU_TYPES = new Set<number>([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE]);

export function mapTypeName(type: number): string {
  for (const [k, v] of Object.entries(MapType)) if (v === type) return k;
  return `type ${type}`;
}

export interface MapInfo extends NativeMapInfo {
  typeName: string;
  perCpu: boolean;
}

export interface CreateMapOptions {
  type: MapTypeName | number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  /** Kernel map name, at most 15 characters of [A-Za-z0-9_.]. */
  name?: string;
}

export interface MapEntries { keys: Buffer[]; values: Buffer[] }
/** Entries side by side: entry i's key at keys[i * keySize], its value at values[i * valueSize]. */
export interface PackedEntries { keys: Buffer; values: Buffer; count: number; keySize: number; valueSize: number }

/** Number of possible CPUs: the stride count of per-CPU values. */
export function possibleCpus(): number {
  return native().possibleCpus();
}

function errnoOf(e: unknown): string | undefined {
  return e instanceof BpfError ? e.errnoName : undefined;
}

export class BpfMap extends FdHandle {
  readonly info: MapInfo;

  private constructor(fd: number) {
    super(fd, 'ERR_BPF_MAP_CLOSED');
    const i = native().mapInfo(fd);
    this.info = { ...i, typeName: mapTypeName(i.type), perCpu: PERCPU_TYPES.has(i.type) };
  }

  protected describe(): string { return `map ${this.info.name}`; }

  /** A new, unpinned map (gone when its last fd closes and nothing references it). */
  static create(opts: CreateMapOptions): BpfMap {
    const type = typeof opts.type === 'string' ? MapType[opts.type] : opts.type;
    if (type === undefined) throw invalidOption('map type', `is not a known map type: ${String(opts.type)}`);
    checkInt('map type', type, 1, 1000);
    checkInt('keySize', opts.keySize, 0, 1 << 20);
    checkInt('valueSize', opts.valueSize, 0, 1 << 26);
    checkInt('maxEntries', opts.maxEntries, 0, U32_MAX);
    checkInt('flags', opts.flags ?? 0, 0, U32_MAX);
    if (opts.name !== undefined && !/^[A-Za-z0-9_.]{1,15}$/.test(opts.name)) {
      throw invalidOption('map name', `must be 1..15 characters of [A-Za-z0-9_.], got ${JSON.stringify(opts.name)}`);
    }
    const fd = native().mapCreate(type, opts.keySize, opts.valueSize, opts.maxEntries, opts.flags ?? 0, opts.name ?? null);
    return BpfMap.adopt(fd);
  }

  /** Opens a map pinned on bpffs. */
  static openPinned(path: string): BpfMap {
    return BpfMap.adopt(native().objGet(checkAbsPath('pin path', path), 'map'));
  }

  /** Opens a map by kernel id (e.g. from BpfProgram.info().mapIds of an attached program). */
  static fromId(id: number): BpfMap {
    return BpfMap.adopt(native().mapFdById(checkInt('map id', id, 1, U32_MAX)));
  }

  /** Duplicates `fd` (which stays the caller's) into a handle of its own. */
  static fromFd(fd: number): BpfMap {
    return BpfMap.adopt(native().fdDup(checkInt('map fd', fd, 0, 0x7fffffff)));
  }

  private static adopt(fd: number): BpfMap {
    return adoptFd(fd, (f) => new BpfMap(f));
  }
  get name(): string { return this.info.name; }
  get keySize(): number { return this.info.keySize; }
  get valueSize(): number { return this.info.valueSize; }
  get maxEntries(): number { return this.info.maxEntries; }
  /** Bytes of one value Buffer as the syscalls take it (per-CPU: all CPUs). */
  get valueBufSize(): number {
    return this.info.perCpu ? possibleCpus() * ((this.info.valueSize + 7) & ~7) : this.info.valueSize;
  }

  /** Fresh info from the kernel (max_entries etc. cannot change; id and name are stable). */
  refreshInfo(): MapInfo {
    const i = native().mapInfo(this.fd);
    return { ...i, typeName: mapTypeName(i.type), perCpu: PERCPU_TYPES.has(i.type) };
  }

  /** The value, or undefined when the key is absent. */
  lookup(key: Buffer | null, flags = 0): Buffer | undefined {
    return native().mapLookup(this.fd, key, flags, false) ?? undefined;
  }

  /** The value; BpfError ENOENT when the key is absent. */
  get(key: Buffer | null, flags = 0): Buffer {
    return native().mapLookup(this.fd, key, flags, true) as Buffer;
  }

  has(key: Buffer): boolean {
    return this.lookup(key) !== undefined;
  }

  update(key: Buffer | null, value: Buffer, flags: number = UpdateFlag.ANY): void {
    native().mapUpdate(this.fd, key, checkBuffer('value', value), flags);
  }

  /** Deletes; BpfError ENOENT when the key is absent. */
  delete(key: Buffer): void {
    native().mapDelete(this.fd, checkBuffer('key', key), true);
  }

  /** Deletes if present; false when the key was absent. */
  tryDelete(key: Buffer): boolean {
    return native().mapDelete(this.fd, checkBuffer('key', key), false);
  }

  /** The key after `key` (the first key for null), or undefined at the end. */
  nextKey(key: Buffer | null): Buffer | undefined {
    return native().mapGetNextKey(this.fd, key) ?? undefined;
  }

  /** All keys (one native call). A hash map changing meanwhile may yield repeats; capped at `limit`. */
  keys(limit = this.info.maxEntries): Buffer[] {
    const all = native().mapKeys(this.fd, checkInt('limit', limit, 0, U32_MAX));
    return split(all, this.info.keySize);
  }

  /**
   * All entries. Uses bpf_map_lookup_batch; map types without batch support (LPM trie, ...)
   * fall back to keys + lookups (then an entry deleted in between is skipped).
   */
  entries(): MapEntries {
    try {
      return this.lookupBatch();
    } catch (e) {
      const n = errnoOf(e);
      if (n !== 'EINVAL' && n !== 'ENOTSUPP' && n !== 'EOPNOTSUPP') throw e;
    }
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) { keys.push(k); values.push(v); }
    }
    return { keys, values };
  }

  /** Whole-map bpf_map_lookup_batch (or lookup_and_delete with `delete: true`). */
  lookupBatch(opts: { chunk?: number; delete?: boolean } = {}): MapEntries {
    const r = this.lookupBatchPacked(opts);
    return { keys: split(r.keys, this.info.keySize), values: split(r.values, this.valueBufSize) };
  }

  /**
   * As lookupBatch, the entries left side by side as the kernel wrote them: `count` keys of
   * key_size bytes in `keys`, values of the value buffer size in `values` (no per-entry Buffers).
   */
  lookupBatchPacked(opts: { chunk?: number; delete?: boolean } = {}): PackedEntries {
    const chunk = checkInt('chunk', opts.chunk ?? Math.max(1, Math.min(this.info.maxEntries, 4096)), 1, 1 << 24);
    const r = native().mapLookupBatch(this.fd, chunk, opts.delete ?? false);
    return { keys: r.keys, values: r.values, count: r.count, keySize: this.info.keySize, valueSize: this.valueBufSize };
  }

  /** bpf_map_update_batch; returns how many were written (all, or it throws). */
  updateBatch(keys: Buffer[], values: Buffer[], elemFlags: number = UpdateFlag.ANY): number {
    if (keys.length !== values.length) throw invalidOption('updateBatch', `got ${keys.length} keys but ${values.length} values`);
    return native().mapUpdateBatch(this.fd, joinSized('key', keys, this.info.keySize), joinSized('value', values, this.valueBufSize), keys.length, elemFlags);
  }

  /**
   * bpf_map_update_batch of `count` entries already side by side: keys of key_size bytes each in
   * `keys`, values of the value buffer size each in `values` (no per-entry Buffers).
   */
  updateBatchPacked(keys: Buffer, values: Buffer, count: number, elemFlags: number = UpdateFlag.ANY): number {
    checkInt('count', count, 0, U32_MAX);
    checkBuffer('keys', keys);
    checkBuffer('values', values);
    if (keys.length !== count * this.info.keySize || values.length !== count * this.valueBufSize) {
      throw invalidOption('updateBatchPacked', `${count} entries need ${count * this.info.keySize} key and ${count * this.valueBufSize} value bytes; got ${keys.length} and ${values.length}`);
    }
    return native().mapUpdateBatch(this.fd, keys, values, count, elemFlags);
  }

  /**
   * As updateBatchPacked, the syscall on a libuv worker thread (the kernel's work on a large batch
   * runs beside the JS thread): resolves with the count written, rejects with the same BpfError.
   * `keys` and `values` must not be changed until it settles.
   */
  updateBatchPackedAsync(keys: Buffer, values: Buffer, count: number, elemFlags: number = UpdateFlag.ANY): Promise<number> {
    checkInt('count', count, 0, U32_MAX);
    checkBuffer('keys', keys);
    checkBuffer('values', values);
    if (keys.length !== count * this.info.keySize || values.length !== count * this.valueBufSize) {
      throw invalidOption('updateBatchPackedAsync', `${count} entries need ${count * this.info.keySize} key and ${count * this.valueBufSize} value bytes; got ${keys.length} and ${values.length}`);
    }
    return native().mapUpdateBatchAsync(this.fd, keys, values, count, elemFlags);
  }

  /** bpf_map_delete_batch of `count` keys side by side in `keys`; as deleteBatch. */
  deleteBatchPacked(keys: Buffer, count: number): number {
    checkInt('count', count, 0, U32_MAX);
    checkBuffer('keys', keys);
    if (keys.length !== count * this.info.keySize) {
      throw invalidOption('deleteBatchPacked', `${count} keys need ${count * this.info.keySize} bytes; got ${keys.length}`);
    }
    return native().mapDeleteBatch(this.fd, keys, count);
  }

  /** bpf_map_delete_batch; ENOENT if a key is absent (keys before it are deleted). */
  deleteBatch(keys: Buffer[]): number {
    return native().mapDeleteBatch(this.fd, joinSized('key', keys, this.info.keySize), keys.length);
  }

  /** Per-CPU value Buffer -> one Buffer of value_size bytes per possible CPU. */
  splitPerCpu(value: Buffer): Buffer[] {
    if (!this.info.perCpu) throw invalidOption('splitPerCpu', `map ${this.name} is not per-CPU`);
    const stride = (this.info.valueSize + 7) & ~7;
    const out: Buffer[] = [];
    for (let off = 0; off + stride <= value.length; off += stride) out.push(value.subarray(off, off + this.info.valueSize));
    return out;
  }

  /** One value per CPU (fewer are zero-filled) -> the Buffer the per-CPU syscalls take. */
  joinPerCpu(values: Buffer[]): Buffer {
    if (!this.info.perCpu) throw invalidOption('joinPerCpu', `map ${this.name} is not per-CPU`);
    const n = possibleCpus();
    if (values.length > n) throw invalidOption('joinPerCpu', `got ${values.length} values for ${n} CPUs`);
    const stride = (this.info.valueSize + 7) & ~7;
    const out = Buffer.alloc(n * stride);
    values.forEach((v, i) => {
      if (v.length !== this.info.valueSize) throw invalidOption(`joinPerCpu value ${i}`, `is ${v.length} bytes; map ${this.name} has value_size ${this.info.valueSize}`);
      v.copy(out, i * stride);
    });
    return out;
  }

}

function split(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  if (size === 0) return out;
  for (let off = 0; off + size <= buf.length; off += size) out.push(buf.subarray(off, off + size));
  return out;
}

function joinSized(what: string, bufs: Buffer[], size: number): Buffer {
  const out = Buffer.allocUnsafe(bufs.length * size);
  // The entry's name is only made for an error (a route map's first write joins ~100,000 keys
  // and values: a string per entry, and Buffer#copy's JS path, cost more than the copy).
  for (let i = 0; i < bufs.length; i++) {
    const b = bufs[i];
    if (!Buffer.isBuffer(b)) checkBuffer(`${what} ${i}`, b);
    if (b.length !== size) throw new BpfError('ERR_BPF_INVALID_OPTION', 'validate', 22, `${what} ${i} is ${b.length} bytes; expected ${size}`);
    out.set(b, i * size);
  }
  return out;
}
