// Felix's defaultEndpointToHostAction in tortie_from_wep: new flows from a workload to any
// address of its node's namespace (the uplink address, another host address, 127.0.0.1) are
// dropped after its egress policy allowed them (Drop, the default, counted as to_host_denied)
// or let through (Accept; Return acts as Accept: tortie has no host endpoints). Forwarded
// traffic through the node, proxy ARP for the 169.254.1.1 gateway and host -> workload flows
// (their replies are conntrack's) keep working under Drop. Real packets in namespaces (one body
// for IPv4 and IPv6: a dual-stack workload, node and outside; the gateway's neighbour entry is
// proxy ARP's in IPv4, the host side's link-local address in IPv6), and BPF_PROG_TEST_RUN inside
// a namespace of the test's own, in IPv4 and in IPv6 (the node's IPv6 addresses, ::1, a routed
// IPv6 destination, a node-initiated IPv6 flow's reply).
import t from 'tap';
import { gnp, namespace, wep as fixtureWep } from '../../src/testbed/fixtures';
import { SingleNode, NODE_IP, NODE_IP6, OUTSIDE_IP, OUTSIDE_IP6, type Workload } from '../../src/testbed';
import { uniquePinRoot, removePinRoot, WepHarness, TEST_IFINDEX, TC_ACT_OK, TC_ACT_SHOT, testHostRouting } from '../../src/testbed/wep-harness';
import { allowAll } from '../../src/testbed/tables';
import { loadWep, mapOps, type EndpointToHostAction, type WepDatapath } from '../../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../../src/dataplane/bpf/policy-sync';
import { readCounters, counterPackets } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { tcAttach } from '../../src/dataplane/native';
import { CalcGraph } from '../../src/calc';
import { tcpFrame, udpFrame, icmpFrame } from '../../src/testbed/fixtures';
import { V6 } from '../../src/testbed/family';
import { PROTO, tcp as tcpHdr, udp as udpHdr } from '../../src/dataplane/bpf/packet';
const tcpL4 = (sport: number, dport: number, flags: string) => tcpHdr({ sport, dport, flags });
const udpL4 = (sport: number, dport: number) => udpHdr({ sport, dport });
import type { GlobalNetworkPolicy, Namespace, WorkloadEndpoint } from '../../src/model';

const WL_IP = '192.168.30.1';
const HOST_LO_IP = '198.19.0.5'; // a second address of the node, on its lo
// The addresses of each family: the workload's, the node's (uplink, lo), the outside's, the gateway.
const FAM = {
  4: { wl: WL_IP, node: NODE_IP, lo: HOST_LO_IP, out: OUTSIDE_IP, gw: '169.254.1.1' },
  6: { wl: 'fd00:10:21::1', node: NODE_IP6, lo: 'fd00:198:20::5', out: OUTSIDE_IP6, gw: 'fe80::ecee:eeff:feee:eeee' },
} as const;
const bracket = (ip: string) => ip.includes(':') ? `[${ip}]` : ip;

const wep: WorkloadEndpoint = fixtureWep('ns1/w', { ip: [FAM[4].wl, FAM[6].wl], labels: { app: 'w' } });
const allowAllPolicy: GlobalNetworkPolicy = gnp('all', { selector: 'all()', types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] });
const ns1: Namespace = namespace('ns1');

interface Node { topo: SingleNode; dp: WepDatapath; w: Workload; toHostDenied(): bigint; close(): Promise<void> }

