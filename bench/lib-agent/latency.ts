/**
 * Apply-to-enforcement latency from probe outcomes. Pure.
 *
 * Contract:
 * - A probe is one new TCP connection attempt from the probe client to the server, stamped with
 *   the wall-clock time (µs since the epoch) its SYN was sent and its outcome (connected, or not
 *   within the prober's timeout). The prober prints one line per probe: `<startUs> ok|fail …`
 *   (prober.ts: the time just after connect(2) returned, then the outcome, a reason and the
 *   stamp's uncertainty, which this module ignores).
 * - A toggle is one policy write: `issuedUs` when the apply call started, `ackedUs` when the
 *   datastore acknowledged it, and the verdict the new policy wants for the probe flow.
 * - The toggle is enforced at the start time of the first probe started at or after `issuedUs`
 *   whose outcome is the wanted one and after which every probe started before `untilUs` (the
 *   next toggle) has the wanted outcome too ("the datapath has the new verdict and keeps it").
 *   `lowerUs` is the start of the last probe before it that still had the old outcome (or the
 *   issue time): the true enforcement time lies in (lowerUs, enforcedUs]. `flaps` counts
 *   outcome changes between issue and enforcement beyond the first (a verdict that came and went).
 * - Percentiles are nearest-rank on the sorted samples (a reported p99 was observed).
 */

export interface Probe { startUs: number; ok: boolean }

export interface Toggle { issuedUs: number; ackedUs: number; wantOk: boolean }

export interface ToggleResult {
  wantOk: boolean;
  issuedUs: number;
  ackedUs: number;
  enforcedUs?: number;
  lowerUs?: number;
  /** enforcedUs − issuedUs in ms (undefined when not enforced before untilUs). */
  latencyMs?: number;
  /** ackedUs − issuedUs in ms: the datastore write alone. */
  writeMs: number;
  /** Probes started in [issuedUs, untilUs). */
  probes: number;
  flaps: number;
}

export interface Summary { n: number; median: number; p99: number; min: number; max: number; mean: number }

export class LatencyError extends Error {
  readonly code = 'ERR_BENCH_LATENCY';
  constructor(message: string) {
    super(message);
    this.name = 'LatencyError';
  }
}

/** Parses prober output; blank lines are skipped, anything else malformed is an error naming the line. */
export function parseProbeLines(text: string): Probe[] {
  const out: Probe[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const m = /^(\d+) (ok|fail)\b/.exec(line);
    if (!m) throw new LatencyError(`probe line ${i + 1}: expected "<startUs> ok|fail", got ${JSON.stringify(line.slice(0, 80))}`);
    out.push({ startUs: Number(m[1]), ok: m[2] === 'ok' });
  }
  return out;
}

/** Probes sorted by start time (the prober prints them in completion order). */
export function sortProbes(probes: readonly Probe[]): Probe[] {
  return [...probes].sort((a, b) => a.startUs - b.startUs);
}

/**
 * When toggle `t` was enforced, judged from `sorted` probes (by start time) started in
 * [t.issuedUs, untilUs).
 */
export function enforcement(sorted: readonly Probe[], t: Toggle, untilUs: number): ToggleResult {
  if (!(untilUs > t.issuedUs)) throw new LatencyError(`toggle window is empty: until ${untilUs} ≤ issued ${t.issuedUs}`);
  if (!(t.ackedUs >= t.issuedUs)) throw new LatencyError(`toggle acknowledged (${t.ackedUs}) before it was issued (${t.issuedUs})`);
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]!.startUs < t.issuedUs) lo = mid + 1;
    else hi = mid;
  }
  const window: Probe[] = [];
  for (let i = lo; i < sorted.length && sorted[i]!.startUs < untilUs; i++) window.push(sorted[i]!);
  const res: ToggleResult = { wantOk: t.wantOk, issuedUs: t.issuedUs, ackedUs: t.ackedUs, writeMs: (t.ackedUs - t.issuedUs) / 1000, probes: window.length, flaps: 0 };
  // The enforced index is the start of the final run of wanted outcomes.
  let first = window.length;
  while (first > 0 && window[first - 1]!.ok === t.wantOk) first--;
  if (first === window.length) return res;
  res.enforcedUs = window[first]!.startUs;
  res.lowerUs = first > 0 ? window[first - 1]!.startUs : t.issuedUs;
  res.latencyMs = (res.enforcedUs - t.issuedUs) / 1000;
  let changes = 0;
  for (let i = 1; i <= first; i++) if (window[i]?.ok !== window[i - 1]!.ok) changes++;
  res.flaps = Math.max(0, changes - 1);
  return res;
}

