import t from 'tap';
import { EmbeddedDatastore } from '../../src/datastore';
import { IpamClient } from '../../src/ipam';
import { cliFor } from './helpers/cli';

/** A /24 pool of /26 blocks and the node that takes them. */
const SEED = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool1}
spec: {cidr: 192.168.0.0/24, blockSize: 26}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node1}
spec: {bgp: {ipv4Address: 198.18.0.10/24}}
`;

t.test('ipam show: pool usage, --show-blocks, --ip', async (t) => {
  const cli = cliFor(t, 'tortiectl-ipam-');
  t.equal((await cli.run(['apply', '-f', '-'], { stdin: SEED })).code, 0);
  const empty = await cli.run(['ipam', 'show']);
  t.equal(empty.code, 0, empty.stderr);
  t.match(empty.stdout, /\| IP Pool +\| 192\.168\.0\.0\/24 +\| +256 \| 0 \(0%\) +\| 256 \(100%\) +\|/);

  const ds = new EmbeddedDatastore({ dir: cli.storeDir });
  const ipam = new IpamClient(ds);
  const a = await ipam.assign({ handleId: 'k8s-pod-network.c1', node: 'node1', attrs: { namespace: 'default', pod: 'web-1' } });
  await ipam.assign({ handleId: 'k8s-pod-network.c2', node: 'node1', num: 2 });
  await ds.close();

  const shown = await cli.run(['ipam', 'show']);
  t.equal(shown.code, 0);
  t.match(shown.stdout, /\| IP Pool +\| 192\.168\.0\.0\/24 +\| +256 \| 3 \(1%\) +\| 253 \(99%\) +\|/);
  t.notMatch(shown.stdout, /\| Block /, 'no block rows without --show-blocks');
  const blocks = await cli.run(['ipam', 'show', '--show-blocks']);
  t.match(blocks.stdout, new RegExp(`\\| Block +\\| ${a.ips[0].block.replace(/\./g, '\\.')} +\\| +64 \\| 3 \\(5%\\) +\\| 61 \\(95%\\) +\\|`));
  t.match(blocks.stdout, /\| node1 +\|/, 'blocks per node');

  const ip = a.ips[0].ip;
  const one = await cli.run(['ipam', 'show', `--ip=${ip}`]);
  t.equal(one.code, 0);
  t.match(one.stdout, new RegExp(`^IP ${ip.replace(/\./g, '\\.')} is in use\nHandle ID: k8s-pod-network\\.c1\n`));
  t.match(one.stdout, /^Attributes:\n(  \S+: \S+\n)*  namespace: default\n(  \S+: \S+\n)*  pod: web-1\n/m, "attributes, sorted by key");
  t.same(await cli.run(['ipam', 'show', '--ip=192.168.0.200']), { code: 0, stdout: '192.168.0.200 is not assigned\n', stderr: '' });
  t.same(await cli.run(['ipam', 'show', '--ip=300.1.1.1']), { code: 1, stdout: '', stderr: 'invalid IP address: 300.1.1.1 (expected an IPv4 or IPv6 address)\n' });
  t.equal((await cli.run(['ipam', 'split'])).code, 1, 'other ipam verbs are not implemented');
  t.equal((await cli.run(['ipam', 'show', 'extra'])).code, 1);
});

t.test('ipam check finds a leak, ipam release --ip frees it', async (t) => {
  const cli = cliFor(t, 'tortiectl-ipam-rel-');
  t.equal((await cli.run(['apply', '-f', '-'], { stdin: SEED })).code, 0);
  const ds = new EmbeddedDatastore({ dir: cli.storeDir });
  const ipam = new IpamClient(ds);
  // Two workload allocations; only the first has its WorkloadEndpoint: the second is a leak
  // (a runtime that never called DEL).
  const kept = (await ipam.assign({ handleId: 'k8s-pod-network.c1', node: 'node1', attrs: { containerID: 'c1', namespace: 'default', pod: 'web-1' } })).ips[0]!.ip;
  const leak = (await ipam.assign({ handleId: 'k8s-pod-network.c2', node: 'node1', attrs: { containerID: 'c2', namespace: 'default', pod: 'gone' } })).ips[0]!.ip;
  await ds.close();
  const wep = `apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node1-k8s-web--1-eth0, namespace: default}
