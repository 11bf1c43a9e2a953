// NAT66 (natOutgoing on an IPv6 pool) in BPF on the uplink, with BPF_PROG_TEST_RUN: which IPv6
// packets are translated (source in a natOutgoing IPv6 pool, destination in no pool, not a node,
// not this host), ports only from the NAT range (the workload's kept when inside), no two flows
// sharing a reply tuple, reverse translation, TCP/UDP/ICMPv6 checksums (pseudo-header included)
// recomputed from the bytes, node sockets' ports skipped, exhaustion, per-workload quota and a
// full table as counted drops that leave existing flows intact, later fragments translated like their
// first fragment both ways (refused leaving when it was not), ICMPv6 other than echo or errors about
// a live mapping refused, ICMPv6 errors about mappings translated both ways (quote,
// outer address, checksum) and forged ones left alone, the sweep returning memory and crediting the
// workload's count.
import t from 'tap';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { NAT_DIR, readNat6Entries } from '../../src/dataplane/bpf/net-codecs';
import { UplinkHarness, TC_OK, TC_SHOT } from '../../src/testbed/uplink-harness';
import { Topology } from '../../src/util/netns';
import { PySockets } from '../../src/testbed/probes';
import { NAT6, readNatQuota, sweepNatEntries } from '../../src/dataplane/bpf/nat';
import { readQuota } from '../../src/dataplane/bpf/quota';
import { eth6, ext6, frag6, icmp6, ipv6Bytes, tcp, udp, NH6 } from '../../src/dataplane/bpf/packet';
import { formatIP } from '../../src/primitives';
import { nat66FuzzHarness, NODE6, OTHER_NODE6 } from '../../src/testbed/fuzz/nat6-fuzz';
import { frag6KeyCodec } from '../../src/dataplane/bpf/codecs';
import { frame6, ip6At, l4Sum6 } from '../../src/testbed/fixtures';

const WL1 = 'fd00:10::5';
const WL2 = 'fd00:10::6';
const NONAT = 'fd00:20::9';
const OUT = 'fd00:198:18:3::20';

// ---- IPv6 frames with valid L4 checksums (src/testbed/fixtures.ts), and their reading ----
const l4sum = l4Sum6;
const tcp6 = (src: string, dst: string, sport: number, dport: number, flags = 'S') =>
  frame6(src, dst, NH6.TCP, tcp({ sport, dport, flags, payload: Buffer.from('hello') }));
const udp6 = (src: string, dst: string, sport: number, dport: number) => frame6(src, dst, NH6.UDP, udp({ sport, dport, payload: Buffer.from('q') }));
const echo6 = (src: string, dst: string, type: number, id: number) => frame6(src, dst, NH6.ICMP6, icmp6({ type, id, seq: 1, payload: Buffer.from('ping') }));

const read6 = (f: Buffer) => ip6At(f);

const topo = Topology.create('nat66');
t.teardown(() => topo.destroy());
let emptyNs: Promise<string> | undefined;

async function setup(label: string, nat?: Parameters<typeof UplinkHarness.create>[1]): Promise<UplinkHarness> {
  emptyNs ??= topo.addNetns('empty').then((n) => n.path);
  return nat66FuzzHarness((l) => UplinkHarness.create(l, nat), await emptyNs, label);
}

t.test('the frame helpers compute checksums the test can verify (the check can fail)', async (t) => {
  const f = tcp6(WL1, OUT, 1, 2);
  t.ok(read6(f).csumOk);
  f[f.length - 1] ^= 0xff;
  t.notOk(read6(f).csumOk);
});

