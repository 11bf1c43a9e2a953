// Every verdict path of the workload programs, through BPF_PROG_TEST_RUN on the real objects:
// policy allow/deny per class, protocol, port; anti-spoofing; fail-closed cases; ARP; and the
// reason counted for each drop. Policy, anti-spoofing, fail-closed, events and counters run in
// IPv4 and in IPv6 from one body (IPv6 through tortie_cls6_v1 and the same tables).
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { buildTable } from '../../src/testbed/tables';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { eth, ipv4, PROTO, ETH_P, type FlowPacket } from '../../src/dataplane/bpf/packet';
import { endpointCodec, u32Key, EP_F_DISABLED } from '../../src/dataplane/bpf/codecs';
import { PROTO_OTHER } from '../../src/calc/types';
import { FAMILIES, V4, V6 } from '../../src/testbed/family';

const G_TEN = 100, G_TEN_ONE = 101;
/** Each family's addresses for the same roles: 10/8 and 10.1/16 (classes), in them, outside, a neighbour. */
const ADDR = {
  4: { TEN: '10.0.0.0/8', TEN_ONE: '10.1.0.0/16', IN: '10.2.3.4', IN_ONE: '10.1.3.4', OUT: '198.18.0.5', OUT2: '198.18.0.7',
    SRC_ONE: '10.1.0.9', SRC_TEN: '10.2.0.9', NEIGHBOUR: '192.168.1.11', UNSPEC: '0.0.0.0', ALL: '255.255.255.255' },
  6: { TEN: 'fd0a::/16', TEN_ONE: 'fd0a:1::/32', IN: 'fd0a:2::3:4', IN_ONE: 'fd0a:1::3:4', OUT: 'fd18::5', OUT2: 'fd18::7',
    SRC_ONE: 'fd0a:1::9', SRC_TEN: 'fd0a:2::9', NEIGHBOUR: 'fd00:10::b', UNSPEC: '::', ALL: 'ff02::1:2' },
} as const;

// Egress (from the workload): to 10/8 (local class 1) TCP 80 and 8000-8999; UDP 53 anywhere;
// ICMP echo request anywhere; Log then deny TCP 22; SCTP 9 to class 1; "other" protocols to
// class 1 allowed (GRE test); everything else denied by rule 99.
const egress = buildTable({
  id: 'e000000000000001', direction: 'egress',
  projection: [[G_TEN, 1], [G_TEN_ONE, 1]],
  protocols: [PROTO.ICMP, PROTO.TCP, PROTO.UDP, PROTO.SCTP, V6.icmpProto],
  rules: [
    { lclass: 1, proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 11 },
    { lclass: 1, proto: PROTO.TCP, portMin: 8000, portMax: 8999, action: 'allow', ruleId: 12 },
    { proto: PROTO.UDP, portMin: 53, portMax: 53, action: 'allow', ruleId: 13 },
    { proto: PROTO.ICMP, portMin: 0x0800, portMax: 0x08ff, action: 'allow', ruleId: 14 },
    { proto: V6.icmpProto, portMin: V6.echoRequest << 8, portMax: (V6.echoRequest << 8) | 0xff, action: 'allow', ruleId: 14 },
    { proto: PROTO.TCP, portMin: 22, portMax: 22, action: 'log', ruleId: 15 },
    { proto: PROTO.TCP, portMin: 22, portMax: 22, action: 'deny', ruleId: 16 },
    { lclass: 1, proto: PROTO.SCTP, portMin: 9, portMax: 9, action: 'allow', ruleId: 17 },
    { lclass: 1, proto: PROTO_OTHER, action: 'allow', ruleId: 18 },
  ],
  defaultRule: 99,
});
// Ingress (to the workload): from 10.1/16 (class 1) TCP 8080; everything else denied.
const ingress = buildTable({
  id: 'i000000000000001', direction: 'ingress',
  projection: [[G_TEN_ONE, 1]],
  protocols: [PROTO.TCP],
  rules: [{ lclass: 1, proto: PROTO.TCP, portMin: 8080, portMax: 8080, action: 'allow', ruleId: 21 }],
  defaultRule: 98,
});

