// The agent benchmark's analysis: probe parsing, when a toggle counts as enforced, statistics.
import t from 'tap';
import {
  analyse, enforcement, heldSince, LatencyError, parseGcTrace, parseProbeLines, percentile, ProbeStream, promValue, slope, sortProbes, summarize, type Probe,
} from '../../bench/lib-agent/latency';

/** Probes every `step` µs over [from, to), ok when `okAt(start)`. */
function probes(from: number, to: number, step: number, okAt: (us: number) => boolean): Probe[] {
  const out: Probe[] = [];
  for (let us = from; us < to; us += step) out.push({ startUs: us, ok: okAt(us) });
  return out;
}

t.test('parseProbeLines', async (t) => {
  t.same(parseProbeLines('100 ok - 12\n\n105 fail timeout 30\n110 fail ECONNREFUSED -1\n'),
    [{ startUs: 100, ok: true }, { startUs: 105, ok: false }, { startUs: 110, ok: false }]);
  t.same(parseProbeLines(''), []);
  t.throws(() => parseProbeLines('100 ok\nlistening 8080\n'), { code: 'ERR_BENCH_LATENCY', message: /line 2/ });
  t.throws(() => parseProbeLines('100 okay'), LatencyError);
});

t.test('enforcement: first probe of the final run of the wanted verdict', async (t) => {
  const issued = 1_000_000;
  // Allowed until issued + 37 ms, denied after.
  const ps = probes(issued - 50_000, issued + 300_000, 5_000, (us) => us < issued + 37_000);
  const r = enforcement(ps, { issuedUs: issued, ackedUs: issued + 2_000, wantOk: false }, issued + 300_000);
  t.equal(r.enforcedUs, issued + 40_000, 'first denied probe');
  t.equal(r.lowerUs, issued + 35_000, 'last allowed probe bounds it from below');
  t.equal(r.latencyMs, 40);
  t.equal(r.writeMs, 2);
  t.equal(r.probes, 60, 'only probes started in [issued, until) count');
  t.equal(r.flaps, 0);

  // The other direction, with the verdict already there at the first probe.
  const ps2 = probes(issued, issued + 100_000, 5_000, () => true);
  const r2 = enforcement(ps2, { issuedUs: issued, ackedUs: issued, wantOk: true }, issued + 100_000);
  t.equal(r2.latencyMs, 0);
  t.equal(r2.lowerUs, issued, 'no old-verdict probe: the lower bound is the issue time');
});

t.test('enforcement: a verdict that comes and goes is not enforced until it stays', async (t) => {
  const issued = 5_000_000;
  const outcome = (us: number) => {
    const ms = (us - issued) / 1000;
    return ms >= 10 && ms < 20 ? false : ms >= 30 && ms < 40 ? false : ms >= 50 ? false : true;
  };
  const r = enforcement(probes(issued, issued + 200_000, 5_000, outcome), { issuedUs: issued, ackedUs: issued, wantOk: false }, issued + 200_000);
  t.equal(r.latencyMs, 50);
  t.equal(r.flaps, 4, 'changes at 10, 20, 30, 40 beyond the final one at 50');
});

t.test('enforcement: not enforced inside the window', async (t) => {
  const issued = 1_000;
  const ps = probes(issued, issued + 100_000, 5_000, (us) => us >= issued + 80_000);
  const r = enforcement(ps, { issuedUs: issued, ackedUs: issued, wantOk: true }, issued + 60_000);
  t.equal(r.latencyMs, undefined, 'the new verdict appeared only after the next toggle');
  t.equal(r.enforcedUs, undefined);
  const none = enforcement([], { issuedUs: issued, ackedUs: issued, wantOk: true }, issued + 1);
  t.equal(none.probes, 0);
  t.equal(none.latencyMs, undefined);
});

t.test('enforcement: argument checks', async (t) => {
  t.throws(() => enforcement([], { issuedUs: 10, ackedUs: 10, wantOk: true }, 10), { code: 'ERR_BENCH_LATENCY', message: /empty/ });
  t.throws(() => enforcement([], { issuedUs: 10, ackedUs: 9, wantOk: true }, 20), { code: 'ERR_BENCH_LATENCY', message: /before it was issued/ });
});

t.test('analyse: toggles in sequence, probes in completion order', async (t) => {
  // Toggle at 0 → deny (enforced at 20 ms), toggle at 200 ms → allow (enforced at 230 ms).
  const verdict = (us: number) => !(us >= 20_000 && us < 230_000);
  const ps = probes(-50_000, 400_000, 5_000, verdict);
  // Completion order: failures are decided a timeout later than successes.
  const shuffled = [...ps].sort((a, b) => (a.startUs + (a.ok ? 0 : 100_000)) - (b.startUs + (b.ok ? 0 : 100_000)));
  t.not(shuffled.map((p) => p.startUs).join(), ps.map((p) => p.startUs).join(), 'input really is out of order');
  t.same(sortProbes(shuffled), ps);
  const rs = analyse(shuffled, [
    { issuedUs: 0, ackedUs: 1_000, wantOk: false },
    { issuedUs: 200_000, ackedUs: 203_000, wantOk: true },
  ], 400_000);
  t.same(rs.map((r) => r.latencyMs), [20, 30]);
  t.same(rs.map((r) => r.probes), [40, 40]);
});

