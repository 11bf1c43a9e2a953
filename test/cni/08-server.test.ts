/**
 * The resident tortie-cni-server behind the installed wrappers: ADD/CHECK/DEL answered through
 * the socket (the wrappers' process fallback is made impossible, so only the server can
 * answer), 20 concurrent ADDs with distinct addresses, plain-CNI identity as podman sends it,
 * malformed requests, and the fallback to the plugin process once the server is gone; a hung
 * request bounded by the timeout (code 11) with the container's DEL waiting for it; CNI errors
 * through both clients (C and Perl) with their codes and version; the spawn helper.
 */
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cniClient, installCni, launcherScript } from '../../src/cni/install';
import { parseRequest } from '../../src/cni/server';
import { IpamClient } from '../../src/ipam/client';
import { run } from '../../src/util/netns';
import { childEnv, eventually, cniBed, type CniBed, runPlugin } from '../../src/testbed';
import { spawnerPid, spawnerRun, startSpawner, stopSpawner } from '../../src/util/spawner';

const SERVER = resolve(__dirname, '..', '..', '..', 'bin', 'tortie-cni-server.js');

t.test('parseRequest', async (t) => {
  const req = Buffer.from('tortie\nA=1\0B=x=y\0\0{"stdin":true}');
  t.same(parseRequest(req), { plugin: 'tortie', vars: { A: '1', B: 'x=y' }, stdin: '{"stdin":true}' });
  t.equal(parseRequest(Buffer.from('tortie\nA=1\0')), undefined, 'no end of the environment');
  t.equal(parseRequest(Buffer.from('\nA=1\0\0')), undefined, 'no plugin');
});

t.test('--help prints usage and starts nothing; an unknown argument or a missing value is refused', async (t) => {
  const help = await run([process.execPath, SERVER, '--help'], { allowFail: true, timeoutMs: 20_000 });
  t.equal(help.code, 0);
  t.match(help.stdout, /usage: tortie-cni-server \[--socket PATH\]/);
  t.notMatch(help.stdout, /listening/);
  const bad = await run([process.execPath, SERVER, '--sock', '/tmp/x'], { allowFail: true, timeoutMs: 20_000 });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown argument "--sock"/);
  const missing = await run([process.execPath, SERVER, '--socket'], { allowFail: true, timeoutMs: 20_000 });
  t.equal(missing.code, 2);
  t.match(missing.stderr, /--socket needs a value/);
});

