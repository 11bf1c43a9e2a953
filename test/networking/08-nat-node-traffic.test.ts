// NAT outgoing against hostile workloads, with real sockets in namespaces (docs/security.md: NAT outgoing and the node's own traffic; fair state tables):
//   - the node's own UDP socket, TCP connection and listening service keep working while a
//     workload deliberately uses the same source port towards the same server / peer (no mapping
//     ever takes a tuple a node socket uses or listens on; replies reach the node);
//   - a node socket bound into the NAT range after a mapping took the tuple gets its replies;
//   - a NAT range overlapping the node's ip_local_port_range is refused;
//   - a bounded flood of new UDP flows from one workload is refused past its quota (counted
//     drop + metrics) while another workload's idle NAT'd TCP connection survives.
// Node, workloads and the "outside" host are namespaces of this test (src/testbed SingleNode).
import t from 'tap';
import { SingleNode, NODE_IP, OUTSIDE_IP } from '../../src/testbed';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { RouteManager } from '../../src/dataplane/routing';
import { NAT_DIR, readNatEntries, readNetStats } from '../../src/dataplane/bpf/net-codecs';
import { readNatQuota } from '../../src/dataplane/bpf/nat';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { NodeMetrics } from '../../src/node/metrics';
import type { RoutingState } from '../../src/calc/types';
import { PySockets } from '../../src/testbed/probes';

const WA = '192.168.1.10';
const WB = '192.168.1.11';
const QUOTA = 64;
const FLOOD = 2000;

const routing: RoutingState = {
  pools: [{ name: 'p', cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, disabled: false, blockSize: 26 }],
  nodes: [{ name: 'a', ipv4Address: `${NODE_IP}/24` }],
  workloadRoutes: [],
};

const EXT_SERVERS = `
for p in (5300, 5301):
    udp_echo('${OUTSIDE_IP}', p)
tcp_echo('${OUTSIDE_IP}', 8080)
tcp_echo('${OUTSIDE_IP}', 7777)
_ = 'ready'
`;

