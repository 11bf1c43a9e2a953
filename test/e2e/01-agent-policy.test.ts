// The real tortie-node in a node namespace: datastore → calc → BPF maps → verdicts on real traffic,
// and a kill -9 / restart that leaves policy enforced and converges afterwards.
import t from 'tap';
import { AgentBed, eventually, pings, tcpConnects } from '../../src/testbed';
import type { Resource } from '../../src/model';
import { allowAllProfile, k8sWep } from '../../src/testbed/fixtures';

const profile = (name: string): Resource => allowAllProfile(name);

const wep = (pod: string, ip: string, iface: string, app: string): Resource => k8sWep({ node: 'node-a', pod, ip, iface, labels: { app } });

const onlyAto8080 = (icmp: boolean): Resource => ({
  apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'b-ingress' },
  spec: {
    selector: "app == 'b'", types: ['Ingress'],
    ingress: [
      { action: 'Allow', protocol: 'TCP', source: { selector: "app == 'a'" }, destination: { ports: [8080, 5201] } },
      ...(icmp ? [{ action: 'Allow', protocol: 'ICMP' }] : []),
    ],
  },
} as unknown as Resource);

t.test('agent enforces policy from the datastore, survives kill -9 and converges on restart', async (t) => {
  const lab = await AgentBed.create('e2eagent');
  t.teardown(() => lab.destroy());
  const a = await lab.addWorkload('wa', '192.168.10.1', 'calia000000001');
  const b = await lab.addWorkload('wb', '192.168.10.2', 'calib000000002');
  for (const port of [8080, 9090]) b.ns.spawn(['nc', '-lk', '-p', String(port)], { stdio: 'ignore' });
  await lab.client.apply(profile('allow-all') as never);
  await lab.client.apply(wep('wa', a.ip, a.hostIf, 'a') as never);
  await lab.client.apply(wep('wb', b.ip, b.hostIf, 'b') as never);

  lab.startAgent();
  await lab.waitReady();
  t.ok(await eventually(() => pings(a.ns, b.ip), true), 'profile allows ping a → b');
  t.ok(await tcpConnects(a.ns, b.ip, 9090), 'profile allows tcp/9090');

  await lab.client.apply(onlyAto8080(false) as never);
  t.ok(await eventually(() => pings(a.ns, b.ip), false), 'policy on b denies ICMP');
  t.ok(await tcpConnects(a.ns, b.ip, 8080), 'allowed: tcp/8080 from app=a');
  t.notOk(await tcpConnects(a.ns, b.ip, 9090), 'denied: tcp/9090');
  t.ok(await pings(b.ns, a.ip), 'b → a still allowed (a has no policy; reply via conntrack)');
  const deniedLogged = () => lab.agentLog.split('\n').some((l) => l.includes('"msg":"flow denied"') && l.includes('"dstPort":9090'));
  await eventually(async () => deniedLogged(), true);
  const denied = lab.agentLog.split('\n').filter((l) => l.includes('"msg":"flow denied"') && l.includes('"dstPort":9090'));
  t.ok(denied.length > 0, 'the denied tcp/9090 flow is in the flow log');
  if (denied[0]) {
    const flow = JSON.parse(denied[0]).flow;
    t.equal(flow.src, a.ip);
    t.equal(flow.dst, b.ip);
    t.equal(flow.direction, 'ingress');
    t.match(flow.rule, { kind: 'end-of-tier', tier: 'default' }, 'decided by the end of the default tier');
  }

  // Spoofing: a packet from wa with a source address that is not wa's is dropped.
  await a.ns.sh('ip addr add 192.168.10.99/32 dev eth0');
  const spoof = await a.ns.exec(['ping', '-c', '1', '-W', '1', '-I', '192.168.10.99', b.ip], { allowFail: true });
  t.not(spoof.code, 0, 'spoofed source dropped');

  // kill -9 during a flow: the flow continues, policy stays enforced while the agent is down.
  b.ns.spawn(['iperf3', '-s', '-1', '-p', '5201'], { stdio: 'ignore' });
  await eventually(async () => (await b.ns.exec(['ss', '-ltnH', 'sport = :5201'], { allowFail: true })).stdout.trim() !== '', true);
  const flow = a.ns.exec(['iperf3', '-c', b.ip, '-p', '5201', '-t', '3', '-J'], { timeoutMs: 20_000, allowFail: true });
  await new Promise((r) => setTimeout(r, 1000));
  await lab.killAgent('SIGKILL');
  const res = await flow;
  t.equal(res.code, 0, `iperf3 flow completed across the agent's death: ${res.stderr}`);
  const sent = JSON.parse(res.stdout).end?.sum_received?.bytes ?? 0;
  t.ok(sent > 1_000_000, `bytes received: ${sent}`);
  t.notOk(await pings(a.ns, b.ip), 'agent down: ICMP still denied');
  t.ok(await tcpConnects(a.ns, b.ip, 8080), 'agent down: tcp/8080 still allowed');

  // Change policy while the agent is down; a restart converges to it.
  await lab.client.apply(onlyAto8080(true) as never);
  t.notOk(await pings(a.ns, b.ip), 'nothing changes until the agent is back');
  lab.startAgent();
  await lab.waitReady();
  t.ok(await eventually(() => pings(a.ns, b.ip), true), 'after restart: ICMP allowed by the new policy');
  t.notOk(await tcpConnects(a.ns, b.ip, 9090), 'after restart: tcp/9090 still denied');

  // Deleting the policy brings back the profile's allow-all.
  await lab.client.delete('GlobalNetworkPolicy', 'b-ingress');
  t.ok(await eventually(() => tcpConnects(a.ns, b.ip, 9090), true), 'policy deleted: tcp/9090 allowed again');
  await lab.killAgent('SIGTERM');
  t.equal(lab.agent?.exitCode, 0, 'graceful stop exits 0');
  t.notMatch(lab.agentLog, /housekeeping failed|dataplane operation failed|"level":50/, 'no errors in the agent log');
});
