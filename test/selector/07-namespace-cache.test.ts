// Calico's selector rewrites (label prefixing; namespaceSelector → endpoint
// selector, which is what gives global() its meaning) and the parse cache.
import t from 'tap';
import {
  clearSelectorCache,
  namespaceSelectorToEndpointSelector,
  parseSelector,
  prefixLabels,
  SELECTOR_CACHE_LIMIT,
  selectorCacheSize,
  selectorFromAst,
} from '../../src/selector';
import { LABEL_NAMESPACE } from '../../src/primitives';

t.test('prefixLabels behaves like Calico PrefixVisitor', async (t) => {
  const cases: Array<[string, string]> = [
    ["k == 'v'", 'visited/k == "v"'],
    ["k != 'v'", 'visited/k != "v"'],
    ["k contains 'v'", 'visited/k contains "v"'],
    ["k starts with 'v'", 'visited/k starts with "v"'],
    ["k ends with 'v'", 'visited/k ends with "v"'],
    ["k == 'v' && x == 'y'", '(visited/k == "v" && visited/x == "y")'],
    ["k == 'v' || has(x)", '(visited/k == "v" || has(visited/x))'],
    ["!(k == 'v')", '!visited/k == "v"'],
    ["k in {'v'}", 'visited/k in {"v"}'],
    ["k not in {'v'}", 'visited/k not in {"v"}'],
    [
      "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
      '!(!((visited/k == "v" && has(visited/t)) || all()) && visited/a in {"b", "c"})',
    ],
    ['global()', 'global()'],
  ];
  for (const [input, want] of cases) {
    const original = parseSelector(input);
    const before = original.canonical;
    t.equal(prefixLabels(original, 'visited/').canonical, want, input);
    t.equal(original.canonical, before, 'the input selector is not modified');
  }
  // A prefix that pushes a key past 512 characters still yields a usable selector.
  const long = prefixLabels(parseSelector(`${'k'.repeat(510)} == "v"`), 'pcns.');
  t.equal(long.evaluate({ [`pcns.${'k'.repeat(510)}`]: 'v' }), true);
});

t.test('namespaceSelector rewrite: all() = any namespace, global() = no namespace', async (t) => {
  const cases: Array<[string, string]> = [
    ['all()', `has(${LABEL_NAMESPACE})`],
    ['global()', `!has(${LABEL_NAMESPACE})`],
    ['!global()', `has(${LABEL_NAMESPACE})`],
    ["name == 'dev'", 'pcns.name == "dev"'],
    ["env in {'prod', 'dev'} && all()", `(pcns.env in {"dev", "prod"} && has(${LABEL_NAMESPACE}))`],
    ['!has(team)', '!has(pcns.team)'],
    ['a == "all()"', 'pcns.a == "all()"'],
  ];
  for (const [input, want] of cases) {
    t.equal(namespaceSelectorToEndpointSelector(parseSelector(input)).canonical, want, JSON.stringify(input));
  }

  // Endpoint label sets as Calico builds them: namespaced workloads carry their
  // namespace name and the namespace's labels under pcns.; host endpoints neither.
  const devPod = { app: 'web', [LABEL_NAMESPACE]: 'dev', 'pcns.env': 'dev', 'pcns.projectcalico.org/name': 'dev' };
  const prodPod = { app: 'web', [LABEL_NAMESPACE]: 'prod', 'pcns.env': 'prod', 'pcns.projectcalico.org/name': 'prod' };
  const hostEndpoint = { role: 'gateway' };

  const matches = (ns: string, labels: Record<string, string>): boolean =>
    namespaceSelectorToEndpointSelector(parseSelector(ns)).evaluate(labels);
  t.same([matches('global()', devPod), matches('global()', hostEndpoint)], [false, true]);
  t.same([matches('all()', devPod), matches('all()', prodPod), matches('all()', hostEndpoint)], [true, true, false]);
  t.same([matches("env == 'prod'", devPod), matches("env == 'prod'", prodPod), matches("env == 'prod'", hostEndpoint)], [false, true, false]);
  t.same(
    [matches("projectcalico.org/name == 'dev'", devPod), matches("projectcalico.org/name == 'dev'", prodPod)],
    [true, false],
  );
  // Plain evaluation of global() is true for any labels (it is not a namespace test on its own).
  t.equal(parseSelector('global()').evaluate(devPod), true);
});

t.test('selectorFromAst builds the same selector the parser would', async (t) => {
  const built = selectorFromAst({
    kind: 'and',
    operands: [
      { kind: 'in', label: 'a', values: ['y', 'x', 'y'] },
      { kind: 'not', operand: { kind: 'has', label: 'b' } },
    ],
  });
  t.equal(built.canonical, '(a in {"x", "y"} && !has(b))');
  t.equal(built.uniqueId, parseSelector('a in {"y","x"} && !has(b)').uniqueId);
  t.equal(built.evaluate({ a: 'x' }), true);
  t.equal(built.evaluate({ a: 'x', b: '' }), false);
});

t.test('parse cache: same object for same text, bounded, least recently used evicted', async (t) => {
  clearSelectorCache();
  t.equal(selectorCacheSize(), 0);
  const first = parseSelector('a == "0"');
  t.equal(parseSelector('a == "0"'), first, 'cache hit returns the same selector');
  t.not(parseSelector("a == '0'"), first, 'the key is the exact text');
  const keep = parseSelector('keep == "me"');
  for (let i = 1; i < SELECTOR_CACHE_LIMIT + 50; i++) {
    parseSelector(`a == "${i}"`);
    if (i % 1000 === 0) parseSelector('keep == "me"'); // keep it recent
  }
  t.ok(selectorCacheSize() <= SELECTOR_CACHE_LIMIT, 'size stays within the limit');
  t.ok(selectorCacheSize() >= SELECTOR_CACHE_LIMIT / 2, 'and keeps at least half of it');
  t.not(parseSelector('a == "0"'), first, 'the oldest entry was evicted');
  t.equal(parseSelector('keep == "me"'), keep, 'a recently used entry survived');
  t.throws(() => parseSelector('a =='), { code: 'ERR_SELECTOR_PARSE' });
  t.throws(() => parseSelector('a =='), { code: 'ERR_SELECTOR_PARSE' }, 'errors are not cached as successes');
  clearSelectorCache();
  t.equal(selectorCacheSize(), 0);
});
