// The benchmark runner's pure parts on synthetic samples: statistics, per-repeat ratios, the
// Markdown table, SVG charts, tool-output parsers, the iptables/ipset rendering of a scenario,
// and the README section replacement. Nothing here is timed.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdf, median, percentile, spread, StatsError } from '../../bench/lib/stats';
import { addFigure, addSample, emptyRun, formatNumber, markdownReport, orderFor, pairedRatios, summarize, type DataplaneName, type RunResult } from '../../bench/lib/results';
import { cdfChart, escapeXml, lineChart, linearTicks, logTicks, SvgError } from '../../bench/lib/svg';
import { nginxConfig, parseIperfTcp, parseIperfUdp, parsePingPong, parseSockperf, parseSockperfFullLog, parseWrk, wrkDuration, ToolOutputError } from '../../bench/lib/tools';
import { calicoResources, checkScale, CLIENT, iptablesRestore, iptablesRuleCount, ipsetRestore, memberAddress, memberAddress6, MEMBER_SET, MEMBER_SET6, nftablesRuleCount, nftablesRuleset, NFT_MEMBER_SET, ScenarioError, SERVER, serverPolicy } from '../../bench/lib/scenarios';
import { GROUPS, settingsFrom } from '../../bench/run';
import type { WorkloadEndpoint } from '../../src/model';
import { performanceSection, performanceSummary, renderCharts, replaceSectionBlock, updateDocs } from '../../bench/lib/report';
import { parseCompileBench, parseNetworkingBench, parsePktCost, ChildBenchError } from '../../bench/lib/children';

function meta(): RunResult['meta'] {
  return {
    startedAt: '2026-01-02T03:04:05.678Z', mode: 'quick', argv: ['--quick'],
    host: { hostname: 'h', cpus: 'cpu', cores: 2, memoryBytes: 1, kernel: '6.0', os: 'linux' },
    versions: { node: 'v20' }, settings: { repeats: 3 },
  };
}

/** A run with known numbers: bare 100/110/90, tortie 0.9×, iptables 0.5× per repeat; a sweep. */
function syntheticRun(): RunResult {
  const run = emptyRun(meta());
  const f = addFigure(run, { id: 'tcp-1', title: 'TCP | 1 stream', unit: 'Gbit/s', better: 'higher', group: 'G1' });
  const bare = [100, 110, 90];
  bare.forEach((v, r) => {
    addSample(run, f, 'bare', r, v);
    addSample(run, f, 'tortie', r, v * 0.9);
    addSample(run, f, 'iptables', r, v * 0.5);
  });
  const sw = addFigure(run, { id: 'rules-conn-rate', title: 'conn rate vs rules', unit: 'conn/s', better: 'higher', group: 'G2', param: 'rules' });
  for (const [p, ipt] of [[1, 1], [100, 0.6], [10000, 0.2]] as const) {
    for (let r = 0; r < 3; r++) {
      addSample(run, sw, 'bare', r, 1000 + r, p);
      addSample(run, sw, 'tortie', r, 950 + r, p);
      addSample(run, sw, 'iptables', r, (1000 + r) * ipt, p);
    }
  }
  const cp = addFigure(run, { id: 'agent-rss', title: 'Agent RSS', unit: 'MB', better: 'lower', group: 'G3', goal: '< 300 MB' });
  [80, 82, 81].forEach((v, r) => addSample(run, cp, 'tortie', r, v));
  run.cdfs.push({ figure: 'lat-p50', dataplane: 'bare', points: cdf([5, 6, 7, 8, 50]) });
  run.cdfs.push({ figure: 'lat-p50', dataplane: 'tortie', points: cdf([6, 7, 8, 9, 80]) });
  run.notes.push({ text: 'a note' });
  return run;
}

t.test('statistics', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.same(spread([5, 1, 9, NaN]), { median: 5, min: 1, max: 9, n: 3 }, 'non-finite samples are ignored');
  t.throws(() => median([]), StatsError);
  t.throws(() => spread([NaN]), { code: 'ERR_BENCH_STATS' });
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  t.equal(percentile(xs, 50), 50);
  t.equal(percentile(xs, 99), 99);
  t.equal(percentile(xs, 100), 100);
  t.equal(percentile(xs, 0), 1);
  t.throws(() => percentile(xs, 101), /within \[0, 100\]/);
  const c = cdf(xs, 10);
  t.ok(c.length <= 10 && c.length >= 2, 'at most the requested number of points');
  t.same(c[0], [1, 0.01], 'starts at the minimum');
  t.same(c[c.length - 1], [100, 1], 'ends at (max, 1)');
  for (let i = 1; i < c.length; i++) t.ok(c[i]![0] > c[i - 1]![0] && c[i]![1] > c[i - 1]![1], 'strictly increasing');
  t.same(cdf([7, 7, 7]), [[7, 1]], 'ties collapse into one step');
});

