// Differential fuzzing of the workload programs (docs/security.md, "Differential fuzzing"): random and mutated packet sequences
// (TCP flag combinations, fragments, ICMP errors quoting real, reversed and forged flows, echo
// both ways, truncation, Ethernet padding, header lies) run through the real tortie_from_wep /
// tortie_to_wep (BPF_PROG_TEST_RUN) and through `Model`, a TypeScript statement of the intended
// semantics (parsing, INVALID TCP flags, fragments following their first fragment per point,
// conntrack approvals, genuine ICMP errors, policy). Every packet's outcome (the counter slot
// that moved: 0 or the drop reason) must agree. Seeded and replayable: a failure prints the seed,
// scenario and packet index and the frame; TORTIE_FUZZ_SEED / TORTIE_FUZZ_SCENARIOS /
// TORTIE_FUZZ_PACKETS set the run (test/datapath/16-fuzz, bench/datapath-fuzz for long runs).
//
// Dual stack (`runFuzz(..., 'dual')`): the endpoint has IPv4 and IPv6 addresses and every
// scenario interleaves both families' traffic through the same programs and tables; the IPv6
// half adds extension headers (harmless ones, source routes), fragment headers, ICMPv6 echo and
// errors quoting IPv6 datagrams, router messages from the workload, payload-length lies
// (parse_ipv6 / wep_judge6's order: parse, router messages, anti-spoofing, later fragments, ...).
//
// The model is written from the contract (lib/parse.h, lib/conntrack.h, lib/frag.h headers and
// docs/security.md), not by translating the C line by line; where the two disagree, one of them is
// wrong and the test says which packet shows it.
import { Gen, rng } from './random';
import { WepHarness } from '../wep-harness';
import { buildTable, type SimpleRule } from '../tables';
import { DropReason as R } from '../../dataplane/bpf/drop-reasons';
import { eth, eth6, ipv4, ipv6, ipv6Bytes, ext6, frag6, tcp, udp, icmp, icmp6, inetChecksum, NH6, PROTO, ipv4ToU32, u32ToIpv4, type Ext6 } from '../../dataplane/bpf/packet';

export const LOCAL = ['192.168.1.10', '192.168.1.20'];
export const LOCAL6 = ['fd00:10::a', 'fd00:10::14'];
const REMOTE6 = ['fd00:20::3:4', 'fd00:20::3:5', 'fd00:18::1'];
const ADDRS6 = [...LOCAL6, ...REMOTE6];
const REMOTE = ['10.2.3.4', '10.2.3.5', '198.18.0.1'];
const ADDRS = [...LOCAL, ...REMOTE];
const PORTS = [80, 53, 5000, 5001, 40000];
const ECHO_IDS = [0, 1, 7];
const IP_IDS = [1, 2, 3];
const VALID_FLAGS = [0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30, 0x18, 0x42 | 0x80];

const DIR = { INGRESS: 0, EGRESS: 1 } as const;
const CTF = { A_IS_INIT: 1, SRC_OK: 2, DST_OK: 4, FIN_A: 8, FIN_B: 16, REPLY: 32, DST_LOCAL: 64, SEQ_A: 128, SEQ_B: 256, ACK_A: 512, ACK_B: 1024, SYN_SEEN: 2048, IGN_ACK: 4096 };
const ST = { SYN_SENT: 1, SYN_RECV: 2, ESTABLISHED: 3, FIN_WAIT: 4, CLOSING: 5, RST: 6, OTHER: 9 };
const TCPF = { FIN: 1, SYN: 2, RST: 4, ACK: 0x10 };
/** TCP sequence/ack numbers: close together, one window away, half the space away, wrapping. */
// Around 1000 ± TORTIE_CT_SEQ_BOUND too (8 MiB): the edges of the plausible sequence ends.
// Around the window bounds: 64 KiB, 66000 (the ACK lag), 20 and 64 MiB (scaled windows).
const SEQS = [1000, 1000, 1040, 1008, 66535, 70000, 0x80000000, 0xfffffff0, 0, 1000 + 0x800000, 1001 + 0x800000, (1000 - 0x800000) >>> 0, (999 - 0x800000) >>> 0,
  1000 + 65536, 1001 + 65536, (1000 - 66000) >>> 0, (999 - 66000) >>> 0, 1000 + 20 * 0x100000, 1000 + 0x4000000, 1001 + 0x4000000, (1000 - 0x4000000) >>> 0];

/** Windows and window scale options (shift 15 is taken as 14) the TCP segments carry. */
const WINDOWS = [65535, 65535, 0, 1, 512, 32768, 40000];
const WSCALES = [0, 7, 10, 14, 15];

/** A TCP header with random sequence numbers, window and (mostly on SYNs) a window scale option. */
function fuzzTcp(g: Gen, sport: number, dport: number, flags: number): Buffer {
  const h = tcp({ sport, dport, flags: '', seq: g.pick(SEQS), ack: g.pick(SEQS), doff: g.chance(flags & TCPF.SYN ? 0.7 : 0.1) ? g.pick([6, 8]) : 5 });
  h[13] = flags;
  h.writeUInt16BE(g.pick(WINDOWS), 14);
  if (h.length >= 24) {
    const ws = [3, 3, g.pick(WSCALES)];
    // Behind NOPs or a timestamp option (kind 8) when there is room; sometimes cut short (no option).
    const opts = h.length >= 32 ? (g.chance(0.5) ? [8, 10, 0, 0, 0, 1, 0, 0, 0, 0, ...ws] : [1, 1, ...ws, 0]) : g.chance(0.8) ? [...ws, 1] : [1, 1, 1, 1];
    Buffer.from(opts.slice(0, h.length - 20)).copy(h, 20);
  }
  return h;
}

/** Candidate policy rules; each scenario takes a random subset per direction (first match). */
const RULES: SimpleRule[] = [
  { proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 1 },
  { proto: PROTO.TCP, action: 'allow', ruleId: 2 },
  { proto: PROTO.UDP, portMin: 53, portMax: 53, action: 'allow', ruleId: 3 },
  { proto: PROTO.ICMP, portMin: 0x0300, portMax: 0x03ff, action: 'allow', ruleId: 4 },
  { proto: PROTO.ICMP, portMin: 0x0800, portMax: 0x08ff, action: 'allow', ruleId: 5 },
  { proto: PROTO.ICMP, portMin: 0x0000, portMax: 0x00ff, action: 'allow', ruleId: 6 },
  { proto: PROTO.UDP, action: 'deny', ruleId: 7 },
  { action: 'allow', ruleId: 8 },
];
/** Dual stack adds ICMPv6 rules (echo request, echo reply, destination unreachable). */
const RULES6: SimpleRule[] = [
  { proto: NH6.ICMP6, portMin: 0x8000, portMax: 0x80ff, action: 'allow', ruleId: 9 },
  { proto: NH6.ICMP6, portMin: 0x8100, portMax: 0x81ff, action: 'allow', ruleId: 10 },
  { proto: NH6.ICMP6, portMin: 0x0100, portMax: 0x01ff, action: 'allow', ruleId: 11 },
];

