/** Address selection and method parsing on captured `ip -j -4 addr show` output. */
import t from 'tap';
import {
  detectNodeAddress, isGlobalUnicastV4, parseAutodetectMethod, selectAddress, type IpAddrEntry,
} from '../../src/net/autodetect';

// Shape of `ip -j -4 addr show` on a Calico node with Docker and a second NIC.
const HOST: IpAddrEntry[] = [
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], operstate: 'UNKNOWN', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host', label: 'lo' }] },
  { ifindex: 2, ifname: 'docker0', flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'], operstate: 'DOWN', addr_info: [{ family: 'inet', local: '172.17.0.1', prefixlen: 16, scope: 'global', label: 'docker0' }] },
  { ifindex: 3, ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], operstate: 'UP', addr_info: [
    { family: 'inet', local: '169.254.10.2', prefixlen: 16, scope: 'link', label: 'eth0' },
    { family: 'inet', local: '10.0.2.15', prefixlen: 24, scope: 'global', label: 'eth0' },
  ] },
  { ifindex: 4, ifname: 'eth1', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], operstate: 'UP', addr_info: [{ family: 'inet', local: '192.168.56.10', prefixlen: 24, scope: 'global', label: 'eth1' }] },
  { ifindex: 6, ifname: 'tunl0', flags: ['NOARP', 'UP', 'LOWER_UP'], operstate: 'UNKNOWN', addr_info: [{ family: 'inet', local: '192.168.0.1', prefixlen: 32, scope: 'global', label: 'tunl0' }] },
  { ifindex: 5, ifname: 'cali1234567890a', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], operstate: 'UP', addr_info: [] },
  { ifindex: 7, ifname: 'ens5', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], operstate: 'UP', addr_info: [{ family: 'inet', local: '10.1.5.7', prefixlen: 20, scope: 'global', label: 'ens5' }] },
];

t.test('first-found skips Calico\'s excluded interfaces and non-global addresses', async (t) => {
  const r = selectAddress(parseAutodetectMethod('first-found'), HOST);
  t.same(r, { address: '10.0.2.15/24', ip: '10.0.2.15', prefixLength: 24, ifname: 'eth0', method: 'first-found' });
  t.equal(selectAddress(parseAutodetectMethod(''), HOST)?.address, '10.0.2.15/24', 'empty method is first-found');
  // Without eth0 the next candidate is eth1; docker0, tunl0 and lo are never chosen.
  const noEth0 = HOST.filter((e) => e.ifname !== 'eth0');
  t.equal(selectAddress({ kind: 'first-found' }, noEth0)?.ifname, 'eth1');
  t.equal(selectAddress({ kind: 'first-found' }, HOST.filter((e) => ['lo', 'docker0', 'tunl0'].includes(e.ifname))), undefined);
});

t.test('interface= and skip-interface= take comma-separated regexes, matched unanchored', async (t) => {
  t.equal(selectAddress(parseAutodetectMethod('interface=eth1'), HOST)?.address, '192.168.56.10/24');
  t.equal(selectAddress(parseAutodetectMethod('interface=ens.*, eth1'), HOST)?.address, '192.168.56.10/24', 'ifindex order decides between matches');
  t.equal(selectAddress(parseAutodetectMethod('interface=ens.*'), HOST)?.address, '10.1.5.7/20');
  t.equal(selectAddress(parseAutodetectMethod('interface=docker0'), HOST)?.address, '172.17.0.1/16', 'an explicitly chosen interface is not subject to the default exclusions');
  t.equal(selectAddress(parseAutodetectMethod('interface=nomatch'), HOST), undefined);
  t.equal(selectAddress(parseAutodetectMethod('skip-interface=docker0,eth0'), HOST)?.address, '192.168.56.10/24');
  t.equal(selectAddress(parseAutodetectMethod('skip-interface=eth.*'), HOST)?.address, '172.17.0.1/16', 'skip-interface replaces the default exclusions');
});

