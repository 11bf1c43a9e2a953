/**
 * ClassIndex — calc graph node: prefix nodes and global address classes.
 *
 *   LabelIndex ──markItemNodes / setItemPrefixes──┐      Atoms ──addCidrAtom / removeCidrAtom──┐
 *                                                 ▼                                             ▼
 *               prefix nodes (one per address prefix: the items with it, CIDR atoms of exactly it)
 *                                                 │ update(): dirty nodes, by key
 *                                                 ▼
 *      signature = atoms of the items at the prefix or covering it + CIDR atoms covering it
 *      (+ named-port values) ──> global class (id = hash of the signature, reference-counted by nodes)
 *                                                 │
 *                  added / removed classes, changed prefixes, class templates ──> TableContexts, Delta
 *
 * Also the per-class arithmetic the tables run on every class they look at (hot: keep these
 * monomorphic): `restrictedKey` (fingerprint of a class restricted to a table's atoms) and
 * `accumulate` (the same for every class with any of a set of atoms, in scratch arrays).
 *
 * Contract: marks arrive in any order (a mark of a prefix that has no node is a no-op); after
 * update(), every node's class is the class of its current signature, classes exist exactly
 * while a node references them, and `classesByAtom` holds each live class under each of its
 * atoms (added with the class, removed with it). A node with no item and no CIDR atom is removed
 * in update(), after releasing its class. A class's id depends only on its signature (probing past
 * 32-bit collisions with live classes, see types.ts).
 */
import type { Item, LabelIndex } from './label-index';
import { addTo, hashId, removeFrom } from './graph-util';
import { cidr4Covers, cidr4Key, cidr6Covers, cidr6Key, isCidr6, mask6, type AnyCidr, type Cidr4, type Cidr6 } from '../primitives';
import { fewAdd, fewDelete, fewSize, fewValues, type Few } from './compact';
import type { Signature } from './table';

export interface PNode {
  key: string;
  /** IPv4 (`Cidr4`) or IPv6 (`Cidr6`, key `6:…`): one partition of both families' addresses. */
  cidr: AnyCidr;
  /** CIDR atoms of exactly this prefix (usually none). */
  cidrAtoms: Set<string> | undefined;
  /** Keys of the items with this prefix (usually one). */
  items: Few<string>;
  classId: number;
}

export interface ClassRec {
  id: number;
  sig: string;
  members: string[];
  /**
   * Named-port atom id → hash pair of its member string (`id=values`, values differ per class);
   * absent when the class has no named-port member. A plain atom's member string is the atom id
   * itself, so its hash is the same in every class (ClassIndex.plainHash).
   */
  npHash?: Map<string, [number, number]>;
  refs: number;
  /** Dense internal index for scratch arrays. */
  slot: number;
}

/** FNV-1a over UTF-16 code units with a seed; two seeds give a 64-bit member fingerprint. */
function fnv(str: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Atom id of a class member (named-port members carry `=<ports>` after the id). */
export function memberAtom(m: string): string {
  return m.startsWith('n:') ? m.slice(0, m.lastIndexOf('=')) : m;
}

/** A class's membership signature, optionally restricted to the atoms `keep` accepts. */
export function signatureOfMembers(members: string[], keep?: (atom: string) => boolean): { sig: Signature; member: Map<string, string> } {
  const sig: Signature = new Map();
  const member = new Map<string, string>();
  for (const m of members) {
    const id = memberAtom(m);
    if (keep && !keep(id)) continue;
    if (id !== m) {
      sig.set(id, m.slice(id.length + 1).split(',').map((v) => v.split(':').map(Number) as [number, number]));
    } else {
      sig.set(m, true);
    }
    member.set(id, m);
  }
  return { sig, member };
}

/**
 * Atoms whose membership differs between two signatures (`changed`), and those only in `b`
 * (`gained`), written into the given arrays (emptied first; order unspecified). Both member
 * lists are sorted (signatureOf): a named-port member `atom=values` sorts among the other members
 * exactly where its atom's other values would (every string between two of them starts with
 * `atom=`), so one merge walk pairs the members of each atom without a map.
 */
export function memberDiff(a: string[], b: string[], changed: string[], gained: string[]): void {
  changed.length = 0;
  gained.length = 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length) {
      changed.push(memberAtom(a[i++]!));
      continue;
    }
    if (i >= a.length) {
      const k = memberAtom(b[j++]!);
      gained.push(k);
      changed.push(k);
      continue;
    }
    const x = a[i]!;
    const y = b[j]!;
    if (x === y) {
      i++;
      j++;
      continue;
    }
    const ax = memberAtom(x);
    const ay = memberAtom(y);
    if (ax === ay) {
      changed.push(ax);
      i++;
      j++;
    } else if (x < y) {
      changed.push(ax);
      i++;
    } else {
      gained.push(ay);
      changed.push(ay);
      j++;
    }
  }
}

