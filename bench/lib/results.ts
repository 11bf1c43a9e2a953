/**
 * The benchmark suite's result model, aggregation and Markdown rendering. Pure (no I/O).
 *
 * Contract:
 * - A run is one JSON document (`RunResult`): the machine and versions it ran on, the figures it
 *   defines, and every sample (one measured value of one figure, for one dataplane, at one
 *   parameter value, in one repeat), plus latency CDFs and free-text notes.
 * - Aggregates are the median and min–max of a figure's repeats. A ratio to bare is computed per
 *   repeat (the value of dataplane X in repeat r over bare's in the same repeat r: the two were
 *   measured back to back, interleaved) and then summarised the same way, so the spread of a
 *   ratio shows how stable the comparison was, not how stable each side was.
 * - Nothing here decides what is good: `better` only says which direction a reader should read.
 */
import { spread, type Spread } from './stats';

export const DATAPLANES = ['bare', 'tortie', 'iptables', 'nftables'] as const;
export type DataplaneName = (typeof DATAPLANES)[number];

export interface FigureDef {
  id: string;
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Section of the report this figure belongs to. */
  group: string;
  /** Name of the swept parameter (e.g. "rules"); samples then carry `param`. */
  param?: string;
  /** What the project aims for, as text (shown next to the figure). */
  goal?: string;
  /** What each dataplane label means for this figure when it is not the usual one. */
  labels?: Partial<Record<DataplaneName, string>>;
}

export interface Sample {
  figure: string;
  dataplane: DataplaneName;
  param?: number;
  repeat: number;
  value: number;
  /** ISO time the sample was taken (shows the interleaving). */
  at: string;
  extra?: Record<string, unknown>;
}

export interface CdfSeries {
  figure: string;
  dataplane: DataplaneName;
  param?: number;
  /** [value, fraction ≤ value] pairs, every repeat's samples pooled. */
  points: [number, number][];
}

export interface RunMeta {
  startedAt: string;
  finishedAt?: string;
  mode: 'quick' | 'full';
  argv: string[];
  host: { hostname: string; cpus: string; cores: number; memoryBytes: number; kernel: string; os: string };
  versions: Record<string, string>;
  gitCommit?: string;
  settings: Record<string, unknown>;
}

export interface Note { figure?: string; text: string }

export interface RunResult {
  format: 'tortie-bench/1';
  meta: RunMeta;
  figures: FigureDef[];
  samples: Sample[];
  cdfs: CdfSeries[];
  notes: Note[];
}

export interface Cell { spread: Spread; ratio?: Spread }

/** Aggregated view of one figure: per parameter value (undefined when not swept), per dataplane. */
export interface FigureSummary {
  def: FigureDef;
  params: (number | undefined)[];
  cells: Map<number | undefined, Map<DataplaneName, Cell>>;
}

export function emptyRun(meta: RunMeta): RunResult {
  return { format: 'tortie-bench/1', meta, figures: [], samples: [], cdfs: [], notes: [] };
}

/** Ratios of `xs` over `base`, paired by repeat number; repeats missing on either side are skipped. */
export function pairedRatios(xs: readonly Sample[], base: readonly Sample[]): number[] {
  const byRepeat = new Map<number, number>();
  for (const b of base) if (b.value !== 0 && Number.isFinite(b.value)) byRepeat.set(b.repeat, b.value);
  const out: number[] = [];
  for (const x of xs) {
    const b = byRepeat.get(x.repeat);
    if (b !== undefined && Number.isFinite(x.value)) out.push(x.value / b);
  }
  return out;
}

