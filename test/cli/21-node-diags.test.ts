// tortiectl node diags and node checksystem on a node namespace with a real tortie-node: the
// archive holds the agent's log, config, metrics, bpftool dumps of its pinned maps and programs,
// tc/XDP attachments, routes and sysctls; checksystem adds the datastore and the address
// autodetection to the doctor's checks.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentBed, childEnv, PROJECT_ROOT } from '../../src/testbed';
import { run } from '../../src/util/netns';
import { workloadEndpointName, type Resource } from '../../src/model';

t.test('node diags archive and node checksystem', async (t) => {
  const lab = await AgentBed.create('clidiags');
  const dir = mkdtempSync(join(tmpdir(), 'tortie-diags-test-'));
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const a = await lab.addWorkload('wa', '192.168.50.1', 'calia000000001');
  await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'allow-all' }, spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] } } as never);
  const spec = { node: 'node-a', orchestrator: 'k8s', pod: 'wa', endpoint: 'eth0', interfaceName: a.hostIf, ipNetworks: [`${a.ip}/32`], profiles: ['allow-all'] };
  await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name: workloadEndpointName(spec as never) as string, namespace: 'default' }, spec } as unknown as Resource as never);
  const runDir = lab.runDir;
  const logFile = join(dir, 'log', 'node-a.log');
  lab.startAgent(['--metrics-port', String(lab.healthPort + 1), '--log-file', logFile]);
  await lab.waitReady();

  const tortiectl = (args: string[], env: NodeJS.ProcessEnv = {}) => run(['nsenter', `--net=${lab.node.path}`, '--', process.execPath, join(PROJECT_ROOT, 'bin', 'tortiectl.js'), ...args],
    { env: { ...childEnv(), DATASTORE_TYPE: 'embedded', TORTIE_DATASTORE_DIR: lab.storeDir, ...env }, allowFail: true, timeoutMs: 120_000 });

  const archive = join(dir, 'diags.tar.gz');
  const d = await tortiectl(['node', 'diags', `--run-dir=${runDir}`, `--output=${archive}`, '--log-dir', join(dir, 'nolog')]);
  t.equal(d.code, 0, d.stderr);
  t.match(d.stdout, `Diags saved to ${archive}`);
  const out = join(dir, 'x');
  execFileSync('mkdir', ['-p', out]);
  execFileSync('tar', ['-xzf', archive, '-C', out]);
  const [top] = readdirSync(out);
  const read = (rel: string) => readFileSync(join(out, top!, rel), 'utf8');
  const files = execFileSync('find', ['.', '-type', 'f'], { cwd: join(out, top!), encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.slice(2)).sort();
  t.comment(files.join(' '));
  t.same(files.filter((f) => f.endsWith('.error')), [], 'every collector succeeded');
  t.match(read('agents.txt'), /^live {2}node-a pid \d+ health \d+ metrics \d+ pins \/sys\/fs\/bpf\/tortie-e2e-/m, 'the live agent');
  t.match(JSON.parse(read('config/run/node-a.state.json')), { node: 'node-a', bpffsRoot: lab.pinRoot });
  t.match(read('config/datastore.json'), /"type": "embedded"/);
  t.match(read('logs/node-a.log'), /"msg":"tortie-node running"/, 'the agent log');
  t.match(read('metrics/node-a.prom'), /^felix_active_local_endpoints 1$/m, 'metrics of the agent');
  t.match(read('health/node-a.txt'), /^200\nok: in sync/);
  t.match(read('bpf/pins.txt'), new RegExp(`^${lab.pinRoot}/`, 'm'));
  const maps = files.filter((f) => f.startsWith('bpf/maps/'));
  t.ok(maps.length >= 3, `pinned maps dumped (${maps.length})`);
  const ep = maps.find((f) => /tortie_ep/.test(f));
  t.ok(ep, 'the endpoint map is among them');
  if (ep) t.equal((JSON.parse(read(ep)) as { entries: unknown[] }).entries.length, 1, 'its one entry (the local endpoint)');
  const programs = JSON.parse(read('bpf/programs.json')) as { name?: string; attachedHere?: boolean }[];
  for (const n of ['tortie_from_wep', 'tortie_to_wep']) t.ok(programs.some((p) => p.name === n && p.attachedHere), `${n} attached here`);
  t.match(read('net/attachments.json'), /calia000000001/, 'tc attachments by interface');
  t.match(read('net/tc.txt'), /== calia000000001[\s\S]*clsact/);
  t.match(read('net/routes.txt'), /192\.168\.50\.1 dev calia000000001/);
  t.match(read('sysctls.txt'), /^net\.ipv4\.ip_forward = 1$/m);
  t.match(read('versions.txt'), /^tortie \d/);

  const ok = await tortiectl(['node', 'checksystem', '--ip=198.18.0.10/24', `--bpffs-root=${lab.pinRoot}`]);
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, /\[ ok \] datastore reachable \(embedded store .*\): 1 node\(s\) registered/);
  t.match(ok.stdout, /\[ ok \] node address \(explicit\): 198\.18\.0\.10\/24 on eth0/);
  t.match(ok.stdout, /\[ ok \] load BPF programs/, 'the doctor\'s checks are included');
  const detect = await tortiectl(['node', 'checksystem', '--ip-autodetection-method=interface=eth.*']);
  t.match(detect.stdout, /\[ ok \] node address \(interface=eth\.\*\): 198\.18\.0\.10\/24 on eth0/, 'autodetection');
  const bad = await tortiectl(['node', 'checksystem', '--ip-autodetection-method=interface=nothere'], { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://198.18.0.1:9' });
  t.equal(bad.code, 1);
  t.match(bad.stdout, /\[FAIL\] datastore reachable \(etcd http:\/\/198\.18\.0\.1:9\)/);
  t.match(bad.stdout, /\[FAIL\] node address \(interface=nothere\)/);
  t.match(bad.stdout, /2 of \d+ checks failed/);
});