t.test('ratios are paired by repeat, then summarised', async (t) => {
  const run = syntheticRun();
  const tcp = run.samples.filter((s) => s.figure === 'tcp-1');
  const by = (d: DataplaneName) => tcp.filter((s) => s.dataplane === d);
  const r = pairedRatios(by('iptables'), by('bare'));
  t.same(r.map((x) => Number(x.toFixed(6))), [0.5, 0.5, 0.5], 'each repeat against its own bare');
  t.same(pairedRatios(by('tortie'), by('bare').slice(0, 2)).length, 2, 'a repeat without bare is skipped');
  const sum = summarize(run);
  const row = sum.find((s) => s.def.id === 'tcp-1')!.cells.get(undefined)!;
  t.equal(row.get('bare')!.spread.median, 100);
  t.equal(row.get('bare')!.ratio, undefined, 'no ratio of bare to itself');
  t.equal(Number(row.get('tortie')!.ratio!.median.toFixed(6)), 0.9);
  t.equal(Number(row.get('iptables')!.spread.max.toFixed(6)), 55);
  const sweep = sum.find((s) => s.def.id === 'rules-conn-rate')!;
  t.same(sweep.params, [1, 100, 10000], 'parameter values sorted');
  t.equal(Number(sweep.cells.get(10000)!.get('iptables')!.ratio!.median.toFixed(6)), 0.2);
});

