/**
 * Per-packet cost of the uplink programs, measured by BPF_PROG_TEST_RUN (the kernel's own
 * timing, no traffic, little noise from other load). The translating paths rewrite the packet, so
 * each run gets a fresh copy (a batch of N copies, one run each; the median is reported) rather
 * than `repeat`, which would run on the already rewritten packet: egress pass-through, egress
 * SNAT of an established mapping, egress IPIP and VXLAN encapsulation, ingress reverse SNAT,
 * ingress IPIP and VXLAN decapsulation, ingress pass-through; and NAT66 (IPv6 pools): egress IPv6
 * pass-through, egress SNAT66 of an established mapping, ingress reverse NAT66, an ICMPv6 Packet
 * Too Big about that mapping translated to its workload, later fragments of translated datagrams
 * both ways; VXLAN over IPv6 (bpf/lib/vxlan6.h):
 * egress encapsulation (outer UDP checksum computed), ingress decapsulation with the checksum
 * verified and with checksum 0, each also as a ratio to its IPv4 VXLAN counterpart measured in
 * the same run; and IPIP / VXLAN decapsulation delivered to a local workload (inside a namespace
 * where the fib resolves the inner destination to a tortie endpoint's cali*: decapsulation, fib
 * lookup, TTL and MAC rewrite, redirect; the path every received tunnelled packet takes), and
 * the sending side's fast path: tortie_from_wep on an established flow to a remote workload
 * behind IPIP / VXLAN / no tunnel (policy, conntrack, fib lookup, encapsulation, redirect to
 * the uplink). Prints ns/packet; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/networking-pktcost.js [copies] [syn]
 * `syn` as the second argument: only the per-connection cases (churn(), below).
 */
import { UplinkHarness } from '../src/testbed/uplink-harness';
import { POOL_F, RT_F, vxlan6Mac } from '../src/dataplane/bpf/net-codecs';
import { eth, eth6, fillL4Checksum6, frag6, icmp6, inetChecksum, ipv4, ipv6, tcp, udp, vxlanHeader, ETH_P, NH6, PROTO } from '../src/dataplane/bpf/packet';
import { fillL4Checksum, tcpFrame } from '../src/testbed/fixtures';
import { Topology } from '../src/util/netns';
import { WepHarness } from '../src/testbed/wep-harness';
import { allowAll } from '../src/testbed/tables';
import { DEFAULT_NAT_TIMEOUTS, sweepNatEntries } from '../src/dataplane/bpf/nat';
import { NAT_DIR, NATF, NET_MAP, NETCFG_KEY, lpm4Key, nat4KeyCodec, nat4ValueCodec, netcfgCodec, routeCodec, vxcfgCodec } from '../src/dataplane/bpf/net-codecs';
import { objectVariants } from './lib/objects';

const COPIES = Number(process.argv[2] ?? 20_000);
const ONLY_SYN = process.argv[3] === 'syn';

