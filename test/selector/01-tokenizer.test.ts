// Token-level behaviour of Calico's selector tokenizer: which texts tokenize and
// into what. Cases follow libcalico-go's tokenizer tests and the grammar notes in
// src/selector/tokenizer.ts (rewritten, plus our own edge cases).
import t from 'tap';
import { Tok, tokenize, isValidSelectorLabel, MAX_LABEL_LENGTH } from '../../src/selector/tokenizer';
import { SelectorParseError } from '../../src/selector';

type Expected = Array<[Tok, string?]>;

const L = (v: string): [Tok, string] => [Tok.Label, v];
const S = (v: string): [Tok, string] => [Tok.String, v];
const H = (v: string): [Tok, string] => [Tok.Has, v];

const ok: Array<[string, Expected]> = [
  ['a=="b"', [L('a'), [Tok.Eq], S('b')]],
  ['a!="b"', [L('a'), [Tok.Ne], S('b')]],
  ['a != "b"', [L('a'), [Tok.Ne], S('b')]],
  ['(a=="b")', [[Tok.LParen], L('a'), [Tok.Eq], S('b'), [Tok.RParen]]],
  ['label == "value"', [L('label'), [Tok.Eq], S('value')]],
  ['label contains "value"', [L('label'), [Tok.Contains], S('value')]],
  // Word operators are only operators right after a label.
  ['contains contains "contains"', [L('contains'), [Tok.Contains], S('contains')]],
  ["contains contains 'contains'", [L('contains'), [Tok.Contains], S('contains')]],
  ['label contains"value"', [L('label'), [Tok.Contains], S('value')]],
  ['label startswith "value"', [L('label'), [Tok.StartsWith], S('value')]],
  ['label endswith "value"', [L('label'), [Tok.EndsWith], S('value')]],
  ['label starts with "value"', [L('label'), [Tok.StartsWith], S('value')]],
  ['startswith starts with "value"', [L('startswith'), [Tok.StartsWith], S('value')]],
  ['label ends with "value"', [L('label'), [Tok.EndsWith], S('value')]],
  ['endswith ends with "value"', [L('endswith'), [Tok.EndsWith], S('value')]],
  ['label starts  with "value"', [L('label'), [Tok.StartsWith], S('value')]],
  ['label ends \t with "value"', [L('label'), [Tok.EndsWith], S('value')]],
  ['a'.repeat(512) + ' == "value"', [L('a'.repeat(512)), [Tok.Eq], S('value')]],
  [
    'a not in "bar" && !has(foo) || b in c',
    [L('a'), [Tok.NotIn], S('bar'), [Tok.And], [Tok.Not], H('foo'), [Tok.Or], L('b'), [Tok.In], L('c')],
  ],
  ['has(calico/k8s_ns)', [H('calico/k8s_ns')]],
  ['has(calico/k8s_NS-.1/role)', [H('calico/k8s_NS-.1/role')]],
  [
    'calico/k8s_ns == "kube-system" && k8s-app == "kube-dns"',
    [L('calico/k8s_ns'), [Tok.Eq], S('kube-system'), [Tok.And], L('k8s-app'), [Tok.Eq], S('kube-dns')],
  ],
  [
    'a  not  in  "bar"  &&  ! has( foo )  ||  b  in  c ',
    [L('a'), [Tok.NotIn], S('bar'), [Tok.And], [Tok.Not], H('foo'), [Tok.Or], L('b'), [Tok.In], L('c')],
  ],
  [
    'a notin"bar"&&!has(foo)||b in"c"',
    [L('a'), [Tok.NotIn], S('bar'), [Tok.And], [Tok.Not], H('foo'), [Tok.Or], L('b'), [Tok.In], S('c')],
  ],
  ['a not in {}', [L('a'), [Tok.NotIn], [Tok.LBrace], [Tok.RBrace]]],
  ['a not in {"a","B"}', [L('a'), [Tok.NotIn], [Tok.LBrace], S('a'), [Tok.Comma], S('B'), [Tok.RBrace]]],
  ['global()', [[Tok.Global]]],
  ['global( )', [[Tok.Global]]],
  ['all()', [[Tok.All]]],
  ['all(\t)', [[Tok.All]]],
  // Quotes: the other quote is plain text inside; no escapes.
  [`a == '"'`, [L('a'), [Tok.Eq], S('"')]],
  [`a == "'"`, [L('a'), [Tok.Eq], S("'")]],
  [`a == "x\\"`, [L('a'), [Tok.Eq], S('x\\')]],
  // `has (` is a label followed by a paren, not has().
  ['has (a)', [L('has'), [Tok.LParen], L('a'), [Tok.RParen]]],
  ['!=', [[Tok.Ne]]],
  ['', []],
  [' \t ', []],
];

const bad: string[] = [
  'a'.repeat(513) + ' == "value"',
  'label == "value',
  "label == 'value",
  `label == "value'`,
  'label = "value"',
  'all(',
  'all(x)',
  'global(',
  'has()',
  'has(foo',
  'has( foo ',
  'has(foo bar)',
  'has(' + 'a'.repeat(513) + ')',
  'a == "b" & has(foo)',
  'a == "b" | has(foo)',
  'label starts foo "value"',
  'label inf "value"',
  'label ends foo "value"',
  'label ends withs "value"',
  'label squiggles "value"',
  'label containsx "value"',
  'a not inx {}',
  'label starts',
  '%',
  'a == "b"\n',
  '\na == "b"',
  'a ==\r"b"',
  'a\u00a0== "b"',
];

t.test('tokenizes what Calico tokenizes', async (t) => {
  for (const [input, expected] of ok) {
    const toks = tokenize(input);
    const got = toks.map((tok) => (tok.kind === Tok.Label || tok.kind === Tok.String || tok.kind === Tok.Has ? [tok.kind, tok.value] : [tok.kind]));
    t.same(got, [...expected, [Tok.EOF]], JSON.stringify(input));
    t.equal(toks[toks.length - 1]!.start, input.length, `EOF at end of ${JSON.stringify(input)}`);
  }
});

t.test('token offsets point at the token text', async (t) => {
  const input = ' a  not in {"x" ,\'y\'} || !has( b )';
  const starts = tokenize(input).map((tok) => tok.start);
  t.same(starts, [1, 4, 11, 12, 16, 17, 20, 22, 25, 26, input.length]);
});

t.test('rejects what Calico rejects, with a SelectorParseError', async (t) => {
  for (const input of bad) {
    t.throws(() => tokenize(input), SelectorParseError, JSON.stringify(input.slice(0, 60)));
  }
});

t.test('label key charset and length', async (t) => {
  t.equal(MAX_LABEL_LENGTH, 512);
  for (const k of ['a', 'A-Z_0.9/x', 'projectcalico.org/namespace', '-', '...', 'x'.repeat(512)]) {
    t.ok(isValidSelectorLabel(k), k.slice(0, 40));
  }
  for (const k of ['', 'x'.repeat(513), 'a b', 'a:b', 'é', 'a=b', 'a@b', 'a\tb']) {
    t.notOk(isValidSelectorLabel(k), JSON.stringify(k.slice(0, 40)));
  }
});