t.test('ADD, CHECK, DEL and 20 concurrent ADDs through the server', async (t) => {
  const bed = await cniBed('cnisrv', '192.168.90.0/24');
  const dir = mkdtempSync(join(tmpdir(), 'tortie-cnisrv-'));
  t.teardown(async () => { await bed.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const sock = join(dir, 'cni.sock');
  // Wrappers whose process fallback cannot run: only the server can answer them.
  installCni({ binDir: join(dir, 'bin'), socket: sock, nodePath: '/nonexistent/node' });
  const server = bed.node.spawn([process.execPath, SERVER, '--socket', sock], { netOnly: true, env: childEnv() });
  let out = '';
  await new Promise<void>((res, rej) => {
    server.stdout!.on('data', (d) => { out += String(d); if (out.includes('listening')) res(); });
    server.stderr!.on('data', (d) => { out += String(d); });
    server.once('exit', (c) => rej(new Error(`server exited ${c}: ${out}`)));
  });
  const bin = join(dir, 'bin');

  const pod = await bed.addWorkload('pod');
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'srv1', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=quirky_turing' };
  const add = await runPlugin(bed.node, 'tortie', env, bed.conf(), bin);
  t.equal(add.code, 0, add.stdout + add.stderr);
  const ip = (add.out as { ips: { address: string }[] }).ips[0]!.address;
  t.match(ip, /^192\.168\.90\.\d+\/32$/);
  const wep = (await bed.store.rc.list('WorkloadEndpoint', 'default')).items[0]!;
  t.equal(wep.metadata.name, 'node--a-cni-srv1-eth0', 'plain CNI workload, as for a podman call');
  const chk = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'CHECK' }, bed.conf({ prevResult: add.out }), bin);
  t.equal(chk.code, 0, chk.stdout);
  await bed.node.exec(['sysctl', '-qw', `net.ipv4.conf.${wep.spec.interfaceName}.proxy_arp=0`]);
  const bad = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'CHECK' }, bed.conf({ prevResult: add.out }), bin);
  t.equal(bad.out?.code, 103, 'CHECK through the server still sees proxy_arp=0');
  const del = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, bed.conf(), bin);
  t.equal(del.code, 0, del.stdout);
  const delAgain = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, bed.conf(), bin);
  t.equal(delAgain.code, 0, 'DEL is idempotent');
  t.same(await new IpamClient(bed.store.ds).ipsByHandle('k8s-pod-network.srv1'), []);
  // Any CNI container id (the spec allows '_' and '.'): the endpoint's name is made safe.
  const oddPod = await bed.addWorkload('odd');
  const odd = await runPlugin(bed.node, 'tortie', { ...env, CNI_CONTAINERID: 'Odd_Id.1', CNI_NETNS: oddPod.path }, bed.conf(), bin);
  t.equal(odd.code, 0, odd.stdout);
  t.ok((await bed.store.rc.list('WorkloadEndpoint', 'default')).items.some((w) => /^node--a-cni-odd--id--1--[0-9a-f]{10}-eth0$/.test(w.metadata.name)), 'name-safe endpoint name');
  const ipam = await runPlugin(bed.node, 'tortie-ipam', { ...env, CNI_CONTAINERID: 'srvipam' }, bed.conf(), bin);
  t.equal(ipam.code, 0, `tortie-ipam through the server: ${ipam.stdout}`);

  const pods = await Promise.all(Array.from({ length: 20 }, (_, i) => bed.addWorkload(`c${i}`)));
  const adds = await Promise.all(pods.map((p, i) => runPlugin(bed.node, 'tortie', { ...env, CNI_CONTAINERID: `conc${i}`, CNI_NETNS: p.path }, bed.conf(), bin)));
  t.same(adds.filter((a) => a.code !== 0).map((a) => a.stdout), [], '20 concurrent ADDs succeed');
  const ips = adds.map((a) => (a.out as { ips: { address: string }[] }).ips[0]!.address);
  t.equal(new Set(ips).size, 20, 'distinct addresses');

  // Malformed requests get an error object, the server stays up.
  const raw = (payload: Buffer) => new Promise<string>((res, rej) => {
    let got = '';
    const c = connect(sock, () => c.end(payload));
    c.on('data', (d) => { got += String(d); });
    c.on('end', () => res(got));
    c.on('error', rej);
  });
  t.match(await raw(Buffer.from('garbage')), /^1\n\{"cniVersion":"1\.0\.0","code":4,"msg":"tortie CNI server: malformed request/);
  t.match(await raw(Buffer.from('calico\n\0')), /unknown plugin \\"calico\\"/);

  // Server gone: the wrappers of a normal install run the plugin process instead.
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  installCni({ binDir: join(dir, 'bin2'), socket: sock });
  const after = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'conc0', CNI_NETNS: pods[0]!.path }, bed.conf(), join(dir, 'bin2'));
  t.equal(after.code, 0, `fallback to the plugin process: ${after.stdout}`);
  const orphan = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, bed.conf(), bin);
  t.not(orphan.code, 0, 'the fallback-less wrappers fail without the server (so the checks above went through it)');
});

function startServer(bed: CniBed, sock: string, extra: string[] = []): Promise<ChildProcess> {
  const server = bed.node.spawn([process.execPath, SERVER, '--socket', sock, ...extra], { netOnly: true, env: childEnv() });
  let out = '';
  return new Promise((res, rej) => {
    server.stdout!.on('data', (d) => { out += String(d); if (out.includes('listening')) res(server); });
    server.stderr!.on('data', (d) => { out += String(d); if (process.env.H13B_DEBUG) process.stderr.write(d); });
    server.once('exit', (c) => rej(new Error(`server exited ${c}: ${out}`)));
  });
}

