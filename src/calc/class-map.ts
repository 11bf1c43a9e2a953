/**
 * Compact maps of a table context (src/calc/table-contexts.ts Ctx).
 *
 * ClassRowsMap: for one table context, global class id → rows key, and how many classes have
 * each rows key (the table's groups). There is one entry per class that has any of the table's
 * atoms — hundreds of thousands at 10,000 endpoints — so it is kept compact: an open-addressing
 * hash table over typed arrays whose values are small integers naming interned rows keys.
 *
 * The table is *ordered*: an id's home slot is a non-decreasing function of the id (its position
 * in the range of ids the table held when it last grew, scaled to the home slots: for ids that are
 * hashes, about their top bits), probing is linear and an insertion shifts the rest of its run one
 * slot on, so the occupied slots hold the ids in increasing order (ordered linear probing, Amble &
 * Knuth). The projection is then a scan, not a sort. A run that passes the last home slot spills
 * into a tail of spare slots (grown when it would fill the last one, which stays empty: the scans
 * stop there); deletion shifts the run's displaced entries back (no tombstones).
 *
 * Contract:
 *   - class ids are integers in [1, 2³² − 1] (0 marks an empty slot); rows keys are any strings;
 *   - `set` replaces an existing entry (the old rows key's count drops); `delete` of an absent id
 *     is a no-op returning undefined;
 *   - `count(rk)` is the number of entries with rows key rk; `groups()` lists the rows keys with
 *     a count > 0; a rows key whose count drops to 0 is forgotten (its index is reused);
 *   - `forEach` and `pairsSorted` visit entries by increasing id; `groups` order is unspecified;
 *   - `clone()` is an independent copy (later changes to either do not affect the other).
 * Cost: O(1) expected per operation while the ids spread evenly over their range (hashes do;
 * ids that cluster make long runs, still correct), O(entries) for the sorted pairs; memory
 * ~12–24 bytes per entry versus ~40 for a Map<number, string> (plus a heap number per id ≥ 2³¹).
 */

/** Spare slots after the last home slot, at first (grown when a run would reach the last). */
const TAIL = 16;

/** ClassRowsMap.pairsSorted's output before it is cut to size (grown as needed, never shrunk). */
let pairScratch = new Uint32Array(2048);

export class ClassRowsMap {
  /** Slots: home slots [0, cap), then the tail; the last slot is always empty. */
  private ids: Uint32Array;
  private vals: Int32Array;
  /** Home slots (a power of two). */
  private cap: number;
  /** home(id) = clamp(⌊(id − base) · scale⌋, 0, cap − 1): set when the table is laid out. */
  private base = 0;
  private scale: number;
  private n = 0;
  /** Interned rows keys: index → key (undefined when free), key → index, entries per index. */
  private readonly keys: (string | undefined)[] = [];
  private readonly index = new Map<string, number>();
  private readonly counts: number[] = [];
  private readonly freeIdx: number[] = [];
  /**
   * A number per rows key index for the caller (setTags; -1 when not set): a table's local class
   * of each rows key as last assembled, so that the per-class steps need no string lookup. A key
   * interned after setTags has -1 (its index may be a freed one's).
   */
  private readonly tags: number[] = [];

  constructor() {
    this.cap = 8;
    this.ids = new Uint32Array(8 + TAIL);
    this.vals = new Int32Array(8 + TAIL);
    this.scale = 8 / 2 ** 32;
  }

  get size(): number {
    return this.n;
  }

  private home(id: number): number {
    const h = (id - this.base) * this.scale;
    return h <= 0 ? 0 : h >= this.cap ? this.cap - 1 : h | 0;
  }

  /** The slot holding `id`, or where it would be inserted (an empty slot or a larger id). */
  private find(id: number): number {
    const ids = this.ids;
    let i = this.home(id);
    for (;;) {
      const x = ids[i]!;
      if (x === 0 || x >= id) return i;
      i++;
    }
  }

  get(id: number): string | undefined {
    const i = this.find(id);
    return this.ids[i] === id ? this.keys[this.vals[i]!] : undefined;
  }

  has(id: number): boolean {
    return this.ids[this.find(id)] === id;
  }

  /** Entries with rows key `rk`. */
  count(rk: string): number {
    const k = this.index.get(rk);
    return k === undefined ? 0 : this.counts[k]!;
  }

