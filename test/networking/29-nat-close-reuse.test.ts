// NAT at a verified TCP close, IPv4 and NAT66 alike (networking/28-nat-churn does IPv4 with real
// traffic): the uplink and the workload's program (its conntrack: states, windows) run the same
// segments in turn, as on the node, with the uplink reading that conntrack as the agent loads it.
// With ONE NAT port, so that every new flow needs the closed flow's port:
//   - the mapping is released by the outside's last ACK, and not before: not at the FINs, not by
//     an ACK with a wrong acknowledgment; the quota is credited once (MOVED);
//   - the tombstone keeps the port from a SYN the outside's TIME-WAIT would refuse (timestamp
//     older; no timestamps and sequence number not past the closed flow's) and gives it to one it
//     accepts (timestamp newer);
//   - a sweep afterwards changes no count; a late segment of a closed flow is a mid-stream pickup
//     that keeps its mapping for the closed timeout only.
import t from 'tap';
import { Topology } from '../../src/util/netns';
import { NatUpkeep } from '../../src/dataplane/routing/sweep';
import { nat4KeyCodec, nat4ValueCodec, nat6KeyCodec, nat6ValueCodec, readNat6Entries, readNatEntries, NATF, NAT_DIR, POOL_F, QUOTA } from '../../src/dataplane/bpf/net-codecs';
import type { Nat4Key, Nat4Value, Nat6Key, Nat6Value } from '../../src/dataplane/bpf/net-codecs';
import { readNatQuota } from '../../src/dataplane/bpf/nat';
import { readQuotaCounter } from '../../src/dataplane/bpf/quota';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { NH6, PROTO, eth, ipv4, tcp } from '../../src/dataplane/bpf/packet';
import { fillL4Checksum, frame6, ip6At, ipAt, portsOf, stampOlderThan } from '../../src/testbed/fixtures';
import { UplinkHarness } from '../../src/testbed/uplink-harness';
import { WepHarness } from '../../src/testbed/wep-harness';
import { allowAll } from '../../src/testbed/tables';

const PORT = 33000;
const FAMILIES = {
  4: { node: '198.18.1.10', out: '198.18.1.20', wl: '192.168.10.5', wlb: '192.168.10.6', pool: '192.168.0.0/16', host: 32 },
  6: { node: 'fd00:198:18:1::10', out: 'fd00:198:18:1::20', wl: 'fd00:10::5', wlb: 'fd00:10::6', pool: 'fd00:10::/48', host: 128 },
} as const;

const topo = Topology.create('natcr');
t.teardown(() => topo.destroy());
const emptyNs = topo.addNetns('empty').then((n) => n.path);

/**
 * How a segment's timestamp option is laid out: as Linux sends it ('linux': a SYN's MSS, SACK
 * permitted, timestamps, NOP, window scale 0; other segments NOP NOP timestamps), read in place
 * by the uplink (lib/tcp_opt.h); or timestamps first then two NOPs ('walk'), a layout left to the
 * option walk. The answers must not differ.
 */
type TsLayout = 'linux' | 'walk';

/** A TCP segment with a timestamp option (laid out as `layout`) unless ts is undefined. */
function seg(fam: 4 | 6, src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number,
  ts?: [number, number], layout: TsLayout = 'linux'): Buffer {
  const syn = layout === 'linux' && flags.includes('S');
  const l4 = tcp({ sport, dport, flags, seq, ack, doff: ts ? (syn ? 10 : 8) : 5 });
  if (ts) {
    const at = syn ? 28 : layout === 'linux' ? 24 : 22;
    if (syn) l4.set([2, 4, 0x05, 0xb4, 4, 2, 8, 10], 20);
    else if (layout === 'linux') l4.set([1, 1, 8, 10], 20);
    else l4.set([8, 10], 20);
    l4.writeUInt32BE(ts[0] >>> 0, at);
    l4.writeUInt32BE(ts[1] >>> 0, at + 4);
    if (syn) l4.set([1, 3, 3, 0], 36);
    else if (layout === 'walk') l4.set([1, 1], 30);
  }
  return fam === 6 ? frame6(src, dst, NH6.TCP, l4) : eth({}, fillL4Checksum(ipv4({ src, dst, proto: PROTO.TCP }, l4)));
}

/** Destination address and ports of a translated frame. */
function view(fam: 4 | 6, frame: Buffer): { dst: string; ports: [number, number] } {
  if (fam === 6) { const v = ip6At(frame); return { dst: v.dst, ports: v.ports }; }
  const v = ipAt(frame);
  return { dst: v.dst, ports: portsOf(v) };
}

