/**
 * Compact maps of a table context (src/calc/table-contexts.ts Ctx).
 *
 * ClassRowsMap: for one table context, global class id → rows key, and how many classes have
 * each rows key (the table's groups). There is one entry per class that has any of the table's
 * atoms — hundreds of thousands at 10,000 endpoints — so it is kept compact: an open-addressing
 * hash table over typed arrays (linear probing, backward-shift deletion, no tombstones) whose
 * values are small integers naming interned rows keys.
 *
 * Contract:
 *   - class ids are integers in [1, 2³² − 1] (0 marks an empty slot); rows keys are any strings;
 *   - `set` replaces an existing entry (the old rows key's count drops); `delete` of an absent id
 *     is a no-op returning undefined;
 *   - `count(rk)` is the number of entries with rows key rk; `groups()` lists the rows keys with
 *     a count > 0; a rows key whose count drops to 0 is forgotten (its index is reused);
 *   - iteration order (`forEach`, `groups`) is unspecified: callers sort what they emit;
 *   - `clone()` is an independent copy (later changes to either do not affect the other).
 * Cost: O(1) expected per operation (ids are hashes, so the low bits spread evenly); memory
 * ~12–24 bytes per entry versus ~40 for a Map<number, string> (plus a heap number per id ≥ 2³¹).
 */
/** Scratch buffers of ClassRowsMap.sortedById (one sort at a time; grown as needed, never shrunk). */
const sortScratch = {
  a: new Uint32Array(1024),
  av: new Uint32Array(1024),
  b: new Uint32Array(1024),
  bv: new Uint32Array(1024),
  counts: new Uint32Array(2048),
  /** Bucket counts of the top-bits pass (up to 2^16 buckets). */
  buckets: new Uint32Array(1 << 16),
};

/** Largest bucket of the top-bits pass sorted by insertion; a fuller one means the ids cluster. */
const MAX_BUCKET = 32;

export class ClassRowsMap {
  private ids: Uint32Array;
  private vals: Int32Array;
  private mask: number;
  private n = 0;
  /** Interned rows keys: index → key (undefined when free), key → index, entries per index. */
  private readonly keys: (string | undefined)[] = [];
  private readonly index = new Map<string, number>();
  private readonly counts: number[] = [];
  private readonly freeIdx: number[] = [];

  constructor() {
    this.ids = new Uint32Array(8);
    this.vals = new Int32Array(8);
    this.mask = 7;
  }

  get size(): number {
    return this.n;
  }

  private slotOf(id: number): number {
    const ids = this.ids;
    let i = id & this.mask;
    for (;;) {
      const x = ids[i]!;
      if (x === id || x === 0) return i;
      i = (i + 1) & this.mask;
    }
  }

  get(id: number): string | undefined {
    const i = this.slotOf(id);
    return this.ids[i] === 0 ? undefined : this.keys[this.vals[i]!];
  }

  has(id: number): boolean {
    return this.ids[this.slotOf(id)] !== 0;
  }

  /** Entries with rows key `rk`. */
  count(rk: string): number {
    const k = this.index.get(rk);
    return k === undefined ? 0 : this.counts[k]!;
  }

