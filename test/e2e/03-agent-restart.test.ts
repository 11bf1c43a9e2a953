// Stateless restart: kill -9 of the agent in the middle of policy churn converges with nothing
// stale in the kernel; an etcd outage leaves the datapath enforcing and the agent resyncs after.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentBed, childEnv, PROJECT_ROOT, eventually, tcpConnects, type Workload } from '../../src/testbed';
import type { Resource } from '../../src/model';
import { allowAllProfile, k8sWep } from '../../src/testbed/fixtures';

const profile: Resource = allowAllProfile('allow-all');

const wep = (w: Workload, app: string): Resource => k8sWep({ node: 'node-a', pod: w.name, ip: w.ip, iface: w.hostIf, labels: { app } });

/** Allows tcp/`port` (and 8080 always) into app=b. */
function policy(port: number): Resource {
  return { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'b-in' },
    spec: { selector: "app == 'b'", types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [8080, port] } }] } } as unknown as Resource;
}

function pinnedCount(pinRoot: string, map: string): number {
  const out = execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${pinRoot}/${map}`], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return (JSON.parse(out) as unknown[]).length;
}

async function setup(t: { teardown(fn: () => unknown): void }, label: string) {
  const lab = await AgentBed.create(label);
  t.teardown(() => lab.destroy());
  const a = await lab.addWorkload('wa', '192.168.20.1', 'calia000000001');
  const b = await lab.addWorkload('wb', '192.168.20.2', 'calib000000002');
  for (const p of [8080, 9000, 9001, 9002, 9003]) b.ns.spawn(['nc', '-lk', '-p', String(p)], { stdio: 'ignore' });
  return { lab, a, b };
}

t.test('kill -9 during policy churn: enforced while down, converges after restart, nothing stale', async (t) => {
  const { lab, a, b } = await setup(t, 'e2echurn');
  await lab.client.apply(profile as never);
  await lab.client.apply(wep(a, 'a') as never);
  await lab.client.apply(wep(b, 'b') as never);
  await lab.client.apply(policy(9000) as never);
  lab.startAgent();
  await lab.waitReady();
  t.ok(await eventually(() => tcpConnects(a.ns, b.ip, 9000), true), 'initial policy: 9000 allowed');

  // Churn: the policy's port and b's labels change quickly; the agent dies in the middle.
  const churn = (async () => {
    for (let i = 0; i < 30; i++) {
      await lab.client.apply(policy(9000 + (i % 3)) as never);
      await new Promise((r) => setTimeout(r, 15));
    }
  })();
  await new Promise((r) => setTimeout(r, 150));
  await lab.killAgent('SIGKILL');
  await churn;
  await lab.client.apply(policy(9003) as never); // the final state
  t.ok(await tcpConnects(a.ns, b.ip, 8080), 'agent down: tcp/8080 still allowed');

  lab.startAgent();
  await lab.waitReady();
  t.ok(await eventually(() => tcpConnects(a.ns, b.ip, 9003), true), 'after restart: the final policy (9003) is enforced');
  for (const p of [9000, 9001, 9002]) t.notOk(await tcpConnects(a.ns, b.ip, p), `tcp/${p} denied`);
  // Nothing stale: a and b use at most 4 tables (2 endpoints × 2 directions, shared when equal).
  const tables = pinnedCount(lab.pinRoot, 'tortie_tbl_v1');
  t.ok(tables >= 1 && tables <= 4, `tables in the kernel: ${tables}`);
  t.equal(pinnedCount(lab.pinRoot, 'tortie_ep_v1'), 2, 'exactly the two endpoints are programmed');
});

t.test('etcd outage: the datapath keeps enforcing; the agent resyncs when etcd returns', async (t) => {
  const { lab, a, b } = await setup(t, 'e2eetcd');
  const dataDir = mkdtempSync(join(tmpdir(), 'tortie-e2e-etcd-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = 23000 + Math.floor(Math.random() * 2000);
  const endpoint = `http://127.0.0.1:${port}`;
  // etcd lives in the node namespace, so the agent and tortiectl (run there) both reach it.
  const startEtcd = () => lab.node.spawn(['etcd', '--name', 'e2e', '--data-dir', dataDir,
    '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${port + 1}`,
    '--initial-cluster', `e2e=http://127.0.0.1:${port + 1}`], { stdio: 'ignore' });
  let etcd = startEtcd();
  const env = { ...childEnv(), DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: endpoint };
  const ctl = async (docs: Resource[]) => {
    const input = docs.map((d) => JSON.stringify(d)).join('\n---\n');
    for (let i = 0; ; i++) {
      const r = await lab.node.exec(['env', ...Object.entries({ DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: endpoint, NODE_OPTIONS: '' }).map(([k, v]) => `${k}=${v}`),
        process.execPath, join(PROJECT_ROOT, 'bin/tortiectl.js'), 'apply', '-f', '-'], { input, allowFail: true, timeoutMs: 20_000 });
      if (r.code === 0) return;
      if (i > 40) throw new Error(`tortiectl apply failed: ${r.stdout}${r.stderr}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  };
  void env;
  await ctl([profile, wep(a, 'a'), wep(b, 'b'), policy(9000)]);
  lab.startAgent(['--datastore-type', 'etcdv3', '--etcd-endpoints', endpoint]);
  await lab.waitReady();
  t.ok(await eventually(() => tcpConnects(a.ns, b.ip, 9000), true), 'policy from etcd enforced');
  t.notOk(await tcpConnects(a.ns, b.ip, 9001), 'tcp/9001 denied');

  etcd.kill('SIGKILL');
  await new Promise((r) => etcd.once('exit', r));
  await new Promise((r) => setTimeout(r, 2000));
  t.ok(await tcpConnects(a.ns, b.ip, 9000), 'etcd down: allowed flow still allowed');
  t.notOk(await tcpConnects(a.ns, b.ip, 9001), 'etcd down: denied flow still denied');
  t.equal(lab.agent?.exitCode, null, 'the agent keeps running');

  etcd = startEtcd();
  t.teardown(() => { if (etcd.exitCode === null) etcd.kill('SIGKILL'); });
  await ctl([policy(9001)]);
  t.ok(await eventually(() => tcpConnects(a.ns, b.ip, 9001), true, 15_000), 'after etcd returns: the new policy is enforced (agent resynced)');
  t.notOk(await tcpConnects(a.ns, b.ip, 9000), 'and the old one is gone');
});
