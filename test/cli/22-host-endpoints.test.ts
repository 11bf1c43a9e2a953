import t from 'tap';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';

// HostEndpoint through tortiectl: applied, listed, read back and deleted as calicoctl does;
// host-side policies (preDNAT, doNotTrack, applyOnForward) applied when tortie enforces them
// and refused, with the field, when Calico's rules or tortie's datapath say no.

t.test('HostEndpoint: apply, get (aliases, wide), delete', async (t) => {
  const cli = cliFor(t);
  cli.file('hep.yaml', `apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: node1-eth0
  labels: {role: host}
spec:
  node: node1
  interfaceName: eth0
  expectedIPs: [198.18.0.1]
  profiles: [hosts]
  ports: [{name: ssh, protocol: TCP, port: 22}]
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node1-all}
spec: {node: node1, interfaceName: "*"}
`);
  t.same(await cli.run(['apply', '-f', 'hep.yaml']), { code: 0, stdout: "Successfully applied 2 'HostEndpoint' resource(s)\n", stderr: '' });
  const list = await cli.run(['get', 'heps', '-o', 'wide']);
  t.match(list.stdout, /NAME\s+NODE\s+INTERFACE\s+IPS\s+PROFILES/);
  t.match(list.stdout, /node1-eth0\s+node1\s+eth0\s+198\.18\.0\.1\s+hosts/);
  t.match(list.stdout, /node1-all\s+node1\s+\*/);
  const y = YAML.parse((await cli.run(['get', 'hostendpoint', 'node1-eth0', '-o', 'yaml'])).stdout);
  t.same(y.spec, { node: 'node1', interfaceName: 'eth0', expectedIPs: ['198.18.0.1'], profiles: ['hosts'], ports: [{ name: 'ssh', protocol: 'TCP', port: 22 }] });
  t.equal((await cli.run(['delete', 'hep', 'node1-all'])).code, 0);
  t.equal((await cli.run(['get', 'hostendpoint', 'node1-all'])).code, 1, 'deleted');
  cli.file('bad.yaml', 'apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: b}\nspec: {interfaceName: eth0}\n');
  t.match((await cli.run(['apply', '-f', 'bad.yaml'])).stderr, /HostEndpoint b: spec\.node: is required: no node has been specified/);
});

t.test('host-side policies: enforced ones applied, the rest refused with the field', async (t) => {
  const cli = cliFor(t);
  cli.file('ok.yaml', `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: pre}
spec:
  selector: "role == 'host'"
  preDNAT: true
  applyOnForward: true
  ingress: [{action: Deny, source: {nets: [198.51.100.0/24]}}, {action: Allow, protocol: TCP, destination: {ports: [30080]}}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: dnt}
spec:
  selector: "role == 'host'"
  doNotTrack: true
  applyOnForward: true
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8080]}}]
  egress: [{action: Allow, protocol: TCP, source: {ports: [8080]}}]
`);
  t.same(await cli.run(['apply', '-f', 'ok.yaml']), { code: 0, stdout: "Successfully applied 2 'GlobalNetworkPolicy' resource(s)\n", stderr: '' });
  const cases: [string, RegExp][] = [
    ['{preDNAT: true, applyOnForward: true, egress: [{action: Allow}]}', /spec\.egress: a preDNAT policy cannot have egress rules/],
    ['{preDNAT: true, ingress: [{action: Deny}]}', /spec\.applyOnForward: must be true when preDNAT or doNotTrack is true/],
    ['{doNotTrack: true, ingress: [{action: Deny}]}', /spec\.applyOnForward: must be true when preDNAT or doNotTrack is true/],
    ['{doNotTrack: true, preDNAT: true, applyOnForward: true, ingress: [{action: Deny}]}', /spec: preDNAT and doNotTrack cannot both be true/],
  ];
  for (const [spec, msg] of cases) {
    cli.file('bad.yaml', `apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: bad}\nspec: ${spec}\n`);
    const r = await cli.run(['apply', '-f', 'bad.yaml']);
    t.equal(r.code, 1, spec);
    t.match(r.stderr, msg, spec);
  }
  t.equal((await cli.run(['get', 'gnp', 'bad'])).code, 1, 'nothing refused was written');
  cli.file('local.yaml', `apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: local-nets}\nspec: {preDNAT: true, applyOnForward: true, ingress: [{action: Allow, destination: {nets: [198.18.0.1/32]}}]}\n`);
  t.same(await cli.run(['apply', '-f', 'local.yaml']), { code: 0, stdout: "Successfully applied 1 'GlobalNetworkPolicy' resource(s)\n", stderr: '' }, 'a local-side nets match is enforced, so accepted');
});
