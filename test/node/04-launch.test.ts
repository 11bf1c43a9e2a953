// The agent's launch flags are the same on every path that starts it: the `#!` line of
// bin/tortie-node.js (run directly, or through npm's bin link) and agentCommand() (tortiectl node
// run, the lab, tests and benchmarks). Both forms start and run the real launcher.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { AGENT_BIN, AGENT_NODE_FLAGS, agentCommand } from '../../src/node/launch';

function run(cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => execFile(cmd[0]!, cmd.slice(1), { timeout: 30_000 }, (err, stdout, stderr) =>
    res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })));
}

t.test('the #! line carries AGENT_NODE_FLAGS', async (t) => {
  const first = readFileSync(AGENT_BIN, 'utf8').split('\n')[0];
  t.equal(first, `#!/usr/bin/env -S node ${AGENT_NODE_FLAGS.join(' ')}`);
});

t.test('the launcher runs directly and through agentCommand, with the flags in effect', async (t) => {
  const direct = await run([AGENT_BIN, 'version']);
  t.equal(direct.code, 0, direct.stderr);
  t.match(direct.stdout, /^tortie-node \d+\.\d+\.\d+\n$/);
  const cmd = agentCommand(['version'], ['--max-old-space-size=512']);
  t.same(cmd.slice(1, 1 + AGENT_NODE_FLAGS.length), AGENT_NODE_FLAGS, 'our flags first');
  t.equal(cmd[1 + AGENT_NODE_FLAGS.length], '--max-old-space-size=512', 'extra flags after ours');
  const via = await run(cmd);
  t.equal(via.code, 0, via.stderr);
  t.equal(via.stdout, direct.stdout);
  // V8 takes the young-generation limit from these flags: under an allocation load that grows
  // the new space to its maximum, a node started with them stops at 2 × the semi-space size
  // (V8's default here goes to 32 MiB).
  const semi = Number(/--max-semi-space-size=(\d+)/.exec(AGENT_NODE_FLAGS.join(' '))?.[1]);
  t.ok(semi > 0, 'a semi-space size is set');
  const load = 'const keep = []; let mx = 0; for (let r = 0; r < 40; r++) { const a = []; for (let i = 0; i < 2e5; i++) a.push({ i, s: [i] }); ' +
    'keep.push(a); if (keep.length > 3) keep.shift(); mx = Math.max(mx, require("v8").getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size); } ' +
    'process.stdout.write(String(mx))';
  const probe = await run([process.execPath, ...AGENT_NODE_FLAGS, '-e', load]);
  t.equal(probe.code, 0, probe.stderr);
  t.ok(Number(probe.stdout) > 0 && Number(probe.stdout) <= 2 * semi * 1048576, `new space peaked at ${Number(probe.stdout) / 1048576} MiB`);
});
