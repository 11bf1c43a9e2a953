// Differential fuzzing of nat-outgoing on the uplink (docs/security.md): random flows of two workloads of
// a natOutgoing pool and the host to outside hosts, pool addresses and a node (TCP, UDP, echo
// both ways, ICMP queries, port-less protocols), the outside's replies, and ICMP errors both ways
// quoting real, reversed and forged flows, plus truncation and header lies — through the real
// tortie_uplink_out / tortie_uplink_in (BPF_PROG_TEST_RUN) and through `NatModel`. Outcomes (the
// counter slot) and, for forwarded packets, the translated addresses and ports must agree. The
// model learns which port BPF picked for a new mapping (which port of the range is lib/nat.h's
// choice; that it is in the range, 20000-29999 by default, and the workload's own port when that
// lies in the range and is free, is asserted) and then holds it to that: the same port for the flow's every packet and its
// replies, never a reply tuple shared by two flows. Fragments are not generated (the fragment
// translation map is not cleared between scenarios). Seeded and replayable like wep-fuzz.ts.
import { Gen, rng } from './random';
import { UplinkHarness } from '../uplink-harness';
import { ipAt, portsOf } from '../fixtures';
import { DropReason as R } from '../../dataplane/bpf/drop-reasons';
import { eth, ipv4, tcp, udp, icmp, PROTO } from '../../dataplane/bpf/packet';
import { parse } from './wep-fuzz';
import { POOL_F } from '../../dataplane/bpf/net-codecs';
import { cidr4Contains, ipv4ToU32, parseCidr4 } from '../../primitives';

export const NODE = '198.18.1.10';
export const OTHER_NODE = '198.18.1.11';
const PODS = ['192.168.10.5', '192.168.10.6'];
const REMOTES = ['198.18.3.20', '198.18.3.21'];
const PORTS = [53, 80, 1000, 41000];
const IDS = [0, 7, 41000];
const POOLS = parseCidr4('192.168.0.0/16');                         // 192.168.0.0/18 (natOutgoing) and 192.168.200.0/24
const NAT_POOL = parseCidr4('192.168.0.0/18');
const inPool = (a: string) => cidr4Contains(POOLS, ipv4ToU32(a));
const inNatPool = (a: string) => cidr4Contains(NAT_POOL, ipv4ToU32(a));

interface Mapping { pod: string; port: number; nat: number }
interface Expect { reason: number; src?: string; dst?: string; sport?: number; dport?: number; inner?: { src: string; dst: string; sport?: number; dport?: number } }

/** nat-outgoing as docs/security.md and lib/nat.h, lib/icmp_err.h state it. */
export class NatModel {
  private fwd = new Map<string, Mapping>();  // proto|pod:port|remote:rport -> mapping
  private rev = new Map<string, Mapping>();  // proto|remote:rport|natport -> mapping
  private ports(proto: number) { return proto === PROTO.TCP || proto === PROTO.UDP; }

  private fk(proto: number, pod: string, sp: number, remote: string, dp: number) { return `${proto}|${pod}:${sp}|${remote}:${dp}`; }
  private rk(proto: number, remote: string, rp: number, nat: number) { return `${proto}|${remote}:${rp}|${nat}`; }

  /** Egress. `learned` is the port BPF chose when the model has none yet for the flow. */
  out(f: Buffer, learned: () => number | undefined): Expect {
    const p = parse(f);
    if (p === 'arp') return { reason: R.FORWARD };
    if (typeof p === 'number') return { reason: p };
    if (!inNatPool(p.saddr) || p.daddr === NODE || inPool(p.daddr) || p.daddr === OTHER_NODE) return { reason: R.FORWARD, src: p.saddr };
    const type = p.dport >> 8;
    if (p.proto === PROTO.ICMP && type !== 0 && type !== 8) return this.outIcmp(f, p.saddr, p.daddr, type);
    const echo = p.proto === PROTO.ICMP;
    const has = this.ports(p.proto) || echo;
    const sp = has ? p.ctS : 0, dp = has ? p.ctD : 0;
    const key = this.fk(p.proto, p.saddr, sp, p.daddr, dp);
    let m = this.fwd.get(key);
    if (!m) {
      const rp = echo ? 0 : dp;
      const own = this.rk(p.proto, p.daddr, rp, sp);
      let nat: number | undefined = sp;
      if (!has) {
        if (this.rev.has(own)) return { reason: R.NAT_NO_PORT };
      } else if (sp < 20000 || sp > 29999 || this.rev.has(own)) {
        // Ports come from the NAT range only; the workload's own port is kept when it lies there.
        nat = learned();
        if (nat === undefined || nat < 20000 || nat > 29999 || this.rev.has(this.rk(p.proto, p.daddr, rp, nat))) return { reason: -1000 - (nat ?? 0) };
      }
      m = { pod: p.saddr, port: sp, nat };
      this.fwd.set(key, m);
      this.rev.set(this.rk(p.proto, p.daddr, rp, nat), m);
    }
    return { reason: R.FORWARD, src: NODE, dst: p.daddr, sport: has ? m.nat : undefined };
  }