/** The top `len` bits of an IPv4 address (ClassIndex.byLen4's key). */
function top4(addr: number, len: number): number {
  return len === 0 ? 0 : addr >>> (32 - len);
}

/** A 53-bit number from two 32-bit hashes (a Map key without string allocation). */
export function sigNumber(h1: number, h2: number): number {
  return h1 * 2097152 + (h2 >>> 11);
}

function memberHash(m: string): [number, number] {
  return [fnv(m, 0x811c9dc5), fnv(m, 0x2f6b3c1d)];
}

/** Atom ids of signature members (named-port members carry `=values`). */
export function atomsOfMembers(members: string[]): string[] {
  return members.map(memberAtom);
}

/** The prefix node key of either family (IPv4: cidr4Key, IPv6: `6:…`). */
export function anyKey(c: AnyCidr): string {
  return isCidr6(c) ? cidr6Key(c) : cidr4Key(c);
}

export class ClassIndex {
  readonly pnodes = new Map<string, PNode>();
  private readonly lenCount = new Array<number>(33).fill(0);
  /** Prefix nodes of length ≥ 24 by their first 24 bits, and the shorter ones (for subtree scans). */
  private readonly nodesBy24 = new Map<number, Set<string>>();
  private readonly shortNodes = new Set<string>();
  /**
   * IPv4 prefix nodes per length below 32, by their address's top `len` bits (signatureOf looks
   * up a node's ancestors: a number key instead of a cidr4Key string per length per node; a /32
   * is nobody's ancestor, and 100,000 endpoint /32s would cost ~6 MB here).
   */
  private readonly byLen4: Map<number, PNode>[] = Array.from({ length: 33 }, () => new Map<number, PNode>());
  private readonly dirtyNodes = new Set<string>();
  /** The round of marks (Item.markGen): advanced by update(), which clears the marks. */
  private markGen = 1;
  /** IPv6 prefix nodes: per length, and all of them (few: scanned for subtrees). */
  private readonly lenCount6 = new Array<number>(129).fill(0);
  private readonly nodes6 = new Set<string>();

  readonly classes = new Map<number, ClassRec>();
  private readonly classBySig = new Map<string, number>();
  readonly classesByAtom = new Map<string, Set<ClassRec>>();
  /** Dense slots of live classes (internal only) for scratch arrays; freed slots are reused. */
  private readonly freeSlots: number[] = [];
  slotCount = 0;
  /** Scratch of accumulate() (replaced when slots outgrow them: read after the call). */
  acc1 = new Uint32Array(1024);
  acc2 = new Uint32Array(1024);
  private stamp = new Int32Array(1024);
  private stampGen = 0;
  /**
   * classesByAtom's sets as arrays, made on first use after update() and dropped by
   * endFlush() / dropAtomArrays(): accumulate() walks an atom's classes once per table that has
   * the atom (at 100,000 endpoints ~3 million class visits in a first build), and a Set's
   * iterator allocates a result object per element.
   */
  private readonly atomArrays = new Map<string, Int32Array>();
  /**
   * accumulateScratch()'s classes, as slots (grown to the slots in use, not shrunk): a full
   * build reads a class's id (slotId) and hashes (acc1/acc2) from typed arrays by slot, and its
   * record only when it folds (fewer cache misses than a field read per class per table).
   */
  slotScratch = new Int32Array(1024);
  /** Slot → the live class's id / record (0 / undefined: a free slot). */
  slotId = new Uint32Array(1024);
  readonly slotRec: (ClassRec | undefined)[] = [];
  /** Hash pairs of plain atoms (selector and CIDR atoms), set when a class with the atom appears. */
  private readonly atomHashes = new Map<string, [number, number]>();

