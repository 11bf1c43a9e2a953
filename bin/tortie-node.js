#!/usr/bin/env -S node --max-semi-space-size=8
'use strict';
// Thin launcher: the implementation is TypeScript compiled into dist/ by `npm run build`.
const path = require('node:path');
let entry;
try {
  entry = require(path.join(__dirname, '..', 'dist', 'src', 'node/main.js'));
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('node/main')) {
    process.stderr.write('tortie-node: not built yet; run `npm run build` in ' + path.join(__dirname, '..') + '\n');
    process.exit(1);
  }
  throw e;
}
entry.main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write('tortie-node: ' + (err && err.stack ? err.stack : String(err)) + '\n');
  process.exitCode = 1;
});
