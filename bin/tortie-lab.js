#!/usr/bin/env node
'use strict';
// The lab (the README's main job). Implementation: src/lab, compiled into dist/ by `npm run build`.
const path = require('node:path');
require(path.join(__dirname, '..', 'dist', 'src', 'lab', 'main.js')).main(process.argv.slice(2)).then((code) => {
  process.exit(code);
}, (err) => {
  process.stderr.write('tortie-lab: ' + (err && err.stack ? err.stack : String(err)) + '\n');
  process.exit(1);
});
