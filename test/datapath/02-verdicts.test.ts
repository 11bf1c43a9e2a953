// Every verdict path of the workload programs, through BPF_PROG_TEST_RUN on the real objects:
// policy allow/deny per class, protocol, port; anti-spoofing; fail-closed cases; ARP; and the
// reason counted for each drop.
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { buildTable } from '../../src/testbed/tables';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { flowPacket, eth, ipv4, PROTO, ETH_P } from '../../src/dataplane/bpf/packet';
import { endpointCodec, u32Key, EP_F_DISABLED } from '../../src/dataplane/bpf/codecs';
import { PROTO_OTHER } from '../../src/calc/types';

const EP = '192.168.1.10';
const G_TEN = 100, G_TEN_ONE = 101;

// Egress (from the workload): to 10/8 (local class 1) TCP 80 and 8000-8999; UDP 53 anywhere;
// ICMP echo request anywhere; Log then deny TCP 22; SCTP 9 to class 1; "other" protocols to
// class 1 allowed (GRE test); everything else denied by rule 99.
const egress = buildTable({
  id: 'e000000000000001', direction: 'egress',
  projection: [[G_TEN, 1], [G_TEN_ONE, 1]],
  protocols: [PROTO.ICMP, PROTO.TCP, PROTO.UDP, PROTO.SCTP],
  rules: [
    { lclass: 1, proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 11 },
    { lclass: 1, proto: PROTO.TCP, portMin: 8000, portMax: 8999, action: 'allow', ruleId: 12 },
    { proto: PROTO.UDP, portMin: 53, portMax: 53, action: 'allow', ruleId: 13 },
    { proto: PROTO.ICMP, portMin: 0x0800, portMax: 0x08ff, action: 'allow', ruleId: 14 },
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

t.test('workload programs: verdicts', async (t) => {
  const h = await WepHarness.create('verdicts');
  t.teardown(() => h.close());
  h.setClasses([['10.0.0.0/8', G_TEN], ['10.1.0.0/16', G_TEN_ONE]]);
  h.setEndpoint([`${EP}/32`], ingress, egress);
  const from = (f: Parameters<typeof flowPacket>[0]) => h.run('from', flowPacket(f));
  const to = (f: Parameters<typeof flowPacket>[0]) => h.run('to', flowPacket(f));
  let sport = 30000;
  const sp = (): number => sport++;

  t.test('egress policy by class, protocol and port', async (t) => {
    t.same(from({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: sp(), dport: 80 }), { retval: 0, pass: true, reason: R.FORWARD }, 'class 1 tcp/80');
    t.same(from({ src: EP, dst: '10.1.3.4', proto: PROTO.TCP, sport: sp(), dport: 8500 }).pass, true, 'more specific prefix, same local class, range');
    t.same(from({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: sp(), dport: 8999 }).pass, true, 'range end');
    t.same(from({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: sp(), dport: 9000 }).reason, R.POLICY_DENY, 'past range end');
    t.same(from({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: sp(), dport: 81 }).reason, R.POLICY_DENY, 'wrong port');
    t.same(from({ src: EP, dst: '198.18.0.5', proto: PROTO.TCP, sport: sp(), dport: 80 }).reason, R.POLICY_DENY, 'class 0');
    t.same(from({ src: EP, dst: '198.18.0.5', proto: PROTO.UDP, sport: sp(), dport: 53 }).pass, true, 'udp/53 anywhere');
    t.same(from({ src: EP, dst: '198.18.0.5', proto: PROTO.UDP, sport: sp(), dport: 54 }).reason, R.POLICY_DENY, 'udp/54');
    t.same(from({ src: EP, dst: '198.18.0.5', proto: PROTO.ICMP, icmpType: 8, icmpId: sp() }).pass, true, 'echo request');
    t.same(from({ src: EP, dst: '198.18.0.5', proto: PROTO.ICMP, icmpType: 13, icmpId: sp() }).reason, R.POLICY_DENY, 'timestamp');
    t.same(from({ src: EP, dst: '10.2.3.4', proto: PROTO.SCTP, sport: sp(), dport: 9 }).pass, true, 'sctp/9');
    t.same(from({ src: EP, dst: '10.2.3.4', proto: PROTO.SCTP, sport: sp(), dport: 10 }).reason, R.POLICY_DENY, 'sctp/10');
    t.same(from({ src: EP, dst: '10.2.3.4', proto: PROTO.GRE }).pass, true, 'unlisted protocol falls to "other" cells');
    t.same(from({ src: EP, dst: '198.18.0.5', proto: PROTO.GRE }).reason, R.POLICY_DENY, '"other" in class 0');
    t.same(from({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: sp(), dport: 22 }).reason, R.POLICY_DENY, 'log then deny');
  });

  t.test('ingress policy', async (t) => {
    t.same(to({ src: '10.1.0.9', dst: EP, proto: PROTO.TCP, sport: sp(), dport: 8080 }).pass, true, 'class 1 tcp/8080');
    t.same(to({ src: '10.2.0.9', dst: EP, proto: PROTO.TCP, sport: sp(), dport: 8080 }).reason, R.POLICY_DENY, '10/8 is not class 1 here');
    t.same(to({ src: '10.1.0.9', dst: EP, proto: PROTO.UDP, sport: sp(), dport: 8080 }).reason, R.POLICY_DENY, 'udp not listed -> other -> deny');
  });

  t.test('anti-spoofing on traffic from the workload only', async (t) => {
    t.same(from({ src: '192.168.1.11', dst: '10.2.3.4', proto: PROTO.TCP, sport: sp(), dport: 80 }).reason, R.SPOOFED_SRC);
    t.same(from({ src: '0.0.0.0', dst: '255.255.255.255', proto: PROTO.UDP, sport: 68, dport: 67 }).reason, R.SPOOFED_SRC);
  });

  t.test('ARP passes, other ethertypes do not', async (t) => {
    t.same(h.run('from', eth({ ethertype: ETH_P.ARP }, Buffer.alloc(28))).reason, R.FORWARD);
    t.same(h.run('to', eth({ ethertype: ETH_P.ARP }, Buffer.alloc(28))).reason, R.FORWARD);
    // IPv6 is parsed (test/datapath/25-v6-parse): version 0 under its ethertype is a bad version.
    t.same(h.run('from', eth({ ethertype: ETH_P.IPV6 }, Buffer.alloc(60))).reason, R.BAD_IP_VERSION);
    t.same(h.run('from', eth({ ethertype: 0x88cc }, Buffer.alloc(60))).reason, R.UNSUPPORTED_L3);
  });

  t.test('fail closed: no table, unknown interface, disabled endpoint', async (t) => {
    const cur = h.writer.current(1)!;
    const epMap = h.dp.maps.ep!;
    const pkt = flowPacket({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: sp(), dport: 80 });
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
    h.startEvents();
    await h.takeEvents(10);
    from({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: 41000, dport: 22 });
    const ev = await h.takeEvents();
    t.equal(ev.length, 2, 'one log and one deny');
    const log = ev.find((e) => e.kind === 'log');
    const deny = ev.find((e) => e.kind === 'deny');
    t.match(log, { ruleId: 15, direction: 'egress', src: EP, dst: '10.2.3.4', srcPort: 41000, dstPort: 22, protocol: 6, endpointId: 7 });
    t.match(deny, { ruleId: 16, reason: 'policy_deny', direction: 'egress', dstPort: 22 });
    to({ src: '198.18.0.7', dst: EP, proto: PROTO.ICMP, icmpType: 8, icmpId: 3 });
    const ev2 = await h.takeEvents();
    t.match(ev2, [{ kind: 'deny', ruleId: 98, direction: 'ingress', src: '198.18.0.7', dstPort: 0x0800, protocol: 1 }]);
    // Retransmissions of a denied flow are dropped and counted, but reported once.
    for (let i = 0; i < 3; i++) from({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: 41001, dport: 22 });
    from({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: 41002, dport: 22 });
    const ev3 = await h.takeEvents();
    t.equal(ev3.filter((e) => e.kind === 'deny' && e.srcPort === 41001).length, 1, 'one deny event for three SYNs of one flow');
    t.equal(ev3.filter((e) => e.kind === 'log' && e.srcPort === 41001).length, 1, 'and one Log event');
    t.equal(ev3.filter((e) => e.kind === 'deny' && e.srcPort === 41002).length, 1, 'another flow is reported on its own');
  });

  t.test('counters count bytes per reason', async (t) => {
    const pkt = flowPacket({ src: EP, dst: '10.2.3.4', proto: PROTO.TCP, sport: sp(), dport: 81 });
    const before = h.counters().find((r) => r.ifindex === 1 && r.dir === 1 && r.reason === R.POLICY_DENY)!;
    h.run('from', pkt);
    const after = h.counters().find((r) => r.ifindex === 1 && r.dir === 1 && r.reason === R.POLICY_DENY)!;
    t.equal(after.packets - before.packets, 1n);
    t.equal(after.bytes - before.bytes, BigInt(pkt.length));
  });

  t.test('an IPv4 packet on the workload side with an IPv6 header is dropped', async (t) => {
    const p = eth({}, ipv4({ src: EP, dst: '10.2.3.4', proto: 6, version: 6 }, Buffer.alloc(20)));
    t.same(h.run('from', p).reason, R.BAD_IP_VERSION);
  });
});
