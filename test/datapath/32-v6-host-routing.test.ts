// BPF host routing for IPv6 (bpf/lib/host_route6.h) in network namespaces, with the route
// manager's uplink programs and NAT66 (a natOutgoing IPv6 pool; the outside hosts have no route
// to it):
//
//   far fd00:198:19::20 ══(mtu 1300)══ out (router) fd00:198:18::1 ══ eth0 node fd00:198:18::10
//                                                                      ├─ caliweb / calicli / calioth
//
// With host routing on, an IPv6 packet between two workloads is judged by the destination's
// IPv6 to-workload point in the source's program and redirected into its namespace (the cali*
// never transmits it); the destination's ingress deny drops at the source, counted and reported
// for the destination; replies pass through v6 conntrack; a packet for the outside is redirected
// to the uplink's egress (bpf_redirect_neigh first, then the fib's MACs), hop limit decremented
// once, NAT66'd there. Left to the kernel, which answers: hop limit 1 (Time Exceeded), over the
// uplink's MTU (Packet Too Big: the workload learns the path MTU). A real router's Packet Too Big
// about a redirected, NAT66'd TCP flow reaches the workload, whose transfer completes. With host
// routing off nothing is redirected. Endpoints without a MAC are found by the fib; with their
// MACs, by address (tortie_epdst_v1) without it, and an entry that no longer agrees with the
// endpoint map is never followed.
import t from 'tap';
import { SingleNode, type Workload } from '../../src/testbed';
import { namespace, wep } from '../../src/testbed/fixtures';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { Capture, PySockets, eventually } from '../../src/testbed/probes';
import { loadWep, readHostRouteStats, type WepDatapath } from '../../src/dataplane/bpf/loader';
import { readCounters, counterPackets, decodeEvent, type FlowEvent } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { AF_INET6, CTF, CtState, ct6KeyCodec, ctValueCodec, epDstCodec, epDstKeyCodec, type CtValue } from '../../src/dataplane/bpf/codecs';
import { RingBuffer } from '../../src/dataplane/native';
import { RouteManager } from '../../src/dataplane/routing';
import type { RoutingState } from '../../src/calc/types';
import type { GlobalNetworkPolicy, Rule } from '../../src/model';

const V3 = 'projectcalico.org/v3' as const;
const IP = { web: ['192.168.32.1', 'fd00:20::1'], cli: ['192.168.32.2', 'fd00:20::2'], oth: ['192.168.32.3', 'fd00:20::3'] } as const;
const NODE6 = 'fd00:198:18::10';
const OUT6 = 'fd00:198:18::1';
const OUT6_FAR = 'fd00:198:19::1';
const FAR6 = 'fd00:198:19::20';
const SMALL_MTU = 1300;
const BYTES = 400_000;

const routing: RoutingState = {
  pools: [{ name: 'v6', cidr: 'fd00:20::/48', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, disabled: false, blockSize: 122 }],
  nodes: [{ name: 'node', ipv4Address: '198.18.0.10/24', ipv6Address: `${NODE6}/64` }],
  workloadRoutes: [],
};
const webIngress: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'web-in' }, spec: {
  selector: "app == 'web'", types: ['Ingress'], ingress: [
    { action: 'Allow', protocol: 'TCP', source: { selector: "app == 'cli'" }, destination: { ports: [8080] } },
    { action: 'Allow', protocol: 'ICMPv6', source: { selector: "app == 'cli'" } },
  ] as Rule[] } };
const egressAll: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'egress-all' },
  spec: { selector: 'all()', types: ['Egress'], egress: [{ action: 'Allow' }] } };
const wepOf = (k: keyof typeof IP, mac?: string) => wep(`ns1/${k}`, { ip: [...IP[k]], labels: { app: k }, mac });
const resources = (names: (keyof typeof IP)[]) => [namespace('ns1'), ...names.map((k) => wepOf(k)), webIngress, egressAll];

