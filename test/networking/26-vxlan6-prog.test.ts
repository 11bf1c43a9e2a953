// VXLAN over IPv6 in the uplink programs with BPF_PROG_TEST_RUN (the real programs, crafted
// frames, output bytes checked): the outer IPv6/UDP/VXLAN headers tortie_uplink_out writes for a
// kernel-routed IPv6 packet whose tortie_rt6_v1 route says ENCAP|VXLAN (outer UDP checksum valid
// over the whole datagram for TCP, UDP and ICMPv6 inner packets, 0 for an inner packet with
// extension headers), what tortie_uplink_in decapsulates (exactly the inner datagram), one
// node's output decapsulated by another node's program, and every malformed, foreign or spoofed
// frame dropped with its reason; and what IPv4 VXLAN does with its outer UDP checksum (sends 0,
// does not verify a non-zero one). Real traffic between namespaces: 25-vxlan6.test.ts.
import t from 'tap';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { RT_F, vxlan6Mac } from '../../src/dataplane/bpf/net-codecs';
import { eth, eth6, ext6, fillL4Checksum6, icmp6, inetChecksum, ipv4, ipv6, ipv6Bytes, tcp, udp, vxlanHeader, ETH_P, NH6 } from '../../src/dataplane/bpf/packet';
import { UplinkHarness, TC_OK, TC_SHOT } from '../../src/testbed/uplink-harness';
import { tcpFrame, ETH_HLEN } from '../../src/testbed/fixtures';

const NODE_A = 'fd00:198:18:1::10'; // this node
const NODE_B = 'fd00:198:18:2::b';
const WL_A = 'fd00:10:1::a';
const WL_B = 'fd00:10:2::b';
const MAC_A = vxlan6Mac(NODE_A);
const MAC_B = vxlan6Mac(NODE_B);
const NEXT_HOP_MACS = { dst: '02:00:00:00:00:0b', src: '02:00:00:00:00:0a' };

