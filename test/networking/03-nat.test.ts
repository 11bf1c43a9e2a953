// NAT outgoing in BPF on the uplink: which packets are SNATed (source in a natOutgoing pool,
// destination outside every pool, not a node, not this host), port choice (only the configured
// range: the workload's port when inside it), no two flows sharing a reply tuple, reverse translation,
// checksums recomputed from the bytes for TCP, UDP (zero and non-zero) and ICMP echo, and port
// exhaustion as a counted drop that leaves existing flows intact.
import t from 'tap';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { NATF, NAT_DIR, readNatEntries, nat4KeyCodec, nat4ValueCodec } from '../../src/dataplane/bpf/net-codecs';
import { UplinkHarness, TC_OK, TC_SHOT } from '../../src/testbed/uplink-harness';
import { Topology } from '../../src/util/netns';
import { PySockets } from '../../src/testbed/probes';
import { ctAcceptedClose, readNatQuota, sweepNatEntries } from '../../src/dataplane/bpf/nat';
import { eth, ipv4, icmp, tcp, udp, inetChecksum, PROTO } from '../../src/dataplane/bpf/packet';
import { fillL4Checksum, ipAt, l4ChecksumOk, portsOf, tcpFrame, udpFrame, icmpFrame } from '../../src/testbed/fixtures';
import { WepHarness } from '../../src/testbed/wep-harness';
import { allowAll } from '../../src/testbed/tables';
import { NODE, OTHER_NODE, natLayout } from '../../src/testbed/fuzz/nat-fuzz';

const WL1 = '192.168.10.5';
const WL2 = '192.168.10.6';
const NONAT_WL = '192.168.200.9';
const OUT = '198.18.3.20';

// The programs run in an empty namespace of this test: their node-socket lookups must not see
// whatever happens to listen in the machine's own namespace.
const topo = Topology.create('nat03');
t.teardown(() => topo.destroy());
let emptyNs: Promise<string> | undefined;

async function setup(label: string, nat?: Parameters<typeof UplinkHarness.create>[1]): Promise<UplinkHarness> {
  emptyNs ??= topo.addNetns('empty').then((n) => n.path);
  const h = await UplinkHarness.create(label, nat);
  h.netns = await emptyNs;
  return natLayout(h);
}