t.test('SNAT decisions, translation and reverse translation', async (t) => {
  const h = await setup('nat66');
  t.teardown(() => h.close());

  t.test('TCP: source becomes the node, a workload port inside the range is kept, checksum valid both ways', async (t) => {
    const before = h.stats();
    const r = h.run('out', tcp6(WL1, OUT, 21000, 80));
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
    const o = read6(r.data);
    t.same([o.src, o.dst, o.ports], [NODE6, OUT, [21000, 80]]);
    t.ok(o.csumOk, 'TCP checksum (pseudo-header with the node address)');
    t.equal(h.stats().snatNew, before.snatNew + 1n);
    t.same(read6(h.run('out', tcp6(WL1, OUT, 21000, 80, 'A')).data).ports, [21000, 80], 'the same flow reuses its mapping');
    t.equal(h.stats().snatNew, before.snatNew + 1n, 'no second mapping');
    const back = h.run('in', tcp6(OUT, NODE6, 80, 21000, 'SA'));
    t.same([back.retval, back.reason], [TC_OK, R.FORWARD]);
    const b = read6(back.data);
    t.same([b.src, b.dst, b.ports], [OUT, WL1, [80, 21000]], 'reply goes back to the workload');
    t.ok(b.csumOk, 'reply checksum');
  });

  t.test('a workload port outside the range is replaced by one inside; replies map back', async (t) => {
    const o = read6(h.run('out', tcp6(WL1, OUT, 41000, 80)).data);
    const p = o.ports[0];
    t.ok(p >= 20000 && p <= 29999, `41000 became ${p}`);
    t.ok(o.csumOk);
    const b = read6(h.run('in', tcp6(OUT, NODE6, 80, p, 'SA')).data);
    t.same([b.dst, b.ports[1], b.csumOk], [WL1, 41000, true]);
    const stray = tcp6(OUT, NODE6, 80, 41000, 'SA');
    t.ok(h.run('in', stray).data.equals(stray), 'the workload port itself stays the node\'s');
  });

  t.test('a second workload with the same port gets another; replies are not mixed up', async (t) => {
    const o = read6(h.run('out', tcp6(WL2, OUT, 21000, 80)).data);
    t.not(o.ports[0], 21000, 'collision avoided');
    t.same(read6(h.run('in', tcp6(OUT, NODE6, 80, o.ports[0], 'A')).data).dst, WL2);
    t.same(read6(h.run('in', tcp6(OUT, NODE6, 80, 21000, 'A')).data).dst, WL1);
  });

  t.test('UDP and ICMPv6 echo (id translated, checksum with pseudo-header)', async (t) => {
    const u = read6(h.run('out', udp6(WL1, OUT, 5353, 53)).data);
    t.same([u.src, u.csumOk], [NODE6, true]);
    t.ok(u.ports[0] >= 20000 && u.ports[0] <= 29999);
    const ub = read6(h.run('in', udp6(OUT, NODE6, 53, u.ports[0])).data);
    t.same([ub.dst, ub.ports, ub.csumOk], [WL1, [53, 5353], true]);
    const e = read6(h.run('out', echo6(WL1, OUT, 128, 7)).data);
    t.same([e.src, e.csumOk], [NODE6, true]);
    const eb = read6(h.run('in', echo6(OUT, NODE6, 129, e.ports[0])).data);
    t.same([eb.dst, eb.ports[0], eb.csumOk], [WL1, 7, true], 'echo reply back with the workload\'s id');
    const req = echo6(OUT, NODE6, 128, e.ports[0]);
    t.ok(h.run('in', req).data.equals(req), 'an echo request to the node is the node\'s, never translated');
  });

  t.test('not translated: destination in a pool, a node, this node; a pool without natOutgoing', async (t) => {
    for (const [src, dst, what] of [[WL1, 'fd00:20::1', 'another pool'], [WL1, 'fd00:10::99', 'its own pool'], [WL1, OTHER_NODE6, 'a node'],
      [WL1, NODE6, 'this node'], [NONAT, OUT, 'a pool without natOutgoing'], ['fd00:99::1', OUT, 'an address in no pool']] as const) {
      const f = tcp6(src, dst, 21001, 80);
      const r = h.run('out', f);
      t.ok(r.reason === R.FORWARD && r.data.equals(f), `${what}: untouched`);
    }
    t.equal(readNat6Entries(h.dp.maps.nat6).filter((e) => e.key.dport === 80 && e.key.sport === 21001).length, 0, 'no mapping made');
  });

  t.test('fragments: later fragments follow their first fragment\'s translation, both ways', async (t) => {
    // A 2000-byte UDP datagram (checksum over the whole of it) as two fragments, as the sender's kernel cuts it.
    const split = (src: string, dst: string, sport: number, dport: number, id: number): [Buffer, Buffer] => {
      const whole = udp({ sport, dport, payload: Buffer.alloc(2000, 0x5a) });
      whole.writeUInt16BE(l4sum(ipv6Bytes(src), ipv6Bytes(dst), NH6.UDP, whole), 6);
      return [eth6({ src, dst, proto: NH6.UDP, exts: [frag6({ offset: 0, mf: true, id })] }, whole.subarray(0, 1232)),
        eth6({ src, dst, proto: NH6.UDP, exts: [frag6({ offset: 1232 / 8, mf: false, id })] }, whole.subarray(1232))];
    };
    // The datagram the receiver reassembles from the two translated fragments (L4 after the 8-byte fragment header).
    const joined = (a: Buffer, b: Buffer) => {
      const ip = a.subarray(14);
      const l4 = Buffer.concat([a.subarray(62), b.subarray(62)]);
      const addr = (o: number) => formatIP({ version: 6, bytes: [...ip.subarray(o, o + 16)] });
      const later = b.subarray(14);
      return { src: addr(8), dst: addr(24), laterSrc: formatIP({ version: 6, bytes: [...later.subarray(8, 24)] }),
        laterDst: formatIP({ version: 6, bytes: [...later.subarray(24, 40)] }), ports: [l4.readUInt16BE(0), l4.readUInt16BE(2)],
        csumOk: [0, 0xffff].includes(l4sum(ip.subarray(8, 24), ip.subarray(24, 40), NH6.UDP, l4)) };
    };
    const [f1, f2] = split(WL1, OUT, 25001, 53, 0x4242);
    const r1 = h.run('out', f1);
    t.equal(r1.reason, R.FORWARD, 'first fragment: translated like a whole datagram');
    const before = h.stats().natFrag;
    const r2 = h.run('out', f2);
    const o = joined(r1.data, r2.data);
    t.same([r2.reason, o.src, o.laterSrc, o.ports, o.csumOk], [R.FORWARD, NODE6, NODE6, [25001, 53], true],
      'later fragment: the node as source too; the reassembled datagram\'s checksum holds');
    t.equal(h.stats().natFrag, before + 1n, 'counted (natFrag)');
    const stray = eth6({ src: WL1, dst: OUT, proto: NH6.UDP, exts: [frag6({ offset: 4, mf: false, id: 0x4343 })] }, Buffer.alloc(16));
    t.same([h.run('out', stray).retval, h.run('out', stray).reason], [TC_SHOT, R.NAT6_FRAG],
      'a later fragment whose first was not translated here: refused, the workload address never leaves');
    const [o1] = split(WL1, OUT, 25002, 53, 0x4444);
    const other = eth6({ src: WL2, dst: OUT, proto: NH6.UDP, exts: [frag6({ offset: 1232 / 8, mf: false, id: 0x4444 })] }, Buffer.alloc(64));
    h.run('out', o1);
    t.equal(h.run('out', other).reason, R.NAT6_FRAG, 'another workload\'s fragment with the same id does not borrow the record');

    const [i1, i2] = split(OUT, NODE6, 53, 25001, 0x7777);
    const q1 = h.run('in', i1);
    const q2 = h.run('in', i2);
    const b = joined(q1.data, q2.data);
    t.same([q1.reason, q2.reason, b.dst, b.laterDst, b.ports, b.csumOk], [R.FORWARD, R.FORWARD, WL1, WL1, [53, 25001], true],
      'reply fragments both go to the workload, checksum valid');
    const nodes = eth6({ src: OUT, dst: NODE6, proto: NH6.UDP, exts: [frag6({ offset: 8, mf: false, id: 0x7878 })] }, Buffer.alloc(32));
    t.ok(h.run('in', nodes).data.equals(nodes), 'an arriving later fragment without a record is the node\'s: untouched');
    const keys = h.dp.maps.nfrag6.keys().map((k) => frag6KeyCodec.decode(k));
    t.ok(keys.some((k) => k.point === 2 && k.id === 0x4242) && keys.some((k) => k.point === 3 && k.id === 0x7777), 'one record per translated first fragment and point');
  });

  t.test('refused: ICMPv6 errors from a natOutgoing pool; a reply nobody mapped is left alone', async (t) => {
    const err = frame6(WL1, OUT, NH6.ICMP6, icmp6({ type: 1, code: 4, rest: Buffer.alloc(4), payload: Buffer.alloc(48) }));
    t.equal(h.run('out', err).reason, R.NAT6_ICMP, 'a destination-unreachable from the workload');
    const stray = udp6(OUT, NODE6, 53, 29999);
    t.ok(h.run('in', stray).data.equals(stray), 'no mapping: untouched');
    const v4 = eth6({ src: NODE6, dst: OUT, proto: NH6.TCP }, tcp({ sport: 40000, dport: 22 }));
    t.equal(h.run('out', v4).reason, R.FORWARD, 'the node\'s own traffic passes');
  });

  t.test('NAT66 off (no node IPv6 address): nothing is translated', async (t) => {
    h.config6('::');
    const f = tcp6(WL1, OUT, 21000, 80);
    t.ok(h.run('out', f).data.equals(f));
    h.config6(NODE6);
  });
});

