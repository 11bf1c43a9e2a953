// Seeded random IPv6 frames — extension-header chains of random kinds, lengths, counts and
// places, fragment headers, payload-length lies both ways, truncation, short and long upper-layer
// headers — through the real from-workload program (allow-all endpoint, so the outcome is the
// parser's) and through a TypeScript model of bpf/lib/parse.h parse_ipv6 and wep_judge6's order;
// any disagreement fails with the seed and frame number. TORTIE_FUZZ_SEED, TORTIE_FUZZ_N override.
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { allowAll } from '../../src/testbed/tables';
import { DropReason as R, dropReasonLabel } from '../../src/dataplane/bpf/drop-reasons';
import { eth6, tcp, udp, icmp6, NH6, PROTO, type Ext6 } from '../../src/dataplane/bpf/packet';
import { Gen, rng } from '../../src/testbed/fuzz/random';

const EP = 'fd00:10::a';
const PEER = 'fd00:20::5';
const SEED = Number(process.env.TORTIE_FUZZ_SEED ?? 20261207);
const N = Number(process.env.TORTIE_FUZZ_N ?? 1500);
const EXT = [NH6.HOP, NH6.DEST, NH6.ROUTING, NH6.FRAGMENT, NH6.AUTH];
const isExt = (nh: number) => (EXT as readonly number[]).includes(nh);

/** What parse_ipv6 + wep_judge6 answer for a frame from EP (allow-all, own source). */
function model(f: Buffer): number {
  if (f[14]! >> 4 !== 6) return R.BAD_IP_VERSION;
  const plen = f.readUInt16BE(18);
  if (54 + plen > f.length) return R.BAD_TOTLEN;
  const end = 54 + plen;
  let off = 54;
  let nh = f[20]!;
  let frag: 'none' | 'first' | 'later' = 'none';
  let seenFrag = false;
  for (let i = 0; i < 8; i++) {
    if (!isExt(nh)) break;
    if (off + 8 > end) return R.IP6_BAD_EXT;
    let len: number;
    if (nh === NH6.FRAGMENT) {
      if (seenFrag) return R.IP6_BAD_EXT;
      seenFrag = true;
      const fo = f.readUInt16BE(off + 2);
      len = 8;
      if (fo >> 3) {
        if (fo >> 3 === 1 && f[off]! === PROTO.TCP) return R.FRAG_TINY;
        return R.FRAG_UNKNOWN;
      }
      if (fo & 1) frag = 'first';
    } else if (nh === NH6.AUTH) {
      len = (f[off + 1]! + 2) * 4;
    } else {
      len = (f[off + 1]! + 1) * 8;
      if (nh === NH6.HOP && i !== 0) return R.IP6_BAD_EXT;
      if (nh === NH6.ROUTING && f[off + 3]! !== 0) return R.IP6_SRCROUTE;
    }
    nh = f[off]!;
    off += len;
  }
  if (isExt(nh)) return R.IP6_EXT_CHAIN;
  if (off > end) return R.IP6_BAD_EXT;
  const tot = end - off;
  const short = frag === 'first' ? R.FRAG_TINY : R.TRUNC_L4;
  switch (nh) {
    case PROTO.TCP: {
      if (tot < 20) return short;
      const doff = (f[off + 12]! >> 4) * 4;
      if (doff < 20 || doff > tot) return R.BAD_TCP_HDR;
      return R.FORWARD; // SYN from the endpoint, allowed
    }
    case PROTO.UDP: return tot < 8 ? short : R.FORWARD;
    case NH6.ICMP6: {
      if (tot < 8) return short;
      const type = f[off]!;
      // Neighbour solicitation (unfragmented) to a global address: beyond the link.
      if (type === 135 && frag === 'none') return R.ICMP6_ND_SCOPE;
      return R.FORWARD;
    }
    default: return R.FORWARD;
  }
}

