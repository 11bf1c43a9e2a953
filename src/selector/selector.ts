/**
 * The Selector object, the bounded parse cache and Calico's UniqueID. See
 * index.ts for the package contract.
 */
import { createHash } from 'node:crypto';
import {
  canonicalString,
  toSortedSet,
  collectLabelKeys,
  compileNode,
  labelRestrictions,
  possibleToSatisfy,
  type LabelRestriction,
  type LabelSource,
  type Predicate,
  type SelectorNode,
} from './ast';
import { SelectorParseError } from './errors';
import { parseToAst } from './parser';

/** A parsed, immutable Calico selector. */
export interface Selector {
  /** The typed AST; shared with other holders of this Selector, never mutate it. */
  readonly root: SelectorNode;
  /** Calico's canonical String() form, e.g. `(a == "b" && has(c))`. */
  readonly canonical: string;
  /** Calico's UniqueID(): `s:` + base64url(SHA-224(`s:` + canonical)). */
  readonly uniqueId: string;
  /** Every label key the selector reads, sorted; empty for all()/global(). */
  readonly labelKeys: readonly string[];
  /** True if the labels satisfy the selector; null/undefined count as no labels. */
  evaluate(labels: LabelSource | null | undefined): boolean;
  /** Calico's LabelRestrictions(): lower bounds on matching label sets (fresh map per call). */
  labelRestrictions(): Map<string, LabelRestriction>;
  /** False when the restrictions already show no label set can match. */
  readonly mightMatch: boolean;
  /** Same canonical form (hence same uniqueId). */
  equals(other: Selector): boolean;
  /** The canonical form. */
  toString(): string;
}

const NO_LABELS: LabelSource = Object.freeze({});

/** Derived forms are computed on first use: validation only needs the parse. */
class ParsedSelector implements Selector {
  readonly root: SelectorNode;
  private canon: string | undefined;
  private predicate: Predicate | undefined;
  private id: string | undefined;
  private keys: readonly string[] | undefined;

  constructor(root: SelectorNode) {
    this.root = root;
  }

  get canonical(): string {
    if (this.canon === undefined) this.canon = canonicalString(this.root);
    return this.canon;
  }

  get uniqueId(): string {
    if (this.id === undefined) this.id = makeUniqueId('s', this.canonical);
    return this.id;
  }

  get labelKeys(): readonly string[] {
    if (this.keys === undefined) this.keys = Object.freeze([...collectLabelKeys(this.root)].sort());
    return this.keys;
  }

  get mightMatch(): boolean {
    for (const r of labelRestrictions(this.root).values()) if (!possibleToSatisfy(r)) return false;
    return true;
  }

  evaluate(labels: LabelSource | null | undefined): boolean {
    if (this.predicate === undefined) this.predicate = compileNode(this.root);
    return this.predicate(labels ?? NO_LABELS);
  }

  labelRestrictions(): Map<string, LabelRestriction> {
    return labelRestrictions(this.root);
  }

  equals(other: Selector): boolean {
    return this.canonical === other.canonical;
  }

  toString(): string {
    return this.canonical;
  }
}

/** Calico's hash.MakeUniqueID. */
export function makeUniqueId(prefix: string, content: string): string {
  const digest = createHash('sha224').update(`${prefix}:${content}`, 'utf8').digest('base64url');
  return `${prefix}:${digest}`;
}

// ------------------------------------------------------------------------ cache

/** Upper bound on cached parses; a cluster has far fewer distinct selectors. */
export const SELECTOR_CACHE_LIMIT = 10_000;

/**
 * Two-generation LRU approximation: hits in `young` cost one Map lookup; hits in
 * `old` are promoted; when `young` fills up, `old` (everything not used since the
 * previous rotation) is dropped. At most SELECTOR_CACHE_LIMIT entries in all.
 */
let young = new Map<string, Selector>();
let old = new Map<string, Selector>();
const GENERATION = SELECTOR_CACHE_LIMIT / 2;

/**
 * Parses Calico selector text (cached). Throws SelectorParseError on bad input.
 */
export function parseSelector(text: string): Selector {
  if (typeof text !== 'string') {
    throw new TypeError(`parseSelector: expected a string, got ${text === null ? 'null' : typeof text}`);
  }
  let sel = young.get(text);
  if (sel !== undefined) return sel;
  sel = old.get(text);
  if (sel === undefined) sel = parseSelectorUncached(text);
  else old.delete(text);
  if (young.size >= GENERATION) {
    old = young;
    young = new Map();
  }
  young.set(text, sel);
  return sel;
}

/** Parses without touching the cache (benchmarks, one-off validation). */
export function parseSelectorUncached(text: string): Selector {
  try {
    return new ParsedSelector(parseToAst(text));
  } catch (e) {
    // Nesting is capped (MAX_NESTING_DEPTH) well inside the default stack, but a
    // caller that is itself deep in recursion could still run out: report it as
    // bad input rather than letting a RangeError escape.
    if (e instanceof RangeError) {
      throw new SelectorParseError(text, 0, 'selector is nested too deeply to parse here');
    }
    throw e;
  }
}

/**
 * Builds a Selector from an AST (e.g. one rewritten by the compiler). The tree is
 * copied; set values are sorted and de-duplicated as the parser would. The
 * caller is responsible for label keys being valid and for and/or having two or
 * more operands; re-parse `.canonical` to get exactly what Calico would hold.
 */
export function selectorFromAst(root: SelectorNode): Selector {
  return new ParsedSelector(copyNode(root));
}

function copyNode(n: SelectorNode): SelectorNode {
  switch (n.kind) {
    case 'in':
    case 'notIn':
      return { kind: n.kind, label: n.label, values: toSortedSet(n.values) };
    case 'not':
      return { kind: 'not', operand: copyNode(n.operand) };
    case 'and':
    case 'or':
      return { kind: n.kind, operands: n.operands.map(copyNode) };
    default:
      return { ...n };
  }
}

/** Number of cached parses (for tests and metrics). */
export function selectorCacheSize(): number {
  return young.size + old.size;
}

/** Drops every cached parse. */
export function clearSelectorCache(): void {
  young = new Map();
  old = new Map();
}

/**
 * Calico's selector.Normalise: trims surrounding whitespace (any Unicode space,
 * like Go's strings.TrimSpace), and returns the canonical form, or the trimmed
 * text unchanged when it does not parse.
 */
export function normaliseSelector(text: string): string {
  const trimmed = trimGoSpace(text);
  try {
    return parseSelector(trimmed).canonical;
  } catch {
    return trimmed;
  }
}

/** Go's unicode.IsSpace set, which strings.TrimSpace trims. */
function trimGoSpace(s: string): string {
  const isSpace = (c: number): boolean =>
    (c >= 0x09 && c <= 0x0d) ||
    c === 0x20 ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000;
  let a = 0;
  let b = s.length;
  while (a < b && isSpace(s.charCodeAt(a))) a++;
  while (b > a && isSpace(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}