interface Parsed {
  saddr: string; daddr: string; proto: number; ipId: number; frag: 0 | 1 | 2; fragNh?: number;
  dport: number; ctS: number; ctD: number; flags: number; untracked: boolean; echo: 0 | 1 | 2; srcRoute: boolean;
  seq: number; ack: number; end: number; // TCP, unsigned 32-bit
  win?: number; wscale?: number; // TCP: window field; a SYN's window scale option shift + 1 (0: none)
  inner?: { key: string; saddr: string; srcIsA: boolean; addrA: string; addrB: string };
}

/** IPv6 addresses in the model: 32 hex digits, so text order is the 128-bit order (ip6_cmp). */
const hex6 = (b: Buffer, o: number) => b.subarray(o, o + 16).toString('hex');
const canon6 = (a: string) => ipv6Bytes(a).toString('hex');

function key(s: string, d: string, sp: number, dp: number, proto: number): { k: string; srcIsA: boolean; a: string; b: string } {
  const v6 = s.length === 32;
  const hs = v6 ? s : ipv4ToU32(s), hd = v6 ? d : ipv4ToU32(d);
  const a = hs < hd || (hs === hd && sp <= dp);
  return a ? { k: `${proto}|${s}:${sp}|${d}:${dp}`, srcIsA: true, a: s, b: d } : { k: `${proto}|${d}:${dp}|${s}:${sp}`, srcIsA: false, a: d, b: s };
}
/** Echo keys name the pinger's side, so a request one way and a request the other way differ. */
function echoMark(srcIsA: boolean, echo: 0 | 1 | 2): string {
  if (!echo) return '';
  return (echo === 1 ? srcIsA : !srcIsA) ? '|pinger=a' : '|pinger=b';
}
const ip = (b: Buffer, o: number) => u32ToIpv4(b.readUInt32BE(o));

/** IPv4 options (RFC 791): a loose (131) or strict (137) source route anywhere in a well-formed list. */
function hasSourceRoute(h: Buffer): boolean {
  for (let i = 20; i < h.length;) {
    const type = h[i]!;
    if (type === 0) return false;
    if (type === 1) { i++; continue; }
    if (type === 131 || type === 137) return true;
    if (i + 1 >= h.length || h[i + 1]! < 2) return false;
    i += h[i + 1]!;
  }
  return false;
}

/** Parsing as parse.h's contract states it: a negative number is the drop reason. */
export function parse(f: Buffer): Parsed | number | 'arp' {
  const len = f.length;
  if (len < 14) return R.TRUNC_ETH;
  const et = f.readUInt16BE(12);
  if (et === 0x8100 || et === 0x88a8) return R.VLAN;
  if (et === 0x0806) return 'arp';
  if (et !== 0x0800) return R.UNSUPPORTED_L3;
  if (len < 34) return R.TRUNC_IP;
  if (f[14]! >> 4 !== 4) return R.BAD_IP_VERSION;
  const ihl = f[14]! & 15;
  if (ihl < 5) return R.BAD_IHL;
  const hlen = ihl * 4;
  if (14 + hlen > len) return R.TRUNC_IP;
  let tot = f.readUInt16BE(16);
  if (tot < hlen || 14 + tot > len) return R.BAD_TOTLEN;
  const p: Parsed = { saddr: ip(f, 26), daddr: ip(f, 30), proto: f[23]!, ipId: f.readUInt16BE(18), frag: 0, dport: 0, ctS: 0, ctD: 0,
    flags: 0, untracked: false, echo: 0, seq: 0, ack: 0, end: 0, srcRoute: hasSourceRoute(f.subarray(14, 14 + hlen)) };
  const fo = f.readUInt16BE(20);
  if (fo & 0x1fff) {
    p.frag = 2;
    if ((fo & 0x1fff) === 1 && p.proto === PROTO.TCP) return R.FRAG_TINY;
    return p;
  }
  if (fo & 0x2000) p.frag = 1;
  const l4 = 14 + hlen;
  tot -= hlen;
  const short = (n: number) => tot < n || l4 + n > len;
  const trunc = p.frag ? R.FRAG_TINY : R.TRUNC_L4;
  switch (p.proto) {
    case PROTO.TCP: {
      if (short(20)) return trunc;
      const doff = (f[l4 + 12]! >> 4) * 4;
      if (doff < 20 || doff > tot) return R.BAD_TCP_HDR;
      p.ctS = f.readUInt16BE(l4); p.dport = p.ctD = f.readUInt16BE(l4 + 2); p.flags = f[l4 + 13]!;
      p.seq = f.readUInt32BE(l4 + 4); p.ack = f.readUInt32BE(l4 + 8);
      p.end = (p.seq + (tot - doff) + (p.flags & TCPF.SYN ? 1 : 0) + (p.flags & TCPF.FIN ? 1 : 0)) >>> 0;
      p.win = f.readUInt16BE(l4 + 14); p.wscale = p.flags & TCPF.SYN ? tcpWscale(f, l4, doff) : 0;
      return p;
    }
    case PROTO.UDP: case PROTO.UDPLITE: case PROTO.SCTP:
      if (short(p.proto === PROTO.SCTP ? 12 : 8)) return trunc;
      p.ctS = f.readUInt16BE(l4); p.dport = p.ctD = f.readUInt16BE(l4 + 2);
      return p;
    case 58:
      if (short(4)) return trunc;
      p.dport = f.readUInt16BE(l4); p.untracked = true;
      return p;
    case PROTO.ICMP: {
      if (short(8)) return trunc;
      const type = f[l4]!;
      p.dport = f.readUInt16BE(l4);
      if (type === 0 || type === 8) {
        p.ctS = p.ctD = f.readUInt16BE(l4 + 4);
        p.echo = type === 8 ? 1 : 2;
        return p;
      }
      p.untracked = true;
      if ([3, 4, 5, 11, 12].includes(type)) p.inner = parseQuoted(f, l4 + 8, tot - 8);
      return p;
    }
    default:
      return p;
  }
}

/** The quoted datagram of an error; undefined when it is not complete enough to name a flow. */
function parseQuoted(f: Buffer, at: number, room: number): Parsed['inner'] {
  if (at + 20 > f.length || room < 20) return undefined;
  if (f[at]! >> 4 !== 4 || (f[at]! & 15) < 5) return undefined;
  if (f.readUInt16BE(at + 6) & 0x1fff) return undefined; // a quoted later fragment names no flow
  const ih = (f[at]! & 15) * 4;
  if (ih + 8 > room || at + ih + 8 > f.length) return undefined;
  const l4 = at + ih, proto = f[at + 9]!;
  let sp = 0, dp = 0;
  let echo: 0 | 1 | 2 = 0;
  if ([PROTO.TCP, PROTO.UDP, PROTO.UDPLITE, PROTO.SCTP].includes(proto as 6)) {
    sp = f.readUInt16BE(l4); dp = f.readUInt16BE(l4 + 2);
  } else if (proto === PROTO.ICMP) {
    if (f[l4] !== 0 && f[l4] !== 8) return undefined;
    sp = dp = f.readUInt16BE(l4 + 4);
    echo = f[l4] === 8 ? 1 : 2;
  }
  const s = ip(f, at + 12), d = ip(f, at + 16);
  const k = key(s, d, sp, dp, proto);
  return { key: k.k + echoMark(k.srcIsA, echo), saddr: s, srcIsA: k.srcIsA, addrA: k.a, addrB: k.b };
}