t.test('a hung request is answered with code 11 after the timeout; the container\'s DEL waits for it and undoes it', async (t) => {
  const bed = await cniBed('cnihang', '192.168.91.0/24');
  const dir = mkdtempSync(join(tmpdir(), 'tortie-cnihang-'));
  const sock = join(dir, 'cni.sock');
  let server: ChildProcess | undefined;
  t.teardown(async () => { server?.kill('SIGKILL'); await bed.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const bin = join(dir, 'bin');
  installCni({ binDir: bin, socket: sock, nodePath: '/nonexistent/node' });
  // A delegated IPAM plugin that answers ADD only once a flag file exists: the ADD hangs at will.
  const release = join(dir, 'release');
  writeFileSync(join(bin, 'slow-ipam'), `#!/bin/sh
if [ "$CNI_COMMAND" = ADD ]; then
  while [ ! -e ${release} ]; do sleep 0.05; done
  echo '{"cniVersion":"1.0.0","ips":[{"address":"192.168.91.77/32"}]}'
fi
exit 0
`, { mode: 0o755 });
  server = await startServer(bed, sock, ['--timeout-ms', '500']);
  const pod = await bed.addWorkload('hung');
  const conf = bed.conf({ ipam: { type: 'slow-ipam' } });
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'hung1', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1' };
  const add = await runPlugin(bed.node, 'tortie', env, conf, bin);
  t.equal(add.code, 1);
  t.equal(add.out?.code, 11, `try again later: ${add.stdout}`);
  t.match(String(add.out?.msg), /ADD of container "hung1" not finished after 500 ms/);
  // The server still answers other containers meanwhile.
  const other = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'other' }, bed.conf(), bin);
  t.equal(other.code, 0, `another container's DEL is answered: ${other.stdout}`);
  // The runtime's DEL after the failed ADD: queued behind the ADD, which finishes once released.
  const del = runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, conf, bin);
  writeFileSync(release, '');
  const d = await del;
  t.equal(d.code, 0, `DEL after the timed-out ADD: ${d.stdout}`);
  t.same((await bed.store.rc.list('WorkloadEndpoint', 'default')).items, [], 'the late ADD\'s endpoint is gone');
  t.notMatch((await bed.node.exec(['ip', '-o', 'link'])).stdout, /cali[0-9a-f]{11}/, 'the late ADD\'s veth is gone');
  t.equal(server.exitCode, null, 'the server is still running');
});

