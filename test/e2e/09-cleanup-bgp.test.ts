// `tortie-node cleanup` after BGP mode: the agent leaves its bird running on purpose (graceful
// restart) and bird's `persist` keeps its routes, so cleanup must stop that bird (found by the pid
// file in `<run dir>/<node>.bird/`), flush the private learned-routes table and bird's blackholes
// in the main table, and remove the directory — while routes of other protocols stay, and bird
// routes are left alone when no tortie bird directory is there (someone else's bird).
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, run } from '../../src/util/netns';
import { AGENT_BIN } from '../../src/node/launch';
import { DEFAULT_LEARNED_TABLE } from '../../src/bgp/render';
import { childEnv, eventually, pinRoot as newPinRoot } from '../../src/testbed';

t.test('cleanup stops the agent\'s bird and removes its routes, and only those', async (t) => {
  const topo = Topology.create('e2ecleanbgp');
  const runDir = mkdtempSync(join(tmpdir(), 'tortie-cleanbgp-'));
  topo.onDestroy(() => rmSync(runDir, { recursive: true, force: true }));
  t.teardown(() => topo.destroy());
  const ns = await topo.addNetns('node');
  await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
  const dir = join(runDir, 'node-a.bird');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'bird.conf');
  writeFileSync(conf, [
    'router id 198.18.0.1;',
    'protocol device {}',
    'protocol static own_blocks { ipv4; route 192.168.7.0/26 blackhole; }',
    'protocol kernel { ipv4 { export all; }; persist; learn off; }',
    '',
  ].join('\n'));
  const bird = ns.spawn(['bird', '-f', '-c', conf, '-s', join(dir, 'bird.ctl'), '-P', join(dir, 'bird.pid')], { netOnly: true, stdio: 'ignore' });
  t.ok(await eventually(async () => (await ns.exec(['ip', '-4', 'route', 'show', 'proto', 'bird'])).stdout.includes('blackhole 192.168.7.0/26'), true, 30_000),
    'bird exported its blackhole to the main table');
  t.ok(await eventually(async () => existsSync(join(dir, 'bird.pid')), true, 30_000), 'bird wrote its pid file');
  await ns.exec(['ip', 'route', 'add', '192.168.8.0/26', 'dev', 'lo', 'table', String(DEFAULT_LEARNED_TABLE), 'proto', 'bird']);
  await ns.exec(['ip', 'route', 'add', '198.18.9.0/24', 'dev', 'lo', 'proto', 'static']);

  const pinRoot = newPinRoot('test-cleanbgp', { create: false });
  const cleanup = () => run(['nsenter', `--net=${ns.path}`, '--', process.execPath, AGENT_BIN, 'cleanup', '--bpffs-root', pinRoot, '--run-dir', runDir],
    { env: childEnv(), allowFail: true });
  const done = await cleanup();
  t.equal(done.code, 0, done.stderr);
  t.match(done.stdout, new RegExp(`stopped bird pid ${bird.pid}`));
  t.match(done.stdout, /removed route blackhole 192\.168\.7\.0\/26/);
  t.match(done.stdout, new RegExp(`removed route 192\\.168\\.8\\.0/26 dev lo proto bird .*table ${DEFAULT_LEARNED_TABLE}`));
  t.ok(await eventually(async () => bird.exitCode !== null || bird.signalCode !== null, true, 15_000), 'bird is gone');
  t.equal((await ns.exec(['ip', '-4', 'route', 'show', 'table', String(DEFAULT_LEARNED_TABLE)])).stdout.trim(), '', 'learned table empty');
  t.equal((await ns.exec(['ip', '-4', 'route', 'show', 'proto', 'bird'])).stdout.trim(), '', 'no bird route left in main');
  t.match((await ns.exec(['ip', '-4', 'route', 'show'])).stdout, /198\.18\.9\.0\/24 dev lo proto static/, 'another protocol\'s route stays');
  t.notOk(existsSync(dir), 'the bird directory is removed');

  // Someone else's bird routes, with no tortie bird directory: left alone.
  await ns.exec(['ip', 'route', 'add', 'blackhole', '192.168.9.0/26', 'proto', 'bird']);
  const again = await cleanup();
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /nothing of tortie found/);
  t.match((await ns.exec(['ip', '-4', 'route', 'show', 'proto', 'bird'])).stdout, /blackhole 192\.168\.9\.0\/26/, 'a bird route without a tortie bird directory stays');
});
