// Differential fuzz of nat-outgoing on the uplink (src/testbed/fuzz/nat-fuzz.ts): the real programs against
// the model, a few seconds in `npm test`; `node dist/bench/datapath-fuzz.js … nat` for long runs.
//   TORTIE_NATFUZZ_SEED / TORTIE_NATFUZZ_SCENARIOS (default 10) / TORTIE_NATFUZZ_PACKETS (default 250)
import t from 'tap';
import { runNatFuzz, natFuzzHarness } from '../../src/testbed/fuzz/nat-fuzz';
import { DropReason as R, dropReasonLabel } from '../../src/dataplane/bpf/drop-reasons';

const SEED = Number(process.env.TORTIE_NATFUZZ_SEED ?? 20261206);
const SCENARIOS = Number(process.env.TORTIE_NATFUZZ_SCENARIOS ?? 10);
const PACKETS = Number(process.env.TORTIE_NATFUZZ_PACKETS ?? 250);

t.test(`uplink NAT agrees with the model on random flows, replies and ICMP errors (seed ${SEED})`, async (t) => {
  const h = await natFuzzHarness();
  t.teardown(() => h.close());
  const r = runNatFuzz(h, SEED, SCENARIOS, PACKETS);
  for (const f of r.failures.slice(0, 5)) {
    t.fail(`scenario ${f.scenario} packet ${f.packet} (${f.hook}): ${f.what}\n  BPF:   ${f.got}\n  model: ${f.want}\n  frame ${f.frame}`);
  }
  t.equal(r.failures.length, 0, `${r.packets} packets, no disagreement`);
  for (const reason of [R.FORWARD, R.NAT_ICMP, R.NAT_NO_PORT, R.BAD_TOTLEN]) {
    t.ok((r.outcomes.get(reason) ?? 0) > 0, `reached ${dropReasonLabel(reason)} (${r.outcomes.get(reason) ?? 0})`);
  }
});