  // This flush only (cleared by endFlush()).
  /** Members of the classes that lost their last node. */
  readonly removedMembers = new Map<number, string[]>();
  /** New class → the class its first address came from. */
  readonly classTemplate = new Map<number, number>();
  private readonly zeroRefClasses = new Set<number>();

  constructor(private readonly labels: LabelIndex) {}

  // ---------------------------------------------------------------- marks (from LabelIndex, Atoms)

  /**
   * Marks an item's prefix nodes (and the nodes under them) dirty, once per update(): an item
   * marked again before it (a first build adds every selector atom's members after the items
   * themselves were marked; an item in many atoms is marked by each) finds its nodes dirty
   * already, since marks are only cleared by update() and a node made meanwhile starts dirty.
   */
  markItemNodes(item: Item): void {
    if (item.markGen === this.markGen) return;
    item.markGen = this.markGen;
    for (const c of item.prefixes) this.markNode(c);
  }

  setItemPrefixes(item: Item, prefixes: AnyCidr[]): void {
    this.markItemNodes(item);
    // The new prefixes are marked below even if the old ones were marked in this round.
    item.markGen = 0;
    for (const c of item.prefixes) {
      const n = this.pnodes.get(anyKey(c));
      if (n === undefined) continue;
      n.items = fewDelete(n.items, item.key);
      this.maybeDropNode(n);
    }
    item.prefixes = prefixes.slice();
    for (const c of prefixes) {
      const n = this.nodeAt(c);
      n.items = fewAdd(n.items, item.key);
    }
    this.markItemNodes(item);
  }

  addCidrAtom(id: string, c: AnyCidr): void {
    const n = this.nodeAt(c);
    (n.cidrAtoms ??= new Set()).add(id);
    this.markNode(c);
  }

  removeCidrAtom(id: string, c: AnyCidr): void {
    const n = this.pnodes.get(anyKey(c));
    if (n !== undefined) {
      n.cidrAtoms?.delete(id);
      if (n.cidrAtoms?.size === 0) n.cidrAtoms = undefined;
      this.markNode(c);
      this.maybeDropNode(n);
    }
  }

  /** An atom went: its cached hash with it. */
  dropAtomHash(id: string): void {
    this.atomHashes.delete(id);
  }

  private nodeAt(c: AnyCidr): PNode {
    const k = anyKey(c);
    let n = this.pnodes.get(k);
    if (n === undefined && isCidr6(c)) {
      n = { key: k, cidr: c, cidrAtoms: undefined, items: undefined, classId: 0 };
      this.pnodes.set(k, n);
      this.lenCount6[c.len]!++;
      this.nodes6.add(k);
      this.dirtyNodes.add(k);
      return n;
    }
    if (n === undefined && !isCidr6(c)) {
      n = { key: k, cidr: c, cidrAtoms: undefined, items: undefined, classId: 0 };
      this.pnodes.set(k, n);
      this.lenCount[c.len]!++;
      if (c.len < 32) this.byLen4[c.len]!.set(top4(c.addr, c.len), n);
      if (c.len >= 24) addTo(this.nodesBy24, c.addr >>> 8, k);
      else this.shortNodes.add(k);
      this.dirtyNodes.add(k);
    }
    return n!;
  }

  private maybeDropNode(n: PNode): void {
    if (fewSize(n.items) > 0 || n.cidrAtoms !== undefined) return;
    // Keep it until recomputeNode releases its class; it is deleted there.
    this.dirtyNodes.add(n.key);
  }

