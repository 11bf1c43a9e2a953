import t from 'tap';
import YAML from 'yaml';
import { mergePatch } from '../../src/cli/edit-commands';
import { cliFor } from './helpers/cli';

t.test('label and patch', async (t) => {
  const cli = cliFor(t, 'tortiectl-edit-');
  const seed = `apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node1}
spec: {bgp: {ipv4Address: 10.0.2.10/24}}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node1-k8s-nginx-eth0, namespace: default}
spec: {node: node1, orchestrator: k8s, pod: nginx, endpoint: eth0, interfaceName: cali0ef24ba, ipNetworks: [192.168.0.5/32]}
`;
  const seeded = await cli.run(['apply', '-f', '-'], { stdin: seed });
  t.equal(seeded.code, 0, seeded.stderr);
  const labels = async (args: string[]) => YAML.parse((await cli.run(['get', ...args, '-o', 'yaml'])).stdout).metadata.labels;

  t.same(await cli.run(['label', 'nodes', 'node1', 'cluster=frontend']), { code: 0, stdout: 'Successfully set label cluster on nodes node1\n', stderr: '' });
  t.same(await labels(['node', 'node1']), { cluster: 'frontend' });
  t.same(await cli.run(['label', 'nodes', 'node1', 'cluster=backend']), {
    code: 1, stdout: '', stderr: "failed to update label of nodes node1, key cluster is already present. please use '--overwrite' to set a new value.\n",
  });
  t.same(await cli.run(['label', 'nodes', 'node1', 'cluster=backend', '--overwrite']), { code: 0, stdout: 'Successfully updated label cluster on nodes node1\n', stderr: '' });
  t.same(await labels(['node', 'node1']), { cluster: 'backend' });
  t.same(await cli.run(['label', 'nodes', 'node1', 'cluster', '--remove']), { code: 0, stdout: 'Successfully removed label cluster from nodes node1\n', stderr: '' });
  t.same(await cli.run(['label', 'nodes', 'node1', 'cluster', '--remove']), { code: 1, stdout: '', stderr: 'cannot remove label of nodes node1, key cluster does not exist\n' });
  t.same(await cli.run(['label', 'workloadendpoints', 'node1-k8s-nginx-eth0', '--namespace=default', 'app=web']), {
    code: 0, stdout: 'Successfully set label app on workloadendpoints node1-k8s-nginx-eth0\n', stderr: '',
  });
  t.match(await labels(['wep', 'node1-k8s-nginx-eth0']), { app: 'web' });
  // An endpoint the CNI plugin wrote (annotation tortie.io/owner: cni) is the runtime's: refused.
  const cniWep = `apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node1-cni-abc-eth0, namespace: default, annotations: {tortie.io/owner: cni}, labels: {tortie.io/container-name: web}}
spec: {node: node1, orchestrator: cni, containerID: abc, endpoint: eth0, interfaceName: cali0ef24bb, ipNetworks: [192.168.0.6/32]}
`;
  t.equal((await cli.run(['apply', '-f', '-'], { stdin: cniWep })).code, 0);
  for (const args of [['role=db'], ['tortie.io/container-name=x', '--overwrite'], ['tortie.io/container-name', '--remove']]) {
    const r = await cli.run(['label', 'workloadendpoints', 'node1-cni-abc-eth0', '--namespace=default', ...args]);
    t.equal(r.code, 1, `label ${args.join(' ')} refused`);
    t.match(r.stderr, /^cannot change labels of workloadendpoints node1-cni-abc-eth0: its labels are written by the CNI plugin on every ADD of the container; set them in the network configuration \(labels, args\.cni\.labels\) or in the labelsToApply of its Profile\n$/);
  }
  t.same(await labels(['wep', 'node1-cni-abc-eth0']), { 'tortie.io/container-name': 'web', 'projectcalico.org/namespace': 'default', 'projectcalico.org/orchestrator': 'cni' }, 'labels unchanged');
  t.same(await cli.run(['label', 'nodes', 'ghost', 'a=b']), { code: 1, stdout: '', stderr: 'nodes ghost not found\n' });
  t.same(await cli.run(['label', 'nodes', 'node1', 'a=b=c']), { code: 1, stdout: '', stderr: 'invalid label a=b=c\n' });
  const badValue = await cli.run(['label', 'nodes', 'node1', 'bad key=x']);
  t.equal(badValue.code, 1);
  t.match(badValue.stderr, /^failed to update nodes node1, label not changed: .*metadata\.labels/);

  t.same(await cli.run(['patch', 'node', 'node1', '--patch', '{"spec":{"bgp":{"routeReflectorClusterID":"224.0.0.1"}}}']), {
    code: 0, stdout: "Successfully patched 1 'Node' resource\n", stderr: '',
  });
  const node = YAML.parse((await cli.run(['get', 'node', 'node1', '-o', 'yaml'])).stdout);
  t.same(node.spec.bgp, { ipv4Address: '10.0.2.10/24', routeReflectorClusterID: '224.0.0.1' }, 'merged, the rest kept');
  t.equal((await cli.run(['patch', 'node', 'node1', '-p', '{"spec":{"bgp":{"routeReflectorClusterID":null}}}', '--type', 'merge'])).code, 0);
  t.same(YAML.parse((await cli.run(['get', 'node', 'node1', '-o', 'yaml'])).stdout).spec.bgp, { ipv4Address: '10.0.2.10/24' }, 'null removes');
  const invalid = await cli.run(['patch', 'node', 'node1', '-p', '{"spec":{"bgp":{"ipv4Address":"10.0.2.300/24"}}}']);
  t.equal(invalid.code, 1);
  t.match(invalid.stderr, /^Hit error: .*spec\.bgp\.ipv4Address/);
  t.same(await cli.run(['patch', 'node', 'ghost', '-p', '{}']), { code: 1, stdout: '', stderr: "Failed to patch 'Node' resource: resource does not exist: Node(ghost)\n" });
  t.match((await cli.run(['patch', 'node', 'node1', '-p', '{nope'])).stderr, /^Hit error: the patch is not valid JSON/);
  t.match((await cli.run(['patch', 'node', 'node1', '-p', '{"metadata":{"name":"other"}}'])).stderr, /^Hit error: the kind, name and namespace of a resource cannot be changed/);
  t.equal((await cli.run(['patch', 'node', 'node1'])).code, 1, '--patch is required');
});

