/**
 * Same-node pod-to-pod TCP throughput (iperf3, one stream) with tortie attached and 1,000
 * policies (× 5 rules) selecting the server, against the same path with no programs.
 * Rounds alternate the two configurations; prints each run and the ratio of medians.
 * Goal: ≥ 0.95×. Prints figures; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/datapath-iperf.js [seconds] [rounds]
 */
import { BenchNode, SERVER_IP, median } from './datapath-netns';

const SECONDS = Number(process.argv[2] ?? 5);
const ROUNDS = Number(process.argv[3] ?? 3);

async function iperf(node: BenchNode): Promise<number> {
  const r = await node.client.ns.exec(['iperf3', '-c', SERVER_IP, '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 20) * 1000 });
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

async function main(): Promise<void> {
  const node = await BenchNode.create('bench-iperf');
  try {
    node.server.ns.spawn(['iperf3', '-s']);
    await new Promise((r) => setTimeout(r, 500));
    const base: number[] = [], tortie: number[] = [];
    let setup = { ms: 0, cells: 0, compileMs: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      await node.tortieOff();
      base.push(await iperf(node));
      setup = await node.tortieOn(1000, 5, [5201]);
      tortie.push(await iperf(node));
      console.log(`round ${i + 1}: no programs ${base[i].toFixed(2)} Gbit/s, tortie + 1,000 policies ${tortie[i].toFixed(2)} Gbit/s`);
    }
    console.log(`tortie setup: load + apply + attach ${setup.ms} ms (compile of 1,000 policies × 5 rules, first time: see bench/compile-bench); server ingress table ${setup.cells} cells`);
    const b = median(base), t = median(tortie);
    console.log(`iperf3 same-node pod-to-pod, ${SECONDS} s × ${ROUNDS}: baseline ${b.toFixed(2)} Gbit/s, tortie ${t.toFixed(2)} Gbit/s, ratio ${(t / b).toFixed(3)}× (goal ≥ 0.95×)`);
  } finally {
    await node.destroy();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
