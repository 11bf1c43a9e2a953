import t from 'tap';
import { parseResources, convertToV3, simplifyPorts, type NetworkPolicy } from '../../src/model';
import { problems } from './helpers/util';

const ORCH = "projectcalico.org/orchestrator == 'k8s'";
const knp = (spec: unknown, name = 'np1', namespace = 'prod') => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace },
  spec,
});
const conv = (spec: unknown) => convertToV3(knp(spec)) as NetworkPolicy;

t.test("Kubernetes docs' example converts as Calico's converter does", async (t) => {
  const [p] = parseResources(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        - ipBlock:
            cidr: 172.17.0.0/16
            except:
              - 172.17.1.0/24
        - namespaceSelector:
            matchLabels:
              project: myproject
        - podSelector:
            matchLabels:
              role: frontend
      ports:
        - protocol: TCP
          port: 6379
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 5978
`);
  t.same(p, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'NetworkPolicy',
    metadata: { name: 'knp.default.test-network-policy', namespace: 'default', labels: { 'projectcalico.org/tier': 'default' } },
    spec: {
      tier: 'default',
      order: 1000,
      ingress: [
        { action: 'Allow', protocol: 'TCP', source: { nets: ['172.17.0.0/16'], notNets: ['172.17.1.0/24'] }, destination: { ports: [6379] } },
        { action: 'Allow', protocol: 'TCP', source: { selector: ORCH, namespaceSelector: "project == 'myproject'" }, destination: { ports: [6379] } },
        { action: 'Allow', protocol: 'TCP', source: { selector: `${ORCH} && role == 'frontend'` }, destination: { ports: [6379] } },
      ],
      egress: [{ action: 'Allow', protocol: 'TCP', destination: { nets: ['10.0.0.0/24'], ports: [5978] } }],
      selector: `${ORCH} && role == 'db'`,
      types: ['Ingress', 'Egress'],
    },
  });
});

t.test('isolation semantics: [] vs absent vs [{}], policyTypes defaults', async (t) => {
  const denyAll = conv({ podSelector: {}, ingress: [] });
  t.same(denyAll.spec.types, ['Ingress']);
  t.equal(denyAll.spec.ingress, undefined, 'ingress: [] → isolated, no rule');
  t.equal(denyAll.spec.selector, ORCH, 'empty podSelector selects every pod of the namespace');
  const noSpec = conv({ podSelector: {} });
  t.same(noSpec.spec.types, ['Ingress'], 'no policyTypes and no egress → Ingress only');
  const allowAll = conv({ podSelector: {}, ingress: [{}] });
  t.same(allowAll.spec.ingress, [{ action: 'Allow' }], '[{}] → one rule allowing everything');
  const emptyFrom = conv({ podSelector: {}, ingress: [{ from: [], ports: [] }] });
  t.same(emptyFrom.spec.ingress, [{ action: 'Allow' }], 'empty from and ports mean all');
  const withEgress = conv({ podSelector: {}, egress: [{}] });
  t.same(withEgress.spec.types, ['Ingress', 'Egress'], 'absent policyTypes + egress rules → Ingress and Egress');
  t.same(withEgress.spec.egress, [{ action: 'Allow' }]);
  const emptyEgress = conv({ podSelector: {}, egress: [] });
  t.same(emptyEgress.spec.types, ['Ingress'], 'egress: [] does not imply Egress (Kubernetes defaulting)');
  const egressOnly = conv({ podSelector: {}, policyTypes: ['Egress'], egress: [] });
  t.same(egressOnly.spec.types, ['Egress']);
  t.equal(egressOnly.spec.egress, undefined, 'egress isolated, nothing allowed');
  const reordered = conv({ podSelector: {}, policyTypes: ['Egress', 'Ingress'] });
  t.same(reordered.spec.types, ['Ingress', 'Egress']);
});

t.test('peers: combined pod+namespace selectors, empty namespaceSelector, expressions', async (t) => {
  const p = conv({
    podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }] },
    ingress: [
      {
        from: [
          { podSelector: { matchLabels: { app: 'x' } }, namespaceSelector: { matchLabels: { team: 'a' } } },
          { namespaceSelector: {} },
          {
            podSelector: {
              matchLabels: { 'app.kubernetes.io/name': 'y' },
              matchExpressions: [
                { key: 'env', operator: 'NotIn', values: ['dev'] },
                { key: 'canary', operator: 'DoesNotExist' },
                { key: 'owner', operator: 'Exists' },
              ],
            },
          },
        ],
      },
    ],
  });
  t.equal(p.spec.selector, `${ORCH} && tier in { 'web', 'api' }`);
  t.same(p.spec.ingress, [
    { action: 'Allow', source: { selector: `${ORCH} && app == 'x'`, namespaceSelector: "team == 'a'" } },
    { action: 'Allow', source: { selector: ORCH, namespaceSelector: 'all()' } },
    {
      action: 'Allow',
      source: { selector: `${ORCH} && app.kubernetes.io/name == 'y' && env not in { 'dev' } && ! has(canary) && has(owner)` },
    },
  ]);
});

t.test('ports: protocols, endPort ranges, named ports, merging like Calico', async (t) => {
  const p = conv({
    podSelector: {},
    ingress: [
      {
        ports: [
          { port: 80 },
          { port: 81 },
          { protocol: 'TCP', port: 82 },
          { port: 443 },
          { protocol: 'UDP', port: 8000, endPort: 8080 },
          { protocol: 'UDP', port: 'dns' },
          { protocol: 'SCTP' },
        ],
      },
    ],
  });
  t.same(p.spec.ingress, [
    { action: 'Allow', protocol: 'SCTP' },
    { action: 'Allow', protocol: 'TCP', destination: { ports: ['80:82', 443] } },
    { action: 'Allow', protocol: 'UDP', destination: { ports: ['dns', '8000:8080'] } },
  ]);
  const allTcp = conv({ podSelector: {}, egress: [{ ports: [{ port: 22 }, { protocol: 'TCP' }], to: [{ ipBlock: { cidr: '198.18.0.0/15' } }] }] });
  t.same(allTcp.spec.egress, [{ action: 'Allow', protocol: 'TCP', destination: { nets: ['198.18.0.0/15'] } }], 'a port-less entry opens every port');
  t.same(simplifyPorts([80]), [80]);
  t.same(simplifyPorts(['http', 90, 89, '1:10', 5, 11]), ['http', '1:11', '89:90']);
  t.same(simplifyPorts(['a', 'b', 7]), ['a', 'b', 7], 'one numeric port: unchanged');
});

t.test('ipBlock: masked, except must be inside', async (t) => {
  const p = conv({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.1.2.3/16', except: ['10.1.5.0/24'] } }] }] });
  t.same(p.spec.ingress, [{ action: 'Allow', source: { nets: ['10.1.0.0/16'], notNets: ['10.1.5.0/24'] } }]);
  t.same(problems(knp({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.1.0.0/16', except: ['10.2.0.0/24'] } }] }] })), [
    'NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.ingress[0].from[0].ipBlock.except[0]: "10.2.0.0/24" must be strictly within 10.1.0.0/16',
  ]);
});

t.test('errors use the Kubernetes field paths, all reported', async (t) => {
  t.same(
    problems(
      knp({
        podSelector: { matchLabels: { 'bad key': 'v' } },
        policyTypes: ['ingress'],
        ingress: [
          {
            from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }, {}],
            ports: [{ protocol: 'ICMP' }, { port: 'http', endPort: 90 }, { port: '80' }, { port: 70, endPort: 60 }],
          },
        ],
        egress: [{ to: [{ podSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] } }] }],
      }),
    ),
    [
      `NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.podSelector.matchLabels["bad key"]: key "bad key": name part must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit`,
      'NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or namespaceSelector',
      'NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.ingress[0].from[1]: must set at least one of podSelector, namespaceSelector or ipBlock',
      'NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.ingress[0].ports[0].protocol: must be TCP, UDP or SCTP, got a string ("ICMP")',
      'NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.ingress[0].ports[1].endPort: cannot be used with a named port',
      'NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.ingress[0].ports[2].port: "80" must be a number, not a string, or a port name',
      'NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.ingress[0].ports[3].endPort: must be an integer from port (70) to 65535, got a number (60)',
      'NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.egress[0].to[0].podSelector.matchExpressions[0].values: must be non-empty for operator In',
      'NetworkPolicy (networking.k8s.io/v1) prod/np1: spec.policyTypes[0]: must be Ingress or Egress, got a string ("ingress")',
    ],
  );
  t.same(problems({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'x' } }), [
    'Ingress (networking.k8s.io/v1) (no name): kind: only NetworkPolicy is accepted from networking.k8s.io/v1, got a string ("Ingress")',
  ]);
  const noNs = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'np1' }, spec: {} };
  t.same(problems(noNs), []);
  t.equal(convertToV3(noNs).metadata.namespace, 'default', 'namespace defaults to default');
});
