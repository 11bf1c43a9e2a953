// Felix's ipv6Support false: what the agent compiles and the BGP driver renders is the resources
// less their IPv6 parts (src/model/ipv6-off.ts); FELIX_IPV6SUPPORT read as Felix reads it.
import t from 'tap';
import { validateResource, type Resource } from '../../src/model';
import { withoutIpv6 } from '../../src/model/ipv6-off';
import { resolveConfig, withFelixConfiguration } from '../../src/node/config';

const V3 = 'projectcalico.org/v3';
const r = (kind: string, spec: Record<string, unknown>, ns?: string, name = 'x') =>
  validateResource({ apiVersion: V3, kind, metadata: { name, ...(ns ? { namespace: ns } : {}) }, spec }) as Resource;

t.test('withoutIpv6: IPv6 pools absent, IPv6 addresses dropped, the rest untouched', async (t) => {
  t.equal(withoutIpv6(r('IPPool', { cidr: 'fd00:10::/48' })), undefined, 'an IPv6 pool is absent');
  const v4pool = r('IPPool', { cidr: '192.168.0.0/16' });
  t.equal(withoutIpv6(v4pool), v4pool, 'an IPv4 pool is the same object');
  const wep = r('WorkloadEndpoint', { orchestrator: 'k8s', node: 'n1', pod: 'p', endpoint: 'eth0', interfaceName: 'cali1',
    ipNetworks: ['192.168.0.1/32', 'fd00:10::1/128'], ipv6Gateway: 'fe80::ecee:eeff:feee:eeee' }, 'ns', 'n1-k8s-p-eth0') as Extract<Resource, { kind: 'WorkloadEndpoint' }>;
  const w = withoutIpv6(wep) as typeof wep;
  t.same(w.spec.ipNetworks, ['192.168.0.1/32'], 'a workload keeps its IPv4 address');
  t.equal(w.spec.ipv6Gateway, undefined, 'and no IPv6 gateway');
  t.same(wep.spec.ipNetworks, ['192.168.0.1/32', 'fd00:10::1/128'], 'the input is not modified');
  const hep = withoutIpv6(r('HostEndpoint', { node: 'n1', interfaceName: 'eth0', expectedIPs: ['198.18.0.1', 'fd00:198:18::1'] })) as Extract<Resource, { kind: 'HostEndpoint' }>;
  t.same(hep.spec.expectedIPs, ['198.18.0.1'], 'a host endpoint keeps its IPv4 expectedIPs');
  const node = withoutIpv6(r('Node', { bgp: { ipv4Address: '198.18.0.1/24', ipv6Address: 'fd00:198:18::1/64' } })) as Extract<Resource, { kind: 'Node' }>;
  t.same(node.spec.bgp, { ipv4Address: '198.18.0.1/24' }, 'a node keeps its IPv4 address only');
  const pol = r('GlobalNetworkPolicy', { ingress: [{ action: 'Allow', ipVersion: 6 }] });
  t.equal(withoutIpv6(pol), pol, 'policies are unchanged (an IPv6 rule then matches nothing)');
});

t.test('ipv6Support: true by default, FELIX_IPV6SUPPORT and FelixConfiguration set it, bad values named', async (t) => {
  t.equal(resolveConfig({ nodeName: 'n1' }, {}).ipv6Support, true, "Calico's default: true");
  const off = resolveConfig({ nodeName: 'n1' }, { FELIX_IPV6SUPPORT: 'false' });
  t.equal(off.ipv6Support, false, 'FELIX_IPV6SUPPORT=false');
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { FELIX_IPV6SUPPORT: 'maybe' }), /FELIX_IPV6SUPPORT: "maybe" is not a boolean/);
  const fromStore = withFelixConfiguration(resolveConfig({ nodeName: 'n1' }, {}), [undefined, { ipv6Support: false }]);
  t.equal(fromStore.config.ipv6Support, false, 'FelixConfiguration default sets it');
  t.equal(withFelixConfiguration(off, [{ ipv6Support: true }, undefined]).config.ipv6Support, false, 'the environment wins over FelixConfiguration, as in Felix');
});
