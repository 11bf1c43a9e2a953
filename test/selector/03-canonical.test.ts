// Canonical form (Calico's Selector.String()) and UniqueID. The three UIDs below
// are the ones libcalico-go's own tests pin, so our hash recipe is Calico's.
import t from 'tap';
import { parseSelector, parseSelectorUncached, normaliseSelector, makeUniqueId } from '../../src/selector';

const canonical: Array<[string, string]> = [
  ['', 'all()'],
  [' all() ', 'all()'],
  [' (all() )', 'all()'],
  ['! (has( b)||! has(a ))', '!(has(b) || !has(a))'],
  ['! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")'],
  // Quote choice: double quotes unless the value contains one.
  [`a == "'"`, `a == "'"`],
  [`a == '"'`, `a == '"'`],
  [`a == 'x'`, `a == "x"`],
  [`a contains '"'`, `a contains '"'`],
  [`a contains "'"`, `a contains "'"`],
  [`a startswith '"'`, `a starts with '"'`],
  [`a endswith "'"`, `a ends with "'"`],
  [`a  starts \t with 'x'`, `a starts with "x"`],
  [`a!='"'`, `a != '"'`],
  [`a==''`, `a == ""`],
  // Sets: sorted, de-duplicated, ", " separated; trailing comma dropped; empty kept.
  ['a in {"d"}', 'a in {"d"}'],
  ['a in {"a", "b"}', 'a in {"a", "b"}'],
  ['a in {"d", "a", "b"}', 'a in {"a", "b", "d"}'],
  ['a in {"z", "x", "y", "a"}', 'a in {"a", "x", "y", "z"}'],
  ['a in {"z", "z", "x", "y", "x", "a"}', 'a in {"a", "x", "y", "z"}'],
  ["a in {'x',}", 'a in {"x"}'],
  ['a in {}', 'a in {}'],
  ['a not in { }', 'a not in {}'],
  ['a notin{"b","a"}', 'a not in {"a", "b"}'],
  [`a in {"'", '"', "c"}`, `a in {'"', "'", "c"}`],
  ['a in {"b", "B", "a", "_", "0"}', 'a in {"0", "B", "_", "a", "b"}'],
  // Go orders strings by UTF-8 bytes = code points: U+FFFC sorts before U+1F600.
  ['a in {"😀", "￼", "é"}', 'a in {"é", "￼", "😀"}'],
  // Boolean structure: groups parenthesised, n-ary, never flattened or reordered.
  ['a == "1" && b == "2"', '(a == "1" && b == "2")'],
  ['a == "1" && b == "2" && c == "3"', '(a == "1" && b == "2" && c == "3")'],
  ['(a == "1" && b == "2") && c == "3"', '((a == "1" && b == "2") && c == "3")'],
  ['a == "1" && (b == "2" && c == "3")', '(a == "1" && (b == "2" && c == "3"))'],
  ['a == "1" || b == "2" && c == "3"', '(a == "1" || (b == "2" && c == "3"))'],
  ['a == "1" && b == "2" || c == "3"', '((a == "1" && b == "2") || c == "3")'],
  ['(a == "1" || b == "2") && c == "3"', '((a == "1" || b == "2") && c == "3")'],
  ['c == "3" && b == "2" && a == "1"', '(c == "3" && b == "2" && a == "1")'],
  ['has(a) && has(a)', '(has(a) && has(a))'],
  ['((a == "1"))', 'a == "1"'],
  // Negation: printed right before the operand; runs of ! collapse.
  ['!(k == "v")', '!k == "v"'],
  ['!!(k == "v")', 'k == "v"'],
  ['!!!k == "v"', '!k == "v"'],
  ['! has(a)', '!has(a)'],
  ['!all()', '!all()'],
  ['!global()', '!global()'],
  ['!(a == "1" || b == "2")', '!(a == "1" || b == "2")'],
  ['!a in {"x"}', '!a in {"x"}'],
  // A negation inside parentheses is a separate NotNode, so two print (Calico does the same).
  ['!(!a == "1")', '!!a == "1"'],
  ['!(!(k == "v" && has(t) || all()) && (a in {"b", "c"}))', '!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})'],
  ['all() && global()', '(all() && global())'],
  ['has( projectcalico.org/namespace )', 'has(projectcalico.org/namespace)'],
  // Keyword-looking label names (operators are only operators right after a label).
  ['in in {"in"}', 'in in {"in"}'],
  ['in not in {}', 'in not in {}'],
  ['not not in {}', 'not not in {}'],
  ['starts starts with "s"', 'starts starts with "s"'],
  ['with starts with "w"', 'with starts with "w"'],
  ['ends ends with "e"', 'ends ends with "e"'],
  ['contains == "x"', 'contains == "x"'],
  ['has == "x" || all == "x" || global == "x"', '(has == "x" || all == "x" || global == "x")'],
  ['has(has) && has(all) && has(global)', '(has(has) && has(all) && has(global))'],
  ['- == "x" && / in {} && .. contains ".."', '(- == "x" && / in {} && .. contains "..")'],
  ['a=="x"&&b=="y"||c=="z"&&d=="w"', '((a == "x" && b == "y") || (c == "z" && d == "w"))'],
  ['!a=="x"||!b=="y"', '(!a == "x" || !b == "y")'],
  ['a\t in\t {"x"\t,\t"y"}', 'a in {"x", "y"}'],
  ['a == "b"\t\t', 'a == "b"'],
];

