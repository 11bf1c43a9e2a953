// Differential fuzzing of NAT66 on the uplink (bpf/lib/nat6.h), as nat-fuzz.ts does for IPv4 NAT:
// random flows of two workloads of a natOutgoing IPv6 pool, a workload of a pool without it and the
// node to outside hosts, pool addresses and nodes (TCP, UDP, ICMPv6 echo both ways, other ICMPv6,
// a port-less protocol), with or without a destination-options header; the outside's replies; first
// and later fragments both ways (of real flows, and forged: unknown ids, other sources, a TCP
// fragment at offset 8); ICMPv6 errors both ways quoting real, reversed and forged datagrams, cut
// at random lengths; frames truncated below their payload length or padded — through the real
// tortie_uplink_out / tortie_uplink_in (BPF_PROG_TEST_RUN) and through `Nat66Model`. Outcomes (the
// counter slot) and, for forwarded packets, the addresses, ports and quoted header must agree, and
// every whole translated datagram's checksum must verify from its bytes. The model learns which
// port BPF picked for a new mapping (a port of the NAT range, the workload's own when in the range
// and free) and then holds it to that. Seeded and replayable.
import { Gen, rng } from './random';
import type { UplinkHarness } from '../uplink-harness';
import { l4Sum6 } from '../fixtures';
import { DropReason as R } from '../../dataplane/bpf/drop-reasons';
import { eth6, ipv6, ext6, frag6, tcp, udp, icmp6, NH6, type Ext6 } from '../../dataplane/bpf/packet';
import { POOL_F } from '../../dataplane/bpf/net-codecs';
import { formatIP } from '../../primitives';

export const NODE6 = 'fd00:198:18:1::10';
export const OTHER_NODE6 = 'fd00:198:18:1::11';
const PODS = ['fd00:10::5', 'fd00:10::6'];
const NONAT_POD = 'fd00:20::9';
const REMOTES = ['fd00:198:18:3::20', 'fd00:198:18:3::21'];
const PORTS = [53, 80, 1000, 21000, 41000];
const IDS = [0, 7, 21000, 41000];
const FRAG_IDS = [1, 2, 0x10000];
const PORT_MIN = 20000, PORT_MAX = 29999;
const inNatPool = (a: string) => a.startsWith('fd00:10:');
const inPool = (a: string) => inNatPool(a) || a.startsWith('fd00:20:');
const ERRORS = [1, 2, 3, 4];
const RANGE = (p: number) => p >= PORT_MIN && p <= PORT_MAX;

type Frag = 'none' | 'first' | 'later';
interface P6 {
  src: string; dst: string; nh: number; frag: Frag; fragId: number; fragNh: number; fragOff: number;
  l4: number; end: number; sport: number; dport: number; type: number;
}

/** The outer IPv6 packet of a frame as the parser reads it (only what the generator makes), or a
 *  parse outcome: 'short' (no whole fixed header: nothing read), a drop reason. */
export function parse6(f: Buffer): P6 | 'short' | 'other' | number {
  if (f.length < 14 || f.readUInt16BE(12) !== 0x86dd) return 'other';
  if (f.length < 54) return 'short';
  const plen = f.readUInt16BE(18);
  if (54 + plen > f.length) return R.BAD_TOTLEN;
  const end = 54 + plen;
  const addr = (o: number) => formatIP({ version: 6, bytes: [...f.subarray(o, o + 16)] });
  const p: P6 = { src: addr(22), dst: addr(38), nh: f[20]!, frag: 'none', fragId: 0, fragNh: 0, fragOff: 0, l4: 54, end, sport: 0, dport: 0, type: 0 };
  for (let i = 0; i < 4; i++) {
    if (p.nh === NH6.DEST) { p.nh = f[p.l4]!; p.l4 += (f[p.l4 + 1]! + 1) * 8; continue; }
    if (p.nh === NH6.FRAGMENT) {
      const fo = f.readUInt16BE(p.l4 + 2);
      p.fragNh = f[p.l4]!; p.fragId = f.readUInt32BE(p.l4 + 4); p.nh = p.fragNh; p.l4 += 8;
      p.fragOff = fo >> 3;
      if (p.fragOff > 0) { p.frag = 'later'; return p.fragOff === 1 && p.nh === NH6.TCP ? R.FRAG_TINY : p; }
      if (fo & 1) p.frag = 'first';
      continue;
    }
    break;
  }
  if (p.nh === NH6.TCP || p.nh === NH6.UDP) { p.sport = f.readUInt16BE(p.l4); p.dport = f.readUInt16BE(p.l4 + 2); }
  if (p.nh === NH6.ICMP6) { p.type = f[p.l4]!; if (p.type === 128 || p.type === 129) p.sport = p.dport = f.readUInt16BE(p.l4 + 4); }
  return p;
}

