/**
 * Writing a run's results: the JSON document, the Markdown report and the SVG charts, under
 * the results directory, as `<stamp>.*` and `latest.*`; and the README's Performance section.
 *
 * Contract: `renderCharts` and `performanceSection` are pure (tested on synthetic runs);
 * `writeReport` only writes inside `outDir`; `updateReadme` replaces the text between the
 * `## Performance` heading and the next `## ` heading (or the end) and nothing else.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { markdownReport, summarize, DATAPLANES, type RunResult } from './results';
import { cdfChart, lineChart, type Series } from './svg';

export interface Chart { file: string; title: string; svg: string }

/** Connection rate vs rules and vs members (one line per dataplane), latency CDFs. */
export function renderCharts(run: RunResult): Chart[] {
  const charts: Chart[] = [];
  const sums = summarize(run);
  for (const [id, file, xLabel] of [
    ['rules-conn-rate', 'conn-rate-vs-rules.svg', 'rules in the server\'s policy (log)'],
    ['members-conn-rate', 'conn-rate-vs-members.svg', 'members of the source IP set (log)'],
    ['rules-conn-p99', 'conn-p99-vs-rules.svg', 'rules in the server\'s policy (log)'],
  ] as const) {
    const sum = sums.find((x) => x.def.id === id);
    if (!sum || sum.params.length === 0) continue;
    const series: Series[] = [];
    for (const dp of DATAPLANES) {
      const points = sum.params.flatMap((p) => {
        const c = sum.cells.get(p)?.get(dp);
        return c && p !== undefined ? [{ x: p, y: c.spread.median, min: c.spread.min, max: c.spread.max }] : [];
      });
      if (points.length > 0) series.push({ name: dp, points });
    }
    if (series.length === 0) continue;
    const title = `${sum.def.title} (median, min–max of ${run.meta.settings.repeats ?? '?'})`;
    charts.push({ file, title, svg: lineChart(series, { title, xLabel, yLabel: sum.def.unit, xLog: true }) });
  }
  const lat = run.cdfs.filter((c) => c.figure === 'lat-p50');
  if (lat.length > 0) {
    const title = 'sockperf UDP ping-pong latency CDF (all repeats)';
    charts.push({ file: 'latency-cdf.svg', title, svg: cdfChart(lat.map((c) => ({ name: c.dataplane, points: c.points })), { title, xLabel: 'latency, µs (log)', xLog: true }) });
  }
  return charts;
}

function stampOf(run: RunResult): string {
  return run.meta.startedAt.replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
}

export function writeReport(run: RunResult, outDir: string): string[] {
  mkdirSync(outDir, { recursive: true });
  const stamp = `${stampOf(run)}-${run.meta.mode}`;
  const charts = renderCharts(run);
  const written: string[] = [];
  const put = (name: string, text: string): void => {
    writeFileSync(join(outDir, name), text);
    written.push(join(outDir, name));
  };
  const json = JSON.stringify(run, null, 1) + '\n';
  put(`${stamp}.json`, json);
  put('latest.json', json);
  for (const c of charts) put(c.file, c.svg);
  const md = `# tortie benchmark results\n\n${markdownReport(run, { charts: charts.map((c) => ({ title: c.title, file: c.file })) })}`;
  put(`${stamp}.md`, md);
  put('latest.md', md);
  return written;
}

/** The README section body: the latest table with chart links relative to the README. */
export function performanceSection(run: RunResult, chartDirFromReadme: string): string {
  const charts = renderCharts(run).map((c) => ({ title: c.title, file: `${chartDirFromReadme}/${c.file}` }));
  return [
    '',
    'Measured by `npm run bench` (see [docs/benchmarks.md](docs/benchmarks.md)): four dataplanes on the same',
    'namespace topology, interleaved — **bare** (routed veths, no programs, no rules), **tortie**,',
    "**iptables**/ipset rules equivalent to the same policies (Calico's classic dataplane layout) and an",
    "**nftables** ruleset of the same policies (the shape of Calico's nftables dataplane). Figures",
    'are from this 2-core machine while other work ran on it: read the ratios, not the absolute numbers.',
    `Full data: \`${chartDirFromReadme}/latest.json\`.`,
    '',
    markdownReport(run, { charts }).replace(/^### /gm, '#### '),
  ].join('\n');
}

export const README_BEGIN = '<!-- bench:begin (written by `npm run bench -- --readme`; edit bench/lib/report.ts instead) -->';
export const README_END = '<!-- bench:end -->';

/**
 * Writes the suite's block into README.md's "## Performance" section: between the bench markers
 * when they exist, otherwise right under the heading (the section's own opening sentence is
 * replaced, anything else in the section, such as other benches' tables, is kept).
 */
export function updateReadme(readmePath: string, run: RunResult, outDir: string): void {
  const text = readFileSync(readmePath, 'utf8');
  const start = text.search(/^## Performance\s*$/m);
  if (start < 0) throw new Error(`${readmePath}: no "## Performance" section`);
  const headingEnd = text.indexOf('\n', start) + 1;
  const rest = text.slice(headingEnd);
  const next = rest.search(/^## /m);
  const section = next < 0 ? rest : rest.slice(0, next);
  const tail = next < 0 ? '' : rest.slice(next);
  const rel = relative(dirname(readmePath), outDir) || '.';
  const block = `${README_BEGIN}\n${performanceSection(run, rel).trim()}\n${README_END}\n`;
  let body: string;
  const b = section.indexOf(README_BEGIN);
  const e = section.indexOf(README_END);
  if (b >= 0 && e > b) {
    body = `${section.slice(0, b)}${block}${section.slice(e + README_END.length).replace(/^\n/, '')}`;
  } else {
    // The placeholder sentence the section started with is superseded by the block.
    const kept = section.replace(/^\s*Figures land here[\s\S]*?\n\s*\n/, '\n').replace(/^\s+/, '');
    body = `\n${block}${kept ? `\n${kept}` : ''}`;
  }
  if (!body.endsWith('\n')) body += '\n';
  if (tail && !body.endsWith('\n\n')) body += '\n';
  writeFileSync(readmePath, `${text.slice(0, headingEnd)}${body}${tail}`);
}
