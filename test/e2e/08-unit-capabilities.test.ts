// The systemd unit's CapabilityBoundingSet is what the agent really needs: a real tortie-node
// limited to exactly those capabilities (setpriv, as systemd would) becomes ready, attaches its
// programs and writes its routes; without any one of them it fails to start.
import t from 'tap';
import type { Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentBed, PROJECT_ROOT, eventually } from '../../src/testbed';
import { workloadEndpointName, type Resource } from '../../src/model';

const unit = readFileSync(join(PROJECT_ROOT, 'packaging/systemd/tortie-node.service'), 'utf8');
const CAPS = /^CapabilityBoundingSet=(.*)$/m.exec(unit)![1]!.trim().split(/\s+/);

async function startWith(t: Test, caps: string[]): Promise<{ ready: boolean; lab: AgentBed }> {
  const lab = await AgentBed.create('e2ecaps');
  t.teardown(() => lab.destroy());
  const a = await lab.addWorkload('wa', '192.168.70.1', 'calia000000001');
  await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'allow-all' }, spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] } } as never);
  await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'pool' }, spec: { cidr: '192.168.0.0/16', ipipMode: 'Always', natOutgoing: true } } as never);
  await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'node-b' }, spec: { bgp: { ipv4Address: '198.18.0.20/24' } } } as never);
  for (const [node, pod, ip, ifn] of [['node-a', 'wa', a.ip, a.hostIf], ['node-b', 'wb', '192.168.71.5', 'calib000000002']]) {
    const spec = { node, orchestrator: 'k8s', pod, endpoint: 'eth0', interfaceName: ifn, ipNetworks: [`${ip}/32`], profiles: ['allow-all'] };
    await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name: workloadEndpointName(spec as never) as string, namespace: 'default' }, spec } as unknown as Resource as never);
  }
  const bounding = ['-all', ...caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
  lab.startAgent([], { wrap: ['setpriv', '--bounding-set', bounding] });
  try {
    await lab.waitReady(20_000);
    return { ready: true, lab };
  } catch {
    return { ready: false, lab };
  }
}

t.test(`with exactly the unit's capabilities (${CAPS.join(' ')}) the agent works`, async (t) => {
  t.ok(CAPS.length > 0 && CAPS.every((c) => /^CAP_[A-Z_]+$/.test(c)), 'the unit names capabilities');
  const { ready, lab } = await startWith(t, CAPS);
  t.ok(ready, ready ? 'ready' : `not ready:\n${lab.agentLog}`);
  t.match((await lab.node.exec(['tc', 'filter', 'show', 'dev', 'calia000000001', 'ingress'])).stdout, /tortie_from_wep/, 'workload programs attached');
  t.ok(await eventually(async () => (await lab.node.exec(['ip', 'route', 'show', 'proto', '122'])).stdout.includes('192.168.71.5'), true), 'route to the remote workload written');
  // The agent process (nsenter and setpriv exec it) holds exactly these capabilities.
  const NUM: Record<string, number> = { CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_SYS_ADMIN: 21, CAP_SYS_RESOURCE: 24, CAP_PERFMON: 38, CAP_BPF: 39 };
  const want = CAPS.reduce((m, c) => m | (1n << BigInt(NUM[c] ?? 63)), 0n);
  const eff = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${lab.agent!.pid}/status`, 'utf8'))?.[1];
  t.equal(eff && BigInt(`0x${eff}`), want, 'the running agent\'s effective capabilities are the unit\'s set');
});

for (const missing of CAPS) {
  t.test(`without ${missing} the agent cannot start`, async (t) => {
    const { ready, lab } = await startWith(t, CAPS.filter((c) => c !== missing));
    t.notOk(ready, `not ready without ${missing}`);
    t.match(lab.agentLog, /EPERM|EACCES|not permitted|permission denied/i, 'fails on a permission error');
  });
}
