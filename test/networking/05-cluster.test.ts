// Three nodes in network namespaces (A, B in 198.18.1.0/24; C in 198.18.2.0/24 behind a router;
// an outside host), each with tortie's dataplane and route manager fed by the compiler, real
// traffic between workloads:
//   - CrossSubnet: A↔B routed directly (no IPIP in counters or on the wire), A↔C over IPIP;
//   - MTU: a DF packet too big for the tunnel gets ICMP frag-needed (mtu 1480); TCP across the
//     tunnel works (iperf3);
//   - Always: A↔B encapsulated too; back to CrossSubnet: direct again;
//   - IPIP from a host that is not a node is dropped and counted;
//   - NAT outgoing: the outside host sees the node's address, replies come back (TCP, ping);
//     no SNAT towards another workload or a node;
//   - kernel routes carry tortie's protocol, and a removed workload's route is swept.
import t from 'tap';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InProcessCluster } from '../../src/testbed';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import type { Netns } from '../../src/util/netns';
import { tcQuery } from '../../src/dataplane/native';
import { netcfgCodec, NETCFG_KEY } from '../../src/dataplane/bpf/net-codecs';
import { Capture, until, waitListening } from '../../src/testbed/probes';

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function pings(from: Netns, ip: string, extra: string[] = []): Promise<boolean> {
  const r = await from.exec(['ping', '-c', '1', '-W', '2', ...extra, ip], { allowFail: true });
  return r.code === 0;
}

/** TCP request to ip:port; the server (whoSaw) answers with the peer address it saw. */
async function seenSource(from: Netns, ip: string, port: number): Promise<string> {
  const r = await from.exec(['sh', '-c', `echo hi | nc -w 3 ${ip} ${port}`], { allowFail: true, timeoutMs: 8000 });
  return r.stdout.trim();
}

function whoSaw(ns: Netns, port: number): void {
  // Reads the request line first: answering and closing before it arrived would make the
  // client's late data draw a RST that can discard the answer.
  ns.spawn(['socat', `TCP-LISTEN:${port},fork,reuseaddr`, 'SYSTEM:read x; echo $SOCAT_PEERADDR']);
}


