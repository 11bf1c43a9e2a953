// The one fragment tracker (bpf/lib/frag.h, tortie_frag4_v2) serves the workload programs'
// policy points and the uplink's NAT points in one map: a record made at one point never lets a
// later fragment through, or translates it, at another (docs/security.md, "Fragments follow their
// first fragment, at each point separately"). Both programs are loaded under one pin root, so
// they share the map as on a node.
import t from 'tap';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { frag4KeyCodec, fragValueCodec } from '../../src/dataplane/bpf/codecs';
import { eth, ipv4, udp, PROTO } from '../../src/dataplane/bpf/packet';
import { Topology } from '../../src/util/netns';
import { UplinkHarness } from '../../src/testbed/uplink-harness';
import { ipAt } from '../../src/testbed/fixtures';
import { WepHarness } from '../../src/testbed/wep-harness';
import { allowAll } from '../../src/testbed/tables';
import { NODE, natLayout } from '../../src/testbed/fuzz/nat-fuzz';

const WL1 = '192.168.10.5';
const OUT = '198.18.3.20';
const PT = { INGRESS: 0, EGRESS: 1, SNAT: 2, RNAT: 3 } as const;

const topo = Topology.create('frag15');
t.teardown(() => topo.destroy());

t.test('policy and NAT points share the tracker without vouching for each other', async (t) => {
  const w = await WepHarness.create('fragptw');
  t.teardown(() => w.close());
  const h = natLayout(await UplinkHarness.create('fragpt', undefined, w.pinRoot));
  t.teardown(() => h.close());
  h.netns = (await topo.addNetns('empty')).path;
  w.setEndpoint([`${WL1}/32`], allowAll('i000000000001501', 'ingress'), allowAll('e000000000001501', 'egress'));
  const frags = (id: number) => {
    const whole = udp({ sport: 25000, dport: 53, payload: Buffer.alloc(1600, 0xab) });
    return [
      eth({}, ipv4({ src: WL1, dst: OUT, proto: PROTO.UDP, id, mf: true }, whole.subarray(0, 1480))),
      eth({}, ipv4({ src: WL1, dst: OUT, proto: PROTO.UDP, id, fragOffset: 1480 / 8 }, whole.subarray(1480))),
    ] as const;
  };
  const records = () => {
    const { keys, values } = w.dp.maps.frag4!.entries();
    return keys.map((k, i) => ({ key: frag4KeyCodec.decode(k), value: fragValueCodec.decode(values[i]!) }));
  };

  // A first fragment SNATed on the uplink (never seen by the workload's program).
  const [a1, a2] = frags(0x4242);
  t.equal(ipAt(h.run('out', a1).data).src, NODE, 'first fragment SNATed');
  const nat = records().filter((r) => r.key.id === 0x4242);
  t.same(nat.map((r) => r.key.point), [PT.SNAT], 'recorded at the SNAT point only');
  t.equal(nat[0]!.value.nat_addr, NODE, 'with the address it was given');
  t.equal(w.run('from', a2).reason, R.FRAG_UNKNOWN, 'the NAT record does not pass its later fragment at the egress policy point');
  t.equal(ipAt(h.run('out', a2).data).src, NODE, 'while the uplink translates it like its first');

  // A first fragment passed by the workload's egress policy, never SNATed.
  const [b1, b2] = frags(0x4343);
  t.equal(w.run('from', b1).reason, R.FORWARD, 'first fragment passes the egress policy');
  t.same(records().filter((r) => r.key.id === 0x4343).map((r) => [r.key.point, r.value.nat_addr]), [[PT.EGRESS, '0.0.0.0']],
    'recorded at the egress point, with no address');
  t.equal(w.run('from', b2).reason, R.FORWARD, 'its later fragment follows it there');
  t.ok(h.run('out', b2).data.equals(b2), 'but the policy record does not make the uplink translate it');
});
