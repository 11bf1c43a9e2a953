/**
 * ClassRowsMap and SigMemo (src/calc/class-map.ts) against Map models: random sets, replacements and
 * deletes, with ids chosen to collide in the hash table (same low bits, ids ≥ 2³¹; for the ordered
 * ClassRowsMap also ids crowding a few home slots, at the ends of the id range and past the range
 * the table was laid out for) so that probing, run shifts, the tail, growth and backward-shift
 * deletion are exercised; counts per rows key and the group list must match the model after every
 * operation, and forEach must visit the entries by increasing id (the map is ordered). ProjLog
 * (a table's projection changes of a flush) against the two Maps its operations are defined on.
 */
import t from 'tap';
import { ClassRowsMap, ProjLog, SigMemo } from '../../src/calc/class-map';
import { memberAtom, memberDiff } from '../../src/calc/classes';
import { rng } from '../../src/testbed/fuzz/random';

function check(m: ClassRowsMap, model: Map<number, string>, universe: number[]): string | undefined {
  if (m.size !== model.size) return `size ${m.size} vs ${model.size}`;
  for (const id of universe) {
    if (m.get(id) !== model.get(id)) return `get(${id}) ${m.get(id)} vs ${model.get(id)}`;
    if (m.has(id) !== model.has(id)) return `has(${id})`;
    // The index-based view: the entry's rows key index names its key and that key's count.
    const k = m.indexOfId(id);
    if ((k === -1) !== !model.has(id)) return `indexOfId(${id}) ${k}`;
    if (k !== -1 && (m.keyAt(k) !== model.get(id) || m.countAt(k) !== m.count(model.get(id)!) || m.indexOf(model.get(id)!) !== k)) return `keyAt/countAt(${k}) for ${id}`;
  }
  const seen = new Map<number, string>();
  let prev = 0;
  let unordered = false;
  m.forEach((id, rk) => {
    if (id <= prev) unordered = true;
    prev = id;
    seen.set(id, rk);
  });
  if (unordered) return 'forEach not by increasing id';
  if (JSON.stringify([...seen].sort((a, b) => a[0] - b[0])) !== JSON.stringify([...model].sort((a, b) => a[0] - b[0]))) return 'forEach differs';
  const counts = new Map<string, number>();
  for (const rk of model.values()) counts.set(rk, (counts.get(rk) ?? 0) + 1);
  for (const rk of ['a', 'b', 'c', 'd', 'e', 'f']) if (m.count(rk) !== (counts.get(rk) ?? 0)) return `count(${rk}) ${m.count(rk)} vs ${counts.get(rk) ?? 0}`;
  if (JSON.stringify(m.groups().sort()) !== JSON.stringify([...counts.keys()].sort())) return `groups ${m.groups()} vs ${[...counts.keys()]}`;
  return undefined;
}

t.test('behaves as a Map with per-key counts under random operations', async (t) => {
  const rand = rng(99);
  const problems: string[] = [];
  for (let run = 0; run < 60; run++) {
    // Colliding ids: same low 3–10 bits, some above 2^31.
    const universe: number[] = [];
    const n = 5 + Math.floor(rand() * 300);
    for (let i = 0; i < n; i++) {
      const base = rand() < 0.5 ? (i << 10) + 8 : 0x80000000 + (i << 12) + 8;
      universe.push(rand() < 0.3 ? base : 1 + Math.floor(rand() * 0xfffffffe));
    }
    const m = new ClassRowsMap();
    const model = new Map<number, string>();
    for (let op = 0; op < 2000; op++) {
      const id = universe[Math.floor(rand() * universe.length)]!;
      const r = rand();
      if (r < 0.4) {
        const rk = 'abcdef'[Math.floor(rand() * 6)]!;
        m.set(id, rk);
        model.set(id, rk);
      } else if (r < 0.5) {
        // set() by the index of a rows key some entry has (a full table build's path), and
        // reserve() (growing once instead of doubling) at random sizes.
        const rk = 'abcdef'[Math.floor(rand() * 6)]!;
        const k = m.indexOf(rk);
        if ((k !== -1) !== [...model.values()].includes(rk)) problems.push(`run ${run} op ${op}: indexOf(${rk}) ${k}`);
        if (k !== -1) {
          m.setIndexed(id, k);
          model.set(id, rk);
        }
        if (rand() < 0.1) m.reserve(Math.floor(rand() * 2 * universe.length));
      } else if (r < 0.95) {
        const got = m.delete(id);
        if (got !== model.get(id)) problems.push(`run ${run} op ${op}: delete(${id}) returned ${got}`);
        model.delete(id);
      } else if (r < 0.953) {
        m.clear();
        model.clear();
      } else {
        // setAs: the rows key of another class, if that one is present.
        const from = universe[Math.floor(rand() * universe.length)]!;
        const want = model.get(from);
        const got = m.setAs(id, from);
        if (got !== want) problems.push(`run ${run} op ${op}: setAs(${id}, ${from}) returned ${got}, not ${want}`);
        if (want !== undefined) model.set(id, want);
      }
      if (op % 50 === 0 || op > 1990) {
        const p = check(m, model, universe);
        if (p !== undefined) problems.push(`run ${run} op ${op}: ${p}`);
      }
    }
  }
  t.same(problems.slice(0, 5), []);
});