t.test('nat-outgoing never takes over the node\'s own traffic; floods are refused past the quota', async (t) => {
  const topo = await SingleNode.create('natnode', { outsideRoutesPools: true });
  const pinRoot = uniquePinRoot('natnode');
  let rm: RouteManager | undefined;
  t.teardown(async () => { rm?.close(); await topo.destroy(); removePinRoot(pinRoot); });
  const wa = await topo.addWorkload('wa', WA);
  const wb = await topo.addWorkload('wb', WB);
  const netns = { name: topo.node.name, path: topo.node.path };
  // Four NAT ports, 20000-20003, outside the node's ephemeral range (32768-60999).
  const nat = { portMin: 20000, portMax: 20003, retries: 8, quota: QUOTA, maxEntries: 1024, timeouts: { udpSec: 300 } };
  rm = await RouteManager.open({ pinRoot, netns, nat });
  rm.setState('a', routing);
  await rm.apply();
  const maps = rm.maps;
  const uplinkIf = await topo.node.ifindex('eth0');
  const drops = (reason: number) => readCounters(maps.cnt).filter((r) => r.dir === Dir.UPLINK && r.ifindex === uplinkIf && r.reason === reason)
    .reduce((a, r) => a + r.packets, 0n);
  const revTuples = () => readNatEntries(maps.nat4).filter((e) => e.key.dir === NAT_DIR.REV)
    .map((e) => `${e.key.proto}:${e.key.saddr}:${e.key.sport}>${e.key.dport}=${e.value.addr}`);

  const ext = new PySockets(topo.outside);
  const node = new PySockets(topo.node);
  const pa = new PySockets(wa.ns);
  const pb = new PySockets(wb.ns);
  t.teardown(() => { for (const p of [ext, node, pa, pb]) p.close(); });
  t.equal(await ext.run(EXT_SERVERS), 'ready');

  t.test('node sockets bound into the range after a mapping took their tuple get their traffic', async (t) => {
    // Runs first: these node sockets on 20003 then also keep the collision test's workload off
    // that port (a wildcard UDP server and a listener own it for every remote).
    // Three mappings of workload B from port 20003 (free at claim time, so kept).
    t.same(await pb.run(`
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); v.bind(('0.0.0.0', 20003)); v.connect(('${OUTSIDE_IP}', 5301)); v.settimeout(10)
v.send(b'w'); a = v.recv(100).decode()
v2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); v2.bind(('0.0.0.0', 20003))
v2.sendto(b'w', ('${OUTSIDE_IP}', 5302))
# A TCP attempt the peer refuses (RST): the mapping stays for the closed-flow timeout.
vt = socket.socket(); vt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); vt.bind(('0.0.0.0', 20003)); vt.settimeout(10)
r = vt.connect_ex(('${OUTSIDE_IP}', 7778))
_ = [a, r]`), ['echo:w', 111]);
    for (const m of [`17:${OUTSIDE_IP}:5301>20003=${WB}`, `17:${OUTSIDE_IP}:5302>20003=${WB}`, `6:${OUTSIDE_IP}:7778>20003=${WB}`]) {
      t.ok(revTuples().includes(m), `mapping ${m} (port kept)`);
    }
    let seen = readNetStats(maps.netstat).natHostSock;
    const moved = () => { const n = readNetStats(maps.netstat).natHostSock; const d = n > seen; seen = n; return d; };

    // A connected UDP socket that sends first: its first datagram takes the tuple back.
    t.equal(await node.run(`
late = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); late.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
late.bind(('${NODE_IP}', 20003)); late.connect(('${OUTSIDE_IP}', 5301)); late.settimeout(10)
late.send(b'late'); _ = late.recv(100).decode()`), 'echo:late', 'connected UDP: the reply reaches the node socket');
    t.ok(moved(), 'counted');
    // A UDP server that only receives: every datagram is checked against node sockets.
    await node.run(`
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', 20003)); srv.settimeout(10); _ = 1`);
    await ext.run(`
e = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); e.bind(('${OUTSIDE_IP}', 5302)); e.sendto(b'hello', ('${NODE_IP}', 20003)); e.close(); _ = 1`);
    t.equal(await node.run(`_ = srv.recv(100).decode()`), 'hello', 'unconnected UDP server: the datagram reaches the node');
    t.ok(moved(), 'counted');
    // A TCP service started after the mapping: the peer's SYN goes to the listener.
    await node.run(`
import threading
nl2 = socket.socket(); nl2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); nl2.bind(('0.0.0.0', 20003)); nl2.listen(8); nl2.settimeout(5)
def serve2():
    c, a = nl2.accept(); c.sendall(b'late-service'); time.sleep(1); c.close()
threading.Thread(target=serve2, daemon=True).start()
_ = 1`);
    t.equal(await ext.run(`
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
c.bind(('${OUTSIDE_IP}', 7778)); c.settimeout(10); c.connect(('${NODE_IP}', 20003))
_ = c.recv(100).decode(); c.close()`), 'late-service', 'TCP listener started later: the node answers');
    t.ok(moved(), 'counted');
    t.notOk(revTuples().includes(`6:${OUTSIDE_IP}:7778>20003=${WB}`), 'the node took the TCP tuple back');
  });

  t.test('the node\'s connections, UDP replies and listening service survive deliberate collisions', async (t) => {
    // The node: a UDP socket and a TCP connection from ports in the NAT range (bound explicitly),
    // and a service listening on another one.
    t.same(await node.run(`
nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); nu.bind(('${NODE_IP}', 20000)); nu.connect(('${OUTSIDE_IP}', 5300)); nu.settimeout(10)
nt = socket.create_connection(('${OUTSIDE_IP}', 8080), timeout=10, source_address=('${NODE_IP}', 20001))
nl = socket.socket(); nl.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); nl.bind(('0.0.0.0', 20002)); nl.listen(8); nl.settimeout(5)
nu.send(b'n0'); nt.sendall(b'n0')
_ = [nu.recv(100).decode(), nt.recv(100).decode()]`), ['echo:n0', 'echo:n0'], 'node traffic before');
    const hostSock0 = readNetStats(maps.netstat).natHostSock;

    // The workload collides on purpose: same source ports, same server; and connects from the
    // port the node listens on to a peer (whose port it will use to call the node's service).
    t.same(await pa.run(`
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 20000)); u.connect(('${OUTSIDE_IP}', 5300)); u.settimeout(10)
u.send(b'w0')
a = u.recv(100).decode()
wt = socket.create_connection(('${OUTSIDE_IP}', 8080), timeout=10, source_address=('0.0.0.0', 20001))
wt.sendall(b'w0')
b = wt.recv(100).decode()
wh = socket.create_connection(('${OUTSIDE_IP}', 7777), timeout=10, source_address=('0.0.0.0', 20002))
wh.sendall(b'w0')
_ = [a, b, wh.recv(100).decode()]`), ['echo:w0', 'echo:w0', 'echo:w0'], 'the workload\'s own flows work (on other ports)');

    const rev = revTuples();
    for (const taken of [`17:${OUTSIDE_IP}:5300>20000`, `6:${OUTSIDE_IP}:8080>20001`, `6:${OUTSIDE_IP}:7777>20002`]) {
      t.notOk(rev.some((r) => r.startsWith(taken)), `no mapping on the node's tuple ${taken}`);
    }
    t.ok(readNetStats(maps.netstat).natHostSock >= hostSock0 + 3n, 'candidates skipped because a node socket owns them, counted');

    t.same(await node.run(`
nu.send(b'n1'); nt.sendall(b'n1')
_ = [nu.recv(100).decode(), nt.recv(100).decode()]`), ['echo:n1', 'echo:n1'], 'the node\'s UDP replies and TCP connection still reach the node');
    t.same(await pa.run(`
u.send(b'w1'); wt.sendall(b'w1')
_ = [u.recv(100).decode(), wt.recv(100).decode()]`), ['echo:w1', 'echo:w1'], 'and the workload\'s reach the workload');

    // The peer calls the node's service from the very port the workload's flow uses.
    await node.run(`
import threading
def serve():
    c, a = nl.accept(); c.sendall(b'node-service'); time.sleep(1); c.close()
threading.Thread(target=serve, daemon=True).start()
_ = 1`);
    t.equal(await ext.run(`
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
c.bind(('${OUTSIDE_IP}', 7777)); c.settimeout(10); c.connect(('${NODE_IP}', 20002))
_ = c.recv(100).decode(); c.close()`), 'node-service', 'the node\'s listening service answers, not the workload');
  });

  t.test('a NAT range overlapping ip_local_port_range is refused', async (t) => {
    await topo.node.sh('sysctl -qw net.ipv4.ip_local_port_range="10000 30000"');
    rm!.setState('a', routing); // dirty: the next apply re-checks
    t.teardown(async () => { await topo.node.sh('sysctl -qw net.ipv4.ip_local_port_range="32768 60999"'); rm!.setState('a', routing); await rm!.apply(); });
    await t.rejects(rm!.apply(), { code: 'ERR_ROUTES_NAT_PORT_RANGE', message: /20000-20003 overlaps .* 10000-30000/ });
  });

  t.test('a flood of new flows is refused past the workload\'s quota; another workload\'s idle connection survives', async (t) => {
    const q0 = drops(R.NAT_QUOTA);
    const liveB = readNatQuota(maps.natq4).find((r) => r.addr === WB)?.live ?? 0;
    // FLOOD new UDP flows (one socket, a new destination port each), paced in batches.
    t.equal(await pb.run(`
f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${FLOOD}):
    f.sendto(b'x', ('${OUTSIDE_IP}', 10000 + i))
    if i % 100 == 99:
        time.sleep(0.02)
_ = ${FLOOD}`, 30_000), FLOOD);
    // Wait for the last datagrams to cross the node.
    const want = BigInt(FLOOD - (QUOTA - liveB));
    for (let i = 0; i < 50 && drops(R.NAT_QUOTA) - q0 < want; i++) await new Promise((r) => setTimeout(r, 100));
    t.equal(drops(R.NAT_QUOTA) - q0, want, `${want} new flows refused with nat_quota`);
    const rows = new Map(readNatQuota(maps.natq4).map((r) => [r.addr, r.live]));
    t.equal(rows.get(WB), QUOTA, 'the flooding workload holds exactly its quota');
    t.equal(await pa.run(`wt.sendall(b'after'); _ = wt.recv(100).decode()`), 'echo:after', 'the other workload\'s idle TCP connection survives');
    // UDP may lose a datagram on a loaded machine: a few tries, the flow itself must still work.
    t.equal(await pa.run(`
u.settimeout(2)
for i in range(5):
    u.send(b'after')
    try:
        _ = u.recv(100).decode(); break
    except socket.timeout:
        _ = 'timeout'`), 'echo:after', 'and its UDP flow too');
    t.equal(drops(R.NAT_TABLE_FULL), 0n, 'the table itself never filled');

    const metrics = new NodeMetrics(false);
    const st = rm!.natStatus();
    metrics.recordNat(st);
    metrics.recordNat(rm!.natStatus(6), 6);
    const text = await metrics.registry.metrics();
    t.match(text, /^tortie_nat_workloads_at_quota\{family="4"\} 1$/m, 'metric: one workload at its quota');
    t.match(text, new RegExp(`^tortie_nat_workload_mappings_max\\{family="4"\\} ${QUOTA}$`, 'm'));
    t.match(text, new RegExp(`^tortie_nat_workload_quota\\{family="4"\\} ${QUOTA}$`, 'm'));
    t.match(text, /^tortie_nat_table_capacity\{family="4"\} 1024$/m);
    t.match(text, /^tortie_nat_mappings\{family="6"\} 0$/m, 'NAT66 has its own series (no IPv6 flows here)');
    t.match(text, /^tortie_nat_workloads_at_quota\{family="6"\} 0$/m);
    t.equal(st.flows, rows.get(WA)! + QUOTA, 'occupancy: every live flow counted');
  });
});
