// ICMP leaving a natOutgoing pool for the outside (docs/security.md, "A workload address never leaks"; lib/icmp_err.h): a
// workload's error about a SNATed flow leaves translated like the flow (outer source, quoted
// destination and port, every checksum valid, recomputed here from the bytes); an error quoting
// no mapping, addressed elsewhere, or an ICMP query without a mapping is dropped (DROP_NAT_ICMP):
// the workload's address never leaves the node. Echo keeps working.
import t from 'tap';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { POOL_F } from '../../src/dataplane/bpf/net-codecs';
import { UplinkHarness, TC_OK, TC_SHOT } from '../../src/testbed/uplink-harness';
import { eth, ipv4, icmp, PROTO } from '../../src/dataplane/bpf/packet';
import { ipAt, l4ChecksumOk, portsOf, tcpFrame, udpFrame, icmpFrame } from '../../src/testbed/fixtures';

const NODE = '198.18.1.10';
const WL1 = '192.168.10.5';
const WL2 = '192.168.10.6';
const OUT = '198.18.3.20';

const errFrom = (src: string, dst: string, quoted: Buffer, type = 3, code = 3) =>
  eth({}, ipv4({ src, dst, proto: PROTO.ICMP }, icmp({ type, code, payload: quoted })));

t.test('ICMP from workloads to the outside: translated like the flow, or dropped', async (t) => {
  const h = await UplinkHarness.create('naticmpout');
  t.teardown(() => h.close());
  h.config(NODE);
  h.pool('192.168.0.0/18', POOL_F.NAT_OUT);
  h.node(NODE);

  // Two workloads from the same port 6000: each mapping gets its own port of the NAT range.
  h.run('out', udpFrame({ src: WL1, dst: OUT, sport: 6000, dport: 9999 }));
  const natPort = portsOf(ipAt(h.run('out', udpFrame({ src: WL2, dst: OUT, sport: 6000, dport: 9999 })).data))[0];
  t.not(natPort, 6000, 'WL2 mapped to a port of the range');
  // A reply reaches WL2 (reverse-translated); WL2 answers it with port unreachable.
  const reply = h.run('in', udpFrame({ src: OUT, dst: NODE, sport: 9999, dport: natPort, payload: Buffer.alloc(40, 1) })).data;
  const delivered = ipAt(reply);
  t.same([delivered.dst, portsOf(delivered)], [WL2, [9999, 6000]], 'the reply as WL2 received it');
  const quoted = Buffer.from(delivered.raw.subarray(0, 28));
  const before = h.stats().snat;
  const r = h.run('out', errFrom(WL2, OUT, quoted));
  t.same([r.retval, r.reason], [TC_OK, R.FORWARD], 'the error leaves');
  const o = ipAt(r.data);
  t.same([o.src, o.dst, o.csumOk, l4ChecksumOk(o)], [NODE, OUT, true, true], 'outer source is the node, checksums valid');
  const q = ipAt(o.l4, 8);
  t.same([q.src, q.dst, q.csumOk, q.l4.readUInt16BE(0), q.l4.readUInt16BE(2)], [OUT, NODE, true, 9999, natPort],
    'the quoted datagram as the outside sent it');
  t.notOk(r.data.includes(Buffer.from([192, 168, 10, 6])), 'the workload address appears nowhere in the frame');
  t.equal(h.stats().snat, before + 1n, 'counted as translated');

  // A TCP flow, and a time-exceeded about its reply.
  const tPort = portsOf(ipAt(h.run('out', tcpFrame({ src: WL1, dst: OUT, sport: 7000, dport: 443 })).data))[0];
  const tq = Buffer.from(ipAt(h.run('in', tcpFrame({ src: OUT, dst: NODE, sport: 443, dport: tPort, flags: 'SA' })).data).raw.subarray(0, 28));
  const te = ipAt(h.run('out', errFrom(WL1, OUT, tq, 11, 0)).data);
  t.same([te.src, ipAt(te.l4, 8).dst, l4ChecksumOk(te)], [NODE, NODE, true], 'time exceeded translated too');

  const drop = (what: string, pkt: Buffer) => {
    const d = h.run('out', pkt);
    t.same([d.retval, d.reason], [TC_SHOT, R.NAT_ICMP], what);
  };
  drop('an error quoting no SNATed flow', errFrom(WL1, OUT, Buffer.from(ipAt(udpFrame({ src: OUT, dst: WL1, sport: 1, dport: 2 })).raw.subarray(0, 28))));
  drop('an error not addressed to the quoted source', errFrom(WL2, '198.18.3.21', quoted));
  drop('an error quoting a flow of another workload', errFrom(WL1, OUT, quoted));
  drop('an error with a truncated quote', errFrom(WL2, OUT, quoted.subarray(0, 10)));
  drop('an ICMP timestamp request (no mapping for queries)', icmpFrame({ src: WL1, dst: OUT, type: 13 }));
  const echo = ipAt(h.run('out', icmpFrame({ src: WL1, dst: OUT, id: 4242 })).data);
  t.equal(echo.src, NODE, 'echo requests are still SNATed');
  const echoId = portsOf(echo)[0];
  t.equal(ipAt(h.run('in', icmpFrame({ src: OUT, dst: NODE, type: 0, id: echoId })).data).dst, WL1, 'the echo reply goes back to the workload');
  // Inbound, only an echo reply answers a SNATed ping: the outside's request (or query) with that
  // id is the node's, never delivered to the workload.
  t.equal(ipAt(h.run('in', icmpFrame({ src: OUT, dst: NODE, type: 8, id: echoId })).data).dst, NODE, 'an echo request with the mapped id stays the node\'s');
  t.equal(ipAt(h.run('in', icmpFrame({ src: OUT, dst: NODE, type: 13, id: echoId })).data).dst, NODE, 'so does a timestamp request');
});