  private outIcmp(f: Buffer, pod: string, remote: string, type: number): Expect {
    if (![3, 4, 5, 11, 12].includes(type)) return { reason: R.NAT_ICMP };
    const q = quoted(f);
    if (!q || q.dst !== pod || q.src !== remote) return { reason: R.NAT_ICMP };
    const echo = q.proto === PROTO.ICMP;
    if (echo && !q.echo) return { reason: R.NAT_ICMP };
    const has = this.ports(q.proto) || echo;
    const key = echo ? this.fk(q.proto, pod, q.id!, remote, q.id!) : this.fk(q.proto, pod, has ? q.dport! : 0, remote, has ? q.sport! : 0);
    const m = this.fwd.get(key);
    if (!m) return { reason: R.NAT_ICMP };
    return { reason: R.FORWARD, src: NODE, dst: remote, inner: { src: remote, dst: NODE, ...(echo ? { sport: m.nat } : has ? { dport: m.nat } : {}) } };
  }

  /** Ingress to the node: replies and errors of mapped flows go back to the workload. */
  in(f: Buffer): Expect {
    const p = parse(f);
    if (p === 'arp') return { reason: R.FORWARD };
    if (typeof p === 'number') return { reason: p };
    if (p.daddr !== NODE) return { reason: R.FORWARD, dst: p.daddr };
    const type = p.dport >> 8;
    if (p.proto === PROTO.ICMP && [3, 4, 5, 11, 12].includes(type)) {
      const q = quoted(f);
      if (!q || q.src !== NODE) return { reason: R.FORWARD, dst: NODE };
      const echo = q.proto === PROTO.ICMP;
      const m = this.rev.get(this.rk(q.proto, q.dst, this.ports(q.proto) ? q.dport! : 0, echo ? q.id! : this.ports(q.proto) ? q.sport! : 0));
      if (!m) return { reason: R.FORWARD, dst: NODE };
      return { reason: R.FORWARD, dst: m.pod, inner: { src: m.pod, dst: q.dst, ...(echo ? { sport: m.port } : this.ports(q.proto) ? { sport: m.port } : {}) } };
    }
    if (p.proto === PROTO.ICMP && type !== 0) return { reason: R.FORWARD, dst: NODE };
    const echo = p.proto === PROTO.ICMP;
    const has = this.ports(p.proto) || echo;
    const m = this.rev.get(this.rk(p.proto, p.saddr, has && !echo ? p.ctS : 0, has ? p.ctD : 0));
    if (!m) return { reason: R.FORWARD, dst: NODE };
    return { reason: R.FORWARD, dst: m.pod, dport: has ? m.port : undefined };
  }
}

interface Quoted { src: string; dst: string; proto: number; sport?: number; dport?: number; id?: number; echo?: boolean }
/** The quoted header of an ICMP error (what lib/nat.h and lib/icmp_err.h read with bpf_skb_load_bytes). */
function quoted(f: Buffer): Quoted | undefined {
  const hl = (f[14]! & 15) * 4, at = 14 + hl + 8;
  // Everything is read within the datagram (IPv4 total length), never from Ethernet padding.
  const end = 14 + f.readUInt16BE(16);
  if (end < at + 20 || f[at]! >> 4 !== 4 || (f[at]! & 15) < 5) return undefined;
  const l4 = at + (f[at]! & 15) * 4, proto = f[at + 9]!;
  const q: Quoted = { src: ipAt(f, at).src, dst: ipAt(f, at).dst, proto };
  // Both ways: 4 bytes for TCP/UDP, 6 for ICMP (the echo id), none otherwise; a quote too short
  // for its ports is not translated (inbound: left to the node; outbound: dropped).
  const need = proto === PROTO.ICMP ? 6 : proto === PROTO.TCP || proto === PROTO.UDP ? 4 : 0;
  if (end < l4 + need) return undefined;
  if (need === 0) return q;
  if (proto === PROTO.ICMP) { q.id = f.readUInt16BE(l4 + 4); q.echo = f[l4] === 0 || f[l4] === 8; } else { q.sport = f.readUInt16BE(l4); q.dport = f.readUInt16BE(l4 + 2); }
  return q;
}

