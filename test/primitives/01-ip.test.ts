// src/primitives/ip.ts: one set of address rules (Go's net.ParseIP / ParseCIDR, as Calico) for
// every layer. The one-pass u32 scanner accepts exactly what the rule written the obvious way
// accepts, with the same value (edge cases and random strings); the family-carrying parsers, the
// CIDR parsers (throwing and non-throwing) and the prefix arithmetic agree with it and with each
// other.
import t from 'tap';
import ipaddr from 'ipaddr.js';
import {
  IpParseError,
  cidr4Contains,
  cidr4Covers,
  cidr4Of,
  cidr4Overlaps,
  cidr4Size,
  cidrContains,
  cidrsOverlap,
  formatCidr,
  formatCidr4,
  formatIP,
  ipToU32,
  ipv4ToU32,
  isMasked,
  maskCidr,
  nthSubnet4,
  parseCidr,
  parseCidr4,
  parseCidrOrIp,
  parseCidrOrIp4,
  parseIP,
  parseIPv4,
  prefixMask,
  subnetCount4,
  toCidr4,
  tryIpv4ToU32,
  tryParseCidr,
  tryParseCidr4,
  tryParseCidrOrIp,
  tryParseCidrOrIp4,
  tryParseIP,
  tryParseIPv4,
  tryParseIPv6,
  u32ToIP,
  u32ToIpv4,
} from '../../src/primitives';

/** The rule, written the obvious way: four decimal octets 0–255, no leading zero. */
function reference(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    if (p.length > 1 && p[0] === '0') return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v;
}

const EDGE = ['0.0.0.0', '255.255.255.255', '192.168.0.1', '010.001.000.099', '256.0.0.1', '1.2.3.256', '1.2.3', '1.2.3.4.5',
  '1..2.3', '.1.2.3', '1.2.3.', '', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.-4', '1.2.3.0x1', '1234.1.1.1', '1.2.3.4/32', 'a.b.c.d',
  '999.999.999.999', '00.0.0.00', '1.2.3.04', '0.0.0.0', '10.0.0.0', '1.02.3.4', '１.2.3.4', '1.2.3.4\n', '\t1.2.3.4', '+1.2.3.4',
  '::1', '::ffff:1.2.3.4', 'fe80::1%eth0', '1e2.1.1.1'];

t.test('IPv4 edge cases: leading zeros, out-of-range octets, whitespace, shorthand, IPv6', async (t) => {
  for (const c of EDGE) t.equal(tryIpv4ToU32(c), reference(c), JSON.stringify(c));
  t.equal(tryIpv4ToU32('198.19.1.2'), ((198 * 256 + 19) * 256 + 1) * 256 + 2);
  t.equal(tryIpv4ToU32('255.255.255.255'), 0xffffffff, 'the top address is a positive u32');
  t.equal(tryIpv4ToU32('010.1.2.3'), undefined, 'a leading zero is refused (Go ≥ 1.17: octal or decimal would be a guess)');
  t.equal(tryIpv4ToU32('0.0.0.0'), 0, 'a single 0 octet is fine');
  t.equal(u32ToIpv4(0xc0a80001), '192.168.0.1');
  for (let i = 0; i < 1000; i++) {
    const v = (Math.imul(i, 2654435761) >>> 0);
    t.equal(tryIpv4ToU32(u32ToIpv4(v)), v, `round trip ${v}`);
  }
});

