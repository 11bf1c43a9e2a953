/**
 * Same-node pod-to-pod TCP throughput (iperf3, one stream by default) with tortie attached and 1,000
 * policies (× 5 rules) selecting the server, against the same path with no programs.
 * Programs are loaded once and detached/attached within each round; prints each run and the
 * median of per-round ratios.
 * Goal: ≥ 0.95×. Prints figures; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/datapath-iperf.js [seconds] [rounds] [streams]
 * TORTIE_BENCH_FAMILY=6: the same over IPv6 (dual-stack workloads, ULA), as a ratio to the bare IPv6 path.
 */
import { BenchNode, SERVER_IP, SERVER_IP6, median } from './datapath-netns';

const SECONDS = Number(process.argv[2] ?? 5);
const ROUNDS = Number(process.argv[3] ?? 7);
const STREAMS = Number(process.argv[4] ?? 1);
const V6 = process.env.TORTIE_BENCH_FAMILY === '6';

async function iperf(node: BenchNode): Promise<number> {
  const r = await node.client.ns.exec(['iperf3', '-c', V6 ? SERVER_IP6 : SERVER_IP, '-t', String(SECONDS), '-P', String(STREAMS), '-J'], { timeoutMs: (SECONDS + 20) * 1000 });
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

async function main(): Promise<void> {
  const node = await BenchNode.create('bench-iperf', { v6: V6 });
  try {
    node.server.ns.spawn(['iperf3', '-s']);
    await new Promise((r) => setTimeout(r, 500));
    // Load once; each round measures with the programs detached, then attached, seconds apart
    // (the machine is shared and its load drifts more than the effect measured).
    const setup = await node.tortieOn(1000, 5, [5201]);
    const base: number[] = [], tortie: number[] = [], ratios: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      node.detach();
      base.push(await iperf(node));
      node.attach();
      tortie.push(await iperf(node));
      ratios.push(tortie[i] / base[i]);
      console.log(`round ${i + 1}: no programs ${base[i].toFixed(2)} Gbit/s, tortie + 1,000 policies ${tortie[i].toFixed(2)} Gbit/s`);
    }
    console.log(`tortie setup: load + apply + attach ${setup.ms} ms (compile excluded: see bench/compile-bench); server ingress table ${setup.cells} cells`);
    const b = median(base), t = median(tortie);
    console.log(`iperf3 same-node pod-to-pod${V6 ? ' (IPv6)' : ''}, ${SECONDS} s × ${ROUNDS}: baseline ${b.toFixed(2)} Gbit/s, tortie ${t.toFixed(2)} Gbit/s (medians); ` +
      `median per-round ratio ${median(ratios).toFixed(3)}× (goal ≥ 0.95×)`);
  } finally {
    await node.destroy();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
