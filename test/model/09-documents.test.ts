import t from 'tap';
import { parseResources, resolveKind, toYaml, toJson, validateResource, ValidationError, RESOURCE_KINDS } from '../../src/model';
import { thrown } from './helpers/util';

const MULTI = `# pools and a policy
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 192.168.0.0/18
  ipipMode: Always
---
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: allow-dns
spec:
  order: 100
  selector: all()
  egress:
  - action: Allow
    protocol: UDP
    destination:
      ports: [53]
---
apiVersion: v1
kind: ipPool
metadata:
  cidr: 192.168.64.0/18
`;

t.test('multi-document YAML: in order, empty documents skipped, conversions applied', async (t) => {
  const rs = parseResources(MULTI);
  t.same(rs.map((r) => `${r.kind}/${r.metadata.name}`), ['IPPool/pool-a', 'GlobalNetworkPolicy/allow-dns', 'IPPool/192-168-64-0-18']);
});

t.test('all or nothing: one error lists every bad document; nothing returned', async (t) => {
  const text = MULTI + `---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool-b}
spec: {cidr: 10.0.0.0/16, blockSize: 40}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: np, namespace: prod}
spec:
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: ["80:70"]}
`;
  let err: unknown;
  try {
    parseResources(text);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ValidationError);
  const ve = err as ValidationError;
  t.equal(ve.code, 'ERR_MODEL_INVALID');
  t.same(
    ve.problems.map((p) => [p.document, p.kind, p.name, p.path]),
    [
      [5, 'IPPool', 'pool-b', 'spec.blockSize'],
      [6, 'NetworkPolicy', 'prod/np', 'spec.ingress[0].destination.ports[0]'],
    ],
  );
  t.equal(
    ve.message,
    'invalid input (2 problems):\n' +
      '  document 5: IPPool pool-b: spec.blockSize: 40 is out of range (20 to 32)\n' +
      '  document 6: NetworkPolicy prod/np: spec.ingress[0].destination.ports[0]: range "80:70" has min > max',
  );
});

t.test('YAML syntax errors and duplicate keys are reported with the document number', async (t) => {
  const ps = thrown(() => parseResources('apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\n---\nkind: [\n'));
  t.equal(ps.length, 1);
  t.match(ps[0], /^document 2: YAML syntax error at line \d+, column \d+: /);
  const dup = thrown(() => parseResources('apiVersion: projectcalico.org/v3\nkind: Tier\nkind: Tier\nmetadata: {name: t}\n'));
  t.match(dup[0], /^document 1: YAML syntax error .*[Mm]ap keys must be unique/);
  t.same(thrown(() => parseResources('')), ['no resources found in the input']);
  t.same(thrown(() => parseResources('---\n# nothing\n')), ['no resources found in the input']);
  t.same(thrown(() => parseResources('42')), ['document 1: must be an object, got a number (42)']);
});

t.test('JSON: single object, array, List and <Kind>List with items', async (t) => {
  const pool = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/16' } };
  const tier = { apiVersion: 'projectcalico.org/v3', kind: 'Tier', metadata: { name: 'sec' }, spec: { order: 10 } };
  t.equal(parseResources(JSON.stringify(pool)).length, 1);
  t.same(parseResources(JSON.stringify([pool, tier])).map((r) => r.kind), ['IPPool', 'Tier']);
  t.same(parseResources(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pool, tier] })).map((r) => r.kind), ['IPPool', 'Tier']);
  t.same(parseResources(JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPoolList', metadata: {}, items: [pool] })).length, 1);
  t.same(thrown(() => parseResources(JSON.stringify({ kind: 'List', items: [pool, { ...tier, spec: { order: 'x' } }] }))), [
    'document 1 items[1]: Tier sec: spec.order: must be a finite number, got a string ("x")',
  ]);
  t.same(thrown(() => parseResources(JSON.stringify({ kind: 'List' }))), ['document 1: items: a List needs an items list']);
});