t.test('the throwing variants name the input and what is wrong with it', async (t) => {
  const cases: [() => unknown, RegExp][] = [
    [() => ipv4ToU32('010.0.0.1'), /"010\.0\.0\.1" is not an IPv4 address: octet "010" has a leading zero/],
    [() => ipv4ToU32('1.2.3.256'), /"1\.2\.3\.256" is not an IPv4 address: octet 256 is greater than 255/],
    [() => ipv4ToU32(' 1.2.3.4'), /contains whitespace/],
    [() => ipv4ToU32('1.2.3'), /has 3 dot-separated parts, not 4/],
    [() => ipv4ToU32(''), /"" is not an IPv4 address: it is empty/],
    [() => ipv4ToU32('fd00::1'), /is IPv6 text, where an IPv4 address is expected/],
    [() => parseIPv4('1.2.x.4'), /octet "x" is not a decimal number/],
    [() => parseIP('fe80::1%eth0'), /"fe80::1%eth0" is not an IP address: it has a zone/],
    [() => parseIP('fd00::g'), /is not valid IPv6 text/],
    [() => parseCidr4('10.0.0.0'), /"10\.0\.0\.0" is not an IPv4 CIDR: it has no "\/prefix-length"/],
    [() => parseCidr4('10.0.0.0/33'), /prefix length 33 is greater than 32/],
    [() => parseCidr4('10.0.0.0/'), /prefix length "" is not a decimal number/],
    [() => parseCidr4('10.0.0.0/-1'), /prefix length "-1" is not a decimal number/],
    [() => parseCidr4('10.0.00.0/8'), /address part: octet "00" has a leading zero/],
    [() => parseCidr4('fd00::/64'), /address part: it is IPv6 text/],
    [() => parseCidrOrIp4('1.2.3.4 '), /is not an IPv4 address or CIDR: it contains whitespace/],
    [() => parseCidr('fd00::/129'), /"fd00::\/129" is not a CIDR: prefix length 129 is greater than 128/],
    [() => parseCidrOrIp('nope'), /is not an IP address or CIDR/],
  ];
  for (const [f, re] of cases) {
    let err: unknown;
    try { f(); } catch (e) { err = e; }
    t.ok(err instanceof IpParseError, `${re}: an IpParseError`);
    t.match((err as Error).message, re);
    t.equal((err as IpParseError).code, 'ERR_IP_INVALID');
  }
  const e = (() => { try { parseCidr4('1.2.3.4/40'); } catch (x) { return x as IpParseError; } })()!;
  t.equal(e.input, '1.2.3.4/40');
  t.equal(e.expected, 'IPv4 CIDR');
});

t.test('each throwing parser accepts exactly what its non-throwing twin accepts', async (t) => {
  const inputs = [...EDGE, ...EDGE.map((e) => `${e}/24`), '10.0.0.0/0', '10.0.0.0/32', '10.0.0.0/08', '10.1.2.3/8',
    'fd00::/8', 'fd00::1/128', '::/0', 'fd00::/129', '10.0.0.0/33', '10.0.0.0/', '/8', '10.0.0.0/8/8'];
  const pairs: [string, (s: string) => unknown, (s: string) => unknown][] = [
    ['ipv4ToU32', ipv4ToU32, tryIpv4ToU32], ['parseIPv4', parseIPv4, tryParseIPv4], ['parseIP', parseIP, tryParseIP],
    ['parseCidr4', parseCidr4, tryParseCidr4], ['parseCidrOrIp4', parseCidrOrIp4, tryParseCidrOrIp4],
    ['parseCidr', parseCidr, tryParseCidr], ['parseCidrOrIp', parseCidrOrIp, tryParseCidrOrIp],
  ];
  for (const [name, strict, lenient] of pairs) {
    for (const s of inputs) {
      const want = lenient(s);
      if (want === undefined) t.throws(() => strict(s), IpParseError, `${name}(${JSON.stringify(s)}) throws`);
      else t.same(strict(s), want, `${name}(${JSON.stringify(s)})`);
    }
  }
});