const EXT6: number[] = [NH6.HOP, NH6.ROUTING, NH6.DEST, NH6.FRAGMENT, NH6.AUTH];

/** ip6_walk_exts: where the upper layer starts, or a drop reason; strict for the outer header. */
function walk6(f: Buffer, off: number, nh: number, end: number, strict: boolean):
  { off: number; nh: number; frag: 0 | 1 | 2; fragOff: number; fragId: number; fragNh: number } | number {
  const w = { off, nh, frag: 0 as 0 | 1 | 2, fragOff: 0, fragId: 0, fragNh: 0 };
  let fragSeen = false;
  for (let i = 0; i < 8 && EXT6.includes(nh); i++) {
    if (off + 8 > end || off + 8 > f.length) return R.IP6_BAD_EXT;
    let len: number;
    if (nh === NH6.FRAGMENT) {
      if (fragSeen && strict) return R.IP6_BAD_EXT;
      fragSeen = true;
      const fo = f.readUInt16BE(off + 2);
      w.fragId = f.readUInt32BE(off + 4); w.fragNh = f[off]!;
      len = 8;
      if (fo >> 3) return { ...w, frag: 2, fragOff: fo >> 3, nh: f[off]!, off: off + 8 };
      if (fo & 1) w.frag = 1;
    } else if (nh === NH6.AUTH) {
      len = (f[off + 1]! + 2) * 4;
    } else {
      len = (f[off + 1]! + 1) * 8;
      if (strict && nh === NH6.HOP && i !== 0) return R.IP6_BAD_EXT;
      if (strict && nh === NH6.ROUTING && f[off + 3] !== 0) return R.IP6_SRCROUTE;
    }
    nh = f[off]!;
    off += len;
  }
  if (EXT6.includes(nh)) return R.IP6_EXT_CHAIN;
  if (off > end) return R.IP6_BAD_EXT; // a header's length past the datagram (a short first fragment too)
  return { ...w, off, nh };
}

/** parse_ipv6's contract for a frame carrying IPv6 (Ethernet type 0x86dd). */
function parse6(f: Buffer): Parsed | number {
  if (f.length < 54) return R.TRUNC_IP;
  if (f[14]! >> 4 !== 6) return R.BAD_IP_VERSION;
  const plen = f.readUInt16BE(18);
  if (54 + plen > f.length) return R.BAD_TOTLEN;
  const end = 54 + plen;
  const w = walk6(f, 54, f[20]!, end, true);
  if (typeof w === 'number') return w;
  const p: Parsed = { saddr: hex6(f, 22), daddr: hex6(f, 38), proto: w.nh, ipId: w.fragId, frag: w.frag, fragNh: w.fragNh, dport: 0, ctS: 0, ctD: 0,
    flags: 0, untracked: false, echo: 0, seq: 0, ack: 0, end: 0, srcRoute: false };
  if (w.frag === 2) return w.fragOff === 1 && w.nh === PROTO.TCP ? R.FRAG_TINY : p;
  const l4 = w.off, tot = end - l4;
  const trunc = p.frag ? R.FRAG_TINY : R.TRUNC_L4;
  switch (p.proto) {
    case PROTO.TCP: {
      if (tot < 20) return trunc;
      const doff = (f[l4 + 12]! >> 4) * 4;
      if (doff < 20 || doff > tot) return R.BAD_TCP_HDR;
      p.ctS = f.readUInt16BE(l4); p.dport = p.ctD = f.readUInt16BE(l4 + 2); p.flags = f[l4 + 13]!;
      p.seq = f.readUInt32BE(l4 + 4); p.ack = f.readUInt32BE(l4 + 8);
      p.end = (p.seq + (tot - doff) + (p.flags & TCPF.SYN ? 1 : 0) + (p.flags & TCPF.FIN ? 1 : 0)) >>> 0;
      p.win = f.readUInt16BE(l4 + 14); p.wscale = p.flags & TCPF.SYN ? tcpWscale(f, l4, doff) : 0;
      return p;
    }
    case PROTO.UDP: case PROTO.UDPLITE: case PROTO.SCTP:
      if (tot < (p.proto === PROTO.SCTP ? 12 : 8)) return trunc;
      p.ctS = f.readUInt16BE(l4); p.dport = p.ctD = f.readUInt16BE(l4 + 2);
      return p;
    case NH6.ICMP6: {
      if (tot < 8) return trunc;
      const type = f[l4]!;
      p.dport = f.readUInt16BE(l4);
      if (type === 128 || type === 129) {
        p.ctS = p.ctD = f.readUInt16BE(l4 + 4);
        p.echo = type === 128 ? 1 : 2;
        return p;
      }
      p.untracked = true;
      if (type >= 1 && type <= 4) p.inner = parseQuoted6(f, l4 + 8, end);
      return p;
    }
    case PROTO.ICMP: // ICMPv4 in IPv6: type and code for policy, nothing more
      if (tot < 4) return trunc;
      p.dport = f.readUInt16BE(l4); p.untracked = true;
      return p;
    default:
      return p;
  }
}

/** parse_icmp6_inner: the quoted IPv6 datagram, walked leniently up to the outer datagram's end. */
function parseQuoted6(f: Buffer, at: number, end: number): Parsed['inner'] {
  if (at + 40 > end || f[at]! >> 4 !== 6) return undefined;
  const w = walk6(f, at + 40, f[at + 6]!, end, false);
  if (typeof w === 'number' || w.frag === 2) return undefined;
  const l4 = w.off;
  if (l4 + 8 > end) return undefined;
  let sp = 0, dp = 0;
  let echo: 0 | 1 | 2 = 0;
  if ([PROTO.TCP, PROTO.UDP, PROTO.UDPLITE, PROTO.SCTP].includes(w.nh as 6)) {
    sp = f.readUInt16BE(l4); dp = f.readUInt16BE(l4 + 2);
  } else if (w.nh === NH6.ICMP6) {
    if (f[l4] !== 128 && f[l4] !== 129) return undefined;
    sp = dp = f.readUInt16BE(l4 + 4);
    echo = f[l4] === 128 ? 1 : 2;
  }
  const s = hex6(f, at + 8), d = hex6(f, at + 24);
  const k = key(s, d, sp, dp, w.nh);
  return { key: k.k + echoMark(k.srcIsA, echo), saddr: s, srcIsA: k.srcIsA, addrA: k.a, addrB: k.b };
}

interface Entry { state: number; flags: number; seqEnd: [number, number]; ackMax: [number, number]; wscale: number; winLog: [number, number] }

/**
 * lib/tcp_opt.h tcp_opt(TCP_OPT_WSCALE) as lib/parse.h keeps it: at most 12 options walked, the
 * shift (capped at 14) + 1, or 0 without the option.
 */
function tcpWscale(f: Buffer, l4: number, doff: number): number {
  const end = l4 + doff;
  let off = l4 + 20;
  for (let i = 0; i < 12; i++) {
    if (off >= end || off >= f.length || f[off] === 0) return 0;
    if (f[off] === 1) { off++; continue; }
    if (off + 2 > end || off + 2 > f.length || f[off + 1]! < 2) return 0;
    if (f[off] === 3 && f[off + 1] === 3 && off + 3 <= end) return off + 3 > f.length ? 0 : Math.min(f[off + 2]!, 14) + 1;
    off += f[off + 1]!;
  }
  return 0;
}