export function summarize(run: RunResult): FigureSummary[] {
  const out: FigureSummary[] = [];
  for (const def of run.figures) {
    const mine = run.samples.filter((s) => s.figure === def.id && Number.isFinite(s.value));
    const params = [...new Set(mine.map((s) => s.param))].sort((a, b) => (a ?? 0) - (b ?? 0));
    const cells = new Map<number | undefined, Map<DataplaneName, Cell>>();
    for (const p of params) {
      const atP = mine.filter((s) => s.param === p);
      const base = atP.filter((s) => s.dataplane === 'bare');
      const row = new Map<DataplaneName, Cell>();
      for (const dp of DATAPLANES) {
        const xs = atP.filter((s) => s.dataplane === dp);
        if (xs.length === 0) continue;
        const cell: Cell = { spread: spread(xs.map((s) => s.value)) };
        if (dp !== 'bare' && base.length > 0) {
          const r = pairedRatios(xs, base);
          if (r.length > 0) cell.ratio = spread(r);
        }
        row.set(dp, cell);
      }
      cells.set(p, row);
    }
    out.push({ def, params, cells });
  }
  return out;
}

/** Three significant digits, thousands separated; no exponent notation. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : Math.min(6, 2 - Math.floor(Math.log10(a)));
  const rounded = a >= 1000 ? Math.round(v / Math.pow(10, Math.floor(Math.log10(a)) - 2)) * Math.pow(10, Math.floor(Math.log10(a)) - 2) : v;
  return rounded.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatSpread(s: Spread, unit = ''): string {
  const u = unit ? ` ${unit}` : '';
  if (s.n === 1 || formatNumber(s.min) === formatNumber(s.max)) return `${formatNumber(s.median)}${u}${s.n === 1 ? ' (n=1)' : ''}`;
  return `${formatNumber(s.median)}${u} (${formatNumber(s.min)}–${formatNumber(s.max)})`;
}

export function formatRatio(s: Spread | undefined): string {
  if (!s) return '—';
  const f = (x: number) => x.toFixed(2);
  return f(s.min) === f(s.max) ? `${f(s.median)}×` : `${f(s.median)}× (${f(s.min)}–${f(s.max)})`;
}

function esc(s: string): string {
  return s.replace(/\|/g, '\\|');
}

function dataplanesIn(sum: FigureSummary): DataplaneName[] {
  const seen = new Set<DataplaneName>();
  for (const row of sum.cells.values()) for (const dp of row.keys()) seen.add(dp);
  return DATAPLANES.filter((d) => seen.has(d));
}

function label(def: FigureDef, dp: DataplaneName): string {
  return def.labels?.[dp] ?? dp;
}

/** The median of per-repeat ratios of dataplane `dp` at parameter `p` over the same dataplane at `base`. */
function scaleRatio(run: RunResult, figure: string, dp: DataplaneName, p: number | undefined, base: number | undefined): number | undefined {
  const xs = run.samples.filter((x) => x.figure === figure && x.dataplane === dp && x.param === p);
  const b = run.samples.filter((x) => x.figure === figure && x.dataplane === dp && x.param === base);
  const r = pairedRatios(xs, b);
  return r.length > 0 ? spread(r).median : undefined;
}

/**
 * One line per headline figure present in the run: the ratios a reader looks for first (each
 * against its baseline from the same run), and the apply-to-enforced percentiles.
 */