interface Quoted6 { src: string; dst: string; nh: number; at: number; ports?: [number, number]; type?: number }
/** The datagram an ICMPv6 error quotes, read within the error's payload length (nat6_err_quote). */
function quoted6(f: Buffer, p: P6): Quoted6 | undefined {
  const at = p.l4 + 8;
  if (at + 40 > p.end || f[at]! >> 4 !== 6) return undefined;
  const addr = (o: number) => formatIP({ version: 6, bytes: [...f.subarray(o, o + 16)] });
  const q: Quoted6 = { src: addr(at + 8), dst: addr(at + 24), nh: f[at + 6]!, at: at + 40 };
  const need = q.nh === NH6.TCP || q.nh === NH6.UDP ? 4 : q.nh === NH6.ICMP6 ? 6 : 0;
  if (q.at + need > p.end) return { ...q, ports: undefined, type: -1 };
  if (q.nh === NH6.ICMP6) { q.type = f[q.at]!; q.ports = [f.readUInt16BE(q.at + 4), f.readUInt16BE(q.at + 4)]; }
  else if (need) q.ports = [f.readUInt16BE(q.at), f.readUInt16BE(q.at + 2)];
  return q;
}

interface Mapping { pod: string; port: number; nat: number }
/** A whole datagram whose upper layer has a checksum: verified after translation. */
const whole = (p: P6) => p.frag === 'none' && (p.nh === NH6.TCP || p.nh === NH6.UDP || p.nh === NH6.ICMP6);
interface Expect { reason: number; src?: string; dst?: string; sport?: number; dport?: number; inner?: { src: string; dst: string; sport?: number; dport?: number }; csum?: boolean }

/** NAT66 as bpf/lib/nat6.h and docs/security.md state it. */
export class Nat66Model {
  private fwd = new Map<string, Mapping>();
  private rev = new Map<string, Mapping>();
  private frags = new Map<string, string>(); // src|dst|id|nh|point -> address written
  /** How often each translation the model predicted was reached (the test asserts each was). */
  readonly hits = new Map<string, number>();
  private hit(k: string) { this.hits.set(k, (this.hits.get(k) ?? 0) + 1); }
  private fk(nh: number, pod: string, sp: number, remote: string, dp: number) { return `${nh}|${pod}:${sp}|${remote}:${dp}`; }
  private rk(nh: number, remote: string, rp: number, nat: number) { return `${nh}|${remote}:${rp}|${nat}`; }
  private hasPorts(p: P6) { return p.nh === NH6.TCP || p.nh === NH6.UDP || (p.nh === NH6.ICMP6 && (p.type === 128 || p.type === 129)); }
  private needsSnat(src: string, dst: string) { return inNatPool(src) && dst !== NODE6 && !inPool(dst) && dst !== OTHER_NODE6; }
  private fragKey(p: P6, point: string) { return `${p.src}|${p.dst}|${p.fragId}|${p.fragNh}|${point}`; }

