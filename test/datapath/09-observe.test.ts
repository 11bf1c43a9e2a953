// Agent-side observability over the real maps: drop statistics by reason label, conntrack
// occupancy from the sweeper, flow events carrying the compiler's rule info; in IPv4 and IPv6
// (the family's conntrack table) from one body.
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { until } from '../../src/testbed/probes';
import { buildTable, denyAll } from '../../src/testbed/tables';
import { PROTO } from '../../src/dataplane/bpf/packet';
import { FAMILIES } from '../../src/testbed/family';
import { ConntrackSweeper, FlowEventStream, datapathStats, type FlowLogRecord } from '../../src/dataplane/bpf/observe';

for (const F of FAMILIES) t.test(`${F.label}: stats, occupancy and flow events`, async (t) => {
  const h = await WepHarness.create(`observe${F.v}`, { ctMaxEntries: 4096 });
  const [EP, PEER, SPOOF] = [F.EP, F.PEER, F.EP2];
  const ct = F.v === 4 ? h.dp.maps.ct4! : h.dp.maps.ct6!;
  t.teardown(() => h.close());
  const egress = buildTable({ id: 'e000000000000009', direction: 'egress', protocols: [PROTO.TCP],
    rules: [{ proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 31 }], defaultRule: 32 });
  h.setEndpoint([F.host(EP)], denyAll('i000000000000009', 'ingress', 33), egress);
  const got: FlowLogRecord[] = [];
  const stream = new FlowEventStream(h.dp.maps.events!, (e) => got.push(e));
  t.teardown(() => stream.close());
  stream.setRules([{ id: 32, kind: 'end-of-tier', direction: 'egress', tier: 'default', action: 'Deny' }]);

  for (let i = 0; i < 3; i++) h.run('from', F.flow({ src: EP, dst: PEER, proto: PROTO.TCP, sport: 1000 + i, dport: 80 }));
  h.run('from', F.flow({ src: EP, dst: PEER, proto: PROTO.TCP, sport: 2000, dport: 81 }));
  h.run('from', F.flow({ src: SPOOF, dst: PEER, proto: PROTO.TCP, sport: 2001, dport: 80 }));

  const st = datapathStats(h.dp.maps.cnt!, [ct, h.dp.maps.pol!], h.dp.maps);
  t.equal(st.forwarded, 3);
  t.same(st.drops, { policy_deny: 1, spoofed_src: 1 });
  t.same(st.mapEntries[ct.name], { entries: 3, capacity: 4096 }, `${ct.name}: the three flows`);
  t.ok(st.mapEntries.tortie_pol_v1.entries > 0);

  const sw = new ConntrackSweeper(F.ct(h), 4096, h.dp.ctTimeouts);
  t.equal(sw.occupancy(), undefined, 'no figure before the first sweep');
  sw.sweepNow();
  t.match(sw.occupancy(), { live: 3, capacity: 4096, expiredLastSweep: 0 });
  t.equal(sw.occupancy()!.ratio, 3 / 4096);

  await until(() => got.some((e) => e.kind === 'deny'));
  const deny = got.find((e) => e.kind === 'deny');
  t.match(deny, { ruleId: 32, src: EP, dst: PEER, dstPort: 81, rule: { kind: 'end-of-tier', tier: 'default' } }, 'deny event names the deciding rule');
});
