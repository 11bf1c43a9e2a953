// NAT port candidates, IPv4 and NAT66 alike: a SYN's candidates are independent draws from the
// port range, so that a pattern of taken ports defeats none of them. The range (4,096 ports) is
// half taken, in runs of 64 ports (the closed flows' tombstones that refuse the SYNs, by
// timestamp, as the outside's TIME-WAIT would, alternating with live mappings of another
// workload), free runs of 64 between: 100 SYNs of new flows all get a port, each in a free run
// (with 24 independent candidates at most ~1 in 2^24 would not). Consecutive candidates from a
// random start found none for every SYN starting in the first 41 ports of a taken run (~32 of
// the 100). A range no longer than the most candidates is walked in order (its one free port is
// always found): networking/03 and 20 ("natfull").
import t from 'tap';
import { Topology } from '../../src/util/netns';
import { nat4KeyCodec, nat4ValueCodec, nat6KeyCodec, nat6ValueCodec, NATF, NAT_DIR, POOL_F } from '../../src/dataplane/bpf/net-codecs';
import { readNatQuota } from '../../src/dataplane/bpf/nat';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { NH6, PROTO, eth, ipv4, tcp } from '../../src/dataplane/bpf/packet';
import { fillL4Checksum, frame6, ip6At, ipAt, portsOf } from '../../src/testbed/fixtures';
import { UplinkHarness } from '../../src/testbed/uplink-harness';

const MIN = 20000, SPAN = 4096, RUN = 64, SYNS = 100;
const FAMILIES = {
  4: { node: '198.18.1.10', out: '198.18.1.20', wl: '192.168.10.5', other: '192.168.10.6', pool: '192.168.0.0/16' },
  6: { node: 'fd00:198:18:1::10', out: 'fd00:198:18:1::20', wl: 'fd00:10::5', other: 'fd00:10::6', pool: 'fd00:10::/48' },
} as const;

const topo = Topology.create('natcand');
t.teardown(() => topo.destroy());
const emptyNs = topo.addNetns('empty').then((n) => n.path);

/** A SYN with a timestamp option (NOP NOP TS). */
function syn(fam: 4 | 6, src: string, dst: string, sport: number, dport: number, seq: number, tsval: number): Buffer {
  const l4 = tcp({ sport, dport, flags: 'S', seq, ack: 0, doff: 8 });
  l4.set([1, 1, 8, 10], 20);
  l4.writeUInt32BE(tsval >>> 0, 24);
  l4.writeUInt32BE(0, 28);
  return fam === 6 ? frame6(src, dst, NH6.TCP, l4) : eth({}, fillL4Checksum(ipv4({ src, dst, proto: PROTO.TCP }, l4)));
}

const sourcePort = (fam: 4 | 6, frame: Buffer): number => (fam === 6 ? ip6At(frame).ports[0] : portsOf(ipAt(frame))[0]);

for (const fam of [4, 6] as const) t.test(`IPv${fam}: with half the range taken in long runs, every SYN gets a port`, async (t) => {
  const F = FAMILIES[fam];
  const h = await UplinkHarness.create(`natcand${fam}`, { portMin: MIN, portMax: MIN + SPAN - 1 });
  t.teardown(() => h.close());
  h.netns = await emptyNs;
  if (fam === 6) { h.config6(F.node); h.pool6(F.pool, POOL_F.NAT_OUT); h.node6(F.node); }
  else { h.config(F.node); h.pool(F.pool, POOL_F.NAT_OUT); h.node(F.node); }
  const nat = fam === 6 ? h.dp.maps.nat6 : h.dp.maps.nat4;
  const now = process.hrtime.bigint();
  const SYN_TS = 1000, TOMB_TS = 5000; // every tombstone's closed flow has a newer timestamp than the SYNs

  const taken = (port: number) => Math.floor((port - MIN) / RUN) % 2 === 0;
  let tombs = 0, lives = 0;
  for (let p = MIN; p < MIN + SPAN; p++) {
    if (!taken(p)) continue;
    const tomb = Math.floor((p - MIN) / (2 * RUN)) % 2 === 0;
    const key = { saddr: F.out, daddr: F.node, sport: 443, dport: p, proto: PROTO.TCP, dir: NAT_DIR.REV };
    const value = {
      last_seen_ns: now, addr: F.other, port: 30000 + (p - MIN), pad: 0,
      created_ns: tomb ? (BigInt(TOMB_TS) << 32n) | 7000n : now,
      flags: tomb ? NATF.DONE | NATF.TW_TS : NATF.REPLY,
    };
    if (fam === 6) nat.update(nat6KeyCodec.encode(key as never), nat6ValueCodec.encode(value as never));
    else nat.update(nat4KeyCodec.encode(key as never), nat4ValueCodec.encode(value as never));
    if (tomb) tombs++; else lives++;
  }
  t.same([tombs, lives], [SPAN / 4, SPAN / 4], 'half the range taken: a quarter tombstones, a quarter live mappings');

  const reasons = new Map<number, number>();
  const ports = new Set<number>();
  let inTaken = 0;
  for (let i = 0; i < SYNS; i++) {
    const r = h.run('out', syn(fam, F.wl, F.out, 40000 + i, 443, 1000 + i, SYN_TS));
    reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
    if (r.reason !== R.FORWARD) continue;
    const p = sourcePort(fam, r.data);
    ports.add(p);
    if (p < MIN || p >= MIN + SPAN || taken(p)) inTaken++;
  }
  t.same([...reasons], [[R.FORWARD, SYNS]], `all ${SYNS} SYNs leave translated, none refused (nat_no_port)`);
  t.equal(ports.size, SYNS, 'each from a port of its own');
  t.equal(inTaken, 0, 'every port from a free run: no tombstone or live mapping was taken over');
  t.equal(readNatQuota(fam === 6 ? h.dp.maps.natq6 : h.dp.maps.natq4).find((q) => q.addr === F.wl)?.live, SYNS, 'the workload holds exactly its flows');
});
