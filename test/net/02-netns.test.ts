/**
 * detectNodeAddress for real, in a test namespace (run by a child under `ip netns exec`): the
 * namespace has an excluded cali* interface first, then two uplinks in different subnets, and
 * a route towards a destination that only the second uplink reaches.
 */
import t from 'tap';
import { join } from 'node:path';
import { Topology, type Netns } from '../../src/util/netns';

const DETECT = join(__dirname, 'helpers', 'detect.js');

async function detect(ns: Netns, ip: string, method: string, family: 4 | 6 = 4): Promise<Record<string, unknown>> {
  const r = await ns.exec([process.execPath, DETECT, ip, method, String(family)], { allowFail: true });
  return JSON.parse(r.stdout.trim()) as Record<string, unknown>;
}

t.test('every method inside a namespace', async (t) => {
  const topo = Topology.create('autodet');
  t.teardown(() => topo.destroy());
  const node = await topo.addNetns('node');
  const r1 = await topo.addNetns('r1');
  const r2 = await topo.addNetns('r2');
  await topo.addVeth(node, 'cali0123456789a', r1, 'w0');
  await topo.addVeth(node, 'eth0', r1, 'eth0');
  await topo.addVeth(node, 'eth1', r2, 'eth0');
  await node.exec(['ip', 'addr', 'add', '198.18.5.5/32', 'dev', 'cali0123456789a']);
  await node.exec(['ip', 'addr', 'add', '198.18.1.10/24', 'dev', 'eth0']);
  await node.exec(['ip', 'addr', 'add', '198.18.2.10/26', 'dev', 'eth1']);
  await node.exec(['ip', 'route', 'add', 'default', 'via', '198.18.1.1']);
  await node.exec(['ip', 'route', 'add', '198.19.0.0/16', 'via', '198.18.2.1']);

  t.match(await detect(node, 'autodetect', 'first-found'), { address: '198.18.1.10/24', ifname: 'eth0' });
  t.match(await detect(node, 'autodetect', 'interface=eth1'), { address: '198.18.2.10/26', ifname: 'eth1' });
  t.match(await detect(node, 'autodetect', 'skip-interface=eth0,cali.*'), { address: '198.18.2.10/26' });
  t.match(await detect(node, 'autodetect', 'cidr=198.18.2.0/24'), { address: '198.18.2.10/26' });
  t.match(await detect(node, 'autodetect', 'can-reach=198.19.7.7'), { address: '198.18.2.10/26', ifname: 'eth1', method: 'can-reach=198.19.7.7' });
  t.match(await detect(node, 'autodetect', 'can-reach=198.18.200.1'), { address: '198.18.1.10/24', ifname: 'eth0' }, 'default route source');
  t.match(await detect(node, '198.18.2.10', 'first-found'), { address: '198.18.2.10/26', method: 'explicit' });
  t.match(await detect(node, '10.0.2.10/24', 'first-found'), { address: '10.0.2.10/24' });
  t.match(await detect(node, 'autodetect', 'interface=nomatch'), { error: { code: 'ERR_AUTODETECT_NOT_FOUND' } });
  // A namespace with nothing but loopback: nothing to find, and no route for can-reach.
  const empty = await topo.addNetns('empty');
  t.match(await detect(empty, 'autodetect', 'first-found'), { error: { code: 'ERR_AUTODETECT_NOT_FOUND' } });
  t.match(await detect(empty, 'autodetect', 'can-reach=198.18.1.1'), { error: { code: 'ERR_AUTODETECT_NOT_FOUND', message: /no route/ } });
});

t.test('IPv6 (IP6_AUTODETECTION_METHOD): every method inside a namespace, ULA addresses only', async (t) => {
  const topo = Topology.create('autodet6');
  t.teardown(() => topo.destroy());
  const node = await topo.addNetns('node');
  const r1 = await topo.addNetns('r1');
  const r2 = await topo.addNetns('r2');
  await topo.addVeth(node, 'cali0123456789a', r1, 'w0');
  await topo.addVeth(node, 'eth0', r1, 'eth0');
  await topo.addVeth(node, 'eth1', r2, 'eth0');
  // nodad: the addresses are usable at once (no duplicate address detection wait).
  await node.exec(['ip', '-6', 'addr', 'add', 'fd00:5::5/128', 'dev', 'cali0123456789a', 'nodad']);
  await node.exec(['ip', '-6', 'addr', 'add', 'fd00:1::10/64', 'dev', 'eth0', 'nodad']);
  await node.exec(['ip', '-6', 'addr', 'add', 'fd00:2:0:0::10/80', 'dev', 'eth1', 'nodad']);
  await node.exec(['ip', '-4', 'addr', 'add', '198.18.1.10/24', 'dev', 'eth0']);
  await node.exec(['ip', '-6', 'route', 'add', 'default', 'via', 'fd00:1::1', 'dev', 'eth0']);
  await node.exec(['ip', '-6', 'route', 'add', 'fd00:99::/32', 'via', 'fd00:2::1', 'dev', 'eth1']);

  // The links' own fe80:: addresses come first on each interface: link-local is never chosen.
  t.match(await detect(node, 'autodetect', 'first-found', 6), { address: 'fd00:1::10/64', ifname: 'eth0' });
  t.match(await detect(node, 'autodetect', 'interface=eth1', 6), { address: 'fd00:2::10/80', ifname: 'eth1' }, 'Go\'s text form');
  t.match(await detect(node, 'autodetect', 'skip-interface=eth0,cali.*', 6), { address: 'fd00:2::10/80' });
  t.match(await detect(node, 'autodetect', 'cidr=fd00:2::/64', 6), { address: 'fd00:2::10/80' });
  t.match(await detect(node, 'autodetect', 'can-reach=fd00:99::7', 6), { address: 'fd00:2::10/80', ifname: 'eth1', method: 'can-reach=fd00:99::7' });
  t.match(await detect(node, 'autodetect', 'can-reach=fd00:77::1', 6), { address: 'fd00:1::10/64', ifname: 'eth0' }, 'default route source');
  t.match(await detect(node, 'fd00:2::10', 'first-found', 6), { address: 'fd00:2::10/80', method: 'explicit' }, 'a bare address takes its interface prefix');
  t.match(await detect(node, 'fd00:3::1', 'first-found', 6), { address: 'fd00:3::1/128' }, 'on no interface: /128');
  t.match(await detect(node, '198.18.1.10', 'first-found', 6), { error: { code: 'ERR_AUTODETECT_ADDRESS', message: /not "autodetect" or an IPv6 address/ } });
  t.match(await detect(node, 'autodetect', 'cidr=198.18.1.0/24', 6), { error: { code: 'ERR_AUTODETECT_METHOD', message: /is not an IPv6 CIDR/ } });
  t.match(await detect(node, 'autodetect', 'interface=nomatch', 6), { error: { code: 'ERR_AUTODETECT_NOT_FOUND', message: /IPv6 addresses seen: .*fd00:1::10\/64/ } });
  t.match(await detect(node, 'autodetect', 'first-found', 4), { address: '198.18.1.10/24' }, 'IPv4 detection is unchanged beside it');
  const empty = await topo.addNetns('empty');
  t.match(await detect(empty, 'autodetect', 'first-found', 6), { error: { code: 'ERR_AUTODETECT_NOT_FOUND' } });
});
