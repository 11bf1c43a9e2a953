// Hostile packets against the real workload programs (BPF_PROG_TEST_RUN), the guarantees of docs/security.md:
// impossible TCP flag combinations are INVALID; a request the receiver's ingress policy denied
// never opens the reply path; the ICMP echo key tells request from reply; a later fragment
// follows its own first fragment at each point and never creates or matches conntrack state;
// ICMP errors pass as related only when addressed to the quoted source, about a live flow the
// local endpoint approved. docs/security.md lists which guarantee each case holds. Every case that
// has an IPv6 form runs in both families from one body (src/testbed/family.ts); IPv4 options and
// the quoted later fragment are IPv4's (IPv6's routing header and fragment quotes: datapath/25, 26).
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { buildTable, allowAll, denyAll } from '../../src/testbed/tables';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { flowPacket, eth, ipv4, icmp, tcp, udp, PROTO } from '../../src/dataplane/bpf/packet';
import { CtState, CTF } from '../../src/dataplane/bpf/codecs';
import { FAMILIES, tcpFrame, udpFrame } from '../../src/testbed/family';

const CTF_SYN_SEEN = 1 << 11; // bpf/shared/maps.h TORTIE_CTF_SYN_SEEN

for (const F of FAMILIES) {
  const { EP, EP2, PEER, ROUTER, OTHER } = F;
  const H = F.host;
  const tcpPkt = (src: string, dst: string, sport: number, dport: number, flags: string) => tcpFrame(F, src, dst, sport, dport, flags);
  const icmpErr = (src: string, dst: string, quoted: Buffer, type = F.unreach, code = F.portUnreach) =>
    F.frame(src, dst, F.icmpProto, F.icmp(type, code, { payload: quoted }));
  const quotedTcp = (src: string, dst: string, sport: number, dport: number) => F.quote(src, dst, PROTO.TCP, tcp({ sport, dport, flags: 'S' }));
  const quotedUdp = (src: string, dst: string, sport: number, dport: number) => F.ip(src, dst, PROTO.UDP, udp({ sport, dport }));
  const icmpType = (type: number) => ({ portMin: type << 8, portMax: (type << 8) | 0xff });

  t.test(`${F.label}: impossible TCP flag combinations are INVALID, even on an allowed established flow`, async (t) => {
    const h = await WepHarness.create(`hflags${F.v}`);
    t.teardown(() => h.close());
    h.setEndpoint([H(EP)], allowAll('i000000000000101', 'ingress'), allowAll('e000000000000101', 'egress'));
    t.equal(h.run('from', tcpPkt(EP, PEER, 41000, 80, 'S')).reason, R.FORWARD, 'SYN');
    t.equal(h.run('to', tcpPkt(PEER, EP, 80, 41000, 'SA')).reason, R.FORWARD, 'SYN-ACK');
    t.equal(h.run('from', tcpPkt(EP, PEER, 41000, 80, 'A')).reason, R.FORWARD, 'ACK');
    const invalid = ['SF', 'SR', '', 'FPU', 'FSRPAU', 'F', 'FP', 'SRA', 'SFA', 'U', 'P', 'RF', 'RFA'];
    for (const f of invalid) {
      t.equal(h.run('to', tcpPkt(PEER, EP, 80, 41000, f)).reason, R.TCP_BAD_FLAGS, `in: "${f || 'NULL'}" dropped on the established flow`);
      t.equal(h.run('from', tcpPkt(EP, PEER, 41001, 80, f)).reason, R.TCP_BAD_FLAGS, `out: "${f || 'NULL'}" dropped as a new flow`);
    }
    // Linux ignores PSH, ECE and CWR when it checks: these stay valid.
    for (const f of ['S', 'SU', 'SA', 'SEC', 'R', 'RA', 'FA', 'FAU', 'A', 'AU', 'PA', 'PAEC', 'FPA']) {
      t.equal(h.run('to', tcpPkt(PEER, EP, 80, 41000, f)).reason, R.FORWARD, `"${f}" is valid`);
    }
    t.ok(h.counters().some((c) => c.reason === R.TCP_BAD_FLAGS && c.packets > 0n), 'counted under its own reason');
  });

  t.test(`${F.label}: a request denied by the receiver never opens the reply path to the sender`, async (t) => {
    const h = await WepHarness.create(`hreply${F.v}`);
    t.teardown(() => h.close());
    // Both workloads' addresses on the interface under test (one ifindex in test runs): the
    // sender's egress and the receiver's ingress are the two points of one same-node flow.
    h.setEndpoint([H(EP), H(EP2)], denyAll('i000000000000102', 'ingress'), allowAll('e000000000000102', 'egress'));
    t.equal(h.run('from', tcpPkt(EP, EP2, 42000, 80, 'S')).reason, R.FORWARD, 'sender egress allows');
    t.equal(h.run('to', tcpPkt(EP, EP2, 42000, 80, 'S')).reason, R.POLICY_DENY, 'receiver ingress denies');
    t.equal(h.run('from', tcpPkt(EP2, EP, 80, 42000, 'SA')).reason, R.FORWARD, 'the receiver may send (its egress allows)');
    t.equal(h.run('to', tcpPkt(EP2, EP, 80, 42000, 'SA')).reason, R.POLICY_DENY, 'but its "reply" is new traffic to the sender, denied');
    // Raced: the receiver's forged reply passes its own point before the request reaches it.
    t.equal(h.run('from', tcpPkt(EP, EP2, 42001, 80, 'S')).reason, R.FORWARD);
    t.equal(h.run('from', tcpPkt(EP2, EP, 80, 42001, 'SA')).reason, R.FORWARD, 'forged reply leaves the receiver');
    t.equal(h.run('to', tcpPkt(EP2, EP, 80, 42001, 'SA')).reason, R.POLICY_DENY, 'and is still not a reply at the sender');
    // Control: once the receiver's ingress allows tcp/80, the same exchange works.
    h.setEndpoint([H(EP), H(EP2)], buildTable({ id: 'i000000000000103', direction: 'ingress', protocols: [PROTO.TCP],
      rules: [{ proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 5 }], defaultRule: 6 }), allowAll('e000000000000102', 'egress'));
    t.equal(h.run('from', tcpPkt(EP, EP2, 42002, 80, 'S')).reason, R.FORWARD);
    t.equal(h.run('to', tcpPkt(EP, EP2, 42002, 80, 'S')).reason, R.FORWARD, 'receiver allows');
    t.equal(h.run('from', tcpPkt(EP2, EP, 80, 42002, 'SA')).reason, R.FORWARD);
    t.equal(h.run('to', tcpPkt(EP2, EP, 80, 42002, 'SA')).reason, R.FORWARD, 'reply admitted by conntrack');
    t.equal(h.run('to', tcpPkt(EP2, EP, 80, 42002, 'A')).reason, R.FORWARD, 'and the rest of the flow');
  });

  t.test(`${F.label}: ICMP echo: an outgoing ping admits its replies, not the peer's requests`, async (t) => {
    const h = await WepHarness.create(`hecho${F.v}`);
    t.teardown(() => h.close());
    h.setEndpoint([H(EP)], denyAll('i000000000000104', 'ingress'), allowAll('e000000000000104', 'egress'));
    const echo = (src: string, dst: string, type: number, id: number) => F.flow({ src, dst, proto: F.icmpProto, icmpType: type, icmpId: id });
    const [REQ, REP] = [F.echoRequest, F.echoReply];
    t.equal(h.run('from', echo(EP, PEER, REQ, 77)).reason, R.FORWARD, 'ping out');
    t.equal(h.run('to', echo(PEER, EP, REQ, 77)).reason, R.POLICY_DENY, 'the peer\'s echo request with the same id is denied');
    t.equal(h.run('to', echo(PEER, EP, REP, 77)).reason, R.FORWARD, 'the echo reply passes');
    t.equal(h.run('to', echo(PEER, EP, REP, 78)).reason, R.POLICY_DENY, 'a reply with another id does not');
    // And the other way round: the peer's allowed ping does not let our requests out unjudged.
    h.setEndpoint([H(EP)], allowAll('i000000000000105', 'ingress'), denyAll('e000000000000105', 'egress'));
    t.equal(h.run('to', echo(PEER, EP, REQ, 90)).reason, R.FORWARD, 'peer pings in');
    t.equal(h.run('from', echo(EP, PEER, REP, 90)).reason, R.FORWARD, 'our reply goes out');
    t.equal(h.run('from', echo(EP, PEER, REQ, 90)).reason, R.POLICY_DENY, 'our request with that id is judged by egress policy');
  });

  t.test(`${F.label}: fragments: a later fragment follows its first fragment at this point, and never makes state`, async (t) => {
    const h = await WepHarness.create(`hfrag${F.v}`);
    t.teardown(() => h.close());
    // Ingress: ICMP destination-unreachable only; egress: ICMP destination-unreachable only.
    const onlyUnreach = (id: string, direction: 'ingress' | 'egress') => buildTable({ id, direction, protocols: [F.icmpProto],
      rules: [{ proto: F.icmpProto, ...icmpType(F.unreach), action: 'allow', ruleId: 7 }], defaultRule: 8 });
    h.setEndpoint([H(EP)], onlyUnreach('i000000000000106', 'ingress'), onlyUnreach('e000000000000106', 'egress'));
    const quoted = quotedUdp(EP, PEER, 5000, 53);
    const body = F.icmp(F.unreach, F.portUnreach, { payload: Buffer.concat([quoted, Buffer.alloc(64)]) });
    const first = F.fragment(PEER, EP, F.icmpProto, 0x4242, 0, true, body.subarray(0, 48));
    const later = F.fragment(PEER, EP, F.icmpProto, 0x4242, 6, false, body.subarray(48));
    const ctBefore = F.ctKeys(h);
    t.equal(h.run('to', first).reason, R.FORWARD, 'first fragment: unreachable, allowed by policy');
    t.equal(h.run('to', later).reason, R.FORWARD, 'its later fragment follows it');
    t.equal(F.ctKeys(h), ctBefore, 'no conntrack entry created');
    const echo = (src: string, dst: string, type: number) => F.flow({ src, dst, proto: F.icmpProto, icmpType: type, icmpId: 0 });
    t.equal(h.run('to', echo(PEER, EP, F.echoRequest)).reason, R.POLICY_DENY, 'no echo channel (id 0) opened inwards');
    t.equal(h.run('from', echo(EP, PEER, F.echoRequest)).reason, R.POLICY_DENY, 'nor outwards');
    t.equal(h.run('from', echo(EP, PEER, F.echoReply)).reason, R.POLICY_DENY, 'nor for replies');
    const stray = F.fragment(PEER, EP, F.icmpProto, 0x4343, 6, false, body.subarray(48));
    t.equal(h.run('to', stray).reason, R.FRAG_UNKNOWN, 'a later fragment without its first is dropped');
    // The sender's point does not vouch for the receiver's.
    h.setEndpoint([H(EP), H(EP2)], denyAll('i000000000000107', 'ingress'), allowAll('e000000000000107', 'egress'));
    const big = udp({ sport: 6000, dport: 7000, payload: Buffer.alloc(100) });
    const f1 = F.fragment(EP, EP2, PROTO.UDP, 0x5151, 0, true, big.subarray(0, 56));
    const f2 = F.fragment(EP, EP2, PROTO.UDP, 0x5151, 7, false, big.subarray(56));
    t.equal(h.run('from', f1).reason, R.FORWARD, 'first fragment leaves the sender');
    t.equal(h.run('from', f2).reason, R.FORWARD, 'and its later fragment');
    t.equal(h.run('to', f1).reason, R.POLICY_DENY, 'the receiver denies the first fragment');
    t.equal(h.run('to', f2).reason, R.FRAG_UNKNOWN, 'and so its later fragment');
  });

  t.test(`${F.label}: ICMP errors are related only when genuine`, async (t) => {
    const h = await WepHarness.create(`hicmp${F.v}`);
    t.teardown(() => h.close());
    const egress = buildTable({ id: 'e000000000000108', direction: 'egress', protocols: [PROTO.TCP, PROTO.UDP],
      rules: [{ proto: PROTO.TCP, action: 'allow', ruleId: 11 }, { proto: PROTO.UDP, portMin: 53, portMax: 53, action: 'allow', ruleId: 12 }], defaultRule: 13 });
    h.setEndpoint([H(EP)], denyAll('i000000000000108', 'ingress'), egress);
    t.equal(h.run('from', tcpPkt(EP, PEER, 43000, 80, 'S')).reason, R.FORWARD, 'a flow out');
    t.equal(h.run('to', icmpErr(ROUTER, EP, quotedTcp(EP, PEER, 43000, 80), ...F.tooBig)).reason, R.FORWARD,
      'a router\'s frag-needed / packet-too-big about it, addressed to its source: related');
    t.equal(h.run('to', icmpErr(ROUTER, EP, quotedTcp(PEER, EP, 80, 43000))).reason, R.POLICY_DENY,
      'quoting the flow the other way round (not addressed to the quoted source): policy');
    t.equal(h.run('to', icmpErr(ROUTER, EP, quotedTcp(EP, PEER, 43001, 80))).reason, R.POLICY_DENY, 'quoting no flow: policy');
    t.equal(h.run('to', icmpErr(ROUTER, EP, quotedTcp(EP, OTHER, 43000, 80))).reason, R.POLICY_DENY, 'quoting a forged flow: policy');

    // A workload's own errors: related only about a flow it is part of, sent to the quoted source.
    t.equal(h.run('from', udpFrame(F, EP, PEER, 5000, 53)).reason, R.FORWARD);
    t.equal(h.run('to', udpFrame(F, PEER, EP, 53, 5000)).reason, R.FORWARD);
    t.equal(h.run('from', icmpErr(EP, PEER, quotedUdp(PEER, EP, 53, 5000))).reason, R.FORWARD,
      'port unreachable about the reply, to its source: related (egress policy denies ICMP)');
    t.equal(h.run('from', icmpErr(EP, OTHER, quotedUdp(PEER, EP, 53, 5000))).reason, R.POLICY_DENY,
      'the same quote sent elsewhere: policy');
    t.equal(h.run('from', icmpErr(EP, PEER, quotedUdp(PEER, EP, 53, 5001))).reason, R.POLICY_DENY, 'about no flow: policy');

    // Same-node: a workload quoting its own SYN that the receiver's ingress denied.
    h.setEndpoint([H(EP), H(EP2)], denyAll('i000000000000109', 'ingress'), allowAll('e000000000000109', 'egress'));
    t.equal(h.run('from', tcpPkt(EP, EP2, 44000, 80, 'S')).reason, R.FORWARD, 'sender allowed');
    t.equal(h.run('to', tcpPkt(EP, EP2, 44000, 80, 'S')).reason, R.POLICY_DENY, 'receiver denied');
    const forged = icmpErr(EP, EP2, quotedTcp(EP2, EP, 80, 44000));
    t.equal(h.run('to', forged).reason, R.POLICY_DENY, 'an error "about" that flow does not reach the receiver');
    const back = icmpErr(EP2, EP, quotedTcp(EP, EP2, 44000, 80));
    t.equal(h.run('to', back).reason, R.POLICY_DENY, 'nor does the receiver\'s error reach the sender as related');
  });

  t.test(`${F.label}: TCP RST: only a RST inside the flow's sequence window closes it; a blind one is INVALID`, async (t) => {
    const h = await WepHarness.create(`hrst${F.v}`);
    t.teardown(() => h.close());
    h.setEndpoint([H(EP)], allowAll('i000000000000111', 'ingress'), allowAll('e000000000000111', 'egress'));
    const seg = (src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number, len = 0) =>
      tcpFrame(F, src, dst, sport, dport, flags, seq, ack, len);
    const open = (port: number) => {
      t.equal(h.run('from', seg(EP, PEER, port, 80, 'S', 5000, 0)).reason, R.FORWARD, 'SYN');
      t.equal(h.run('to', seg(PEER, EP, 80, port, 'SA', 90000, 5001)).reason, R.FORWARD, 'SYN-ACK');
      t.equal(h.run('from', seg(EP, PEER, port, 80, 'PA', 5001, 90001, 100)).reason, R.FORWARD, 'data');
      t.equal(h.run('to', seg(PEER, EP, 80, port, 'A', 90001, 5101)).reason, R.FORWARD, 'ACK');
    };
    open(43000);
    // Blind RSTs from "the peer": before what the workload acknowledged, and far past what the peer sent.
    for (const seq of [90000 - 1, 90001 - 70000, 90001 + 70000, 90001 + 0x80000000]) {
      t.equal(h.run('to', seg(PEER, EP, 80, 43000, 'R', seq >>> 0, 0)).reason, R.CT_INVALID, `RST seq ${seq >>> 0} is INVALID`);
    }
    t.equal(h.run('to', seg(PEER, EP, 80, 43000, 'PA', 90001, 5101, 10)).reason, R.FORWARD, 'the flow survives the blind RSTs');
    t.equal(h.run('from', seg(EP, PEER, 43000, 80, 'A', 5101, 90011)).reason, R.FORWARD);
    t.ok(h.counters().some((c) => c.reason === R.CT_INVALID && c.packets === 4n), 'counted as CT_INVALID');
    // The genuine RST (seq = what the peer sent next) closes the flow: a new SYN is policy's again.
    t.equal(h.run('to', seg(PEER, EP, 80, 43000, 'RA', 90011, 5101)).reason, R.FORWARD, 'in-window RST accepted');
    h.setEndpoint([H(EP)], denyAll('i000000000000112', 'ingress'), allowAll('e000000000000111', 'egress'));
    t.equal(h.run('to', seg(PEER, EP, 80, 43000, 'A', 90011, 5101)).reason, R.FORWARD, 'closed flow still passes until it expires');
    t.equal(h.run('to', seg(PEER, EP, 80, 43000, 'S', 1, 0)).reason, R.POLICY_DENY, 'but a fresh SYN on the closed tuple is new');
    h.setEndpoint([H(EP)], allowAll('i000000000000111', 'ingress'), allowAll('e000000000000111', 'egress'));
    // The workload's own RST, within its window, closes too.
    open(43001);
    t.equal(h.run('from', seg(EP, PEER, 43001, 80, 'R', 5101, 0)).reason, R.FORWARD, 'workload RST at its sequence');
    // A refused SYN: the RST must acknowledge the SYN exactly.
    t.equal(h.run('from', seg(EP, PEER, 43002, 80, 'S', 7000, 0)).reason, R.FORWARD);
    t.equal(h.run('to', seg(PEER, EP, 80, 43002, 'RA', 0, 9999)).reason, R.CT_INVALID, 'RST acking something else is INVALID');
    t.equal(h.run('to', seg(PEER, EP, 80, 43002, 'R', 0, 0)).reason, R.CT_INVALID, 'RST without ACK on a SYN is INVALID');
    t.equal(h.run('to', seg(PEER, EP, 80, 43002, 'RA', 0, 7001)).reason, R.FORWARD, 'RST acking the SYN refuses it');
  });

  t.test(`${F.label}: TCP FIN: only a FIN inside the flow's sequence window counts towards FIN both ways; a blind one is INVALID`, async (t) => {
    const h = await WepHarness.create(`hfin${F.v}`);
    t.teardown(() => h.close());
    h.setEndpoint([H(EP)], allowAll('i000000000000111', 'ingress'), allowAll('e000000000000111', 'egress'));
    const seg = (src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number, len = 0) =>
      tcpFrame(F, src, dst, sport, dport, flags, seq, ack, len);
    const entry = (port: number) => F.ctEntry(h, [EP, port], [PEER, 80], PROTO.TCP);
    const P = 43010;
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'S', 5000, 0)).reason, R.FORWARD, 'SYN');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'SA', 90000, 5001)).reason, R.FORWARD, 'SYN-ACK');
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'PA', 5001, 90001, 100)).reason, R.FORWARD, 'data');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'A', 90001, 5101)).reason, R.FORWARD, 'ACK');
    // The workload half-closes; the peer may still send for as long as it likes.
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'FA', 5101, 90001)).reason, R.FORWARD, 'workload FIN');
    t.equal(entry(P)?.state, CtState.FIN_WAIT, 'half-closed');
    const before = entry(P)!;
    // Blind FINs from "the peer" (only the 4-tuple known): ending before what the workload
    // acknowledged, far past what the peer sent, half the sequence space away; with data too.
    const blind: [number, number][] = [[90001 - 2, 0], [90001 - 70000, 0], [90001 + 70000, 0], [90001 + 0x80000000, 0], [90001 - 5000, 100]];
    for (const [seq, len] of blind) {
      t.equal(h.run('to', seg(PEER, EP, 80, P, 'FA', seq >>> 0, 5102, len)).reason, R.CT_INVALID, `FIN seq ${seq >>> 0} (+${len}) is INVALID`);
    }
    const after = entry(P)!;
    t.equal(after.state, CtState.FIN_WAIT, 'the blind FINs did not close the flow (not CLOSING)');
    t.equal(after.flags, before.flags, 'flags unchanged (no FIN noted for the peer)');
    t.same([after.seq_end, after.ack_max, after.last_seen_ns], [before.seq_end, before.ack_max, before.last_seen_ns], 'sequence state and last_seen unchanged');
    t.ok(h.counters().some((c) => c.reason === R.CT_INVALID && c.packets === BigInt(blind.length)), 'counted as CT_INVALID');
    // The peer's genuine data and FIN (at what it sent next) are accepted: FIN both ways.
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'PA', 90001, 5102, 10)).reason, R.FORWARD, 'the peer still sends');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'FA', 90011, 5102)).reason, R.FORWARD, 'in-window FIN accepted');
    t.equal(entry(P)?.state, CtState.CLOSING, 'FIN both ways');
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'A', 5102, 90012)).reason, R.FORWARD, 'last ACK');
    // A retransmission of a FIN the peer already acknowledged still passes (its end is that ACK).
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'FA', 5101, 90012)).reason, R.FORWARD, 'retransmitted FIN passes');
  });

  t.test(`${F.label}: TCP: blind ACKs with guessed sequence numbers cannot widen the RST window`, async (t) => {
    const h = await WepHarness.create(`hack${F.v}`);
    t.teardown(() => h.close());
    h.setEndpoint([H(EP)], allowAll('i000000000000111', 'ingress'), allowAll('e000000000000111', 'egress'));
    const seg = (src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number, len = 0) =>
      tcpFrame(F, src, dst, sport, dport, flags, seq >>> 0, ack >>> 0, len);
    const entry = (port: number) => F.ctEntry(h, [EP, port], [PEER, 80], PROTO.TCP);
    const invalid = () => h.counters().find((c) => c.reason === R.CT_INVALID)?.packets ?? 0n;
    const P = 43020;
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'S', 5000, 0)).reason, R.FORWARD, 'SYN');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'SA', 90000, 5001)).reason, R.FORWARD, 'SYN-ACK');
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'PA', 5001, 90001, 100)).reason, R.FORWARD, 'data');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'A', 90001, 5101)).reason, R.FORWARD, 'ACK');
    // 256 ACKs "from the peer", 16 MiB apart over the whole sequence space, each acknowledging
    // exactly what the workload sent (an attacker who even knows that); then 256 blind RSTs,
    // also 16 MiB apart, halfway between. Unchecked, the ACKs drag the peer's sequence end
    // round the space and most RSTs land in [workload's ACK, that end + 65535].
    const MiB = 1 << 20, N = 256, before = invalid();
    let fwd = 0;
    for (let i = 0; i < N; i++) if (h.run('to', seg(PEER, EP, 80, P, 'A', 90001 + 4 * MiB + i * 16 * MiB, 5101)).reason === R.FORWARD) fwd++;
    // The workload advertised 65535 unscaled (no window scale option): none is inside its window.
    t.equal(fwd, 0, 'no ACK outside the window the workload advertised passes');
    t.equal(invalid() - before, BigInt(N), 'all are INVALID');
    const e = entry(P)!;
    const peerSide = Number(e.flags) & CTF.A_IS_INIT ? 1 : 0; // side a opened the flow: the peer is side b
    t.equal(e.seq_end[peerSide], 90001, 'the peer\'s sequence end did not move');
    let accepted = 0;
    for (let j = 0; j < N; j++) if (h.run('to', seg(PEER, EP, 80, P, 'R', 90001 + 12 * MiB + j * 16 * MiB, 0)).reason === R.FORWARD) accepted++;
    t.equal(accepted, 0, 'no blind RST accepted');
    t.equal(entry(P)?.state, CtState.ESTABLISHED, 'the flow stays ESTABLISHED');
    // Implausible one by one (without ACK only SYN or RST is a valid flag set: tcp_bad_flags above).
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'A', 90001, 5102)).reason, R.CT_INVALID, 'ACK of data the workload never sent');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'PA', 90001 + 9 * MiB, 5101, 10)).reason, R.CT_INVALID, 'data 9 MiB ahead');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'PA', 90001 + 65536 - 10, 5101, 11)).reason, R.CT_INVALID, 'data ending one byte past the 64 KiB window bound');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'A', 90001, 5101 - 66001)).reason, R.CT_INVALID, 'an ACK more than 66000 behind what the workload sent');
    // Real traffic: retransmitted acknowledged data, a window probe, new data; the genuine RST closes.
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'PA', 5001, 90001, 100)).reason, R.FORWARD, 'retransmission of acknowledged data');
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'A', 5100, 90001)).reason, R.FORWARD, 'window probe (seq one before)');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'PA', 90001, 5101, 1000)).reason, R.FORWARD, 'the peer\'s real data');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'RA', 91001, 5101)).reason, R.FORWARD, 'the genuine RST');
    t.equal(entry(P)?.state, CtState.RST, 'closes the flow');
    // A flow picked up mid-stream (no SYN seen) stays liberal: an implausible segment passes, unrecorded.
    const Q = 43021;
    t.equal(h.run('from', seg(EP, PEER, Q, 80, 'PA', 7000, 30000, 10)).reason, R.FORWARD, 'pickup');
    t.equal(h.run('to', seg(PEER, EP, 80, Q, 'A', 30000, 8000)).reason, R.FORWARD, 'ACK past what tortie saw the workload send passes');
    t.equal(Number(entry(Q)!.flags) & CTF_SYN_SEEN, 0, 'not seen opening');
    t.equal(h.run('to', seg(PEER, EP, 80, Q, 'R', 30000 + 0x40000000, 0)).reason, R.CT_INVALID, 'a blind RST still INVALID');
  });

  t.test(`${F.label}: TCP: the sequence check follows the receiver's real (scaled) window`, async (t) => {
    const h = await WepHarness.create(`hwin${F.v}`);
    t.teardown(() => h.close());
    h.setEndpoint([H(EP)], allowAll('i000000000000112', 'ingress'), allowAll('e000000000000112', 'egress'));
    // A segment with a window field and, on SYNs, a window scale option (RFC 7323: kind 3, len 3).
    const seg = (src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number,
      o: { len?: number; win?: number; wscale?: number } = {}) => {
      const th = tcp({ sport, dport, flags, seq: seq >>> 0, ack: ack >>> 0, doff: o.wscale === undefined ? 5 : 6,
        payload: o.len ? Buffer.alloc(o.len, 0x61) : undefined });
      th.writeUInt16BE(o.win ?? 65535, 14);
      if (o.wscale !== undefined) Buffer.from([1, 3, 3, o.wscale]).copy(th, 20);
      return F.frame(src, dst, PROTO.TCP, th);
    };
    const MiB = 1 << 20;
    const open = (port: number, peerWscale: number | undefined) => {
      t.equal(h.run('from', seg(EP, PEER, port, 80, 'S', 5000, 0, { wscale: 10 })).reason, R.FORWARD, 'SYN, window scale 10');
      t.equal(h.run('to', seg(PEER, EP, 80, port, 'SA', 90000, 5001, { wscale: peerWscale })).reason, R.FORWARD, 'SYN-ACK');
      // The workload opens its window: 65535 << 10, just under 64 MiB (a tuned tcp_rmem).
      t.equal(h.run('from', seg(EP, PEER, port, 80, 'A', 5001, 90001)).reason, R.FORWARD, 'ACK with window 65535');
    };
    const P = 43030;
    open(P, 7);
    // In flight on a long fat path: the peer's data 20 MiB past the workload's last ACK (the
    // 8 MiB constant dropped this).
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'PA', 90001 + 20 * MiB, 5001, { len: 1000 })).reason, R.FORWARD, 'data 20 MiB ahead of the ACK, inside the scaled window');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'PA', 90001 + 64 * MiB - 1000, 5001, { len: 1000 })).reason, R.FORWARD, 'data ending at 64 MiB (the bound: the window rounded up to a power of two)');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'PA', 90001 + 64 * MiB, 5001, { len: 1000 })).reason, R.CT_INVALID, 'data past 64 MiB is INVALID');
    t.equal(h.run('from', seg(EP, PEER, P, 80, 'A', 5001, 90001 + 20 * MiB + 1000)).reason, R.FORWARD, 'the workload\'s ACK of it');
    t.equal(h.run('to', seg(PEER, EP, 80, P, 'A', 90001 + 64 * MiB, 5001)).reason, R.FORWARD, 'the peer\'s end at 64 MiB: inside the window again');
    // Scaling needs both SYNs' options: without the peer's, the workload's 65535 is 64 KiB.
    const Q = 43031;
    open(Q, undefined);
    t.equal(h.run('to', seg(PEER, EP, 80, Q, 'PA', 90001 + 20 * MiB, 5001, { len: 1000 })).reason, R.CT_INVALID, 'no option from the peer: 20 MiB ahead is INVALID');
    t.equal(h.run('to', seg(PEER, EP, 80, Q, 'PA', 90001 + 60000, 5001, { len: 1000 })).reason, R.FORWARD, 'inside the unscaled 64 KiB window');
    t.equal(F.ctEntry(h, [EP, Q], [PEER, 80], PROTO.TCP)?.state, CtState.ESTABLISHED, 'ESTABLISHED');
  });

  t.test(`${F.label}: TCP: a SYN's window scale, read in place for Linux's own option layout and walked for any other`, async (t) => {
    const h = await WepHarness.create(`hwso${F.v}`);
    t.teardown(() => h.close());
    h.setEndpoint([H(EP)], allowAll('i000000000000113', 'ingress'), allowAll('e000000000000113', 'egress'));
    const ts = [8, 10, 0, 0, 0x10, 0, 0, 0, 0, 0];
    // Options (padded to a multiple of 4 with End-of-Options) -> the stored shift + 1 (0: none).
    const cases: [string, number[], number][] = [
      ["Linux's layout (MSS, SACK permitted, timestamps, NOP, window scale 7)", [2, 4, 5, 0xb4, 4, 2, ...ts, 1, 3, 3, 7], 8],
      ["Linux's layout, shift 0", [2, 4, 5, 0xb4, 4, 2, ...ts, 1, 3, 3, 0], 1],
      ["Linux's layout, shift 20 (taken as 14)", [2, 4, 5, 0xb4, 4, 2, ...ts, 1, 3, 3, 20], 15],
      ['the same options in another order', [2, 4, 5, 0xb4, 1, 3, 3, 9, 4, 2, ...ts], 10],
      ["Linux's layout up to the timestamps, then NOPs: no window scale", [2, 4, 5, 0xb4, 4, 2, ...ts, 1, 1, 1, 1], 0],
      ['a window scale option of the wrong length where Linux puts it', [2, 4, 5, 0xb4, 4, 2, ...ts, 1, 3, 4, 7], 0],
      ['a timestamp option of length 9, the window scale after it found by the walk', [2, 4, 5, 0xb4, 4, 2, 8, 9, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 6, 0], 7],
      ['End-of-Options before a window scale', [2, 4, 5, 0xb4, 0, 0, 0, 0, 1, 3, 3, 5], 0],
    ];
    let port = 43100;
    for (const [what, opts, want] of cases) {
      const o = [...opts];
      while (o.length % 4) o.push(0);
      const th = tcp({ sport: port, dport: 80, flags: 'S', seq: 5000, doff: 5 + o.length / 4 });
      Buffer.from(o).copy(th, 20);
      t.equal(h.run('from', F.frame(EP, PEER, PROTO.TCP, th)).reason, R.FORWARD, `${what}: SYN forwarded`);
      const e = F.ctEntry(h, [EP, port], [PEER, 80], PROTO.TCP)!;
      const mine = Number(e.flags) & CTF.A_IS_INIT ? e.wscale & 0x0f : e.wscale >> 4;
      t.equal(mine, want, `${what}: stored ${want ? `shift ${want - 1}` : 'no window scale'}`);
      port++;
    }
  });
}