t.test('errors reach the runtime as CNI error objects through both clients; a garbage answer is code 11', async (t) => {
  const bed = await cniBed('cnierr', '192.168.92.0/24');
  const dir = mkdtempSync(join(tmpdir(), 'tortie-cnierr-'));
  const sock = join(dir, 'cni.sock');
  let server: ChildProcess | undefined;
  t.teardown(async () => { server?.kill('SIGKILL'); await bed.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const client = cniClient();
  t.ok(client, 'the C client is built where cc exists');
  const bins: [string, string][] = [['C', join(dir, 'cbin')], ['Perl', join(dir, 'pbin')]];
  for (const [which, b] of bins) {
    mkdirSync(b);
    for (const name of ['tortie', 'tortie-ipam'] as const) {
      writeFileSync(join(b, name), launcherScript(name, { socket: sock, nodePath: '/nonexistent/node', ...(which === 'C' ? { client } : {}) }), { mode: 0o755 });
    }
  }
  t.match(readFileSync(join(dir, 'pbin', 'tortie'), 'utf8'), /perl/, 'the Perl wrapper has no C client');
  server = await startServer(bed, sock);
  const pod = await bed.addWorkload('err');
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'err1', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0' };
  for (const [which, b] of bins) {
    const badConf = await runPlugin(bed.node, 'tortie', env, { ...bed.conf(), cniVersion: '0.4.0', mtu: 5 }, b);
    t.equal(badConf.code, 1, `${which}: exit status 1`);
    t.same(Object.keys(badConf.out ?? {}).sort(), ['cniVersion', 'code', 'msg'], `${which}: ${badConf.stdout}`);
    t.equal(badConf.out?.code, 7, `${which}: invalid configuration`);
    t.equal(badConf.out?.cniVersion, '0.4.0', `${which}: in the configuration's version`);
    const badEnv = await runPlugin(bed.node, 'tortie', { ...env, CNI_IFNAME: 'a/b' }, bed.conf(), b);
    t.equal(badEnv.out?.code, 4, `${which}: invalid environment: ${badEnv.stdout}`);
    const noNs = await runPlugin(bed.node, 'tortie-ipam', { ...env, CNI_COMMAND: 'CHECK' }, bed.conf({ prevResult: { cniVersion: '1.0.0', ips: [{ address: '192.168.92.9/32' }] } }), b);
    t.equal(noNs.out?.code, 103, `${which}: tortie-ipam CHECK failure: ${noNs.stdout}`);
  }
  // A delegated IPAM plugin that exits without reading its stdin (a configuration larger than a
  // pipe: the write surely fails with EPIPE): an IPAM error, and the server stays up.
  writeFileSync(join(dir, 'cbin', 'quit-ipam'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  const quit = await runPlugin(bed.node, 'tortie', env, { ...bed.conf({ ipam: { type: 'quit-ipam' } }), pad: 'x'.repeat(256 << 10) }, join(dir, 'cbin'));
  t.equal(quit.out?.code, 101, `IPAM plugin failure: ${quit.stdout.slice(0, 300)}`);
  t.equal(server.exitCode, null, 'the server survived a delegate that closed its stdin');
  const after = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, bed.conf(), join(dir, 'cbin'));
  t.equal(after.code, 0, `and answers the next call: ${after.stdout}`);
  server.kill('SIGTERM');
  await new Promise((r) => server!.once('exit', r));
  // A server that answers garbage (here: a listener in the test that replies "ok\n").
  const fake = createServer({ allowHalfOpen: true }, (c) => { c.on('data', () => undefined); c.on('end', () => c.end('ok\n{}')); });
  const fakeSock = join(dir, 'fake.sock');
  await new Promise<void>((r) => fake.listen(fakeSock, r));
  t.teardown(() => { fake.close(); });
  for (const [which, useClient] of [['C', true], ['Perl', false]] as const) {
    const w = join(dir, `fake-${which}`);
    writeFileSync(w, launcherScript('tortie', { socket: fakeSock, nodePath: '/nonexistent/node', ...(useClient ? { client } : {}) }), { mode: 0o755 });
    const r = await run(['env', 'CNI_COMMAND=ADD', w], { input: '{}', allowFail: true });
    t.equal(r.code, 1, `${which}: garbage answer fails`);
    t.equal(JSON.parse(r.stdout).code, 11, `${which}: code 11: ${r.stdout}`);
  }
});

t.test('the spawn helper runs commands as execFile would, survives its own death, and stops', async (t) => {
  t.teardown(() => stopSpawner());
  const direct = await spawnerRun(['sh', '-c', 'echo direct'], undefined, 5_000);
  t.same(direct, { code: 0, stdout: 'direct\n', stderr: '' }, 'not started: the caller runs the command');
  t.equal(spawnerPid(), undefined);
  startSpawner();
  const r = await spawnerRun(['sh', '-c', 'cat; echo err >&2; exit 3'], 'from stdin', 5_000);
  t.same(r, { code: 3, stdout: 'from stdin', stderr: 'err\n' });
  const pid = spawnerPid();
  t.ok(pid && pid !== process.pid, 'a helper process ran it');
  const slow = await spawnerRun(['sleep', '5'], undefined, 200);
  t.match(slow.stderr, /\(timed out\)/, 'bounded by its timeout');
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => spawnerRun(['sh', '-c', `echo ${i}`], undefined, 5_000)));
  t.same(many.map((m) => m.stdout), Array.from({ length: 20 }, (_, i) => `${i}\n`), '20 concurrent commands, each its own answer');
  const inFlight = spawnerRun(['sleep', '5'], undefined, 10_000);
  process.kill(pid!, 'SIGKILL');
  const lost = await inFlight;
  t.equal(lost.code, 1);
  t.match(lost.stderr, /spawn helper exited while running this command/, 'a dead helper fails its commands in flight');
  const again = await spawnerRun(['sh', '-c', 'echo again'], undefined, 5_000);
  t.equal(again.stdout, 'again\n', 'the next command starts a new helper');
  t.not(spawnerPid(), pid);
  const last = spawnerPid()!;
  stopSpawner();
  t.equal(spawnerPid(), undefined);
  t.ok(await eventually(async () => { try { process.kill(last, 0); return false; } catch { return true; } }, true, 5_000), 'stopped helper exits');
});
