/**
 * Selector fields: validated with src/selector's parser (Calico's grammar).
 *
 * Contract: the text of a valid selector is kept as the user wrote it (Calico stores the
 * original string, not its canonical form); an empty or blank selector is reported as
 * absent (`undefined`, no problem), which is how Calico treats `""`.
 */
import { parseSelector } from '../selector';
import type { Issues } from './errors';
import { describe, quote } from './values';

const SELECTOR_MAX_LENGTH = 1024;

export type GlobalRule =
  /** `global()` may not appear (policy selectors, IPPool nodeSelector, entity selectors). */
  | 'forbidden'
  /** `global()` may appear only as the whole selector (EntityRule namespaceSelector). */
  | 'alone';

export interface SelectorResult {
  /** undefined when the selector is empty or invalid; `ok` tells which. */
  text: string | undefined;
  ok: boolean;
}

export function checkSelector(v: unknown, path: string, issues: Issues, global: GlobalRule): SelectorResult {
  if (typeof v !== 'string') {
    issues.add(path, `selector must be a string, got ${describe(v)}`);
    return { text: undefined, ok: false };
  }
  if (v.trim() === '') return { text: undefined, ok: true };
  if (v.length > SELECTOR_MAX_LENGTH) {
    issues.add(path, `selector is ${v.length} characters long, more than ${SELECTOR_MAX_LENGTH}`);
    return { text: undefined, ok: false };
  }
  let canonical: string;
  try {
    canonical = parseSelector(v).canonical;
  } catch (e) {
    // SelectorParseError's message already names the text and the offset.
    const offset = (e as { offset?: unknown }).offset;
    const msg = e instanceof Error ? e.message : String(e);
    const at = typeof offset === 'number' && !msg.includes('offset') ? ` at offset ${offset}` : '';
    issues.add(path, msg.includes(v) ? msg + at : `invalid selector ${quote(v)}${at}: ${msg}`);
    return { text: undefined, ok: false };
  }
  if (v.includes('global(')) {
    if (global === 'forbidden') {
      issues.add(path, `global() is only allowed in a rule's namespaceSelector`);
      return { text: undefined, ok: false };
    }
    if (canonical.replace(/\s+/g, '') !== 'global()') {
      issues.add(path, `global() cannot be combined with other selector terms`);
      return { text: undefined, ok: false };
    }
  }
  return { text: v, ok: true };
}
