/**
 * tortie-node serving the CNI plugins itself (src/node/run.ts startCni, src/cni/server.ts): the
 * socket and the directory it made are root's alone, the installed wrappers (without a process
 * fallback) get ADD/DEL answered by the agent, malformed and oversized requests neither stop the
 * agent nor the next call, a second server on the same socket is refused, and SIGTERM removes
 * the socket.
 */
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { installCni } from '../../src/cni/install';
import { resolveConfig } from '../../src/node/config';
import { AgentProcess, agentRunArgs, childEnv, eventually, cniBed, runPlugin, pinRoot, removePinRoot } from '../../src/testbed';

const SERVER = resolve(__dirname, '..', '..', '..', 'bin', 'tortie-cni-server.js');

t.test('--cni-socket / TORTIE_CNI_SOCKET', async (t) => {
  t.equal(resolveConfig({ nodeName: 'n' }, {}).cniSocket, '/run/tortie/cni.sock', 'default: under the run dir');
  t.equal(resolveConfig({ nodeName: 'n' }, { TORTIE_RUN_DIR: '/tmp/r' }).cniSocket, '/tmp/r/cni.sock', 'under TORTIE_RUN_DIR');
  t.equal(resolveConfig({ nodeName: 'n' }, { TORTIE_CNI_SOCKET: 'none' }).cniSocket, '', 'none: off');
  t.equal(resolveConfig({ nodeName: 'n', cniSocket: '/x/y.sock' }, { TORTIE_CNI_SOCKET: 'none' }).cniSocket, '/x/y.sock', 'the flag wins');
  t.throws(() => resolveConfig({ nodeName: 'n', cniSocket: 'rel.sock' }, {}), /--cni-socket: "rel.sock" must be an absolute path/);
  t.throws(() => resolveConfig({ nodeName: 'n' }, { TORTIE_CNI_SOCKET: `/${'x'.repeat(120)}` }), /TORTIE_CNI_SOCKET: .* at most 107 bytes/);
});

t.test('the agent serves the CNI plugins on its socket', async (t) => {
  const bed = await cniBed('cniagent', '192.168.93.0/24');
  const dir = mkdtempSync(join(tmpdir(), 'tortie-cniagent-'));
  const pins = pinRoot('test-cniagent', { create: false });
  const sock = join(dir, 'run', 'cni.sock');
  const proc = new AgentProcess(bed.node, { args: agentRunArgs({ nodeName: 'node-a', ip: `${bed.nodeIp}/24`, storeDir: bed.store.dir, pinRoot: pins, runDir: join(dir, 'agent-run'),
    extra: ['--log-level', 'info', '--cni-socket', sock] }) });
  const agent = proc.child;
  t.teardown(async () => {
    await proc.kill('SIGKILL');
    await bed.destroy();
    rmSync(dir, { recursive: true, force: true });
    removePinRoot(pins);
  });
  t.ok(await eventually(async () => /serving the CNI plugins/.test(proc.log) || agent.exitCode !== null, true, 60_000), `agent serving: ${proc.log}`);
  t.equal(statSync(sock).mode & 0o777, 0o600, 'socket: root only');
  t.equal(statSync(join(dir, 'run')).mode & 0o777, 0o700, 'the directory it made: root only');

  const bin = join(dir, 'bin');
  installCni({ binDir: bin, socket: sock, nodePath: '/nonexistent/node' });
  const raw = (payload: Buffer) => new Promise<string>((res) => {
    let got = '';
    const c = connect(sock, () => c.end(payload));
    c.on('data', (d) => { got += String(d); });
    c.on('end', () => res(got));
    c.on('error', () => res(got));
  });
  t.match(await raw(Buffer.from('garbage')), /"code":4,"msg":"tortie CNI server: malformed request/);
  t.match(await raw(Buffer.alloc(5 << 20, 0x41)), /"code":4,"msg":"tortie CNI server: request larger than/);
  t.match(await raw(Buffer.from('tortie\nCNI_COMMAND=ADD\0\0{not json')), /^1\n\{"cniVersion":"1\.0\.0","code":/, 'a bad request of a known plugin: its CNI error');

  const pod = await bed.addWorkload('pod');
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'agent1', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web' };
  const add = await runPlugin(bed.node, 'tortie', env, bed.conf(), bin);
  t.equal(add.code, 0, `ADD answered by the agent: ${add.stdout}`);
  t.match((add.out as { ips: { address: string }[] }).ips[0]!.address, /^192\.168\.93\.\d+\/32$/);
  const del = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, bed.conf(), bin);
  t.equal(del.code, 0, `DEL answered by the agent: ${del.stdout}`);
  t.same((await bed.store.rc.list('WorkloadEndpoint', 'default')).items, []);

  const second = await bed.node.exec([process.execPath, SERVER, '--socket', sock], { allowFail: true, env: childEnv() });
  t.equal(second.code, 1);
  t.match(second.stderr, /already listens on/, 'a second server on a live socket is refused');
  t.equal(agent.exitCode, null, 'the agent is still running');

  agent.kill('SIGTERM');
  await new Promise((r) => agent.exitCode !== null ? r(undefined) : agent.once('exit', r));
  t.equal(agent.exitCode, 0, `agent stopped cleanly: ${proc.log.slice(-500)}`);
  t.notOk(existsSync(sock), 'socket removed on SIGTERM');
});
