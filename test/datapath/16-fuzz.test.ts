// Differential fuzz of parsing + fragments + conntrack + ICMP errors + policy in the real
// workload programs against the TypeScript model (src/testbed/fuzz/wep-fuzz.ts). Bounded for `npm test`
// (a few seconds); longer runs: `node dist/bench/datapath-fuzz.js [scenarios] [packets] [seed]`.
//
//   TORTIE_FUZZ_SEED=<n>        base seed (default 20261206)
//   TORTIE_FUZZ_SCENARIOS=<n>   scenarios, each with fresh policy and state (default 12)
//   TORTIE_FUZZ_PACKETS=<n>     packets per scenario (default 250)
//   TORTIE_FUZZ_DUAL=<n>        dual-stack scenarios (default 30): IPv4 and IPv6 traffic interleaved
//                               through an endpoint with addresses of both families
//   TORTIE_FUZZ_FAMILY=4|dual   only that family's run
//   TORTIE_FUZZ_CASE=<s>[:<p>]  replay scenario s (up to packet p)
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { runFuzz } from '../../src/testbed/fuzz/wep-fuzz';
import { DropReason as R, dropReasonLabel } from '../../src/dataplane/bpf/drop-reasons';

const SEED = Number(process.env.TORTIE_FUZZ_SEED ?? 20261206);
const SCENARIOS = Number(process.env.TORTIE_FUZZ_SCENARIOS ?? 12);
const PACKETS = Number(process.env.TORTIE_FUZZ_PACKETS ?? 250);
const DUAL = Number(process.env.TORTIE_FUZZ_DUAL ?? 30);
const ONLY = process.env.TORTIE_FUZZ_CASE?.split(':').map(Number) as [number, number?] | undefined;
const FAMILIES = ([4, 'dual'] as const).filter((f) => (process.env.TORTIE_FUZZ_FAMILY ?? String(f)) === String(f));

for (const fam of FAMILIES) t.test(`${fam === 4 ? 'IPv4' : 'dual stack'}: real programs agree with the model on random and mutated packets (seed ${SEED})`, async (t) => {
  const h = await WepHarness.create('fuzz', { events: false, ctTimeouts: { synSec: 3600, establishedSec: 3600, finSec: 3600, rstSec: 3600, udpSec: 3600, icmpSec: 3600, otherSec: 3600 } });
  t.teardown(() => h.close());
  const r = runFuzz(h, SEED, fam === 4 ? SCENARIOS : DUAL, PACKETS, ONLY, fam);
  for (const f of r.failures.slice(0, 5)) {
    t.fail(`scenario ${f.scenario} packet ${f.packet} (${f.hook}): ${f.what}: BPF ${dropReasonLabel(f.bpf)}, model ${dropReasonLabel(f.model)}` +
      `\n  replay: TORTIE_FUZZ_SEED=${f.seed} TORTIE_FUZZ_FAMILY=${fam} TORTIE_FUZZ_CASE=${f.scenario}:${f.packet}\n  frame ${f.frame}`);
  }
  t.equal(r.failures.length, 0, `${r.packets} packets (${r.v6} IPv6), no disagreement`);
  if (ONLY) return;
  // The generator must reach the behaviours it is for, or agreement means little.
  const reasons: number[] = [R.FORWARD, R.POLICY_DENY, R.TCP_BAD_FLAGS, R.FRAG_UNKNOWN, R.SPOOFED_SRC, R.BAD_TOTLEN, R.IP_SRCROUTE];
  if (fam === 'dual') {
    reasons.push(R.IP6_SRCROUTE, R.IP6_EXT_CHAIN, R.IP6_BAD_EXT, R.ICMP6_ROUTER, R.CT_INVALID);
    t.ok(r.v6 >= r.packets * 0.3, `IPv6 frames well represented (${r.v6} of ${r.packets})`);
  }
  for (const reason of reasons) {
    t.ok((r.outcomes.get(reason) ?? 0) > 0, `reached ${dropReasonLabel(reason)} (${r.outcomes.get(reason) ?? 0})`);
  }
});
