/**
 * The testbed wires a workload with the CNI plugin's own steps (cni/netlink wireSteps): a workload
 * wired that way and one wired by the real `tortie` plugin in the same node end up alike — host
 * side (MAC, MTU, up, proxy ARP, proxy delay, forwarding, the /32 route), container side
 * (address, the two routes, MTU) — and traffic between them and to the outside flows. The node
 * sysctls are the layouts' one set; pin roots follow one scheme and nothing else is removed.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { cniBed, runPlugin, wireWorkload, runWireSteps, pinRoot, removePinRoot, NODE_SYSCTLS, SingleNode, pings, type Netns } from '../../src/testbed';
import { wireSteps, HOST_MAC } from '../../src/cni/netlink';

t.test('wireSteps: the plugin\'s steps, in order, as data', async (t) => {
  const steps = wireSteps({ hostName: 'calix', contName: 'eth0', netns: '/run/netns/w', mtu: 1480, contMac: '02:00:00:00:00:01', ips: ['192.168.1.2/32'] });
  t.same(steps.map((s) => s.kind), ['ip', 'sysctl', 'sysctl', 'sysctl', 'batch', 'batch']);
  t.same(steps[0], { kind: 'ip', ns: 'host', args: ['link', 'add', 'calix', 'mtu', '1480', 'address', HOST_MAC, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1480', 'address', '02:00:00:00:00:01', 'netns', '/run/netns/w'] });
  t.same(steps.slice(1, 4), [
    { kind: 'sysctl', key: 'net/ipv4/conf/calix/proxy_arp', value: '1' },
    { kind: 'sysctl', key: 'net/ipv4/neigh/calix/proxy_delay', value: '0' },
    { kind: 'sysctl', key: 'net/ipv4/conf/calix/forwarding', value: '1' },
  ]);
  t.same(steps[4], { kind: 'batch', ns: 'host', lines: [`link set dev calix mtu 1480 address ${HOST_MAC} up`, 'route replace 192.168.1.2/32 dev calix scope link'] });
  t.same(steps[5], { kind: 'batch', ns: 'container', lines: ['link set dev eth0 mtu 1480 up', 'addr replace 192.168.1.2/32 dev eth0',
    'route replace 169.254.1.1 dev eth0 scope link', 'route replace default via 169.254.1.1 dev eth0'] });
});

/** What a wired workload looks like from both sides, with its own names and address taken out. */
async function shape(node: Netns, hostIf: string, ws: Netns, ip: string): Promise<unknown> {
  const link = JSON.parse((await node.exec(['ip', '-j', '-d', 'link', 'show', hostIf])).stdout)[0];
  const sysctl = async (p: string) => (await node.exec(['cat', `/proc/sys/net/ipv4/${p}`])).stdout.trim();
  const hostRoutes = (await node.exec(['ip', '-4', 'route', 'show', 'dev', hostIf])).stdout.split(ip).join('IP');
  const cont = JSON.parse((await ws.exec(['ip', '-j', '-d', 'link', 'show', 'eth0'])).stdout)[0];
  const contAddrs = (await ws.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout.split(ip).join('IP').replace(/^\d+: /, '').replace(/\s+valid_lft.*$/s, '');
  const contRoutes = (await ws.exec(['ip', '-4', 'route', 'show'])).stdout;
  return {
    host: { mac: link.address, mtu: link.mtu, kind: link.linkinfo?.info_kind, up: link.flags.includes('UP'), routes: hostRoutes,
      proxyArp: await sysctl(`conf/${hostIf}/proxy_arp`), proxyDelay: await sysctl(`neigh/${hostIf}/proxy_delay`), forwarding: await sysctl(`conf/${hostIf}/forwarding`) },
    container: { mtu: cont.mtu, up: cont.flags.includes('UP'), addrs: contAddrs, routes: contRoutes },
  };
}

t.test('a workload wired by the steps looks like one wired by the real plugin', async (t) => {
  const bed = await cniBed('tbwire', '192.168.94.0/24');
  t.teardown(() => bed.destroy());
  const pod = await bed.addWorkload('viacni');
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'tbwire1', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=viacni' };
  const add = await runPlugin(bed.node, 'tortie', env, bed.conf(), bed.cniPath);
  t.equal(add.code, 0, `ADD: ${add.stdout}${add.stderr}`);
  const res = add.out as { ips: { address: string }[]; interfaces: { name: string }[] };
  const cniIp = res.ips[0]!.address.split('/')[0]!;
  const w = await wireWorkload(bed.topo, bed.node, { name: 'viasteps', ip: '192.168.94.200' });
  t.equal(w.hostIf, 'caliviasteps');
  t.same(await shape(bed.node, w.hostIf, w.ns, w.ip), await shape(bed.node, res.interfaces[0]!.name, pod, cniIp), 'same host and container side');
  t.ok(await pings(w.ns, cniIp), 'the two workloads reach each other through the node');
  t.ok(await pings(pod, w.ip), 'and back');
});

t.test('layouts: one set of node sysctls; steps run in order', async (t) => {
  const bed = await SingleNode.create('tbsys');
  t.teardown(() => bed.destroy());
  for (const kv of NODE_SYSCTLS) {
    const [k, v] = kv.split('=');
    t.equal((await bed.node.exec(['sysctl', '-n', k!])).stdout.trim(), v, kv);
  }
  const w = await bed.addWorkload('w', '192.168.95.1');
  t.ok(await pings(w.ns, bed.nodeIp), 'workload reaches the node through proxy ARP for 169.254.1.1');
  await t.rejects(runWireSteps(bed.node, w.ns, [{ kind: 'ip', ns: 'host', args: ['link', 'add', w.hostIf, 'type', 'dummy'] }]),
    /command failed/, 'a failing step fails loudly');
  const noFwd = await SingleNode.create('tbnofwd', { forwarding: false });
  t.teardown(() => noFwd.destroy());
  t.equal((await noFwd.node.exec(['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim(), '0', 'forwarding: false leaves ip_forward off');
});

t.test('pin roots: one scheme, removed by their owner or at exit, nothing else removed', async (t) => {
  const a = pinRoot('tbpins');
  t.match(a, /^\/sys\/fs\/bpf\/tortie-tbpins-\d+-[0-9a-f]{6}$/);
  t.ok(existsSync(a));
  const b = pinRoot('tbpins', { create: false });
  t.not(a, b, 'unique per call');
  t.notOk(existsSync(b), 'create: false leaves it to the agent');
  removePinRoot(a);
  t.notOk(existsSync(a));
  for (const bad of ['/sys/fs/bpf/tortie', '/sys/fs/bpf/tortie-x', '/tmp/tortie-tbpins-1-abcdef', '/sys/fs/bpf/tortie-a/../../x-1-abcdef']) {
    t.throws(() => removePinRoot(bad), /refusing to remove/, `refuses ${bad}`);
  }
});
