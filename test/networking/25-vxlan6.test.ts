// VXLAN over IPv6 on the three-node cluster, dual stack (A, B in 198.18.1.0/24 and
// fd00:198:18:1::/64; C in 198.18.2.0/24 and fd00:198:18:2::/64 behind a router; an outside host),
// the IPv6 pool fd00:10::/48 in vxlanMode CrossSubnet, real traffic between workloads:
//   - A↔B IPv6 natively routed (nothing encapsulated), A↔C VXLAN in outer IPv6 on the router's
//     wire (UDP 4789 between the nodes' IPv6 addresses, VNI 4096, the nodes' IPv6 VXLAN MACs, a
//     valid outer UDP checksum as tcpdump verifies it);
//   - routes with `mtu lock 1430` (vxlanMTUV6 detected: 1500 - 70); a 1500-byte packet gets
//     Packet Too Big 1430, the sender learns the path MTU and a TCP transfer from an MTU-1500
//     workload completes; vxlanMTUV6 set moves the routes;
//   - policy applies to decapsulated IPv6 (a Deny on the receiving workload drops there);
//   - crafted VXLAN over IPv6 (scapy): from a host that is not a node, another VNI, a spoofed
//     inner source, another inner MAC, bad flags, a wrong outer UDP checksum: each dropped with
//     its reason; the same packet done right is delivered;
//   - Always: A↔B encapsulated too.
import t from 'tap';
import { Capture, InProcessCluster, eventually, pings, scapy, waitListening } from '../../src/testbed';
import { gnp, pool } from '../../src/testbed/fixtures';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { sumPerCpuCounters, vxlan6Mac, VX6STAT } from '../../src/dataplane/bpf/net-codecs';
import { DEFAULT_MTU_PATTERN } from '../../src/dataplane/routing';
import type { Netns } from '../../src/util/netns';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';


const V6: Record<string, string> = { 'node-a': 'fd00:198:18:1::10', 'node-b': 'fd00:198:18:1::11', 'node-c': 'fd00:198:18:2::10' };


