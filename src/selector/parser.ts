/**
 * Recursive-descent selector parser over tokenizer.ts's tokens, accepting exactly
 * Calico's grammar (libcalico-go `lib/selector/parser`):
 *
 *   selector  := <blank> | or EOF              (blank ⇒ all())
 *   or        := and ("||" and)*               (one operand ⇒ no OrNode)
 *   and       := operation ("&&" operation)*   (one operand ⇒ no AndNode)
 *   operation := "!"* ( has(k) | all() | global() | "(" or ")"
 *                     | k (== | != | contains | starts with | ends with) STRING
 *                     | k (in | not in) "{" [ STRING ("," STRING)* [","] ] "}" )
 *
 * `&&` binds tighter than `||`; both are n-ary and left-to-right. A run of `!`
 * collapses to one NotNode or none (even count), and it applies to the single
 * operation that follows: `!a == "x" && b == "y"` is `(!(a == "x")) && …`.
 * A set literal may be empty and may end with one trailing comma.
 *
 * Deliberate limit, not in Calico: parentheses may nest at most
 * MAX_NESTING_DEPTH deep, so hostile input cannot exhaust the JS stack (real
 * selectors nest a handful of levels).
 */
import { SelectorParseError } from './errors';
import { toSortedSet, type SelectorNode } from './ast';
import { Tok, tokenize, type Token } from './tokenizer';

export const MAX_NESTING_DEPTH = 1000;

const TOKEN_NAMES: Record<Tok, string> = {
  [Tok.Label]: 'label',
  [Tok.String]: 'string',
  [Tok.LBrace]: "'{'",
  [Tok.RBrace]: "'}'",
  [Tok.Comma]: "','",
  [Tok.Eq]: "'=='",
  [Tok.Ne]: "'!='",
  [Tok.In]: "'in'",
  [Tok.Not]: "'!'",
  [Tok.NotIn]: "'not in'",
  [Tok.Contains]: "'contains'",
  [Tok.StartsWith]: "'starts with'",
  [Tok.EndsWith]: "'ends with'",
  [Tok.All]: "'all()'",
  [Tok.Has]: "'has()'",
  [Tok.LParen]: "'('",
  [Tok.RParen]: "')'",
  [Tok.And]: "'&&'",
  [Tok.Or]: "'||'",
  [Tok.Global]: "'global()'",
  [Tok.EOF]: 'the end of the selector',
};

function describeToken(t: Token): string {
  switch (t.kind) {
    case Tok.Label:
      return `label ${JSON.stringify(t.value)}`;
    case Tok.String:
      return `string ${JSON.stringify(t.value)}`;
    case Tok.Has:
      return `has(${t.value})`;
    default:
      return TOKEN_NAMES[t.kind];
  }
}

/** Parses selector text into an AST or throws SelectorParseError. */
export function parseToAst(input: string): SelectorNode {
  const tokens = tokenize(input);
  if (tokens[0]!.kind === Tok.EOF) return { kind: 'all' };
  const p = new Parser(input, tokens);
  const root = p.parseOr(0);
  const next = p.peek();
  if (next.kind !== Tok.EOF) {
    p.fail(next, `unexpected ${describeToken(next)} after a complete expression (expected && or || or the end)`);
  }
  return root;
}

class Parser {
  private pos = 0;

  constructor(
    private readonly input: string,
    private readonly tokens: readonly Token[],
  ) {}

  peek(): Token {
    return this.tokens[this.pos]!;
  }

  fail(t: Token, reason: string): never {
    throw new SelectorParseError(this.input, t.start, reason);
  }

  parseOr(depth: number): SelectorNode {
    const first = this.parseAnd(depth);
    if (this.peek().kind !== Tok.Or) return first;
    const operands = [first];
    while (this.peek().kind === Tok.Or) {
      this.pos++;
      operands.push(this.parseAnd(depth));
    }
    return { kind: 'or', operands };
  }

