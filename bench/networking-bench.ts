/**
 * Networking benchmarks on the three-node namespace cluster of test/networking (tortie's
 * dataplane and route manager per node, in-process):
 *   1. throughput: iperf3 between a workload on node A and one on node B (same underlay subnet),
 *      pool ipipMode Never (routed directly) vs Always (IPIP built by BPF on the same path) vs
 *      vxlanMode Always (VXLAN built by BPF on the same path; the 1480-byte workloads learn the
 *      1450 route MTU by PMTU discovery); plus A → C across the router with CrossSubnet (IPIP)
 *      for reference. Goal: IPIP ≥ 0.95×. Across the router A → C also VXLAN both ways (the
 *      cluster is dual stack): IPv4 VXLAN (vxlanMode CrossSubnet) vs VXLAN over IPv6 (the IPv6
 *      pool's vxlanMode CrossSubnet, iperf3 -6), reported as a ratio.
 *   2. connection rate: wrk (`Connection: close`, every request a new TCP connection) from a
 *      workload on A to nginx on the outside host, natOutgoing on (SNAT in BPF on A's uplink)
 *      vs off (the router and the outside host get a route back to the workload instead).
 *      Goal: SNAT ≥ 0.97×.
 * Rounds alternate the configurations; medians are reported. Prints figures; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/networking-bench.js [seconds] [rounds] [connections] [ab]
 *
 * `conn` as the fourth argument runs only the connection-rate rounds, each with diagnostics: the
 * workload's and the outside host's TCP counters (nstat: retransmissions, resets, PAWS, TIME-WAIT),
 * node A's tc programs' runs and run time per connection (kernel.bpf_stats_enabled, on only during
 * the wrk runs and restored after), the CPU time of node A's housekeeping (conntrack and NAT
 * sweeps) and wrk's latency percentiles. TORTIE_BENCH_OBJECT_DIR=<dir> loads every node's BPF
 * objects from another build's directory (alternate runs to compare builds).
 *
 * `ab` as the fourth argument runs only the A→B throughput figures (direct, IPIP, VXLAN,
 * interleaved) and prints their medians and ranges: the tunnel overhead without the router
 * and wrk runs.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InProcessCluster, type ClusterWorkload } from '../src/testbed';
import { median } from './lib/stats';
import { readVxStats, sumPerCpuCounters, VX6STAT } from '../src/dataplane/bpf/net-codecs';
import { pool } from '../src/testbed/fixtures';
import { nginxConfig, parseWrk } from './lib/tools';

const SECONDS = Number(process.argv[2] ?? 5);
const ROUNDS = Number(process.argv[3] ?? 3);
const CONNS = Number(process.argv[4] ?? 16);
const ONLY_AB = process.argv[5] === 'ab';
const ONLY_CONN = process.argv[5] === 'conn';
const STATS = '/proc/sys/kernel/bpf_stats_enabled';
/** TORTIE_BENCH_OBJECT_DIR=<dir>: every node's BPF objects from there (another build), to compare builds run by run. */
const OBJECT_DIR = process.env.TORTIE_BENCH_OBJECT_DIR || undefined;
const PERF_DIR = process.env.TORTIE_BENCH_PERF_DIR || undefined;
/** TORTIE_BENCH_PERF_ARGS: more `perf record` arguments (space-separated, e.g. `-g`). */
const PERF_ARGS = (process.env.TORTIE_BENCH_PERF_ARGS ?? '').split(/\s+/).filter(Boolean);
let perfRuns = 0;

/** TCP counters of a namespace (nstat, absolute, history untouched). */
async function nstat(ns: ClusterWorkload['ns']): Promise<Map<string, number>> {
  const r = await ns.exec(['nstat', '-asz']);
  const m = new Map<string, number>();
  for (const l of r.stdout.split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f.length >= 2 && /^\d+$/.test(f[1]!)) m.set(f[0]!, Number(f[1]));
  }
  return m;
}
const NSTAT_KEYS = ['TcpRetransSegs', 'TcpExtTCPSynRetrans', 'TcpOutRsts', 'TcpEstabResets', 'TcpAttemptFails', 'TcpExtPAWSEstab',
  'TcpExtPAWSActive', 'TcpExtTW', 'TcpExtTWRecycled', 'TcpExtTCPTimeWaitOverflow', 'TcpExtTCPChallengeACK', 'TcpExtTCPACKSkippedTimeWait',
  'TcpExtTCPAbortOnData', 'TcpExtListenDrops', 'TcpExtListenOverflows', 'TcpExtTCPReqQFullDrop', 'TcpExtTCPBacklogDrop', 'TcpExtTCPTimeouts'];
