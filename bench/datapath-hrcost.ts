/**
 * Per-packet cost of a whole connection on the BPF host-routed path (bpf/lib/host_route.h,
 * host_route6.h), with BPF_PROG_TEST_RUN: every packet of a short TCP connection (SYN, SYN-ACK,
 * ACK, request, response, FIN-ACK, FIN-ACK, ACK, as wrk against nginx with `Connection: close`)
 * (the SYN and SYN-ACK with Linux's options) run through tortie_from_wep of its sender's cali*, which judges it at the source's point, finds
 * the destination workload by its address, rewrites it and judges it at the destination's point
 * (every packet must come back TC_ACT_REDIRECT: the peer redirect), in a namespace of this run's
 * own (a SingleNode with two dual-stack workloads, 1,000 policies × 5 rules selecting the server).
 * A new source port for every connection, so the SYN takes the new-flow path at both points
 * (conntrack create, quota, both policies). Also a 64-byte UDP datagram of an established flow
 * (the packet-rate figure's), in runs of 250 repeats (each repeat forwards the test run's same
 * skb again: it starts at TTL / hop limit 255), alternated between builds, median of the runs;
 * the established TCP request the same way (warm caches, unlike the connection's single runs).
 *
 * Builds of the workload object are compared in the same run, alternated connection by
 * connection: TORTIE_BENCH_OBJECTS="main=/dir,new=/dir" (each a directory holding
 * tortie_wep.bpf.o); default: bpf/out. Single test runs pay the test run's own fixed cost, the
 * same for every build: compare builds by their difference or ratio, not by absolute figures.
 * Prints medians per packet kind and per connection; asserts nothing.
 *
 *   node dist/bench/datapath-hrcost.js [connections] [udp runs]
 * TORTIE_BENCH_FAMILY=6 (or 4): only that family (default both).
 * TORTIE_BENCH_PORTS=<n>: the connections cycle through n source ports (default 60,000: every
 * connection a new tuple); with n below the connection count, a SYN finds the closed entry of an
 * earlier connection of the same tuple (as wrk's ports come round within a run, and in every run
 * after the first when no agent sweeps conntrack) and reopens it.
 */
import * as os from 'node:os';
import { SingleNode, type Workload } from '../src/testbed';
import { uniquePinRoot, removePinRoot } from '../src/testbed/wep-harness';
import { loadWep, mapOps, type WepDatapath } from '../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../src/dataplane/bpf/policy-sync';
import { CalcGraph } from '../src/calc';
import { ETH_P, eth, eth6, flowPacket, ipv4, tcp } from '../src/dataplane/bpf/packet';
import { TcAction } from '../src/dataplane/native';
import { ns, policySet, wep } from './datapath-policies';
import { median } from './lib/stats';
import { objectVariants, type ObjectVariant } from './lib/objects';

const CONNS = Number(process.argv[2] ?? 2000);
const UDP_ROUNDS = Number(process.argv[3] ?? 201);
/** Repeats of one test run: each forwards the same skb again, one hop less each time (TTL 255). */
const UDP_REPEAT = 250;
const FAMILIES = process.env.TORTIE_BENCH_FAMILY ? [Number(process.env.TORTIE_BENCH_FAMILY)] : [4, 6];
const IP = { server: ['192.168.30.1', 'fd00:30::1'], client: ['192.168.30.2', 'fd00:30::2'] } as const;
const HTTP = 80, UDP_PORT = 5201;
const PORTS = Number(process.env.TORTIE_BENCH_PORTS ?? 60000);
if (!Number.isInteger(PORTS) || PORTS < 1 || PORTS > 60000) throw new Error(`TORTIE_BENCH_PORTS must be 1..60000, got "${process.env.TORTIE_BENCH_PORTS}"`);

const variants = (): ObjectVariant[] => objectVariants('tortie_wep.bpf.o');

/** A struct __sk_buff (192 bytes; only ifindex, at offset 40, set): the test run's device. */
function skbCtx(ifindex: number): Buffer {
  const b = Buffer.alloc(192);
  b.writeUInt32LE(ifindex, 40);
  return b;
}

const STEPS = ['SYN', 'SYN-ACK', 'ACK', 'request', 'response', 'FIN server', 'FIN client', 'last ACK'] as const;

