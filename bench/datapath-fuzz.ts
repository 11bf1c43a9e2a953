/**
 * Long differential fuzz runs: the real workload programs against the TypeScript model
 * (src/testbed/fuzz/wep-fuzz.ts) and the uplink's nat-outgoing against its model
 * (src/testbed/fuzz/nat-fuzz.ts), many more scenarios than `npm test` runs; `nat6` runs NAT66
 * against its model (src/testbed/fuzz/nat6-fuzz.ts) alone. Prints the packet count, the outcome
 * mix and every disagreement with its replay line; exits 1 on any.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/datapath-fuzz.js [scenarios=500] [packets=400] [seed] [wep|nat|both|dual|nat6]
 *
 * `dual`: the workload fuzz only, dual stack (IPv4 and IPv6 interleaved through one endpoint).
 */
import { WepHarness } from '../src/testbed/wep-harness';
import { runFuzz } from '../src/testbed/fuzz/wep-fuzz';
import { dropReasonLabel } from '../src/dataplane/bpf/drop-reasons';
import { runNatFuzz, natFuzzHarness } from '../src/testbed/fuzz/nat-fuzz';
import { runNat66Fuzz, nat66FuzzHarness } from '../src/testbed/fuzz/nat6-fuzz';
import { UplinkHarness } from '../src/testbed/uplink-harness';
import { Topology } from '../src/util/netns';

const SCENARIOS = Number(process.argv[2] ?? 500);
const PACKETS = Number(process.argv[3] ?? 400);
const SEED = Number(process.argv[4] ?? Date.now() % 2 ** 31);
const WHICH = process.argv[5] ?? 'both';

async function nat(): Promise<number> {
  const h = await natFuzzHarness();
  try {
    const started = Date.now();
    const r = runNatFuzz(h, SEED, SCENARIOS, PACKETS);
    process.stdout.write(`nat fuzz: seed ${SEED}, ${SCENARIOS} scenarios, ${r.packets} packets in ${((Date.now() - started) / 1000).toFixed(1)} s, ${r.failures.length} disagreement(s)\n`);
    process.stdout.write(`  outcomes: ${[...r.outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${dropReasonLabel(k)} ${v}`).join(', ')}\n`);
    for (const f of r.failures) {
      process.stdout.write(`  scenario ${f.scenario} packet ${f.packet} (${f.hook}) ${f.what}\n    BPF:   ${f.got}\n    model: ${f.want}\n    frame ${f.frame}\n`);
    }
    return r.failures.length;
  } finally {
    h.close();
  }
}

/** NAT66 against its model; the programs' node-socket lookups in an empty namespace of this run. */
async function nat6(): Promise<number> {
  const topo = Topology.create('nat6fz');
  try {
    const h = await nat66FuzzHarness((l) => UplinkHarness.create(l), (await topo.addNetns('empty')).path);
    try {
      const started = Date.now();
      const r = runNat66Fuzz(h, SEED, SCENARIOS, PACKETS);
      process.stdout.write(`nat66 fuzz: seed ${SEED}, ${SCENARIOS} scenarios, ${r.packets} packets in ${((Date.now() - started) / 1000).toFixed(1)} s, ${r.failures.length} disagreement(s)\n`);
      process.stdout.write(`  outcomes: ${[...r.outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${dropReasonLabel(k)} ${v}`).join(', ')}\n`);
      process.stdout.write(`  translated: ${[...r.hits].map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
      for (const f of r.failures) {
        process.stdout.write(`  scenario ${f.scenario} packet ${f.packet} (${f.hook}) ${f.what}\n    BPF:   ${f.got}\n    model: ${f.want}\n    frame ${f.frame}\n`);
      }
      return r.failures.length;
    } finally {
      h.close();
    }
  } finally {
    await topo.destroy();
  }
}

async function main(): Promise<void> {
  if (WHICH === 'nat6') {
    process.exitCode = (await nat6()) ? 1 : 0;
    return;
  }
  if (WHICH !== 'wep' && WHICH !== 'dual') process.exitCode = (await nat()) ? 1 : 0;
  if (WHICH === 'nat') return;
  const long = 3600;
  const h = await WepHarness.create('fuzzbench', { events: false, ctTimeouts: { synSec: long, establishedSec: long, finSec: long, rstSec: long, udpSec: long, icmpSec: long, otherSec: long } });
  try {
    const started = Date.now();
    const family = WHICH === 'dual' ? 'dual' : 4;
    const r = runFuzz(h, SEED, SCENARIOS, PACKETS, undefined, family);
    const secs = (Date.now() - started) / 1000;
    process.stdout.write(`datapath fuzz${family === 'dual' ? ' (dual stack)' : ''}: seed ${SEED}, ${SCENARIOS} scenarios, ${r.packets} packets (${r.v6} IPv6) in ${secs.toFixed(1)} s, ${r.failures.length} disagreement(s)\n`);
    process.stdout.write(`  outcomes: ${[...r.outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${dropReasonLabel(k)} ${v}`).join(', ')}\n`);
    for (const f of r.failures) {
      process.stdout.write(`  scenario ${f.scenario} packet ${f.packet} (${f.hook}) ${f.what}: BPF ${dropReasonLabel(f.bpf)}, model ${dropReasonLabel(f.model)}\n` +
        `    replay: TORTIE_FUZZ_SEED=${f.seed} TORTIE_FUZZ_FAMILY=${family} TORTIE_FUZZ_CASE=${f.scenario}:${f.packet} node node_modules/tap/dist/esm/run.mjs dist/test/datapath/16-fuzz.test.js\n    frame ${f.frame}\n`);
    }
    if (r.failures.length) process.exitCode = 1;
  } finally {
    h.close();
  }
}

void main();
