import t from 'tap';
import { EmbeddedDatastore } from '../../src/datastore';
import { IpamClient } from '../../src/ipam';
import { cliFor } from './helpers/cli';

t.test('ipam show: pool usage, --show-blocks, --ip', async (t) => {
  const cli = cliFor(t, 'tortiectl-ipam-');
  const seed = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool1}
spec: {cidr: 192.168.0.0/24, blockSize: 26}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node1}
spec: {bgp: {ipv4Address: 198.18.0.10/24}}
`;
  t.equal((await cli.run(['apply', '-f', '-'], { stdin: seed })).code, 0);
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
  t.same(await cli.run(['ipam', 'show', '--ip=300.1.1.1']), { code: 1, stdout: '', stderr: 'invalid IP address: 300.1.1.1 (expected an IPv4 address)\n' });
  t.equal((await cli.run(['ipam', 'release'])).code, 1, 'other ipam verbs are not implemented');
  t.equal((await cli.run(['ipam', 'show', 'extra'])).code, 1);
});