  private parseAnd(depth: number): SelectorNode {
    const first = this.parseOperation(depth);
    if (this.peek().kind !== Tok.And) return first;
    const operands = [first];
    while (this.peek().kind === Tok.And) {
      this.pos++;
      operands.push(this.parseOperation(depth));
    }
    return { kind: 'and', operands };
  }

  private parseOperation(depth: number): SelectorNode {
    let negated = false;
    while (this.peek().kind === Tok.Not) {
      negated = !negated;
      this.pos++;
    }
    const node = this.parseAtom(depth);
    return negated ? { kind: 'not', operand: node } : node;
  }

  private parseAtom(depth: number): SelectorNode {
    const t = this.peek();
    switch (t.kind) {
      case Tok.Has:
        this.pos++;
        return { kind: 'has', label: t.value };
      case Tok.All:
        this.pos++;
        return { kind: 'all' };
      case Tok.Global:
        this.pos++;
        return { kind: 'global' };
      case Tok.Label:
        return this.parseComparison(t);
      case Tok.LParen: {
        if (depth >= MAX_NESTING_DEPTH) this.fail(t, `parentheses nested deeper than ${MAX_NESTING_DEPTH}`);
        this.pos++;
        const inner = this.parseOr(depth + 1);
        const close = this.peek();
        if (close.kind !== Tok.RParen) {
          this.fail(close, `expected ')' to match the '(' at offset ${t.start}, found ${describeToken(close)}`);
        }
        this.pos++;
        return inner;
      }
      default:
        return this.fail(
          t,
          `expected a label comparison, has(), all(), global(), '!' or '(', found ${describeToken(t)}`,
        );
    }
  }

  private parseComparison(labelTok: Token): SelectorNode {
    const label = labelTok.value;
    const op = this.tokens[this.pos + 1]!;
    switch (op.kind) {
      case Tok.Eq:
      case Tok.Ne:
      case Tok.Contains:
      case Tok.StartsWith:
      case Tok.EndsWith: {
        const lit = this.tokens[this.pos + 2];
        if (lit === undefined || lit.kind !== Tok.String) {
          this.fail(lit ?? op, `expected a quoted string after ${TOKEN_NAMES[op.kind]}, found ${describeToken(lit ?? op)}`);
        }
        this.pos += 3;
        const kind =
          op.kind === Tok.Eq
            ? 'eq'
            : op.kind === Tok.Ne
              ? 'ne'
              : op.kind === Tok.Contains
                ? 'contains'
                : op.kind === Tok.StartsWith
                  ? 'startsWith'
                  : 'endsWith';
        return { kind, label, value: lit.value };
      }
      case Tok.In:
      case Tok.NotIn: {
        const brace = this.tokens[this.pos + 2];
        if (brace === undefined || brace.kind !== Tok.LBrace) {
          this.fail(brace ?? op, `expected a set literal {…} after ${TOKEN_NAMES[op.kind]}, found ${describeToken(brace ?? op)}`);
        }
        this.pos += 3;
        const values: string[] = [];
        // Strings separated by commas; one trailing comma allowed; may be empty.
        while (this.peek().kind === Tok.String) {
          values.push(this.peek().value);
          this.pos++;
          if (this.peek().kind !== Tok.Comma) break;
          this.pos++;
        }
        const close = this.peek();
        if (close.kind !== Tok.RBrace) {
          this.fail(close, `expected a quoted string or '}' in the set literal, found ${describeToken(close)}`);
        }
        this.pos++;
        return { kind: op.kind === Tok.In ? 'in' : 'notIn', label, values: toSortedSet(values) };
      }
      case Tok.EOF:
        return this.fail(op, `expected an operator after label ${JSON.stringify(label)} but the selector ended`);
      default:
        return this.fail(
          op,
          `expected an operator (==, !=, in, not in, contains, starts with, ends with) after label ${JSON.stringify(label)}, found ${describeToken(op)}`,
        );
    }
  }
}