  /** Marks a prefix and every prefix under it. */
  private markNode(c: AnyCidr): void {
    // dirtyNodes only ever holds keys of existing nodes (nodes go only in update(), which clears
    // it), so when it is as large as pnodes every node is dirty: nothing to walk. A first build
    // is all of it (every node is new), e.g. a short CIDR atom's walk over ~100,000 nodes.
    if (this.dirtyNodes.size === this.pnodes.size) return;
    if (isCidr6(c)) {
      this.markNode6(c);
      return;
    }
    const k = cidr4Key(c);
    if (this.pnodes.has(k)) this.dirtyNodes.add(k);
    if (c.len === 32) return;
    const visit = (nk: string): void => {
      const n = this.pnodes.get(nk)!;
      if (n.cidr.len > c.len && cidr4Covers(c, n.cidr as Cidr4)) this.dirtyNodes.add(nk);
    };
    for (const nk of this.shortNodes) visit(nk);
    if (c.len >= 24) {
      for (const nk of this.nodesBy24.get(c.addr >>> 8) ?? []) visit(nk);
      return;
    }
    const lo = c.addr >>> 8;
    const hi = lo + 2 ** (24 - c.len) - 1;
    if (hi - lo < this.nodesBy24.size) {
      for (let b = lo; b <= hi; b++) for (const nk of this.nodesBy24.get(b) ?? []) visit(nk);
    } else {
      for (const [b, set] of this.nodesBy24) if (b >= lo && b <= hi) for (const nk of set) visit(nk);
    }
  }

  private markNode6(c: Cidr6): void {
    const k = cidr6Key(c);
    if (this.pnodes.has(k)) this.dirtyNodes.add(k);
    if (c.len === 128) return;
    for (const nk of this.nodes6) {
      const n = this.pnodes.get(nk)!;
      if (n.cidr.len > c.len && cidr6Covers(c, n.cidr as Cidr6)) this.dirtyNodes.add(nk);
    }
  }

  // ---------------------------------------------------------------- flush

  /** Flush step 3: dirty prefix nodes get their classes; classes no prefix uses any more are dropped. */
  update(addedClasses: Set<number>, removedClasses: Set<number>, changedPrefixes: Set<string>): void {
    this.markGen++;
    this.atomArrays.clear();
    for (const nk of [...this.dirtyNodes].sort()) this.recomputeNode(nk, addedClasses, changedPrefixes);
    this.dirtyNodes.clear();
    for (const id of this.zeroRefClasses) {
      const c = this.classes.get(id);
      if (c === undefined || c.refs > 0) continue;
      this.classes.delete(id);
      this.classBySig.delete(c.sig);
      for (const a of atomsOfMembers(c.members)) removeFrom(this.classesByAtom, a, c);
      this.freeSlots.push(c.slot);
      this.slotRec[c.slot] = undefined;
      if (addedClasses.has(id)) addedClasses.delete(id);
      else removedClasses.add(id);
    }
  }

  /** Clears what update() recorded for this flush (templates, removed members, zero-ref classes). */
  endFlush(): void {
    this.atomArrays.clear();
    this.classTemplate.clear();
    this.removedMembers.clear();
    this.zeroRefClasses.clear();
  }

