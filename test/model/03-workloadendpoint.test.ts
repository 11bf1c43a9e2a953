import t from 'tap';
import { valid, problems, res } from './helpers/util';
import { workloadEndpointName } from '../../src/model';

const base = {
  node: 'node-1',
  orchestrator: 'k8s',
  pod: 'frontend-abc',
  endpoint: 'eth0',
  interfaceName: 'cali0123456789a',
  ipNetworks: ['192.168.0.5/32'],
  mac: 'EE:EE:EE:EE:EE:EE',
  profiles: ['kns.default'],
  ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  serviceAccountName: 'web',
};
const wep = (spec: unknown, name?: string, meta: Record<string, unknown> = { namespace: 'prod' }) =>
  res('WorkloadEndpoint', name, spec, meta);

t.test('name derived from identifiers with dashes doubled; Calico labels added', async (t) => {
  const r = valid(wep(base));
  t.equal(r.metadata.name, 'node--1-k8s-frontend--abc-eth0');
  t.equal(r.metadata.namespace, 'prod');
  t.same(r.metadata.labels, {
    'projectcalico.org/namespace': 'prod',
    'projectcalico.org/orchestrator': 'k8s',
    'projectcalico.org/serviceaccount': 'web',
  });
  t.same(r.spec, {
    orchestrator: 'k8s',
    node: 'node-1',
    pod: 'frontend-abc',
    endpoint: 'eth0',
    serviceAccountName: 'web',
    ipNetworks: ['192.168.0.5/32'],
    profiles: ['kns.default'],
    interfaceName: 'cali0123456789a',
    mac: 'ee:ee:ee:ee:ee:ee',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  });
  t.equal(valid(wep(base, 'node--1-k8s-frontend--abc-eth0')).metadata.name, 'node--1-k8s-frontend--abc-eth0');
  t.equal(valid(wep(base, undefined, {})).metadata.namespace, 'default', 'namespace defaults to default');
});

t.test('name must match; identifiers required per orchestrator', async (t) => {
  t.same(problems(wep(base, 'wrong')), [
    'WorkloadEndpoint prod/wrong: metadata.name: "wrong" does not match the spec\'s identifiers; expected "node--1-k8s-frontend--abc-eth0"',
  ]);
  t.same(problems(wep({ ...base, pod: undefined })), [
    'WorkloadEndpoint prod/(no name): spec.pod: is required to name the workload endpoint',
  ]);
  t.equal(workloadEndpointName({ node: 'n', orchestrator: 'cni', containerID: 'abc', endpoint: 'eth0' }), 'n-cni-abc-eth0');
  t.equal(workloadEndpointName({ node: 'n', orchestrator: 'openstack', workload: 'vm-1', endpoint: 'tap' }), 'n-openstack-vm--1-tap');
  // Runtime ids that are no DNS label are made safe, distinct ids staying distinct.
  const under = workloadEndpointName({ node: 'n', orchestrator: 'cni', containerID: 'Web_1', endpoint: 'eth0' }) as string;
  t.match(under, /^n-cni-web--1--[0-9a-f]{10}-eth0$/);
  t.not(workloadEndpointName({ node: 'n', orchestrator: 'cni', containerID: 'web_1', endpoint: 'eth0' }), under);
  t.match(workloadEndpointName({ node: 'n', orchestrator: 'cni', containerID: 'abc', endpoint: 'net@1' }), /^n-cni-abc-net--1--[0-9a-f]{10}$/);
  t.match(workloadEndpointName({ node: 'n', orchestrator: 'cni', containerID: 'a'.repeat(80), endpoint: 'eth0' }), new RegExp(`^n-cni-${'a'.repeat(48)}--[0-9a-f]{10}-eth0$`));
  t.match(workloadEndpointName({ node: 'n', orchestrator: 'cni', containerID: '___', endpoint: 'eth0' }), /^n-cni-[0-9a-f]{10}-eth0$/);
  t.equal(problems(wep({ node: 'n', orchestrator: 'cni', containerID: 'Web_1', endpoint: 'eth0', interfaceName: 'cali1', ipNetworks: ['192.168.0.1/32'] })).length, 0,
    'an endpoint with such an id validates');
  t.same(workloadEndpointName({ node: 'n', orchestrator: 'k8s', pod: 'p-', endpoint: 'eth0' }), {
    path: 'spec.pod',
    reason: "must not begin or end with '-'",
  });
});