t.test('clone is an independent copy; pairsSorted lists mapped entries by id', async (t) => {
  const rand = rng(7);
  const problems: string[] = [];
  for (let run = 0; run < 40; run++) {
    const universe: number[] = [];
    for (let i = 0; i < 200; i++) universe.push(rand() < 0.3 ? 0x80000000 + (i << 11) + 3 : 1 + Math.floor(rand() * 0xfffffffe));
    const a = new ClassRowsMap();
    const ma = new Map<number, string>();
    const op = (m: ClassRowsMap, model: Map<number, string>): void => {
      const id = universe[Math.floor(rand() * universe.length)]!;
      if (rand() < 0.6) {
        const rk = 'abcdef'[Math.floor(rand() * 6)]!;
        m.set(id, rk);
        model.set(id, rk);
      } else {
        m.delete(id);
        model.delete(id);
      }
    };
    const n1 = Math.floor(rand() * 400);
    for (let i = 0; i < n1; i++) op(a, ma);
    const b = a.clone();
    const mb = new Map(ma);
    const p0 = check(b, mb, universe);
    if (p0 !== undefined) problems.push(`run ${run} right after clone: ${p0}`);
    // Diverge both (including growth past the copied capacity), then each must match its model.
    for (let i = 0; i < 300; i++) {
      op(a, ma);
      op(b, mb);
    }
    const pa = check(a, ma, universe);
    const pb = check(b, mb, universe);
    if (pa !== undefined) problems.push(`run ${run} original: ${pa}`);
    if (pb !== undefined) problems.push(`run ${run} clone: ${pb}`);
    // pairsSorted: rows key → value (0 leaves the entry out), entries sorted by id.
    const value = (rk: string): number => (rk === 'a' ? 0 : rk === 'f' ? 0xffffffff : rk.charCodeAt(0));
    const pairs = b.pairsSorted(value);
    const got: number[][] = [];
    for (let i = 0; i < pairs.length; i += 2) got.push([pairs[i]!, pairs[i + 1]!]);
    const want = [...mb].filter(([, rk]) => value(rk) !== 0).map(([id, rk]) => [id, value(rk)]).sort((x, y) => x[0]! - y[0]!);
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`run ${run}: pairsSorted ${JSON.stringify(got.slice(0, 3))}… vs ${JSON.stringify(want.slice(0, 3))}…`);
  }
  t.same(problems.slice(0, 5), []);
  const m = new ClassRowsMap();
  m.set(9, 'x');
  t.throws(() => m.pairsSorted(() => 2 ** 32), RangeError, 'a value past 2^32 - 1 is refused');
  t.throws(() => m.pairsSorted(() => 1.5), RangeError, 'and a fraction');
  t.same([...m.pairsSorted(() => 0)], [], 'value 0 is left out');
});

