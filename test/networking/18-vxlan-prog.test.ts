// VXLAN in the uplink programs with BPF_PROG_TEST_RUN (the real programs, crafted frames, output
// bytes checked): the outer headers tortie_uplink_out writes (IPv4 checksum, UDP 4789 with
// checksum 0 and a flow-hash source port, flags I, VNI, the nodes' derived inner MACs, trailing
// bytes trimmed), what tortie_uplink_in decapsulates (exactly the inner datagram, padding
// trimmed) and every malformed or foreign frame it drops with its reason; the XDP prefilter
// judges VXLAN by its inner addresses as it does IPIP. Real traffic between namespaces:
// 17-vxlan.test.ts.
import t from 'tap';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { NET_MAP, NETCFG_KEY, RT_F, vxcfgCodec } from '../../src/dataplane/bpf/net-codecs';
import { loadPrefilter } from '../../src/dataplane/bpf/loader';
import { encodePrefilter } from '../../src/dataplane/bpf/encode';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { XdpAction } from '../../src/dataplane/native';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { eth, inetChecksum, ipv4, udp, vxlanHeader, ETH_P, PROTO } from '../../src/dataplane/bpf/packet';
import { UplinkHarness, TC_OK } from '../../src/testbed/uplink-harness';
import { tcpFrame, udpFrame, ETH_HLEN } from '../../src/testbed/fixtures';

const NODE_A = '198.18.1.10'; // this node
const NODE_B = '198.18.2.10';
const WL_A = '192.168.1.10';
const WL_B = '192.168.2.10';
const MAC_A = '0e:74:c6:12:01:0a';
const MAC_B = '0e:74:c6:12:02:0a';