t.test('ipNetworks: single addresses only; bare address becomes /32 or /128', async (t) => {
  t.same((valid(wep({ ...base, ipNetworks: ['192.168.0.5', 'fd00::5'] })).spec as any).ipNetworks, ['192.168.0.5/32', 'fd00::5/128']);
  t.same(problems(wep({ ...base, ipNetworks: ['192.168.0.0/24'] })), [
    'WorkloadEndpoint prod/node--1-k8s-frontend--abc-eth0: spec.ipNetworks[0]: "192.168.0.0/24" contains several addresses; a workload network must be a single address (/32 or /128)',
  ]);
  t.same(problems(wep({ ...base, ipNetworks: ['not-an-ip'] })), [
    'WorkloadEndpoint prod/node--1-k8s-frontend--abc-eth0: spec.ipNetworks[0]: "not-an-ip" is not an IP address or CIDR',
  ]);
});

t.test('interfaceName, mac, ports, NATs', async (t) => {
  const n = 'WorkloadEndpoint prod/node--1-k8s-frontend--abc-eth0';
  t.same(problems(wep({ ...base, interfaceName: 'cali0123456789abc' })), [
    `${n}: spec.interfaceName: "cali0123456789abc" must be 1 to 15 characters of letters, digits, '_', '.' or '-'`,
  ]);
  t.same(problems(wep({ ...base, interfaceName: undefined })), [
    `${n}: spec.interfaceName: is required (the host-side interface, e.g. cali0123456789a)`,
  ]);
  t.same(problems(wep({ ...base, mac: 'ee:ee:ee' })), [`${n}: spec.mac: "ee:ee:ee" is not a MAC address (e.g. ee:ee:ee:ee:ee:ee)`]);
  t.same(problems(wep({ ...base, ports: [{ name: 'dns', protocol: 'ICMP', port: 53 }] })), [
    `${n}: spec.ports[0].protocol: ICMP has no ports; use TCP, UDP or SCTP`,
  ]);
  t.same(problems(wep({ ...base, ports: [{ name: 'Http', protocol: 'TCP', port: 80 }] })), [
    `${n}: spec.ports[0].name: port name "Http" may contain only lower-case letters, digits and '-'`,
  ]);
  t.same(problems(wep({ ...base, ports: [{ protocol: 'UDP', port: 0, name: 'x' }] })), [
    `${n}: spec.ports[0].port: 0 is out of range (1 to 65535)`,
  ]);
  t.same(problems(wep({ ...base, ports: [{ protocol: 'UDP', port: 53 }] })), [
    `${n}: spec.ports[0].name: is required unless a hostPort is given`,
  ]);
  t.same((valid(wep({ ...base, ports: [{ protocol: 'UDP', port: 53, hostPort: 5353 }] })).spec as any).ports, [
    { name: '', protocol: 'UDP', port: 53, hostPort: 5353 },
  ]);
  t.same(problems(wep({ ...base, ipNATs: [{ internalIP: '192.168.0.6', externalIP: '198.18.0.1' }] })), [
    `${n}: spec.ipNATs[0].internalIP: 192.168.0.6 is not one of the endpoint's ipNetworks`,
  ]);
  t.same((valid(wep({ ...base, ipNATs: [{ internalIP: '192.168.0.5', externalIP: '198.18.0.1' }] })).spec as any).ipNATs, [
    { internalIP: '192.168.0.5', externalIP: '198.18.0.1' },
  ]);
});