for (const [fam, layout] of [[4, 'linux'], [4, 'walk'], [6, 'linux']] as const) t.test(`IPv${fam}, timestamps laid out as ${layout}: a verified close releases the mapping; its port goes only to a SYN TIME-WAIT accepts`, async (t) => {
  const { node: NODE6, out: OUT6, wl: WL6, wlb: WL6B } = FAMILIES[fam];
  const w = await WepHarness.create(`natcrw${fam}${layout[0]}`);
  t.teardown(() => w.close());
  w.setEndpoint([`${WL6}/${FAMILIES[fam].host}`, `${WL6B}/${FAMILIES[fam].host}`], allowAll(`i00000000000029${fam}`, 'ingress'), allowAll(`e00000000000029${fam}`, 'egress'));
  const h = await UplinkHarness.create(`natcr${fam}${layout[0]}`, { portMin: PORT, portMax: PORT, retries: 4 }, undefined,
    fam === 6 ? { ct6: w.dp.maps.ct6! } : { ct4: w.dp.maps.ct4! });
  t.teardown(() => h.close());
  h.netns = await emptyNs;
  if (fam === 6) {
    h.config6(NODE6);
    h.pool6(FAMILIES[6].pool, POOL_F.NAT_OUT);
    h.node6(NODE6);
  } else {
    h.config(NODE6);
    h.pool(FAMILIES[4].pool, POOL_F.NAT_OUT);
    h.node(NODE6);
  }
  const nat = fam === 6 ? h.dp.maps.nat6 : h.dp.maps.nat4, natq = fam === 6 ? h.dp.maps.natq6 : h.dp.maps.natq4;
  const entries = () => (fam === 6 ? readNat6Entries(nat) : readNatEntries(nat));
  const fwd = (wl: string) => entries().find((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === wl);
  const rev = () => entries().find((e) => e.key.dir === NAT_DIR.REV && e.key.dport === PORT);
  const live = (wl: string) => readNatQuota(natq).find((r) => r.addr === wl)?.live ?? 0;

  /** Workload segment: its program, then the uplink leaving; the uplink's drop reason. */
  const out = (wl: string, flags: string, seq: number, ack: number, ts?: [number, number]) => {
    const f = seg(fam, wl, OUT6, 3000, 443, flags, seq, ack, ts, layout);
    t.equal(w.run('from', f).reason, R.FORWARD, `${wl} ${flags} passes its program`);
    const r = h.run('out', f);
    if (r.reason === R.FORWARD) t.same(view(fam, r.data).ports, [PORT, 443], `${wl} ${flags} leaves from the NAT port`);
    return r.reason;
  };
  /** Outside segment: the uplink arriving, then the workload's program; its drop reason. */
  const inn = (wl: string, flags: string, seq: number, ack: number, ts?: [number, number]) => {
    const r = h.run('in', seg(fam, OUT6, NODE6, 443, PORT, flags, seq, ack, ts, layout));
    t.equal(r.reason, R.FORWARD, `outside ${flags} reverse-translated`);
    t.equal(view(fam, r.data).dst, wl, `to ${wl}`);
    return w.run('to', r.data).reason;
  };

  // Flow A: handshake and data, then the outside closes first (as a web server with
  // `Connection: close`): its FIN, the workload's FIN, the outside's last ACK.
  t.equal(out(WL6, 'S', 5000, 0, [100, 0]), R.FORWARD);
  t.equal(inn(WL6, 'SA', 90000, 5001, [7000, 100]), R.FORWARD);
  if (fam === 4) {
    // IPv4: a reply does not look up the FWD entry while the REV entry says a reply refreshed it
    // lately (bpf/lib/nat.h NAT_FWD_SEEN_NS) and the outside has sent no FIN; pinned ahead of the
    // clock here, so only the FIN's mark on the REV entry makes the last ACK look it up (and
    // release the mapping).
    const r = rev()!, ahead = process.hrtime.bigint() + 3600n * 1_000_000_000n;
    nat.update(nat4KeyCodec.encode(r.key as Nat4Key), nat4ValueCodec.encode({ ...(r.value as Nat4Value), created_ns: ahead, last_seen_ns: ahead }));
  }
  t.equal(out(WL6, 'A', 5001, 90001, [101, 7000]), R.FORWARD);
  t.equal(inn(WL6, 'FA', 90001, 5001, [7001, 101]), R.FORWARD, 'the outside\'s FIN passes the workload\'s conntrack');
  t.equal(out(WL6, 'FA', 5001, 90002, [110, 7001]), R.FORWARD);
  t.ok(fwd(WL6), 'both FINs went by: the mapping stays until the outside acknowledges the workload\'s FIN');
  const moved0 = readQuotaCounter(natq, WL6, QUOTA.MOVED);
  t.equal(inn(WL6, 'A', 90002, 5001, [7002, 110]), R.FORWARD, 'an ACK that does not acknowledge the FIN');
  t.ok(fwd(WL6), 'leaves the mapping');
  t.equal(inn(WL6, 'A', 90002, 5002, [7002, 110]), R.FORWARD, 'the outside\'s last ACK');
  t.equal(fwd(WL6), undefined, 'releases the mapping at once');
  t.equal(readQuotaCounter(natq, WL6, QUOTA.MOVED), moved0 + 1n, 'credited once (MOVED)');
  t.equal(live(WL6), 0, 'the workload holds no mapping');
  const tomb = rev()!;
  t.equal(tomb.value.addr, WL6, 'the reverse entry stays: the closed flow\'s tombstone');
  t.equal(tomb.value.flags & (NATF.DONE | NATF.TW_TS), NATF.DONE | NATF.TW_TS, 'marked, with the flow\'s last timestamp');
  t.equal(inn(WL6, 'FA', 90001, 5001, [7001, 101]), R.FORWARD, 'a late segment of the closed flow still reaches its workload');

  // Flow B (another workload, same destination) needs the only port.
  t.equal(out(WL6B, 'S', 4000, 0, [50, 0]), R.NAT_NO_PORT, 'a SYN with an older timestamp is refused (the outside\'s PAWS would drop it)');
  t.equal(out(WL6B, 'S', 9000, 0, [50, 0]), R.NAT_NO_PORT, '... even with a later sequence number');
  t.equal(out(WL6B, 'S', 4000, 0), R.NAT_NO_PORT, 'without timestamps, a sequence number not past the closed flow\'s is refused');
  t.equal(rev()!.value.addr, WL6, 'the tombstone still holds the port');
  // Past the closed timeout (10 s) but within the outside's TIME-WAIT (60 s): still guarded, by
  // the program and against the sweep (a port freed at 10 s met TIME-WAITs that refused its SYN).
  const aged = await stampOlderThan(10);
  const t0 = rev()!;
  if (fam === 6) nat.update(nat6KeyCodec.encode(t0.key as Nat6Key), nat6ValueCodec.encode({ ...(t0.value as Nat6Value), last_seen_ns: aged }));
  else nat.update(nat4KeyCodec.encode(t0.key as Nat4Key), nat4ValueCodec.encode({ ...(t0.value as Nat4Value), last_seen_ns: aged }));
  t.equal(out(WL6B, 'S', 4000, 0, [50, 0]), R.NAT_NO_PORT, 'a tombstone idle past the closed timeout still refuses a SYN the TIME-WAIT would refuse');
  t.equal(new NatUpkeep(h.dp, fam === 6 ? { ct6: w.dp.maps.ct6! } : { ct4: w.dp.maps.ct4! }).sweep(), 0, 'and the sweep keeps it');
  t.equal(rev()!.value.addr, WL6, 'the tombstone still holds the port');
  t.equal(new NatUpkeep(h.dp, {}).sweep(process.hrtime.bigint() + 50n * 1_000_000_000n), 1, 'a sweep past the TIME-WAIT length (60 s) deletes it');
  t.equal(rev(), undefined, 'gone');
  if (fam === 6) nat.update(nat6KeyCodec.encode(t0.key as Nat6Key), nat6ValueCodec.encode({ ...(t0.value as Nat6Value) }));
  else nat.update(nat4KeyCodec.encode(t0.key as Nat4Key), nat4ValueCodec.encode({ ...(t0.value as Nat4Value) }));
  t.equal(rev()!.value.addr, WL6, '(the tombstone put back as it was, for what follows)');
  t.equal(out(WL6B, 'S', 4000, 0, [111, 0]), R.FORWARD, 'a SYN with a newer timestamp takes the port');
  t.equal(rev()!.value.addr, WL6B, 'the port is the new flow\'s');
  t.equal(rev()!.value.flags & NATF.DONE, 0, 'live again');
  t.equal(inn(WL6B, 'SA', 20000, 4001, [7100, 111]), R.FORWARD, 'its reply reaches the new workload');
  t.same([live(WL6), live(WL6B)], [0, 1], 'counts: the closed flow none, the new one 1');

  const upkeep = new NatUpkeep(h.dp, fam === 6 ? { ct6: w.dp.maps.ct6! } : { ct4: w.dp.maps.ct4! });
  t.equal(upkeep.sweep(), 0, 'the sweep deletes nothing live');
  t.same([live(WL6), live(WL6B)], [0, 1], 'and changes no count');

  // A late segment of a released flow (here towards another port of the outside host, where the
  // NAT port is free) is a mid-stream pickup: translated, but only for the closed timeout.
  const late = seg(fam, WL6, OUT6, 3001, 444, 'A', 7000, 8000);
  t.equal(w.run('from', late).reason, R.FORWARD, 'the workload\'s program passes it (loose pickup)');
  t.equal(h.run('out', late).reason, R.FORWARD, 'translated');
  const pick = entries().find((e) => e.key.dir === NAT_DIR.FWD && e.key.sport === 3001)!;
  t.not(pick.value.flags & NATF.PICKUP, 0, 'marked as a pickup');
  t.equal(live(WL6), 1, 'counted');
  const later = process.hrtime.bigint() + 11n * 1_000_000_000n;
  t.equal(upkeep.sweep(later), 2, 'gone after the closed timeout (10 s), not the TCP one (3600 s)');
  t.same([live(WL6), live(WL6B)], [0, 1], 'counts still exact');
});
