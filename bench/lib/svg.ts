/**
 * Small SVG charts for the benchmark report, written without any charting library. Pure.
 *
 * Contract: `lineChart` draws one polyline per series over numeric x (linear or log10), with
 * min–max whiskers where a point carries them; `cdfChart` draws step CDFs (fraction of samples
 * ≤ x) over a log10 or linear x axis. Output is a standalone SVG document; every text is
 * escaped; colours are fixed per series name so the same dataplane looks the same everywhere.
 */

export interface Point { x: number; y: number; min?: number; max?: number }
export interface Series { name: string; points: Point[] }

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  width?: number;
  height?: number;
  /** y axis starts at zero (linear y only; default true). */
  yZero?: boolean;
}

export class SvgError extends Error {
  readonly code = 'ERR_BENCH_SVG';
  constructor(message: string) {
    super(message);
    this.name = 'SvgError';
  }
}

const COLOURS: Record<string, string> = { bare: '#6b7280', tortie: '#d97706', iptables: '#2563eb', nftables: '#059669' };
const SPARE = ['#059669', '#dc2626', '#7c3aed', '#0891b2', '#be185d'];

export function colourOf(name: string, index: number): string {
  return COLOURS[name] ?? SPARE[index % SPARE.length]!;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function n(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

/** "Nice" linear ticks covering [lo, hi]. */
export function linearTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Powers of ten covering [lo, hi] (lo > 0). */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(Math.pow(10, e));
  return out;
}

export function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e3) return `${trim(v / 1e3)}k`;
  return trim(v);
}

function trim(v: number): string {
  return Number(v.toPrecision(3)).toString();
}

interface Scale { map(v: number): number; ticks: number[] }

function scale(lo: number, hi: number, from: number, to: number, log: boolean): Scale {
  if (log) {
    if (!(lo > 0)) throw new SvgError(`log axis needs positive values, got minimum ${lo}`);
    const ticks = logTicks(lo, hi);
    const a = Math.log10(ticks[0]!);
    const b = Math.log10(ticks[ticks.length - 1]!);
    const span = b - a || 1;
    return { ticks, map: (v) => from + ((Math.log10(v) - a) / span) * (to - from) };
  }
  const ticks = linearTicks(lo, hi);
  const a = Math.min(lo, ticks[0]!);
  const b = Math.max(hi, ticks[ticks.length - 1]!);
  const span = b - a || 1;
  return { ticks, map: (v) => from + ((v - a) / span) * (to - from) };
}

function frame(o: ChartOptions, w: number, h: number, xs: Scale, ys: Scale, box: { l: number; r: number; t: number; b: number }, names: string[], yFmt: (v: number) => string): string[] {
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${w}" height="${h}" fill="#ffffff"/>`);
  out.push(`<text x="${n(w / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(o.title)}</text>`);
  for (const t of ys.ticks) {
    const y = ys.map(t);
    if (y < box.t - 0.5 || y > box.b + 0.5) continue;
    out.push(`<line x1="${box.l}" y1="${n(y)}" x2="${box.r}" y2="${n(y)}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${box.l - 6}" y="${n(y + 4)}" text-anchor="end">${escapeXml(yFmt(t))}</text>`);
  }
  for (const t of xs.ticks) {
    const x = xs.map(t);
    if (x < box.l - 0.5 || x > box.r + 0.5) continue;
    out.push(`<line x1="${n(x)}" y1="${box.t}" x2="${n(x)}" y2="${box.b}" stroke="#f3f4f6"/>`);
    out.push(`<text x="${n(x)}" y="${box.b + 16}" text-anchor="middle">${escapeXml(tickLabel(t))}</text>`);
  }
  out.push(`<line x1="${box.l}" y1="${box.b}" x2="${box.r}" y2="${box.b}" stroke="#111827"/>`);
  out.push(`<line x1="${box.l}" y1="${box.t}" x2="${box.l}" y2="${box.b}" stroke="#111827"/>`);
  out.push(`<text x="${n((box.l + box.r) / 2)}" y="${h - 8}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  out.push(`<text transform="translate(14 ${n((box.t + box.b) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  names.forEach((name, i) => {
    const y = box.t + 4 + i * 16;
    out.push(`<rect x="${box.r + 12}" y="${y}" width="12" height="3" fill="${colourOf(name, i)}"/>`);
    out.push(`<text x="${box.r + 30}" y="${y + 5}">${escapeXml(name)}</text>`);
  });
  return out;
}