t.test('percentile and summarize (nearest rank)', async (t) => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  t.equal(percentile(hundred, 99), 99);
  t.equal(percentile(hundred, 100), 100);
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10, 'p99 of 10 samples is the maximum');
  t.equal(percentile([7], 50), 7);
  t.throws(() => percentile([], 50), LatencyError);
  t.throws(() => percentile([1], 0), LatencyError);
  const s = summarize([30, 10, NaN, 20, 40])!;
  t.same(s, { n: 4, median: 25, p99: 40, min: 10, max: 40, mean: 25 }, 'non-finite samples are dropped; even count → mean of the middle two');
  t.equal(summarize([5, 1, 3])!.median, 3);
  t.equal(summarize([]), undefined);
});

t.test('heldSince: the wanted verdict has lasted long enough', async (t) => {
  const since = 1_000_000;
  const ps = probes(since - 20_000, since + 120_000, 5_000, (us) => us >= since + 30_000);
  t.ok(heldSince(ps, since, true, 80_000), 'ok from +30 ms to +115 ms spans 85 ms');
  t.notOk(heldSince(ps, since, true, 90_000), 'not 90 ms yet');
  t.notOk(heldSince(ps, since, false, 1), 'newest probe does not have the wanted verdict');
  t.notOk(heldSince(ps, since + 200_000, true, 0), 'no probe since');
  t.notOk(heldSince([], since, true, 0));
  // A run that started before `since` only counts from `since`.
  const allOk = probes(since - 100_000, since + 50_000, 5_000, () => true);
  t.ok(heldSince(allOk, since, true, 45_000));
  t.notOk(heldSince(allOk, since, true, 50_000));
});

t.test('promValue: unlabelled samples from the text exposition', async (t) => {
  const text = [
    '# HELP tortie_policy_programming_seconds x', '# TYPE tortie_policy_programming_seconds histogram',
    'tortie_policy_programming_seconds_bucket{le="0.005"} 3', 'tortie_policy_programming_seconds_sum 0.25',
    'tortie_policy_programming_seconds_count 7', 'tortie_policy_programming_seconds_count_extra 9', 'bad_value abc',
  ].join('\n');
  t.equal(promValue(text, 'tortie_policy_programming_seconds_sum'), 0.25);
  t.equal(promValue(text, 'tortie_policy_programming_seconds_count'), 7, 'a longer name with the same prefix is not taken');
  t.equal(promValue(text, 'tortie_policy_programming_seconds'), undefined, 'only exact names');
  t.equal(promValue(text, 'bad_value'), undefined);
  t.equal(promValue('', 'x'), undefined);
});

t.test('ProbeStream: lines split across chunks, sorted by send time, counters', async (t) => {
  const s = new ProbeStream();
  s.feed('300 ok - 40\n100 fail time');
  t.same(s.sorted, [{ startUs: 300, ok: true }], 'a partial line waits for its end');
  s.feed('out 200\n200 fail ECONNREFUSED 15\nlistening 8080\n400 ok - -1\n');
  t.same(s.sorted.map((p) => p.startUs), [100, 200, 300, 400], 'completion order → send order');
  t.same(s.sorted.map((p) => p.ok), [false, false, true, true]);
  t.equal(s.failedOther, 1, 'ECONNREFUSED counted, timeout not');
  t.equal(s.wideStamps, 1, 'unknown gap (-1) counted; 200 µs and 40 µs are not');
  t.equal(s.maxGapUs, 200);
  s.feed('500 ok - 2500\n');
  t.equal(s.wideStamps, 2, 'a gap over 1 ms is counted');
  t.equal(s.maxGapUs, 2500);
});

t.test('parseGcTrace: V8 --trace-gc lines', async (t) => {
  t.same(parseGcTrace('[123:0x55d0c8f0]    52341 ms: Mark-Compact 401.2 (431.5) -> 389.9 (426.0) MB, 850.23 / 0.00 ms  (average mu = 0.9, current mu = 0.1) allocation failure; GC in old space requested'),
    { kind: 'Mark-Compact', pauseMs: 850.23 });
  t.same(parseGcTrace('[123:0x55d0c8f0]      870 ms: Scavenge 30.1 (33.0) -> 28.7 (41.0) MB, 3.50 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure;'),
    { kind: 'Scavenge', pauseMs: 3.5 });
  t.same(parseGcTrace('[1:0x1]  99 ms: Mark-Compact (reduce) 12.0 (14.0) -> 11.0 (13.0) MB, pooled: 0 MB, 7.25 / 0.00 ms  (average mu = 0.5)'),
    { kind: 'Mark-Compact (reduce)', pauseMs: 7.25 });
  t.equal(parseGcTrace('{"level":30,"msg":"datastore in sync"}'), undefined);
  t.equal(parseGcTrace(''), undefined);
});

t.test('slope: least squares', async (t) => {
  t.equal(slope([0, 1, 2, 3], [5, 7, 9, 11]), 2);
  t.equal(slope([0, 1, 2, 3], [1, 3, 2, 4]), 0.8);
  t.equal(slope([1], [1]), undefined);
  t.equal(slope([2, 2], [1, 5]), undefined, 'no spread in x');
  t.throws(() => slope([1, 2], [1]), LatencyError);
});
