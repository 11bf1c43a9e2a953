/**
 * Per-packet cost of the uplink programs, measured by BPF_PROG_TEST_RUN (the kernel's own
 * timing, no traffic, little noise from other load). The translating paths rewrite the packet, so
 * each run gets a fresh copy (a batch of N copies, one run each; the median is reported) rather
 * than `repeat`, which would run on the already rewritten packet: egress pass-through, egress
 * SNAT of an established mapping, egress IPIP and VXLAN encapsulation, ingress reverse SNAT,
 * ingress IPIP and VXLAN decapsulation, ingress pass-through; and NAT66 (IPv6 pools): egress IPv6
 * pass-through, egress SNAT66 of an established mapping, ingress reverse NAT66, an ICMPv6 Packet
 * Too Big about that mapping translated to its workload, later fragments of translated datagrams
 * both ways. Prints ns/packet;
 * asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/networking-pktcost.js [copies]
 */
import { UplinkHarness } from '../src/testbed/uplink-harness';
import { POOL_F, RT_F } from '../src/dataplane/bpf/net-codecs';
import { eth, eth6, frag6, icmp6, ipv4, tcp, udp, vxlanHeader, NH6, PROTO } from '../src/dataplane/bpf/packet';
import { tcpFrame } from '../src/testbed/fixtures';

const COPIES = Number(process.argv[2] ?? 20_000);