spec: {node: node1, orchestrator: k8s, endpoint: eth0, containerID: c1, pod: web-1, interfaceName: cali0123456789a, ipNetworks: ['${kept}/32']}
`;
  const applied = await cli.run(['apply', '-f', '-'], { stdin: wep });
  t.equal(applied.code, 0, applied.stderr);

  const check = await cli.run(['ipam', 'check']);
  t.equal(check.code, 0, check.stderr);
  t.match(check.stdout, /^Checking IPAM for inconsistencies\.\.\.\n/);
  t.match(check.stdout, /Found 2 allocated addresses|with 2 allocated addresses/);
  t.match(check.stdout, /Found 1 in-use IPs that are not in active workload endpoints\./);
  t.notMatch(check.stdout, new RegExp(leak.replace(/\./g, '\\.')), 'counts only without --show-problem-ips');
  t.match(check.stdout, /Problems found\.\n$/);
  const detail = await cli.run(['ipam', 'check', '--show-problem-ips']);
  t.match(detail.stdout, new RegExp(`\\n  ${leak.replace(/\./g, '\\.')} handle k8s-pod-network\\.c2 \\(`), 'the leaked address, with its handle');
  t.notMatch(detail.stdout, new RegExp(`  ${kept.replace(/\./g, '\\.')} `), 'the address in use is not listed');

  t.same(await cli.run(['ipam', 'release', `--ip=${leak}`]), { code: 0, stdout: `Successfully released IP address ${leak}\n`, stderr: '' });
  const after = await cli.run(['ipam', 'check']);
  t.match(after.stdout, /Found 0 in-use IPs that are not in active workload endpoints\./);
  t.match(after.stdout, /No problems found\.\n$/);
  t.same(await cli.run(['ipam', 'show', `--ip=${leak}`]), { code: 0, stdout: `${leak} is not assigned\n`, stderr: '' });
  t.match((await cli.run(['ipam', 'show', `--ip=${kept}`])).stdout, /is in use/, 'the other address is untouched');

  t.same(await cli.run(['ipam', 'release', `--ip=${leak}`]), { code: 1, stdout: '', stderr: `IP address ${leak} is not assigned\n` });
  t.same(await cli.run(['ipam', 'release', '--ip=192.168.0.300']), { code: 1, stdout: '', stderr: 'invalid IP address: 192.168.0.300 (expected an IPv4 or IPv6 address)\n' });
  const noIp = await cli.run(['ipam', 'release']);
  t.equal(noIp.code, 1);
  t.match(noIp.stderr, /ipam release needs --ip=<IP>/);
  const report = await cli.run(['ipam', 'release', '--from-report=r.json']);
  t.equal(report.code, 1);
  t.match(report.stderr, /--from-report is not supported by tortiectl ipam release/);
  t.match((await cli.run(['ipam', 'check', '-o', 'r.json'])).stderr, /--output is not supported by tortiectl ipam check/);
});

t.test('IPv6: ipam show (pool size as calicoctl prints it), show --ip, release --ip, check', async (t) => {
  const cli = cliFor(t, 'tortiectl-ipam6-');
  const env = cli.env;
  const seed = `${SEED}---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool6}
spec: {cidr: 'fd00:10::/64'}
`;
  const applied = await cli.run(['apply', '-f', '-'], { stdin: seed, env });
  t.equal(applied.code, 0, applied.stderr);
  const ds = new EmbeddedDatastore({ dir: cli.storeDir });
  const ipam = new IpamClient(ds);
  const a = await ipam.assign({ handleId: 'k8s-pod-network.c6', node: 'node1', family: 6, attrs: { namespace: 'default', pod: 'web-6' } });
  await ds.close();
  const ip = a.ips[0]!.ip;

  const shown = await cli.run(['ipam', 'show', '--show-blocks'], { env });
  t.equal(shown.code, 0, shown.stderr);
  t.match(shown.stdout, /\| IP Pool +\| fd00:10::\/64 +\| 1\.8447e\+19 \| 1 \(0%\) +\| 1\.8447e\+19 \(100%\) \|/);
  t.match(shown.stdout, new RegExp(`\\| Block +\\| ${a.ips[0]!.block.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} +\\| +64 \\| 1 \\(2%\\) +\\| 63 \\(98%\\) +\\|`));
  const one = await cli.run(['ipam', 'show', `--ip=${ip.toUpperCase()}`], { env });
  t.match(one.stdout, new RegExp(`^IP ${ip.toUpperCase()} is in use\\nHandle ID: k8s-pod-network\\.c6\\n`));
  t.match(one.stdout, /  pod: web-6\n/);
  const check = await cli.run(['ipam', 'check', '--show-problem-ips'], { env });
  t.equal(check.code, 0);
  t.match(check.stdout, ip, 'the v6 allocation without an endpoint is reported as a leak');
  t.same(await cli.run(['ipam', 'release', `--ip=${ip}`], { env }), { code: 0, stdout: `Successfully released IP address ${ip}\n`, stderr: '' });
  t.same(await cli.run(['ipam', 'show', `--ip=${ip}`], { env }), { code: 0, stdout: `${ip} is not assigned\n`, stderr: '' });
  t.same(await cli.run(['ipam', 'release', '--ip=fd00:10::zz'], { env }), { code: 1, stdout: '', stderr: 'invalid IP address: fd00:10::zz (expected an IPv4 or IPv6 address)\n' });
});