t.test('CIDRs: /0, /32, host bits, bare addresses, prefix lengths as Go reads them', async (t) => {
  t.same(tryParseCidr4('192.168.1.77/24'), { addr: ((192 * 256 + 168) * 256 + 1) * 256, len: 24 }, 'Cidr4 masks host bits');
  t.equal(tryParseCidr4('192.168.1.300/24'), undefined);
  t.same(tryParseCidr4('0.0.0.0/0'), { addr: 0, len: 0 });
  t.same(tryParseCidr4('10.9.8.7/0'), { addr: 0, len: 0 }, '/0 masks everything');
  t.same(tryParseCidr4('10.9.8.7/32'), { addr: 0x0a090807, len: 32 });
  t.equal(tryParseCidr4('10.9.8.7'), undefined, 'a CIDR needs its slash');
  t.same(tryParseCidrOrIp4('10.9.8.7'), { addr: 0x0a090807, len: 32 }, '…OrIp takes a bare address as /32');
  t.same(tryParseCidr4('10.0.0.0/08'), { addr: 0x0a000000, len: 8 }, 'a prefix length with a leading zero is decimal (Go dtoi)');
  t.equal(tryParseCidr4('10.0.0.0/33'), undefined);
  t.equal(tryParseCidr4('10.0.0.0/+8'), undefined);
  t.equal(tryParseCidr4('10.0.0.0/ 8'), undefined);
  t.equal(tryParseCidr4('10.0.0.0/8 '), undefined);
  t.equal(tryParseCidr4('10.0.0.0/99999999999999999999'), undefined, 'a huge length is refused, not wrapped');

  const c = tryParseCidr('10.1.2.3/8')!;
  t.same(c, { ip: { version: 4, bytes: [10, 1, 2, 3] }, prefix: 8 }, 'a Cidr keeps the host bits as written');
  t.notOk(isMasked(c));
  t.equal(formatCidr(maskCidr(c)), '10.0.0.0/8');
  t.same(toCidr4(c), { addr: 0x0a000000, len: 8 });
  t.same(tryParseCidrOrIp('10.1.2.3'), { ip: { version: 4, bytes: [10, 1, 2, 3] }, prefix: 32 });
  t.same(tryParseCidrOrIp('fd00::1'), { ip: tryParseIPv6('fd00::1'), prefix: 128 });
  t.equal(formatCidr(parseCidr('fd00:0:0::/48')), 'fd00::/48');
  t.equal(formatCidr(parseCidr('::/0')), '::/0');
  t.equal(tryParseCidr('fd00::/129'), undefined);
  t.equal(tryParseCidr('10.0.0.0/8%eth0'), undefined);
});

t.test('IPv6: accepted by the family-carrying parsers, refused by the IPv4 ones', async (t) => {
  for (const s of ['::', '::1', 'fd00::10', 'fe80::1:2:3:4', 'FD00::A', '2001:db8::1.2.3.4', '::ffff:192.168.0.1']) {
    const ip = tryParseIP(s);
    t.equal(ip?.version, 6, `${s} is IPv6`);
    t.equal(ip?.bytes.length, 16);
    t.equal(tryIpv4ToU32(s), undefined, `${s} is not IPv4`);
    t.equal(tryParseCidrOrIp4(s), undefined);
  }
  t.equal(formatIP(parseIP('FD00:0::A')), 'fd00::a');
  for (const s of ['fe80::1%eth0', '[::1]', ':::', '1::2::3', 'fd00::10000', 'fd00::g', '::ffff:01.2.3.4' + 'x', 'fd00:' + '1:'.repeat(8) + '1']) {
    t.equal(tryParseIP(s), undefined, `${JSON.stringify(s)} refused`);
  }
  t.equal(tryParseIPv6('1.2.3.4'), undefined, 'IPv4 text is not IPv6');
  t.throws(() => ipToU32(parseIP('::1')), RangeError, 'an IPv6 address has no u32 form');
});

