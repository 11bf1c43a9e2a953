/**
 * Selector tokenizer, written to accept exactly the token language of Calico's
 * libcalico-go `lib/selector/tokenizer`:
 *
 * - whitespace is only space and tab (a newline is an error, not a separator);
 * - label keys are runs of `[A-Za-z0-9_./-]`, 1..512 characters;
 * - string literals use `"` or `'` and end at the next identical quote; there are
 *   no escapes, so a value may contain the other quote but never its own;
 * - the word operators (`contains`, `starts with`, `ends with`, `not in`, `in`) are
 *   only recognised directly after a label, so `in`, `contains`, … are ordinary
 *   label names anywhere else. Multi-word operators allow any run of blanks
 *   between their words, including none (`startswith`, `notin`), and every word
 *   operator must end at a word boundary (`a inx` is an error);
 * - `has(`, `all(` and `global(` are recognised (blanks allowed inside the
 *   parentheses) wherever a label is not expected to be followed by an operator.
 *
 * Every token carries the offset at which it starts so parse errors can point at
 * the offending text. The EOF token sits at `input.length`.
 */
import { SelectorParseError } from './errors';

export const enum Tok {
  Label,
  String,
  LBrace,
  RBrace,
  Comma,
  Eq,
  Ne,
  In,
  Not,
  NotIn,
  Contains,
  StartsWith,
  EndsWith,
  All,
  Has,
  LParen,
  RParen,
  And,
  Or,
  Global,
  EOF,
}

export interface Token {
  readonly kind: Tok;
  /** Label name, string-literal value or has() label; '' for the others. */
  readonly value: string;
  /** Offset of the token's first character in the input. */
  readonly start: number;
}

/** Calico's limit on label-key length in selectors. */
export const MAX_LABEL_LENGTH = 512;

const C_SPACE = 0x20;
const C_TAB = 0x09;

/** True for the characters Calico allows in a label key: `[A-Za-z0-9_./-]`. */
export function isLabelChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x5f || // _
    c === 0x2e || // .
    c === 0x2f || // /
    c === 0x2d // -
  );
}

/** True if `key` is a label key a selector can name (charset and length). */
export function isValidSelectorLabel(key: string): boolean {
  if (key.length === 0 || key.length > MAX_LABEL_LENGTH) return false;
  for (let i = 0; i < key.length; i++) {
    if (!isLabelChar(key.charCodeAt(i))) return false;
  }
  return true;
}

function skipBlanks(input: string, p: number): number {
  const n = input.length;
  while (p < n) {
    const c = input.charCodeAt(p);
    if (c !== C_SPACE && c !== C_TAB) break;
    p++;
  }
  return p;
}

function scanLabel(input: string, p: number): number {
  const n = input.length;
  while (p < n && isLabelChar(input.charCodeAt(p))) p++;
  return p;
}

function atBoundary(input: string, p: number): boolean {
  return p >= input.length || !isLabelChar(input.charCodeAt(p));
}

/** End of `w` at p if it is there and followed by a word boundary, else -1. */
function word(input: string, p: number, w: string): number {
  return input.startsWith(w, p) && atBoundary(input, p + w.length) ? p + w.length : -1;
}

/**
 * End of `w1 w2` at p (optional blanks between), else -1. Like Calico, the
 * boundary is checked after the blanks that follow w2, so `a starts with b`
 * fails here while `a starts with"b"` passes.
 */
function twoWords(input: string, p: number, w1: string, w2: string): number {
  if (!input.startsWith(w1, p)) return -1;
  const q = skipBlanks(input, p + w1.length);
  if (!input.startsWith(w2, q)) return -1;
  const end = q + w2.length;
  return atBoundary(input, skipBlanks(input, end)) ? end : -1;
}

function fail(input: string, at: number, reason: string): never {
  throw new SelectorParseError(input, at, reason);
}

/** Scans a label at p, checking it is non-empty and not too long; returns its end. */
function label(input: string, p: number, what: string): number {
  const end = scanLabel(input, p);
  if (end === p) {
    fail(input, p, p >= input.length ? `expected ${what} but the selector ended` : `expected ${what}, found ${describeChar(input, p)}`);
  }
  if (end - p > MAX_LABEL_LENGTH) {
    fail(input, p, `label is ${end - p} characters long; the limit is ${MAX_LABEL_LENGTH}`);
  }
  return end;
}

/** Closes `has(`, `all(` or `global(`: the ')' after optional blanks; returns the offset after it. */
function closeParen(input: string, p: number, what: string): number {
  const close = skipBlanks(input, p);
  if (input.charCodeAt(close) !== 0x29) fail(input, close, `expected ')' to close ${what}(`);
  return close + 1;
}