/** The layout the NAT tests share: this node, a natOutgoing pool, a plain pool, another node. */
export function natLayout(h: UplinkHarness): UplinkHarness {
  h.config(NODE);
  h.pool('192.168.0.0/18', POOL_F.NAT_OUT);
  h.pool('192.168.200.0/24', 0);
  h.node(NODE);
  h.node(OTHER_NODE);
  return h;
}

/** The uplink under test, in the shared NAT layout. */
export async function natFuzzHarness(): Promise<UplinkHarness> {
  return natLayout(await UplinkHarness.create('natfuzz'));
}

export interface NatFuzzFailure { seed: number; scenario: number; packet: number; hook: string; what: string; frame: string; got: string; want: string }

export function runNatFuzz(h: UplinkHarness, seed: number, scenarios: number, packets: number): { packets: number; failures: NatFuzzFailure[]; outcomes: Map<number, number> } {
  const res = { packets: 0, failures: [] as NatFuzzFailure[], outcomes: new Map<number, number>() };
  for (let s = 0; s < scenarios; s++) {
    const g = new Gen(rng((seed ^ Math.imul(s + 1, 0x85ebca6b)) >>> 0));
    // A fresh table: mappings and the per-workload quota counts that go with them.
    for (const m of [h.dp.maps.nat4, h.dp.maps.natq4]) for (const k of m.keys()) m.tryDelete(k);
    const model = new NatModel();
    const sent: Buffer[] = []; // datagrams as they left (translated) or arrived
    for (let i = 0; i < packets; i++) {
      const [hook, frame, what] = step(g, sent);
      if (frame.length < 34) continue;
      const r = h.run(hook, frame);
      const want = hook === 'out' ? model.out(frame, () => r.reason === R.FORWARD ? portOf(r.data) : undefined) : model.in(frame);
      const got = describe(r.reason, r.data, want);
      res.packets++;
      res.outcomes.set(r.reason, (res.outcomes.get(r.reason) ?? 0) + 1);
      if (got !== describe(want.reason, undefined, want)) {
        res.failures.push({ seed, scenario: s, packet: i, hook, what, frame: frame.toString('hex'), got, want: describe(want.reason, undefined, want) });
        break;
      }
      if (r.reason === R.FORWARD && r.data.length >= 34) sent.push(Buffer.from(r.data.subarray(14, 14 + r.data.readUInt16BE(16))));
      if (sent.length > 24) sent.shift();
    }
  }
  return res;
}

function portOf(out: Buffer): number | undefined {
  const ip = ipAt(out);
  return ip.proto === PROTO.TCP || ip.proto === PROTO.UDP || ip.proto === PROTO.ICMP ? portsOf(ip)[0] : undefined;
}

/** The fields the expectation names, read from the output frame (or from the expectation itself). */
function describe(reason: number, out: Buffer | undefined, e: Expect): string {
  if (reason !== R.FORWARD) return `reason ${reason}`;
  const parts = [`reason 0`];
  const ip = out ? ipAt(out) : undefined;
  if (e.src !== undefined) parts.push(`src ${ip ? ip.src : e.src}`);
  if (e.dst !== undefined) parts.push(`dst ${ip ? ip.dst : e.dst}`);
  if (e.sport !== undefined) parts.push(`sport ${ip ? portsOf(ip)[0] : e.sport}`);
  if (e.dport !== undefined) parts.push(`dport ${ip ? portsOf(ip)[1] : e.dport}`);
  if (e.inner) {
    const q = ip ? ipAt(ip.l4, 8) : undefined;
    parts.push(`inner ${q ? q.src : e.inner.src} > ${q ? q.dst : e.inner.dst}`);
    if (e.inner.sport !== undefined) parts.push(`inner sport ${q ? (q.proto === PROTO.ICMP ? q.l4.readUInt16BE(4) : q.l4.readUInt16BE(0)) : e.inner.sport}`);
    if (e.inner.dport !== undefined) parts.push(`inner dport ${q ? q.l4.readUInt16BE(2) : e.inner.dport}`);
  }
  return parts.join(', ');
}