t.test('prefix arithmetic: masks, contains, covers, overlaps, blocks', async (t) => {
  t.equal(prefixMask(0), 0);
  t.equal(prefixMask(1), 0x80000000);
  t.equal(prefixMask(24), 0xffffff00);
  t.equal(prefixMask(32), 0xffffffff);
  const pool = parseCidr4('192.168.0.0/16');
  t.ok(cidr4Contains(pool, ipv4ToU32('192.168.255.255')));
  t.notOk(cidr4Contains(pool, ipv4ToU32('192.169.0.0')));
  t.ok(cidr4Contains(parseCidr4('0.0.0.0/0'), 0xffffffff), '/0 holds everything');
  t.ok(cidr4Contains(parseCidr4('1.2.3.4/32'), ipv4ToU32('1.2.3.4')));
  t.notOk(cidr4Contains(parseCidr4('1.2.3.4/32'), ipv4ToU32('1.2.3.5')));
  t.ok(cidr4Covers(pool, parseCidr4('192.168.7.0/26')));
  t.notOk(cidr4Covers(parseCidr4('192.168.7.0/26'), pool));
  t.ok(cidr4Overlaps(parseCidr4('192.168.7.0/26'), pool));
  t.notOk(cidr4Overlaps(parseCidr4('10.0.0.0/8'), pool));
  t.equal(cidr4Size(0), 2 ** 32);
  t.equal(cidr4Size(26), 64);
  t.same(cidr4Of(ipv4ToU32('192.168.7.77'), 26), parseCidr4('192.168.7.64/26'), 'the block holding an address');
  t.equal(subnetCount4(pool, 26), 1024);
  t.equal(subnetCount4(pool, 8), 0);
  t.equal(formatCidr4(nthSubnet4(pool, 26, 0)), '192.168.0.0/26');
  t.equal(formatCidr4(nthSubnet4(pool, 26, 1023)), '192.168.255.192/26');
  t.equal(formatCidr4(nthSubnet4(parseCidr4('0.0.0.0/0'), 1, 1)), '128.0.0.0/1');

  // The family-carrying forms agree with the u32 forms on random prefixes.
  let seed = 11;
  const rand = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  for (let i = 0; i < 2000; i++) {
    const a = u32ToIpv4((rand(65536) * 65536 + rand(65536)) >>> 0), la = rand(33);
    const b = u32ToIpv4((rand(65536) * 65536 + rand(65536)) >>> 0), lb = rand(33);
    const ca = parseCidr(`${a}/${la}`), cb = parseCidr(`${b}/${lb}`);
    const c4a = parseCidr4(`${a}/${la}`), c4b = parseCidr4(`${b}/${lb}`);
    if (cidrContains(ca, cb) !== cidr4Covers(c4a, c4b)) t.fail(`contains ${a}/${la} ${b}/${lb}`);
    if (cidrsOverlap(ca, cb) !== cidr4Overlaps(c4a, c4b)) t.fail(`overlaps ${a}/${la} ${b}/${lb}`);
    if (ipToU32(maskCidr(ca).ip) !== c4a.addr) t.fail(`mask ${a}/${la}`);
  }
  t.notOk(cidrContains(parseCidr('0.0.0.0/0'), parseCidr('::/0')), 'never across families');
  t.notOk(cidrsOverlap(parseCidr('::/0'), parseCidr('10.0.0.0/8')));
  t.same(u32ToIP(0x0a000001), parseIPv4('10.0.0.1'));
});

t.test('random strings over digits and dots agree with the reference', async (t) => {
  let seed = 7;
  const rand = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  const alphabet = '0123456789..2551x/';
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const len = 1 + rand(16);
    let s = '';
    for (let j = 0; j < len; j++) s += alphabet[rand(alphabet.length)];
    const want = reference(s);
    if (want !== undefined) accepted++;
    if (tryIpv4ToU32(s) !== want) t.fail(`${JSON.stringify(s)}: ${tryIpv4ToU32(s)} vs ${want}`);
    const asIp = tryParseIPv4(s);
    if ((asIp === undefined ? undefined : ipToU32(asIp)) !== want) t.fail(`tryParseIPv4 ${JSON.stringify(s)}`);
  }
  for (let i = 0; i < 5_000; i++) {
    const s = [rand(300), rand(300), rand(300), rand(300)].join('.');
    if (reference(s) !== undefined) accepted++;
    if (tryIpv4ToU32(s) !== reference(s)) t.fail(`${s}: ${tryIpv4ToU32(s)} vs ${reference(s)}`);
  }
  t.ok(accepted > 1000, `the random cases include valid addresses (${accepted})`);
});

t.test('the IPv4 rule is ipaddr.js\'s isValidFourPartDecimal (an independent implementation)', async (t) => {
  let seed = 3;
  const rand = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  const alphabet = '0123456789...0x ';
  for (const s of EDGE) t.equal(tryIpv4ToU32(s) !== undefined, ipaddr.IPv4.isValidFourPartDecimal(s), JSON.stringify(s));
  for (let i = 0; i < 20_000; i++) {
    let s = '';
    for (let j = 1 + rand(15); j > 0; j--) s += alphabet[rand(alphabet.length)];
    const ok = ipaddr.IPv4.isValidFourPartDecimal(s);
    if ((tryIpv4ToU32(s) !== undefined) !== ok) t.fail(`${JSON.stringify(s)}: ipaddr.js says ${ok}`);
    if (ok && tryIpv4ToU32(s) !== ipaddr.IPv4.parse(s).toByteArray().reduce((a, b) => a * 256 + b, 0)) t.fail(`${s}: value`);
  }
});
