import t from 'tap';
import { valid, problems, res } from './helpers/util';
import { parseFailsafeText, DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND } from '../../src/model';

// HostEndpoint as libcalico-go validates it, the host-side policy flags' combinations, and
// Felix's failsafe-port formats.

const hep = (spec: unknown, name = 'eth0') => res('HostEndpoint', name, spec);

t.test('a HostEndpoint: node and interfaceName or expectedIPs; `*`; profiles; named ports', async (t) => {
  const r = valid(hep({ node: 'node1', interfaceName: 'eth0', expectedIPs: ['198.18.0.1', '::1'], profiles: ['hosts'],
    ports: [{ name: 'ssh', protocol: 'TCP', port: 22 }, { name: 'dns', protocol: 'UDP', port: 53 }] }, 'node1-eth0'));
  t.same(r.spec, { node: 'node1', interfaceName: 'eth0', expectedIPs: ['198.18.0.1', '::1'], profiles: ['hosts'],
    ports: [{ name: 'ssh', protocol: 'TCP', port: 22 }, { name: 'dns', protocol: 'UDP', port: 53 }] });
  t.same(valid(hep({ node: 'node1', interfaceName: '*' })).spec, { node: 'node1', interfaceName: '*' });
  t.same(valid(hep({ node: 'node1', expectedIPs: ['198.18.0.1'] })).spec, { node: 'node1', expectedIPs: ['198.18.0.1'] });
  t.same(valid(hep({ node: 'n', interfaceName: 'eth0' }, 'h')).metadata, { name: 'h' }, 'not namespaced');
});

t.test('HostEndpoint refusals name the field', async (t) => {
  t.same(problems(hep({ interfaceName: 'eth0' })), ['HostEndpoint eth0: spec.node: is required: no node has been specified']);
  t.same(problems(hep({ node: 'n' })), ['HostEndpoint eth0: spec.interfaceName: no interface or expected IPs have been specified (one of interfaceName, expectedIPs is required)']);
  t.match(problems(hep({ node: 'n', interfaceName: 'eth0:1' })), [/spec\.interfaceName: "eth0:1" must be '\*' or 1 to 15 characters/]);
  t.match(problems(hep({ node: 'n', interfaceName: 'averylonginterfacename' })), [/spec\.interfaceName/]);
  t.match(problems(hep({ node: 'n', expectedIPs: ['198.18.0.300'] })), [/spec\.expectedIPs\[0\]: "198\.18\.0\.300" is not an IP address/]);
  t.match(problems(hep({ node: 'n', interfaceName: 'eth0', profiles: ['Bad_Profile'] })), [/spec\.profiles\[0\]/]);
  t.match(problems(hep({ node: 'n', interfaceName: 'eth0', ports: [{ name: 'a', protocol: 'TCP', port: 1 }, { name: 'a', protocol: 'UDP', port: 2 }] })),
    [/spec\.ports\[1\]\.name: "a": the ports list contains a duplicate named port/]);
  t.match(problems(hep({ node: 'n', interfaceName: 'eth0', ports: [{ name: 'icmp', protocol: 'ICMP', port: 1 }] })), [/spec\.ports\[0\]\.protocol: ICMP has no ports/]);
  t.match(problems(hep({ node: 'n', interfaceName: 'eth0', ports: [{ name: 'x', protocol: 'TCP', port: 70000 }] })), [/spec\.ports\[0\]\.port/]);
  t.match(problems(hep({ node: 'n', interfaceName: 'eth0', ipNetworks: ['1.2.3.4/32'] })), [/spec\.ipNetworks/]);
});

