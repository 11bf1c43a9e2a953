/**
 * Where the datapath's time goes on real traffic: the kernel's own per-program statistics
 * (`kernel.bpf_stats_enabled`: run count and run time of each program) of the benchmark node's
 * `tortie_from_wep` and `tortie_to_wep` during an iperf3 UDP 64-byte run, a wrk
 * `Connection: close` run, an iperf3 TCP 1-stream run (its data segments are TCP's clones: a
 * head copy there, e.g. by an unclone prologue, would show in their per-run time) and a UDP
 * ping-pong run (sockperf; IPv6: bench/tools/udp-pingpong.c), whose program runs per round trip
 * say whether every echo took the peer redirect (2 of tortie_from_wep, 0 of tortie_to_wep)
 * (1,000 policies × 5 rules selecting the server, BPF host routing on, so
 * one `tortie_from_wep` run is the source's point, the fib lookup, the rewrite and the
 * destination's point). Several builds of the workload object can be compared on the same
 * topology, interleaved with bare veths each round: TORTIE_BENCH_OBJECTS="old=/dir,new=/dir" (each
 * a directory holding tortie_wep.bpf.o, e.g. built from another commit); default: bpf/out.
 * Prints per round the rates and ns per program run, then medians. Asserts nothing.
 *
 * bpf_stats is a global switch (every program on the machine is timed while it is on): it is on
 * only during the measured runs and set back to its previous value afterwards, also on Ctrl-C.
 * The rates of a shared machine are noisy; the per-run times much less so.
 *
 *   node dist/bench/datapath-runtime.js [seconds] [rounds]
 * TORTIE_BENCH_FAMILY=6: the same between the workloads' IPv6 addresses.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { BenchNode, SERVER_IP, SERVER_IP6 } from './datapath-netns';
import { median } from './lib/stats';
import { iperfTcp, iperfUdp, wrkConnRate, sockperfPingPong, udpPingPong, startServers, waitServers, PORTS } from './lib/tools';
import { objectVariants, type ObjectVariant } from './lib/objects';

const SECONDS = Number(process.argv[2] ?? 2);
const ROUNDS = Number(process.argv[3] ?? 3);
const V6 = process.env.TORTIE_BENCH_FAMILY === '6';
const IP = V6 ? SERVER_IP6 : SERVER_IP;
const STATS = '/proc/sys/kernel/bpf_stats_enabled';

const variants = (): ObjectVariant[] => objectVariants('tortie_wep.bpf.o');

interface Info { runCount: number; runTimeNs: number }
const perRun = (a: Info, b: Info): number => (b.runCount > a.runCount ? (b.runTimeNs - a.runTimeNs) / (b.runCount - a.runCount) : NaN);

async function main(): Promise<void> {
  const vs = variants();
  const before = fs.readFileSync(STATS, 'utf8').trim();
  const restore = (): void => { try { fs.writeFileSync(STATS, before); } catch { /* best effort */ } };
  const node = await BenchNode.create('bench-rt', { v6: V6 });
  let stopServers: (() => void) | undefined;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { restore(); stopServers?.(); void node.destroy().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143)); });
  }
  try {
    await node.client.ns.sh('sysctl -qw net.ipv4.tcp_tw_reuse=1 && sysctl -qw net.ipv4.ip_local_port_range="1024 65000"');
    stopServers = await startServers(node.server.ns, IP);
    await waitServers(node.server.ns, IP);
    console.log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    type Row = { udp: number; conn: number; tcp: number; p50: number; udpFrom?: number; udpTo?: number; connFrom?: number; connTo?: number; tcpFrom?: number;
      ppFrom?: number; ppFromRuns?: number; ppToRuns?: number };
    const res = new Map<string, Row[]>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of [{ name: 'bare' }, ...vs] as { name: string; dir?: string }[]) {
        if (v.name === 'bare') node.detach();
        else {
          await node.tortieOn(1000, 5, [PORTS.iperf, PORTS.http], { hostRouting: true, udpPorts: [PORTS.iperf, PORTS.sockperf], objectDir: v.dir });
          node.attach(true);
        }
        const p = node.programs();
        const snap = (): Info[] | undefined => p && [p.fromWep.info(), p.toWep.info()];
        if (p) fs.writeFileSync(STATS, '1');
        let u, w, c, pp, s0, s1, s2, s3, s4;
        try {
          s0 = snap();
          u = await iperfUdp(node.client.ns, IP, SECONDS);
          s1 = snap();
          w = await wrkConnRate(node.client.ns, IP, SECONDS);
          s2 = snap();
          c = await iperfTcp(node.client.ns, IP, SECONDS, 1);
          s3 = snap();
          pp = V6 ? await udpPingPong(node.client.ns, IP, SECONDS) : await sockperfPingPong(node.client.ns, IP, SECONDS);
          s4 = snap();
        } finally { restore(); }
        const row: Row = { udp: u.packetsPerSecond / 1e3, conn: w.requestsPerSecond, tcp: c.bitsPerSecond / 1e9, p50: pp.summary.p50 };
        if (s0 && s1 && s2 && s3 && s4) {
          row.udpFrom = perRun(s0[0]!, s1[0]!); row.udpTo = perRun(s0[1]!, s1[1]!);
          row.connFrom = perRun(s1[0]!, s2[0]!); row.connTo = perRun(s1[1]!, s2[1]!);
          row.tcpFrom = perRun(s2[0]!, s3[0]!);
          // Round trips: sockperf's observations are its measured ones (it runs a little longer), the
          // ping-pong's every echo after its warm-up: runs per round trip are approximate (± a few %).
          row.ppFrom = perRun(s3[0]!, s4[0]!);
          row.ppFromRuns = (s4[0]!.runCount - s3[0]!.runCount) / pp.summary.observations;
          row.ppToRuns = (s4[1]!.runCount - s3[1]!.runCount) / pp.summary.observations;
        }
        res.set(v.name, [...(res.get(v.name) ?? []), row]);
        const ns = (x?: number): string => (x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(0)} ns`);
        console.log(`round ${r + 1} ${v.name}: UDP 64 B ${row.udp.toFixed(0)} kpps, ${row.conn.toFixed(0)} conn/s, TCP ${row.tcp.toFixed(1)} Gbit/s` +
          (p ? `; per run during UDP: tortie_from_wep ${ns(row.udpFrom)}, tortie_to_wep ${ns(row.udpTo)}; during wrk: ${ns(row.connFrom)}, ${ns(row.connTo)}` +
            `; during TCP: tortie_from_wep ${ns(row.tcpFrom)}` +
            `; during ping-pong (p50 ${row.p50.toFixed(2)} µs): tortie_from_wep ${ns(row.ppFrom)}, runs per round trip ${row.ppFromRuns?.toFixed(2)} / tortie_to_wep ${row.ppToRuns?.toFixed(2)}` : `, ping-pong p50 ${row.p50.toFixed(2)} µs`));
      }
    }
    const bare = res.get('bare')!;
    for (const v of vs) {
      const rows = res.get(v.name)!;
      const ratio = (k: 'udp' | 'conn' | 'tcp' | 'p50'): string => median(rows.map((x, i) => x[k] / bare[i]![k])).toFixed(3);
      const med = (k: 'udpFrom' | 'connFrom' | 'tcpFrom' | 'ppFrom'): string => median(rows.map((x) => x[k] ?? NaN)).toFixed(0);
      console.log(`${v.name}: tortie_from_wep per run (median) UDP ${med('udpFrom')} ns, wrk ${med('connFrom')} ns, TCP ${med('tcpFrom')} ns, ping-pong ${med('ppFrom')} ns; ` +
        `/bare (median of per-round ratios): UDP pps ${ratio('udp')}, conn/s ${ratio('conn')}, TCP ${ratio('tcp')}, ping-pong p50 ${ratio('p50')}`);
    }
    console.log(`load average at end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    restore();
    stopServers?.();
    await node.destroy();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
