/**
 * Selector AST: the typed node union, Calico's canonical string form, evaluation
 * and label restrictions.
 *
 * Contracts (all matching Calico's libcalico-go `lib/selector/parser/ast.go`):
 * - Canonical form: `label == "value"` with the value in double quotes unless it
 *   contains a double quote (then single quotes); `&&` and `||` groups are always
 *   wrapped in one pair of parentheses, operands joined by ` && ` / ` || `, never
 *   flattened; `!` is printed directly before its operand; `in`/`not in` sets are
 *   printed sorted (by code point, i.e. Go's byte order) and de-duplicated as
 *   `{"a", "b"}`; `all()`, `global()`, `has(k)`.
 * - Evaluation: a missing label fails `==`, `in`, `contains`, `starts with`,
 *   `ends with` and `has()`, and satisfies `!=` and `not in`. `all()` and
 *   `global()` are true for every label set (global()'s meaning comes from the
 *   namespaceSelector rewrite in transform.ts, not from evaluation).
 * - Nodes are plain objects, immutable by type (`readonly`), shared by every
 *   holder of a cached Selector: never mutate them. `in`/`notIn` value lists
 *   are sorted and de-duplicated.
 */

export type SelectorNode =
  | AllNode
  | GlobalNode
  | HasNode
  | LabelValueNode
  | LabelSetNode
  | NotNode
  | AndNode
  | OrNode;

export interface AllNode {
  readonly kind: 'all';
}
export interface GlobalNode {
  readonly kind: 'global';
}
export interface HasNode {
  readonly kind: 'has';
  readonly label: string;
}
/** `==`, `!=`, `contains`, `starts with`, `ends with`. */
export interface LabelValueNode {
  readonly kind: 'eq' | 'ne' | 'contains' | 'startsWith' | 'endsWith';
  readonly label: string;
  readonly value: string;
}
/** `in {…}` and `not in {…}`; `values` sorted by code point, no duplicates. */
export interface LabelSetNode {
  readonly kind: 'in' | 'notIn';
  readonly label: string;
  readonly values: readonly string[];
}
export interface NotNode {
  readonly kind: 'not';
  readonly operand: SelectorNode;
}
/** Two or more operands (the parser never builds a one-operand group). */
export interface AndNode {
  readonly kind: 'and';
  readonly operands: readonly SelectorNode[];
}
export interface OrNode {
  readonly kind: 'or';
  readonly operands: readonly SelectorNode[];
}

/**
 * Where labels come from: a plain record (own properties only; inherited ones
 * such as `constructor` never count) or anything with a Map-like `get`.
 */
export type LabelSource = Readonly<Record<string, string>> | LabelGetter;
export interface LabelGetter {
  get(key: string): string | undefined;
}

const hasOwn = Object.prototype.hasOwnProperty;

/** The value of `key` in `labels`, or undefined when absent. */
export function getLabel(labels: LabelSource, key: string): string | undefined {
  const getter = (labels as LabelGetter).get;
  if (typeof getter === 'function') return getter.call(labels, key);
  return hasOwn.call(labels, key) ? (labels as Record<string, string>)[key] : undefined;
}

/**
 * Compares strings in Unicode code-point order, which is the byte order of their
 * UTF-8 encodings (Go's string order) — unlike `<` on JS strings, which puts
 * astral characters (surrogate pairs) before U+E000..U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // Move surrogates (D800-DFFF) above E000-FFFF, keeping the rest in order.
    if (ca >= 0xd800) ca += ca <= 0xdfff ? 0x2000 : -0x800;
    if (cb >= 0xd800) cb += cb <= 0xdfff ? 0x2000 : -0x800;
    return ca - cb;
  }
  return a.length - b.length;
}

/** Sorted (code point order), de-duplicated copy, as Calico stores set literals. */
export function toSortedSet(values: readonly string[]): string[] {
  // Users usually write sets in order already: skip the sort then.
  let ordered = true;
  for (let i = 1; i < values.length && ordered; i++) ordered = compareCodePoints(values[i - 1]!, values[i]!) < 0;
  if (ordered) return values.slice();
  const sorted = [...values].sort(compareCodePoints);
  const out: string[] = [];
  for (const v of sorted) {
    if (out.length === 0 || out[out.length - 1] !== v) out.push(v);
  }
  return out;
}

// ---------------------------------------------------------------- canonical form

function quote(s: string): string {
  return s.includes('"') ? `'${s}'` : `"${s}"`;
}

