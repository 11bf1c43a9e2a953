// Observing the real tortie-node like Felix: /metrics on the metrics port with Felix's names whose
// values move as endpoints and policies change; Felix's health paths; the screen in text format,
// a JSON log file at its own level, info lines for programmed endpoints and policies, flow logs
// in their own file.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentBed, eventually, tcpConnects } from '../../src/testbed';
import type { Resource } from '../../src/model';
import { allowAllProfile, k8sWep } from '../../src/testbed/fixtures';

const wep = (pod: string, ip: string, iface: string, app: string): Resource => k8sWep({ node: 'node-a', pod, ip, iface, labels: { app } });

const policy = {
  apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'b-ingress' },
  spec: { selector: "app == 'b'", types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "app == 'a'" }, destination: { ports: [8080] } }] },
} as unknown as Resource;

t.test('metrics with Felix names on the metrics port, health paths, logs and flow logs', async (t) => {
  const lab = await AgentBed.create('e2eobs');
  const dir = mkdtempSync(join(tmpdir(), 'tortie-observe-'));
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const a = await lab.addWorkload('wa', '192.168.20.1', 'calia000000001');
  const b = await lab.addWorkload('wb', '192.168.20.2', 'calib000000002');
  b.ns.spawn(['nc', '-lk', '-p', '9090'], { stdio: 'ignore' });
  await lab.client.apply(allowAllProfile('allow-all') as never);
  await lab.client.apply(wep('wa', a.ip, a.hostIf, 'a') as never);

  const metricsPort = lab.healthPort + 1;
  const logFile = join(dir, 'log', 'tortie-node.log');
  const flowFile = join(dir, 'flows', 'flows.log');
  lab.startAgent(['--metrics-port', String(metricsPort), '--log-format', 'text', '--log-file', logFile, '--log-level-file', 'debug', '--flow-log-file', flowFile]);
  await lab.waitReady();
  t.match(JSON.parse(readFileSync(join(lab.runDir, 'node-a.state.json'), 'utf8')), { node: 'node-a', metricsPort, healthPort: lab.healthPort, logFile, flowLogFile: flowFile },
    'the agent\'s state file (in its own run dir) says where to find it');

  const get = async (port: number, path: string): Promise<{ status: number; body: string }> => {
    const r = await lab.node.exec([process.execPath, '-e',
      `fetch('http://127.0.0.1:${port}${path}').then(async r=>{process.stdout.write(r.status+'\\n'+await r.text())},e=>{process.stdout.write('0\\n'+e.message)})`]);
    const [status, ...body] = r.stdout.split('\n');
    return { status: Number(status), body: body.join('\n') };
  };
  const metric = async (name: string): Promise<number | undefined> => {
    const { body } = await get(metricsPort, '/metrics');
    const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(body);
    return m ? Number(m[1]) : undefined;
  };
  const metricBecomes = (name: string, want: (v: number) => boolean) => eventually(async () => { const v = await metric(name); return v !== undefined && want(v); }, true, 15_000);

  for (const p of ['/liveness', '/readiness', '/livez', '/readyz']) t.equal((await get(lab.healthPort, p)).status, 200, `health port ${p}`);
  t.equal((await get(lab.healthPort, '/metrics')).status, 404, 'no metrics on the health port when a metrics port is set');
  const scrape = await get(metricsPort, '/metrics');
  t.equal(scrape.status, 200, 'metrics port answers');
  for (const [name, type] of [['felix_active_local_endpoints', 'gauge'], ['felix_active_local_policies', 'gauge'], ['felix_active_local_selectors', 'gauge'],
    ['felix_cluster_num_hosts', 'gauge'], ['felix_cluster_num_workload_endpoints', 'gauge'], ['felix_int_dataplane_apply_time_seconds', 'summary'],
    ['felix_int_dataplane_failures', 'counter'], ['felix_resyncs_started', 'counter'], ['felix_calc_graph_update_time_seconds', 'summary'],
    ['felix_bpf_conntrack_sweeps', 'counter'], ['tortie_policy_programming_seconds', 'histogram']]) {
    t.match(scrape.body, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} (${type})`);
  }
  t.equal(await metric('felix_active_local_endpoints'), 1, 'one local endpoint');
  t.equal(await metric('felix_cluster_num_hosts'), 1, 'one host (this node registered itself)');
  t.equal(await metric('felix_active_local_policies'), 0, 'no policy yet');
  t.ok((await metric('felix_calc_graph_updates_processed'))! >= 3, 'calc graph updates counted');
  t.ok((await metric('felix_calc_graph_update_time_seconds_count'))! >= 1, 'calc graph update batches timed');

  await lab.client.apply(wep('wb', b.ip, b.hostIf, 'b') as never);
  await lab.client.apply(policy as never);
  t.ok(await metricBecomes('felix_active_local_endpoints', (v) => v === 2), 'endpoints 1 → 2');
  t.ok(await metricBecomes('felix_cluster_num_workload_endpoints', (v) => v === 2), 'cluster endpoints 1 → 2');
  t.ok(await metricBecomes('felix_active_local_policies', (v) => v === 1), 'policies 0 → 1');
  t.ok(await metricBecomes('felix_active_local_selectors', (v) => v >= 1), 'the rule selector is active');

  // BPF host routing (on by default where the kernel verifies its helpers): an allowed
  // connection between the two local workloads is redirected into b by a's program.
  b.ns.spawn(['nc', '-lk', '-p', '8080'], { stdio: 'ignore' });
  t.ok(await eventually(() => tcpConnects(a.ns, b.ip, 8080), true), 'tcp/8080 allowed a -> b');
  t.ok(await eventually(async () => (await metric('tortie_host_routed_packets{outcome="declined",family="6"}')) !== undefined, true, 15_000), 'host-routing counters exported');
  const hrOn = await metric('tortie_bpf_host_routing');
  t.ok(hrOn === 0 || hrOn === 1, `tortie_bpf_host_routing is 0 or 1 (${hrOn})`);
  const peer = () => metric('tortie_host_routed_packets{outcome="peer",family="4"}');
  if (hrOn === 1) t.ok(await metricBecomes('tortie_host_routed_packets{outcome="peer",family="4"}', (v) => v > 0), 'packets redirected into b counted');
  else t.equal(await peer(), 0, 'kernel path: nothing counted as redirected');
  t.match(lab.agentLog, hrOn === 1 ? /BPF host routing on:/ : /BPF host routing off:/, 'the log says the same as the metric');
  t.ok(await eventually(() => tcpConnects(a.ns, b.ip, 9090), false), 'tcp/9090 denied by the policy');
  t.ok(await eventually(async () => existsSync(flowFile) && readFileSync(flowFile, 'utf8').includes('"dstPort":9090'), true), 'the denied flow is in the flow log file');
  const flowLine = readFileSync(flowFile, 'utf8').split('\n').find((l) => l.includes('"dstPort":9090'))!;
  t.match(JSON.parse(flowLine), { msg: 'flow denied', flow: { src: a.ip, dst: b.ip } });
  t.notMatch(lab.agentLog, /flow denied/, 'flows are not in the main log when they have their own file');

  await lab.client.delete('WorkloadEndpoint', (wep('wb', b.ip, b.hostIf, 'b') as { metadata: { name: string } }).metadata.name, 'default');
  t.ok(await metricBecomes('felix_active_local_endpoints', (v) => v === 1), 'endpoints 2 → 1 after the delete');
  t.ok(await metricBecomes('felix_active_local_policies', (v) => v === 0), 'the policy matches no local endpoint any more');
  t.ok(await metricBecomes('felix_bpf_conntrack_sweeps', (v) => v >= 1), 'conntrack sweeps counted');

  // Screen: text lines at info; file: JSON lines down to debug.
  t.match(lab.agentLog, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[INFO\]\[\d+\] agent: endpoint programmed endpoint="default\/[^"]*wb[^"]*" interface="calib000000002"/m, 'text screen line for the programmed endpoint');
  t.match(lab.agentLog, /\[INFO\]\[\d+\] agent: policy programmed policy="GlobalNetworkPolicy b-ingress"/, 'text screen line for the programmed policy');
  t.match(lab.agentLog, /\[INFO\]\[\d+\] agent: endpoint removed/, 'text screen line for the removed endpoint');
  t.notMatch(lab.agentLog, /\[DEBUG\]/, 'screen stays at info');
  const fileLines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
  t.ok(fileLines.some((l) => l.msg === 'endpoint programmed'), 'log file has the programmed endpoint');
  t.ok(fileLines.some((l) => l.level === 20), 'log file is at debug (its own level)');
});
