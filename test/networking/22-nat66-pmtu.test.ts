// Path-MTU discovery through NAT66 with real traffic: a workload namespace behind a node namespace
// whose uplink reaches, through a router namespace, a far host on a link with a smaller MTU (1300)
// and no route to the pool. The workload's TCP segments (1500-byte path up to the router) are too
// big for the far link: the router's kernel sends a real ICMPv6 Packet Too Big to the node's
// address (the flow's translated source); the uplink program translates it back (lib/nat6.h
// nat6_err_rev) so the workload's kernel learns the path MTU and its large transfer completes.
// Without the translation the error would go to the node, which has no socket for the tuple, and
// the transfer would stall (a black hole). The other way, the workload kernel's own port
// unreachable about a translated datagram reaches the far host's socket (nat6_err_snat).
import t from 'tap';
import { Topology } from '../../src/util/netns';
import { RouteManager } from '../../src/dataplane/routing';
import { PySockets } from '../../src/testbed/probes';
import type { RoutingState } from '../../src/calc/types';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';

const NODE6 = 'fd00:198:18:1::10';
const RTR_IN6 = 'fd00:198:18:1::1';
const RTR_OUT6 = 'fd00:198:18:2::1';
const FAR6 = 'fd00:198:18:2::20';
const WL6 = 'fd00:10::5';
const GW6 = 'fd00:10::1';
const SMALL_MTU = 1300;
const BYTES = 400_000;

const routing: RoutingState = {
  pools: [{ name: 'v6', cidr: 'fd00:10::/48', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, disabled: false, blockSize: 122 }],
  nodes: [{ name: 'node', ipv6Address: `${NODE6}/64` }],
  workloadRoutes: [],
};

t.test('real ICMPv6 errors about NAT66 flows: a Packet Too Big in (the workload\'s large TCP transfer completes), a port unreachable out', async (t) => {
  const topo = Topology.create('nat66m');
  const pinRoot = uniquePinRoot('nat66m');
  const socks: PySockets[] = [];
  let m: RouteManager | undefined;
  t.teardown(async () => { for (const s of socks) s.close(); m?.close(); await topo.destroy(); removePinRoot(pinRoot); });
  const node = await topo.addNetns('node');
  const rtr = await topo.addNetns('rtr');
  const far = await topo.addNetns('far');
  const wl = await topo.addNetns('wl');
  await topo.addVeth(node, 'eth0', rtr, 'eth0');
  await topo.addVeth(rtr, 'eth1', far, 'eth0', { mtu: SMALL_MTU });
  await topo.addVeth(node, 'caliwl', wl, 'eth0');
  await node.sh([
    'sysctl -qw net.ipv6.conf.all.forwarding=1',
    `ip -6 addr add ${NODE6}/64 dev eth0 nodad`,
    `ip -6 route add fd00:198:18:2::/64 via ${RTR_IN6} dev eth0`,
    `ip -6 addr add ${GW6}/128 dev caliwl nodad`,
    `ip -6 route add ${WL6}/128 dev caliwl`,
  ].join(' && '));
  await rtr.sh([
    'sysctl -qw net.ipv6.conf.all.forwarding=1',
    `ip -6 addr add ${RTR_IN6}/64 dev eth0 nodad`,
    `ip -6 addr add ${RTR_OUT6}/64 dev eth1 nodad`,
  ].join(' && '));
  // The far host advertises a 1500-byte path's MSS (as a host behind a smaller-MTU hop does):
  // only the router's Packet Too Big can tell the workload the path is narrower.
  await far.sh(`ip -6 addr add ${FAR6}/64 dev eth0 nodad && ip -6 route add fd00:198:18:1::/64 via ${RTR_OUT6} dev eth0 advmss 1440`);
  await wl.sh(`ip -6 addr add ${WL6}/128 dev eth0 nodad && ip -6 route add ${GW6}/128 dev eth0 && ip -6 route add default via ${GW6} dev eth0`);

  m = await RouteManager.open({ pinRoot, netns: { name: node.name, path: node.path } });
  m.setState('node', routing);
  await m.apply();
  t.match(m.status(), { nodeIp6: NODE6, uplink: 'eth0' });

  t.notMatch((await wl.exec(['ip', '-6', 'route', 'get', FAR6])).stdout, /mtu/, 'before: the workload knows no smaller path MTU');
  const pyFar = new PySockets(far);
  const pyWl = new PySockets(wl);
  socks.push(pyFar, pyWl);
  await pyFar.run(`srv = socket.socket(socket.AF_INET6); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(('${FAR6}', 8081)); srv.listen(1); srv.settimeout(20); _ = 1`);
  const [peer, sent] = await Promise.all([
    pyFar.run<[string, number]>(`a, addr = srv.accept(); a.settimeout(20)
n = 0
while True:
    d = a.recv(65536)
    if not d: break
    n += len(d)
a.sendall(str(n).encode()); a.close(); _ = [addr[0], n]`, 30_000),
    pyWl.run<string>(`c = socket.socket(socket.AF_INET6); c.settimeout(20); c.connect(('${FAR6}', 8081)); c.sendall(b'x' * ${BYTES}); c.shutdown(socket.SHUT_WR); _ = c.recv(64).decode()`, 30_000),
  ]);
  t.equal(peer[0], NODE6, 'the far host saw the node address');
  t.equal(peer[1], BYTES, 'every byte arrived');
  t.equal(sent, String(BYTES), 'the workload got the count back');
  t.match((await wl.exec(['ip', '-6', 'route', 'get', FAR6])).stdout, new RegExp(`mtu ${SMALL_MTU}`), 'the workload\'s kernel learnt the path MTU from the translated Packet Too Big');

  await t.test('out: the workload kernel\'s port unreachable about a datagram of a translated flow reaches the far host as the node\'s', async (t) => {
    // The workload sends a datagram and closes its socket; the far host answers on a connected
    // socket: the answer is translated to the workload's closed port, its kernel's ICMPv6 port
    // unreachable leaves with the node's address and the quote as the far host sent it, so the
    // far host's kernel finds the socket and reports ECONNREFUSED.
    await pyFar.run(`us = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); us.bind(('${FAR6}', 5354)); us.settimeout(10); _ = 1`);
    await pyWl.run(`uc = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); uc.sendto(b'q', ('${FAR6}', 5354)); uc.close(); _ = 1`);
    const got = await pyFar.run<[string, string]>(`d, fa = us.recvfrom(64); us.connect(fa); us.send(b'a')
try:
    us.recv(64); r = 'answered'
except ConnectionRefusedError:
    r = 'refused'
except socket.timeout:
    r = 'timeout'
_ = [fa[0], r]`);
    t.same(got, [NODE6, 'refused'], 'the far host\'s socket got the translated port unreachable');
  });
});