t.test('tags: set per present rows key, -1 for a key interned since (also at a freed index), copied by clone', async (t) => {
  const rand = rng(31);
  const problems: string[] = [];
  for (let run = 0; run < 40; run++) {
    const universe: number[] = [];
    for (let i = 0; i < 60; i++) universe.push(1 + Math.floor(rand() * 0xfffffffe));
    let m = new ClassRowsMap();
    const model = new Map<number, string>();
    // rows key → tag, for the keys present when tags were last set and present ever since.
    let tagModel = new Map<string, number>();
    const present = (rk: string): boolean => [...model.values()].includes(rk);
    for (let op = 0; op < 1500; op++) {
      const id = universe[Math.floor(rand() * universe.length)]!;
      const r = rand();
      if (r < 0.45) {
        const rk = 'abcdefgh'[Math.floor(rand() * 8)]!;
        m.set(id, rk);
        model.set(id, rk);
      } else if (r < 0.55) {
        const from = universe[Math.floor(rand() * universe.length)]!;
        const k = m.setAsIndex(id, from);
        const want = model.get(from);
        if ((k === -1) !== (want === undefined) || (k !== -1 && m.keyAt(k) !== want)) problems.push(`run ${run} op ${op}: setAsIndex(${id}, ${from}) ${k}`);
        if (want !== undefined) model.set(id, want);
      } else if (r < 0.9) {
        m.delete(id);
        model.delete(id);
      } else if (r < 0.97) {
        const salt = Math.floor(rand() * 100);
        m.setTags((rk) => rk.charCodeAt(0) + salt);
        tagModel = new Map([...new Set(model.values())].map((rk) => [rk, rk.charCodeAt(0) + salt]));
      } else {
        m = m.clone();
      }
      for (const rk of [...tagModel.keys()]) if (!present(rk)) tagModel.delete(rk);
      for (const rk of new Set(model.values())) {
        const got = m.tagAt(m.indexOf(rk));
        const want = tagModel.get(rk) ?? -1;
        if (got !== want) problems.push(`run ${run} op ${op}: tag of ${rk} ${got}, want ${want}`);
      }
    }
  }
  t.same(problems.slice(0, 5), []);
});

t.test('ordered layout under skewed ids: crowded home slots, both ends of the range, ids past the laid-out range', async (t) => {
  const rand = rng(23);
  const problems: string[] = [];
  // Each kind stresses the ordered table differently: most ids in one narrow band (long runs
  // that shift on insertion and delete), ids at 1 and 2^32 - 1 (the first home slot and the
  // tail), small ids first then large ones (homes laid out for a range the later ids are past,
  // until the next growth), and a geometric spread (many tiny ids, a few huge).
  const kinds: Record<string, (i: number) => number> = {
    band: () => (rand() < 0.9 ? 0x12345000 + Math.floor(rand() * 0x800) : 1 + Math.floor(rand() * 0xfffffffe)),
    ends: () => (rand() < 0.5 ? 1 + Math.floor(rand() * 64) : 0xffffffff - Math.floor(rand() * 64)),
    rising: (i) => Math.min(0xffffffff, 1 + i * 9973 + Math.floor(rand() * 50)),
    geometric: () => Math.max(1, Math.min(0xffffffff, Math.floor(2 ** (rand() * 32)))),
  };
  for (const [kind, gen] of Object.entries(kinds)) {
    for (let run = 0; run < 8; run++) {
      const universe: number[] = [];
      for (let i = 0; i < 600; i++) universe.push(gen(i));
      const m = new ClassRowsMap();
      const model = new Map<number, string>();
      for (let op = 0; op < 3000; op++) {
        // Mostly in universe order (rising ids, growth on the way), then random.
        const id = op < 600 ? universe[op]! : universe[Math.floor(rand() * universe.length)]!;
        const r = rand();
        if (op < 600 || r < 0.55) {
          const rk = 'abcdef'[Math.floor(rand() * 6)]!;
          m.set(id, rk);
          model.set(id, rk);
        } else {
          const got = m.delete(id);
          if (got !== model.get(id)) problems.push(`${kind} run ${run} op ${op}: delete(${id}) returned ${got}`);
          model.delete(id);
        }
        if (op % 100 === 0 || op === 2999) {
          const p = check(m, model, universe);
          if (p !== undefined) problems.push(`${kind} run ${run} op ${op}: ${p}`);
        }
      }
      const c = m.clone();
      const p = check(c, model, universe);
      if (p !== undefined) problems.push(`${kind} run ${run} clone: ${p}`);
    }
  }
  t.same(problems.slice(0, 5), []);
});