t.test('mergePatch is RFC 7386', async (t) => {
  t.same(mergePatch({ a: 'b' }, { a: 'c' }), { a: 'c' });
  t.same(mergePatch({ a: 'b' }, { b: 'c' }), { a: 'b', b: 'c' });
  t.same(mergePatch({ a: 'b' }, { a: null }), {});
  t.same(mergePatch({ a: ['b'] }, { a: 'c' }), { a: 'c' });
  t.same(mergePatch({ a: [{ b: 'c' }] }, { a: [1] }), { a: [1] });
  t.same(mergePatch({ a: { b: 'c' } }, { a: { b: 'd', c: null } }), { a: { b: 'd' } });
  t.same(mergePatch([1, 2], { a: 'b' }), { a: 'b' });
  const input = { a: { b: 1 } };
  mergePatch(input, { a: { b: 2 } });
  t.same(input, { a: { b: 1 } }, 'the target is not modified');
});

t.test('concurrent read-modify-writes lose nothing (CAS, retried)', async (t) => {
  const cli = cliFor(t, 'tortiectl-edit-');
  t.equal((await cli.run(['apply', '-f', '-'], { stdin: 'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: busy}\nspec: {}\n' })).code, 0);
  const n = 8;
  // Each run opens its own store handle on the same directory, as separate processes would.
  const results = await Promise.all(Array.from({ length: n }, (_, i) => cli.run(['label', 'node', 'busy', `k${i}=v${i}`])));
  for (const r of results) t.equal(r.code, 0, r.stderr);
  const labels = YAML.parse((await cli.run(['get', 'node', 'busy', '-o', 'yaml'])).stdout).metadata.labels;
  t.same(labels, Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`])), 'every label landed');
  const patches = await Promise.all(Array.from({ length: 4 }, (_, i) => cli.run(['patch', 'node', 'busy', '-p', JSON.stringify({ metadata: { annotations: { [`a${i}`]: 'x' } } })])));
  for (const r of patches) t.equal(r.code, 0, r.stderr);
  t.same(Object.keys(YAML.parse((await cli.run(['get', 'node', 'busy', '-o', 'yaml'])).stdout).metadata.annotations).sort(), ['a0', 'a1', 'a2', 'a3']);
});
