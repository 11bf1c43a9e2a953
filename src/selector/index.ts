/**
 * Calico label selectors: parse, evaluate, canonicalise, index.
 *
 * Contract
 * - `parseSelector(text)` accepts exactly the selectors Calico's libcalico-go
 *   parser accepts (grammar in parser.ts, tokens in tokenizer.ts) and returns an
 *   immutable `Selector`; anything else throws `SelectorParseError`
 *   (code `ERR_SELECTOR_PARSE`, with `offset` and `input`). Blank text (spaces
 *   and tabs only) is `all()`. Results are cached (at most SELECTOR_CACHE_LIMIT,
 *   least recently used dropped first, keyed by the exact text), so callers may
 *   parse the same text repeatedly; the same text returns the same object while
 *   it stays cached. The one deliberate difference from Calico: parentheses nest
 *   at most MAX_NESTING_DEPTH (1000) deep, so hostile input cannot exhaust the
 *   stack.
 * - `selector.evaluate(labels)` agrees with Calico's Evaluate for every label set;
 *   labels are a plain record (own properties only) or a Map-like getter. A
 *   missing label fails ==, in, contains, starts with, ends with and has(), and
 *   satisfies != and not in; all() and global() are always true.
 * - `selector.canonical` is Calico's `String()`; `selector.uniqueId` is Calico's
 *   `UniqueID()`: `"s:" + base64url(sha224("s:" + canonical))`, so two selectors
 *   with the same canonical form share IDs, and the IDs match Calico's own.
 * - For indexing: `root` (typed AST, see ast.ts), `labelKeys` (every label key the
 *   selector reads — only changes to these keys can change its result) and
 *   `labelRestrictions()` (Calico's lower bounds: which keys must be present /
 *   absent and which values they must take; for `a == "x" && has(b)`:
 *   a present with value x, b present).
 * - transform.ts holds Calico's selector rewrites (label prefixing, the
 *   namespaceSelector → endpoint-selector conversion that gives `global()` its
 *   meaning).
 *
 * No I/O, no logging; pure functions plus one module-level cache.
 */
export { SelectorParseError } from './errors';
export {
  compareCodePoints,
  getLabel,
  possibleToSatisfy,
  type AllNode,
  type AndNode,
  type GlobalNode,
  type HasNode,
  type LabelGetter,
  type LabelRestriction,
  type LabelSetNode,
  type LabelSource,
  type LabelValueNode,
  type NotNode,
  type OrNode,
  type SelectorNode,
} from './ast';
export { isValidSelectorLabel, MAX_LABEL_LENGTH } from './tokenizer';
export { MAX_NESTING_DEPTH } from './parser';
export {
  clearSelectorCache,
  makeUniqueId,
  normaliseSelector,
  parseSelector,
  parseSelectorUncached,
  SELECTOR_CACHE_LIMIT,
  selectorCacheSize,
  selectorFromAst,
  type Selector,
} from './selector';
export { namespaceSelectorToEndpointSelector, prefixLabels } from './transform';