async function node(label: string, action: EndpointToHostAction | undefined): Promise<Node> {
  const topo = await SingleNode.create(label, { outsideRoutesPools: true, ipv6: true });
  const pinRoot = uniquePinRoot(label);
  let dp: WepDatapath | undefined;
  const close = async () => { dp?.close(); await topo.destroy(); removePinRoot(pinRoot); };
  try {
    const w = await topo.addWorkload('w', WL_IP, { ip6: FAM[6].wl });
    await topo.node.sh(`ip addr add ${HOST_LO_IP}/32 dev lo && ip -6 addr add ${FAM[6].lo}/128 dev lo`);
    dp = await loadWep({ pinRoot, hostRouting: testHostRouting(), ctMaxEntries: 65536, ...(action ? { endpointToHostAction: action } : {}) });
    const pd = new PolicyDataplane({ ...dp.policyMaps, cls4: mapOps(dp.maps.cls4!), cls6: mapOps(dp.maps.cls6!) }, () => w.ifindex);
    const graph = new CalcGraph({ nodeName: 'node1' });
    for (const r of [ns1, wep, allowAllPolicy]) graph.onUpdate(r);
    graph.flush();
    pd.applySnapshot(graph.snapshot());
    tcAttach({ iface: w.hostIf, netns: topo.node.path, direction: 'ingress', program: dp.fromWep });
    tcAttach({ iface: w.hostIf, netns: topo.node.path, direction: 'egress', program: dp.toWep });
    // Listeners on the node: TCP echo on every node address (both families), UDP on the uplink's
    // addresses (its replies leave from them).
    const tcpEcho = ['socat', 'TCP6-LISTEN:7000,fork,reuseaddr,ipv6only=0', 'EXEC:cat'];
    await topo.node.spawn(tcpEcho);
    await topo.node.spawn(['socat', `UDP-RECVFROM:7001,fork,bind=${NODE_IP}`, 'EXEC:cat']);
    await topo.node.spawn(['socat', `UDP6-RECVFROM:7001,fork,bind=[${NODE_IP6}]`, 'EXEC:cat']);
    await topo.outside.spawn(tcpEcho);
    await w.ns.spawn(['socat', 'TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=0', 'EXEC:cat']);
    for (const [ns, port] of [[topo.node, 7000], [topo.outside, 7000], [w.ns, 8080]] as const) {
      await ns.sh(`for i in $(seq 100); do ss -ltn | grep -q ':${port} ' && exit 0; sleep 0.05; done; exit 1`);
    }
    await topo.node.sh(`for i in $(seq 100); do [ $(ss -lun | grep -c ':7001 ') = 2 ] && exit 0; sleep 0.05; done; exit 1`);
    const d = dp;
    return { topo, dp: d, w, close, toHostDenied: () => counterPackets(readCounters(d.maps.cnt!, d.maps), w.ifindex, Dir.EGRESS, R.TO_HOST_DENIED) };
  } catch (e) {
    await close();
    throw e;
  }
}

const tcp = (from: { sh: Workload['ns']['sh'] }, dst: string, port: number) => from.sh(
  `echo hello-${dst} | timeout 3 socat -T1 - TCP:${bracket(dst)}:${port},connect-timeout=1`, { allowFail: true, timeoutMs: 10_000 });
const udp = (w: Workload, dst: string) => w.ns.sh(`echo hello-udp | timeout 3 socat -T1 - UDP:${bracket(dst)}:7001`, { allowFail: true, timeoutMs: 10_000 });
const ping = (w: Workload, dst: string) => w.ns.exec(['ping', '-c', '2', '-W', '1', '-i', '0.2', dst], { allowFail: true, timeoutMs: 10_000 });

