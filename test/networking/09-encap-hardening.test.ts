// Encapsulated-traffic hardening (docs/security.md) with BPF_PROG_TEST_RUN (the real programs, crafted frames):
//   - IPIP decapsulation judges lengths by the outer IP total length, not the frame: a frame a
//     NIC padded to 60 bytes (inner datagram < 26 bytes) is decapsulated, and the padding is
//     trimmed so the inner datagram leaves with its own length; a datagram longer than the frame
//     is still refused. The encapsulation paths drop trailing bytes too.
//   - the XDP prefilter judges IPIP by its inner addresses as well (deny list and doNotTrack,
//     with the same drop reasons; inner headers it cannot see
//     whole pass to the tc program (which decapsulates only whole ones). (The agent writes
//     source-side entries only today: encodePrefilter; the XDP program checks both sides.)
//   - padding elsewhere: short datagrams in padded frames pass the workload program and XDP.
// Real packets in namespaces: 10-encap-hardening-netns.test.ts.
import t from 'tap';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { RT_F } from '../../src/dataplane/bpf/net-codecs';
import { eth, icmp, ipv4, udp, PROTO } from '../../src/dataplane/bpf/packet';
import { loadPrefilter } from '../../src/dataplane/bpf/loader';
import { encodePrefilter } from '../../src/dataplane/bpf/encode';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { XdpAction } from '../../src/dataplane/native';
import { UplinkHarness, TC_OK, TC_SHOT } from '../../src/testbed/uplink-harness';
import { ipAt, tcpFrame, ETH_HLEN } from '../../src/testbed/fixtures';
import { uniquePinRoot, removePinRoot, WepHarness } from '../../src/testbed/wep-harness';
import { allowAll } from '../../src/testbed/tables';

const NODE_A = '198.18.1.10';
const NODE_C = '198.18.2.10';
const WL_A = '192.168.10.5';
const WL_C = '192.168.30.7';

/** Pads a frame to `to` bytes (the Ethernet minimum is 60 without FCS) with `fill`. */
function pad(frame: Buffer, to = 60, fill = 0): Buffer {
  return frame.length >= to ? frame : Buffer.concat([frame, Buffer.alloc(to - frame.length, fill)]);
}

/** A last fragment carrying 4 bytes: a 24-byte inner datagram (the shortest real case). */
const shortInner = (): Buffer => ipv4({ src: WL_C, dst: WL_A, proto: PROTO.UDP, id: 7, fragOffset: 185 }, Buffer.from([1, 2, 3, 4]));
/** A 20-byte inner datagram (no payload at all). */
const bareInner = (): Buffer => ipv4({ src: WL_C, dst: WL_A, proto: 253 }, Buffer.alloc(0));

t.test('IPIP decapsulation and Ethernet padding', async (t) => {
  const h = await UplinkHarness.create('ipippad');
  t.teardown(() => h.close());
  h.config(NODE_A);
  h.node(NODE_C);
  h.route(`${WL_C}/32`, NODE_C, RT_F.WORKLOAD | RT_F.ENCAP);

  for (const [what, inner] of [['24-byte last fragment', shortInner()], ['20-byte datagram', bareInner()]] as const) {
    for (const fill of [0, 0xa5]) {
      t.test(`${what}, frame padded to 60 bytes with 0x${fill.toString(16)}`, async (t) => {
        const frame = pad(eth({}, ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP }, inner)), 60, fill);
        t.ok(frame.length === 60 && ETH_HLEN + 20 + inner.length < 60, 'the frame is padded');
        const before = h.stats().decap;
        const r = h.run('in', frame);
        t.same([r.retval, r.reason], [TC_OK, R.FORWARD], 'decapsulated, not ipip_bad_inner');
        t.equal(h.stats().decap, before + 1n, 'counted as a decapsulation');
        t.same(r.data.subarray(ETH_HLEN), inner, 'exactly the inner datagram: the padding is trimmed');
        t.equal(r.data.length, ETH_HLEN + inner.length);
      });
    }
  }

  t.test('a datagram longer than the frame is still refused', async (t) => {
    const inner = shortInner();
    const outer = ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP, totalLength: 20 + inner.length + 8 }, inner);
    const r = h.run('in', pad(eth({}, outer), 60));
    // 14 + 52 claimed > 60 present: the parser's bound (the outer datagram is not all there).
    t.same([r.retval, r.reason], [TC_SHOT, R.BAD_TOTLEN]);
    const innerLie = Buffer.from(inner);
    innerLie.writeUInt16BE(inner.length + 2, 2); // inner claims 2 bytes that only padding provides
    const r2 = h.run('in', pad(eth({}, ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP }, innerLie)), 60));
    t.same([r2.retval, r2.reason], [TC_SHOT, R.IPIP_BAD_INNER], 'padding is never inner data');
  });

  t.test('unpadded frames are unchanged by the fix', async (t) => {
    const inner = tcpFrame({ src: WL_C, dst: WL_A, sport: 80, dport: 40001, flags: 'A' }).subarray(ETH_HLEN);
    const r = h.run('in', eth({}, ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP }, inner)));
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
    t.same(r.data.subarray(ETH_HLEN), inner);
  });

  t.test('encapsulation: trailing bytes after the inner datagram are not carried', async (t) => {
    const inner = ipv4({ src: WL_A, dst: WL_C, proto: PROTO.UDP }, udp({ sport: 5000, dport: 53, payload: Buffer.alloc(0) }));
    const frame = pad(eth({}, inner), 60, 0xee);
    const r = h.run('out', frame);
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
    const o = ipAt(r.data);
    t.same([o.proto, o.totLen, o.csumOk], [PROTO.IPIP, 20 + inner.length, true]);
    t.equal(r.data.length, ETH_HLEN + 20 + inner.length, 'the outer datagram is the whole frame');
    t.same(r.data.subarray(ETH_HLEN + 20), inner);
  });
});