/** ceil(log2(x)), 0 for x <= 1 (lib/ct_tcp.h ct_log2_ceil). */
const log2Ceil = (x: number) => (x <= 1 ? 0 : 32 - Math.clz32(x - 1));

/** lib/ct_tcp.h ct_tcp_window: the sender's largest advertised window, scaled, as ceil(log2), at least 1. */
function trackWindow(e: Entry, p: Parsed, senderIsA: boolean): void {
  let win = p.win ?? 0;
  const ws = e.wscale;
  if (p.flags & TCPF.SYN) {
    if (e.state <= ST.SYN_RECV) e.wscale = senderIsA ? (ws & 0xf0) | ((p.wscale ?? 0) & 0x0f) : (ws & 0x0f) | (((p.wscale ?? 0) << 4) & 0xf0);
  } else if (ws & 0x0f && ws & 0xf0) {
    win = win * 2 ** (((senderIsA ? ws : ws >> 4) & 0x0f) - 1);
  }
  const l = Math.max(log2Ceil(win), 1), s = senderIsA ? 0 : 1;
  if (l > e.winLog[s]) e.winLog[s] = l;
}

const seqAfter = (a: number, b: number) => ((a - b) | 0) > 0;
const RST_SLACK = 65535;

/**
 * lib/ct_tcp.h ct_seq_ok: `seq` (a RST's sequence number, a FIN's segment end) inside
 * [peer's highest ACK, sender's end + 65535].
 */
function seqOk(e: Entry, p: Parsed, senderIsA: boolean, seq: number): boolean {
  const s = senderIsA ? 0 : 1, o = 1 - s;
  const seqS = !!(e.flags & (senderIsA ? CTF.SEQ_A : CTF.SEQ_B));
  const seqP = !!(e.flags & (senderIsA ? CTF.SEQ_B : CTF.SEQ_A));
  const ackP = !!(e.flags & (senderIsA ? CTF.ACK_B : CTF.ACK_A));
  if (!seqS) return !seqP || (!!(p.flags & TCPF.ACK) && p.ack === e.seqEnd[o]);
  // The initiator's RST answering a segment passed untracked in SYN_SENT: exactly its ACK number.
  if (!ackP && e.flags & CTF.IGN_ACK && senderIsA === !!(e.flags & CTF.A_IS_INIT) && p.flags & TCPF.RST && seq === e.ackMax[o]) return true;
  const hi = (e.seqEnd[s] + RST_SLACK) >>> 0;
  const lo = ackP ? e.ackMax[o] : (e.seqEnd[s] - RST_SLACK) >>> 0;
  if (seqAfter(lo, hi)) return false;
  return ((seq - lo) >>> 0) <= ((hi - lo) >>> 0);
}

const SEQ_BOUND = 8 << 20;
const ACK_WIN_MIN = 66000;

/**
 * lib/ct_tcp.h ct_tcp_plausible: an ACK is set, not after what the peer sent; on a flow seen
 * opening with both windows known: the ACK at most max(W(sender), 66000) before what the peer
 * sent, the end not after the peer's ACK + W(peer) nor before the sender's end - W(peer); on a
 * pickup the end within SEQ_BOUND of what the peer acknowledged (of the sender's own end before that).
 */
function plausible(e: Entry, p: Parsed, senderIsA: boolean): boolean {
  const s = senderIsA ? 0 : 1, o = 1 - s;
  if (!(p.flags & TCPF.ACK)) return false;
  const seqP = !!(e.flags & (senderIsA ? CTF.SEQ_B : CTF.SEQ_A));
  if (seqP && seqAfter(p.ack, e.seqEnd[o])) return false;
  if (e.flags & CTF.SYN_SEEN && e.winLog[s] && e.winLog[o]) {
    const ws = Math.max(2 ** Math.min(e.winLog[s], 30), ACK_WIN_MIN), wp = 2 ** Math.min(e.winLog[o], 30);
    if (seqP && ((e.seqEnd[o] - p.ack) >>> 0) > ws) return false;
    if (e.flags & (senderIsA ? CTF.ACK_B : CTF.ACK_A) && seqAfter(p.end, (e.ackMax[o] + wp) >>> 0)) return false;
    if (e.flags & (senderIsA ? CTF.SEQ_A : CTF.SEQ_B) && seqAfter((e.seqEnd[s] - wp) >>> 0, p.end)) return false;
    return true;
  }
  let ref: number;
  if (e.flags & (senderIsA ? CTF.ACK_B : CTF.ACK_A)) ref = e.ackMax[o];
  else if (e.flags & (senderIsA ? CTF.SEQ_A : CTF.SEQ_B)) ref = e.seqEnd[s];
  else return true;
  return ((p.end - ((ref - SEQ_BOUND) >>> 0)) >>> 0) <= 2 * SEQ_BOUND;
}

function track(e: Entry, p: Parsed, senderIsA: boolean): void {
  const s = senderIsA ? 0 : 1;
  trackWindow(e, p, senderIsA);
  const sf = senderIsA ? CTF.SEQ_A : CTF.SEQ_B, af = senderIsA ? CTF.ACK_A : CTF.ACK_B;
  if (!(e.flags & sf) || seqAfter(p.end, e.seqEnd[s])) { e.seqEnd[s] = p.end; e.flags |= sf; }
  if (p.flags & TCPF.ACK && (!(e.flags & af) || seqAfter(p.ack, e.ackMax[s]))) { e.ackMax[s] = p.ack; e.flags |= af; }
}

/** The intended semantics of one node's workload policy points, as a state machine. */
export class Model {
  ct = new Map<string, Entry>();
  frags = new Set<string>();
  constructor(private readonly policy: [SimpleRule[], SimpleRule[]], private readonly addrs: string[]) {}

  private allowed(dir: number, p: Parsed): boolean {
    for (const r of this.policy[dir]!) {
      if (r.proto !== undefined && r.proto !== p.proto) continue;
      if ((r.portMin ?? 0) > p.dport || (r.portMax ?? 65535) < p.dport) continue;
      return r.action === 'allow';
    }
    return false;
  }

  /** Approval a packet needs at a point (see lib/conntrack.h ct_need). */
  private need(localIsInit: boolean, dir: number, flags: number): number {
    if (!localIsInit) return CTF.DST_OK;
    return dir === DIR.INGRESS && flags & CTF.DST_LOCAL ? CTF.SRC_OK | CTF.DST_OK : CTF.SRC_OK;
  }

  private related(p: Parsed, dir: number): boolean {
    const q = p.inner!;
    if (p.daddr !== q.saddr) return false;
    if (dir === DIR.EGRESS && p.saddr !== (q.srcIsA ? q.addrB : q.addrA)) return false;
    const e = this.ct.get(q.key);
    if (!e) return false;
    const quotedSrcIsInit = q.srcIsA === !!(e.flags & CTF.A_IS_INIT);
    const localIsInit = dir === DIR.INGRESS ? quotedSrcIsInit : !quotedSrcIsInit;
    const n = this.need(localIsInit, dir, e.flags);
    return (e.flags & n) === n;
  }

