import t from 'tap';
import { parseResources, toYaml, cidrToName, convertNodeName } from '../../src/model';
import { parseCidr } from '../../src/primitives';
import { problems, thrown } from './helpers/util';
import { SEED_POOL_YAML } from '../../src/lab/lab';

// The heredoc from the Calico docs: `calicoctl apply -f - << EOF ... EOF` (the lab applies it too).
const DOCS_POOL = SEED_POOL_YAML;

t.test('the docs v1 ipPool becomes a v3 IPPool named from its CIDR', async (t) => {
  const [pool] = parseResources(DOCS_POOL);
  t.same(pool, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: '192-168-0-0-16' },
    spec: {
      cidr: '192.168.0.0/16',
      vxlanMode: 'Never',
      ipipMode: 'CrossSubnet',
      natOutgoing: true,
      blockSize: 26,
      nodeSelector: 'all()',
      allowedUses: ['Workload', 'Tunnel'],
      assignmentMode: 'Automatic',
    },
  });
});

t.test('v1 ipip modes', async (t) => {
  const mode = (ipip: unknown) => {
    const [p] = parseResources(JSON.stringify({ apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: '10.1.0.0/16' }, spec: { ipip } }));
    return (p!.spec as { ipipMode: string }).ipipMode;
  };
  t.equal(mode({ enabled: true }), 'Always', 'enabled, no mode → Always');
  t.equal(mode({ enabled: true, mode: 'always' }), 'Always');
  t.equal(mode({ enabled: true, mode: 'cross-subnet' }), 'CrossSubnet');
  t.equal(mode({ enabled: false, mode: 'cross-subnet' }), 'Never', 'disabled wins over mode');
  t.equal(mode({}), 'Never');
  const [plain] = parseResources('apiVersion: v1\nkind: ipPool\nmetadata: {cidr: 10.2.0.0/16}\n');
  t.same(plain!.spec, {
    cidr: '10.2.0.0/16',
    vxlanMode: 'Never',
    ipipMode: 'Never',
    blockSize: 26,
    nodeSelector: 'all()',
    allowedUses: ['Workload', 'Tunnel'],
    assignmentMode: 'Automatic',
  });
  const [dis] = parseResources('apiVersion: v1\nkind: ipPool\nmetadata: {cidr: 10.2.0.0/16}\nspec: {disabled: true}\n');
  t.equal((dis!.spec as { disabled?: boolean }).disabled, true);
});

t.test('v1 ipPool errors name v1 fields', async (t) => {
  t.same(problems({ apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: '10.0.0.0/40' } }), [
    'ipPool (v1) 10.0.0.0/40: metadata.cidr: "10.0.0.0/40" is not a valid CIDR (e.g. 192.168.0.0/16)',
  ]);
  t.same(problems({ apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: '10.0.0.0/16' }, spec: { ipip: { enabled: true, mode: 'sometimes' } } }), [
    'ipPool (v1) 10.0.0.0/16: spec.ipip.mode: must be always or cross-subnet, got "sometimes"',
  ]);
  t.same(problems({ apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: '10.0.0.0/16' }, spec: { natOutgoing: true } }), [
    'ipPool (v1) 10.0.0.0/16: spec.natOutgoing: unknown field',
  ]);
  t.same(problems({ apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: '169.254.0.0/16' } }), [
    'IPPool 169-254-0-0-16: spec.cidr: 169.254.0.0/16 overlaps the link-local range 169.254.0.0/16',
  ], 'v3 rules apply after conversion');
  t.same(problems({ apiVersion: 'v1', kind: 'workloadEndpoint', metadata: { name: 'x' } }), [
    'workloadEndpoint (v1) x: kind: converting v1 "workloadEndpoint" is not supported (Calico v1 ipPool, node, policy and profile, and Kubernetes Namespace, are); write it as projectcalico.org/v3',
  ]);
});

t.test('cidrToName like calicoctl', async (t) => {
  t.equal(cidrToName(parseCidr('192.168.0.0/16')), '192-168-0-0-16');
  t.equal(cidrToName(parseCidr('fd00:10::/48')), 'fd00-10---48');
  const [p] = parseResources('apiVersion: v1\nkind: ipPool\nmetadata: {cidr: "fd00:10::/48"}\n');
  t.equal(p!.metadata.name, 'fd00-10---48');
});

t.test('v1 node: name, bgp addresses with subnet, asNumber', async (t) => {
  const rs = parseResources(`- apiVersion: v1
  kind: node
  metadata:
    name: node1
- apiVersion: v1
  kind: node
  metadata:
    name: node2
  spec:
    bgp:
      asNumber: 12345
      ipv4Address: 1.2.3.4/24
      ipv6Address: aa::ff
`);
  t.same(rs, [
    { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'node1' }, spec: {} },
    {
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: 'node2' },
      spec: { bgp: { asNumber: 12345, ipv4Address: '1.2.3.4/24', ipv6Address: 'aa::ff/128' } },
    },
  ]);
  const [n] = parseResources('apiVersion: v1\nkind: node\nmetadata: {name: Node_A.Example.COM}\nspec: {bgp: {ipv4Address: 10.0.2.10/24}}\n');
  t.equal(n!.metadata.name, 'node-a.example.com');
  t.equal(convertNodeName('--My..Host--'), 'my.host');
  t.same(
    thrown(() => parseResources('apiVersion: v1\nkind: node\nmetadata: {name: n}\nspec: {bgp: {asNumber: 1}}\n')),
    ['document 1: node (v1) n: spec.bgp: needs ipv4Address or ipv6Address'],
  );
});

t.test('get -o yaml of a converted pool, then replace -f: the round trip is stable', async (t) => {
  const first = parseResources(DOCS_POOL);
  const yaml = toYaml(first);
  t.match(yaml, /^apiVersion: projectcalico.org\/v3\nitems:\n- apiVersion: projectcalico.org\/v3\n  kind: IPPool\n/);
  t.match(yaml, /kind: IPPoolList\nmetadata: \{\}\n$/);
  t.same(parseResources(yaml), first);
  t.same(parseResources(toYaml(first[0]!)), first);
});

t.test('Kubernetes core v1 Namespace becomes a Namespace with its labels', async (t) => {
  const [ns] = parseResources(`apiVersion: v1
kind: Namespace
metadata:
  name: prod
  labels:
    env: prod
    kubernetes.io/metadata.name: prod
spec:
  finalizers: [kubernetes]
status:
  phase: Active
`);
  t.same(ns, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Namespace',
    metadata: { name: 'prod', labels: { env: 'prod', 'kubernetes.io/metadata.name': 'prod' } },
  });
  t.same(problems({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'Prod' } }), [
    `Namespace Prod: metadata.name: "Prod" must consist of lower-case letters, digits and '-', and start and end with a letter or digit`,
  ]);
  t.same(problems({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' } }), [
    'Node (v1) n: kind: Node is a Kubernetes-only resource: tortie has no Kubernetes API datastore to hold it (of Kubernetes core v1 it takes Namespace, and NetworkPolicy from networking.k8s.io/v1)',
  ]);
});
