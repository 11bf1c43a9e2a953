// Malformed input never gets around policy: truncated headers at every layer, IHL < 5, IP
// options, total-length lies in both directions, VLAN tags, fragments (first, later, unknown,
// tiny). Each case: the verdict and the drop reason.
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { buildTable, allowAll } from '../../src/testbed/tables';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { eth, ipv4, tcp, udp, icmp, truncate, flowPacket, PROTO } from '../../src/dataplane/bpf/packet';

const EP = '192.168.1.10';
const DST = '10.2.3.4';

// Egress: TCP 80 and UDP 53 and ICMP echo to anyone, all else denied.
const egress = buildTable({
  id: 'e000000000000002', direction: 'egress', protocols: [PROTO.ICMP, PROTO.TCP, PROTO.UDP],
  rules: [
    { proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 1 },
    { proto: PROTO.UDP, portMin: 53, portMax: 53, action: 'allow', ruleId: 2 },
    { proto: PROTO.ICMP, portMin: 0x0800, portMax: 0x08ff, action: 'allow', ruleId: 3 },
  ],
  defaultRule: 9,
});

t.test('malformed and unusual packets', async (t) => {
  const h = await WepHarness.create('malformed');
  t.teardown(() => h.close());
  h.setEndpoint([`${EP}/32`], allowAll('i000000000000002', 'ingress'), egress);
  let port = 20000;
  const tcpTo = (dport: number, extra: Partial<Parameters<typeof ipv4>[0]> = {}, l4 = tcp({ sport: port++, dport })) =>
    eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.TCP, ...extra }, l4));

  t.test('truncated headers', async (t) => {
    const good = tcpTo(80);
    t.same(h.run('from', good).reason, R.FORWARD, 'control: the full packet passes');
    // The kernel's skb test run refuses IPv4 frames shorter than Ethernet + 20 bytes, so the
    // short-Ethernet and short-IPv4-header cases run through the XDP program (same parser,
    // 04-prefilter); here, a header cut inside its options (IHL 15 below) covers DROP_TRUNC_IP.
    t.throws(() => h.run('from', truncate(good, 14 + 19)), { code: 'ERR_BPF_PROG_TEST_RUN' }, 'kernel rejects a short IPv4 frame');
    t.same(h.run('from', eth({ ethertype: 0x0806 }, Buffer.alloc(1))).reason, R.FORWARD, 'short ARP is ARP (proxy ARP answers or drops it)');
    // Cutting the buffer makes the total length a lie too; both are drops, L3 check first.
    t.same(h.run('from', truncate(good, 14 + 20 + 10)).reason, R.BAD_TOTLEN, 'short TCP, total length says more');
    const shortTcp = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.TCP }, Buffer.alloc(10)));
    t.same(h.run('from', shortTcp).reason, R.TRUNC_L4, 'IPv4 datagram with 10 bytes of TCP');
    const shortUdp = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.UDP }, Buffer.alloc(7)));
    t.same(h.run('from', shortUdp).reason, R.TRUNC_L4, 'UDP header 7 bytes');
    const shortIcmp = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.ICMP }, Buffer.from([8, 0, 0, 0])));
    t.same(h.run('from', shortIcmp).reason, R.TRUNC_L4, 'ICMP header 4 bytes');
    const shortSctp = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.SCTP }, Buffer.alloc(11)));
    t.same(h.run('from', shortSctp).reason, R.TRUNC_L4, 'SCTP common header 11 bytes');
  });

  t.test('IPv4 header fields that lie', async (t) => {
    t.same(h.run('from', tcpTo(80, { ihl: 4 })).reason, R.BAD_IHL, 'IHL 4');
    t.same(h.run('from', tcpTo(80, { ihl: 0 })).reason, R.BAD_IHL, 'IHL 0');
    // IHL 15 = 60 bytes of header: the packet has 20 + 20 bytes, so header = whole datagram,
    // ports would be read from nowhere.
    t.same(h.run('from', truncate(tcpTo(80, { ihl: 15 }), 14 + 40)).reason, R.TRUNC_IP, 'IHL 15 past the end');
    t.same(h.run('from', tcpTo(80, { totalLength: 1500 })).reason, R.BAD_TOTLEN, 'total length longer than the frame');
    t.same(h.run('from', tcpTo(80, { totalLength: 16 })).reason, R.BAD_TOTLEN, 'total length shorter than the header');
    // Total length that hides the TCP header: the ports in the frame are outside the datagram.
    t.same(h.run('from', tcpTo(80, { totalLength: 24 })).reason, R.TRUNC_L4, 'total length ends inside TCP');
    // Ethernet padding after a short datagram is normal.
    const padded = Buffer.concat([tcpTo(80), Buffer.alloc(18)]);
    t.same(h.run('from', padded).reason, R.FORWARD, 'trailing padding');
    t.same(h.run('from', tcpTo(80, {}, tcp({ sport: port++, dport: 80, doff: 4 }))).reason, R.BAD_TCP_HDR, 'TCP data offset 4');
    t.same(h.run('from', tcpTo(80, {}, tcp({ sport: port++, dport: 80, doff: 15 }).subarray(0, 20))).reason, R.BAD_TCP_HDR,
      'TCP data offset past the datagram');
  });

  t.test('IP options: ports are read after the options', async (t) => {
    const opts = Buffer.from([1, 1, 1, 0, 0x94, 0x04, 0, 0]); // NOP NOP NOP EOL, Router Alert
    t.same(h.run('from', tcpTo(80, { options: opts })).reason, R.FORWARD, 'options + tcp/80');
    t.same(h.run('from', tcpTo(81, { options: opts })).reason, R.POLICY_DENY, 'options + tcp/81');
    // Options whose bytes look like an allowed port at the offset a naive parser would read.
    const fake = Buffer.alloc(4); fake.writeUInt16BE(80, 2);
    t.same(h.run('from', tcpTo(81, { options: Buffer.concat([Buffer.alloc(0), Buffer.from([0x50, 0x00]), fake.subarray(2)]) })).reason,
      R.POLICY_DENY, 'option bytes are not ports');
  });

  t.test('VLAN tags never reach policy on a workload interface', async (t) => {
    const tagged = eth({ vlans: [100] }, ipv4({ src: EP, dst: DST, proto: PROTO.TCP }, tcp({ sport: port++, dport: 80 })));
    t.same(h.run('from', tagged).reason, R.VLAN);
    const qinq = eth({ vlans: [100, 200] }, ipv4({ src: EP, dst: DST, proto: PROTO.TCP }, tcp({ sport: port++, dport: 80 })));
    t.same(h.run('from', qinq).reason, R.VLAN);
    t.same(h.run('to', tagged).reason, R.VLAN);
  });

  t.test('fragments', async (t) => {
    const payload = Buffer.alloc(64, 0xab);
    // First fragment (MF, offset 0) of an allowed flow carries the header: allowed, ports remembered.
    const first = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.UDP, id: 0x4242, mf: true }, udp({ sport: 5353, dport: 53, payload })));
    t.same(h.run('from', first).reason, R.FORWARD, 'first fragment allowed');
    const later = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.UDP, id: 0x4242, fragOffset: 9 }, payload));
    t.same(h.run('from', later).reason, R.FORWARD, 'later fragment of an allowed datagram');
    const stray = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.UDP, id: 0x4343, fragOffset: 9 }, payload));
    t.same(h.run('from', stray).reason, R.FRAG_UNKNOWN, 'later fragment without its first');
    const deniedFirst = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.UDP, id: 0x4444, mf: true }, udp({ sport: 5353, dport: 54, payload })));
    t.same(h.run('from', deniedFirst).reason, R.POLICY_DENY, 'first fragment denied');
    const deniedLater = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.UDP, id: 0x4444, fragOffset: 9 }, payload));
    t.same(h.run('from', deniedLater).reason, R.FRAG_UNKNOWN, 'its later fragment is dropped');
    const tinyFirst = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.TCP, id: 0x4545, mf: true }, tcp({ sport: port++, dport: 80 }).subarray(0, 8)));
    t.same(h.run('from', tinyFirst).reason, R.FRAG_TINY, 'first fragment without a whole TCP header');
    const overlap = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.TCP, id: 0x4242, fragOffset: 1 }, Buffer.alloc(16)));
    t.same(h.run('from', overlap).reason, R.FRAG_TINY, 'TCP fragment at offset 8 (RFC 1858)');
    // A fragmented datagram inside an already established flow (conntrack hit, no policy
    // lookup): its later fragments still find their first.
    t.same(h.run('from', flowPacket({ src: EP, dst: DST, proto: PROTO.UDP, sport: 5400, dport: 53 })).reason, R.FORWARD, 'flow opened');
    const estFirst = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.UDP, id: 0x4646, mf: true }, udp({ sport: 5400, dport: 53, payload })));
    t.same(h.run('from', estFirst).reason, R.FORWARD, 'first fragment of an established flow');
    const estLater = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.UDP, id: 0x4646, fragOffset: 9 }, payload));
    t.same(h.run('from', estLater).reason, R.FORWARD, 'its later fragment');
    // An unfragmented packet reusing an id is not affected.
    t.same(h.run('from', flowPacket({ src: EP, dst: DST, proto: PROTO.UDP, sport: 5000, dport: 54, ip: { id: 0x4242 } })).reason,
      R.POLICY_DENY, 'unfragmented datagram is judged on its own ports');
  });

  t.test('ICMP with a short error body is plain ICMP (policy decides)', async (t) => {
    const unreach = eth({}, ipv4({ src: EP, dst: DST, proto: PROTO.ICMP }, icmp({ type: 3, code: 4, payload: Buffer.alloc(10) })));
    t.same(h.run('from', unreach).reason, R.POLICY_DENY);
  });
});