// IPv4's own: options and quoted later fragments (their IPv6 forms: datapath/25, 26).
{
  const EP = '192.168.1.10';
  const PEER = '10.2.3.4';
  const ROUTER = '198.18.0.1';
  const icmpErr = (src: string, dst: string, quoted: Buffer, type = 3, code = 3) =>
    eth({}, ipv4({ src, dst, proto: PROTO.ICMP }, icmp({ type, code, payload: quoted })));
  t.test('IPv4 source routes are dropped on workload interfaces; other options pass', async (t) => {
    const h = await WepHarness.create('hopts');
    t.teardown(() => h.close());
    h.setEndpoint([`${EP}/32`], allowAll('i000000000000110', 'ingress'), allowAll('e000000000000110', 'egress'));
    const withOpts = (o: number[]) => eth({}, ipv4({ src: EP, dst: PEER, proto: PROTO.UDP, options: Buffer.from(o) }, udp({ sport: 5000, dport: 53 })));
    t.equal(h.run('from', withOpts([131, 7, 4, 10, 9, 9, 9])).reason, R.IP_SRCROUTE, 'loose source route out');
    t.equal(h.run('from', withOpts([1, 137, 7, 4, 10, 9, 9, 9])).reason, R.IP_SRCROUTE, 'strict source route after a NOOP');
    t.equal(h.run('to', eth({}, ipv4({ src: PEER, dst: EP, proto: PROTO.UDP, options: Buffer.from([131, 3, 4]) }, udp({ sport: 53, dport: 5000 })))).reason,
      R.IP_SRCROUTE, 'loose source route in');
    t.equal(h.run('from', withOpts([7, 7, 4, 0, 0, 0, 0])).reason, R.FORWARD, 'record route passes');
    t.equal(h.run('from', withOpts([68, 8, 5, 0, 131, 0, 0, 0])).reason, R.FORWARD, 'a timestamp whose data holds 131 passes');
    t.equal(h.run('from', withOpts([0, 131, 3, 4])).reason, R.FORWARD, 'nothing after end-of-list counts');
  });

  t.test('an ICMP error quoting a later fragment is not related to anything', async (t) => {
    const h = await WepHarness.create('hqfrag');
    t.teardown(() => h.close());
    h.setEndpoint([`${EP}/32`], denyAll('i000000000000111', 'ingress'), allowAll('e000000000000111', 'egress'));
    t.equal(h.run('from', flowPacket({ src: EP, dst: PEER, proto: PROTO.UDP, sport: 5000, dport: 53 })).reason, R.FORWARD);
    const q = (fragOffset: number) => ipv4({ src: EP, dst: PEER, proto: PROTO.UDP, fragOffset }, udp({ sport: 5000, dport: 53 }));
    t.equal(h.run('to', icmpErr(ROUTER, EP, q(0))).reason, R.FORWARD, 'quoting the datagram: related');
    t.equal(h.run('to', icmpErr(ROUTER, EP, q(100))).reason, R.POLICY_DENY, 'quoting a later fragment whose payload looks like the ports: policy');
  });
}