async function main(): Promise<void> {
  if (ONLY_SYN) return churn();
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
    // VXLAN over IPv6: node B fd00:198:18:2::10 holds fd00:10:4::/122.
    h.node6('fd00:198:18:2::10');
    h.route6('fd00:10:4::/122', 'fd00:198:18:2::10', RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN);
    const inner6 = (src: string, dst: string, sport: number, dport: number) => fillL4Checksum6(ipv6({ src, dst, proto: NH6.TCP }, tcp({ sport, dport, flags: 'A', payload })));
    const vx6Frame = (check: boolean) => {
      const inner = eth({ dst: vxlan6Mac('fd00:198:18:1::10'), src: vxlan6Mac('fd00:198:18:2::10'), ethertype: ETH_P.IPV6 }, inner6('fd00:10:4::5', 'fd00:10::10', 80, 40000));
      const f = eth6({ src: 'fd00:198:18:2::10', dst: 'fd00:198:18:1::10', proto: NH6.UDP }, udp({ sport: 50000, dport: 4789, payload: Buffer.concat([vxlanHeader({ vni: 4096 }), inner]) }));
      if (check) {
        const ip = f.subarray(14), u = ip.subarray(40);
        const ph = Buffer.alloc(40);
        ip.copy(ph, 0, 8, 40);
        ph.writeUInt32BE(u.length, 32);
        ph[39] = NH6.UDP;
        u.writeUInt16BE(inetChecksum(Buffer.concat([ph, u])) || 0xffff, 6);
      }
      return f;
    };
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
      ['IPv6 egress, VXLAN encapsulation (outer IPv6)', 'out', eth({ ethertype: ETH_P.IPV6 }, inner6('fd00:10::10', 'fd00:10:4::5', 40000, 80))],
      ['IPv6 ingress, VXLAN decapsulation, checksum verified', 'in', vx6Frame(true)],
      ['IPv6 ingress, VXLAN decapsulation, checksum 0', 'in', vx6Frame(false)],
    ];
    const medians = new Map<string, number>();
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
      medians.set(name, ns[ns.length >> 1]!);
      process.stdout.write(`  ${name.padEnd(52)} ${String(ns[ns.length >> 1]).padStart(5)} ns   (${changed === COPIES ? 'every packet rewritten' : changed === 0 ? 'unchanged' : `${changed} rewritten`})\n`);
    }
    const ratio = (a: string, b: string) => process.stdout.write(`  ${a} / ${b}: ${(medians.get(a)! / medians.get(b)!).toFixed(2)}\n`);
    process.stdout.write('VXLAN over IPv6 vs IPv4 (same run):\n');
    ratio('IPv6 egress, VXLAN encapsulation (outer IPv6)', 'egress, VXLAN encapsulation');
    ratio('IPv6 ingress, VXLAN decapsulation, checksum verified', 'ingress, VXLAN decapsulation');
    ratio('IPv6 ingress, VXLAN decapsulation, checksum 0', 'ingress, VXLAN decapsulation');
    await delivered(h, payload, vxInner);
  } finally {
    h.close();
  }
  await churn();
}

/**
 * Per-connection cost of SNAT on the uplink egress (BPF_PROG_TEST_RUN, in an empty namespace so
 * the node-socket lookups see no sockets): a SYN creating a mapping while the range is free, and
 * while every port of the range is a closed flow's tombstone its SYN may take (the steady state of
 * connection churn: more connections per minute than ports). One batch of distinct SYNs (new
 * source ports, increasing timestamps) per case. TORTIE_BENCH_OBJECTS="name=<dir>,..." compares
 * builds of tortie_uplink.bpf.o, the cases alternated between them (default: bpf/out).
 */