t.test('XDP prefilter: IPIP meets the deny list with its inner addresses', async (t) => {
  const pinRoot = uniquePinRoot('pfipip');
  const dp = await loadPrefilter({ pinRoot });
  t.teardown(() => { dp.close(); removePinRoot(pinRoot); });
  const denied = '198.19.7.7';
  for (const e of encodePrefilter({ deny: [{ family: 4, cidr: '192.168.99.0/24', ruleId: 5 }], skipped: [] }, [`${denied}/32`])) dp.pf4.update(e.key, e.value);
  const drops = (reason: number) => readCounters(dp.cnt).filter((c) => c.dir === Dir.UPLINK && c.reason === reason).reduce((s, c) => s + c.packets, 0n);
  const run = (frame: Buffer) => dp.prog.testRun(frame).retval;
  const ipip = (inner: Buffer, o: { vlan?: boolean } = {}) =>
    eth(o.vlan ? { vlans: [7] } : {}, ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP }, inner));
  const innerUdp = (src: string, dst: string) => ipv4({ src, dst, proto: PROTO.UDP }, udp({ sport: 1000, dport: 53 }));

  t.equal(run(eth({}, innerUdp(denied, WL_A))), XdpAction.DROP, 'sanity: the denied source arriving directly is dropped');
  let pf = drops(R.PREFILTER);
  t.equal(run(ipip(innerUdp(denied, WL_A))), XdpAction.DROP, 'the same source inside IPIP from a node is dropped');
  t.equal(drops(R.PREFILTER), pf + 1n, 'with the deny-list reason');
  pf = drops(R.PREFILTER);
  t.equal(run(ipip(innerUdp(denied, WL_A), { vlan: true })), XdpAction.DROP, 'also behind a VLAN tag');
  t.equal(run(pad(ipip(ipv4({ src: denied, dst: WL_A, proto: 253 }, Buffer.alloc(0))))), XdpAction.DROP, 'and in a padded short frame');
  t.equal(drops(R.PREFILTER), pf + 2n);
  const dnt = drops(R.DNT_DENY);
  t.equal(run(ipip(innerUdp('192.168.99.3', WL_A))), XdpAction.DROP, 'doNotTrack deny of the inner source');
  t.equal(drops(R.DNT_DENY), dnt + 1n, 'with the doNotTrack reason');
  t.equal(run(ipip(innerUdp(WL_C, WL_A))), XdpAction.PASS, 'allowed inner addresses pass');
  t.equal(run(ipip(innerUdp(denied, WL_A).subarray(0, 12))), XdpAction.PASS, 'an incomplete inner header is left to tc (which drops it)');
  const frag = eth({}, ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP, mf: true }, innerUdp(denied, WL_A)));
  t.equal(run(frag), XdpAction.PASS, 'an outer fragment is left to tc (never decapsulated)');
});

t.test('padding elsewhere: the workload programs and XDP accept padded short frames', async (t) => {
  // The same class of flaw (a length compared with the frame instead of the datagram) in the
  // other programs: each short datagram below, padded to 60 bytes, must pass as its unpadded self.
  const h = await WepHarness.create('wppad');
  t.teardown(() => h.close());
  h.setEndpoint([`${WL_A}/32`], allowAll('i00000000000000a', 'ingress'), allowAll('e00000000000000a', 'egress'));
  const pinRoot = uniquePinRoot('pfpad');
  const pf = await loadPrefilter({ pinRoot });
  t.teardown(() => { pf.close(); removePinRoot(pinRoot); });
  const short: [string, Buffer][] = [
    ['UDP, no payload (28 bytes)', ipv4({ src: WL_A, dst: WL_C, proto: PROTO.UDP }, udp({ sport: 5000, dport: 53 }))],
    ['TCP SYN, no options (40 bytes)', tcpFrame({ src: WL_A, dst: WL_C, sport: 5001, dport: 80, flags: 'S' }).subarray(ETH_HLEN)],
    ['ICMP echo, no data (28 bytes)', ipv4({ src: WL_A, dst: WL_C, proto: PROTO.ICMP }, icmp({ type: 8, id: 9, seq: 1 }))],
  ];
  for (const [what, dgram] of short) {
    for (const fill of [0, 0xff]) {
      const frame = pad(eth({}, dgram), 60, fill);
      t.ok(frame.length > ETH_HLEN + dgram.length, `${what}: padded`);
      const r = h.run('from', frame);
      t.same([r.pass, r.reason], [true, R.FORWARD], `${what}, padding 0x${fill.toString(16)}: forwarded by the workload program`);
      t.equal(pf.prog.testRun(frame).retval, XdpAction.PASS, `${what}, padding 0x${fill.toString(16)}: passed by XDP`);
    }
    h.clearConntrack();
  }
});