t.test('default (Drop): a workload does not reach its node; everything else works', async (t) => {
  const n = await node('e2hdrop', undefined);
  t.teardown(() => n.close());
  const { w, topo } = n;

  for (const v of [4, 6] as const) t.test(`IPv${v}`, async (t) => {
    const A = FAM[v];
    let before = n.toHostDenied();
    t.not((await tcp(w.ns, A.node, 7000)).stdout.trim(), `hello-${A.node}`, 'TCP to the uplink address: no answer');
    t.ok(n.toHostDenied() > before, 'counted as to_host_denied');
    before = n.toHostDenied();
    t.not((await udp(w, A.node)).stdout.trim(), 'hello-udp', 'UDP to the uplink address: no answer');
    t.ok(n.toHostDenied() > before, 'counted');
    before = n.toHostDenied();
    t.not((await ping(w, A.node)).code, 0, 'ICMP echo to the uplink address: no answer');
    t.ok(n.toHostDenied() >= before + 2n, 'both echo requests counted');
    before = n.toHostDenied();
    t.not((await tcp(w.ns, A.lo, 7000)).stdout.trim(), `hello-${A.lo}`, 'TCP to another node address (on lo): no answer');
    t.not((await ping(w, A.lo)).code, 0, 'ICMP to it: no answer');
    t.ok(n.toHostDenied() > before, 'counted');

    // Through the node, not to it: untouched.
    t.equal((await tcp(w.ns, A.out, 7000)).stdout.trim(), `hello-${A.out}`, 'TCP through the node to the outside works');
    t.equal((await ping(w, A.out)).code, 0, 'ICMP through the node works');
    t.match((await w.ns.exec(['ip', `-${v}`, 'neigh', 'show', A.gw])).stdout, /lladdr ee:ee:ee:ee:ee:ee/, `the gateway ${A.gw} resolved (${v === 4 ? 'proxy ARP' : 'the host side\'s link-local address'})`);

    // Host -> workload: the workload's replies are conntrack's, not new flows to the host.
    before = n.toHostDenied();
    t.equal((await tcp(topo.node, A.wl, 8080)).stdout.trim(), `hello-${A.wl}`, 'node -> workload TCP: echoed back');
    t.equal((await topo.node.exec(['ping', '-c', '2', '-W', '1', '-i', '0.2', A.wl], { allowFail: true, timeoutMs: 10_000 })).code, 0,
      'node -> workload ping: replies come back');
    t.equal(n.toHostDenied(), before, 'no reply was counted as to_host_denied');
  });
});

for (const action of ['Accept', 'Return'] as const) {
  t.test(`${action}: the workload reaches its node`, async (t) => {
    const n = await node(`e2h${action.toLowerCase()}`, action);
    t.teardown(() => n.close());
    for (const v of [4, 6] as const) {
      const A = FAM[v];
      t.equal((await tcp(n.w.ns, A.node, 7000)).stdout.trim(), `hello-${A.node}`, `IPv${v}: TCP to the uplink address`);
      t.equal((await udp(n.w, A.node)).stdout.trim(), 'hello-udp', `IPv${v}: UDP to the uplink address`);
      t.equal((await ping(n.w, A.node)).code, 0, `IPv${v}: ICMP to the uplink address`);
      t.equal((await tcp(n.w.ns, A.lo, 7000)).stdout.trim(), `hello-${A.lo}`, `IPv${v}: TCP to the address on lo`);
    }
    t.equal(n.toHostDenied(), 0n, 'nothing counted as to_host_denied');
  });
}

