import t from 'tap';
import YAML from 'yaml';
import { cliFor, V1_POOL } from './helpers/cli';

t.test("the docs' heredoc: v1 ipPool with IPIP cross-subnet and NAT outgoing, from stdin", async (t) => {
  const cli = cliFor(t);
  const r = await cli.run(['apply', '-f', '-'], { stdin: V1_POOL });
  t.same(r, { code: 0, stdout: "Successfully applied 1 'IPPool' resource(s)\n", stderr: '' });
  const got = await cli.run(['get', 'ipPool', '-o', 'wide']);
  t.equal(got.code, 0);
  t.equal(got.stdout,
    'NAME             CIDR             NAT    IPIPMODE      VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR   \n' +
    '192-168-0-0-16   192.168.0.0/16   true   CrossSubnet   Never       false      false              all()      \n\n');
  const y = YAML.parse((await cli.run(['get', 'ippool', '192-168-0-0-16', '-o', 'yaml'])).stdout);
  t.equal(y.kind, 'IPPool');
  t.equal(y.spec.ipipMode, 'CrossSubnet');
  t.equal(y.spec.natOutgoing, true);
  t.match(y.metadata.uid, /^[0-9a-f-]{36}$/, 'create sets a uid');
  t.match(y.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'and a creationTimestamp');
  // Applying the same document again replaces it: still one pool, uid kept.
  const again = await cli.run(['apply', '-f', '-'], { stdin: V1_POOL });
  t.equal(again.stdout, "Successfully applied 1 'IPPool' resource(s)\n");
  const y2 = YAML.parse((await cli.run(['get', 'ippool', '192-168-0-0-16', '-o', 'yaml'])).stdout);
  t.equal(y2.metadata.uid, y.metadata.uid, 'apply of an existing resource keeps its uid');
  t.equal(y2.metadata.creationTimestamp, y.metadata.creationTimestamp);
  t.not(y2.metadata.resourceVersion, y.metadata.resourceVersion, 'and writes a new version');
});

