/**
 * `npm run bench` — tortie's benchmark suite: bare vs tortie vs iptables/ipset vs nftables, interleaved on one
 * namespace topology, plus control-plane figures from the real agent.
 *
 *   npm run bench                      whole suite (< 15 min on 2 cores)
 *   npm run bench -- --quick           the suite's own IPv4 groups at small scale, short runs (< 2 min)
 *   npm run bench -- --only datapath,rules --repeats 5 --readme
 *
 * Groups: datapath (iperf3 TCP 1/4 streams, UDP packet rate, sockperf latency, wrk connection
 * rate), datapath6 (the same over IPv6 between dual-stack workloads, each dataplane's IPv6 path:
 * ip6tables, `table ip6`, tortie's IPv6 programs; latency by bench/tools/udp-pingpong.c, as this
 * sockperf has no IPv6), rules and members (policy scale sweeps on connection rate and latency), prefilter (XDP
 * drop vs iptables raw DROP), pktcost (per-packet program cost in both families, bench/datapath-pktcost), control
 * (compile, agent initial sync and RSS, apply-to-enforced, 1,000 endpoints), crossnode (IPIP vs
 * direct and SNAT vs none on a three-node cluster, bench/networking-bench).
 *
 * Writes bench/results/<stamp>.json (every sample), <stamp>.md and latest.{json,md} plus SVG
 * charts; `--readme` also writes the tables into docs/benchmarks.md ("## Latest results") and a
 * summary into README.md ("## Performance").
 * Ctrl-C or a failure tears down every namespace, process, ruleset and BPF pin the run created.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { BenchTopology, FLOOD_SRC } from './lib/topology';
import { DataplaneSwitch, type IptablesBackend } from './lib/dataplanes';
import { addFigure, addSample, emptyRun, orderFor, type DataplaneName, type RunResult } from './lib/results';
import { hostInfo, toolVersions } from './lib/host';
import { iperfTcp, iperfUdp, sockperfPingPong, udpPingPong, pingPongTool, wrkConnRate, udpFlood, startServers, waitServers } from './lib/tools';
import { SERVER, type Family, type PolicyScale } from './lib/scenarios';
import { cdf } from './lib/stats';
import { writeReport, updateDocs } from './lib/report';
import { runControlPlane, type ControlSettings } from './lib/control-plane';
import { crossNode, packetCost } from './lib/children';

const ROOT = resolve(__dirname, '../..');

export interface Settings {
  mode: 'quick' | 'full';
  repeats: number;
  seconds: { iperf: number; sockperf: number; wrk: number; flood: number };
  /** Same-node workloads to run: quick mode keeps the two that need no sweep (the rules sweep measures connection rate). */
  workloads: Set<'tcp-1' | 'tcp-4' | 'udp' | 'sockperf' | 'wrk'>;
  base: PolicyScale;
  ruleLevels: number[];
  memberLevels: number[];
  control: ControlSettings;
  groups: Set<string>;
  outDir: string;
  iptables: IptablesBackend;
  readme: boolean;
  from?: string;
}

export const GROUPS = ['datapath', 'datapath6', 'rules', 'members', 'prefilter', 'pktcost', 'control', 'crossnode'];
/** Groups measured on the one-node topology (built when any of them runs). */
const TOPOLOGY_GROUPS = ['datapath', 'datapath6', 'rules', 'members', 'prefilter'];
/** Groups `--quick` runs only when named with --only. */
const QUICK_SKIPS = ['crossnode', 'pktcost', 'datapath6'];