  set(id: number, rk: string): void {
    if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) throw new RangeError(`ClassRowsMap: class id ${id} is not in [1, 2^32-1]`);
    let i = this.find(id);
    if (this.ids[i] === id) {
      const old = this.vals[i]!;
      if (this.keys[old] === rk) return;
      this.release(old);
      this.vals[i] = this.intern(rk);
      return;
    }
    if ((this.n + 1) * 4 > this.cap * 3) {
      this.resize(this.cap * 2);
      i = this.find(id);
    }
    this.insertAt(i, id, this.intern(rk));
  }

  /**
   * Grows the table once for `n` entries in all (a full build knows how many classes it enters:
   * no doubling through every size on the way, each a new pair of arrays).
   */
  reserve(n: number): void {
    let cap = this.cap;
    while (n * 4 > cap * 3) cap *= 2;
    if (cap !== this.cap) this.resize(cap);
  }

  /** The index under which rows key `rk` is interned (-1: no entry has it); valid while one has. */
  indexOf(rk: string): number {
    return this.index.get(rk) ?? -1;
  }

  /**
   * set() with the rows key named by its index (indexOf, while some entry still has it): no
   * string lookup (a full build enters tens of thousands of classes with a few hundred keys).
   */
  setIndexed(id: number, k: number): void {
    if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) throw new RangeError(`ClassRowsMap: class id ${id} is not in [1, 2^32-1]`);
    let i = this.find(id);
    if (this.ids[i] === id) {
      const old = this.vals[i]!;
      if (old === k) return;
      this.counts[k]!++;
      this.release(old);
      this.vals[i] = k;
      return;
    }
    if ((this.n + 1) * 4 > this.cap * 3) {
      this.resize(this.cap * 2);
      i = this.find(id);
    }
    this.counts[k]!++;
    this.insertAt(i, id, k);
  }

  /** Puts a new id at its insertion slot `p`, the run from there shifted one slot on. */
  private insertAt(p: number, id: number, k: number): void {
    let ids = this.ids;
    let e = p;
    while (ids[e] !== 0) e++;
    if (e === ids.length - 1) {
      this.growTail();
      ids = this.ids;
    }
    const vals = this.vals;
    for (let j = e; j > p; j--) {
      ids[j] = ids[j - 1]!;
      vals[j] = vals[j - 1]!;
    }
    ids[p] = id;
    vals[p] = k;
    this.n++;
  }

  /** Removes a class; returns its rows key (undefined if it was absent). */
  delete(id: number): string | undefined {
    const ids = this.ids;
    const i = this.find(id);
    if (ids[i] !== id) return undefined;
    const vals = this.vals;
    const k = vals[i]!;
    const rk = this.keys[k];
    this.release(k);
    this.n--;
    // Backward shift: the entries after the hole that are past their home slot move back one;
    // the first one at its home slot (or an empty slot) ends it (later ids are larger, so their
    // homes are not before it).
    let j = i + 1;
    for (;;) {
      const x = ids[j]!;
      if (x === 0 || this.home(x) >= j) break;
      ids[j - 1] = x;
      vals[j - 1] = vals[j]!;
      j++;
    }
    ids[j - 1] = 0;
    return rk;
  }

  /**
   * Gives `id` the rows key `from` has, when `from` is present, and returns that key; otherwise
   * leaves the map as it is and returns undefined. (set(id, get(from)) without looking the key
   * up by its string.)
   */
  setAs(id: number, from: number): string | undefined {
    const k = this.setAsIndex(id, from);
    return k === -1 ? undefined : this.keys[k];
  }

  /** setAs, returning the rows key's index (-1: `from` is absent, nothing changed). */
  setAsIndex(id: number, from: number): number {
    const j = this.find(from);
    if (this.ids[j] !== from) return -1;
    const k = this.vals[j]!;
    this.setIndexed(id, k);
    return k;
  }

  /** The rows key index of `id`'s entry, -1 when absent. */
  indexOfId(id: number): number {
    const i = this.find(id);
    return this.ids[i] === id ? this.vals[i]! : -1;
  }

  /** The rows key under index `k` (undefined when free). */
  keyAt(k: number): string | undefined {
    return this.keys[k];
  }

  /** Entries with the rows key of index `k` (0 when free). */
  countAt(k: number): number {
    return this.keys[k] === undefined ? 0 : this.counts[k]!;
  }

  /** Sets every present rows key's tag to `tagOf(key)` (an integer ≥ 0, or -1 for none). */
  setTags(tagOf: (rk: string) => number): void {
    for (let k = 0; k < this.keys.length; k++) {
      const rk = this.keys[k];
      this.tags[k] = rk === undefined ? -1 : tagOf(rk);
    }
  }

  /** The tag of rows key index `k` (-1: none, or interned since setTags). */
  tagAt(k: number): number {
    return this.tags[k] ?? -1;
  }

  clear(): void {
    this.cap = 8;
    this.ids = new Uint32Array(8 + TAIL);
    this.vals = new Int32Array(8 + TAIL);
    this.base = 0;
    this.scale = 8 / 2 ** 32;
    this.n = 0;
    this.keys.length = 0;
    this.index.clear();
    this.counts.length = 0;
    this.freeIdx.length = 0;
    this.tags.length = 0;
  }

  /** Every entry, by increasing id. */
  forEach(fn: (id: number, rk: string) => void): void {
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) {
      const x = ids[i]!;
      if (x !== 0) fn(x, this.keys[this.vals[i]!]!);
    }
  }

  /**
   * An independent copy (same entries, counts and layout): typed arrays copied wholesale, so
   * it costs O(capacity) memory copying and no hashing.
   */
  clone(): ClassRowsMap {
    const c = new ClassRowsMap();
    c.ids = this.ids.slice();
    c.vals = this.vals.slice();
    c.cap = this.cap;
    c.base = this.base;
    c.scale = this.scale;
    c.n = this.n;
    // Loops, not push(...xs): a table can have more groups than a call has arguments.
    for (const k of this.keys) c.keys.push(k);
    for (const [k, v] of this.index) c.index.set(k, v);
    for (const n of this.counts) c.counts.push(n);
    for (const k of this.freeIdx) c.freeIdx.push(k);
    for (const k of this.tags) c.tags.push(k);
    return c;
  }

  /**
   * The entries whose value `valueOf(rows key)` (called once per rows key; a u32) is not 0, as
   * pairs [id, value] one after the other, sorted by id (the slots' order: no sort).
   */
  pairsSorted(valueOf: (rk: string) => number): Uint32Array {
    const byKey = new Float64Array(this.keys.length);
    for (let k = 0; k < this.keys.length; k++) {
      const rk = this.keys[k];
      if (rk === undefined) continue;
      const v = valueOf(rk);
      if (!(v >= 0 && v <= 0xffffffff) || !Number.isInteger(v)) throw new RangeError(`ClassRowsMap: value ${v} is not a u32`);
      byKey[k] = v;
    }
    if (pairScratch.length < 2 * this.n) pairScratch = new Uint32Array(Math.max(2 * this.n, 2 * pairScratch.length));
    const out = pairScratch;
    const ids = this.ids;
    const vals = this.vals;
    let m = 0;
    for (let i = 0; i < ids.length; i++) {
      const x = ids[i]!;
      if (x === 0) continue;
      const v = byKey[vals[i]!]!;
      if (v !== 0) {
        out[m++] = x;
        out[m++] = v;
      }
    }
    return out.slice(0, m);
  }

  /** The rows keys that at least one class has. */
  groups(): string[] {
    const out: string[] = [];
    for (const k of this.keys) if (k !== undefined) out.push(k);
    return out;
  }

  private intern(rk: string): number {
    let k = this.index.get(rk);
    if (k === undefined) {
      k = this.freeIdx.pop() ?? this.keys.length;
      this.keys[k] = rk;
      this.counts[k] = 0;
      this.tags[k] = -1;
      this.index.set(rk, k);
    }
    this.counts[k]!++;
    return k;
  }

  private release(k: number): void {
    if (--this.counts[k]! > 0) return;
    this.index.delete(this.keys[k]!);
    this.keys[k] = undefined;
    this.freeIdx.push(k);
  }

  /** Doubles the spare slots after the home slots (same layout). */
  private growTail(): void {
    const len = this.ids.length + Math.max(TAIL, this.ids.length - this.cap);
    const ids = new Uint32Array(len);
    const vals = new Int32Array(len);
    ids.set(this.ids);
    vals.set(this.vals);
    this.ids = ids;
    this.vals = vals;
  }

  /**
   * Lays the entries out again over `capacity` home slots, the homes spread over the range of
   * ids held now (entries taken in order, each at its home or just after the previous one).
   */
  private resize(capacity: number): void {
    const oldIds = this.ids;
    const oldVals = this.vals;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < oldIds.length; i++) {
      const x = oldIds[i]!;
      if (x === 0) continue;
      if (lo === 0) lo = x;
      hi = x;
    }
    this.cap = capacity;
    this.base = lo === 0 ? 0 : lo;
    this.scale = capacity / (lo === 0 ? 2 ** 32 : hi - lo + 1);
    let ids = new Uint32Array(capacity + TAIL);
    let vals = new Int32Array(capacity + TAIL);
    let last = -1;
    for (let i = 0; i < oldIds.length; i++) {
      const x = oldIds[i]!;
      if (x === 0) continue;
      const h = this.home(x);
      const p = h > last ? h : last + 1;
      if (p >= ids.length - 1) {
        const wider = new Uint32Array(2 * ids.length);
        const widerVals = new Int32Array(2 * ids.length);
        wider.set(ids);
        widerVals.set(vals);
        ids = wider;
        vals = widerVals;
      }
      ids[p] = x;
      vals[p] = oldVals[i]!;
      last = p;
    }
    this.ids = ids;
    this.vals = vals;
  }
}

