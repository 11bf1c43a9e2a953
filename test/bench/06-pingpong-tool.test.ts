// The IPv6 ping-pong's tool (bench/lib/tools.ts, pingPongTool): bench/tools/udp-pingpong.c built
// by the bench; python3 when no compiler builds it or when TORTIE_BENCH_PINGPONG=python3 asks.
// Each case in a child process (the choice is made once per process). The built client's output
// is the python3 client's, parsed by the same parsePingPong.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parsePingPong } from '../../bench/lib/tools';

const TOOLS = resolve(__dirname, '../../bench/lib/tools.js');
const choose = (env: NodeJS.ProcessEnv): { name: string; path?: string; why?: string } =>
  JSON.parse(execFileSync(process.execPath, ['-e', `const x = require(${JSON.stringify(TOOLS)}).pingPongTool(); console.log(JSON.stringify(x))`],
    { env, encoding: 'utf8' }));

t.test('pingPongTool', async (t) => {
  const built = choose({ PATH: process.env.PATH });
  t.equal(built.name, 'udp-pingpong', `built with the system's compiler (${built.why ?? ''})`);
  t.equal(built.why, undefined, 'no fallback reason');
  const none = choose({ PATH: '/nonexistent' });
  t.equal(none.name, 'python3', 'no compiler on PATH: python3');
  t.match(none.why, /could not build .*bench\/tools\/udp-pingpong\.c/, 'and why');
  const asked = choose({ PATH: process.env.PATH, TORTIE_BENCH_PINGPONG: 'python3' });
  t.same(asked, { name: 'python3', why: 'TORTIE_BENCH_PINGPONG=python3' }, 'python3 when asked for');
});

t.test('udp-pingpong: usage, and a bad address refused', async (t) => {
  // The children's binaries went with their temp dirs: build one here (the source, not dist/).
  const src = resolve(__dirname, '../../../bench/tools/udp-pingpong.c');
  const out = join(tmpdir(), `tt-udp-pingpong-${process.pid}`);
  execFileSync('cc', ['-O2', '-o', out, src]);
  t.teardown(() => rmSync(out, { force: true }));
  const usage = spawnSync(out, [], { encoding: 'utf8' });
  t.equal(usage.status, 2, 'no arguments: exit 2');
  t.match(usage.stderr, /usage: udp-pingpong server/, 'with its usage');
  const bad = spawnSync(out, ['client', 'not-an-address', '1', '0.1', '64'], { encoding: 'utf8' });
  t.equal(bad.status, 2, 'a bad address: exit 2');
  t.match(bad.stderr, /bad address not-an-address/, 'named');
  t.same(parsePingPong('lost 0\n2000 4000\n').latencies, [1, 2], 'its output format: round trips in ns, halved to µs');
});