  /** false: an out-of-window RST or FIN, or an implausible segment of a flow seen opening (INVALID, the entry unchanged). */
  private advance(e: Entry, p: Parsed, initDir: boolean, senderIsA: boolean): boolean {
    const flags = p.flags;
    if (flags & TCPF.RST) {
      if (!seqOk(e, p, senderIsA, p.seq)) return false;
      e.state = ST.RST; return true;
    }
    if (e.state === ST.SYN_SENT && e.flags & CTF.SYN_SEEN) {
      // Before the SYN-ACK: the responder's segments without SYN pass untracked (their ACK number
      // kept for the initiator's RST); the initiator's SYN again sets its sequence end.
      const s = senderIsA ? 0 : 1;
      if (!initDir && !(flags & TCPF.SYN) && !(e.flags & (senderIsA ? CTF.ACK_A : CTF.ACK_B))) {
        if (flags & TCPF.ACK) { e.ackMax[s] = p.ack; e.flags |= CTF.IGN_ACK; }
        return true;
      }
      if (initDir && (flags & (TCPF.SYN | TCPF.ACK)) === TCPF.SYN) e.seqEnd[s] = p.end;
    }
    // Implausible: INVALID on a flow seen opening (a SYN only ignored), ignored on a pickup.
    if (e.state !== ST.SYN_SENT && !plausible(e, p, senderIsA)) return !(e.flags & CTF.SYN_SEEN) || !!(flags & TCPF.SYN);
    if (flags & TCPF.FIN && !seqOk(e, p, senderIsA, p.end)) return false;
    track(e, p, senderIsA);
    if (flags & TCPF.FIN) {
      e.flags |= senderIsA ? CTF.FIN_A : CTF.FIN_B;
      e.state = e.flags & (senderIsA ? CTF.FIN_B : CTF.FIN_A) ? ST.CLOSING : ST.FIN_WAIT;
      return true;
    }
    if (e.state === ST.SYN_SENT && !initDir && flags & TCPF.SYN && flags & TCPF.ACK) e.state = ST.SYN_RECV;
    else if (e.state === ST.SYN_RECV && initDir && flags & TCPF.ACK && !(flags & TCPF.SYN)) e.state = ST.ESTABLISHED;
    return true;
  }

  /** The outcome of one frame at one point: 0 (forwarded) or a drop reason. */
  run(dir: number, frame: Buffer): number {
    const v6 = frame.length >= 14 && frame.readUInt16BE(12) === 0x86dd;
    const p = v6 ? parse6(frame) : parse(frame);
    if (p === 'arp') return R.FORWARD;
    if (typeof p === 'number') return p;
    // wep_ndp: a workload's router advertisement or redirect, before anti-spoofing (the
    // generator sends no neighbour discovery: its ULA addresses would make it beyond the link).
    if (v6 && dir === DIR.EGRESS && p.proto === NH6.ICMP6 && p.frag === 0 && [134, 137].includes(p.dport >> 8)) return R.ICMP6_ROUTER;
    if (dir === DIR.EGRESS && !this.addrs.includes(p.saddr)) return R.SPOOFED_SRC;
    if (p.srcRoute) return R.IP_SRCROUTE;
    // IPv6 fragments are recorded under the fragment header's next header and 32-bit id.
    const fk = `${p.saddr}|${p.daddr}|${p.ipId}|${v6 ? p.fragNh : p.proto}|${dir}`;
    if (p.frag === 2) return this.frags.has(fk) ? R.FORWARD : R.FRAG_UNKNOWN;
    if (p.proto === PROTO.TCP) {
      const m = p.flags & 0x37;
      if (![0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30].includes(m)) return R.TCP_BAD_FLAGS;
    }
    const pass = () => { if (p.frag === 1) this.frags.add(fk); return R.FORWARD; };
    const k = key(p.saddr, p.daddr, p.ctS, p.ctD, p.proto);
    const ck = k.k + echoMark(k.srcIsA, p.echo);
    if (p.inner && this.related(p, dir)) return pass();
    let e = p.untracked ? undefined : this.ct.get(ck);
    if (e && p.proto === PROTO.TCP && (p.flags & (TCPF.SYN | TCPF.ACK)) === TCPF.SYN && e.state >= ST.FIN_WAIT && e.state <= ST.RST) e = undefined;
    let initDir = false;
    if (e) {
      initDir = k.srcIsA === !!(e.flags & CTF.A_IS_INIT);
      const localIsInit = (dir === DIR.EGRESS) === initDir;
      if (!localIsInit) e.flags |= CTF.DST_LOCAL;
      const n = this.need(localIsInit, dir, e.flags);
      if ((e.flags & n) === n) {
        if (p.proto === PROTO.TCP && !this.advance(e, p, initDir, k.srcIsA)) return R.CT_INVALID;
        if (!initDir) e.flags |= CTF.REPLY;
        return pass();
      }
    }
    if (!this.allowed(dir, p)) return R.POLICY_DENY;
    const point = dir === DIR.EGRESS ? CTF.SRC_OK : CTF.DST_OK;
    if (p.untracked) return pass();
    if (!e) {
      const state = p.proto === PROTO.TCP ? (p.flags & TCPF.RST ? ST.RST : p.flags & TCPF.SYN ? ST.SYN_SENT : ST.ESTABLISHED) : ST.OTHER;
      const ne: Entry = { state, flags: point | (k.srcIsA ? CTF.A_IS_INIT : 0) | (dir === DIR.INGRESS ? CTF.DST_LOCAL : 0), seqEnd: [0, 0], ackMax: [0, 0], wscale: 0, winLog: [0, 0] };
      if (p.proto === PROTO.TCP && !(p.flags & TCPF.RST)) {
        track(ne, p, k.srcIsA);
        if ((p.flags & (TCPF.SYN | TCPF.ACK)) === TCPF.SYN) ne.flags |= CTF.SYN_SEEN;
      }
      this.ct.set(ck, ne);
    } else if (initDir) {
      if (p.proto === PROTO.TCP && !this.advance(e, p, true, k.srcIsA)) return R.CT_INVALID;
      e.flags |= point;
    }
    return pass();
  }
}

/** One generated step: the frame, the hook it is run on, and how it was made (for replay output). */
export interface Step { hook: 'from' | 'to'; frame: Buffer; what: string }

/** Random packet sequences over a few addresses and ports, so flows repeat, reverse and collide. */
export class Generator {
  private history: Buffer[] = []; // IPv4 datagrams sent so far (for quoting and fragmenting)
  private queue: Step[] = [];
  constructor(private readonly g: Gen) {}

  /** The reverse of a recent datagram: a reply (or an echo reply), as the peer would send it. */
  private reply(): [Buffer, string] | undefined {
    const d = this.g.pick(this.history.slice(-6));
    const proto = d[9]!;
    if (d.length < 28 || ![PROTO.TCP, PROTO.UDP, PROTO.ICMP].includes(proto as 6)) return undefined;
    const r = Buffer.from(d);
    d.copy(r, 12, 16, 20);
    d.copy(r, 16, 12, 16);
    if (proto === PROTO.ICMP) {
      if (d[20] !== 8) return undefined;
      r[20] = 0;
      r.writeUInt16BE(0, 22);
      r.writeUInt16BE(inetChecksum(r.subarray(20)), 22);
    } else {
      r.writeUInt16BE(d.readUInt16BE(22), 20);
      r.writeUInt16BE(d.readUInt16BE(20), 22);
      if (proto === PROTO.TCP) r[33] = this.g.pick([0x12, 0x10, 0x18, 0x11, 0x04]);
    }
    return [r, `reply ${ip(r, 12)} > ${ip(r, 16)} proto ${proto}`];
  }

