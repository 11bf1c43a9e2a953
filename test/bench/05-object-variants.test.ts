// TORTIE_BENCH_OBJECTS (bench/lib/objects.ts): the builds a per-packet bench alternates. Each
// entry is name=<directory holding the object>; anything else is refused with a message naming it.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { objectVariants } from '../../bench/lib/objects';

t.test('objectVariants', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'tt-objects-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const a = join(root, 'a'), b = join(root, 'b=x');
  for (const d of [a, b]) { mkdirSync(d); writeFileSync(join(d, 'tortie_wep.bpf.o'), ''); }

  t.same(objectVariants('tortie_wep.bpf.o', undefined), [{ name: 'tortie' }], 'unset: one variant from bpf/out');
  t.same(objectVariants('tortie_wep.bpf.o', ''), [{ name: 'tortie' }], 'empty: the same');
  t.same(objectVariants('tortie_wep.bpf.o', `main=${a},new=${b}`), [{ name: 'main', dir: a }, { name: 'new', dir: b }],
    'name=<dir> pairs in order; a directory may contain "="');
  t.throws(() => objectVariants('tortie_wep.bpf.o', `main${a}`), /"main\/.*" is not name=<directory with tortie_wep\.bpf\.o>/, 'no "=" is refused');
  t.throws(() => objectVariants('tortie_wep.bpf.o', `=${a}`), /is not name=/, 'an empty name is refused');
  t.throws(() => objectVariants('tortie_wep.bpf.o', 'main='), /is not name=/, 'an empty directory is refused');
  t.throws(() => objectVariants('tortie_uplink.bpf.o', `main=${a}`), /tortie_uplink\.bpf\.o does not exist/, 'a directory without the object is refused, naming the file');
  t.throws(() => objectVariants('tortie_wep.bpf.o', `x=${a},x=${b}`), /the name "x" is given twice/, 'a name given twice is refused');
});
