import t from 'tap';
import { createHash } from 'node:crypto';
import { convertToV3, formatProblem, parseResources, toV3 } from '../../src/model';

// v1 policy / profile → v3 as libcalico-go's v1→v3 migration converters do.

const problems = (doc: unknown) => (toV3(doc).problems ?? []).map(formatProblem);

t.test('v1 policy → GlobalNetworkPolicy (the calicoctl 1.x docs example)', async (t) => {
  const [p] = parseResources(`apiVersion: v1
kind: policy
metadata:
  name: allow-tcp-6379
spec:
  order: 100
  selector: role == 'database'
  ingress:
  - action: allow
    protocol: tcp
    source:
      selector: role == 'frontend'
    destination:
      ports:
      - 6379
  egress:
  - action: allow
`);
  t.same(p, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'GlobalNetworkPolicy',
    metadata: { name: 'allow-tcp-6379', labels: { 'projectcalico.org/tier': 'default' } },
    spec: {
      tier: 'default',
      order: 100,
      ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "role == 'frontend'" }, destination: { ports: [6379] } }],
      egress: [{ action: 'Allow' }],
      selector: "role == 'database'",
      types: ['Ingress', 'Egress'],
    },
  });
});

t.test('rules: actions, protocols, net + nets masked, tags as selectors, calico/k8s_ns renamed', async (t) => {
  const r = convertToV3({
    apiVersion: 'v1', kind: 'policy', metadata: { name: 'r' },
    spec: {
      selector: "calico/k8s_ns == 'prod'",
      types: ['ingress'],
      ingress: [
        { action: 'deny', protocol: 'udp', source: { net: '10.1.2.3/8', nets: ['192.168.1.0/24'], tag: 'blue', selector: "a == 'b'" } },
        { action: 'next-tier', protocol: 'icmp', icmp: { type: 8 }, destination: { notTag: 'red', notNet: '172.16.0.0/12' } },
        { action: 'log', notProtocol: 'udplite' },
        { protocol: 6 },
      ],
    },
  });
  t.equal(r.kind, 'GlobalNetworkPolicy');
  const spec = (r as { spec: Record<string, unknown> }).spec;
  t.equal(spec.selector, "projectcalico.org/namespace == 'prod'");
  t.same(spec.types, ['Ingress']);
  t.same(spec.ingress, [
    { action: 'Deny', protocol: 'UDP', source: { nets: ['10.0.0.0/8', '192.168.1.0/24'], selector: "(a == 'b') && blue == ''" } },
    { action: 'Pass', protocol: 'ICMP', icmp: { type: 8 }, destination: { notNets: ['172.16.0.0/12'], notSelector: "red == ''" } },
    { action: 'Log', notProtocol: 'UDPLite' },
    { action: 'Allow', protocol: 6 },
  ]);
});

t.test('names: unchanged when already valid, else normalised with the sha1 qualifier; flags and types', async (t) => {
  const q = (s: string) => createHash('sha1').update(s).digest('hex').slice(0, 8);
  t.equal(convertToV3({ apiVersion: 'v1', kind: 'policy', metadata: { name: 'Allow.DB' } }).metadata.name, `allow-db-${q('Allow.DB')}`);
  const dnt = convertToV3({ apiVersion: 'v1', kind: 'policy', metadata: { name: 'dnt' }, spec: { doNotTrack: true, ingress: [{ action: 'deny' }] } });
  t.same((dnt as { spec: Record<string, unknown> }).spec.applyOnForward, true, 'doNotTrack implies applyOnForward');
  const eg = convertToV3({ apiVersion: 'v1', kind: 'policy', metadata: { name: 'eg' }, spec: { egress: [{ action: 'allow' }] } });
  t.same((eg as { spec: Record<string, unknown> }).spec.types, ['Egress'], 'types from the rule lists');
  t.equal(convertToV3({ apiVersion: 'v1', kind: 'profile', metadata: { name: 'k8s_ns.prod' } }).metadata.name, 'kns.prod', 'k8s_ns. → kns.');
  t.equal(convertToV3({ apiVersion: 'v1', kind: 'profile', metadata: { name: 'Web_Tier' } }).metadata.name, `web-tier-${q('Web_Tier')}`);
});

t.test('v1 profile → Profile: labels and tags merged into labelsToApply', async (t) => {
  const [p] = parseResources(`apiVersion: v1
kind: profile
metadata:
  name: profile1
  labels:
    profile: profile1
  tags:
  - tag1
  - tag2s
spec:
  ingress:
  - action: deny
    source:
      net: 10.0.20.0/24
  - action: allow
    source:
      selector: profile == 'profile1'
  egress:
  - action: allow
`);
  t.same(p, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: 'profile1' },
    spec: {
      ingress: [{ action: 'Deny', source: { nets: ['10.0.20.0/24'] } }, { action: 'Allow', source: { selector: "profile == 'profile1'" } }],
      egress: [{ action: 'Allow' }],
      labelsToApply: { profile: 'profile1', tag1: '', tag2s: '' },
    },
  });
});

t.test('bad v1 input names the v1 field', async (t) => {
  t.same(problems({ apiVersion: 'v1', kind: 'policy', metadata: { name: 'p' }, spec: { ingress: [{ action: 'permit' }], bogus: 1 } }), [
    'policy (v1) p: spec.bogus: unknown field',
    'policy (v1) p: spec.ingress[0].action: must be one of allow, deny, log, pass (next-tier), got "permit"',
  ], 'every problem, by v1 path');
  t.match(problems({ apiVersion: 'v1', kind: 'policy', metadata: { name: 'p' }, spec: { ingress: [{ action: 'permit' }] } }),
    ['policy (v1) p: spec.ingress[0].action: must be one of allow, deny, log, pass (next-tier), got "permit"']);
  t.match(problems({ apiVersion: 'v1', kind: 'profile', metadata: { name: 'p', labels: { a: 'x' }, tags: ['a'] } }),
    [/metadata\.tags\[0\]: tag "a" and label "a == x" have the same key/]);
  t.match(problems({ apiVersion: 'v1', kind: 'policy', metadata: { name: 'p' }, spec: { ingress: [{ protocol: 'gre' }] } }),
    [/spec\.ingress\[0\]\.protocol: must be one of tcp, udp, icmp, icmpv6, sctp, udplite or a number/]);
});