const VALUE_OPS: Record<LabelValueNode['kind'], string> = {
  eq: ' == ',
  ne: ' != ',
  contains: ' contains ',
  startsWith: ' starts with ',
  endsWith: ' ends with ',
};

/** Calico's canonical String() form of a node. */
export function canonicalString(node: SelectorNode): string {
  switch (node.kind) {
    case 'all':
      return 'all()';
    case 'global':
      return 'global()';
    case 'has':
      return `has(${node.label})`;
    case 'eq':
    case 'ne':
    case 'contains':
    case 'startsWith':
    case 'endsWith':
      return node.label + VALUE_OPS[node.kind] + quote(node.value);
    case 'in':
    case 'notIn': {
      let s = node.label + (node.kind === 'in' ? ' in {' : ' not in {');
      for (let i = 0; i < node.values.length; i++) s += (i > 0 ? ', ' : '') + quote(node.values[i]!);
      return `${s}}`;
    }
    case 'not':
      return `!${canonicalString(node.operand)}`;
    case 'and':
    case 'or': {
      const sep = node.kind === 'and' ? ' && ' : ' || ';
      let s = '(';
      for (let i = 0; i < node.operands.length; i++) s += (i > 0 ? sep : '') + canonicalString(node.operands[i]!);
      return `${s})`;
    }
  }
}

// -------------------------------------------------------------------- evaluation

export type Predicate = (labels: LabelSource) => boolean;

const alwaysTrue: Predicate = () => true;

/**
 * Compiles a node into a closure tree: evaluation then costs one call per node
 * and no dispatch on `kind`.
 */
export function compileNode(node: SelectorNode): Predicate {
  switch (node.kind) {
    case 'all':
    case 'global':
      return alwaysTrue;
    case 'has': {
      const k = node.label;
      return (l) => getLabel(l, k) !== undefined;
    }
    case 'eq': {
      const { label: k, value: want } = node;
      return (l) => getLabel(l, k) === want;
    }
    case 'ne': {
      const { label: k, value: want } = node;
      return (l) => getLabel(l, k) !== want;
    }
    case 'contains': {
      const { label: k, value: want } = node;
      return (l) => {
        const v = getLabel(l, k);
        return v !== undefined && v.includes(want);
      };
    }
    case 'startsWith': {
      const { label: k, value: want } = node;
      return (l) => {
        const v = getLabel(l, k);
        return v !== undefined && v.startsWith(want);
      };
    }
    case 'endsWith': {
      const { label: k, value: want } = node;
      return (l) => {
        const v = getLabel(l, k);
        return v !== undefined && v.endsWith(want);
      };
    }
    case 'in':
    case 'notIn': {
      const k = node.label;
      const member = memberTest(node.values);
      if (node.kind === 'in') {
        return (l) => {
          const v = getLabel(l, k);
          return v !== undefined && member(v);
        };
      }
      return (l) => {
        const v = getLabel(l, k);
        return v === undefined || !member(v);
      };
    }
    case 'not': {
      const inner = compileNode(node.operand);
      return (l) => !inner(l);
    }
    case 'and': {
      const ops = node.operands.map(compileNode);
      if (ops.length === 2) {
        const [a, b] = ops as [Predicate, Predicate];
        return (l) => a(l) && b(l);
      }
      return (l) => {
        for (const op of ops) if (!op(l)) return false;
        return true;
      };
    }
    case 'or': {
      const ops = node.operands.map(compileNode);
      if (ops.length === 2) {
        const [a, b] = ops as [Predicate, Predicate];
        return (l) => a(l) || b(l);
      }
      return (l) => {
        for (const op of ops) if (op(l)) return true;
        return false;
      };
    }
  }
}

function memberTest(values: readonly string[]): (v: string) => boolean {
  if (values.length === 0) return () => false;
  if (values.length === 1) {
    const only = values[0];
    return (v) => v === only;
  }
  if (values.length <= 16) return (v) => values.includes(v);
  const set = new Set(values);
  return (v) => set.has(v);
}

// ----------------------------------------------------------- label restrictions

/**
 * A lower bound on what a label must look like for a selector to match
 * (Calico's LabelRestriction). Used by the policy compiler's indexes: a selector
 * with `mustBePresent` on key k can only match endpoints that have k, and with
 * `mustHaveOneOfValues` only those whose k is one of the listed values.
 */