t.test('pairsSorted on large maps: ids spread evenly, clustered and mixed come out sorted', async (t) => {
  const rand = rng(11);
  const problems: string[] = [];
  // Spread: uniform random ids; clustered: every id in a narrow band (homes spread over the band
  // when the table grows); mixed: uniform ids with 1 % of them in one narrow band (a long run).
  const kinds = {
    spread: (): number => 1 + Math.floor(rand() * 0xfffffffe),
    clustered: (): number => 0x40000000 + Math.floor(rand() * 0x100000),
    mixed: (): number => (rand() < 0.01 ? 0x7fff0000 + Math.floor(rand() * 0x1000) : 1 + Math.floor(rand() * 0xfffffffe)),
  };
  for (const [kind, gen] of Object.entries(kinds)) {
    for (const n of [1, 2, 3, 100, 5_000, 70_000]) {
      const m = new ClassRowsMap();
      const model = new Map<number, string>();
      while (model.size < n) {
        const id = gen();
        const rk = 'abc'[Math.floor(rand() * 3)]!;
        m.set(id, rk);
        model.set(id, rk);
      }
      const value = (rk: string): number => (rk === 'a' ? 0 : rk.charCodeAt(0));
      const pairs = m.pairsSorted(value);
      const want = [...model].filter(([, rk]) => value(rk) !== 0).sort((x, y) => x[0] - y[0]);
      let bad = pairs.length !== 2 * want.length ? `${pairs.length / 2} entries, want ${want.length}` : undefined;
      for (let i = 0; bad === undefined && i < want.length; i++) {
        if (pairs[2 * i] !== want[i]![0] || pairs[2 * i + 1] !== value(want[i]![1])) bad = `entry ${i}: [${pairs[2 * i]}, ${pairs[2 * i + 1]}], want [${want[i]![0]}, ${value(want[i]![1])}]`;
      }
      if (bad !== undefined) problems.push(`${kind} n=${n}: ${bad}`);
    }
  }
  t.same(problems, []);
});

t.test('rejects ids outside [1, 2^32-1]', async (t) => {
  const m = new ClassRowsMap();
  t.throws(() => m.set(0, 'a'), RangeError);
  t.throws(() => m.set(2 ** 32, 'a'), RangeError);
  t.throws(() => m.set(1.5, 'a'), RangeError);
  m.set(2 ** 32 - 1, 'a');
  t.equal(m.get(2 ** 32 - 1), 'a');
  t.equal(m.delete(5), undefined);
});

t.test('SigMemo behaves as a Map for 53-bit keys, colliding low bits included', async (t) => {
  const rand = rng(5);
  const problems: string[] = [];
  for (let run = 0; run < 40; run++) {
    const universe: number[] = [0, 2 ** 53 - 2];
    for (let i = 0; i < 400; i++) {
      // Same low 32 bits for many keys (only the high bits differ), and random ones.
      universe.push(rand() < 0.5 ? Math.floor(rand() * 2 ** 21) * 2 ** 32 + 12345 : Math.floor(rand() * (2 ** 53 - 1)));
    }
    const m = new SigMemo();
    const model = new Map<number, string>();
    for (let op = 0; op < 3000; op++) {
      const k = universe[Math.floor(rand() * universe.length)]!;
      if (rand() < 0.995) {
        const v = `rows${Math.floor(rand() * 20)}`;
        m.set(k, v);
        model.set(k, v);
      } else {
        m.clear();
        model.clear();
      }
    }
    if (m.size !== model.size) problems.push(`run ${run}: size ${m.size} vs ${model.size}`);
    for (const k of universe) if (m.get(k) !== model.get(k)) problems.push(`run ${run}: get(${k}) ${m.get(k)} vs ${model.get(k)}`);
    // valueIndexOf: -1 exactly for absent keys, one index per distinct value, below valueCount.
    const idxOfValue = new Map<string, number>();
    for (const k of universe) {
      const i = m.valueIndexOf(k);
      const v = model.get(k);
      if ((i === -1) !== (v === undefined)) problems.push(`run ${run}: valueIndexOf(${k}) ${i} for ${v}`);
      if (v === undefined) continue;
      if (i >= m.valueCount) problems.push(`run ${run}: valueIndexOf(${k}) ${i} >= valueCount ${m.valueCount}`);
      const seen = idxOfValue.get(v);
      if (seen === undefined) idxOfValue.set(v, i);
      else if (seen !== i) problems.push(`run ${run}: value ${v} at indices ${seen} and ${i}`);
    }
    if (new Set(idxOfValue.values()).size !== idxOfValue.size) problems.push(`run ${run}: two values share an index`);
  }
  t.same(problems.slice(0, 5), []);
  const m = new SigMemo();
  t.throws(() => m.set(-1, 'x'), RangeError);
  t.throws(() => m.set(2 ** 53, 'x'), RangeError);
  t.equal(m.get(7), undefined);
});

