#!/usr/bin/env node
'use strict';
// Thin launcher: the implementation is TypeScript compiled into dist/ by `npm run build`.
const path = require('node:path');
const dist = path.join(__dirname, '..', 'dist', 'src', 'cni');
let entry;
try {
  entry = require(path.join(dist, 'server.js'));
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('cni/server')) {
    process.stderr.write('tortie-cni-server: not built yet; run `npm run build` in ' + path.join(__dirname, '..') + '\n');
    process.exit(1);
  }
  throw e;
}
entry.main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write('tortie-cni-server: ' + (err && err.stack ? err.stack : String(err)) + '\n');
  process.exitCode = 1;
});
