// NAT66 with IPv4 NAT's remaining guarantees.
// Fragments, with real traffic: a workload behind a node (route manager, real uplink programs) and an
// outside host, both ends on 1280-byte links, exchange 3000-byte UDP datagrams: every fragment of
// the workload's datagram leaves with the node's address (the outside host reassembles it and sees
// the node as its source), every fragment of the answer reaches the workload (it reassembles it),
// and the later fragments were counted as translated by their first fragment's record.
// Close on RST/FIN from outside: the uplink and the workload's program (IPv6 conntrack with the
// sequence window) run the same segments in turn, as on the node; a blind RST or FIN never shortens
// a mapping, one the workload's conntrack accepted lets the agent's sweep (NatUpkeep, as the route
// manager runs it) delete it after the closed-flow timeout.
import t from 'tap';
import { Topology } from '../../src/util/netns';
import { RouteManager } from '../../src/dataplane/routing';
import { NatUpkeep } from '../../src/dataplane/routing/sweep';
import { PySockets } from '../../src/testbed/probes';
import { readNat6Entries, readNetStats, nat6KeyCodec, nat6ValueCodec, NATF, NAT_DIR, POOL_F } from '../../src/dataplane/bpf/net-codecs';
import { ctAcceptedClose6 } from '../../src/dataplane/bpf/nat';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { NH6, tcp } from '../../src/dataplane/bpf/packet';
import { frame6, ip6At, stampOlderThan } from '../../src/testbed/fixtures';
import { UplinkHarness } from '../../src/testbed/uplink-harness';
import { WepHarness, uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { allowAll } from '../../src/testbed/tables';
import { nat66Triangle } from '../../src/testbed/layouts';
import type { RoutingState } from '../../src/calc/types';

const NODE6 = 'fd00:198:18:1::10';
const OUT6 = 'fd00:198:18:1::20';
const WL6 = 'fd00:10::5';
const WL6B = 'fd00:10::6';
const GW6 = 'fd00:10::1';

const topo = Topology.create('nat66f');
t.teardown(() => topo.destroy());

t.test('fragmented UDP both ways through a 1280-byte path: translated, reassembled at both ends', async (t) => {
  const pinRoot = uniquePinRoot('nat66f');
  const socks: PySockets[] = [];
  let m: RouteManager | undefined;
  t.teardown(() => { for (const s of socks) s.close(); m?.close(); removePinRoot(pinRoot); });
  // Small links at both ends: each sender's kernel fragments its own datagrams (IPv6 routers never do).
  const { node, out, wl } = await nat66Triangle(topo, { node6: NODE6, out6: OUT6, wl6: WL6, gw6: GW6, mtu: 1280 });

  const routing: RoutingState = {
    pools: [{ name: 'v6', cidr: 'fd00:10::/48', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, disabled: false, blockSize: 122 }],
    nodes: [{ name: 'node', ipv6Address: `${NODE6}/64` }],
    workloadRoutes: [],
  };
  m = await RouteManager.open({ pinRoot, netns: { name: node.name, path: node.path } });
  m.setState('node', routing);
  await m.apply();
  const frag = () => readNetStats(m!.maps.netstat).natFrag;
  const before = frag();

  const pyOut = new PySockets(out);
  const pyWl = new PySockets(wl);
  socks.push(pyOut, pyWl);
  await pyOut.run(`us = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); us.bind(('${OUT6}', 5353)); us.settimeout(10); _ = 1`);
  await pyWl.run(`uc = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); uc.settimeout(10); uc.sendto(bytes(range(250)) * 12, ('${OUT6}', 5353)); _ = 1`);
  const got = await pyOut.run<[string, number, boolean]>(`d, fa = us.recvfrom(65535); us.sendto(b'R' * 3000, fa); _ = [fa[0], len(d), d == bytes(range(250)) * 12]`);
  t.same(got, [NODE6, 3000, true], 'the outside host reassembled the whole datagram, from the node address');
  t.same(await pyWl.run<[number, boolean]>(`d = uc.recvfrom(65535)[0]; _ = [len(d), d == b'R' * 3000]`), [3000, true],
    'the workload reassembled the whole answer');
  // 3000 bytes over 1280-byte links: a first and two later fragments each way.
  t.ok(frag() - before >= 4n, `later fragments translated by their first fragment's record (${frag() - before})`);
  const udpMaps = readNat6Entries(m.maps.nat6).filter((e) => e.key.proto === NH6.UDP && e.key.dir === NAT_DIR.FWD);
  t.same(udpMaps.map((e) => [e.key.saddr, e.key.daddr, e.value.addr]), [[WL6, OUT6, NODE6]], 'one mapping for the flow');
  t.ok(m.maps.nfrag6.keys().length >= 2, 'a record per translated first fragment (each way)');
});

t.test('RST and FIN from outside close a NAT66 mapping only once the workload\'s IPv6 conntrack accepted them', async (t) => {
  const timeouts = { tcpClosedSec: 3 };
  const empty = (await topo.addNetns('empty')).path;
  const h = await UplinkHarness.create('nat66rst', { portMin: 32000, portMax: 32001, retries: 4, timeouts });
  t.teardown(() => h.close());
  h.netns = empty;
  h.config6(NODE6);
  h.pool6('fd00:10::/48', POOL_F.NAT_OUT);
  h.node6(NODE6);
  const w = await WepHarness.create('nat66rstw');
  t.teardown(() => w.close());
  w.setEndpoint([`${WL6}/128`, `${WL6B}/128`], allowAll('i000000000000241', 'ingress'), allowAll('e000000000000241', 'egress'));
  const upkeep = new NatUpkeep(h.dp, { ct6: w.dp.maps.ct6! });
  const ct = ctAcceptedClose6(w.dp.maps.ct6!);
  const nat = h.dp.maps.nat6;

  const seg = (src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number, len = 0) =>
    frame6(src, dst, NH6.TCP, tcp({ sport, dport, flags, seq, ack, payload: Buffer.alloc(len, 0x61) }));
  const flow = (wl: string, sport: number) => {
    let natPort = 0;
    const outSeg = (flags: string, seq: number, ack: number, len = 0) => {
      const f = seg(wl, OUT6, sport, 443, flags, seq, ack, len);
      t.equal(w.run('from', f).reason, R.FORWARD, `workload ${flags} passes its program`);
      const b = h.run('out', f);
      t.equal(b.reason, R.FORWARD, `workload ${flags} is translated`);
      natPort = ip6At(b.data).ports[0];
    };
    const inSeg = (flags: string, seq: number, ack: number, len = 0) => {
      const b = h.run('in', seg(OUT6, NODE6, 443, natPort, flags, seq, ack, len));
      t.equal(b.reason, R.FORWARD, `outside ${flags} seq ${seq} reverse-translated`);
      t.equal(ip6At(b.data).dst, wl);
      return w.run('to', b.data).reason;
    };
    const fwd = () => readNat6Entries(nat).find((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === wl && e.key.sport === sport);
    const age = async () => {
      const old = await stampOlderThan(timeouts.tcpClosedSec);
      for (const e of readNat6Entries(nat)) {
        if ((e.key.dir === NAT_DIR.FWD && e.key.saddr === wl && e.key.sport === sport) || (e.key.dir === NAT_DIR.REV && e.value.addr === wl && e.value.port === sport)) {
          nat.update(nat6KeyCodec.encode(e.key), nat6ValueCodec.encode({ ...e.value, last_seen_ns: old }));
        }
      }
    };
    // Handshake and some data: the workload's conntrack learns both windows.
    outSeg('S', 5000, 0);
    t.equal(inSeg('SA', 90000, 5001), R.FORWARD);
    outSeg('PA', 5001, 90001, 100);
    t.equal(inSeg('A', 90001, 5101), R.FORWARD);
    return { outSeg, inSeg, fwd, age };
  };

  await t.test('RST', async (t) => {
    const f = flow(WL6, 2000);
    for (const seq of [90001 - 70000, 90001 + 70000]) t.equal(f.inSeg('R', seq >>> 0, 0), R.CT_INVALID, 'a blind RST is INVALID at the workload');
    t.equal(f.fwd()!.value.flags & NATF.RST, 0, 'a RST from outside does not mark the mapping closed');
    t.not(f.fwd()!.value.flags & NATF.RST_IN, 0, 'it is noted for the sweep');
    await f.age();
    t.equal(upkeep.sweep(), 0, 'idle past the closed timeout: the sweep keeps the mapping (conntrack saw no RST)');
    t.equal(f.inSeg('PA', 90001, 5101, 10), R.FORWARD, 'the flow still works');
    f.outSeg('A', 5101, 90011);
    t.equal(f.inSeg('RA', 90011, 5101), R.FORWARD, 'the in-window RST is accepted');
    t.ok(ct(f.fwd()!.key).rst, 'the workload\'s IPv6 conntrack holds the flow as reset');
    await f.age();
    t.equal(upkeep.sweep(), 2, 'FWD and REV swept after the closed timeout');
    t.equal(f.fwd(), undefined);
    t.same(upkeep.status(6).expiredTotal, 2, 'counted in the NAT66 figures');
    t.same(upkeep.status(4).expiredTotal, 0, 'not in the IPv4 ones');
  });

  await t.test('FIN both ways', async (t) => {
    const f = flow(WL6B, 2001);
    f.outSeg('FA', 5101, 90001);
    t.not(f.fwd()!.value.flags & NATF.FIN_OUT, 0, 'the workload\'s FIN is marked');
    for (const seq of [90001 - 70000, 90001 + 70000]) t.equal(f.inSeg('FA', seq >>> 0, 5102), R.CT_INVALID, 'a blind FIN is INVALID at the workload');
    t.not(f.fwd()!.value.flags & NATF.FIN_IN_SEEN, 0, 'it is noted for the sweep');
    t.same(ct(f.fwd()!.key), { rst: false, fins: false });
    await f.age();
    t.equal(upkeep.sweep(), 0, 'the half-closed mapping is kept');
    t.equal(f.inSeg('PA', 90001, 5102, 10), R.FORWARD, 'and still works');
    f.outSeg('A', 5102, 90011);
    t.equal(f.inSeg('FA', 90011, 5102), R.FORWARD, 'the in-window FIN is accepted');
    f.outSeg('A', 5102, 90012);
    t.same(ct(f.fwd()!.key), { rst: false, fins: true }, 'the workload\'s IPv6 conntrack holds FIN both ways');
    await f.age();
    t.equal(upkeep.sweep(), 2, 'FWD and REV swept after the closed timeout');
    t.equal(f.fwd(), undefined);
  });
});
