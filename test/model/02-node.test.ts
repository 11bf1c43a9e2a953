import t from 'tap';
import { valid, problems, res } from './helpers/util';

const node = (spec: unknown, name = 'node2') => res('Node', name, spec);

t.test('bgp.ipv4Address keeps host bits and subnet; bare address gets /32', async (t) => {
  const r = valid(node({ bgp: { ipv4Address: '10.0.2.10/24', asNumber: 64512, ipv6Address: 'fd00::10/64' } }));
  t.same(r.spec, { bgp: { asNumber: 64512, ipv4Address: '10.0.2.10/24', ipv6Address: 'fd00::10/64' } });
  const bare = valid(node({ bgp: { ipv4Address: '10.0.2.10', ipv6Address: 'aa::ff' } }));
  t.same(bare.spec, { bgp: { ipv4Address: '10.0.2.10/32', ipv6Address: 'aa::ff/128' } });
});

t.test('asNumber: number, numeric string, asdot', async (t) => {
  t.equal((valid(node({ bgp: { ipv4Address: '10.0.0.1/24', asNumber: '64512' } })).spec as any).bgp.asNumber, 64512);
  t.equal((valid(node({ bgp: { ipv4Address: '10.0.0.1/24', asNumber: '1.10' } })).spec as any).bgp.asNumber, 65546);
  t.same(problems(node({ bgp: { ipv4Address: '10.0.0.1/24', asNumber: 4294967296 } })), [
    'Node node2: spec.bgp.asNumber: 4294967296 is not a valid AS number (0 to 4294967295)',
  ]);
  t.same(problems(node({ bgp: { ipv4Address: '10.0.0.1/24', asNumber: 'abc' } })), [
    'Node node2: spec.bgp.asNumber: "abc" is not a valid AS number (a number or asdot "a.b")',
  ]);
});

t.test('address errors', async (t) => {
  t.same(problems(node({ bgp: { ipv4Address: 'fd00::1/64' } })), [
    'Node node2: spec.bgp.ipv4Address: "fd00::1/64" is not an IPv4 address with optional prefix (e.g. 10.0.2.10/24)',
  ]);
  t.same(problems(node({ bgp: { ipv4Address: '10.0.2.10/33' } })), [
    'Node node2: spec.bgp.ipv4Address: "10.0.2.10/33" is not an IPv4 address with optional prefix (e.g. 10.0.2.10/24)',
  ]);
  t.same(problems(node({ bgp: { ipv4Address: '010.0.2.10/24' } })), [
    'Node node2: spec.bgp.ipv4Address: "010.0.2.10/24" is not an IPv4 address with optional prefix (e.g. 10.0.2.10/24)',
  ]);
  t.same(problems(node({ bgp: {} })), ['Node node2: spec.bgp: must not be empty (omit it instead)']);
  t.same(problems(node({ bgp: { ipv4IPIPTunnelAddr: '10.0.0' } })), [
    'Node node2: spec.bgp.ipv4IPIPTunnelAddr: "10.0.0" is not an IPv4 address',
  ]);
  t.same(problems(node({ bgp: { ipv4Address: '10.0.0.1/24', peer: 1 } })), ['Node node2: spec.bgp.peer: unknown field']);
});

t.test('empty spec, orchRefs, addresses, names', async (t) => {
  t.same(valid(res('Node', 'node1', undefined)).spec, {});
  const r = valid(
    node({
      orchRefs: [{ orchestrator: 'k8s', nodeName: 'node2' }],
      addresses: [{ address: '10.0.2.10', type: 'InternalIP' }],
      ipv4VXLANTunnelAddr: '192.168.5.1',
      vxlanTunnelMACAddr: '66:AA:bb:cc:dd:ee',
    }),
  );
  t.same(r.spec, {
    ipv4VXLANTunnelAddr: '192.168.5.1',
    vxlanTunnelMACAddr: '66:aa:bb:cc:dd:ee',
    orchRefs: [{ orchestrator: 'k8s', nodeName: 'node2' }],
    addresses: [{ address: '10.0.2.10', type: 'InternalIP' }],
  });
  t.same(problems(node({ addresses: [{ address: '10.0.2.10/24' }] })), [
    'Node node2: spec.addresses[0].address: "10.0.2.10/24" has host bits set',
  ]);
  t.same(problems(node({}, 'Node.Example')), [
    `Node Node.Example: metadata.name: "Node.Example" must consist of lower-case letters, digits, '-' and '.', and start and end with a letter or digit`,
  ]);
  t.same(problems(node({}, 'node-a.example.com')), []);
});
