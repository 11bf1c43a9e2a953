/**
 * BPF host routing (bpf/lib/host_route.h) against the kernel path and bare veths, same node:
 * iperf3 TCP 1 and 4 streams, UDP 64-byte packet rate, sockperf UDP ping-pong p50/p99, new
 * connections/s (wrk, Connection: close, nginx). tortie runs with 1,000 policies × 5 rules
 * selecting the server. Each round measures every figure under the three configurations in a
 * rotated order (bare → off → on, off → on → bare, …), seconds apart; prints each round and the
 * median of per-round ratios to bare. Prints figures; asserts nothing.
 *
 *   node dist/bench/datapath-hostrouting.js [seconds] [rounds]
 * TORTIE_BENCH_FAMILY=6: the same between the workloads' IPv6 addresses (bpf/lib/host_route6.h),
 * without the ping-pong figures (this sockperf has no IPv6).
 */
import * as os from 'node:os';
import { BenchNode, SERVER_IP, SERVER_IP6 } from './datapath-netns';
import { median } from './lib/stats';
import { iperfTcp, iperfUdp, sockperfPingPong, wrkConnRate, startServers, waitServers, PORTS } from './lib/tools';

const SECONDS = Number(process.argv[2] ?? 3);
const ROUNDS = Number(process.argv[3] ?? 3);
const V6 = process.env.TORTIE_BENCH_FAMILY === '6';
const IP = V6 ? SERVER_IP6 : SERVER_IP;
const CONFIGS = ['bare', 'off', 'on'] as const;
type Config = typeof CONFIGS[number];
const FIGURES = ['tcp1 Gbit/s', 'tcp4 Gbit/s', 'udp64 kpps', 'pingpong p50 µs', 'pingpong p99 µs', 'conn/s'] as const;
type Figure = typeof FIGURES[number];
const SHOWN: readonly Figure[] = V6 ? FIGURES.filter((f) => !f.startsWith('pingpong')) : FIGURES;

async function measure(node: BenchNode): Promise<Record<Figure, number>> {
  const c = node.client.ns;
  const t1 = await iperfTcp(c, IP, SECONDS, 1);
  const t4 = await iperfTcp(c, IP, SECONDS, 4);
  const u = await iperfUdp(c, IP, SECONDS);
  const s = V6 ? undefined : await sockperfPingPong(c, IP, SECONDS);
  const w = await wrkConnRate(c, IP, SECONDS);
  return {
    'tcp1 Gbit/s': t1.bitsPerSecond / 1e9, 'tcp4 Gbit/s': t4.bitsPerSecond / 1e9, 'udp64 kpps': u.packetsPerSecond / 1e3,
    'pingpong p50 µs': s?.summary.p50 ?? NaN, 'pingpong p99 µs': s?.summary.p99 ?? NaN, 'conn/s': w.requestsPerSecond,
  };
}

async function main(): Promise<void> {
  const node = await BenchNode.create('bench-hr', { v6: V6 });
  let stopServers: (() => void) | undefined;
  // Ctrl-C / SIGTERM: the namespaces go with the netns harness, the pin root with tortieOff.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { stopServers?.(); void node.destroy().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143)); });
  }
  try {
    await node.client.ns.sh('sysctl -qw net.ipv4.tcp_tw_reuse=1 && sysctl -qw net.ipv4.ip_local_port_range="1024 65000"');
    stopServers = await startServers(node.server.ns, IP);
    await node.tortieOn(1000, 5, [PORTS.iperf, PORTS.http], { hostRouting: true, udpPorts: [PORTS.iperf, PORTS.sockperf] });
    node.detach();
    await waitServers(node.server.ns, IP);
    console.log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const res = Object.fromEntries(CONFIGS.map((k) => [k, [] as Record<Figure, number>[]])) as Record<Config, Record<Figure, number>[]>;
    for (let i = 0; i < ROUNDS; i++) {
      const order = CONFIGS.map((_, j) => CONFIGS[(i + j) % CONFIGS.length]!);
      for (const cfg of order) {
        if (cfg === 'bare') node.detach();
        else node.attach(cfg === 'on');
        const m = await measure(node);
        res[cfg].push(m);
        console.log(`round ${i + 1} ${cfg.padEnd(4)} ${SHOWN.map((f) => `${f} ${m[f].toFixed(f.includes('Gbit') ? 2 : 1)}`).join(', ')}`);
      }
    }
    console.log(`load average at end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`${V6 ? 'IPv6: ' : ''}medians of per-round ratios to bare (${SECONDS} s × ${ROUNDS} rounds; latency: lower is better):`);
    for (const f of SHOWN) {
      const r = (cfg: Config) => median(res[cfg].map((m, i) => m[f] / res.bare[i]![f]));
      const raw = (cfg: Config) => median(res[cfg].map((m) => m[f]));
      console.log(`  ${f.padEnd(16)} bare ${raw('bare').toFixed(2)}  off ${r('off').toFixed(3)}×  host routing ${r('on').toFixed(3)}×  (on/off ${median(res.on.map((m, i) => m[f] / res.off[i]![f])).toFixed(3)}×)`);
    }
  } finally {
    stopServers?.();
    await node.destroy();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
