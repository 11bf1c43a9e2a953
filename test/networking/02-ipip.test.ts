// IPIP in BPF on the uplink: encapsulation of kernel-routed workload traffic (exact outer header),
// decapsulation only from known nodes to this node, every IPIP drop path with its reason, and
// pass-through of everything else.
import t from 'tap';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { RT_F } from '../../src/dataplane/bpf/net-codecs';
import { eth, ipv4, PROTO, ETH_P } from '../../src/dataplane/bpf/packet';
import { UplinkHarness, TC_OK, TC_SHOT } from '../../src/testbed/uplink-harness';
import { ipAt, tcpFrame, l4ChecksumOk, ETH_HLEN } from '../../src/testbed/fixtures';

const NODE_A = '198.18.1.10';
const NODE_B = '198.18.1.11';
const NODE_C = '198.18.2.10';
const WL_A = '192.168.10.5';
const WL_C = '192.168.30.7';

t.test('IPIP on the uplink', async (t) => {
  const h = await UplinkHarness.create('ipip');
  t.teardown(() => h.close());

  t.test('nothing happens before the node address is configured', async (t) => {
    const ipip = eth({}, ipv4({ src: '198.18.9.9', dst: NODE_A, proto: PROTO.IPIP }, tcpFrame({ src: WL_C, dst: WL_A }).subarray(ETH_HLEN)));
    const r = h.run('in', ipip);
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
    t.same(r.data, ipip, 'unchanged');
  });

  h.config(NODE_A);
  h.node(NODE_B);
  h.node(NODE_C);
  h.route(`${WL_C}/32`, NODE_C, RT_F.WORKLOAD | RT_F.ENCAP);
  h.route('192.168.20.0/26', NODE_B, RT_F.WORKLOAD);

  t.test('egress: a kernel-routed packet to a remote workload behind IPIP gets the outer header', async (t) => {
    const inner = tcpFrame({ src: WL_A, dst: WL_C, sport: 40001, dport: 80, df: true, ttl: 63, payload: Buffer.alloc(100, 7) },
      { src: '02:00:00:00:00:0a', dst: '02:00:00:00:00:01' });
    const before = h.stats().encapUplink;
    const r = h.run('out', inner);
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
    t.equal(r.data.length, inner.length + 20, '20 bytes longer');
    t.same(r.data.subarray(0, ETH_HLEN), inner.subarray(0, ETH_HLEN), 'Ethernet header kept (the kernel resolved the next hop)');
    const o = ipAt(r.data);
    t.same({ src: o.src, dst: o.dst, proto: o.proto, ttl: o.ttl, totLen: o.totLen, df: o.df, hlen: o.hlen, csumOk: o.csumOk },
      { src: NODE_A, dst: NODE_C, proto: PROTO.IPIP, ttl: 64, totLen: inner.length - ETH_HLEN + 20, df: true, hlen: 20, csumOk: true });
    t.same(r.data.subarray(ETH_HLEN + 20), inner.subarray(ETH_HLEN), 'inner datagram byte for byte');
    t.equal(h.stats().encapUplink, before + 1n, 'counted');
    const noDf = h.run('out', tcpFrame({ src: WL_A, dst: WL_C, df: false }));
    t.notOk(ipAt(noDf.data).df, 'DF copied from the inner header');
  });

  t.test('egress: routes without ENCAP, other destinations and non-IPv4 pass unchanged', async (t) => {
    for (const p of [tcpFrame({ src: WL_A, dst: '192.168.20.9' }), tcpFrame({ src: WL_A, dst: '198.18.3.1' }),
      eth({ ethertype: ETH_P.ARP }, Buffer.alloc(28)), eth({ vlans: [5] }, ipv4({ src: WL_A, dst: WL_C, proto: PROTO.UDP }, Buffer.alloc(8)))]) {
      const r = h.run('out', p);
      t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
      t.same(r.data, p);
    }
    const already = eth({}, ipv4({ src: NODE_A, dst: WL_C, proto: PROTO.IPIP }, tcpFrame({ src: WL_A, dst: WL_C }).subarray(ETH_HLEN)));
    t.same(h.run('out', already).data, already, 'never encapsulated twice');
  });

  t.test('ingress: IPIP from a known node to this node is decapsulated', async (t) => {
    const inner = tcpFrame({ src: WL_C, dst: WL_A, sport: 80, dport: 40001, flags: 'SA', payload: Buffer.alloc(33, 1) });
    const outer = eth({ src: '02:00:00:00:00:0c', dst: '02:00:00:00:00:0a' },
      ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP, dontFragment: true }, inner.subarray(ETH_HLEN)));
    const before = h.stats().decap;
    const r = h.run('in', outer);
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
    t.same(r.data.subarray(0, ETH_HLEN), outer.subarray(0, ETH_HLEN), 'Ethernet header kept');
    t.same(r.data.subarray(ETH_HLEN), inner.subarray(ETH_HLEN), 'exactly the inner datagram');
    t.ok(l4ChecksumOk(ipAt(r.data)));
    t.equal(h.stats().decap, before + 1n);
    const withOpts = eth({}, ipv4({ src: NODE_B, dst: NODE_A, proto: PROTO.IPIP, options: Buffer.from([1, 1, 1, 1]) }, inner.subarray(ETH_HLEN)));
    t.same(h.run('in', withOpts).data.subarray(ETH_HLEN), inner.subarray(ETH_HLEN), 'outer options are stripped too');
  });

  t.test('ingress: IPIP drops, each with its reason', async (t) => {
    const inner = tcpFrame({ src: WL_C, dst: WL_A }).subarray(ETH_HLEN);
    const unknown = h.run('in', eth({}, ipv4({ src: '198.18.2.99', dst: NODE_A, proto: PROTO.IPIP }, inner)));
    t.same([unknown.retval, unknown.reason], [TC_SHOT, R.IPIP_UNKNOWN_SRC], 'outer source not a node');
    const toOther = h.run('in', eth({}, ipv4({ src: '198.18.3.3', dst: '198.18.1.99', proto: PROTO.IPIP }, inner)));
    t.same([toOther.retval, toOther.reason], [TC_SHOT, R.IPIP_UNKNOWN_SRC], 'also when not addressed to us');
    const badVer = Buffer.from(inner); badVer[0] = 0x65;
    t.same(h.run('in', eth({}, ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP }, badVer))).reason, R.IPIP_BAD_INNER, 'inner version 6');
    const badLen = Buffer.from(inner); badLen.writeUInt16BE(inner.length + 4, 2);
    t.same(h.run('in', eth({}, ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP }, badLen))).reason, R.IPIP_BAD_INNER, 'inner length disagrees');
    t.same(h.run('in', eth({}, ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP }, inner.subarray(0, 12)))).reason, R.IPIP_BAD_INNER, 'inner header cut');
    t.same(h.run('in', eth({}, ipv4({ src: NODE_C, dst: NODE_A, proto: PROTO.IPIP, mf: true }, inner))).reason, R.IPIP_BAD_INNER, 'outer fragment');
    const fromKnownElsewhere = eth({}, ipv4({ src: NODE_C, dst: NODE_B, proto: PROTO.IPIP }, inner));
    const r = h.run('in', fromKnownElsewhere);
    t.same([r.retval, r.reason, r.data.equals(fromKnownElsewhere)], [TC_OK, R.FORWARD, true], 'known node, not for us: left to the kernel');
  });

  t.test('ingress: malformed IPv4 is dropped with the parser reason; plain traffic passes', async (t) => {
    const good = tcpFrame({ src: '198.18.3.1', dst: NODE_A });
    t.same(h.run('in', eth({}, ipv4({ src: '198.18.3.1', dst: NODE_A, proto: PROTO.UDP, totalLength: 900 }, Buffer.alloc(40)))).reason, R.BAD_TOTLEN);
    t.same(h.run('out', eth({}, ipv4({ src: WL_A, dst: WL_C, proto: PROTO.UDP, ihl: 4 }, Buffer.alloc(40)))).reason, R.BAD_IHL);
    const r = h.run('in', good);
    t.same([r.retval, r.reason, r.data.equals(good)], [TC_OK, R.FORWARD, true]);
  });
});
