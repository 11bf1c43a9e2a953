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

export function tokenize(input: string): Token[] {
  const n = input.length;
  const tokens: Token[] = [];
  let i = 0;

  const skipBlanks = (p: number): number => {
    while (p < n) {
      const c = input.charCodeAt(p);
      if (c !== C_SPACE && c !== C_TAB) break;
      p++;
    }
    return p;
  };
  const scanLabel = (p: number): number => {
    while (p < n && isLabelChar(input.charCodeAt(p))) p++;
    return p;
  };
  const atBoundary = (p: number): boolean => p >= n || !isLabelChar(input.charCodeAt(p));
  /** End of `word` at p if it is there and followed by a word boundary, else -1. */
  const word = (p: number, w: string): number =>
    input.startsWith(w, p) && atBoundary(p + w.length) ? p + w.length : -1;
  /** Two words separated by optional blanks, the second ending at a boundary. */
  const twoWords = (p: number, w1: string, w2: string): number => {
    if (!input.startsWith(w1, p)) return -1;
    const q = skipBlanks(p + w1.length);
    if (!input.startsWith(w2, q)) return -1;
    const end = q + w2.length;
    return atBoundary(skipBlanks(end)) ? end : -1;
  };
  const fail = (at: number, reason: string): never => {
    throw new SelectorParseError(input, at, reason);
  };
  /** Scans a label at p, checking it is non-empty and not too long. */
  const label = (p: number, what: string): number => {
    const end = scanLabel(p);
    if (end === p) {
      fail(p, p >= n ? `expected ${what} but the selector ended` : `expected ${what}, found ${describeChar(input, p)}`);
    }
    if (end - p > MAX_LABEL_LENGTH) {
      fail(p, `label is ${end - p} characters long; the limit is ${MAX_LABEL_LENGTH}`);
    }
    return end;
  };
  const push = (kind: Tok, start: number, value = ''): void => {
    tokens.push({ kind, value, start });
  };

  for (;;) {
    i = skipBlanks(i);
    if (i >= n) {
      push(Tok.EOF, n);
      return tokens;
    }
    const start = i;
    const c = input.charCodeAt(i);
    switch (c) {
      case 0x28: // (
        push(Tok.LParen, start);
        i++;
        break;
      case 0x29: // )
        push(Tok.RParen, start);
        i++;
        break;
      case 0x7b: // {
        push(Tok.LBrace, start);
        i++;
        break;
      case 0x7d: // }
        push(Tok.RBrace, start);
        i++;
        break;
      case 0x2c: // ,
        push(Tok.Comma, start);
        i++;
        break;
      case 0x22: // "
      case 0x27: {
        // '
        const close = input.indexOf(input[i]!, i + 1);
        if (close < 0) fail(start, `unterminated string literal (no closing ${input[i]})`);
        push(Tok.String, start, input.slice(i + 1, close));
        i = close + 1;
        break;
      }
      case 0x3d: // =
        if (input.charCodeAt(i + 1) !== 0x3d) fail(start, "expected '==' ('=' alone is not an operator)");
        push(Tok.Eq, start);
        i += 2;
        break;
      case 0x21: // !
        if (input.charCodeAt(i + 1) === 0x3d) {
          push(Tok.Ne, start);
          i += 2;
        } else {
          push(Tok.Not, start);
          i++;
        }
        break;
      case 0x26: // &
        if (input.charCodeAt(i + 1) !== 0x26) fail(start, "expected '&&' ('&' alone is not an operator)");
        push(Tok.And, start);
        i += 2;
        break;
      case 0x7c: // |
        if (input.charCodeAt(i + 1) !== 0x7c) fail(start, "expected '||' ('|' alone is not an operator)");
        push(Tok.Or, start);
        i += 2;
        break;
      default: {
        const last = tokens.length > 0 ? tokens[tokens.length - 1]! : undefined;
        if (last !== undefined && last.kind === Tok.Label) {
          // After a label only an operator may follow.
          let end: number;
          if ((end = word(i, 'contains')) >= 0) push(Tok.Contains, start);
          else if ((end = twoWords(i, 'starts', 'with')) >= 0) push(Tok.StartsWith, start);
          else if ((end = twoWords(i, 'ends', 'with')) >= 0) push(Tok.EndsWith, start);
          else if ((end = twoWords(i, 'not', 'in')) >= 0) push(Tok.NotIn, start);
          else if ((end = word(i, 'in')) >= 0) push(Tok.In, start);
          else {
            return fail(
              start,
              `expected an operator (==, !=, in, not in, contains, starts with, ends with) after label ${JSON.stringify(last.value)}, found ${describeChar(input, start)}`,
            );
          }
          i = end;
        } else if (input.startsWith('has(', i)) {
          const nameStart = skipBlanks(i + 4);
          const nameEnd = label(nameStart, 'a label name inside has(…)');
          const close = skipBlanks(nameEnd);
          if (input.charCodeAt(close) !== 0x29) fail(close, "expected ')' to close has(");
          push(Tok.Has, start, input.slice(nameStart, nameEnd));
          i = close + 1;
        } else if (input.startsWith('all(', i)) {
          const close = skipBlanks(i + 4);
          if (input.charCodeAt(close) !== 0x29) fail(close, "expected ')' to close all(");
          push(Tok.All, start);
          i = close + 1;
        } else if (input.startsWith('global(', i)) {
          const close = skipBlanks(i + 7);
          if (input.charCodeAt(close) !== 0x29) fail(close, "expected ')' to close global(");
          push(Tok.Global, start);
          i = close + 1;
        } else {
          const end = label(i, 'a label, has(), all(), global(), !, ( or a string');
          push(Tok.Label, start, input.slice(i, end));
          i = end;
        }
      }
    }
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
