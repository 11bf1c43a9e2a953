// VXLAN built by BPF on the three-node cluster (A, B in 198.18.1.0/24; C in 198.18.2.0/24 behind
// a router; an outside host), the pool in vxlanMode, real traffic between workloads:
//   - CrossSubnet: A↔B direct (nothing encapsulated), A↔C VXLAN on the wire (UDP 4789, VNI 4096,
//     the nodes' derived inner MACs), outer source ports from the flow hash (one flow one port,
//     several flows several ports);
//   - kernel routes with the VXLAN MTU (1450); a DF packet over it gets frag-needed; TCP (GSO)
//     across the tunnel; host-originated traffic encapsulated on the uplink's egress;
//   - policy applies to decapsulated packets (a Deny on the receiving workload drops there);
//   - crafted VXLAN (scapy): from a host that is not a node, with another VNI, with a spoofed
//     inner source, to another inner MAC, with bad flags, with a UDP length that lies: each
//     dropped with its reason; the same packet done right is delivered;
//   - Always: A↔B encapsulated too; vxlanMode Never: nothing is decapsulated any more.
import t from 'tap';
import { Capture, InProcessCluster, eventually, pings, scapy, until, waitListening } from '../../src/testbed';
import { gnp } from '../../src/testbed/fixtures';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { readVxStats, type VxStats } from '../../src/dataplane/bpf/net-codecs';
import type { Netns } from '../../src/util/netns';
import { DEFAULT_MTU_PATTERN } from '../../src/dataplane/routing';
import { NETCFG_KEY, vxcfgCodec } from '../../src/dataplane/bpf/net-codecs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';


