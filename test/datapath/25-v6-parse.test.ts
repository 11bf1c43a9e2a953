// IPv6 parsing on the workload programs: every malformed header, extension-header chain and
// fragment case ends in its drop reason; well-formed packets get past the parser (the endpoint
// allows everything, so they are forwarded).
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { allowAll } from '../../src/testbed/tables';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { eth6, ext6, frag6, routing6, auth6, tcp, udp, icmp6, truncate, NH6, PROTO, type Ext6 } from '../../src/dataplane/bpf/packet';

const EP6 = 'fd00:10::a';
const DST6 = 'fd00:20::b';

t.test('IPv6 parsing', async (t) => {
  const h = await WepHarness.create('v6parse');
  t.teardown(() => h.close());
  h.setEndpoint(['192.168.1.10/32', `${EP6}/128`], allowAll('i000000000000025', 'ingress'), allowAll('e000000000000025', 'egress'));
  const tcp6 = (exts: Ext6[] = [], l4 = tcp({ sport: 40000, dport: 80 })) =>
    eth6({ src: EP6, dst: DST6, proto: PROTO.TCP, exts }, l4);
  const parsed = (pkt: Buffer) => h.run('from', pkt).reason;

  t.test('well-formed packets pass the parser', async (t) => {
    t.same(parsed(tcp6()), R.FORWARD, 'plain TCP');
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: PROTO.UDP }, udp({ sport: 1, dport: 53 }))), R.FORWARD, 'UDP');
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: NH6.ICMP6 }, icmp6({ type: 128, id: 7 }))), R.FORWARD, 'echo');
    t.same(parsed(tcp6([ext6(NH6.HOP), ext6(NH6.DEST), routing6(0), auth6(), ext6(NH6.DEST)])), R.FORWARD,
      'hop-by-hop, dest, routing (0 segments left), AH, dest: five extension headers');
    t.same(parsed(tcp6([ext6(NH6.DEST, Buffer.alloc(6 + 8 * 100))])), R.FORWARD, 'an 814-byte destination options header');
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: NH6.ESP }, Buffer.alloc(16))), R.FORWARD, 'ESP ends the walk');
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: NH6.NONE }, Buffer.alloc(0))), R.FORWARD, 'no next header');
    t.same(parsed(Buffer.concat([tcp6(), Buffer.alloc(20)])), R.FORWARD, 'Ethernet padding after the datagram');
  });

  t.test('extension-header chains beyond the bound', async (t) => {
    const dests = (n: number) => Array.from({ length: n }, () => ext6(NH6.DEST));
    t.same(parsed(tcp6(dests(8))), R.FORWARD, '8 extension headers: walked');
    t.same(parsed(tcp6(dests(9))), R.IP6_EXT_CHAIN, '9 extension headers: ip6_ext_chain');
    t.same(parsed(tcp6([ext6(NH6.HOP), ...dests(20)])), R.IP6_EXT_CHAIN, '21 extension headers');
  });

  t.test('malformed extension headers', async (t) => {
    t.same(parsed(tcp6([ext6(NH6.DEST), ext6(NH6.HOP)])), R.IP6_BAD_EXT, 'hop-by-hop not first');
    t.same(parsed(tcp6([frag6({ offset: 0, mf: true, id: 1 }), frag6({ offset: 0, mf: true, id: 1 })])), R.IP6_BAD_EXT,
      'two fragment headers');
    const longLen = ext6(NH6.DEST); longLen.lenByte = 200; // claims 1608 bytes
    t.same(parsed(tcp6([longLen])), R.IP6_BAD_EXT, 'extension header longer than the datagram');
    // The header chain ends inside an extension header: payload length covers 4 of its 8 bytes.
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: PROTO.TCP, exts: [ext6(NH6.DEST)], payloadLength: 4 }, Buffer.alloc(24))),
      R.IP6_BAD_EXT, 'payload length ends inside an extension header');
    t.same(parsed(tcp6([routing6(1)])), R.IP6_SRCROUTE, 'routing header with a segment left');
    t.same(parsed(tcp6([routing6(3, 0)])), R.IP6_SRCROUTE, 'type 0 routing header with segments left');
  });

  t.test('truncated and lying headers', async (t) => {
    const good = tcp6();
    t.same(parsed(truncate(good, 14 + 40 + 10)), R.BAD_TOTLEN, 'frame shorter than the payload length');
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: PROTO.TCP, payloadLength: 10 }, tcp({ sport: 1, dport: 80 }))),
      R.TRUNC_L4, 'payload length ends inside TCP');
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: PROTO.TCP, payloadLength: 2000 }, tcp({ sport: 1, dport: 80 }))),
      R.BAD_TOTLEN, 'payload length past the frame');
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: PROTO.TCP, version: 4 }, tcp({ sport: 1, dport: 80 }))),
      R.BAD_IP_VERSION, 'version 4 under the IPv6 ethertype');
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: PROTO.UDP }, Buffer.alloc(7))), R.TRUNC_L4, 'UDP header 7 bytes');
    t.same(parsed(eth6({ src: EP6, dst: DST6, proto: NH6.ICMP6 }, Buffer.alloc(4))), R.TRUNC_L4, 'ICMPv6 4 bytes');
    t.same(parsed(tcp6([], tcp({ sport: 1, dport: 80, doff: 4 }))), R.BAD_TCP_HDR, 'TCP data offset 4');
    t.same(parsed(tcp6([], tcp({ sport: 1, dport: 80, doff: 15 }).subarray(0, 20))), R.BAD_TCP_HDR, 'TCP data offset past the datagram');
    t.same(parsed(tcp6([ext6(NH6.DEST)], Buffer.alloc(12))), R.TRUNC_L4, 'TCP cut short behind an extension header');
  });

  t.test('fragments', async (t) => {
    const f = (o: Parameters<typeof frag6>[0], l4: Buffer) => tcp6([frag6(o)], l4);
    t.same(parsed(f({ offset: 0, mf: true }, tcp({ sport: 1, dport: 80 }))), R.FORWARD, 'first fragment with the TCP header');
    t.same(parsed(f({ offset: 0, mf: true }, Buffer.alloc(12))), R.FRAG_TINY, 'first fragment without the whole TCP header (RFC 7112)');
    t.same(parsed(f({ offset: 1, mf: true }, Buffer.alloc(16))), R.FRAG_TINY, 'later TCP fragment at offset 8 (RFC 1858)');
    t.same(parsed(f({ offset: 3, mf: false }, Buffer.alloc(16))), R.FORWARD, 'later fragment: no upper-layer header read');
    t.same(parsed(f({ offset: 0, mf: false }, tcp({ sport: 1, dport: 80 }))), R.FORWARD, 'atomic fragment (RFC 6946)');
  });
});