// ---- ICMPv6 errors about NAT66 flows (both ways) ----
const ROUTER = 'fd00:198:18:2::1'; // a router on the path, outside every pool

/** The IPv6 datagram inside an Ethernet frame (what an ICMPv6 error quotes). */
const datagram = (f: Buffer) => Buffer.from(f.subarray(14));
/** An ICMPv6 error from src to dst quoting `quoted` (type 2: Packet Too Big, `rest` its MTU). */
const err6 = (src: string, dst: string, type: number, code: number, quoted: Buffer, rest = Buffer.alloc(4)) =>
  frame6(src, dst, NH6.ICMP6, icmp6({ type, code, rest, payload: quoted }));

interface Quote6 { src: string; dst: string; nh: number; ports: [number, number] }
/** The quoted datagram of an ICMPv6 error frame (no extension headers in these tests). */
function quote6(f: Buffer): Quote6 {
  const q = f.subarray(14 + 40 + 8);
  const addr = (o: number) => formatIP({ version: 6, bytes: [...q.subarray(o, o + 16)] });
  const nh = q[6]!;
  const l4 = q.subarray(40);
  return { src: addr(8), dst: addr(24), nh, ports: nh === NH6.ICMP6 ? [l4.readUInt16BE(4), l4.readUInt16BE(4)] : [l4.readUInt16BE(0), l4.readUInt16BE(2)] };
}

