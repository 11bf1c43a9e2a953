// The calc graph's IPv4 parser (a one-pass character scan) accepts exactly what the rule
// "four dot-separated parts of 1–3 decimal digits, each ≤ 255" accepts, with the same value:
// checked against that rule written the obvious way, on edge cases and random strings.
import t from 'tap';
import { parseCidr4, parseIPv4 } from '../../src/calc/ipv4';

function reference(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v;
}

t.test('edge cases', async (t) => {
  const cases = ['0.0.0.0', '255.255.255.255', '192.168.0.1', '010.001.000.099', '256.0.0.1', '1.2.3.256', '1.2.3', '1.2.3.4.5',
    '1..2.3', '.1.2.3', '1.2.3.', '', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.-4', '1.2.3.0x1', '1234.1.1.1', '1.2.3.4/32', 'a.b.c.d', '999.999.999.999', '00.0.0.00'];
  for (const c of cases) t.equal(parseIPv4(c), reference(c), JSON.stringify(c));
  t.equal(parseIPv4('198.19.1.2'), ((198 * 256 + 19) * 256 + 1) * 256 + 2);
  t.same(parseCidr4('192.168.1.77/24'), { addr: ((192 * 256 + 168) * 256 + 1) * 256, len: 24 });
  t.equal(parseCidr4('192.168.1.300/24'), undefined);
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
    if (parseIPv4(s) !== want) t.fail(`${JSON.stringify(s)}: ${parseIPv4(s)} vs ${want}`);
  }
  for (let i = 0; i < 5_000; i++) {
    const s = [rand(300), rand(300), rand(300), rand(300)].join('.');
    if (reference(s) !== undefined) accepted++;
    if (parseIPv4(s) !== reference(s)) t.fail(`${s}: ${parseIPv4(s)} vs ${reference(s)}`);
  }
  t.ok(accepted > 1000, `the random cases include valid addresses (${accepted})`);
});
