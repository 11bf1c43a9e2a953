/**
 * Selector micro-benchmark: parse (uncached and cached) and evaluate throughput.
 * Prints figures; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/selector-bench.js [seconds-per-case]
 */
import { parseSelector, parseSelectorUncached, clearSelectorCache } from '../src/selector';

const budgetMs = Math.max(0.1, Number(process.argv[2] ?? 1)) * 1000;

/** Runs fn in batches until the time budget is spent; returns operations per second. */
function measure(fn: (i: number) => unknown): { opsPerSec: number; nsPerOp: number } {
  // Warm up so the JIT has seen the code.
  for (let i = 0; i < 2000; i++) fn(i);
  let ops = 0;
  const start = process.hrtime.bigint();
  let elapsedNs = 0n;
  const budgetNs = BigInt(Math.round(budgetMs * 1e6));
  while (elapsedNs < budgetNs) {
    for (let i = 0; i < 1000; i++) fn(ops + i);
    ops += 1000;
    elapsedNs = process.hrtime.bigint() - start;
  }
  const secs = Number(elapsedNs) / 1e9;
  return { opsPerSec: ops / secs, nsPerOp: (secs * 1e9) / ops };
}

function report(name: string, r: { opsPerSec: number; nsPerOp: number }): void {
  const ops = r.opsPerSec >= 1e6 ? `${(r.opsPerSec / 1e6).toFixed(2)} M/s` : `${(r.opsPerSec / 1e3).toFixed(1)} k/s`;
  process.stdout.write(`${name.padEnd(60)} ${ops.padStart(11)}  ${r.nsPerOp.toFixed(0).padStart(7)} ns/op\n`);
}

const selectors: Record<string, string> = {
  simple: 'app == "web"',
  // libcalico-go's own benchmark selector.
  calico: '! (a == "b"&&! c != "d") || !(a == "b" && !c != "d")',
  typical: 'projectcalico.org/namespace == "prod" && (app in {"web", "api", "worker"} || has(tier)) && !has(quarantine)',
  wide: Array.from({ length: 20 }, (_, i) => `k${i} in {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}`).join(' || '),
};

const labelSets: Array<Record<string, string>> = [
  { app: 'web', 'projectcalico.org/namespace': 'prod', tier: 'frontend' },
  { app: 'db', 'projectcalico.org/namespace': 'prod', a: 'b', c: 'd' },
  { app: 'api', 'projectcalico.org/namespace': 'dev', quarantine: 'yes', k19: 'j' },
  {},
];

process.stdout.write(`selector benchmark (node ${process.version}, ${budgetMs} ms per case)\n`);
for (const [name, text] of Object.entries(selectors)) {
  report(`parse uncached   ${name} (${text.length} chars)`, measure(() => parseSelectorUncached(text)));
}
// Canonical form and the evaluator are built on first use; this pays for all of it.
for (const [name, text] of Object.entries(selectors)) {
  report(
    `parse+canonical+first evaluate  ${name}`,
    measure(() => {
      const sel = parseSelectorUncached(text);
      return sel.canonical.length + (sel.evaluate(labelSets[0]!) ? 1 : 0);
    }),
  );
}
// Distinct texts defeat the cache.
report('parse uncached   distinct typical selectors', measure((i) => parseSelectorUncached(`${selectors['typical']} && n != "${i}"`)));
clearSelectorCache();
report('parse cached     typical (hit)', measure(() => parseSelector(selectors['typical']!)));
report('uniqueId         typical (parse + canonical + SHA-224)', measure(() => parseSelectorUncached(selectors['typical']!).uniqueId));

for (const [name, text] of Object.entries(selectors)) {
  const sel = parseSelectorUncached(text);
  report(`evaluate record  ${name}`, measure((i) => sel.evaluate(labelSets[i & 3]!)));
}
const typical = parseSelectorUncached(selectors['typical']!);
const maps = labelSets.map((l) => new Map(Object.entries(l)));
report('evaluate Map     typical', measure((i) => typical.evaluate(maps[i & 3]!)));