  out(f: Buffer, learned: () => number | undefined): Expect {
    const p = parse6(f);
    if (p === 'other' || p === 'short') return { reason: R.FORWARD };
    if (typeof p === 'number') {
      const src = formatIP({ version: 6, bytes: [...f.subarray(22, 38)] }), dst = formatIP({ version: 6, bytes: [...f.subarray(38, 54)] });
      return { reason: this.needsSnat(src, dst) ? p : R.FORWARD };
    }
    if (!this.needsSnat(p.src, p.dst)) {
      // The node's own packet from a NAT range port takes back the reply tuple a mapping holds
      // (nat6_host_egress): the mapping's flow claims it again, or moves to another port.
      if (p.src === NODE6 && (p.nh === NH6.TCP || p.nh === NH6.UDP) && p.frag !== 'later' && RANGE(p.sport)) this.rev.delete(this.rk(p.nh, p.dst, p.dport, p.sport));
      return { reason: R.FORWARD, src: p.src };
    }
    if (p.frag === 'later') {
      const a = this.frags.get(this.fragKey(p, 'snat'));
      if (a) this.hit('later fragment out');
      return a ? { reason: R.FORWARD, src: a, dst: p.dst } : { reason: R.NAT6_FRAG };
    }
    if (p.nh === NH6.ICMP6 && p.type !== 128) return this.outError(f, p);
    const has = this.hasPorts(p), echo = p.nh === NH6.ICMP6;
    const sp = has ? p.sport : 0, dp = has ? p.dport : 0;
    const key = this.fk(p.nh, p.src, sp, p.dst, dp);
    const rp = echo ? 0 : dp;
    let m = this.fwd.get(key);
    if (m) {
      const rkey = this.rk(p.nh, p.dst, rp, m.nat);
      const cur = this.rev.get(rkey);
      if (!cur) this.rev.set(rkey, m); // its reply tuple was taken back by the node and is free: claimed again
      else if (cur !== m) { m = undefined; this.hit('remapped'); } // another flow holds it now: this one gets a new port
    }
    if (!m) {
      let nat = sp;
      if (!has) {
        if (this.rev.has(this.rk(p.nh, p.dst, rp, 0))) return { reason: R.NAT_NO_PORT };
      } else if (!RANGE(sp) || this.rev.has(this.rk(p.nh, p.dst, rp, sp))) {
        const l = learned();
        if (l === undefined || !RANGE(l) || this.rev.has(this.rk(p.nh, p.dst, rp, l))) return { reason: -1000 - (l ?? 0) };
        nat = l;
      } else if (has) {
        this.hit('own port kept');
      }
      m = { pod: p.src, port: sp, nat };
      this.fwd.set(key, m);
      this.rev.set(this.rk(p.nh, p.dst, rp, nat), m);
    }
    if (p.frag === 'first') this.frags.set(this.fragKey(p, 'snat'), NODE6);
    this.hit(p.frag === 'first' ? 'first fragment out' : 'out');
    return { reason: R.FORWARD, src: NODE6, dst: p.dst, sport: has ? m.nat : undefined, csum: whole(p) };
  }

  /** ICMPv6 other than an echo request leaving from the pool: an error about a live mapping's
   *  datagram the workload received, addressed to that datagram's source, or NAT6_ICMP. */
  private outError(f: Buffer, p: P6): Expect {
    if (!ERRORS.includes(p.type)) return { reason: R.NAT6_ICMP };
    const q = quoted6(f, p);
    if (!q || q.dst !== p.src || q.src !== p.dst) return { reason: R.NAT6_ICMP };
    let key: string;
    if (q.nh === NH6.TCP || q.nh === NH6.UDP) {
      if (!q.ports) return { reason: R.NAT6_ICMP };
      key = this.fk(q.nh, p.src, q.ports[1], p.dst, q.ports[0]);
    } else if (q.nh === NH6.ICMP6) {
      if (!q.ports || (q.type !== 128 && q.type !== 129)) return { reason: R.NAT6_ICMP };
      key = this.fk(q.nh, p.src, q.ports[0], p.dst, q.ports[0]);
    } else {
      key = this.fk(q.nh, p.src, 0, p.dst, 0);
    }
    const m = this.fwd.get(key);
    if (!m) return { reason: R.NAT6_ICMP };
    const inner = q.nh === NH6.ICMP6 ? { sport: m.nat } : q.nh === NH6.TCP || q.nh === NH6.UDP ? { dport: m.nat } : {};
    this.hit('error out');
    return { reason: R.FORWARD, src: NODE6, dst: p.dst, inner: { src: p.dst, dst: NODE6, ...inner }, csum: whole(p) };
  }