  private recomputeNode(nk: string, added: Set<number>, changed: Set<string>): void {
    const n = this.pnodes.get(nk);
    if (n === undefined) return;
    const empty = fewSize(n.items) === 0 && n.cidrAtoms === undefined;
    let newId = 0;
    let sig = '';
    if (!empty) {
      const members = this.signatureOf(n);
      sig = members.join('\n');
      if (sig !== '') {
        const existing = this.classBySig.get(sig);
        if (existing !== undefined) newId = existing;
        else {
          newId = hashId(sig, (id) => this.classes.has(id));
          let npHash: ClassRec['npHash'];
          for (const m of members) {
            if (m.startsWith('n:')) (npHash ??= new Map()).set(memberAtom(m), memberHash(m));
            else if (!this.atomHashes.has(m)) this.atomHashes.set(m, memberHash(m));
          }
          const slot = this.freeSlots.pop() ?? this.slotCount++;
          if (slot >= this.stamp.length) {
            const grow = <T extends Uint32Array | Int32Array>(a: T): T => {
              const b = new (a.constructor as new (n: number) => T)(a.length * 2);
              b.set(a);
              return b;
            };
            this.acc1 = grow(this.acc1);
            this.acc2 = grow(this.acc2);
            this.stamp = grow(this.stamp);
            this.slotId = grow(this.slotId);
          }
          const rec: ClassRec = { id: newId, sig, members, refs: 0, slot };
          this.slotId[slot] = newId;
          this.slotRec[slot] = rec;
          if (npHash !== undefined) rec.npHash = npHash;
          this.classes.set(newId, rec);
          this.zeroRefClasses.add(newId);
          this.classBySig.set(sig, newId);
          for (const a of atomsOfMembers(members)) addTo(this.classesByAtom, a, rec);
          added.add(newId);
        }
      }
    }
    if (newId !== n.classId) {
      if (newId !== 0 && n.classId !== 0 && added.has(newId) && !this.classTemplate.has(newId)) this.classTemplate.set(newId, n.classId);
      if (n.classId !== 0) {
        const oc = this.classes.get(n.classId)!;
        oc.refs--;
        if (oc.refs === 0) {
          this.removedMembers.set(oc.id, oc.members);
          this.zeroRefClasses.add(oc.id);
        }
      }
      if (newId !== 0) this.classes.get(newId)!.refs++;
      n.classId = newId;
      changed.add(nk);
    }
    if (empty) {
      this.pnodes.delete(nk);
      if (isCidr6(n.cidr)) {
        this.lenCount6[n.cidr.len]!--;
        this.nodes6.delete(nk);
      } else {
        this.lenCount[n.cidr.len]!--;
        if (n.cidr.len < 32) this.byLen4[n.cidr.len]!.delete(top4(n.cidr.addr, n.cidr.len));
        if (n.cidr.len >= 24) removeFrom(this.nodesBy24, n.cidr.addr >>> 8, nk);
        else this.shortNodes.delete(nk);
      }
      changed.add(nk);
    }
  }

  private signatureOf(n: PNode): string[] {
    const members = new Set<string>();
    const np = new Map<string, Set<string>>();
    const items = this.labels.items;
    const selectors = this.labels.selectors;
    const c6 = isCidr6(n.cidr) ? n.cidr : undefined;
    const c4 = c6 === undefined ? (n.cidr as Cidr4) : undefined;
    for (let len = 0; len <= n.cidr.len; len++) {
      if ((c6 ? this.lenCount6 : this.lenCount)[len] === 0) continue;
      const anc = len === n.cidr.len ? n
        : c6 ? this.pnodes.get(cidr6Key({ addr6: c6.addr6 & mask6(len), len })) : this.byLen4[len]!.get(top4(c4!.addr, len));
      if (anc === undefined) continue;
      if (anc.cidrAtoms !== undefined) for (const a of anc.cidrAtoms) members.add(a);
      for (const ik of fewValues(anc.items)) {
        const it = items.get(ik)!;
        for (const s of it.sels) {
          members.add(s);
          const atom = selectors.get(s)!;
          if (atom.np.size === 0) continue;
          for (const [name, npId] of atom.np) {
            for (const p of it.ports) {
              if (p.name !== name) continue;
              let set = np.get(npId);
              if (set === undefined) np.set(npId, (set = new Set()));
              set.add(`${p.protocol}:${p.port}`);
            }
          }
        }
      }
    }
    for (const [npId, vals] of np) members.add(`${npId}=${[...vals].sort().join(',')}`);
    return [...members].sort();
  }

  // ---------------------------------------------------------------- per-class arithmetic (hot)

  /**
   * Fingerprint of a class's members restricted to `atoms` (a table's): an order-free 64-bit
   * combination (XOR and sum) of member hashes, so it can be accumulated atom by atom; -1 when
   * the restriction is empty.
   */
  restrictedKey(atoms: ReadonlySet<string>, cls: ClassRec): number {
    let h1 = 0;
    let h2 = 0;
    let any = false;
    for (const m of cls.members) {
      // Named-port members (`n:…=values`) come from npHash below.
      if (!atoms.has(m) || m.startsWith('n:')) continue;
      const h = this.plainHash(m);
      any = true;
      h1 ^= h[0];
      h2 = (h2 + h[1]) >>> 0;
    }
    if (cls.npHash !== undefined) {
      for (const [atom, h] of cls.npHash) {
        if (!atoms.has(atom)) continue;
        any = true;
        h1 ^= h[0];
        h2 = (h2 + h[1]) >>> 0;
      }
    }
    return any ? sigNumber(h1 >>> 0, h2 >>> 0) : -1;
  }

