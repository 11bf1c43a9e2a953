/**
 * Per-packet cost of the datapath programs, measured with BPF_PROG_TEST_RUN repeat (the kernel
 * times the program only). Prints figures; asserts nothing.
 *   - prefilter (XDP): a passing and a dropped packet, with 10,000 deny-listed CIDRs;
 *   - workload tc program, policy path (new flow: conntrack miss + class/verdict lookups) with
 *     1 rule and with 10,000 rules (1,000 policies × 10, compiled by src/calc);
 *   - workload tc program, established path (conntrack hit: the ACKs of a flow past its handshake);
 *   - the established packet in single runs, interleaved with the new-flow single runs: a single
 *     run pays the test run's own fixed cost and cold caches, so the new flow's extra cost over an
 *     established packet is the difference of the two single-run figures, not new flow - established;
 *   - the same two paths for IPv6 packets (dual-stack endpoints, one table for both families);
 *   - the source's side of an established flow (tortie_from_wep, the server's reply) in both
 *     families, with BPF host routing off and on: on adds its fib lookup (bpf/lib/host_route.h,
 *     host_route6.h). In the test run's namespace the lookup finds no forwarding path and declines,
 *     so this is the lookup's cost, not a redirect's; a peer redirect adds the destination's point
 *     (the "established" figure), which the kernel path runs on the destination's cali* instead.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/datapath-pktcost.js [repeat]
 * TORTIE_BENCH_OBJECT_DIR=<dir>: the workload object from that directory (a tortie_wep.bpf.o built
 * from another commit) instead of bpf/out, to compare builds run by run.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadPrefilter, loadWep, mapOps } from '../src/dataplane/bpf/loader';
import { encodePrefilter } from '../src/dataplane/bpf/encode';
import { PolicyDataplane } from '../src/dataplane/bpf/policy-sync';
import { eth6, flowPacket, tcp } from '../src/dataplane/bpf/packet';
import { CalcGraph } from '../src/calc';
import { ns, policySet, wep } from './datapath-policies';
import { median } from './lib/stats';

const REPEAT = Number(process.argv[2] ?? 1_000_000);
const OBJECT_DIR = process.env.TORTIE_BENCH_OBJECT_DIR || undefined;
const SERVER = '192.168.20.1';
const CLIENT = '192.168.20.2';
const SERVER6 = 'fd00:20::1';
const CLIENT6 = 'fd00:20::2';

function pinRoot(): string {
  const d = `/sys/fs/bpf/tortie-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
  fs.mkdirSync(d);
  return d;
}


async function prefilter(): Promise<void> {
  const root = pinRoot();
  const dp = await loadPrefilter({ pinRoot: root, countPassed: false });
  try {
    const deny = [];
    for (let i = 0; i < 10_000; i++) deny.push({ family: 4 as const, cidr: `10.${(i >> 8) & 255}.${i & 255}.0/24`, ruleId: i + 1 });
    for (const e of encodePrefilter({ deny, skipped: [] })) dp.pf4.update(e.key, e.value);
    const pass = flowPacket({ src: '198.18.5.5', dst: '198.18.0.1', proto: 6, sport: 1234, dport: 80 });
    const drop = flowPacket({ src: '10.0.7.9', dst: '198.18.0.1', proto: 6, sport: 1234, dport: 80 });
    const runs = (p: Buffer) => median([0, 1, 2].map(() => dp.prog.testRun(p, { repeat: REPEAT }).durationNs));
    console.log(`prefilter (XDP, 10,000 CIDRs, passed not counted): pass ${runs(pass)} ns/pkt, drop ${runs(drop)} ns/pkt`);
  } finally {
    dp.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

interface PathCosts {
  rules: number; newFlowDeny: number; newFlowAllow: number; established: number; cells: number; deny6: number; established6: number;
  /** The established packet in single runs (the floor of newFlowAllow's method). */
  establishedSingle: number;
  /** tortie_from_wep, the reply of the established flow: host routing off / on, IPv4 and IPv6. */
  reply: { off: number; on: number }; reply6: { off: number; on: number };
}