t.test('memberDiff (a merge of sorted member lists) gives the atoms a map-based diff gives', async (t) => {
  const rand = rng(20261207);
  // Atom ids with characters on both sides of '=' (the named-port separator) in sort order.
  const chars = ['!', '/', '0', '<', '>', 'A', 'a', '~'];
  const atomId = (): string => {
    let s = rand() < 0.4 ? 'n:' : rand() < 0.5 ? 's:' : 'c:';
    const n = 1 + Math.floor(rand() * 3);
    for (let i = 0; i < n; i++) s += chars[Math.floor(rand() * chars.length)];
    return s;
  };
  const signature = (atoms: string[]): string[] => {
    const out = new Set<string>();
    for (const a of atoms) {
      if (rand() < 0.5) continue;
      out.add(a.startsWith('n:') ? `${a}=${rand() < 0.5 ? '6:80' : '6:80,17:53'}` : a);
    }
    return [...out].sort();
  };
  const reference = (a: string[], b: string[]): { changed: string[]; gained: string[] } => {
    const am = new Map(a.map((m) => [memberAtom(m), m]));
    const bm = new Map(b.map((m) => [memberAtom(m), m]));
    const changed: string[] = [];
    const gained: string[] = [];
    for (const [k, m] of bm) {
      const o = am.get(k);
      if (o === undefined) gained.push(k);
      if (o !== m) changed.push(k);
    }
    for (const k of am.keys()) if (!bm.has(k)) changed.push(k);
    return { changed: changed.sort(), gained: gained.sort() };
  };
  const changed: string[] = [];
  const gained: string[] = [];
  let bad = 0;
  let nonEmpty = 0;
  for (let run = 0; run < 3000; run++) {
    const atoms = [...new Set(Array.from({ length: 1 + Math.floor(rand() * 12) }, atomId))];
    const a = signature(atoms);
    const b = signature(atoms);
    memberDiff(a, b, changed, gained);
    const want = reference(a, b);
    if (changed.length > 0) nonEmpty++;
    if (JSON.stringify([[...changed].sort(), [...gained].sort()]) !== JSON.stringify([want.changed, want.gained])) {
      if (bad++ < 3) t.fail(`memberDiff(${JSON.stringify(a)}, ${JSON.stringify(b)}): ${JSON.stringify([changed, gained])} instead of ${JSON.stringify(want)}`);
    }
  }
  t.equal(bad, 0, 'every random pair diffs as the map-based reference');
  t.ok(nonEmpty > 1000, `most pairs differ (${nonEmpty} of 3000)`);
});

t.test('ProjLog resolves to what its operations do to two Maps (unique ids: the sorted path; repeated: the replay)', async (t) => {
  const rand = rng(41);
  const problems: string[] = [];
  for (let run = 0; run < 300; run++) {
    // Some runs touch each id once (the sort path), others repeat ids (cancellations, overwrites).
    const repeat = run % 3 === 0;
    const universe: number[] = [];
    const n = 1 + Math.floor(rand() * (run % 10 === 0 ? 3000 : 80));
    for (let i = 0; i < n; i++) universe.push(rand() < 0.2 ? 0xffffffff - i : 1 + Math.floor(rand() * 0xfffffffe));
    const log = new ProjLog();
    const add = new Map<number, number>();
    const del = new Map<number, number>();
    const ops = repeat ? 2 * n : n;
    for (let op = 0; op < ops; op++) {
      const id = repeat ? universe[Math.floor(rand() * n)]! : universe[op]!;
      const lc = rand() < 0.1 ? 0xfffff + Math.floor(rand() * 1000) : 1 + Math.floor(rand() * 50);
      const r = rand();
      if (r < 0.35) {
        log.enter(id, lc);
        if (!del.delete(id)) add.set(id, lc);
      } else if (r < 0.7) {
        log.leave(id, lc);
        if (!add.delete(id)) del.set(id, lc);
      } else if (r < 0.85) {
        log.setAdd(id, lc);
        add.set(id, lc);
      } else {
        log.setDel(id, lc);
        del.set(id, lc);
      }
    }
    if (log.size !== ops) problems.push(`run ${run}: size ${log.size}`);
    const got = log.resolve();
    const wantAdd = [...add].sort((a, b) => a[0] - b[0]);
    const wantDel = [...del.keys()].sort((a, b) => a - b);
    const gotAdd = Array.from(got.addIds, (id, i) => [id, got.addLcs[i]!]);
    if (JSON.stringify(gotAdd) !== JSON.stringify(wantAdd)) problems.push(`run ${run}: adds ${JSON.stringify(gotAdd.slice(0, 3))}… vs ${JSON.stringify(wantAdd.slice(0, 3))}…`);
    if (JSON.stringify(Array.from(got.delIds)) !== JSON.stringify(wantDel)) problems.push(`run ${run}: dels differ`);
    log.clear();
    const empty = log.resolve();
    if (log.size !== 0 || empty.addIds.length + empty.delIds.length !== 0) problems.push(`run ${run}: not empty after clear`);
  }
  t.same(problems.slice(0, 5), []);
});