/**
 * SigMemo: restricted-signature number → rows key, for one table context (a cache, cleared
 * wholesale). Keys are integers in [0, 2⁵³ − 2] (sigNumber in classes.ts); values are rows keys,
 * stored once each. Open addressing over a Float64Array (key + 1; 0 marks an empty slot) and an
 * Int32Array of value indices: ~17 bytes per entry instead of ~110 for a Map<number, string>
 * whose keys above 2³¹ are heap numbers. No deletion (only `clear`).
 */
export class SigMemo {
  private keys = new Float64Array(8);
  private vals = new Int32Array(8);
  private mask = 7;
  private n = 0;
  private readonly values: string[] = [];
  private readonly valueIdx = new Map<string, number>();

  get size(): number {
    return this.n;
  }

  private slotOf(k1: number): number {
    let i = (k1 >>> 0) & this.mask;
    for (;;) {
      const x = this.keys[i]!;
      if (x === k1 || x === 0) return i;
      i = (i + 1) & this.mask;
    }
  }

  get(key: number): string | undefined {
    const i = this.slotOf(key + 1);
    return this.keys[i] === 0 ? undefined : this.values[this.vals[i]!];
  }

  /** Distinct values stored (value indices are below it). */
  get valueCount(): number {
    return this.values.length;
  }

