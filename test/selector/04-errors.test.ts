// Rejections: everything Calico's parser rejects throws SelectorParseError with a
// stable code, the input, and the offset of the problem.
import t from 'tap';
import { parseSelector, parseSelectorUncached, SelectorParseError, MAX_NESTING_DEPTH } from '../../src/selector';

// [input, offset of the problem]
const bad: Array<[string, number]> = [
  // From libcalico-go's bad-selector list (rewritten).
  ['b == b', 5], // label == label
  ['b contains b', 11],
  // Multi-word operators need a word boundary after the blanks that follow them,
  // so these already fail in the tokenizer, at the operator.
  ['b starts with b', 2],
  ['b ends with b', 2],
  ["'b1' == b", 0], // literal on the left
  ['b', 1], // bare label
  ['a b', 2],
  ['!', 1],
  ['foo == "bar" &', 13],
  ['foo == "bar" |', 13],
  ['foo != ||', 7],
  ['foo in {"", ||', 12],
  ['foo in ""', 7], // set literal expected
  ['"FOO', 0], // unterminated strings
  [`"FOO'`, 0],
  ["'FOO", 0],
  ['(', 1],
  ['(a == "foo"', 11],
  [')', 0],
  ['()', 1],
  ['%', 0],
  ['a == "b" && %', 12],
  ['a == "b" || %', 12],
  ['a ', 2],
  ['has(foo) &&', 11],
  // Operators and literals.
  ['a = "b"', 2],
  ['a === "b"', 4],
  ['a !== "b"', 4],
  ['a == "b" & c == "d"', 9],
  ['a == "b" | c == "d"', 9],
  ['a ==', 4],
  ['a == b', 5],
  ['a in', 4],
  ['a in "x"', 5],
  ['a in ("x")', 5],
  ['a in {"x" "y"}', 10],
  ['a in {,}', 6],
  ['a in {"x",,}', 10],
  ['a in {"x"', 9],
  ['a in {x}', 6],
  ['a not "x"', 2],
  ['a inx {"x"}', 2],
  ['a containsx "x"', 2],
  ['a starts "x"', 2],
  ['a ends withs "x"', 2],
  ['a contains', 10],
  ['a starts with', 13],
  ['a ! = "b"', 4], // tokenizing finishes before parsing: the lone '=' is found first
  ['a == "b" c == "d"', 9],
  ['a == "b")', 8],
  ['(a == "b"))', 10],
  ['a == "b" !', 9],
  ['&& a == "b"', 0],
  ['a == "b" &&', 11],
  ['a == "b" || || b == "c"', 12],
  ['! && a == "b"', 2],
  ['!=', 0],
  ['{}', 0],
  [',', 0],
  // has(), all(), global().
  ['has()', 4],
  ['has( )', 5],
  ['has(a', 5],
  ['has(a b)', 6],
  ['has (a)', 4],
  ['has("a")', 4],
  ['all(', 4],
  ['all(x)', 4],
  ['all ()', 4],
  ['ALL()', 3],
  ['global(', 7],
  ['global(a)', 7],
  ['a == "b" && has(a)(', 18],
  ['global ()', 7],
  ['has(a)has(b)', 6],
  ['all()all()', 5],
  ['has(a) == "x"', 7],
  ['a == "x" == "y"', 9],
  ['a == "x" in {}', 9],
  ['a in {"x"}{"y"}', 10],
  ['!(a == "b")!', 11],
  ['!!', 2],
  ['!()', 2],
  ['a == "b" &&& c == "d"', 11],
  ['a in in {}', 5],
  ['a not in in {}', 2],
  ['a in-{}', 2],
  ['a notin_{}', 2],
  ['a starts with-"x"', 2],
  ['a contains contains', 11],
  ['a==-"x"', 3],
  // Whitespace is space and tab only.
  ['a == "b"\n', 8],
  ['\na == "b"', 0],
  ['a ==\r"b"', 4],
  ['a\u00a0== "b"', 1],
  ['a ==\u3000"b"', 4],
  // Label keys: charset and length.
  ['a:b == "c"', 1],
  ['é == "c"', 0],
  ['x'.repeat(513) + ' == "v"', 0],
  ['has(' + 'x'.repeat(513) + ')', 4],
  ['y == "1" && ' + 'x'.repeat(600) + ' in {}', 12],
];