t.test('multi-document input is validated completely first: one bad document, nothing written', async (t) => {
  const cli = cliFor(t);
  const input = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 192.168.10.0/24
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-b
spec:
  cidr: 192.168.300.0/24
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: node1
spec:
  bgp:
    ipv4Address: 10.0.2.10/24
`;
  const r = await cli.run(['apply', '-f', '-'], { stdin: input });
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^Failed to execute command: /);
  t.match(r.stderr, /document 2: IPPool pool-b: spec\.cidr: .*192\.168\.300\.0\/24/, 'names document, resource, field and value');
  const pools = await cli.run(['get', 'ippools', '-o', 'json']);
  t.same(JSON.parse(pools.stdout).items, [], 'pool-a (valid, before the bad one) was not written');
  t.same(JSON.parse((await cli.run(['get', 'nodes', '-o', 'json'])).stdout).items, [], 'nor node1 (after it)');

  const many = await cli.run(['create', '-f', '-'], {
    stdin: 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: x}\nspec: {cidr: 10.0.0.0/8, ipipMode: Sometimes}\n---\n' +
      'apiVersion: projectcalico.org/v3\nkind: Nodee\nmetadata: {name: n}\n---\nkey: [unclosed\n',
  });
  t.equal(many.code, 1);
  const lines = many.stderr.trimEnd().split('\n');
  t.match(lines[0], /^Failed to execute command: 3 problems, nothing was written:$/);
  t.match(lines[1], /document 1: IPPool x: spec\.ipipMode: .*Sometimes/);
  t.match(lines[2], /document 2: .*Nodee/);
  t.match(lines[3], /document 3: YAML syntax error at line \d+/);
});

t.test('lists, JSON and top-level arrays are accepted; counts name the kind only when there is one', async (t) => {
  const cli = cliFor(t);
  const list = {
    apiVersion: 'projectcalico.org/v3', kind: 'IPPoolList', metadata: {},
    items: [
      { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p1' }, spec: { cidr: '192.168.1.0/24' } },
      { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p2' }, spec: { cidr: '192.168.2.0/24' } },
    ],
  };
  t.same(await cli.run(['create', '-f', 'list.json'], { cwd: cli.dir, env: cli.env }).then((r) => r.code), 1, 'missing file');
  cli.file('list.json', JSON.stringify(list));
  t.same(await cli.run(['create', '-f', 'list.json']), { code: 0, stdout: "Successfully created 2 'IPPool' resource(s)\n", stderr: '' });
  cli.file('mixed.yaml', `- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata: {name: deny-all}
  spec: {selector: all(), types: [Ingress]}
- apiVersion: projectcalico.org/v3
  kind: NetworkPolicy
  metadata: {name: allow-web, namespace: prod}
  spec:
    selector: app == 'web'
    ingress:
    - action: Allow
      protocol: TCP
      destination: {ports: [80]}
`);
  t.same(await cli.run(['apply', '-f', 'mixed.yaml']), { code: 0, stdout: 'Successfully applied 2 resource(s)\n', stderr: '' });
  const np = await cli.run(['get', 'networkpolicy', '-n', 'prod', '-o', 'wide']);
  t.equal(np.stdout, "NAMESPACE   NAME        TIER      ORDER   SELECTOR       \nprod        allow-web   default           app == 'web'   \n\n");
});

t.test('create: existing resources fail unless --skip-exists; writes stop at the first failure and partial success says exactly what was written', async (t) => {
  const cli = cliFor(t);
  const two = `- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata: {name: pool-a}
  spec: {cidr: 192.168.10.0/24}
- apiVersion: projectcalico.org/v3
  kind: Node
  metadata: {name: node2}
  spec: {bgp: {ipv4Address: 10.0.2.10/24}}
`;
  cli.file('two.yaml', two);
  t.same(await cli.run(['create', '-f', 'two.yaml']), { code: 0, stdout: 'Successfully created 2 resource(s)\n', stderr: '' });
  t.same(await cli.run(['create', '-f', 'two.yaml']), {
    code: 1, stdout: '',
    stderr: 'Failed to create any resources: [resource already exists: IPPool(pool-a)]\n',
  });
  t.same(await cli.run(['create', '-f', 'two.yaml', '--skip-exists']), { code: 0, stdout: 'Successfully created 2 resource(s)\n', stderr: '' });
  cli.file('one.yaml', 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-a}\nspec: {cidr: 192.168.10.0/24}\n');
  t.same(await cli.run(['create', '-f', 'one.yaml']), {
    code: 1, stdout: '', stderr: "Failed to create 'IPPool' resource: [resource already exists: IPPool(pool-a)]\n",
  });
  cli.file('three.yaml', two + `- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata: {name: pool-c}
  spec: {cidr: 192.168.30.0/24}
`);
  t.same(await cli.run(['create', '-f', 'three.yaml']), {
    code: 1,
    stdout: '',
    stderr: 'Failed to create any resources: [resource already exists: IPPool(pool-a)]\n',
  });
  t.equal((await cli.run(['get', 'pool', 'pool-c', '-o', 'yaml'])).code, 1, 'writes stop at the first failure: the third was not attempted');
  cli.file('three-b.yaml', `- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata: {name: pool-d}
  spec: {cidr: 192.168.40.0/24}
` + two + `- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata: {name: pool-e}
  spec: {cidr: 192.168.50.0/24}
`);
  t.same(await cli.run(['create', '-f', 'three-b.yaml']), {
    code: 1,
    stdout: 'Partial success: created the first 1 out of 4 resources:\n',
    stderr: 'Hit error: [resource already exists: IPPool(pool-a)]\n',
  }, '"the first 1" is exactly what was written');
  t.equal((await cli.run(['get', 'pool', 'pool-d', '-o', 'yaml'])).code, 0, 'the first was created');
  t.equal((await cli.run(['get', 'pool', 'pool-e', '-o', 'yaml'])).code, 1, 'the one after the failure was not');
});

t.test('empty and unreadable inputs', async (t) => {
  const cli = cliFor(t);
  t.same(await cli.run(['apply', '-f', '-'], { stdin: '\n---\n' }), { code: 1, stdout: '', stderr: 'No resources specified in file -\n' });
  t.same(await cli.run(['apply', '-f', '-', '--skip-empty'], { stdin: '' }), { code: 0, stdout: 'No resources specified\n', stderr: '' });
  t.same(await cli.run(['apply', '-f', 'nope.yaml']), {
    code: 1, stdout: '', stderr: 'Failed to execute command: open nope.yaml: no such file or directory\n',
  });
  cli.file('d/a.yaml', 'apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n');
  cli.file('d/sub/b.yml', 'apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: platform}\nspec: {order: 200}\n');
  cli.file('d/ignored.txt', 'not yaml: [');
  t.same(await cli.run(['apply', '-f', 'd']), { code: 0, stdout: "Successfully applied 1 'Tier' resource(s)\n", stderr: '' }, 'a directory: its yaml files');
  t.same(await cli.run(['apply', '-f', 'd', '-R']), { code: 0, stdout: "Successfully applied 2 'Tier' resource(s)\n", stderr: '' }, '-R walks subdirectories');
  t.same(await cli.run(['apply']), {
    code: 1, stdout: '', stderr: "Invalid option: 'tortiectl apply'. Use flag '--help' to read about a specific subcommand.\n",
  });
});

t.test('namespaces: -n fills in, a mismatch is an error, non-namespaced kinds refuse -n', async (t) => {
  const cli = cliFor(t);
  const np = 'apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p1}\nspec: {selector: all()}\n';
  t.equal((await cli.run(['apply', '-f', '-', '-n', 'team-a'], { stdin: np })).code, 0);
  t.equal((await cli.run(['get', 'np', 'p1', '-n', 'team-a', '-o', 'json'])).code, 0);
  t.equal((await cli.run(['get', 'np', 'p1', '-o', 'json'])).code, 1, 'not in the default namespace');
  const mism = await cli.run(['apply', '-f', '-', '-n', 'team-b'], { stdin: np.replace('{name: p1}', '{name: p1, namespace: team-a}') });
  t.equal(mism.code, 1);
  t.match(mism.stderr, /metadata\.namespace: resource namespace does not match client namespace\. team-a != team-b/);
  const pool = await cli.run(['apply', '-f', '-', '-n', 'team-a'], { stdin: V1_POOL });
  t.same(pool, { code: 1, stdout: '', stderr: 'Failed to execute command: IPPool is not namespaced\n' });
});

t.test('a directory: every file checked first, problems name their file', async (t) => {
  const cli = cliFor(t);
  cli.file('cfg/10-pool.yaml', 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: ok}\nspec: {cidr: 10.9.0.0/16}\n');
  cli.file('cfg/20-bad.yaml', 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bad}\nspec: {cidr: 10.9.0.0/99}\n');
  cli.file('cfg/30-empty.yaml', '# nothing yet\n');
  const r = await cli.run(['apply', '-f', 'cfg']);
  t.equal(r.code, 1);
  t.equal(r.stderr, 'No resources specified in file cfg/30-empty.yaml\n', 'an empty file fails as in calicoctl');
  const r2 = await cli.run(['apply', '-f', 'cfg', '--skip-empty']);
  t.equal(r2.code, 1);
  t.match(r2.stderr, /^Failed to execute command: cfg\/20-bad\.yaml: document 1: IPPool bad: spec\.cidr: /);
  t.same(JSON.parse((await cli.run(['get', 'ippool', '-o', 'json'])).stdout).items, [], 'the good file was not applied either');
  cli.file('cfg/20-bad.yaml', 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: fixed}\nspec: {cidr: 10.10.0.0/16}\n');
  t.same(await cli.run(['apply', '-f', 'cfg', '--skip-empty']), { code: 0, stdout: "Successfully applied 2 'IPPool' resource(s)\n", stderr: '' });
  cli.file('none/a.txt', 'x');
  t.same(await cli.run(['apply', '-f', 'none']), { code: 1, stdout: '', stderr: 'No resources specified in directory none\n' });
});
