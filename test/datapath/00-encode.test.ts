// Map encoding, pure: port ranges → LPM prefixes, CIDRs, tables → entries.
import t from 'tap';
import { portRangeToPrefixes, cidr4ForMap, encodeTable, EncodeError } from '../../src/dataplane/bpf/encode';
import { polKeyCodec, verdictCodec, spcKeyCodec, tableCodec, POL_FIXED_BITS, TBL_F_SPORT, ACT_ALLOW, ACT_DENY } from '../../src/dataplane/bpf/codecs';
import type { VerdictTable } from '../../src/calc/types';

function covered(prefixes: { value: number; bits: number }[]): Set<number> {
  const s = new Set<number>();
  for (const p of prefixes) {
    const size = 1 << (16 - p.bits);
    t.equal(p.value % size, 0, `prefix ${p.value}/${p.bits} aligned`);
    for (let v = p.value; v < p.value + size; v++) {
      if (s.has(v)) t.fail(`port ${v} covered twice`);
      s.add(v);
    }
  }
  return s;
}

t.test('port ranges split into disjoint aligned prefixes covering exactly the range', async (t) => {
  let seed = 12345;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const cases: [number, number][] = [[0, 65535], [0, 0], [65535, 65535], [80, 80], [1, 65534], [1024, 2047], [1000, 2000]];
  for (let i = 0; i < 200; i++) { const a = rnd(65536); const b = rnd(65536); cases.push([Math.min(a, b), Math.max(a, b)]); }
  for (const [lo, hi] of cases) {
    const ps = portRangeToPrefixes(lo, hi);
    const s = covered(ps);
    t.equal(s.size, hi - lo + 1, `[${lo},${hi}] size`);
    t.ok(s.has(lo) && s.has(hi), `[${lo},${hi}] ends`);
    t.ok(ps.length <= 30, `[${lo},${hi}] at most 30 prefixes (got ${ps.length})`);
  }
  t.same(portRangeToPrefixes(0, 65535), [{ value: 0, bits: 0 }]);
  t.same(portRangeToPrefixes(80, 80), [{ value: 80, bits: 16 }]);
  t.throws(() => portRangeToPrefixes(5, 4), EncodeError);
  t.throws(() => portRangeToPrefixes(0, 65536), EncodeError);
});

t.test('CIDR parsing masks host bits and rejects garbage', async (t) => {
  t.same(cidr4ForMap('10.1.2.3/8'), { addr: 0x0a000000, len: 8 });
  t.same(cidr4ForMap('192.168.0.7'), { addr: 0xc0a80007, len: 32 });
  t.same(cidr4ForMap('0.0.0.0/0'), { addr: 0, len: 0 });
  for (const bad of ['10.0.0.0/33', '256.1.1.1/32', 'fe80::/64', '10.0.0/8', '']) t.throws(() => cidr4ForMap(bad), EncodeError, bad);
});

