/** Pure parts of the plugins: configuration, CNI_ARGS, result shapes, names, datastore choice. */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatResult, parseCniArgs, parseEnv, parseNetConf } from '../../src/cni/config';
import { datastoreConfig, handleIdFor, hostVethName, nodeName, workloadIdentity } from '../../src/cni/context';

const base = { cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tortie', ipam: { type: 'tortie-ipam' } };

t.test('a full configuration parses', async (t) => {
  const c = parseNetConf(JSON.stringify({
    ...base, datastore_type: 'etcdv3', etcd_endpoints: 'http://127.0.0.1:2379, http://127.0.0.1:22379', nodename: 'n1', mtu: 1480,
    policy: { type: 'k8s' }, labels: { a: 'b' }, profiles: ['p1'], ports: [{ name: 'dns', protocol: 'udp', port: 53 }],
    args: { cni: { labels: [{ key: 'c', value: 'd' }], ports: [{ name: 'http', port: 80 }] } }, log_level: 'debug', extra: 'kept',
    ipam: { type: 'tortie-ipam', ipv4_pools: ['default-ipv4-ippool'] },
  }));
  t.match(c, { cniVersion: '1.0.0', datastore_type: 'etcdv3', nodename: 'n1', mtu: 1480, policy: { type: 'k8s' }, labels: { a: 'b', c: 'd' }, profiles: ['p1'] });
  t.same(c.ports, [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'http', protocol: 'TCP', port: 80 }]);
  t.same(c.ipam?.ipv4_pools, ['default-ipv4-ippool']);
  t.equal(c.raw.extra, 'kept', 'unknown fields kept for delegates');
  t.same(datastoreConfig(c, {}), { type: 'etcdv3', endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.1:22379'], caFile: undefined, certFile: undefined, keyFile: undefined });
});

t.test('datastore choice: config, then the Calico environment', async (t) => {
  const emb = parseNetConf(JSON.stringify({ ...base, datastore_type: 'embedded', datastore_path: '/var/lib/x' }));
  t.same(datastoreConfig(emb, {}), { type: 'embedded', dir: '/var/lib/x' });
  const none = parseNetConf(JSON.stringify(base));
  t.same(datastoreConfig(none, { TORTIE_DATASTORE_DIR: '/d' }), { type: 'embedded', dir: '/d' });
  t.match(datastoreConfig(none, { ETCD_ENDPOINTS: 'http://127.0.0.1:2379' }), { type: 'etcdv3', endpoints: ['http://127.0.0.1:2379'] });
  t.same(datastoreConfig(parseNetConf(JSON.stringify({ ...base, datastore_path: '/p' })), {}), { type: 'embedded', dir: '/p' });
  t.throws(() => parseNetConf(JSON.stringify({ ...base, datastore_type: 'etcdv3' })), { message: /etcd_endpoints: is required/ });
});

t.test('node name: nodename, nodename_file, NODENAME, hostname', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-nodename-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'nodename'), 'from-file\n');
  t.equal(nodeName(parseNetConf(JSON.stringify({ ...base, nodename: 'cfg', nodename_file: join(dir, 'nodename') })), { NODENAME: 'env' }), 'cfg');
  t.equal(nodeName(parseNetConf(JSON.stringify({ ...base, nodename_file: join(dir, 'nodename') })), { NODENAME: 'env' }), 'from-file');
  t.equal(nodeName(parseNetConf(JSON.stringify(base)), { NODENAME: 'env' }), 'env');
  t.equal(nodeName(parseNetConf(JSON.stringify(base)), {}), hostname().toLowerCase());
  t.throws(() => nodeName(parseNetConf(JSON.stringify({ ...base, nodename_file: join(dir, 'missing') })), {}), { cniCode: 7, message: /nodename_file/ });
});

t.test('CNI_ARGS, identity and names', async (t) => {
  t.same(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;X=a=b'), { IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'ns', K8S_POD_NAME: 'p', X: 'a=b' });
  t.same(parseCniArgs(''), {});
  const env = parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/proc/1/ns/net', CNI_IFNAME: 'eth0', CNI_ARGS: 'K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p', CNI_PATH: '/a:/b' });
  t.same(env.path, ['/a', '/b']);
  t.same(workloadIdentity(env), { orchestrator: 'k8s', namespace: 'ns', workload: 'p', workloadId: 'ns.p', pod: 'p' });
  t.match(workloadIdentity({ ...env, args: {} }), { orchestrator: 'cni', namespace: 'default', workloadId: 'abc' });
  // podman: K8S_POD_NAME (the container name) without a namespace is a plain CNI workload, as in
  // Calico; so is a namespace without a pod name.
  t.same(workloadIdentity({ ...env, args: { IgnoreUnknown: '1', K8S_POD_NAME: 'blissful_raman' } }),
    { orchestrator: 'cni', namespace: 'default', workload: 'abc', workloadId: 'abc', containerName: 'blissful_raman' });
  t.same(workloadIdentity({ ...env, args: { K8S_POD_NAMESPACE: 'ns' } }), { orchestrator: 'cni', namespace: 'default', workload: 'abc', workloadId: 'abc' });
  t.equal(handleIdFor(parseNetConf(JSON.stringify(base)), env), 'k8s-pod-network.abc');
  const v = hostVethName('ns.p');
  t.match(v, /^cali[0-9a-f]{11}$/);
  t.equal(hostVethName('ns.p'), v, 'stable');
  t.not(hostVethName('ns.q'), v);
  t.match(hostVethName('ns.p', 'eni'), /^eni[0-9a-f]{11}$/);
  t.equal(parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'abc', CNI_IFNAME: 'eth0' }).netns, '', 'DEL needs no netns');
});

t.test('results in each version\'s shape', async (t) => {
  const r = { cniVersion: '1.0.0', ips: [{ address: '10.0.0.1/32', interface: 1 }, { address: 'fd00::1/128' }] };
  t.same(formatResult(r, '0.3.1'), { cniVersion: '0.3.1', ips: [{ address: '10.0.0.1/32', interface: 1, version: '4' }, { address: 'fd00::1/128', version: '6' }] });
  t.same(formatResult(formatResult(r, '0.4.0'), '1.0.0'), r, '1.0.0 drops "version"');
});