export function headlines(run: RunResult): string[] {
  const sums = new Map(summarize(run).map((s) => [s.def.id, s]));
  const out: string[] = [];
  const r2 = (x: number | undefined) => (x === undefined ? '—' : `${x.toFixed(2)}×`);
  for (const id of ['rules-conn-rate', 'members-conn-rate']) {
    const s = sums.get(id);
    if (!s || s.params.length < 2) continue;
    const first = s.params[0];
    const last = s.params[s.params.length - 1];
    const present = (['tortie', 'iptables', 'nftables'] as const).filter((d) => s.cells.get(last)?.has(d));
    const parts = present.map((d) => `${d} ${r2(scaleRatio(run, id, d, last, first))}`);
    const vsBare = present.map((d) => `${d} ${r2(s.cells.get(last)?.get(d)?.ratio?.median)}`);
    out.push(`New connections/s with ${(last ?? 0).toLocaleString('en-US')} ${s.def.param} vs ${(first ?? 0).toLocaleString('en-US')}: ${parts.join(', ')} (bare at ${(last ?? 0).toLocaleString('en-US')}: ${vsBare.join(', ')})`);
  }
  for (const [id, what] of [['tcp-1', 'iperf3 TCP 1 stream'], ['tcp-4', 'iperf3 TCP 4 streams'], ['conn-rate', 'new connections/s'], ['lat-p50', 'UDP latency p50'],
    ['tcp-1-v6', 'iperf3 TCP 1 stream over IPv6'], ['conn-rate-v6', 'new connections/s over IPv6']] as const) {
    const row = sums.get(id)?.cells.get(undefined);
    if (!row) continue;
    const present = (['tortie', 'iptables', 'nftables'] as const).filter((d) => row.has(d));
    out.push(`${what}, as a ratio to bare${id.endsWith('-v6') ? ' IPv6' : ''}: ${present.map((d) => `${d} ${r2(row.get(d)?.ratio?.median)}`).join(', ')}`);
  }
  for (const [id, what] of [['ipip-tcp', 'Cross-node iperf3 with IPIP vs direct'], ['snat-conn-rate', 'Connections/s through SNAT vs none']] as const) {
    const r = sums.get(id)?.cells.get(undefined)?.get('tortie')?.ratio;
    if (r) out.push(`${what}: ${r2(r.median)}`);
  }
  const apply = run.samples.filter((x) => x.figure === 'apply-to-enforced').map((x) => x.value);
  if (apply.length > 0) {
    const sorted = [...apply].sort((a, b) => a - b);
    const p99 = sorted[Math.min(sorted.length, Math.max(1, Math.ceil(0.99 * sorted.length))) - 1]!;
    out.push(`Policy write → enforced in the datapath: median ${formatNumber(spread(apply).median)} ms, p99 ${formatNumber(p99)} ms (${apply.length} updates)`);
  }
  return out;
}

/**
 * The Markdown report: headlines, then one table per group. Unswept figures measured on several dataplanes get
 * a row each with absolute figures and ratios to bare; swept figures get a table of their own
 * (one row per parameter value, plus the ratio to the first parameter value per dataplane);
 * single-dataplane figures (control plane) get median, min–max and the goal.
 */
