// What the policy compiler indexes on: label keys a selector reads, and Calico's
// label restrictions (lower bounds on matching label sets). Vectors follow
// libcalico-go's label-restriction tests (rewritten).
import t from 'tap';
import { parseSelector, type LabelRestriction } from '../../src/selector';

type R = Record<string, LabelRestriction>;
const present: LabelRestriction = { mustBePresent: true, mustBeAbsent: false };
const absent: LabelRestriction = { mustBePresent: false, mustBeAbsent: true };
const oneOf = (...values: string[]): LabelRestriction => ({ mustBePresent: true, mustBeAbsent: false, mustHaveOneOfValues: values });

const cases: Array<[string, R]> = [
  ['', {}],
  ['all()', {}],
  ['global()', {}],
  ["a == 'value'", { a: oneOf('value') }],
  ['has(a)', { a: present }],
  ["a in {'v1','v2'}", { a: oneOf('v1', 'v2') }],
  ["a not in {'v1','v2'}", {}],
  // Calico reports only "present" here (nil slice); an empty value set is the exact bound.
  ['a in {}', { a: oneOf() }],
  ["a in {} && a == 'x'", { a: oneOf() }],
  ["a contains 'foo'", { a: present }],
  ["a ends with 'foo'", { a: present }],
  ["a starts with 'foo'", { a: present }],
  ["a != 'value'", {}],
  // &&: presence accumulates, value sets intersect.
  ["a == 'v1' && a == 'v1'", { a: oneOf('v1') }],
  ["a == 'v1' && a == 'v2'", { a: oneOf() }],
  ["a == 'v1' && has(a)", { a: oneOf('v1') }],
  ["a in {'v1','v2'} && a in {'v2','v3'} ", { a: oneOf('v2') }],
  ["a in {'v1','v2', 'v3'} && a in {'v2','v3'} ", { a: oneOf('v2', 'v3') }],
  ["has(a) && a == 'v1'", { a: oneOf('v1') }],
  ['has(a) && !has(a)', { a: { mustBePresent: true, mustBeAbsent: true } }],
  ["a == 'v1' && b == 'v2'", { a: oneOf('v1'), b: oneOf('v2') }],
  ["a == 'v1' && all()", { a: oneOf('v1') }],
  ["all() && a == 'v1'", { a: oneOf('v1') }],
  ["a == 'v1' && !has(b) && c != 'x'", { a: oneOf('v1'), b: absent }],
  ['a == "x" && has(b)', { a: oneOf('x'), b: present }],
  // ||: only what every branch requires survives; value sets unite.
  ["a == 'v1' || a == 'v2'", { a: oneOf('v1', 'v2') }],
  ["a == 'v2' || a == 'v1' || a in {'v3', 'v1'}", { a: oneOf('v1', 'v2', 'v3') }],
  ["has(a) || a == 'v2'", { a: present }],
  ["a=='v2' || has(a)", { a: present }],
  ["a=='v2' || has(b)", {}],
  ["a=='v2' || (has(b) && has(a))", { a: present }],
  ["a == 'v1' || b == 'v2'", {}],
  ["a == 'v1' || all()", {}],
  ["all() || b == 'v2'", {}],
  ['!has(a) || !has(a)', { a: absent }],
  ['!has(a) || has(a)', {}],
  // !: only !has() can be inverted.
  ["!(a == 'value')", {}],
  ['!has(a)', { a: absent }],
  ['!!has(a)', { a: present }],
  ['!(has(a) && has(b))', {}],
];

const asObject = (m: Map<string, LabelRestriction>): R => Object.fromEntries(m);

t.test('label restrictions match Calico', async (t) => {
  for (const [sel, want] of cases) {
    t.same(asObject(parseSelector(sel).labelRestrictions()), want, JSON.stringify(sel));
    if (sel !== '') {
      // Wrapping in "all() && (…)" changes nothing.
      t.same(asObject(parseSelector(`all() && (${sel})`).labelRestrictions()), want, `all() && (${sel})`);
    }
  }
});

t.test('restrictions are sound: a label set violating one never matches', async (t) => {
  const values = ['v1', 'v2', 'v3', ''];
  // Every label set over keys a, b with values from `values` (or absent).
  const sets: Array<Record<string, string>> = [];
  for (const va of [undefined, ...values]) {
    for (const vb of [undefined, ...values]) {
      const l: Record<string, string> = {};
      if (va !== undefined) l['a'] = va;
      if (vb !== undefined) l['b'] = vb;
      sets.push(l);
    }
  }
  for (const [text] of cases) {
    const sel = parseSelector(text);
    const rs = sel.labelRestrictions();
    for (const labels of sets) {
      let violates = false;
      for (const [k, r] of rs) {
        const v = labels[k];
        if (r.mustBePresent && v === undefined) violates = true;
        if (r.mustBeAbsent && v !== undefined) violates = true;
        if (r.mustHaveOneOfValues && (v === undefined || !r.mustHaveOneOfValues.includes(v))) violates = true;
      }
      if (violates) t.equal(sel.evaluate(labels), false, `${text} on ${JSON.stringify(labels)}`);
    }
  }
});

t.test('mightMatch is false only for contradictory selectors', async (t) => {
  t.equal(parseSelector("a == 'v1' && a == 'v2'").mightMatch, false);
  t.equal(parseSelector('has(a) && !has(a)').mightMatch, false);
  t.equal(parseSelector("a in {} ").mightMatch, false);
  t.equal(parseSelector("a == 'v1' && b == 'v2'").mightMatch, true);
  t.equal(parseSelector('all()').mightMatch, true);
  t.equal(parseSelector("a != 'x'").mightMatch, true);
});

t.test('labelKeys lists every key read, sorted, once', async (t) => {
  t.same(parseSelector('a == "x" && has(b)').labelKeys, ['a', 'b']);
  t.same(parseSelector('').labelKeys, []);
  t.same(parseSelector('global() || all()').labelKeys, []);
  t.same(
    parseSelector('z != "1" || !(y in {"a"} && x not in {}) || w contains "q" || v starts with "" || u ends with "" || has(z)').labelKeys,
    ['u', 'v', 'w', 'x', 'y', 'z'],
  );
  // Keys from != and not in count too: they change the result when the key appears.
  const sel = parseSelector('a != "x"');
  t.same(sel.labelKeys, ['a']);
  t.not(sel.evaluate({}), sel.evaluate({ a: 'x' }));
});

t.test('the AST is typed', async (t) => {
  const sel = parseSelector('!(a in {"y", "x"}) && (b == "1" || has(c))');
  t.same(sel.root, {
    kind: 'and',
    operands: [
      { kind: 'not', operand: { kind: 'in', label: 'a', values: ['x', 'y'] } },
      { kind: 'or', operands: [{ kind: 'eq', label: 'b', value: '1' }, { kind: 'has', label: 'c' }] },
    ],
  });
  t.equal(parseSelector('!(a in {"y", "x"}) && (b == "1" || has(c))').root, sel.root, 'cached parses share one AST');
});