t.test('a table becomes projection, source-port and cell entries with its id', async (t) => {
  const table: VerdictTable = {
    id: '0123456789abcdef',
    direction: 'ingress',
    localClassCount: 2,
    projection: Uint32Array.of(77, 1),
    protocols: [6],
    srcPortClasses: [{ protocol: 6, ranges: [{ portMin: 1000, portMax: 1001, srcPortClass: 1 }] }],
    cells: [
      { localClass: 0, protocol: 6, srcPortClass: 0, portMin: 0, portMax: 65535, action: 'deny', ruleId: 9, logRuleIds: [] },
      { localClass: 1, protocol: 6, srcPortClass: 0, portMin: 0, portMax: 79, action: 'deny', ruleId: 9, logRuleIds: [] },
      { localClass: 1, protocol: 6, srcPortClass: 0, portMin: 80, portMax: 80, action: 'allow', ruleId: 5, logRuleIds: [1, 2, 3, 4, 5] },
      { localClass: 1, protocol: 6, srcPortClass: 0, portMin: 81, portMax: 65535, action: 'deny', ruleId: 9, logRuleIds: [] },
      { localClass: 0, protocol: 256, srcPortClass: 0, portMin: 0, portMax: 65535, action: 'deny', ruleId: 9, logRuleIds: [] },
      { localClass: 1, protocol: 256, srcPortClass: 0, portMin: 0, portMax: 65535, action: 'allow', ruleId: 6, logRuleIds: [] },
    ],
  };
  const enc = encodeTable(table, 42);
  t.equal(enc.proj.length, 1);
  t.equal(enc.proj[0].key.readUInt32LE(0), 42);
  t.equal(enc.proj[0].value.readUInt32LE(0), 1);
  t.equal(enc.spc.length, 1, '1000-1001 is one /15 prefix');
  t.same(spcKeyCodec.decode(enc.spc[0].key), { prefixlen: 48 + 15, table: 42, proto: 6, port: 1000 });
  const meta = tableCodec.decode(enc.meta.value);
  t.equal(meta.flags & TBL_F_SPORT, TBL_F_SPORT);
  t.equal(meta.hash.toString('hex'), '0123456789abcdef');
  const http = enc.pol.map((e) => ({ k: polKeyCodec.decode(e.key), v: verdictCodec.decode(e.value) }))
    .filter((e) => e.k.lclass === 1 && e.k.proto === 6 && e.k.port === 80 && e.k.prefixlen === POL_FIXED_BITS + 16);
  t.equal(http.length, 1);
  t.equal(http[0].v.action, ACT_ALLOW);
  t.equal(http[0].v.rule, 5);
  t.same(http[0].v.log_rules, [1, 2, 3, 4], 'log rules capped at 4');
  t.equal(enc.truncatedLogs, 1);
  const others = enc.pol.filter((e) => polKeyCodec.decode(e.key).proto === 256);
  t.equal(others.length, 2);
  t.equal(verdictCodec.decode(enc.pol[0].value).action, ACT_DENY);
  t.throws(() => encodeTable(table, 0), EncodeError);
});

t.test('projection entries: the hand-written encoding is the codec’s, byte for byte', async (t) => {
  const { encodeProjection } = await import('../../src/dataplane/bpf/encode');
  const { projKeyCodec, u32Value } = await import('../../src/dataplane/bpf/codecs');
  for (const [id, g, l] of [[1, 1, 1], [7, 123456, 42], [0xffffffff, 0xfffffffe, 0xffffffff], [65536, 3, 0]] as const) {
    const e = encodeProjection(id, g, l);
    t.same(e.key, projKeyCodec.encode({ table: id, gclass: g }), `key ${id}/${g}`);
    t.same(e.value, u32Value(l), `value ${l}`);
    t.equal(e.key.length, 8);
    t.equal(e.value.length, 4);
  }
  t.throws(() => encodeProjection(2 ** 32, 1, 1), RangeError, 'a table id past u32 is refused');
  t.throws(() => encodeProjection(1, -1, 1), RangeError, 'a negative class is refused');
});