export function settingsFrom(argv: string[]): Settings {
  const cmd = new Command('bench')
    .option('--quick', 'small scale and short runs (< 2 min)')
    .option('--only <groups>', `comma-separated subset of ${GROUPS.join(',')}`)
    .option('--repeats <n>', 'interleaved repeats per figure (≥ 3)')
    .option('--out <dir>', 'results directory', join(ROOT, 'bench/results'))
    .option('--iptables <backend>', 'iptables backend for the baseline: nft or legacy', 'nft')
    .option('--readme', "write this run's tables into docs/benchmarks.md and its summary into README.md")
    .option('--from <json>', 'measure nothing: re-render the reports (and the docs with --readme) from a results JSON')
    .exitOverride();
  cmd.parse(argv, { from: 'user' });
  const o = cmd.opts<{ quick?: boolean; only?: string; repeats?: string; out: string; iptables: string; readme?: boolean; from?: string }>();
  const quick = o.quick === true;
  // Quick mode leaves out the other engineers' benches (crossnode, pktcost) and the IPv6 same-node
  // group (about 30 s more: quick would pass its 2 minutes) unless asked for (`--quick --only datapath6`).
  const groups = new Set(o.only ? o.only.split(',').map((s) => s.trim()) : quick ? GROUPS.filter((g) => !QUICK_SKIPS.includes(g)) : GROUPS);
  for (const g of groups) if (!GROUPS.includes(g)) throw new Error(`--only: unknown group "${g}" (groups: ${GROUPS.join(', ')})`);
  const repeats = o.repeats === undefined ? 3 : Number(o.repeats);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got "${o.repeats}"`);
  if (o.iptables !== 'nft' && o.iptables !== 'legacy') throw new Error(`--iptables must be nft or legacy, got "${o.iptables}"`);
  return {
    mode: quick ? 'quick' : 'full',
    repeats,
    seconds: quick ? { iperf: 1, sockperf: 1, wrk: 1, flood: 1 } : { iperf: 4, sockperf: 3, wrk: 3, flood: 2 },
    workloads: new Set(quick ? ['tcp-1', 'sockperf'] as const : ['tcp-1', 'tcp-4', 'udp', 'sockperf', 'wrk'] as const),
    base: quick ? { rules: 100, members: 100 } : { rules: 1000, members: 1000 },
    ruleLevels: quick ? [1, 1000] : [1, 100, 1000, 10000],
    memberLevels: quick ? [10, 1000] : [10, 1000, 10000, 100000],
    control: quick
      ? { storeEndpoints: 500, storePolicies: 50, localEndpoints: 10, applyRepeats: 3, bulkEndpoints: 100, compileArgs: ['1000', '100', '10', '5'], compileTimeoutMs: 60_000 }
      : { storeEndpoints: 10000, storePolicies: 1000, localEndpoints: 100, applyRepeats: 20, bulkEndpoints: 1000, compileArgs: ['10000', '1000', '100', '11'], compileTimeoutMs: 120_000 },
    groups,
    outDir: o.out,
    iptables: o.iptables,
    readme: o.readme === true,
    from: o.from,
  };
}

const log = (msg: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const figure = addFigure;
const sample = addSample;


async function interleaved(sw: DataplaneSwitch, s: Settings, fn: (dp: DataplaneName, rep: number) => Promise<void>): Promise<void> {
  for (let rep = 0; rep < s.repeats; rep++) {
    for (const dp of orderFor(rep)) {
      await sw.use(dp);
      await fn(dp, rep);
    }
  }
}

/**
 * The same-node groups' order: as `interleaved` (each repeat visits the dataplanes in orderFor's
 * rotation), except that bare and tortie, whose ratio is the figures' goal, are measured workload
 * by workload back to back at the place of whichever of them comes first, the first of the pair
 * alternating from workload to workload and from repeat to repeat (so neither is favoured); the
 * iptables and nftables blocks, whose switches take seconds, stay whole. Until 8 December 2026 a
 * bare and a tortie run of the same workload could be three blocks (~1 min) apart, and the
 * machine's drift over that minute went into the ratio.
 */
export function pairedOrder(repeat: number, workloads: number): { dp: DataplaneName; workload: number }[] {
  const steps: { dp: DataplaneName; workload: number }[] = [];
  let paired = false;
  for (const dp of orderFor(repeat)) {
    if (dp === 'bare' || dp === 'tortie') {
      if (paired) continue;
      paired = true;
      for (let w = 0; w < workloads; w++) {
        const first: DataplaneName = (repeat + w) % 2 === 0 ? 'bare' : 'tortie';
        steps.push({ dp: first, workload: w }, { dp: first === 'bare' ? 'tortie' : 'bare', workload: w });
      }
    } else {
      for (let w = 0; w < workloads; w++) steps.push({ dp, workload: w });
    }
  }
  return steps;
}

async function pairedInterleaved(sw: DataplaneSwitch, s: Settings, group: string,
  workloads: { name: string; fn: (dp: DataplaneName, rep: number) => Promise<void> }[]): Promise<void> {
  for (let rep = 0; rep < s.repeats; rep++) {
    for (const step of pairedOrder(rep, workloads.length)) {
      await sw.use(step.dp);
      const w = workloads[step.workload]!;
      log(`${group}: ${step.dp} repeat ${rep + 1}/${s.repeats}: ${w.name}`);
      await w.fn(step.dp, rep);
    }
  }
}

/** Runs `fn`, recording a failed measurement as a note instead of aborting the whole suite. */
async function guarded(run: RunResult, what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0]!.slice(0, 300);
    log(`${what} failed: ${msg}`);
    run.notes.push({ text: `${what}: measurement failed (${msg})` });
  }
}

/**
 * The same-node figures: over IPv4 (group `datapath`), or over IPv6 (`datapath6`: figure ids with
 * `-v6`, the client reaching the server's ULA address, every dataplane programmed with the
 * scenario's IPv6 rendering; the ping-pong by bench/tools/udp-pingpong.c, or python3 without a
 * compiler, since sockperf 3.7 has no IPv6).
 */
async function datapathGroup(run: RunResult, s: Settings, t: BenchTopology, sw: DataplaneSwitch, family: Family = 4): Promise<void> {
  const v6 = family === 6;
  const G = v6 ? 'Same-node pod to pod (IPv6)' : 'Same-node pod to pod';
  const id = (x: string) => (v6 ? `${x}-v6` : x);
  const title = (x: string) => (v6 ? `${x} (IPv6)` : x);
  const ppTool = v6 ? pingPongTool() : undefined;
  const pp = ppTool ? `${ppTool.name} UDP ping-pong latency` : 'sockperf UDP ping-pong latency';
  const f = {
    tcp1: figure(run, { id: id('tcp-1'), title: title('iperf3 TCP, 1 stream'), unit: 'Gbit/s', better: 'higher', group: G, goal: 'tortie ≥ 1.00× bare' }),
    tcp4: figure(run, { id: id('tcp-4'), title: title('iperf3 TCP, 4 streams'), unit: 'Gbit/s', better: 'higher', group: G }),
    udp: figure(run, { id: id('udp-pps'), title: title('iperf3 UDP packet rate (64 B)'), unit: 'kpps', better: 'higher', group: G }),
    p50: figure(run, { id: id('lat-p50'), title: title(`${pp} p50`), unit: 'µs', better: 'lower', group: G }),
    p99: figure(run, { id: id('lat-p99'), title: title(`${pp} p99`), unit: 'µs', better: 'lower', group: G }),
    conn: figure(run, { id: id('conn-rate'), title: title('wrk → nginx, Connection: close'), unit: 'conn/s', better: 'higher', group: G }),
  };
  const serverIp = v6 ? t.server.ip6 : t.server.ip;
  if (!serverIp) throw new Error('the topology was built without IPv6 addresses (BenchTopology.create with v6)');
  if (v6) await waitServers(t.server.ns, serverIp);
  const timings = await sw.program(s.base, { family });
  run.notes.push({ ...(v6 ? { figure: f.tcp1.id } : {}), text: `same-node figures${v6 ? ' over IPv6' : ''} run with the server behind one policy of ${s.base.rules} rules and a member set of ${s.base.members}${v6 ? ' (IPv6 members; client and server dual stack)' : ''} (tortie: compile ${timings.compileMs.toFixed(0)} ms, map writes ${timings.reconcileMs.toFixed(0)} ms; ${v6 ? 'ip6tables' : 'iptables'}: ${timings.iptablesRules} rules; nftables${v6 ? ' (table ip6)' : ''}: ${timings.nftablesRules} rules)` });
  if (ppTool?.path) run.notes.push({ figure: f.p50.id, text: 'sockperf 3.7 has no IPv6: the IPv6 ping-pong is bench/tools/udp-pingpong.c, built by the bench with cc -O2 (one 64-byte datagram in flight, blocking calls, half the round trip, as sockperf reports)' });
  else if (ppTool) run.notes.push({ figure: f.p50.id, text: `sockperf 3.7 has no IPv6 and bench/tools/udp-pingpong.c is not in use (${ppTool.why}): the IPv6 ping-pong is a python3 client and echo server (one 64-byte datagram in flight, half the round trip, as sockperf reports); python3's own per-message time is in every figure, so its latencies are higher than sockperf's and its ratios closer to 1` });
  if (process.env.TORTIE_BENCH_PINGPONG_CPU) run.notes.push({ figure: f.p50.id, text: `the ping-pong's client and echo server both pinned to CPU ${process.env.TORTIE_BENCH_PINGPONG_CPU} (TORTIE_BENCH_PINGPONG_CPU)` });
  const lat = new Map<DataplaneName, number[]>();
  const c = t.client.ns;
  const w = s.workloads;
  const what = (dp: DataplaneName, x: string) => `${dp} ${x}${v6 ? ' (IPv6)' : ''}`;
  const steps: { name: string; fn: (dp: DataplaneName, rep: number) => Promise<void> }[] = [];
  const step = (name: string, fn: (dp: DataplaneName, rep: number) => Promise<void>) => steps.push({ name, fn });
  if (w.has('tcp-1')) step('iperf3 1 stream', (dp, rep) => guarded(run, what(dp, 'iperf3 1 stream'), async () => {
    const r = await iperfTcp(c, serverIp, s.seconds.iperf, 1);
    sample(run, f.tcp1, dp, rep, r.bitsPerSecond / 1e9, undefined, { retransmits: r.retransmits });
  }));
  if (w.has('tcp-4')) step('iperf3 4 streams', (dp, rep) => guarded(run, what(dp, 'iperf3 4 streams'), async () => {
    const r = await iperfTcp(c, serverIp, s.seconds.iperf, 4);
    sample(run, f.tcp4, dp, rep, r.bitsPerSecond / 1e9, undefined, { retransmits: r.retransmits });
  }));
  if (w.has('udp')) step('iperf3 UDP', (dp, rep) => guarded(run, what(dp, 'iperf3 UDP'), async () => {
    const r = await iperfUdp(c, serverIp, s.seconds.iperf);
    sample(run, f.udp, dp, rep, r.packetsPerSecond / 1e3, undefined, { sent: r.sentPackets, lost: r.lostPackets });
  }));
  if (w.has('sockperf')) step(v6 ? 'UDP ping-pong' : 'sockperf', (dp, rep) => guarded(run, what(dp, v6 ? 'UDP ping-pong' : 'sockperf'), async () => {
    const r = v6 ? await udpPingPong(c, serverIp, s.seconds.sockperf) : await sockperfPingPong(c, serverIp, s.seconds.sockperf);
    sample(run, f.p50, dp, rep, r.summary.p50, undefined, { p999: r.summary.p999, max: r.summary.max, n: r.summary.observations, ...('lost' in r ? { lost: r.lost } : {}) });
    sample(run, f.p99, dp, rep, r.summary.p99);
    lat.set(dp, [...(lat.get(dp) ?? []), ...r.latencies]);
  }));
  if (w.has('wrk')) step('wrk', (dp, rep) => guarded(run, what(dp, 'wrk'), async () => {
    const r = await wrkConnRate(c, serverIp, s.seconds.wrk);
    sample(run, f.conn, dp, rep, r.requestsPerSecond, undefined, { errors: r.errors, non2xx: r.non2xx, ...r.latency });
  }));
  await pairedInterleaved(sw, s, v6 ? 'datapath6' : 'datapath', steps);
  for (const [dp, xs] of lat) if (xs.length > 0) run.cdfs.push({ figure: f.p50.id, dataplane: dp, points: cdf(xs, 150) });
}