  in(f: Buffer): Expect {
    const p = parse6(f);
    if (typeof p !== 'object') return { reason: R.FORWARD };
    if (p.dst !== NODE6) return { reason: R.FORWARD, dst: p.dst };
    if (p.frag === 'later') {
      const a = this.frags.get(this.fragKey(p, 'rnat'));
      if (a) this.hit('later fragment in');
      return { reason: R.FORWARD, dst: a ?? NODE6 };
    }
    if (p.nh === NH6.ICMP6 && ERRORS.includes(p.type)) return this.inError(f, p);
    if (p.nh === NH6.ICMP6 && p.type !== 129) return { reason: R.FORWARD, dst: NODE6 };
    const has = this.hasPorts(p), echo = p.nh === NH6.ICMP6;
    const m = this.rev.get(this.rk(p.nh, p.src, has && !echo ? p.sport : 0, has ? p.dport : 0));
    if (!m) return { reason: R.FORWARD, dst: NODE6 };
    if (p.frag === 'first') this.frags.set(this.fragKey(p, 'rnat'), m.pod);
    this.hit(p.frag === 'first' ? 'first fragment in' : 'reply in');
    return { reason: R.FORWARD, dst: m.pod, dport: has ? m.port : undefined, csum: whole(p) };
  }

  private inError(f: Buffer, p: P6): Expect {
    const q = quoted6(f, p);
    const mine: Expect = { reason: R.FORWARD, dst: NODE6 };
    if (!q || q.src !== NODE6 || (q.type === -1)) return mine;
    let m: Mapping | undefined;
    if (q.nh === NH6.TCP || q.nh === NH6.UDP) m = this.rev.get(this.rk(q.nh, q.dst, q.ports![1], q.ports![0]));
    else if (q.nh === NH6.ICMP6) m = q.type === 128 ? this.rev.get(this.rk(q.nh, q.dst, 0, q.ports![0])) : undefined;
    else m = this.rev.get(this.rk(q.nh, q.dst, 0, 0));
    if (!m) return mine;
    const inner = q.nh === NH6.TCP || q.nh === NH6.UDP || q.nh === NH6.ICMP6 ? { sport: m.port } : {};
    this.hit('error in');
    return { reason: R.FORWARD, dst: m.pod, inner: { src: m.pod, dst: q.dst, ...inner }, csum: whole(p) };
  }
}

/** The uplink under test: NAT66 on for NODE6, the natOutgoing pool fd00:10::/48, a plain pool
 *  fd00:20::/48, two nodes. `netns`: an empty namespace of the caller's (the node-socket lookups). */
export async function nat66FuzzHarness(create: (label: string) => Promise<UplinkHarness>, netns: string, label = 'nat66fuzz'): Promise<UplinkHarness> {
  const h = await create(label);
  h.netns = netns;
  h.config6(NODE6);
  h.pool6('fd00:10::/48', POOL_F.NAT_OUT);
  h.pool6('fd00:20::/48', 0);
  h.node6(NODE6);
  h.node6(OTHER_NODE6);
  return h;
}

export interface Nat66FuzzFailure { seed: number; scenario: number; packet: number; hook: string; what: string; frame: string; got: string; want: string }

