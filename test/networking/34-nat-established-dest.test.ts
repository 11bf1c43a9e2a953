// NAT outgoing (bpf/lib/nat.h nat_fwd_established, tortie_uplink.bpf.c uplink_egress): whether a
// flow is translated is decided at its first packet. A packet leaving whose flow has a live
// mapping skips the destination checks (a pool, a node), so an established flow stays translated
// after its destination joins a pool or becomes a node — as Calico's iptables dataplane
// MASQUERADEs at conntrack's NEW state only. A new flow (no live mapping, or a TCP SYN) is judged
// in full: to such a destination it leaves untranslated. BPF_PROG_TEST_RUN in an empty namespace.
import t from 'tap';
import { NAT_DIR, lpm4Key, nodeKeyCodec, readNatEntries, nat4KeyCodec, nat4ValueCodec } from '../../src/dataplane/bpf/net-codecs';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { UplinkHarness } from '../../src/testbed/uplink-harness';
import { Topology } from '../../src/util/netns';
import { icmpFrame, ipAt, portsOf, tcpFrame, udpFrame } from '../../src/testbed/fixtures';
import { eth, ipv4, udp, PROTO } from '../../src/dataplane/bpf/packet';
import { NODE, natLayout } from '../../src/testbed/fuzz/nat-fuzz';

const WL = '192.168.10.5';
const OUT = '198.18.3.20';

const topo = Topology.create('nat34');
t.teardown(() => topo.destroy());

type Proto = 'tcp' | 'udp' | 'icmp';
const out = (proto: Proto, sport: number, flags = 'A'): Buffer =>
  proto === 'tcp' ? tcpFrame({ src: WL, dst: OUT, sport, dport: 80, flags })
    : proto === 'udp' ? udpFrame({ src: WL, dst: OUT, sport, dport: 53 })
      : icmpFrame({ src: WL, dst: OUT, id: sport });
const reply = (proto: Proto, port: number): Buffer =>
  proto === 'tcp' ? tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: port, flags: 'A' })
    : proto === 'udp' ? udpFrame({ src: OUT, dst: NODE, sport: 53, dport: port })
      : icmpFrame({ src: OUT, dst: NODE, id: port, type: 0 });

/** A last_seen stamp `sec` old on the monotonic clock; waits on a machine whose clock has not run
 *  that long yet (as networking/03's stampOlderThan). */
async function idleStamp(sec: number): Promise<bigint> {
  const age = BigInt(sec) * 1_000_000_000n;
  while (process.hrtime.bigint() <= age) await new Promise((r) => setTimeout(r, 100));
  return process.hrtime.bigint() - age;
}

for (const becomes of ['a pool', 'a node'] as const) {
  t.test(`an established flow stays translated after its destination becomes ${becomes}; a new flow to it is not translated`, async (t) => {
    const ns = await topo.addNetns(becomes === 'a pool' ? 'pool' : 'node');
    // TCP's idle timeout shortened, so that a mapping idle past every timeout fits the clock
    // (bpf_ktime_get_ns: time since boot).
    const h = natLayout(await UplinkHarness.create(becomes === 'a pool' ? 'nat34p' : 'nat34n', { timeouts: { tcpSec: 120 } }));
    t.teardown(() => h.close());
    h.netns = ns.path;
    const join = () => (becomes === 'a pool' ? h.pool('198.18.3.0/24', 0) : h.node(OUT));
    const leave = () => (becomes === 'a pool' ? h.dp.maps.pool4.tryDelete(lpm4Key('198.18.3.0/24')) : h.dp.maps.node4.tryDelete(nodeKeyCodec.encode({ addr: OUT })));
    const translated = (frame: Buffer): number | undefined => {
      const r = h.run('out', frame);
      t.equal(r.reason, R.FORWARD, 'passes');
      const ip = ipAt(r.data);
      if (ip.src === WL) { t.ok(r.data.equals(frame), 'untranslated: untouched'); return undefined; }
      t.equal(ip.src, NODE, 'translated to the node address');
      t.ok(ip.csumOk, 'header checksum');
      return portsOf(ip)[0];
    };
    for (const proto of ['tcp', 'udp', 'icmp'] as const) {
      leave();
      // The flow's first packet, while the destination is outside: translated.
      const p = translated(out(proto, 6300, 'S'));
      t.ok(p !== undefined, `${proto}: the first packet is translated`);
      join();
      t.equal(translated(out(proto, 6300)), p, `${proto}: the established flow keeps its translation and port`);
      t.equal(ipAt(h.run('in', reply(proto, p!)).data).dst, WL, `${proto}: its replies are translated back`);
      t.equal(translated(out(proto, 6300)), p, `${proto}: and its next packet again`);
      // A new flow to the same destination: judged in full, not translated.
      t.equal(translated(out(proto, 6301, 'S')), undefined, `${proto}: a new flow's first packet leaves untranslated`);
      t.equal(translated(out(proto, 6302)), undefined, `${proto}: so does a new flow's packet that is not a SYN`);
      t.notOk(readNatEntries(h.dp.maps.nat4).some((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === WL && e.key.sport !== 6300 && e.key.sport !== 0),
        `${proto}: no mapping for the new flows`);
      if (proto === 'udp') {
        // A fragmented datagram of the flow: its later fragment follows its first (frag.h record).
        const whole = udp({ sport: 6300, dport: 53, payload: Buffer.alloc(1600, 0xab) });
        const f1 = eth({}, ipv4({ src: WL, dst: OUT, proto: PROTO.UDP, id: 0x3434, mf: true }, whole.subarray(0, 1480)));
        const f2 = eth({}, ipv4({ src: WL, dst: OUT, proto: PROTO.UDP, id: 0x3434, fragOffset: 1480 / 8 }, whole.subarray(1480)));
        t.equal(translated(f1), p, 'udp: a first fragment of the established flow is translated');
        t.equal(ipAt(h.run('out', f2).data).src, NODE, 'udp: and its later fragment');
        const g1 = eth({}, ipv4({ src: WL, dst: OUT, proto: PROTO.UDP, id: 0x3535, mf: true }, udp({ sport: 6303, dport: 53, payload: Buffer.alloc(1600, 0xab) }).subarray(0, 1480)));
        const g2 = eth({}, ipv4({ src: WL, dst: OUT, proto: PROTO.UDP, id: 0x3535, fragOffset: 1480 / 8 }, Buffer.alloc(128, 0xab)));
        t.equal(translated(g1), undefined, 'udp: a new flow\'s first fragment leaves untranslated');
        t.equal(translated(g2), undefined, 'udp: and so does its later fragment');
      }
      if (proto === 'tcp') {
        // A SYN on the mapped tuple (the workload reusing its port) is a new flow: judged in full.
        t.equal(translated(out(proto, 6300, 'S')), undefined, 'tcp: a SYN on the mapped tuple leaves untranslated');
      }
      // The mapping expired (not yet swept): the flow's next packet is a new flow's.
      const idle = await idleStamp(200);
      for (const e of readNatEntries(h.dp.maps.nat4)) {
        if (e.key.dir === NAT_DIR.FWD && e.key.saddr === WL && e.key.proto === ipAt(out(proto, 6300)).proto) {
          h.dp.maps.nat4.update(nat4KeyCodec.encode(e.key), nat4ValueCodec.encode({ ...e.value, last_seen_ns: idle }));
        }
      }
      t.equal(translated(out(proto, 6300)), undefined, `${proto}: after its mapping expired the flow leaves untranslated`);
      for (const m of [h.dp.maps.nat4, h.dp.maps.natq4]) for (const k of m.keys()) m.tryDelete(k);
    }
  });
}