function mac(b: Buffer, off: number): string {
  return [...b.subarray(off, off + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** VXLAN from `src` to node A, around an inner IPv4 datagram. */
function vxlanFrame(inner: Buffer, o: { src?: string; vni?: number; flags?: number; reserved?: number; dmac?: string; ethertype?: number; udpLen?: number; mf?: boolean } = {}): Buffer {
  const payload = Buffer.concat([vxlanHeader({ vni: o.vni ?? 4096, flags: o.flags, reserved: o.reserved }), eth({ dst: o.dmac ?? MAC_A, src: MAC_B, ethertype: o.ethertype }, inner)]);
  const u = udp({ sport: 50000, dport: 4789, payload });
  if (o.udpLen !== undefined) u.writeUInt16BE(o.udpLen, 4);
  return eth({}, ipv4({ src: o.src ?? NODE_B, dst: NODE_A, proto: PROTO.UDP, mf: o.mf }, u));
}

const innerFromB = (src = WL_B) => tcpFrame({ src, dst: WL_A, sport: 80, dport: 40000, flags: 'A', payload: Buffer.from('vxlan inner') }).subarray(ETH_HLEN);

t.test('VXLAN in the uplink programs', async (t) => {
  const h = await UplinkHarness.create('vxlanprog');
  t.teardown(() => h.close());
  h.config(NODE_A);
  h.node(NODE_A);
  h.node(NODE_B);
  h.vxlan(4096);
  h.route(`${WL_B}/32`, NODE_B, RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN);

  t.test('egress: the outer headers of a kernel-routed packet', async (t) => {
    const frame = tcpFrame({ src: WL_A, dst: WL_B, sport: 40000, dport: 80, flags: 'A', df: true, payload: Buffer.from('hello') }, { dst: '02:00:00:00:00:0b', src: '02:00:00:00:00:0a' });
    const inner = frame.subarray(ETH_HLEN);
    const before = h.vxStats().encapUplink;
    const r = h.run('out', Buffer.concat([frame, Buffer.alloc(5, 0xa5)])); // trailing bytes are not tunnel payload
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
    t.equal(h.vxStats().encapUplink, before + 1n, 'counted');
    const d = r.data;
    t.same(d.subarray(0, 12), frame.subarray(0, 12), 'outer Ethernet addresses: the kernel\'s next hop, kept');
    t.equal(d.readUInt16BE(12), ETH_P.IPV4);
    const ip = d.subarray(14, 34);
    t.equal(ip[0], 0x45);
    t.equal(ip.readUInt16BE(2), inner.length + 50, 'outer total length: inner + 50');
    t.equal(ip.readUInt16BE(6) & 0x4000, 0x4000, 'DF copied from the inner header');
    t.equal(ip[8], 64, 'TTL 64');
    t.equal(ip[9], PROTO.UDP);
    t.equal(inetChecksum(ip), 0, 'outer IPv4 checksum valid');
    t.same([...ip.subarray(12, 16)].join('.'), NODE_A);
    t.same([...ip.subarray(16, 20)].join('.'), NODE_B);
    const sport = d.readUInt16BE(34);
    t.ok(sport >= 32768 && sport < 61000, `UDP source port ${sport} in 32768..60999`);
    t.equal(d.readUInt16BE(36), 4789, 'UDP destination 4789');
    t.equal(d.readUInt16BE(38), inner.length + 30, 'UDP length');
    t.equal(d.readUInt16BE(40), 0, 'UDP checksum 0 (RFC 7348 over IPv4)');
    t.same([...d.subarray(42, 50)], [0x08, 0, 0, 0, 0x00, 0x10, 0x00, 0x00], 'flags I, VNI 4096');
    t.equal(mac(d, 50), MAC_B, 'inner destination: node B\'s VXLAN MAC');
    t.equal(mac(d, 56), MAC_A, 'inner source: this node\'s');
    t.equal(d.readUInt16BE(62), ETH_P.IPV4);
    t.same(d.subarray(64), inner, 'the inner datagram, unchanged, nothing after it');

    const again = h.run('out', frame).data;
    t.equal(again.readUInt16BE(34), sport, 'the same flow gets the same source port');
    const ports = new Set<number>();
    for (let p = 41000; p < 41016; p++) ports.add(h.run('out', tcpFrame({ src: WL_A, dst: WL_B, sport: p, dport: 80, flags: 'A' })).data.readUInt16BE(34));
    t.ok(ports.size >= 8, `16 flows over ${ports.size} source ports (flow hash)`);

    const out = h.run('out', d);
    t.same([out.retval, out.reason], [TC_OK, R.FORWARD]);
    t.same(out.data, d, 'our own VXLAN packet leaving again: untouched, not encapsulated twice');
  });

  t.test('ingress: decapsulated to exactly the inner datagram', async (t) => {
    const inner = innerFromB();
    for (const trailing of [0, 6]) {
      const frame = Buffer.concat([vxlanFrame(inner), Buffer.alloc(trailing, 0xa5)]);
      const before = h.vxStats().decap;
      const r = h.run('in', frame);
      t.same([r.retval, r.reason], [TC_OK, R.FORWARD], `decapsulated (${trailing} bytes after the datagram)`);
      t.equal(h.vxStats().decap, before + 1n);
      t.same(r.data.subarray(0, 14), frame.subarray(0, 14), 'outer Ethernet header kept');
      t.same(r.data.subarray(ETH_HLEN), inner, 'then the inner datagram, nothing else');
    }
    const host = innerFromB(NODE_B);
    t.same(h.run('in', vxlanFrame(host)).data.subarray(ETH_HLEN), host, 'inner source the sending node itself: delivered');
  });

  t.test('ingress: malformed, foreign and spoofed VXLAN dropped with its reason', async (t) => {
    const inner = innerFromB();
    const short = inner.subarray(0, 10);
    const badLen = Buffer.from(inner);
    badLen.writeUInt16BE(inner.length + 4, 2);
    const cases: [string, Buffer, number][] = [
      ['outer source not a node', vxlanFrame(inner, { src: '198.18.3.10' }), R.VXLAN_UNKNOWN_SRC],
      ['outer fragment', vxlanFrame(inner, { mf: true }), R.VXLAN_BAD_HDR],
      ['UDP length longer than the datagram', vxlanFrame(inner, { udpLen: 200 }), R.VXLAN_BAD_HDR],
      ['UDP length shorter than the datagram', vxlanFrame(inner, { udpLen: 40 }), R.VXLAN_BAD_HDR],
      ['flags without I', vxlanFrame(inner, { flags: 0 }), R.VXLAN_BAD_HDR],
      ['flags with a bit besides I', vxlanFrame(inner, { flags: 0x0c }), R.VXLAN_BAD_HDR],
      ['reserved byte after the VNI set', vxlanFrame(inner, { reserved: 1 }), R.VXLAN_BAD_HDR],
      ['another VNI', vxlanFrame(inner, { vni: 4097 }), R.VXLAN_VNI],
      ['inner Ethernet to another MAC', vxlanFrame(inner, { dmac: '02:00:00:00:00:01' }), R.VXLAN_BAD_INNER],
      ['inner Ethernet type IPv6', vxlanFrame(inner, { ethertype: ETH_P.IPV6 }), R.VXLAN_BAD_INNER],
      ['inner IPv4 header cut short', vxlanFrame(short), R.VXLAN_BAD_INNER],
      ['inner total length not the payload', vxlanFrame(badLen), R.VXLAN_BAD_INNER],
      ['inner source: another node\'s workload', vxlanFrame(innerFromB('192.168.3.7')), R.VXLAN_INNER_SRC],
      ['inner source: this node\'s own workload', vxlanFrame(innerFromB(WL_A)), R.VXLAN_INNER_SRC],
      ['inner source: an outside address', vxlanFrame(innerFromB('198.18.3.10')), R.VXLAN_INNER_SRC],
    ];
    h.route('192.168.3.7/32', '198.18.2.99', RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN);
    for (const [what, frame, reason] of cases) {
      const d0 = h.vxStats().decap;
      const r = h.run('in', frame);
      t.equal(r.reason, reason, `${what}: ${reason}`);
      t.equal(h.vxStats().decap, d0, `${what}: nothing decapsulated`);
    }
  });

  t.test('VXLAN off (vni 0), another port, another destination: UDP is left alone', async (t) => {
    const frame = vxlanFrame(innerFromB());
    h.vxlan(0);
    let r = h.run('in', frame);
    t.same([r.reason, r.data], [R.FORWARD, frame], 'off: untouched');
    h.vxlan(4096, 8472);
    r = h.run('in', frame);
    t.same([r.reason, r.data], [R.FORWARD, frame], 'port 8472 configured: UDP to 4789 untouched');
    const other = udpFrame({ src: NODE_B, dst: WL_A, sport: 50000, dport: 8472 });
    t.equal(h.run('in', other).reason, R.FORWARD, 'UDP to the port but another destination: the kernel\'s');
    h.vxlan(4096);
  });

  t.test('another VNI and port (vxlanVNI, vxlanPort): used on both ends', async (t) => {
    h.vxlan(77, 8472);
    t.teardown(() => h.vxlan(4096));
    const d = h.run('out', tcpFrame({ src: WL_A, dst: WL_B, sport: 40000, dport: 80, flags: 'A' })).data;
    t.equal(d.readUInt16BE(36), 8472, 'UDP destination port 8472');
    t.equal(d.readUInt32BE(46) >>> 8, 77, 'VNI 77');
    const inner = innerFromB();
    const frame = vxlanFrame(inner, { vni: 77 });
    frame.writeUInt16BE(8472, 14 + 20 + 2);
    const r = h.run('in', frame);
    t.same([r.reason, r.data.subarray(ETH_HLEN)], [R.FORWARD, inner], 'VNI 77 to port 8472 decapsulated');
    t.equal(h.run('in', vxlanFrame(inner, { vni: 4096 })).reason, R.FORWARD, 'VNI 4096 to 4789 is no longer VXLAN here (plain UDP)');
  });
});

t.test('XDP prefilter: VXLAN meets the deny list with its inner addresses', async (t) => {
  const pinRoot = uniquePinRoot('vxlanpf');
  const dp = await loadPrefilter({ pinRoot });
  t.teardown(() => { dp.close(); removePinRoot(pinRoot); });
  const denied = '198.19.7.7';
  for (const e of encodePrefilter({ deny: [{ family: 4, cidr: '192.168.99.0/24', ruleId: 5 }], skipped: [] }, [`${denied}/32`])) dp.pf4.update(e.key, e.value);
  const drops = (reason: number) => readCounters(dp.cnt).filter((c) => c.dir === Dir.UPLINK && c.reason === reason).reduce((s, c) => s + c.packets, 0n);
  const run = (frame: Buffer) => dp.prog.testRun(frame).retval;
  const inner = (src: string) => ipv4({ src, dst: WL_A, proto: PROTO.UDP }, udp({ sport: 1000, dport: 53 }));
  const setVx = (vni: number, port = 4789) => dp.obj.map(NET_MAP.vxcfg).update(NETCFG_KEY, vxcfgCodec.encode({ vni, port, mtu: 0 }));

  setVx(0);
  t.equal(run(vxlanFrame(inner(denied))), XdpAction.PASS, 'VXLAN off: UDP to 4789 is plain UDP (its outer addresses pass)');
  setVx(4096);
  const pf = drops(R.PREFILTER);
  t.equal(run(vxlanFrame(inner(denied))), XdpAction.DROP, 'a deny-listed inner source inside VXLAN from a node is dropped');
  t.equal(drops(R.PREFILTER), pf + 1n, 'with the deny-list reason');
  const dnt = drops(R.DNT_DENY);
  t.equal(run(vxlanFrame(inner('192.168.99.3'))), XdpAction.DROP, 'doNotTrack deny of the inner source');
  t.equal(drops(R.DNT_DENY), dnt + 1n, 'with the doNotTrack reason');
  t.equal(run(vxlanFrame(inner(WL_B))), XdpAction.PASS, 'allowed inner addresses pass');
  t.equal(run(vxlanFrame(inner(denied).subarray(0, 12))), XdpAction.PASS, 'an incomplete inner header is left to tc (which drops it)');
  t.equal(run(vxlanFrame(inner(denied), { ethertype: ETH_P.IPV6 })), XdpAction.PASS, 'a non-IPv4 inner frame is left to tc (which drops it)');
  t.equal(run(vxlanFrame(inner(denied), { mf: true })), XdpAction.PASS, 'an outer fragment is left to tc (never decapsulated)');
  setVx(4096, 8472);
  t.equal(run(vxlanFrame(inner(denied))), XdpAction.PASS, 'another VXLAN port configured: UDP to 4789 is not VXLAN');
});