t.test('an error from a workload whose quote ends before the ports: padding is never read as ports', async (t) => {
  const h = await UplinkHarness.create('naticmppad');
  t.teardown(() => h.close());
  h.config(NODE);
  h.pool('192.168.0.0/18', POOL_F.NAT_OUT);
  h.node(NODE);
  h.run('out', udpFrame({ src: WL1, dst: OUT, sport: 6200, dport: 9999 }));
  const natPort = portsOf(ipAt(h.run('out', udpFrame({ src: WL2, dst: OUT, sport: 6200, dport: 9999 })).data))[0];
  const delivered = ipAt(h.run('in', udpFrame({ src: OUT, dst: NODE, sport: 9999, dport: natPort })).data);
  const hdr = Buffer.from(delivered.raw.subarray(0, 20)), ports = Buffer.from(delivered.raw.subarray(20, 28));
  t.equal(h.run('out', errFrom(WL2, OUT, Buffer.concat([hdr, ports]))).reason, R.FORWARD, 'control: the full quote is translated');
  const padded = Buffer.concat([errFrom(WL2, OUT, hdr), ports, Buffer.alloc(8)]);
  const r = h.run('out', padded);
  t.same([r.retval, r.reason], [TC_SHOT, R.NAT_ICMP], 'quote without its ports (they are padding): dropped, not translated');
});

t.test('an error from outside whose quote holds just the ports, ending the frame, is translated back (nothing read past it)', async (t) => {
  const h = await UplinkHarness.create('naticmp4end');
  t.teardown(() => h.close());
  h.config(NODE);
  h.pool('192.168.0.0/18', POOL_F.NAT_OUT);
  h.node(NODE);
  h.run('out', udpFrame({ src: WL1, dst: OUT, sport: 6300, dport: 9999 }));
  const sent = ipAt(h.run('out', udpFrame({ src: WL2, dst: OUT, sport: 6300, dport: 9999 })).data);
  const f = eth({}, ipv4({ src: '198.18.3.1', dst: NODE, proto: PROTO.ICMP }, icmp({ type: 3, code: 3, payload: Buffer.from(sent.raw.subarray(0, 24)) })));
  t.equal(f.length, 14 + 20 + 8 + 24, 'the frame ends with the quoted ports (no padding)');
  const r = h.run('in', f);
  const o = ipAt(r.data);
  const q = ipAt(o.l4, 8);
  t.same([r.reason, o.dst, q.src, o.l4.readUInt16BE(8 + 20), l4ChecksumOk(o)], [R.FORWARD, WL2, WL2, 6300, true]);
});