const txPackets = async (node: SingleNode, x: Workload) => BigInt((await node.node.exec(['cat', `/sys/class/net/${x.hostIf}/statistics/tx_packets`])).stdout.trim());
const ping6 = (from: Workload, to: string, n: number, extra: string[] = []) =>
  from.ns.exec(['ping', '-6', '-c', String(n), '-W', '1', '-i', '0.05', ...extra, to], { allowFail: true, timeoutMs: 15_000 });

t.test('IPv6 host routing on: peer redirect, uplink redirect with NAT66, the kernel where it must answer', async (t) => {
  const topo = await SingleNode.create('dphr6', { outsideRoutesPools: true });
  const pinRoot = uniquePinRoot('hr6');
  let dp: WepDatapath | undefined;
  let rb: RingBuffer | undefined;
  let m: RouteManager | undefined;
  const socks: PySockets[] = [];
  t.teardown(async () => { for (const s of socks) s.close(); rb?.close(); m?.close(); dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });

  const far = await topo.topo.addNetns('far');
  await topo.topo.addVeth(topo.outside, 'eth1', far, 'eth0', { mtu: SMALL_MTU });
  await topo.node.sh(`ip -6 addr add ${NODE6}/64 dev eth0 nodad && ip -6 route add default via ${OUT6} dev eth0`);
  await topo.outside.sh(`sysctl -qw net.ipv6.conf.all.forwarding=1 && ip -6 addr add ${OUT6}/64 dev eth0 nodad && ip -6 addr add ${OUT6_FAR}/64 dev eth1 nodad`);
  // The far host advertises a 1500-byte path's MSS: only the router's Packet Too Big can tell the
  // workload that the path is narrower.
  await far.sh(`ip -6 addr add ${FAR6}/64 dev eth0 nodad && ip -6 route add default via ${OUT6_FAR} dev eth0 advmss 1440`);

  const w = {} as Record<keyof typeof IP, Workload>;
  for (const k of Object.keys(IP) as (keyof typeof IP)[]) w[k] = await topo.addWorkload(k, IP[k][0], { ip6: IP[k][1] });
  dp = await loadWep({ pinRoot, ctMaxEntries: 65536, hostRouting: 'auto' });
  t.same(dp.hostRouting, { mode: 'auto', active: true, reason: 'bpf_redirect_peer, bpf_redirect_neigh and bpf_check_mtu verified' }, 'this kernel verifies the host-routing variant');
  const prog = topo.program(dp, resources(['web', 'cli', 'oth']));
  const { pd } = prog;
  t.same(pd.pendingEndpoints, [], 'every endpoint bound');
  // The uplink's programs and maps (netcfg names the uplink, NAT66 for the pool), as the agent has them.
  m = await RouteManager.open({ pinRoot, netns: { name: topo.node.name, path: topo.node.path } });
  m.setState('node', routing);
  await m.apply();
  t.match(m.status(), { nodeIp6: NODE6, uplink: 'eth0' }, 'uplink and NAT66 programmed');
  const events: FlowEvent[] = [];
  rb = RingBuffer.open(dp.maps.events!, (rec) => events.push(decodeEvent(rec)));

  const count = (x: Workload, dir: number, reason: number) => counterPackets(readCounters(dp!.maps.cnt!, dp!.maps), x.ifindex, dir, reason);
  const hr6 = () => readHostRouteStats(dp!.maps.hrst!, 6);
  const hr4 = () => readHostRouteStats(dp!.maps.hrst!, 4);

  // Neighbour entries first: the path declines until the node has resolved each workload's
  // address (the kernel forwards the first packet and resolves it).
  t.equal((await ping6(w.cli, IP.web[1], 1)).code, 0, 'cli -> web before any neighbour entry: answered');
  t.ok(hr6().declined >= 1n, 'declined to the kernel (no neighbour entry yet)');
  await ping6(w.oth, IP.cli[1], 1);
  await ping6(w.web, IP.oth[1], 1);

  await t.test('allowed flow: redirected into both workloads, the cali*s transmit nothing', async (t) => {
    const [h0, v4, webTx0, cliTx0] = [hr6(), hr4(), await txPackets(topo, w.web), await txPackets(topo, w.cli)];
    const webFwd0 = count(w.web, Dir.INGRESS, 0), cliFwd0 = count(w.cli, Dir.INGRESS, 0);
    t.equal((await ping6(w.cli, IP.web[1], 20)).code, 0, 'cli -> web: 20 echoes answered');
    const h1 = hr6();
    t.ok(h1.peer - h0.peer >= 40n, `>= 40 packets peer-redirected (requests and replies): ${h1.peer - h0.peer}`);
    t.equal(h1.peerFib - h0.peerFib, h1.peer - h0.peer, 'all found by the fib (the endpoints name no MAC yet)');
    t.ok(await txPackets(topo, w.web) - webTx0 < 5n, 'caliweb transmitted (almost) none of them: its tc egress never ran for them');
    t.ok(await txPackets(topo, w.cli) - cliTx0 < 5n, 'calicli neither (the replies)');
    t.ok(count(w.web, Dir.INGRESS, 0) - webFwd0 >= 20n, 'the requests counted as forwarded on web\'s ingress point');
    t.ok(count(w.cli, Dir.INGRESS, 0) - cliFwd0 >= 20n, 'the replies (v6 conntrack) on cli\'s ingress point, which has no policy allowing them');
    t.same(hr4(), v4, 'IPv4\'s counters untouched');
    await w.web.ns.spawn(['socat', 'TCP6-LISTEN:8080,fork,reuseaddr', 'EXEC:cat']);
    t.ok(await eventually(async () => (await w.web.ns.exec(['ss', '-ltn'])).stdout.includes(':8080'), true), 'listener up');
    const echo = await w.cli.ns.sh(`echo hello-hr6 | timeout 4 socat -T2 - TCP6:[${IP.web[1]}]:8080,connect-timeout=2`, { allowFail: true, timeoutMs: 10_000 });
    t.equal(echo.stdout.trim(), 'hello-hr6', 'TCP through the peer path');
  });

  await t.test('the destination\'s ingress deny drops at the source, attributed to the destination', async (t) => {
    const [h0, webTx0] = [hr6(), await txPackets(topo, w.web)];
    const deny0 = count(w.web, Dir.INGRESS, R.POLICY_DENY), othFwd0 = count(w.oth, Dir.EGRESS, 0);
    t.not((await ping6(w.oth, IP.web[1], 5)).code, 0, 'oth -> web denied by web\'s ingress policy');
    t.ok(count(w.web, Dir.INGRESS, R.POLICY_DENY) - deny0 >= 5n, 'counted as policy deny on web\'s ingress');
    t.ok(count(w.oth, Dir.EGRESS, 0) - othFwd0 >= 5n, 'oth\'s own egress point allowed them');
    t.equal(hr6().peer, h0.peer, 'none redirected');
    t.ok(await txPackets(topo, w.web) - webTx0 < 2n, 'none reached caliweb either: dropped in oth\'s program');
    t.ok(await eventually(async () => events.some((e) => e.kind === 'deny' && e.src === IP.oth[1] && e.dst === IP.web[1]), true, 3000), 'a deny event');
    const ev = events.find((e) => e.kind === 'deny' && e.src === IP.oth[1] && e.dst === IP.web[1]);
    t.equal(ev?.protocol, 58, 'ICMPv6');
    t.equal(ev?.ifindex, w.web.ifindex, 'for web\'s interface');
    t.equal(ev?.direction, 'ingress', 'in web\'s ingress direction');
    t.ok((ev?.ruleId ?? -1) >= 0, 'with its deciding rule');
    // web's echo answering oth would be a new flow at oth's ingress point: denied there too.
    const deny1 = count(w.oth, Dir.INGRESS, R.POLICY_DENY);
    t.not((await ping6(w.web, IP.oth[1], 2)).code, 0, 'web -> oth denied by oth\'s ingress (no reply path was opened)');
    t.ok(count(w.oth, Dir.INGRESS, R.POLICY_DENY) - deny1 >= 2n, 'on oth\'s ingress point');
  });

  // As datapath/24 for IPv4: the destination's point judges the source point's entry (no second
  // lookup) and still approves for itself only.
  await t.test('one conntrack entry per flow, each point approving for itself', async (t) => {
    const tcpTo = (a: string, port: number): CtValue[] => [...dp!.ct6.entries()]
      .map(([k, v]) => [ct6KeyCodec.decode(k), ctValueCodec.decode(v)] as const)
      .filter(([k]) => k.proto === 6 && [k.addr_a, k.addr_b].includes(a) && [k.addr_a, k.addr_b].includes(IP.web[1]) &&
        (k.port_a === port || k.port_b === port))
      .map(([, v]) => v);
    const has = (v: CtValue, f: number) => (Number(v.flags) & f) === f;
    const ok = tcpTo(IP.cli[1], 8080);
    t.equal(ok.length, 1, 'the echo connection has one entry');
    t.ok(has(ok[0]!, CTF.SRC_OK | CTF.DST_OK | CTF.DST_LOCAL | CTF.REPLY), 'approved at both points, replies seen');
    t.ok(ok[0]!.state === CtState.FIN_WAIT || ok[0]!.state === CtState.CLOSING, `the close was tracked (state ${ok[0]!.state})`);
    const deny0 = count(w.web, Dir.INGRESS, R.POLICY_DENY);
    const r = await w.oth.ns.sh(`echo x | timeout 5 socat -T1 - TCP6:[${IP.web[1]}]:8080,connect-timeout=3`, { allowFail: true, timeoutMs: 10_000 });
    t.not(r.code, 0, 'oth -> web:8080 does not connect');
    t.ok(count(w.web, Dir.INGRESS, R.POLICY_DENY) - deny0 >= 2n, 'the SYN and its retransmission both denied at web\'s point');
    const denied = tcpTo(IP.oth[1], 8080);
    t.equal(denied.length, 1, 'one entry for the refused connection');
    t.ok(has(denied[0]!, CTF.SRC_OK | CTF.DST_LOCAL), 'approved by oth\'s egress point, seen by web\'s');
    t.notOk(Number(denied[0]!.flags) & CTF.DST_OK, 'never approved by web\'s ingress point');
    t.equal(denied[0]!.state, CtState.SYN_SENT, 'still a SYN that was never answered');
  });

  await t.test('with the workloads\' MACs: found by address, no fib lookup; a stale entry never followed', async (t) => {
    const macOf = async (x: Workload) => (await x.ns.exec(['cat', '/sys/class/net/eth0/address'])).stdout.trim();
    prog.update(wepOf('web', await macOf(w.web)), wepOf('cli', await macOf(w.cli)), wepOf('oth', await macOf(w.oth)));
    const key = epDstKeyCodec.encode({ family: AF_INET6, addr: IP.web[1] });
    const entry = epDstCodec.decode(dp!.maps.epdst!.lookup(key)!);
    t.match(entry, { ifindex: w.web.ifindex, mac: await macOf(w.web), host_mac: 'ee:ee:ee:ee:ee:ee' }, 'web\'s IPv6 address names its cali* and MACs');
    const webFwd0 = count(w.web, Dir.INGRESS, 0);
    let h0 = hr6();
    t.equal((await ping6(w.cli, IP.web[1], 20)).code, 0, 'cli -> web: 20 echoes answered');
    let h1 = hr6();
    t.ok(h1.peer - h0.peer >= 40n, `>= 40 packets peer-redirected: ${h1.peer - h0.peer}`);
    t.equal(h1.peerFib - h0.peerFib, 0n, 'none needed a fib lookup');
    t.ok(count(w.web, Dir.INGRESS, 0) - webFwd0 >= 20n, 'judged by web\'s point');
    // oth's cali* under web's endpoint id: not followed, the fib finds web.
    const othIn0 = count(w.oth, Dir.INGRESS, 0) + count(w.oth, Dir.INGRESS, R.POLICY_DENY);
    try {
      dp!.maps.epdst!.update(key, epDstCodec.encode({ ...entry, ifindex: w.oth.ifindex }));
      h0 = hr6();
      t.equal((await ping6(w.cli, IP.web[1], 10)).code, 0, 'stale entry: cli -> web still answered');
      h1 = hr6();
      t.ok(h1.peerFib - h0.peerFib >= 10n, `the requests found web by the fib (${h1.peerFib - h0.peerFib})`);
      t.equal(count(w.oth, Dir.INGRESS, 0) + count(w.oth, Dir.INGRESS, R.POLICY_DENY), othIn0, 'nothing reached oth\'s point');
    } finally {
      dp!.maps.epdst!.update(key, epDstCodec.encode(entry));
    }
  });

  await t.test('hop limit 1 is left to the kernel: Time Exceeded', async (t) => {
    const h0 = hr6();
    const r = await ping6(w.cli, IP.web[1], 2, ['-t', '1']);
    t.not(r.code, 0, 'no echo reply with hop limit 1 to a local workload');
    t.match(r.stdout, /Time exceeded: Hop limit/i, 'the node\'s kernel answered Time Exceeded');
    const r2 = await ping6(w.cli, OUT6, 2, ['-t', '1']);
    t.match(r2.stdout, /Time exceeded: Hop limit/i, 'and towards the uplink too');
    t.ok(hr6().declined - h0.declined >= 4n, 'declined by the host-routed path');
  });

  await t.test('leaving through the uplink: bpf_redirect_neigh, then the fib\'s MACs; hop limit 63; NAT66 on the uplink', async (t) => {
    await topo.node.exec(['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
    const cap = await Capture.start(topo.outside, 'icmp6 and ip6[40] == 128');
    try {
      const h0 = hr6();
      t.equal((await ping6(w.cli, OUT6, 5)).code, 0, 'cli -> outside answered (through NAT66: the outside has no route to the pool)');
      const h1 = hr6();
      t.ok(h1.uplinkNeigh - h0.uplinkNeigh >= 1n, 'the first packet, next hop unresolved: bpf_redirect_neigh');
      t.ok(h1.uplink - h0.uplink >= 3n, 'the others with the fib\'s MACs');
      t.ok(await cap.waitFor(new RegExp(`hlim 63\\b.*\\n?.*${NODE6} > ${OUT6}`)), 'the outside host sees hop limit 63 and the node\'s address: decremented once, then NAT66');
      t.notOk(cap.has(/hlim 64\b/), 'never 64');
      t.notOk(cap.has(new RegExp(`${IP.cli[1]} >`)), 'never the workload\'s address');
    } finally {
      cap.stop();
    }
  });

  await t.test('a real Packet Too Big from a router about a redirected NAT66 flow: the workload learns 1300, its transfer completes', async (t) => {
    t.notMatch((await w.cli.ns.exec(['ip', '-6', 'route', 'get', FAR6])).stdout, /mtu/, 'before: no smaller path MTU known');
    const pyFar = new PySockets(far), pyCli = new PySockets(w.cli.ns);
    socks.push(pyFar, pyCli);
    await pyFar.run(`srv = socket.socket(socket.AF_INET6); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(('${FAR6}', 8081)); srv.listen(1); srv.settimeout(20); _ = 1`);
    // Packets the node's kernel forwards out of eth0 (ip6_forward counts them on the output
    // device); redirected ones never pass it.
    const kernelForwardedOut = async () => BigInt(/Ip6OutForwDatagrams\s+(\d+)/.exec((await topo.node.exec(['cat', '/proc/net/dev_snmp6/eth0'])).stdout)![1]!);
    const [h0, fwd0] = [hr6(), await kernelForwardedOut()];
    const [got, answer] = await Promise.all([
      pyFar.run<[string, number]>(`a, addr = srv.accept(); a.settimeout(20)
n = 0
while True:
    d = a.recv(65536)
    if not d: break
    n += len(d)
a.sendall(str(n).encode()); a.close(); _ = [addr[0], n]`, 30_000),
      pyCli.run<string>(`c = socket.socket(socket.AF_INET6); c.settimeout(20); c.connect(('${FAR6}', 8081)); c.sendall(b'x' * ${BYTES}); c.shutdown(socket.SHUT_WR); _ = c.recv(64).decode()`, 30_000),
    ]);
    t.same(got, [NODE6, BYTES], 'the far host got every byte, from the node\'s address (NAT66)');
    t.equal(answer, String(BYTES), 'and its answer came back');
    t.match((await w.cli.ns.exec(['ip', '-6', 'route', 'get', FAR6])).stdout, new RegExp(`mtu ${SMALL_MTU}\\b`), 'the workload\'s kernel learned the path MTU');
    t.ok(hr6().uplink - h0.uplink >= 3n, 'the flow was redirected to the uplink (SYN, data, FIN; TCP segments leave in GSO batches)');
    t.equal(await kernelForwardedOut() - fwd0, 0n, 'none of it forwarded by the node\'s kernel');
  });

  await t.test('over the uplink\'s MTU: left to the kernel, which answers Packet Too Big', async (t) => {
    await topo.node.sh('ip link set eth0 mtu 1400');
    await topo.outside.sh('ip link set eth0 mtu 1400');
    try {
      t.notMatch((await w.cli.ns.exec(['ip', '-6', 'route', 'get', OUT6])).stdout, /mtu/, 'before: no smaller path MTU known');
      const h0 = hr6();
      const r = await ping6(w.cli, OUT6, 1, ['-M', 'do', '-s', '1400']);
      t.not(r.code, 0, 'a 1448-byte echo does not fit');
      t.equal(hr6().uplink + hr6().uplinkNeigh, h0.uplink + h0.uplinkNeigh, 'not redirected (the fib said FRAG_NEEDED)');
      t.match((await w.cli.ns.exec(['ip', '-6', 'route', 'get', OUT6])).stdout, /mtu 1400\b/, 'the node\'s Packet Too Big taught the workload the uplink\'s MTU');
      t.equal((await ping6(w.cli, OUT6, 2, ['-s', '1300'])).code, 0, 'what fits is answered');
      t.ok(hr6().uplink - h0.uplink >= 2n, 'and redirected');
    } finally {
      await topo.node.sh('ip link set eth0 mtu 1500');
      await topo.outside.sh('ip link set eth0 mtu 1500');
    }
  });
});

t.test('IPv6 host routing off: the kernel path, nothing redirected', async (t) => {
  const topo = await SingleNode.create('dphr6off');
  const pinRoot = uniquePinRoot('hr6off');
  let dp: WepDatapath | undefined;
  t.teardown(async () => { dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });
  const web = await topo.addWorkload('web', IP.web[0], { ip6: IP.web[1] });
  const cli = await topo.addWorkload('cli', IP.cli[0], { ip6: IP.cli[1] });
  dp = await loadWep({ pinRoot, ctMaxEntries: 65536, hostRouting: 'off' });
  t.same(dp.hostRouting, { mode: 'off', active: false, reason: 'off by configuration' });
  topo.program(dp, resources(['web', 'cli']));
  const tx0 = await txPackets(topo, web);
  t.equal((await ping6(cli, IP.web[1], 10)).code, 0, 'cli -> web answered');
  t.ok(await txPackets(topo, web) - tx0 >= 10n, 'caliweb transmitted the requests (its tc egress judged them)');
  t.ok(counterPackets(readCounters(dp.maps.cnt!, dp.maps), web.ifindex, Dir.INGRESS, 0) >= 10n, 'counted on web\'s ingress point there');
  t.same(readHostRouteStats(dp.maps.hrst!, 6), { peer: 0n, declined: 0n, uplink: 0n, uplinkNeigh: 0n, peerFib: 0n }, 'nothing redirected or declined');
});