/** A SYN or SYN-ACK as Linux sends it: MSS, SACK permitted, timestamps, NOP, window scale 7. */
function synPacket(src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number): Buffer {
  const l4 = tcp({ sport, dport, flags, seq, ack, doff: 10 });
  Buffer.from([2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0x10, 0, 0, 0, 0, 0, 1, 3, 3, 7]).copy(l4, 20);
  return src.includes(':') ? eth6({ src, dst, proto: 6 }, l4) : eth({ ethertype: ETH_P.IPV4 }, ipv4({ src, dst, proto: 6 }, l4));
}

/** One connection's packets, each with the side that sends it. */
function connection(fam: 4 | 6, sport: number): { from: 'client' | 'server'; pkt: Buffer }[] {
  const c = IP.client[fam === 4 ? 0 : 1], s = IP.server[fam === 4 ? 0 : 1];
  const cs = (flags: string, seq: number, ack: number, payload?: Buffer) =>
    ({ from: 'client' as const, pkt: flowPacket({ src: c, dst: s, proto: 6, sport, dport: HTTP, flags, seq, ack, payload }) });
  const sc = (flags: string, seq: number, ack: number, payload?: Buffer) =>
    ({ from: 'server' as const, pkt: flowPacket({ src: s, dst: c, proto: 6, sport: HTTP, dport: sport, flags, seq, ack, payload }) });
  return [
    { from: 'client', pkt: synPacket(c, s, sport, HTTP, 'S', 1000, 0) }, { from: 'server', pkt: synPacket(s, c, HTTP, sport, 'SA', 5000, 1001) }, cs('A', 1001, 5001), cs('PA', 1001, 5001, Buffer.alloc(80)),
    sc('PA', 5001, 1081, Buffer.alloc(200)), sc('FA', 5201, 1081), cs('FA', 1081, 5202), sc('A', 5202, 1082),
  ];
}

