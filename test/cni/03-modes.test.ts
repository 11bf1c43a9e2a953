/**
 * Policy-only mode beside another plugin; tortie-ipam in-process when it is not on CNI_PATH;
 * DEL of a container whose pod has since been re-created.
 */
import t from 'tap';
import { cniBed, runPlugin } from '../../src/testbed';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { IpamClient } from '../../src/ipam';

const sha11 = (s: string): string => createHash('sha1').update(s).digest('hex').slice(0, 11);
const podArgs = (ns: string, pod: string) => `K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${pod}`;

t.test('policy_only: only the WorkloadEndpoint, for the interface the other plugin made', async (t) => {
  const bed = await cniBed('cnipol');
  t.teardown(() => bed.destroy());
  const pod = await bed.addWorkload('pod');
  // What the other plugin (AWS VPC CNI style) did: host veth eni<hash>, address and routes.
  const hostIf = `eni${sha11('shop.cart-1')}`;
  await bed.topo.addVeth(bed.node, hostIf, pod, 'eth0');
  await pod.exec(['ip', 'addr', 'add', '198.18.40.7/32', 'dev', 'eth0']);
  const podMac = JSON.parse((await pod.exec(['ip', '-j', 'link', 'show', 'eth0'])).stdout)[0].address;
  const prevResult = {
    cniVersion: '1.0.0',
    interfaces: [{ name: hostIf }, { name: 'eth0', mac: podMac, sandbox: `/run/netns/${pod.name}` }],
    ips: [{ address: '198.18.40.7/32', interface: 1 }],
  };
  const conf = bed.conf({ policy_only: true, interface_prefix: 'eni', ipam: undefined, prevResult, labels: { app: 'cart' } });
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'cafe01', CNI_NETNS: `/run/netns/${pod.name}`, CNI_IFNAME: 'eth0', CNI_ARGS: podArgs('shop', 'cart-1') };
  const linkBefore = (await bed.node.exec(['ip', '-d', 'link', 'show', hostIf])).stdout;
  const routesBefore = (await bed.node.exec(['ip', '-4', 'route', 'show', 'table', 'all'])).stdout;

  const add = await runPlugin(bed.node, 'tortie', env, conf, bed.cniPath);
  t.equal(add.code, 0, add.stdout);
  t.same(add.out, prevResult, 'prevResult passed through');
  const weps = (await bed.store.rc.list('WorkloadEndpoint', 'shop')).items;
  t.equal(weps.length, 1);
  t.equal(weps[0]!.spec.interfaceName, hostIf);
  t.same(weps[0]!.spec.ipNetworks, ['198.18.40.7/32']);
  t.equal(weps[0]!.spec.mac, podMac);
  t.same(weps[0]!.spec.profiles, ['kns.shop']);
  t.equal(weps[0]!.metadata.labels?.app, 'cart');
  t.equal((await bed.node.exec(['ip', '-d', 'link', 'show', hostIf])).stdout, linkBefore, 'interface untouched');
  t.equal((await bed.node.exec(['ip', '-4', 'route', 'show', 'table', 'all'])).stdout, routesBefore, 'no routes added');
  t.same((await bed.store.ds.list('/calico/ipam/')).items, [], 'no IPAM');

  const chk = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'CHECK' }, conf, bed.cniPath);
  t.equal(chk.code, 0, `CHECK: ${chk.stdout}`);

  const noPrev = await runPlugin(bed.node, 'tortie', env, { ...conf, prevResult: undefined }, bed.cniPath);
  t.equal(noPrev.out?.code, 7);
  t.match(String(noPrev.out?.msg), /prevResult: policy_only mode needs/);
  // prevResult names a host interface that is not the peer of eth0, and none exists: refused.
  const wrongPrev = { ...prevResult, interfaces: [{ name: 'eninosuch' }, prevResult.interfaces[1]!] };
  const otherPod = await runPlugin(bed.node, 'tortie', { ...env, CNI_ARGS: podArgs('shop', 'cart-2') }, { ...conf, prevResult: wrongPrev }, bed.cniPath);
  t.equal(otherPod.out?.code, 102, otherPod.stdout);
  t.match(String(otherPod.out?.msg), new RegExp(`cannot tell the host interface of eth0: .*prevResult names eninosuch.* eni${sha11('shop.cart-2')} .* does not exist`));

  const del = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, conf, bed.cniPath);
  t.equal(del.code, 0, del.stdout);
  t.same((await bed.store.rc.list('WorkloadEndpoint', 'shop')).items, [], 'endpoint deleted');
  t.equal((await bed.node.exec(['ip', 'link', 'show', hostIf], { allowFail: true })).code, 0, 'the other plugin\'s interface is left alone');
});