export function markdownReport(run: RunResult, opts: { charts?: { title: string; file: string }[] } = {}): string {
  const sums = summarize(run).filter((s) => s.params.length > 0);
  const lines: string[] = [];
  const m = run.meta;
  lines.push(`Run ${m.startedAt} (${m.mode}), ${m.host.cores} × ${m.host.cpus}, kernel ${m.host.kernel}, ` +
    `node ${m.versions.node ?? '?'}${m.gitCommit ? `, commit ${m.gitCommit.slice(0, 10)}` : ''}. ` +
    'Each cell: median (min–max) of the interleaved repeats; a ratio is taken per repeat against bare measured back to back, then summarised the same way.');
  lines.push('');
  const heads = headlines(run);
  if (heads.length > 0) lines.push(...heads.map((h) => `- ${h}`), '');
  const groups = [...new Set(sums.map((s) => s.def.group))];
  for (const g of groups) {
    const inGroup = sums.filter((s) => s.def.group === g);
    lines.push(`### ${g}`, '');
    const flat = inGroup.filter((s) => !s.def.param && dataplanesIn(s).length > 1);
    if (flat.length > 0) {
      // Columns for the dataplanes measured in this group (a run from before nftables has none).
      const cols = DATAPLANES.filter((d) => flat.some((s) => dataplanesIn(s).includes(d)));
      const others = cols.filter((d) => d !== 'bare');
      lines.push(`| figure | ${cols.join(' | ')} | ${others.map((d) => `${d}/bare`).join(' | ')} |`);
      lines.push(`|---|${cols.map(() => '---').join('|')}|${others.map(() => '---').join('|')}|`);
      for (const s of flat) {
        const row = s.cells.get(undefined)!;
        const cells = cols.map((d) => {
          const c = row.get(d);
          if (!c) return '—';
          const l = s.def.labels?.[d];
          return `${l ? `${esc(l)}: ` : ''}${formatSpread(c.spread, s.def.unit)}`;
        });
        const ratios = others.map((d) => formatRatio(row.get(d)?.ratio));
        lines.push(`| ${esc(s.def.title)} (${s.def.better} is better)${s.def.goal ? `; goal ${esc(s.def.goal)}` : ''} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`);
      }
      lines.push('');
    }
    const single = inGroup.filter((s) => !s.def.param && dataplanesIn(s).length === 1);
    if (single.length > 0) {
      lines.push('| figure | dataplane | median (min–max) | goal |', '|---|---|---|---|');
      for (const s of single) {
        const [dp] = dataplanesIn(s);
        const c = s.cells.get(undefined)!.get(dp!)!;
        lines.push(`| ${esc(s.def.title)} | ${esc(label(s.def, dp!))} | ${formatSpread(c.spread, s.def.unit)} | ${esc(s.def.goal ?? '')} |`);
      }
      lines.push('');
    }
    for (const s of inGroup.filter((x) => x.def.param)) {
      const dps = dataplanesIn(s);
      const others = dps.filter((d) => d !== 'bare');
      const first = s.params[0];
      lines.push(`**${esc(s.def.title)}** (${s.def.unit}, ${s.def.better} is better${s.def.goal ? `; goal ${esc(s.def.goal)}` : ''})`, '');
      lines.push(`| ${s.def.param} | ${dps.join(' | ')} | ${others.map((d) => `${d}/bare`).join(' | ')} | ${others.map((d) => `${d} vs ${first}`).join(' | ')} |`);
      lines.push(`|---|${dps.map(() => '---').join('|')}|${others.map(() => '---').join('|')}|${others.map(() => '---').join('|')}|`);
      for (const p of s.params) {
        const row = s.cells.get(p)!;
        const vals = dps.map((d) => (row.get(d) ? formatSpread(row.get(d)!.spread) : '—'));
        const ratios = others.map((d) => formatRatio(row.get(d)?.ratio));
        const scale = others.map((d) => {
          const xs = run.samples.filter((x) => x.figure === s.def.id && x.dataplane === d && x.param === p);
          const b = run.samples.filter((x) => x.figure === s.def.id && x.dataplane === d && x.param === first);
          const r = pairedRatios(xs, b);
          return r.length > 0 ? formatRatio(spread(r)) : '—';
        });
        lines.push(`| ${(p ?? 0).toLocaleString('en-US')} | ${vals.join(' | ')} | ${ratios.join(' | ')} | ${scale.join(' | ')} |`);
      }
      lines.push('');
    }
  }
  const notes = run.notes;
  if (notes.length > 0) {
    lines.push('### Notes', '');
    for (const n of notes) lines.push(`- ${n.figure ? `${n.figure}: ` : ''}${n.text}`);
    lines.push('');
  }
  for (const c of opts.charts ?? []) lines.push(`![${c.title}](${c.file})`, '');
  return lines.join('\n');
}

/** Adds a figure definition once (by id) and returns it. */
export function addFigure(run: RunResult, def: FigureDef): FigureDef {
  if (!run.figures.some((f) => f.id === def.id)) run.figures.push(def);
  return def;
}

export function addSample(run: RunResult, f: FigureDef, dataplane: DataplaneName, repeat: number, value: number, param?: number, extra?: Record<string, unknown>): void {
  run.samples.push({ figure: f.id, dataplane, repeat, value, at: new Date().toISOString(), ...(param !== undefined ? { param } : {}), ...(extra ? { extra } : {}) });
}

/** Rotates the dataplane order each repeat so none is always measured first or last. */
export function orderFor(repeat: number): DataplaneName[] {
  const k = repeat % DATAPLANES.length;
  return [...DATAPLANES.slice(k), ...DATAPLANES.slice(0, k)];
}