async function policyPath(policies: number, rulesEach: number): Promise<PathCosts> {
  const root = pinRoot();
  const dp = await loadWep({ pinRoot: root, events: false, ctMaxEntries: 65536, hostRouting: 'off', objectDir: OBJECT_DIR });
  // The host-routing variant on the same pinned maps (its conntrack, endpoints, tables).
  const hr = await loadWep({ pinRoot: root, events: false, ctMaxEntries: 65536, hostRouting: 'auto', objectDir: OBJECT_DIR });
  try {
    const graph = new CalcGraph({ nodeName: 'node1' });
    for (const r of [ns('bench'), wep('server', SERVER, 'server', 'caliserver', SERVER6), wep('client', CLIENT, 'client', 'caliclient', CLIENT6),
      ...policySet(policies, rulesEach, [80])]) graph.onUpdate(r);
    graph.flush();
    const snap = graph.snapshot();
    // The server's endpoint is programmed at ifindex 1, where test runs happen.
    const pd = new PolicyDataplane({ ...dp.policyMaps, cls4: mapOps(dp.maps.cls4!), cls6: mapOps(dp.maps.cls6!) }, (e) => (e.key === 'bench/server' ? 1 : undefined));
    pd.applySnapshot(snap);
    const table = snap.tables.find((t) => t.id === snap.endpoints.find((e) => e.key === 'bench/server')!.tables.ingress)!;
    const denied = flowPacket({ src: '10.99.1.1', dst: SERVER, proto: 6, sport: 40000, dport: 81 });
    const allowed = flowPacket({ src: CLIENT, dst: SERVER, proto: 6, sport: 40001, dport: 80 });
    const r = (p: Buffer) => median([0, 1, 2].map(() => dp.toWep.testRun(p, { repeat: REPEAT }).durationNs));
    // A denied packet never creates conntrack state: every repeat takes the full policy path.
    const newFlowDeny = r(denied);
    // An ESTABLISHED flow's own packets, on a port of their own: the handshake once (the SYN
    // creates the flow, the SYN-ACK and ACK establish it), then the client's ACK (towards the
    // server) and the server's ACK (its side) repeated. ACKs, not a repeated SYN / SYN-ACK:
    // those are a handshake's packets (states SYN_SENT / SYN_RECV), not an established flow's.
    const handshake = (src: string, dst: string, sport: number): { ack: Buffer; reply: Buffer } => {
      const steps: [typeof dp.toWep, Buffer][] = [
        [dp.toWep, flowPacket({ src, dst, proto: 6, sport, dport: 80, flags: 'S', seq: 1000 })],
        [dp.fromWep, flowPacket({ src: dst, dst: src, proto: 6, sport: 80, dport: sport, flags: 'SA', seq: 5000, ack: 1001 })],
        [dp.toWep, flowPacket({ src, dst, proto: 6, sport, dport: 80, flags: 'A', seq: 1001, ack: 5001 })],
      ];
      for (const [prog, p] of steps) {
        const res = prog.testRun(p, { repeat: 1 });
        if (res.retval !== 0) throw new Error(`the handshake of ${src} -> ${dst}:${sport} was not forwarded (retval ${res.retval})`);
      }
      return { ack: steps[2]![1], reply: flowPacket({ src: dst, dst: src, proto: 6, sport: 80, dport: sport, flags: 'A', seq: 5001, ack: 1001 }) };
    };
    const est4 = handshake(CLIENT, SERVER, 40002), est6 = handshake(CLIENT6, SERVER6, 40002);
    const established = r(est4.ack);
    // The new-flow method's floor below is the SYN of an existing flow (a conntrack hit).
    dp.toWep.testRun(allowed, { repeat: 1 });
    // Policy path for allowed new flows: a new source port for each single run; interleaved
    // with single runs of the established packet (the method's own floor).
    const samples: number[] = [], singles: number[] = [];
    for (let i = 0; i < 2000; i++) {
      singles.push(dp.toWep.testRun(allowed, { repeat: 1 }).durationNs);
      const p = flowPacket({ src: CLIENT, dst: SERVER, proto: 6, sport: 1024 + i, dport: 80 });
      samples.push(dp.toWep.testRun(p, { repeat: 1 }).durationNs);
    }
    const deny6 = r(eth6({ src: 'fd00:99::1', dst: SERVER6, proto: 6 }, tcp({ sport: 40000, dport: 81 })));
    const established6 = r(est6.ack);
    // The server's ACK: must be forwarded, or the figure would be a drop path's.
    const from = (d: typeof dp, p: Buffer) => median([0, 1, 2].map(() => {
      const res = d.fromWep.testRun(p, { repeat: REPEAT });
      if (res.retval !== 0) throw new Error(`tortie_from_wep returned ${res.retval} for the established reply, not TC_ACT_OK`);
      return res.durationNs;
    }));
    const reply = { off: from(dp, est4.reply), on: from(hr, est4.reply) };
    const reply6 = { off: from(dp, est6.reply), on: from(hr, est6.reply) };
    return { rules: policies * rulesEach + 2, newFlowDeny, newFlowAllow: median(samples), establishedSingle: median(singles), established, cells: table.cells.length, deny6, established6, reply, reply6 };
  } finally {
    hr.close();
    dp.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`tortie datapath per-packet cost (BPF_PROG_TEST_RUN, repeat ${REPEAT}, median of 3)`);
  await prefilter();
  for (const [p, r] of [[0, 0], [1000, 10]] as const) {
    const x = await policyPath(p, r);
    console.log(`workload tc, ${x.rules} rules (${x.cells} cells in the table): new flow denied ${x.newFlowDeny} ns/pkt, ` +
      `new flow allowed ${x.newFlowAllow} ns/pkt (single runs, includes conntrack create; the established packet in single runs: ${x.establishedSingle} ns/pkt), ` +
      `established ${x.established} ns/pkt`);
    console.log(`  IPv6, same table: new flow denied ${x.deny6} ns/pkt (${(x.deny6 / x.newFlowDeny).toFixed(2)}× IPv4), ` +
      `established ${x.established6} ns/pkt (${(x.established6 / x.established).toFixed(2)}× IPv4)`);
    console.log(`  established, the source's side (tortie_from_wep): IPv4 ${x.reply.off} ns/pkt, with host routing's fib lookup ${x.reply.on}; ` +
      `IPv6 ${x.reply6.off}, with host routing's fib lookup ${x.reply6.on}`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