async function churn(): Promise<void> {
  const objs = objectVariants('tortie_uplink.bpf.o');
  const topo = Topology.create('pktsyn');
  const hs: UplinkHarness[] = [];
  try {
    const n = await topo.addNetns('node');
    for (const o of objs) {
      const h = await UplinkHarness.create('pktsyn', undefined, undefined, { objectDir: o.dir });
      hs.push(h);
      h.netns = n.path;
      h.config('198.18.1.10');
      h.pool('192.168.0.0/16', POOL_F.NAT_OUT);
      h.node('198.18.1.10');
    }
    const SYNS = Math.min(COPIES, 4000);
    // Linux's SYN options: MSS, SACK permitted, timestamps (TSval tsval), NOP, window scale (doff 10).
    const syn = (src: string, sport: number, tsval: number): Buffer => {
      const t = tcp({ sport, dport: 80, flags: 'S', doff: 10 });
      Buffer.from([2, 4, 0x05, 0xb4, 4, 2, 8, 10]).copy(t, 20);
      t.writeUInt32BE(tsval >>> 0, 28);
      Buffer.from([1, 3, 3, 7]).copy(t, 36);
      return eth({}, fillL4Checksum(ipv4({ src, dst: '198.18.3.20', proto: PROTO.TCP }, t)));
    };
    // Every port of the default range a tombstone whose closed flow's timestamp is older than the SYNs'.
    const tombstones = (h: UplinkHarness): void => {
      h.dp.maps.nat4.lookupBatch({ delete: true });
      const now = process.hrtime.bigint();
      const keys: Buffer[] = [], vals: Buffer[] = [];
      for (let p = 20000; p <= 29999; p++) {
        keys.push(nat4KeyCodec.encode({ saddr: '198.18.3.20', daddr: '198.18.1.10', sport: 80, dport: p, proto: PROTO.TCP, dir: NAT_DIR.REV }));
        vals.push(nat4ValueCodec.encode({ last_seen_ns: now, created_ns: (1000n << 32n) | 5000n, addr: '192.168.9.9', port: 40000, flags: NATF.DONE | NATF.TW_TS }));
      }
      h.dp.maps.nat4.updateBatch(keys, vals);
    };
    const res = new Map<string, number[]>();
    const ROUNDS = 3;
    process.stdout.write(`\nSNAT per new connection (egress SYN), BPF_PROG_TEST_RUN, ${SYNS} distinct SYNs per case, ${ROUNDS} rounds alternating ${objs.map((o) => o.name).join('/')} (median ns; candidates tried per SYN)\n`);
    let src = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, h] of hs.entries()) {
        for (const [label, prep] of [['SYN, new mapping, range free', (x: UplinkHarness) => { x.dp.maps.nat4.lookupBatch({ delete: true }); }],
          ['SYN, new mapping, every port a tombstone', tombstones]] as const) {
          prep(h);
          const who = `192.168.${1 + (src >> 8)}.${1 + (src++ & 0xff)}`; // a fresh workload address: its quota never binds
          const s0 = h.stats();
          const frames = Array.from({ length: SYNS }, (_, k) => syn(who, 30000 + k, 2000 + k));
          const out = h.dp.egress.testRunBatch(frames, { netns: n.path });
          const s1 = h.stats();
          if (s1.snatNew - s0.snatNew !== BigInt(SYNS)) throw new Error(`${label}: ${s1.snatNew - s0.snatNew} mappings for ${SYNS} SYNs`);
          const ns = [...out.durationsNs].sort((a, b) => a - b);
          const key = `${objs[i]!.name}: ${label}`;
          res.set(key, [...(res.get(key) ?? []), ns[ns.length >> 1]!]);
          res.set(`${key} (candidates)`, [Number(s1.snatRetry - s0.snatRetry) / SYNS]);
        }
      }
    }
    // A whole connection as wrk makes them (Connection: close, the server closing first), each
    // packet through the uplink program of its direction: SYN, SYN-ACK, ACK, request, response,
    // the server's FIN, the workload's FIN, the last ACK. One batch per step over CONNS
    // connections (distinct workload ports), the range free; the sum of the steps' medians is the
    // connection's cost in the uplink programs. No workload conntrack here (natct4 empty), so the
    // last ACK does not release the mapping: the release's own lookups are not in the figure.
    const CONNS = Math.min(COPIES, 2000);
    const conn: { name: string; steps: Map<string, number[]> }[] = objs.map((o) => ({ name: o.name, steps: new Map() }));
    const body = Buffer.alloc(100);
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, h] of hs.entries()) {
        h.dp.maps.nat4.lookupBatch({ delete: true });
        const who = `192.168.${1 + (src >> 8)}.${1 + (src++ & 0xff)}`;
        const wp = (k: number) => 40000 + k;
        const synOut = h.dp.egress.testRunBatch(Array.from({ length: CONNS }, (_, k) => syn(who, wp(k), 3000 + k)), { netns: n.path, wantData: true });
        const natPort = synOut.data!.map((d) => d.readUInt16BE(14 + 20));
        const o = (k: number, flags: string, pl?: Buffer) => tcpFrame({ src: who, dst: '198.18.3.20', sport: wp(k), dport: 80, flags, payload: pl });
        const i2 = (k: number, flags: string, pl?: Buffer) => tcpFrame({ src: '198.18.3.20', dst: '198.18.1.10', sport: 80, dport: natPort[k]!, flags, payload: pl });
        const steps: [string, 'in' | 'out', (k: number) => Buffer][] = [
          ['SYN-ACK in', 'in', (k) => i2(k, 'SA')], ['ACK out', 'out', (k) => o(k, 'A')], ['request out', 'out', (k) => o(k, 'PA', body)],
          ['response in', 'in', (k) => i2(k, 'PA', body)], ['FIN in', 'in', (k) => i2(k, 'FA')], ['FIN out', 'out', (k) => o(k, 'FA')],
          ['last ACK in', 'in', (k) => i2(k, 'A')],
        ];
        const med = (xs: Uint32Array) => { const v = [...xs].sort((a, b) => a - b); return v[v.length >> 1]!; };
        const add = (k: string, v: number) => conn[i]!.steps.set(k, [...(conn[i]!.steps.get(k) ?? []), v]);
        add('SYN out', med(synOut.durationsNs));
        for (const [name, dir, f] of steps) {
          const prog = dir === 'in' ? h.dp.ingress : h.dp.egress;
          const res = prog.testRunBatch(Array.from({ length: CONNS }, (_, k) => f(k)), { netns: n.path, wantData: true });
          const rewritten = res.data!.filter((d, k) => !d.equals(f(k))).length;
          if (rewritten !== CONNS) throw new Error(`connection ${name}: ${rewritten} of ${CONNS} translated`);
          add(name, med(res.durationsNs));
        }
      }
    }
    process.stdout.write(`\nSNAT per connection (both uplink programs, 8 packets), BPF_PROG_TEST_RUN, ${CONNS} connections per round, ${ROUNDS} rounds alternating (median ns per step; total = sum of the steps' medians of the round, median over rounds)\n`);
    for (const c of conn) {
      const totals = Array.from({ length: ROUNDS }, (_, r) => [...c.steps.values()].reduce((a, v) => a + v[r]!, 0));
      const st = [...c.steps].map(([k, v]) => `${k} ${[...v].sort((a, b) => a - b)[v.length >> 1]}`).join(', ');
      process.stdout.write(`  ${c.name}: total ${[...totals].sort((a, b) => a - b)[totals.length >> 1]} ns (rounds ${totals.join(' ')}); ${st}\n`);
    }

    // The agent's sweep over such a table (10,000 tombstones, the SYNs' live mappings), in CPU
    // time: it runs every housekeeping period (5 s) in tortie-node, beside the traffic.
    const h = hs[0]!;
    tombstones(h);
    h.dp.egress.testRunBatch(Array.from({ length: 16 }, (_, k) => syn('192.168.200.1', 30000 + k, 9000 + k)), { netns: n.path });
    const entries = h.dp.maps.nat4.keys().length;
    const cpu: number[] = [];
    for (let r = 0; r < 7; r++) {
      const c0 = process.cpuUsage();
      const swept = sweepNatEntries(h.dp.maps, DEFAULT_NAT_TIMEOUTS);
      const d = process.cpuUsage(c0);
      if (swept.deleted !== 0) throw new Error(`the sweep deleted ${swept.deleted} live entries`);
      cpu.push((d.user + d.system) / 1000);
    }
    const cpuSorted = [...cpu].sort((a, b) => a - b);
    for (const [k, v] of res) {
      if (k.endsWith('(candidates)')) continue;
      const sorted = [...v].sort((a, b) => a - b);
      process.stdout.write(`  ${k.padEnd(60)} ${String(sorted[sorted.length >> 1]).padStart(5)} ns  (rounds ${v.join(' ')}; ${res.get(`${k} (candidates)`)![0]!.toFixed(2)} candidates/SYN)\n`);
    }
    process.stdout.write(`  agent NAT sweep over ${entries} entries (nothing expired): ${cpuSorted[3]!.toFixed(1)} ms CPU (median of 7; ${cpu.map((x) => x.toFixed(1)).join(' ')})\n`);
  } finally {
    for (const h of hs) h.close();
    topo.destroySync();
  }
}