function frame(g: Gen, n: number): Buffer {
  const exts: Ext6[] = [];
  const count = g.pick([0, 0, 1, 2, 3, 5, 7, 8, 8, 9, 12]);
  for (let i = 0; i < count; i++) {
    // Hop-by-hop mostly first (elsewhere it is a drop), so long chains reach the bound.
    const kind = i === 0 || g.chance(0.05) ? g.pick(EXT) : g.pick([NH6.DEST, NH6.DEST, NH6.ROUTING, NH6.FRAGMENT, NH6.AUTH]);
    if (kind === NH6.FRAGMENT) {
      const body = Buffer.alloc(6);
      body.writeUInt16BE((g.pick([0, 0, 0, 1, 2, 100]) << 3) | (g.chance(0.7) ? 1 : 0), 0);
      body.writeUInt32BE(0x10000 + n, 2);
      exts.push({ type: kind, body });
    } else if (kind === NH6.AUTH) {
      const words = g.pick([2, 3, 4, 6]);
      exts.push({ type: kind, body: Buffer.alloc(words * 4 - 2), lenByte: words - 2 });
    } else {
      const units = g.pick([0, 0, 1, 3]);
      const body = Buffer.alloc(6 + units * 8);
      if (kind === NH6.ROUTING) { body[0] = g.pick([0, 2, 4]); body[1] = g.chance(0.15) ? 1 : 0; }
      exts.push({ type: kind, body, ...(g.chance(0.05) ? { lenByte: g.int(256) } : {}) });
    }
  }
  const proto = g.pick([PROTO.TCP, PROTO.TCP, PROTO.UDP, NH6.ICMP6, NH6.NONE, NH6.ESP]);
  let l4: Buffer;
  if (proto === PROTO.TCP) l4 = tcp({ sport: 1024 + n, dport: 80, doff: g.pick([5, 5, 5, 4, 8, 15]) });
  else if (proto === PROTO.UDP) l4 = udp({ sport: 1024 + n, dport: 53 });
  else if (proto === NH6.ICMP6) l4 = icmp6({ type: g.pick([128, 129, 1, 3, 135]), id: n & 0xffff, payload: Buffer.alloc(g.pick([0, 16, 48])) });
  else l4 = Buffer.alloc(g.pick([0, 8, 24]));
  if (g.chance(0.15)) l4 = l4.subarray(0, g.int(l4.length + 1));
  const lie = g.chance(0.15) ? { payloadLength: g.int(400) } : {};
  let f = eth6({ src: EP, dst: PEER, proto, exts, ...lie }, l4);
  if (g.chance(0.1)) f = Buffer.concat([f, Buffer.alloc(g.int(40))]);      // padding past the datagram
  if (g.chance(0.05)) f[14] = (g.pick([4, 0, 15]) << 4) | (f[14]! & 0xf); // version
  return f.length < 54 ? Buffer.concat([f, Buffer.alloc(54 - f.length)]) : f;
}

t.test(`IPv6 parsing: real program against the model (seed ${SEED}, ${N} frames)`, async (t) => {
  const h = await WepHarness.create('v6fuzz', { events: false });
  t.teardown(() => h.close());
  h.setEndpoint([`${EP}/128`], allowAll('i000000000000280', 'ingress'), allowAll('e000000000000280', 'egress'));
  const g = new Gen(rng(SEED));
  const seen = new Map<number, number>();
  let bad = 0;
  for (let n = 0; n < N; n++) {
    const f = frame(g, n);
    const want = model(f);
    const got = h.run('from', f).reason;
    seen.set(got, (seen.get(got) ?? 0) + 1);
    if (got !== want && bad++ < 5) t.fail(`frame ${n}: program ${dropReasonLabel(got)}, model ${dropReasonLabel(want)} (TORTIE_FUZZ_SEED=${SEED}): ${f.toString('hex')}`);
  }
  t.equal(bad, 0, 'every frame agreed');
  t.comment([...seen].map(([r, c]) => `${dropReasonLabel(r)} ${c}`).join(', '));
  for (const r of [R.FORWARD, R.IP6_EXT_CHAIN, R.IP6_BAD_EXT, R.IP6_SRCROUTE, R.BAD_TOTLEN, R.TRUNC_L4, R.FRAG_UNKNOWN, R.BAD_TCP_HDR]) {
    t.ok((seen.get(r) ?? 0) > 0, `the frames reached ${dropReasonLabel(r)}`);
  }
});
