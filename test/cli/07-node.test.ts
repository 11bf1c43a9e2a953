import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { cliFor, freePort } from './helpers/cli';
import { checkAutodetectionMethod } from '../../src/cli/node-commands';

const FAKE = path.join(__dirname, 'helpers', 'fake-tortie-node.js');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2]?.startsWith('Z');
  } catch {
    return false;
  }
}

async function waitGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

t.test('node run / node status with a stand-in agent', async (t) => {
  const cli = cliFor(t, 'tortiectl-node-');
  const started: number[] = [];
  t.teardown(() => { for (const pid of started) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  const name = `cli-${randomBytes(3).toString('hex')}`;
  const runDir = path.join(cli.dir, 'run');
  const logDir = path.join(cli.dir, 'log');
  const argsFile = path.join(cli.dir, 'agent-args.jsonl');
  const env = (mode: string) => ({ ...cli.env, TORTIE_NODE_BIN: `${process.execPath} ${FAKE}`, TORTIE_RUN_DIR: runDir, FAKE_AGENT_MODE: mode, FAKE_AGENT_ARGS_FILE: argsFile });
  const port = await freePort();
  const common = [`--name=${name}`, `--health-port=${port}`, `--log-dir=${logDir}`];

  t.test('nothing running yet', async (t) => {
    t.same(await cli.run(['node', 'status', `--name=${name}`], { env: env('ready') }), { code: 1, stdout: '', stderr: 'tortie process is not running.\n' });
  });

  t.test('--dryrun shows the agent command with the resolved datastore', async (t) => {
    const r = await cli.run(['node', 'run', ...common, '--ip=10.0.2.10/24', '--dryrun', '--backend=none'], { env: env('ready') });
    t.equal(r.code, 0);
    t.match(r.stdout, /^Use the following command to start tortie-node:\n\n/);
    t.match(r.stdout, ` run --nodename=${name} --ip-autodetection-method=first-found --health-port=${port} --ip=10.0.2.10/24 --policy-only --datastore-type=embedded --store-dir=${cli.storeDir}\n`);
    t.notOk(fs.existsSync(argsFile), 'nothing started');
  });

  t.test('starts detached, waits for /readyz, reports success', async (t) => {
    const r = await cli.run(['node', 'run', ...common, '--ip=autodetect', '--ip-autodetection-method=can-reach=198.18.0.1'], { env: env('ready') });
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^Running the following command to start tortie-node:\n\n/);
    t.match(r.stdout, /tortie-node started \(pid \d+\), logging to .*\.log; waiting for it to become ready\.\n/);
    t.match(r.stdout, /tortie node started successfully\n$/);
    const rec = JSON.parse(fs.readFileSync(argsFile, 'utf8').trim().split('\n').pop() as string);
    started.push(rec.pid);
    t.ok(alive(rec.pid), 'the agent keeps running after node run returns');
    t.same(rec.argv, ['run', `--nodename=${name}`, '--ip-autodetection-method=can-reach=198.18.0.1', `--health-port=${port}`, '--ip=autodetect', '--datastore-type=embedded', `--store-dir=${cli.storeDir}`]);
    t.match(fs.readFileSync(path.join(logDir, `${name}.log`), 'utf8'), /fake tortie-node \d+ starting/, 'agent output goes to <log-dir>/<node>.log');

    // A stale pid file (an agent that died without removing it) is not listed as an agent.
    fs.writeFileSync(path.join(runDir, 'ghost.pid'), '999999999\n');
    const st = await cli.run(['node', 'status'], { env: env('ready') });
    t.equal(st.code, 0, st.stderr);
    t.match(st.stdout, /^tortie process is running\.\n\nAgent status\n\+-/);
    t.match(st.stdout, new RegExp(`\\| ${name} +\\| +${rec.pid} \\| ready +\\| in sync, kernel programmed +\\|`));
    t.notMatch(st.stdout, /ghost/, 'only live agents are listed');
    t.match(st.stderr, /not running \(stale pid file: .*ghost\.pid\)/, 'the stale file is named on stderr');
    fs.rmSync(path.join(runDir, 'ghost.pid'));
    // Without --run-dir or TORTIE_RUN_DIR, status still finds the agent through its process.
    const { TORTIE_RUN_DIR: _omit, ...noRunDir } = env('ready');
    const found = await cli.run(['node', 'status'], { env: noRunDir });
    t.equal(found.code, 0, found.stderr);
    t.match(found.stdout, new RegExp(`\\| ${name} +\\| +${rec.pid} \\| ready +\\| in sync, kernel programmed \\(run dir ${runDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) +\\|`), 'an agent with another run dir is found and its run dir named');

    // Running again replaces the agent, as calicoctl replaces the calico-node container.
    const again = await cli.run(['node', 'run', ...common], { env: env('ready') });
    t.equal(again.code, 0, again.stderr);
    t.match(again.stdout, `Stopping the running tortie-node for ${name} (pid ${rec.pid}).\n`);
    t.ok(await waitGone(rec.pid), 'the old agent was stopped');
    const rec2 = JSON.parse(fs.readFileSync(argsFile, 'utf8').trim().split('\n').pop() as string);
    started.push(rec2.pid);
    t.not(rec2.pid, rec.pid);
    process.kill(rec2.pid, 'SIGTERM');
    t.ok(await waitGone(rec2.pid));
    const gone = await cli.run(['node', 'status', `--name=${name}`], { env: env('ready') });
    t.equal(gone.code, 1);
    t.match(gone.stderr, /^tortie process is not running\. \(stale pid file: /);
  });

  t.test('a health port already in use is refused before starting anything', async (t) => {
    const net = await import('node:net');
    const conns = new Set<import('node:net').Socket>();
    const squatter = net.createServer((c) => {
      conns.add(c);
      c.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
    });
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', () => r()));
    const before = fs.existsSync(argsFile) ? fs.readFileSync(argsFile, 'utf8') : '';
    const r = await cli.run(['node', 'run', ...common], { env: env('ready') });
    for (const c of conns) c.destroy();
    await new Promise((r2) => squatter.close(r2));
    t.equal(r.code, 1);
    t.equal(r.stderr, `Error executing command: 127.0.0.1:${port} is already in use (another tortie-node?); choose a free one with --health-port\n`);
    t.equal(fs.existsSync(argsFile) ? fs.readFileSync(argsFile, 'utf8') : '', before, 'no agent was started');
  });

  t.test('an agent that exits: its status and the end of its log', async (t) => {
    const r = await cli.run(['node', 'run', ...common], { env: env('crash') });
    t.equal(r.code, 1);
    t.match(r.stderr, /^Error executing command: tortie-node has terminated \(exit status 3\), check logs for details: .*\.log\n/);
    t.match(r.stderr, /\| fatal: cannot open the datastore \(simulated\)/);
  });

  t.test('an agent that never gets ready: timeout, left running', async (t) => {
    const r = await cli.run(['node', 'run', ...common, '--timeout=1'], { env: env('never') });
    t.equal(r.code, 1);
    t.match(r.stderr, /^Error executing command: tortie-node \(pid (\d+)\) did not become ready within 1 s \(last \/readyz: not ok: not yet in sync with the datastore\); it keeps running/);
    const pid = Number(/pid (\d+)/.exec(r.stderr)?.[1]);
    started.push(pid);
    t.ok(alive(pid));
    const st = await cli.run(['node', 'status', `--name=${name}`], { env: env('never') });
    t.equal(st.code, 0, 'running is success, readiness is reported');
    t.match(st.stdout, /\| not ready +\| not yet in sync with the datastore/);
    process.kill(pid, 'SIGTERM');
    t.ok(await waitGone(pid));
  });
});

t.test('flag checks, as calicoctl words them', async (t) => {
  const cli = cliFor(t, 'tortiectl-node-');
  const env = { ...cli.env, TORTIE_NODE_BIN: '/nonexistent' };
  const fails = async (args: string[], re: RegExp) => {
    const r = await cli.run(['node', 'run', '--name=n1', '--dryrun', ...args], { env });
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, re, args.join(' '));
  };
  await fails(['--ip=fe80::1'], /^Error executing command: --ip is wrong IP version/);
  await fails(['--ip=10.0.0.300'], /^Error executing command: invalid IP address specified with --ip: 10\.0\.0\.300/);
  await fails(['--ip-autodetection-method=bogus'], /^Error executing command: invalid IP autodetection method: bogus\n/);
  await fails(['--ip-autodetection-method=interface=eth(0'], /invalid interface regex specified for IP autodetection: eth\(0/);
  await fails(['--ip-autodetection-method=cidr=10.0.0.0/33'], /"10\.0\.0\.0\/33" is not an IPv4 CIDR/);
  await fails(['--ip-autodetection-method=can-reach='], /can-reach needs an IP address or a host name/);
  await fails(['--backend=quagga'], /^Error executing command: unknown backend 'quagga'/);
  await fails(['--health-port=70000'], /--health-port: "70000" is not a port number/);
  await fails(['--ip6=10.0.2.10'], /^Error executing command: --ip6 is wrong IP version/);
  await fails(['--ip6=fd00::zz'], /^Error executing command: invalid IP address specified with --ip6: fd00::zz/);
  await fails(['--ip6-autodetection-method=cidr=10.0.0.0/8'], /^Error executing command: invalid IPv6 autodetection method: cidr=10\.0\.0\.0\/8 \("10\.0\.0\.0\/8" is not an IPv6 CIDR\)/);
  await fails(['--ip6-autodetection-method=can-reach=8.8.8.8'], /can-reach takes an IPv6 address or a host name/);
  await fails(['--ip-autodetection-method=can-reach=fd00::1'], /can-reach takes an IPv4 address or a host name/);
  const dry6 = await cli.run(['node', 'run', '--name=n1', '--dryrun', '--ip6=autodetect', '--ip6-autodetection-method=interface=eth1'], { env });
  t.equal(dry6.code, 0, dry6.stderr);
  t.match(dry6.stdout, / --ip6=autodetect --ip6-autodetection-method=interface=eth1 /, 'passed on to the agent as its flags');
  const badName = await cli.run(['node', 'run', '--dryrun', '--name=Bad_Name'], { env });
  t.match(badName.stderr, /node name "Bad_Name" is not a valid DNS subdomain/);
  for (const ok of ['first-found', 'can-reach=8.8.8.8', 'can-reach=www.example.com', 'interface=eth.*,enp0s.*', 'skip-interface=docker.*', 'cidr=10.0.2.0/24,198.18.0.0/15']) {
    t.doesNotThrow(() => checkAutodetectionMethod(ok), ok);
  }
  for (const ok of ['first-found', 'can-reach=fd00:99::1', 'can-reach=www.example.com', 'interface=eth.*', 'cidr=fd00:1::/64,fd00:2::/64']) {
    t.doesNotThrow(() => checkAutodetectionMethod(ok, 6), `IPv6: ${ok}`);
  }
  t.same(await cli.run(['node', 'frob']), {
    code: 1, stdout: '',
    stderr: "Invalid option: 'tortiectl node frob'. Use flag '--help' to read about a specific subcommand.\n(tortiectl supports 'node run', 'node status', 'node diags' and 'node checksystem'; \"frob\" is not implemented)\n",
  });
});
