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