t.test('bad selectors are rejected at the right offset', async (t) => {
  for (const [input, offset] of bad) {
    const label = JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input);
    let err: unknown;
    try {
      parseSelector(input);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof SelectorParseError, `${label} is rejected`);
    if (!(err instanceof SelectorParseError)) continue;
    t.equal(err.code, 'ERR_SELECTOR_PARSE');
    t.equal(err.name, 'SelectorParseError');
    t.equal(err.input, input);
    t.equal(err.offset, offset, `${label} offset`);
    t.ok(err.offset >= 0 && err.offset <= input.length);
    t.match(err.message, `at offset ${offset}`);
    t.ok(err.reason.length > 0);
  }
});

t.test('messages name the problem', async (t) => {
  const msg = (s: string): string => {
    try {
      parseSelector(s);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  t.match(msg('a == b'), /expected a quoted string after '=='.*label "b"/);
  t.match(msg('"abc'), /unterminated string/);
  t.match(msg('x'.repeat(513) + ' == "v"'), /513 characters long; the limit is 512/);
  t.match(msg('a in {"x" "y"}'), /set literal/);
  t.match(msg('(a == "b"'), /expected '\)' to match the '\(' at offset 0/);
  t.match(msg('label squiggles "v"'), /expected an operator .* after label "label", found "squiggles"/);
  t.match(msg('a == "b"\n'), /U\+000A/);
  t.ok(msg('%'.repeat(10_000)).length < 400, 'long inputs are truncated in messages');
});

t.test('nesting is bounded instead of exhausting the stack', async (t) => {
  const nest = (d: number): string => '('.repeat(d) + 'has(a)' + ')'.repeat(d);
  t.equal(parseSelector(nest(MAX_NESTING_DEPTH)).evaluate({ a: '' }), true, `${MAX_NESTING_DEPTH} levels parse`);
  t.throws(() => parseSelector(nest(MAX_NESTING_DEPTH + 1)), { code: 'ERR_SELECTOR_PARSE', offset: MAX_NESTING_DEPTH });
  t.throws(() => parseSelector('('.repeat(200_000)), { code: 'ERR_SELECTOR_PARSE' });
  // Long flat expressions are fine: && and || chains are iterative.
  const wide = Array.from({ length: 20_000 }, (_, i) => `k${i} != "x"`).join(' && ');
  t.equal(parseSelector(wide).evaluate({}), true);
  // A long run of ! is collapsed, not nested.
  t.equal(parseSelector('!'.repeat(100_001) + 'has(a)').evaluate({}), true);
});

t.test('a caller deep in recursion gets a result or a SelectorParseError, never a RangeError', async (t) => {
  const text = '('.repeat(MAX_NESTING_DEPTH) + 'has(a)' + ')'.repeat(MAX_NESTING_DEPTH);
  const outcome = (depth: number): string => {
    if (depth > 0) return outcome(depth - 1);
    try {
      return parseSelectorUncached(text).canonical;
    } catch (e) {
      return e instanceof SelectorParseError ? 'SelectorParseError' : `other: ${String(e)}`;
    }
  };
  for (const depth of [0, 2000, 5000]) {
    t.match(outcome(depth), /^(has\(a\)|SelectorParseError)$/, `called ${depth} frames deep`);
  }
});

t.test('non-string input is a TypeError, not a crash inside the parser', async (t) => {
  t.throws(() => parseSelector(undefined as unknown as string), TypeError);
  t.throws(() => parseSelector(42 as unknown as string), TypeError);
});