export function runNat66Fuzz(h: UplinkHarness, seed: number, scenarios: number, packets: number): { packets: number; failures: Nat66FuzzFailure[]; outcomes: Map<number, number>; hits: Map<string, number> } {
  const res = { packets: 0, failures: [] as Nat66FuzzFailure[], outcomes: new Map<number, number>(), hits: new Map<string, number>() };
  for (let s = 0; s < scenarios; s++) {
    const g = new Gen(rng((seed ^ Math.imul(s + 1, 0x27d4eb2f)) >>> 0));
    // A fresh table: mappings, the per-workload counts and the fragment records.
    for (const m of [h.dp.maps.nat6, h.dp.maps.natq6, h.dp.maps.nfrag6]) for (const k of m.keys()) m.tryDelete(k);
    const model = new Nat66Model();
    const st: GenState = { sent: [], firsts: [] };
    for (let i = 0; i < packets; i++) {
      const [hook, frame, what] = step(g, st);
      if (frame.length < 54) continue; // BPF_PROG_TEST_RUN refuses an IPv6 frame without a whole fixed header
      const r = h.run(hook, frame);
      const want = hook === 'out' ? model.out(frame, () => r.reason === R.FORWARD ? portOf(r.data) : undefined) : model.in(frame);
      const got = describe(r.reason, r.data, want);
      res.packets++;
      res.outcomes.set(r.reason, (res.outcomes.get(r.reason) ?? 0) + 1);
      if (got !== describe(want.reason, undefined, want)) {
        res.failures.push({ seed, scenario: s, packet: i, hook, what, frame: frame.toString('hex'), got, want: describe(want.reason, undefined, want) });
        break;
      }
      const p = r.reason === R.FORWARD ? parse6(r.data) : undefined;
      if (typeof p === 'object' && p.frag === 'none' && p.l4 === 54) st.sent.push(Buffer.from(r.data.subarray(14, p.end)));
      if (st.sent.length > 24) st.sent.shift();
    }
    for (const [k, n] of model.hits) res.hits.set(k, (res.hits.get(k) ?? 0) + n);
  }
  return res;
}

function portOf(out: Buffer): number | undefined {
  const p = parse6(out);
  return typeof p === 'object' && p.frag !== 'later' && (p.nh === NH6.TCP || p.nh === NH6.UDP || p.nh === NH6.ICMP6) ? p.sport : undefined;
}

/** The fields the expectation names, read from the output frame (or from the expectation itself). */
function describe(reason: number, out: Buffer | undefined, e: Expect): string {
  if (reason !== R.FORWARD) return `reason ${reason}`;
  const parts = ['reason 0'];
  const p = out ? parse6(out) : undefined;
  const o = typeof p === 'object' ? p : undefined;
  if (e.src !== undefined) parts.push(`src ${out ? o?.src : e.src}`);
  if (e.dst !== undefined) parts.push(`dst ${out ? o?.dst : e.dst}`);
  if (e.sport !== undefined) parts.push(`sport ${out ? o?.sport : e.sport}`);
  if (e.dport !== undefined) parts.push(`dport ${out ? o?.dport : e.dport}`);
  if (e.inner) {
    const q = out && o ? quoted6(out, o) : undefined;
    parts.push(`inner ${out ? q?.src : e.inner.src} > ${out ? q?.dst : e.inner.dst}`);
    if (e.inner.sport !== undefined) parts.push(`inner sport ${out ? q?.ports?.[0] : e.inner.sport}`);
    if (e.inner.dport !== undefined) parts.push(`inner dport ${out ? q?.ports?.[1] : e.inner.dport}`);
  }
  // The whole datagram's upper-layer checksum, recomputed from the output bytes.
  if (e.csum) parts.push(`csum ${out && o ? [0, 0xffff].includes(l4Sum6(out.subarray(22, 38), out.subarray(38, 54), o.nh, out.subarray(o.l4, o.end))) : true}`);
  return parts.join(', ');
}

