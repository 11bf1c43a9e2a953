// Property tests with a fixed seed (override with SELECTOR_SEED=<n> to explore;
// a failure message names the seed and case index to replay):
//  1. random expressions rendered as random valid text (blanks, tabs, quote
//     styles, word-operator spellings, redundant parentheses, trailing commas)
//     parse, and evaluate like a direct interpretation of the expression;
//  2. the canonical form re-parses to an equivalent selector, and is a fixpoint
//     after at most one extra round (only a `!!` from `!(!x)` collapses);
//  3. equal canonical forms ⇔ equal UIDs;
//  4. mangled text never crashes: it parses (and then round-trips) or throws
//     SelectorParseError with an in-range offset.
import t from 'tap';
import { parseSelector, parseSelectorUncached, SelectorParseError } from '../../src/selector';

const SEED = Number(process.env['SELECTOR_SEED'] ?? 0x5eed);
const CASES = 3000;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type Expr =
  | { op: 'all' | 'global' }
  | { op: 'has'; key: string }
  | { op: 'eq' | 'ne' | 'contains' | 'starts' | 'ends'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'not'; e: Expr }
  | { op: 'and' | 'or'; es: Expr[] };

const KEYS = ['a', 'b', 'c', 'app', 'in', 'not', 'contains', 'x/y.z-1_2'];
const VALUES = ['', 'a', 'b', 'ab', 'ba', 'aba', '"', "'", 'é', '😀', 'A', ' '];

class Gen {
  constructor(private readonly rnd: () => number) {}
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }

  expr(depth: number): Expr {
    const r = this.int(depth <= 0 ? 7 : 10);
    switch (r) {
      case 0:
        return this.chance(0.7) ? { op: 'all' } : { op: 'global' };
      case 1:
        return { op: 'has', key: this.pick(KEYS) };
      case 2:
      case 3:
        return { op: this.pick(['eq', 'ne', 'contains', 'starts', 'ends'] as const), key: this.pick(KEYS), value: this.pick(VALUES) };
      case 4:
      case 5:
        return {
          op: this.chance(0.5) ? 'in' : 'notin',
          key: this.pick(KEYS),
          values: Array.from({ length: this.int(4) }, () => this.pick(VALUES)),
        };
      case 6:
        return { op: 'not', e: this.expr(depth - 1) };
      default:
        return { op: this.chance(0.5) ? 'and' : 'or', es: Array.from({ length: 2 + this.int(3) }, () => this.expr(depth - 1)) };
    }
  }

  labels(): Record<string, string> {
    const l: Record<string, string> = {};
    for (const k of KEYS) if (this.chance(0.4)) l[k] = this.pick(VALUES);
    return l;
  }

  blank(required = false): string {
    const n = required ? 1 + this.int(2) : this.int(3);
    return Array.from({ length: n }, () => (this.chance(0.8) ? ' ' : '\t')).join('');
  }

  quote(v: string): string {
    if (v.includes('"')) return `'${v}'`;
    if (v.includes("'")) return `"${v}"`;
    return this.chance(0.5) ? `"${v}"` : `'${v}'`;
  }

  /** Valid text for e; `tight` means e sits where only a single operation may go. */
  render(e: Expr, tight: boolean): string {
    const b = (): string => this.blank();
    let s: string;
    let compound = false;
    switch (e.op) {
      case 'all':
        s = this.chance(0.8) ? 'all()' : `all(${b()})`;
        break;
      case 'global':
        s = this.chance(0.8) ? 'global()' : `global(${b()})`;
        break;
      case 'has':
        s = `has(${b()}${e.key}${b()})`;
        break;
      case 'eq':
      case 'ne':
        s = `${e.key}${b()}${e.op === 'eq' ? '==' : '!='}${b()}${this.quote(e.value)}`;
        break;
      case 'contains':
        s = `${e.key}${this.blank(true)}contains${b()}${this.quote(e.value)}`;
        break;
      case 'starts':
      case 'ends':
        s = `${e.key}${this.blank(true)}${e.op}${b()}with${b()}${this.quote(e.value)}`;
        break;
      case 'in':
      case 'notin': {
        const items = e.values.map((v) => this.quote(v));
        let body = items.map((x, i) => (i > 0 ? `,${b()}` : '') + x).join('');
        if (items.length > 0 && this.chance(0.3)) body += ',';
        const op = e.op === 'in' ? 'in' : `not${b()}in`;
        s = `${e.key}${this.blank(true)}${op}${b()}{${b()}${body}${b()}}`;
        break;
      }
      case 'not': {
        s = `!${b()}${this.render(e.e, true)}`;
        break;
      }
      case 'and':
      case 'or': {
        const sep = e.op === 'and' ? '&&' : '||';
        // Operands of && must be single operations; operands of || may be && chains.
        s = e.es.map((x) => this.render(x, e.op === 'and' || x.op === 'or')).join(`${b()}${sep}${b()}`);
        compound = true;
        break;
      }
    }
    if ((compound && tight) || this.chance(0.1)) s = `(${b()}${s}${b()})`;
    return s;
  }
}

