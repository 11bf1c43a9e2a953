// Evaluation vectors: selector text, label sets that must match and label sets
// that must not. Derived from libcalico-go's parser tests and the Calico docs'
// selector table (rewritten), plus edge cases of the grammar. Every vector is
// also checked after a round trip through the canonical form, and against a
// Map label source.
import t from 'tap';
import { parseSelector, type Selector } from '../../src/selector';

type Labels = Record<string, string>;
interface Vector {
  sel: string;
  match: Labels[];
  noMatch: Labels[];
}

const v = (sel: string, match: Labels[], noMatch: Labels[] = []): Vector => ({ sel, match, noMatch });

const vectors: Vector[] = [
  v('a == "b"', [{ a: 'b' }, { a: 'b', c: 'd' }], [{}, { a: 'c' }, { c: 'd' }, { a: 'B' }, { a: 'b ' }]),
  v('a == "b" && c == "d"', [{ a: 'b', c: 'd' }], [{}, { a: 'b', c: 'e' }, { a: 'c', c: 'd' }, { c: 'd' }, { a: 'b' }]),
  v('a == "b" || c == "d"', [{ a: 'b', c: 'd' }, { a: 'b' }, { c: 'd' }], [{}, { a: 'e', c: 'e' }, { c: 'e' }, { a: 'e' }]),
  v(`a in {"'", '"', "c"}`, [{ a: 'c' }, { a: '"' }, { a: "'" }], [{}, { a: 'e' }]),
  v(`a not in {"'", '"', "c"}`, [{}, { a: 'e' }], [{ a: 'c' }, { a: '"' }, { a: "'" }]),
  v("a == 'a'", [{ a: 'a' }], [{ a: 'b' }, {}]),
  v('a == "a"', [{ a: 'a' }]),
  // != matches a missing label.
  v('a != "b"', [{ a: 'a' }, {}, { b: 'b' }], [{ a: 'b' }]),
  v('a != "a"', [{}], [{ a: 'a' }]),
  v("a != 'a'", [], [{ a: 'a' }]),
  v('a contains "a"', [{ a: 'a' }, { a: 'bab' }, { a: 'aaa', b: 'c' }], [{}, { a: 'b' }, { b: 'aaa' }]),
  v('a starts with "a"', [{ a: 'a' }, { a: 'abb' }, { a: 'aaa', b: 'c' }], [{}, { a: 'b' }, { a: 'baa' }, { b: 'aaa' }]),
  v('a ends with "a"', [{ a: 'a' }, { a: 'bba' }, { a: 'aaa', b: 'c' }], [{}, { a: 'b' }, { a: 'aab' }, { b: 'aaa' }]),
  // The empty string is contained in, a prefix and a suffix of every value, but the label must exist.
  v('a contains ""', [{ a: '' }, { a: 'x' }], [{}]),
  v('a starts with ""', [{ a: '' }, { a: 'x' }], [{}]),
  v('a ends with ""', [{ a: '' }], [{ b: '' }]),
  v('a == ""', [{ a: '' }], [{}, { a: ' ' }]),
  v('a != ""', [{}, { a: 'x' }], [{ a: '' }]),
  v('a in {"a"}', [{ a: 'a' }], [{ a: 'b' }, {}]),
  // ! applies to the single comparison after it.
  v('!a in {"a"}', [{ a: 'b' }, {}], [{ a: 'a' }]),
  v('a in {"a", "b"}', [{ a: 'a' }, { a: 'b' }], [{ a: 'c' }]),
  v('a not in {"d", "e"}', [{ a: 'a' }, {}], [{ a: 'd' }, { a: 'e' }]),
  v('a not in {"a"}', [], [{ a: 'a' }]),
  v('a in {}', [], [{}, { a: '' }, { a: 'x' }]),
  v('a not in {}', [{}, { a: '' }, { a: 'x' }]),
  v('a in {"x",}', [{ a: 'x' }], [{ a: '' }]),
  v('a in {""}', [{ a: '' }], [{}, { a: 'x' }]),
  v('has(a)', [{ a: 'b' }, { a: '' }], [{ b: 'b' }, {}]),
  v('!has(a)', [{ b: 'b' }, {}], [{ a: 'b' }, { a: '' }]),
  v('', [{}, { a: 'b' }]),
  v(' ', [{}]),
  v('\t', [{ a: 'b' }]),
  v('all()', [{}, { a: 'b' }]),
  v(' all()', [{}, { a: 'b' }]),
  v('!all()', [], [{}, { a: 'b' }]),
  // global() evaluates true on any label set; its meaning comes from the namespaceSelector rewrite.
  v('global()', [{}, { a: 'b' }]),
  v(' global( )', [{}, { a: 'b' }]),
  v('!global()', [], [{}, { a: 'b' }]),
  v('has(b)', [], [{ a: 'b' }]),
  v('!!has(b)', [], [{ a: 'b' }]),
  v('! has(a)', [], [{ a: 'b' }]),
  v('!!! has(a)', [{}], [{ a: 'b' }]),
  v('!!!has(a)', [], [{ a: 'b' }]),
  v('!! ! has(a)', [], [{ a: 'b' }]),
  v('! !!has(a)', [], [{ a: 'b' }]),
  v('!!!!has(a)', [{ a: 'b' }], [{}]),
  // Boolean structure.
  v("a == 'a1' && b == 'b1'", [{ a: 'a1', b: 'b1' }], [{ a: 'a1' }]),
  v("a == 'a1' && b != 'b1'", [{ a: 'a1' }], [{ a: 'a1', b: 'b1' }]),
  v("a != 'a1' && b == 'b1'", [{ b: 'b1' }], [{ a: 'a1', b: 'b1' }]),
  v("a != 'a1' && b != 'b1'", [{}], [{ a: 'a1', b: 'b1' }]),
  v("a != 'a1' && !b == 'b1'", [{}], [{ a: 'a1', b: 'b1' }]),
  v("!a == 'a1' && b == 'b1'", [{ b: 'b1' }], [{ a: 'a1', b: 'b1' }]),
  v('has(a) && !has(b)', [{ a: 'a' }], [{ a: 'a', b: 'b' }, {}]),
  v('!has(b) && has(a)', [{ a: 'a' }], [{ b: 'b' }]),
  v('!(!has(a) || has(b))', [{ a: 'a' }], [{ a: 'a', b: 'b' }, {}]),
  v('!(has(b) || !has(a))', [{ a: 'a' }], [{ b: '' }]),
  v("a == 'a1' || b == 'b1'", [{ a: 'a1', b: 'b1' }, { b: 'b1' }], [{}]),
  v("a == 'a1' || b != 'b1'", [{ a: 'a1', b: 'b1' }, {}], [{ b: 'b1' }]),
  v("a != 'a1' || b == 'b1'", [{ a: 'a1', b: 'b1' }, {}], [{ a: 'a1' }]),
  v("a != 'a1' || b != 'b1'", [{ a: 'a1' }, {}], [{ a: 'a1', b: 'b1' }]),
  v("! a == 'a1' || ! b == 'b1'", [{ a: 'a1' }], [{ a: 'a1', b: 'b1' }]),
  // && binds tighter than ||.
  v('a == "1" || b == "1" && c == "1"', [{ a: '1' }, { b: '1', c: '1' }], [{ b: '1' }, { c: '1' }]),
  v('a == "1" && b == "1" || c == "1"', [{ c: '1' }, { a: '1', b: '1' }], [{ a: '1' }, { b: '1' }]),
  v('(a == "1" || b == "1") && c == "1"', [{ a: '1', c: '1' }, { b: '1', c: '1' }], [{ a: '1' }, { b: '1' }]),
  v('!(a == "1" || b == "1") && c == "1"', [{ c: '1' }], [{ a: '1', c: '1' }, {}]),
  v('!a == "1" || b == "1"', [{}, { a: '1', b: '1' }], [{ a: '1' }]),
  v('((((has(a)))))', [{ a: '' }], [{}]),
  v('!(!(!(has(a))))', [{}], [{ a: '' }]),
  v('all() && a == "b"', [{ a: 'b' }], [{}]),
  v('all() || a == "b"', [{}]),
  v('global() && !has(projectcalico.org/namespace)', [{}], [{ 'projectcalico.org/namespace': 'default' }]),
  // Calico-style keys and keyword-like label names.
  v('calico/k8s_ns == "kube-system" && k8s-app == "kube-dns"', [{ 'calico/k8s_ns': 'kube-system', 'k8s-app': 'kube-dns' }], [{ 'k8s-app': 'kube-dns' }]),
  v('projectcalico.org/namespace in {"dev", "prod"}', [{ 'projectcalico.org/namespace': 'dev' }], [{ 'projectcalico.org/namespace': 'test' }]),
  v('contains contains "contains"', [{ contains: 'xcontainsx' }], [{ contains: 'contain' }]),
  v('in in {"in"}', [{ in: 'in' }], [{ in: 'out' }]),
  v('not in {"x"}', [{ not: 'x' }], [{ not: 'y' }, {}]),
  v('not not in {"x"}', [{ not: 'y' }, {}], [{ not: 'x' }]),
  v('has(has)', [{ has: '' }], [{}]),
  v('all == "x" || global == "y"', [{ all: 'x' }, { global: 'y' }], [{}]),
  v('-a_b.c/d == "x"', [{ '-a_b.c/d': 'x' }], [{ '-a_b.c/d': 'y' }]),
  v('123 == "456"', [{ '123': '456' }], [{ '123': '45' }]),
  // Object.prototype keys are not labels.
  v('has(constructor) || has(__proto__) || has(toString)', [{ toString: '' }], [{}]),
  v('constructor != "x"', [{}], [{ constructor: 'x' }]),
  // No whitespace needed around symbols; word operators need a boundary only after them.
  v('a=="b"&&c!="d"||!has(e)', [{ a: 'b' }, {}], [{ a: 'b', c: 'd', e: '' }, { e: '' }]),
  v('a in{"x"}', [{ a: 'x' }]),
  v('a notin {"x"}', [{ a: 'y' }], [{ a: 'x' }]),
  v('a startswith"x"', [{ a: 'xy' }], [{ a: 'yx' }]),
  v('a endswith "x"', [{ a: 'yx' }], [{ a: 'xy' }]),
  v('a\tstarts\t\twith\t"x"', [{ a: 'xy' }], [{ a: 'yx' }]),
  // Quotes: the other quote character is plain text; backslash is not an escape.
  v(`a == '"'`, [{ a: '"' }], [{ a: "'" }]),
  v(`a == "'"`, [{ a: "'" }], [{ a: '"' }]),
  v(`a == "x\\"`, [{ a: 'x\\' }], [{ a: 'x' }]),
  v(`a contains '"q"'`, [{ a: 'say "q" now' }], [{ a: 'q' }]),
  // Values are exact and case-sensitive; non-ASCII is fine in values.
  v('a == "é"', [{ a: 'é' }], [{ a: 'e' }, { a: 'É' }]),
  v('a in {"😀", "￼"}', [{ a: '😀' }, { a: '￼' }], [{ a: '😁' }]),
  v('a contains "😀"', [{ a: 'x😀y' }], [{ a: '😁' }]),
];

