/**
 * The real `tortie` plugin (exec'd as a runtime would, delegating to the real `tortie-ipam` on
 * CNI_PATH) inside a test namespace acting as the node: ADD builds the veth, addresses, routes,
 * sysctls and WorkloadEndpoint; two workloads talk through the node; repeated ADD converges;
 * CHECK verifies; DEL removes everything and releases the address.
 */
import t from 'tap';
import { cniBed, runPlugin } from '../../src/testbed';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpamClient } from '../../src/ipam';

const sha11 = (s: string): string => createHash('sha1').update(s).digest('hex').slice(0, 11);

t.test('ADD, traffic, repeated ADD, CHECK, DEL', async (t) => {
  const bed = await cniBed('cniadd');
  t.teardown(() => bed.destroy());
  const podA = await bed.addWorkload('pa');
  const podB = await bed.addWorkload('pb');
  const env = (cid: string, ns: string, pod: string) => ({
    CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${cid}`,
  });
  const conf = bed.conf({ labels: { app: 'web' }, args: { cni: { ports: [{ name: 'http', protocol: 'TCP', port: 8080 }] } }, dns: { nameservers: ['198.18.0.53'], search: ['svc.cluster.local'] } });

  const a = await runPlugin(bed.node, 'tortie', env('aaaa1111', podA.name, 'pod-a'), conf, bed.cniPath);
  t.equal(a.code, 0, `ADD a succeeded: ${a.stdout} ${a.stderr}`);
  const res = a.out as { cniVersion: string; ips: { address: string; interface: number }[]; interfaces: { name: string; mac: string; sandbox?: string }[] };
  t.equal(res.cniVersion, '1.0.0');
  t.equal(res.ips.length, 1);
  t.match(res.ips[0]!.address, /^192\.168\.\d+\.\d+\/32$/);
  const ipA = res.ips[0]!.address.split('/')[0]!;
  const hostA = `cali${sha11('default.pod-a')}`;
  t.equal(hostA.length, 15);
  t.same(res.interfaces.map((i) => i.name), [hostA, 'eth0']);
  t.equal(res.interfaces[1]!.sandbox, `/run/netns/${podA.name}`);
  t.equal(res.ips[0]!.interface, 1);
  t.same((a.out as { dns: unknown }).dns, { nameservers: ['198.18.0.53'], search: ['svc.cluster.local'] }, 'dns from the config');

  // Host side.
  const link = JSON.parse((await bed.node.exec(['ip', '-j', '-d', 'link', 'show', hostA])).stdout)[0];
  t.equal(link.address, 'ee:ee:ee:ee:ee:ee');
  t.equal(link.linkinfo.info_kind, 'veth');
  t.ok(link.flags.includes('UP'));
  t.equal(link.mtu, 1500);
  const sysctl = async (p: string) => (await bed.node.exec(['cat', p])).stdout.trim();
  t.equal(await sysctl(`/proc/sys/net/ipv4/conf/${hostA}/proxy_arp`), '1');
  t.equal(await sysctl(`/proc/sys/net/ipv4/neigh/${hostA}/proxy_delay`), '0');
  t.equal(await sysctl(`/proc/sys/net/ipv4/conf/${hostA}/forwarding`), '1');
  const hostRoutes = (await bed.node.exec(['ip', '-4', 'route', 'show', 'dev', hostA])).stdout;
  t.match(hostRoutes, new RegExp(`^${ipA.replace(/\./g, '\\.')} scope link`, 'm'));

  // Container side.
  const caddr = (await podA.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
  t.match(caddr, new RegExp(`inet ${ipA.replace(/\./g, '\\.')}/32 `));
  const croutes = (await podA.exec(['ip', '-4', 'route', 'show'])).stdout;
  t.match(croutes, /^default via 169\.254\.1\.1 dev eth0/m);
  t.match(croutes, /^169\.254\.1\.1 dev eth0 scope link/m);
  t.match((await podA.exec(['ip', '-o', 'link', 'show', 'eth0'])).stdout, /mtu 1500/);
  const cmac = JSON.parse((await podA.exec(['ip', '-j', 'link', 'show', 'eth0'])).stdout)[0].address;
  const nodeLinks = JSON.parse((await bed.node.exec(['ip', '-j', 'link', 'show'])).stdout).map((l: { ifname: string }) => l.ifname).sort();
  t.same(nodeLinks, [hostA, 'eth0', 'lo'].sort(), 'only the host side of the veth was added to the node namespace');

  // WorkloadEndpoint.
  const weps = (await bed.store.rc.list('WorkloadEndpoint', 'default')).items;
  t.equal(weps.length, 1);
  const wep = weps[0]!;
  t.equal(wep.metadata.name, 'node--a-k8s-pod--a-eth0');
  t.equal(wep.metadata.labels?.app, 'web');
  t.equal(wep.metadata.labels?.['projectcalico.org/namespace'], 'default');
  t.equal(wep.metadata.labels?.['projectcalico.org/orchestrator'], 'k8s');
  t.same(wep.spec.ipNetworks, [`${ipA}/32`]);
  t.equal(wep.spec.interfaceName, hostA);
  t.equal(wep.spec.mac, cmac);
  t.equal(wep.spec.node, 'node-a');
  t.equal(wep.spec.pod, 'pod-a');
  t.equal(wep.spec.containerID, 'aaaa1111');
  t.same(wep.spec.profiles, ['kns.default']);
  t.same(wep.spec.ports, [{ name: 'http', protocol: 'TCP', port: 8080 }]);

  // A second workload, and traffic between the two through the node (plain routing).
  const b = await runPlugin(bed.node, 'tortie', env('bbbb2222', podB.name, 'pod-b'), conf, bed.cniPath);
  t.equal(b.code, 0, `ADD b: ${b.stdout}`);
  const ipB = ((b.out as { ips: { address: string }[] }).ips[0]!.address).split('/')[0]!;
  t.not(ipB, ipA);
  const ping = await podA.exec(['ping', '-c', '2', '-i', '0.2', '-W', '2', ipB], { allowFail: true });
  t.match(ping.stdout, /2 received/, 'pod a reaches pod b');
  const pingBack = await podB.exec(['ping', '-c', '1', '-W', '2', ipA], { allowFail: true });
  t.match(pingBack.stdout, /1 received/, 'pod b reaches pod a');
  t.match((await podA.exec(['ip', 'neigh', 'show', '169.254.1.1'])).stdout, /lladdr ee:ee:ee:ee:ee:ee/, 'the node answered ARP for the gateway (proxy ARP)');

  // Repeated ADD: same address, same interfaces, still works.
  const again = await runPlugin(bed.node, 'tortie', env('aaaa1111', podA.name, 'pod-a'), conf, bed.cniPath);
  t.equal(again.code, 0, `repeated ADD: ${again.stdout}`);
  t.same((again.out as { ips: unknown }).ips, res.ips, 'same address');
  t.equal(JSON.parse((await podA.exec(['ip', '-j', 'link', 'show', 'eth0'])).stdout)[0].address, cmac, 'same interface kept');
  t.match((await podA.exec(['ping', '-c', '1', '-W', '2', ipB], { allowFail: true })).stdout, /1 received/);

  // CHECK passes, then fails once a route is gone.
  const checkConf = { ...conf, prevResult: a.out };
  const chk = await runPlugin(bed.node, 'tortie', { ...env('aaaa1111', podA.name, 'pod-a'), CNI_COMMAND: 'CHECK' }, checkConf, bed.cniPath);
  t.equal(chk.code, 0, `CHECK ok: ${chk.stdout}`);
  t.equal(chk.stdout.trim(), '');
  await bed.node.exec(['sh', '-c', `echo 0 > /proc/sys/net/ipv4/conf/${hostA}/forwarding`]);
  const chkFwd = await runPlugin(bed.node, 'tortie', { ...env('aaaa1111', podA.name, 'pod-a'), CNI_COMMAND: 'CHECK' }, checkConf, bed.cniPath);
  t.equal(chkFwd.out?.code, 103);
  t.match(chkFwd.out?.msg, new RegExp(`conf/${hostA}/forwarding is 0, expected 1`));
  const readd = await runPlugin(bed.node, 'tortie', env('aaaa1111', podA.name, 'pod-a'), conf, bed.cniPath);
  t.equal(readd.code, 0, 'a repeated ADD repairs it');
  t.equal((await runPlugin(bed.node, 'tortie', { ...env('aaaa1111', podA.name, 'pod-a'), CNI_COMMAND: 'CHECK' }, checkConf, bed.cniPath)).code, 0);
  await podA.exec(['ip', 'route', 'del', 'default']);
  const chk2 = await runPlugin(bed.node, 'tortie', { ...env('aaaa1111', podA.name, 'pod-a'), CNI_COMMAND: 'CHECK' }, checkConf, bed.cniPath);
  t.equal(chk2.code, 1);
  t.equal(chk2.out?.code, 103);
  t.match(chk2.out?.msg, /default route via 169\.254\.1\.1/);

  // DEL removes everything and releases the address.
  const ipam = new IpamClient(bed.store.ds);
  t.equal((await ipam.ipsByHandle('k8s-pod-network.aaaa1111')).length, 1);
  const del = await runPlugin(bed.node, 'tortie', { ...env('aaaa1111', podA.name, 'pod-a'), CNI_COMMAND: 'DEL' }, conf, bed.cniPath);
  t.equal(del.code, 0, `DEL: ${del.stdout}`);
  t.equal(del.stdout.trim(), '');
  t.not((await bed.node.exec(['ip', 'link', 'show', hostA], { allowFail: true })).code, 0, 'host veth gone');
  t.not((await podA.exec(['ip', 'link', 'show', 'eth0'], { allowFail: true })).code, 0, 'container side gone');
  t.notMatch((await bed.node.exec(['ip', '-4', 'route', 'show'])).stdout, new RegExp(ipA.replace(/\./g, '\\.') + ' '), 'host route gone');
  t.same(await ipam.ipsByHandle('k8s-pod-network.aaaa1111'), [], 'address released');
  t.equal((await bed.store.rc.list('WorkloadEndpoint', 'default')).items.length, 1, 'only b\'s endpoint left');

  const del2 = await runPlugin(bed.node, 'tortie', { ...env('aaaa1111', podA.name, 'pod-a'), CNI_COMMAND: 'DEL' }, conf, bed.cniPath);
  t.equal(del2.code, 0, 'repeated DEL succeeds');
  const delUnknown = await runPlugin(bed.node, 'tortie', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'feedbeef', CNI_NETNS: '/run/netns/nonexistent', CNI_IFNAME: 'eth0' }, conf, bed.cniPath);
  t.equal(delUnknown.code, 0, `DEL of an unknown container succeeds: ${delUnknown.stdout}`);
});

t.test('MTU: 1480 by default when the pool uses IPIP; the config value otherwise wins', async (t) => {
  const bed = await cniBed('cnimtu', '192.168.0.0/16', { ipipMode: 'CrossSubnet', natOutgoing: true });
  t.teardown(() => bed.destroy());
  const p1 = await bed.addWorkload('p1');
  const p2 = await bed.addWorkload('p2');
  const env = (cid: string, ns: string) => ({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0' });
  const r1 = await runPlugin(bed.node, 'tortie', env('c1', p1.name), bed.conf(), bed.cniPath);
  t.equal(r1.code, 0, r1.stdout);
  t.match((await p1.exec(['ip', '-o', 'link', 'show', 'eth0'])).stdout, /mtu 1480/);
  const host1 = `cali${sha11('c1')}`;
  t.match((await bed.node.exec(['ip', '-o', 'link', 'show', host1])).stdout, /mtu 1480/);
  const r2 = await runPlugin(bed.node, 'tortie', env('c2', p2.name), bed.conf({ mtu: 1400 }), bed.cniPath);
  t.equal(r2.code, 0, r2.stdout);
  t.match((await p2.exec(['ip', '-o', 'link', 'show', 'eth0'])).stdout, /mtu 1400/);
  const wep = (await bed.store.rc.list('WorkloadEndpoint')).items.find((w) => w.spec.containerID === 'c1')!;
  t.equal(wep.spec.orchestrator, 'cni');
  t.equal(wep.spec.workload, 'c1', 'plain CNI workloads are named by their container id');
  t.equal(wep.spec.pod, undefined);
  t.equal(wep.metadata.name, 'node--a-cni-c1-eth0');
  t.same(wep.spec.profiles, ['k8s-pod-network'], 'plain CNI workloads get the network name as profile');
});

t.test('MTU: 1450 by default when the pool uses VXLAN (ENCAP_OVERHEAD, one table with the agent)', async (t) => {
  const bed = await cniBed('cnimtuv', '192.168.0.0/16', { ipipMode: 'Never', vxlanMode: 'Always', natOutgoing: true });
  t.teardown(() => bed.destroy());
  const p1 = await bed.addWorkload('p1');
  const r1 = await runPlugin(bed.node, 'tortie', { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'v1', CNI_NETNS: `/run/netns/${p1.name}`, CNI_IFNAME: 'eth0' }, bed.conf(), bed.cniPath);
  t.equal(r1.code, 0, r1.stdout);
  t.match((await p1.exec(['ip', '-o', 'link', 'show', 'eth0'])).stdout, /mtu 1450/);
});

t.test("MTU: what tortie-node detected (its MTU file, as Calico's /var/lib/calico/mtu) unless the config says", async (t) => {
  const bed = await cniBed('cnimtuf', '192.168.0.0/16', { ipipMode: 'CrossSubnet', natOutgoing: true });
  t.teardown(() => bed.destroy());
  const dir = mkdtempSync(join(tmpdir(), 'tortie-cni-mtu-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'mtu');
  writeFileSync(file, '8981\n'); // as src/dataplane/routes.ts writes it (test/networking/15 checks the agent's file)
  const env = (cid: string, ns: string) => ({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0' });
  const cases: [string, Record<string, unknown>, string | undefined, RegExp][] = [
    ['f1', { mtu_file: file }, undefined, /mtu 8981/],
    ['f2', { mtu_file: file, mtu: 1400 }, undefined, /mtu 1400/],
    ['f3', { mtu_file: file }, 'garbage\n', /mtu 1480/],
    ['f4', { mtu_file: join(dir, 'absent') }, undefined, /mtu 1480/],
  ];
  for (const [name, conf, content, want] of cases) {
    if (content !== undefined) writeFileSync(file, content);
    const p = await bed.addWorkload(name);
    const r = await runPlugin(bed.node, 'tortie', env(`c-${name}`, p.name), bed.conf(conf), bed.cniPath);
    t.equal(r.code, 0, r.stdout);
    t.match((await p.exec(['ip', '-o', 'link', 'show', 'eth0'])).stdout, want, `${name}: ${JSON.stringify(conf)}${content ? ` file ${JSON.stringify(content)}` : ''}`);
    t.match((await bed.node.exec(['ip', '-o', 'link', 'show', `cali${sha11(`c-${name}`)}`])).stdout, want, 'the host side too');
  }
  const bad = await runPlugin(bed.node, 'tortie', env('c-bad', 'nonexistent'), bed.conf({ mtu_file: 'relative/mtu' }), bed.cniPath);
  t.match(bad.stdout, /mtu_file.*must be an absolute path/);
});