  private datagram(): [Buffer, string] {
    const g = this.g;
    if (this.history.length && g.chance(0.35)) {
      const r = this.reply();
      if (r) return r;
    }
    const src = g.chance(0.6) ? g.pick(LOCAL) : g.pick(ADDRS);
    const dst = g.pick(ADDRS.filter((a) => a !== src));
    const pl = Buffer.alloc(g.pick([0, 0, 8, 40]), g.int(256));
    switch (g.int(6)) {
      case 0: case 1: {
        const flags = g.chance(0.65) ? g.pick(VALID_FLAGS) : g.int(256);
        const sp = g.pick(PORTS), dp = g.pick(PORTS);
        return [ipv4({ src, dst, proto: PROTO.TCP, id: g.pick(IP_IDS) }, Buffer.concat([fuzzTcp(g, sp, dp, flags), pl])),
          `tcp ${src}:${sp} > ${dst}:${dp} flags 0x${flags.toString(16)}`];
      }
      case 2: {
        const sp = g.pick(PORTS), dp = g.pick(PORTS);
        return [ipv4({ src, dst, proto: PROTO.UDP, id: g.pick(IP_IDS) }, udp({ sport: sp, dport: dp, payload: pl })), `udp ${src}:${sp} > ${dst}:${dp}`];
      }
      case 3: {
        const type = g.pick([0, 8, 8, 13]), id = g.pick(ECHO_IDS);
        return [ipv4({ src, dst, proto: PROTO.ICMP, id: g.pick(IP_IDS) }, icmp({ type, id, payload: pl })), `icmp ${type} id ${id} ${src} > ${dst}`];
      }
      case 4: return this.icmpError(src, dst);
      default: {
        const proto = g.pick([47, 58, PROTO.SCTP, PROTO.UDPLITE]);
        return [ipv4({ src, dst, proto, id: g.pick(IP_IDS) }, Buffer.concat([Buffer.from([0, 80, 0, 53, 0, 12, 0, 0, 0, 0, 0, 0]), pl])), `proto ${proto} ${src} > ${dst}`];
      }
    }
  }

  /** An error quoting a real datagram (as sent, or reversed) or a forged one, from and to anyone. */
  private icmpError(src: string, dst: string): [Buffer, string] {
    const g = this.g;
    let q: Buffer;
    let how: string;
    if (this.history.length && g.chance(0.7)) {
      q = Buffer.from(g.pick(this.history));
      how = 'real';
      if (g.chance(0.3)) { // reversed: addresses and ports swapped
        const s = q.subarray(12, 16), d = q.subarray(16, 20);
        q = Buffer.concat([q.subarray(0, 12), Buffer.from(d), Buffer.from(s), q.subarray(20)]);
        if (q.length >= 24 && (q[9] === PROTO.TCP || q[9] === PROTO.UDP)) {
          const sp = q.readUInt16BE(20); q.writeUInt16BE(q.readUInt16BE(22), 20); q.writeUInt16BE(sp, 22);
        }
        how = 'reversed';
      }
      if (g.chance(0.5)) { // addressed to the quoted source, from its destination or a router
        dst = ip(q, 12);
        src = g.chance(0.5) ? ip(q, 16) : '198.18.0.1';
        how += ', to the quoted source';
      }
    } else {
      q = ipv4({ src: g.pick(ADDRS), dst: g.pick(ADDRS), proto: g.pick([PROTO.TCP, PROTO.UDP, PROTO.ICMP]) },
        Buffer.from([0, g.pick(PORTS), 0, g.pick(PORTS), 8, 0, 0, g.pick(ECHO_IDS)]));
      how = 'forged';
    }
    q = q.subarray(0, g.pick([28, 28, q.length, g.int(q.length + 1)]));
    const type = g.pick([3, 3, 11, 12, 4, 5]);
    return [ipv4({ src, dst, proto: PROTO.ICMP, id: g.pick(IP_IDS) }, icmp({ type, code: g.int(5), payload: q })),
      `icmp error ${type} ${src} > ${dst} quoting ${how} (${q.length} bytes)`];
  }

  private hookFor(d: Buffer): 'from' | 'to' {
    const src = ip(d, 12);
    if (LOCAL.includes(src)) return this.g.chance(0.55) ? 'from' : 'to';
    return this.g.chance(0.05) ? 'from' : 'to';
  }

  /** Header lies and damage: truncation, Ethernet padding, bad version/IHL/total length/TCP offset. */
  private mutate(frame: Buffer): [Buffer, string] {
    const g = this.g;
    const f = Buffer.from(frame);
    switch (g.int(14)) {
      case 0: { const n = 14 + g.int(f.length - 14); return [f.subarray(0, n), `truncated to ${n}`]; }
      case 1: case 2: return [Buffer.concat([f, Buffer.alloc(1 + g.int(24), g.int(256))]), 'padded'];
      case 3: f[14] = g.int(256); return [f, `ver/ihl 0x${f[14]!.toString(16)}`];
      case 4: f.writeUInt16BE(g.int(f.length + 8), 16); return [f, `tot_len ${f.readUInt16BE(16)}`];
      case 5: if (f.length > 46) f[46] = g.int(256); return [f, 'tcp doff byte'];
      default: return [f, ''];
    }
  }

  next(): Step {
    const queued = this.queue.shift();
    if (queued) return queued;
    const g = this.g;
    let [d, what] = this.datagram();
    if (g.chance(0.08)) { // IPv4 options: harmless ones, source routes, and a source route after END
      const opt = g.pick([[1, 1, 1, 0], [7, 7, 4, 0, 0, 0, 0], [131, 7, 4, 10, 9, 9, 9], [137, 7, 4, 10, 9, 9, 9], [1, 131, 3, 4],
        [68, 8, 5, 0, 131, 0, 0, 0], [0, 131, 7, 4], [7, 1, 131, 3]]);
      d = ipv4({ src: ip(d, 12), dst: ip(d, 16), proto: d[9]!, id: d.readUInt16BE(4), options: Buffer.from(opt) }, d.subarray(20));
      what += ` with options ${opt.join(',')}`;
    }
    this.history.push(d);
    if (this.history.length > 32) this.history.shift();
    const hook = this.hookFor(d);
    if (g.chance(0.15) && d.length - 20 >= 16) {
      // Fragments: the first at a multiple of 8, then the rest; sometimes the rest alone, on the
      // other hook, or with another IP id (another datagram's later fragment).
      const body = d.subarray(20), k = 1 + g.int(Math.floor((body.length - 1) / 8));
      const id = d.readUInt16BE(4);
      const mk = (o: number, mf: boolean, part: Buffer, pid = id) => eth({}, ipv4({ src: ip(d, 12), dst: ip(d, 16), proto: d[9]!, id: pid, mf, fragOffset: o }, part));
      const first = mk(0, true, body.subarray(0, k * 8));
      const later = mk(k, false, body.subarray(k * 8), g.chance(0.2) ? g.pick(IP_IDS) : id);
      const lhook = g.chance(0.2) ? (hook === 'from' ? 'to' : 'from') : hook;
      if (!g.chance(0.15)) this.queue.push({ hook, frame: first, what: `${what}: first fragment (${k * 8} bytes)` });
      this.queue.push({ hook: lhook, frame: later, what: `${what}: later fragment at ${k * 8}` });
      return this.queue.shift()!;
    }
    const [m, how] = g.chance(0.25) ? this.mutate(eth({}, d)) : [eth({}, d), ''];
    // Between two workloads of the node a packet crosses both points: the sender's, then the receiver's.
    if (hook === 'from' && LOCAL.includes(ip(d, 16)) && g.chance(0.6)) this.queue.push({ hook: 'to', frame: m, what: `${what} (receiver's point)` });
    return { hook, frame: m, what: how ? `${what}, ${how}` : what };
  }
}

