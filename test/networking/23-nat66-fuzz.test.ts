// Differential fuzz of NAT66 on the uplink (src/testbed/fuzz/nat6-fuzz.ts): the real programs against
// the model — flows, replies, fragments both ways, ICMPv6 errors both ways, malformed frames — a few
// seconds in `npm test`.
//   TORTIE_NAT6FUZZ_SEED / TORTIE_NAT6FUZZ_SCENARIOS (default 10) / TORTIE_NAT6FUZZ_PACKETS (default 250)
import t from 'tap';
import { runNat66Fuzz, nat66FuzzHarness } from '../../src/testbed/fuzz/nat6-fuzz';
import { UplinkHarness } from '../../src/testbed/uplink-harness';
import { Topology } from '../../src/util/netns';
import { DropReason as R, dropReasonLabel } from '../../src/dataplane/bpf/drop-reasons';

const SEED = Number(process.env.TORTIE_NAT6FUZZ_SEED ?? 20261207);
const SCENARIOS = Number(process.env.TORTIE_NAT6FUZZ_SCENARIOS ?? 10);
const PACKETS = Number(process.env.TORTIE_NAT6FUZZ_PACKETS ?? 250);

t.test(`NAT66 agrees with the model on random flows, replies, fragments and ICMPv6 errors (seed ${SEED})`, async (t) => {
  // The programs' node-socket lookups run in an empty namespace of this test, not the machine's.
  const topo = Topology.create('nat66z');
  t.teardown(() => topo.destroy());
  const h = await nat66FuzzHarness((l) => UplinkHarness.create(l), (await topo.addNetns('empty')).path);
  t.teardown(() => h.close());
  const r = runNat66Fuzz(h, SEED, SCENARIOS, PACKETS);
  for (const f of r.failures.slice(0, 5)) {
    t.fail(`scenario ${f.scenario} packet ${f.packet} (${f.hook}): ${f.what}\n  BPF:   ${f.got}\n  model: ${f.want}\n  frame ${f.frame}`);
  }
  t.equal(r.failures.length, 0, `${r.packets} packets, no disagreement`);
  for (const reason of [R.FORWARD, R.NAT6_ICMP, R.NAT6_FRAG, R.NAT_NO_PORT, R.BAD_TOTLEN, R.FRAG_TINY]) {
    t.ok((r.outcomes.get(reason) ?? 0) > 0, `reached ${dropReasonLabel(reason)} (${r.outcomes.get(reason) ?? 0})`);
  }
  for (const what of ['out', 'reply in', 'own port kept', 'first fragment out', 'later fragment out', 'first fragment in', 'later fragment in', 'error out', 'error in']) {
    t.ok((r.hits.get(what) ?? 0) > 0, `translated: ${what} (${r.hits.get(what) ?? 0})`);
  }
});
