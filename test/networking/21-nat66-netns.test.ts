// NAT66 end to end with real packets: a workload namespace behind a node namespace whose uplink
// faces an "outside" host on fd00:198:18:1::/64 that has no route to the pool fd00:10::/48. The
// route manager (node with only spec.bgp.ipv6Address) writes the NAT66 maps and attaches the
// uplink programs; then ICMPv6 echo, a TCP connection and a UDP exchange from the workload reach
// the outside host with the node's address as source and the replies come back; with natOutgoing
// off the outside host cannot answer; the agent's sweep leaves live mappings alone.
import t from 'tap';
import { Topology } from '../../src/util/netns';
import { RouteManager } from '../../src/dataplane/routing';
import { PySockets } from '../../src/testbed/probes';
import { readNat6Entries, NAT_DIR } from '../../src/dataplane/bpf/net-codecs';
import type { RoutingState } from '../../src/calc/types';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { nat66Triangle } from '../../src/testbed/layouts';

const NODE6 = 'fd00:198:18:1::10';
const OUT6 = 'fd00:198:18:1::20';
const WL6 = 'fd00:10::5';
const GW6 = 'fd00:10::1'; // the host side of the workload's veth (stands for Calico's link-local gateway)

const routing = (natOutgoing: boolean): RoutingState => ({
  pools: [{ name: 'v6', cidr: 'fd00:10::/48', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing, disabled: false, blockSize: 122 }],
  nodes: [{ name: 'node', ipv6Address: `${NODE6}/64` }],
  workloadRoutes: [],
});

t.test('NAT66 with real traffic', async (t) => {
  const topo = Topology.create('nat66e');
  const pinRoot = uniquePinRoot('nat66e');
  const socks: PySockets[] = [];
  let m: RouteManager | undefined;
  t.teardown(async () => { for (const s of socks) s.close(); m?.close(); await topo.destroy(); removePinRoot(pinRoot); });
  const { node, out, wl } = await nat66Triangle(topo, { node6: NODE6, out6: OUT6, wl6: WL6, gw6: GW6 });
  t.match((await out.exec(['ip', '-6', 'route', 'get', WL6], { allowFail: true })).stderr, /unreachable|Network is unreachable/, 'the outside host has no route to the pool');

  const ping = () => wl.exec(['ping', '-6', '-c', '1', '-W', '2', OUT6], { allowFail: true });
  t.not((await ping()).code, 0, 'without NAT66 the outside host cannot answer the workload');

  m = await RouteManager.open({ pinRoot, netns: { name: node.name, path: node.path } });
  m.setState('node', routing(true));
  await m.apply();
  t.match(m.status(), { nodeIp6: NODE6, uplink: 'eth0' }, 'an IPv6-only node: uplink found by its IPv6 address');
  t.match(m.mapEntries(), { pool6: 1, node6: 1 });

  await t.test('ICMPv6 echo: answered, the outside host sees the node', async (t) => {
    const cap = out.spawn(['tcpdump', '-ni', 'eth0', '-c', '1', '-l', '--immediate-mode', 'icmp6 and ip6[40] == 128'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    cap.stdout!.on('data', (d: Buffer) => { seen += d.toString(); });
    // tcpdump says "listening on" once its capture is open.
    await new Promise<void>((resolve, reject) => {
      let err = '';
      cap.stderr!.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('listening on')) resolve(); });
      cap.once('exit', () => reject(new Error(`tcpdump exited: ${err}`)));
    });
    const p = await ping();
    t.equal(p.code, 0, `echo reply received: ${p.stdout}`);
    await new Promise<void>((r) => { if (cap.exitCode !== null) r(); else cap.once('exit', () => r()); setTimeout(r, 3000); });
    t.match(seen, new RegExp(`${NODE6.replace(/[.:]/g, '\\$&')} > ${OUT6.replace(/[.:]/g, '\\$&')}`), `the request arrived from the node address: ${seen.trim()}`);
    t.notMatch(seen, /fd00:10::5/, 'the workload address never reached the outside');
    cap.kill();
  });

  const pyOut = new PySockets(out);
  const pyWl = new PySockets(wl);
  socks.push(pyOut, pyWl);

  await t.test('TCP: a connection from the workload; the server sees the node; data both ways', async (t) => {
    await pyOut.run(`srv = socket.socket(socket.AF_INET6); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(('${OUT6}', 8080)); srv.listen(4); srv.settimeout(10); _ = 1`);
    await pyWl.run(`c = socket.socket(socket.AF_INET6); c.settimeout(10); c.connect(('${OUT6}', 8080)); c.sendall(b'hello'); _ = c.getsockname()[1]`);
    const peer = await pyOut.run<[string, number, string]>(`a, addr = srv.accept(); a.settimeout(10); got = a.recv(16); a.sendall(b'world:' + got); _ = [addr[0], addr[1], got.decode()]`);
    t.equal(peer[0], NODE6, 'the server saw the node address');
    t.ok(peer[1] >= 20000 && peer[1] <= 29999, `from a NAT range port (${peer[1]})`);
    t.equal(peer[2], 'hello');
    t.equal(await pyWl.run<string>(`_ = c.recv(64).decode()`), 'world:hello', 'the reply reached the workload');
    const fwd = readNat6Entries(m!.maps.nat6).filter((e) => e.key.dir === NAT_DIR.FWD && e.key.proto === 6);
    t.same(fwd.map((e) => [e.key.saddr, e.key.daddr, e.value.addr, e.value.port]), [[WL6, OUT6, NODE6, peer[1]]], 'one TCP mapping');
  });

  await t.test('UDP: a datagram out, the answer back', async (t) => {
    await pyOut.run(`us = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); us.bind(('${OUT6}', 5353)); us.settimeout(10); _ = 1`);
    await pyWl.run(`uc = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); uc.settimeout(10); uc.sendto(b'q', ('${OUT6}', 5353)); _ = 1`);
    const from = await pyOut.run<string>(`d, fa = us.recvfrom(64); us.sendto(b'a:' + d, fa); _ = fa[0]`);
    t.equal(from, NODE6);
    t.equal(await pyWl.run<string>(`_ = uc.recvfrom(64)[0].decode()`), 'a:q');
  });

  await t.test('the sweep keeps live mappings', async (t) => {
    const before = readNat6Entries(m!.maps.nat6).length;
    t.ok(before >= 4, `${before} entries (TCP, UDP, echo; both directions)`);
    t.equal(m!.sweepNat(), 0);
    t.equal(readNat6Entries(m!.maps.nat6).length, before);
  });

  await t.test('natOutgoing off: not translated any more, the outside host cannot answer', async (t) => {
    m!.setState('node', routing(false));
    await m!.apply();
    t.not((await ping()).code, 0);
  });
});