t.test('VXLAN over IPv6 between nodes, built and checked by BPF', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-vxlan6-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mtuFile = (n: string) => join(dir, `${n}.mtu`);
  const c = await InProcessCluster.create('vxlan6', { routing: (n) => ({ mtu: { ipipMtu: 0, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile(n) } }) });
  t.teardown(() => c.destroy());
  const v6 = await c.addIpv6(); // the ULA underlay beside the IPv4 one, Node resources with bgp.ipv6Address
  t.same(Object.fromEntries(v6), V6, 'the nodes\' IPv6 addresses');
  c.setPool({ ipipMode: 'CrossSubnet', vxlanMode: 'Never', natOutgoing: false }); // IPv4 across by IPIP
  c.put(pool('default-ipv6-ippool', 'fd00:10::/48', { vxlanMode: 'CrossSubnet', blockSize: 122, natOutgoing: false }));
  const add = (name: string, n: string, ip: string, ip6: string, mtu: number) => c.addWorkload6(name, n, ip, ip6, mtu);
  const wa = await add('wa', 'node-a', '192.168.1.10', 'fd00:10:0:1::a', 1430);
  const wa2 = await add('wa2', 'node-a', '192.168.1.11', 'fd00:10:0:1::b', 1500);
  const wb = await add('wb', 'node-b', '192.168.2.10', 'fd00:10:0:2::a', 1430);
  const wc = await add('wc', 'node-c', '192.168.3.10', 'fd00:10:0:3::a', 1430);
  const wc2 = await add('wc2', 'node-c', '192.168.3.11', 'fd00:10:0:3::b', 1500); // both ends 1500: TCP's MSS does not hide the tunnel
  await c.sync();
  const A = c.nodes.get('node-a')!, B = c.nodes.get('node-b')!;
  const vx6 = (n: string) => sumPerCpuCounters(c.nodes.get(n)!.dp!.routing!.maps.vx6st, VX6STAT);
  const drops = (n: string, reason: number, dir: number = Dir.UPLINK) => readCounters(c.nodes.get(n)!.dp!.maps.cnt!)
    .filter((x) => x.dir === dir && x.reason === reason).reduce((s, x) => s + x.packets, 0n);
  const routes6 = async (ns: Netns) => (await ns.exec(['ip', '-6', 'route', 'show', 'proto', '122'])).stdout.trim().split('\n').map((l) => l.trim().replace(/ metric \d+| pref medium/g, '')).sort();

  t.test('kernel routes: direct in the IPv6 subnet, via the router with mtu lock 1430 across', async (t) => {
    t.same(await routes6(A.ns), [
      'fd00:10:0:2::a via fd00:198:18:1::11 dev eth0',
      'fd00:10:0:3::a via fd00:198:18:1::1 dev eth0 mtu lock 1430',
      'fd00:10:0:3::b via fd00:198:18:1::1 dev eth0 mtu lock 1430',
    ]);
    t.equal(readFileSync(mtuFile('node-a'), 'utf8'), '1430\n', 'the MTU file new workloads are sized by: 1500 - 70 (vxlanMTUV6)');
  });

  t.test('CrossSubnet: A↔B IPv6 direct, nothing encapsulated', async (t) => {
    const a0 = vx6('node-a'), b0 = vx6('node-b');
    t.ok(await pings(wa.ns, wb.ip6!), 'wa → wb');
    t.ok(await pings(wb.ns, wa.ip6!), 'wb → wa');
    t.equal(vx6('node-a').encapUplink, a0.encapUplink, 'A encapsulated nothing');
    t.equal(vx6('node-b').decap, b0.decap, 'B decapsulated nothing');
  });

  t.test('CrossSubnet: A↔C over VXLAN in outer IPv6 (counters and the wire)', async (t) => {
    const cap = await Capture.start(c.router, 'ip6 and udp port 4789', { iface: 'pc', direction: 'inout', linkHeaders: true });
    t.teardown(() => cap.stop());
    const a0 = vx6('node-a'), c0 = vx6('node-c');
    t.ok(await pings(wa.ns, wc.ip6!), 'wa → wc');
    t.ok(await pings(wc.ns, wa.ip6!), 'wc → wa');
    const a1 = vx6('node-a'), c1 = vx6('node-c');
    t.ok(a1.encapUplink >= a0.encapUplink + 2n, `A encapsulated on its uplink (${a1.encapUplink - a0.encapUplink})`);
    t.ok(c1.decap >= c0.decap + 2n, 'C decapsulated');
    t.ok(c1.encapUplink >= c0.encapUplink + 2n && a1.decap >= a0.decap + 2n, 'and the other way');
    const re = new RegExp(`fd00:198:18:1::10\\.\\d+ > fd00:198:18:2::10\\.4789: \\[udp sum ok\\] VXLAN, flags \\[I\\] \\(0x08\\), vni 4096\\s+${vxlan6Mac(V6['node-a']!)} > ${vxlan6Mac(V6['node-c']!)}, ethertype IPv6[^]*fd00:10:0:1::a > fd00:10:0:3::a: \\[icmp6 sum ok\\] ICMP6, echo request`);
    t.ok(await cap.waitFor(re), 'the router saw UDP 4789 between the nodes\' IPv6 addresses, checksum ok, flags I, VNI 4096, the nodes\' MACs, the workload packet inside');
    t.match(cap.text(), /fd00:198:18:2::10\.\d+ > fd00:198:18:1::10\.4789: \[udp sum ok\] VXLAN/, 'and the replies the other way');
    if (!/echo request/.test(cap.text())) t.comment(cap.text());
  });

  t.test('MTU: Packet Too Big 1430, the path MTU learnt, a TCP transfer from an MTU-1500 workload completes', async (t) => {
    const r = await wa2.ns.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1452', wc.ip6!], { allowFail: true });
    t.not(r.code, 0, 'a 1500-byte IPv6 packet does not pass');
    t.match(r.stdout + r.stderr, /mtu ?= ?1430|too big/i, 'Packet Too Big from node A');
    t.match((await wa2.ns.exec(['ip', '-6', 'route', 'get', wc.ip6!])).stdout, /mtu 1430/, 'wa2 learnt the path MTU 1430');
    t.ok(await pings(wa2.ns, wc.ip6!), 'small packets pass');
    const full = await wa.ns.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1382', wc.ip6!], { allowFail: true });
    t.equal(full.code, 0, 'a 1430-byte packet from an MTU-1430 workload fits the tunnel');
    // 4 MiB over TCP from wa2 to wc2 (both MTU 1500, path MTU 1430): every byte arrives (counted by the receiver).
    const got = join(dir, 'received');
    wc2.ns.spawn(['sh', '-c', `socat -u TCP6-LISTEN:5201,reuseaddr - | wc -c > ${got}`], { stdio: 'ignore' });
    await waitListening(wc2.ns, 5201);
    const a0 = vx6('node-a');
    t.notMatch((await wa2.ns.exec(['ip', '-6', 'route', 'get', wc2.ip6!])).stdout, /mtu 1430/, 'no path MTU known towards wc2 yet');
    await wa2.ns.exec(['sh', '-c', `head -c 4194304 /dev/zero | socat -u - TCP6:[${wc2.ip6}]:5201`], { timeoutMs: 30_000 });
    t.ok(await eventually(async () => { try { return readFileSync(got, 'utf8').trim() === '4194304'; } catch { return false; } }, true, 10_000),
      '4 MiB from wa2 to wc2 over VXLAN: all received');
    t.match((await wa2.ns.exec(['ip', '-6', 'route', 'get', wc2.ip6!])).stdout, /mtu 1430/, 'wa2 learnt path MTU 1430 from the Packet Too Big its full-size segments met');
    t.ok(vx6('node-a').encapUplink > a0.encapUplink + 20n, `encapsulated on A's uplink (${vx6('node-a').encapUplink - a0.encapUplink} packets, GSO counted once)`);
  });

  t.test('vxlanMTUV6 set: the routes and the MTU file follow; detection again', async (t) => {
    const routesA = A.dp!.routing!;
    routesA.setMtu({ ipipMtu: 0, vxlanMtuV6: 1400, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile('node-a') });
    await routesA.apply();
    t.match((await A.ns.exec(['ip', '-6', 'route', 'show', 'proto', '122', wc.ip6!])).stdout, /via fd00:198:18:1::1 dev eth0 .*mtu lock 1400/);
    t.equal(readFileSync(mtuFile('node-a'), 'utf8'), '1400\n');
    const over = await wa.ns.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1360', wc.ip6!], { allowFail: true });
    t.match(over.stdout + over.stderr, /mtu ?= ?1400|too big/i, 'a 1408-byte packet gets Packet Too Big 1400');
    routesA.setMtu({ ipipMtu: 0, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile('node-a') });
    await routesA.apply();
    t.match((await A.ns.exec(['ip', '-6', 'route', 'show', 'proto', '122', wc.ip6!])).stdout, /mtu lock 1430/, 'detected again');
  });

  t.test('host-originated IPv6 to a remote workload is encapsulated too', async (t) => {
    const a0 = vx6('node-a');
    t.ok(await pings(A.ns, wc.ip6!), 'node A host → wc');
    t.ok(vx6('node-a').encapUplink > a0.encapUplink, 'encapsulated by tortie_uplink_out');
  });

  t.test('policy applies to decapsulated IPv6', async (t) => {
    c.put(gnp('deny-wa-to-wc', { order: 1, selector: 'app == "wc"', types: ['Ingress'], ingress: [{ action: 'Deny', ipVersion: 6, source: { selector: 'app == "wa"' } }] }));
    await c.sync();
    const d0 = drops('node-c', R.POLICY_DENY, Dir.INGRESS), c0 = vx6('node-c');
    t.notOk(await pings(wa.ns, wc.ip6!), 'wa → wc (IPv6) denied by wc\'s ingress policy');
    t.ok(await pings(wa.ns, wc.ip), 'IPv4 wa → wc still allowed (the rule is ipVersion 6)');
    t.ok(await pings(wa2.ns, wc.ip6!), 'wa2 → wc still allowed');
    t.ok(vx6('node-c').decap > c0.decap, 'C decapsulated them');
    t.ok(drops('node-c', R.POLICY_DENY, Dir.INGRESS) > d0, 'the deny counted on C\'s to-workload point');
    c.resources.delete('GlobalNetworkPolicy//deny-wa-to-wc');
    await c.sync();
    t.ok(await eventually(() => pings(wa.ns, wc.ip6!), true), 'allowed again');
  });

  t.test('crafted VXLAN over IPv6 is dropped with its reason; the same packet done right is delivered', async (t) => {
    // Towards wa on node A, sent at layer 3 so the sender's kernel routes it: from B (a known
    // node, same subnet) or the outside host. scapy fills the outer UDP and inner ICMPv6 checksums.
    const macA = vxlan6Mac(V6['node-a']!), macB = vxlan6Mac(V6['node-b']!);
    const pkt = (o: { src: string; vni?: number; flags?: number; dmac?: string; inner?: string; chksum?: number; id: number }) =>
      `IPv6(src='${o.src}', dst='${V6['node-a']}')/UDP(sport=40000, dport=4789${o.chksum !== undefined ? `, chksum=${o.chksum}` : ''})/VXLAN(flags=${o.flags ?? 0x08}, vni=${o.vni ?? 4096})/` +
      `Ether(src='${macB}', dst='${o.dmac ?? macA}')/IPv6(src='${o.inner ?? wb.ip6}', dst='${wa.ip6}')/ICMPv6EchoRequest(id=${o.id}, seq=1)`;
    const cap = await Capture.start(wa.ns, 'icmp6 and ip6[40] == 128');
    t.teardown(() => cap.stop());
    const cases: [string, number, Netns, Parameters<typeof pkt>[0]][] = [
      ['from a host that is not a node', R.VXLAN_UNKNOWN_SRC, c.outside, { src: c.outsideIp6, id: 7001 }],
      ['another VNI', R.VXLAN_VNI, B.ns, { src: V6['node-b']!, vni: 4097, id: 7002 }],
      ['inner source of another node\'s workload (spoofed)', R.VXLAN_INNER_SRC, B.ns, { src: V6['node-b']!, inner: wc.ip6, id: 7003 }],
      ['inner source outside every node (spoofed)', R.VXLAN_INNER_SRC, B.ns, { src: V6['node-b']!, inner: c.outsideIp6, id: 7004 }],
      ['inner Ethernet to another MAC', R.VXLAN_BAD_INNER, B.ns, { src: V6['node-b']!, dmac: '02:00:00:00:00:01', id: 7005 }],
      ['VXLAN flags without I', R.VXLAN_BAD_HDR, B.ns, { src: V6['node-b']!, flags: 0x00, id: 7006 }],
      ['a wrong outer UDP checksum', R.VXLAN6_CSUM, B.ns, { src: V6['node-b']!, chksum: 0x1234, id: 7007 }],
    ];
    for (const [what, reason, from, o] of cases) {
      const before = drops('node-a', reason);
      await scapy(from, [pkt(o)]);
      t.ok(await eventually(async () => drops('node-a', reason) > before, true, 3000), `${what}: dropped as ${reason}`);
      t.notOk(cap.has(new RegExp(`id ${o.id},`)), `${what}: nothing reached wa`);
    }
    for (const [what, o] of [['checksum from scapy', { src: V6['node-b']!, id: 7100 }], ['checksum 0', { src: V6['node-b']!, chksum: 0, id: 7101 }]] as const) {
      const d0 = vx6('node-a').decap;
      await scapy(B.ns, [pkt(o)]);
      t.ok(await cap.waitFor(new RegExp(`id ${o.id},`)), `${what}: a well-formed one from B with wb's inner source reached wa`);
      t.ok(vx6('node-a').decap > d0, 'decapsulated by A');
    }
  });

  t.test('Always: A↔B encapsulated too', async (t) => {
    c.put(pool('default-ipv6-ippool', 'fd00:10::/48', { vxlanMode: 'Always', blockSize: 122, natOutgoing: false }));
    await c.sync();
    t.match((await A.ns.exec(['ip', '-6', 'route', 'show', 'proto', '122', wb.ip6!])).stdout, /via fd00:198:18:1::11 dev eth0 .*mtu lock 1430/, 'route to wb now has the VXLAN MTU');
    const a0 = vx6('node-a'), b0 = vx6('node-b');
    t.ok(await pings(wa.ns, wb.ip6!), 'wa → wb');
    t.ok(vx6('node-a').encapUplink > a0.encapUplink, 'A encapsulated');
    t.ok(vx6('node-b').decap > b0.decap && vx6('node-b').encapUplink > b0.encapUplink, 'B decapsulated the request and encapsulated the reply');
  });
});