t.test('SNAT decisions, translation and reverse translation', async (t) => {
  const h = await setup('nat');
  t.teardown(() => h.close());

  t.test('TCP: source becomes the node, a workload port inside the NAT range is kept, checksums stay valid', async (t) => {
    const before = h.stats();
    const r = h.run('out', tcpFrame({ src: WL1, dst: OUT, sport: 21000, dport: 80, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') }));
    t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
    const ip = ipAt(r.data);
    t.same([ip.src, ip.dst, portsOf(ip)], [NODE, OUT, [21000, 80]]);
    t.ok(ip.csumOk, 'IPv4 header checksum');
    t.ok(l4ChecksumOk(ip), 'TCP checksum');
    const after = h.stats();
    t.equal(after.snatNew, before.snatNew + 1n);
    t.equal(after.snat, before.snat + 1n);
    // The same flow again reuses the mapping.
    const again = ipAt(h.run('out', tcpFrame({ src: WL1, dst: OUT, sport: 21000, dport: 80, flags: 'A' })).data);
    t.same(portsOf(again), [21000, 80]);
    t.equal(h.stats().snatNew, after.snatNew, 'no second mapping');

    const reply = h.run('in', tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: 21000, flags: 'SA', payload: Buffer.from('HTTP/1.0 200 OK') }));
    t.same([reply.retval, reply.reason], [TC_OK, R.FORWARD]);
    const rip = ipAt(reply.data);
    t.same([rip.src, rip.dst, portsOf(rip)], [OUT, WL1, [80, 21000]], 'reply goes back to the workload');
    t.ok(rip.csumOk && l4ChecksumOk(rip), 'reply checksums');
  });

  t.test('a workload port outside the NAT range (e.g. in the node\'s ephemeral range) is never used', async (t) => {
    const r = ipAt(h.run('out', tcpFrame({ src: WL1, dst: OUT, sport: 41000, dport: 80 })).data);
    const [p] = portsOf(r);
    t.ok(p >= 20000 && p <= 29999, `41000 became ${p}, in the range`);
    t.ok(l4ChecksumOk(r));
    const back = ipAt(h.run('in', tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: p, flags: 'SA' })).data);
    t.same([back.dst, portsOf(back)[1]], [WL1, 41000]);
    const stray = tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: 41000, flags: 'SA' });
    t.ok(h.run('in', stray).data.equals(stray), 'the workload port itself stays the node\'s');
  });

  t.test('a second workload with the same port gets a port from the range; replies are not mixed up', async (t) => {
    const r = ipAt(h.run('out', tcpFrame({ src: WL2, dst: OUT, sport: 21000, dport: 80 })).data);
    const [p] = portsOf(r);
    t.not(p, 21000, 'collision avoided');
    t.ok(p >= 20000 && p <= 29999, `port ${p} in the default range`);
    t.ok(l4ChecksumOk(r));
    const back2 = ipAt(h.run('in', tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: p, flags: 'SA' })).data);
    t.same([back2.dst, portsOf(back2)[1]], [WL2, 21000]);
    const back1 = ipAt(h.run('in', tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: 21000, flags: 'A' })).data);
    t.equal(back1.dst, WL1);
    // Every reverse tuple is owned by exactly one flow.
    const rev = readNatEntries(h.dp.maps.nat4).filter((e) => e.key.dir === NAT_DIR.REV);
    const tuples = rev.map((e) => `${e.key.saddr}:${e.key.sport}>${e.key.daddr}:${e.key.dport}/${e.key.proto}`);
    t.equal(new Set(tuples).size, tuples.length, 'reverse tuples unique');
  });

  t.test('UDP with and without checksum', async (t) => {
    const withSum = ipAt(h.run('out', udpFrame({ src: WL1, dst: OUT, sport: 25353, dport: 53 })).data);
    t.same([withSum.src, portsOf(withSum)], [NODE, [25353, 53]]);
    t.ok(l4ChecksumOk(withSum) && withSum.l4.readUInt16BE(6) !== 0, 'valid, non-zero');
    const noSum = ipAt(h.run('out', udpFrame({ src: WL2, dst: OUT, sport: 5354, dport: 53 }, {}, true)).data);
    t.equal(noSum.src, NODE);
    t.equal(noSum.l4.readUInt16BE(6), 0, 'a zero UDP checksum stays zero');
    const back = ipAt(h.run('in', udpFrame({ src: OUT, dst: NODE, sport: 53, dport: 25353 })).data);
    t.same([back.dst, portsOf(back), l4ChecksumOk(back)], [WL1, [53, 25353], true]);
  });

  t.test('ICMP echo: id kept or translated, checksum valid, reply translated back', async (t) => {
    const a = ipAt(h.run('out', icmpFrame({ src: WL1, dst: OUT, id: 20777 })).data);
    t.same([a.src, portsOf(a)[0], l4ChecksumOk(a)], [NODE, 20777, true]);
    const b = ipAt(h.run('out', icmpFrame({ src: WL2, dst: OUT, id: 20777 })).data);
    const id2 = portsOf(b)[0];
    t.not(id2, 20777, 'same id from another workload is translated');
    t.ok(l4ChecksumOk(b));
    const rb = ipAt(h.run('in', icmpFrame({ src: OUT, dst: NODE, type: 0, id: id2 })).data);
    t.same([rb.dst, portsOf(rb)[0], l4ChecksumOk(rb)], [WL2, 20777, true]);
    const ra = ipAt(h.run('in', icmpFrame({ src: OUT, dst: NODE, type: 0, id: 20777 })).data);
    t.equal(ra.dst, WL1);
  });

  t.test('no SNAT towards pools, nodes or the host, nor from a pool without natOutgoing', async (t) => {
    const cases: [string, string][] = [
      [WL1, '192.168.20.7'],      // another workload in a pool
      [WL1, '192.168.200.1'],     // a pool without natOutgoing is still a pool
      [WL1, OTHER_NODE],          // a node
      [WL1, NODE],                // this host
      [NONAT_WL, OUT],            // source pool without natOutgoing
      ['198.18.1.10', OUT],       // the host's own traffic
    ];
    for (const [src, dst] of cases) {
      const p = tcpFrame({ src, dst, sport: 1234, dport: 80 });
      const r = h.run('out', p);
      t.same([r.retval, r.data.equals(p)], [TC_OK, true], `${src} -> ${dst} unchanged`);
    }
    const stray = tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: 55555 });
    t.ok(h.run('in', stray).data.equals(stray), 'a packet to the node with no mapping is untouched');
    // An ICMP error from a workload that quotes no SNATed flow cannot be translated: dropped,
    // so the workload address never leaves (test/networking/14-nat-icmp-out covers the rest).
    t.equal(h.run('out', icmpFrame({ src: WL1, dst: OUT, type: 3 })).reason, R.NAT_ICMP, 'untranslatable ICMP error from a workload dropped');
  });
});