t.test('resolveKind: calicoctl names and aliases, case-insensitive', async (t) => {
  const cases: [string, string | undefined][] = [
    ['ipPool', 'IPPool'], ['IPPOOLS', 'IPPool'], ['ipp', 'IPPool'], ['pool', 'IPPool'], ['pools', 'IPPool'],
    ['nodes', 'Node'], ['no', 'Node'], ['wep', 'WorkloadEndpoint'], ['workloadEndpoints', 'WorkloadEndpoint'],
    ['pro', 'Profile'], ['profiles', 'Profile'], ['tier', 'Tier'], ['Tiers', 'Tier'],
    ['networkpolicy', 'NetworkPolicy'], ['netpol', undefined], ['np', 'NetworkPolicy'], ['policy', 'NetworkPolicy'], ['pols', 'NetworkPolicy'],
    ['gnp', 'GlobalNetworkPolicy'], ['GlobalNetworkPolicies', 'GlobalNetworkPolicy'], ['ns', 'Namespace'],
    ['hostendpoint', 'HostEndpoint'], ['heps', 'HostEndpoint'], ['stagednetworkpolicy', undefined], ['', undefined],
  ];
  for (const [text, kind] of cases) t.equal(resolveKind(text), kind, text);
  for (const k of RESOURCE_KINDS) t.equal(resolveKind(k), k, `the kind name itself: ${k}`);
});

t.test('toYaml / toJson in calicoctl shapes, and they parse back to the same resources', async (t) => {
  const rs = parseResources(MULTI);
  const single = toYaml(rs[0]!);
  t.equal(
    single,
    'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool-a\nspec:\n  allowedUses:\n  - Workload\n  - Tunnel\n' +
      '  assignmentMode: Automatic\n  blockSize: 26\n  cidr: 192.168.0.0/18\n  ipipMode: Always\n  nodeSelector: all()\n  vxlanMode: Never\n',
  );
  const mixed = toYaml(rs, { resourceVersion: '42' });
  t.match(mixed, /^apiVersion: v1\nitems:\n/);
  t.match(mixed, /\nkind: List\nmetadata:\n  resourceVersion: "42"\n$/);
  const pools = toJson(rs.filter((r) => r.kind === 'IPPool'));
  const parsed = JSON.parse(pools);
  t.same(Object.keys(parsed), ['kind', 'apiVersion', 'metadata', 'items']);
  t.equal(parsed.kind, 'IPPoolList');
  t.same(Object.keys(JSON.parse(toJson(rs[0]!))).slice(0, 2), ['kind', 'apiVersion']);
  t.equal(toYaml([], { listKind: 'IPPool', resourceVersion: '7' }), 'apiVersion: projectcalico.org/v3\nitems: []\nkind: IPPoolList\nmetadata:\n  resourceVersion: "7"\n');
  t.equal(toYaml([]), 'apiVersion: v1\nitems: []\nkind: List\nmetadata: {}\n');
  t.same(parseResources(mixed), rs, 'YAML round trip');
  t.same(parseResources(pools), rs.filter((r) => r.kind === 'IPPool'), 'JSON round trip');
  for (const r of rs) t.same(validateResource(JSON.parse(JSON.stringify(r))), r, `validation is idempotent: ${r.metadata.name}`);
});

t.test('validated resources do not alias the input', async (t) => {
  const input = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'GlobalNetworkPolicy',
    metadata: { name: 'p', labels: { a: 'b' } },
    spec: { ingress: [{ action: 'Allow', source: { nets: ['10.0.0.0/8'] } }] },
  };
  const r = validateResource(input) as { metadata: { labels: Record<string, string> }; spec: { ingress: { source: { nets: string[] } }[] } };
  input.metadata.labels.a = 'changed';
  input.spec.ingress[0]!.source.nets.push('11.0.0.0/8');
  t.equal(r.metadata.labels.a, 'b');
  t.same(r.spec.ingress[0]!.source.nets, ['10.0.0.0/8']);
});
