/** ipam check: leaks, unknown endpoint addresses, duplicates and tunnel addresses are reported. */
import t from 'tap';
import { IpamClient, ipamCheck, renderIpamCheck } from '../../src/ipam';
import type { WorkloadEndpoint } from '../../src/model/types';
import { openTestStore } from '../../src/testbed/store';
import { pool } from '../../src/testbed/fixtures';

function wep(pod: string, containerID: string, ip: string): WorkloadEndpoint {
  return {
    apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name: '', namespace: 'default' },
    spec: { orchestrator: 'k8s', node: 'n1', pod, endpoint: 'eth0', containerID, interfaceName: `cali${containerID.padEnd(11, '0')}`, ipNetworks: [`${ip}/32`] },
  };
}

t.test('a consistent store reports nothing; each kind of drift is found', async (t) => {
  const s = openTestStore('ipam-check');
  t.teardown(() => s.close());
  await s.rc.create(pool('p', '10.80.0.0/24', { ipipMode: 'Always' }));
  const ipam = new IpamClient(s.ds);
  const a = (await ipam.assign({ handleId: 'net.c1', node: 'n1', attrs: { containerID: 'c1', namespace: 'default', pod: 'a' } })).ips[0]!.ip;
  const b = (await ipam.assign({ handleId: 'net.c2', node: 'n1', attrs: { containerID: 'c2', namespace: 'default', pod: 'b' } })).ips[0]!.ip;
  const tun = (await ipam.assignTunnelAddress('n1'))!;
  await s.rc.create(wep('a', 'c1', a));
  await s.rc.create(wep('b', 'c2', b));
  await s.rc.create({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'n1' }, spec: { bgp: { ipv4Address: '198.18.0.2/24', ipv4IPIPTunnelAddr: tun } } });
  let r = await ipamCheck(s.ds);
  t.match(r, { blocks: 1, allocations: 3, endpoints: 2, leaked: [], unknown: [], duplicate: [], tunnel: [] });
  t.match(renderIpamCheck(r), /No problems found\./);

  // Leak: c3 allocated, never got an endpoint. Unknown: an endpoint with an address IPAM never gave.
  const c = (await ipam.assign({ handleId: 'net.c3', node: 'n1', attrs: { containerID: 'c3', namespace: 'default', pod: 'c' } })).ips[0]!.ip;
  await s.rc.create(wep('d', 'c4', '10.80.0.250'));
  await s.rc.create(wep('e', 'c5', a)); // duplicate of a's address
  await ipam.releaseByHandle('ipip-tunnel-addr-n1');
  r = await ipamCheck(s.ds);
  t.same(r.leaked.map((l) => [l.ip, l.handleId]), [[c, 'net.c3']]);
  t.same(r.unknown, [{ ip: '10.80.0.250', endpoint: 'default/n1-k8s-d-eth0' }]);
  t.same(r.duplicate, [{ ip: a, endpoints: ['default/n1-k8s-a-eth0', 'default/n1-k8s-e-eth0'] }]);
  t.same(r.tunnel, [{ node: 'n1', ip: tun, problem: 'not allocated in IPAM' }]);
  const text = renderIpamCheck(r);
  t.match(text, new RegExp(`Found 1 in-use IPs that are not in active workload endpoints\\.\\n  ${c.replace(/\./g, '\\.')} handle net\\.c3`));
  t.match(text, /Problems found\./);
  await ipam.releaseByHandle('net.c3');
  t.same((await ipamCheck(s.ds)).leaked, [], 'releasing the handle fixes the leak');
});
