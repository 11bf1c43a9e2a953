import t from 'tap';
import {
  BIG_INT_MARK, CALICO_RESOURCE_ROOT, InvalidKeyError, bigIntOf, bigIntValue, datastoreConfigFromEnv, decodeValue, encodeValue, ipamKey,
  parseResourceKey, prefixEnd, resourceKey, resourcePrefix,
} from '../../src/datastore';

t.test('resource keys: layout and round trip', async (t) => {
  // Calico's etcd layout (libcalico-go model.ResourceKey).
  t.equal(resourceKey('ippools', 'pool1'), '/calico/resources/v3/projectcalico.org/ippools/pool1');
  t.equal(resourceKey('networkpolicies', 'allow-db', 'prod'), '/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-db');
  t.equal(resourcePrefix('ippools'), '/calico/resources/v3/projectcalico.org/ippools/');
  t.equal(resourcePrefix('networkpolicies', 'prod'), '/calico/resources/v3/projectcalico.org/networkpolicies/prod/');
  // What Calico has no key for: tortie's own API group.
  t.equal(resourceKey('namespaces', 'prod'), '/calico/resources/v3/tortie.io/namespaces/prod');
  t.same(parseResourceKey('/calico/resources/v3/tortie.io/namespaces/prod'), { plural: 'namespaces', name: 'prod' });
  t.equal(parseResourceKey('/calico/resources/v3/projectcalico.org/namespaces/prod'), undefined, 'namespaces are not under Calico\'s group');
  t.equal(parseResourceKey('/calico/resources/v3/tortie.io/ippools/x'), undefined, 'Calico kinds are not under tortie\'s group');
  t.ok(resourceKey('ippools', 'p').startsWith(resourcePrefix('ippools')));
  t.notOk(resourceKey('ippoolsx', 'p').startsWith(resourcePrefix('ippools')), 'prefix of one kind never matches another');
  t.same(parseResourceKey('/calico/resources/v3/projectcalico.org/ippools/pool1'), { plural: 'ippools', name: 'pool1' });
  t.same(parseResourceKey(resourceKey('workloadendpoints', 'node1-k8s-pod.a-eth0', 'ns1')),
    { plural: 'workloadendpoints', namespace: 'ns1', name: 'node1-k8s-pod.a-eth0' });
  t.equal(parseResourceKey('/calico/v3/ippools/x'), undefined, 'outside the layout');
  t.equal(parseResourceKey('/tortie/v3/ippools/x'), undefined, 'tortie\'s former layout is not read');
  t.equal(parseResourceKey(`${CALICO_RESOURCE_ROOT}a/b/c/d`), undefined, 'too deep');
  t.equal(parseResourceKey(`${CALICO_RESOURCE_ROOT}a//c`), undefined, 'empty segment');
  t.equal(ipamKey('assignment', 'ipv4', 'block', '192.168.0.0-26'), '/calico/ipam/v2/assignment/ipv4/block/192.168.0.0-26');
});

t.test('resource keys: bad segments are rejected with the reason', async (t) => {
  const bad: [() => unknown, RegExp][] = [
    [() => resourceKey('ippools', ''), /name is empty/],
    [() => resourceKey('ippools', 'a/b'), /contains '\/'/],
    [() => resourceKey('IPPools', 'a'), /lower-case/],
    [() => resourceKey('networkpolicies', 'a', ''), /namespace is empty/],
    [() => resourceKey('ippools', '..'), /may not be/],
    [() => ipamKey('handle', 'a\nb'), /control character/],
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

t.test('values: integers beyond 2^53 (Calico\'s uint64 sequence numbers) survive a read-modify-write exactly', async (t) => {
  // As libcalico-go writes a new block: sequenceNumber = creation time in nanoseconds.
  const text = '{"sequenceNumber":1733530000123456789,"m":{"0":1733530000123456789},"small":42,"f":1.5,"s":"1733530000123456789","n":-9007199254740993}';
  const v = decodeValue(text) as Record<string, unknown>;
  t.equal(v.sequenceNumber, BIG_INT_MARK + '1733530000123456789');
  t.equal(v.small, 42);
  t.equal(v.s, '1733530000123456789', 'a string of digits stays a string');
  t.equal(bigIntOf(v.sequenceNumber), 1733530000123456789n);
  t.equal(encodeValue('/k', v as never), text, 'encoded back byte for byte');
  t.equal(bigIntValue(bigIntOf(v.sequenceNumber)! + 1n), BIG_INT_MARK + '1733530000123456790');
  t.equal(bigIntValue(41n), 41);
  t.same(decodeValue('{"a":[1,"x\\"12345678901234567890"]}'), { a: [1, 'x"12345678901234567890'] }, 'digits inside an escaped string are left alone');
});

t.test('values are written as Go\'s json.Marshal writes them: <, >, & escaped (a selector\'s &&)', async (t) => {
  const v = { selector: "app == 'a' && tier != 'b'", html: '<x>', sep: 'a\u2028b' };
  const text = encodeValue('/k', v);
  t.equal(text, '{"selector":"app == \'a\' \\u0026\\u0026 tier != \'b\'","html":"\\u003cx\\u003e","sep":"a\\u2028b"}');
  t.same(decodeValue(text), v, 'read back unchanged');
});

t.test('a map with integer keys is written in Go\'s order (keys sorted as strings), nested ones too', async (t) => {
  const v = { sequenceNumberForAllocation: { 0: 1, 1: 2, 5: 3, 17: 4 }, nested: [{ m: { 10: 'a&', 9: { 2: 'x', 11: 'y' } } }], plain: { b: 1, a: 2 } };
  t.equal(encodeValue('/k', v as never),
    '{"sequenceNumberForAllocation":{"0":1,"1":2,"17":4,"5":3},"nested":[{"m":{"10":"a\\u0026","9":{"11":"y","2":"x"}}}],"plain":{"b":1,"a":2}}');
  const big = decodeValue('{"m":{"5":1733530000123456789,"17":1733530000123456790}}');
  t.equal(encodeValue('/k', big), '{"m":{"17":1733530000123456790,"5":1733530000123456789}}', 'with exact big integers inside');
});