function nstatDiff(a: Map<string, number>, b: Map<string, number>): string {
  return NSTAT_KEYS.map((k) => [k, (b.get(k) ?? 0) - (a.get(k) ?? 0)] as const).filter(([, v]) => v !== 0)
    .map(([k, v]) => `${k.replace(/^TcpExt/, '')} ${v}`).join(', ') || 'none';
}

type ProgRun = { cnt: number; ns: number };
/** Run count and run time of node A's tc programs (bpftool; ids from its attachments), by uplink/workload and hook. */
async function progStats(c: InProcessCluster): Promise<Map<string, ProgRun>> {
  const a = c.nodes.get('node-a')!.ns;
  const net = JSON.parse((await a.exec(['bpftool', 'net', 'show', '-j'])).stdout) as { tc?: { devname: string; kind: string; id: number }[] }[];
  const out = new Map<string, ProgRun>();
  for (const t of net.flatMap((x) => x.tc ?? [])) {
    const key = `${t.devname.startsWith('cali') ? 'wep' : t.devname}/${t.kind}`;
    const p = JSON.parse((await a.exec(['bpftool', 'prog', 'show', 'id', String(t.id), '-j'])).stdout) as { run_cnt?: number; run_time_ns?: number };
    const cur = out.get(key) ?? { cnt: 0, ns: 0 };
    out.set(key, { cnt: cur.cnt + (p.run_cnt ?? 0), ns: cur.ns + (p.run_time_ns ?? 0) });
  }
  return out;
}
function progDiff(a: Map<string, ProgRun>, b: Map<string, ProgRun>, conns: number): string {
  return [...b].map(([k, v]) => {
    const o = a.get(k) ?? { cnt: 0, ns: 0 };
    const n = v.cnt - o.cnt, t = v.ns - o.ns;
    return `${k} ${(n / conns).toFixed(1)} runs/conn ${n ? (t / n).toFixed(0) : '-'} ns/run ${(t / conns).toFixed(0)} ns/conn`;
  }).join('; ');
}