  set(id: number, rk: string): void {
    if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) throw new RangeError(`ClassRowsMap: class id ${id} is not in [1, 2^32-1]`);
    let i = this.slotOf(id);
    if (this.ids[i] !== 0) {
      const old = this.vals[i]!;
      if (this.keys[old] === rk) return;
      this.release(old);
      this.vals[i] = this.intern(rk);
      return;
    }
    if ((this.n + 1) * 4 > (this.mask + 1) * 3) {
      this.resize((this.mask + 1) * 2);
      i = this.slotOf(id);
    }
    this.ids[i] = id;
    this.vals[i] = this.intern(rk);
    this.n++;
  }

  /**
   * Grows the table once for `n` entries in all (a full build knows how many classes it enters:
   * no doubling through every size on the way, each a new pair of arrays).
   */
  reserve(n: number): void {
    let cap = this.mask + 1;
    while (n * 4 > cap * 3) cap *= 2;
    if (cap !== this.mask + 1) this.resize(cap);
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
    let i = this.slotOf(id);
    if (this.ids[i] !== 0) {
      const old = this.vals[i]!;
      if (old === k) return;
      this.counts[k]!++;
      this.release(old);
      this.vals[i] = k;
      return;
    }
    if ((this.n + 1) * 4 > (this.mask + 1) * 3) {
      this.resize((this.mask + 1) * 2);
      i = this.slotOf(id);
    }
    this.ids[i] = id;
    this.vals[i] = k;
    this.counts[k]!++;
    this.n++;
  }

  /** Removes a class; returns its rows key (undefined if it was absent). */
  delete(id: number): string | undefined {
    let i = this.slotOf(id);
    const ids = this.ids;
    if (ids[i] === 0) return undefined;
    const k = this.vals[i]!;
    const rk = this.keys[k];
    this.release(k);
    this.n--;
    // Backward shift: move later entries of the probe run into the hole unless their home slot
    // lies cyclically in (hole, their slot].
    const mask = this.mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const x = ids[j]!;
      if (x === 0) break;
      const home = x & mask;
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (stays) continue;
      ids[i] = x;
      this.vals[i] = this.vals[j]!;
      i = j;
    }
    ids[i] = 0;
    return rk;
  }

  /**
   * Gives `id` the rows key `from` has, when `from` is present, and returns that key; otherwise
   * leaves the map as it is and returns undefined. (set(id, get(from)) without looking the key
   * up by its string.)
   */
  setAs(id: number, from: number): string | undefined {
    const j = this.slotOf(from);
    if (this.ids[j] === 0) return undefined;
    const k = this.vals[j]!;
    this.setIndexed(id, k);
    return this.keys[k];
  }

  clear(): void {
    this.ids = new Uint32Array(8);
    this.vals = new Int32Array(8);
    this.mask = 7;
    this.n = 0;
    this.keys.length = 0;
    this.index.clear();
    this.counts.length = 0;
    this.freeIdx.length = 0;
  }

  forEach(fn: (id: number, rk: string) => void): void {
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) {
      const x = ids[i]!;
      if (x !== 0) fn(x, this.keys[this.vals[i]!]!);
    }
  }

  /**
   * An independent copy (same entries, counts and capacity): typed arrays copied wholesale, so
   * it costs O(capacity) memory copying and no hashing.
   */
  clone(): ClassRowsMap {
    const c = new ClassRowsMap();
    c.ids = this.ids.slice();
    c.vals = this.vals.slice();
    c.mask = this.mask;
    c.n = this.n;
    // Loops, not push(...xs): a table can have more groups than a call has arguments.
    for (const k of this.keys) c.keys.push(k);
    for (const [k, v] of this.index) c.index.set(k, v);
    for (const n of this.counts) c.counts.push(n);
    for (const k of this.freeIdx) c.freeIdx.push(k);
    return c;
  }

  /**
   * The entries whose value `valueOf(rows key)` (called once per rows key; a u32) is not 0, as
   * pairs [id, value] one after the other, sorted by id.
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
    const n = this.sortedById(byKey);
    const { a, av } = sortScratch;
    const out = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) {
      out[2 * i] = a[i]!;
      out[2 * i + 1] = av[i]!;
    }
    return out;
  }

  /**
   * Ids and values (value of an entry = byKey[its rows key index]) of the non-zero entries,
   * sorted by id, into sortScratch.a / av (valid until the next call); returns their count.
   */
  private sortedById(byKey: Float64Array): number {
    if (sortScratch.a.length < this.n) {
      const cap = Math.max(this.n, 2 * sortScratch.a.length);
      sortScratch.a = new Uint32Array(cap);
      sortScratch.av = new Uint32Array(cap);
      sortScratch.b = new Uint32Array(cap);
      sortScratch.bv = new Uint32Array(cap);
    }
    let { a, av, b, bv } = sortScratch;
    const ids = this.ids;
    const vals = this.vals;
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const x = ids[i]!;
      if (x === 0) continue;
      const v = byKey[vals[i]!]!;
      if (v !== 0) {
        a[n] = x;
        av[n++] = v;
      }
    }
    // Ids are hashes, spread evenly: one pass distributing them by their top bits into about as
    // many buckets as entries (each bucket's ids are then below the next bucket's), then an
    // insertion sort, which moves each id only within its bucket (a few places).
    let bits = 1;
    while (1 << bits < n && bits < 16) bits++;
    const shift = 32 - bits;
    const nb = 1 << bits;
    const buckets = sortScratch.buckets;
    buckets.fill(0, 0, nb);
    let fullest = 0;
    for (let i = 0; i < n; i++) {
      const c = ++buckets[a[i]! >>> shift]!;
      if (c > fullest) fullest = c;
    }
    if (fullest <= MAX_BUCKET) {
      let sum = 0;
      for (let d = 0; d < nb; d++) {
        const c = buckets[d]!;
        buckets[d] = sum;
        sum += c;
      }
      for (let i = 0; i < n; i++) {
        const j = buckets[a[i]! >>> shift]!++;
        b[j] = a[i]!;
        bv[j] = av[i]!;
      }
      for (let i = 1; i < n; i++) {
        const x = b[i]!;
        const xv = bv[i]!;
        let j = i - 1;
        while (j >= 0 && b[j]! > x) {
          b[j + 1] = b[j]!;
          bv[j + 1] = bv[j]!;
          j--;
        }
        b[j + 1] = x;
        bv[j + 1] = xv;
      }
      sortScratch.a = b;
      sortScratch.av = bv;
      sortScratch.b = a;
      sortScratch.bv = av;
      return n;
    }
    // Clustered ids (many sharing their top bits): a least-significant-digit radix sort (three
    // 11-bit digits; ids are distinct) gives their order in linear time.
    const counts = sortScratch.counts;
    for (let shift = 0; shift < 33; shift += 11) {
      counts.fill(0);
      for (let i = 0; i < n; i++) counts[(a[i]! >>> shift) & 2047]!++;
      let sum = 0;
      for (let d = 0; d < 2048; d++) {
        const c = counts[d]!;
        counts[d] = sum;
        sum += c;
      }
      for (let i = 0; i < n; i++) {
        const j = counts[(a[i]! >>> shift) & 2047]!++;
        b[j] = a[i]!;
        bv[j] = av[i]!;
      }
      [a, b] = [b, a];
      [av, bv] = [bv, av];
    }
    // Three passes: the sorted entries are in what was `b`; keep the scratch's names pointing at
    // the buffers that hold them.
    sortScratch.a = a;
    sortScratch.av = av;
    sortScratch.b = b;
    sortScratch.bv = bv;
    return n;
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

  private resize(capacity: number): void {
    const oldIds = this.ids;
    const oldVals = this.vals;
    this.ids = new Uint32Array(capacity);
    this.vals = new Int32Array(capacity);
    this.mask = capacity - 1;
    for (let i = 0; i < oldIds.length; i++) {
      const x = oldIds[i]!;
      if (x === 0) continue;
      const j = this.slotOf(x);
      this.ids[j] = x;
      this.vals[j] = oldVals[i]!;
    }
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