const calicoUids: Array<[string, string]> = [
  ['', 's:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug'],
  [' all() ', 's:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug'],
  [' (all() )', 's:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug'],
  ['! (has( b)||! has(a ))', 's:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q'],
  ['! (a == "b"&&! c != "d")', 's:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w'],
];

t.test('canonical form matches Calico String()', async (t) => {
  for (const [input, want] of canonical) {
    const sel = parseSelector(input);
    t.equal(sel.canonical, want, JSON.stringify(input));
    t.equal(String(sel), want, 'toString is the canonical form');
  }
});

t.test('canonical form re-parses to itself and keeps the UID (except !!-collapse)', async (t) => {
  for (const [input, want] of canonical) {
    const sel = parseSelector(input);
    const again = parseSelector(want);
    if (want.includes('!!')) {
      // The re-parse collapses the double negation, exactly as Calico does.
      t.not(again.canonical, want, `${want} collapses on re-parse`);
      t.equal(parseSelector(again.canonical).canonical, again.canonical);
    } else {
      t.equal(again.canonical, want, `${want} is a fixpoint`);
      t.equal(again.uniqueId, sel.uniqueId, `UID of ${want} survives the round trip`);
    }
  }
});

t.test('UniqueID matches the values Calico pins', async (t) => {
  for (const [input, uid] of calicoUids) {
    t.equal(parseSelectorUncached(input).uniqueId, uid, JSON.stringify(input));
  }
});

t.test('UniqueID shape and identity', async (t) => {
  const ids = new Set<string>();
  for (const [input] of canonical) {
    const sel = parseSelector(input);
    t.match(sel.uniqueId, /^s:[A-Za-z0-9_-]{38}$/);
    t.equal(sel.uniqueId, sel.uniqueId);
    ids.add(sel.uniqueId);
  }
  const distinctCanon = new Set(canonical.map(([, c]) => c));
  t.equal(ids.size, distinctCanon.size, 'one UID per distinct canonical form');
  t.ok(parseSelector('a == "b"').equals(parseSelector("a=='b'")));
  t.notOk(parseSelector('a == "b"').equals(parseSelector('a == "c"')));
  t.equal(makeUniqueId('s', 'all()'), calicoUids[0]![1]);
});

t.test('normaliseSelector follows Calico Normalise', async (t) => {
  t.equal(normaliseSelector(''), 'all()');
  t.equal(normaliseSelector('\n  a=="b" \n'), 'a == "b"', 'TrimSpace removes newlines around the text');
  t.equal(normaliseSelector('  not valid %  '), 'not valid %', 'unparseable text is returned trimmed');
  t.equal(normaliseSelector("has(a)&&b in {'y','x'}"), '(has(a) && b in {"x", "y"})');
});
