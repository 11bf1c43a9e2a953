// `tortie-node cleanup` in a node namespace: after a real agent programmed workload hooks, the
// uplink (XDP, there for a doNotTrack deny policy's prefilter entry, + tc), a route to a remote node's workload and its pins, and then stopped (leaving
// all of it enforcing, on purpose), cleanup brings the namespace back to exactly what it was
// before the agent started: qdiscs, filters, XDP, routes, sysctls, pins. It refuses while the
// agent runs, and a second run finds nothing.
import t from 'tap';
import { existsSync } from 'node:fs';
import { AgentBed, childEnv, eventually } from '../../src/testbed';
import { run } from '../../src/util/netns';
import { AGENT_BIN } from '../../src/node/launch';
import type { Resource } from '../../src/model';
import { allowAllProfile, k8sWep } from '../../src/testbed/fixtures';

const wep = (node: string, pod: string, ip: string, iface: string): Resource => k8sWep({ node, pod, ip, iface });

const SNAPSHOT = `for d in $(ls /sys/class/net | sort); do
  echo "== $d"; tc qdisc show dev $d; tc filter show dev $d ingress; tc filter show dev $d egress
  ip -d link show dev $d | grep -o 'prog/xdp[^ ]* id [0-9]*\\|xdpgeneric\\|xdp ' || true
done
echo "== routes"; ip -4 route show table all
echo "== sysctls"; sysctl -a 2>/dev/null | grep -E '^net\\.ipv4\\.(ip_forward|conf\\.[^.]+\\.(forwarding|proxy_arp|rp_filter|accept_local)) ' | sort`;

t.test('cleanup leaves the node namespace as it found it', async (t) => {
  const lab = await AgentBed.create('e2eclean');
  const runDir = lab.runDir;
  t.teardown(() => lab.destroy());
  const a = await lab.addWorkload('wa', '192.168.40.1', 'calia000000001');
  await lab.client.apply(allowAllProfile('allow-all') as never);
  await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'pool' }, spec: { cidr: '192.168.0.0/16', ipipMode: 'Always', natOutgoing: true } } as never);
  await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'node-b' }, spec: { bgp: { ipv4Address: '198.18.0.20/24' } } } as never);
  await lab.client.apply(wep('node-a', 'wa', a.ip, a.hostIf) as never);
  await lab.client.apply(wep('node-b', 'wb', '192.168.41.5', 'calib000000002') as never);
  // A prefilter entry, so the uplink gets the XDP prefilter (it is attached only while it has one).
  await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'dnt-deny' },
    spec: { selector: 'all()', doNotTrack: true, applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Deny', source: { nets: ['198.18.99.0/24'] } }] } } as never);

  const snapshot = async () => (await lab.node.sh(SNAPSHOT)).stdout;
  const before = await snapshot();
  t.notOk(existsSync(lab.pinRoot), 'no pins before');

  lab.startAgent();
  await lab.waitReady();
  t.ok(await eventually(async () => (await lab.node.exec(['ip', 'route', 'show', 'proto', '122'])).stdout.includes('192.168.41.5'), true), 'the agent routed the remote workload (proto 122)');
  const during = await snapshot();
  t.match(during, /== calia000000001[\s\S]*clsact[\s\S]*tortie_from_wep[\s\S]*tortie_to_wep/, 'workload hooks attached');
  t.match(during, /== eth0[\s\S]*prog\/xdp/, 'XDP on the uplink');
  t.ok(existsSync(lab.pinRoot), 'pins exist');

  const cleanup = (...args: string[]) => run(['nsenter', `--net=${lab.node.path}`, '--', process.execPath, AGENT_BIN, 'cleanup', '--bpffs-root', lab.pinRoot, '--run-dir', runDir, ...args],
    { env: childEnv(), allowFail: true });
  const refused = await cleanup();
  t.equal(refused.code, 1, 'refused while the agent runs');
  t.match(refused.stderr, /tortie-node is running \(node-a pid \d+/);
  t.equal(await snapshot(), during, 'a refused cleanup changes nothing');

  await lab.killAgent('SIGTERM');
  t.equal(await snapshot(), during, 'a stopped agent leaves the datapath in place (enforcing)');
  t.ok(existsSync(lab.pinRoot));

  const done = await cleanup();
  t.equal(done.code, 0, done.stderr);
  t.match(done.stdout, /detached calia000000001 tc ingress tortie_from_wep/);
  t.match(done.stdout, /detached eth0 xdp/);
  t.match(done.stdout, /removed route 192\.168\.41\.5/);
  t.match(done.stdout, /removed pins under/);
  t.equal(await snapshot(), before, 'qdiscs, filters, XDP, routes and sysctls exactly as before the agent');
  t.notOk(existsSync(lab.pinRoot), 'pins removed');

  const again = await cleanup();
  t.equal(again.code, 0);
  t.match(again.stdout, /^nothing of tortie found/, 'idempotent');
});
