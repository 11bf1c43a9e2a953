import t from 'tap';
import YAML from 'yaml';
import { cliFor, V1_POOL } from './helpers/cli';

t.test('get ipPool -o yaml > pool.yaml, edit, replace -f pool.yaml (a CAS on resourceVersion)', async (t) => {
  const cli = cliFor(t);
  t.equal((await cli.run(['apply', '-f', '-'], { stdin: V1_POOL })).code, 0);
  const dumped = await cli.run(['get', 'ipPool', '-o', 'yaml']);
  t.equal(dumped.code, 0);
  cli.file('pool.yaml', dumped.stdout);
  const before = YAML.parse(dumped.stdout);
  t.equal(before.kind, 'IPPoolList');
  cli.file('pool.yaml', dumped.stdout.replace('natOutgoing: true', 'natOutgoing: false').replace('ipipMode: CrossSubnet', 'ipipMode: Always'));
  t.same(await cli.run(['replace', '-f', 'pool.yaml']), { code: 0, stdout: "Successfully replaced 1 'IPPool' resource(s)\n", stderr: '' });
  const after = YAML.parse((await cli.run(['get', 'ipPool', '192-168-0-0-16', '-o', 'yaml'])).stdout);
  t.equal(after.spec.natOutgoing, undefined, 'natOutgoing false is omitted, as calicoctl prints it');
  t.equal(after.spec.ipipMode, 'Always');
  t.equal(after.metadata.uid, before.items[0].metadata.uid, 'uid kept');
  t.not(after.metadata.resourceVersion, before.items[0].metadata.resourceVersion);

  // The same file again: its resourceVersion is now stale.
  const stale = await cli.run(['replace', '-f', 'pool.yaml']);
  t.equal(stale.code, 1);
  t.equal(stale.stdout, '');
  t.equal(stale.stderr,
    `Failed to replace 'IPPool' resource: update conflict: IPPool(192-168-0-0-16): resourceVersion '${before.items[0].metadata.resourceVersion}' ` +
    `is out of date (current: ${after.metadata.resourceVersion}); get the resource again, edit it and retry\n`);
  const apply = await cli.run(['apply', '-f', 'pool.yaml']);
  t.equal(apply.code, 1, 'apply honours a stale resourceVersion too');
  t.match(apply.stderr, /^Failed to apply 'IPPool' resource: \[update conflict: IPPool\(192-168-0-0-16\): /);
  const unchanged = YAML.parse((await cli.run(['get', 'ipPool', '192-168-0-0-16', '-o', 'yaml'])).stdout);
  t.equal(unchanged.metadata.resourceVersion, after.metadata.resourceVersion, 'nothing was written');

  // Without a resourceVersion, replace replaces whatever is there.
  cli.file('norv.yaml', 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: 192-168-0-0-16}\nspec: {cidr: 192.168.0.0/16, natOutgoing: true}\n');
  t.equal((await cli.run(['replace', '-f', 'norv.yaml'])).code, 0);
  t.equal(YAML.parse((await cli.run(['get', 'ipPool', '192-168-0-0-16', '-o', 'yaml'])).stdout).spec.natOutgoing, true);
});

t.test('get node node2 -o yaml, edit, re-apply', async (t) => {
  const cli = cliFor(t);
  cli.file('n.yaml', 'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node2}\nspec: {bgp: {ipv4Address: 10.0.2.10/24}}\n');
  t.equal((await cli.run(['create', '-f', 'n.yaml'])).code, 0);
  const y = (await cli.run(['get', 'node', 'node2', '-o', 'yaml'])).stdout;
  cli.file('node2.yaml', y.replace('10.0.2.10/24', '10.0.2.11/24').replace('metadata:\n', 'metadata:\n  labels:\n    zone: east\n'));
  t.same(await cli.run(['apply', '-f', 'node2.yaml']), { code: 0, stdout: "Successfully applied 1 'Node' resource(s)\n", stderr: '' });
  t.equal((await cli.run(['get', 'nodes', '-o', 'wide'])).stdout, 'NAME    ASN       IPV4           IPV6   \nnode2   (64512)   10.0.2.11/24          \n\n');
  t.same(YAML.parse((await cli.run(['get', 'node', 'node2', '-o', 'yaml'])).stdout).metadata.labels, { zone: 'east' });
});

t.test('replace of a missing resource; replace stops at the first failure', async (t) => {
  const cli = cliFor(t);
  const doc = (name: string) => `apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: ${name}}\nspec: {}\n`;
  t.same(await cli.run(['replace', '-f', '-'], { stdin: doc('ghost') }), {
    code: 1, stdout: '', stderr: "Failed to replace 'Profile' resource: resource does not exist: Profile(ghost)\n",
  });
  t.equal((await cli.run(['create', '-f', '-'], { stdin: doc('a') + '---\n' + doc('c') })).code, 0);
  t.same(await cli.run(['replace', '-f', '-'], { stdin: [doc('a'), doc('b'), doc('c')].join('---\n') }), {
    code: 1,
    stdout: "Partial success: replaced the first 1 out of 3 'Profile' resources:\n",
    stderr: 'Hit error: resource does not exist: Profile(b)\n',
  });
});

t.test('delete by kind and names, by file, --skip-not-exists, conditional on resourceVersion', async (t) => {
  const cli = cliFor(t);
  const pools = [1, 2, 3, 4].map((i) => `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p${i}}\nspec: {cidr: 10.${i}.0.0/16}\n`).join('---\n');
  t.equal((await cli.run(['create', '-f', '-'], { stdin: pools })).code, 0);
  t.same(await cli.run(['delete', 'ippool', 'p1']), { code: 0, stdout: "Successfully deleted 1 'IPPool' resource(s)\n", stderr: '' });
  t.same(await cli.run(['delete', 'pools', 'p2', 'nope']), {
    code: 1, stdout: "Successfully deleted 1 'IPPool' resource(s)\n", stderr: "Failed to delete 'IPPool' resource: resource does not exist: IPPool(nope)\n",
  });
  t.same(await cli.run(['delete', 'ippool', 'nope']), { code: 1, stdout: '', stderr: "Failed to delete 'IPPool' resource: resource does not exist: IPPool(nope)\n" });
  t.same(await cli.run(['delete', 'ippool', 'nope', '--skip-not-exists']), { code: 0, stdout: "Successfully deleted 1 'IPPool' resource(s)\n", stderr: '' });
  t.same(await cli.run(['delete', 'ippool', 'nope', '-s']), { code: 0, stdout: "Successfully deleted 1 'IPPool' resource(s)\n", stderr: '' });

  const y = (await cli.run(['get', 'ippool', 'p3', '-o', 'yaml'])).stdout;
  cli.file('p3.yaml', y);
  t.equal((await cli.run(['apply', '-f', '-'], { stdin: 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p3}\nspec: {cidr: 10.3.0.0/16, disabled: true}\n' })).code, 0);
  const cond = await cli.run(['delete', '-f', 'p3.yaml']);
  t.equal(cond.code, 1, 'the file carries a stale resourceVersion: not deleted');
  t.match(cond.stderr, /^Failed to delete 'IPPool' resource: update conflict: IPPool\(p3\): /);
  t.equal((await cli.run(['get', 'ippool', 'p3'])).code, 0);
  cli.file('ids.yaml', 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p3}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p4}\n');
  t.same(await cli.run(['delete', '-f', 'ids.yaml']), { code: 0, stdout: "Successfully deleted 2 'IPPool' resource(s)\n", stderr: '' },
    'a file naming kind and name is enough to delete');
  t.equal((await cli.run(['get', 'ippool', '-o', 'json'])).stdout.includes('"items": []'), true);

  t.equal((await cli.run(['apply', '-f', '-', '-n', 'ns1'], { stdin: 'apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np1}\nspec: {}\n' })).code, 0);
  t.same(await cli.run(['delete', 'np', 'np1']), { code: 1, stdout: '', stderr: "Failed to delete 'NetworkPolicy' resource: resource does not exist: NetworkPolicy(default/np1)\n" });
  t.same(await cli.run(['delete', 'np', 'np1', '-n', 'ns1']), { code: 0, stdout: "Successfully deleted 1 'NetworkPolicy' resource(s)\n", stderr: '' });
  t.same(await cli.run(['delete', 'ippool', 'x', '-n', 'ns1']), { code: 1, stdout: '', stderr: 'IPPool is not namespaced\n' });
  t.same(await cli.run(['delete', 'frobs', 'x']), { code: 1, stdout: '', stderr: "resource type 'frobs' is not supported\n" });
  t.same(await cli.run(['delete', 'ippool']), { code: 1, stdout: '', stderr: "Invalid option: 'tortiectl delete ippool'. Use flag '--help' to read about a specific subcommand.\n" });
});