async function sweepGroup(run: RunResult, s: Settings, t: BenchTopology, sw: DataplaneSwitch, kind: 'rules' | 'members'): Promise<void> {
  const G = kind === 'rules' ? 'Policy scale: rules' : 'Policy scale: IP-set members';
  const param = kind === 'rules' ? 'rules' : 'members';
  const levels = kind === 'rules' ? s.ruleLevels : s.memberLevels;
  const f = {
    conn: figure(run, { id: `${kind}-conn-rate`, title: `New-connection rate vs ${param}`, unit: 'conn/s', better: 'higher', group: G, param,
      goal: kind === 'rules' ? 'tortie at 10,000 ≥ 0.95× tortie at 1' : undefined }),
    p50: figure(run, { id: `${kind}-conn-p50`, title: `Connect + request latency p50 vs ${param}`, unit: 'µs', better: 'lower', group: G, param }),
    p99: figure(run, { id: `${kind}-conn-p99`, title: `Connect + request latency p99 vs ${param}`, unit: 'µs', better: 'lower', group: G, param }),
  };
  // Levels are interleaved too: every repeat visits every level (in alternating order) and, at
  // each, every dataplane; so "level N vs the first level" compares measurements minutes apart at
  // most, not a whole sweep apart.
  const noted = new Set<number>();
  for (let rep = 0; rep < s.repeats; rep++) {
    const order = rep % 2 === 0 ? levels : [...levels].reverse();
    for (const level of order) {
      const scale: PolicyScale = kind === 'rules' ? { rules: level, members: 10 } : { rules: 1, members: level };
      log(`${kind}: ${level} (repeat ${rep + 1}/${s.repeats})`);
      const tm = await sw.program(scale);
      if (!noted.has(level)) {
        noted.add(level);
        run.notes.push({ figure: f.conn.id, text: `${param}=${level}: tortie compile ${tm.compileMs.toFixed(0)} ms, map writes ${tm.reconcileMs.toFixed(0)} ms, ${tm.tableCells} table cells, ${tm.prefixes} LPM prefixes; iptables ${tm.iptablesRules} rules; nftables ${tm.nftablesRules} rules` });
      }
      for (const dp of orderFor(rep + levels.indexOf(level))) {
        await sw.use(dp);
        await guarded(run, `${kind}=${level} ${dp} wrk`, async () => {
          const r = await wrkConnRate(t.client.ns, SERVER.ip, s.seconds.wrk);
          sample(run, f.conn, dp, rep, r.requestsPerSecond, level, { errors: r.errors });
          if (r.latency.p50 !== undefined) sample(run, f.p50, dp, rep, r.latency.p50, level);
          if (r.latency.p99 !== undefined) sample(run, f.p99, dp, rep, r.latency.p99, level);
        });
      }
    }
  }
  sw.forget();
}

