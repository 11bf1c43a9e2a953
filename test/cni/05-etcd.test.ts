/**
 * The plugins' etcd path (config `datastore_type: etcdv3`, `etcd_endpoints`): tortie-ipam
 * ADD/CHECK/DEL against a real etcd on 127.0.0.1. tortie-ipam touches no interface, so it runs
 * as a plain child process; the etcd server lives in the root namespace's loopback, which a
 * plugin inside a test namespace cannot reach — that case must fail with "try again later".
 */
import t from 'tap';
import { makeCniPath, runPlugin } from '../../src/testbed';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { openDatastore } from '../../src/datastore';
import { ResourceClient } from '../../src/client/resources';
import { IpamClient } from '../../src/ipam';
import { Topology } from '../../src/util/netns';
import { EtcdCluster } from '../../src/testbed/etcd';
import { pool } from '../../src/testbed/fixtures';

const IPAM_BIN = resolve(__dirname, '..', '..', '..', 'bin', 'tortie-ipam.js');

function ipamPlugin(env: Record<string, string>, conf: object): Promise<{ code: number; out: Record<string, unknown> | undefined; ms: number }> {
  const started = Date.now();
  return new Promise((res) => {
    const child = execFile(process.execPath, [IPAM_BIN], { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (err, stdout) => {
      let out: Record<string, unknown> | undefined;
      try { out = stdout.trim() ? JSON.parse(stdout) : undefined; } catch { out = undefined; }
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out, ms: Date.now() - started });
    });
    child.stdin?.end(JSON.stringify(conf));
  });
}

t.test('tortie-ipam on etcd', async (t) => {
  const cluster = await EtcdCluster.start(1);
  t.teardown(() => cluster.stop());
  const ds = openDatastore({ type: 'etcdv3', endpoints: cluster.endpoints() });
  t.teardown(() => ds.close());
  await new ResourceClient(ds).create(pool('etcd-pool', '192.168.90.0/24'));
  const conf = {
    cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tortie', nodename: 'etcd-node',
    datastore_type: 'etcdv3', etcd_endpoints: cluster.endpoints().join(','), ipam: { type: 'tortie-ipam' },
  };
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'etcd1', CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'eth0', CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=p1' };
  const add = await ipamPlugin(env, conf);
  t.equal(add.code, 0, JSON.stringify(add.out));
  t.ok(add.ms < 20_000, `the plugin exits promptly after closing its etcd client (${add.ms} ms)`);
  const ip = (add.out as { ips: { address: string }[] }).ips[0]!.address;
  t.match(ip, /^192\.168\.90\.\d+\/26$/, 'with its block\'s prefix, as libcalico-go\'s AutoAssign returns it');
  const ipam = new IpamClient(ds);
  const held = await ipam.ipsByHandle('k8s-pod-network.etcd1');
  t.same(held.map((x) => `${x.ip}/26`), [ip]);
  const blk = (await ipam.listBlocks())[0]!;
  t.same(blk.attributes[0]!.secondary, { node: 'etcd-node', containerID: 'etcd1', namespace: 'default', pod: 'p1' });
  t.same((await ipamPlugin(env, conf)).out, add.out, 'repeat ADD');
  t.equal((await ipamPlugin({ ...env, CNI_COMMAND: 'CHECK' }, { ...conf, prevResult: add.out })).code, 0);
  const del = await ipamPlugin({ ...env, CNI_COMMAND: 'DEL' }, conf);
  t.equal(del.code, 0, JSON.stringify(del.out));
  t.same(await ipam.ipsByHandle('k8s-pod-network.etcd1'), []);

  // From a namespace whose loopback has no etcd: recoverable failure, code 11.
  const topo = Topology.create('cnietcd');
  t.teardown(() => topo.destroy());
  const node = await topo.addNetns('node');
  const pod = await topo.addNetns('pod');
  const cp = makeCniPath();
  t.teardown(() => cp.cleanup());
  const r = await runPlugin(node, 'tortie', { ...env, CNI_NETNS: `/run/netns/${pod.name}` }, conf, cp.dir);
  t.equal(r.out?.code, 11);
  t.match(String(r.out?.msg), /etcd/);
  t.equal((await node.exec(['ip', '-o', 'link', 'show'])).stdout.split('\n').filter(Boolean).length, 1, 'nothing created in the node namespace');
});