interface GenState {
  /** Whole datagrams (IPv6 header onwards) as they left translated or arrived. */
  sent: Buffer[];
  /** First fragments generated: their later fragments follow. */
  firsts: { hook: 'in' | 'out'; src: string; dst: string; nh: number; id: number }[];
}

function step(g: Gen, st: GenState): ['in' | 'out', Buffer, string] {
  const pick = <T>(xs: readonly T[]) => g.pick(xs);
  const kind = g.int(12);
  let hook: 'in' | 'out', what: string, f: Buffer;
  if (kind < 4 || (kind < 7 && !st.sent.length)) { // someone leaves through the uplink
    const src = g.chance(0.85) ? pick(PODS) : pick([NODE6, NONAT_POD]);
    const dst = g.chance(0.85) ? pick(REMOTES) : pick([NODE6, OTHER_NODE6, PODS[0]!, NONAT_POD]);
    hook = 'out';
    [f, what] = wrap(g, st, hook, datagram(g, src, dst));
  } else if (kind < 7) { // the outside answers something that left (or arrived)
    hook = 'in';
    [f, what] = wrap(g, st, hook, reverse(pick(st.sent), g));
  } else if (kind < 9) { // a later fragment: of a first one generated, or forged
    const known = st.firsts.length && g.chance(0.75) ? pick(st.firsts) : undefined;
    const fr = known ?? { hook: g.chance(0.5) ? 'in' as const : 'out' as const, src: pick([...PODS, NODE6, ...REMOTES]), dst: pick([...REMOTES, NODE6]), nh: pick([NH6.UDP, NH6.TCP, NH6.ICMP6]), id: pick(FRAG_IDS) };
    const off = g.chance(0.15) ? 1 : 2 + g.int(200);
    hook = fr.hook;
    f = eth6({ src: fr.src, dst: fr.dst, proto: fr.nh, exts: [frag6({ offset: off, mf: g.chance(0.5), id: fr.id })] }, Buffer.alloc(8 * (1 + g.int(4)), 0x3c));
    what = `${hook} later fragment ${fr.src} > ${fr.dst} nh ${fr.nh} id ${fr.id} offset ${off}${known ? '' : ' (forged)'}`;
  } else { // ICMPv6 errors both ways, quoting what went by (as sent, reversed) or forged
    const base = st.sent.length && g.chance(0.75) ? pick(st.sent) : datagram(g, pick([...PODS, NODE6, ...REMOTES]), pick([...PODS, NODE6, ...REMOTES]));
    const q = g.chance(0.3) ? reverse(base, g) : base;
    const qsrc = addrAt(q, 8), qdst = addrAt(q, 24);
    hook = g.chance(0.5) ? 'in' : 'out';
    const [src, dst] = hook === 'in' ? [pick([...REMOTES, 'fd00:198:18:3::1']), g.chance(0.8) ? qsrc : NODE6]
      : [g.chance(0.8) ? qdst : pick(PODS), g.chance(0.8) ? qsrc : pick(REMOTES)];
    const cut = q.subarray(0, pick([48, 48, q.length, g.int(q.length + 1)]));
    const type = pick([1, 1, 2, 3, 4, 128, 135]);
    f = withChecksum(eth6({ src, dst, proto: NH6.ICMP6 }, icmp6({ type, code: g.int(4), rest: Buffer.alloc(4), payload: cut })));
    what = `${hook} icmp6 type ${type} ${src} > ${dst} quoting ${qsrc} > ${qdst} nh ${q[6]} (${cut.length} bytes)`;
  }
  if (g.chance(0.08)) { f = f.subarray(0, 14 + g.int(f.length - 14)); what += ', truncated'; }
  else if (g.chance(0.08)) { f = Buffer.concat([f, Buffer.alloc(g.int(20) + 1, 0xa5)]); what += ', padded'; }
  return [hook, Buffer.from(f), what];
}

const addrAt = (d: Buffer, o: number) => formatIP({ version: 6, bytes: [...d.subarray(o, o + 16)] });