function refEval(e: Expr, l: Record<string, string>): boolean {
  const v = 'key' in e ? (Object.prototype.hasOwnProperty.call(l, e.key) ? l[e.key] : undefined) : undefined;
  switch (e.op) {
    case 'all':
    case 'global':
      return true;
    case 'has':
      return v !== undefined;
    case 'eq':
      return v === e.value;
    case 'ne':
      return v !== e.value;
    case 'contains':
      return v !== undefined && v.includes(e.value);
    case 'starts':
      return v !== undefined && v.startsWith(e.value);
    case 'ends':
      return v !== undefined && v.endsWith(e.value);
    case 'in':
      return v !== undefined && e.values.includes(v);
    case 'notin':
      return v === undefined || !e.values.includes(v);
    case 'not':
      return !refEval(e.e, l);
    case 'and':
      return e.es.every((x) => refEval(x, l));
    case 'or':
      return e.es.some((x) => refEval(x, l));
  }
}

t.test(`random expressions parse and evaluate like the expression (seed ${SEED})`, async (t) => {
  const g = new Gen(mulberry32(SEED));
  let failures = 0;
  let checks = 0;
  const uidByCanon = new Map<string, string>();
  const canonByUid = new Map<string, string>();
  for (let i = 0; i < CASES && failures < 5; i++) {
    const e = g.expr(4);
    const text = g.render(e, false);
    const where = `seed ${SEED} case ${i}: ${JSON.stringify(text)}`;
    let sel;
    try {
      sel = parseSelectorUncached(text);
    } catch (err) {
      failures++;
      t.fail(`${where} did not parse: ${(err as Error).message}`);
      continue;
    }
    const c1 = sel.canonical;
    const sel2 = parseSelector(c1);
    const c2 = sel2.canonical;
    const c3 = parseSelector(c2).canonical;
    if (c3 !== c2 || (!c1.includes('!!') && c2 !== c1)) {
      failures++;
      t.fail(`${where}: canonical not stable: ${c1} → ${c2} → ${c3}`);
    }
    for (let j = 0; j < 8; j++) {
      const labels = g.labels();
      const want = refEval(e, labels);
      checks++;
      if (sel.evaluate(labels) !== want || sel2.evaluate(labels) !== want) {
        failures++;
        t.fail(`${where} on ${JSON.stringify(labels)}: want ${want}, parsed ${sel.evaluate(labels)}, canonical ${sel2.evaluate(labels)}`);
      }
    }
    const uid = sel.uniqueId;
    if ((uidByCanon.get(c1) ?? uid) !== uid || (canonByUid.get(uid) ?? c1) !== c1) {
      failures++;
      t.fail(`${where}: UID/canonical mismatch`);
    }
    uidByCanon.set(c1, uid);
    canonByUid.set(uid, c1);
  }
  t.equal(failures, 0, `${CASES} expressions, ${checks} evaluations`);
  t.ok(uidByCanon.size > CASES / 2, 'the generator produces varied selectors');
});

t.test(`mangled selectors either parse or throw SelectorParseError (seed ${SEED})`, async (t) => {
  const rnd = mulberry32(SEED + 1);
  const g = new Gen(rnd);
  const junk = ['(', ')', '{', '}', ',', '!', '=', '&', '|', '"', "'", ' ', '\n', 'in', 'not', 'has(', 'all(', 'a', '%', 'é', '\u0000'];
  let parsed = 0;
  let rejected = 0;
  let failures = 0;
  for (let i = 0; i < CASES && failures < 5; i++) {
    let text = g.render(g.expr(3), false);
    const edits = 1 + g.int(3);
    for (let k = 0; k < edits; k++) {
      const at = g.int(text.length + 1);
      switch (g.int(3)) {
        case 0:
          text = text.slice(0, at) + text.slice(at + 1);
          break;
        case 1:
          text = text.slice(0, at) + g.pick(junk) + text.slice(at);
          break;
        default:
          text = text.slice(0, at);
      }
    }
    const where = `seed ${SEED} case ${i}: ${JSON.stringify(text)}`;
    try {
      const sel = parseSelectorUncached(text);
      parsed++;
      const again = parseSelectorUncached(sel.canonical);
      const labels = g.labels();
      if (again.evaluate(labels) !== sel.evaluate(labels)) {
        failures++;
        t.fail(`${where}: canonical form evaluates differently`);
      }
    } catch (err) {
      rejected++;
      if (!(err instanceof SelectorParseError) || err.offset < 0 || err.offset > text.length || err.input !== text) {
        failures++;
        t.fail(`${where}: threw ${String(err)}`);
      }
    }
  }
  t.equal(failures, 0, `${parsed} parsed, ${rejected} rejected`);
  t.ok(parsed > 0 && rejected > 0, 'both outcomes occur');
});