for (const F of FAMILIES) t.test(`${F.label}: workload programs: verdicts`, async (t) => {
  const { EP } = F;
  const A = ADDR[F.v];
  const ICMP = F.icmpProto;
  const h = await WepHarness.create(`verdicts${F.v}`);
  t.teardown(() => h.close());
  h.setClasses([[A.TEN, G_TEN], [A.TEN_ONE, G_TEN_ONE]]);
  h.setEndpoint([F.host(EP)], ingress, egress);
  const from = (f: FlowPacket) => h.run('from', F.flow(f));
  const to = (f: FlowPacket) => h.run('to', F.flow(f));
  let sport = 30000;
  const sp = (): number => sport++;

  t.test('egress policy by class, protocol and port', async (t) => {
    t.same(from({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: sp(), dport: 80 }), { retval: 0, pass: true, reason: R.FORWARD }, 'class 1 tcp/80');
    t.same(from({ src: EP, dst: A.IN_ONE, proto: PROTO.TCP, sport: sp(), dport: 8500 }).pass, true, 'more specific prefix, same local class, range');
    t.same(from({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: sp(), dport: 8999 }).pass, true, 'range end');
    t.same(from({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: sp(), dport: 9000 }).reason, R.POLICY_DENY, 'past range end');
    t.same(from({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: sp(), dport: 81 }).reason, R.POLICY_DENY, 'wrong port');
    t.same(from({ src: EP, dst: A.OUT, proto: PROTO.TCP, sport: sp(), dport: 80 }).reason, R.POLICY_DENY, 'class 0');
    t.same(from({ src: EP, dst: A.OUT, proto: PROTO.UDP, sport: sp(), dport: 53 }).pass, true, 'udp/53 anywhere');
    t.same(from({ src: EP, dst: A.OUT, proto: PROTO.UDP, sport: sp(), dport: 54 }).reason, R.POLICY_DENY, 'udp/54');
    t.same(from({ src: EP, dst: A.OUT, proto: ICMP, icmpType: F.echoRequest, icmpId: sp() }).pass, true, 'echo request');
    t.same(from({ src: EP, dst: A.OUT, proto: ICMP, icmpType: F.icmpOther, icmpId: sp() }).reason, R.POLICY_DENY, 'timestamp / node information query');
    t.same(from({ src: EP, dst: A.IN, proto: PROTO.SCTP, sport: sp(), dport: 9 }).pass, true, 'sctp/9');
    t.same(from({ src: EP, dst: A.IN, proto: PROTO.SCTP, sport: sp(), dport: 10 }).reason, R.POLICY_DENY, 'sctp/10');
    t.same(from({ src: EP, dst: A.IN, proto: PROTO.GRE }).pass, true, 'unlisted protocol falls to "other" cells');
    t.same(from({ src: EP, dst: A.OUT, proto: PROTO.GRE }).reason, R.POLICY_DENY, '"other" in class 0');
    t.same(from({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: sp(), dport: 22 }).reason, R.POLICY_DENY, 'log then deny');
  });

  t.test('ingress policy', async (t) => {
    t.same(to({ src: A.SRC_ONE, dst: EP, proto: PROTO.TCP, sport: sp(), dport: 8080 }).pass, true, 'class 1 tcp/8080');
    t.same(to({ src: A.SRC_TEN, dst: EP, proto: PROTO.TCP, sport: sp(), dport: 8080 }).reason, R.POLICY_DENY, '10/8 is not class 1 here');
    t.same(to({ src: A.SRC_ONE, dst: EP, proto: PROTO.UDP, sport: sp(), dport: 8080 }).reason, R.POLICY_DENY, 'udp not listed -> other -> deny');
  });

  t.test('anti-spoofing on traffic from the workload only', async (t) => {
    t.same(from({ src: A.NEIGHBOUR, dst: A.IN, proto: PROTO.TCP, sport: sp(), dport: 80 }).reason, R.SPOOFED_SRC);
    t.same(from({ src: A.UNSPEC, dst: A.ALL, proto: PROTO.UDP, sport: 68, dport: 67 }).reason, R.SPOOFED_SRC);
  });

  if (F === V4) t.test('ARP passes, other ethertypes do not', async (t) => {
    t.same(h.run('from', eth({ ethertype: ETH_P.ARP }, Buffer.alloc(28))).reason, R.FORWARD);
    t.same(h.run('to', eth({ ethertype: ETH_P.ARP }, Buffer.alloc(28))).reason, R.FORWARD);
    // IPv6 is parsed (test/datapath/25-v6-parse): version 0 under its ethertype is a bad version.
    t.same(h.run('from', eth({ ethertype: ETH_P.IPV6 }, Buffer.alloc(60))).reason, R.BAD_IP_VERSION);
    t.same(h.run('from', eth({ ethertype: 0x88cc }, Buffer.alloc(60))).reason, R.UNSUPPORTED_L3);
  });

  t.test('fail closed: no table, unknown interface, disabled endpoint', async (t) => {
    const cur = h.writer.current(1)!;
    const epMap = h.dp.maps.ep!;
    const pkt = F.flow({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: sp(), dport: 80 });
    epMap.update(u32Key(1), endpointCodec.encode({ ...cur, table: [cur.table[0], 0xfffffff0] }));
    t.same(h.run('from', pkt).reason, R.NO_TABLE, 'table id not loaded');
    epMap.update(u32Key(1), endpointCodec.encode({ ...cur, flags: EP_F_DISABLED }));
    t.same(h.run('from', pkt).reason, R.ENDPOINT_DISABLED);
    epMap.delete(u32Key(1));
    t.same(h.run('from', pkt).reason, R.UNKNOWN_IFACE);
    t.same(h.run('to', pkt).reason, R.UNKNOWN_IFACE);
    t.same(h.run('from', eth({ ethertype: ETH_P.ARP }, Buffer.alloc(28))).reason, R.UNKNOWN_IFACE, 'even ARP');
    epMap.update(u32Key(1), endpointCodec.encode(cur));
    t.same(h.run('from', pkt).reason, R.FORWARD, 'restored');
  });

  t.test('Log rule and deny events on the ring buffer', async (t) => {
    const flow = (port: number) => (ev: { srcPort?: number }[]) => ev.filter((e) => e.srcPort === port).length >= 2;
    h.startEvents();
    // A marker flow (Log + deny) drains what earlier subtests left in the ring: FIFO, so once its
    // two events are in, every older one is too.
    from({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: 40999, dport: 22 });
    await h.eventsUntil(flow(40999));
    from({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: 41000, dport: 22 });
    const ev = await h.eventsUntil(flow(41000));
    t.equal(ev.length, 2, 'one log and one deny');
    const log = ev.find((e) => e.kind === 'log');
    const deny = ev.find((e) => e.kind === 'deny');
    t.match(log, { ruleId: 15, direction: 'egress', src: EP, dst: A.IN, srcPort: 41000, dstPort: 22, protocol: 6, endpointId: 7 });
    t.match(deny, { ruleId: 16, reason: 'policy_deny', direction: 'egress', dstPort: 22 });
    to({ src: A.OUT2, dst: EP, proto: ICMP, icmpType: F.echoRequest, icmpId: 3 });
    const ev2 = await h.eventsUntil((ev) => ev.length >= 1);
    t.match(ev2, [{ kind: 'deny', ruleId: 98, direction: 'ingress', src: A.OUT2, dstPort: F.echoRequest << 8, protocol: ICMP }]);
    // Retransmissions of a denied flow are dropped and counted, but reported once.
    for (let i = 0; i < 3; i++) from({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: 41001, dport: 22 });
    from({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: 41002, dport: 22 });
    const ev3 = await h.eventsUntil(flow(41002)); // the last flow sent: the earlier ones' events are in
    t.equal(ev3.filter((e) => e.kind === 'deny' && e.srcPort === 41001).length, 1, 'one deny event for three SYNs of one flow');
    t.equal(ev3.filter((e) => e.kind === 'log' && e.srcPort === 41001).length, 1, 'and one Log event');
    t.equal(ev3.filter((e) => e.kind === 'deny' && e.srcPort === 41002).length, 1, 'another flow is reported on its own');
  });

  t.test('counters count bytes per reason', async (t) => {
    const pkt = F.flow({ src: EP, dst: A.IN, proto: PROTO.TCP, sport: sp(), dport: 81 });
    const before = h.counters().find((r) => r.ifindex === 1 && r.dir === 1 && r.reason === R.POLICY_DENY)!;
    h.run('from', pkt);
    const after = h.counters().find((r) => r.ifindex === 1 && r.dir === 1 && r.reason === R.POLICY_DENY)!;
    t.equal(after.packets - before.packets, 1n);
    t.equal(after.bytes - before.bytes, BigInt(pkt.length));
  });

  if (F === V4) t.test('an IPv4 packet on the workload side with an IPv6 header is dropped', async (t) => {
    const p = eth({}, ipv4({ src: EP, dst: A.IN, proto: 6, version: 6 }, Buffer.alloc(20)));
    t.same(h.run('from', p).reason, R.BAD_IP_VERSION);
  });
});