/* Decapsulation that ends in a redirect to a local workload: run in a namespace with a cali*
 * veth (a tortie endpoint), a route and a neighbour entry for 192.168.1.10, so the fib answers. */
async function delivered(h: UplinkHarness, payload: Buffer, vxInner: Buffer): Promise<void> {
  const topo = Topology.create('pktcost');
  try {
    const n = await topo.addNetns('node');
    await n.sh('sysctl -qw net.ipv4.ip_forward=1 && ip link add calipc0 type veth peer name wlpc0 && ' +
      'ip link set calipc0 address ee:ee:ee:ee:ee:ee && ip link set calipc0 up && ip link set wlpc0 up && ' +
      'ip route add 192.168.1.10/32 dev calipc0 && ip neigh add 192.168.1.10 lladdr 02:00:00:00:01:0a dev calipc0 nud permanent');
    const cali = await n.ifindex('calipc0');
    const ep = h.dp.obj.map('tortie_ep_v1');
    const key = Buffer.alloc(4);
    key.writeUInt32LE(cali);
    ep.update(key, Buffer.alloc(ep.valueSize));
    const frames: [string, Buffer][] = [
      ['ingress, IPIP decapsulation + redirect to the workload', eth({}, ipv4({ src: '198.18.2.10', dst: '198.18.1.10', proto: PROTO.IPIP },
        tcpFrame({ src: '192.168.3.10', dst: '192.168.1.10', sport: 80, dport: 40000, flags: 'A', payload }).subarray(14)))],
      ['ingress, VXLAN decapsulation + redirect to the workload', eth({}, ipv4({ src: '198.18.2.10', dst: '198.18.1.10', proto: PROTO.UDP },
        udp({ sport: 50000, dport: 4789, payload: Buffer.concat([vxlanHeader({ vni: 4096 }), vxInner]) })))],
    ];
    const report = (name: string, r: { retvals: Uint32Array; durationsNs: Uint32Array }) => {
      const redirected = r.retvals.filter((v) => v === 7).length;
      const ns = [...r.durationsNs].sort((a, b) => a - b);
      process.stdout.write(`  ${name.padEnd(68)} ${String(ns[ns.length >> 1]).padStart(5)} ns   (${redirected} of ${r.retvals.length} redirected)\n`);
    };
    process.stdout.write('delivered to a local workload (in a namespace: decapsulation, fib lookup, rewrite, redirect):\n');
    for (const [name, pkt] of frames) report(name, h.dp.ingress.testRunBatch(Array.from({ length: COPIES }, () => Buffer.from(pkt)), { netns: n.path }));

    // The sending side: an uplink in the namespace (the node 198.18.1.10/24, the router
    // 198.18.1.1 resolved) and tortie_from_wep with an allow-all endpoint.
    await n.sh('ip link add up0 type veth peer name up1 && ip link set up0 up && ip link set up1 up && ' +
      'ip addr add 198.18.1.10/24 dev up0 && ip route add 198.18.2.0/24 via 198.18.1.1 && ' +
      'ip neigh add 198.18.1.1 lladdr 02:00:00:00:00:01 dev up0 nud permanent');
    // Host routing on, so the same flow without a tunnel is redirected too (the direct path).
    const w = await WepHarness.create('pktcost', { hostRouting: 'auto' });
    try {
      w.setEndpoint(['192.168.1.10/32'], allowAll('i0000000000000a1', 'ingress'), allowAll('e0000000000000a1', 'egress'));
      w.dp.obj.map(NET_MAP.netcfg).update(NETCFG_KEY, netcfgCodec.encode({ node_ip: '198.18.1.10', uplink_ifindex: await n.ifindex('up0'), ipip_mtu: 0, snat_ip: '0.0.0.0' }));
      const rt = w.dp.obj.map(NET_MAP.rt4);
      rt.update(lpm4Key('192.168.3.10/32'), routeCodec.encode({ next_hop: '198.18.2.10', flags: RT_F.WORKLOAD | RT_F.ENCAP }));
      rt.update(lpm4Key('192.168.4.10/32'), routeCodec.encode({ next_hop: '198.18.2.10', flags: RT_F.WORKLOAD | RT_F.ENCAP | RT_F.VXLAN }));
      rt.update(lpm4Key('192.168.5.10/32'), routeCodec.encode({ next_hop: '198.18.2.10', flags: RT_F.WORKLOAD }));
      await n.sh('ip route add 192.168.5.10/32 via 198.18.1.1');
      w.dp.obj.map(NET_MAP.vxcfg).update(NETCFG_KEY, vxcfgCodec.encode({ vni: 4096, port: 4789, mtu: 0 }));
      process.stdout.write('sent from a workload (tortie_from_wep, established flow: policy, conntrack, fib lookup, encapsulation, redirect):\n');
      for (const [name, dst] of [['egress fast path, no tunnel (host routing) + redirect to the uplink', '192.168.5.10'],
        ['egress fast path, IPIP encapsulation + redirect to the uplink', '192.168.3.10'],
        ['egress fast path, VXLAN encapsulation + redirect to the uplink', '192.168.4.10']] as const) {
        const out = tcpFrame({ src: '192.168.1.10', dst, sport: 40000, dport: 80, flags: 'A', payload });
        w.dp.fromWep.testRun(out, { netns: n.path }); // the flow's conntrack entry
        report(name, w.dp.fromWep.testRunBatch(Array.from({ length: COPIES }, () => Buffer.from(out)), { netns: n.path }));
      }
    } finally {
      w.close();
    }
  } finally {
    await topo.destroy();
  }
}

main().catch((e) => { process.stderr.write(`${(e as Error).stack ?? e}\n`); process.exitCode = 1; });