function step(g: Gen, sent: Buffer[]): ['in' | 'out', Buffer, string] {
  const pick = <T>(xs: readonly T[]) => g.pick(xs);
  const kind = g.int(10);
  let d: Buffer, hook: 'in' | 'out', what: string;
  if (kind < 4) { // a workload (or the host, or a pool address) talks to someone
    const src = g.chance(0.85) ? pick(PODS) : pick([NODE, '192.168.200.9']);
    const dst = g.chance(0.85) ? pick(REMOTES) : pick([NODE, OTHER_NODE, PODS[0]!]);
    hook = 'out';
    d = datagram(g, src, dst);
    what = `out ${src} > ${dst} proto ${d[9]}`;
  } else if (kind < 7 && sent.length) { // the outside answers something that left (or anything)
    const o = pick(sent);
    d = reverse(o, g);
    hook = 'in';
    what = `in reply to ${ipAt(o, 0).src} > ${ipAt(o, 0).dst} proto ${o[9]}`;
  } else { // ICMP errors both ways, quoting what went by (as sent, reversed) or forged
    const base = sent.length && g.chance(0.75) ? pick(sent) : datagram(g, pick([...PODS, NODE, ...REMOTES]), pick([...PODS, NODE, ...REMOTES]));
    const q = g.chance(0.3) ? reverse(base, g) : base;
    const qsrc = ipAt(q, 0).src, qdst = ipAt(q, 0).dst;
    hook = g.chance(0.5) ? 'in' : 'out';
    const [src, dst] = hook === 'in' ? [pick([...REMOTES, '198.18.3.1']), g.chance(0.8) ? qsrc : NODE] : [g.chance(0.8) ? qdst : pick(PODS), g.chance(0.8) ? qsrc : pick(REMOTES)];
    const cut = q.subarray(0, pick([28, 28, q.length, g.int(q.length + 1)]));
    d = ipv4({ src, dst, proto: PROTO.ICMP, id: g.int(65536) }, icmp({ type: pick([3, 3, 11, 12, 4, 5]), code: g.int(4), payload: cut }));
    what = `${hook} icmp error ${src} > ${dst} quoting ${qsrc} > ${qdst} proto ${q[9]} (${cut.length} bytes)`;
  }
  let f = eth({}, d);
  if (g.chance(0.1)) { f = f.subarray(0, 14 + g.int(f.length - 14)); what += ', truncated'; }
  else if (g.chance(0.1)) { f = Buffer.concat([f, Buffer.alloc(g.int(20) + 1, 0xa5)]); what += ', padded'; }
  return [hook, Buffer.from(f), what];
}

function datagram(g: Gen, src: string, dst: string): Buffer {
  const pl = Buffer.alloc(g.pick([0, 12]), 7);
  switch (g.int(5)) {
    case 0: return ipv4({ src, dst, proto: PROTO.TCP }, tcp({ sport: g.pick(PORTS), dport: g.pick(PORTS), flags: g.pick(['S', 'A', 'PA', 'FA', 'R']), payload: pl }));
    case 1: return ipv4({ src, dst, proto: PROTO.UDP }, udp({ sport: g.pick(PORTS), dport: g.pick(PORTS), payload: pl }));
    case 2: return ipv4({ src, dst, proto: PROTO.ICMP }, icmp({ type: g.pick([8, 8, 0, 13]), id: g.pick(IDS), payload: pl }));
    case 3: return ipv4({ src, dst, proto: 47 }, Buffer.alloc(8));
    default: return ipv4({ src, dst, proto: PROTO.UDP }, udp({ sport: g.pick(PORTS), dport: 53, payload: pl }));
  }
}

/** The same flow the other way: addresses and ports swapped; echo request <-> reply. */
function reverse(d: Buffer, g: Gen): Buffer {
  const r = Buffer.from(d);
  if (r.length < 20) return r;
  d.copy(r, 12, 16, 20);
  d.copy(r, 16, 12, 16);
  const hl = (d[0]! & 15) * 4;
  if ((d[9] === PROTO.TCP || d[9] === PROTO.UDP) && d.length >= hl + 4) {
    r.writeUInt16BE(d.readUInt16BE(hl + 2), hl);
    r.writeUInt16BE(d.readUInt16BE(hl), hl + 2);
    if (d[9] === PROTO.TCP && d.length >= hl + 14) r[hl + 13] = g.pick([0x12, 0x10, 0x18, 0x11, 0x04]);
  } else if (d[9] === PROTO.ICMP && d.length >= hl + 8) {
    r[hl] = d[hl] === 8 ? 0 : d[hl] === 0 ? 8 : d[hl]! + 1;
  }
  return r;
}