t.test('packed table entries are the codecs’ encodings, byte for byte, and refuse what does not fit', async (t) => {
  const { encodeTablePacked } = await import('../../src/dataplane/bpf/encode');
  const { projKeyCodec, u32Value } = await import('../../src/dataplane/bpf/codecs');
  const table: VerdictTable = {
    id: 'fedcba9876543210',
    direction: 'egress',
    localClassCount: 3,
    projection: Uint32Array.of(5, 2, 0xfffffffe, 1),
    protocols: [1, 17],
    srcPortClasses: [],
    cells: [
      { localClass: 0, protocol: 17, srcPortClass: 0, portMin: 0, portMax: 52, action: 'deny', ruleId: 3, logRuleIds: [] },
      { localClass: 0, protocol: 17, srcPortClass: 0, portMin: 53, portMax: 53, action: 'allow', ruleId: 0xffffffff, logRuleIds: [7, 8] },
      { localClass: 0, protocol: 17, srcPortClass: 0, portMin: 54, portMax: 65535, action: 'deny', ruleId: 3, logRuleIds: [1, 2, 3, 4, 5, 6] },
      { localClass: 2, protocol: 1, srcPortClass: 0, portMin: 0x0800, portMax: 0x08ff, action: 'allow', ruleId: 4, logRuleIds: [9] },
      { localClass: 1, protocol: 256, srcPortClass: 0, portMin: 1000, portMax: 2000, action: 'deny', ruleId: 6, logRuleIds: [] },
    ],
  };
  const p = encodeTablePacked(table, 0x01020304);
  const want: { key: Buffer; value: Buffer }[] = [];
  let truncated = 0;
  for (const c of table.cells) {
    const logs = c.logRuleIds.slice(0, 4);
    truncated += c.logRuleIds.length - logs.length;
    const value = verdictCodec.encode({ action: c.action === 'allow' ? ACT_ALLOW : ACT_DENY, nlog: logs.length, flags: 0, rule: c.ruleId, log_rules: [...logs, 0, 0, 0, 0].slice(0, 4) });
    for (const pp of portRangeToPrefixes(c.portMin, c.portMax)) {
      want.push({ key: polKeyCodec.encode({ prefixlen: POL_FIXED_BITS + pp.bits, table: 0x01020304, lclass: c.localClass, proto: c.protocol, sclass: c.srcPortClass, port: pp.value }), value });
    }
  }
  t.equal(p.pol.count, want.length);
  t.same(p.pol.keys, Buffer.concat(want.map((e) => e.key)), 'cell keys');
  t.same(p.pol.values, Buffer.concat(want.map((e) => e.value)), 'verdicts');
  t.equal(p.truncatedLogs, truncated);
  t.equal(p.proj.count, 2);
  const entries = [{ globalClass: 5, localClass: 2 }, { globalClass: 0xfffffffe, localClass: 1 }];
  t.same(p.proj.keys, Buffer.concat(entries.map((e) => projKeyCodec.encode({ table: 0x01020304, gclass: e.globalClass }))));
  t.same(p.proj.values, Buffer.concat(entries.map((e) => u32Value(e.localClass))));
  const bad = (cell: Partial<VerdictTable['cells'][number]>): VerdictTable => ({ ...table, cells: [{ ...table.cells[0]!, ...cell }] });
  t.throws(() => encodeTablePacked(bad({ localClass: -1 }), 1), EncodeError, 'a negative local class is refused');
  t.throws(() => encodeTablePacked(bad({ protocol: 70000 }), 1), EncodeError, 'a protocol past u16 is refused');
  t.throws(() => encodeTablePacked(bad({ srcPortClass: 70000 }), 1), EncodeError, 'a source-port class past u16 is refused');
  t.throws(() => encodeTablePacked(bad({ ruleId: 2 ** 32 }), 1), EncodeError, 'a rule id past u32 is refused');
  t.throws(() => encodeTablePacked(bad({ portMin: 9, portMax: 8 }), 1), EncodeError, 'an empty port range is refused');
  t.throws(() => encodeTablePacked({ ...table, projection: Uint32Array.of(5, 2, 7) }, 1), EncodeError, 'a projection of odd length is refused');
  t.throws(() => encodeTablePacked({ ...table, projection: Uint32Array.of(9, 2, 5, 1) }, 1), EncodeError, 'an unsorted projection is refused');
  const { PackedTable } = await import('../../src/dataplane/bpf/packed-table');
  const fromPacked = encodeTablePacked(PackedTable.pack(table), 0x01020304);
  t.same([fromPacked.proj.keys, fromPacked.proj.values, fromPacked.pol.keys, fromPacked.pol.values], [p.proj.keys, p.proj.values, p.pol.keys, p.pol.values], 'a PackedTable encodes as its VerdictTable');
});