t.test('BPF_PROG_TEST_RUN in a namespace: verdicts and counter', async (t) => {
  const bed = await SingleNode.create('e2hrun');
  t.teardown(() => bed.destroy());
  const ns = bed.node;
  const WL = '192.168.30.9';
  const run = (h: WepHarness, hook: 'from' | 'to', pkt: Buffer) => {
    const dir = hook === 'from' ? Dir.EGRESS : Dir.INGRESS;
    const cnt = () => readCounters(h.dp.maps.cnt!, h.dp.maps).filter((r) => r.ifindex === TEST_IFINDEX && r.dir === dir);
    const before = cnt();
    const r = (hook === 'from' ? h.dp.fromWep : h.dp.toWep).testRun(pkt, { netns: ns.path });
    const moved = cnt().filter((a) => a.packets !== (before.find((b) => b.reason === a.reason)?.packets ?? 0n));
    return [r.retval, moved.length === 1 ? moved[0]!.reason : NaN];
  };
  const drop = await WepHarness.create('e2hdrop', { endpointToHostAction: 'Drop' });
  t.teardown(() => drop.close());
  const accept = await WepHarness.create('e2hacc', { endpointToHostAction: 'Accept' });
  t.teardown(() => accept.close());
  for (const h of [drop, accept]) h.setEndpoint([`${WL}/32`], allowAll('i00000000000021a', 'ingress'), allowAll('e00000000000021a', 'egress'));

  for (const [what, pkt] of [
    ['TCP SYN to the uplink address', tcpFrame({ src: WL, dst: NODE_IP, sport: 40000, dport: 22 })],
    ['UDP to the uplink address', udpFrame({ src: WL, dst: NODE_IP, sport: 40000, dport: 53 })],
    ['ICMP echo to the uplink address', icmpFrame({ src: WL, dst: NODE_IP, id: 77 })],
    ['TCP SYN to 127.0.0.1', tcpFrame({ src: WL, dst: '127.0.0.1', sport: 40001, dport: 22 })],
  ] as const) {
    t.same(run(drop, 'from', pkt), [TC_ACT_SHOT, R.TO_HOST_DENIED], `Drop: ${what}`);
    t.same(run(drop, 'from', pkt), [TC_ACT_SHOT, R.TO_HOST_DENIED], `Drop: ${what}, again (no conntrack state was left)`);
    t.same(run(accept, 'from', pkt), [TC_ACT_OK, R.FORWARD], `Accept: ${what}`);
  }
  t.same(run(drop, 'from', tcpFrame({ src: WL, dst: OUTSIDE_IP, sport: 40002, dport: 80 })), [TC_ACT_OK, R.FORWARD], 'Drop: routed through the node: forwarded');
  // Host-initiated: the node's SYN to the workload, then the workload's SYN-ACK is a reply.
  t.same(run(drop, 'to', tcpFrame({ src: NODE_IP, dst: WL, sport: 50000, dport: 8080 })), [TC_ACT_OK, R.FORWARD], 'node -> workload SYN');
  t.same(run(drop, 'from', tcpFrame({ src: WL, dst: NODE_IP, sport: 8080, dport: 50000, flags: 'SA' })), [TC_ACT_OK, R.FORWARD],
    'Drop: the workload\'s SYN-ACK to the node is a reply: passes');

  // IPv6: the node's own IPv6 address (on its uplink), ::1, and a destination routed out.
  const WL6 = 'fd00:10::9', NODE6 = 'fd00:18::5', OUT6 = 'fd00:20::1';
  await ns.sh(`sysctl -qw net.ipv6.conf.all.forwarding=1 && ip -6 addr add ${NODE6}/64 dev eth0 nodad && ip -6 route add fd00:20::/64 via ${NODE6.replace(/5$/, '1')} dev eth0`);
  for (const h of [drop, accept]) h.setEndpoint([`${WL}/32`, `${WL6}/128`], allowAll('i00000000000021a', 'ingress'), allowAll('e00000000000021a', 'egress'));
  const tcp6 = (src: string, dst: string, sport: number, dport: number, flags = 'S') => V6.frame(src, dst, PROTO.TCP, tcpL4(sport, dport, flags));
  for (const [what, pkt] of [
    ['IPv6 TCP SYN to the node\'s address', tcp6(WL6, NODE6, 40000, 22)],
    ['IPv6 UDP to the node\'s address', V6.frame(WL6, NODE6, PROTO.UDP, udpL4(40000, 53))],
    ['ICMPv6 echo to the node\'s address', V6.frame(WL6, NODE6, V6.icmpProto, V6.icmp(V6.echoRequest, 0, { id: 77 }))],
    ['IPv6 TCP SYN to ::1', tcp6(WL6, '::1', 40001, 22)],
  ] as const) {
    t.same(run(drop, 'from', pkt), [TC_ACT_SHOT, R.TO_HOST_DENIED], `Drop: ${what}`);
    t.same(run(drop, 'from', pkt), [TC_ACT_SHOT, R.TO_HOST_DENIED], `Drop: ${what}, again (no conntrack state was left)`);
    t.same(run(accept, 'from', pkt), [TC_ACT_OK, R.FORWARD], `Accept: ${what}`);
  }
  t.same(run(drop, 'from', tcp6(WL6, OUT6, 40002, 80)), [TC_ACT_OK, R.FORWARD], 'Drop: IPv6 routed through the node: forwarded');
  t.same(run(drop, 'to', tcp6(NODE6, WL6, 50000, 8080)), [TC_ACT_OK, R.FORWARD], 'node -> workload IPv6 SYN');
  t.same(run(drop, 'from', tcp6(WL6, NODE6, 8080, 50000, 'SA')), [TC_ACT_OK, R.FORWARD], 'Drop: the workload\'s IPv6 SYN-ACK to the node is a reply: passes');
});
