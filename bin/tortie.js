#!/usr/bin/env node
'use strict';
// Thin launcher: the implementation is TypeScript compiled into dist/ by `npm run build`.
const path = require('node:path');
const dist = path.join(__dirname, '..', 'dist', 'src', 'cni');
// VERSION first, from a module that loads nothing else: runtimes ask it of every plugin of every
// network on every command, and loading the plugin costs far more than answering.
if (process.env.CNI_COMMAND === 'VERSION') {
  let stdin = '';
  try { stdin = require('node:fs').readFileSync(0, 'utf8'); } catch { /* no stdin: default version */ }
  try {
    process.stdout.write(require(path.join(dist, 'version.js')).versionAnswer(stdin));
    return;
  } catch { /* not built: reported below */ }
}
let entry;
try {
  entry = require(path.join(dist, 'plugin.js'));
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('cni/plugin')) {
    process.stderr.write('tortie: not built yet; run `npm run build` in ' + path.join(__dirname, '..') + '\n');
    process.exit(1);
  }
  throw e;
}
entry.main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write('tortie: ' + (err && err.stack ? err.stack : String(err)) + '\n');
  process.exitCode = 1;
});
