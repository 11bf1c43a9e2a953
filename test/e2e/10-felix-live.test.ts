// FelixConfiguration while the real tortie-node runs, with Felix's precedence (environment >
// node.<name> > default):
//   - default says Info, node.<name> says Debug: debug lines appear at once, no restart;
//   - node.<name> moves the health and metrics ports: the new ones answer, the old ones are closed;
//   - a conntrack timeout change (a load-time constant of the programs) makes the agent exit
//     129 naming the field, as Felix; started again (as systemd would), the shorter UDP timeout
//     shows in behaviour: a reply 3.5 s late is dropped where it passed before;
//   - FELIX_LOGSEVERITYSCREEN=Warning in the environment wins over node.<name>'s Debug.
import t from 'tap';
import { AgentBed, childEnv, eventually, type Workload } from '../../src/testbed';
import { workloadEndpointName, type Resource } from '../../src/model';
import type { Netns } from '../../src/util/netns';

const V3 = 'projectcalico.org/v3';

function felix(name: string, spec: Record<string, unknown>): Resource {
  return { apiVersion: V3, kind: 'FelixConfiguration', metadata: { name }, spec } as Resource;
}

function wep(w: Workload): Resource {
  const spec = { node: 'node-a', orchestrator: 'k8s', pod: w.name, endpoint: 'eth0', interfaceName: w.hostIf, ipNetworks: [`${w.ip}/32`], profiles: ['egress-only'] };
  return { apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { name: workloadEndpointName(spec as never) as string, namespace: 'default' }, spec } as unknown as Resource;
}

async function healthAnswers(ns: Netns, port: number): Promise<boolean> {
  const probe = `fetch('http://127.0.0.1:${port}/readyz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))`;
  return (await ns.exec([process.execPath, '-e', probe], { allowFail: true, env: childEnv() })).code === 0;
}

async function metricsAnswer(ns: Netns, port: number): Promise<boolean> {
  const probe = `fetch('http://127.0.0.1:${port}/metrics').then(r=>r.text()).then(t=>process.exit(t.includes('felix_resyncs_started')?0:1),()=>process.exit(1))`;
  return (await ns.exec([process.execPath, '-e', probe], { allowFail: true, env: childEnv() })).code === 0;
}

/** A link with the workload prefix (no endpoint): the agent attaches its programs and logs it at debug. */
async function addLink(node: Netns, name: string): Promise<void> {
  await node.sh(`ip link add ${name} type veth peer name ${name}p && ip link set ${name} up`);
  const attached = await eventually(async () => (await node.exec(['tc', 'filter', 'show', 'dev', name, 'ingress'])).stdout.includes('bpf'), true, 10_000);
  if (!attached) throw new Error(`no programs attached to ${name}`);
}

/**
 * The workload sends one UDP datagram out; the outside host answers at once and again 3.5 s
 * later. Which answers arrive says whether the flow's conntrack entry lived that long (the
 * workload's profile allows no ingress: only replies get in).
 */