function checkSeries(series: Series[]): Point[] {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) throw new SvgError('chart has no points');
  for (const p of all) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) throw new SvgError(`non-finite point (${p.x}, ${p.y})`);
  }
  return all;
}

/** One line per series, points sorted by x, min–max whiskers where given. */
export function lineChart(series: Series[], o: ChartOptions): string {
  const all = checkSeries(series);
  const w = o.width ?? 640;
  const h = o.height ?? 380;
  const box = { l: 70, r: w - 120, t: 36, b: h - 44 };
  const xsv = all.map((p) => p.x);
  const ysv = all.flatMap((p) => [p.y, p.min ?? p.y, p.max ?? p.y]);
  const yLo = o.yLog ? Math.min(...ysv) : o.yZero === false ? Math.min(...ysv) : Math.min(0, ...ysv);
  const xs = scale(Math.min(...xsv), Math.max(...xsv), box.l, box.r, o.xLog === true);
  const ys = scale(yLo, Math.max(...ysv), box.b, box.t, o.yLog === true);
  const out = frame(o, w, h, xs, ys, box, series.map((s) => s.name), tickLabel);
  series.forEach((s, i) => {
    const c = colourOf(s.name, i);
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${n(xs.map(p.x))},${n(ys.map(p.y))}`).join(' ')}"/>`);
    for (const p of pts) {
      const x = xs.map(p.x);
      if (p.min !== undefined && p.max !== undefined) {
        out.push(`<line x1="${n(x)}" y1="${n(ys.map(p.min))}" x2="${n(x)}" y2="${n(ys.map(p.max))}" stroke="${c}"/>`);
      }
      out.push(`<circle cx="${n(x)}" cy="${n(ys.map(p.y))}" r="3" fill="${c}"><title>${escapeXml(`${s.name}: ${p.x} → ${p.y}`)}</title></circle>`);
    }
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Step CDFs: each series' points are [value, fraction ≤ value]. */
export function cdfChart(series: { name: string; points: [number, number][] }[], o: Omit<ChartOptions, 'yLabel'> & { yLabel?: string }): string {
  const asPoints: Series[] = series.map((s) => ({ name: s.name, points: s.points.map(([x, y]) => ({ x, y })) }));
  const all = checkSeries(asPoints);
  for (const p of all) if (p.y < 0 || p.y > 1) throw new SvgError(`CDF fraction out of [0, 1]: ${p.y}`);
  const w = o.width ?? 640;
  const h = o.height ?? 380;
  const box = { l: 70, r: w - 120, t: 36, b: h - 44 };
  const xsv = all.map((p) => p.x);
  const xs = scale(Math.min(...xsv), Math.max(...xsv), box.l, box.r, o.xLog === true);
  const ys: Scale = { ticks: [0, 0.25, 0.5, 0.75, 0.9, 1], map: (v) => box.b + v * (box.t - box.b) };
  const out = frame({ ...o, yLabel: o.yLabel ?? 'fraction of samples ≤ x' }, w, h, xs, ys, box, series.map((s) => s.name), (v) => v.toString());
  series.forEach((s, i) => {
    const c = colourOf(s.name, i);
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    let d = '';
    let prevY = 0;
    for (const [x, y] of pts) {
      const px = n(xs.map(x));
      d += d === '' ? `M${px},${n(ys.map(0))} ` : '';
      d += `L${px},${n(ys.map(prevY))} L${px},${n(ys.map(y))} `;
      prevY = y;
    }
    out.push(`<path fill="none" stroke="${c}" stroke-width="2" d="${d.trim()}"/>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
