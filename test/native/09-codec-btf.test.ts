// Struct codecs and the BTF checker: the test programs' structs match their TS layouts; a wrong
// layout is reported field by field; encode/decode round-trip, byte order, ranges, alignment.
import t from 'tap';
import { BpfError, btfStruct, checkStructLayout, compareLayout, defineStruct } from '../../src/dataplane/native';
import { OBJ, expectBpfError } from './helpers/env';
import { tnCounter, tnEvent, tnFlowKey, tnFlowVal } from './helpers/layouts';

t.test('every test-program struct matches its BTF', async (t) => {
  for (const c of [tnCounter, tnFlowKey, tnFlowVal, tnEvent]) {
    t.same(checkStructLayout(OBJ, c.name, c.layout), [], `${c.name} (${c.size} bytes)`);
  }
  t.equal(tnFlowVal.size, 24, 'trailing padding counted (last field ends at 20)');
});

t.test('mismatches are reported precisely', async (t) => {
  const wrong = defineStruct('tn_event', [
    { name: 'ifindex', type: 'u32' },
    { name: 'proto', type: 'u16' },       // size 2 in TS, 1 in C; shifts what follows
    { name: 'hook', type: 'u8' },
    { name: 'saddr', type: 'ipv4' },
    { name: 'daddr', type: 'ipv4' },
    { name: 'seq', type: 'u64' },
    { name: 'extra', type: 'u32' },
  ] as const);
  const problems = checkStructLayout(OBJ, 'tn_event', wrong.layout);
  t.same(problems.sort(), [
    'tn_event.extra: in TS (offset 24) but not in BTF',
    'tn_event.hook: offset is 5 in BTF but 6 in TS',
    'tn_event.len: in BTF (offset 6, size 2) but not in TS',
    'tn_event.proto: size is 1 in BTF but 2 in TS',
    'tn_event: size is 24 in BTF but 32 in TS',
  ].sort());
  t.same(checkStructLayout(OBJ, 'tn_event', wrong.layout, { ignore: ['extra', 'len', 'proto', 'hook'] }), ['tn_event: size is 24 in BTF but 32 in TS'], 'ignore list');
  expectBpfError(t, () => btfStruct(OBJ, 'no_such_struct'), { code: 'ERR_BPF_BTF_NO_TYPE', message: /struct no_such_struct is not in the BTF/ });
  expectBpfError(t, () => btfStruct('/nonexistent.o', 'x'), { code: 'ERR_BPF_BTF_READ', errnoName: 'ENOENT' });
});

t.test('BTF of kernel-ABI structs: members, arrays and anonymous unions flattened', async (t) => {
  const skb = btfStruct(OBJ, '__sk_buff');
  t.equal(skb.size, 192);
  t.match(skb.members.find((m) => m.name === 'cb'), { offset: 48, size: 20 }, 'array member sized nr_elems x elem');
  t.ok(skb.members.some((m) => m.name === 'flow_keys'), 'members of the anonymous union are flattened');
  t.same(compareLayout({ size: 192, fields: [{ name: 'len', offset: 0, size: 4 }] }, skb, { ignore: skb.members.map((m) => m.name).filter((n) => n !== 'len') }), []);
});

t.test('encode/decode round-trip with byte order', async (t) => {
  const v = { ifindex: 7, proto: 17, hook: 2, len: 1500, saddr: '198.18.0.1', daddr: '192.168.3.4', seq: 0x0102030405060708n };
  const b = tnEvent.encode(v);
  t.equal(b.length, 24);
  t.equal(b.readUInt32LE(0), 7, 'u32 host order (LE)');
  t.equal(b.readUInt16LE(6), 1500);
  t.same([...b.subarray(8, 12)], [198, 18, 0, 1], 'ipv4 in network order');
  t.equal(b.readBigUInt64LE(16), 0x0102030405060708n);
  t.same(tnEvent.decode(b), v);
  const k = tnFlowKey.encode({ saddr: '1.2.3.4', daddr: '5.6.7.8', proto: 6 });
  t.same(k, Buffer.from('01020304050607080600 0000'.replace(/ /g, ''), 'hex'), 'padding zero');
  t.same(tnFlowKey.decodeMany(Buffer.concat([k, k])), [{ saddr: '1.2.3.4', daddr: '5.6.7.8', proto: 6 }, { saddr: '1.2.3.4', daddr: '5.6.7.8', proto: 6 }]);
  t.same(tnFlowKey.encodeMany([{ saddr: '1.2.3.4', daddr: '5.6.7.8', proto: 6 }]), k);
});