async function main(): Promise<void> {
  const h = await UplinkHarness.create('pktcost');
  try {
    h.config('198.18.1.10');
    h.pool('192.168.0.0/16', POOL_F.NAT_OUT);
    h.node('198.18.1.10');
    h.node('198.18.2.10');
    h.route('192.168.3.10/32', '198.18.2.10', RT_F.WORKLOAD | RT_F.ENCAP);
    h.route('192.168.4.10/32', '198.18.2.10', RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN);
    h.vxlan(4096);
    const vxInner = eth({ dst: '0e:74:c6:12:01:0a', src: '0e:74:c6:12:02:0a' },
      tcpFrame({ src: '192.168.4.10', dst: '192.168.1.10', sport: 80, dport: 40000, flags: 'A', payload: Buffer.alloc(64) }).subarray(14));
    h.config6('fd00:198:18:1::10');
    h.pool6('fd00:10::/48', POOL_F.NAT_OUT);
    h.node6('fd00:198:18:1::10');
    const payload = Buffer.alloc(64);
    const cases: [string, 'in' | 'out', Buffer][] = [
      ['egress, pass-through (host traffic)', 'out', tcpFrame({ src: '198.18.1.10', dst: '198.18.3.20', sport: 1000, dport: 80, flags: 'A', payload })],
      // Workload port inside the NAT range (kept), so the reverse case below matches the mapping.
      ['egress, SNAT (established mapping)', 'out', tcpFrame({ src: '192.168.1.10', dst: '198.18.3.20', sport: 21000, dport: 80, flags: 'A', payload })],
      ['egress, IPIP encapsulation', 'out', tcpFrame({ src: '192.168.1.10', dst: '192.168.3.10', sport: 40000, dport: 80, flags: 'A', payload })],
      ['egress, VXLAN encapsulation', 'out', tcpFrame({ src: '192.168.1.10', dst: '192.168.4.10', sport: 40000, dport: 80, flags: 'A', payload })],
      ['ingress, reverse SNAT', 'in', tcpFrame({ src: '198.18.3.20', dst: '198.18.1.10', sport: 80, dport: 21000, flags: 'A', payload })],
      ['ingress, IPIP decapsulation', 'in', eth({}, ipv4({ src: '198.18.2.10', dst: '198.18.1.10', proto: PROTO.IPIP },
        tcpFrame({ src: '192.168.3.10', dst: '192.168.1.10', sport: 80, dport: 40000, flags: 'A', payload }).subarray(14)))],
      ['ingress, VXLAN decapsulation', 'in', eth({}, ipv4({ src: '198.18.2.10', dst: '198.18.1.10', proto: PROTO.UDP },
        udp({ sport: 50000, dport: 4789, payload: Buffer.concat([vxlanHeader({ vni: 4096 }), vxInner]) })))],
      ['ingress, pass-through (host traffic)', 'in', tcpFrame({ src: '198.18.3.20', dst: '198.18.1.10', sport: 80, dport: 1000, flags: 'A', payload })],
      ['IPv6 egress, pass-through (host traffic)', 'out', eth6({ src: 'fd00:198:18:1::10', dst: 'fd00:198:18:3::20', proto: PROTO.TCP }, tcp({ sport: 1000, dport: 80, flags: 'A', payload }))],
      ['IPv6 egress, SNAT66 (established mapping)', 'out', eth6({ src: 'fd00:10::10', dst: 'fd00:198:18:3::20', proto: PROTO.TCP }, tcp({ sport: 21000, dport: 80, flags: 'A', payload }))],
      ['IPv6 ingress, reverse NAT66', 'in', eth6({ src: 'fd00:198:18:3::20', dst: 'fd00:198:18:1::10', proto: PROTO.TCP }, tcp({ sport: 80, dport: 21000, flags: 'A', payload }))],
      ['IPv6 ingress, Packet Too Big to a workload', 'in', eth6({ src: 'fd00:198:18:2::1', dst: 'fd00:198:18:1::10', proto: NH6.ICMP6 },
        icmp6({ type: 2, code: 0, rest: Buffer.from([0, 0, 5, 0]), payload: eth6({ src: 'fd00:198:18:1::10', dst: 'fd00:198:18:3::20', proto: PROTO.TCP },
          tcp({ sport: 21000, dport: 80, flags: 'A', payload })).subarray(14) }))],
      // Later fragments of a datagram whose first fragment was translated (the record made below).
      ['IPv6 egress, later fragment (SNAT66)', 'out', eth6({ src: 'fd00:10::10', dst: 'fd00:198:18:3::20', proto: PROTO.UDP, exts: [frag6({ offset: 154, id: 77 })] }, payload)],
      ['IPv6 ingress, later fragment (reverse)', 'in', eth6({ src: 'fd00:198:18:3::20', dst: 'fd00:198:18:1::10', proto: PROTO.UDP, exts: [frag6({ offset: 154, id: 78 })] }, payload)],
    ];
    h.run('out', cases[1]![2]); // create the mappings
    h.run('out', cases.find(([name]) => name.startsWith('IPv6 egress, SNAT66'))![2]);
    // A UDP mapping and both ways' first fragments: the records the later-fragment cases follow.
    h.run('out', eth6({ src: 'fd00:10::10', dst: 'fd00:198:18:3::20', proto: PROTO.UDP, exts: [frag6({ offset: 0, mf: true, id: 77 })] }, udp({ sport: 21001, dport: 53, payload })));
    h.run('in', eth6({ src: 'fd00:198:18:3::20', dst: 'fd00:198:18:1::10', proto: PROTO.UDP, exts: [frag6({ offset: 0, mf: true, id: 78 })] }, udp({ sport: 53, dport: 21001, payload })));
    process.stdout.write(`uplink per-packet cost, BPF_PROG_TEST_RUN, ${COPIES} fresh copies (median ns/packet, one run each)\n`);
    for (const [name, hook, pkt] of cases) {
      const prog = hook === 'in' ? h.dp.ingress : h.dp.egress;
      const r = prog.testRunBatch(Array.from({ length: COPIES }, () => Buffer.from(pkt)), { wantData: true });
      const changed = r.data!.filter((d) => !d.equals(pkt)).length;
      const ns = [...r.durationsNs].sort((a, b) => a - b);
      process.stdout.write(`  ${name.padEnd(40)} ${String(ns[ns.length >> 1]).padStart(5)} ns   (${changed === COPIES ? 'every packet rewritten' : changed === 0 ? 'unchanged' : `${changed} rewritten`})\n`);
    }
  } finally {
    h.close();
  }
}

main().catch((e) => { process.stderr.write(`${(e as Error).stack ?? e}\n`); process.exitCode = 1; });