async function readStat(ns: BenchTopology['node'], path: string): Promise<number> {
  const r = await ns.exec(['cat', path]);
  return Number(r.stdout.trim());
}

/** Total softirq time of the machine so far, ns (/proc/stat, USER_HZ ticks). */
function softirqNs(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  return Number(cpu[7]) * 1e7; // column 7 = softirq, in 1/100 s
}

async function prefilterGroup(run: RunResult, s: Settings, t: BenchTopology, sw: DataplaneSwitch): Promise<void> {
  const G = 'Early drop: XDP prefilter vs iptables raw DROP';
  const labels = { bare: 'no filter (forwarded)', tortie: 'XDP prefilter', iptables: 'raw PREROUTING DROP', nftables: 'raw-priority prerouting drop' };
  const f = {
    rate: figure(run, { id: 'drop-rate', title: 'UDP flood from a denied source: packets handled/s at the node', unit: 'kpps', better: 'higher', group: G, labels }),
    cost: figure(run, { id: 'drop-softirq', title: 'softirq CPU per flood packet (whole machine)', unit: 'ns', better: 'lower', group: G, labels }),
  };
  await sw.program(s.base, { prefilter: true });
  run.notes.push({ figure: 'drop-rate', text: `a UDP flood (64-byte datagrams from one python3 sendto loop, about one core) from ${FLOOD_SRC} on the outside host to the server; tortie drops it in XDP on the node's uplink (a doNotTrack deny of its /24), iptables in raw PREROUTING, nftables in a prerouting chain at raw priority, bare forwards it. The sender is the limit when the node keeps up; the softirq figure is the cost side.` });
  const fQuiet = figure(run, { id: 'drop-softirq-no-events', title: 'softirq CPU per flood packet, XDP prefilter built without flow events (diagnostic)', unit: 'ns', better: 'lower', group: G,
    labels: { tortie: 'XDP prefilter, events off' } });
  const fQuietRate = figure(run, { id: 'drop-rate-no-events', title: 'packets handled/s, XDP prefilter built without flow events (diagnostic)', unit: 'kpps', better: 'higher', group: G,
    labels: { tortie: 'XDP prefilter, events off' } });
  const counted = async (dp: DataplaneName): Promise<number> =>
    dp === 'tortie' ? Number(sw.prefilterDrops()) : dp === 'iptables' ? Number(await sw.iptablesRawDrops())
      : dp === 'nftables' ? Number(await sw.nftablesRawDrops()) : await readStat(t.node, '/sys/class/net/eth0/statistics/rx_packets');
  const flood = async (dp: DataplaneName): Promise<{ handled: number; sent: number; softirq: number; secs: number }> => {
    const before = await counted(dp);
    const si0 = softirqNs();
    const t0 = performance.now();
    const sent = await udpFlood(t.out, SERVER.ip, 9, s.seconds.flood);
    const secs = (performance.now() - t0) / 1000;
    const si1 = softirqNs();
    const handled = (await counted(dp)) - before;
    if (handled <= 0) throw new Error(`no packets counted (${dp})`);
    return { handled, sent, softirq: si1 - si0, secs };
  };
  await interleaved(sw, s, async (dp, rep) => {
    await guarded(run, `prefilter ${dp}`, async () => {
      const r = await flood(dp);
      // The sender's loop runs exactly `flood` seconds; `secs` adds its start-up.
      sample(run, f.rate, dp, rep, r.handled / s.seconds.flood / 1e3, undefined, { sent: r.sent, handled: r.handled, wallSeconds: r.secs });
      sample(run, f.cost, dp, rep, r.softirq / r.handled, undefined, { softirqMs: r.softirq / 1e6 });
    });
    if (dp !== 'tortie') return;
    // Right after, the same flood against the prefilter without per-drop ring-buffer events.
    await guarded(run, 'prefilter tortie without events', async () => {
      sw.prefilterEvents(false);
      try {
        await new Promise((res) => setTimeout(res, 100));
        const r = await flood('tortie');
        sample(run, fQuietRate, 'tortie', rep, r.handled / s.seconds.flood / 1e3, undefined, { sent: r.sent, handled: r.handled });
        sample(run, fQuiet, 'tortie', rep, r.softirq / r.handled);
      } finally {
        sw.prefilterEvents(true);
      }
    });
  });
  const drops = run.samples.filter((x) => x.figure === f.rate.id);
  const bound = drops.filter((x) => Number(x.extra?.handled) >= 0.99 * Number(x.extra?.sent)).length;
  if (drops.length > 0) {
    run.notes.push({ figure: f.rate.id, text: `${bound} of ${drops.length} runs handled ≥ 99% of what the sender sent: the sender was the limit there, so the rate says how much CPU the node's handling left to the sender on 2 shared cores; the softirq figure is the direct cost` });
  }
}