/** A datagram (IPv6 header onwards, no extension headers) with a valid upper-layer checksum. */
function datagram(g: Gen, src: string, dst: string): Buffer {
  const pl = Buffer.alloc(g.pick([0, 12]), 7);
  let nh: number, l4: Buffer;
  switch (g.int(5)) {
    case 0: nh = NH6.TCP; l4 = tcp({ sport: g.pick(PORTS), dport: g.pick(PORTS), flags: g.pick(['S', 'A', 'PA', 'FA', 'R']), payload: pl }); break;
    case 1: nh = NH6.UDP; l4 = udp({ sport: g.pick(PORTS), dport: g.pick(PORTS), payload: pl }); break;
    case 2: nh = NH6.ICMP6; l4 = icmp6({ type: g.pick([128, 128, 129, 130]), id: g.pick(IDS), payload: pl }); break;
    case 3: nh = 47; l4 = Buffer.alloc(8); break;
    default: nh = NH6.UDP; l4 = udp({ sport: g.pick(PORTS), dport: 53, payload: pl });
  }
  return fillSum(ipv6({ src, dst, proto: nh }, l4));
}

const SUM_AT: Record<number, number> = { [NH6.TCP]: 16, [NH6.UDP]: 6, [NH6.ICMP6]: 2 };
function fillSum(d: Buffer): Buffer {
  const at = SUM_AT[d[6]!];
  if (at === undefined) return d;
  d.writeUInt16BE(0, 40 + at);
  d.writeUInt16BE(l4Sum6(d.subarray(8, 24), d.subarray(24, 40), d[6]!, d.subarray(40)), 40 + at);
  return d;
}
function withChecksum(f: Buffer): Buffer { fillSum(f.subarray(14)); return f; }

/** The frame for a datagram: as is, behind a destination-options header, or as a first fragment
 *  (its whole upper-layer header inside; the rest of the datagram never comes). */
function wrap(g: Gen, st: GenState, hook: 'in' | 'out', d: Buffer): [Buffer, string] {
  const src = addrAt(d, 8), dst = addrAt(d, 24), nh = d[6]!;
  const what = `${hook} ${src} > ${dst} nh ${nh}`;
  const r = g.int(10);
  if (r < 7) return [eth6({ src, dst, proto: nh }, d.subarray(40)), what];
  const exts: Ext6[] = r === 7 ? [ext6(NH6.DEST)] : r === 8 ? [frag6({ offset: 0, mf: true, id: 0 })] : [ext6(NH6.DEST), frag6({ offset: 0, mf: true, id: 0 })];
  if (r === 7) return [eth6({ src, dst, proto: nh, exts }, d.subarray(40)), `${what} behind dest-options`];
  const id = g.pick(FRAG_IDS);
  exts[exts.length - 1] = frag6({ offset: 0, mf: true, id });
  st.firsts.push({ hook, src, dst, nh, id });
  if (st.firsts.length > 12) st.firsts.shift();
  return [eth6({ src, dst, proto: nh, exts }, d.subarray(40)), `${what} first fragment id ${id}`];
}

/** The same flow the other way: addresses and ports swapped; echo request <-> reply; checksum refilled. */
function reverse(d: Buffer, g: Gen): Buffer {
  const r = Buffer.from(d);
  if (r.length < 40) return r;
  d.copy(r, 8, 24, 40);
  d.copy(r, 24, 8, 24);
  if ((d[6] === NH6.TCP || d[6] === NH6.UDP) && d.length >= 44) {
    r.writeUInt16BE(d.readUInt16BE(42), 40);
    r.writeUInt16BE(d.readUInt16BE(40), 42);
    if (d[6] === NH6.TCP && d.length >= 54) r[53] = g.pick([0x12, 0x10, 0x18, 0x11, 0x04]);
  } else if (d[6] === NH6.ICMP6 && d.length >= 48) {
    r[40] = d[40] === 128 ? 129 : d[40] === 129 ? 128 : d[40]! + 1;
  }
  return fillSum(r);
}