t.test('alignment, arrays, nesting, network-order scalars', async (t) => {
  const inner = defineStruct('inner', [{ name: 'a', type: 'u8' }, { name: 'b', type: 'u32' }] as const);
  t.same(inner.layout, { name: 'inner', size: 8, fields: [{ name: 'a', offset: 0, size: 1 }, { name: 'b', offset: 4, size: 4 }] });
  const outer = defineStruct('outer', [
    { name: 'port', type: 'be16' },
    { name: 'in', type: 'struct', struct: inner, count: 2 },
    { name: 'mac', type: 'mac' },
    { name: 'ids', type: 'u16', count: 3 },
    { name: 'raw', type: 'bytes', length: 3 },
    { name: 'big', type: 'be64' },
    { name: 'neg', type: 'i32', offset: 48 },
  ] as const);
  t.same(outer.fields.map((f) => [f.name, f.offset, f.size]),
    [['port', 0, 2], ['in', 4, 16], ['mac', 20, 6], ['ids', 26, 6], ['raw', 32, 3], ['big', 40, 8], ['neg', 48, 4]]);
  t.equal(outer.size, 56, 'rounded up to the 8-byte alignment');
  const v = { port: 8080, in: [{ a: 1, b: 2 }, { a: 3, b: 4 }], mac: 'ee:ee:ee:ee:ee:ee', ids: [1, 2, 3], raw: Buffer.from([9, 8, 7]), big: 5n, neg: -2 };
  const b = outer.encode(v);
  t.equal(b.readUInt16BE(0), 8080, 'be16 in network order');
  t.equal(b.readUInt32LE(8), 2, 'nested struct element 0, field b');
  t.equal(b.readUInt32LE(16), 4, 'nested struct element 1, field b');
  t.equal(b.readBigUInt64BE(40), 5n, 'be64 in network order');
  t.equal(b.readInt32LE(48), -2);
  t.same(outer.decode(b), v);
});

t.test('definition and value errors name struct.field', async (t) => {
  expectBpfError(t, () => defineStruct('bad', [{ name: 'x', type: 'u32' }, { name: 'y', type: 'u8', offset: 2 }] as const), { code: 'ERR_BPF_INVALID_OPTION', message: /struct bad\.y at offset 2 overlaps the previous field \(ends at 4\)/ });
  expectBpfError(t, () => defineStruct('bad', [{ name: 'x', type: 'bytes' }] as const), { message: /struct bad\.x needs a positive length/ });
  expectBpfError(t, () => tnFlowKey.encode({ saddr: '1.2.3.400', daddr: '1.1.1.1', proto: 1 }), { message: /tn_flow_key\.saddr must be a dotted IPv4 address/ });
  expectBpfError(t, () => tnFlowKey.encode({ saddr: '1.2.3.4', daddr: '1.1.1.1', proto: 256 }), { message: /tn_flow_key\.proto value 256 out of range for u8/ });
  expectBpfError(t, () => tnCounter.encode({ packets: 1 as unknown as bigint, bytes: 0n }), { message: /tn_counter\.packets must be a bigint/ });
  expectBpfError(t, () => tnCounter.encode({ packets: 1n } as unknown as { packets: bigint; bytes: bigint }), { message: /tn_counter\.bytes is missing/ });
  expectBpfError(t, () => tnCounter.decode(Buffer.alloc(8)), { message: /needs 16 bytes at offset 0; buffer has 8/ });
  t.ok(new BpfError('ERR_X', 'op', 0, 'd') instanceof Error);
});

t.test('addresses are text at the codec boundary: ipv4, ipv6, and ip slots tagged by a family field', async (t) => {
  const key = defineStruct('addr_key', [
    { name: 'family', type: 'u8' },
    { name: 'pad', type: 'pad', length: 3 },
    { name: 'addr', type: 'ip', family: 'family' },
    { name: 'v6', type: 'ipv6' },
  ] as const);
  t.same(key.fields.map((f) => [f.name, f.offset, f.size]), [['family', 0, 1], ['pad', 1, 3], ['addr', 4, 16], ['v6', 20, 16]]);
  const v4 = key.encode({ family: 4, addr: '198.18.0.1', v6: 'fd00::1' });
  t.same([...v4.subarray(4, 20)], [198, 18, 0, 1, ...Array(12).fill(0)], 'an IPv4 slot: first 4 bytes, network order, zeros after');
  t.equal(v4.subarray(20).toString('hex'), 'fd000000000000000000000000000001', 'ipv6: 16 bytes, network order');
  t.same(key.decode(v4), { family: 4, addr: '198.18.0.1', v6: 'fd00::1' });
  const v6 = key.encode({ family: 6, addr: 'FD00:0:0::a:1', v6: '::' });
  t.same(key.decode(v6), { family: 6, addr: 'fd00::a:1', v6: '::' }, 'decoded as RFC 5952 text');
  expectBpfError(t, () => key.encode({ family: 4, addr: 'fd00::1', v6: '::' }), { message: /addr_key\.addr must be an IPv4 address \(family is 4\)/ });
  expectBpfError(t, () => key.encode({ family: 6, addr: '1.2.3.4', v6: '::' }), { message: /addr_key\.addr must be an IPv6 address \(family is 6\)/ });
  expectBpfError(t, () => key.encode({ family: 4, addr: '1.2.3.4', v6: 'fe80::1%eth0' }), { message: /addr_key\.v6 must be an IPv6 address/ });
  expectBpfError(t, () => defineStruct('bad', [{ name: 'addr', type: 'ip', family: 'family' }] as const), { message: /struct bad\.addr has type ip and needs family/ });
});
