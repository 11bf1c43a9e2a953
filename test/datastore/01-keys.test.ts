import t from 'tap';
import {
  InvalidKeyError, RESOURCE_ROOT, datastoreConfigFromEnv, parseResourceKey, prefixEnd, resourceKey, resourcePrefix, tortieKey,
} from '../../src/datastore';

t.test('resource keys: layout and round trip', async (t) => {
  t.equal(resourceKey('ippools', 'pool1'), '/tortie/v3/ippools/pool1');
  t.equal(resourceKey('networkpolicies', 'allow-db', 'prod'), '/tortie/v3/networkpolicies/prod/allow-db');
  t.equal(resourcePrefix('ippools'), '/tortie/v3/ippools/');
  t.equal(resourcePrefix('networkpolicies', 'prod'), '/tortie/v3/networkpolicies/prod/');
  t.ok(resourceKey('ippools', 'p').startsWith(resourcePrefix('ippools')));
  t.notOk(resourceKey('ippoolsx', 'p').startsWith(resourcePrefix('ippools')), 'prefix of one kind never matches another');
  t.same(parseResourceKey('/tortie/v3/ippools/pool1'), { plural: 'ippools', name: 'pool1' });
  t.same(parseResourceKey(resourceKey('workloadendpoints', 'node1-k8s-pod.a-eth0', 'ns1')),
    { plural: 'workloadendpoints', namespace: 'ns1', name: 'node1-k8s-pod.a-eth0' });
  t.equal(parseResourceKey('/calico/v3/ippools/x'), undefined, 'outside the layout');
  t.equal(parseResourceKey(`${RESOURCE_ROOT}a/b/c/d`), undefined, 'too deep');
  t.equal(parseResourceKey(`${RESOURCE_ROOT}a//c`), undefined, 'empty segment');
  t.equal(tortieKey('ipam', 'v2', 'block', '192.168.0.0-26'), '/tortie/ipam/v2/block/192.168.0.0-26');
});

t.test('resource keys: bad segments are rejected with the reason', async (t) => {
  const bad: [() => unknown, RegExp][] = [
    [() => resourceKey('ippools', ''), /name is empty/],
    [() => resourceKey('ippools', 'a/b'), /contains '\/'/],
    [() => resourceKey('IPPools', 'a'), /lower-case/],
    [() => resourceKey('networkpolicies', 'a', ''), /namespace is empty/],
    [() => resourceKey('ippools', '..'), /may not be/],
    [() => tortieKey('ipam', 'a\nb'), /control character/],
  ];
  for (const [fn, re] of bad) {
    const err = (() => { try { fn(); return undefined; } catch (e) { return e as InvalidKeyError; } })();
    t.ok(err instanceof InvalidKeyError, `throws InvalidKeyError: ${re}`);
    t.equal(err?.code, 'ERR_DATASTORE_INVALID_KEY');
    t.match(err?.message ?? '', re);
  }
});

t.test('prefixEnd is the etcd range end of a prefix', async (t) => {
  t.same(prefixEnd(Buffer.from('/a/')), Buffer.from('/a0'));
  t.same(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from([0x62]));
  t.same(prefixEnd(Buffer.from([0xff, 0xff])), Buffer.from([0]), 'all 0xff: to the end of the keyspace');
});

t.test('config from Calico environment names', async (t) => {
  t.same(datastoreConfigFromEnv({}), { type: 'embedded', dir: '/var/lib/tortie/store' });
  t.same(datastoreConfigFromEnv({ TORTIE_DATASTORE_DIR: '/x' }), { type: 'embedded', dir: '/x' });
  t.same(datastoreConfigFromEnv({ ETCD_ENDPOINTS: 'http://10.0.0.1:2379, http://10.0.0.2:2379', ETCD_CA_CERT_FILE: '/ca.pem' }), {
    type: 'etcdv3', endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'], caFile: '/ca.pem', certFile: undefined, keyFile: undefined,
  });
  t.equal(datastoreConfigFromEnv({ DATASTORE_TYPE: 'etcdv3' }).type, 'etcdv3');
  t.throws(() => datastoreConfigFromEnv({ DATASTORE_TYPE: 'kubernetes' }), { code: 'ERR_DATASTORE_CONFIG' });
});