t.test('ICMPv6 errors about NAT66 flows are translated both ways, only for a live mapping', async (t) => {
  const h = await setup('nat66err');
  t.teardown(() => h.close());
  // Three live mappings: TCP, UDP and an echo, as the outside saw them.
  const tcpOut = h.run('out', tcp6(WL1, OUT, 41000, 80));
  const tp = read6(tcpOut.data).ports[0];
  h.run('in', tcp6(OUT, NODE6, 80, tp, 'SA'));
  const udpOut = h.run('out', udp6(WL1, OUT, 5353, 53));
  const up = read6(udpOut.data).ports[0];
  const echoOut = h.run('out', echo6(WL1, OUT, 128, 7));
  const eid = read6(echoOut.data).ports[0];
  t.ok(tp !== 41000 && up !== 5353, 'the ports were translated (so the quoted ports must be too)');

  t.test('in: Packet Too Big, destination unreachable and time exceeded reach the workload as it sent the flow', async (t) => {
    const cases: [string, Buffer, number, number, Quote6][] = [
      ['Packet Too Big quoting TCP', datagram(tcpOut.data), 2, 0, { src: WL1, dst: OUT, nh: NH6.TCP, ports: [41000, 80] }],
      ['port unreachable quoting UDP', datagram(udpOut.data), 1, 4, { src: WL1, dst: OUT, nh: NH6.UDP, ports: [5353, 53] }],
      ['time exceeded quoting an echo request', datagram(echoOut.data), 3, 0, { src: WL1, dst: OUT, nh: NH6.ICMP6, ports: [7, 7] }],
    ];
    for (const [what, quoted, type, code, want] of cases) {
      const mtu = Buffer.alloc(4);
      mtu.writeUInt32BE(type === 2 ? 1280 : 0);
      const before = h.stats().rnat;
      const f = err6(ROUTER, NODE6, type, code, quoted, mtu);
      const r = h.run('in', f);
      t.same([r.retval, r.reason], [TC_OK, R.FORWARD], `${what}: passes`);
      const o = read6(r.data);
      t.same([o.src, o.dst, o.nh], [ROUTER, WL1, NH6.ICMP6], `${what}: outer destination is the workload, source kept`);
      t.same(quote6(r.data), want, `${what}: the quote is the workload's own packet`);
      t.ok(o.csumOk, `${what}: ICMPv6 checksum (pseudo-header and quote) valid`);
      t.same([r.data[54], r.data[55], r.data.readUInt32BE(58)], [type, code, type === 2 ? 1280 : 0], `${what}: type, code and MTU kept`);
      const rest = 14 + 40 + 8 + 40 + (want.nh === NH6.ICMP6 ? 6 : 4); // past the ports / echo id
      t.same(r.data.subarray(rest), f.subarray(rest), `${what}: the rest of the quote untouched`);
      t.equal(h.stats().rnat, before + 1n, `${what}: counted`);
    }
  });

  t.test('in: a quote with an extension header before TCP is walked to its ports', async (t) => {
    const q = datagram(eth6({ src: NODE6, dst: OUT, proto: NH6.TCP, exts: [ext6(NH6.DEST)] }, tcp({ sport: tp, dport: 80, flags: 'A' })));
    const r = h.run('in', err6(ROUTER, NODE6, 2, 0, q));
    const o = read6(r.data);
    const l4 = r.data.subarray(14 + 40 + 8 + 40 + 8); // past the 8-byte destination options
    t.same([r.reason, o.dst, o.csumOk, l4.readUInt16BE(0), l4.readUInt16BE(2)], [R.FORWARD, WL1, true, 41000, 80]);
  });

  t.test('in: a quote holding just the ports, ending the frame, is translated (nothing read past it)', async (t) => {
    const q = datagram(tcpOut.data).subarray(0, 44);
    const r = h.run('in', err6(ROUTER, NODE6, 1, 4, q));
    const o = read6(r.data);
    t.same([r.reason, o.dst, o.csumOk, r.data.length, r.data.readUInt16BE(14 + 40 + 8 + 40)], [R.FORWARD, WL1, true, 14 + 40 + 8 + 44, 41000]);
  });

  t.test('in: forged or unmatched errors are left to the node untouched', async (t) => {
    const tcpQ = datagram(tcpOut.data);
    const forged: [string, Buffer][] = [
      ['no mapping for the quoted port', datagram(tcp6(NODE6, OUT, tp + 1 > 29999 ? tp - 1 : tp + 1, 80))],
      ['another remote than the mapping\'s', datagram(tcp6(NODE6, 'fd00:198:18:3::21', tp, 80))],
      ['another protocol than the mapping\'s', datagram(udp6(NODE6, OUT, tp, 80))],
      ['quoting the outside\'s packet (reversed flow)', datagram(tcp6(OUT, NODE6, 80, tp, 'SA'))],
      ['quote truncated before the ports', tcpQ.subarray(0, 41)],
      ['quoting an echo reply with the mapped id', datagram(echo6(NODE6, OUT, 129, eid))],
      ['quoting a later fragment', datagram(eth6({ src: NODE6, dst: OUT, proto: NH6.TCP, exts: [frag6({ offset: 4, mf: false })] }, tcpQ.subarray(40)))],
    ];
    for (const [what, q] of forged) {
      const f = err6(ROUTER, NODE6, 1, 4, q);
      const r = h.run('in', f);
      t.ok(r.reason === R.FORWARD && r.data.equals(f), `${what}: untouched`);
    }
    const other = err6(ROUTER, 'fd00:198:18:1::99', 2, 0, tcpQ);
    t.ok(h.run('in', other).data.equals(other), 'an error addressed to another address than the node: untouched');
  });

  t.test('in: a mapping that is no longer live is not a flow to report on', async (t) => {
    const o = h.run('out', udp6(WL2, OUT, 6000, 53));
    const q = datagram(o.data);
    const far = process.hrtime.bigint() + 7200n * 1_000_000_000n;
    sweepNatEntries({ nat4: h.dp.maps.nat6, natq4: h.dp.maps.natq6 }, h.dp.nat.timeouts, far, undefined, NAT6);
    const f = err6(ROUTER, NODE6, 1, 4, q);
    t.ok(h.run('in', f).data.equals(f), 'after the sweep: untouched');
  });

  t.test('out: a workload\'s error about a packet it received on a translated flow leaves as the node\'s', async (t) => {
    const u = read6(h.run('out', udp6(WL1, OUT, 5400, 53)).data).ports[0];
    const delivered = h.run('in', udp6(OUT, NODE6, 53, u));
    t.same(read6(delivered.data).dst, WL1);
    const before = h.stats().snat;
    const f = err6(WL1, OUT, 1, 4, datagram(delivered.data));
    const r = h.run('out', f);
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD], 'port unreachable about the delivered datagram passes');
    const o = read6(r.data);
    t.same([o.src, o.dst], [NODE6, OUT], 'outer source is the node');
    t.same(quote6(r.data), { src: OUT, dst: NODE6, nh: NH6.UDP, ports: [53, u] }, 'the quote is the datagram as the outside sent it');
    t.ok(o.csumOk, 'ICMPv6 checksum valid');
    t.ok(!r.data.includes(ipv6Bytes(WL1)), 'the workload address appears nowhere in the frame');
    t.equal(h.stats().snat, before + 1n, 'counted');
    // A ping of the workload: its error about the echo reply it received, too.
    const id = read6(h.run('out', echo6(WL1, OUT, 128, 8)).data).ports[0];
    const pe = h.run('in', echo6(OUT, NODE6, 129, id));
    t.same(read6(pe.data).dst, WL1);
    const re = h.run('out', err6(WL1, OUT, 1, 4, datagram(pe.data)));
    t.same([re.reason, quote6(re.data).ports, read6(re.data).src, read6(re.data).csumOk], [R.FORWARD, [id, id], NODE6, true], 'quoted echo id back to the mapped one');
  });

  t.test('out: errors that cannot be translated like their flow are refused', async (t) => {
    const u = read6(h.run('out', udp6(WL1, OUT, 5401, 53)).data).ports[0];
    const delivered = datagram(h.run('in', udp6(OUT, NODE6, 53, u)).data);
    const refused: [string, Buffer][] = [
      ['not addressed to the quoted datagram\'s source', err6(WL1, 'fd00:198:18:3::21', 1, 4, delivered)],
      ['quoting a flow with no mapping', err6(WL1, OUT, 1, 4, datagram(udp6(OUT, WL1, 53, 5999)))],
      ['quoting another workload\'s flow', err6(WL2, OUT, 1, 4, delivered)],
      ['quote truncated before the ports', err6(WL1, OUT, 1, 4, delivered.subarray(0, 42))],
      ['an ICMPv6 message that is not an error (echo reply)', echo6(WL1, OUT, 129, 99)],
    ];
    for (const [what, f] of refused) {
      const r = h.run('out', f);
      t.same([r.retval, r.reason], [TC_SHOT, R.NAT6_ICMP], what);
    }
  });
});

