import t from 'tap';
import { cliFor } from './helpers/cli';

// "Successfully applied" means in force: what tortie does not enforce is refused at apply,
// naming the field (or the kind and why), and nothing of the input is written.

t.test('accepted-but-not-enforced fields are refused at apply, naming the field; nothing written', async (t) => {
  const cli = cliFor(t);
  cli.file('mixed.yaml', `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: good}
spec: {cidr: 192.168.0.0/16, ipipMode: Always}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: vx}
spec: {cidr: 10.244.0.0/16, vxlanMode: Always}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: six}
spec: {cidr: "fd00:10::/48", allowedUses: [Workload], namespaceSelector: "team == 'a'"}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: six-set}
spec: {nets: ["fd00:99::/64"], allowedEgressDomains: [example.com]}
`);
  const r = await cli.run(['apply', '-f', 'mixed.yaml']);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.equal(r.stderr,
    'Failed to execute command: 2 problems, nothing was written:\n' +
    "  document 3: IPPool six: spec.namespaceSelector: is not supported: tortie's IPAM does not choose pools by namespace\n" +
    '  document 4: GlobalNetworkSet six-set: spec.allowedEgressDomains: is not supported: tortie does not implement DNS-based policy (a Calico Enterprise feature)\n');
  t.equal((await cli.run(['get', 'ippool', 'good'])).code, 1, 'not even the good pool was written');
  t.equal((await cli.run(['get', 'ippool', 'vx'])).code, 1, 'nor the VXLAN pool (an IPv4 VXLAN pool is accepted: tortie encapsulates it)');
  t.equal((await cli.run(['validate', '-f', 'mixed.yaml'])).code, 1, 'validate answers what apply would');
  const conv = await cli.run(['convert', '-f', 'mixed.yaml']);
  t.equal(conv.code, 0, 'convert prints Calico resources whatever tortie enforces');
  t.match(conv.stdout, /vxlanMode: Always/);
});

t.test('Calico kinds tortie does not implement say why', async (t) => {
  const cli = cliFor(t);
  const kinds: [string, RegExp][] = [
    ['KubeControllersConfiguration', /KubeControllersConfiguration is not supported by tortie: it configures calico-kube-controllers, which runs against the Kubernetes API/],
    ['CalicoNodeStatus', /CalicoNodeStatus is not supported by tortie: it is a Kubernetes-only status request/],
  ];
  for (const [kind, why] of kinds) {
    cli.file('k.yaml', `apiVersion: projectcalico.org/v3\nkind: ${kind}\nmetadata: {name: x}\nspec: {}\n`);
    const r = await cli.run(['apply', '-f', 'k.yaml']);
    t.equal(r.code, 1, kind);
    t.match(r.stderr, why, kind);
  }
});
