'use strict';
// The one launcher behind every bin/ command: the implementation is TypeScript compiled into
// dist/ by `npm run build`; this loads its module, says "not built yet" when dist/ is missing,
// and turns main()'s promise into the exit code.
const path = require('node:path');

const root = path.join(__dirname, '..');

/**
 * name: the command's name in messages; mod: the module under dist/src, without `.js`.
 * opts.cniVersion: answer CNI VERSION first, from a module that loads nothing else (runtimes ask
 * it of every plugin of every network on every command; loading the plugin costs far more).
 * opts.exit: process.exit(code) when main() settles (the lab: its topology's handles would keep
 * the process alive) instead of setting process.exitCode.
 */
function launch(name, mod, opts = {}) {
  const dist = path.join(root, 'dist', 'src');
  if (opts.cniVersion && process.env.CNI_COMMAND === 'VERSION') {
    let stdin = '';
    try { stdin = require('node:fs').readFileSync(0, 'utf8'); } catch { /* no stdin: default version */ }
    try {
      process.stdout.write(require(path.join(dist, 'cni', 'version.js')).versionAnswer(stdin));
      return;
    } catch { /* not built: reported below */ }
  }
  let entry;
  try {
    entry = require(path.join(dist, `${mod}.js`));
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(mod)) {
      process.stderr.write(`${name}: not built yet; run \`npm run build\` in ${root}\n`);
      process.exit(1);
    }
    throw e;
  }
  const done = (code) => { if (opts.exit) process.exit(code); else process.exitCode = code; };
  entry.main(process.argv.slice(2)).then(done, (err) => {
    process.stderr.write(`${name}: ${err && err.stack ? err.stack : String(err)}\n`);
    done(1);
  });
}

module.exports = { launch };
