/**
 * Sample statistics for the benchmark suite. Pure.
 *
 * Contract: every figure is reported as the median and min–max of its repeats (the suite runs
 * ≥ 3 interleaved repeats); percentiles use the nearest-rank method on sorted samples, so a
 * reported p99 is a value that was actually observed.
 */

export interface Spread { median: number; min: number; max: number; n: number }

export class StatsError extends Error {
  readonly code = 'ERR_BENCH_STATS';
  constructor(message: string) {
    super(message);
    this.name = 'StatsError';
  }
}

function finite(xs: readonly number[], what: string): number[] {
  const out = xs.filter((x) => Number.isFinite(x));
  if (out.length === 0) throw new StatsError(`${what}: no finite samples (got ${xs.length})`);
  return out;
}

/** Median of the finite samples (mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = finite(xs, 'median').sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function spread(xs: readonly number[]): Spread {
  const s = finite(xs, 'spread').sort((a, b) => a - b);
  return { median: median(s), min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(xs: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new StatsError(`percentile: p must be within [0, 100], got ${p}`);
  const s = finite(xs, 'percentile').sort((a, b) => a - b);
  if (p === 0) return s[0]!;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1]!;
}

/**
 * Empirical CDF reduced to at most `points` steps: (value, fraction of samples ≤ value). The
 * first point is the minimum and the last is (max, 1), so the tail a p99.9 lives in is kept.
 */
export function cdf(xs: readonly number[], points = 200): [number, number][] {
  const s = finite(xs, 'cdf').sort((a, b) => a - b);
  const n = s.length;
  const k = Math.max(2, Math.min(points, n));
  const out: [number, number][] = [];
  for (let i = 0; i < k; i++) {
    // Spread the kept ranks evenly in probability, but denser near the tail.
    const q = 1 - Math.pow(1 - i / (k - 1), 2);
    const idx = Math.min(n - 1, Math.round(q * (n - 1)));
    const v = s[idx]!;
    const frac = (idx + 1) / n;
    const last = out[out.length - 1];
    if (last && last[0] === v) last[1] = frac;
    else if (!last || frac > last[1]) out.push([v, frac]);
  }
  return out;
}