t.test('tortie-ipam runs in-process when it is not on CNI_PATH', async (t) => {
  const bed = await cniBed('cniinproc');
  const onlyTortie = mkdtempSync(join(tmpdir(), 'tortie-cnipath-'));
  t.teardown(async () => { await bed.destroy(); rmSync(onlyTortie, { recursive: true, force: true }); });
  symlinkSync(resolve(__dirname, '..', '..', '..', 'bin', 'tortie.js'), join(onlyTortie, 'tortie'));
  const pod = await bed.addWorkload('pod');
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'inproc1', CNI_NETNS: `/run/netns/${pod.name}`, CNI_IFNAME: 'eth0' };
  const add = await runPlugin(bed.node, 'tortie', env, bed.conf(), onlyTortie);
  t.equal(add.code, 0, add.stdout);
  const ip = (add.out as { ips: { address: string }[] }).ips[0]!.address;
  t.same((await new IpamClient(bed.store.ds).ipsByHandle('k8s-pod-network.inproc1')).map((x) => x.cidr), [ip]);
  t.match((await pod.exec(['ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout, ip);
  const del = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, bed.conf(), onlyTortie);
  t.equal(del.code, 0, del.stdout);
  t.same(await new IpamClient(bed.store.ds).ipsByHandle('k8s-pod-network.inproc1'), []);
});

t.test('a re-created pod: ADD replaces the old veth; DEL of the old container only releases its address', async (t) => {
  const bed = await cniBed('cnirecreate');
  t.teardown(() => bed.destroy());
  const sandbox1 = await bed.addWorkload('s1');
  const sandbox2 = await bed.addWorkload('s2');
  const hostIf = `cali${sha11('default.web-0')}`;
  const env = (cid: string, ns: string) => ({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_ARGS: podArgs('default', 'web-0') });
  const a1 = await runPlugin(bed.node, 'tortie', env('old1', sandbox1.name), bed.conf(), bed.cniPath);
  t.equal(a1.code, 0, a1.stdout);
  const a2 = await runPlugin(bed.node, 'tortie', env('new2', sandbox2.name), bed.conf(), bed.cniPath);
  t.equal(a2.code, 0, a2.stdout);
  t.not((await sandbox1.exec(['ip', 'link', 'show', 'eth0'], { allowFail: true })).code, 0, 'old sandbox lost its interface with the old veth');
  t.equal((await sandbox2.exec(['ip', 'link', 'show', 'eth0'], { allowFail: true })).code, 0);
  const ipam = new IpamClient(bed.store.ds);
  t.equal((await ipam.ipsByHandle('k8s-pod-network.old1')).length, 1);

  const delOld = await runPlugin(bed.node, 'tortie', { ...env('old1', sandbox1.name), CNI_COMMAND: 'DEL' }, bed.conf(), bed.cniPath);
  t.equal(delOld.code, 0, delOld.stdout);
  t.same(await ipam.ipsByHandle('k8s-pod-network.old1'), [], 'old container\'s address released');
  t.equal((await ipam.ipsByHandle('k8s-pod-network.new2')).length, 1, 'new container keeps its address');
  t.equal((await bed.node.exec(['ip', 'link', 'show', hostIf], { allowFail: true })).code, 0, 'veth of the new container kept');
  const weps = (await bed.store.rc.list('WorkloadEndpoint', 'default')).items;
  t.equal(weps.length, 1);
  t.equal(weps[0]!.spec.containerID, 'new2', 'endpoint of the new container kept');
  const chk = await runPlugin(bed.node, 'tortie', { ...env('new2', sandbox2.name), CNI_COMMAND: 'CHECK' }, bed.conf({ prevResult: a2.out }), bed.cniPath);
  t.equal(chk.code, 0, `new container still checks out: ${chk.stdout}`);
});

t.test('delegation to another IPAM plugin on CNI_PATH follows the spec', async (t) => {
  const bed = await cniBed('cnideleg');
  const dir = mkdtempSync(join(tmpdir(), 'tortie-cnipath-'));
  t.teardown(async () => { await bed.destroy(); rmSync(dir, { recursive: true, force: true }); });
  symlinkSync(resolve(__dirname, '..', '..', '..', 'bin', 'tortie.js'), join(dir, 'tortie'));
  // A third-party IPAM plugin: records how it was called, answers ADD with a fixed address,
  // and fails with "try again later" when the config asks it to.
  const { writeFileSync, readFileSync, chmodSync } = await import('node:fs');
  const log = join(dir, 'calls.log');
  writeFileSync(join(dir, 'fake-ipam'), `#!/bin/sh
conf=$(cat)
printf '%s %s %s %s\\n' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$conf" >> ${log}
case "$conf" in *'"fail":true'*) echo '{"cniVersion":"1.0.0","code":11,"msg":"pool busy"}'; exit 1;; esac
[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.0.0","ips":[{"address":"192.168.200.9/24","gateway":"192.168.200.1"}]}'
exit 0
`);
  chmodSync(join(dir, 'fake-ipam'), 0o755);
  const pod = await bed.addWorkload('pod');
  const conf = bed.conf({ ipam: { type: 'fake-ipam', subnet: '192.168.200.0/24' } });
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'deleg1', CNI_NETNS: `/run/netns/${pod.name}`, CNI_IFNAME: 'eth0' };
  const add = await runPlugin(bed.node, 'tortie', env, conf, dir);
  t.equal(add.code, 0, add.stdout);
  t.same((add.out as { ips: unknown }).ips, [{ address: '192.168.200.9/32', interface: 1 }], 'the delegated address, as a /32 on the workload');
  t.match((await pod.exec(['ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout, /inet 192\.168\.200\.9\/32 /);
  const del = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, conf, dir);
  t.equal(del.code, 0, del.stdout);
  const calls = readFileSync(log, 'utf8').trim().split('\n');
  t.equal(calls.length, 2);
  t.match(calls[0], /^ADD deleg1 eth0 \{.*"type":"tortie".*"ipam":\{"type":"fake-ipam","subnet":"192\.168\.200\.0\/24"\}/, 'ADD got the same env and the whole network config');
  t.match(calls[1], /^DEL deleg1 eth0 /);
  const busy = await runPlugin(bed.node, 'tortie', env, bed.conf({ ipam: { type: 'fake-ipam', fail: true } }), dir);
  t.equal(busy.out?.code, 11, 'the delegate\'s error code is passed through');
  t.match(String(busy.out?.msg), /IPAM plugin fake-ipam ADD: pool busy/);
});

t.test('a failed ADD undoes what it did: no veth, no endpoint, address released', async (t) => {
  const bed = await cniBed('cniundo');
  t.teardown(() => bed.destroy());
  const pod = await bed.addWorkload('pod');
  const other = await bed.addWorkload('other');
  await bed.topo.addVeth(pod, 'eth0', other, 'x0'); // the sandbox already has an eth0
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'undo1', CNI_NETNS: `/run/netns/${pod.name}`, CNI_IFNAME: 'eth0' };
  const r = await runPlugin(bed.node, 'tortie', env, bed.conf(), bed.cniPath);
  t.equal(r.code, 1);
  t.equal(r.out?.code, 102);
  t.match(String(r.out?.msg), /interface eth0 already exists in \/run\/netns\//);
  t.same(await new IpamClient(bed.store.ds).ipsByHandle('k8s-pod-network.undo1'), [], 'address released');
  t.same((await bed.store.rc.list('WorkloadEndpoint')).items, [], 'no endpoint');
  t.notMatch((await bed.node.exec(['ip', '-o', 'link', 'show'])).stdout, /cali[0-9a-f]{11}/, 'no host veth');
  t.match((await pod.exec(['ip', '-o', 'link', 'show', 'eth0'])).stdout, /eth0@/, 'the sandbox\'s own interface untouched');
});

t.test('CNI_ARGS IP= asks for a specific address', async (t) => {
  const bed = await cniBed('cnistatic');
  t.teardown(() => bed.destroy());
  const p1 = await bed.addWorkload('p1');
  const p2 = await bed.addWorkload('p2');
  const env = (cid: string, ns: string) => ({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;IP=192.168.33.44' });
  const r = await runPlugin(bed.node, 'tortie', env('st1', p1.name), bed.conf(), bed.cniPath);
  t.equal(r.code, 0, r.stdout);
  t.same((r.out as { ips: unknown }).ips, [{ address: '192.168.33.44/32', interface: 1 }]);
  t.match((await p1.exec(['ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout, /inet 192\.168\.33\.44\/32 /);
  const again = await runPlugin(bed.node, 'tortie', env('st1', p1.name), bed.conf(), bed.cniPath);
  t.equal(again.code, 0, 'repeat ADD');
  const taken = await runPlugin(bed.node, 'tortie', env('st2', p2.name), bed.conf(), bed.cniPath);
  t.equal(taken.out?.code, 101);
  t.match(String(taken.out?.msg), /192\.168\.33\.44 is already assigned \(handle k8s-pod-network\.st1\)/);
  t.notMatch((await bed.node.exec(['ip', '-o', 'link', 'show'])).stdout, new RegExp(`cali${createHash('sha1').update('st2').digest('hex').slice(0, 11)}`), 'nothing built for the refused container');
});