export interface LabelRestriction {
  /** The label must be present (e.g. `has(k)`, `k == "v"`, `k in {…}`). */
  readonly mustBePresent: boolean;
  /** The label must be absent (`!has(k)`). */
  readonly mustBeAbsent: boolean;
  /**
   * When defined, the label's value must be one of these (sorted, unique).
   * An empty array means the selector cannot match (`k == "a" && k == "b"`).
   */
  readonly mustHaveOneOfValues?: readonly string[];
}

type RestrictionMap = Map<string, LabelRestriction>;

/**
 * Label restrictions of a node; semantics follow Calico's LabelRestrictions():
 * leaves contribute what they require, `&&` combines (presence ORed, value sets
 * intersected), `||` keeps only what every branch requires (value sets united),
 * `!` inverts only `has()`.
 *
 * One deliberate difference: for `k in {}` Calico reports no value restriction
 * (its empty set is a nil slice); we report `mustHaveOneOfValues: []` ("cannot
 * match"), which is the truth and a tighter bound. Everything else agrees.
 */
export function labelRestrictions(node: SelectorNode): RestrictionMap {
  switch (node.kind) {
    case 'all':
    case 'global':
    case 'ne':
    case 'notIn':
      return new Map();
    case 'has':
    case 'contains':
    case 'startsWith':
    case 'endsWith':
      return new Map([[node.label, { mustBePresent: true, mustBeAbsent: false }]]);
    case 'eq':
      return new Map([[node.label, { mustBePresent: true, mustBeAbsent: false, mustHaveOneOfValues: [node.value] }]]);
    case 'in':
      return new Map([[node.label, { mustBePresent: true, mustBeAbsent: false, mustHaveOneOfValues: node.values }]]);
    case 'not':
      // Only !has(k) can be inverted: !(k == "v") does not require k's absence.
      if (node.operand.kind === 'has') {
        return new Map([[node.operand.label, { mustBePresent: false, mustBeAbsent: true }]]);
      }
      return new Map();
    case 'and': {
      const acc: RestrictionMap = new Map();
      for (const op of node.operands) {
        for (const [k, r] of labelRestrictions(op)) {
          const base = acc.get(k);
          if (base === undefined) {
            acc.set(k, r);
            continue;
          }
          let values = base.mustHaveOneOfValues;
          if (values === undefined) values = r.mustHaveOneOfValues;
          else if (r.mustHaveOneOfValues !== undefined) {
            const other = new Set(r.mustHaveOneOfValues);
            values = values.filter((v) => other.has(v));
          }
          acc.set(k, withValues(base.mustBePresent || r.mustBePresent, base.mustBeAbsent || r.mustBeAbsent, values));
        }
      }
      return acc;
    }
    case 'or': {
      const [first, ...rest] = node.operands as [SelectorNode, ...SelectorNode[]];
      const acc = labelRestrictions(first);
      for (const op of rest) {
        const other = labelRestrictions(op);
        for (const [k, r] of acc) {
          const o = other.get(k);
          const present = r.mustBePresent && o !== undefined && o.mustBePresent;
          const absent = r.mustBeAbsent && o !== undefined && o.mustBeAbsent;
          let values: readonly string[] | undefined;
          if (present && r.mustHaveOneOfValues !== undefined && o!.mustHaveOneOfValues !== undefined) {
            values = toSortedSet([...r.mustHaveOneOfValues, ...o!.mustHaveOneOfValues]);
          }
          if (present || absent) acc.set(k, withValues(present, absent, values));
          else acc.delete(k);
        }
      }
      return acc;
    }
  }
}

function withValues(present: boolean, absent: boolean, values: readonly string[] | undefined): LabelRestriction {
  return values === undefined
    ? { mustBePresent: present, mustBeAbsent: absent }
    : { mustBePresent: present, mustBeAbsent: absent, mustHaveOneOfValues: values };
}

/** Whether a restriction can be met at all (Calico's PossibleToSatisfy). */
export function possibleToSatisfy(r: LabelRestriction): boolean {
  if (r.mustBePresent && r.mustBeAbsent) return false;
  return r.mustHaveOneOfValues === undefined || r.mustHaveOneOfValues.length > 0;
}

/** Every label key the node mentions, in first-seen order, without duplicates. */
export function collectLabelKeys(node: SelectorNode, into: Set<string> = new Set()): Set<string> {
  switch (node.kind) {
    case 'all':
    case 'global':
      break;
    case 'not':
      collectLabelKeys(node.operand, into);
      break;
    case 'and':
    case 'or':
      for (const op of node.operands) collectLabelKeys(op, into);
      break;
    default:
      into.add(node.label);
  }
  return into;
}
