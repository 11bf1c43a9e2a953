#!/usr/bin/env node
// Build pipeline: BPF objects (clang -target bpf), the N-API addon (cmake-js), TypeScript (tsc).
// Usage: node scripts/build.js [bpf|native|ts]...   (no argument = all three, in that order)
// Incremental: a BPF object is rebuilt when its source or any header under bpf/ is newer;
// cmake and tsc (--incremental) track their own inputs.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const bpfOut = path.join(root, 'bpf', 'out');

function run(cmd, args, opts = {}) {
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
}

function walk(dir, pred, acc = []) {
  if (!fs.existsSync(dir)) return acc;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (p !== bpfOut) walk(p, pred, acc); }
    else if (pred(p)) acc.push(p);
  }
  return acc;
}

function mtime(p) { try { return fs.statSync(p).mtimeMs; } catch { return 0; } }

function buildBpf() {
  const bpfDir = path.join(root, 'bpf');
  const sources = walk(bpfDir, (p) => p.endsWith('.bpf.c'));
  const headers = walk(bpfDir, (p) => p.endsWith('.h'));
  const newestHeader = Math.max(0, ...headers.map(mtime));
  fs.mkdirSync(bpfOut, { recursive: true });
  let built = 0;
  for (const src of sources) {
    const out = path.join(bpfOut, path.basename(src).replace(/\.bpf\.c$/, '.bpf.o'));
    if (mtime(out) >= Math.max(mtime(src), newestHeader)) continue;
    run('clang', ['-target', 'bpf', '-O2', '-g', '-Wall', '-Werror',
      '-I/usr/include/x86_64-linux-gnu', `-I${bpfDir}`, '-c', src, '-o', out]);
    built++;
  }
  console.log(`bpf: ${built} of ${sources.length} object(s) rebuilt in bpf/out/`);
}

function buildNative() {
  run(process.execPath, [require.resolve('cmake-js/bin/cmake-js', { paths: [root] }), 'compile', '--log-level', 'warn']);
}

function buildTs() {
  console.log('ts: compiling src/, test/ and bench/ into dist/ (tsc --incremental; ~25 s from scratch)');
  const started = Date.now();
  run(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', 'tsconfig.json']);
  // tsc never deletes: drop compiled files whose source is gone, so tap does not run stale tests.
  let removed = 0;
  for (const top of ['src', 'test', 'bench']) {
    for (const f of walk(path.join(root, 'dist', top), (p) => /\.js(\.map)?$/.test(p))) {
      const rel = path.relative(path.join(root, 'dist'), f).replace(/\.js(\.map)?$/, '.ts');
      if (!fs.existsSync(path.join(root, rel))) { fs.rmSync(f); removed++; }
    }
  }
  console.log(`ts: dist/ up to date in ${((Date.now() - started) / 1000).toFixed(1)} s${removed ? ` (${removed} stale file(s) removed)` : ''}`);
}

const steps = { bpf: buildBpf, native: buildNative, ts: buildTs };
const wanted = process.argv.slice(2);
for (const w of wanted) if (!steps[w]) { console.error(`build: unknown step "${w}" (expected bpf, native or ts)`); process.exit(2); }
try {
  for (const name of wanted.length ? wanted : ['bpf', 'native', 'ts']) steps[name]();
} catch (e) {
  console.error(`build failed: ${e.message}`);
  process.exit(1);
}