t.test('candidates a node socket owns are skipped: listener, bound UDP (socket lookup in the program\'s namespace)', async (t) => {
  const ns = await topo.addNetns('socks');
  const py = new PySockets(ns);
  t.teardown(() => py.close());
  await py.run(`
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('0.0.0.0', 21500)); l.listen(1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 21501))
_ = 1`);
  const h = await setup('natsock', { portMin: 21500, portMax: 21502, retries: 8 });
  t.teardown(() => h.close());
  h.netns = ns.path;
  const before = h.stats().natHostSock;
  const tp = portsOf(ipAt(h.run('out', tcpFrame({ src: WL1, dst: OUT, sport: 21500, dport: 80 })).data))[0];
  t.ok(tp === 21501 || tp === 21502, `TCP: the listener's port 21500 is not taken (got ${tp})`);
  const up = portsOf(ipAt(h.run('out', udpFrame({ src: WL1, dst: OUT, sport: 21501, dport: 53 })).data))[0];
  t.ok(up === 21500 || up === 21502, `UDP: the bound socket's port 21501 is not taken (got ${up})`);
  t.ok(h.stats().natHostSock >= before + 2n, 'skips counted');
  t.equal(portsOf(ipAt(h.run('out', tcpFrame({ src: WL2, dst: OUT, sport: 21502, dport: 443 })).data))[0], 21502, 'a free port is kept');
  // A datagram for a mapping whose port a node socket now holds goes to the node, untranslated.
  const late = h.run('in', udpFrame({ src: OUT, dst: NODE, sport: 53, dport: up }));
  t.equal(ipAt(late.data).dst, WL1, 'the mapping\'s reply is translated while no node socket holds its tuple');
  await py.run(`v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); v.bind(('0.0.0.0', ${up})); _ = 1`);
  const taken = udpFrame({ src: OUT, dst: NODE, sport: 53, dport: up });
  t.ok(h.run('in', taken).data.equals(taken), 'once a node socket is bound there, the datagram is left to it');
});

