/**
 * Writing a run's results: the JSON document, the Markdown report and the SVG charts, under
 * the results directory, as `<stamp>.*` and `latest.*`; the full tables in docs/benchmarks.md and
 * a summary in the README.
 *
 * Contract: `renderCharts` and `performanceSection` are pure (tested on synthetic runs);
 * `writeReport` only writes inside `outDir`; `replaceSectionBlock` replaces only the marked block
 * of one `## ` section (README.md's "Performance", docs/benchmarks.md's "Latest results").
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { headlines, markdownReport, summarize, DATAPLANES, type RunResult } from './results';
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
  for (const [id, file, title] of [
    ['lat-p50', 'latency-cdf.svg', 'sockperf UDP ping-pong latency CDF (all repeats)'],
    ['lat-p50-v6', 'latency-cdf-v6.svg', 'IPv6 UDP ping-pong latency CDF (udp-pingpong, or python3 where it was not built; all repeats)'],
  ] as const) {
    const lat = run.cdfs.filter((c) => c.figure === id);
    if (lat.length === 0) continue;
    charts.push({ file, title, svg: cdfChart(lat.map((c) => ({ name: c.dataplane, points: c.points })), { title, xLabel: 'latency, µs (log)', xLog: true }) });
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

/** The docs/benchmarks.md section body: the latest full tables with chart links relative to that file. */
export function performanceSection(run: RunResult, chartDirFromDoc: string): string {
  const charts = renderCharts(run).map((c) => ({ title: c.title, file: `${chartDirFromDoc}/${c.file}` }));
  return [
    '',
    'Measured by `npm run bench`: four dataplanes on the same namespace topology, interleaved —',
    '**bare** (routed veths, no programs, no rules), **tortie**, **iptables**/ipset rules equivalent',
    "to the same policies (Calico's classic dataplane layout) and an **nftables** ruleset of the same",
    "policies (the shape of Calico's nftables dataplane). Figures are from this 2-core machine while",
    'other work ran on it: read the ratios, not the absolute numbers.',
    `Full data: \`${chartDirFromDoc}/latest.json\`.`,
    '',
    markdownReport(run, { charts }),
  ].join('\n');
}

/** The README's summary: the run's headline ratios and where the full tables are. */
export function performanceSummary(run: RunResult, docFromReadme: string): string {
  const m = run.meta;
  const heads = headlines(run);
  return [
    `From the last full \`npm run bench\` (${m.startedAt.slice(0, 10)}, ${m.host.cores} × ${m.host.cpus}${m.gitCommit ? `, commit ${m.gitCommit.slice(0, 10)}` : ''}), each figure a ratio to a`,
    'baseline measured in the same run, interleaved:',
    '',
    ...(heads.length > 0 ? heads.map((h) => `- ${h}`) : ['- (this run measured no headline figure)']),
    '',
    `Every table, chart and the method: [${docFromReadme}](${docFromReadme}#latest-results).`,
  ].join('\n');
}

export const BENCH_BEGIN = '<!-- bench:begin (written by `npm run bench -- --readme`; edit bench/lib/report.ts instead) -->';
export const BENCH_END = '<!-- bench:end -->';

/**
 * Writes `block` into the `## <heading>` section of a Markdown file: between the bench markers
 * when they exist, otherwise right under the heading (a "Figures land here" placeholder
 * sentence is replaced; anything else in the section is kept, after the block).
 */
export function replaceSectionBlock(path: string, heading: string, blockBody: string): void {
  const text = readFileSync(path, 'utf8');
  const start = text.search(new RegExp(`^## ${heading}\\s*$`, 'm'));
  if (start < 0) throw new Error(`${path}: no "## ${heading}" section`);
  const headingEnd = text.indexOf('\n', start) + 1;
  const rest = text.slice(headingEnd);
  const next = rest.search(/^## /m);
  const section = next < 0 ? rest : rest.slice(0, next);
  const tail = next < 0 ? '' : rest.slice(next);
  const block = `${BENCH_BEGIN}\n${blockBody.trim()}\n${BENCH_END}\n`;
  let body: string;
  const b = section.indexOf(BENCH_BEGIN);
  const e = section.indexOf(BENCH_END);
  if (b >= 0 && e > b) {
    body = `${section.slice(0, b)}${block}${section.slice(e + BENCH_END.length).replace(/^\n/, '')}`;
  } else {
    const kept = section.replace(/^\s*Figures land here[\s\S]*?\n\s*\n/, '\n').replace(/^\s+/, '');
    body = `\n${block}${kept ? `\n${kept}` : ''}`;
  }
  if (!body.endsWith('\n')) body += '\n';
  if (tail && !body.endsWith('\n\n')) body += '\n';
  writeFileSync(path, `${text.slice(0, headingEnd)}${body}${tail}`);
}

/**
 * `--readme`: the full tables go to docs/benchmarks.md's "## Latest results" section, and the
 * README's "## Performance" section gets the summary pointing there.
 */
export function updateDocs(readmePath: string, benchDocPath: string, run: RunResult, outDir: string): void {
  const charts = relative(dirname(benchDocPath), outDir) || '.';
  replaceSectionBlock(benchDocPath, 'Latest results', performanceSection(run, charts));
  replaceSectionBlock(readmePath, 'Performance', performanceSummary(run, relative(dirname(readmePath), benchDocPath)));
}