/** [got, wanted, message] for every label set of the vector, plain and as a Map. */
function outcomes(sel: Selector, vec: Vector, how: string): Array<[boolean, boolean, string]> {
  const out: Array<[boolean, boolean, string]> = [];
  for (const [sets, want] of [[vec.match, true], [vec.noMatch, false]] as const) {
    for (const labels of sets) {
      const what = `${how} ${JSON.stringify(vec.sel)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(labels)}`;
      out.push([sel.evaluate(labels), want, what]);
      out.push([sel.evaluate(new Map(Object.entries(labels))), want, `${what} (as Map)`]);
    }
  }
  return out;
}

t.test('evaluation vectors', async (t) => {
  for (const vec of vectors) {
    const sel = parseSelector(vec.sel);
    const again = parseSelector(sel.canonical);
    for (const [got, want, msg] of [...outcomes(sel, vec, 'parsed'), ...outcomes(again, vec, 'canonical')]) {
      t.equal(got, want, msg);
    }
    t.equal(again.canonical, parseSelector(again.canonical).canonical, `canonical of ${JSON.stringify(vec.sel)} is stable`);
  }
});

t.test('labels whose prototype-chain names collide are only read as own properties', async (t) => {
  const inherited = Object.create({ a: 'b' }) as Record<string, string>;
  t.equal(parseSelector('a == "b"').evaluate(inherited), false);
  t.equal(parseSelector('has(a)').evaluate(inherited), false);
  const nullProto = Object.assign(Object.create(null) as Record<string, string>, { a: 'b' });
  t.equal(parseSelector('a == "b"').evaluate(nullProto), true);
  // A label literally named "get" is a label, not a getter.
  t.equal(parseSelector('get == "x"').evaluate({ get: 'x' }), true);
});

t.test('null or undefined labels are an empty label set', async (t) => {
  t.equal(parseSelector('a != "x"').evaluate(undefined), true);
  t.equal(parseSelector('has(a)').evaluate(null), false);
  t.equal(parseSelector('').evaluate(undefined), true);
});

t.test('a Map-like label getter is consulted per key', async (t) => {
  const asked: string[] = [];
  const getter = {
    get(key: string): string | undefined {
      asked.push(key);
      return key === 'a' ? '1' : undefined;
    },
  };
  t.equal(parseSelector('a == "1" && !has(b)').evaluate(getter), true);
  t.same(asked, ['a', 'b']);
});