function publish(run: RunResult, s: Settings): void {
  const written = writeReport(run, s.outDir);
  log(`wrote ${written.join(', ')}`);
  if (s.readme) {
    updateDocs(join(ROOT, 'README.md'), join(ROOT, 'docs/benchmarks.md'), run, s.outDir);
    log('docs/benchmarks.md Latest results and README.md Performance summary updated');
  }
  process.stdout.write(readFileSync(join(s.outDir, 'latest.md'), 'utf8'));
}

export async function main(argv: string[]): Promise<number> {
  let s: Settings;
  try {
    s = settingsFrom(argv);
  } catch (e) {
    // Commander has already printed the help (exit 0) or the usage error (exit 2).
    if (e instanceof CommanderError) return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
    throw e;
  }
  if (s.from) {
    const run = JSON.parse(readFileSync(s.from, 'utf8')) as RunResult;
    if (run.format !== 'tortie-bench/1') throw new Error(`${s.from}: not a tortie-bench/1 result (format ${String(run.format)})`);
    publish(run, s);
    return 0;
  }
  const started = new Date();
  const { versions, gitCommit } = toolVersions(ROOT);
  const run = emptyRun({
    startedAt: started.toISOString(), mode: s.mode, argv, host: hostInfo(), versions, gitCommit,
    settings: { repeats: s.repeats, seconds: s.seconds, workloads: [...s.workloads], base: s.base, ruleLevels: s.ruleLevels, memberLevels: s.memberLevels, control: s.control, iptablesBackend: s.iptables, groups: [...s.groups] },
  });
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (network namespaces, BPF, tc)');

  let topo: BenchTopology | undefined;
  let sw: DataplaneSwitch | undefined;
  const cleanups: (() => void)[] = [];
  process.on('exit', () => { sw?.closeSync(); for (const c of cleanups) { try { c(); } catch { /* best effort */ } } });
  // Topologies remove themselves on exit; exiting on a signal runs that and the handler above.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: removing namespaces, processes and pins`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  try {
    const needTopo = TOPOLOGY_GROUPS.some((g) => s.groups.has(g));
    if (needTopo) {
      // Dual-stack workloads only when an IPv6 group runs (the IPv4 groups' topology stays as it
      // was). If the IPv6 wiring fails, the IPv4 groups still run on an IPv4 topology; datapath6
      // then fails on its own, noted.
      let v6 = s.groups.has('datapath6');
      log(`building the topology${v6 ? ' (dual-stack workloads)' : ''}`);
      try {
        topo = await BenchTopology.create('bench', { v6 });
      } catch (e) {
        if (!v6) throw e;
        const msg = (e as Error).message.split('\n')[0]!.slice(0, 300);
        log(`dual-stack topology failed (${msg}): building it IPv4 only`);
        run.notes.push({ text: `group datapath6: the dual-stack topology could not be built (${msg})` });
        v6 = false;
        topo = await BenchTopology.create('bench');
      }
      cleanups.push(await startServers(topo.server.ns, v6 ? [SERVER.ip, SERVER.ip6] : [SERVER.ip]));
      await waitServers(topo.server.ns, SERVER.ip); // the IPv6 listeners are awaited by datapath6
      sw = new DataplaneSwitch(topo, s.iptables);
      await sw.open();
      run.notes.push({ text: `tortie's workload programs in this run: host routing ${sw.hostRouting}` });
      const t = topo;
      const d = sw;
      // A group that fails is noted; the node goes back to bare and the next group runs.
      const group = async (name: string, fn: () => Promise<void>) => {
        if (!s.groups.has(name)) return;
        await guarded(run, `group ${name}`, fn);
        await d.reset();
      };
      await group('datapath', () => datapathGroup(run, s, t, d));
      await group('datapath6', () => datapathGroup(run, s, t, d, 6));
      await group('rules', () => sweepGroup(run, s, t, d, 'rules'));
      await group('members', () => sweepGroup(run, s, t, d, 'members'));
      await group('prefilter', () => prefilterGroup(run, s, t, d));
      run.notes.push({ text: `tortie's flow-log events consumed during the run: ${sw.flowEvents}` });
      await sw.close();
      sw = undefined;
      topo.destroy();
      topo = undefined;
    }
    if (s.groups.has('control')) await guarded(run, 'group control', () => runControlPlane(run, s.control, ROOT, log));
    if (s.groups.has('crossnode')) await guarded(run, 'cross-node (bench/networking-bench)', () => crossNode(run, ROOT, s.seconds.wrk, s.repeats, log));
    // datapath-pktcost takes the median of 3 runs itself; quick mode runs it once.
    if (s.groups.has('pktcost')) await guarded(run, 'per-packet cost (bench/datapath-pktcost)', () => packetCost(run, ROOT, s.mode === 'quick' ? 100_000 : 1_000_000, s.mode === 'quick' ? 1 : s.repeats, log));
  } finally {
    await sw?.close().catch(() => undefined);
    topo?.destroy();
  }
  run.meta.finishedAt = new Date().toISOString();
  publish(run, s);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e: unknown) => {
    log(`failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  });
}
