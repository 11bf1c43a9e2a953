// NAT outgoing (bpf/lib/nat.h): the node taking a tuple back from a mapping. The program does not
// look up a flow's REV entry on every packet leaving, nor its FWD entry on every reply (nat_rev_seen,
// NAT_FWD_SEEN_NS), so whatever takes a tuple back must take the FWD entry with it.
// BPF_PROG_TEST_RUN in a namespace of this test holding the node sockets.
import t from 'tap';
import { NAT_DIR, readNatEntries, nat4KeyCodec, nat4ValueCodec } from '../../src/dataplane/bpf/net-codecs';
import { UplinkHarness } from '../../src/testbed/uplink-harness';
import { Topology } from '../../src/util/netns';
import { PySockets } from '../../src/testbed/probes';
import { readNatQuota } from '../../src/dataplane/bpf/nat';
import { ipAt, portsOf, tcpFrame, udpFrame } from '../../src/testbed/fixtures';
import { NODE, natLayout } from '../../src/testbed/fuzz/nat-fuzz';

const WL1 = '192.168.10.5';
const WL2 = '192.168.10.6';
const OUT = '198.18.3.20';

const topo = Topology.create('nat33');
t.teardown(() => topo.destroy());

async function setup(label: string, nat?: Parameters<typeof UplinkHarness.create>[1]): Promise<UplinkHarness> {
  return natLayout(await UplinkHarness.create(label, nat));
}

// The program does not look up a flow's REV entry on every packet leaving: not while the FWD
// entry's created_ns (when the program last saw the REV entry hold the flow: its claim, a reply,
// a check) is recent (bpf/lib/nat.h nat_rev_seen). So whatever takes a tuple back from a mapping
// must take the FWD entry with it. Here the stamp is pinned ahead of the clock, so the REV entry
// is never looked up on the way out and only that deletion can move the flow.
t.test('a node socket taking a tuple back moves the workload\'s flow even while its reverse entry is not looked up', async (t) => {
  const ns = await topo.addNetns('takeback');
  const py = new PySockets(ns);
  t.teardown(() => py.close());
  const h = await setup('nattake', { portMin: 21600, portMax: 21603, retries: 8 });
  t.teardown(() => h.close());
  h.netns = ns.path;
  const nat = h.dp.maps.nat4;
  const pin = (src: string) => {
    const ahead = process.hrtime.bigint() + 3600n * 1_000_000_000n;
    for (const e of readNatEntries(nat)) {
      if (e.key.dir === NAT_DIR.FWD && e.key.saddr === src) nat.update(nat4KeyCodec.encode(e.key), nat4ValueCodec.encode({ ...e.value, created_ns: ahead, last_seen_ns: ahead }));
    }
  };
  const live = (addr: string) => new Map(readNatQuota(h.dp.maps.natq4).map((r) => [r.addr, r.live])).get(addr);
  for (const proto of ['udp', 'tcp'] as const) {
    const wl = proto === 'udp' ? WL1 : WL2;
    const out = (flags?: string) => (proto === 'udp' ? udpFrame({ src: wl, dst: OUT, sport: 6200, dport: 53 })
      : tcpFrame({ src: wl, dst: OUT, sport: 6200, dport: 80, flags: flags ?? 'A' }));
    const p = portsOf(ipAt(h.run('out', out('S')).data))[0]!;
    const reply = proto === 'udp' ? udpFrame({ src: OUT, dst: NODE, sport: 53, dport: p }) : tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: p, flags: 'SA' });
    t.equal(ipAt(h.run('in', reply).data).dst, wl, `${proto}: the reply is translated`);
    pin(wl);
    t.equal(portsOf(ipAt(h.run('out', out()).data))[0], p, `${proto}: the flow keeps its port`);
    if (proto === 'udp') {
      // A node socket bound to the port sends from the mapped tuple (nat_host_egress).
      await py.run(`u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); u.bind(('0.0.0.0', ${p})); _ = 1`);
      const node = udpFrame({ src: NODE, dst: OUT, sport: p, dport: 53 });
      t.ok(h.run('out', node).data.equals(node), 'udp: the node\'s datagram leaves untouched');
    } else {
      // A node listener on the port, and the peer's SYN for it (nat_rev).
      await py.run(`l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('0.0.0.0', ${p})); l.listen(1); _ = 1`);
      const syn = tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: p, flags: 'S' });
      t.ok(h.run('in', syn).data.equals(syn), 'tcp: the peer\'s SYN is left to the node listener');
    }
    t.notOk(readNatEntries(nat).some((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === wl && e.value.port === p),
      `${proto}: the flow's FWD entry went with the tuple`);
    t.equal(live(wl), 0, `${proto}: the workload's count credited`);
    const moved = portsOf(ipAt(h.run('out', out()).data))[0];
    t.not(moved, p, `${proto}: the workload's next packet leaves from another port (${moved})`);
    t.equal(live(wl), 1, `${proto}: one mapping counted again`);
    const late = proto === 'udp' ? udpFrame({ src: OUT, dst: NODE, sport: 53, dport: p }) : tcpFrame({ src: OUT, dst: NODE, sport: 80, dport: p, flags: 'A' });
    t.ok(h.run('in', late).data.equals(late), `${proto}: replies on the taken tuple stay the node's`);
  }
});