t.test('Markdown report', async (t) => {
  const md = markdownReport(syntheticRun(), { charts: [{ title: 'c', file: 'c.svg' }] });
  t.match(md, /### G1/);
  t.match(md, /\| TCP \\\| 1 stream \(higher is better\) \| 100 Gbit\/s \(90\.0–110\) \| 90\.0 Gbit\/s \(81\.0–99\.0\) \| 50\.0 Gbit\/s \(45\.0–55\.0\) \| 0\.90× \| 0\.50× \|/,
    'absolute median (min–max) per dataplane, ratios to bare, pipes escaped');
  t.match(md, /\| 10,000 \| 1,000 \| 951 \(950–952\) \| 200 \| 0\.95× \| 0\.20× \| 1\.00× \| 0\.20× \|/, 'sweep row with ratio to the first level');
  t.match(md, /\| Agent RSS \| tortie \| 81\.0 MB \(80\.0–82\.0\) \| < 300 MB \|/, 'single-dataplane figures with their goal');
  t.match(md, /- a note/);
  t.match(md, /- New connections\/s with 10,000 rules vs 1: tortie 1\.00×, iptables 0\.20× \(bare at 10,000: tortie 0\.95×, iptables 0\.20×\)/, 'headline: scale ratio per dataplane');
  t.match(md, /- iperf3 TCP 1 stream, as a ratio to bare: tortie 0\.90×, iptables 0\.50×/, 'headline: ratio to bare');
  t.match(md, /!\[c\]\(c\.svg\)/);
  t.notMatch(md, /nftables/, 'no column for a dataplane the run did not measure');
  const withNft = syntheticRun();
  [100, 110, 90].forEach((v, r) => addSample(withNft, withNft.figures[0]!, 'nftables', r, v * 0.6));
  const md2 = markdownReport(withNft);
  t.match(md2, /\| figure \| bare \| tortie \| iptables \| nftables \| tortie\/bare \| iptables\/bare \| nftables\/bare \|/, 'an nftables column and ratio when measured');
  t.match(md2, /\| 0\.90× \| 0\.50× \| 0\.60× \|/);
  t.match(md2, /- iperf3 TCP 1 stream, as a ratio to bare: tortie 0\.90×, iptables 0\.50×, nftables 0\.60×/, 'and in the headline');
  t.equal(formatNumber(123456), '123,000');
  t.equal(formatNumber(0.01234), '0.0123');
  t.equal(formatNumber(9.876), '9.88');
});

t.test('SVG charts', async (t) => {
  const svg = lineChart([
    { name: 'tortie', points: [{ x: 1, y: 10, min: 9, max: 11 }, { x: 10000, y: 9 }] },
    { name: 'a<b>', points: [{ x: 1, y: 10 }, { x: 10000, y: 2 }] },
  ], { title: 'rate & rules', xLabel: 'rules', yLabel: 'conn/s', xLog: true });
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg, /<\/svg>\n$/);
  t.equal((svg.match(/<polyline /g) ?? []).length, 2, 'one line per series');
  t.equal((svg.match(/<circle /g) ?? []).length, 4, 'one marker per point');
  t.match(svg, /rate &amp; rules/, 'title escaped');
  t.match(svg, /a&lt;b&gt;/, 'legend escaped');
  t.notMatch(svg, /NaN|undefined/);
  t.match(svg, />10k</, 'log axis labels in powers of ten');
  t.throws(() => lineChart([{ name: 'x', points: [{ x: 0, y: 1 }] }], { title: '', xLabel: '', yLabel: '', xLog: true }), SvgError);
  t.throws(() => lineChart([], { title: '', xLabel: '', yLabel: '' }), /no points/);
  const c = cdfChart([{ name: 'bare', points: cdf([5, 6, 7, 100]) }], { title: 'cdf', xLabel: 'µs', xLog: true });
  t.equal((c.match(/<path /g) ?? []).length, 1);
  t.notMatch(c, /NaN/);
  t.throws(() => cdfChart([{ name: 'x', points: [[1, 1.5]] }], { title: '', xLabel: '' }), /out of \[0, 1\]/);
  t.same(linearTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  t.same(logTicks(3, 2000), [1, 10, 100, 1000, 10000]);
  t.equal(escapeXml('"&'), '&quot;&amp;');
  const charts = renderCharts(syntheticRun());
  t.same(charts.map((x) => x.file), ['conn-rate-vs-rules.svg', 'latency-cdf.svg']);
  t.equal((charts[0]!.svg.match(/<polyline /g) ?? []).length, 3, 'one line per dataplane');
});

const IPERF_TCP = JSON.stringify({ end: { sum_sent: { bits_per_second: 9.1e9, retransmits: 12, seconds: 4 }, sum_received: { bits_per_second: 9.0e9, seconds: 4 } } });
const IPERF_UDP = JSON.stringify({ end: { sum: { packets: 120000, lost_packets: 20000, seconds: 2, bits_per_second: 1 } } });
const SOCKPERF = `sockperf: [2;35m====> avg-latency=10.015 (std-dev=59.764)[0m
sockperf: [2;35mTotal 27444 observations[0m; each percentile contains 274.44 observations
sockperf: ---> <MAX> observation = 2100.210
sockperf: ---> percentile 99.900 = 1188.554
sockperf: ---> percentile 99.000 =   21.817
sockperf: ---> percentile 50.000 =    6.394
sockperf: ---> <MIN> observation =    6.134
`;
const WRK = `Running 1s test @ http://192.168.255.2:80/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.05ms    2.71ms  28.37ms   91.02%
    Req/Sec     4.38k   310.52     4.80k    70.00%
  Latency Distribution
     50%  812.00us
     75%    3.18ms
     90%    5.06ms
     99%    1.20s
  4352 requests in 1.00s, 604.51KB read
  Socket errors: connect 1, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:   4344.28
Transfer/sec:    603.42KB
`;

t.test('tool output parsers', async (t) => {
  t.same(parseIperfTcp(IPERF_TCP), { bitsPerSecond: 9.0e9, retransmits: 12, seconds: 4 }, 'receiver side');
  t.same(parseIperfUdp(IPERF_UDP).packetsPerSecond, 50000, 'received packets per second');
  t.throws(() => parseIperfTcp('{"error":"unable to connect"}'), /unable to connect/);
  t.throws(() => parseIperfTcp('not json'), ToolOutputError);
  const sp = parseSockperf(SOCKPERF);
  t.same([sp.p50, sp.p99, sp.p999, sp.min, sp.max, sp.avg, sp.observations], [6.394, 21.817, 1188.554, 6.134, 2100.21, 10.015, 27444]);
  t.throws(() => parseSockperf('nothing'), /no p50/);
  t.same(parseSockperfFullLog('header\npacket, txTime(sec), rxTime(sec), latency(usec)\n0, 2.4, 2.5, 6.349\n1, 2.5, 2.6, 7.5\n----\n'), [6.349, 7.5]);
  t.throws(() => parseSockperfFullLog('x'), /no samples/);
  const w = parseWrk(WRK);
  t.same([w.requestsPerSecond, w.requests, w.errors, w.non2xx], [4344.28, 4352, 6, 7]);
  t.same(w.latency, { p50: 812, p75: 3180, p90: 5060, p99: 1.2e6 }, 'percentiles in µs');
  t.equal(wrkDuration('2.5ms'), 2500);
  t.throws(() => wrkDuration('fast'), /unparseable/);
  t.throws(() => parseWrk('oops'), /Requests\/sec/);
  const cb = parseCompileBench('initial compile (wall / CPU)                 2345 ms / 2000 ms\nRSS before / after compile / after deltas    50 MB / 310 MB / 320 MB\npolicy update (any policy), median of 21     1.25 ms wall / 1.10 ms CPU (max 3.0 wall); 2.0 tables rebuilt/update\n');
  t.same(cb, { initialMs: 2345, policyUpdateMs: 1.25, rssAfterMb: 310 });
  t.throws(() => parseCompileBench('garbage'), /initial compile/);
  const pp = parsePingPong('lost 2\n20000 30000 10000\n');
  t.same(pp, { latencies: [10, 15, 5], lost: 2 }, 'ping-pong: half of each round trip (ns) in µs, and the lost count');
  t.throws(() => parsePingPong('Traceback (most recent call last)'), /no "lost N" line/);
  t.throws(() => parsePingPong('lost 0\n\n'), /no round trips/);
  t.match(nginxConfig('/d', ['192.168.255.2:80', '[fd00:255::2]:80']), /server \{ listen 192\.168\.255\.2:80 reuseport backlog=4096; listen \[fd00:255::2\]:80 reuseport backlog=4096; location/,
    'nginx listens on both families of a dual-stack server');
});

t.test('the IPv6 rendering of the scenario (group datapath6)', async (t) => {
  const addrs = new Set(Array.from({ length: 100000 }, (_, k) => memberAddress6(k)));
  t.equal(addrs.size, 100000, 'IPv6 member addresses never collide');
  t.ok([...addrs].every((a) => a.startsWith('fd00:18::')), 'all in the ULA range fd00:18::/32');
  t.notOk(addrs.has(CLIENT.ip6) || addrs.has(SERVER.ip6), 'none is a workload\'s');
  const res = calicoResources({ rules: 3, members: 5 }, 6);
  const weps = res.filter((r): r is WorkloadEndpoint => r.kind === 'WorkloadEndpoint');
  const nets = (pod: string) => weps.find((w) => w.spec.pod === pod)!.spec.ipNetworks;
  t.same(nets('client'), [`${CLIENT.ip}/32`, `${CLIENT.ip6}/128`], 'client dual stack');
  t.same(nets('server'), [`${SERVER.ip}/32`, `${SERVER.ip6}/128`], 'server dual stack');
  t.same(nets('member-0'), [`${memberAddress6(0)}/128`], 'remote members IPv6 only');
  t.equal(weps.length, 2 + 4);
  t.same(calicoResources({ rules: 3, members: 5 }).filter((r): r is WorkloadEndpoint => r.kind === 'WorkloadEndpoint').find((w) => w.spec.pod === 'client')!.spec.ipNetworks,
    [`${CLIENT.ip}/32`], 'the IPv4 rendering is unchanged');
  const sets = ipsetRestore({ rules: 1, members: 10 }, 6).trim().split('\n');
  t.match(sets[0]!, new RegExp(`^create ${MEMBER_SET6} hash:ip family inet6 `), 'an inet6 ipset named as Felix names IPv6 sets');
  t.equal(sets[1], `add ${MEMBER_SET6} ${CLIENT.ip6}`);
  t.equal(sets.filter((l) => l.startsWith('add ')).length, 10);
  const ip6t = iptablesRestore({ rules: 3, members: 1 }, 6);
  t.match(ip6t, new RegExp(`-m set --match-set ${MEMBER_SET6} src`), 'ip6tables rules match the inet6 set');
  t.notMatch(ip6t, new RegExp(MEMBER_SET), 'and never the IPv4 one');
  const nft = nftablesRuleset({ rules: 3, members: 4 }, { family: 6 });
  t.match(nft, /^add table ip6 calico\ndelete table ip6 calico\nadd table ip6 calico\n/, 'table ip6 calico, replaced atomically');
  t.match(nft, new RegExp(`add set ip6 calico ${NFT_MEMBER_SET} \\{ type ipv6_addr; \\}`));
  t.match(nft, new RegExp(`ip6 saddr @${NFT_MEMBER_SET} tcp dport 20001 counter`), 'rules match the IPv6 source');
  t.notMatch(nft, /(^|\n)add \w+ ip calico|ip saddr/, 'nothing of the IPv4 table');
  t.equal(nftablesRuleCount({ rules: 3, members: 4 }, 6), nftablesRuleCount({ rules: 3, members: 4 }), 'the same rules as the IPv4 table');
  t.throws(() => nftablesRuleset({ rules: 1, members: 1 }, { family: 6, prefilterUplink: 'eth0' }), /IPv4 only/);
});

t.test('bench arguments: the datapath6 group', async (t) => {
  t.ok(GROUPS.includes('datapath6'));
  t.same([...settingsFrom(['--only', 'datapath6,pktcost']).groups], ['datapath6', 'pktcost']);
  t.notOk(settingsFrom(['--quick']).groups.has('datapath6'), 'quick mode leaves it out (its 2 minutes)…');
  t.ok(settingsFrom(['--quick', '--only', 'datapath6']).groups.has('datapath6'), '…unless named');
  t.ok(settingsFrom([]).groups.has('datapath6'), 'and the full run');
  t.throws(() => settingsFrom(['--only', 'datapath7']), /unknown group "datapath7"/);
});

t.test('report: the IPv6 same-node group, its headline and its CDF chart', async (t) => {
  const run = emptyRun(meta());
  const G = 'Same-node pod to pod (IPv6)';
  const f = addFigure(run, { id: 'tcp-1-v6', title: 'iperf3 TCP, 1 stream (IPv6)', unit: 'Gbit/s', better: 'higher', group: G });
  const c = addFigure(run, { id: 'conn-rate-v6', title: 'wrk → nginx, Connection: close (IPv6)', unit: 'conn/s', better: 'higher', group: G });
  [10, 12, 8].forEach((v, r) => {
    addSample(run, f, 'bare', r, v);
    addSample(run, f, 'tortie', r, v * 0.95);
    addSample(run, f, 'nftables', r, v * 0.7);
    addSample(run, c, 'bare', r, 1000 * v);
    addSample(run, c, 'tortie', r, 900 * v);
  });
  run.cdfs.push({ figure: 'lat-p50-v6', dataplane: 'bare', points: cdf([5, 6, 7]) });
  const md = markdownReport(run);
  t.match(md, /### Same-node pod to pod \(IPv6\)/);
  t.match(md, /\| iperf3 TCP, 1 stream \(IPv6\) \(higher is better\) \| 10\.0 Gbit\/s \(8\.00–12\.0\) \| 9\.50 Gbit\/s \(7\.60–11\.4\) \| 7\.00 Gbit\/s \(5\.60–8\.40\) \| 0\.95× \| 0\.70× \|/);
  t.match(md, /- iperf3 TCP 1 stream over IPv6, as a ratio to bare IPv6: tortie 0\.95×, nftables 0\.70×/, 'headline against the bare IPv6 path');
  t.match(md, /- new connections\/s over IPv6, as a ratio to bare IPv6: tortie 0\.90×/);
  t.notMatch(md, /- iperf3 TCP 1 stream, as a ratio/, 'no IPv4 headline without IPv4 figures');
  const charts = renderCharts(run).map((x) => x.file);
  t.same(charts, ['latency-cdf-v6.svg'], 'the IPv6 ping-pong CDF gets its own chart');
});

t.test('scenario rendering: iptables/ipset equivalent of the policy', async (t) => {
  const small = iptablesRestore({ rules: 1, members: 1 });
  const big = iptablesRestore({ rules: 1000, members: 1 });
  t.equal(iptablesRuleCount({ rules: 1000, members: 1 }) - iptablesRuleCount({ rules: 1, members: 1 }), 2 * 999, 'two iptables rules (mark, return) per extra Calico rule');
  t.match(small, /^\*filter\n/);
  t.match(small, /COMMIT\n$/);
  const tw = small.split('\n').filter((l) => l.startsWith('-A cali-tw-benchsrv'));
  t.match(tw[0]!, /--ctstate RELATED,ESTABLISHED -j ACCEPT/, 'established/related accepted first');
  t.match(tw[tw.length - 1]!, /-j DROP$/, 'and dropped when no policy accepted');
  t.match(big, new RegExp(`-m set --match-set ${MEMBER_SET} src -m multiport --destination-ports 20998 -j MARK`), 'selector memberships through the ipset');
  const sets = ipsetRestore({ rules: 1, members: 1000 }).trim().split('\n');
  t.equal(sets.filter((l) => l.startsWith('add ')).length, 1000, 'client + 999 remote members');
  const addrs = new Set(Array.from({ length: 100000 }, (_, k) => memberAddress(k)));
  t.equal(addrs.size, 100000, 'member addresses never collide');
  t.ok([...addrs].every((a) => a.startsWith('198.18.') || a.startsWith('198.19.')), 'inside the benchmarking range');
  t.notOk(addrs.has('198.18.0.10') || addrs.has('198.18.1.2'), 'outside the underlay addresses the topology uses');
  const res = calicoResources({ rules: 3, members: 5 });
  t.equal(res.filter((r) => r.kind === 'WorkloadEndpoint').length, 2 + 4);
  t.equal(serverPolicy({ rules: 3, members: 5 }).spec.ingress!.length, 3);
  t.throws(() => checkScale({ rules: 0, members: 1 }), ScenarioError);
  t.throws(() => checkScale({ rules: 1, members: 1e7 }), /members must be/);
});

t.test('scenario rendering: the nftables equivalent (Calico nftables shape)', async (t) => {
  t.equal(nftablesRuleCount({ rules: 1000, members: 1 }) - nftablesRuleCount({ rules: 1, members: 1 }), 2 * 999, 'two rules (mark, return) per extra Calico rule, as in iptables');
  const small = nftablesRuleset({ rules: 1, members: 1 });
  t.match(small, /^add table ip calico\ndelete table ip calico\nadd table ip calico\n/, 'replaces its own table atomically, one table for the family');
  t.match(small, /add map ip calico filter-cali-from-wl-dispatch \{ type ifname : verdict; \}/, 'dispatch through a verdict map');
  t.match(small, /"calibenchsrv" : goto filter-cali-tw-benchsrv/, 'onto the per-endpoint chain');
  t.match(small, /filter-cali-from-wl-dispatch iifname vmap @filter-cali-from-wl-dispatch\nadd rule ip calico filter-cali-from-wl-dispatch counter drop/, 'unknown cali* interfaces dropped');
  const tw = small.split('\n').filter((l) => l.startsWith('add rule ip calico filter-cali-tw-benchsrv '));
  t.match(tw[0]!, /ct state established,related counter accept$/, 'kernel conntrack: established/related accepted first');
  t.match(tw[1]!, /ct state invalid counter drop$/);
  t.match(tw[tw.length - 1]!, /counter drop$/, 'dropped when no policy accepted');
  t.notMatch(small, /raw-PREROUTING/, 'no prefilter unless asked');
  t.match(nftablesRuleset({ rules: 1, members: 1 }, { prefilterUplink: 'eth0' }), /raw-PREROUTING \{ type filter hook prerouting priority raw;[^\n]*\n[^\n]*iifname "eth0" ip saddr 198\.18\.1\.0\/24 counter drop/);
  const big = nftablesRuleset({ rules: 1000, members: 12_001 });
  t.match(big, new RegExp(`ip saddr @${NFT_MEMBER_SET} tcp dport 20998 counter meta mark set`), 'selector memberships through a named set');
  const elems = big.split('\n').filter((l) => l.startsWith(`add element ip calico ${NFT_MEMBER_SET} `));
  t.equal(elems.length, 3, 'set elements added in chunks of 5,000');
  t.equal(elems.reduce((a, l) => a + l.split(',').length, 0), 12_001, 'client + every remote member');
  t.throws(() => nftablesRuleset({ rules: 0, members: 1 }), ScenarioError);
});

t.test('docs section replacement (full tables in docs/benchmarks.md, summary in README) and interleaving order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const readme = join(dir, 'README.md');
  const doc = join(dir, 'docs/benchmarks.md');
  mkdirSync(join(dir, 'docs'));
  writeFileSync(readme, '# x\n\n## Layout\nkeep me\n\n## Performance\n\nFigures land here as the benchmarks run.\n\nmore text\n\n## After\nkeep me too\n');
  writeFileSync(doc, '# B\n\n## Method\nm\n\n## Latest results\n\nFigures land here as the benchmarks run.\n\n### Per-component figures\n\ntheirs\n\n## After\nkeep\n');
  updateDocs(readme, doc, syntheticRun(), join(dir, 'bench/results'));
  const once = readFileSync(readme, 'utf8');
  t.match(once, /## Layout\nkeep me\n/);
  t.match(once, /## After\nkeep me too\n$/);
  t.notMatch(once, /Figures land here/, 'the placeholder sentence is replaced');
  t.match(once, /<!-- bench:end -->\n\nmore text\n\n## After/, 'other text in the section is kept, after the block');
  t.notMatch(once, /### G1/, 'the README gets no tables');
  t.match(once, /\[docs\/benchmarks\.md\]\(docs\/benchmarks\.md#latest-results\)/, 'the README points at the full tables');
  const d1 = readFileSync(doc, 'utf8');
  t.match(d1, /## Method\nm\n/);
  t.match(d1, /### G1/, 'the tables are in docs/benchmarks.md');
  t.match(d1, /\.\.\/bench\/results\/conn-rate-vs-rules\.svg/, 'chart paths relative to docs/');
  t.match(d1, /<!-- bench:end -->\n\n### Per-component figures\n\ntheirs\n\n## After\nkeep\n$/);
  const run2 = syntheticRun();
  run2.meta.startedAt = '2027-01-01T00:00:00.000Z';
  updateDocs(readme, doc, run2, join(dir, 'bench/results'));
  const twice = readFileSync(readme, 'utf8');
  const d2 = readFileSync(doc, 'utf8');
  t.equal(twice.split('<!-- bench:begin').length, 2, 'a second update replaces the block, not adds one');
  t.equal(d2.split('<!-- bench:begin').length, 2);
  t.match(twice, /full `npm run bench` \(2027-01-01/);
  t.match(d2, /Run 2027-01-01/);
  t.notMatch(d2, /Run 2026-01-02/);
  t.equal(twice.replace(/<!-- bench:begin[\s\S]*<!-- bench:end -->/, ''), once.replace(/<!-- bench:begin[\s\S]*<!-- bench:end -->/, ''), 'nothing outside the block changes');
  t.equal(d2.replace(/<!-- bench:begin[\s\S]*<!-- bench:end -->/, ''), d1.replace(/<!-- bench:begin[\s\S]*<!-- bench:end -->/, ''));
  writeFileSync(readme, '# x\n## Performance\nold\n');
  replaceSectionBlock(readme, 'Performance', 'B');
  t.equal(readFileSync(readme, 'utf8'), '# x\n## Performance\n\n<!-- bench:begin (written by `npm run bench -- --readme`; edit bench/lib/report.ts instead) -->\nB\n<!-- bench:end -->\n\nold\n', 'unknown text is kept below the block');
  t.match(performanceSection(syntheticRun(), 'r'), /Full data: `r\/latest\.json`/);
  t.match(performanceSummary(syntheticRun(), 'docs/benchmarks.md'), /^- /m, 'the summary lists the headlines');
  writeFileSync(readme, '# nothing\n');
  t.throws(() => updateDocs(readme, doc, syntheticRun(), dir), /no "## Performance" section/);
  t.same([orderFor(0), orderFor(1), orderFor(2), orderFor(3), orderFor(4)], [
    ['bare', 'tortie', 'iptables', 'nftables'], ['tortie', 'iptables', 'nftables', 'bare'], ['iptables', 'nftables', 'bare', 'tortie'],
    ['nftables', 'bare', 'tortie', 'iptables'], ['bare', 'tortie', 'iptables', 'nftables'],
  ], 'each dataplane takes each position once per four repeats');
});

t.test('parsers of the other benches\' printed figures', async (t) => {
  const net = parseNetworkingBench(`networking bench: 1s per run, 2 rounds, wrk -c16, workload MTU 1480
  round 1: A→B direct 9.50 Gbit/s, A→B IPIP 8.10 Gbit/s, A→C IPIP via router 6.00 Gbit/s
  round 2: A→B direct 9.00 Gbit/s, A→B IPIP 8.00 Gbit/s, A→C IPIP via router 5.50 Gbit/s, A→B VXLAN 7.50 Gbit/s
  round 1: no SNAT 4000 conn/s, SNAT 3800 conn/s (3800 new mappings, 0 port collisions)
`);
  t.same(net.tp, [{ direct: 9.5, ipip: 8.1, crossSubnet: 6 }, { direct: 9, ipip: 8, crossSubnet: 5.5, vxlan: 7.5 }], 'the VXLAN figure when the round has one');
  t.same(net.conn, [{ plain: 4000, snat: 3800 }]);
  t.throws(() => parseNetworkingBench('nothing'), ChildBenchError);
  const pc = parsePktCost(`tortie datapath per-packet cost (BPF_PROG_TEST_RUN, repeat 100000, median of 3)
prefilter (XDP, 10,000 CIDRs, passed not counted): pass 31 ns/pkt, drop 45 ns/pkt
workload tc, 2 rules (3 cells in the table): new flow denied 120 ns/pkt, new flow allowed 900 ns/pkt (single runs, includes conntrack create), established 60 ns/pkt
workload tc, 10002 rules (10005 cells in the table): new flow denied 130 ns/pkt, new flow allowed 950 ns/pkt (single runs, includes conntrack create), established 61 ns/pkt
`);
  t.equal(pc.prefilterPass, 31);
  t.equal(pc.prefilterDrop, 45);
  t.same(pc.policy.map((p) => [p.rules, p.cells, p.newFlowDeny, p.newFlowAllow, p.established]), [[2, 3, 120, 900, 60], [10002, 10005, 130, 950, 61]]);
  t.equal(pc.policy[0]!.deny6, undefined, 'no IPv6 figure where none was printed');
  // The output as datapath-pktcost prints it now: IPv6 and the source's side after each table size.
  const pc6 = parsePktCost(`tortie datapath per-packet cost (BPF_PROG_TEST_RUN, repeat 100000, median of 3)
prefilter (XDP, 10,000 CIDRs, passed not counted): pass 31 ns/pkt, drop 45 ns/pkt
workload tc, 2 rules (3 cells in the table): new flow denied 120 ns/pkt, new flow allowed 900 ns/pkt (single runs, includes conntrack create), established 60 ns/pkt
  IPv6, same table: new flow denied 140 ns/pkt (1.17× IPv4), established 70 ns/pkt (1.17× IPv4)
  established, the source's side (tortie_from_wep): IPv4 80 ns/pkt, with host routing's fib lookup 110; IPv6 90, with host routing's fib lookup 125
workload tc, 10002 rules (10005 cells in the table): new flow denied 130 ns/pkt, new flow allowed 950 ns/pkt (single runs, includes conntrack create), established 61 ns/pkt
  IPv6, same table: new flow denied 150 ns/pkt (1.15× IPv4), established 71 ns/pkt (1.16× IPv4)
`);
  t.same(pc6.policy.map((p) => [p.rules, p.established, p.deny6, p.established6]), [[2, 60, 140, 70], [10002, 61, 150, 71]], 'the IPv6 line of each table size');
  t.same([pc6.policy[0]!.reply, pc6.policy[0]!.reply6], [{ off: 80, on: 110 }, { off: 90, on: 125 }], 'the source\'s side, both families, host routing off/on');
  t.equal(pc6.policy[1]!.reply, undefined, 'not borrowed from another table size');
  t.equal(pc6.policy[0]!.establishedSingle, undefined, 'no single-run floor where none was printed');
  // With the established packet's single-run floor printed inside the new-flow figure's note.
  const pcs = parsePktCost(`workload tc, 2 rules (3 cells in the table): new flow denied 120 ns/pkt, new flow allowed 900 ns/pkt (single runs, includes conntrack create; the established packet in single runs: 270 ns/pkt), established 60 ns/pkt
workload tc, 10002 rules (10005 cells in the table): new flow denied 130 ns/pkt, new flow allowed 950 ns/pkt (single runs, includes conntrack create; the established packet in single runs: 281 ns/pkt), established 61 ns/pkt
`);
  t.same(pcs.policy.map((p) => [p.rules, p.newFlowAllow, p.establishedSingle, p.established]), [[2, 900, 270, 60], [10002, 950, 281, 61]], 'the single-run floor beside the new-flow figure, per table size');
  t.throws(() => parsePktCost(''), /no figures/);
});