  /** The index of `key`'s value (values are stored once each; -1: no entry), stable until clear(). */
  valueIndexOf(key: number): number {
    const i = this.slotOf(key + 1);
    return this.keys[i] === 0 ? -1 : this.vals[i]!;
  }

  set(key: number, value: string): void {
    if (!Number.isInteger(key) || key < 0 || key > 2 ** 53 - 2) throw new RangeError(`SigMemo: key ${key} is not in [0, 2^53-2]`);
    let v = this.valueIdx.get(value);
    if (v === undefined) {
      v = this.values.length;
      this.values.push(value);
      this.valueIdx.set(value, v);
    }
    let i = this.slotOf(key + 1);
    if (this.keys[i] === 0) {
      if ((this.n + 1) * 4 > (this.mask + 1) * 3) {
        this.grow();
        i = this.slotOf(key + 1);
      }
      this.keys[i] = key + 1;
      this.n++;
    }
    this.vals[i] = v;
  }

  clear(): void {
    this.keys = new Float64Array(8);
    this.vals = new Int32Array(8);
    this.mask = 7;
    this.n = 0;
    this.values.length = 0;
    this.valueIdx.clear();
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const cap = (this.mask + 1) * 2;
    this.keys = new Float64Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
    for (let i = 0; i < oldKeys.length; i++) {
      const x = oldKeys[i]!;
      if (x === 0) continue;
      const j = this.slotOf(x);
      this.keys[j] = x;
      this.vals[j] = oldVals[i]!;
    }
  }
}

/** A table's projection changes of one flush, net, by class id (ProjLog.resolve). */
export interface ProjChanges {
  /** Classes whose projection entry is (re)written, sorted, and their local classes. */
  addIds: Uint32Array;
  addLcs: Uint32Array;
  /** Classes whose projection entry goes, sorted. */
  delIds: Uint32Array;
}