async function udpReplies(lab: AgentBed, w: Workload, port: number): Promise<string[]> {
  const server = lab.outside.spawn(['/usr/bin/python3', '-c', `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('198.18.0.1', ${port}))
print('ready', flush=True)
data, peer = s.recvfrom(100)
s.sendto(b'early', peer)
time.sleep(3.5)
s.sendto(b'late', peer)
`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout!.on('data', (d) => { out += String(d); });
  if (!(await eventually(async () => out.includes('ready'), true, 5000))) throw new Error('UDP server not ready');
  const r = await w.ns.exec(['/usr/bin/python3', '-c', `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('${w.ip}', ${port}))
s.sendto(b'hi', ('198.18.0.1', ${port}))
got = []
deadline = time.time() + 6
while time.time() < deadline:
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        got.append(s.recv(100).decode())
    except socket.timeout:
        break
    if len(got) == 2:
        break
print(','.join(got))
`], { timeoutMs: 15_000 });
  return r.stdout.trim().split(',').filter(Boolean);
}

t.test('FelixConfiguration live: log severity and health port in place, conntrack timeouts by restart, environment wins', async (t) => {
  const lab = await AgentBed.create('flxlive');
  t.teardown(() => lab.destroy());
  await lab.outside.sh('ip route add 192.168.20.0/24 via 198.18.0.10');
  const wa = await lab.addWorkload('wa', '192.168.20.1', 'calia000000001');
  await lab.client.create({ apiVersion: V3, kind: 'Profile', metadata: { name: 'egress-only' }, spec: { egress: [{ action: 'Allow' }] } } as Resource);
  await lab.client.create(wep(wa));
  const p1 = lab.healthPort, p2 = lab.healthPort + 1;
  const m1 = lab.healthPort + 2, m2 = lab.healthPort + 3;
  await lab.client.create(felix('default', { healthPort: p1, logSeverityScreen: 'Info', prometheusMetricsPort: m1, prometheusMetricsHost: '127.0.0.1' }));
  const omit = ['--log-level', '--health-port', '--metrics-port'];
  const agent = lab.startAgent([], { omit });
  await lab.waitReady();
  const exited = new Promise<number | null>((r) => agent.child.once('exit', (code) => r(code)));
  const linesSince = (from: number) => lab.agentLog.slice(from).split('\n').filter(Boolean);
  const logged = (from: number, re: RegExp) => eventually(async () => linesSince(from).some((l) => re.test(l)), true, 10_000);

  await t.test('node.<name> Debug over default Info, applied without restart', async (t) => {
    await addLink(lab.node, 'calix1');
    t.notMatch(lab.agentLog, /"iface":"calix1"/, 'at Info the attach of calix1 is not logged');
    const at = lab.agentLog.length;
    await lab.client.create(felix('node.node-a', { logSeverityScreen: 'Debug' }));
    t.ok(await logged(at, /FelixConfiguration change applied without restart.*"field":"logSeverityScreen"|"field":"logSeverityScreen".*applied without restart/), 'the change is logged as applied');
    await addLink(lab.node, 'calix2');
    t.ok(await logged(at, /"level":20.*"iface":"calix2".*workload programs attached/), 'at Debug the attach of calix2 is logged');
    t.equal(agent.exitCode, null, 'no restart');
  });

  await t.test('node.<name> moves the health and metrics ports while running', async (t) => {
    t.ok(await metricsAnswer(lab.node, m1), `metrics on the default's ${m1}`);
    const cur = (await lab.client.get('FelixConfiguration', 'node.node-a'))!;
    await lab.client.update({ ...cur, spec: { ...cur.spec, healthPort: p2, prometheusMetricsPort: m2 } } as Resource);
    t.ok(await eventually(() => healthAnswers(lab.node, p2), true, 10_000), `the health endpoint answers on ${p2}`);
    t.notOk(await healthAnswers(lab.node, p1), `${p1} is closed`);
    t.ok(await eventually(() => metricsAnswer(lab.node, m2), true, 10_000), `metrics on ${m2}`);
    t.notOk(await metricsAnswer(lab.node, m1), `${m1} is closed`);
    const again = (await lab.client.get('FelixConfiguration', 'node.node-a'))!;
    await lab.client.update({ ...again, spec: { logSeverityScreen: 'Debug' } } as Resource);
    t.ok(await eventually(() => healthAnswers(lab.node, p1), true, 10_000), `the default's ${p1} again`);
    t.equal(agent.exitCode, null, 'no restart');
  });

  await t.test('UDP conntrack with the default timeout (60 s): a reply 3.5 s late gets in', async (t) => {
    t.same(await udpReplies(lab, wa, 5001), ['early', 'late']);
  });

  await t.test('bpfConntrackTimeouts changed: the agent exits 129 naming the field (as Felix)', async (t) => {
    const at = lab.agentLog.length;
    const def = (await lab.client.get('FelixConfiguration', 'default'))!;
    await lab.client.update({ ...def, spec: { ...def.spec, bpfConntrackTimeouts: { udpTimeout: '2s' } } } as Resource);
    t.equal(await exited, 129, 'exit code 129');
    t.ok(linesSince(at).some((l) => l.includes('"field":"bpfConntrackTimeouts"') && l.includes('restarts to apply it')), 'the log names the field');
  });

  await t.test('started again (as systemd would) with FELIX_LOGSEVERITYSCREEN=Warning', async (t) => {
    const at = lab.agentLog.length;
    lab.startAgent([], { omit, env: { FELIX_LOGSEVERITYSCREEN: 'Warning' } });
    await lab.waitReady();
    t.same(await udpReplies(lab, wa, 5002), ['early'], 'udpTimeout 2s: the late reply is dropped');
    await addLink(lab.node, 'calix3');
    const lines = linesSince(at).filter((l) => l.startsWith('{'));
    t.notOk(lines.some((l) => /"level":(20|30)/.test(l)), 'the environment\'s Warning wins over node.<name>\'s Debug: no debug or info lines');
  });
});
