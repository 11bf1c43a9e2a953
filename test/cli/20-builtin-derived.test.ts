import t from 'tap';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';

t.test('the built-in default tier exists and cannot be deleted', async (t) => {
  const cli = cliFor(t);
  const r = await cli.run(['get', 'tier', 'default', '-o', 'yaml']);
  t.equal(r.code, 0, r.stderr);
  const y = YAML.parse(r.stdout);
  t.same([y.kind, y.metadata.name, y.spec.order, y.spec.defaultAction], ['Tier', 'default', 1000000, 'Deny']);
  t.same(await cli.run(['delete', 'tier', 'default']), {
    code: 1, stdout: '', stderr: "Failed to delete 'Tier' resource: Tier(default): cannot delete the default tier (it is built in)\n",
  });
  t.equal((await cli.run(['get', 'tier', 'default'])).code, 0, 'still there');
});

t.test('a tier holding policies cannot be deleted; the policy stays', async (t) => {
  const cli = cliFor(t);
  cli.file('sec.yaml', `apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.deny-db}
spec:
  tier: security
  selector: app == 'db'
  ingress: [{action: Deny}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: security.ns-deny, namespace: prod}
spec:
  tier: security
  ingress: [{action: Deny}]
`);
  t.equal((await cli.run(['apply', '-f', 'sec.yaml'])).code, 0);
  t.same(await cli.run(['delete', 'tier', 'security']), {
    code: 1, stdout: '',
    stderr: "Failed to delete 'Tier' resource: Tier(security): Cannot delete a non-empty tier (it holds GlobalNetworkPolicy(security.deny-db), NetworkPolicy(prod/security.ns-deny))\n",
  });
  t.equal((await cli.run(['get', 'gnp', 'security.deny-db'])).code, 0, 'the deny policy is still listed');
  t.equal((await cli.run(['get', 'tier', 'security'])).code, 0, 'and its tier');
  t.equal((await cli.run(['delete', 'gnp', 'security.deny-db'])).code, 0);
  t.equal((await cli.run(['delete', 'networkpolicy', 'security.ns-deny', '-n', 'prod'])).code, 0);
  t.same(await cli.run(['delete', 'tier', 'security']), { code: 0, stdout: "Successfully deleted 1 'Tier' resource(s)\n", stderr: '' }, 'empty now: deleted');
});

t.test('a Namespace makes its kns.<ns> profile as Calico derives it; it goes with the namespace', async (t) => {
  const cli = cliFor(t);
  cli.file('ns.yaml', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: blue}}\n');
  t.equal((await cli.run(['apply', '-f', 'ns.yaml'])).code, 0);
  const r = await cli.run(['get', 'profile', 'kns.shop', '-o', 'yaml']);
  t.equal(r.code, 0, r.stderr);
  const p = YAML.parse(r.stdout);
  t.same(p.spec, {
    ingress: [{ action: 'Allow' }],
    egress: [{ action: 'Allow' }],
    labelsToApply: { 'pcns.team': 'blue', 'pcns.projectcalico.org/name': 'shop' },
  });
  const ns = YAML.parse((await cli.run(['get', 'namespace', 'shop', '-o', 'yaml'])).stdout);
  t.equal(p.metadata.uid, ns.metadata.uid, "the namespace's uid, as libcalico-go's NamespaceToProfile");
  t.match((await cli.run(['get', 'profiles'])).stdout, /^NAME\s+\nkns\.shop\s+\n/, 'listed with the profiles');
  t.same(await cli.run(['delete', 'profile', 'kns.shop']), {
    code: 1, stdout: '', stderr: "Failed to delete 'Profile' resource: Profile(kns.shop) is derived from Namespace(shop); delete the namespace instead\n",
  });
  t.equal((await cli.run(['delete', 'namespace', 'shop'])).code, 0);
  t.equal((await cli.run(['get', 'profile', 'kns.shop'])).code, 1, 'gone with its namespace');
});

t.test("Calico's built-in projectcalico-default-allow profile exists, is listed, and cannot be written or deleted", async (t) => {
  const cli = cliFor(t);
  const r = await cli.run(['get', 'profile', 'projectcalico-default-allow', '-o', 'yaml']);
  t.equal(r.code, 0, r.stderr);
  const p = YAML.parse(r.stdout);
  t.same([p.kind, p.metadata.name, p.spec], ['Profile', 'projectcalico-default-allow', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }],
    "libcalico-go's DefaultAllowProfile: one Allow rule each way, no labelsToApply");
  t.match((await cli.run(['get', 'profiles'])).stdout, /^NAME\s+\nprojectcalico-default-allow\s+\n$/, 'listed with the profiles of an empty store');
  t.same(await cli.run(['delete', 'profile', 'projectcalico-default-allow']), {
    code: 1, stdout: '', stderr: "Failed to delete 'Profile' resource: Profile(projectcalico-default-allow): cannot delete the projectcalico-default-allow profile (it is built in)\n",
  });
  cli.file('deny.yaml', `apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: projectcalico-default-allow}
spec:
  ingress: [{action: Deny}]
`);
  for (const verb of ['apply', 'create', 'replace']) {
    const w = await cli.run([verb, '-f', 'deny.yaml']);
    t.equal(w.code, 1, `${verb} refused`);
    t.match(w.stderr, /metadata\.name: projectcalico-default-allow is Calico's built-in profile \(allow all ingress and egress\); it cannot be created, replaced or deleted/, `${verb}: the error names the built-in`);
  }
  const after = YAML.parse((await cli.run(['get', 'profile', 'projectcalico-default-allow', '-o', 'yaml'])).stdout);
  t.same(after.spec, p.spec, 'still allow-all');
});