t.test('port exhaustion is a counted drop; existing flows keep working', async (t) => {
  const h = await setup('natfull', { portMin: 30000, portMax: 30001, retries: 8 });
  t.teardown(() => h.close());
  const ports = new Set<number>();
  // Workloads all using source port 1000 (outside the range) to one destination: the two range ports.
  const srcs = ['192.168.10.1', '192.168.10.2', '192.168.10.3'];
  const results = srcs.map((src) => h.run('out', tcpFrame({ src, dst: OUT, sport: 1000, dport: 443 })));
  for (const r of results.slice(0, 2)) {
    t.equal(r.reason, R.FORWARD);
    ports.add(portsOf(ipAt(r.data))[0]);
  }
  t.same([...ports].sort(), [30000, 30001], 'two distinct ports, both from the range');
  t.same([results[2]!.retval, results[2]!.reason], [TC_SHOT, R.NAT_NO_PORT], 'third flow: no port left');
  t.notOk(readNatEntries(h.dp.maps.nat4).some((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === '192.168.10.3'), 'no half mapping left');
  const again = h.run('out', tcpFrame({ src: srcs[1]!, dst: OUT, sport: 1000, dport: 443, flags: 'A' }));
  t.same([again.reason, ports.has(portsOf(ipAt(again.data))[0])], [R.FORWARD, true], 'an existing flow still passes');
  t.equal(h.run('out', tcpFrame({ src: srcs[0]!, dst: '198.18.3.21', sport: 1000, dport: 443 })).reason, R.FORWARD,
    'another destination has its own port space');
  t.ok(h.stats().snatRetry > 0n, 'collisions counted');
});

t.test('per-workload quota and a full NAT table refuse new flows; established flows keep working', async (t) => {
  const h = await setup('natquota', { quota: 2, maxEntries: 8 });
  t.teardown(() => h.close());
  const out = (src: string, dport: number, flags = 'S') => h.run('out', tcpFrame({ src, dst: OUT, sport: 21000, dport, flags }));
  t.same([out(WL1, 1).reason, out(WL1, 2).reason], [R.FORWARD, R.FORWARD], 'two flows within the quota');
  t.same([out(WL1, 3).retval, out(WL1, 3).reason], [TC_SHOT, R.NAT_QUOTA], 'the third is refused: nat_quota');
  t.equal(out(WL1, 1, 'A').reason, R.FORWARD, 'an established flow of the same workload still passes');
  t.same([out(WL2, 1).reason, out(WL2, 2).reason], [R.FORWARD, R.FORWARD], 'another workload has its own quota');
  // 4 flows = 8 entries: the table is full.
  t.same([out('192.168.10.7', 1).retval, out('192.168.10.7', 1).reason], [TC_SHOT, R.NAT_TABLE_FULL], 'full table: refused, nothing evicted');
  for (const [src, dport] of [[WL1, 1], [WL1, 2], [WL2, 1], [WL2, 2]] as const) {
    t.equal(out(src, dport, 'A').reason, R.FORWARD, `established ${src} -> :${dport} keeps its mapping`);
  }
  t.equal(readNatEntries(h.dp.maps.nat4).length, 8);
  t.notOk(readNatEntries(h.dp.maps.nat4).some((e) => e.value.addr === '192.168.10.7' || e.key.saddr === '192.168.10.7'), 'no half mapping of the refused flow');
  t.same(readNatQuota(h.dp.maps.natq4).map((r) => [r.addr, r.live]).sort(), [[WL1, 2], [WL2, 2], ['192.168.10.7', 0]]);
});

/** A last_seen stamp older than `sec` on the monotonic clock. Waits (never fails) on a machine
 *  whose clock has not run that long yet: no assumption about the time since boot. */
async function stampOlderThan(sec: number): Promise<bigint> {
  const age = BigInt(Math.round((sec + 1) * 1e9));
  while (process.hrtime.bigint() <= age) await new Promise((r) => setTimeout(r, 100));
  return process.hrtime.bigint() - age;
}

t.test('a port held by an expired flow is reclaimed; the agent sweeps dead mappings', async (t) => {
  // Short timeouts, given to the program and to the sweep alike (one source).
  const timeouts = { tcpSec: 5 };
  const h = await setup('natexp', { portMin: 31000, portMax: 31000, retries: 4, timeouts });
  t.teardown(() => h.close());
  const nat = h.dp.maps.nat4;
  const old = await stampOlderThan(timeouts.tcpSec);
  const age = (pred: (e: ReturnType<typeof readNatEntries>[number]) => boolean) => {
    for (const e of readNatEntries(nat)) if (pred(e)) nat.update(nat4KeyCodec.encode(e.key), nat4ValueCodec.encode({ ...e.value, last_seen_ns: old }));
  };
  // One port: the first flow takes it, the second finds none.
  const first = ipAt(h.run('out', tcpFrame({ src: '192.168.10.2', dst: OUT, sport: 2000, dport: 443 })).data);
  t.equal(portsOf(first)[0], 31000);
  t.equal(h.run('out', tcpFrame({ src: '192.168.10.3', dst: OUT, sport: 2000, dport: 443 })).reason, R.NAT_NO_PORT, 'range exhausted');
  // Only the reply side aged (a one-way flow: REV entries are refreshed by replies): still held.
  age((e) => e.key.dir === NAT_DIR.REV && e.value.addr === '192.168.10.2');
  t.equal(h.run('out', tcpFrame({ src: '192.168.10.3', dst: OUT, sport: 2000, dport: 443 })).reason, R.NAT_NO_PORT,
    'a port whose flow still sends is not reclaimed');
  // Age every mapping of 192.168.10.2's flow past the TCP timeout.
  age((e) => (e.key.dir === NAT_DIR.FWD && e.key.saddr === '192.168.10.2') || (e.key.dir === NAT_DIR.REV && e.value.addr === '192.168.10.2'));
  const third = h.run('out', tcpFrame({ src: '192.168.10.3', dst: OUT, sport: 2000, dport: 443 }));
  t.same([third.reason, portsOf(ipAt(third.data))[0]], [R.FORWARD, 31000], 'the expired flow\'s port is reclaimed');
  const back = ipAt(h.run('in', tcpFrame({ src: OUT, dst: NODE, sport: 443, dport: 31000, flags: 'SA' })).data);
  t.equal(back.dst, '192.168.10.3', 'replies go to the new owner');
  const revOwners = () => readNatEntries(nat).filter((e) => e.key.dir === NAT_DIR.REV && e.key.dport === 31000).map((e) => e.value.addr);
  const again = h.run('out', tcpFrame({ src: '192.168.10.2', dst: OUT, sport: 2000, dport: 443, flags: 'A' }));
  t.same([again.retval, again.reason], [TC_SHOT, R.NAT_NO_PORT], 'the expired flow coming back does not share the reclaimed port (none left)');
  t.same(revOwners(), ['192.168.10.3'], 'the port still belongs to the new flow');

  // The sweep, with the same timeouts the program was loaded with: the stale FWD half of
  // 192.168.10.2 goes, and is credited to that workload's count.
  age((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === '192.168.10.2');
  const before = readNatEntries(nat).length;
  const { deleted, remaining, released } = sweepNatEntries(h.dp.maps, h.dp.nat.timeouts);
  t.equal(deleted, 1, 'one dead entry swept');
  t.equal(remaining, before - deleted);
  t.same([...released], [['192.168.10.2', 1]], 'credited to its workload');
  const left = readNatEntries(nat);
  t.same(left.map((e) => [e.key.dir, e.key.dir === NAT_DIR.FWD ? e.key.saddr : e.value.addr]).sort(),
    [[NAT_DIR.FWD, '192.168.10.3'], [NAT_DIR.REV, '192.168.10.3']], 'only the live flow remains');
  const q = new Map(readNatQuota(h.dp.maps.natq4).map((r) => [r.addr, r.live]));
  t.same([q.get('192.168.10.2'), q.get('192.168.10.3')], [0, 1], 'live mappings per workload');
  t.equal(sweepNatEntries(h.dp.maps, h.dp.nat.timeouts).deleted, 0, 'a live flow is not swept');
});

t.test('a blind RST from outside never shortens a live mapping; a RST the workload\'s conntrack accepts does', async (t) => {
  // The uplink (SNAT) and the workload's program (conntrack with the RST sequence check) run the
  // same packets in turn: each program's output is the next one's input, as on the node. One NAT
  // port, so a mapping the program considers expired would be handed to another flow.
  const timeouts = { tcpClosedSec: 5 };
  const h = await setup('natrst', { portMin: 32000, portMax: 32000, retries: 4, timeouts });
  t.teardown(() => h.close());
  const w = await WepHarness.create('natrstw');
  t.teardown(() => w.close());
  w.setEndpoint([`${WL1}/32`], allowAll('i000000000000301', 'ingress'), allowAll('e000000000000301', 'egress'));
  const nat = h.dp.maps.nat4;
  const ctRst = ctAcceptedClose(w.dp.maps.ct4!);
  const seg = (src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number, len = 0) =>
    eth({}, fillL4Checksum(ipv4({ src, dst, proto: PROTO.TCP }, tcp({ sport, dport, flags, seq, ack, payload: Buffer.alloc(len, 0x61) }))));
  const out = (flags: string, seq: number, ack: number, len = 0, sport = 2000) => {
    const f = seg(WL1, OUT, sport, 443, flags, seq, ack, len);
    const a = w.run('from', f);
    t.equal(a.reason, R.FORWARD, `workload ${flags} passes its program`);
    const b = h.run('out', f);
    t.equal(b.reason, R.FORWARD, `workload ${flags} is SNATed`);
    return ipAt(b.data);
  };
  const inn = (flags: string, seq: number, ack: number, len = 0, dport = 32000) => {
    const b = h.run('in', seg(OUT, NODE, 443, dport, flags, seq, ack, len));
    t.equal(b.reason, R.FORWARD, `outside ${flags} seq ${seq} reverse-translated`);
    t.equal(ipAt(b.data).dst, WL1);
    return w.run('to', b.data).reason;
  };
  const fwd = (sport = 2000) => readNatEntries(nat).find((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === WL1 && e.key.sport === sport)!;
  const age = async (sport = 2000) => {
    const old = await stampOlderThan(timeouts.tcpClosedSec);
    for (const e of readNatEntries(nat)) {
      if ((e.key.dir === NAT_DIR.FWD && e.key.saddr === WL1 && e.key.sport === sport) || (e.key.dir === NAT_DIR.REV && e.value.addr === WL1 && e.value.port === sport)) {
        nat.update(nat4KeyCodec.encode(e.key), nat4ValueCodec.encode({ ...e.value, last_seen_ns: old }));
      }
    }
  };
  t.same(portsOf(out('S', 5000, 0)), [32000, 443]);
  t.equal(inn('SA', 90000, 5001), R.FORWARD);
  out('PA', 5001, 90001, 100);
  t.equal(inn('A', 90001, 5101), R.FORWARD);

  // Blind RSTs (the attacker knows the 4-tuple, not the sequence): the workload's conntrack drops them.
  for (const seq of [90001 - 70000, 90001 + 70000]) t.equal(inn('R', seq >>> 0, 0), R.CT_INVALID, 'blind RST is INVALID at the workload');
  t.equal(fwd().value.flags & NATF.RST, 0, 'a RST from outside does not mark the mapping closed');
  t.not(fwd().value.flags & NATF.RST_IN, 0, 'it is noted for the sweep');
  // The flow idles past the closed-flow timeout (5 s here, 10 s by default).
  await age();
  t.equal(sweepNatEntries(h.dp.maps, h.dp.nat.timeouts, process.hrtime.bigint(), ctRst).deleted, 0, 'the sweep keeps the mapping');
  t.equal(sweepNatEntries(h.dp.maps, h.dp.nat.timeouts).deleted, 0, 'also without a conntrack to ask');
  t.equal(inn('PA', 90001, 5101, 10), R.FORWARD, 'the flow still works after the old 10 s window');
  out('A', 5101, 90011);

  // The genuine RST (the peer's next sequence): accepted by the workload's conntrack, and the
  // mapping goes as soon as it idles past the closed timeout.
  t.equal(inn('RA', 90011, 5101), R.FORWARD, 'in-window RST accepted');
  t.ok(ctRst(fwd().key).rst, 'the workload\'s conntrack holds the flow as reset');
  await age();
  const r = sweepNatEntries(h.dp.maps, h.dp.nat.timeouts, process.hrtime.bigint(), ctRst);
  t.equal(r.deleted, 2, 'FWD and REV swept after the closed timeout');
  t.same([...r.released], [[WL1, 1]]);
  t.equal(h.run('out', tcpFrame({ src: WL2, dst: OUT, sport: 2000, dport: 443 })).reason, R.FORWARD, 'the port is free again');

  // The workload's own RST marks the mapping closed in the program itself, as before.
  const h2 = await setup('natrst2', { portMin: 32001, portMax: 32001, retries: 4, timeouts });
  t.teardown(() => h2.close());
  h2.run('out', seg(WL1, OUT, 2001, 443, 'S', 7000, 0));
  h2.run('out', seg(WL1, OUT, 2001, 443, 'R', 7001, 0));
  const e2 = readNatEntries(h2.dp.maps.nat4).find((e) => e.key.dir === NAT_DIR.FWD)!;
  t.not(e2.value.flags & NATF.RST, 0, 'a RST leaving marks the mapping closed');
  const old = await stampOlderThan(timeouts.tcpClosedSec);
  for (const e of readNatEntries(h2.dp.maps.nat4)) h2.dp.maps.nat4.update(nat4KeyCodec.encode(e.key), nat4ValueCodec.encode({ ...e.value, last_seen_ns: old }));
  t.equal(sweepNatEntries(h2.dp.maps, h2.dp.nat.timeouts).deleted, 2, 'swept after the closed timeout, no conntrack needed');
});

t.test('a blind FIN from outside never shortens a half-closed mapping; FINs the workload\'s conntrack accepts both ways do', async (t) => {
  // As the RST test above: uplink (SNAT) and workload program (conntrack with the sequence check
  // on FINs) chained, one NAT port, the sweep asking the workload's real conntrack map.
  const timeouts = { tcpClosedSec: 5 };
  const h = await setup('natfin', { portMin: 32002, portMax: 32002, retries: 4, timeouts });
  t.teardown(() => h.close());
  const w = await WepHarness.create('natfinw');
  t.teardown(() => w.close());
  w.setEndpoint([`${WL1}/32`], allowAll('i000000000000302', 'ingress'), allowAll('e000000000000302', 'egress'));
  const nat = h.dp.maps.nat4;
  const ct = ctAcceptedClose(w.dp.maps.ct4!);
  const seg = (src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number, len = 0) =>
    eth({}, fillL4Checksum(ipv4({ src, dst, proto: PROTO.TCP }, tcp({ sport, dport, flags, seq, ack, payload: Buffer.alloc(len, 0x61) }))));
  const out = (flags: string, seq: number, ack: number, len = 0) => {
    const f = seg(WL1, OUT, 2002, 443, flags, seq, ack, len);
    t.equal(w.run('from', f).reason, R.FORWARD, `workload ${flags} passes its program`);
    const b = h.run('out', f);
    t.equal(b.reason, R.FORWARD, `workload ${flags} is SNATed`);
  };
  const inn = (flags: string, seq: number, ack: number, len = 0) => {
    const b = h.run('in', seg(OUT, NODE, 443, 32002, flags, seq, ack, len));
    t.equal(b.reason, R.FORWARD, `outside ${flags} seq ${seq} reverse-translated`);
    t.equal(ipAt(b.data).dst, WL1);
    return w.run('to', b.data).reason;
  };
  const fwd = () => readNatEntries(nat).find((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === WL1 && e.key.sport === 2002)!;
  const age = async () => {
    const old = await stampOlderThan(timeouts.tcpClosedSec);
    for (const e of readNatEntries(nat)) {
      if ((e.key.dir === NAT_DIR.FWD && e.key.saddr === WL1 && e.key.sport === 2002) || (e.key.dir === NAT_DIR.REV && e.value.addr === WL1 && e.value.port === 2002)) {
        nat.update(nat4KeyCodec.encode(e.key), nat4ValueCodec.encode({ ...e.value, last_seen_ns: old }));
      }
    }
  };
  const sweep = () => sweepNatEntries(h.dp.maps, h.dp.nat.timeouts, process.hrtime.bigint(), ct);
  out('S', 5000, 0);
  t.equal(inn('SA', 90000, 5001), R.FORWARD);
  out('PA', 5001, 90001, 100);
  t.equal(inn('A', 90001, 5101), R.FORWARD);
  // The workload half-closes (its FIN leaves: FIN_OUT); the outside keeps sending, slowly.
  out('FA', 5101, 90001);
  t.not(fwd().value.flags & NATF.FIN_OUT, 0, 'the workload\'s FIN is marked');

  // Blind FINs (4-tuple known, sequence not): the workload's conntrack drops them.
  for (const seq of [90001 - 70000, 90001 + 70000]) t.equal(inn('FA', seq >>> 0, 5102), R.CT_INVALID, 'blind FIN is INVALID at the workload');
  t.equal(fwd().value.flags & NATF.FIN_IN, 0, 'a FIN from outside does not count towards FIN both ways in the program');
  t.not(fwd().value.flags & NATF.FIN_IN_SEEN, 0, 'it is noted for the sweep');
  t.same(ct(fwd().key), { rst: false, fins: false }, 'the workload\'s conntrack has not seen FIN both ways');
  // The half-closed flow idles past the closed-flow timeout (5 s here, 10 s by default).
  await age();
  t.equal(sweep().deleted, 0, 'the sweep keeps the mapping');
  t.equal(sweepNatEntries(h.dp.maps, h.dp.nat.timeouts).deleted, 0, 'also without a conntrack to ask');
  t.equal(h.run('out', tcpFrame({ src: WL2, dst: OUT, sport: 2002, dport: 443 })).reason, R.NAT_NO_PORT,
    'the program keeps the port: the mapping is live for it too');
  t.equal(inn('PA', 90001, 5102, 10), R.FORWARD, 'the half-closed flow still works after the old window');
  out('A', 5102, 90011);

  // The outside's genuine FIN: accepted by the workload's conntrack (FIN both ways, CLOSING), and
  // the mapping goes as soon as it idles past the closed timeout.
  t.equal(inn('FA', 90011, 5102), R.FORWARD, 'in-window FIN accepted');
  out('A', 5102, 90012);
  t.same(ct(fwd().key), { rst: false, fins: true }, 'the workload\'s conntrack holds FIN both ways');
  await age();
  const r = sweep();
  t.equal(r.deleted, 2, 'FWD and REV swept after the closed timeout');
  t.same([...r.released], [[WL1, 1]]);
  t.equal(h.run('out', tcpFrame({ src: WL2, dst: OUT, sport: 2002, dport: 443 })).reason, R.FORWARD, 'the port is free again');
});

t.test('ICMP errors about a SNATed flow are translated back to the workload', async (t) => {
  const h = await setup('naticmp');
  t.teardown(() => h.close());
  // Two workloads, same port, so the second one's flow is translated to another port.
  h.run('out', udpFrame({ src: WL1, dst: OUT, sport: 6000, dport: 9999 }));
  const sent = h.run('out', udpFrame({ src: WL2, dst: OUT, sport: 6000, dport: 9999, payload: Buffer.alloc(64, 9) })).data;
  const natPort = portsOf(ipAt(sent))[0];
  t.not(natPort, 6000);
  // The outside answers port unreachable, quoting the datagram as it received it.
  const quoted = Buffer.from(ipAt(sent).raw.subarray(0, 28));
  const err = eth({}, ipv4({ src: OUT, dst: NODE, proto: PROTO.ICMP }, icmp({ type: 3, code: 3, payload: quoted })));
  const before = h.stats().rnat;
  const r = h.run('in', err);
  t.same([r.retval, r.reason], [TC_OK, R.FORWARD]);
  const o = ipAt(r.data);
  t.same([o.src, o.dst, o.csumOk, l4ChecksumOk(o)], [OUT, WL2, true, true], 'outer: to the workload, checksums valid');
  const q = ipAt(o.l4, 8);
  t.same([q.src, q.dst, q.csumOk, q.l4.readUInt16BE(0), q.l4.readUInt16BE(2)], [WL2, OUT, true, 6000, 9999], 'quoted header as the workload sent it');
  t.equal(h.stats().rnat, before + 1n);

  // Frag-needed about a TCP flow with the workload's own port.
  const tsent = h.run('out', tcpFrame({ src: WL1, dst: OUT, sport: 7000, dport: 443, df: true })).data;
  const fn = icmp({ type: 3, code: 4, payload: Buffer.from(ipAt(tsent).raw.subarray(0, 28)) });
  fn.writeUInt16BE(1400, 6); // next-hop MTU
  fn.writeUInt16BE(0, 2);
  fn.writeUInt16BE(inetChecksum(fn), 2);
  const rf = ipAt(h.run('in', eth({}, ipv4({ src: '198.18.3.1', dst: NODE, proto: PROTO.ICMP }, fn))).data);
  t.same([rf.dst, ipAt(rf.l4, 8).src, l4ChecksumOk(rf), rf.l4.readUInt16BE(6)], [WL1, WL1, true, 1400], 'frag-needed reaches the workload with its MTU');

  const unrelated = eth({}, ipv4({ src: OUT, dst: NODE, proto: PROTO.ICMP }, icmp({ type: 3, code: 3,
    payload: Buffer.from(ipAt(udpFrame({ src: NODE, dst: OUT, sport: 6001, dport: 9999 })).raw.subarray(0, 28)) })));
  t.ok(h.run('in', unrelated).data.equals(unrelated), 'an error about the host\'s own traffic is untouched');
});

t.test('fragments: later fragments follow their first fragment\'s translation, both ways', async (t) => {
  const h = await setup('natfrag');
  t.teardown(() => h.close());
  // A 1600-byte UDP datagram from WL1 (port inside the NAT range: kept) to OUT, as two fragments (id 0x4242).
  const whole = udp({ sport: 25000, dport: 53, payload: Buffer.alloc(1600, 0xab) });
  const first = eth({}, ipv4({ src: WL1, dst: OUT, proto: PROTO.UDP, id: 0x4242, mf: true }, whole.subarray(0, 1480)));
  const later = eth({}, ipv4({ src: WL1, dst: OUT, proto: PROTO.UDP, id: 0x4242, fragOffset: 1480 / 8 }, whole.subarray(1480)));
  const f1 = ipAt(h.run('out', first).data);
  t.same([f1.src, f1.csumOk, portsOf(f1)], [NODE, true, [25000, 53]], 'first fragment translated with its ports');
  const before = h.stats().natFrag;
  const f2r = h.run('out', later);
  const f2 = ipAt(f2r.data);
  t.same([f2r.reason, f2.src, f2.csumOk], [R.FORWARD, NODE, true], 'later fragment: same source address');
  t.ok(f2.raw.subarray(20).equals(later.subarray(34)), 'its payload untouched');
  t.equal(h.stats().natFrag, before + 1n);
  const stray = eth({}, ipv4({ src: WL1, dst: OUT, proto: PROTO.UDP, id: 0x4343, fragOffset: 100 }, Buffer.alloc(64)));
  t.ok(h.run('out', stray).data.equals(stray), 'a later fragment whose first was not seen is left alone');

  // The reply, fragmented too.
  const rwhole = udp({ sport: 53, dport: 25000, payload: Buffer.alloc(1600, 0xcd) });
  const r1 = ipAt(h.run('in', eth({}, ipv4({ src: OUT, dst: NODE, proto: PROTO.UDP, id: 0x77, mf: true }, rwhole.subarray(0, 1480)))).data);
  const r2 = ipAt(h.run('in', eth({}, ipv4({ src: OUT, dst: NODE, proto: PROTO.UDP, id: 0x77, fragOffset: 1480 / 8 }, rwhole.subarray(1480)))).data);
  t.same([r1.dst, r1.csumOk, portsOf(r1)[1], r2.dst, r2.csumOk], [WL1, true, 25000, WL1, true], 'reply fragments both go to the workload');
});

t.test('ICMP errors in: translated only within the datagram, for a live mapping, never for a node socket\'s tuple', async (t) => {
  const timeouts = { udpSec: 5 };
  const ns = await topo.addNetns('icmpsock');
  const py = new PySockets(ns);
  t.teardown(() => py.close());
  const h = await setup('naticmpin', { portMin: 32000, portMax: 32003, retries: 8, timeouts });
  t.teardown(() => h.close());
  h.netns = ns.path;
  const errIn = (quoted: Buffer, pad = Buffer.alloc(0)) =>
    Buffer.concat([eth({}, ipv4({ src: OUT, dst: NODE, proto: PROTO.ICMP }, icmp({ type: 3, code: 3, payload: quoted }))), pad]);
  const sent = h.run('out', udpFrame({ src: WL1, dst: OUT, sport: 6100, dport: 9999 })).data;
  const natPort = portsOf(ipAt(sent))[0];
  const hdr = Buffer.from(ipAt(sent).raw.subarray(0, 20));
  const ports = Buffer.from(ipAt(sent).raw.subarray(20, 28));
  t.equal(ipAt(h.run('in', errIn(Buffer.concat([hdr, ports]))).data).dst, WL1, 'control: a full quote is translated');
  // The quote ends after the IPv4 header; the ports sit in Ethernet padding after the datagram.
  const padded = errIn(hdr, Buffer.concat([ports, Buffer.alloc(8)]));
  t.ok(h.run('in', padded).data.equals(padded), 'ports in the padding are not read: untouched, left to the node');
  // The forward mapping gone stale: the reverse one alone translates nothing.
  const nat = h.dp.maps.nat4;
  const old = await stampOlderThan(timeouts.udpSec);
  for (const e of readNatEntries(nat)) {
    if (e.key.dir === NAT_DIR.FWD && e.key.saddr === WL1) nat.update(nat4KeyCodec.encode(e.key), nat4ValueCodec.encode({ ...e.value, last_seen_ns: old }));
  }
  const stale = errIn(Buffer.concat([hdr, ports]));
  t.ok(h.run('in', stale).data.equals(stale), 'an error about an expired mapping is not translated');
  // A live mapping whose tuple a node socket has bound since: the error is the node's.
  // To the same remote as WL1's flow, whose reverse entry still holds natPort for it: the
  // allocator must pick another port (with another remote it may legally reuse natPort).
  const sent2 = h.run('out', udpFrame({ src: WL2, dst: OUT, sport: 6101, dport: 9999 })).data;
  const p2 = portsOf(ipAt(sent2))[0];
  t.not(p2, natPort);
  const q2 = Buffer.from(ipAt(sent2).raw.subarray(0, 28));
  t.equal(ipAt(h.run('in', errIn(q2)).data).dst, WL2, 'control: translated while no node socket holds the tuple');
  await py.run(`w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); w.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); w.bind(('0.0.0.0', ${p2})); _ = 1`);
  const before = h.stats().natHostSock;
  const owned = errIn(q2);
  t.ok(h.run('in', owned).data.equals(owned), 'an error about a node socket\'s tuple never reaches the workload');
  t.equal(h.stats().natHostSock, before + 1n, 'counted');
});
