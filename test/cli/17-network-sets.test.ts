import t from 'tap';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';

// The Calico docs' GlobalNetworkSet and NetworkSet samples apply and read back.

const GNS = `apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: a-name-for-the-set
  labels:
    role: external-database
spec:
  nets:
  - 198.51.100.0/28
  - 203.0.113.0/24
`;
const NS = `apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  name: external-database
  namespace: staging
  labels:
    role: db
spec:
  nets:
  - 198.51.100.0/28
  - 203.0.113.0/24
`;

t.test("the docs' GlobalNetworkSet and NetworkSet samples apply and read back", async (t) => {
  const cli = cliFor(t);
  t.same(await cli.run(['apply', '-f', '-'], { stdin: GNS }), { code: 0, stdout: "Successfully applied 1 'GlobalNetworkSet' resource(s)\n", stderr: '' });
  t.same(await cli.run(['apply', '-f', '-'], { stdin: NS }), { code: 0, stdout: "Successfully applied 1 'NetworkSet' resource(s)\n", stderr: '' });
  const g = YAML.parse((await cli.run(['get', 'globalnetworkset', 'a-name-for-the-set', '-o', 'yaml'])).stdout);
  t.same([g.kind, g.metadata.labels, g.spec], ['GlobalNetworkSet', { role: 'external-database' }, { nets: ['198.51.100.0/28', '203.0.113.0/24'] }]);
  const n = YAML.parse((await cli.run(['get', 'networkset', 'external-database', '-n', 'staging', '-o', 'yaml'])).stdout);
  t.same([n.kind, n.metadata.namespace, n.metadata.labels, n.spec], ['NetworkSet', 'staging', { role: 'db' }, { nets: ['198.51.100.0/28', '203.0.113.0/24'] }]);
  t.equal((await cli.run(['get', 'globalnetworksets', '-o', 'wide'])).stdout,
    'NAME                 NETS                             LABELS                   \n' +
    'a-name-for-the-set   198.51.100.0/28,203.0.113.0/24   role=external-database   \n\n');
  t.equal((await cli.run(['get', 'netsets', '-A'])).stdout, 'NAMESPACE   NAME                \nstaging     external-database   \n\n');
  t.equal((await cli.run(['delete', 'networkset', 'external-database', '-n', 'staging'])).code, 0);
  t.equal((await cli.run(['delete', 'globalnetworkset', 'a-name-for-the-set'])).code, 0);
});

t.test('set entries: bare addresses become host routes, host bits are masked; IPv6 nets accepted, DNS domains refused', async (t) => {
  const cli = cliFor(t);
  cli.file('s.yaml', 'apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: s}\nspec: {nets: [198.51.100.7, 203.0.113.9/24]}\n');
  t.equal((await cli.run(['apply', '-f', 's.yaml'])).code, 0);
  t.same(YAML.parse((await cli.run(['get', 'globalnetworkset', 's', '-o', 'yaml'])).stdout).spec.nets, ['198.51.100.7/32', '203.0.113.0/24']);
  cli.file('bad.yaml', 'apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: b, namespace: x}\nspec: {nets: ["fd00::/64", "nope"], allowedEgressDomains: [example.com]}\n');
  const r = await cli.run(['apply', '-f', 'bad.yaml']);
  t.equal(r.code, 1);
  t.match(r.stderr, /NetworkSet x\/b: spec\.nets\[1\]: "nope" is not an IP address or CIDR/);
  cli.file('bad2.yaml', 'apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: b, namespace: x}\nspec: {nets: ["fd00::/64"], allowedEgressDomains: [example.com]}\n');
  const r2 = await cli.run(['apply', '-f', 'bad2.yaml']);
  t.equal(r2.code, 1);
  t.notMatch(r2.stderr, /spec\.nets/, 'the IPv6 net is not the problem');
  t.match(r2.stderr, /spec\.allowedEgressDomains: is not supported: tortie does not implement DNS-based policy/);
  cli.file('six.yaml', 'apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: six, namespace: x}\nspec: {nets: ["fd00:99::7", "fd00:98::1/64", 198.51.100.7]}\n');
  t.equal((await cli.run(['apply', '-f', 'six.yaml'])).code, 0, 'a set with IPv6 nets applies');
  t.same(YAML.parse((await cli.run(['get', 'networkset', 'six', '-n', 'x', '-o', 'yaml'])).stdout).spec.nets, ['fd00:99::7/128', 'fd00:98::/64', '198.51.100.7/32'],
    'IPv6 addresses become /128 host routes, host bits masked, as IPv4');
});

t.test("the docs' IPReservation sample applies and reads back, its IPv6 entry too (the IPAM honours IPv6 reservations: ipam/07)", async (t) => {
  const cli = cliFor(t);
  const doc = `apiVersion: projectcalico.org/v3
kind: IPReservation
metadata:
  name: my-ipreservation
spec:
  reservedCIDRs:
    - 192.168.2.3
    - 10.0.2.3/32
    - cafe:f00d::/123
`;
  t.same(await cli.run(['apply', '-f', '-'], { stdin: doc }), { code: 0, stdout: "Successfully applied 1 'IPReservation' resource(s)\n", stderr: '' });
  const r = YAML.parse((await cli.run(['get', 'ipreservation', 'my-ipreservation', '-o', 'yaml'])).stdout);
  t.same(r.spec, { reservedCIDRs: ['192.168.2.3/32', '10.0.2.3/32', 'cafe:f00d::/123'] });
  t.equal((await cli.run(['get', 'ipreservations', '-o', 'wide'])).stdout,
    'NAME               CIDRS                                        \nmy-ipreservation   192.168.2.3/32,10.0.2.3/32,cafe:f00d::/123   \n\n');
});