t.test('candidates a node socket owns are skipped (IPv6 listener and bound UDP socket)', async (t) => {
  const ns = await topo.addNetns('socks');
  await ns.sh(`ip link set lo up && ip -6 addr add ${NODE6}/128 dev lo nodad`);
  const py = new PySockets(ns);
  t.teardown(() => py.close());
  await py.run(`
l = socket.socket(socket.AF_INET6); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('::', 21500)); l.listen(1)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(('::', 21501))
_ = 1`);
  const h = await setup('nat66sock', { portMin: 21500, portMax: 21502, retries: 8 });
  t.teardown(() => h.close());
  h.netns = ns.path;
  const before = h.stats().natHostSock;
  const tp = read6(h.run('out', tcp6(WL1, OUT, 21500, 80)).data).ports[0];
  t.ok(tp === 21501 || tp === 21502, `TCP: the listener's port 21500 is not taken (got ${tp})`);
  const up = read6(h.run('out', udp6(WL1, OUT, 21501, 53)).data).ports[0];
  t.ok(up === 21500 || up === 21502, `UDP: the bound socket's port 21501 is not taken (got ${up})`);
  t.ok(h.stats().natHostSock >= before + 2n, 'skips counted');
  t.equal(read6(h.run('in', udp6(OUT, NODE6, 53, up)).data).dst, WL1, 'reply translated while no node socket holds its tuple');
  await py.run(`v = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); v.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); v.bind(('::', ${up})); _ = 1`);
  const taken = udp6(OUT, NODE6, 53, up);
  t.ok(h.run('in', taken).data.equals(taken), 'once a node socket is bound there, the datagram is left to it');
  const err = err6(ROUTER, NODE6, 2, 0, datagram(udp6(NODE6, OUT, up, 53)));
  const hs = h.stats().natHostSock;
  t.ok(h.run('in', err).data.equals(err), 'and so is a Packet Too Big quoting that tuple (never sent to the workload)');
  t.equal(h.stats().natHostSock, hs + 1n, 'counted');
  // The node's own packet from a range port takes the tuple back from a mapping.
  const tp2 = read6(h.run('out', tcp6(WL2, OUT, 21502, 443)).data).ports[0];
  h.run('out', tcp6(NODE6, OUT, tp2, 443));
  const rv = tcp6(OUT, NODE6, 443, tp2, 'A');
  t.ok(h.run('in', rv).data.equals(rv), 'after the node used the tuple, replies are the node\'s');
});