export function tokenize(input: string): Token[] {
  const n = input.length;
  const tokens: Token[] = [];
  let lastKind = -1;
  let i = 0;
  for (;;) {
    i = skipBlanks(input, i);
    if (i >= n) {
      tokens.push({ kind: Tok.EOF, value: '', start: n });
      return tokens;
    }
    const start = i;
    let kind: Tok;
    let value = '';
    const c = input.charCodeAt(i);
    switch (c) {
      case 0x28: // (
        kind = Tok.LParen;
        i++;
        break;
      case 0x29: // )
        kind = Tok.RParen;
        i++;
        break;
      case 0x7b: // {
        kind = Tok.LBrace;
        i++;
        break;
      case 0x7d: // }
        kind = Tok.RBrace;
        i++;
        break;
      case 0x2c: // ,
        kind = Tok.Comma;
        i++;
        break;
      case 0x22: // "
      case 0x27: {
        // '
        const close = input.indexOf(input[i]!, i + 1);
        if (close < 0) fail(input, start, `unterminated string literal (no closing ${input[i]})`);
        kind = Tok.String;
        value = input.slice(i + 1, close);
        i = close + 1;
        break;
      }
      case 0x3d: // =
        if (input.charCodeAt(i + 1) !== 0x3d) fail(input, start, "expected '==' ('=' alone is not an operator)");
        kind = Tok.Eq;
        i += 2;
        break;
      case 0x21: // !
        if (input.charCodeAt(i + 1) === 0x3d) {
          kind = Tok.Ne;
          i += 2;
        } else {
          kind = Tok.Not;
          i++;
        }
        break;
      case 0x26: // &
        if (input.charCodeAt(i + 1) !== 0x26) fail(input, start, "expected '&&' ('&' alone is not an operator)");
        kind = Tok.And;
        i += 2;
        break;
      case 0x7c: // |
        if (input.charCodeAt(i + 1) !== 0x7c) fail(input, start, "expected '||' ('|' alone is not an operator)");
        kind = Tok.Or;
        i += 2;
        break;
      default: {
        if (lastKind === Tok.Label) {
          // After a label only an operator may follow.
          let end: number;
          if ((end = word(input, i, 'contains')) >= 0) kind = Tok.Contains;
          else if ((end = twoWords(input, i, 'starts', 'with')) >= 0) kind = Tok.StartsWith;
          else if ((end = twoWords(input, i, 'ends', 'with')) >= 0) kind = Tok.EndsWith;
          else if ((end = twoWords(input, i, 'not', 'in')) >= 0) kind = Tok.NotIn;
          else if ((end = word(input, i, 'in')) >= 0) kind = Tok.In;
          else {
            return fail(
              input,
              start,
              `expected an operator (==, !=, in, not in, contains, starts with, ends with) after label ${JSON.stringify(tokens[tokens.length - 1]!.value)}, found ${describeChar(input, start)}`,
            );
          }
          i = end;
        } else if (c === 0x68 /* h */ && input.startsWith('has(', i)) {
          const nameStart = skipBlanks(input, i + 4);
          const nameEnd = label(input, nameStart, 'a label name inside has(…)');
          kind = Tok.Has;
          value = input.slice(nameStart, nameEnd);
          i = closeParen(input, nameEnd, 'has');
        } else if (c === 0x61 /* a */ && input.startsWith('all(', i)) {
          kind = Tok.All;
          i = closeParen(input, i + 4, 'all');
        } else if (c === 0x67 /* g */ && input.startsWith('global(', i)) {
          kind = Tok.Global;
          i = closeParen(input, i + 7, 'global');
        } else {
          const end = label(input, i, 'a label, has(), all(), global(), !, ( or a string');
          kind = Tok.Label;
          value = input.slice(i, end);
          i = end;
        }
      }
    }
    tokens.push({ kind, value, start });
    lastKind = kind;
  }
}

/** Human description of the word or character at p, for error messages. */
export function describeChar(input: string, p: number): string {
  if (p >= input.length) return 'the end of the selector';
  let end = p;
  while (end < input.length && end - p < 40 && isLabelChar(input.charCodeAt(end))) end++;
  if (end > p) return JSON.stringify(input.slice(p, end));
  const cp = input.codePointAt(p)!;
  const ch = String.fromCodePoint(cp);
  if (cp < 0x20 || cp === 0x7f) return `control character U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return `${JSON.stringify(ch)}`;
}
