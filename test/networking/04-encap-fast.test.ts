// The encapsulation fast path in tortie_from_wep, run inside a namespace that has an uplink, a
// neighbour and a router (bpf_fib_lookup resolves there): allowed packets to a remote workload
// behind IPIP leave redirected to the uplink with next-hop MACs, the outer header and the inner
// TTL decremented; packets that would not fit the uplink MTU, with TTL 1, or without a resolved
// neighbour are left to the kernel unchanged (its route answers frag-needed); denied packets are
// never encapsulated; routes without ENCAP are not touched.
import t from 'tap';
import { Topology } from '../../src/util/netns';
import { RT_F, NET_MAP, netcfgCodec, routeCodec, lpm4Key, readNetStats, NETCFG_KEY, nodeKeyCodec, nodeInfoCodec } from '../../src/dataplane/bpf/net-codecs';
import { loadUplink } from '../../src/dataplane/bpf/loader';
import { eth, ipv4 } from '../../src/dataplane/bpf/packet';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { PROTO } from '../../src/dataplane/bpf/packet';
import { WepHarness, TEST_IFINDEX } from '../../src/testbed/wep-harness';
import { allowAll, buildTable } from '../../src/testbed/tables';
import { ipAt, tcpFrame, l4ChecksumOk, ETH_HLEN } from '../../src/testbed/fixtures';
import { TC_OK, TC_SHOT, TC_REDIRECT } from '../../src/testbed/uplink-harness';

const NODE_A = '198.18.1.10';
const NODE_B = '198.18.1.11';
const NODE_C = '198.18.2.10';
const ROUTER = '198.18.1.1';
const MAC_B = '02:00:00:00:00:0b';
const MAC_R = '02:00:00:00:00:01';
const MAC_UP = '02:00:00:00:00:0a';
const WL = '192.168.10.5';