t.test('VXLAN between nodes, built and checked by BPF', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-vxlan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mtuFile = (node: string) => join(dir, `${node}.mtu`);
  const c = await InProcessCluster.create('vxlan', { routing: (node) => ({ mtu: { ipipMtu: 0, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile(node) } }) });
  t.teardown(() => c.destroy());
  c.setPool({ ipipMode: 'Never', vxlanMode: 'CrossSubnet' });
  const wa = await c.addWorkload('wa', 'node-a', '192.168.1.10', 1450);
  const wa2 = await c.addWorkload('wa2', 'node-a', '192.168.1.11', 1500);
  const wb = await c.addWorkload('wb', 'node-b', '192.168.2.10', 1450);
  const wc = await c.addWorkload('wc', 'node-c', '192.168.3.10', 1450);
  await c.sync();
  const A = c.nodes.get('node-a')!, B = c.nodes.get('node-b')!;
  const vx = (n: string): VxStats => readVxStats(c.nodes.get(n)!.dp!.routing!.maps.vxst);
  const drops = (n: string, reason: number, dir: number = Dir.UPLINK) => readCounters(c.nodes.get(n)!.dp!.maps.cnt!)
    .filter((x) => x.dir === dir && x.reason === reason).reduce((s, x) => s + x.packets, 0n);

  t.test('kernel routes: direct in the subnet, via the router with the VXLAN MTU across', async (t) => {
    const r = await A.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122']);
    t.same(r.stdout.trim().split('\n').map((l) => l.trim()).sort(),
      ['192.168.2.10 via 198.18.1.11 dev eth0', '192.168.3.10 via 198.18.1.1 dev eth0 mtu 1450']);
    t.match(A.dp!.routing!.status(), { vxlanRoutes: 1, encapRoutes: 1 });
    t.same(vxcfgCodec.decode(A.dp!.routing!.maps.vxcfg.lookup(NETCFG_KEY)!), { vni: 4096, port: 4789, mtu: 1450 }, 'VNI, port and MTU for the programs');
    t.equal(readFileSync(mtuFile('node-a'), 'utf8'), '1450\n', 'the MTU file new workloads are sized by: 1500 - 50');
  });

  t.test('CrossSubnet: A↔B direct, nothing encapsulated', async (t) => {
    const a0 = vx('node-a'), b0 = vx('node-b'), n0 = c.stats('node-a');
    t.ok(await pings(wa.ns, wb.ip), 'wa → wb');
    t.ok(await pings(wb.ns, wa.ip), 'wb → wa');
    const a1 = vx('node-a'), b1 = vx('node-b'), n1 = c.stats('node-a');
    t.equal(a1.encapFast + a1.encapUplink, a0.encapFast + a0.encapUplink, 'A encapsulated nothing in VXLAN');
    t.equal(n1.encapFast + n1.encapUplink, n0.encapFast + n0.encapUplink, 'nor in IPIP');
    t.equal(b1.decap, b0.decap, 'B decapsulated nothing');
  });

  t.test('CrossSubnet: A↔C over VXLAN (counters and the wire)', async (t) => {
    const cap = await Capture.start(c.router, 'udp port 4789', { iface: 'pc', direction: 'inout', linkHeaders: true });
    t.teardown(() => cap.stop());
    const a0 = vx('node-a'), c0 = vx('node-c');
    t.ok(await pings(wa.ns, wc.ip), 'wa → wc');
    t.ok(await pings(wc.ns, wa.ip), 'wc → wa');
    const a1 = vx('node-a'), c1 = vx('node-c');
    t.ok(a1.encapFast > a0.encapFast, `A encapsulated in the fast path (${a1.encapFast - a0.encapFast})`);
    t.ok(c1.decap >= c0.decap + 2n, 'C decapsulated the request and the reply... of both pings');
    t.ok(c1.encapFast > c0.encapFast, 'C encapsulated its replies');
    t.ok(a1.decap > a0.decap, 'A decapsulated');
    t.ok(await cap.waitFor(/198\.18\.1\.10\.\d+ > 198\.18\.2\.10\.4789: VXLAN, flags \[I\] \(0x08\), vni 4096\s+0e:74:c6:12:01:0a > 0e:74:c6:12:02:0a, ethertype IPv4[^]*192\.168\.1\.10 > 192\.168\.3\.10: ICMP echo request/),
      'the router saw UDP 4789, flags I, VNI 4096, the nodes\' derived MACs, the workload packet inside');
    t.match(cap.text(), /198\.18\.2\.10\.\d+ > 198\.18\.1\.10\.4789: VXLAN/, 'and the replies the other way');
  });

  t.test('outer UDP source port: from the flow hash (one flow one port, flows spread)', async (t) => {
    const cap = await Capture.start(c.router, 'udp dst port 4789 and src host 198.18.1.10', { iface: 'pc', direction: 'out' });
    t.teardown(() => cap.stop());
    const flows = [41001, 41002, 41003, 41004, 41005, 41006, 41007, 41008];
    // Two datagrams per flow, inner UDP wa:sport → wc:9.
    await wa.ns.exec(['python3', '-c', [
      'import socket',
      `for sp in ${JSON.stringify(flows)}:`,
      ' s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", sp))',
      ` for _ in range(2): s.sendto(b"x", ("${wc.ip}", 9))`,
    ].join('\n')]);
    // One outer line, then the inner one: outer source port per inner source port.
    const seen = () => {
      const by = new Map<number, number[]>();
      for (const m of cap.text().matchAll(/198\.18\.1\.10\.(\d+) > 198\.18\.2\.10\.4789: VXLAN[^\n]*\n[^\n]*\n\s*192\.168\.1\.10\.(\d+) > 192\.168\.3\.10\.9: UDP/g)) {
        by.set(Number(m[2]), [...(by.get(Number(m[2])) ?? []), Number(m[1])]);
      }
      return by;
    };
    t.ok(await eventually(async () => flows.every((sp) => (seen().get(sp)?.length ?? 0) >= 2), true, 5000), 'both datagrams of every flow seen');
    const ports = flows.map((sp) => seen().get(sp) ?? []);
    for (const [i, p] of ports.entries()) {
      t.equal(p[0], p[1], `flow ${flows[i]}: one outer source port (${p[0]})`);
      t.ok(p[0]! >= 32768 && p[0]! <= 60999, 'in Linux\'s ephemeral range');
    }
    const distinct = new Set(ports.map((p) => p[0])).size;
    t.ok(distinct >= 4, `8 flows spread over ${distinct} outer source ports`);
  });

  t.test('MTU: oversize DF packet gets frag-needed 1450; a full 1450 fits; TCP (GSO) across works', async (t) => {
    const r = await wa2.ns.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1472', wc.ip], { allowFail: true });
    t.not(r.code, 0, '1500-byte DF ping does not pass');
    t.match(r.stdout + r.stderr, /mtu ?= ?1450/i, 'the node answered frag-needed with mtu 1450');
    t.ok(await pings(wa2.ns, wc.ip), 'small packets pass (the route MTU was learnt, not a black hole)');
    const full = await wa.ns.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1422', wc.ip], { allowFail: true });
    t.equal(full.code, 0, 'a 1450-byte DF packet from an MTU-1450 workload fits the tunnel');
    wc.ns.spawn(['iperf3', '-s', '-1', '-p', '5201'], { stdio: 'ignore' });
    await waitListening(wc.ns, 5201);
    const a0 = vx('node-a');
    // GSO kept through the encapsulation: the uplink is handed UDP-tunnel GSO packets longer
    // than its MTU (segmented later, outer headers replicated), not MTU-sized ones.
    const cap = await Capture.start(A.ns, 'udp dst port 4789 and src host 198.18.1.10', { direction: 'out' });
    t.teardown(() => cap.stop());
    const ip = await wa.ns.exec(['iperf3', '-c', wc.ip, '-p', '5201', '-t', '2', '-J'], { timeoutMs: 20_000 });
    const bps = JSON.parse(ip.stdout).end.sum_received.bits_per_second as number;
    t.ok(bps > 10e6, `iperf3 wa → wc over VXLAN: ${(bps / 1e9).toFixed(2)} Gbit/s`);
    t.ok(vx('node-a').encapFast > a0.encapFast, 'through the encapsulating fast path');
    const big = () => cap.ipLengths('UDP').filter((l) => l > 1500);
    await until(() => big().length >= 10, 5000);
    t.ok(big().length >= 10, `VXLAN packets longer than the MTU on A's uplink: ${big().length} (largest ${Math.max(0, ...cap.ipLengths('UDP'))})`);
  });

  t.test('vxlanMTU set: routes, the programs\' MTU and the MTU file follow; detection again', async (t) => {
    const routesA = A.dp!.routing!;
    routesA.setMtu({ ipipMtu: 0, vxlanMtu: 1400, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile('node-a') });
    await routesA.apply();
    t.equal((await A.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122', wc.ip])).stdout.trim(), '192.168.3.10 via 198.18.1.1 dev eth0 mtu 1400');
    t.equal(vxcfgCodec.decode(routesA.maps.vxcfg.lookup(NETCFG_KEY)!).mtu, 1400);
    t.equal(readFileSync(mtuFile('node-a'), 'utf8'), '1400\n');
    const over = await wa.ns.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1373', wc.ip], { allowFail: true });
    t.match(over.stdout + over.stderr, /mtu ?= ?1400/i, 'a 1401-byte DF packet gets frag-needed 1400');
    routesA.setMtu({ ipipMtu: 0, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile('node-a') });
    await routesA.apply();
    t.equal(vxcfgCodec.decode(routesA.maps.vxcfg.lookup(NETCFG_KEY)!).mtu, 1450, 'detected again');
  });

  t.test('host-originated traffic to a remote workload is encapsulated on the uplink egress', async (t) => {
    const a0 = vx('node-a');
    t.ok(await pings(A.ns, wc.ip), 'node A host → wc');
    t.ok(vx('node-a').encapUplink > a0.encapUplink, 'encapsulated by tortie_uplink_out');
  });

  t.test('policy applies to decapsulated traffic', async (t) => {
    c.put(gnp('deny-wa-to-wc', { order: 1, selector: 'app == "wc"', types: ['Ingress'], ingress: [{ action: 'Deny', source: { selector: 'app == "wa"' } }] }));
    await c.sync();
    const d0 = drops('node-c', R.POLICY_DENY, Dir.INGRESS), c0 = vx('node-c');
    t.notOk(await pings(wa.ns, wc.ip), 'wa → wc denied by wc\'s ingress policy');
    t.ok(await pings(wa2.ns, wc.ip), 'wa2 → wc still allowed');
    t.ok(vx('node-c').decap > c0.decap, 'C decapsulated them');
    t.ok(drops('node-c', R.POLICY_DENY, Dir.INGRESS) > d0, 'the deny counted on C\'s to-workload point');
    c.resources.delete('GlobalNetworkPolicy//deny-wa-to-wc');
    await c.sync();
    t.ok(await pings(wa.ns, wc.ip), 'allowed again');
  });

  t.test('crafted VXLAN is dropped with its reason; the same packet done right is delivered', async (t) => {
    // Towards wa on node A (198.18.1.10, VXLAN MAC 0e:74:c6:12:01:0a), sent at layer 3 so the
    // sender's kernel routes it: from B (a known node, same subnet) or the outside host.
    const macA = '0e:74:c6:12:01:0a', macB = '0e:74:c6:12:01:0b';
    const pkt = (o: { src: string; vni?: number; flags?: number; dmac?: string; inner?: string; ulen?: number; id: number }) =>
      `IP(src='${o.src}', dst='198.18.1.10')/UDP(sport=40000, dport=4789${o.ulen ? `, len=${o.ulen}` : ''})/VXLAN(flags=${o.flags ?? 0x08}, vni=${o.vni ?? 4096})/Ether(src='${macB}', dst='${o.dmac ?? macA}')/IP(src='${o.inner ?? wb.ip}', dst='${wa.ip}', id=${o.id})/ICMP(id=${o.id}, seq=1)`;
    const cap = await Capture.start(wa.ns, `icmp and (src host ${wb.ip} or src host ${wc.ip} or src host ${c.outsideIp})`);
    t.teardown(() => cap.stop());
    const cases: [string, number, Netns, Parameters<typeof pkt>[0]][] = [
      ['from a host that is not a node', R.VXLAN_UNKNOWN_SRC, c.outside, { src: c.outsideIp, id: 7001 }],
      ['another VNI', R.VXLAN_VNI, B.ns, { src: B.ip, vni: 4097, id: 7002 }],
      ['inner source of another node\'s workload (spoofed)', R.VXLAN_INNER_SRC, B.ns, { src: B.ip, inner: wc.ip, id: 7003 }],
      ['inner source outside every node (spoofed)', R.VXLAN_INNER_SRC, B.ns, { src: B.ip, inner: c.outsideIp, id: 7004 }],
      ['inner Ethernet to another MAC', R.VXLAN_BAD_INNER, B.ns, { src: B.ip, dmac: '02:00:00:00:00:01', id: 7005 }],
      ['VXLAN flags without I', R.VXLAN_BAD_HDR, B.ns, { src: B.ip, flags: 0x00, id: 7006 }],
      ['UDP length longer than the datagram', R.VXLAN_BAD_HDR, B.ns, { src: B.ip, ulen: 200, id: 7007 }],
    ];
    for (const [what, reason, from, o] of cases) {
      const before = drops('node-a', reason);
      await scapy(from, [pkt(o)]);
      t.ok(await eventually(async () => drops('node-a', reason) > before, true, 3000), `${what}: dropped as ${reason}`);
      t.notOk(cap.has(new RegExp(`id ${o.id},`)), `${what}: nothing reached wa`);
    }
    const d0 = vx('node-a').decap;
    await scapy(B.ns, [pkt({ src: B.ip, id: 7100 })]);
    t.ok(await cap.waitFor(/id 7100,/), 'a well-formed one from B with wb\'s inner source reached wa');
    t.ok(vx('node-a').decap > d0, 'decapsulated by A');
  });

  t.test('Always: A↔B encapsulated too; vxlanMode Never: nothing decapsulated any more', async (t) => {
    c.setPool({ ipipMode: 'Never', vxlanMode: 'Always' });
    await c.sync();
    const r = await A.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122', '192.168.2.10']);
    t.match(r.stdout, /via 198\.18\.1\.11 dev eth0 .*mtu 1450/, 'route to wb now has the VXLAN MTU');
    const a0 = vx('node-a'), b0 = vx('node-b');
    t.ok(await pings(wa.ns, wb.ip), 'wa → wb');
    const a1 = vx('node-a'), b1 = vx('node-b');
    t.ok(a1.encapFast > a0.encapFast, 'A encapsulated');
    t.ok(b1.decap > b0.decap && b1.encapFast > b0.encapFast, 'B decapsulated the request and encapsulated the reply');
    c.setPool({ ipipMode: 'Never', vxlanMode: 'Never' });
    await c.sync();
    const back = await A.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122', '192.168.2.10']);
    t.equal(back.stdout.trim(), '192.168.2.10 via 198.18.1.11 dev eth0', 'the VXLAN MTU is gone');
    t.equal(readFileSync(mtuFile('node-a'), 'utf8'), '1500\n', 'and the MTU file says the host MTU');
    t.equal(vxcfgCodec.decode(A.dp!.routing!.maps.vxcfg.lookup(NETCFG_KEY)!).vni, 0, 'VXLAN off in the programs');
    const d0 = vx('node-a').decap;
    await scapy(B.ns, [`IP(src='${B.ip}', dst='198.18.1.10')/UDP(sport=40000, dport=4789)/VXLAN(vni=4096)/Ether(dst='0e:74:c6:12:01:0a')/IP(src='${wb.ip}', dst='${wa.ip}')/ICMP()`]);
    t.ok(await pings(wa.ns, wb.ip), 'wa → wb direct');
    t.equal(vx('node-a').decap, d0, 'VXLAN off: UDP to 4789 is not decapsulated');
  });
});