t.test('three-node cluster: routes, IPIP, NAT outgoing', async (t) => {
  const c = await InProcessCluster.create('netcl');
  t.teardown(() => c.destroy());
  c.setPool();
  const wa = await c.addWorkload('wa', 'node-a', '192.168.1.10', 1500);
  const wa2 = await c.addWorkload('wa2', 'node-a', '192.168.1.11');
  const wb = await c.addWorkload('wb', 'node-b', '192.168.2.10');
  const wc = await c.addWorkload('wc', 'node-c', '192.168.3.10');
  await c.sync();
  const A = c.nodes.get('node-a')!, B = c.nodes.get('node-b')!, C = c.nodes.get('node-c')!;

  t.test('kernel routes: direct in the subnet, via the router with the tunnel MTU across', async (t) => {
    const r = await A.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122']);
    const lines = r.stdout.trim().split('\n').map((l) => l.trim()).sort();
    t.same(lines, ['192.168.2.10 via 198.18.1.11 dev eth0', '192.168.3.10 via 198.18.1.1 dev eth0 mtu 1480'],
      'routes to the B and C workloads');
    t.notOk(lines.some((l) => l.startsWith('192.168.1.')), 'no routes for local workloads');
    const st = A.dp!.housekeeping();
    t.match(st.mapEntries, { rt4: 2, pool4: 1, node4: 3 }, 'map sizes reach the metrics');
  });

  t.test('CrossSubnet: A↔B direct, no IPIP', async (t) => {
    const a0 = c.stats('node-a'), b0 = c.stats('node-b');
    t.ok(await pings(wa.ns, wb.ip), 'wa → wb');
    t.ok(await pings(wb.ns, wa.ip), 'wb → wa');
    const a1 = c.stats('node-a'), b1 = c.stats('node-b');
    t.equal(a1.encapFast + a1.encapUplink, a0.encapFast + a0.encapUplink, 'A encapsulated nothing');
    t.equal(b1.decap, b0.decap, 'B decapsulated nothing');
    t.equal(b1.encapFast + b1.encapUplink, b0.encapFast + b0.encapUplink, 'B encapsulated nothing');
  });

  t.test('CrossSubnet: A↔C over IPIP (counters and the wire)', async (t) => {
    const cap = c.router.spawn(['tcpdump', '-nli', 'pc', '-c', '2', 'ip proto 4 and src host 198.18.1.10 and dst host 198.18.2.10'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let captured = '';
    let capErr = '';
    cap.stdout!.on('data', (d) => { captured += String(d); });
    cap.stderr!.on('data', (d) => { capErr += String(d); });
    await eventually(async () => capErr.includes('listening on'), 5000); // tcpdump is capturing
    const a0 = c.stats('node-a'), c0 = c.stats('node-c');
    t.ok(await pings(wa.ns, wc.ip), 'wa → wc');
    t.ok(await pings(wc.ns, wa.ip), 'wc → wa');
    t.ok(await pings(wa2.ns, wc.ip, ['-s', '1452', '-M', 'do']), '1480-byte packet from an MTU-1480 workload fits the tunnel');
    const a1 = c.stats('node-a'), c1 = c.stats('node-c');
    t.ok(a1.encapFast > a0.encapFast, `A encapsulated in the fast path (${a1.encapFast - a0.encapFast})`);
    t.ok(c1.decap >= c0.decap + 2n, 'C decapsulated the requests and replies');
    t.ok(c1.encapFast > c0.encapFast, 'C encapsulated its replies');
    t.ok(a1.decapFast + c1.decapFast > a0.decapFast + c0.decapFast, 'decapsulated packets went straight to the workloads\' cali*');
    const seen = /198\.18\.1\.10 > 198\.18\.2\.10: .*192\.168\.1\.1[01] > 192\.168\.3\.10/;
    await eventually(async () => seen.test(captured), 5000);
    cap.kill('SIGINT');
    t.match(captured, /198\.18\.1\.10 > 198\.18\.2\.10: .*192\.168\.1\.1[01] > 192\.168\.3\.10/, 'the router saw IPIP with the workload packet inside');
  });

  t.test('host-originated traffic to a remote workload is encapsulated on the uplink egress', async (t) => {
    const a0 = c.stats('node-a');
    t.ok(await pings(A.ns, wc.ip), 'node A host → wc');
    t.ok(c.stats('node-a').encapUplink > a0.encapUplink, 'encapsulated by tortie_uplink_out');
  });

  t.test('MTU: oversize DF packet gets frag-needed; TCP across the tunnel works', async (t) => {
    const r = await wa.ns.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1472', wc.ip], { allowFail: true });
    t.not(r.code, 0, '1500-byte DF ping does not pass');
    t.match(r.stdout + r.stderr, /mtu ?= ?1480/i, 'the node answered frag-needed with mtu 1480');
    wc.ns.spawn(['iperf3', '-s', '-1', '-p', '5201'], { stdio: 'ignore' });
    await waitListening(wc.ns, 5201);
    const ip = await wa.ns.exec(['iperf3', '-c', wc.ip, '-p', '5201', '-t', '2', '-J'], { timeoutMs: 20_000 });
    const bps = JSON.parse(ip.stdout).end.sum_received.bits_per_second as number;
    t.ok(bps > 10e6, `iperf3 wa → wc: ${(bps / 1e9).toFixed(2)} Gbit/s`);
  });

  t.test('restarting node A\'s dataplane under traffic across the tunnel: no interruption, nothing rewritten', async (t) => {
    wc.ns.spawn(['iperf3', '-s', '-1', '-p', '5202'], { stdio: 'ignore' });
    await waitListening(wc.ns, 5202);
    const run = wa.ns.exec(['iperf3', '-c', wc.ip, '-p', '5202', '-t', '4', '-i', '0.5', '-J'], { timeoutMs: 30_000 });
    await new Promise((res) => setTimeout(res, 1200));
    await A.dp!.close(); // programs stay attached, maps stay pinned
    A.dp = undefined;
    await new Promise((res) => setTimeout(res, 500));
    await c.sync(); // a new dataplane on the same pins, reconciled with the same state
    t.same(A.dp!.routing!.status().writes, { routes: 0, maps: 0 }, 'the restarted route manager found everything in place');
    const out = JSON.parse((await run).stdout) as { end: { sum_received: { bytes: number } }; intervals: { sum: { bytes: number } }[] };
    const empty = out.intervals.filter((i) => i.sum.bytes === 0).length;
    t.equal(empty, 0, `every 0.5 s interval moved data (${out.intervals.length} intervals)`);
    t.ok(out.end.sum_received.bytes > 0);
  });

  t.test('IPIP from a host that is not a node is dropped and counted', async (t) => {
    const drops = () => readCounters(A.dp!.maps.cnt!).filter((x) => x.dir === Dir.UPLINK && x.reason === R.IPIP_UNKNOWN_SRC)
      .reduce((s, x) => s + x.packets, 0n);
    const before = drops();
    // An IPIP packet from the outside host: outer: the outside host → A, inner to workload wa.
    const script = [
      'import socket,struct',
      'def csum(b):',
      ' s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return ~s&0xffff',
      `h=struct.pack("!BBHHHBBH4s4s",0x45,0,28,1,0,64,1,0,socket.inet_aton("${c.outsideIp}"),socket.inet_aton("${wa.ip}"))`,
      'h=h[:10]+struct.pack("!H",csum(h))+h[12:]',
      'ic=struct.pack("!BBHHH",8,0,0,1,1); ic=ic[:2]+struct.pack("!H",csum(ic))+ic[4:]',
      's=socket.socket(socket.AF_INET,socket.SOCK_RAW,4)',
      'for _ in range(3): s.sendto(h+ic,("198.18.1.10",0))',
    ].join('\n');
    await c.outside.exec(['python3', '-c', script]);
    await eventually(async () => drops() >= before + 3n, 3000);
    t.equal(drops(), before + 3n, 'three IPIP packets dropped as ipip_unknown_src');
  });

  t.test('NAT outgoing: the outside host sees the node address; no SNAT to workloads or nodes', async (t) => {
    whoSaw(c.outside, 8080);
    whoSaw(wb.ns, 8081);
    whoSaw(B.ns, 8082);
    whoSaw(wc.ns, 8083);
    for (const [ns, port] of [[c.outside, 8080], [wb.ns, 8081], [B.ns, 8082], [wc.ns, 8083]] as const) await waitListening(ns, port);
    const s0 = c.stats('node-a');
    t.equal(await seenSource(wa.ns, c.outsideIp, 8080), '198.18.1.10', 'outside host sees node A');
    t.equal(await seenSource(wc.ns, c.outsideIp, 8080), '198.18.2.10', 'outside host sees node C for wc');
    t.ok(await pings(wa.ns, c.outsideIp), 'ping to the outside host (echo id translated back)');
    const s1 = c.stats('node-a');
    t.ok(s1.snatNew > s0.snatNew && s1.rnat > s0.rnat, 'mappings created and replies reverse-translated on A');
    t.equal(await seenSource(wa.ns, wb.ip, 8081), wa.ip, 'another workload (same subnet) sees the workload address');
    t.equal(await seenSource(wa.ns, wc.ip, 8083), wa.ip, 'another workload (over IPIP) sees the workload address');
    t.equal(await seenSource(wa.ns, B.ip, 8082), wa.ip, 'another node sees the workload address');
  });

  t.test('Always: A↔B encapsulated too; CrossSubnet again: direct', async (t) => {
    c.setPool({ ipipMode: 'Always' });
    await c.sync();
    const r = await A.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122', '192.168.2.10']);
    t.match(r.stdout, /via 198\.18\.1\.11 dev eth0 .*mtu 1480/, 'route to wb now has the tunnel MTU');
    const a0 = c.stats('node-a'), b0 = c.stats('node-b');
    t.ok(await pings(wa2.ns, wb.ip), 'wa2 → wb');
    const a1 = c.stats('node-a'), b1 = c.stats('node-b');
    t.ok(a1.encapFast > a0.encapFast, 'A encapsulated');
    t.ok(b1.decap > b0.decap && b1.encapFast > b0.encapFast, 'B decapsulated the request and encapsulated the reply');
    c.setPool({ ipipMode: 'CrossSubnet' });
    await c.sync();
    const back = await A.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122', '192.168.2.10']);
    t.equal(back.stdout.trim(), '192.168.2.10 via 198.18.1.11 dev eth0', 'the tunnel MTU is gone again');
    const a2 = c.stats('node-a');
    t.ok(await pings(wa2.ns, wb.ip), 'wa2 → wb');
    t.equal(c.stats('node-a').encapFast, a2.encapFast, 'direct again');
  });

  t.test('Always: encapsulated TCP keeps GSO (outer packets over the MTU leave A\'s uplink) and arrives intact', async (t) => {
    c.setPool({ ipipMode: 'Always' });
    await c.sync();
    t.teardown(async () => { c.setPool({ ipipMode: 'CrossSubnet' }); await c.sync(); });
    // tcpdump on A's uplink sees each skb as it is handed to the device: a GSO packet is one
    // capture longer than the 1500-byte MTU, segmented later (by the veth's peer or a NIC).
    // Had the encapsulation lost GSO, every IPIP packet would be MTU-sized here.
    const cap = await Capture.start(A.ns, 'ip proto 4 and src host 198.18.1.10 and dst host 198.18.1.11', { direction: 'out' });
    t.teardown(() => cap.stop());
    // 16 MiB of random bytes across, compared by digest at the receiver (segmentation and the
    // checksums of a mangled GSO packet would show as a different digest or a short stream).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-gso-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const data = crypto.randomBytes(16 * 1024 * 1024);
    fs.writeFileSync(path.join(dir, 'data'), data);
    const recv = wb.ns.exec(['sh', '-c', 'socat -u TCP-LISTEN:5202,reuseaddr - | sha256sum'], { timeoutMs: 60_000 });
    await waitListening(wb.ns, 5202);
    const a0 = c.stats('node-a'), b0 = c.stats('node-b');
    await wa2.ns.exec(['socat', '-u', `FILE:${path.join(dir, 'data')}`, `TCP:${wb.ip}:5202`], { timeoutMs: 60_000 });
    t.equal((await recv).stdout.split(' ')[0], crypto.createHash('sha256').update(data).digest('hex'), 'the stream arrived intact');
    const big = () => cap.ipLengths('IPIP').filter((l) => l > 1500);
    await until(() => big().length >= 10, 5000);
    t.ok(big().length >= 10, `IPIP packets longer than the MTU on A's uplink: ${big().length} (largest ${Math.max(0, ...cap.ipLengths('IPIP'))})`);
    t.ok(cap.ipLengths('IPIP').every((l) => l <= 65535), 'none over the IPv4 limit');
    const a1 = c.stats('node-a'), b1 = c.stats('node-b');
    t.ok(a1.encapFast - a0.encapFast > 0n, 'encapsulated by the fast path');
    t.ok(b1.decapFast - b0.decapFast > 0n, 'decapsulated and redirected straight to wb\'s cali*');
  });

  t.test('a recreated uplink gets the programs again and the new ifindex', async (t) => {
    await B.ns.sh('ip link del eth0');
    await c.topo.addVeth(B.ns, 'eth0', c.router, 'pb');
    await c.router.sh('ip link set pb master br1');
    await B.ns.sh('ip addr add 198.18.1.11/24 dev eth0 && ip route add default via 198.18.1.1');
    const ifindex = await B.ns.ifindex('eth0');
    const ok = await eventually(async () => {
      const f = tcQuery({ iface: 'eth0', netns: B.ns.path, direction: 'ingress' });
      const cfg = netcfgCodec.decode(B.dp!.routing!.maps.netcfg.lookup(NETCFG_KEY)!);
      return f !== undefined && cfg.uplink_ifindex === ifindex;
    }, 5000);
    t.ok(ok, 'tc ingress attached on the new eth0 and netcfg points at it');
    const d0 = c.stats('node-b').decap;
    t.ok(await eventually(() => pings(wc.ns, wb.ip), 8000), 'wc → wb over IPIP through the new uplink (routes back after the address)');
    t.ok(c.stats('node-b').decap > d0, 'B decapsulated on the new interface');
  });

  t.test('a removed workload: its route is swept on every node', async (t) => {
    c.resources.delete('WorkloadEndpoint/ns1/wc');
    await c.sync();
    for (const n of [A, B]) {
      const r = await n.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122']);
      t.notMatch(r.stdout, /192\.168\.3\.10/, `${n.name}: route to wc gone`);
    }
    const r = await A.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122']);
    t.match(r.stdout, /192\.168\.2\.10/, 'others stay');
    void C;
  });
});
