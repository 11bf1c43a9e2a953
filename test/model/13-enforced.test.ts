import t from 'tap';
import { computePrefilter } from '../../src/calc/prefilter';
import { ResourceState } from '../../src/calc/store';
import { formatProblem, unenforcedProblems, validateResource, type GlobalNetworkPolicy } from '../../src/model';

// Valid in Calico's model, not enforced by tortie: refused with the field named.

const V3 = 'projectcalico.org/v3';
const refusals = (doc: unknown) => unenforcedProblems(validateResource(doc)).map(formatProblem);

t.test('pools: VXLAN, IPv6, namespaceSelector, Manual assignment', async (t) => {
  t.same(refusals({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'v' }, spec: { cidr: '192.168.0.0/16', vxlanMode: 'Always' } }),
    ['IPPool v: spec.vxlanMode: Always is not supported: tortie does not implement VXLAN (use ipipMode, or vxlanMode Never)']);
  t.match(refusals({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'six' }, spec: { cidr: 'fd00:10::/48' } }),
    [/^IPPool six: spec\.cidr: fd00:10::\/48: IPv6 pools are not supported/]);
  t.match(refusals({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'n' }, spec: { cidr: '192.168.0.0/16', allowedUses: ['Workload'], namespaceSelector: 'a == "b"', assignmentMode: 'Manual' } }),
    [/spec\.namespaceSelector: is not supported/, /spec\.assignmentMode: Manual is not supported/]);
  t.same(refusals({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'ok' }, spec: { cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', vxlanMode: 'Never', natOutgoing: true } }), [], 'an IPIP v4 pool is fine');
});

t.test('rules: ipVersion 6, ICMPv6, IPv6 nets — in every rule list of every kind', async (t) => {
  const rules = [
    { action: 'Allow', ipVersion: 6 },
    { action: 'Allow', protocol: 'ICMPv6', ipVersion: 6 },
    { action: 'Deny', source: { nets: ['fd00::/8'] }, destination: { notNets: ['fd00:1::/64'] } },
    { action: 'Allow', ipVersion: 4, protocol: 'TCP', destination: { nets: ['10.0.0.0/8'], ports: [80] } },
  ];
  const paths = [
    'spec.ingress[0].ipVersion', 'spec.ingress[1].ipVersion', 'spec.ingress[1].protocol',
    'spec.ingress[2].source.nets[0]', 'spec.ingress[2].destination.notNets[0]',
  ];
  for (const kind of ['GlobalNetworkPolicy', 'NetworkPolicy', 'Profile']) {
    const ps = unenforcedProblems(validateResource({ apiVersion: V3, kind, metadata: { name: 'r' }, spec: { ingress: rules } }));
    t.same(ps.map((p) => p.path), paths, kind);
    t.ok(ps.every((p) => /IPv6 is not implemented by tortie/.test(p.reason)));
  }
});

t.test('workload endpoints: IPv6 addresses, floating IPs, spoofing allowances', async (t) => {
  const spec = { orchestrator: 'k8s', node: 'n1', pod: 'p', endpoint: 'eth0', interfaceName: 'cali1', ipNetworks: ['192.168.0.1/32', 'fd00::1/128'],
    ipNATs: [{ internalIP: '192.168.0.1', externalIP: '198.18.0.9' }], allowSpoofedSourcePrefixes: ['10.0.0.0/8'] };
  t.same(unenforcedProblems(validateResource({ apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { namespace: 'ns' }, spec })).map((p) => p.path),
    ['spec.ipNetworks[1]', 'spec.ipNATs', 'spec.allowSpoofedSourcePrefixes']);
});

const dnt = (name: string, spec: Record<string, unknown>) =>
  validateResource({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name }, spec: { selector: 'all()', applyOnForward: true, ...spec } }) as GlobalNetworkPolicy;

t.test('host-side policies: preDNAT refused; doNotTrack only as the uplink prefilter enforces it', async (t) => {
  t.match(unenforcedProblems(dnt('pre', { preDNAT: true, ingress: [{ action: 'Deny', source: { nets: ['8.8.8.0/24'] } }] })).map(formatProblem),
    [/^GlobalNetworkPolicy pre: spec\.preDNAT: preDNAT policies are not supported: tortie has no host endpoints/]);
  const cases: [string, Record<string, unknown>, string[]][] = [
    ['deny-nets', { doNotTrack: true, ingress: [{ action: 'Deny', source: { nets: ['198.51.100.0/24'] } }, { action: 'Log' }] }, []],
    ['deny-nets-types-egress', { doNotTrack: true, types: ['Ingress', 'Egress'], ingress: [{ action: 'Deny', source: { nets: ['198.51.100.0/24'] } }] }, []],
    ['allow', { doNotTrack: true, ingress: [{ action: 'Allow', source: { nets: ['10.0.0.0/8'] } }] }, ['spec.ingress[0].action']],
    ['proto', { doNotTrack: true, ingress: [{ action: 'Deny', protocol: 'TCP', source: { nets: ['192.0.2.0/24'] } }] }, ['spec.ingress[0]']],
    ['sel', { doNotTrack: true, ingress: [{ action: 'Deny', source: { selector: 'a == "b"' } }] }, ['spec.ingress[0]']],
    ['egress', { doNotTrack: true, egress: [{ action: 'Deny', destination: { nets: ['1.2.3.0/24'] } }] }, ['spec.egress']],
  ];
  // What is accepted must be exactly what the prefilter enforces: no rule of an accepted
  // policy may end up in computePrefilter's `skipped` list.
  for (const [name, spec, paths] of cases) {
    const p = dnt(name, spec);
    const ps = unenforcedProblems(p);
    t.same(ps.map((x) => x.path), paths, name);
    const state = new ResourceState();
    state.upsert(p);
    let id = 0;
    const pf = computePrefilter(state, 'node1', () => ++id);
    t.equal(pf.skipped.length === 0, ps.length === 0, `${name}: refused exactly when the prefilter would skip a rule`);
  }
});

t.test('everything else of the other kinds is enforced', async (t) => {
  t.same(refusals({ apiVersion: V3, kind: 'Tier', metadata: { name: 'sec' }, spec: { order: 10 } }), []);
  t.same(refusals({ apiVersion: V3, kind: 'Namespace', metadata: { name: 'ns', labels: { a: 'b' } } }), []);
  t.same(refusals({ apiVersion: V3, kind: 'Node', metadata: { name: 'n' }, spec: { bgp: { ipv4Address: '198.18.0.1/24' } } }), []);
});