t.test('port exhaustion is a counted drop; existing flows keep working', async (t) => {
  const h = await setup('nat66full', { portMin: 30000, portMax: 30001, retries: 8 });
  t.teardown(() => h.close());
  const srcs = ['fd00:10::1', 'fd00:10::2', 'fd00:10::3'];
  const results = srcs.map((src) => h.run('out', tcp6(src, OUT, 1000, 443)));
  t.same(results.slice(0, 2).map((r) => r.reason), [R.FORWARD, R.FORWARD]);
  t.same(results.slice(0, 2).map((r) => read6(r.data).ports[0]).sort(), [30000, 30001], 'two distinct ports from the range');
  t.same([results[2]!.retval, results[2]!.reason], [TC_SHOT, R.NAT_NO_PORT], 'third flow: no port left');
  t.notOk(readNat6Entries(h.dp.maps.nat6).some((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === 'fd00:10::3'), 'no half mapping left');
  t.equal(h.run('out', tcp6(srcs[1]!, OUT, 1000, 443, 'A')).reason, R.FORWARD, 'an existing flow still passes');
  t.equal(h.run('out', tcp6(srcs[0]!, 'fd00:198:18:3::21', 1000, 443)).reason, R.FORWARD, 'another destination has its own port space');
});

t.test('per-workload quota and a full table refuse new flows (fairness); established flows keep working', async (t) => {
  const h = await setup('nat66quota', { quota: 2, maxEntries: 8 });
  t.teardown(() => h.close());
  const out = (src: string, dport: number, flags = 'S') => h.run('out', tcp6(src, OUT, 21000, dport, flags));
  t.same([out(WL1, 1).reason, out(WL1, 2).reason], [R.FORWARD, R.FORWARD], 'two flows within the quota');
  t.same([out(WL1, 3).retval, out(WL1, 3).reason], [TC_SHOT, R.NAT_QUOTA], 'the third is refused: nat_quota');
  t.equal(out(WL1, 1, 'A').reason, R.FORWARD, 'an established flow of the same workload still passes');
  t.same([out(WL2, 1).reason, out(WL2, 2).reason], [R.FORWARD, R.FORWARD], 'another workload has its own quota');
  t.same([out('fd00:10::7', 1).retval, out('fd00:10::7', 1).reason], [TC_SHOT, R.NAT_TABLE_FULL], 'full table: refused, nothing evicted');
  for (const [src, dport] of [[WL1, 1], [WL1, 2], [WL2, 1], [WL2, 2]] as const) {
    t.equal(out(src, dport, 'A').reason, R.FORWARD, `established ${src} -> :${dport} keeps its mapping`);
  }
  t.equal(readNat6Entries(h.dp.maps.nat6).length, 8);
  t.same(readQuota(h.dp.maps.natq6).map((r) => [r.addr, r.live]).sort(), [[WL1, 2], [WL2, 2], ['fd00:10::7', 0]]);
  t.equal(readNatQuota(h.dp.maps.natq4).length, 0, 'the IPv4 counts untouched');

  await t.test('the sweep deletes expired mappings and credits the workload: a new flow fits again', async (t) => {
    const far = process.hrtime.bigint() + 7200n * 1_000_000_000n; // past every timeout
    const r = sweepNatEntries({ nat4: h.dp.maps.nat6, natq4: h.dp.maps.natq6 }, h.dp.nat.timeouts, far, undefined, NAT6);
    t.same([r.deleted, r.remaining], [8, 0]);
    t.same([...r.released].sort(), [[WL1, 2], [WL2, 2]]);
    t.same(readQuota(h.dp.maps.natq6).map((q) => [q.addr, q.live]).sort(), [[WL1, 0], [WL2, 0], ['fd00:10::7', 0]]);
    t.equal(out(WL1, 3).reason, R.FORWARD, 'within its quota again');
    const live = sweepNatEntries({ nat4: h.dp.maps.nat6, natq4: h.dp.maps.natq6 }, h.dp.nat.timeouts, process.hrtime.bigint(), undefined, NAT6);
    t.same([live.deleted, live.remaining], [0, 2], 'a live mapping stays');
  });
});

