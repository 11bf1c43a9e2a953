import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { checkBoundaries, lateralCycle } from './helpers/boundaries';

const root = resolve(__dirname, '../../..');

t.test('the tree respects the import boundaries (layers, addon, src ↛ test, bench ↛ test)', async (t) => {
  const v = checkBoundaries(root);
  t.same(v, [], v.join('\n'));
  t.equal(lateralCycle(), undefined, 'imports inside a tier form no cycle');
});

t.test('each kind of violation is caught (synthetic tree)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-boundaries-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const put = (p: string, text: string) => { mkdirSync(dirname(join(dir, p)), { recursive: true }); writeFileSync(join(dir, p), text); };
  put('src/calc/graph.ts', 'export const x = 1;\n');
  put('src/model/ok.ts', "import { s } from '../selector/parse';\nexport const y = s;\n");
  put('src/selector/parse.ts', 'export const s = 1;\n');
  put('src/datastore/pkg.ts', "export const g = require(require.resolve('yaml', { paths: ['/'] }));\n");
  t.same(checkBoundaries(dir), [], 'a clean tree passes');

  put('src/model/up.ts', "import type { x } from '../calc/graph';\nexport type Y = typeof x;\n");
  put('src/ipam/side.ts', "export { x } from '../calc/graph';\n");
  put('src/node/t.ts', "import { h } from '../../test/util/helpers/h';\nexport const z = h;\n");
  put('src/cli/tap.ts', "import t from 'tap';\nexport default t;\n");
  put('src/node/addon.ts', "const f = process.env.X!;\nexport const a = require(f);\nexport const b = require('./x.node');\n");
  put('bench/lib/dl.ts', "process.dlopen({ exports: {} } as never, '/x.node');\n");
  put('bench/foo.ts', "import { h } from '../test/util/helpers/h';\nexport const w = h;\n");
  put('src/newarea/a.ts', 'export {};\n');
  put('src/util/netns.ts', "export { run } from './exec';\n");
  put('src/util/exec.ts', 'export const run = 1;\n');
  put('src/dataplane/ip.ts', "import { run } from '../util/netns';\nexport const r = run;\n");
  put('src/bgp/tb.ts', "import type { X } from '../testbed/layouts';\nexport type Y = X;\n");
  put('src/lab/lab.ts', "import { run } from '../util/netns';\nexport const l = run;\n");
  const v = checkBoundaries(dir);
  const has = (re: RegExp, what: string) => t.ok(v.some((l) => re.test(l)), `${what}\n${v.join('\n')}`);
  has(/^src\/model\/up\.ts:1: .*upward from domain layer src\/calc/, 'base importing domain (type-only) is caught');
  has(/^src\/ipam\/side\.ts:1: .*sideways from domain layer src\/calc/, 'an unlisted sideways import is caught');
  has(/^src\/node\/t\.ts:1: .*does not import test\//, 'src importing test/ is caught');
  has(/^src\/cli\/tap\.ts:1: .*test runner/, 'src importing tap is caught');
  has(/^src\/node\/addon\.ts:2: loads native code \(require\(f\)\)/, 'a computed require outside src/dataplane is caught');
  has(/^src\/node\/addon\.ts:3: loads native code \(\.\/x\.node\)/, 'a .node require outside src/dataplane is caught');
  has(/^bench\/lib\/dl\.ts:1: loads native code \(process\.dlopen\)/, 'process.dlopen in bench is caught');
  has(/^bench\/foo\.ts:1: .*bench\/ does not import test\//, 'bench importing a test helper is caught');
  has(/^src\/newarea\/a\.ts: src\/newarea is not placed in a tier/, 'an unplaced area is caught');
  has(/^src\/dataplane\/ip\.ts:1: .*does not import the test harness \(src\/util\/netns\)/, 'production importing the namespace harness is caught');
  has(/^src\/bgp\/tb\.ts:1: .*does not import the test harness \(src\/testbed\/layouts\)/, 'production importing the testbed is caught');
  t.equal(v.length, 11, 'nothing else is reported (the lab may use the harness)');
});