t.test('from-workload IPIP fast path', async (t) => {
  const topo = Topology.create('encapfast');
  t.teardown(() => topo.destroy());
  const n = await topo.addNetns('node');
  const peer = await topo.addNetns('peer');
  await topo.addVeth(n, 'up0', peer, 'up1', { aMac: MAC_UP });
  await n.sh(`sysctl -qw net.ipv4.ip_forward=1 && ip addr add ${NODE_A}/24 dev up0 && ip route add 198.18.2.0/24 via ${ROUTER} && ` +
    `ip neigh add ${NODE_B} lladdr ${MAC_B} dev up0 nud permanent && ip neigh add ${ROUTER} lladdr ${MAC_R} dev up0 nud permanent`);
  const upIfindex = await n.ifindex('up0');

  const h = await WepHarness.create('encapfast');
  t.teardown(() => h.close());
  const egress = buildTable({ id: 'e00000000000000e', direction: 'egress', protocols: [PROTO.TCP],
    rules: [{ proto: PROTO.TCP, portMin: 1, portMax: 999, action: 'allow', ruleId: 5 }], defaultRule: 6 });
  h.setEndpoint([`${WL}/32`], allowAll('i00000000000000e', 'ingress'), egress);
  const maps = h.dp.obj;
  maps.map(NET_MAP.netcfg).update(NETCFG_KEY, netcfgCodec.encode({ node_ip: NODE_A, uplink_ifindex: upIfindex, ipip_mtu: 0, snat_ip: '0.0.0.0' }));
  const rt = maps.map(NET_MAP.rt4);
  rt.update(lpm4Key('192.168.20.0/26'), routeCodec.encode({ next_hop: NODE_B, flags: RT_F.WORKLOAD | RT_F.ENCAP }));
  rt.update(lpm4Key('192.168.30.7/32'), routeCodec.encode({ next_hop: NODE_C, flags: RT_F.WORKLOAD | RT_F.ENCAP }));
  rt.update(lpm4Key('192.168.40.0/26'), routeCodec.encode({ next_hop: NODE_B, flags: RT_F.WORKLOAD }));
  rt.update(lpm4Key('192.168.50.0/26'), routeCodec.encode({ next_hop: '198.18.1.77', flags: RT_F.WORKLOAD | RT_F.ENCAP }));
  const stats = () => readNetStats(maps.map(NET_MAP.netstat));

  const run = (pkt: Buffer) => {
    const cnt = () => readCounters(h.dp.maps.cnt!, h.dp.maps).filter((r) => r.ifindex === TEST_IFINDEX && r.dir === Dir.EGRESS);
    const before = cnt();
    const r = h.dp.fromWep.testRun(pkt, { netns: n.path });
    const moved = cnt().filter((a) => a.packets !== (before.find((b) => b.reason === a.reason)?.packets ?? 0n));
    return { retval: r.retval, data: r.data, reason: moved[0]?.reason };
  };

  t.test('same-subnet node: redirected to the uplink with the node as next hop', async (t) => {
    const inner = tcpFrame({ src: WL, dst: '192.168.20.9', sport: 33000, dport: 80, ttl: 64, df: true, payload: Buffer.alloc(200, 3) });
    const before = stats().encapFast;
    const r = run(inner);
    t.same([r.retval, r.reason], [TC_REDIRECT, R.FORWARD]);
    t.equal(r.data.subarray(0, 6).toString('hex'), MAC_B.replace(/:/g, ''), 'destination MAC: node B');
    t.equal(r.data.subarray(6, 12).toString('hex'), MAC_UP.replace(/:/g, ''), 'source MAC: the uplink');
    const o = ipAt(r.data);
    t.same([o.src, o.dst, o.proto, o.csumOk, o.totLen, o.df], [NODE_A, NODE_B, PROTO.IPIP, true, inner.length - ETH_HLEN + 20, true]);
    const i = ipAt(r.data, ETH_HLEN + 20);
    t.same([i.src, i.dst, i.ttl, i.csumOk, l4ChecksumOk(i)], [WL, '192.168.20.9', 63, true, true], 'inner: TTL decremented, checksums valid');
    t.same(i.l4, ipAt(inner).l4, 'inner payload untouched');
    t.equal(stats().encapFast, before + 1n);
  });

  t.test('other-subnet node: next hop is the router, outer destination the node', async (t) => {
    const r = run(tcpFrame({ src: WL, dst: '192.168.30.7', sport: 33001, dport: 80 }));
    t.equal(r.retval, TC_REDIRECT);
    t.equal(r.data.subarray(0, 6).toString('hex'), MAC_R.replace(/:/g, ''));
    t.same([ipAt(r.data).dst, ipAt(r.data, ETH_HLEN + 20).dst], [NODE_C, '192.168.30.7']);
  });

  t.test('declined: the kernel takes these unchanged', async (t) => {
    const fb = stats().encapFallback;
    const cases: [string, Buffer][] = [
      ['1481-byte inner packet (outer would exceed MTU 1500)', tcpFrame({ src: WL, dst: '192.168.20.9', sport: 33002, dport: 80, df: true, payload: Buffer.alloc(1481 - 40) })],
      ['TTL 1', tcpFrame({ src: WL, dst: '192.168.20.9', sport: 33003, dport: 80, ttl: 1 })],
      ['next hop without a neighbour entry', tcpFrame({ src: WL, dst: '192.168.50.1', sport: 33004, dport: 80 })],
    ];
    for (const [what, p] of cases) {
      const r = run(p);
      t.same([r.retval, r.reason, r.data.equals(p)], [TC_OK, R.FORWARD, true], what);
    }
    t.equal(stats().encapFallback, fb + 3n, 'each counted as a fallback');
    const fits = run(tcpFrame({ src: WL, dst: '192.168.20.9', sport: 33005, dport: 80, df: true, payload: Buffer.alloc(1480 - 40) }));
    t.equal(fits.retval, TC_REDIRECT, 'a 1480-byte inner packet fits exactly');
    t.equal(fits.data.length, 14 + 1500);
  });

  t.test('decap fast path: straight to the workload\'s cali* device, else the kernel', async (t) => {
    await n.sh('ip link add calit0 type veth peer name wlt0 && ip link set calit0 address ee:ee:ee:ee:ee:ee && ' +
      'ip link set calit0 up && ip link set wlt0 up && ip route add 192.168.10.7/32 dev calit0 && ' +
      'ip neigh add 192.168.10.7 lladdr 02:00:00:00:00:77 dev calit0 nud permanent');
    const cali = await n.ifindex('calit0');
    h.writer.applyEndpointPolicy({ ifindex: cali, id: 9, ipNetworks: ['192.168.10.7/32'],
      tables: { ingress: allowAll('i00000000000000f', 'ingress'), egress: allowAll('e00000000000000f', 'egress') } });
    const up = await loadUplink({ pinRoot: h.pinRoot });
    t.teardown(() => up.close());
    up.maps.node4.update(nodeKeyCodec.encode({ addr: NODE_B }), nodeInfoCodec.encode({ flags: 0 }));
    const ipip = (dst: string, ttl = 64) => eth({ dst: MAC_UP }, ipv4({ src: NODE_B, dst: NODE_A, proto: PROTO.IPIP },
      tcpFrame({ src: '192.168.20.9', dst, sport: 80, dport: 33000, flags: 'SA', ttl }).subarray(ETH_HLEN)));
    const before = readNetStats(up.maps.netstat);
    const r = up.ingress.testRun(ipip('192.168.10.7'), { netns: n.path });
    t.equal(r.retval, TC_REDIRECT, 'redirected');
    t.equal(r.data.subarray(0, 6).toString('hex'), '020000000077', 'to the workload\'s MAC');
    t.equal(r.data.subarray(6, 12).toString('hex'), 'eeeeeeeeeeee', 'from the cali* MAC');
    const i = ipAt(r.data);
    t.same([i.src, i.dst, i.proto, i.ttl, i.csumOk, l4ChecksumOk(i)], ['192.168.20.9', '192.168.10.7', PROTO.TCP, 63, true, true], 'outer header gone, TTL decremented');
    const after = readNetStats(up.maps.netstat);
    t.same([after.decap - before.decap, after.decapFast - before.decapFast], [1n, 1n]);
    for (const [what, p] of [['TTL 1', ipip('192.168.10.7', 1)], ['not a tortie endpoint', ipip('198.18.3.3')]] as const) {
      const x = up.ingress.testRun(p, { netns: n.path });
      t.same([x.retval, ipAt(x.data).dst, x.data.length], [TC_OK, ipAt(p, ETH_HLEN + 20).dst, p.length - 20], `${what}: decapsulated, left to the kernel`);
    }
  });

  t.test('no ENCAP flag, no route, or denied: never encapsulated', async (t) => {
    for (const dst of ['192.168.40.3', '198.18.3.3']) {
      const p = tcpFrame({ src: WL, dst, sport: 33010, dport: 80 });
      const r = run(p);
      t.same([r.retval, r.data.equals(p)], [TC_OK, true], dst);
    }
    const denied = run(tcpFrame({ src: WL, dst: '192.168.20.9', sport: 33011, dport: 5000 }));
    t.same([denied.retval, denied.reason], [TC_SHOT, R.POLICY_DENY]);
  });
});