const a6 = (d: Buffer, o: number) => ipv6Text(d.subarray(o, o + 16));
function ipv6Text(b: Buffer): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(i).toString(16));
  return parts.join(':');
}

/**
 * The IPv6 counterpart of `Generator`: datagrams over a few ULA addresses and ports (flows
 * repeat, reverse and collide), replies, ICMPv6 echo and errors quoting real, reversed and forged
 * IPv6 datagrams, router messages, extension headers, fragment headers, header lies.
 */
export class Generator6 {
  private history: Buffer[] = []; // IPv6 datagrams (no extension headers) sent so far
  private queue: Step[] = [];
  constructor(private readonly g: Gen) {}

  private reply(): [Buffer, string] | undefined {
    const d = this.g.pick(this.history.slice(-6));
    const proto = d[6]!;
    if (d.length < 48 || ![PROTO.TCP, PROTO.UDP, NH6.ICMP6].includes(proto as 6)) return undefined;
    const r = Buffer.from(d);
    d.copy(r, 8, 24, 40);
    d.copy(r, 24, 8, 24);
    if (proto === NH6.ICMP6) {
      if (d[40] !== 128) return undefined;
      r[40] = 129;
    } else {
      r.writeUInt16BE(d.readUInt16BE(42), 40);
      r.writeUInt16BE(d.readUInt16BE(40), 42);
      if (proto === PROTO.TCP) r[53] = this.g.pick([0x12, 0x10, 0x18, 0x11, 0x04]);
    }
    return [r, `reply ${a6(r, 8)} > ${a6(r, 24)} proto ${proto}`];
  }

  private datagram(): [Buffer, string] {
    const g = this.g;
    if (this.history.length && g.chance(0.35)) {
      const r = this.reply();
      if (r) return r;
    }
    const src = g.chance(0.6) ? g.pick(LOCAL6) : g.pick(ADDRS6);
    const dst = g.pick(ADDRS6.filter((a) => a !== src));
    const pl = Buffer.alloc(g.pick([0, 0, 8, 40]), g.int(256));
    switch (g.int(6)) {
      case 0: case 1: {
        const flags = g.chance(0.65) ? g.pick(VALID_FLAGS) : g.int(256);
        const sp = g.pick(PORTS), dp = g.pick(PORTS);
        return [ipv6({ src, dst, proto: PROTO.TCP }, Buffer.concat([fuzzTcp(g, sp, dp, flags), pl])),
          `tcp ${src}.${sp} > ${dst}.${dp} flags 0x${flags.toString(16)}`];
      }
      case 2: {
        const sp = g.pick(PORTS), dp = g.pick(PORTS);
        return [ipv6({ src, dst, proto: PROTO.UDP }, udp({ sport: sp, dport: dp, payload: pl })), `udp ${src}.${sp} > ${dst}.${dp}`];
      }
      case 3: {
        const type = g.pick([128, 128, 129, 200, 134, 137]), id = g.pick(ECHO_IDS);
        return [ipv6({ src, dst, proto: NH6.ICMP6 }, icmp6({ type, id, payload: pl })), `icmp6 ${type} id ${id} ${src} > ${dst}`];
      }
      case 4: return this.icmpError(src, dst);
      default: {
        const proto = g.pick([47, PROTO.ICMP, PROTO.SCTP, PROTO.UDPLITE, NH6.NONE]);
        return [ipv6({ src, dst, proto }, Buffer.concat([Buffer.from([8, 0, 0, 53, 0, 12, 0, 0, 0, 0, 0, 0]), pl])), `proto ${proto} ${src} > ${dst}`];
      }
    }
  }

  private icmpError(src: string, dst: string): [Buffer, string] {
    const g = this.g;
    let q: Buffer;
    let how: string;
    if (this.history.length && g.chance(0.7)) {
      q = Buffer.from(g.pick(this.history));
      how = 'real';
      if (g.chance(0.3)) {
        const sa = Buffer.from(q.subarray(8, 24));
        q.copy(q, 8, 24, 40); sa.copy(q, 24);
        if (q.length >= 44 && (q[6] === PROTO.TCP || q[6] === PROTO.UDP)) {
          const sp = q.readUInt16BE(40); q.writeUInt16BE(q.readUInt16BE(42), 40); q.writeUInt16BE(sp, 42);
        }
        how = 'reversed';
      }
      if (g.chance(0.5)) {
        dst = a6(q, 8);
        src = g.chance(0.5) ? a6(q, 24) : 'fd00:18::1';
        how += ', to the quoted source';
      }
    } else {
      q = ipv6({ src: g.pick(ADDRS6), dst: g.pick(ADDRS6), proto: g.pick([PROTO.TCP, PROTO.UDP, NH6.ICMP6]) },
        Buffer.from([g.pick([0, 128, 129]), g.pick(PORTS), 0, g.pick(PORTS), 0, g.pick(ECHO_IDS), 0, 0]));
      how = 'forged';
    }
    if (q.length >= 48 && g.chance(0.2)) { // the quote with extension headers before its upper layer (walked leniently)
      const x = g.pick([[ext6(NH6.DEST)], [ext6(NH6.HOP), ext6(NH6.DEST)], [ext6(NH6.DEST), ext6(NH6.HOP)], [ext6(NH6.ROUTING, Buffer.from([4, 1, 0, 0, 0, 0]))],
        [frag6({ offset: 0, mf: true, id: 9 })], [frag6({ offset: 3, id: 9 })]]);
      q = ipv6({ src: a6(q, 8), dst: a6(q, 24), proto: q[6]!, exts: x }, q.subarray(40));
      how += ` behind ${x.length} extension header(s)`;
    }
    q = q.subarray(0, g.pick([48, 48, q.length, q.length, g.int(q.length + 1)]));
    const type = g.pick([1, 1, 3, 2, 4]);
    return [ipv6({ src, dst, proto: NH6.ICMP6 }, icmp6({ type, code: g.int(5), payload: q })),
      `icmp6 error ${type} ${src} > ${dst} quoting ${how} (${q.length} bytes)`];
  }

  private hookFor(src: string): 'from' | 'to' {
    if (LOCAL6.includes(src)) return this.g.chance(0.55) ? 'from' : 'to';
    return this.g.chance(0.05) ? 'from' : 'to';
  }

