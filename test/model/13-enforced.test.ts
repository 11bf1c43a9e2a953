import t from 'tap';
import { formatProblem, unenforcedProblems, validateResource, type GlobalNetworkPolicy } from '../../src/model';

// Valid in Calico's model, not enforced by tortie: refused with the field named.

const V3 = 'projectcalico.org/v3';
const refusals = (doc: unknown) => unenforcedProblems(validateResource(doc)).map(formatProblem);

t.test('pools: VXLAN, IPv6, namespaceSelector, Manual assignment', async (t) => {
  for (const mode of ['Always', 'CrossSubnet'] as const) {
    t.same(refusals({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'v' }, spec: { cidr: '192.168.0.0/16', vxlanMode: mode } }), [],
      `an IPv4 pool with vxlanMode ${mode} is enforced (bpf/lib/vxlan.h)`);
  }
  t.throws(() => validateResource({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'both' }, spec: { cidr: '192.168.0.0/16', vxlanMode: 'Always', ipipMode: 'CrossSubnet' } }),
    /ipipMode and vxlanMode cannot both be enabled/, 'ipipMode and vxlanMode both on: refused by the validator, as Calico\'s');
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

t.test('host-side policies: preDNAT and doNotTrack are enforced on host endpoints, local-side nets included', async (t) => {
  const cases: [string, Record<string, unknown>, string[]][] = [
    ['pre-deny-nets', { preDNAT: true, ingress: [{ action: 'Deny', source: { nets: ['198.51.100.0/24'] } }] }, []],
    ['pre-allow-ports', { preDNAT: true, ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [30080], selector: 'has(host)' } }] }, []],
    ['dnt-both', { doNotTrack: true, types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: 'a == "b"' } }],
      egress: [{ action: 'Deny', destination: { nets: ['1.2.3.0/24'] } }] }, []],
    ['pre-local-nets', { preDNAT: true, ingress: [{ action: 'Allow', destination: { nets: ['198.18.0.1/32'], ports: [80] }, protocol: 'TCP' }] }, []],
    ['dnt-local-notnets', { doNotTrack: true, types: ['Egress'], egress: [{ action: 'Deny', source: { notNets: ['198.18.0.1/32'] } }] }, []],
  ];
  for (const [name, spec, paths] of cases) {
    const ps = unenforcedProblems(dnt(name, spec));
    t.same(ps.map((x) => x.path), paths, name);
  }
});

t.test('HostEndpoint: IPv4 expectedIPs enforced, IPv6 ones refused', async (t) => {
  t.same(refusals({ apiVersion: V3, kind: 'HostEndpoint', metadata: { name: 'h' }, spec: { node: 'n', interfaceName: 'eth0', expectedIPs: ['198.18.0.1'] } }), []);
  t.match(refusals({ apiVersion: V3, kind: 'HostEndpoint', metadata: { name: 'h' }, spec: { node: 'n', interfaceName: '*', expectedIPs: ['fd00::1'] } }),
    [/^HostEndpoint h: spec\.expectedIPs\[0\]: fd00::1: IPv6 is not implemented/]);
});

t.test('FelixConfiguration: failsafe ports are honoured', async (t) => {
  t.same(refusals({ apiVersion: V3, kind: 'FelixConfiguration', metadata: { name: 'default' },
    spec: { failsafeInboundHostPorts: [{ protocol: 'TCP', port: 22 }], failsafeOutboundHostPorts: [] } }), []);
});

t.test('everything else of the other kinds is enforced', async (t) => {
  t.same(refusals({ apiVersion: V3, kind: 'Tier', metadata: { name: 'sec' }, spec: { order: 10 } }), []);
  t.same(refusals({ apiVersion: V3, kind: 'Namespace', metadata: { name: 'ns', labels: { a: 'b' } } }), []);
  t.same(refusals({ apiVersion: V3, kind: 'Node', metadata: { name: 'n' }, spec: { bgp: { ipv4Address: '198.18.0.1/24' } } }), []);
});

t.test('TORTIE_EXPERIMENTAL_IPV6=1 lifts the IPv6 refusals and only those', async (t) => {
  const before = process.env.TORTIE_EXPERIMENTAL_IPV6;
  t.teardown(() => {
    if (before === undefined) delete process.env.TORTIE_EXPERIMENTAL_IPV6;
    else process.env.TORTIE_EXPERIMENTAL_IPV6 = before;
  });
  const six = { apiVersion: V3, kind: 'IPPool', metadata: { name: 'six' }, spec: { cidr: 'fd00:10::/48', vxlanMode: 'Always', assignmentMode: 'Manual' } };
  process.env.TORTIE_EXPERIMENTAL_IPV6 = '1';
  t.same(refusals(six), ["IPPool six: spec.assignmentMode: Manual is not supported: tortie's IPAM assigns from every matching pool (Automatic)"],
    'the v6 cidr passes (and VXLAN on it: bpf/lib/vxlan6.h), the refusal that is not about IPv6 stays');
  const felix = { apiVersion: V3, kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { natOutgoingAddress: 'fd00:198:18::1' } };
  t.same(refusals(felix), ['FelixConfiguration default: spec.natOutgoingAddress: fd00:198:18::1 is not an IPv4 address: natOutgoingAddress is IPv4 only, as in Calico (NAT66 of IPv6 pools uses the node\'s IPv6 address)'],
    'an IPv6 natOutgoingAddress stays refused with the gate lifted (Calico accepts only IPv4 there)');
  process.env.TORTIE_EXPERIMENTAL_IPV6 = '0';
  t.equal(refusals(six).length, 2, 'any other value keeps both refusals');
  t.equal(refusals(felix).length, 1, 'and the natOutgoingAddress refusal');
});