async function main(): Promise<void> {
  const vs = variants();
  const topo = await SingleNode.create('bench-hrc', { ipv6: true });
  const pins: string[] = [];
  const dps: WepDatapath[] = [];
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { for (const d of dps) d.close(); for (const p of pins) removePinRoot(p); topo.destroySync(); process.exit(sig === 'SIGINT' ? 130 : 143); });
  }
  try {
    const w: Record<'server' | 'client', Workload> = {
      server: await topo.addWorkload('server', IP.server[0], { ip6: IP.server[1] }),
      client: await topo.addWorkload('client', IP.client[0], { ip6: IP.client[1] }),
    };
    const mac = async (x: Workload) => (await x.ns.exec(['cat', '/sys/class/net/eth0/address'])).stdout.trim();
    const resources = [ns('bench'),
      wep('server', IP.server[0], 'server', w.server.hostIf, IP.server[1], await mac(w.server)),
      wep('client', IP.client[0], 'client', w.client.hostIf, IP.client[1], await mac(w.client)),
      ...policySet(1000, 5, [HTTP], [UDP_PORT])];
    for (const v of vs) {
      const pinRoot = uniquePinRoot('hrc');
      pins.push(pinRoot);
      const dp = await loadWep({ pinRoot, events: false, ctMaxEntries: 262144, hostRouting: 'auto', objectDir: v.dir });
      dps.push(dp);
      if (!dp.hostRouting.active) throw new Error(`host routing is not active for ${v.name}: ${dp.hostRouting.reason}`);
      // Test runs need no attachment: the maps only (programWorkloads' steps without tcAttach).
      const byIface = new Map([w.server, w.client].map((x) => [x.hostIf, x.ifindex]));
      const pd = new PolicyDataplane({ ...dp.policyMaps, cls4: mapOps(dp.maps.cls4!), cls6: mapOps(dp.maps.cls6!) }, (e) => byIface.get(e.interfaceName ?? ''));
      const graph = new CalcGraph({ nodeName: 'node1' });
      for (const r of resources) graph.onUpdate(r);
      graph.flush();
      pd.applySnapshot(graph.snapshot());
    }
    const ctx = { client: skbCtx(w.client.ifindex), server: skbCtx(w.server.ifindex) };
    const run = (dp: WepDatapath, from: 'client' | 'server', pkt: Buffer, repeat = 1): number => {
      const r = dp.fromWep.testRun(pkt, { repeat, ctx: ctx[from], ctxOutSize: 256, netns: topo.node.path });
      if (r.retval !== TcAction.REDIRECT) throw new Error(`tortie_from_wep of the ${from} returned ${r.retval}, not TC_ACT_REDIRECT (the peer redirect)`);
      return r.durationNs;
    };
    console.log(`tortie host-routed connection cost (BPF_PROG_TEST_RUN single runs, ${CONNS} connections per build over ${PORTS} source ports, alternated; ` +
      `1,000 policies × 5 rules); load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    for (const fam of FAMILIES as (4 | 6)[]) {
      const t = vs.map(() => STEPS.map(() => [] as number[]));
      const total = vs.map(() => [] as number[]);
      for (let i = 0; i < CONNS; i++) {
        for (let k = 0; k < vs.length; k++) {
          // Same ports for every build: each has its own conntrack map.
          const conn = connection(fam, 1024 + (i % PORTS));
          let sum = 0;
          conn.forEach((p, j) => { const d = run(dps[k]!, p.from, p.pkt); t[k]![j]!.push(d); sum += d; });
          total[k]!.push(sum);
        }
      }
      // UDP: one flow established by its first datagram, then runs of repeats, alternated.
      const c = IP.client[fam === 4 ? 0 : 1], s = IP.server[fam === 4 ? 0 : 1];
      const udp = flowPacket({ src: c, dst: s, proto: 17, sport: 40000, dport: UDP_PORT, payload: Buffer.alloc(fam === 4 ? 18 : 0), ip: { ttl: 255 } });
      if (fam === 6) udp[14 + 7] = 255; // the hop limit (in no checksum)
      const udpRuns = vs.map(() => [] as number[]);
      // The established TCP request the same way (a connection opened for it; its request repeated).
      const est = connection(fam, 65100);
      const req = flowPacket({ src: c, dst: s, proto: 6, sport: 65100, dport: HTTP, flags: 'PA', seq: 1001, ack: 5001, payload: Buffer.alloc(80), ip: { ttl: 255 } });
      if (fam === 6) req[14 + 7] = 255;
      const tcpRuns = vs.map(() => [] as number[]);
      for (const dp of dps) { run(dp, 'client', udp); est.slice(0, 3).forEach((p) => run(dp, p.from, p.pkt)); }
      for (let r = 0; r < UDP_ROUNDS; r++) {
        vs.forEach((_, k) => udpRuns[k]!.push(run(dps[k]!, 'client', udp, UDP_REPEAT)));
        vs.forEach((_, k) => tcpRuns[k]!.push(run(dps[k]!, 'client', req, UDP_REPEAT)));
      }
      for (let k = 0; k < vs.length; k++) {
        console.log(`IPv${fam} ${vs[k]!.name}: per connection ${median(total[k]!).toFixed(0)} ns (median of sums); ` +
          STEPS.map((s, j) => `${s} ${median(t[k]![j]!).toFixed(0)}`).join(', ') +
          `; repeated (${UDP_ROUNDS} runs × ${UDP_REPEAT}): UDP 64 B established ${median(udpRuns[k]!).toFixed(0)} ns/pkt, TCP request ${median(tcpRuns[k]!).toFixed(0)} ns/pkt`);
      }
      if (vs.length > 1) {
        const base = 0;
        for (let k = 1; k < vs.length; k++) {
          const ratio = (a: number[], b: number[]) => (median(a) / median(b)).toFixed(3);
          console.log(`IPv${fam} ${vs[k]!.name}/${vs[base]!.name}: connection ${ratio(total[k]!, total[base]!)}×, SYN ${ratio(t[k]![0]!, t[base]![0]!)}×, ` +
            `request ${ratio(t[k]![3]!, t[base]![3]!)}×, UDP ${ratio(udpRuns[k]!, udpRuns[base]!)}×, TCP request repeated ${ratio(tcpRuns[k]!, tcpRuns[base]!)}×`);
        }
      }
    }
    console.log(`load average at end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    for (const d of dps) d.close();
    for (const p of pins) removePinRoot(p);
    await topo.destroy();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
