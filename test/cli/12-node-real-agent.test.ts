import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SingleNode, pinRoot, removePinRoot } from '../../src/testbed';
import { cliFor, freePort, REPO_ROOT, runCaptured, TORTIECTL, type CliResult } from './helpers/cli';

// `tortiectl node run` starting the real tortie-node, inside a network namespace made here
// (198.18.0.0/15 underlay between two namespaces joined by a veth), with its own bpffs root,
// store and pid; `node status` then reads it. Everything is removed at the end.
const built = fs.existsSync(path.join(REPO_ROOT, 'build', 'Release', 'tortie_native.node')) && fs.existsSync(path.join(REPO_ROOT, 'bpf', 'out', 'tortie_wep.bpf.o'));

t.test('node run / node status with the real agent in a namespace', { skip: built ? false : 'native addon or BPF objects not built' }, async (t) => {
  const cli = cliFor(t, 'tortiectl-realnode-');
  const bed = await SingleNode.create('cli');
  const name = `clinode-${randomBytes(3).toString('hex')}`;
  const bpffs = pinRoot('test-clinode', { create: false });
  const logDir = path.join(cli.dir, 'log');
  let agentPid: number | undefined;
  t.teardown(async () => {
    if (agentPid !== undefined) {
      try { process.kill(agentPid, 'SIGKILL'); } catch { /* gone */ }
    }
    await bed.destroy();
    removePinRoot(bpffs);
    fs.rmSync(`/run/tortie/${name}.pid`, { force: true });
  });
  const a = bed.node;

  // Run the CLI in namespace a, network only (bpffs stays the host's, as the agent needs).
  const inA = (args: string[]): Promise<CliResult> =>
    runCaptured('nsenter', [`--net=${a.path}`, '--', process.execPath, TORTIECTL, ...args], { cwd: cli.dir, env: cli.env });

  // A ULA address on the uplink: `--ip6=autodetect` (calico/node's IP6) finds it.
  await a.exec(['ip', '-6', 'addr', 'add', 'fd00:18::10/64', 'dev', 'eth0', 'nodad']);
  const port = await freePort();
  const metricsPort = await freePort();
  const run = await inA(['node', 'run', `--name=${name}`, `--ip=${bed.nodeIp}/24`, '--ip6=autodetect', `--health-port=${port}`, `--metrics-port=${metricsPort}`,
    `--bpffs-root=${bpffs}`, `--log-dir=${logDir}`, `--run-dir=${path.join(cli.dir, 'run')}`, '--timeout=90']);
  const m = /tortie-node started \(pid (\d+)\)/.exec(run.stdout);
  if (m) agentPid = Number(m[1]);
  const log = fs.existsSync(path.join(logDir, `${name}.log`)) ? fs.readFileSync(path.join(logDir, `${name}.log`), 'utf8') : '';
  t.equal(run.code, 0, `node run succeeded\n${run.stderr}\n${log.split('\n').slice(-20).join('\n')}`);
  t.match(run.stdout, /tortie node started successfully\n$/);

  const nodes = await inA(['get', 'nodes', '-o', 'wide']);
  t.match(nodes.stdout, new RegExp(`\\n${name} +\\(64512\\) +${bed.nodeIp.replace(/\./g, '\\.')}/24 +fd00:18::10/64 +\\n`), 'the agent registered its Node with both addresses and their subnets');

  const version = await inA(['version']);
  t.match(version.stdout, /\nCluster Version: +v\d+\.\d+\.\d+\nCluster Type: +tortie\n$/, 'the agent wrote ClusterInformation; version shows it');

  const status = await inA(['node', 'status', `--name=${name}`, `--run-dir=${path.join(cli.dir, 'run')}`]);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, new RegExp(`\\| ${name} +\\| +${agentPid} \\| ready +\\|`));

  process.kill(agentPid as number, 'SIGTERM');
  for (let i = 0; i < 100; i++) {
    try { process.kill(agentPid as number, 0); } catch { break; }
    await new Promise((r) => setTimeout(r, 100));
  }
  const after = await inA(['node', 'status', `--name=${name}`, `--run-dir=${path.join(cli.dir, 'run')}`]);
  t.equal(after.code, 1);
  t.match(after.stderr, /^tortie process is not running\./);
});