  /** Whether a class has any of `atoms` (restrictedKey(atoms, cls) !== -1), stopping at the first hit. */
  hasAnyAtom(atoms: ReadonlySet<string>, cls: ClassRec): boolean {
    // The members against the (small, cached) atom set: probing each atom's class set instead
    // reads hash tables of up to tens of thousands of classes, a cache miss per probe.
    for (const m of cls.members) if (atoms.has(m)) return true;
    if (cls.npHash !== undefined) for (const a of cls.npHash.keys()) if (atoms.has(a)) return true;
    return false;
  }

  /**
   * restrictedKey against one atom set for many classes (the same numbers): a class with fewer
   * members than the set has atoms of any class is walked member by member, any other class atom
   * by atom (is it among the atom's classes?). For a small set (a changed policy's atoms) against
   * classes with many members.
   */
  restrictor(atoms: ReadonlySet<string>): (cls: ClassRec) => number {
    const sets: Set<ClassRec>[] = [];
    const ids: string[] = [];
    const plain: ([number, number] | undefined)[] = [];
    for (const a of atoms) {
      const set = this.classesByAtom.get(a);
      if (set === undefined) continue;
      sets.push(set);
      ids.push(a);
      plain.push(a.startsWith('n:') ? undefined : this.plainHash(a));
    }
    const n = sets.length;
    return (cls) => {
      if (cls.members.length <= n) return this.restrictedKey(atoms, cls);
      let h1 = 0;
      let h2 = 0;
      let any = false;
      for (let i = 0; i < n; i++) {
        if (!sets[i]!.has(cls)) continue;
        const h = plain[i] ?? cls.npHash!.get(ids[i]!)!;
        any = true;
        h1 ^= h[0];
        h2 = (h2 + h[1]) >>> 0;
      }
      return any ? sigNumber(h1 >>> 0, h2 >>> 0) : -1;
    };
  }

  /** Drops the arrays accumulate() made (classesByAtom is about to change, or the flush is over). */
  dropAtomArrays(): void {
    this.atomArrays.clear();
  }

  /** Hash pair of a plain atom's member string (the atom id): cached, else computed. */
  private plainHash(atom: string): [number, number] {
    return this.atomHashes.get(atom) ?? memberHash(atom);
  }

  /**
   * The classes with any of `atoms`, each with the fingerprint of its members restricted to them
   * accumulated in acc1/acc2 at its slot (sigNumber(acc1[slot], acc2[slot])), until the next call.
   */
  accumulate(atoms: Iterable<string>): ClassRec[] {
    const n = this.accumulateScratch(atoms);
    const touched: ClassRec[] = [];
    for (let j = 0; j < n; j++) touched.push(this.slotRec[this.slotScratch[j]!]!);
    return touched;
  }

  /**
   * accumulate() as slots (reused: a first build accumulates ~200 tables of ~17,000 classes
   * each): the classes' slots are slotScratch[0, n), n returned, until the next call.
   */
  accumulateScratch(atoms: Iterable<string>): number {
    const gen = ++this.stampGen;
    const { acc1, acc2, stamp } = this;
    if (this.slotScratch.length < this.slotCount) this.slotScratch = new Int32Array(this.stamp.length);
    const touched = this.slotScratch;
    let n = 0;
    for (const a of atoms) {
      let set = this.atomArrays.get(a);
      if (set === undefined) {
        const s = this.classesByAtom.get(a);
        if (s === undefined) continue;
        set = new Int32Array(s.size);
        let k = 0;
        for (const c of s) set[k++] = c.slot;
        this.atomArrays.set(a, set);
      }
      // Plain atoms hash the same in every class; named-port members carry per-class values.
      const shared = a.startsWith('n:') ? undefined : this.plainHash(a);
      for (let j = 0; j < set.length; j++) {
        const i = set[j]!;
        const h = shared ?? this.slotRec[i]!.npHash!.get(a)!;
        if (stamp[i] !== gen) {
          stamp[i] = gen;
          acc1[i] = h[0];
          acc2[i] = h[1];
          touched[n++] = i;
        } else {
          acc1[i] = acc1[i]! ^ h[0];
          acc2[i] = acc2[i]! + h[1];
        }
      }
    }
    return n;
  }
}
