import t from 'tap';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../../..');

t.test('every BPF entry program compiled into a BTF-carrying object', async (t) => {
  const srcs = readdirSync(resolve(root, 'bpf'), { recursive: true }).map(String).filter((f) => f.endsWith('.bpf.c'));
  t.ok(srcs.length > 0, 'there are BPF programs');
  for (const s of srcs) {
    const obj = resolve(root, 'bpf/out', s.split('/').pop()!.replace(/\.bpf\.c$/, '.bpf.o'));
    t.ok(existsSync(obj), `${s} → ${obj}`);
    const elf = readFileSync(obj);
    t.ok(elf.includes(Buffer.from('.BTF\0')), `${obj} has a .BTF section`);
  }
});

t.test('package.json pins the toolchain the README promises', async (t) => {
  const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'));
  t.equal(pkg.dependencies.typescript ?? pkg.devDependencies.typescript, '6.0.3');
  t.same(pkg.binary.napi_versions, [8]);
  for (const b of ['tortiectl', 'tortie-node', 'tortie', 'tortie-ipam']) t.ok(existsSync(resolve(root, pkg.bin[b])), `bin ${b}`);
});

t.test('no code comment or document cites an issue number (they say what, not which ticket)', async (t) => {
  const dirs = ['src', 'bpf', 'native', 'bench', 'test', 'docs', 'scripts', 'packaging', 'bin'];
  const files = ['README.md', ...dirs.flatMap((d) => readdirSync(resolve(root, d), { recursive: true }).map((f) => `${d}/${String(f)}`))]
    .filter((f) => /\.(ts|js|c|h|cc|md|sh|service)$/.test(f) && !f.startsWith('bench/results/'));
  t.ok(files.length > 100, `${files.length} files scanned`);
  // Built from parts so this file does not match itself.
  const cite = new RegExp(['\\bissues?', '\\s*#?\\d+\\b'].join(''), 'i');
  const hits = files.flatMap((f) => readFileSync(resolve(root, f), 'utf8').split('\n')
    .flatMap((line, i) => (cite.test(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])));
  t.same(hits, [], 'lines citing an issue number');
});