t.test('cidr= picks the first address inside any of the CIDRs, with the interface prefix', async (t) => {
  t.equal(selectAddress(parseAutodetectMethod('cidr=10.1.0.0/16'), HOST)?.address, '10.1.5.7/20');
  t.equal(selectAddress(parseAutodetectMethod('cidr=192.168.56.0/24,10.1.0.0/16'), HOST)?.address, '192.168.56.10/24');
  t.equal(selectAddress(parseAutodetectMethod('cidr=203.0.113.0/24'), HOST), undefined);
});

t.test('can-reach= returns the interface address equal to the route source', async (t) => {
  const m = parseAutodetectMethod('can-reach=8.8.8.8');
  t.same(m, { kind: 'can-reach', dest: '8.8.8.8' });
  t.equal(selectAddress(m, HOST, '192.168.56.10')?.address, '192.168.56.10/24');
  const r = await detectNodeAddress('autodetect', 'can-reach=8.8.8.8', {
    readInterfaces: async () => HOST,
    routeSource: async (d) => { t.equal(d, '8.8.8.8'); return '10.1.5.7'; },
  });
  t.equal(r.address, '10.1.5.7/20');
  t.equal(r.method, 'can-reach=8.8.8.8');
  await t.rejects(detectNodeAddress('autodetect', 'can-reach=8.8.8.8', { readInterfaces: async () => HOST, routeSource: async () => '10.9.9.9' }),
    { code: 'ERR_AUTODETECT_NOT_FOUND', message: /source address 10\.9\.9\.9 is on no interface/ });
});

t.test('explicit addresses: with prefix as given, without prefix from the interface, else /32', async (t) => {
  const read = async () => HOST;
  t.equal((await detectNodeAddress('10.0.2.10/24', 'first-found', { readInterfaces: read })).address, '10.0.2.10/24');
  const bare = await detectNodeAddress('192.168.56.10', 'first-found', { readInterfaces: read });
  t.same([bare.address, bare.ifname, bare.method], ['192.168.56.10/24', 'eth1', 'explicit']);
  t.equal((await detectNodeAddress('198.18.9.9', 'first-found', { readInterfaces: read })).address, '198.18.9.9/32');
  t.equal((await detectNodeAddress('autodetect', 'interface=ens5', { readInterfaces: read })).address, '10.1.5.7/20');
  await t.rejects(detectNodeAddress('10.0.2.300/24'), { code: 'ERR_AUTODETECT_ADDRESS', message: /10\.0\.2\.300/ });
  await t.rejects(detectNodeAddress('fd00::1/64'), { code: 'ERR_AUTODETECT_ADDRESS' });
  await t.rejects(detectNodeAddress('autodetect', 'interface=nomatch', { readInterfaces: read }),
    { code: 'ERR_AUTODETECT_NOT_FOUND', message: /interface=nomatch.*eth0:10\.0\.2\.15\/24/ });
});

t.test('bad method texts are rejected with the reason', async (t) => {
  t.throws(() => parseAutodetectMethod('bogus'), { code: 'ERR_AUTODETECT_METHOD', message: /unknown IP autodetection method "bogus"/ });
  t.throws(() => parseAutodetectMethod('interface='), { code: 'ERR_AUTODETECT_METHOD', message: /needs a value/ });
  t.throws(() => parseAutodetectMethod('interface=eth(0'), { code: 'ERR_AUTODETECT_METHOD', message: /not a valid regular expression/ });
  t.throws(() => parseAutodetectMethod('cidr=10.0.0.0'), { code: 'ERR_AUTODETECT_METHOD', message: /"10\.0\.0\.0" is not an IPv4 CIDR/ });
  t.throws(() => parseAutodetectMethod('can-reach=a b'), { code: 'ERR_AUTODETECT_METHOD' });
  t.throws(() => parseAutodetectMethod('kubernetes-internal-ip'), { code: 'ERR_AUTODETECT_METHOD', message: /Kubernetes API/ });
});

t.test('global unicast', async (t) => {
  for (const ip of ['10.0.0.1', '192.168.1.1', '198.18.0.1', '8.8.8.8']) t.ok(isGlobalUnicastV4(ip), ip);
  for (const ip of ['127.0.0.1', '169.254.1.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', 'x']) t.notOk(isGlobalUnicastV4(ip), ip);
});
