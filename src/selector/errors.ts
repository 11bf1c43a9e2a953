/**
 * The one error the selector package throws for bad input.
 *
 * Contract: every rejection of selector text is a `SelectorParseError` with
 * `code === 'ERR_SELECTOR_PARSE'`, the full `input`, the `offset` of the problem
 * (a UTF-16 index into `input`; `input.length` when the text ended too early) and a
 * short `reason`. The message repeats all three so a log line alone is enough.
 */
import { TortieError } from '../util/errors';

export class SelectorParseError extends TortieError {
  declare readonly code: 'ERR_SELECTOR_PARSE';
  /** Position of the problem in `input` (0-based, UTF-16 code units). */
  readonly offset: number;
  /** The selector text that failed to parse. */
  readonly input: string;
  /** What was wrong, without the position or the input. */
  readonly reason: string;

  constructor(input: string, offset: number, reason: string) {
    super('ERR_SELECTOR_PARSE', `invalid selector ${JSON.stringify(truncate(input))} at offset ${offset}: ${reason}`);
    this.input = input;
    this.offset = offset;
    this.reason = reason;
  }
}

/** Keeps messages bounded when someone feeds us a megabyte of selector. */
function truncate(s: string): string {
  return s.length <= 200 ? s : `${s.slice(0, 200)}…(${s.length} chars)`;
}