function mac(b: Buffer, off: number): string {
  return [...b.subarray(off, off + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** An inner IPv6 datagram with a valid transport checksum. */
function inner6(o: { src?: string; dst?: string; proto?: number; payload?: Buffer; exts?: Parameters<typeof ipv6>[0]['exts'] } = {}): Buffer {
  const proto = o.proto ?? NH6.TCP;
  const payload = o.payload ?? Buffer.from('vxlan over ipv6');
  const l4 = proto === NH6.TCP ? tcp({ sport: 40000, dport: 80, flags: 'A', payload })
    : proto === NH6.UDP ? udp({ sport: 40000, dport: 53, payload })
      : icmp6({ type: 128, id: 7, seq: 1, payload });
  const d = ipv6({ src: o.src ?? WL_A, dst: o.dst ?? WL_B, proto, exts: o.exts }, l4);
  return o.exts ? d : fillL4Checksum6(d);
}

/** The outer UDP checksum over the IPv6 pseudo-header and the whole datagram: 0 when valid. */
function outerUdpSum(frame: Buffer): number {
  const ip = frame.subarray(ETH_HLEN);
  const u = ip.subarray(40, 40 + ip.readUInt16BE(4));
  const ph = Buffer.alloc(40);
  ip.copy(ph, 0, 8, 40);
  ph.writeUInt32BE(u.length, 32);
  ph[39] = NH6.UDP;
  return inetChecksum(Buffer.concat([ph, u]));
}

/** VXLAN over IPv6 from `src` (node B) to node A around an inner IPv6 datagram. */
function vxlan6Frame(inner: Buffer, o: { src?: string; dst?: string; vni?: number; flags?: number; reserved?: number; dmac?: string; ethertype?: number; udpLen?: number; dport?: number; check?: number | 'valid' } = {}): Buffer {
  const payload = Buffer.concat([vxlanHeader({ vni: o.vni ?? 4096, flags: o.flags, reserved: o.reserved }), eth({ dst: o.dmac ?? MAC_A, src: MAC_B, ethertype: o.ethertype ?? ETH_P.IPV6 }, inner)]);
  const u = udp({ sport: 50000, dport: o.dport ?? 4789, payload });
  if (o.udpLen !== undefined) u.writeUInt16BE(o.udpLen, 4);
  const frame = eth6({ src: o.src ?? NODE_B, dst: o.dst ?? NODE_A, proto: NH6.UDP }, u);
  if (o.check === 'valid') {
    const sum = outerUdpSum(frame);
    frame.writeUInt16BE(sum === 0 ? 0xffff : sum, ETH_HLEN + 40 + 6);
  } else if (o.check !== undefined) frame.writeUInt16BE(o.check, ETH_HLEN + 40 + 6);
  return frame;
}

t.test('VXLAN over IPv6 in the uplink programs', async (t) => {
  const h = await UplinkHarness.create('vx6prog');
  t.teardown(() => h.close());
  h.config('198.18.1.10');
  h.config6(NODE_A);
  h.node6(NODE_A);
  h.node6(NODE_B);
  h.vxlan(4096);
  h.route6(`${WL_B}/128`, NODE_B, RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN);

  t.test('egress: the outer headers of a kernel-routed IPv6 packet', async (t) => {
    const inner = inner6();
    const tc = Buffer.from(inner);
    tc.writeUInt32BE((0x6b800000 | (tc.readUInt32BE(0) & 0xfffff)) >>> 0, 0); // traffic class 0xb8
    fillL4Checksum6(tc);
    const frame = eth({ ...NEXT_HOP_MACS, ethertype: ETH_P.IPV6 }, tc);
    const before = h.vx6Stats().encapUplink;
    const r = h.run('out', Buffer.concat([frame, Buffer.alloc(5, 0xa5)])); // trailing bytes are not tunnel payload
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
    t.equal(h.vx6Stats().encapUplink, before + 1n, 'counted');
    const d = r.data;
    t.equal(d.length, frame.length + 70, 'exactly 70 bytes added (outer IPv6 40, UDP 8, VXLAN 8, inner Ethernet 14)');
    t.same(d.subarray(0, 12), frame.subarray(0, 12), 'outer Ethernet addresses: the kernel\'s next hop, kept');
    t.equal(d.readUInt16BE(12), ETH_P.IPV6);
    const ip = d.subarray(14, 54);
    t.equal(ip[0]! >> 4, 6, 'outer IPv6');
    t.equal((ip.readUInt32BE(0) >>> 20) & 0xff, 0xb8, 'traffic class copied from the inner packet');
    t.equal(ip.readUInt16BE(4), tc.length + 30, 'payload length: inner + 30');
    t.equal(ip[6], NH6.UDP, 'next header UDP (no extension headers)');
    t.equal(ip[7], 64, 'hop limit 64');
    t.same(ip.subarray(8, 24), ipv6Bytes(NODE_A), 'source: this node\'s IPv6 address');
    t.same(ip.subarray(24, 40), ipv6Bytes(NODE_B), 'destination: node B\'s IPv6 address');
    const sport = d.readUInt16BE(54);
    t.ok(sport >= 32768 && sport < 61000, `UDP source port ${sport} in 32768..60999`);
    t.equal(d.readUInt16BE(56), 4789, 'UDP destination 4789');
    t.equal(d.readUInt16BE(58), tc.length + 30, 'UDP length');
    t.not(d.readUInt16BE(60), 0, 'UDP checksum present (RFC 8200)');
    t.equal(outerUdpSum(d), 0, 'UDP checksum valid over the pseudo-header and the whole datagram');
    t.same([...d.subarray(62, 70)], [0x08, 0, 0, 0, 0x00, 0x10, 0x00, 0x00], 'flags I, VNI 4096');
    t.equal(mac(d, 70), MAC_B, 'inner destination: node B\'s IPv6 VXLAN MAC');
    t.equal(mac(d, 76), MAC_A, 'inner source: this node\'s');
    t.equal(d.readUInt16BE(82), ETH_P.IPV6);
    t.same(d.subarray(84), tc, 'the inner datagram, unchanged, nothing after it');

    t.equal(h.run('out', frame).data.readUInt16BE(54), sport, 'the same flow gets the same source port');
    const ports = new Set<number>();
    for (let p = 41000; p < 41016; p++) {
      const f = eth({ ...NEXT_HOP_MACS, ethertype: ETH_P.IPV6 }, fillL4Checksum6(ipv6({ src: WL_A, dst: WL_B, proto: NH6.TCP }, tcp({ sport: p, dport: 80, flags: 'A' }))));
      ports.add(h.run('out', f).data.readUInt16BE(54));
    }
    t.ok(ports.size >= 8, `16 flows over ${ports.size} source ports (flow hash)`);
  });

  t.test('egress: the outer checksum for UDP and ICMPv6 too, 0 behind extension headers', async (t) => {
    for (const proto of [NH6.UDP, NH6.ICMP6]) {
      const d = h.run('out', eth({ ...NEXT_HOP_MACS, ethertype: ETH_P.IPV6 }, inner6({ proto }))).data;
      t.equal(outerUdpSum(d), 0, `inner next header ${proto}: outer UDP checksum valid`);
    }
    const withExt = inner6({ proto: NH6.UDP, exts: [ext6(NH6.DEST)] });
    const d = h.run('out', eth({ ...NEXT_HOP_MACS, ethertype: ETH_P.IPV6 }, withExt)).data;
    t.equal(d.readUInt16BE(60), 0, 'inner destination options: UDP checksum 0 (RFC 6936 tunnel exception)');
    t.same(d.subarray(84), withExt, 'still encapsulated');
  });

  t.test('egress: what is not a VXLAN route is left alone; without VXLAN parameters dropped', async (t) => {
    h.route6('fd00:10:3::/122', NODE_B, RT_F.WORKLOAD); // native route
    for (const dst of ['fd00:10:3::5', 'fd00:99::1']) {
      const f = eth({ ...NEXT_HOP_MACS, ethertype: ETH_P.IPV6 }, inner6({ dst }));
      const r = h.run('out', f);
      t.same([r.reason, r.data], [R.FORWARD, f], `${dst}: untouched`);
    }
    const enc = h.run('out', eth({ ...NEXT_HOP_MACS, ethertype: ETH_P.IPV6 }, inner6())).data;
    t.same(h.run('out', enc).data, enc, 'our own VXLAN packet leaving again: untouched (no route for a node address)');
    h.vxlan(0);
    t.teardown(() => h.vxlan(4096));
    const r = h.run('out', eth({ ...NEXT_HOP_MACS, ethertype: ETH_P.IPV6 }, inner6()));
    t.same([r.retval, r.reason], [TC_SHOT, R.ENCAP_STORE], 'VXLAN route without VXLAN parameters: dropped, not sent bare');
  });

  t.test('ingress: decapsulated to exactly the inner datagram', async (t) => {
    const inner = inner6({ src: WL_B, dst: WL_A });
    for (const [what, frame] of [
      ['checksum 0', vxlan6Frame(inner)],
      ['valid checksum', vxlan6Frame(inner, { check: 'valid' })],
      ['6 bytes of padding after the datagram', Buffer.concat([vxlan6Frame(inner, { check: 'valid' }), Buffer.alloc(6, 0xa5)])],
    ] as const) {
      const before = h.vx6Stats().decap;
      const r = h.run('in', frame);
      t.same([r.retval, r.reason], [TC_OK, R.FORWARD], `${what}: decapsulated`);
      t.equal(h.vx6Stats().decap, before + 1n);
      t.same(r.data.subarray(0, 14), frame.subarray(0, 14), 'outer Ethernet header kept');
      t.same(r.data.subarray(ETH_HLEN), inner, 'then the inner datagram, nothing else');
    }
    const host = inner6({ src: NODE_B, dst: WL_A, proto: NH6.ICMP6 });
    t.same(h.run('in', vxlan6Frame(host, { check: 'valid' })).data.subarray(ETH_HLEN), host, 'inner source the sending node itself: delivered');
    const ext = inner6({ src: WL_B, dst: WL_A, proto: NH6.UDP, exts: [ext6(NH6.DEST)] });
    t.same(h.run('in', vxlan6Frame(ext, { check: 0x1234 })).data.subarray(ETH_HLEN), ext,
      'inner extension headers: a non-zero checksum is accepted unverified (the identity needs the transport header)');
  });

  t.test('ingress: malformed, foreign and spoofed VXLAN dropped with its reason', async (t) => {
    const inner = inner6({ src: WL_B, dst: WL_A });
    const badLen = Buffer.from(inner);
    badLen.writeUInt16BE(badLen.readUInt16BE(4) + 4, 4);
    const v4 = tcpFrame({ src: '192.168.2.10', dst: '192.168.1.10', flags: 'A' }).subarray(ETH_HLEN);
    const wrongSum = vxlan6Frame(inner, { check: 'valid' });
    wrongSum.writeUInt16BE(wrongSum.readUInt16BE(ETH_HLEN + 46) ^ 0x0101, ETH_HLEN + 46);
    h.route6('fd00:10:3::/122', 'fd00:198:18:2::99', RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN);
    const cases: [string, Buffer, number][] = [
      ['outer source not a node', vxlan6Frame(inner, { src: 'fd00:198:18:3::10' }), R.VXLAN_UNKNOWN_SRC],
      ['UDP length longer than the payload', vxlan6Frame(inner, { udpLen: 400 }), R.VXLAN_BAD_HDR],
      ['UDP length shorter than the payload', vxlan6Frame(inner, { udpLen: 60 }), R.VXLAN_BAD_HDR],
      ['flags without I', vxlan6Frame(inner, { flags: 0 }), R.VXLAN_BAD_HDR],
      ['flags with a bit besides I', vxlan6Frame(inner, { flags: 0x0c }), R.VXLAN_BAD_HDR],
      ['reserved byte after the VNI set', vxlan6Frame(inner, { reserved: 1 }), R.VXLAN_BAD_HDR],
      ['another VNI', vxlan6Frame(inner, { vni: 4097 }), R.VXLAN_VNI],
      ['inner Ethernet to another MAC', vxlan6Frame(inner, { dmac: '02:00:00:00:00:01' }), R.VXLAN_BAD_INNER],
      ['inner Ethernet to node A\'s IPv4 VXLAN MAC', vxlan6Frame(inner, { dmac: '0e:74:c6:12:01:0a' }), R.VXLAN_BAD_INNER],
      ['inner Ethernet type IPv4', vxlan6Frame(v4, { ethertype: ETH_P.IPV4 }), R.VXLAN_BAD_INNER],
      ['inner IPv6 header cut short', vxlan6Frame(inner.subarray(0, 30)), R.VXLAN_BAD_INNER],
      ['inner version 4 in an IPv6 frame', vxlan6Frame(v4), R.VXLAN_BAD_INNER],
      ['inner payload length not the payload', vxlan6Frame(badLen), R.VXLAN_BAD_INNER],
      ['inner source: another node\'s workload', vxlan6Frame(inner6({ src: 'fd00:10:3::7', dst: WL_A })), R.VXLAN_INNER_SRC],
      ['inner source: this node\'s own workload', vxlan6Frame(inner6({ src: WL_A, dst: WL_A })), R.VXLAN_INNER_SRC],
      ['inner source: an outside address', vxlan6Frame(inner6({ src: 'fd00:99::1', dst: WL_A })), R.VXLAN_INNER_SRC],
      ['inner source: this node', vxlan6Frame(inner6({ src: NODE_A, dst: WL_A })), R.VXLAN_INNER_SRC],
      ['a non-zero outer UDP checksum that is wrong', wrongSum, R.VXLAN6_CSUM],
    ];
    for (const [what, frame, reason] of cases) {
      const d0 = h.vx6Stats().decap;
      const r = h.run('in', frame);
      t.same([r.retval, r.reason], [TC_SHOT, reason], `${what}: ${reason}`);
      t.equal(h.vx6Stats().decap, d0, `${what}: nothing decapsulated`);
    }
  });

  t.test('VXLAN off, another port, another destination, outer extension headers: left to the kernel', async (t) => {
    const inner = inner6({ src: WL_B, dst: WL_A });
    const frames: [string, Buffer][] = [
      ['UDP to another port', vxlan6Frame(inner, { dport: 8472 })],
      ['UDP to another address of this host', vxlan6Frame(inner, { dst: 'fd00:198:18:1::11' })],
      ['outer destination options header', eth6({ src: NODE_B, dst: NODE_A, proto: NH6.UDP, exts: [ext6(NH6.DEST)] },
        udp({ sport: 50000, dport: 4789, payload: Buffer.concat([vxlanHeader({ vni: 4096 }), eth({ dst: MAC_A, src: MAC_B, ethertype: ETH_P.IPV6 }, inner)]) }))],
    ];
    for (const [what, frame] of frames) {
      const r = h.run('in', frame);
      t.same([r.reason, r.data], [R.FORWARD, frame], `${what}: untouched`);
    }
    h.vxlan(0);
    t.teardown(() => h.vxlan(4096));
    const f = vxlan6Frame(inner);
    t.same(h.run('in', f).data, f, 'VXLAN off (vni 0): UDP to 4789 untouched');
  });
});

t.test('one node encapsulates, the other decapsulates: the inner packet arrives as sent', async (t) => {
  const a = await UplinkHarness.create('vx6a');
  t.teardown(() => a.close());
  const b = await UplinkHarness.create('vx6b');
  t.teardown(() => b.close());
  for (const [h, me] of [[a, NODE_A], [b, NODE_B]] as const) {
    h.config('198.18.1.10');
    h.config6(me);
    h.node6(NODE_A);
    h.node6(NODE_B);
    h.vxlan(77, 8472);
  }
  a.route6(`${WL_B}/128`, NODE_B, RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN);
  b.route6(`${WL_A}/128`, NODE_A, RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN);
  for (const proto of [NH6.TCP, NH6.UDP, NH6.ICMP6]) {
    const inner = inner6({ proto, payload: Buffer.alloc(1200, proto) });
    const out = a.run('out', eth({ ...NEXT_HOP_MACS, ethertype: ETH_P.IPV6 }, inner));
    t.equal(out.data.readUInt32BE(62 + 4) >>> 8, 77, 'VNI 77');
    t.equal(out.data.readUInt16BE(56), 8472, 'port 8472');
    const r = b.run('in', out.data);
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD], `next header ${proto}: node B decapsulates node A's packet (checksum verified)`);
    t.same(r.data.subarray(ETH_HLEN), inner, 'the inner datagram as node A\'s workload sent it');
  }
});

t.test('IPv4 VXLAN: the outer UDP checksum is not verified (stated in docs/security.md)', async (t) => {
  const h = await UplinkHarness.create('vx4csum');
  t.teardown(() => h.close());
  h.config('198.18.1.10');
  h.node('198.18.2.10');
  h.vxlan(4096);
  h.route('192.168.2.10/32', '198.18.2.10', RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN);
  const inner = tcpFrame({ src: '192.168.2.10', dst: '192.168.1.10', flags: 'A' }).subarray(ETH_HLEN);
  const out = h.run('out', tcpFrame({ src: '192.168.1.10', dst: '192.168.2.10', flags: 'A' }));
  t.equal(out.data.readUInt16BE(ETH_HLEN + 20 + 6), 0, 'sent with checksum 0 (RFC 7348 over IPv4)');
  const frame = eth({}, ipv4({ src: '198.18.2.10', dst: '198.18.1.10', proto: 17 },
    udp({ sport: 50000, dport: 4789, payload: Buffer.concat([vxlanHeader({ vni: 4096 }), eth({ dst: '0e:74:c6:12:01:0a', src: '0e:74:c6:12:02:0a' }, inner)]) })));
  frame.writeUInt16BE(0x1234, ETH_HLEN + 20 + 6); // a non-zero checksum that is wrong
  const r = h.run('in', frame);
  t.same([r.retval, r.reason], [TC_OK, R.FORWARD], 'a wrong non-zero outer checksum is accepted over IPv4');
  t.same(r.data.subarray(ETH_HLEN), inner, 'and decapsulated');
});
