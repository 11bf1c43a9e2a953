import t from 'tap';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';

t.test('Calico v1 node and Kubernetes NetworkPolicy documents are converted on the way in', async (t) => {
  const cli = cliFor(t, 'tortiectl-formats-');
  const v1Node = `apiVersion: v1
kind: node
metadata:
  name: node2
spec:
  bgp:
    ipv4Address: 10.0.2.10/24
`;
  t.same(await cli.run(['apply', '-f', '-'], { stdin: v1Node }), { code: 0, stdout: "Successfully applied 1 'Node' resource(s)\n", stderr: '' });
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

  const v1Profile = 'apiVersion: v1\nkind: profile\nmetadata: {name: p}\nspec: {}\n';
  const bad = await cli.run(['apply', '-f', '-'], { stdin: v1Profile });
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^Failed to execute command: document 1: profile \(v1\) p: kind: /);
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
