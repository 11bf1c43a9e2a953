// The real tortie-node enforcing IPv6 on one node: dual-stack workload endpoints from the
// datastore, policy compiled for
// both families into tortie_cls6_v1 and the shared tables, a live policy change, the flow log of
// a denied IPv6 flow.
import t from 'tap';
import { AgentBed, eventually, pings, tcpConnects } from '../../src/testbed';
import type { Resource } from '../../src/model';
import { allowAllProfile, k8sWep } from '../../src/testbed/fixtures';


const wep = (pod: string, ip: string, ip6: string, iface: string, app: string): Resource => {
  const w = k8sWep({ node: 'node-a', pod, ip, iface, labels: { app } });
  w.spec.ipNetworks = [...(w.spec.ipNetworks ?? []), `${ip6}/128`];
  return w;
};

const bIngress = (icmp6: boolean): Resource => ({
  apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'b-ingress' },
  spec: {
    selector: "app == 'b'", types: ['Ingress'],
    ingress: [
      { action: 'Deny', ipVersion: 6, protocol: 'TCP', destination: { ports: [9090] } },
      { action: 'Allow', protocol: 'TCP', source: { selector: "app == 'a'" }, destination: { ports: [8080, 9090] } },
      ...(icmp6 ? [{ action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128 } }] : []),
    ],
  },
} as unknown as Resource);

t.test('the agent enforces IPv6 policy from the datastore', async (t) => {
  const lab = await AgentBed.create('e2eagent6');
  t.teardown(() => lab.destroy());
  const a = await lab.addWorkload('wa', '192.168.11.1', 'calia000000011', 'fd00:11::1');
  const b = await lab.addWorkload('wb', '192.168.11.2', 'calib000000012', 'fd00:11::2');
  for (const port of [8080, 9090]) b.ns.spawn(['socat', `TCP6-LISTEN:${port},fork,reuseaddr,ipv6only=0`, 'EXEC:cat'], { stdio: 'ignore' });
  await lab.client.apply(allowAllProfile('allow-all') as never);
  await lab.client.apply(wep('wa', a.ip, a.ip6!, a.hostIf, 'a') as never);
  await lab.client.apply(wep('wb', b.ip, b.ip6!, b.hostIf, 'b') as never);
  await lab.client.apply(bIngress(false) as never);
  lab.startAgent();
  await lab.waitReady();

  t.ok(await eventually(() => tcpConnects(a.ns, b.ip6!, 8080), true, 10_000), 'a -> b tcp/8080 over IPv6 (selector)');
  t.ok(await tcpConnects(a.ns, b.ip, 9090), 'a -> b tcp/9090 over IPv4');
  t.notOk(await tcpConnects(a.ns, b.ip6!, 9090), 'a -> b tcp/9090 over IPv6: denied by the ipVersion 6 rule');
  t.notOk(await pings(a.ns, b.ip6!), 'ping6 denied (no ICMPv6 rule)');
  t.ok(await pings(b.ns, a.ip6!), 'b -> a ping6 (a has the allow-all profile; the reply via conntrack)');
  await lab.client.apply(bIngress(true) as never);
  t.ok(await eventually(() => pings(a.ns, b.ip6!), true), 'after a live policy change, ping6 allowed');
  const denied = () => lab.agentLog.split('\n').filter((l) => l.includes('"msg":"flow denied"') && l.includes(`"dst":"${b.ip6}"`) && l.includes('"dstPort":9090'));
  t.ok(await eventually(async () => denied().length > 0, true), 'the denied IPv6 flow is in the flow log');
  const flow = denied()[0] ? JSON.parse(denied()[0]!).flow : undefined;
  t.equal(flow?.src, a.ip6, 'with its IPv6 source');
  t.match(flow?.rule, { kind: 'rule', index: 0 }, 'naming the ipVersion 6 deny rule');
  const spoof = await a.ns.sh('ip -6 addr add fd00:11::99/128 dev eth0 nodad && ping -6 -c 1 -W 1 -I fd00:11::99 fd00:11::2', { allowFail: true });
  t.not(spoof.code, 0, 'a spoofed IPv6 source is dropped');
});

t.test('ipv6Support false (FelixConfiguration): the agent programs no IPv6, IPv4 unchanged', async (t) => {
  const lab = await AgentBed.create('e2eagent6off');
  t.teardown(() => lab.destroy());
  const a = await lab.addWorkload('wa', '192.168.12.1', 'calia000000021', 'fd00:12::1');
  const b = await lab.addWorkload('wb', '192.168.12.2', 'calib000000022', 'fd00:12::2');
  b.ns.spawn(['socat', 'TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=0', 'EXEC:cat'], { stdio: 'ignore' });
  await lab.client.apply(allowAllProfile('allow-all') as never);
  await lab.client.apply(wep('wa', a.ip, a.ip6!, a.hostIf, 'a') as never);
  await lab.client.apply(wep('wb', b.ip, b.ip6!, b.hostIf, 'b') as never);
  await lab.client.apply(bIngress(true) as never);
  await lab.client.apply({ apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { ipv6Support: false } } as never);
  lab.startAgent();
  await lab.waitReady();
  t.ok(await eventually(() => tcpConnects(a.ns, b.ip, 8080), true, 10_000), 'a -> b tcp/8080 over IPv4');
  t.notOk(await tcpConnects(a.ns, b.ip6!, 8080), 'a -> b tcp/8080 over IPv6: not programmed, dropped');
  t.notOk(await pings(a.ns, b.ip6!), 'ping6 (allowed by policy) dropped too');
  t.match(lab.agentLog, /IPv6 is not programmed \(ipv6Support false\)/, 'the agent says so');
  t.match(lab.agentLog, /"from":\{[^}]*"ipv6Support":"FelixConfiguration default"/, 'the setting came from FelixConfiguration default');
});
