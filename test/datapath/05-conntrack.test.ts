// Conntrack in BPF: replies admitted, TCP states, established flows skip policy across a policy
// flip, per-side approval (an allow at one end never skips the other end's policy), ICMP errors
// as related, expiry by timeout and the agent's sweep, LRU eviction when full. Every case runs in
// IPv4 and in IPv6 from one body (src/testbed/family.ts).
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { buildTable, allowAll, denyAll } from '../../src/testbed/tables';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { tcp, PROTO, type FlowPacket } from '../../src/dataplane/bpf/packet';
import { CtState, CTF, u32Key, MAP } from '../../src/dataplane/bpf/codecs';
import { FAMILIES } from '../../src/testbed/family';
import { sweepConntrack } from '../../src/dataplane/bpf/conntrack';
import { readQuota } from '../../src/dataplane/bpf/quota';

for (const F of FAMILIES) {
  const { EP, PEER, ROUTER } = F;
  const H = F.host;
  const flowPacket = (f: FlowPacket) => F.flow(f);
  const ICMP = F.icmpProto;

  const egressWeb = buildTable({
    id: 'e000000000000005', direction: 'egress', protocols: [ICMP, PROTO.TCP, PROTO.UDP],
    rules: [
      { proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 1 },
      { proto: PROTO.UDP, portMin: 53, portMax: 53, action: 'allow', ruleId: 2 },
      { proto: ICMP, portMin: F.echoRequest << 8, portMax: (F.echoRequest << 8) | 0xff, action: 'allow', ruleId: 3 },
    ],
    defaultRule: 9,
  });

  const ctEntry = (h: WepHarness, a: [string, number], b: [string, number], proto: number) => F.ctEntry(h, a, b, proto);

  t.test(`${F.label}: conntrack`, async (t) => {
    const h = await WepHarness.create(`ct${F.v}`);
    t.teardown(() => h.close());
    h.setEndpoint([H(EP)], denyAll('i000000000000005', 'ingress'), egressWeb);
    const out = (sport: number, flags: string, extra = {}) => h.run('from', flowPacket({ src: EP, dst: PEER, proto: PROTO.TCP, sport, dport: 80, flags, ...extra }));
    const back = (dport: number, flags: string) => h.run('to', flowPacket({ src: PEER, dst: EP, proto: PROTO.TCP, sport: 80, dport, flags }));

    t.test('TCP handshake, replies admitted against a deny-all ingress policy', async (t) => {
      t.equal(out(40000, 'S').reason, R.FORWARD, 'SYN out');
      t.equal(ctEntry(h, [EP, 40000], [PEER, 80], 6)?.state, CtState.SYN_SENT);
      t.equal(back(40000, 'SA').reason, R.FORWARD, 'SYN-ACK in (reply)');
      t.equal(ctEntry(h, [EP, 40000], [PEER, 80], 6)?.state, CtState.SYN_RECV);
      t.equal(out(40000, 'A').reason, R.FORWARD, 'ACK out');
      const e = ctEntry(h, [EP, 40000], [PEER, 80], 6)!;
      t.equal(e.state, CtState.ESTABLISHED);
      t.equal(Number(e.flags) & CTF.SRC_OK, CTF.SRC_OK, 'approved by the sender\'s egress policy');
      t.equal(Number(e.flags) & CTF.DST_OK, 0, 'not by any ingress policy');
      t.equal(e.rule, 1, 'the rule that allowed it');
      t.equal(back(40000, 'PA').reason, R.FORWARD, 'data in');
      t.equal(back(40001, 'SA').reason, R.POLICY_DENY, 'an unsolicited SYN-ACK is judged by ingress policy');
    });

    t.test('established flows keep their verdict across a policy flip; new ones get the new policy', async (t) => {
      t.equal(out(40100, 'S').reason, R.FORWARD);
      back(40100, 'SA'); out(40100, 'A');
      const before = h.writer.current(1)!;
      h.setEndpoint([H(EP)], denyAll('i000000000000005', 'ingress'), denyAll('e0000000000000dd', 'egress'));
      const after = h.writer.current(1)!;
      t.equal(after.version, before.version + 1, 'one flip');
      t.not(after.table[1], before.table[1], 'egress switched to a new table id');
      t.equal(after.table[0], before.table[0], 'unchanged ingress table kept its id');
      t.notOk(h.dp.maps.tbl!.lookup(u32Key(before.table[1])), 'old egress table deleted after the flip');
      t.equal(out(40100, 'PA').reason, R.FORWARD, 'existing flow still passes');
      t.equal(back(40100, 'PA').reason, R.FORWARD, 'and its replies');
      t.equal(out(40101, 'S').reason, R.POLICY_DENY, 'a new connection is denied');
      h.setEndpoint([H(EP)], denyAll('i000000000000005', 'ingress'), egressWeb);
    });

    t.test('FIN and RST states; a SYN on a closed tuple is a new connection', async (t) => {
      out(40200, 'S'); back(40200, 'SA'); out(40200, 'A');
      out(40200, 'FA');
      t.equal(ctEntry(h, [EP, 40200], [PEER, 80], 6)?.state, CtState.FIN_WAIT);
      back(40200, 'FA');
      t.equal(ctEntry(h, [EP, 40200], [PEER, 80], 6)?.state, CtState.CLOSING);
      out(40201, 'S'); back(40201, 'SA'); out(40201, 'A');
      back(40201, 'R');
      t.equal(ctEntry(h, [EP, 40201], [PEER, 80], 6)?.state, CtState.RST);
      h.setEndpoint([H(EP)], denyAll('i000000000000005', 'ingress'), denyAll('e0000000000000de', 'egress'));
      t.equal(out(40201, 'S').reason, R.POLICY_DENY, 'SYN reusing a reset tuple goes through (new) policy');
      h.setEndpoint([H(EP)], denyAll('i000000000000005', 'ingress'), egressWeb);
    });

    t.test('each end approves for itself', async (t) => {
      // Workload -> workload on the same node: the sender's egress allows, the receiver's
      // ingress (deny-all here) must still be consulted on its own hook.
      const EP2 = F.EP2;
      const p = flowPacket({ src: EP, dst: EP2, proto: PROTO.TCP, sport: 40300, dport: 80, flags: 'S' });
      t.equal(h.run('from', p).reason, R.FORWARD, 'sender side allows');
      t.equal(h.run('to', p).reason, R.POLICY_DENY, 'receiver side still denies');
      const p2 = flowPacket({ src: EP, dst: EP2, proto: PROTO.TCP, sport: 40300, dport: 80, flags: 'A' });
      t.equal(h.run('to', p2).reason, R.POLICY_DENY, 'and keeps denying later packets of the flow');
      // The responder's side never approved, so its "replies" are judged by its own egress policy
      // (tcp/80 only): a reply from port 80 to the client's port 40400 is denied. (Both addresses
      // belong to the endpoint under test here, to pass anti-spoofing on one interface.)
      h.setEndpoint([H(EP), H(EP2)], denyAll('i000000000000005', 'ingress'), egressWeb);
      t.equal(h.run('from', flowPacket({ src: EP2, dst: EP, proto: PROTO.TCP, sport: 40400, dport: 80, flags: 'S' })).reason, R.FORWARD,
        'initiator side allows (entry with SRC_OK only)');
      t.equal(h.run('from', flowPacket({ src: EP, dst: EP2, proto: PROTO.TCP, sport: 80, dport: 40400, flags: 'SA' })).reason, R.POLICY_DENY,
        'an unapproved reply is not waved through by conntrack');
      h.setEndpoint([H(EP)], denyAll('i000000000000005', 'ingress'), egressWeb);
    });

    t.test('UDP and ICMP echo replies; ICMP errors as related', async (t) => {
      t.equal(h.run('from', flowPacket({ src: EP, dst: PEER, proto: PROTO.UDP, sport: 5000, dport: 53 })).reason, R.FORWARD);
      t.equal(h.run('to', flowPacket({ src: PEER, dst: EP, proto: PROTO.UDP, sport: 53, dport: 5000 })).reason, R.FORWARD, 'UDP reply');
      t.equal(h.run('to', flowPacket({ src: PEER, dst: EP, proto: PROTO.UDP, sport: 53, dport: 5001 })).reason, R.POLICY_DENY, 'other port');
      t.equal(ctEntry(h, [EP, 5000], [PEER, 53], 17)?.state, CtState.UDP);
      t.equal(h.run('from', flowPacket({ src: EP, dst: PEER, proto: ICMP, icmpType: F.echoRequest, icmpId: 77 })).reason, R.FORWARD);
      t.equal(h.run('to', flowPacket({ src: PEER, dst: EP, proto: ICMP, icmpType: F.echoReply, icmpId: 77 })).reason, R.FORWARD, 'echo reply');
      t.equal(h.run('to', flowPacket({ src: PEER, dst: EP, proto: ICMP, icmpType: F.echoReply, icmpId: 78 })).reason, R.POLICY_DENY, 'other id');
      // A router on the path says "fragmentation needed" (IPv6: packet too big) about the established TCP flow 40000.
      const inner = F.quote(EP, PEER, PROTO.TCP, tcp({ sport: 40000, dport: 80, flags: 'A' }));
      const err = (body: Buffer) => F.frame(ROUTER, EP, ICMP, F.icmp(F.tooBig[0], F.tooBig[1], { payload: body }));
      t.equal(h.run('to', err(inner)).reason, R.FORWARD, 'frag-needed for a tracked flow passes');
      const stranger = F.quote(EP, PEER, PROTO.TCP, tcp({ sport: 49999, dport: 80 }));
      t.equal(h.run('to', err(stranger)).reason, R.POLICY_DENY, 'an error about an unknown flow does not');
      const ttl = F.frame(ROUTER, EP, ICMP, F.icmp(F.v === 4 ? 11 : 3, 0, { payload: inner }));
      t.equal(h.run('to', ttl).reason, R.FORWARD, 'time exceeded for a tracked flow passes');
    });

    t.test('ICMP other than echo is judged per packet: an allowed type does not open the door to others', async (t) => {
      // Egress allows ICMP 8/x only. Unreachable (3/3, no inner flow) and timestamp (13) are denied
      // whatever was sent before, and nothing is tracked for them.
      const u = (F.unreach << 8) | F.portUnreach;
      h.setEndpoint([H(EP)], denyAll('i000000000000005', 'ingress'), buildTable({
        id: 'e000000000000007', direction: 'egress', protocols: [ICMP],
        rules: [{ proto: ICMP, portMin: u, portMax: u, action: 'allow', ruleId: 41 }], defaultRule: 42 }));
      const unreach = F.frame(EP, PEER, ICMP, F.icmp(F.unreach, F.portUnreach, { payload: Buffer.alloc(4) }));
      t.equal(h.run('from', unreach).reason, R.FORWARD, `allowed type ${F.unreach}/${F.portUnreach}`);
      t.equal(h.run('from', flowPacket({ src: EP, dst: PEER, proto: ICMP, icmpType: F.icmpOther })).reason, R.POLICY_DENY, `type ${F.icmpOther} still denied`);
      t.notOk(ctEntry(h, [EP, 0], [PEER, 0], ICMP), 'no conntrack entry for non-echo ICMP');
      h.setEndpoint([H(EP)], denyAll('i000000000000005', 'ingress'), egressWeb);
    });
  });

  t.test(`${F.label}: expiry by timeout and the sweep; a full table and a workload over its quota refuse, never evict`, async (t) => {
    const EP2 = F.EP2;
    const h = await WepHarness.create(`ctexp${F.v}`, {
      ctMaxEntries: 256, ctQuota: 100,
      ctTimeouts: { synSec: 0.3, establishedSec: 0.3, finSec: 0.3, rstSec: 0.3, udpSec: 0.3, icmpSec: 0.3, otherSec: 0.3 },
    });
    t.teardown(() => h.close());
    const sweep = () => sweepConntrack(F.ct(h), h.dp.ctTimeouts, process.hrtime.bigint(), F.ctq(h));
    const live = (addr: string) => readQuota(F.ctq(h)).find((r) => r.addr === addr)?.live ?? 0;
    h.setEndpoint([H(EP), H(EP2)], denyAll('i000000000000006', 'ingress'), allowAll('e000000000000006', 'egress'));
    t.equal(h.run('from', flowPacket({ src: EP, dst: PEER, proto: PROTO.UDP, sport: 6000, dport: 53 })).reason, R.FORWARD);
    t.equal(h.run('to', flowPacket({ src: PEER, dst: EP, proto: PROTO.UDP, sport: 53, dport: 6000 })).reason, R.FORWARD, 'reply while live');
    let sw = sweep();
    t.equal(sw.expired, 0, 'nothing expired yet');
    t.equal(sw.live, 1);
    t.same([...sw.byOwner!], [[EP, 1]], 'owned by the workload whose egress created it');
    await new Promise((r) => setTimeout(r, 450));
    t.equal(h.run('to', flowPacket({ src: PEER, dst: EP, proto: PROTO.UDP, sport: 53, dport: 6000 })).reason, R.POLICY_DENY,
      'after the timeout the reply is a new (denied) flow, before any sweep');
    sw = sweep();
    t.equal(sw.expired, 1, 'the sweep deletes the expired entry');
    t.equal(F.ctKeys(h), 0, 'table empty');
    t.equal(live(EP), 0, 'and releases it from the workload\'s count');

    // A new flow over an entry of the same tuple that is still in the table, expired or closed
    // (a port that came round again before any sweep): the entry is replaced in place of a
    // second one, the old owner released, the new one counted (lib/conntrack.h, ct_commit:
    // the lookup's stale entry replaced at once).
    const udp = (src: string, sport: number, dst: string, dport: number) =>
      h.run('from', flowPacket({ src, dst, proto: PROTO.UDP, sport, dport })).reason;
    t.equal(udp(EP, 7000, EP2, 53), R.FORWARD, 'EP -> EP2: a new flow, owned by EP');
    const first = ctEntry(h, [EP, 7000], [EP2, 53], PROTO.UDP)!;
    t.same([live(EP), live(EP2)], [1, 0]);
    await new Promise((r) => setTimeout(r, 450));
    t.equal(udp(EP2, 53, EP, 7000), R.FORWARD, 'the same tuple from EP2 after the timeout, before any sweep: a new flow');
    const second = ctEntry(h, [EP, 7000], [EP2, 53], PROTO.UDP)!;
    t.ok(second.created_ns > first.created_ns, 'the expired entry was replaced');
    t.equal(F.ctKeys(h), 1, 'one entry for the tuple');
    t.same([live(EP), live(EP2)], [0, 1], 'the old owner released, the new one counted');
    t.equal(h.run('to', flowPacket({ src: EP, dst: EP2, proto: PROTO.UDP, sport: 7000, dport: 53 })).reason, R.FORWARD,
      'EP2\'s reply direction admitted by the new entry');
    // TCP: a SYN on a reset tuple (live, closed) reopens it under the policy that allows it.
    const seg = (flags: string) => h.run('from', flowPacket({ src: EP, dst: PEER, proto: PROTO.TCP, sport: 7001, dport: 80, flags })).reason;
    const back = (flags: string) => h.run('to', flowPacket({ src: PEER, dst: EP, proto: PROTO.TCP, sport: 80, dport: 7001, flags })).reason;
    h.setEndpoint([H(EP), H(EP2)], allowAll('i000000000000016', 'ingress'), allowAll('e000000000000016', 'egress'));
    t.same([seg('S'), back('SA'), seg('A'), back('R')], [R.FORWARD, R.FORWARD, R.FORWARD, R.FORWARD]);
    t.equal(ctEntry(h, [EP, 7001], [PEER, 80], PROTO.TCP)?.state, CtState.RST);
    const liveBefore = live(EP);
    t.equal(seg('S'), R.FORWARD, 'a SYN on the reset tuple: a new connection');
    t.equal(ctEntry(h, [EP, 7001], [PEER, 80], PROTO.TCP)?.state, CtState.SYN_SENT, 'the entry starts over');
    t.equal(live(EP), liveBefore, 'EP owned the reset entry and owns its replacement: its count unchanged');
    t.equal(back('SA'), R.FORWARD, 'the new connection\'s SYN-ACK admitted');
    sw = sweep();
    t.equal(F.ctKeys(h), sw.live, 'the sweep agrees');
    h.setEndpoint([H(EP), H(EP2)], denyAll('i000000000000006', 'ingress'), allowAll('e000000000000006', 'egress'));

    // EP floods 1,000 new flows: 100 (its quota) get state, the rest are refused and counted
    // (default timeouts from here on: nothing expires during the test).
    const hq = await WepHarness.create(`ctquota${F.v}`, { ctMaxEntries: 256, ctQuota: 100 });
    t.teardown(() => hq.close());
    hq.setEndpoint([H(EP), H(EP2)], denyAll('i000000000000008', 'ingress'), allowAll('e000000000000008', 'egress'));
    const flood = (src: string, n: number, base: number) => {
      const by: Record<number, number> = {};
      for (let i = 0; i < n; i++) {
        const r = hq.run('from', flowPacket({ src, dst: PEER, proto: PROTO.UDP, sport: base + i, dport: 53 })).reason;
        by[r] = (by[r] ?? 0) + 1;
      }
      return by;
    };
    t.same(flood(EP, 1000, 10000), { [R.FORWARD]: 100, [R.CT_QUOTA]: 900 }, 'quota: 100 tracked, 900 refused with ct_quota');
    t.equal(readQuota(F.ctq(hq)).find((r) => r.addr === EP)?.live, 100);
    t.equal(hq.run('to', flowPacket({ src: PEER, dst: EP, proto: PROTO.UDP, sport: 53, dport: 10000 })).reason, R.FORWARD,
      'its established flows keep working');
    // Another workload still gets state, until the table (256) is full: then refused, nothing evicted.
    t.same(flood(EP2, 200, 20000), { [R.FORWARD]: 100, [R.CT_QUOTA]: 100 }, 'the other workload has its own quota');
    const h2 = await WepHarness.create(`ctfull${F.v}`, { ctMaxEntries: 256, ctQuota: 0 });
    t.teardown(() => h2.close());
    h2.setEndpoint([H(EP), H(EP2)], denyAll('i000000000000007', 'ingress'), allowAll('e000000000000007', 'egress'));
    let full = 0, ok = 0;
    for (let i = 0; i < 300; i++) {
      const r = h2.run('from', flowPacket({ src: EP, dst: PEER, proto: PROTO.UDP, sport: 30000 + i, dport: 53 })).reason;
      if (r === R.FORWARD) ok++;
      else if (r === R.CT_TABLE_FULL) full++;
    }
    t.same([ok, full], [256, 44], 'no quota: a full table refuses the rest with ct_table_full');
    t.equal(h2.run('to', flowPacket({ src: PEER, dst: EP, proto: PROTO.UDP, sport: 53, dport: 30000 })).reason, R.FORWARD,
      'the oldest flow was not evicted');
    t.equal((F.v === 4 ? h.dp.maps.ct4 : h.dp.maps.ct6)!.info.maxEntries, 256, `${F.v === 4 ? MAP.ct4 : MAP.ct6} sized at load`);
  });
}