/**
 * ProjLog: one table's projection changes in one flush, as a log of operations in typed arrays
 * (no Map entry, and no heap number for a class id ≥ 2³⁰, per change: a class split by a new
 * CIDR atom is entered into, and its old class removed from, every live table holding its atoms).
 * Operations, replayed in order onto two maps `add` and `del` (class → local class):
 *   - `enter(id, lc)`: if `del` has id, that removal is cancelled, else add[id] = lc;
 *   - `leave(id, lc)`: if `add` has id, that addition is cancelled, else del[id] = lc;
 *   - `setAdd(id, lc)` / `setDel(id, lc)`: add[id] = lc / del[id] = lc, nothing cancelled.
 * `resolve()` gives the two maps as sorted arrays: when no class id occurs twice in the log (the
 * usual case) straight from one sort of the log, else by replaying it through Maps.
 */
export class ProjLog {
  private ids = new Float64Array(64);
  private lcs = new Float64Array(64);
  private kinds = new Uint8Array(64);
  private n = 0;

  get size(): number {
    return this.n;
  }

  /** Entries the log holds without growing (a caller reusing logs drops the large ones). */
  get capacity(): number {
    return this.ids.length;
  }

  clear(): void {
    this.n = 0;
  }

  enter(id: number, lc: number): void {
    this.push(id, lc, 1);
  }

  leave(id: number, lc: number): void {
    this.push(id, lc, 0);
  }

  setAdd(id: number, lc: number): void {
    this.push(id, lc, 3);
  }

  setDel(id: number, lc: number): void {
    this.push(id, lc, 2);
  }

  private push(id: number, lc: number, kind: number): void {
    if (this.n === this.ids.length) {
      const cap = 2 * this.n;
      const ids = new Float64Array(cap);
      const lcs = new Float64Array(cap);
      const kinds = new Uint8Array(cap);
      ids.set(this.ids);
      lcs.set(this.lcs);
      kinds.set(this.kinds);
      this.ids = ids;
      this.lcs = lcs;
      this.kinds = kinds;
    }
    this.ids[this.n] = id;
    this.lcs[this.n] = lc;
    this.kinds[this.n++] = kind;
  }

  resolve(): ProjChanges {
    const n = this.n;
    const { ids, lcs, kinds } = this;
    // Sorted by id, then by position in the log: id · 2²¹ + position is exact in a double while
    // the log has fewer than 2²¹ entries (ids < 2³²).
    if (n < 1 << 21) {
      const order = new Float64Array(n);
      for (let i = 0; i < n; i++) order[i] = ids[i]! * 2097152 + i;
      order.sort();
      let repeated = false;
      let nAdd = 0;
      for (let j = 0; j < n; j++) {
        const i = order[j]! % 2097152;
        if (j > 0 && Math.floor(order[j - 1]! / 2097152) === ids[i]) {
          repeated = true;
          break;
        }
        if ((kinds[i]! & 1) === 1) nAdd++;
      }
      if (!repeated) {
        const out: ProjChanges = { addIds: new Uint32Array(nAdd), addLcs: new Uint32Array(nAdd), delIds: new Uint32Array(n - nAdd) };
        let a = 0;
        let d = 0;
        for (let j = 0; j < n; j++) {
          const i = order[j]! % 2097152;
          if ((kinds[i]! & 1) === 1) {
            out.addIds[a] = ids[i]!;
            out.addLcs[a++] = lcs[i]!;
          } else out.delIds[d++] = ids[i]!;
        }
        return out;
      }
    }
    const add = new Map<number, number>();
    const del = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      const lc = lcs[i]!;
      switch (kinds[i]) {
        case 1:
          if (!del.delete(id)) add.set(id, lc);
          break;
        case 0:
          if (!add.delete(id)) del.set(id, lc);
          break;
        case 3:
          add.set(id, lc);
          break;
        default:
          del.set(id, lc);
      }
    }
    const addIds = Uint32Array.from(add.keys()).sort();
    const addLcs = new Uint32Array(addIds.length);
    for (let i = 0; i < addIds.length; i++) addLcs[i] = add.get(addIds[i]!)!;
    return { addIds, addLcs, delIds: Uint32Array.from(del.keys()).sort() };
  }
}
