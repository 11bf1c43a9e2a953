/**
 * Installed like a runtime expects (bin dir + 10-tortie.conflist) and driven the way kubelet
 * does it: many ADDs at once on one node, then many DELs at once. Every pod gets its own
 * address, interface and endpoint; afterwards nothing is left.
 */
import t from 'tap';
import { cniBed, runPlugin } from '../../src/testbed';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCni, pluginConfig, type NetworkConfigList } from '../../src/cni/install';
import { IpamClient } from '../../src/ipam';

t.test('parallel ADD and DEL on two nodes through an installed conflist', async (t) => {
  const bed = await cniBed('cnipar', '192.168.0.0/24', { blockSize: 29 });
  const root = mkdtempSync(join(tmpdir(), 'tortie-install-'));
  t.teardown(async () => { await bed.destroy(); rmSync(root, { recursive: true, force: true }); });
  // A socket of its own that nobody serves: the plugin processes, never an agent elsewhere that
  // serves the default socket.
  const { binaries, confList } = installCni({
    binDir: join(root, 'bin'), confDir: join(root, 'net.d'), socket: join(root, 'no-server.sock'),
    network: { nodename: 'node-a', datastore: { type: 'embedded', dir: bed.store.dir } },
  });
  t.same(binaries.map((b) => b.slice(root.length)), ['/bin/tortie', '/bin/tortie-ipam']);
  const list = JSON.parse(readFileSync(confList!, 'utf8')) as NetworkConfigList;
  t.equal(list.name, 'k8s-pod-network');
  t.equal(list.plugins[0]!.type, 'tortie');
  t.same(list.plugins[0]!.ipam, { type: 'tortie-ipam' });
  const conf = pluginConfig(list, 0);
  t.equal(conf.cniVersion, '1.0.0');
  t.equal(conf.name, 'k8s-pod-network');

  const N = 10; // more than one /29 block (8 addresses): the node claims blocks while ADDs race
  const pods = await Promise.all(Array.from({ length: N }, (_, i) => bed.addWorkload(`p${i}`)));
  const env = (i: number, cmd: string) => ({
    CNI_COMMAND: cmd, CNI_CONTAINERID: `par${i}`, CNI_NETNS: `/run/netns/${pods[i]!.name}`, CNI_IFNAME: 'eth0',
    CNI_ARGS: `K8S_POD_NAMESPACE=ns${i % 2};K8S_POD_NAME=pod-${i}`,
  });
  // Meanwhile a second node (its own namespace, same datastore) adds its own pods.
  const nodeB = await bed.topo.addNetns('nodeb');
  const confB = pluginConfig({ ...list, plugins: [{ ...list.plugins[0]!, nodename: 'node-b' }] }, 0);
  const podsB = await Promise.all(Array.from({ length: 4 }, (_, i) => bed.addWorkload(`q${i}`)));
  const envB = (i: number, cmd: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: `qb${i}`, CNI_NETNS: `/run/netns/${podsB[i]!.name}`, CNI_IFNAME: 'eth0' });
  const [adds, addsB] = await Promise.all([
    Promise.all(pods.map((_, i) => runPlugin(bed.node, 'tortie', env(i, 'ADD'), conf, join(root, 'bin')))),
    Promise.all(podsB.map((_, i) => runPlugin(nodeB, 'tortie', envB(i, 'ADD'), confB, join(root, 'bin')))),
  ]);
  addsB.forEach((r, i) => t.equal(r.code, 0, `node-b ADD ${i}: ${r.stdout}`));
  const ipsB = addsB.map((r) => (r.out as { ips: { address: string }[] }).ips[0]!.address);
  adds.forEach((r, i) => t.equal(r.code, 0, `ADD ${i}: ${r.stdout}`));
  const ips = adds.map((r) => (r.out as { ips: { address: string }[] }).ips[0]!.address);
  t.equal(new Set([...ips, ...ipsB]).size, N + ipsB.length, 'distinct addresses across both nodes');
  const blocksA = await new IpamClient(bed.store.ds).affineBlockCidrs('node-a');
  const blocksB = await new IpamClient(bed.store.ds).affineBlockCidrs('node-b');
  t.same(blocksA.filter((b) => blocksB.includes(b)), [], 'the nodes claimed different blocks');
  t.ok((await new IpamClient(bed.store.ds).affineBlockCidrs('node-a')).length >= 2, 'a second block was claimed');
  const weps = (await bed.store.rc.list('WorkloadEndpoint')).items;
  t.equal(weps.length, N + ipsB.length);
  t.same(new Set(weps.map((w) => w.spec.ipNetworks![0])), new Set([...ips, ...ipsB]));
  const cali = (await bed.node.exec(['ip', '-o', 'link', 'show'])).stdout.split('\n').filter((l) => / cali[0-9a-f]{11}@/.test(l));
  t.equal(cali.length, N, 'one host veth per pod');
  const caliB = (await nodeB.exec(['ip', '-o', 'link', 'show'])).stdout.split('\n').filter((l) => / cali[0-9a-f]{11}@/.test(l));
  t.equal(caliB.length, ipsB.length, 'node-b\'s veths in node-b\'s namespace');
  // The first pod reaches the last one.
  const last = ips[N - 1]!.split('/')[0]!;
  t.match((await pods[0]!.exec(['ping', '-c', '1', '-W', '2', last], { allowFail: true })).stdout, /1 received/);

  const [dels, delsB] = await Promise.all([
    Promise.all(pods.map((_, i) => runPlugin(bed.node, 'tortie', env(i, 'DEL'), conf, join(root, 'bin')))),
    Promise.all(podsB.map((_, i) => runPlugin(nodeB, 'tortie', envB(i, 'DEL'), confB, join(root, 'bin')))),
  ]);
  delsB.forEach((r, i) => t.equal(r.code, 0, `node-b DEL ${i}: ${r.stdout}`));
  dels.forEach((r, i) => t.equal(r.code, 0, `DEL ${i}: ${r.stdout}`));
  t.same((await bed.store.rc.list('WorkloadEndpoint')).items, [], 'no endpoints left');
  const blocks = await new IpamClient(bed.store.ds).listBlocks();
  t.equal(blocks.reduce((s, b) => s + b.allocations.filter((a) => a !== null).length, 0), 0, 'no addresses left allocated');
  t.same((await bed.store.ds.list('/calico/ipam/v2/handle/')).items, [], 'no handles left');
  t.notMatch((await bed.node.exec(['ip', '-o', 'link', 'show'])).stdout, /cali[0-9a-f]{11}/, 'no host veths left');
  t.notMatch((await nodeB.exec(['ip', '-o', 'link', 'show'])).stdout, /cali[0-9a-f]{11}/, 'none on node-b either');
});
