import t from 'tap';
import YAML from 'yaml';
import { cliFor, V1_POOL } from './helpers/cli';

/** The docs' v1 node document. */
const V1_NODE = `apiVersion: v1
kind: node
metadata:
  name: node2
spec:
  bgp:
    ipv4Address: 10.0.2.10/24
`;

t.test('Calico v1 node and Kubernetes NetworkPolicy documents are converted on the way in', async (t) => {
  const cli = cliFor(t, 'tortiectl-formats-');
  t.same(await cli.run(['apply', '-f', '-'], { stdin: V1_NODE }), { code: 0, stdout: "Successfully applied 1 'Node' resource(s)\n", stderr: '' });
  t.equal((await cli.run(['get', 'nodes', '--output=wide'])).stdout, 'NAME    ASN       IPV4           IPV6   \nnode2   (64512)   10.0.2.10/24          \n\n');

  const knp = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-frontend
  namespace: shop
spec:
  podSelector:
    matchLabels: {app: backend}
  ingress:
  - from:
    - podSelector:
        matchLabels: {app: frontend}
    ports:
    - {protocol: TCP, port: 8080}
`;
  const r = await cli.run(['apply', '-f', '-'], { stdin: knp });
  t.same(r, { code: 0, stdout: "Successfully applied 1 'NetworkPolicy' resource(s)\n", stderr: '' });
  const got = YAML.parse((await cli.run(['get', 'networkpolicy', '-n', 'shop', '-o', 'yaml'])).stdout);
  t.equal(got.kind, 'NetworkPolicyList');
  t.equal(got.items.length, 1);
  t.equal(got.items[0].metadata.namespace, 'shop');
  t.match(got.items[0].metadata.name, /allow-frontend$/);

  const v1Wep = 'apiVersion: v1\nkind: workloadEndpoint\nmetadata: {name: p}\nspec: {}\n';
  const bad = await cli.run(['apply', '-f', '-'], { stdin: v1Wep });
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^Failed to execute command: document 1: workloadEndpoint \(v1\) p: kind: /);
});

t.test('validate checks without writing', async (t) => {
  const cli = cliFor(t, 'tortiectl-formats-');
  t.same(await cli.run(['validate', '-f', '-'], { stdin: 'apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: a}\nspec: {}\n' }),
    { code: 0, stdout: 'Successfully validated 1 resource(s)\n', stderr: '' });
  t.equal((await cli.run(['get', 'tier', 'a'])).code, 1, 'nothing written');
  const bad = await cli.run(['validate', '-f', '-'], { stdin: 'apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: A}\nspec: {}\n' });
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^Failed to validate: .*Tier A: metadata\.name/);
});

t.test('convert prints v1 input as v3, ready to apply', async (t) => {
  const cli = cliFor(t, 'tortiectl-formats-');
  cli.file('v1.yaml', `${V1_POOL}---\n${V1_NODE}`);
  const r = await cli.run(['convert', '-f', 'v1.yaml']);
  t.equal(r.code, 0, r.stderr);
  const docs = YAML.parse(r.stdout);
  t.same(docs.map((d: { apiVersion: string; kind: string; metadata: { name: string } }) => `${d.apiVersion} ${d.kind} ${d.metadata.name}`),
    ['projectcalico.org/v3 IPPool 192-168-0-0-16', 'projectcalico.org/v3 Node node2']);
  t.equal(docs[0].spec.ipipMode, 'CrossSubnet');
  cli.file('v3.yaml', r.stdout);
  t.equal((await cli.run(['apply', '-f', 'v3.yaml'])).stdout, 'Successfully applied 2 resource(s)\n', 'the output applies as is');
  const one = await cli.run(['convert', '-f', '-', '-o', 'json'], { stdin: 'apiVersion: v1\nkind: node\nmetadata: {name: n3}\nspec: {}\n' });
  t.equal(JSON.parse(one.stdout).kind, 'Node', 'one resource: printed alone');
  t.same(await cli.run(['convert', '-f', 'v1.yaml', '-o', 'wide']), { code: 1, stdout: '', stderr: "unrecognized output format 'wide'\n" });
});

t.test('convert: v1 policy and profile become a GlobalNetworkPolicy and a Profile that apply as they are', async (t) => {
  const cli = cliFor(t, 'tortiectl-formats-');
  cli.file('v1p.yaml', `apiVersion: v1
kind: policy
metadata: {name: allow-tcp-6379}
spec:
  order: 100
  selector: role == 'database'
  ingress:
  - {action: allow, protocol: tcp, source: {selector: role == 'frontend'}, destination: {ports: [6379]}}
---
apiVersion: v1
kind: profile
metadata: {name: k8s_ns.prod, labels: {env: prod}, tags: [blue]}
spec:
  ingress: [{action: allow, source: {tag: blue}}]
  egress: [{action: allow}]
`);
  const r = await cli.run(['convert', '-f', 'v1p.yaml']);
  t.equal(r.code, 0, r.stderr);
  const docs = YAML.parse(r.stdout);
  t.same(docs.map((d: { kind: string; metadata: { name: string } }) => `${d.kind} ${d.metadata.name}`), ['GlobalNetworkPolicy allow-tcp-6379', 'Profile kns.prod']);
  t.same(docs[1].spec.labelsToApply, { env: 'prod', blue: '' });
  t.same(docs[1].spec.ingress, [{ action: 'Allow', source: { selector: "blue == ''" } }]);
  cli.file('v3p.yaml', r.stdout);
  t.equal((await cli.run(['apply', '-f', 'v3p.yaml'])).stdout, 'Successfully applied 2 resource(s)\n', 'the output applies as is');
});