async function iperf(from: ClusterWorkload, to: ClusterWorkload, family: 4 | 6 = 4): Promise<number> {
  const r = await from.ns.exec(['iperf3', `-${family}`, '-c', family === 6 ? to.ip6! : to.ip, '-p', '5201', '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 30) * 1000 });
  const j = JSON.parse(r.stdout);
  if (j.error) throw new Error(`iperf3 → ${family === 6 ? to.ip6 : to.ip}: ${j.error}`);
  return (j.end.sum_received.bits_per_second as number) / 1e9;
}

let lastWrk: ReturnType<typeof parseWrk> | undefined;
async function wrk(from: ClusterWorkload, ip: string): Promise<number> {
  const r = await from.ns.exec(['wrk', '-t1', `-c${CONNS}`, `-d${SECONDS}s`, '--latency', '-H', 'Connection: close', `http://${ip}/`],
    { timeoutMs: (SECONDS + 30) * 1000 });
  const w = parseWrk(r.stdout);
  lastWrk = w;
  if (w.errors || w.non2xx) process.stdout.write(`    (wrk: ${w.errors} socket errors, ${w.non2xx} non-2xx)\n`);
  return w.requestsPerSecond;
}

/** Node A's NAT refusals so far (the agent's housekeeping, which also runs its sweeps). */
function natDrops(c: InProcessCluster): { noPort: bigint; quota: bigint } {
  const d = c.nodes.get('node-a')!.dp!.housekeeping().drops;
  return { noPort: d.nat_no_port ?? 0n, quota: d.nat_quota ?? 0n };
}

async function main(): Promise<void> {
  const c = await InProcessCluster.create('netbench', { objectDir: OBJECT_DIR });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-netbench-'));
  try {
    c.setPool({ ipipMode: 'Never', natOutgoing: true });
    await c.addIpv6();
    c.put(pool('default-ipv6-ippool', 'fd00:10::/48', { vxlanMode: 'CrossSubnet', blockSize: 122 }));
    const wa = await c.addWorkload6('wa', 'node-a', '192.168.1.10', 'fd00:10:0:1::a', 1480);
    const wb = await c.addWorkload6('wb', 'node-b', '192.168.2.10', 'fd00:10:0:2::a', 1480);
    const wc = await c.addWorkload6('wc', 'node-c', '192.168.3.10', 'fd00:10:0:3::a', 1480);
    await c.sync();
    for (const w of [wb, wc]) w.ns.spawn(['iperf3', '-s', '-p', '5201'], { stdio: 'ignore' });
    fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir, `${c.outsideIp}:80`));
    c.outside.spawn(['nginx', '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
    await wa.ns.sh('sysctl -qw net.ipv4.ip_local_port_range="1024 65000"');
    // Every iperf3 run starts from the same TCP state: without this the kernel would seed a
    // connection's ssthresh from the previous run to the same workload (the metrics cache), and
    // the configurations follow each other in a fixed order. The default again for wrk below.
    await wa.ns.sh('sysctl -qw net.ipv4.tcp_no_metrics_save=1');
    await new Promise((r) => setTimeout(r, 1000));

    process.stdout.write(`networking bench: ${SECONDS}s per run, ${ROUNDS} rounds, wrk -c${CONNS}, workload MTU 1480\n`);
    const tp: Record<string, number[]> = { direct: [], ipip: [], vxlan: [], cross: [], crossVx4: [], crossVx6: [] };
    for (let i = 0; i < (ONLY_CONN ? 0 : ROUNDS); i++) {
      c.setPool({ ipipMode: 'Never', natOutgoing: true });
      await c.sync();
      tp.direct!.push(await iperf(wa, wb));
      c.setPool({ ipipMode: 'Always', natOutgoing: true });
      await c.sync();
      const s0 = c.stats('node-a');
      tp.ipip!.push(await iperf(wa, wb));
      const s1 = c.stats('node-a');
      if (s1.encapFast + s1.encapUplink === s0.encapFast + s0.encapUplink) throw new Error('Always run was not encapsulated');
      c.setPool({ ipipMode: 'Never', vxlanMode: 'Always', natOutgoing: true });
      await c.sync();
      const vx = () => readVxStats(c.nodes.get('node-a')!.dp!.routing!.maps.vxst);
      const v0 = vx();
      tp.vxlan!.push(await iperf(wa, wb));
      if (vx().encapFast + vx().encapUplink === v0.encapFast + v0.encapUplink) throw new Error('VXLAN run was not encapsulated');
      if (ONLY_AB) {
        process.stdout.write(`  round ${i + 1}: A→B direct ${tp.direct!.at(-1)!.toFixed(2)} Gbit/s, IPIP ${tp.ipip!.at(-1)!.toFixed(2)} Gbit/s, VXLAN ${tp.vxlan!.at(-1)!.toFixed(2)} Gbit/s\n`);
        continue;
      }
      c.setPool({ ipipMode: 'CrossSubnet', natOutgoing: true });
      await c.sync();
      tp.cross!.push(await iperf(wa, wc));
      c.setPool({ ipipMode: 'Never', vxlanMode: 'CrossSubnet', natOutgoing: true });
      await c.sync();
      tp.crossVx4!.push(await iperf(wa, wc));
      const vx6 = () => sumPerCpuCounters(c.nodes.get('node-a')!.dp!.routing!.maps.vx6st, VX6STAT).encapUplink;
      const e0 = vx6();
      tp.crossVx6!.push(await iperf(wa, wc, 6));
      if (vx6() === e0) throw new Error('IPv6 A→C run was not encapsulated');
      process.stdout.write(`  round ${i + 1}: A→C VXLAN via router: IPv4 ${tp.crossVx4!.at(-1)!.toFixed(2)} Gbit/s, IPv6 (outer IPv6) ${tp.crossVx6!.at(-1)!.toFixed(2)} Gbit/s\n`);
      process.stdout.write(`  round ${i + 1}: A→B direct ${tp.direct!.at(-1)!.toFixed(2)} Gbit/s, A→B IPIP ${tp.ipip!.at(-1)!.toFixed(2)} Gbit/s, A→C IPIP via router ${tp.cross!.at(-1)!.toFixed(2)} Gbit/s, A→B VXLAN ${tp.vxlan!.at(-1)!.toFixed(2)} Gbit/s\n`);
    }

    await wa.ns.sh('sysctl -qw net.ipv4.tcp_no_metrics_save=0');
    if (ONLY_AB) {
      const d = median(tp.direct!);
      const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
      const ratios = (xs: number[]) => xs.map((x, i) => x / tp.direct![i]!);
      process.stdout.write(`\nmedians (min–max), load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
      process.stdout.write(`  iperf3 A→B direct (Never)   ${d.toFixed(2)} Gbit/s (${range(tp.direct!)})\n`);
      for (const [k, label] of [['ipip', 'IPIP (Always)'], ['vxlan', 'VXLAN (Always)']] as const) {
        const xs = tp[k]!;
        process.stdout.write(`  iperf3 A→B ${label.padEnd(16)} ${median(xs).toFixed(2)} Gbit/s (${range(xs)})   ratio ${(median(xs) / d).toFixed(2)}×, ` +
          `per-round ratios median ${median(ratios(xs)).toFixed(2)}× (${range(ratios(xs))})\n`);
      }
      return;
    }

    const cr: Record<string, number[]> = { plain: [], snat: [] };
    const returnRoute = `192.168.1.10/32 via 198.18.1.10`;
    // `conn` mode's diagnostics: TCP counters of the workload and the outside host, node A's
    // programs' run counts and times (bpf_stats, on only during the measured runs), wrk latency.
    const statsBefore = ONLY_CONN ? fs.readFileSync(STATS, 'utf8').trim() : '';
    const restoreStats = (): void => { if (ONLY_CONN) try { fs.writeFileSync(STATS, statsBefore); } catch { /* best effort */ } };
    // Node A's housekeeping (the in-process agent's timer), timed in CPU.
    const hk = { calls: 0, cpuUs: 0 };
    if (ONLY_CONN) {
      const dp = c.nodes.get('node-a')!.dp!;
      const orig = dp.housekeeping.bind(dp);
      dp.housekeeping = () => {
        const t0 = process.cpuUsage();
        try { return orig(); } finally { const d = process.cpuUsage(t0); hk.calls++; hk.cpuUs += d.user + d.system; }
      };
    }
    const measured = async (label: string): Promise<number> => {
      if (!ONLY_CONN) return wrk(wa, c.outsideIp);
      const n0 = [await nstat(wa.ns), await nstat(c.outside)], p0 = await progStats(c);
      fs.writeFileSync(STATS, '1');
      let rate: number;
      const h0 = { ...hk };
      // TORTIE_BENCH_PERF_DIR=<dir>: a system-wide `perf record` beside each wrk run (<label>-<n>.data;
      // TORTIE_BENCH_PERF_ARGS adds arguments, e.g. -g).
      const perf = PERF_DIR ? spawn('perf', ['record', '-a', '-q', ...PERF_ARGS, '-o', path.join(PERF_DIR, `${label.replace(/ /g, '')}-${++perfRuns}.data`), '--', 'sleep', String(SECONDS)], { stdio: 'ignore' }) : undefined;
      try { rate = await wrk(wa, c.outsideIp); } finally { restoreStats(); }
      if (perf && perf.exitCode === null) await new Promise((r) => perf.once('exit', r));
      const h1 = { ...hk };
      const n1 = [await nstat(wa.ns), await nstat(c.outside)], p1 = await progStats(c);
      const conns = lastWrk!.requests, l = lastWrk!.latency;
      process.stdout.write(`    ${label}: ${conns} conns, latency p50 ${l.p50} p90 ${l.p90} p99 ${l.p99} µs; ` +
        `node A housekeeping ${h1.calls - h0.calls}× ${((h1.cpuUs - h0.cpuUs) / 1000).toFixed(1)} ms CPU\n` +
        `      workload TCP: ${nstatDiff(n0[0]!, n1[0]!)}\n      outside TCP: ${nstatDiff(n0[1]!, n1[1]!)}\n` +
        `      ${progDiff(p0, p1, conns)}\n`);
      return rate;
    };
    try {
      for (let i = 0; i < ROUNDS; i++) {
        c.setPool({ ipipMode: 'CrossSubnet', natOutgoing: false });
        await c.sync();
        await c.router.sh(`ip route replace ${returnRoute}`);
        await c.outside.sh('ip route replace 192.168.0.0/16 via 198.18.3.1');
        cr.plain!.push(await measured('no SNAT'));
        await c.router.sh(`ip route del ${returnRoute}`);
        await c.outside.sh('ip route del 192.168.0.0/16');
        c.setPool({ ipipMode: 'CrossSubnet', natOutgoing: true });
        await c.sync();
        const s0 = c.stats('node-a'), d0 = natDrops(c);
        cr.snat!.push(await measured('SNAT'));
        const s1 = c.stats('node-a'), d1 = natDrops(c);
        process.stdout.write(`  round ${i + 1}: no SNAT ${cr.plain!.at(-1)!.toFixed(0)} conn/s, SNAT ${cr.snat!.at(-1)!.toFixed(0)} conn/s ` +
          `(${s1.snatNew - s0.snatNew} new mappings, ${s1.snatRetry - s0.snatRetry} port candidates tried, ` +
          `packets refused a new mapping: ${d1.noPort - d0.noPort} no port, ${d1.quota - d0.quota} over quota — SYNs, or late segments ` +
          `of released flows, which cost wrk nothing: the workload's SYN retransmissions tell)\n`);
      }
    } finally { restoreStats(); }
    if (ONLY_CONN) {
      const n = median(cr.plain!), s = median(cr.snat!);
      const ratios = cr.snat!.map((x, i) => x / cr.plain![i]!);
      process.stdout.write(`\nmedians, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
      process.stdout.write(`  wrk A→outside without SNAT           ${n.toFixed(0)} conn/s\n`);
      process.stdout.write(`  wrk A→outside with SNAT (BPF)        ${s.toFixed(0)} conn/s   ratio ${(s / n).toFixed(2)}× ` +
        `(per-round ${ratios.map((r) => r.toFixed(2)).join(' ')}; goal ≥ 0.97×)\n`);
      return;
    }

    const d = median(tp.direct!), p = median(tp.ipip!), v = median(tp.vxlan!), x = median(tp.cross!);
    const x4 = median(tp.crossVx4!), x6 = median(tp.crossVx6!);
    const n = median(cr.plain!), s = median(cr.snat!);
    process.stdout.write('\nmedians\n');
    process.stdout.write(`  iperf3 A→B direct (Never)            ${d.toFixed(2)} Gbit/s\n`);
    process.stdout.write(`  iperf3 A→B IPIP (Always)             ${p.toFixed(2)} Gbit/s   ratio ${(p / d).toFixed(2)}× (goal ≥ 0.95×)\n`);
    process.stdout.write(`  iperf3 A→B VXLAN (Always)            ${v.toFixed(2)} Gbit/s   ratio ${(v / d).toFixed(2)}×, ${(v / p).toFixed(2)}× IPIP\n`);
    process.stdout.write(`  iperf3 A→C IPIP (CrossSubnet, router) ${x.toFixed(2)} Gbit/s\n`);
    process.stdout.write(`  iperf3 A→C VXLAN IPv4 (router)       ${x4.toFixed(2)} Gbit/s\n`);
    process.stdout.write(`  iperf3 A→C VXLAN IPv6 (outer IPv6)   ${x6.toFixed(2)} Gbit/s   ratio ${(x6 / x4).toFixed(2)}× IPv4 VXLAN\n`);
    process.stdout.write(`  wrk A→outside without SNAT           ${n.toFixed(0)} conn/s\n`);
    process.stdout.write(`  wrk A→outside with SNAT (BPF)        ${s.toFixed(0)} conn/s   ratio ${(s / n).toFixed(2)}× (goal ≥ 0.97×)\n`);
  } finally {
    await c.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { process.stderr.write(`${(e as Error).stack ?? e}\n`); process.exitCode = 1; });