/** Every toggle's enforcement; toggle i's window ends where toggle i+1 was issued (the last: `endUs`). */
export function analyse(probes: readonly Probe[], toggles: readonly Toggle[], endUs: number): ToggleResult[] {
  const sorted = sortProbes(probes);
  return toggles.map((t, i) => enforcement(sorted, t, i + 1 < toggles.length ? toggles[i + 1]!.issuedUs : endUs));
}

/** Nearest-rank percentile, p in (0, 100]. */
export function percentile(sortedAsc: readonly number[], p: number): number {
  if (sortedAsc.length === 0) throw new LatencyError('percentile of no samples');
  if (!(p > 0 && p <= 100)) throw new LatencyError(`percentile must be in (0, 100], got ${p}`);
  return sortedAsc[Math.max(1, Math.ceil((p / 100) * sortedAsc.length)) - 1]!;
}

export function summarize(xs: readonly number[]): Summary | undefined {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const m = s.length >> 1;
  return {
    n: s.length,
    median: s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2,
    p99: percentile(s, 99),
    min: s[0]!,
    max: s[s.length - 1]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/**
 * Live check used while toggling: true once the probes started at or after `sinceUs` end with
 * a run of the wanted outcome spanning at least `holdUs` (from its first probe to the newest).
 */
export function heldSince(sorted: readonly Probe[], sinceUs: number, wantOk: boolean, holdUs: number): boolean {
  let i = sorted.length - 1;
  if (i < 0 || sorted[i]!.startUs < sinceUs || sorted[i]!.ok !== wantOk) return false;
  const newest = sorted[i]!.startUs;
  while (i > 0 && sorted[i - 1]!.startUs >= sinceUs && sorted[i - 1]!.ok === wantOk) i--;
  return newest - sorted[i]!.startUs >= holdUs;
}

/**
 * Value of an unlabelled sample in Prometheus text exposition (`name value`), or undefined.
 * Used to put the agent's own programming-time histogram (sum and count) next to what the
 * datapath shows.
 */
export function promValue(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '\t') continue;
    const v = Number(rest.trim().split(/\s+/)[0]);
    return Number.isFinite(v) ? v : undefined;
  }
  return undefined;
}

/**
 * Prober output as it streams in (`<sentUs> ok|fail <reason|-> <gapUs>` lines, see prober.ts),
 * kept sorted by send time; counts errors other than timeouts and stamps whose uncertainty
 * (gap) exceeds 1 ms or is unknown. Lines of any other shape are ignored.
 */
export class ProbeStream {
  readonly sorted: Probe[] = [];
  failedOther = 0;
  /** Probes whose send time is known only within more than 1 ms (the prober was descheduled). */
  wideStamps = 0;
  maxGapUs = 0;
  private buf = '';

  feed(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      const m = /^(\d+) (ok|fail) (\S+) (-?\d+)$/.exec(line);
      if (!m) continue;
      if (m[2] === 'fail' && m[3] !== 'timeout') this.failedOther++;
      const gap = Number(m[4]);
      if (gap < 0 || gap > 1000) this.wideStamps++;
      if (gap > this.maxGapUs) this.maxGapUs = gap;
      const p: Probe = { startUs: Number(m[1]), ok: m[2] === 'ok' };
      let i = this.sorted.length;
      while (i > 0 && this.sorted[i - 1]!.startUs > p.startUs) i--;
      this.sorted.splice(i, 0, p);
    }
  }
}

export interface GcPause { kind: string; pauseMs: number }

/**
 * One line of V8's `--trace-gc` output → the collector and its main-thread pause, or undefined
 * for anything else (the agent's own JSON log lines included). Shape:
 * `[pid:0x…]   1234 ms: Mark-Compact 400.1 (430.2) -> 390.0 (425.0) MB, 850.23 / 0.00 ms  (…)`.
 */
export function parseGcTrace(line: string): GcPause | undefined {
  const m = /\d+ ms: ([A-Za-z-]+(?: \(reduce\))?) [^,]*MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(line);
  if (!m) return undefined;
  const pauseMs = Number(m[2]);
  return Number.isFinite(pauseMs) ? { kind: m[1]!, pauseMs } : undefined;
}

/** Least-squares slope of y over x (undefined with fewer than two distinct x). */
export function slope(xs: readonly number[], ys: readonly number[]): number | undefined {
  if (xs.length !== ys.length) throw new LatencyError(`slope: ${xs.length} x values but ${ys.length} y values`);
  const n = xs.length;
  if (n < 2) return undefined;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - my);
  }
  return sxx === 0 ? undefined : sxy / sxx;
}
