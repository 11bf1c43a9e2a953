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
  for (const spec of [{ cidr: 'fd00:10::/48' }, { cidr: 'fd00:10::/48', natOutgoing: true, vxlanMode: 'CrossSubnet' }, { cidr: 'fd00:10::/48', vxlanMode: 'Always', blockSize: 116 }]) {
    t.same(refusals({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'six' }, spec }), [], `an IPv6 pool is enforced: ${JSON.stringify(spec)}`);
  }
  t.match(refusals({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'six' }, spec: { cidr: 'fd00:10::/48', vxlanMode: 'Always', assignmentMode: 'Manual' } }),
    ["IPPool six: spec.assignmentMode: Manual is not supported: tortie's IPAM assigns from every matching pool (Automatic)"], 'on an IPv6 pool, only what is not about IPv6 is refused');
  t.match(refusals({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'n' }, spec: { cidr: '192.168.0.0/16', allowedUses: ['Workload'], namespaceSelector: 'a == "b"', assignmentMode: 'Manual' } }),
    [/spec\.namespaceSelector: is not supported/, /spec\.assignmentMode: Manual is not supported/]);
  t.same(refusals({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'ok' }, spec: { cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', vxlanMode: 'Never', natOutgoing: true } }), [], 'an IPIP v4 pool is fine');
});

t.test('rules: ipVersion 6, ICMPv6, IPv6 nets are enforced in every rule list of every kind', async (t) => {
  const rules = [
    { action: 'Allow', ipVersion: 6 },
    { action: 'Allow', protocol: 'ICMPv6', ipVersion: 6 },
    { action: 'Deny', source: { nets: ['fd00::/8'] }, destination: { notNets: ['fd00:1::/64'] } },
    { action: 'Allow', ipVersion: 4, protocol: 'TCP', destination: { nets: ['10.0.0.0/8'], ports: [80] } },
  ];
  for (const kind of ['GlobalNetworkPolicy', 'NetworkPolicy', 'Profile']) {
    t.same(unenforcedProblems(validateResource({ apiVersion: V3, kind, metadata: { name: 'r' }, spec: { ingress: rules, egress: rules } })), [], kind);
  }
  for (const kind of ['GlobalNetworkSet', 'NetworkSet']) {
    t.same(refusals({ apiVersion: V3, kind, metadata: { name: 's', namespace: kind === 'NetworkSet' ? 'ns' : undefined }, spec: { nets: ['198.18.0.0/24', 'fd00:1::/64'] } }), [], `${kind}: IPv6 nets`);
  }
});

t.test('workload endpoints: IPv6 addresses and gateway enforced; floating IPs, spoofing allowances refused', async (t) => {
  const spec = { orchestrator: 'k8s', node: 'n1', pod: 'p', endpoint: 'eth0', interfaceName: 'cali1', ipNetworks: ['192.168.0.1/32', 'fd00::1/128'], ipv6Gateway: 'fe80::ecee:eeff:feee:eeee',
    ipNATs: [{ internalIP: '192.168.0.1', externalIP: '198.18.0.9' }], allowSpoofedSourcePrefixes: ['10.0.0.0/8'] };
  t.same(unenforcedProblems(validateResource({ apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { namespace: 'ns' }, spec })).map((p) => p.path),
    ['spec.ipNATs', 'spec.allowSpoofedSourcePrefixes']);
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

t.test('HostEndpoint: IPv4 and IPv6 expectedIPs are enforced', async (t) => {
  t.same(refusals({ apiVersion: V3, kind: 'HostEndpoint', metadata: { name: 'h' }, spec: { node: 'n', interfaceName: 'eth0', expectedIPs: ['198.18.0.1'] } }), []);
  t.same(refusals({ apiVersion: V3, kind: 'HostEndpoint', metadata: { name: 'h' }, spec: { node: 'n', interfaceName: '*', expectedIPs: ['198.18.0.1', 'fd00::1'] } }), []);
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

t.test('FelixConfiguration: natOutgoingAddress is IPv4 only (as Calico), ipv6Support is honoured', async (t) => {
  const felix = { apiVersion: V3, kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { natOutgoingAddress: 'fd00:198:18::1' } };
  t.same(refusals(felix), ['FelixConfiguration default: spec.natOutgoingAddress: fd00:198:18::1 is not an IPv4 address: natOutgoingAddress is IPv4 only, as in Calico (NAT66 of IPv6 pools uses the node\'s IPv6 address)'],
    'an IPv6 natOutgoingAddress is refused (NAT66 uses the node\'s IPv6 address)');
  for (const v of [true, false]) {
    t.same(refusals({ apiVersion: V3, kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { ipv6Support: v } }), [], `ipv6Support: ${v}`);
  }
});
