// NAT outgoing's per-workload quota (bpf/lib/quota.h quota_full): a new flow is refused when
// CREATED - RELEASED - MOVED reaches the quota. The program reads MOVED first and RELEASED only
// when CREATED - MOVED alone reaches the quota; each combination of the counters is pinned here
// (counters written directly, one new flow each). BPF_PROG_TEST_RUN in an empty namespace.
import t from 'tap';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { QUOTA, quotaValueCodec } from '../../src/dataplane/bpf/net-codecs';
import { quotaKey, readQuotaCounter } from '../../src/dataplane/bpf/quota';
import { UplinkHarness } from '../../src/testbed/uplink-harness';
import { Topology } from '../../src/util/netns';
import { tcpFrame } from '../../src/testbed/fixtures';
import { natLayout } from '../../src/testbed/fuzz/nat-fuzz';

const WL = '192.168.10.5';
const OUT = '198.18.3.20';

const topo = Topology.create('nat35');
t.teardown(() => topo.destroy());

t.test('a new flow is refused exactly when CREATED - RELEASED - MOVED reaches the quota', async (t) => {
  const ns = await topo.addNetns('q');
  const h = natLayout(await UplinkHarness.create('nat35', { quota: 4 }));
  t.teardown(() => h.close());
  h.netns = ns.path;
  const q = h.dp.maps.natq4;
  const set = (kind: number, count: bigint) => q.update(quotaKey(WL, kind), quotaValueCodec.encode({ count }));
  let sport = 7000;
  // [created, released, moved] -> refused?
  const cases: [bigint, bigint, bigint, boolean][] = [
    [3n, 0n, 0n, false], [4n, 0n, 0n, true],
    [100n, 0n, 96n, true], [100n, 0n, 97n, false], // MOVED alone
    [100n, 96n, 0n, true], [100n, 97n, 0n, false], // RELEASED alone
    [100n, 50n, 46n, true], [100n, 50n, 47n, false], [100n, 47n, 50n, false], // both
    [100n, 60n, 60n, false], [100n, 0n, 100n, false], [100n, 100n, 0n, false], // gone >= created
  ];
  for (const [created, released, moved, refused] of cases) {
    set(QUOTA.CREATED, created); set(QUOTA.RELEASED, released); set(QUOTA.MOVED, moved);
    const r = h.run('out', tcpFrame({ src: WL, dst: OUT, sport: sport++, dport: 80, flags: 'S' }));
    t.equal(r.reason, refused ? R.NAT_QUOTA : R.FORWARD,
      `created ${created}, released ${released}, moved ${moved} (live ${created - released - moved}, quota 4): ${refused ? 'refused' : 'translated'}`);
    t.equal(readQuotaCounter(q, WL, QUOTA.CREATED), refused ? created : created + 1n, refused ? 'nothing counted' : 'the new flow counted');
  }
});
