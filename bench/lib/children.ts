/**
 * Figures from the other engineers' benchmarks, run as child processes and parsed from what they
 * print (their output is their contract; a change there shows up here as a parse failure noted
 * in the run, never as a wrong number):
 *   - bench/networking-bench.ts: cross-node iperf3 with IPIP and VXLAN vs direct, wrk through BPF SNAT vs
 *     routed back, on the three-node namespace cluster — one sample per round, rounds interleave
 *     the configurations, so each IPIP/SNAT figure is paired with its direct/no-SNAT round;
 *   - bench/datapath-pktcost.ts: per-packet cost of the programs by BPF_PROG_TEST_RUN repeat, IPv4
 *     and IPv6 packets through the same tables;
 *   - bench/compile-bench.ts (run by control-plane.ts): its figures are parsed here.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { addFigure, addSample, type RunResult } from './results';

export class ChildBenchError extends Error {
  readonly code = 'ERR_BENCH_CHILD';
  constructor(message: string) {
    super(message);
    this.name = 'ChildBenchError';
  }
}

/** Runs `node <script> args…`, bounded; resolves stdout, rejects with the tail of stderr. */
export function runScript(script: string, args: string[], timeoutMs: number, nodeArgs: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => { out += String(d); });
    c.stderr.on('data', (d) => { err = (err + String(d)).slice(-2000); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; c.kill('SIGINT'); setTimeout(() => c.kill('SIGKILL'), 5000).unref(); }, timeoutMs);
    const stop = () => c.kill('SIGINT');
    process.once('exit', stop);
    c.on('exit', (code) => {
      clearTimeout(timer);
      process.removeListener('exit', stop);
      if (code === 0 && !timedOut) resolve(out);
      else reject(new ChildBenchError(`${script.split('/').pop()} ${timedOut ? `did not finish within ${timeoutMs / 1000} s` : `exited ${code}`}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/** bench/compile-bench.ts's printed figures (initial compile, policy delta, RSS). */
export function parseCompileBench(out: string): { initialMs: number; policyUpdateMs?: number; rssAfterMb?: number } {
  const init = /initial compile \(wall \/ CPU\)\s+([\d.]+) ms/.exec(out);
  if (!init) throw new Error(`compile-bench: no "initial compile" line in its output: ${out.slice(0, 300)}`);
  const pol = /policy update \(any policy\)[^\n]*?\s([\d.]+) ms wall/.exec(out);
  const rss = /RSS before \/ after compile \/ after deltas\s+\d+ MB \/ (\d+) MB/.exec(out);
  return { initialMs: Number(init[1]), policyUpdateMs: pol ? Number(pol[1]) : undefined, rssAfterMb: rss ? Number(rss[1]) : undefined };
}

export interface NetworkingRound { direct: number; ipip: number; crossSubnet: number; vxlan?: number }
export interface SnatRound { plain: number; snat: number }

export function parseNetworkingBench(out: string): { tp: NetworkingRound[]; conn: SnatRound[] } {
  const tp: NetworkingRound[] = [];
  const conn: SnatRound[] = [];
  for (const m of out.matchAll(/round \d+: A→B direct ([\d.]+) Gbit\/s, A→B IPIP ([\d.]+) Gbit\/s, A→C IPIP via router ([\d.]+) Gbit\/s(?:, A→B VXLAN ([\d.]+) Gbit\/s)?/g)) {
    tp.push({ direct: Number(m[1]), ipip: Number(m[2]), crossSubnet: Number(m[3]), ...(m[4] !== undefined ? { vxlan: Number(m[4]) } : {}) });
  }
  for (const m of out.matchAll(/round \d+: no SNAT ([\d.]+) conn\/s, SNAT ([\d.]+) conn\/s/g)) conn.push({ plain: Number(m[1]), snat: Number(m[2]) });
  if (tp.length === 0 && conn.length === 0) throw new ChildBenchError(`networking-bench: no "round N:" lines in its output: ${out.slice(0, 300)}`);
  return { tp, conn };
}

export interface PktCostPolicy {
  rules: number; cells: number; newFlowDeny: number; newFlowAllow: number; established: number;
  /** The established packet in single runs, as newFlowAllow is measured (its floor), when printed. */
  establishedSingle?: number;
  /** IPv6 packets through the same table, when printed. */
  deny6?: number; established6?: number;
  /** The established flow's reply through tortie_from_wep: host routing off / on (its fib lookup). */
  reply?: { off: number; on: number }; reply6?: { off: number; on: number };
}

export interface PktCost {
  prefilterPass?: number;
  prefilterDrop?: number;
  policy: PktCostPolicy[];
}

export function parsePktCost(out: string): PktCost {
  const r: PktCost = { policy: [] };
  const pf = /prefilter \([^)]*\): pass (\d+) ns\/pkt, drop (\d+) ns\/pkt/.exec(out);
  if (pf) { r.prefilterPass = Number(pf[1]); r.prefilterDrop = Number(pf[2]); }
  // Each "workload tc, N rules" line may be followed by its indented IPv6 and reply lines.
  const blocks = out.split(/\n(?=workload tc, )/);
  for (const b of blocks) {
    const m = /^workload tc, (\d+) rules \((\d+) cells in the table\): new flow denied (\d+) ns\/pkt, new flow allowed (\d+) ns\/pkt.*?, established (\d+) ns\/pkt/m.exec(b);
    if (!m) continue;
    const p: PktCostPolicy = { rules: Number(m[1]), cells: Number(m[2]), newFlowDeny: Number(m[3]), newFlowAllow: Number(m[4]), established: Number(m[5]) };
    const single = /the established packet in single runs: (\d+) ns\/pkt/.exec(b);
    if (single) p.establishedSingle = Number(single[1]);
    const v6 = /^\s+IPv6, same table: new flow denied (\d+) ns\/pkt.*?, established (\d+) ns\/pkt/m.exec(b);
    if (v6) { p.deny6 = Number(v6[1]); p.established6 = Number(v6[2]); }
    const rp = /^\s+established, the source's side \(tortie_from_wep\): IPv4 (\d+) ns\/pkt, with host routing's fib lookup (\d+); IPv6 (\d+), with host routing's fib lookup (\d+)/m.exec(b);
    if (rp) { p.reply = { off: Number(rp[1]), on: Number(rp[2]) }; p.reply6 = { off: Number(rp[3]), on: Number(rp[4]) }; }
    r.policy.push(p);
  }
  if (r.prefilterDrop === undefined && r.policy.length === 0) throw new ChildBenchError(`datapath-pktcost: no figures in its output: ${out.slice(0, 300)}`);
  return r;
}

export async function crossNode(run: RunResult, root: string, seconds: number, rounds: number, log: (m: string) => void): Promise<void> {
  const G = 'Cross-node (three-node cluster, tortie on every node)';
  const fTp = addFigure(run, { id: 'ipip-tcp', title: 'iperf3 A→B, same subnet: IPIP vs direct', unit: 'Gbit/s', better: 'higher', group: G,
    goal: 'IPIP ≥ 0.95× direct', labels: { bare: 'direct (ipipMode Never)', tortie: 'IPIP (ipipMode Always)' } });
  const fVxlan = addFigure(run, { id: 'vxlan-tcp', title: 'iperf3 A→B, same subnet: VXLAN vs direct', unit: 'Gbit/s', better: 'higher', group: G,
    labels: { bare: 'direct (vxlanMode Never)', tortie: 'VXLAN (vxlanMode Always)' } });
  const fCross = addFigure(run, { id: 'ipip-cross-subnet', title: 'iperf3 A→C across a router, IPIP (CrossSubnet)', unit: 'Gbit/s', better: 'higher', group: G,
    labels: { tortie: 'IPIP via router' } });
  const fSnat = addFigure(run, { id: 'snat-conn-rate', title: 'wrk A→outside, Connection: close: SNAT vs none', unit: 'conn/s', better: 'higher', group: G,
    goal: 'SNAT ≥ 0.97× no SNAT', labels: { bare: 'no SNAT (routed back)', tortie: 'natOutgoing (SNAT in BPF)' } });
  log(`crossnode: bench/networking-bench.js ${seconds}s × ${rounds} rounds`);
  const out = await runScript(join(root, 'dist/bench/networking-bench.js'), [String(seconds), String(rounds), '16'], (seconds * 5 * rounds + 180) * 1000);
  const r = parseNetworkingBench(out);
  r.tp.forEach((x, i) => {
    addSample(run, fTp, 'bare', i, x.direct);
    addSample(run, fTp, 'tortie', i, x.ipip);
    addSample(run, fCross, 'tortie', i, x.crossSubnet);
    if (x.vxlan !== undefined) {
      addSample(run, fVxlan, 'bare', i, x.direct);
      addSample(run, fVxlan, 'tortie', i, x.vxlan);
    }
  });
  r.conn.forEach((x, i) => {
    addSample(run, fSnat, 'bare', i, x.plain);
    addSample(run, fSnat, 'tortie', i, x.snat);
  });
  run.notes.push({ figure: fTp.id, text: 'from bench/networking-bench.ts (the networking engineer\'s): in this group "bare" is the same tortie cluster without the feature (direct routing, no SNAT), so the ratio is the cost of the feature itself' });
}

export async function packetCost(run: RunResult, root: string, repeat: number, runs: number, log: (m: string) => void): Promise<void> {
  const G = 'Per-packet program cost (BPF_PROG_TEST_RUN)';
  const f = (id: string, title: string) => addFigure(run, { id, title, unit: 'ns/pkt', better: 'lower', group: G, labels: { tortie: 'tortie' } });
  for (let i = 0; i < runs; i++) {
    log(`pktcost: bench/datapath-pktcost.js ${repeat} (${i + 1}/${runs})`);
    const r = parsePktCost(await runScript(join(root, 'dist/bench/datapath-pktcost.js'), [String(repeat)], 300_000));
    if (r.prefilterDrop !== undefined) addSample(run, f('pkt-prefilter-drop', 'XDP prefilter, dropped packet (10,000 deny-listed CIDRs)'), 'tortie', i, r.prefilterDrop);
    if (r.prefilterPass !== undefined) addSample(run, f('pkt-prefilter-pass', 'XDP prefilter, passed packet (10,000 deny-listed CIDRs)'), 'tortie', i, r.prefilterPass);
    for (const p of r.policy) {
      const n = p.rules.toLocaleString('en-US');
      addSample(run, f(`pkt-new-deny-${p.rules}`, `tc policy path, new flow denied, ${n} rules`), 'tortie', i, p.newFlowDeny, undefined, { cells: p.cells });
      addSample(run, f(`pkt-new-allow-${p.rules}`, `tc policy path, new flow allowed (+ conntrack create), ${n} rules`), 'tortie', i, p.newFlowAllow);
      addSample(run, f(`pkt-established-${p.rules}`, `tc established flow (conntrack hit), ${n} rules`), 'tortie', i, p.established);
      if (p.establishedSingle !== undefined) addSample(run, f(`pkt-established-single-${p.rules}`, `tc established flow in single runs (the floor of the new-flow figure's method), ${n} rules`), 'tortie', i, p.establishedSingle);
      if (p.deny6 !== undefined) addSample(run, f(`pkt-new-deny-v6-${p.rules}`, `tc policy path, new flow denied, IPv6, ${n} rules (same table)`), 'tortie', i, p.deny6, undefined, { ipv4: p.newFlowDeny });
      if (p.established6 !== undefined) addSample(run, f(`pkt-established-v6-${p.rules}`, `tc established flow (conntrack hit), IPv6, ${n} rules`), 'tortie', i, p.established6, undefined, { ipv4: p.established });
      if (p.reply) {
        addSample(run, f(`pkt-reply-${p.rules}`, `tc established reply at the source (tortie_from_wep), ${n} rules`), 'tortie', i, p.reply.off);
        addSample(run, f(`pkt-reply-hr-${p.rules}`, `tc established reply at the source with host routing's fib lookup, ${n} rules`), 'tortie', i, p.reply.on);
      }
      if (p.reply6) {
        addSample(run, f(`pkt-reply-v6-${p.rules}`, `tc established reply at the source (tortie_from_wep), IPv6, ${n} rules`), 'tortie', i, p.reply6.off);
        addSample(run, f(`pkt-reply-hr-v6-${p.rules}`, `tc established reply at the source with host routing's fib lookup, IPv6, ${n} rules`), 'tortie', i, p.reply6.on);
      }
    }
  }
}