  /** Header lies and damage: truncation, padding, version, payload length, TCP data offset. */
  private mutate(frame: Buffer): [Buffer, string] {
    const g = this.g;
    const f = Buffer.from(frame);
    switch (g.int(14)) {
      case 0: { const n = 54 + g.int(Math.max(1, f.length - 54)); return [f.subarray(0, n), `truncated to ${n}`]; }
      case 1: case 2: return [Buffer.concat([f, Buffer.alloc(1 + g.int(24), g.int(256))]), 'padded'];
      case 3: f[14] = g.int(256); return [f, `version byte 0x${f[14]!.toString(16)}`];
      case 4: f.writeUInt16BE(g.int(f.length - 40), 18); return [f, `payload length ${f.readUInt16BE(18)}`];
      case 5: if (f.length > 66) f[66] = g.int(256); return [f, 'tcp doff byte'];
      default: return [f, ''];
    }
  }

  /** Extension headers before the upper layer: harmless ones, or a source route / long chain. */
  private exts(): [Ext6[], string] {
    const g = this.g;
    switch (g.int(6)) {
      case 0: return [[ext6(NH6.HOP)], 'hop-by-hop'];
      case 1: return [[ext6(NH6.DEST), ext6(NH6.DEST)], 'two destination options'];
      case 2: return [[ext6(NH6.ROUTING, Buffer.from([4, g.pick([0, 0, 1]), 0, 0, 0, 0]))], 'routing header'];
      case 3: return [[ext6(NH6.DEST), ext6(NH6.HOP)], 'hop-by-hop not first'];
      case 4: return [Array.from({ length: 9 }, () => ext6(NH6.DEST)), 'nine destination options'];
      default: return [[{ type: NH6.AUTH, body: Buffer.alloc(14), lenByte: 2 }], 'authentication header'];
    }
  }

  next(): Step {
    const queued = this.queue.shift();
    if (queued) return queued;
    const g = this.g;
    let [d, what] = this.datagram();
    const src = a6(d, 8), dst = a6(d, 24);
    this.history.push(d);
    if (this.history.length > 32) this.history.shift();
    if (g.chance(0.08)) {
      const [x, how] = this.exts();
      d = ipv6({ src, dst, proto: d[6]!, exts: x }, d.subarray(40));
      what += ` with ${how}`;
    }
    const hook = this.hookFor(src);
    if (g.chance(0.15) && d[6] !== NH6.HOP && d.length - 40 >= 16) {
      // Fragment headers: the first at a multiple of 8, then the rest (alone, on the other hook,
      // or under another id sometimes), as Generator does for IPv4.
      const proto = d[6]!, body = d.subarray(40), k = 1 + g.int(Math.floor((body.length - 1) / 8));
      const id = g.pick([...IP_IDS, 0x10001]);
      const mk = (o: number, mf: boolean, part: Buffer, fid = id) => eth6({ src, dst, proto, exts: [frag6({ offset: o, mf, id: fid })] }, part);
      const first = mk(0, true, body.subarray(0, k * 8));
      const later = mk(k, false, body.subarray(k * 8), g.chance(0.2) ? g.pick(IP_IDS) : id);
      const lhook = g.chance(0.2) ? (hook === 'from' ? 'to' : 'from') : hook;
      if (!g.chance(0.15)) this.queue.push({ hook, frame: first, what: `${what}: first fragment (${k * 8} bytes)` });
      this.queue.push({ hook: lhook, frame: later, what: `${what}: later fragment at ${k * 8}` });
      return this.queue.shift()!;
    }
    const frame = eth({ ethertype: 0x86dd }, d);
    const [m, how] = g.chance(0.25) ? this.mutate(frame) : [frame, ''];
    if (hook === 'from' && LOCAL6.includes(dst) && g.chance(0.6)) this.queue.push({ hook: 'to', frame: m, what: `${what} (receiver's point)` });
    return { hook, frame: m, what: how ? `${what}, ${how}` : what };
  }
}

/** Both families interleaved: one step of IPv4 or of IPv6 traffic, each with its own history. */
class DualGenerator {
  private readonly v4: Generator;
  private readonly v6: Generator6;
  constructor(private readonly g: Gen) { this.v4 = new Generator(g); this.v6 = new Generator6(g); }
  next(): Step { return this.g.chance(0.5) ? this.v6.next() : this.v4.next(); }
}

export interface FuzzFailure { seed: number; scenario: number; packet: number; hook: string; what: string; frame: string; bpf: number; model: number }
export interface FuzzResult { packets: number; failures: FuzzFailure[]; outcomes: Map<number, number>; /** IPv6 frames among them */ v6: number }

/**
 * Runs `scenarios` × `packets` steps; each scenario gets fresh policy, conntrack and fragment
 * state. `family` 'dual': the endpoint has both families' addresses and the traffic mixes them.
 */
export function runFuzz(h: WepHarness, seed: number, scenarios: number, packets: number, only?: [number, number?], family: 4 | 'dual' = 4): FuzzResult {
  const res: FuzzResult = { packets: 0, failures: [], outcomes: new Map(), v6: 0 };
  const dual = family === 'dual';
  const rules = dual ? [...RULES, ...RULES6] : RULES;
  const ips = dual ? [...LOCAL.map((a) => `${a}/32`), ...LOCAL6.map((a) => `${a}/128`)] : LOCAL.map((a) => `${a}/32`);
  const addrs = dual ? [...LOCAL, ...LOCAL6.map(canon6)] : LOCAL;
  for (let s = 0; s < scenarios; s++) {
    if (only && only[0] !== s) continue;
    const g = new Gen(rng((seed ^ Math.imul(s + 1, 0x9e3779b1)) >>> 0));
    const pick = () => rules.filter(() => g.chance(0.4));
    const pol: [SimpleRule[], SimpleRule[]] = [pick(), pick()];
    h.setEndpoint(ips, buildTable({ id: `f${s.toString(16).padStart(14, '0')}1`, direction: 'ingress', rules: pol[0], defaultRule: 90 }),
      buildTable({ id: `f${s.toString(16).padStart(14, '0')}2`, direction: 'egress', rules: pol[1], defaultRule: 91 }));
    h.clearConntrack();
    // Fresh state: fragments, and the per-workload conntrack quota counts of the cleared entries.
    for (const m of [h.dp.maps.frag4!, h.dp.maps.ctq4!, h.dp.maps.frag6!, h.dp.maps.ctq6!]) for (const k of m.keys()) m.tryDelete(k);
    const model = new Model(pol, addrs);
    const gen = dual ? new DualGenerator(g) : new Generator(g);
    for (let i = 0; i < packets; i++) {
      const st = gen.next();
      if (only && only[1] !== undefined && i > only[1]) break;
      const v6 = st.frame.readUInt16BE(12) === 0x86dd;
      // BPF_PROG_TEST_RUN refuses frames shorter than Ethernet + the fixed IP header (03-malformed)
      if (st.frame.length < (v6 ? 54 : 34)) continue;
      if (v6) res.v6++;
      const want = model.run(st.hook === 'from' ? DIR.EGRESS : DIR.INGRESS, st.frame);
      const got = h.run(st.hook, st.frame).reason;
      res.packets++;
      res.outcomes.set(got, (res.outcomes.get(got) ?? 0) + 1);
      if (got !== want) {
        res.failures.push({ seed, scenario: s, packet: i, hook: st.hook, what: st.what, frame: st.frame.toString('hex'), bpf: got, model: want });
        break; // state has diverged: the rest of this scenario would only repeat the first difference
      }
    }
  }
  return res;
}