t.test('host-side policy flags: Calico\'s combinations', async (t) => {
  const gnp = (spec: unknown) => res('GlobalNetworkPolicy', 'p', spec);
  t.same(problems(gnp({ preDNAT: true, applyOnForward: true, egress: [{ action: 'Allow' }] })).map((p) => p.replace(/^GlobalNetworkPolicy p: /, '')),
    ['spec.egress: a preDNAT policy cannot have egress rules', 'spec.types: a preDNAT policy cannot have type Egress']);
  t.same(problems(gnp({ preDNAT: true, ingress: [{ action: 'Deny' }] })), ['GlobalNetworkPolicy p: spec.applyOnForward: must be true when preDNAT or doNotTrack is true']);
  t.same(problems(gnp({ doNotTrack: true, ingress: [{ action: 'Deny' }] })), ['GlobalNetworkPolicy p: spec.applyOnForward: must be true when preDNAT or doNotTrack is true']);
  t.match(problems(gnp({ doNotTrack: true, preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny' }] })), [/spec: preDNAT and doNotTrack cannot both be true/]);
  t.same(problems(gnp({ preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny' }] })), []);
  t.same(problems(gnp({ doNotTrack: true, applyOnForward: true, types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] })), []);
});

t.test('failsafe ports: Felix\'s text form and FelixConfiguration lists', async (t) => {
  t.same(parseFailsafeText('tcp:22, udp:68,179'), [{ protocol: 'TCP', port: 22 }, { protocol: 'UDP', port: 68 }, { protocol: 'TCP', port: 179 }]);
  t.same(parseFailsafeText('tcp:10.0.0.0/8:22,sctp:[fd00::/8]:9'), [{ protocol: 'TCP', port: 22, net: '10.0.0.0/8' }, { protocol: 'SCTP', port: 9, net: 'fd00::/8' }]);
  t.same(parseFailsafeText('tcp:10.1.2.3:22'), [{ protocol: 'TCP', port: 22, net: '10.1.2.3/32' }], 'an address is a host route');
  t.same(parseFailsafeText('none'), []);
  t.same(parseFailsafeText('[]'), []);
  t.same(parseFailsafeText('icmp:1'), { error: '"icmp:1": protocol "icmp" is not tcp, udp or sctp' });
  t.same(parseFailsafeText('tcp:99999'), { error: '"tcp:99999": port "99999" is not 0–65535' });
  t.same(parseFailsafeText('tcp:1.2.3:22'), { error: '"tcp:1.2.3:22": "1.2.3" is not a CIDR or address' });
  t.same(parseFailsafeText('a:b:c:d'), { error: '"a:b:c:d": expected [protocol:][net:]port' });
  t.same(DEFAULT_FAILSAFE_INBOUND.map((p) => `${p.protocol.toLowerCase()}:${p.port}`).join(','), 'tcp:22,udp:68,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667');
  t.same(DEFAULT_FAILSAFE_OUTBOUND.map((p) => `${p.protocol.toLowerCase()}:${p.port}`).join(','), 'udp:53,udp:67,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667');
  const fc = (spec: unknown) => res('FelixConfiguration', 'default', spec);
  t.same(valid(fc({ failsafeInboundHostPorts: [{ protocol: 'tcp', port: 22, net: '10.0.0.1' }, { port: 179 }], failsafeOutboundHostPorts: [] })).spec,
    { failsafeInboundHostPorts: [{ protocol: 'TCP', port: 22, net: '10.0.0.1/32' }, { protocol: 'TCP', port: 179 }], failsafeOutboundHostPorts: [] });
  t.same(problems(fc({ failsafeInboundHostPorts: [{ protocol: 'ICMP', port: 22 }, { protocol: 'UDP', port: -1 }, { protocol: 'TCP', port: 1, net: 'x', extra: 1 }] })), [
    'FelixConfiguration default: spec.failsafeInboundHostPorts[0].protocol: must be TCP, UDP or SCTP, got "ICMP"',
    'FelixConfiguration default: spec.failsafeInboundHostPorts[1].port: must be an integer 0–65535, got -1',
    'FelixConfiguration default: spec.failsafeInboundHostPorts[2].extra: is not a field of a failsafe port (protocol, port, net)',
    'FelixConfiguration default: spec.failsafeInboundHostPorts[2].net: "x" is not a CIDR or address',
  ]);
  t.match(problems(fc({ failsafeOutboundHostPorts: 'tcp:22' })), [/spec\.failsafeOutboundHostPorts: must be a list/]);
});
